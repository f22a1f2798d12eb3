//! The testkit's SMTP server, driven by letterpress's own client: what the server records,
//! each misbehaviour it can put on, and what our client makes of it.
//!
//! `Session` is the client (`SmtpError` is what it reports); `SmtpRelay` is the pool of
//! sessions with the timeout and the classification the send loop acts on (`Attempt`). The
//! table in the testkit's crate documentation is what these tests pin.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use letterpress::delivery::smtp::{
    Reply as ClientReply, Session, SmtpError, Step, Timeouts, TlsSettings,
};
use letterpress::delivery::smtp_url::SmtpUrl;
use letterpress::delivery::transport::{Attempt, Envelope, SmtpRelay, Transport};
use letterpress::model::address::EmailAddress;
use letterpress_testkit::{
    Behaviour, BlackholePort, DropStyle, IncidentKind, RefusingPort, Reply, SmtpServer, Stage,
    Target,
};

const FROM: &str = "news@example.com";
const HELLO: &str = "client.example";
/// How long anything that should answer may take before the test calls it hung.
const WAIT: Duration = Duration::from_secs(5);
/// The relay timeout for tests that wait for it to run out.
const SHORT: Duration = Duration::from_millis(300);
/// How a step that took longer than `SHORT` is reported.
fn timed_out(step: &str) -> Attempt {
    Attempt::Transient(format!("no answer from the relay within 0.3s ({step})"))
}

/// A whole message whose answer never came: it may have been delivered.
fn uncertain(why: &str) -> Attempt {
    Attempt::Uncertain(format!(
        "the message was handed over but the relay's answer never came ({why}); it may have been delivered"
    ))
}

fn tls() -> TlsSettings {
    TlsSettings::with_extra_roots(&[]).unwrap()
}

fn message(to: &str, subject: &str) -> Vec<u8> {
    format!("From: {FROM}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHello {to}\r\n").into_bytes()
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("our client hung")
}

async fn try_open(url: &str) -> Result<Session, SmtpError> {
    within(Session::open(&SmtpUrl::parse(url).unwrap(), HELLO, &tls())).await
}

async fn open(server: &SmtpServer) -> Session {
    try_open(&server.url()).await.unwrap()
}

async fn send(session: &mut Session, to: &str, subject: &str) -> Result<ClientReply, SmtpError> {
    within(session.send(FROM, to, &message(to, subject))).await
}

/// The relay's reply and the step, from a send or open the relay refused.
fn refusal<T>(result: Result<T, SmtpError>) -> (String, Step) {
    match result {
        Err(SmtpError::Rejected(reply, step)) => (reply.to_string(), step),
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("expected a refusal, but it went through"),
    }
}

fn relay(url: &str, timeout: Duration) -> Transport {
    let timeouts = Timeouts {
        command: timeout,
        final_reply: timeout,
    };
    Transport::Smtp(SmtpRelay::new(
        SmtpUrl::parse(url).unwrap(),
        timeouts,
        tls(),
        "client.example".to_string(),
    ))
}

/// One message through the relay, as the send loop hands it over.
async fn attempt(relay: &Transport, to: &str, subject: &str) -> Attempt {
    let from = EmailAddress::parse(FROM).unwrap();
    let envelope = Envelope::new(&from, &EmailAddress::parse(to).unwrap());
    within(relay.send(&envelope, &message(to, subject))).await
}

fn delivered(attempt: &Attempt) -> bool {
    matches!(attempt, Attempt::Delivered(_))
}

// What the server records.

#[tokio::test]
async fn one_session_delivers_every_message_with_its_exact_envelope_and_bytes() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut session = open(&server).await;
    for i in 1..=6 {
        let reply = send(
            &mut session,
            &format!("reader{i}@example.com"),
            &format!("Issue {i}"),
        )
        .await
        .unwrap();
        assert_eq!(reply.to_string(), format!("250 2.0.0 Ok: queued as {i}"));
    }

    let received = server.messages();
    assert_eq!(received.len(), 6);
    for (i, received) in (1..).zip(&received) {
        let to = format!("reader{i}@example.com");
        assert_eq!(received.mail_from, FROM);
        assert_eq!(received.rcpt_to, [to.as_str()]);
        assert_eq!(received.data, message(&to, &format!("Issue {i}")));
        assert_eq!(received.header("Subject"), Some(format!("Issue {i}")));
        assert_eq!(received.connection, 1);
    }
    assert_eq!(server.connections_opened(), 1);
    let commands = server.commands();
    assert_eq!(
        (commands.mail, commands.rcpt, commands.data),
        (6, 6, 6),
        "{commands:?}"
    );
    assert_eq!(commands.messages_completed, 6);
    assert_eq!((commands.rset, commands.noop, commands.quit), (0, 0, 0));
    assert!(server.incidents().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_sessions_are_served_at_once() {
    let server =
        Arc::new(SmtpServer::start(Behaviour::new().reply_delay(Duration::from_millis(5))).await);
    // Four connections open together, each greeted and past EHLO while the others wait...
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(open(&server).await);
    }
    // ... and served in any order, the last opened first.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut session) in sessions.into_iter().enumerate().rev() {
        tasks.spawn(async move {
            for j in 0..3 {
                send(&mut session, &format!("r{i}-{j}@example.com"), "at once")
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("send task");
    }

    let mut per_connection = BTreeMap::new();
    for received in server.messages() {
        *per_connection.entry(received.connection).or_insert(0) += 1;
    }
    assert_eq!(
        per_connection,
        BTreeMap::from([(1, 3), (2, 3), (3, 3), (4, 3)])
    );
    let mut recipients: Vec<String> = server
        .messages()
        .iter()
        .map(|m| m.rcpt_to[0].clone())
        .collect();
    recipients.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|i| (0..3).map(move |j| format!("r{i}-{j}@example.com")))
        .collect();
    expected.sort();
    assert_eq!(recipients, expected);
}

#[tokio::test]
async fn the_hello_name_and_the_8bitmime_parameter_are_recorded() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "plain ASCII")
        .await
        .unwrap();
    let eight_bit = "Subject: Grüße\r\n\r\nSchöne Grüße\r\n".as_bytes();
    within(session.send(FROM, "b@example.com", eight_bit))
        .await
        .unwrap();

    let received = server.messages();
    assert_eq!(received[0].helo.as_deref(), Some(HELLO));
    assert!(received[0].mail_params.is_empty());
    // Sent as it is, 8-bit, which the relay offered to take.
    assert_eq!(received[1].mail_params, ["BODY=8BITMIME"]);
    assert_eq!(received[1].data, eight_bit);
}

#[tokio::test]
async fn auth_login_is_used_when_plain_is_not_offered_and_every_login_is_recorded() {
    let server = SmtpServer::start(
        Behaviour::new()
            .auth("ses-user", "s3cret")
            .auth_mechanisms(["LOGIN"]),
    )
    .await;
    let url = |password: &str| format!("smtp://ses-user:{password}@127.0.0.1:{}", server.port());
    let mut session = try_open(&url("s3cret")).await.unwrap();
    send(&mut session, "a@example.com", "logged in")
        .await
        .unwrap();
    assert_eq!(
        refusal(try_open(&url("guess")).await),
        (
            "535 5.7.8 Authentication credentials invalid".to_owned(),
            Step::Auth
        )
    );

    let attempts: Vec<_> = server
        .auth_attempts()
        .into_iter()
        .map(|a| (a.mechanism, a.username, a.password, a.accepted))
        .collect();
    assert_eq!(
        attempts,
        [
            ("LOGIN".into(), "ses-user".into(), "s3cret".into(), true),
            ("LOGIN".into(), "ses-user".into(), "guess".into(), false),
        ]
    );
    assert_eq!(
        server.messages()[0].authenticated_as.as_deref(),
        Some("ses-user")
    );
}

#[tokio::test]
async fn our_client_pipelines_mail_rcpt_and_data_when_offered_and_only_then() {
    for (behaviour, pipelined) in [
        (Behaviour::new(), 2 * 3),
        (Behaviour::new().without_pipelining(), 0),
    ] {
        let server = SmtpServer::start(behaviour).await;
        let mut session = open(&server).await;
        for i in 0..3 {
            send(&mut session, "a@example.com", &format!("{i}"))
                .await
                .unwrap();
        }
        assert_eq!(server.message_count(), 3);
        assert_eq!(
            server.commands().pipelined,
            pipelined,
            "{:#?}",
            server.transcript()
        );
    }
}

#[tokio::test]
async fn our_client_turns_nagle_off() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let _session = open(&server).await;
    if cfg!(target_os = "linux") {
        assert_eq!(server.client_nodelay(1), Some(true));
    }
}

#[tokio::test]
async fn behaviour_changes_at_runtime_and_counters_restart() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "before").await.unwrap();

    server.set_behaviour(Behaviour::new().rcpt_reply_first(Target::Any, Reply::user_unknown(), 1));
    let (reply, _) = refusal(send(&mut session, "a@example.com", "during").await);
    assert_eq!(reply, "550 5.1.1 User unknown");
    send(&mut session, "a@example.com", "after the one refusal")
        .await
        .unwrap();

    // Installing the same behaviour again gives it a fresh "first K" count.
    server.set_behaviour(Behaviour::new().rcpt_reply_first(Target::Any, Reply::user_unknown(), 1));
    refusal(send(&mut session, "a@example.com", "refused again").await);
    assert_eq!(server.message_count(), 2);
}

#[tokio::test]
async fn reply_delay_applies_to_every_reply() {
    let delay = Duration::from_millis(40);
    let server = SmtpServer::start(Behaviour::new().reply_delay(delay)).await;
    let started = Instant::now();
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "slow").await.unwrap();
    // Greeting, EHLO, MAIL, RCPT, DATA, end of DATA: pipelining sends the middle three at
    // once, but the server still answers them one after the other.
    assert!(
        started.elapsed() >= delay * 6,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn max_rate_turns_excess_messages_away_with_a_throttling_reply() {
    let server = SmtpServer::start(Behaviour::new().max_rate(2, Duration::from_secs(3600))).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "1").await.unwrap();
    send(&mut session, "b@example.com", "2").await.unwrap();
    assert_eq!(
        refusal(send(&mut session, "c@example.com", "3").await),
        (
            "454 Throttling failure: Maximum sending rate exceeded.".to_owned(),
            Step::DataEnd
        )
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
async fn oversized_messages_get_552_at_the_end_of_data() {
    let server = SmtpServer::start(Behaviour::new().max_size(200)).await;
    let mut session = open(&server).await;
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(300));
    assert_eq!(
        refusal(within(session.send(FROM, "a@example.com", big.as_bytes())).await),
        (
            "552 5.3.4 Message size exceeds fixed maximum message size".to_owned(),
            Step::DataEnd
        )
    );
    assert_eq!(server.incidents()[0].kind, IncidentKind::TooLarge);
    // Our client declares no SIZE, so the server learns the size only from the whole message.
    assert!(
        server
            .transcript()
            .contains(&"C1 > MAIL FROM:<news@example.com>".to_owned())
    );
    assert_eq!(server.commands().messages_completed, 1);
    send(&mut session, "a@example.com", "small").await.unwrap();
}

#[tokio::test]
async fn clear_forgets_records_but_keeps_the_behaviour() {
    let server = SmtpServer::start(Behaviour::new().rcpt_reply("x@example.com", (550, "no"))).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "kept?").await.unwrap();
    refusal(send(&mut session, "x@example.com", "refused").await);
    server.clear();
    assert_eq!(server.message_count(), 0);
    assert!(server.incidents().is_empty());
    assert!(server.transcript().is_empty());
    assert_eq!(server.commands().mail, 0);
    refusal(send(&mut session, "x@example.com", "still refused").await);
    send(&mut session, "a@example.com", "counted afresh")
        .await
        .unwrap();
    assert_eq!(server.message_count(), 1);
    assert_eq!(server.incidents().len(), 1);
}

/// The shape of the end-to-end tests: a plain test, the server on its own thread, and the
/// mailer elsewhere (here a thread standing in for the child process).
#[test]
fn a_background_server_serves_a_plain_test_and_stops_when_dropped() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    assert_eq!(server.url(), format!("smtp://127.0.0.1:{}", server.port()));

    let url = server.url();
    let mailer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut session = try_open(&url).await.unwrap();
            for i in 0..3 {
                send(&mut session, &format!("r{i}@example.com"), "background")
                    .await
                    .unwrap();
            }
        });
    });

    let received = server.wait_for_messages_blocking(3, WAIT).unwrap();
    assert_eq!(received.len(), 3);
    mailer.join().expect("mailer thread");

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
    let mut session = open(&server).await;
    send(
        &mut session,
        "a@example.com",
        "async client, background server",
    )
    .await
    .unwrap();
    server.wait_for_messages(1, WAIT).await.unwrap();
    // Dropping joins the server thread; allowed here since it is brief.
    drop(server);
}

// Each misbehaviour, and what our client reports.

#[tokio::test]
async fn a_refused_recipient_is_reported_though_the_pipelined_data_went_out_too() {
    for (behaviour, data_commands) in [
        (Behaviour::new(), 1),
        (Behaviour::new().without_pipelining(), 0),
    ] {
        let server =
            SmtpServer::start(behaviour.rcpt_reply("bounce@example.com", Reply::user_unknown()))
                .await;
        let mut session = open(&server).await;
        // The DATA sent along with the refused RCPT gets "no valid recipients"; the refusal
        // reported is the recipient's.
        assert_eq!(
            refusal(send(&mut session, "bounce@example.com", "bounce").await),
            ("550 5.1.1 User unknown".to_owned(), Step::Rcpt)
        );
        let commands = server.commands();
        assert_eq!(
            (commands.data, commands.messages_completed, commands.rset),
            (data_commands, 0, 1)
        );
        send(&mut session, "fine@example.com", "fine")
            .await
            .unwrap();
        assert_eq!(server.messages()[0].rcpt_to, ["fine@example.com"]);
    }
}

#[tokio::test]
async fn a_4xx_to_rcpt_for_the_first_k_attempts_is_transient_then_accepted() {
    let server = SmtpServer::start(
        Behaviour::new()
            .rcpt_reply_first("busy@example.com", Reply::ses_throttling(), 2)
            .rcpt_reply("grey@example.com", Reply::try_later()),
    )
    .await;
    let mut session = open(&server).await;
    for attempt in 1..=2 {
        assert_eq!(
            refusal(send(&mut session, "busy@example.com", "throttled").await),
            (
                "454 Throttling failure: Maximum sending rate exceeded.".to_owned(),
                Step::Rcpt
            ),
            "attempt {attempt}"
        );
    }
    send(&mut session, "busy@example.com", "third time lucky")
        .await
        .unwrap();
    assert_eq!(
        refusal(send(&mut session, "grey@example.com", "greylisted").await).0,
        "451 4.7.1 Try again later"
    );
    assert_eq!(server.message_count(), 1);
    assert_eq!(server.commands().rcpt, 4);
    assert_eq!(server.connections_opened(), 1);
}

#[tokio::test]
async fn a_refusal_at_the_end_of_data_is_reported_like_any_other() {
    let server = SmtpServer::start(
        Behaviour::new()
            .data_reply("spam@example.com", (554, "5.7.1 Message rejected as spam"))
            .data_reply_first("later@example.com", (451, "4.3.0 Temporary failure"), 1),
    )
    .await;
    let mut session = open(&server).await;
    assert_eq!(
        refusal(send(&mut session, "spam@example.com", "spam").await),
        (
            "554 5.7.1 Message rejected as spam".to_owned(),
            Step::DataEnd
        )
    );
    assert_eq!(
        refusal(send(&mut session, "later@example.com", "later").await).0,
        "451 4.3.0 Temporary failure"
    );
    send(&mut session, "later@example.com", "retried")
        .await
        .unwrap();

    let incidents = server.incidents();
    let kinds: Vec<_> = incidents.iter().map(|i| i.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            IncidentKind::DataRefused(Reply::new(554, "5.7.1 Message rejected as spam")),
            IncidentKind::DataRefused(Reply::new(451, "4.3.0 Temporary failure")),
        ]
    );
    // Refused messages are kept, whole, in the incident.
    assert_eq!(incidents[0].data, message("spam@example.com", "spam"));
    assert_eq!(server.message_count(), 1);
    // The transaction was over, so there was nothing to reset.
    assert_eq!(server.commands().rset, 0);
}

#[tokio::test]
async fn a_server_that_shuts_down_answers_421_and_hangs_up() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after(2)).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "1").await.unwrap();
    send(&mut session, "a@example.com", "2").await.unwrap();

    // The 421 answers MAIL; the replies to the RCPT and DATA sent with it never come: the
    // 421 is what the client reports, and the session is done for.
    assert_eq!(
        refusal(send(&mut session, "a@example.com", "3").await),
        ("421 4.3.2 Service shutting down".to_owned(), Step::Mail)
    );
    assert!(!session.is_usable());
    assert!(
        server
            .transcript()
            .contains(&"C1 < 421 4.3.2 Service shutting down".to_owned())
    );
    // A new connection gets the 421 as its greeting.
    assert_eq!(
        refusal(try_open(&server.url()).await),
        ("421 4.3.2 Service shutting down".to_owned(), Step::Greeting)
    );
    assert_eq!(server.message_count(), 2);
    let kinds: Vec<_> = server.incidents().into_iter().map(|i| i.kind).collect();
    assert_eq!(kinds, [IncidentKind::ShutDown, IncidentKind::ShutDown]);
}

#[tokio::test]
async fn a_421_on_a_reused_session_costs_one_transient_attempt() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after_first(2, 1)).await;
    let relay = relay(&server.url(), WAIT);
    assert!(delivered(&attempt(&relay, "a@example.com", "1").await));
    assert!(delivered(&attempt(&relay, "a@example.com", "2").await));
    // A server restarting under our pool: its 421 defers the recipient, the session is
    // dropped, and the next message opens a new connection.
    assert_eq!(
        attempt(&relay, "a@example.com", "3").await,
        Attempt::Transient("421 4.3.2 Service shutting down".to_owned())
    );
    assert!(delivered(&attempt(&relay, "a@example.com", "4").await));
    assert_eq!(server.connections_opened(), 2);
    assert_eq!(server.message_count(), 3);
}

#[tokio::test]
async fn a_noop_answered_with_421_means_the_session_is_gone() {
    // What `SmtpRelay` checks before reusing a session that sat idle.
    let server = SmtpServer::start(Behaviour::new().shutdown_after_first(1, 1)).await;
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "1").await.unwrap();
    assert!(!within(session.is_alive()).await);
    assert!(
        server
            .transcript()
            .join("\n")
            .contains("C1 > NOOP\nC1 < 421 4.3.2 Service shutting down")
    );
}

#[tokio::test]
async fn a_421_greeting_on_a_new_connection_is_reported() {
    let server = SmtpServer::start(Behaviour::new().shutdown_after_first(0, 1)).await;
    assert_eq!(
        refusal(try_open(&server.url()).await),
        ("421 4.3.2 Service shutting down".to_owned(), Step::Greeting)
    );
    let mut session = open(&server).await;
    send(&mut session, "a@example.com", "back up")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connection_closed_mid_data_leaves_the_message_unconfirmed() {
    let server =
        SmtpServer::start(Behaviour::new().drop_in_data_first("flaky@example.com", 1)).await;
    let mut session = open(&server).await;
    // The whole message went into the socket before the hang-up was seen: from the client's
    // side it may have arrived, so it is unconfirmed, never simply retried.
    match send(&mut session, "flaky@example.com", "cut off").await {
        Err(SmtpError::Unconfirmed(reason)) => {
            assert!(reason.contains("unexpected end of file"), "{reason}")
        }
        other => panic!("expected an unconfirmed message, got {other:?}"),
    }
    let incidents = server.incidents();
    assert_eq!(incidents[0].kind, IncidentKind::Dropped(DropStyle::Close));
    assert!(
        incidents[0].data.starts_with(b"From: news@example.com\r\n"),
        "the message had started"
    );

    let mut session = open(&server).await;
    send(&mut session, "flaky@example.com", "retried")
        .await
        .unwrap();
    assert_eq!(server.message_count(), 1);
}

#[tokio::test]
async fn a_connection_reset_mid_data_is_an_io_error_or_unconfirmed() {
    let server = SmtpServer::start(Behaviour::new().drop_in_data_with(
        "flaky@example.com",
        DropStyle::Reset,
        Some(1),
    ))
    .await;
    let mut session = open(&server).await;
    // A write still under way when the reset lands finds a broken pipe (the message never
    // went whole: worth a retry); reading the reply after the final dot finds the reset (it
    // may have arrived: unconfirmed).
    match send(&mut session, "flaky@example.com", "reset").await {
        Err(SmtpError::Io(error)) => assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{error:?}"
        ),
        Err(SmtpError::Unconfirmed(reason)) => {
            assert!(reason.contains("reset"), "{reason}")
        }
        other => panic!("expected a broken connection, got {other:?}"),
    }
    assert_eq!(
        server.incidents()[0].kind,
        IncidentKind::Dropped(DropStyle::Reset)
    );
    let mut session = open(&server).await;
    send(&mut session, "flaky@example.com", "retried")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_connect_that_never_completes_is_bounded_by_the_relay_timeout() {
    let port = BlackholePort::new();
    // `Session` has no timeout of its own: the kernel would retry the SYN for minutes.
    let url = SmtpUrl::parse(&port.url()).unwrap();
    let pending = tokio::time::timeout(SHORT, Session::open(&url, HELLO, &tls())).await;
    assert!(pending.is_err(), "the connect completed");

    let started = Instant::now();
    let outcome = attempt(&relay(&port.url(), SHORT), "a@example.com", "into the void").await;
    assert_eq!(
        outcome,
        Attempt::Transient(format!(
            "cannot connect to 127.0.0.1:{}: timed out",
            port.port()
        ))
    );
    assert!(started.elapsed() >= SHORT);
}

#[tokio::test]
async fn a_stall_at_any_stage_ends_in_the_relay_timeout() {
    for stage in [
        Stage::Greeting,
        Stage::Ehlo,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::DataEnd,
    ] {
        let server =
            SmtpServer::start(Behaviour::new().stall(stage, Target::Any, Duration::from_secs(60)))
                .await;
        let outcome = attempt(&relay(&server.url(), SHORT), "a@example.com", "stalled").await;
        // Before the final dot a timeout is worth a retry; after it, the relay may have the
        // message.
        let expected = match stage {
            Stage::Greeting => timed_out("the greeting"),
            Stage::Ehlo => timed_out("EHLO"),
            Stage::Mail => timed_out("MAIL FROM"),
            Stage::Rcpt => timed_out("RCPT TO"),
            Stage::Data => timed_out("DATA"),
            _ => uncertain("no answer from the relay within 0.3s (the end of the message)"),
        };
        assert_eq!(outcome, expected, "{stage:?}");
        assert!(
            matches!(
                server.incidents()[0].kind,
                IncidentKind::Stalled { stage: s, .. } if s == stage
            ),
            "{stage:?}: {:?}",
            server.incidents()
        );
    }
}

#[tokio::test]
async fn a_stall_can_be_limited_to_one_recipient_and_a_short_one_is_just_latency() {
    let server = SmtpServer::start(
        Behaviour::new()
            .stall(Stage::Rcpt, "slow@example.com", Duration::from_millis(200))
            .stall(Stage::Data, "hang@example.com", Duration::MAX),
    )
    .await;
    let relay = relay(&server.url(), Duration::from_millis(700));
    let started = Instant::now();
    assert!(delivered(
        &attempt(&relay, "slow@example.com", "slow").await
    ));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        attempt(&relay, "hang@example.com", "hang").await,
        Attempt::Transient("no answer from the relay within 0.7s (DATA)".to_owned())
    );
    assert!(delivered(
        &attempt(&relay, "other@example.com", "unaffected").await
    ));
    assert_eq!(server.message_count(), 2);
    // The session that timed out was dropped: the third message went on a new connection.
    assert_eq!(server.messages()[1].connection, 2);
}

/// The counterpart of lettre's desynchronised pool (the testkit's `why_not_lettre.rs`): a
/// session that timed out is dropped, so no reply meant for it reaches the next message.
#[tokio::test]
async fn after_a_timed_out_send_the_next_message_gets_its_own_reply_on_a_new_connection() {
    let server = SmtpServer::start(Behaviour::new().stall_first(
        Stage::Mail,
        Target::Any,
        Duration::from_secs(1),
        1,
    ))
    .await;
    let relay = relay(&server.url(), SHORT);
    assert_eq!(
        attempt(&relay, "a@example.com", "timed out").await,
        timed_out("MAIL FROM")
    );
    assert_eq!(
        attempt(&relay, "a@example.com", "next").await,
        Attempt::Delivered("250 2.0.0 Ok: queued as 1".to_owned())
    );
    assert_eq!(server.messages()[0].connection, 2);
    assert_eq!(server.connections_opened(), 2);
}

#[tokio::test]
async fn a_timed_out_send_may_still_have_been_delivered() {
    let server = SmtpServer::start(Behaviour::new().stall_first(
        Stage::DataEnd,
        Target::Any,
        Duration::from_secs(60),
        1,
    ))
    .await;
    let relay = relay(&server.url(), SHORT);
    // The client gives up while the server sits on the complete message: uncertain, since
    // the relay may well have it...
    assert_eq!(
        attempt(&relay, "a@example.com", "first try").await,
        uncertain("no answer from the relay within 0.3s (the end of the message)")
    );
    // ... which the server keeps all the same, so the retry the timeout asks for is a copy.
    let received = server.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(received[0].header("Subject").as_deref(), Some("first try"));
    assert!(delivered(&attempt(&relay, "a@example.com", "retry").await));
    let recipients: Vec<_> = server.messages().into_iter().map(|m| m.rcpt_to).collect();
    assert_eq!(recipients, [["a@example.com"], ["a@example.com"]]);
}

#[tokio::test]
async fn authentication_failures_are_reported_at_the_step_that_failed() {
    // A wrong password is refused at the AUTH step: `smtp_client.rs` and the table below.
    let server = SmtpServer::start(Behaviour::new().auth("user", "right")).await;
    // Without credentials the session opens, and the relay refuses MAIL.
    let mut anonymous = open(&server).await;
    assert_eq!(
        refusal(send(&mut anonymous, "a@example.com", "x").await),
        ("530 5.7.0 Authentication required".to_owned(), Step::Mail)
    );

    let no_auth = SmtpServer::start(Behaviour::new()).await;
    let with_credentials = format!("smtp://user:right@127.0.0.1:{}", no_auth.port());
    match try_open(&with_credentials).await {
        Err(SmtpError::NoAuth) => {}
        other => panic!("expected NoAuth, got {:?}", other.err()),
    }
    assert!(no_auth.auth_attempts().is_empty());
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
    let relay = relay(&server.url(), WAIT);
    let transient = |text: &str| Attempt::Transient(text.to_owned());
    for (to, first) in [
        (
            "bounce@example.com",
            Attempt::Permanent("550 5.1.1 User unknown".to_owned()),
        ),
        (
            "busy@example.com",
            transient("454 Throttling failure: Maximum sending rate exceeded."),
        ),
        ("later@example.com", transient("451 4.7.1 Try again later")),
        (
            "flaky@example.com",
            uncertain("the connection failed: unexpected end of file"),
        ),
    ] {
        assert_eq!(attempt(&relay, to, "1").await, first, "{to}");
        let retry = attempt(&relay, to, "2").await;
        assert_eq!(
            delivered(&retry),
            to != "bounce@example.com",
            "{to}: {retry:?}"
        );
    }
    assert_eq!(server.message_count(), 3);
    assert_eq!(server.incidents().len(), 5);
    // Refusals leave the session usable; only the dropped connection needed a new one.
    assert_eq!(server.connections_opened(), 2);
}

/// One row per line of the table in the testkit's crate documentation: what the send loop
/// is told for each misbehaviour. Permanent: the recipient fails and is never retried.
/// Transient: deferred and retried (and enough of them in a row stop the run as "relay
/// unreachable"). Fatal: nothing can be sent this run, which stops at once.
#[tokio::test]
async fn each_misbehaviour_ends_in_the_outcome_the_testkit_documents() {
    let permanent = |text: &str| Attempt::Permanent(text.to_owned());
    let transient = |text: &str| Attempt::Transient(text.to_owned());
    let fatal = |text: &str| Attempt::Fatal(text.to_owned());
    let rows = [
        (
            Behaviour::new().rcpt_reply(Target::Any, Reply::user_unknown()),
            "",
            permanent("550 5.1.1 User unknown"),
        ),
        (
            Behaviour::new().mail_reply(Target::Any, (553, "5.1.8 Sender address rejected")),
            "",
            fatal("553 5.1.8 Sender address rejected"),
        ),
        (
            Behaviour::new().data_reply(Target::Any, (554, "5.7.1 Message rejected as spam")),
            "",
            Attempt::Refused("554 5.7.1 Message rejected as spam".to_owned()),
        ),
        (
            Behaviour::new().max_size(50),
            "",
            Attempt::Refused(
                "552 5.3.4 Message size exceeds fixed maximum message size".to_owned(),
            ),
        ),
        (
            Behaviour::new().rcpt_reply(Target::Any, Reply::try_later()),
            "",
            transient("451 4.7.1 Try again later"),
        ),
        (
            Behaviour::new().mail_reply(Target::Any, (452, "4.3.1 Insufficient system storage")),
            "",
            transient("452 4.3.1 Insufficient system storage"),
        ),
        (
            Behaviour::new().data_reply(Target::Any, (451, "4.3.0 Temporary failure")),
            "",
            transient("451 4.3.0 Temporary failure"),
        ),
        (
            Behaviour::new().max_rate(0, Duration::from_secs(3600)),
            "",
            transient("454 Throttling failure: Maximum sending rate exceeded."),
        ),
        (
            Behaviour::new().shutdown_after(0),
            "",
            transient("421 4.3.2 Service shutting down"),
        ),
        (
            Behaviour::new().drop_in_data(Target::Any),
            "",
            uncertain("the connection failed: unexpected end of file"),
        ),
        (
            Behaviour::new().stall(Stage::Rcpt, Target::Any, Duration::from_secs(60)),
            "",
            timed_out("RCPT TO"),
        ),
        (
            Behaviour::new().auth("user", "right"),
            "user:wrong@",
            fatal("535 5.7.8 Authentication credentials invalid"),
        ),
        (
            Behaviour::new(),
            "user:right@",
            fatal(
                "the relay does not offer AUTH PLAIN or LOGIN, so the credentials cannot be used",
            ),
        ),
        // A relay that wants a login we were not given refuses every MAIL: that is about
        // us, so the run stops and nobody is failed.
        (
            Behaviour::new().auth("user", "right"),
            "",
            fatal("530 5.7.0 Authentication required"),
        ),
    ];
    for (behaviour, credentials, expected) in rows {
        let server = SmtpServer::start(behaviour.clone()).await;
        let url = format!("smtp://{credentials}127.0.0.1:{}", server.port());
        let outcome = attempt(&relay(&url, SHORT), "a@example.com", "table").await;
        assert_eq!(outcome, expected, "{behaviour:?}");
    }

    let server =
        SmtpServer::start(Behaviour::new().drop_in_data_with(Target::Any, DropStyle::Reset, None))
            .await;
    let outcome = attempt(&relay(&server.url(), SHORT), "a@example.com", "reset").await;
    // Reset while the message was still being written: worth a retry; after it was whole:
    // it may have arrived.
    assert!(
        matches!(&outcome, Attempt::Transient(text) if text.starts_with("the connection failed: "))
            || matches!(&outcome, Attempt::Uncertain(text) if text.contains("reset")),
        "{outcome:?}"
    );

    let refusing = RefusingPort::new();
    let outcome = attempt(&relay(&refusing.url(), SHORT), "a@example.com", "down").await;
    let refused = format!("cannot connect to 127.0.0.1:{}: ", refusing.port());
    assert!(
        matches!(&outcome, Attempt::Transient(text) if text.starts_with(&refused)),
        "{outcome:?}"
    );
    // A connect that never completes: `a_connect_that_never_completes_is_bounded_by_the_relay_timeout`.
}
