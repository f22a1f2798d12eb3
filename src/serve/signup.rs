//! The sign-up form (`/subscribe`) and its confirmation links (`/confirm/<token>`): double
//! opt-in, with the consent recorded.
//!
//! What keeps the form from telling anyone who reads the newsletter: a valid address always
//! gets the same page, at once, and everything that depends on who it is (is it new, pending,
//! subscribed, suppressed; the confirmation email) happens after the answer, in the
//! background, so neither the page nor the time it takes says anything. What keeps it from
//! being turned against someone's inbox: the per-IP rate limit every route has, a honeypot
//! field people leave empty, and at most `ledger::MAX_MAILS` confirmation emails to an
//! address a day. A GET never changes anything: mail scanners follow links, so the link in
//! the email leads to a page with one button.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::directory::{Listing, mask_address};
use super::limit::client_address;
use super::routes::{NO_STORE, blocking, html, unavailable};
use super::site::Site;
use super::{Shared, lock};
use crate::delivery::transport::{Attempt, Envelope, Transport};
use crate::ledger::{Confirmation, Consent, SignupRequest};
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::text::OneLine;
use crate::render::web::{self, ConfirmStanding, Depth, HONEYPOT_FIELD, SignupForm};
use crate::secret::ConfirmationError;

/// The longest name the form takes: a name, not an essay.
const MAX_NAME_CHARS: usize = 100;
/// How much of a user agent is kept with the consent.
const MAX_AGENT_CHARS: usize = 300;

/// The form as it was posted.
#[derive(Debug, Default, PartialEq, Eq)]
struct Posted {
    email: String,
    name: String,
    honeypot: String,
}

impl Posted {
    fn parse(body: &[u8]) -> Posted {
        let mut posted = Posted::default();
        for (key, value) in url::form_urlencoded::parse(body) {
            match key.as_ref() {
                "email" => posted.email = value.trim().to_string(),
                "name" => posted.name = value.trim().to_string(),
                field if field == HONEYPOT_FIELD => posted.honeypot = value.into_owned(),
                _ => {}
            }
        }
        posted
    }

    /// The address and name, or what is wrong with them, as the form shows it.
    fn validate(&self) -> Result<(EmailAddress, Option<OneLine>), String> {
        if self.email.is_empty() {
            return Err("Enter your email address.".into());
        }
        // U+FFFD is what the form's decoding makes of bytes that are not UTF-8: no mailbox
        // has that name.
        let email = EmailAddress::parse(&self.email)
            .ok()
            .filter(|email| email.as_str().len() <= 254 && !email.as_str().contains('\u{FFFD}'))
            .ok_or_else(|| {
                format!(
                    "“{}” is not an email address; check it for typos.",
                    self.email
                )
            })?;
        let name = match self.name.as_str() {
            "" => None,
            name if name.chars().count() > MAX_NAME_CHARS => {
                return Err(format!(
                    "The name is too long: {MAX_NAME_CHARS} characters at most."
                ));
            }
            name => Some(OneLine::parse(name).map_err(|error| format!("The name {error}."))?),
        };
        Ok((email, name))
    }
}

/// Who asked, as the consent record keeps it.
fn consent(shared: &Shared, peer: SocketAddr, headers: &HeaderMap) -> Consent {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| {
            agent
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_AGENT_CHARS)
                .collect()
        });
    Consent {
        at: shared.clock.now(),
        ip: Some(client_address(peer, headers).to_string()),
        agent,
    }
}

impl Shared {
    /// Why sign-ups are closed, as a page, if they are: without `site_url` there is no
    /// address to put in the link, and without a usable relay setting no way to send it.
    fn closed(&self, site: &Site) -> Option<Response> {
        let (status, why) = if site.newsletter.site_url.is_none() {
            (
                StatusCode::NOT_FOUND,
                "This newsletter does not take sign-ups here.",
            )
        } else if self.destination.is_none() {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-ups are closed for the moment. Please try again later.",
            )
        } else {
            return None;
        };
        let page = web::problem_page(
            &site.newsletter,
            Depth::Root,
            "Sign-ups are closed",
            maud::html! { p { (why) } },
        );
        Some(html(status, page.into_string(), NO_STORE))
    }

    /// How the subscriber list has the address.
    fn listing(&self, site: &Site, key: &AddressKey) -> Listing {
        let token = self.secret.unsubscribe_token(&site.list_key, key);
        site.directory
            .find(&token)
            .map_or(Listing::Absent, |holder| holder.listing)
    }

    /// Records a request and says whether to mail the address a link: only if it is not a
    /// reader already, not kept off the list by the editor, and under its daily limit.
    fn record_request(
        &self,
        site: &Site,
        email: &EmailAddress,
        name: Option<&OneLine>,
        consent: Consent,
    ) -> anyhow::Result<bool> {
        let key = email.key();
        let listing = self.listing(site, &key);
        if listing == Listing::Unsubscribed {
            return Ok(false);
        }
        let now = self.clock.now();
        self.with_ledger(|ledger| {
            let suppression = ledger.suppression(&key)?;
            if suppression.as_ref().is_some_and(|s| !s.is_own()) {
                return Ok(false);
            }
            let subscribed = suppression.is_none()
                && (listing == Listing::Active || ledger.is_confirmed_signup(&key)?);
            if subscribed {
                return Ok(false);
            }
            let request = SignupRequest {
                email: &key,
                address: email.as_str(),
                name: name.map(OneLine::as_str),
                consent,
            };
            ledger.request_signup(&request, now)
        })
    }

    /// Mails the confirmation link through the configured destination (DKIM-signed there
    /// when a key is set, like every message that leaves).
    async fn send_confirmation(&self, site: &Site, email: &EmailAddress, name: Option<&str>) {
        let (Some(destination), Some(site_url)) = (&self.destination, &site.newsletter.site_url)
        else {
            return;
        };
        let now = self.clock.now();
        let token = self.secret.confirmation_token(&site.list_key, email, now);
        let link = site_url.join(&format!("confirm/{token}"));
        let message = crate::message::confirm::confirmation_message(
            &site.newsletter,
            email,
            name,
            &link,
            &now.to_rfc2822(),
        );
        let masked = mask_address(email.key().as_str());
        let transport = match Transport::open(
            destination,
            &self.state,
            &site.newsletter,
            "confirmations",
        ) {
            Ok(transport) => transport,
            Err(error) => {
                tracing::error!(address = %masked, "cannot send a confirmation email: {error:#}");
                return;
            }
        };
        let envelope = Envelope::new(&site.newsletter.from.address, email);
        match transport.send(&envelope, &message).await {
            Attempt::Delivered(reply) => {
                tracing::info!(address = %masked, "confirmation email sent: {}", crate::units::printable(&reply));
            }
            Attempt::Transient(reply)
            | Attempt::Permanent(reply)
            | Attempt::Refused(reply)
            | Attempt::Uncertain(reply)
            | Attempt::Unsendable(reply)
            | Attempt::Fatal(reply) => {
                tracing::warn!(address = %masked, "the confirmation email was not accepted: {}", crate::units::printable(&reply));
            }
        }
        transport.shutdown().await;
    }

    /// A confirmation link's page, after doing what a POST asks.
    fn confirm(&self, token: &str, consent: Option<Consent>) -> Response {
        let site = self.site();
        let now = self.clock.now();
        let confirmed = match self.secret.verify_confirmation(&site.list_key, token, now) {
            Ok(confirmed) => confirmed,
            Err(error) => {
                let (status, standing) = match error {
                    ConfirmationError::Expired => (StatusCode::GONE, ConfirmStanding::Expired),
                    ConfirmationError::Invalid => (StatusCode::NOT_FOUND, ConfirmStanding::Invalid),
                };
                let page = web::confirm_page(&site.newsletter, "", standing);
                return html(status, page.into_string(), NO_STORE);
            }
        };
        let key = confirmed.address.key();
        let masked = mask_address(key.as_str());
        let page = |standing| {
            html(
                StatusCode::OK,
                web::confirm_page(&site.newsletter, &masked, standing).into_string(),
                NO_STORE,
            )
        };
        let Some(consent) = consent else {
            return page(ConfirmStanding::Ask);
        };
        let listing = self.listing(&site, &key);
        if listing == Listing::Unsubscribed {
            return page(ConfirmStanding::Refused);
        }
        let outcome = self.with_ledger(|ledger| {
            ledger.confirm_signup(&key, confirmed.address.as_str(), confirmed.issued, &consent)
        });
        match outcome {
            Ok(Confirmation::Confirmed | Confirmation::AlreadyConfirmed) => {
                tracing::info!(address = %masked, "sign-up confirmed");
                lock(&self.late).add(&self.secret, &site.list_key, key, listing);
                page(ConfirmStanding::Confirmed)
            }
            Ok(Confirmation::Suppressed) => page(ConfirmStanding::Refused),
            Ok(Confirmation::UnsubscribedSince) => page(ConfirmStanding::Superseded),
            Err(error) => {
                tracing::error!("the ledger failed: {error:#}");
                unavailable(&site.newsletter, Depth::Confirm)
            }
        }
    }
}

pub(super) async fn subscribe_page(State(shared): State<Arc<Shared>>) -> Response {
    blocking(shared, |shared| {
        let site = shared.site();
        if let Some(closed) = shared.closed(&site) {
            return closed;
        }
        let page = web::subscribe_page(&site.newsletter, &SignupForm::default());
        html(StatusCode::OK, page.into_string(), NO_STORE)
    })
    .await
}

pub(super) async fn subscribe_post(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let posted = Posted::parse(&body);
    let consent = consent(&shared, peer, &headers);
    let background = shared.clone();
    blocking(shared, move |shared| {
        let site = shared.site();
        if let Some(closed) = shared.closed(&site) {
            return closed;
        }
        let (email, name) = match posted.validate() {
            Ok(valid) => valid,
            Err(problem) => {
                let form = SignupForm {
                    email: &posted.email,
                    name: &posted.name,
                    problem: Some(&problem),
                };
                let page = web::subscribe_page(&site.newsletter, &form);
                return html(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    page.into_string(),
                    NO_STORE,
                );
            }
        };
        if posted.honeypot.is_empty() {
            let site = site.clone();
            let email = email.clone();
            tokio::spawn(async move {
                let recorded = {
                    let (shared, site, email) = (background.clone(), site.clone(), email.clone());
                    tokio::task::spawn_blocking(move || {
                        shared
                            .record_request(&site, &email, name.as_ref(), consent)
                            .map(|due| due.then_some(name))
                    })
                    .await
                };
                match recorded {
                    Ok(Ok(Some(name))) => {
                        background
                            .send_confirmation(&site, &email, name.as_ref().map(OneLine::as_str))
                            .await;
                    }
                    Ok(Ok(None)) => {
                        tracing::debug!("sign-up needs no confirmation email");
                    }
                    Ok(Err(error)) => tracing::error!("the ledger failed: {error:#}"),
                    Err(error) => tracing::error!("a sign-up failed: {error}"),
                }
            });
        } else {
            tracing::info!("a sign-up with the honeypot field filled in was ignored");
        }
        let page = web::check_inbox_page(&site.newsletter, email.as_str());
        html(StatusCode::OK, page.into_string(), NO_STORE)
    })
    .await
}

/// The token in a confirmation URL, exactly as sent.
fn raw_token(uri: &Uri) -> String {
    uri.path()
        .strip_prefix("/confirm/")
        .unwrap_or_default()
        .to_string()
}

pub(super) async fn confirm_page(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let token = raw_token(&uri);
    blocking(shared, move |shared| shared.confirm(&token, None)).await
}

pub(super) async fn confirm_post(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let token = raw_token(&uri);
    let consent = consent(&shared, peer, &headers);
    blocking(shared, move |shared| shared.confirm(&token, Some(consent))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_read_and_checked_like_the_list() {
        let posted = Posted::parse(b"email=+Ada%40Example.com+&name=Ada+O%27Hara&website=");
        assert_eq!(posted.email, "Ada@Example.com");
        let (email, name) = posted.validate().unwrap();
        assert_eq!(
            (email.as_str(), name.unwrap().as_str()),
            ("Ada@Example.com", "Ada O'Hara")
        );
        let problem = |body: &[u8]| Posted::parse(body).validate().unwrap_err();
        assert_eq!(problem(b"email="), "Enter your email address.");
        assert_eq!(
            problem(b"email=ada%40"),
            "“ada@” is not an email address; check it for typos."
        );
        assert!(
            problem(b"email=a%40example.com&name=A%0D%0ABcc")
                .starts_with("The name must be one line")
        );
        assert!(
            problem(&format!("email=a%40example.com&name={}", "x".repeat(101)).into_bytes())
                .starts_with("The name is too long")
        );
        assert_eq!(
            Posted::parse(b"email=a%40example.com&website=http%3A%2F%2Fspam").honeypot,
            "http://spam"
        );
    }
}
