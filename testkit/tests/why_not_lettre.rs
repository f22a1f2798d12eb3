//! Why letterpress has its own SMTP client (`src/delivery/smtp.rs`) rather than lettre's
//! `AsyncSmtpTransport`: each test pins one thing lettre 0.11 does, set up the way letterpress
//! used it (async, tokio, pooled), and names the design choice it justifies. If a lettre
//! upgrade makes one of them fail, that reason has gone.
//!
//! Everything else the server does is tested with letterpress's own client, in letterpress's
//! `tests/it/testkit_server.rs`.

use std::time::{Duration, Instant};

use letterpress_testkit::{Behaviour, IncidentKind, SmtpServer, Stage, Target};
use lettre::transport::smtp::{Error, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

const WAIT: Duration = Duration::from_secs(5);

/// A pooled transport with lettre's own timeout set, as letterpress had it. (`from_url` needs
/// a TLS feature, which these tests do without.)
fn transport(port: u16, pool_size: u32) -> Transport {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_millis(200)))
        .pool_config(PoolConfig::new().max_size(pool_size))
        .build()
}

fn message(to: &str, subject: &str) -> Message {
    Message::builder()
        .from("news@example.com".parse().expect("valid sender"))
        .to(to.parse().expect("valid recipient"))
        .subject(subject)
        .body(format!("Hello {to}\r\n"))
        .expect("valid message")
}

/// `None` when the send was still pending after `limit`.
async fn send_within(
    transport: &Transport,
    message: Message,
    limit: Duration,
) -> Option<Result<(), Error>> {
    tokio::time::timeout(limit, transport.send(message))
        .await
        .ok()
        .map(|result| result.map(drop))
}

async fn send_ok(transport: &Transport, message: Message) {
    match send_within(transport, message, WAIT).await {
        Some(Ok(())) => {}
        Some(Err(error)) => panic!("send failed: {error} ({error:?})"),
        None => panic!("the send hung"),
    }
}

async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Justifies `Session::send` writing MAIL, RCPT and DATA in one go when the relay offers
/// PIPELINING: lettre waits for each reply, four round trips per message where two do.
#[tokio::test]
async fn lettre_never_pipelines_even_when_the_server_offers_it() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mailer = transport(server.port(), 1);
    for i in 0..3 {
        send_ok(&mailer, message("a@example.com", &format!("{i}"))).await;
    }
    let transcript = server.transcript().join("\n");
    assert!(transcript.contains("PIPELINING"), "{transcript}");
    let commands = server.commands();
    assert_eq!(commands.messages_completed, 3);
    assert_eq!(commands.pipelined, 0, "{transcript}");
}

/// Justifies `set_nodelay(true)` in `Session::open`: with Nagle on, the last small write of
/// each message (lettre writes `\r\n.\r\n` on its own) waits for the relay's delayed ACK,
/// 40 ms per message on Linux.
#[tokio::test]
async fn lettre_leaves_nagle_on() {
    let server = SmtpServer::start(Behaviour::new()).await;
    // The pool keeps the connection open, so its socket can be inspected.
    let mailer = transport(server.port(), 1);
    send_ok(&mailer, message("a@example.com", "nagle")).await;
    if cfg!(target_os = "linux") {
        assert_eq!(server.client_nodelay(1), Some(false));
    }
}

/// Justifies bounding every `Session::open` and `Session::send` with a timeout from connect
/// to the last reply (`SmtpRelay`): lettre's `.timeout(..)` bounds the TCP connect only, and
/// a relay that accepts the connection and then goes quiet hangs its send for good.
#[tokio::test]
async fn a_stalled_server_hangs_lettre_despite_its_timeout_setting() {
    for stage in [Stage::Greeting, Stage::Mail, Stage::DataEnd] {
        let server =
            SmtpServer::start(Behaviour::new().stall(stage, Target::Any, Duration::from_secs(60)))
                .await;
        let mailer = transport(server.port(), 1);
        let outcome = send_within(
            &mailer,
            message("a@example.com", "stalled"),
            Duration::from_secs(1),
        )
        .await;
        assert!(outcome.is_none(), "{stage:?}: lettre gave up by itself");
        assert!(matches!(
            server.incidents()[0].kind,
            IncidentKind::Stalled { stage: s, .. } if s == stage
        ));
    }
}

/// Justifies `SmtpRelay` dropping a session that timed out or broke instead of putting it
/// back: lettre returns a connection to its pool even when the send using it was cancelled
/// half-way (by a timeout around `send`). Its replies then arrive one command late, and the
/// next message on it gets a reply meant for another command.
#[tokio::test]
async fn after_a_cancelled_send_lettre_s_pool_reuses_a_desynchronised_connection() {
    let server = SmtpServer::start(Behaviour::new().stall_first(
        Stage::Mail,
        Target::Any,
        Duration::from_millis(200),
        1,
    ))
    .await;
    let mailer = transport(server.port(), 1);

    // Cancel the send once the server has started stalling on it: what a timeout around
    // `send` does, minus the timing guesswork.
    let cancelled = {
        let mailer = mailer.clone();
        tokio::spawn(async move { mailer.send(message("a@example.com", "cancelled")).await })
    };
    wait_until(|| {
        server
            .incidents()
            .iter()
            .any(|i| matches!(i.kind, IncidentKind::Stalled { .. }))
    })
    .await;
    cancelled.abort();
    assert!(cancelled.await.expect_err("aborted").is_cancelled());
    // The stall ends and the server answers the abandoned MAIL FROM.
    wait_until(|| server.transcript().iter().any(|l| l == "C1 < 250 2.1.0 OK")).await;

    // NOOP reads the stale MAIL reply, MAIL reads NOOP's, RCPT reads the server's "nested
    // MAIL" complaint: a bogus permanent error for a recipient nobody refused.
    let error = match send_within(&mailer, message("a@example.com", "next"), WAIT).await {
        Some(Err(error)) => error,
        other => panic!("expected lettre's bogus refusal, got {other:?}"),
    };
    assert!(error.is_permanent());
    assert_eq!(
        error.to_string(),
        "permanent error (503): 5.5.1 Error: nested MAIL command"
    );
    assert_eq!(server.connections_opened(), 1);
}
