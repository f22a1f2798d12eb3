//! `letterpress send`, `test` and `status` end to end: the real binary, a real SMTP server on
//! loopback (testkit), and the real SQLite ledger.

use std::time::Duration;

use crate::support::{TestWorkspace, key, numbered_subscribers};
use letterpress::ledger::Source;
use letterpress::ledger::State;
use letterpress_testkit::{Behaviour, RefusingPort, Reply, SmtpServer, Stage};
use mail_parser::MessageParser;

const ISSUE: &str = "2021-08-23";

const FAST: &str = "delivery:\n  concurrency: 4\n  max_attempts: 3\n  timeout_seconds: 2\n";

const THREE: &str = "- email: ada@example.com\n  name: Ada Okafor\n- email: li@example.org\n  name: 李伟\n- email: jonas@example.org\n  name: Jonas Berg\n  status: unsubscribed\n- email: reader@example.com\n";

/// The ledger's row for one recipient of the issue, which must exist.
fn row(workspace: &TestWorkspace, address: &str) -> letterpress::ledger::Row {
    workspace
        .ledger()
        .row(&crate::support::issue(ISSUE), &crate::support::key(address))
        .unwrap()
        .unwrap()
}

fn recipients_of(server: &SmtpServer) -> Vec<String> {
    let mut recipients: Vec<String> = server
        .messages()
        .iter()
        .flat_map(|message| message.rcpt_to.clone())
        .collect();
    recipients.sort();
    recipients
}

#[test]
fn each_active_subscriber_gets_one_personalised_message_and_a_rerun_sends_nothing() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.starts_with(&format!(
        "Sending \"Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo\" (2021-08-23) to 3 subscribers via {}\n",
        server.url()
    )), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("sent 3, failed 0, deferred 0, uncertain 0\n"),
        "{}",
        run.stdout
    );

    assert_eq!(
        recipients_of(&server),
        ["ada@example.com", "li@example.org", "reader@example.com"]
    );
    let messages = server.messages();
    let mut tokens = Vec::new();
    for received in &messages {
        assert_eq!(received.mail_from, "weekly@example.com");
        let message = MessageParser::default().parse(&received.data).unwrap();
        let to = message.to().unwrap().first().unwrap();
        assert_eq!(to.address().unwrap(), received.rcpt_to[0]);
        let text = message.body_text(0).unwrap();
        let html = message.body_html(0).unwrap();
        let greeting = match to.address().unwrap() {
            "ada@example.com" => "Hi Ada Okafor,",
            "li@example.org" => "Hi 李伟,",
            _ => "Hi there,",
        };
        assert!(text.contains(&format!("\r\n{greeting}\r\n")), "{text}");
        assert!(html.contains(&format!(">{greeting}</p>")));
        assert!(html.contains(&format!("This email was sent to {}.", received.rcpt_to[0])));
        let unsubscribe = message.header_raw("List-Unsubscribe").unwrap();
        let token = unsubscribe
            .split("/unsubscribe/")
            .nth(1)
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .to_string();
        assert!(text.contains(&format!(
            "Unsubscribe: https://weekly.example.com/unsubscribe/{token}\r\n"
        )));
        assert!(html.contains(&format!("https://weekly.example.com/unsubscribe/{token}\"")));
        assert_eq!(
            message.header_raw("List-Unsubscribe-Post").unwrap().trim(),
            "List-Unsubscribe=One-Click"
        );
        tokens.push(token);
        assert!(message.message_id().unwrap().starts_with("2021-08-23."));
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(
        tokens.len(),
        3,
        "every recipient has their own unsubscribe link"
    );

    let ledger = workspace.ledger();
    let ada = ledger
        .row(
            &crate::support::issue(ISSUE),
            &crate::support::key("ada@example.com"),
        )
        .unwrap()
        .unwrap();
    assert_eq!((ada.state, ada.attempts), (State::Sent, 1));
    assert!(ada.last_reply.unwrap().starts_with("250 "));
    assert!(
        ledger
            .row(
                &crate::support::issue(ISSUE),
                &crate::support::key("jonas@example.org")
            )
            .unwrap()
            .is_none()
    );

    // Again: nobody gets it twice.
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "Nothing to send: every active subscriber already has 2021-08-23, may have it (uncertain), or failed for good.\nsent 3, failed 0, deferred 0, uncertain 0\n"
    );
    assert_eq!(server.message_count(), 3);
}

#[test]
fn a_permanent_refusal_is_recorded_with_the_reply_and_never_retried() {
    let server = SmtpServer::start_in_background(
        Behaviour::new().rcpt_reply("li@example.org", Reply::user_unknown()),
    );
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        recipients_of(&server),
        ["ada@example.com", "reader@example.com"]
    );
    let li = row(&workspace, "li@example.org");
    assert_eq!((li.state, li.attempts), (State::Failed, 1));
    assert_eq!(li.last_reply.as_deref(), Some("550 5.1.1 User unknown"));

    let status = workspace.run(&["status", ISSUE]);
    assert_eq!(
        status.stdout,
        "2021-08-23\nsent 2, failed 1, deferred 0, uncertain 0\n\
         bounces: 1 hard, 0 soft (33.3%); complaints: 0 (0.00%)\n\
         warning: 33.3% of the messages bounced, above the 2% receivers tolerate: the list has old or mistyped addresses (the bounced ones are off it now; check where new ones come from)\n\
         failed (not retried):\n  li@example.org  550 5.1.1 User unknown (1 attempt)\n\
         (`letterpress send 2021-08-23 --retry-failed` tries the failed ones again, once whatever refused them is fixed)\n"
    );
    // The next send does not try again.
    server.set_behaviour(Behaviour::new());
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(server.message_count(), 2);
}

#[test]
fn throttling_replies_are_retried_with_backoff_until_accepted() {
    // Amazon SES answers 454 when a sender goes over its rate.
    let server = SmtpServer::start_in_background(Behaviour::new().rcpt_reply_first(
        "ada@example.com",
        Reply::ses_throttling(),
        2,
    ));
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("3 sent, 0 failed, 0 deferred, 2 retries"),
        "{}",
        run.stdout
    );
    assert_eq!(recipients_of(&server).len(), 3);
    let ada = row(&workspace, "ada@example.com");
    assert_eq!((ada.state, ada.attempts), (State::Sent, 3));
}

#[test]
fn a_recipient_still_refused_after_max_attempts_stays_deferred_for_the_next_run() {
    let server = SmtpServer::start_in_background(
        Behaviour::new().data_reply("ada@example.com", (451, "4.3.0 Mailbox busy, try later")),
    );
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("sent 2, failed 0, deferred 1, uncertain 0\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("deferred (retried on the next send):\n  ada@example.com  451 4.3.0 Mailbox busy, try later (3 attempts)\n"), "{}", run.stdout);

    server.set_behaviour(Behaviour::new());
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        recipients_of(&server),
        ["ada@example.com", "li@example.org", "reader@example.com"]
    );
    let ada = row(&workspace, "ada@example.com");
    assert_eq!((ada.state, ada.attempts), (State::Sent, 4));
}

#[test]
fn a_421_is_survived_and_a_message_without_an_answer_after_its_final_dot_is_uncertain() {
    let server = SmtpServer::start_in_background(
        Behaviour::new()
            .drop_in_data_first("ada@example.com", 1)
            .stall_first(Stage::DataEnd, "li@example.org", Duration::from_secs(30), 1)
            .shutdown_after_first(1, 1),
    );
    let workspace =
        TestWorkspace::for_delivery(THREE, &format!("{FAST}  final_reply_seconds: 2\n"));
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    // Whole messages whose answer never came (the line dropped, the relay silent past the
    // final reply's timeout) may have arrived (RFC 1047): uncertain, never sent again on
    // their own. The 421 is retried.
    assert!(
        run.stdout
            .contains("sent 1, failed 0, deferred 0, uncertain 2\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "  ada@example.com  the message was handed over but the relay's answer never came"
        ),
        "{}",
        run.stdout
    );
    // The stalled relay did keep li's message: exactly the case a retry would have doubled.
    assert_eq!(
        recipients_of(&server),
        ["li@example.org", "reader@example.com"]
    );

    server.set_behaviour(Behaviour::new());
    let again = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(again.status, 1, "{again:?}");
    assert!(
        again.stdout.starts_with("Nothing to send"),
        "{}",
        again.stdout
    );
    assert_eq!(
        recipients_of(&server),
        ["li@example.org", "reader@example.com"]
    );

    // Only when asked, knowing some may get it twice.
    let asked = workspace.send(&server.url(), &[ISSUE, "--yes", "--resend-uncertain"]);
    assert_eq!(asked.status, 0, "{asked:?}");
    assert_eq!(
        recipients_of(&server),
        [
            "ada@example.com",
            "li@example.org",
            "li@example.org",
            "reader@example.com"
        ]
    );
}

#[test]
fn an_unreachable_relay_stops_the_run_and_loses_nobody() {
    let refusing = RefusingPort::new();
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(40), FAST);
    let run = workspace.send(&refusing.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "error: stopped: every recent attempt failed (cannot connect to 127.0.0.1:{}: Connection refused",
            refusing.port()
        )),
        "{}",
        run.stderr
    );
    let counts = workspace
        .ledger()
        .counts(&crate::support::issue(ISSUE))
        .unwrap();
    assert_eq!(
        counts.sent + counts.failed + counts.sending,
        0,
        "{counts:?}"
    );
    assert_eq!(counts.pending + counts.deferred, 40);

    let server = SmtpServer::start_in_background(Behaviour::new());
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(server.message_count(), 40);
}

#[test]
fn a_wrong_password_stops_the_run_without_failing_anyone() {
    let server = SmtpServer::start_in_background(Behaviour::new().auth("editor", "right"));
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let url = format!("smtp://editor:wrong-password@127.0.0.1:{}", server.port());
    let run = workspace.send(&url, &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("error: stopped: 535 "),
        "{}",
        run.stderr
    );
    for output in [&run.stdout, &run.stderr] {
        assert!(
            !output.contains("wrong-password"),
            "the password was printed: {output}"
        );
    }
    assert!(
        run.stdout.contains(&format!(
            "via smtp://editor:***@127.0.0.1:{}\n",
            server.port()
        )),
        "{}",
        run.stdout
    );
    let counts = workspace
        .ledger()
        .counts(&crate::support::issue(ISSUE))
        .unwrap();
    assert_eq!(
        (counts.failed, counts.sent, counts.sending),
        (0, 0, 0),
        "{counts:?}"
    );

    let url = format!("smtp://editor:right@127.0.0.1:{}", server.port());
    let run = workspace.send(&url, &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(server.message_count(), 3);
}

#[test]
fn a_password_is_never_sent_in_the_clear_to_a_remote_host() {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.send(
        "smtp://editor:s3cret@smtp.example.com:587",
        &[ISSUE, "--yes"],
    );
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: refusing to send the password for `editor` unencrypted to smtp.example.com: use smtps:// or add ?tls=required (plaintext AUTH is only allowed to a relay on loopback)\n"
    );
    assert!(!workspace.path(".letterpress/outbox").exists());
}

#[test]
fn unsubscribed_and_suppressed_subscribers_never_get_mail() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    {
        let mut ledger = workspace.ledger();
        ledger
            .suppress(
                &key("reader@example.com"),
                &Source::Manual,
                Some("asked by mail"),
                chrono::Utc::now(),
            )
            .unwrap();
    }
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        recipients_of(&server),
        ["ada@example.com", "li@example.org"]
    );
}

#[test]
fn a_draft_is_never_sent_but_can_be_tested() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    workspace.replace("issues/2021-08-23.yaml", "status: ready", "status: draft");
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "error: issues/2021-08-23.yaml is a draft; set `status: ready` in it when it may go out (`letterpress test` sends a draft to yourself; `--dry-run` shows who would get it)\n"
    );

    // A dry run of the draft says who would get it, and sends nothing.
    let run = workspace.run(&["send", ISSUE, "--dry-run", "--list"]);
    assert_eq!(run.status, 0, "{run:?}");
    // stdout is the list alone, two fields a line, for scripts; the rest is on stderr.
    assert_eq!(
        run.stdout,
        "ada@example.com\tAda Okafor\nli@example.org\t李伟\nreader@example.com\t\n"
    );
    let notes: Vec<&str> = run.stderr.lines().collect();
    assert!(
        notes[0].starts_with("Dry run of 2021-08-23: 3 messages built in "),
        "{}",
        run.stderr
    );
    assert_eq!(
        notes[1..],
        [
            "Nothing was sent and the ledger was not touched.",
            "issues/2021-08-23.yaml is a draft: `send` refuses it until its status is `ready`."
        ]
    );
    assert!(server.messages().is_empty());

    let run = crate::support::Run::from(
        workspace
            .sender(&server.url())
            .args(["test", ISSUE, "--to", "me@example.com"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(recipients_of(&server), ["me@example.com"]);
    let received = server.messages();
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    assert_eq!(
        message.subject(),
        Some("[TEST] Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo")
    );
    let ledger = workspace.ledger();
    assert_eq!(
        ledger
            .test_send_count(&crate::support::issue(ISSUE))
            .unwrap(),
        1
    );
    assert_eq!(
        ledger
            .counts(&crate::support::issue(ISSUE))
            .unwrap()
            .total(),
        0,
        "a test is never a delivery"
    );

    // Without --to, the newsletter's test recipients.
    let run = crate::support::Run::from(
        workspace
            .sender(&server.url())
            .args(["test", ISSUE])
            .output()
            .unwrap(),
    );
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        recipients_of(&server),
        ["editor@example.com", "me@example.com"]
    );
}

#[test]
fn status_json_has_a_number_for_every_state() {
    let server = SmtpServer::start_in_background(
        Behaviour::new().rcpt_reply("li@example.org", Reply::user_unknown()),
    );
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    workspace.send(&server.url(), &[ISSUE, "--yes"]);
    let run = workspace.run(&["status", ISSUE, "--json"]);
    assert_eq!(run.status, 0);
    let status: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for (key, expected) in [
        ("pending", 0),
        ("sent", 2),
        ("deferred", 0),
        ("failed", 1),
        ("uncertain", 0),
    ] {
        assert_eq!(status[key].as_u64(), Some(expected), "{key} in {status}");
    }
    assert_eq!(status["failures"][0]["email"], "li@example.org");
    assert_eq!(status["failures"][0]["reply"], "550 5.1.1 User unknown");
}

#[test]
fn a_dry_run_builds_every_message_and_changes_nothing() {
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(250), FAST);
    let run = workspace.run(&["send", ISSUE, "--dry-run"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("Dry run of 2021-08-23: 250 messages built in "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .ends_with("Nothing was sent and the ledger was not touched.\n"),
        "{}",
        run.stdout
    );
    assert!(
        !workspace.path(".letterpress").exists(),
        "a dry run writes nothing at all"
    );
}

#[test]
fn without_a_relay_the_messages_go_to_the_outbox() {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.run(&["send", ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stderr.contains("No LETTERPRESS_SMTP_URL set: writing the messages to .letterpress/outbox/2021-08-23 instead of sending them."), "{}", run.stderr);
    let mut files: Vec<String> =
        std::fs::read_dir(workspace.path(".letterpress/outbox/2021-08-23"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ada@example.com.eml",
            "li@example.org.eml",
            "reader@example.com.eml"
        ]
    );
    let eml = std::fs::read(workspace.path(".letterpress/outbox/2021-08-23/ada@example.com.eml"))
        .unwrap();
    let message = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(
        message.to().unwrap().first().unwrap().name(),
        Some("Ada Okafor")
    );
}

#[test]
fn send_without_yes_asks_and_refuses_without_a_terminal() {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    let run = workspace.run(&["send", ISSUE]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: refusing to send without confirmation: stdin is not a terminal; pass --yes to send\n"
    );
    assert_eq!(
        workspace
            .ledger()
            .counts(&crate::support::issue(ISSUE))
            .unwrap()
            .sent,
        0
    );
}

#[test]
fn status_without_an_issue_shows_the_next_slots_and_what_went_out() {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    workspace.write(
        "issues/2021-08-30.yaml",
        &crate::support::SMALL_ISSUE.replace("status: ready", "status: draft"),
    );
    workspace.run(&["send", ISSUE, "--yes"]);
    let run = workspace.run(&["status"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "Next slots (America/Toronto):\n  \
         Mon 2021-08-16 09:00 -04:00 -> no issue yet\n  \
         Mon 2021-08-23 09:00 -04:00 -> issues/2021-08-23.yaml (ready)\n  \
         Mon 2021-08-30 09:00 -04:00 -> issues/2021-08-30.yaml (draft: will not be sent)\n\
         Issues in the ledger:\n  \
         2021-08-23  sent 0, failed 0, deferred 0, uncertain 0; 3 in the outbox (delivered to no one)\n"
    );
}

#[test]
fn status_counts_the_suppressed_addresses_by_why() {
    let workspace = TestWorkspace::for_delivery(THREE, FAST);
    {
        let mut ledger = workspace.ledger();
        let now = chrono::Utc::now();
        for address in ["a@example.com", "b@example.com"] {
            ledger
                .suppress(&key(address), &Source::OneClick, None, now)
                .unwrap();
        }
        ledger
            .suppress(
                &key("c@example.com"),
                &Source::Other("editor".into()),
                Some("asked by phone"),
                now,
            )
            .unwrap();
    }
    let run = workspace.run(&["status"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "Next slots (America/Toronto):\n  \
         Mon 2021-08-16 09:00 -04:00 -> no issue yet\n  \
         Mon 2021-08-23 09:00 -04:00 -> issues/2021-08-23.yaml (ready)\n  \
         Mon 2021-08-30 09:00 -04:00 -> no issue yet\n\
         3 addresses suppressed (2 unsubscribed by link, 1 editor)\n"
    );
}
