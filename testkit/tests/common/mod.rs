//! Shared helpers for the testkit's own tests: a lettre client set up the way
//! letterpress uses it (async, tokio, pooled).

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use lettre::transport::smtp::{Error, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub type Transport = AsyncSmtpTransport<Tokio1Executor>;

pub const FROM: &str = "news@example.com";

/// A pooled transport to `port` on 127.0.0.1 with lettre's own timeout set.
///
/// `from_url` would be the natural constructor, but lettre only offers it
/// with a TLS feature enabled, which these tests do without.
pub fn transport(port: u16) -> Transport {
    transport_with_pool(port, PoolConfig::new().max_size(4))
}

pub fn transport_with_pool(port: u16, pool: PoolConfig) -> Transport {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(2)))
        .pool_config(pool)
        .build()
}

pub fn message(to: &str, subject: &str) -> Message {
    message_with_body(to, subject, format!("Hello {to}\r\n"))
}

pub fn message_with_body(to: &str, subject: &str, body: String) -> Message {
    Message::builder()
        .from(FROM.parse().expect("valid sender"))
        .to(to.parse().expect("valid recipient"))
        .subject(subject)
        .body(body)
        .expect("valid message")
}

/// Sends and bounds the wait, since lettre's async transport has no read
/// timeout of its own: `None` means the send was still pending.
pub async fn send_within(
    transport: &Transport,
    message: Message,
    limit: Duration,
) -> Option<Result<(), Error>> {
    tokio::time::timeout(limit, transport.send(message))
        .await
        .ok()
        .map(|result| result.map(drop))
}

/// Sends, expecting failure, and returns lettre's error.
pub async fn send_err(transport: &Transport, message: Message) -> Error {
    match send_within(transport, message, Duration::from_secs(10)).await {
        Some(Err(error)) => error,
        Some(Ok(())) => panic!("the send succeeded but was expected to fail"),
        None => panic!("the send hung"),
    }
}

pub async fn send_ok(transport: &Transport, message: Message) {
    match send_within(transport, message, Duration::from_secs(10)).await {
        Some(Ok(())) => {}
        Some(Err(error)) => panic!("send failed: {error} ({error:?})"),
        None => panic!("the send hung"),
    }
}

/// The predicates letterpress will classify replies by, in one comparable value.
#[derive(Debug, PartialEq, Eq)]
pub struct Class {
    pub transient: bool,
    pub permanent: bool,
    pub status: Option<String>,
    pub timeout: bool,
    pub response: bool,
    pub client: bool,
}

pub fn class(error: &Error) -> Class {
    Class {
        transient: error.is_transient(),
        permanent: error.is_permanent(),
        status: error.status().map(|code| code.to_string()),
        timeout: error.is_timeout(),
        response: error.is_response(),
        client: error.is_client(),
    }
}

pub fn permanent(code: &str) -> Class {
    Class {
        transient: false,
        permanent: true,
        status: Some(code.to_owned()),
        timeout: false,
        response: false,
        client: false,
    }
}

pub fn transient(code: &str) -> Class {
    Class {
        transient: true,
        permanent: false,
        status: Some(code.to_owned()),
        timeout: false,
        response: false,
        client: false,
    }
}

/// Neither an SMTP reply nor a parse problem: lettre's `Network` and
/// `Connection` kinds, which have no predicate of their own.
pub fn io_level() -> Class {
    Class {
        transient: false,
        permanent: false,
        status: None,
        timeout: false,
        response: false,
        client: false,
    }
}
