//! The server itself: binds, accepts connections (at most `MAX_CONNECTIONS` at once), and
//! serves each with hyper under the header-size and header-time limits.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::limit::{Rate, RateLimiter};
use super::site::{Site, SiteCache, SiteError};
use super::{HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES, MAX_HEADERS, Shared, head, routes};
use crate::clock::Clock;
use crate::model::newsletter::Newsletter;
use crate::secret::Secret;
use crate::state::StateDir;
use crate::workspace::Workspace;

/// Where and how to serve.
pub struct Config {
    pub workspace: Workspace,
    pub state: StateDir,
    pub clock: Arc<dyn Clock>,
    pub secret: Secret,
    pub listen: SocketAddr,
    pub rate: Rate,
    /// Where confirmation emails of web sign-ups go (`None`: sign-ups are closed).
    pub destination: Option<crate::delivery::transport::Destination>,
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
}

impl Server {
    /// Reads the workspace and binds `config.listen`. Invalid settings, theme or list come
    /// back as `Invalid`, as for a send.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        use anyhow::Context as _;
        let mut ledger = config.state.open_ledger()?;
        let site =
            Site::load(&config.workspace, &config.secret, &mut ledger).map_err(
                |error| match error {
                    SiteError::Invalid(invalid) => anyhow::Error::new(invalid),
                    other => anyhow::Error::new(other),
                },
            )?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let shared = Arc::new(Shared {
            workspace: config.workspace,
            secret: config.secret,
            clock: config.clock,
            ledger: Mutex::new(ledger),
            state: config.state,
            site: Mutex::new(SiteCache {
                site: Arc::new(site),
                failed: None,
            }),
            archive: Mutex::new(None),
            images: Mutex::new(None),
            limiter: Mutex::new(RateLimiter::new(config.rate)),
            destination: config.destination,
            late: Mutex::new(super::directory::Directory::empty()),
        });
        Ok(Server {
            listener,
            router: routes::router(shared.clone()),
            shared,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn newsletter(&self) -> Newsletter {
        self.shared.site().newsletter.clone()
    }

    /// How many addresses have a working unsubscribe link.
    pub fn address_count(&self) -> usize {
        self.shared.site().directory.len()
    }

    /// Serves until `shutdown` completes. Requests in flight then are dropped: an unsubscribe
    /// is one SQLite transaction, so it happened entirely or not at all, and a client that
    /// got no answer tries again.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let mut http = hyper::server::conn::http1::Builder::new();
        // One request per connection: each head is read and checked by `head` first, so
        // that every refusal carries our headers. Behind a proxy, keep-alive to us buys
        // nothing worth that.
        http.timer(TokioTimer::new())
            .keep_alive(false)
            .header_read_timeout(HEADER_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .max_headers(MAX_HEADERS);
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors, most likely: give connections time to close.
                        tracing::warn!("cannot accept a connection: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let router = self.router.clone();
            let http = http.clone();
            tokio::spawn(async move {
                let mut stream = stream;
                let head =
                    head::read_head(&mut stream, MAX_HEADER_BYTES, MAX_HEADERS, HEADER_TIMEOUT)
                        .await;
                let stream = match head {
                    Ok(head) => head::Replayed::new(head, stream),
                    Err(refusal) => {
                        head::refuse(&mut stream, refusal).await;
                        drop(permit);
                        return;
                    }
                };
                let service = hyper::service::service_fn(
                    move |mut request: Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        let mut router = router.clone();
                        async move {
                            let response: Response<Body> =
                                tower::Service::call(&mut router, request).await?;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                drop(permit);
            });
        }
    }
}
