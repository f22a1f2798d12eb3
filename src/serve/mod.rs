//! `letterpress serve`: the other end of the unsubscribe links in every email (one-click,
//! RFC 8058), the sign-up form with its double opt-in, and the web archive of the issues
//! that went out, over HTTP.
//!
//! Meant to run behind a TLS reverse proxy. What keeps it safe to expose: tokens are HMACs
//! under the newsletter's secret, looked up and compared in constant time, and every bad
//! token gets the same answer; a GET never changes anything; request headers and bodies are
//! small and must arrive within seconds; each client has a rate limit; every response
//! carries a Content-Security-Policy without scripts, `no-referrer` and `nosniff`; and the
//! ledger is written through SQLite's WAL with a busy timeout, so a `send` or `run` writing at
//! the same time only makes a request wait.
//!
//! `server` accepts connections and bounds them, `routes` answers requests, `signup` is the
//! sign-up form and its confirmation links, `site` keeps the files as of their last change.

pub mod directory;
mod head;
pub mod limit;
mod routes;
mod server;
mod signup;
mod site;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;
use crate::delivery::transport::Destination;
use crate::secret::Secret;
use crate::workspace::Workspace;
use limit::RateLimiter;
use site::{CachedArchive, SiteCache};

pub use routes::security_headers;
pub use server::{Config, Server};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Larger than any form of ours or a mail provider's one-click POST (27 bytes).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Request line and headers together; a browser's are well under 2 KiB.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;
/// A client must send its whole request head within this, and an idle kept-alive
/// connection is closed after it.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// A request, its body included, must be answered within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed as they arrive.
const MAX_CONNECTIONS: usize = 512;

/// What every request reads: the files as of their last change, and the ledger.
struct Shared {
    workspace: Workspace,
    secret: Secret,
    clock: Arc<dyn Clock>,
    /// One connection, used from blocking tasks: SQLite serialises writers anyway, and the
    /// busy timeout lets a `send` writing at the same time finish. Reopened when the file at
    /// its path was replaced (a backup restored); see `Shared::with_ledger`.
    ledger: Mutex<crate::ledger::Ledger>,
    state: crate::state::StateDir,
    site: Mutex<SiteCache>,
    archive: Mutex<Option<CachedArchive>>,
    images: Mutex<Option<site::CachedImages>>,
    limiter: Mutex<RateLimiter>,
    /// Where confirmation emails go; `None` when the relay's settings are unusable, and
    /// sign-ups are closed.
    destination: Option<Destination>,
    /// Readers confirmed since the site was read: their unsubscribe links must work before
    /// the next reload (which finds them in the ledger).
    late: Mutex<directory::Directory>,
}

impl Shared {
    /// Runs `work` on the ledger that is on disk at its path now, and makes sure afterwards
    /// that what it wrote went there: a ledger deleted or replaced while the server runs
    /// must not take an unsubscribe into a file nobody reads again. A replaced one (a backup
    /// restored) is reopened; a deleted one is an error, and the request gets a 503.
    fn with_ledger<T>(
        &self,
        work: impl FnOnce(&mut crate::ledger::Ledger) -> crate::ledger::Result<T>,
    ) -> anyhow::Result<T> {
        let mut ledger = lock(&self.ledger);
        if !ledger.is_still_at_its_path() {
            tracing::warn!("the ledger file was replaced or removed: opening it again");
            *ledger = self.state.open_ledger()?;
        }
        let result = work(&mut ledger)?;
        anyhow::ensure!(
            ledger.is_still_at_its_path(),
            "the ledger file was replaced or removed while it was being written"
        );
        Ok(result)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one request must not take the others down with a poisoned lock.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
