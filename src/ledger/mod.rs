//! The delivery ledger: what was sent to whom, in SQLite. The single source of truth for
//! resuming a send and for `status`.
//!
//! Schema (version 5; `PRAGMA user_version` holds the version, `schema::migrate` moves it
//! forward):
//!
//! ```sql
//! deliveries  (issue, email, address, position, state, attempts, last_reply, message_id,
//!              created_at, updated_at, sent_at, via, verp_tag)  -- one row per issue and reader
//!   state: pending | sending | sent | deferred | failed | skipped
//!   via (v3, for sent rows): relay | outbox -- a copy in the outbox reached no one
//! suppressions (email, source, reason, created_at)   -- never mail these addresses
//!   source: one-click (the subscriber's own unsubscribe link: they may lift it again)
//!           | mailto | bounce | complaint | manual | import (only the editor lifts these)
//! test_sends  (id, issue, email, outcome, reply, sent_at)  -- test emails, never deliveries
//!   outcome: sent | deferred | failed | uncertain
//! schedule_events (id, issue, due_at, event, detail, at)   -- what the scheduler did (v2)
//!   event: started | finished | missed | draft | invalid | conflict
//! meta (key, value)                                     -- facts fixed once (v4)
//!   key: list_key (signs tokens and Message-IDs: the list id when first needed)
//! issue_snapshots (issue, source, taken_at)             -- each issue as first sent (v4)
//! signups (email, address, name, state, requested_at, request_ip, request_agent,
//!          confirmed_at, confirm_ip, confirm_agent)    -- web sign-ups and their consent (v5)
//!   state: pending | confirmed
//! signup_mails (id, email, sent_at)                     -- confirmation emails sent (v5)
//! suppression_log (id, email, action, source, reason, at) -- every suppression and lift (v5)
//!   action: suppressed | lifted
//! reports (id, sha256, source, received_at, kind, email, issue, status, detail, raw)
//!   kind: hard | soft | complaint | ignored            -- bounce and complaint reports (v5)
//! ```
//!
//! `email` is the address compared without case (`AddressKey`); `address` is as written in
//! the list. Times are RFC 3339 UTC. A row is `sending` from just before its message is
//! handed to the relay until the relay's answer is recorded; a `sending` row found while no
//! send of its issue is running is *uncertain*: its message may or may not have arrived.
//!
//! One file per table: `deliveries`, `suppressions` (with its log), `signups` (with the
//! confirmation mails), `test_sends`, `events`, `meta` (with the snapshots), `reports` (bounces
//! and complaints); `readers` for what spans them (one reader's history, the backup); opening
//! and migrating in `schema`.

mod deliveries;
mod events;
mod meta;
mod readers;
mod reports;
mod schema;
mod signups;
mod suppressions;
mod test_sends;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;

pub use deliveries::{Claim, Counts, Delivered, Outcome, Row, SentIssue, State, Via};
pub use events::{Event, EventKind};
pub use readers::ReaderIssue;
pub use reports::{
    Kept, NewReport, ReportCounts, ReportKind, StoredReport, Suppress, reply_status, report_id,
};
pub use signups::{
    Confirmation, Consent, MAIL_WINDOW, MAX_MAILS, Signup, SignupRequest, SignupState,
};
pub use suppressions::{LogEntry, Source, Suppression};
pub use test_sends::ProofOutcome;

pub const LEDGER_FILE: &str = "ledger.sqlite3";

/// What can go wrong with the ledger, in the terms a caller branches on.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "the ledger has schema version {found}, newer than this letterpress knows ({known}); upgrade letterpress"
    )]
    TooNew { found: i64, known: i64 },
    /// A value in the ledger that this version never writes: the file was edited or damaged.
    #[error("the ledger holds {0}, which letterpress never writes; restore it from a backup")]
    Corrupt(String),
    /// A recipient was claimed who was not waiting to be sent: only a send holding the
    /// issue's lock may claim, so this is a bug worth stopping for.
    #[error(
        "{email} of {issue} was not waiting to be sent when claimed; stopping rather than risk sending twice"
    )]
    ClaimConflict { issue: String, email: String },
    #[error(
        "the ledger has schema version {found} and this letterpress reads {known}: it must be upgraded first, which only a command that writes does (run `letterpress status` where .letterpress/ is writable)"
    )]
    NeedsMigration { found: i64, known: i64 },
    #[error("the ledger database failed")]
    Database(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, LedgerError>;

pub struct Ledger {
    connection: Connection,
    path: PathBuf,
    /// The file opened (device and inode), to notice it being deleted or replaced under us.
    identity: Option<(u64, u64)>,
}

impl Ledger {
    /// Opens (creating and migrating as needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Ledger> {
        let connection = schema::open(path)?;
        Ok(Ledger {
            connection,
            path: path.to_path_buf(),
            identity: identity(path),
        })
    }

    /// Opens the ledger only to read it, never creating or changing anything: for `status`
    /// and `check`, which must work on a read-only `.letterpress/` and never get in the way of
    /// a send. A ledger from an older letterpress is refused (it needs migrating first).
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        let connection = schema::open_read_only(path)?;
        Ok(Ledger {
            connection,
            path: path.to_path_buf(),
            identity: identity(path),
        })
    }

    /// Whether the file at the ledger's path is still the one this connection writes to: a
    /// ledger deleted, or replaced by a backup, while a process runs would otherwise take its
    /// writes into a file nobody will read again.
    pub fn is_still_at_its_path(&self) -> bool {
        self.identity.is_some() && identity(&self.path) == self.identity
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })
}

/// A text column that must be one of an enum's words; anything else is a damaged ledger.
fn parse_word<T>(text: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| LedgerError::Corrupt(format!("{what} `{text}`")))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::model::address::AddressKey;
    use crate::model::issue::IssueId;

    pub fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2021-08-23T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    pub fn open() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join(LEDGER_FILE)).unwrap();
        (dir, ledger)
    }

    pub fn issue(id: &str) -> IssueId {
        IssueId::parse(id).unwrap()
    }

    pub fn key(address: &str) -> AddressKey {
        AddressKey::of(address).unwrap()
    }
}
