//! Each misbehaviour, and exactly how lettre's `AsyncSmtpTransport` reports
//! it. These tests pin lettre's behaviour as much as the server's: if a
//! lettre upgrade changes how an error is classified, they say so.

mod common;

use std::error::Error as _;
use std::io;
use std::time::{Duration, Instant};

use common::{
    class, io_level, message, permanent, send_err, send_ok, send_within, transient, transport,
    transport_with_pool,
};
use letterpress_testkit::{
    Behaviour, BlackholePort, DropStyle, IncidentKind, RefusingPort, Reply, SmtpServer, Stage,
    Target,
};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

const WAIT: Duration = Duration::from_secs(5);

/// The io::Error at the bottom of a lettre error, if any.
fn io_kind(error: &lettre::transport::smtp::Error) -> Option<io::ErrorKind> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            return Some(io_error.kind());
        }
        source = cause.source();
    }
    None
}

#[tokio::test]
async fn a_5xx_to_rcpt_is_a_permanent_error_and_other_recipients_still_go_through() {
    let server =
        SmtpServer::start(Behaviour::new().rcpt_reply("bounce@example.com", Reply::user_unknown()))
            .await;
    let mailer = transport(server.port());

    let error = send_err(&mailer, message("bounce@example.com", "bounce")).await;
    assert_eq!(class(&error), permanent("550"));
    assert_eq!(
        error.to_string(),
        "permanent error (550): 5.1.1 User unknown"
    );
    send_ok(&mailer, message("fine@example.com", "fine")).await;

    let incidents = server.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0].kind,
        IncidentKind::RcptRefused(Reply::user_unknown())
    );
    assert_eq!(incidents[0].rcpt_to, ["bounce@example.com"]);
    assert_eq!(server.messages()[0].rcpt_to, ["fine@example.com"]);
    // After any negative reply lettre sends QUIT and discards the connection,
    // so the next message needs a new one.
    assert_eq!(server.connections_opened(), 2);
    assert_eq!(server.commands().quit, 1);
}

#[tokio::test]
async fn one_refused_recipient_fails_the_whole_message() {
    let server =
        SmtpServer::start(Behaviour::new().rcpt_reply("bounce@example.com", Reply::user_unknown()))
            .await;
    let mailer = transport(server.port());
    let message = Message::builder()
        .from(common::FROM.parse().expect("sender"))
        .to("fine@example.com".parse().expect("to"))
        .to("bounce@example.com".parse().expect("to"))
        .body("two recipients\r\n".to_owned())
        .expect("message");

    let error = send_err(&mailer, message).await;
    assert_eq!(class(&error), permanent("550"));
    // lettre gives up at the first refused RCPT: no partial delivery.
    assert_eq!(server.message_count(), 0);
    assert_eq!(server.commands().data, 0);
}

#[tokio::test]
async fn a_4xx_to_rcpt_for_the_first_k_attempts_is_transient_then_accepted() {
    let server = SmtpServer::start(
        Behaviour::new()
            .rcpt_reply_first("busy@example.com", Reply::ses_throttling(), 2)
            .rcpt_reply("grey@example.com", Reply::try_later()),
    )
    .await;
    let mailer = transport(server.port());

    for attempt in 1..=2 {
        let error = send_err(&mailer, message("busy@example.com", "throttled")).await;
        assert_eq!(class(&error), transient("454"), "attempt {attempt}");
        assert_eq!(
            error.to_string(),
            "transient error (454): Throttling failure: Maximum sending rate exceeded."
        );
    }
    send_ok(&mailer, message("busy@example.com", "third time lucky")).await;

    let error = send_err(&mailer, message("grey@example.com", "greylisted")).await;
    assert_eq!(class(&error), transient("451"));
    assert_eq!(server.message_count(), 1);
    assert_eq!(server.commands().rcpt, 4);
}

#[tokio::test]
async fn a_reply_to_the_end_of_data_is_classified_like_any_other() {
    let server = SmtpServer::start(
        Behaviour::new()
            .data_reply("spam@example.com", (554, "5.7.1 Message rejected as spam"))
            .data_reply_first("later@example.com", (451, "4.3.0 Temporary failure"), 1),
    )
    .await;
    let mailer = transport(server.port());

    let error = send_err(&mailer, message("spam@example.com", "spam")).await;
    assert_eq!(class(&error), permanent("554"));
    let error = send_err(&mailer, message("later@example.com", "later")).await;
    assert_eq!(class(&error), transient("451"));
    send_ok(&mailer, message("later@example.com", "retried")).await;

    let kinds: Vec<_> = server.incidents().into_iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        [
            IncidentKind::DataRefused(Reply::new(554, "5.7.1 Message rejected as spam")),
            IncidentKind::DataRefused(Reply::new(451, "4.3.0 Temporary failure")),
        ]
    );
    // Refused messages are kept, whole, in the incident.
    assert!(
        server.incidents()[0]
            .data
            .ends_with(b"Hello spam@example.com\r\n\r\n")
    );
    assert_eq!(server.message_count(), 1);
}

#[tokio::test]
async fn a_server_that_shuts_down_gives_421_which_is_transient() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after(2)).await;
    let mailer = transport(server.port());
    send_ok(&mailer, message("a@example.com", "1")).await;
    send_ok(&mailer, message("a@example.com", "2")).await;

    // The pooled connection's NOOP check gets the 421, lettre quietly opens a
    // new connection, and that one's greeting is the 421 lettre reports.
    let error = send_err(&mailer, message("a@example.com", "3")).await;
    assert_eq!(class(&error), transient("421"));
    assert_eq!(
        error.to_string(),
        "transient error (421): 4.3.2 Service shutting down"
    );
    let error = send_err(&mailer, message("a@example.com", "4")).await;
    assert_eq!(class(&error), transient("421"));
    assert_eq!(server.message_count(), 2);
    assert!(
        server
            .incidents()
            .iter()
            .all(|i| i.kind == IncidentKind::ShutDown)
    );
}

#[tokio::test]
async fn a_421_on_a_pooled_connection_is_absorbed_by_lettre_s_pool() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after_first(2, 1)).await;
    // One pooled connection so that the 421 lands on it deterministically.
    let mailer = transport_with_pool(server.port(), PoolConfig::new().max_size(1));
    send_ok(&mailer, message("a@example.com", "1")).await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the pool park it
    send_ok(&mailer, message("a@example.com", "2")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The 421 answers the NOOP that lettre sends before reusing the
    // connection; lettre drops it and connects again without telling anyone.
    send_ok(&mailer, message("a@example.com", "3")).await;

    assert_eq!(server.message_count(), 3);
    assert_eq!(server.connections_opened(), 2);
    let transcript = server.transcript().join("\n");
    assert!(
        transcript.contains("C1 > NOOP\nC1 < 421 4.3.2 Service shutting down"),
        "{transcript}"
    );
    assert_eq!(server.incidents()[0].kind, IncidentKind::ShutDown);
}

#[tokio::test]
async fn a_421_greeting_on_a_new_connection_is_reported() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after_first(0, 1)).await;
    let mailer = transport(server.port());
    let error = send_err(&mailer, message("a@example.com", "restarting")).await;
    assert_eq!(class(&error), transient("421"));
    send_ok(&mailer, message("a@example.com", "back up")).await;
}

#[tokio::test]
async fn a_connection_closed_mid_data_is_a_response_error_with_no_status() {
    let server =
        SmtpServer::start(Behaviour::new().drop_in_data_first("flaky@example.com", 1)).await;
    let mailer = transport(server.port());

    let error = send_err(&mailer, message("flaky@example.com", "cut off")).await;
    // End-of-file where the reply should be: lettre calls that a response
    // error, not a network one.
    assert_eq!(
        class(&error),
        common::Class {
            response: true,
            ..io_level()
        }
    );
    assert_eq!(error.to_string(), "response error: incomplete response");
    assert_eq!(io_kind(&error), None);
    send_ok(&mailer, message("flaky@example.com", "retried")).await;

    let incidents = server.incidents();
    assert_eq!(incidents[0].kind, IncidentKind::Dropped(DropStyle::Close));
    assert!(
        incidents[0].data.starts_with(b"From: "),
        "the message had started"
    );
    assert_eq!(server.message_count(), 1);
}

#[tokio::test]
async fn a_connection_reset_mid_data_is_a_network_error_with_no_predicate() {
    let server = SmtpServer::start(Behaviour::new().drop_in_data_with(
        "flaky@example.com",
        DropStyle::Reset,
        Some(1),
    ))
    .await;
    let mailer = transport(server.port());

    let error = send_err(&mailer, message("flaky@example.com", "reset")).await;
    assert_eq!(class(&error), io_level());
    assert!(error.to_string().starts_with("network error: "), "{error}");
    assert_eq!(io_kind(&error), Some(io::ErrorKind::ConnectionReset));
    send_ok(&mailer, message("flaky@example.com", "retried")).await;
    assert_eq!(
        server.incidents()[0].kind,
        IncidentKind::Dropped(DropStyle::Reset)
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error_with_no_predicate() {
    let port = RefusingPort::new();
    let mailer = transport(port.port());
    let error = send_err(&mailer, message("a@example.com", "nobody home")).await;
    assert_eq!(class(&error), io_level());
    assert!(
        error.to_string().starts_with("Connection error: "),
        "{error}"
    );
    assert_eq!(io_kind(&error), Some(io::ErrorKind::ConnectionRefused));
}

#[tokio::test]
async fn a_connect_that_never_completes_is_lettre_s_only_timeout() {
    let port = BlackholePort::new();
    let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port.port())
        .timeout(Some(Duration::from_millis(300)))
        .build();
    let started = Instant::now();
    let error = send_err(&mailer, message("a@example.com", "into the void")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        class(&error),
        common::Class {
            timeout: true,
            ..io_level()
        }
    );
    assert_eq!(error.to_string(), "Connection error: connection timed out");
}

#[tokio::test]
async fn a_stalled_server_hangs_lettre_despite_its_timeout_setting() {
    // lettre's `.timeout(..)` bounds the TCP connect only; reads have no
    // timeout, so the caller must bound sends itself.
    for stage in [Stage::Greeting, Stage::Mail, Stage::DataEnd] {
        let server =
            SmtpServer::start(Behaviour::new().stall(stage, Target::Any, Duration::from_secs(60)))
                .await;
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.port())
            .timeout(Some(Duration::from_millis(200)))
            .build();
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

#[tokio::test]
async fn a_stall_can_be_limited_to_one_recipient_and_a_short_one_is_just_latency() {
    let server = SmtpServer::start(
        Behaviour::new()
            .stall(Stage::Rcpt, "slow@example.com", Duration::from_millis(300))
            .stall(Stage::Data, "hang@example.com", Duration::MAX),
    )
    .await;
    let mailer = transport(server.port());
    let started = Instant::now();
    send_ok(&mailer, message("slow@example.com", "slow")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let hung = send_within(
        &mailer,
        message("hang@example.com", "hang"),
        Duration::from_millis(500),
    )
    .await;
    assert!(hung.is_none());
    send_ok(&mailer, message("other@example.com", "unaffected")).await;
    assert_eq!(server.message_count(), 2);
}

/// Cancels a send once the server has started stalling on it, which is what
/// a `tokio::time::timeout` around `send` does, minus the timing guesswork.
async fn cancel_once_stalled(server: &SmtpServer, mailer: &common::Transport, to: &str) {
    let mailer = mailer.clone();
    let message = message(to, "cancelled");
    let send = tokio::spawn(async move { mailer.send(message).await });
    wait_until(|| {
        server
            .incidents()
            .iter()
            .any(|i| matches!(i.kind, IncidentKind::Stalled { .. }))
    })
    .await;
    send.abort();
    assert!(send.await.expect_err("aborted").is_cancelled());
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

#[tokio::test]
async fn a_timed_out_send_may_still_have_been_delivered() {
    let server = SmtpServer::start(Behaviour::new().stall_first(
        Stage::DataEnd,
        Target::Any,
        Duration::from_millis(300),
        1,
    ))
    .await;
    let mailer = transport(server.port());
    // The caller gives up while the server sits on the complete message...
    cancel_once_stalled(&server, &mailer, "a@example.com").await;
    assert_eq!(server.message_count(), 0);
    // ... which the server then accepts all the same.
    let received = server
        .wait_for_messages(1, WAIT)
        .await
        .expect("delivered anyway");
    assert_eq!(received[0].header("Subject").as_deref(), Some("cancelled"));
}

/// lettre puts a connection back into its pool even when the send using it
/// was cancelled half-way (by a timeout around `send`). Its replies then
/// arrive one command late, and the next message on that pooled connection
/// gets a reply meant for another command. The remedy is to throw the whole
/// transport away after a cancelled send, shown at the end.
#[tokio::test]
async fn after_a_cancelled_send_lettre_s_pool_reuses_a_desynchronised_connection() {
    let server = SmtpServer::start(Behaviour::new().stall_first(
        Stage::Mail,
        Target::Any,
        Duration::from_millis(200),
        1,
    ))
    .await;
    let mailer = transport_with_pool(server.port(), PoolConfig::new().max_size(1));
    cancel_once_stalled(&server, &mailer, "a@example.com").await;
    // The stall ends and the server answers the abandoned MAIL FROM.
    wait_until(|| server.transcript().iter().any(|l| l == "C1 < 250 2.1.0 OK")).await;

    // NOOP reads the stale MAIL reply, MAIL reads NOOP's, RCPT reads the
    // server's "nested MAIL" complaint: a bogus permanent error.
    let error = send_err(&mailer, message("a@example.com", "next")).await;
    assert_eq!(class(&error), permanent("503"));
    assert_eq!(
        error.to_string(),
        "permanent error (503): 5.5.1 Error: nested MAIL command"
    );

    let fresh = transport(server.port());
    send_ok(&fresh, message("a@example.com", "fresh transport")).await;
}

#[tokio::test]
async fn authentication_failures_are_permanent_and_a_missing_mechanism_is_a_client_error() {
    let server = SmtpServer::start(Behaviour::new().auth("user", "right")).await;
    let wrong = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port())
        .credentials(Credentials::new("user".into(), "wrong".into()))
        .build();
    let error = send_err(&wrong, message("a@example.com", "x")).await;
    assert_eq!(class(&error), permanent("535"));

    let anonymous = transport(server.port());
    let error = send_err(&anonymous, message("a@example.com", "x")).await;
    assert_eq!(class(&error), permanent("530"));

    let no_auth_server = SmtpServer::start(Behaviour::new()).await;
    let with_credentials = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(no_auth_server.port())
        .credentials(Credentials::new("user".into(), "right".into()))
        .build();
    let error = send_err(&with_credentials, message("a@example.com", "x")).await;
    assert_eq!(
        class(&error),
        common::Class {
            client: true,
            ..io_level()
        }
    );
    assert_eq!(
        error.to_string(),
        "internal client error: No compatible authentication mechanism was found"
    );
}

#[tokio::test]
async fn misbehaviours_combine() {
    let server = SmtpServer::start(
        Behaviour::new()
            .rcpt_reply("bounce@example.com", Reply::user_unknown())
            .rcpt_reply_first("busy@example.com", Reply::ses_throttling(), 1)
            .data_reply_first("later@example.com", Reply::try_later(), 1)
            .drop_in_data_first("flaky@example.com", 1)
            .reply_delay(Duration::from_millis(1)),
    )
    .await;
    let mailer = transport(server.port());
    for (to, first, retry_ok) in [
        ("bounce@example.com", permanent("550"), false),
        ("busy@example.com", transient("454"), true),
        ("later@example.com", transient("451"), true),
    ] {
        assert_eq!(
            class(&send_err(&mailer, message(to, "1")).await),
            first,
            "{to}"
        );
        if retry_ok {
            send_ok(&mailer, message(to, "2")).await;
        }
    }
    assert!(
        send_err(&mailer, message("flaky@example.com", "1"))
            .await
            .is_response()
    );
    send_ok(&mailer, message("flaky@example.com", "2")).await;
    assert_eq!(server.message_count(), 3);
    assert_eq!(server.incidents().len(), 4);
}
