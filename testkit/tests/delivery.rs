//! The well-behaved server, driven by a real lettre client: what gets
//! recorded, and the two ways of running the server.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{FROM, message, message_with_body, send_err, send_ok, transport};
use letterpress_testkit::{Behaviour, IncidentKind, Reply, SmtpServer, Target};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, Message, Tokio1Executor};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_pooled_client_delivers_every_message_with_exact_envelope_and_bytes() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mailer = transport(server.port());

    let mut sent = Vec::new();
    for i in 0..6 {
        let message = message(&format!("reader{i}@example.com"), &format!("Issue {i}"));
        sent.push(message.formatted());
        send_ok(&mailer, message).await;
    }

    let received = server
        .wait_for_messages(6, WAIT)
        .await
        .expect("six messages");
    assert_eq!(received.len(), 6);
    for (i, (message, formatted)) in received.iter().zip(&sent).enumerate() {
        assert_eq!(message.mail_from, FROM);
        assert_eq!(message.rcpt_to, vec![format!("reader{i}@example.com")]);
        // lettre always ends DATA with "\r\n.\r\n" even though its formatted
        // message already ends in CRLF, so one empty line is appended.
        let mut expected = formatted.clone();
        expected.extend_from_slice(b"\r\n");
        assert_eq!(message.data, expected, "message {i}");
        assert_eq!(message.header("Subject"), Some(format!("Issue {i}")));
    }
    // lettre hands a connection back to its pool in a spawned task, so a send
    // that follows at once may find the pool empty and open a second one;
    // after that the two are reused.
    let opened = server.connections_opened();
    assert!((1..=2).contains(&opened), "{opened} connections");
    let commands = server.commands();
    assert_eq!((commands.mail, commands.rcpt, commands.data), (6, 6, 6));
    assert_eq!(commands.messages_completed, 6);
    // lettre checks a pooled connection with NOOP before each reuse.
    assert_eq!(commands.noop, 6 - opened);
    assert!(server.incidents().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_are_served_on_several_connections_at_once() {
    // A small delay keeps connections busy so that lettre has to open more.
    let server =
        Arc::new(SmtpServer::start(Behaviour::new().reply_delay(Duration::from_millis(5))).await);
    let mailer = transport(server.port());

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let mailer = mailer.clone();
        tasks.spawn(async move {
            let message = message(&format!("r{i}@example.com"), "concurrent");
            send_ok(&mailer, message).await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("send task");
    }

    let received = server
        .wait_for_messages(12, WAIT)
        .await
        .expect("twelve messages");
    let mut recipients: Vec<String> = received.iter().map(|m| m.rcpt_to[0].clone()).collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("r{i}@example.com")).collect();
    expected.sort();
    assert_eq!(recipients, expected);
    assert!(
        server.connections_opened() >= 2,
        "{} connections",
        server.connections_opened()
    );
}

#[tokio::test]
async fn dot_unstuffing_round_trips_lines_that_start_with_a_dot() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mailer = transport(server.port());
    let body =
        ".first line starts with a dot\r\n.\r\n..\r\n...three\r\nmiddle . dot\r\n.\r\n".to_owned();
    let message = message_with_body("dots@example.com", "Dots", body.clone());
    let mut expected = message.formatted();
    expected.extend_from_slice(b"\r\n");
    send_ok(&mailer, message).await;

    let received = server
        .wait_for_messages(1, WAIT)
        .await
        .expect("one message");
    assert_eq!(received[0].data, expected);
    let mut expected_body = body.into_bytes();
    expected_body.extend_from_slice(b"\r\n");
    assert_eq!(received[0].body(), expected_body.as_slice());
}

#[tokio::test]
async fn envelope_recipients_and_mail_parameters_are_recorded() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mailer = transport(server.port());
    let message = Message::builder()
        .from(FROM.parse::<Mailbox>().expect("sender"))
        .to("to@example.com".parse().expect("to"))
        .cc("cc@example.com".parse().expect("cc"))
        .bcc("bcc@example.com".parse().expect("bcc"))
        .subject("Grüße")
        .body("Schöne Grüße\r\n".to_owned())
        .expect("message");
    send_ok(&mailer, message).await;

    let received = &server
        .wait_for_messages(1, WAIT)
        .await
        .expect("one message")[0];
    assert_eq!(
        received.rcpt_to,
        ["to@example.com", "cc@example.com", "bcc@example.com"]
    );
    assert_eq!(
        received.header("Bcc"),
        None,
        "lettre strips Bcc from the headers"
    );
    // "[127.0.0.1]" without lettre's `hostname` feature, the machine's name with it (the
    // workspace turns it on for letterpress), so only its presence is pinned.
    assert!(
        received
            .helo
            .as_deref()
            .is_some_and(|helo| !helo.is_empty())
    );
    // lettre encodes the non-ASCII body, so no 8BITMIME is needed here.
    assert!(received.data.is_ascii());
    assert!(
        received.mail_params.is_empty(),
        "{:?}",
        received.mail_params
    );
}

#[tokio::test]
async fn auth_plain_and_login_are_accepted_and_recorded() {
    let server = SmtpServer::start(Behaviour::new().auth("ses-user", "s3cret")).await;
    for (mechanism, name) in [(Mechanism::Plain, "PLAIN"), (Mechanism::Login, "LOGIN")] {
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.port())
            .credentials(Credentials::new("ses-user".into(), "s3cret".into()))
            .authentication(vec![mechanism])
            .build();
        send_ok(&mailer, message("a@example.com", name)).await;
    }
    let wrong = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port())
        .credentials(Credentials::new("ses-user".into(), "guess".into()))
        .build();
    send_err(&wrong, message("a@example.com", "wrong")).await;

    let attempts = server.auth_attempts();
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a.mechanism.as_str(),
                a.username.as_str(),
                a.password.as_str(),
                a.accepted,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("PLAIN", "ses-user", "s3cret", true),
            ("LOGIN", "ses-user", "s3cret", true),
            ("PLAIN", "ses-user", "guess", false),
        ]
    );
    let received = server.messages();
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|m| m.authenticated_as.as_deref() == Some("ses-user"))
    );
}

#[tokio::test]
async fn behaviour_changes_at_runtime_and_counters_restart() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mailer = transport(server.port());
    send_ok(&mailer, message("a@example.com", "before")).await;

    server.set_behaviour(Behaviour::new().rcpt_reply_first(Target::Any, Reply::user_unknown(), 1));
    let error = send_err(&mailer, message("a@example.com", "during")).await;
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("550")
    );
    send_ok(&mailer, message("a@example.com", "after the one refusal")).await;

    // Installing the same behaviour again gives it a fresh "first K" count.
    server.set_behaviour(Behaviour::new().rcpt_reply_first(Target::Any, Reply::user_unknown(), 1));
    send_err(&mailer, message("a@example.com", "refused again")).await;
    assert_eq!(server.message_count(), 2);
}

#[tokio::test]
async fn reply_delay_applies_to_every_reply() {
    let delay = Duration::from_millis(40);
    let server = SmtpServer::start(Behaviour::new().reply_delay(delay)).await;
    let mailer = transport(server.port());
    let started = Instant::now();
    send_ok(&mailer, message("a@example.com", "slow")).await;
    // greeting, EHLO, MAIL, RCPT, DATA, end of DATA
    assert!(
        started.elapsed() >= delay * 6,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_rate_turns_excess_messages_away_with_a_throttling_reply() {
    let server = SmtpServer::start(Behaviour::new().max_rate(2, Duration::from_secs(3600))).await;
    let mailer = transport(server.port());
    send_ok(&mailer, message("a@example.com", "1")).await;
    send_ok(&mailer, message("b@example.com", "2")).await;
    let error = send_err(&mailer, message("c@example.com", "3")).await;
    assert!(error.is_transient());
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("454")
    );
    assert_eq!(server.message_count(), 2);
    let incidents = server.incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        incidents[0].kind,
        IncidentKind::RateLimited(Reply::ses_throttling())
    );
    assert_eq!(incidents[0].rcpt_to, ["c@example.com"]);
}

#[tokio::test]
async fn oversized_messages_get_552() {
    let server = SmtpServer::start(Behaviour::new().max_size(200)).await;
    let mailer = transport(server.port());
    let error = send_err(
        &mailer,
        message_with_body("a@example.com", "big", "x".repeat(300)),
    )
    .await;
    assert!(error.is_permanent());
    assert_eq!(
        error.status().map(|c| c.to_string()).as_deref(),
        Some("552")
    );
    assert_eq!(server.incidents()[0].kind, IncidentKind::TooLarge);
}

#[tokio::test]
async fn waiting_for_messages_that_never_come_times_out_with_a_clear_error() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let error = server
        .wait_for_messages(1, Duration::from_millis(50))
        .await
        .expect_err("nothing was sent");
    assert_eq!((error.wanted, error.received), (1, 0));
    assert!(error.to_string().contains("for 1 message(s)"), "{error}");
}

#[tokio::test]
async fn clear_forgets_records_but_keeps_the_behaviour() {
    let server = SmtpServer::start(Behaviour::new().rcpt_reply("x@example.com", (550, "no"))).await;
    let mailer = transport(server.port());
    send_ok(&mailer, message("a@example.com", "kept?")).await;
    send_err(&mailer, message("x@example.com", "refused")).await;
    server.clear();
    assert_eq!(server.message_count(), 0);
    assert!(server.incidents().is_empty());
    assert!(server.transcript().is_empty());
    assert_eq!(server.commands().mail, 0);
    send_err(&mailer, message("x@example.com", "still refused")).await;
    send_ok(&mailer, message("a@example.com", "counted afresh")).await;
    assert_eq!(
        server.wait_for_messages(1, WAIT).await.expect("one").len(),
        1
    );
}

/// The shape of letterpress's end-to-end tests: a plain test, the server on
/// its own thread, and the mailer elsewhere (here a thread standing in for
/// the child process).
#[test]
fn a_background_server_serves_a_plain_test_and_stops_when_dropped() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    assert_eq!(server.url(), format!("smtp://127.0.0.1:{}", server.port()));

    let port = server.port();
    let mailer_thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("client runtime");
        runtime.block_on(async {
            let mailer = transport(port);
            for i in 0..3 {
                send_ok(&mailer, message(&format!("r{i}@example.com"), "bg")).await;
            }
        });
    });

    let received = server
        .wait_for_messages_blocking(3, WAIT)
        .expect("three messages");
    assert_eq!(received.len(), 3);
    mailer_thread.join().expect("mailer thread");

    let addr = server.addr();
    drop(server);
    let refused = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(
        refused.is_err(),
        "the port is closed once the server is dropped"
    );
}

#[tokio::test]
async fn a_background_server_also_works_from_async_code() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let mailer = transport(server.port());
    send_ok(
        &mailer,
        message("a@example.com", "async client, background server"),
    )
    .await;
    server
        .wait_for_messages(1, WAIT)
        .await
        .expect("one message");
    // Dropping joins the server thread; allowed here since it is brief.
    drop(server);
}

#[test]
fn lettre_does_not_pipeline_even_when_pipelining_is_advertised() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // A pooled lettre transport must be built and dropped inside a runtime:
    // its pool spawns a task in both cases and panics outside one.
    runtime.block_on(async {
        let mailer = transport(server.port());
        send_ok(&mailer, message("a@example.com", "p")).await;
    });
    let transcript = server.transcript();
    // Every command is answered before the next one arrives.
    let conversation: Vec<char> = transcript
        .iter()
        .filter_map(|line| line.split(' ').nth(1)?.chars().next())
        .filter(|c| *c == '>' || *c == '<')
        .collect();
    assert!(
        conversation.windows(2).all(|w| w[0] != w[1] || w[0] == '<'),
        "{transcript:#?}"
    );
}
