//! What each request gets: the unsubscribe pages (one-click POST, the page, resubscribe), the
//! sign-up form and its confirmation links (in `signup`), the archive, its pages and feed,
//! and the answers every route shares (security headers, rate limit, the one 404 for every
//! bad token).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use super::directory::mask_address;
use super::limit::client_address;
use super::{MAX_BODY_BYTES, REQUEST_TIMEOUT, Shared, lock};
use crate::archive::Archive;
use crate::ledger::Source;
use crate::message::TEST_TOKEN_PREFIX;
use crate::model::newsletter::Newsletter;
use crate::render::web::{self, Depth, LinkAction, Standing};

impl Shared {
    /// The unsubscribe page for `token`, after doing what the request asked.
    fn unsubscribe(&self, token: &str, intent: Intent) -> Response {
        let site = self.site();
        if token.starts_with(TEST_TOKEN_PREFIX) {
            return html(
                StatusCode::OK,
                web::test_link_page(&site.newsletter).into_string(),
                NO_STORE,
            );
        }
        // Readers who confirmed a web sign-up since the site was read are in `late`.
        let found = site
            .directory
            .find(token)
            .cloned()
            .or_else(|| lock(&self.late).find(token).cloned());
        let Some(holder) = found else {
            return invalid_link(&site.newsletter);
        };
        let masked = mask_address(holder.key.as_str());
        let now = self.clock.now();
        let outcome = self.with_ledger(|ledger| {
            let action = match intent {
                Intent::View => LinkAction::Viewed,
                Intent::Unsubscribe => {
                    if ledger.suppress(&holder.key, &Source::OneClick, None, now)? {
                        tracing::info!(address = %masked, "unsubscribed with their link");
                    }
                    LinkAction::Unsubscribed
                }
                Intent::Resubscribe => {
                    if ledger.unsuppress_own(&holder.key)? {
                        tracing::info!(address = %masked, "resubscribed with their link");
                    }
                    LinkAction::Resubscribed
                }
            };
            let standing = match ledger.suppression(&holder.key)? {
                Some(suppression) if suppression.is_own() => Standing::UnsubscribedThemselves,
                Some(_) => Standing::SuppressedByEditor,
                None if holder.on_list() || ledger.is_confirmed_signup(&holder.key)? => {
                    Standing::Receiving
                }
                None => Standing::NotReceiving,
            };
            Ok((action, standing))
        });
        match outcome {
            Ok((action, standing)) => html(
                StatusCode::OK,
                web::unsubscribe_page(&site.newsletter, &masked, standing, action).into_string(),
                NO_STORE,
            ),
            Err(error) => {
                tracing::error!("the ledger failed: {error:#}");
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

pub(super) const NO_STORE: &str = "no-store";
const SHORT_CACHE: &str = "public, max-age=300";
/// For content whose URL changes with its bytes (images named by their hash).
const IMMUTABLE_CACHE: &str = "public, max-age=31536000, immutable";

pub(super) fn html(status: StatusCode, body: String, cache: &'static str) -> Response {
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

pub(super) fn unavailable(newsletter: &Newsletter, depth: Depth) -> Response {
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
pub(super) async fn blocking(
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

fn raw_token(uri: &Uri) -> String {
    super::directory::token_in_path(uri.path()).to_string()
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
            tracing::error!("the ledger failed: {error:#}");
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

/// A local image an issue shows, under the name that carries its hash: the bytes behind a
/// name never change, so caches may keep them for a year.
async fn image(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    blocking(shared, move |shared| match shared.image(&name) {
        Some((format, bytes)) => (
            [
                (header::CONTENT_TYPE, format.content_type()),
                (header::CACHE_CONTROL, IMMUTABLE_CACHE),
            ],
            bytes,
        )
            .into_response(),
        None => plain_not_found(),
    })
    .await
}

/// Anything else. Under `/unsubscribe/` it is a broken link, answered like every other bad
/// token, so the shape of a path reveals nothing either.
async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    if uri.path().starts_with("/unsubscribe/") {
        blocking(shared, |shared| invalid_link(&shared.site().newsletter)).await
    } else if uri.path().starts_with("/confirm/") {
        blocking(shared, |shared| {
            let page =
                web::confirm_page(&shared.site().newsletter, "", web::ConfirmStanding::Invalid);
            html(StatusCode::NOT_FOUND, page.into_string(), NO_STORE)
        })
        .await
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

pub(super) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/", get(archive_index))
        .route("/style.css", get(stylesheet))
        .route("/feed.xml", get(feed))
        .route("/images/{name}", get(image))
        .route("/issues/{id}", get(issue_without_slash))
        .route("/issues/{id}/", get(issue_page))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe_post),
        )
        .route(
            "/subscribe",
            get(super::signup::subscribe_page).post(super::signup::subscribe_post),
        )
        .route(
            "/confirm/{token}",
            get(super::signup::confirm_page).post(super::signup::confirm_post),
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
