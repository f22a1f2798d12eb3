//! Bounces and complaints end to end: sends with a VERP envelope sender per reader (testkit
//! records it), refusals at RCPT suppressed as they happen, and `bounces ingest` and `bounces
//! fetch` (against a real Dovecot) turning reports shaped like the big receivers' into ledger
//! rows and suppressions by the README's policy.

use std::collections::HashMap;
use std::io::Write;

use crate::dovecot::{Dovecot, Folder};
use crate::support::{SMALL_ISSUE, TestWorkspace, issue, key};
use letterpress::bounce::imap_url::PROCESSED_FOLDER;
use letterpress::ledger::{ReportKind, Source};
use letterpress_testkit::{Behaviour, Reply, SmtpServer};

const FAST: &str = "delivery:\n  concurrency: 4\n  max_attempts: 3\n  timeout_seconds: 2\n";
const FOUR: &str = "- email: ada@example.org\n- email: bob@example.org\n- email: chloe@example.org\n- email: dan@example.org\n";
const ISSUES: [&str; 3] = ["2021-08-23", "2021-08-30", "2021-09-06"];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/bounces/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The four readers' workspace, with `bounce_address` set and three ready issues.
fn workspace() -> TestWorkspace {
    let workspace = TestWorkspace::for_delivery(FOUR, FAST);
    let settings = workspace.read("newsletter.yaml");
    workspace.write(
        "newsletter.yaml",
        &format!("{settings}bounce_address: bounces@example.com\n"),
    );
    for date in &ISSUES[1..] {
        workspace.write(
            &format!("issues/{date}.yaml"),
            &SMALL_ISSUE.replace("date: 2021-08-30", &format!("date: {date}")),
        );
    }
    workspace
}

/// Sends each issue, a day apart, and returns the VERP tag each reader's message of each issue
/// went out with, by (issue, reader).
fn send_all(workspace: &TestWorkspace, server: &SmtpServer) -> HashMap<(String, String), String> {
    for (day, id) in ISSUES.iter().enumerate() {
        let run = workspace
            .sender(&server.url())
            .env(
                "LETTERPRESS_NOW",
                format!("2021-09-{:02}T12:00:00Z", day + 1),
            )
            .args(["send", id, "--yes"])
            .output()
            .unwrap();
        assert!(run.status.success(), "{run:?}");
    }
    let mut tags = HashMap::new();
    for message in server.messages() {
        let message_id = message.header("Message-ID").unwrap();
        let id = ISSUES
            .iter()
            .find(|id| message_id.starts_with(&format!("<{id}.")))
            .unwrap();
        let tag = message
            .mail_from
            .strip_prefix("bounces+")
            .and_then(|rest| rest.strip_suffix("@example.com"))
            .unwrap_or_else(|| panic!("not a VERP sender: {}", message.mail_from));
        tags.insert(
            (id.to_string(), message.rcpt_to[0].clone()),
            tag.to_string(),
        );
    }
    tags
}

/// A fixture's report with its tag (and recipient) replaced by those of a delivery of ours.
fn report_for(fixture_name: &str, old_tag: &str, tag: &str, recipient: &str) -> String {
    fixture(fixture_name)
        .replace(old_tag, tag)
        .replace("nobody@example.org", recipient)
        .replace("full@example.org", recipient)
}

fn tag<'t>(tags: &'t HashMap<(String, String), String>, issue: &str, reader: &str) -> &'t str {
    &tags[&(issue.to_string(), reader.to_string())]
}

fn ingest(workspace: &TestWorkspace, files: &[(&str, String)]) -> crate::support::Run {
    let mut args = vec!["bounces".to_string(), "ingest".to_string()];
    for (name, text) in files {
        workspace.write(name, text);
        args.push(name.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    workspace.run(&args)
}

#[test]
fn each_message_goes_out_from_its_own_verp_address_kept_with_its_row_and_proofs_from_the_bounce_address()
 {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let tags = send_all(&workspace, &server);
    assert_eq!(tags.len(), 12);
    let distinct: std::collections::HashSet<&String> = tags.values().collect();
    assert_eq!(distinct.len(), 12, "one tag per issue and reader");
    let ledger = workspace.ledger();
    for ((id, reader), tag) in &tags {
        assert_eq!(tag.len(), 16);
        let delivered = ledger.delivery_by_verp_tag(tag).unwrap().unwrap();
        assert_eq!(
            (&delivered.issue, &delivered.email),
            (&issue(id), &key(reader))
        );
    }
    // The header From is the newsletter's; only the envelope changes.
    let first = &server.messages()[0];
    assert_eq!(
        first.header("From").as_deref(),
        Some("Global AI Weekly <weekly@example.com>")
    );

    let proof = workspace
        .sender(&server.url())
        .args(["test", ISSUES[0], "--to", "editor@example.com"])
        .output()
        .unwrap();
    assert!(proof.status.success(), "{proof:?}");
    assert_eq!(
        server.messages().last().unwrap().mail_from,
        "bounces@example.com"
    );
}

#[test]
fn a_5xx_to_rcpt_suppresses_the_reader_at_once_with_the_reply_and_retry_failed_lifts_it() {
    let server = SmtpServer::start_in_background(
        Behaviour::new().rcpt_reply("bob@example.org", Reply::user_unknown()),
    );
    let workspace = workspace();
    let run = workspace.send(&server.url(), &[ISSUES[0], "--yes"]);
    assert_eq!(run.status, 1, "{run:?}");
    let ledger = workspace.ledger();
    let bob = key("bob@example.org");
    let suppression = ledger.suppression(&bob).unwrap().unwrap();
    assert_eq!(suppression.source, Source::Bounce);
    let history = ledger.suppression_history(&bob).unwrap();
    assert_eq!(
        history[0].reason.as_deref(),
        Some("refused at RCPT during the send of 2021-08-23: 550 5.1.1 User unknown")
    );
    let reports = ledger.reports_for(&bob).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (
            reports[0].kind,
            reports[0].source.as_str(),
            reports[0].raw.as_slice()
        ),
        (ReportKind::Hard, "smtp", &b"550 5.1.1 User unknown"[..])
    );
    let status = workspace.run(&["status", ISSUES[0]]);
    assert!(
        status
            .stdout
            .contains("bounces: 1 hard, 0 soft (25.0%); complaints: 0 (0.00%)\nwarning: 25.0% of the messages bounced"),
        "{}",
        status.stdout
    );
    // The next issue does not go to bob at all.
    let next = workspace.send(&server.url(), &[ISSUES[1], "--yes"]);
    assert_eq!(next.status, 0, "{next:?}");
    assert!(
        !server
            .messages()
            .iter()
            .any(|message| message.rcpt_to == ["bob@example.org"])
    );
    // The relay was wrong: a retry lifts what its refusals set, and sends again.
    server.set_behaviour(Behaviour::new());
    let retry = workspace.send(&server.url(), &[ISSUES[0], "--yes", "--retry-failed"]);
    assert_eq!(retry.status, 0, "{retry:?}");
    assert!(workspace.ledger().suppression(&bob).unwrap().is_none());
    let history = workspace.ledger().suppression_history(&bob).unwrap();
    assert_eq!(
        history[1].reason.as_deref(),
        Some("send --retry-failed of 2021-08-23")
    );
    assert_eq!(
        server
            .messages()
            .iter()
            .filter(|message| message.rcpt_to == ["bob@example.org"])
            .count(),
        1
    );
}

#[test]
fn hard_bounces_complaints_and_three_soft_bounces_in_a_row_suppress_and_auto_replies_do_not() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let tags = send_all(&workspace, &server);
    let [first, second, third] = ISSUES;

    let hard = report_for(
        "postfix-hard-5.1.1.eml",
        "2rsusdqnst3itmht",
        tag(&tags, first, "ada@example.org"),
        "ada@example.org",
    );
    let soft = |id: &str| {
        report_for(
            "postfix-soft-4.2.2.eml",
            "ugqz36oagkcawiwr",
            tag(&tags, id, "bob@example.org"),
            "bob@example.org",
        )
    };
    let complaint = fixture("arf-yahoo-abuse.eml")
        .replace("4kpmjeefxgnnr7nh", tag(&tags, first, "chloe@example.org"));
    let vacation = fixture("vacation-auto-submitted.eml")
        .replace("6xerklamffr63ur5", tag(&tags, first, "dan@example.org"));
    // A bounce of mail a colleague sent from the same mailbox, and a person's reply.
    let not_ours = fixture("postfix-hard-5.1.1.eml").replace(
        "bounces+2rsusdqnst3itmht@example.com",
        "editors@example.com",
    );

    let run = ingest(
        &workspace,
        &[
            ("in/hard.eml", hard.clone()),
            ("in/soft-1.eml", soft(first)),
            ("in/complaint.eml", complaint),
            ("in/vacation.eml", vacation),
            ("in/soft-2.eml", soft(second)),
            ("in/not-ours.eml", not_ours),
            ("in/reply.eml", fixture("human-reply.eml")),
        ],
    );
    assert_eq!(run.status, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "in/hard.eml: hard bounce (5.1.1) for ada@example.org of 2021-08-23 (by its VERP tag): suppressed",
            "in/soft-1.eml: soft bounce (4.2.2) for bob@example.org of 2021-08-23 (by its VERP tag): counted",
            "in/complaint.eml: complaint (feedback type abuse) for chloe@example.org of 2021-08-23 (by its VERP tag): suppressed",
            "in/vacation.eml: an automatic reply for dan@example.org of 2021-08-23 (by its VERP tag): kept, nothing to do",
            "in/soft-2.eml: soft bounce (4.2.2) for bob@example.org of 2021-08-30 (by its VERP tag): counted",
            "in/not-ours.eml: hard bounce (5.1.1): about no delivery of ours; ignored",
            "in/reply.eml: not a bounce, complaint or automatic reply: about no delivery of ours; ignored",
            "7 messages: 1 hard bounce, 2 soft, 1 complaint, 1 asking nothing, 2 not about our mail, 0 already recorded; 2 addresses taken off the list",
        ]
    );
    let ledger = workspace.ledger();
    assert!(
        ledger
            .suppression(&key("bob@example.org"))
            .unwrap()
            .is_none()
    );
    assert!(
        ledger
            .suppression(&key("dan@example.org"))
            .unwrap()
            .is_none()
    );

    // The third soft bounce in a row, from standard input as a mail server hands it over.
    let mut child = workspace
        .std_command()
        .args(["bounces", "ingest", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut third_bounce = b"From MAILER-DAEMON Fri Sep  3 13:30:09 2021\n".to_vec();
    third_bounce.extend_from_slice(soft(third).as_bytes());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&third_bounce)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(
            "standard input: soft bounce (4.2.2) for bob@example.org of 2021-09-06 (by its VERP tag): suppressed\n"
        )
    );

    let ledger = workspace.ledger();
    let source = |reader: &str| {
        ledger
            .suppression(&key(reader))
            .unwrap()
            .map(|suppression| suppression.source)
    };
    assert_eq!(source("ada@example.org"), Some(Source::Bounce));
    assert_eq!(source("bob@example.org"), Some(Source::Bounce));
    assert_eq!(source("chloe@example.org"), Some(Source::Complaint));
    assert_eq!(source("dan@example.org"), None);
    let ada = ledger.reports_for(&key("ada@example.org")).unwrap();
    assert_eq!(ada[0].raw, hard.as_bytes(), "the report is kept whole");
    assert_eq!(
        ada[0].detail.as_deref(),
        Some(
            "smtp; 550 5.1.1 <ada@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
        )
    );
    let bob = ledger.reports_for(&key("bob@example.org")).unwrap();
    assert_eq!(bob.len(), 3);
    assert!(bob.iter().all(|report| report.kind == ReportKind::Soft));
    let history = ledger.suppression_history(&key("bob@example.org")).unwrap();
    assert!(
        history[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("soft bounces from the last 3 issues in a row, the latest of 2021-09-06: 4.2.2 smtp; 452 4.2.2"),
        "{history:?}"
    );

    // Reading the same mail again changes nothing.
    let again = workspace.run(&["bounces", "ingest", "in/hard.eml", "in/complaint.eml"]);
    assert_eq!(again.status, 0);
    assert!(
        again
            .stdout
            .ends_with("2 already recorded; 0 addresses taken off the list\n"),
        "{}",
        again.stdout
    );
    assert_eq!(
        ledger.reports_for(&key("ada@example.org")).unwrap().len(),
        1
    );

    let status = workspace.run(&["status", first, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["sent"], 4);
    assert_eq!(json["hard_bounces"], 1);
    assert_eq!(json["soft_bounces"], 1);
    assert_eq!(json["complaints"], 1);
    assert_eq!(json["bounce_rate"], 50.0);
    assert_eq!(json["complaint_rate"], 25.0);
    assert_eq!(json["warnings"].as_array().unwrap().len(), 2);
    // The next issue goes to dan alone: the other three are off the list.
    workspace.write(
        "issues/2021-09-13.yaml",
        &SMALL_ISSUE.replace("date: 2021-08-30", "date: 2021-09-13"),
    );
    let sent = workspace.send(&server.url(), &["2021-09-13", "--yes"]);
    assert!(
        sent.stdout.contains("to 1 subscriber via"),
        "{}",
        sent.stdout
    );
}

#[test]
fn fetch_records_our_reports_moves_them_aside_and_leaves_every_other_message_as_it_was() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let tags = send_all(&workspace, &server);
    let hard = report_for(
        "postfix-hard-5.1.1.eml",
        "2rsusdqnst3itmht",
        tag(&tags, ISSUES[0], "ada@example.org"),
        "ada@example.org",
    );
    let vacation = fixture("vacation-auto-submitted.eml")
        .replace("6xerklamffr63ur5", tag(&tags, ISSUES[0], "dan@example.org"));
    dovecot.deliver(Folder::Inbox, None, hard.as_bytes());
    dovecot.deliver(Folder::Inbox, None, vacation.as_bytes());
    dovecot.deliver(Folder::Inbox, None, fixture("human-reply.eml").as_bytes());
    dovecot.deliver(
        Folder::Inbox,
        Some("FS"),
        fixture("postfix-hard-5.1.1.eml").as_bytes(),
    );
    workspace.write("imap-ca.pem", &dovecot.ca_pem);

    let fetch = || {
        let output = workspace
            .std_command()
            .env("LETTERPRESS_BOUNCE_IMAP_URL", dovecot.imaps_url())
            .env("LETTERPRESS_SMTP_CA", workspace.path("imap-ca.pem"))
            .args(["bounces", "fetch"])
            .output()
            .unwrap();
        crate::support::Run::from(output)
    };
    let run = fetch();
    assert_eq!(run.status, 0, "{run:?}\n{}", dovecot.log());
    assert!(!run.stdout.contains(crate::dovecot::PASSWORD));
    assert!(
        run.stdout.contains(
            "2 messages moved (UID MOVE) to letterpress-processed; 2 left in INBOX as they were"
        ),
        "{}",
        run.stdout
    );
    let ledger = workspace.ledger();
    assert_eq!(
        ledger
            .suppression(&key("ada@example.org"))
            .unwrap()
            .unwrap()
            .source,
        Source::Bounce
    );
    let ada = ledger.reports_for(&key("ada@example.org")).unwrap();
    assert!(
        ada[0].source.starts_with("imaps://bounces@127.0.0.1:"),
        "{}",
        ada[0].source
    );
    assert!(
        ledger
            .suppression(&key("dan@example.org"))
            .unwrap()
            .is_none()
    );

    let processed = dovecot.stored(Folder::Named(PROCESSED_FOLDER));
    assert_eq!(processed.len(), 2);
    let inbox = dovecot.stored(Folder::Inbox);
    assert_eq!(inbox.len(), 2);
    let flags: Vec<&str> = {
        let mut flags: Vec<&str> = inbox.iter().map(|message| message.flags.as_str()).collect();
        flags.sort_unstable();
        flags
    };
    assert_eq!(
        flags,
        ["", "FS"],
        "untouched: unread stays unread, flags stay"
    );

    let again = fetch();
    assert_eq!(again.status, 0);
    assert!(
        again
            .stdout
            .contains("0 messages moved (UID MOVE) to letterpress-processed; 2 left in INBOX"),
        "{}",
        again.stdout
    );
    assert_eq!(dovecot.stored(Folder::Inbox).len(), 2);
}
