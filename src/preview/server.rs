//! The preview over HTTP, for a browser on this machine: the page, its state as JSON, the
//! email's parts each on a route of its own, and a seam for local images.
//!
//! Local, but still careful: only requests whose `Host` is `localhost` or an IP address are
//! answered (a web page elsewhere that points its own name at 127.0.0.1, DNS rebinding,
//! gets a 403 and cannot read the reader's address or link), the page's
//! Content-Security-Policy allows only its own script, and the email's allows no script at
//! all. It is axum's plain server rather than `serve`'s hardened accept loop: one editor's
//! browser on loopback needs no rate limits, and the page polls on kept-alive connections.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use super::{Preview, Snapshot, images, page};

/// The page: its own script, style and frames, from this server only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The email, shown as a mail client would: its inline styles and `<style>`, images from
/// anywhere (the articles' own, and local ones from here), no script; framed only by the page.
const EMAIL_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data: 'self'; font-src https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// A bound preview server, ready to run.
pub struct PreviewServer {
    listener: TcpListener,
    router: Router,
}

impl PreviewServer {
    pub async fn bind(preview: Arc<Preview>, listen: SocketAddr) -> anyhow::Result<PreviewServer> {
        use anyhow::Context as _;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(PreviewServer {
            listener,
            router: router(preview),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets the requests in flight finish (each is
    /// a file read at most).
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        if let Err(error) = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("the preview server failed: {error}");
        }
    }
}

fn router(preview: Arc<Preview>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/state.json", get(state))
        .route("/email.html", get(email_html))
        .route("/email-dark.html", get(email_dark_html))
        .route("/email.txt", get(email_text))
        .route("/preview.js", get(script))
        .route("/preview.css", get(style))
        .route("/images/{file}", get(image))
        .fallback(not_found)
        .with_state(preview)
        .layer(middleware::from_fn(only_local_names))
}

/// Whether a `Host` header names this machine in a way no other site can: `localhost` (and
/// its subdomains, which browsers resolve to loopback themselves), or an IP address. A
/// rebinding attack needs a name of the attacker's, so any other name is refused.
fn is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[::1]:4000`
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, _)) => return address.parse::<IpAddr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok()
}

async fn only_local_names(request: Request, next: Next) -> Response {
    // Every name the request gives must be local: each `Host` header (RFC 9112 allows one;
    // a proxy may pass on two) and the authority of an absolute-form target.
    let mut names: Vec<String> = request
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .collect();
    if names.is_empty() {
        names.push(String::new());
    }
    if let Some(authority) = request.uri().authority() {
        names.push(authority.as_str().to_string());
    }
    if let Some(host) = names.into_iter().find(|name| !is_local_name(name)) {
        let mut refused = (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "This preview answers only to localhost or an IP address, not to `{}`.\n",
                host.escape_debug()
            ),
        )
            .into_response();
        with_headers(&mut refused, PAGE_POLICY);
        return refused;
    }
    next.run(request).await
}

/// The headers every answer carries: its policy, nothing cached (every answer is of the
/// files as they are now), no sniffing, no referrer.
fn with_headers(response: &mut Response, policy: &'static str) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let framing = if policy == EMAIL_POLICY {
        "SAMEORIGIN"
    } else {
        "DENY"
    };
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static(framing));
}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl IntoResponse,
    policy: &'static str,
) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    with_headers(&mut response, policy);
    response
}

/// The snapshot after looking at the files again, off the async workers (it reads files and
/// may render).
async fn refreshed(preview: Arc<Preview>) -> Arc<Snapshot> {
    match tokio::task::spawn_blocking({
        let preview = preview.clone();
        move || preview.refresh()
    })
    .await
    {
        Ok(snapshot) => snapshot,
        Err(error) => {
            tracing::error!("looking at the files failed: {error}");
            preview.snapshot()
        }
    }
}

async fn index(State(preview): State<Arc<Preview>>) -> Response {
    let snapshot = refreshed(preview).await;
    answer(
        StatusCode::OK,
        "text/html; charset=utf-8",
        page::page(&snapshot).into_string(),
        PAGE_POLICY,
    )
}

#[derive(Deserialize)]
struct Since {
    since: Option<u64>,
}

/// What the page's script reads: the snapshot, with what the page shows of it worked out.
#[derive(Serialize)]
struct StateView<'a> {
    version: u64,
    issue_file: Option<&'a str>,
    problems: &'a [super::Problem],
    shown: Option<&'a super::Shown>,
    shown_version: u64,
    stale: bool,
    summary: String,
}

/// The state as JSON; `204 No Content` when it is still the version the page has.
async fn state(State(preview): State<Arc<Preview>>, Query(since): Query<Since>) -> Response {
    let snapshot = refreshed(preview).await;
    if since.since == Some(snapshot.version) {
        let mut unchanged = StatusCode::NO_CONTENT.into_response();
        with_headers(&mut unchanged, PAGE_POLICY);
        return unchanged;
    }
    let view = StateView {
        version: snapshot.version,
        issue_file: snapshot.issue_file.as_deref(),
        problems: &snapshot.problems,
        shown: snapshot.shown.as_deref(),
        shown_version: snapshot.shown_version,
        stale: snapshot.is_stale(),
        summary: page::summary(&snapshot),
    };
    match serde_json::to_string(&view) {
        Ok(json) => answer(StatusCode::OK, "application/json", json, PAGE_POLICY),
        Err(error) => {
            tracing::error!("cannot write the state: {error}");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "cannot write the state\n",
                PAGE_POLICY,
            )
        }
    }
}

/// A part of the last good render, or a 404 saying why there is none.
async fn part(
    preview: Arc<Preview>,
    content_type: &'static str,
    pick: fn(&super::Shown) -> &str,
) -> Response {
    let snapshot = refreshed(preview).await;
    match snapshot.shown.as_deref() {
        Some(shown) => answer(
            StatusCode::OK,
            content_type,
            pick(shown).to_string(),
            EMAIL_POLICY,
        ),
        None => answer(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "Nothing rendered yet: the banner on the preview page says why.\n",
            EMAIL_POLICY,
        ),
    }
}

/// The HTML part, byte for byte as the reader gets it.
async fn email_html(State(preview): State<Arc<Preview>>) -> Response {
    part(preview, "text/html; charset=utf-8", |shown| &shown.html).await
}

async fn email_dark_html(State(preview): State<Arc<Preview>>) -> Response {
    part(preview, "text/html; charset=utf-8", |shown| {
        &shown.dark_html
    })
    .await
}

async fn email_text(State(preview): State<Arc<Preview>>) -> Response {
    part(preview, "text/plain; charset=utf-8", |shown| &shown.text).await
}

async fn script() -> Response {
    answer(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        page::SCRIPT,
        PAGE_POLICY,
    )
}

async fn style() -> Response {
    answer(
        StatusCode::OK,
        "text/css; charset=utf-8",
        page::STYLE,
        PAGE_POLICY,
    )
}

/// A local image the email shows, from the workspace (`images::find`).
async fn image(State(preview): State<Arc<Preview>>, Path(file): Path<String>) -> Response {
    let found = tokio::task::spawn_blocking(move || images::find(preview.workspace(), &file))
        .await
        .ok()
        .flatten();
    match found {
        Some(image) => answer(
            StatusCode::OK,
            image.content_type,
            image.bytes,
            EMAIL_POLICY,
        ),
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "Not found\n",
        PAGE_POLICY,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_localhost_and_ip_addresses_are_names_of_this_machine() {
        for local in [
            "localhost",
            "localhost:4000",
            "LOCALHOST.:4000",
            "app.localhost:4000",
            "127.0.0.1:4000",
            "[::1]:4000",
            "192.168.1.20:4000",
        ] {
            assert!(is_local_name(local), "{local}");
        }
        for other in [
            "",
            "evil.example",
            "evil.example:4000",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4000",
            "[::1",
        ] {
            assert!(!is_local_name(other), "{other}");
        }
    }
}
