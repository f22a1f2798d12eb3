//! No issue silently lost or sent twice: the outbox is not a delivery, a relay that refuses
//! the session fails nobody, a late answer is waited for and a lost one leaves the reader
//! uncertain, international addresses, proofs with their own Message-ID, headers within
//! 998 octets, what a relay says shown safely, private files. Each against a real server
//! over TCP (the testkit) and the real binary.

use std::time::Duration;

use letterpress_testkit::{Behaviour, Reply, SmtpServer, Stage, Target};
use mail_parser::MessageParser;

use crate::support::{TestWorkspace, issue, numbered_subscribers};

const ISSUE: &str = "2021-08-23";
const FAST: &str = "delivery:\n  concurrency: 2\n  max_attempts: 2\n  timeout_seconds: 2\n";

fn counts(workspace: &TestWorkspace) -> letterpress::ledger::Counts {
    workspace.ledger().counts(&issue(ISSUE)).unwrap()
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
fn what_went_to_the_outbox_still_goes_out_through_the_relay() {
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(11), FAST);
    // No relay: a new shell, cron without its environment file.
    let outbox = workspace.run(&["send", ISSUE, "--yes"]);
    assert_eq!(outbox.status, 0, "{outbox:?}");
    assert!(
        outbox.stdout.contains(
            "sent 0, failed 0, deferred 0, uncertain 0; 11 in the outbox (delivered to no one)"
        ),
        "{}",
        outbox.stdout
    );
    let written = counts(&workspace);
    assert_eq!((written.sent, written.outbox), (0, 11));

    let server = SmtpServer::start_in_background(Behaviour::new());
    let relay = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(relay.status, 0, "{relay:?}");
    assert!(
        relay.stderr.contains(
            "11 recipient(s) whose message only went to the outbox will get it through the relay."
        ),
        "{}",
        relay.stderr
    );
    assert_eq!(server.message_count(), 11);
    let delivered = counts(&workspace);
    assert_eq!((delivered.sent, delivered.outbox), (11, 0));
    // And only once.
    let again = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert!(again.stdout.starts_with("Nothing to send"), "{again:?}");
    assert_eq!(server.message_count(), 11);
}

#[test]
fn the_scheduler_refuses_to_start_without_a_relay_unless_told_to_use_the_outbox() {
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(3), FAST);
    let run = workspace.run(&["run", "--once"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: no relay: set LETTERPRESS_SMTP_URL (for example smtps://user:password@smtp.example.com:465) so the scheduler can send, or pass --outbox to try it with the messages written to .letterpress/outbox/\n"
    );
    assert!(!workspace.path(".letterpress/ledger.sqlite3").exists());
    let tried = workspace.run(&["run", "--once", "--outbox"]);
    assert_eq!(tried.status, 0, "{tried:?}");
}

#[test]
fn a_relay_that_refuses_the_session_or_the_sender_stops_the_run_and_fails_nobody() {
    for (behaviour, reply) in [
        (
            Behaviour::new().auth("user", "secret"),
            "530 5.7.0 Authentication required",
        ),
        (
            Behaviour::new().mail_reply(Target::Any, (553, "5.7.1 Sender address not owned")),
            "553 5.7.1 Sender address not owned",
        ),
        (
            Behaviour::new().rcpt_reply(
                Target::Any,
                (
                    504,
                    "5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
                ),
            ),
            "504 5.5.2 <vm>: Helo command rejected: need fully-qualified hostname",
        ),
    ] {
        let server = SmtpServer::start_in_background(behaviour);
        let workspace = TestWorkspace::for_delivery(&numbered_subscribers(30), FAST);
        let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
        assert_eq!(run.status, 1, "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "error: stopped: {reply}. Nobody was failed: fix it and run `letterpress send {ISSUE}` again."
            )),
            "{}",
            run.stderr
        );
        let after = counts(&workspace);
        assert_eq!((after.failed, after.sent), (0, 0), "{reply}");
        assert_eq!(after.pending + after.deferred, 30, "{reply}");

        // Fixed: everyone gets it, nobody was lost.
        server.set_behaviour(Behaviour::new());
        let fixed = workspace.send(&server.url(), &[ISSUE, "--yes"]);
        assert_eq!(fixed.status, 0, "{fixed:?}");
        assert_eq!(server.message_count(), 30, "{reply}");
    }
}

#[test]
fn the_same_refusal_of_the_message_ten_times_in_a_row_stops_and_puts_the_readers_back() {
    let server = SmtpServer::start_in_background(
        Behaviour::new().data_reply(Target::Any, (554, "5.7.1 Message rejected as spam")),
    );
    // Four connections: the refusals still in flight when the run stops go back too.
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(40),
        "delivery:\n  concurrency: 4\n  timeout_seconds: 2\n",
    );
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("error: stopped: the relay refused the message itself for many readers in a row (554 5.7.1 Message rejected as spam): it refuses this issue, not them."),
        "{}",
        run.stderr
    );
    let after = counts(&workspace);
    assert_eq!(after.failed, 0, "{after:?}");
    assert_eq!(after.pending, 40, "{after:?}");
    let data = server.commands().data;
    assert!(
        (10..=13).contains(&data),
        "stopped after ten, and those in flight: {data}"
    );
}

#[test]
fn readers_refused_for_good_are_tried_again_with_retry_failed() {
    let server = SmtpServer::start_in_background(
        Behaviour::new()
            .rcpt_reply("reader1@example.com", Reply::user_unknown())
            .rcpt_reply("reader2@example.com", Reply::user_unknown()),
    );
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(4), FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(counts(&workspace).failed, 2);
    let status = workspace.run(&["status", ISSUE]);
    assert!(
        status
            .stdout
            .contains("`letterpress send 2021-08-23 --retry-failed` tries the failed ones again"),
        "{}",
        status.stdout
    );

    server.set_behaviour(Behaviour::new());
    let plain = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert!(plain.stdout.starts_with("Nothing to send"), "{plain:?}");
    let retried = workspace.send(&server.url(), &[ISSUE, "--yes", "--retry-failed"]);
    assert_eq!(retried.status, 0, "{retried:?}");
    assert!(
        retried
            .stderr
            .contains("2 recipient(s) the relay refused will be tried again (--retry-failed)."),
        "{}",
        retried.stderr
    );
    assert_eq!(
        recipients_of(&server),
        [
            "reader0@example.com",
            "reader1@example.com",
            "reader2@example.com",
            "reader3@example.com"
        ]
    );
}

#[test]
fn a_late_answer_to_the_final_dot_is_waited_for_and_the_message_goes_once() {
    // The relay scans each message for three seconds; commands time out after one.
    let server = SmtpServer::start_in_background(Behaviour::new().stall(
        Stage::DataEnd,
        Target::Any,
        Duration::from_secs(3),
    ));
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(4),
        "delivery:\n  concurrency: 4\n  timeout_seconds: 1\n",
    );
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(server.message_count(), 4);
    let after = counts(&workspace);
    assert_eq!((after.sent, after.sending, after.deferred), (4, 0, 0));
}

#[test]
fn the_hello_name_is_fully_qualified_or_the_one_the_url_gives() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(1), FAST);
    assert_eq!(workspace.send(&server.url(), &[ISSUE, "--yes"]).status, 0);
    let hello = server.messages()[0].helo.clone().unwrap();
    assert!(hello.contains('.'), "{hello}");

    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(1), FAST);
    let url = format!("{}?ehlo=mail.example.org", server.url());
    assert_eq!(workspace.send(&url, &[ISSUE, "--yes"]).status, 0);
    assert_eq!(
        server.messages()[0].helo.as_deref(),
        Some("mail.example.org")
    );
}

#[test]
fn one_mailbox_spelled_three_ways_is_one_reader_and_check_says_so() {
    let workspace = TestWorkspace::for_delivery(
        "- email: user@bücher.example\n- email: user@xn--bcher-kva.example\n- email: user@bu\u{308}cher.example\n",
        FAST,
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stdout.contains("subscribers.example.yaml:2:10: [1].email: `user@xn--bcher-kva.example` is already on the list as [0] (line 1); addresses are compared without case"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("subscribers.example.yaml:3:10: [2].email:"),
        "{}",
        run.stdout
    );
}

#[test]
fn international_domains_go_out_in_ascii_and_local_parts_only_with_smtputf8() {
    let list = "- email: user@bücher.example\n- email: josé@example.com\n  name: José\n";
    // A relay without SMTPUTF8: the IDN reader gets it; José waits, deferred, with why.
    let server = SmtpServer::start_in_background(Behaviour::new().without_smtputf8());
    let workspace = TestWorkspace::for_delivery(list, FAST);
    let check = workspace.run(&["check"]);
    assert!(check.stdout.contains("warning: [1].email: `josé@example.com` has a non-ASCII local part: only a relay that offers SMTPUTF8 (RFC 6531) can deliver to it"), "{}", check.stdout);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(recipients_of(&server), ["user@xn--bcher-kva.example"]);
    let message = &server.messages()[0];
    assert!(message.mail_params.iter().all(|param| param != "SMTPUTF8"));
    let headers = String::from_utf8_lossy(&message.data);
    assert!(
        headers.contains("\r\nTo: user@xn--bcher-kva.example\r\n"),
        "{headers}"
    );
    assert!(run.stdout.contains("deferred (retried on the next send):\n  josé@example.com  `josé@example.com` has a non-ASCII local part and the relay does not offer SMTPUTF8 (RFC 6531)"), "{}", run.stdout);
    assert_eq!(counts(&workspace).failed, 0);

    // Through a relay that offers it, José gets it, with UTF-8 headers (RFC 6532).
    let server = SmtpServer::start_in_background(Behaviour::new());
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    let message = &server.messages()[0];
    assert_eq!(message.rcpt_to, ["josé@example.com"]);
    assert!(message.mail_params.iter().any(|param| param == "SMTPUTF8"));
}

#[test]
fn a_proof_has_its_own_message_id_greets_by_name_and_its_link_unsubscribes_nobody() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::example();
    let proof = |to: &str| {
        let run = crate::support::Run::from(
            workspace
                .sender(&server.url())
                .args(["test", ISSUE, "--to", to])
                .output()
                .unwrap(),
        );
        assert_eq!(run.status, 0, "{run:?}");
    };
    proof("ada.okafor@example.com");
    proof("ada.okafor@example.com");
    let real = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(real.status, 0, "{real:?}");

    let parsed: Vec<(String, String, String)> = server
        .messages()
        .iter()
        .filter(|message| message.rcpt_to == ["ada.okafor@example.com"])
        .map(|message| {
            let parsed = MessageParser::default().parse(&message.data).unwrap();
            (
                parsed.message_id().unwrap().to_string(),
                parsed.body_text(0).unwrap().to_string(),
                parsed.header_raw("List-Unsubscribe").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(parsed.len(), 3);
    let ids: std::collections::HashSet<&str> =
        parsed.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids.len(),
        3,
        "each proof and the issue have their own Message-ID"
    );
    assert!(parsed[0].1.contains("Hi Ada Okafor,"), "{}", parsed[0].1);
    assert!(
        parsed[0].2.contains("/unsubscribe/test."),
        "{}",
        parsed[0].2
    );
    assert!(
        !parsed[2].2.contains("/unsubscribe/test."),
        "{}",
        parsed[2].2
    );

    // The proof's one-click link, posted: nobody is unsubscribed.
    let serve = crate::support::ServeProcess::start(&workspace);
    let link = parsed[0]
        .2
        .split(['<', '>'])
        .find(|part| part.starts_with("https://"))
        .unwrap();
    let path = &link[link.find("/unsubscribe/").unwrap()..];
    let reply = crate::support::one_click(&serve.url(path));
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains("This link came in a test"),
        "{}",
        reply.body
    );
    assert!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada.okafor@example.com"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn no_header_line_exceeds_998_octets_even_for_the_nastiest_names_check_accepts() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let long_name = format!(
        "\"{}\"",
        "Maximiliana, the \\\"Longest\\\" Name ".repeat(40)
    );
    let workspace = TestWorkspace::for_delivery(
        &format!(
            "- email: ada@example.com\n  name: {long_name}\n- email: li@example.org\n  name: {}\n",
            "李".repeat(400)
        ),
        FAST,
    );
    let word = "x".repeat(1100);
    workspace.replace(
        "issues/2021-08-23.yaml",
        "subject: \"Global AI Weekly #1: Foundation models, Codex API and Tesla's Dojo\"",
        &format!("subject: \"Big {word} news\""),
    );
    workspace.replace(
        "newsletter.yaml",
        "from: \"Global AI Weekly <weekly@example.com>\"",
        &format!(
            "from: \"{} <weekly@example.com>\"",
            "Global AI Weekly ".repeat(30)
        ),
    );
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(server.message_count(), 2);
    for message in server.messages() {
        for line in message.data.split(|byte| *byte == b'\n') {
            assert!(line.len() <= 998 + 1, "a line of {} octets", line.len());
        }
        let parsed = MessageParser::default().parse(&message.data).unwrap();
        assert_eq!(parsed.subject(), Some(format!("Big {word} news").as_str()));
    }
}

#[test]
fn what_a_relay_says_is_printed_with_its_control_characters_escaped() {
    let server = SmtpServer::start_in_background(Behaviour::new().rcpt_reply(
        "reader0@example.com",
        (550, "5.1.1 \u{1b}[2J\u{1b}]0;owned\u{7} no such user"),
    ));
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(2), FAST);
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    assert!(
        run.stdout
            .contains("550 5.1.1 \\u{1b}[2J\\u{1b}]0;owned\\u{7} no such user"),
        "{}",
        run.stdout
    );
    let status = workspace.run(&["status", ISSUE]);
    assert!(!status.stdout.contains('\u{1b}'), "{:?}", status.stdout);
}

#[cfg(unix)]
#[test]
fn the_state_folder_and_everything_in_it_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(2), FAST);
    let run = workspace.run(&["send", ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(mode(&workspace.path(".letterpress")), 0o700);
    assert_eq!(mode(&workspace.path(".letterpress/ledger.sqlite3")), 0o600);
    assert_eq!(mode(&workspace.path(".letterpress/secret")), 0o600);
    let outbox = workspace.path(".letterpress/outbox/2021-08-23");
    assert_eq!(mode(&outbox), 0o700);
    for entry in std::fs::read_dir(&outbox).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
    }

    std::fs::set_permissions(
        workspace.path(".letterpress/secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // Said by what uses the secret, and by the commands an editor runs to look things over.
    for command in [&["render", ISSUE][..], &["check"], &["status"]] {
        let run = workspace.run(command);
        assert!(
            run.stderr
                .contains("warning: .letterpress/secret can be read by others (mode 644)"),
            "{command:?}: {}",
            run.stderr
        );
    }
}
