//! `letterpress serve`: the other end of the unsubscribe links in every email (one-click,
//! RFC 8058), and the web archive of the issues that went out, over HTTP.
//!
//! Meant to run behind a TLS reverse proxy. What keeps it safe to expose: tokens are HMACs
//! under the newsletter's secret, looked up and compared in constant time, and every bad
//! token gets the same answer; a GET never changes anything; request headers and bodies are
//! small and must arrive within seconds; each client has a rate limit; every response
//! carries a Content-Security-Policy without scripts, `no-referrer` and `nosniff`; and the
//! ledger is written through SQLite's WAL with a busy timeout, so a `send` or `run` writing at
//! the same time only makes a request wait.

pub mod directory;
pub mod limit;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::archive::Archive;
use crate::clock::Clock;
use crate::edition::EditionError;
use crate::ledger::{Ledger, ONE_CLICK_SOURCE, SentIssue};
use crate::model::newsletter::Newsletter;
use crate::render::web::{self, Action, Depth, Standing};
use crate::secret::Secret;
use crate::theme::Theme;
use crate::workspace::{Loaded, NEWSLETTER_FILE, Workspace};
use directory::{Directory, mask_address};
use limit::{Rate, RateLimiter, client_address};

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

/// Where and how to serve.
pub struct Config {
    pub workspace: Workspace,
    pub clock: Arc<dyn Clock>,
    pub secret: Secret,
    pub listen: SocketAddr,
    pub rate: Rate,
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
}

/// What every request reads: the files as of their last change, and the ledger.
struct Shared {
    workspace: Workspace,
    secret: Secret,
    clock: Arc<dyn Clock>,
    /// One connection for the server's life, used from blocking tasks: SQLite serialises
    /// writers anyway, and the busy timeout lets a `send` writing at the same time finish.
    ledger: Mutex<Ledger>,
    site: Mutex<SiteCache>,
    archive: Mutex<Option<CachedArchive>>,
    limiter: Mutex<RateLimiter>,
}

/// The settings, theme and token directory, as of the files' last change.
struct Site {
    stamp: Stamp,
    newsletter: Newsletter,
    theme: Theme,
    directory: Directory,
}

struct SiteCache {
    site: Arc<Site>,
    /// The files as they were when reloading them last failed, to log that only once.
    failed: Option<Stamp>,
}

struct CachedArchive {
    key: (Stamp, Vec<SentIssue>),
    archive: Arc<Archive>,
}

/// When files last changed: their modification times and sizes. Comparing stamps costs a
/// few `stat` calls per request, so edits are picked up without watching anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Stamp {
    fn of(paths: impl IntoIterator<Item = PathBuf>) -> Stamp {
        Stamp(
            paths
                .into_iter()
                .map(|path| {
                    let seen = std::fs::metadata(&path)
                        .ok()
                        .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
                    (path, seen)
                })
                .collect(),
        )
    }

    fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.0.iter().map(|(path, _)| path.clone())
    }
}

/// The files a site is read from.
fn site_files(workspace: &Workspace, newsletter: &Newsletter) -> Vec<PathBuf> {
    let theme = workspace.path("templates").join(newsletter.theme.as_str());
    vec![
        workspace.path(NEWSLETTER_FILE),
        workspace.subscribers_path(newsletter),
        theme.join("style.css"),
        theme.join("theme.yaml"),
    ]
}

fn take<T>(loaded: Loaded<T>, what: String) -> Result<T, EditionError> {
    loaded.value.ok_or(EditionError {
        what,
        diagnostics: loaded.diagnostics,
    })
}

impl Site {
    fn load(workspace: &Workspace, secret: &Secret, ledger: &Ledger) -> Result<Site, EditionError> {
        let newsletter = take(workspace.load_newsletter(), NEWSLETTER_FILE.to_string())?;
        // Stamped before the rest is read, so a change made while reading is seen next time.
        let stamp = Stamp::of(site_files(workspace, &newsletter));
        let theme = take(workspace.load_theme(&newsletter), "the theme".to_string())?;
        let subscribers_file = workspace.display(&workspace.subscribers_path(&newsletter));
        let subscribers = take(workspace.load_subscribers(&newsletter), subscribers_file)?;
        let known = ledger.known_addresses().map_err(|error| EditionError {
            what: format!("the ledger: {error}"),
            diagnostics: Default::default(),
        })?;
        let directory = Directory::build(
            secret,
            &crate::message::list_id(&newsletter),
            &subscribers,
            known,
        );
        Ok(Site {
            stamp,
            newsletter,
            theme,
            directory,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one request must not take the others down with a poisoned lock.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The site, read again first if any of its files changed. If they no longer load, the
    /// last good version stays in use (a half-edited list must not turn every link away).
    fn site(&self) -> Arc<Site> {
        let mut cache = lock(&self.site);
        let now = Stamp::of(cache.site.stamp.paths());
        if now == cache.site.stamp || cache.failed.as_ref() == Some(&now) {
            return cache.site.clone();
        }
        let loaded = Site::load(&self.workspace, &self.secret, &lock(&self.ledger));
        match loaded {
            Ok(site) => {
                tracing::info!(
                    addresses = site.directory.len(),
                    "settings or subscriber list changed: read again"
                );
                cache.site = Arc::new(site);
                cache.failed = None;
            }
            Err(error) => {
                tracing::warn!(
                    "{} no longer loads ({}); still using it as it was",
                    error.what,
                    error.first_problem()
                );
                cache.failed = Some(now);
            }
        }
        cache.site.clone()
    }

    /// The archive, built again when an issue went out or a file it is made from changed.
    fn archive(&self) -> Result<Arc<Archive>, rusqlite::Error> {
        let site = self.site();
        let sent = lock(&self.ledger).sent_issues()?;
        let issue_files = sent
            .iter()
            .map(|sent_issue| self.workspace.issue_path(&sent_issue.issue));
        let key = (
            Stamp::of(site.stamp.paths().chain(issue_files)),
            sent.clone(),
        );
        let mut cache = lock(&self.archive);
        if let Some(cached) = cache.as_ref().filter(|cached| cached.key == key) {
            return Ok(cached.archive.clone());
        }
        let (archive, left_out) = Archive::collect(
            &self.workspace,
            site.newsletter.clone(),
            site.theme.clone(),
            &sent,
        );
        for line in left_out {
            tracing::warn!("{line}");
        }
        let archive = Arc::new(archive);
        *cache = Some(CachedArchive {
            key,
            archive: archive.clone(),
        });
        Ok(archive)
    }

    /// The unsubscribe page for `token`, after doing what the request asked.
    fn unsubscribe(&self, token: &str, intent: Intent) -> Response {
        let site = self.site();
        let Some(holder) = site.directory.find(token) else {
            return invalid_link(&site.newsletter);
        };
        let masked = mask_address(&holder.key);
        let mut ledger = lock(&self.ledger);
        let now = self.clock.now();
        let outcome = (|| -> rusqlite::Result<(Action, Standing)> {
            let action = match intent {
                Intent::View => Action::Viewed,
                Intent::Unsubscribe => {
                    if ledger.suppress(&holder.key, ONE_CLICK_SOURCE, None, now)? {
                        tracing::info!(address = %masked, "unsubscribed with their link");
                    }
                    Action::Unsubscribed
                }
                Intent::Resubscribe => {
                    if ledger.unsuppress_own(&holder.key)? {
                        tracing::info!(address = %masked, "resubscribed with their link");
                    }
                    Action::Resubscribed
                }
            };
            let standing = match ledger.suppression(&holder.key)? {
                Some(suppression) if suppression.is_own() => Standing::UnsubscribedThemselves,
                Some(_) => Standing::SuppressedByEditor,
                None if holder.on_list => Standing::Receiving,
                None => Standing::NotReceiving,
            };
            Ok((action, standing))
        })();
        drop(ledger);
        match outcome {
            Ok((action, standing)) => html(
                StatusCode::OK,
                web::unsubscribe_page(&site.newsletter, &masked, standing, action).into_string(),
                NO_STORE,
            ),
            Err(error) => {
                tracing::error!("the ledger failed: {error}");
                unavailable(&site.newsletter, Depth::Unsubscribe)
            }
        }
    }
}

/// What a request to an unsubscribe link asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    View,
    Unsubscribe,
    Resubscribe,
}

impl Intent {
    /// A POST unsubscribes: RFC 8058's `List-Unsubscribe=One-Click` from a mail app, the
    /// page's own button (which sends the same), or any other body a mail provider may send
    /// (multipart included). Only the page's resubscribe button, `action=resubscribe`,
    /// undoes it.
    fn of_post(body: &[u8]) -> Intent {
        let resubscribe = url::form_urlencoded::parse(body)
            .any(|(key, value)| key == "action" && value == "resubscribe");
        if resubscribe {
            Intent::Resubscribe
        } else {
            Intent::Unsubscribe
        }
    }
}

const NO_STORE: &str = "no-store";
const SHORT_CACHE: &str = "public, max-age=300";

fn html(status: StatusCode, body: String, cache: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// The one answer to every unsubscribe link that is not valid, whatever is wrong with it.
fn invalid_link(newsletter: &Newsletter) -> Response {
    html(
        StatusCode::NOT_FOUND,
        web::invalid_link_page(newsletter).into_string(),
        NO_STORE,
    )
}

fn unavailable(newsletter: &Newsletter, depth: Depth) -> Response {
    let mut response = html(
        StatusCode::SERVICE_UNAVAILABLE,
        web::problem_page(
            newsletter,
            depth,
            "Please try again in a minute",
            maud::html! { p { "Something went wrong on our side, and nothing was changed." } },
        )
        .into_string(),
        NO_STORE,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn plain_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found\n",
    )
        .into_response()
}

/// Runs `work` where it may block (files, SQLite, HMACs), off the async workers.
async fn blocking(
    shared: Arc<Shared>,
    work: impl FnOnce(&Shared) -> Response + Send + 'static,
) -> Response {
    tokio::task::spawn_blocking(move || work(&shared))
        .await
        .unwrap_or_else(|error| {
            tracing::error!("a request failed: {error}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
}

/// The token in an unsubscribe URL, exactly as sent: not percent-decoded, since a real
/// token never needs it, and a path that does not decode must fail like any other.
fn raw_token(uri: &Uri) -> String {
    uri.path()
        .strip_prefix("/unsubscribe/")
        .unwrap_or_default()
        .to_string()
}

async fn unsubscribe_page(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let token = raw_token(&uri);
    blocking(shared, move |shared| {
        shared.unsubscribe(&token, Intent::View)
    })
    .await
}

async fn unsubscribe_post(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let token = raw_token(&uri);
    let intent = Intent::of_post(&body);
    blocking(shared, move |shared| shared.unsubscribe(&token, intent)).await
}

/// Serves a page of the archive, or a 503 when the ledger cannot be read.
async fn from_archive(
    shared: Arc<Shared>,
    page: impl FnOnce(&Archive) -> Response + Send + 'static,
) -> Response {
    blocking(shared, move |shared| match shared.archive() {
        Ok(archive) => page(&archive),
        Err(error) => {
            tracing::error!("the ledger failed: {error}");
            unavailable(&shared.site().newsletter, Depth::Root)
        }
    })
    .await
}

async fn archive_index(State(shared): State<Arc<Shared>>) -> Response {
    from_archive(shared, |archive| {
        html(StatusCode::OK, archive.index_html(), SHORT_CACHE)
    })
    .await
}

async fn stylesheet(State(shared): State<Arc<Shared>>) -> Response {
    blocking(shared, |shared| {
        (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, SHORT_CACHE),
            ],
            web::stylesheet(&shared.site().theme),
        )
            .into_response()
    })
    .await
}

async fn feed(State(shared): State<Arc<Shared>>) -> Response {
    from_archive(shared, |archive| {
        (
            [
                (header::CONTENT_TYPE, "application/atom+xml; charset=utf-8"),
                (header::CACHE_CONTROL, SHORT_CACHE),
            ],
            archive.feed_xml(),
        )
            .into_response()
    })
    .await
}

/// `issues/<id>` is sent on to `issues/<id>/`, where the page's relative links (to the
/// stylesheet, the archive) resolve the same as on a static host.
async fn issue_without_slash(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    from_archive(shared, move |archive| {
        if archive
            .issues
            .iter()
            .any(|archived| archived.issue.id.as_str() == id)
        {
            let location = format!("{id}/");
            (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        } else {
            issue_not_found(archive)
        }
    })
    .await
}

async fn issue_page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    from_archive(shared, move |archive| match archive.issue_html(&id) {
        Some(page) => html(StatusCode::OK, page, SHORT_CACHE),
        None => issue_not_found(archive),
    })
    .await
}

fn issue_not_found(archive: &Archive) -> Response {
    html(
        StatusCode::NOT_FOUND,
        web::problem_page(
            &archive.newsletter,
            Depth::Issue,
            "No such issue",
            maud::html! {
                p { "This issue has not been sent, or the link is wrong." }
                p { a href="../../" { "See all issues" } }
            },
        )
        .into_string(),
        SHORT_CACHE,
    )
}

/// Anything else. Under `/unsubscribe/` it is a broken link, answered like every other bad
/// token, so the shape of a path reveals nothing either.
async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    if uri.path().starts_with("/unsubscribe/") {
        blocking(shared, |shared| invalid_link(&shared.site().newsletter)).await
    } else {
        plain_not_found()
    }
}

async fn rate_limit(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = client_address(peer, request.headers());
    if !lock(&shared.limiter).allow(client, Instant::now()) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::RETRY_AFTER, "1"),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "Too many requests: try again in a moment.\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// The headers on every response. No page has a script, so none may run; styles come only
/// from the site's stylesheet; no page may be framed (clickjacking an unsubscribe button);
/// links never tell other sites where the reader came from.
pub fn security_headers() -> Vec<(HeaderName, HeaderValue)> {
    let policy = format!("{}; frame-ancestors 'none'", web::PAGE_POLICY);
    vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&policy).expect("the policy is a valid header value"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/", get(archive_index))
        .route("/style.css", get(stylesheet))
        .route("/feed.xml", get(feed))
        .route("/issues/{id}", get(issue_without_slash))
        .route("/issues/{id}/", get(issue_page))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe_post),
        )
        .fallback(not_found)
        .with_state(shared.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn_with_state(shared, rate_limit));
    // Outermost, so that refusals (413, 408, 429) carry them too.
    for (name, value) in security_headers() {
        router = router.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    router
}

impl Server {
    /// Reads the workspace and binds `config.listen`. Invalid settings, theme or list are an
    /// `EditionError`, as for a send.
    pub async fn bind(config: Config) -> anyhow::Result<Result<Server, EditionError>> {
        use anyhow::Context as _;
        let ledger = config.workspace.open_ledger()?;
        let site = match Site::load(&config.workspace, &config.secret, &ledger) {
            Ok(site) => site,
            Err(error) => return Ok(Err(error)),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let shared = Arc::new(Shared {
            workspace: config.workspace,
            secret: config.secret,
            clock: config.clock,
            ledger: Mutex::new(ledger),
            site: Mutex::new(SiteCache {
                site: Arc::new(site),
                failed: None,
            }),
            archive: Mutex::new(None),
            limiter: Mutex::new(RateLimiter::new(config.rate)),
        });
        Ok(Ok(Server {
            listener,
            router: router(shared.clone()),
            shared,
        }))
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
        http.timer(TokioTimer::new())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_resubscribe_button_resubscribes_every_other_post_unsubscribes() {
        assert_eq!(
            Intent::of_post(b"List-Unsubscribe=One-Click"),
            Intent::Unsubscribe
        );
        assert_eq!(Intent::of_post(b""), Intent::Unsubscribe);
        assert_eq!(
            Intent::of_post(b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n"),
            Intent::Unsubscribe
        );
        assert_eq!(Intent::of_post(b"action=resubscribe"), Intent::Resubscribe);
    }

    #[test]
    fn the_policy_allows_no_script_and_no_framing() {
        let headers = security_headers();
        let policy = headers[0].1.to_str().unwrap();
        assert_eq!(
            policy,
            "default-src 'none'; style-src 'self'; img-src https: http: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
    }
}
