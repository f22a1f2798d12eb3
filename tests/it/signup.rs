//! Sign-up with double opt-in, end to end: a real `letterpress serve`, the confirmation
//! email through testkit's SMTP server, the link in it followed, and the next send.

use std::time::Duration;

use crate::support::{Reply, ServeProcess, TestWorkspace, get, http, key, one_click};
use letterpress_testkit::{Behaviour, ReceivedMessage, SmtpServer};
use mail_parser::MessageParser;

const ISSUE: &str = "2021-08-23";
const FAST: &str = "delivery:\n  concurrency: 2\n  max_attempts: 2\n  timeout_seconds: 2\n";
const LIST: &str = "- email: ada@example.com\n  name: Ada Okafor\n- email: left@example.org\n  status: unsubscribed\n";

fn workspace() -> TestWorkspace {
    TestWorkspace::for_delivery(LIST, FAST)
}

fn serve(workspace: &TestWorkspace, smtp: &SmtpServer, now: &str) -> ServeProcess {
    ServeProcess::start_with(
        workspace,
        &[
            ("LETTERPRESS_SMTP_URL", &smtp.url()),
            ("LETTERPRESS_NOW", now),
        ],
    )
}

fn sign_up(server: &ServeProcess, body: &str) -> Reply {
    http("POST", &server.url("/subscribe"), Some(body))
}

/// The confirmation link in a message, with the site's address replaced by the server's.
fn link(server: &ServeProcess, message: &ReceivedMessage) -> String {
    let parsed = MessageParser::default().parse(&message.data).unwrap();
    let text = parsed.body_text(0).unwrap();
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with("https://weekly.example.com/confirm/"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    link.replace("https://weekly.example.com", &server.base)
}

/// Waits for the `n`th message the relay accepts.
fn nth_message(smtp: &SmtpServer, n: usize) -> ReceivedMessage {
    smtp.wait_for_messages_blocking(n, Duration::from_secs(20))
        .unwrap()
        .remove(n - 1)
}

/// Who got the issue, as the relay saw it.
fn issue_recipients(smtp: &SmtpServer) -> Vec<String> {
    let mut recipients: Vec<String> = smtp
        .messages()
        .iter()
        .filter(|message| message.header("List-Unsubscribe").is_some())
        .flat_map(|message| message.rcpt_to.clone())
        .collect();
    recipients.sort();
    recipients
}

#[test]
fn a_reader_signs_up_confirms_with_the_emailed_link_and_gets_the_next_issue_once() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");

    let page = get(&server.url("/subscribe"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("<h1 class=\"lp-page-heading\">Subscribe to Global AI Weekly</h1>")
    );
    assert!(page.body.contains("name=\"email\"") && !page.body.contains("<script"));
    assert_eq!(
        page.header("content-security-policy")
            .map(|p| p.contains("default-src 'none'")),
        Some(true)
    );

    let reply = sign_up(
        &server,
        "email=New.Reader%40Example.org&name=New+Reader&website=",
    );
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains("<h1 class=\"lp-page-heading\">Check your inbox</h1>")
    );
    let mail = nth_message(&smtp, 1);
    assert_eq!(mail.rcpt_to, ["New.Reader@example.org"]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("Confirm your subscription to Global AI Weekly")
    );
    assert_eq!(
        mail.header("To").as_deref(),
        Some("New Reader <New.Reader@example.org>")
    );
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let confirm = link(&server, &mail);

    // Not a reader until they confirm.
    let run = workspace.send(&smtp.url(), &[ISSUE, "--yes", "--dry-run"]);
    assert!(
        run.stdout
            .starts_with("Dry run of 2021-08-23: 1 message built"),
        "{run:?}"
    );

    // A GET (a mail scanner) changes nothing.
    for _ in 0..2 {
        let page = get(&confirm);
        assert_eq!(page.status, 200);
        assert!(
            page.body
                .contains("<h1 class=\"lp-page-heading\">Confirm your subscription</h1>")
        );
        assert!(page.body.contains("n***@e***.org"));
    }
    let ledger = workspace.ledger();
    let signup = ledger
        .signup(&key("new.reader@example.org"))
        .unwrap()
        .unwrap();
    assert!(!signup.is_confirmed());
    assert_eq!(signup.requested.ip.as_deref(), Some("127.0.0.1"));
    assert!(
        signup
            .requested
            .agent
            .as_deref()
            .unwrap()
            .starts_with("ureq/")
    );

    let done = http("POST", &confirm, None);
    assert_eq!(done.status, 200);
    assert!(
        done.body
            .contains("<h1 class=\"lp-page-heading\">You are subscribed</h1>"),
        "{}",
        done.body
    );
    let again = http("POST", &confirm, None);
    assert_eq!((again.status, &again.body), (200, &done.body));

    // The next send: Ada from the file, the new reader from the web, once each.
    let run = workspace.send(&smtp.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        issue_recipients(&smtp),
        ["New.Reader@example.org", "ada@example.com"]
    );
    let issue = smtp
        .messages()
        .into_iter()
        .find(|message| {
            message.rcpt_to == ["New.Reader@example.org"]
                && message.header("List-Unsubscribe").is_some()
        })
        .unwrap();
    assert!(issue.data_str().contains("Hi New Reader,"));
    // Their unsubscribe link works on the server that confirmed them.
    let header = issue.header("List-Unsubscribe").unwrap();
    let https = header
        .split(['<', '>'])
        .find(|part| part.starts_with("https://"))
        .unwrap()
        .replace("https://weekly.example.com", &server.base);
    let page = get(&https);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("n***@e***.org gets Global AI Weekly."),
        "{}",
        page.body
    );

    let show = workspace.run(&["subscribers", "show", "new.reader@example.org"]);
    assert_eq!(show.status, 0, "{show:?}");
    assert!(show.stdout.contains("  source:   web\n"), "{}", show.stdout);
    assert!(
        show.stdout
            .contains("    asked:     2021-08-16 12:00:00 UTC from 127.0.0.1, user agent ureq/")
    );
    assert!(
        show.stdout
            .contains("    confirmed: 2021-08-16 12:00:00 UTC from 127.0.0.1")
    );
    assert!(
        show.stdout.contains("    2021-08-23  sent"),
        "{}",
        show.stdout
    );
    let status = workspace.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("Web sign-ups: 1 confirmed, 0 awaiting confirmation\n")
    );
}

#[test]
fn a_known_and_an_unknown_address_get_the_same_page_and_only_the_unknown_a_mail() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    let known = sign_up(&server, "email=ada%40example.com&name=");
    let unknown = sign_up(&server, "email=bob%40example.com&name=");
    let unsubscribed = sign_up(&server, "email=left%40example.org");
    assert_eq!(known.status, unknown.status);
    assert_eq!(unknown.status, unsubscribed.status);
    assert_eq!(
        known.body.replace("ada@example.com", "X"),
        unknown.body.replace("bob@example.com", "X")
    );
    assert_eq!(
        unsubscribed.body.replace("left@example.org", "X"),
        unknown.body.replace("bob@example.com", "X")
    );
    let headers = |reply: &Reply| {
        let mut names: Vec<String> = reply
            .headers
            .iter()
            .filter(|(name, _)| name != "date" && name != "content-length")
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(headers(&known), headers(&unknown));
    nth_message(&smtp, 1);
    std::thread::sleep(Duration::from_millis(500));
    let to: Vec<Vec<String>> = smtp.messages().into_iter().map(|m| m.rcpt_to).collect();
    assert_eq!(to, [["bob@example.com"]]);
}

#[test]
fn a_bad_address_gets_the_form_back_and_the_honeypot_gets_nothing() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    let bad = sign_up(&server, "email=bob%40&name=Bob");
    assert_eq!(bad.status, 422);
    assert!(
        bad.body
            .contains("“bob@” is not an email address; check it for typos.")
    );
    assert!(bad.body.contains("value=\"Bob\""));
    // Bytes that are not UTF-8 are no address either (decoded, they would be U+FFFD).
    assert_eq!(sign_up(&server, "email=%ff%fe%40example.com").status, 422);
    let bot = sign_up(
        &server,
        "email=bot%40example.com&name=&website=http%3A%2F%2Fspam.example",
    );
    assert_eq!(bot.status, 200);
    assert!(bot.body.contains("Check your inbox"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(smtp.message_count(), 0);
    assert!(
        workspace
            .ledger()
            .signup(&key("bot@example.com"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_address_gets_at_most_three_confirmation_emails_a_day() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    for _ in 0..5 {
        assert_eq!(sign_up(&server, "email=bob%40example.com").status, 200);
    }
    nth_message(&smtp, 3);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(smtp.message_count(), 3);
    drop(server);
    // A day later, one more.
    let server = serve(&workspace, &smtp, "2021-08-17T12:00:01Z");
    sign_up(&server, "email=bob%40example.com");
    nth_message(&smtp, 4);
}

#[test]
fn a_link_expires_after_seven_days_and_offers_to_sign_up_again() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    sign_up(&server, "email=bob%40example.com");
    let confirm = link(&server, &nth_message(&smtp, 1));
    let path = confirm.trim_start_matches(&server.base).to_string();
    drop(server);
    let later = serve(&workspace, &smtp, "2021-08-23T12:00:01Z");
    for reply in [
        get(&later.url(&path)),
        http("POST", &later.url(&path), None),
    ] {
        assert_eq!(reply.status, 410);
        assert!(
            reply
                .body
                .contains("<h1 class=\"lp-page-heading\">This link has expired</h1>")
        );
        assert!(reply.body.contains("href=\"../subscribe\""));
    }
    let forged = get(&later.url(&format!("{path}x")));
    assert_eq!(forged.status, 404);
    assert!(forged.body.contains("This link does not work"));
    assert!(
        !workspace
            .ledger()
            .signup(&key("bob@example.com"))
            .unwrap()
            .unwrap()
            .is_confirmed()
    );
}

#[test]
fn a_reader_who_unsubscribed_by_link_is_back_once_they_confirm_a_new_sign_up() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    let token = letterpress::secret::Secret::from_passphrase(crate::support::SECRET)
        .unwrap()
        .unsubscribe_token(
            "global-ai-weekly.weekly.example.com",
            &key("ada@example.com"),
        );
    assert_eq!(
        one_click(&server.url(&format!("/unsubscribe/{token}"))).status,
        200
    );
    drop(server);
    let server = serve(&workspace, &smtp, "2021-08-16T13:00:00Z");
    sign_up(&server, "email=ada%40example.com");
    let confirm = link(&server, &nth_message(&smtp, 1));
    let done = http("POST", &confirm, None);
    assert!(done.body.contains("You are subscribed"), "{}", done.body);
    assert_eq!(
        workspace
            .ledger()
            .suppression(&key("ada@example.com"))
            .unwrap(),
        None
    );
    let run = workspace.send(&smtp.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(issue_recipients(&smtp), ["ada@example.com"]);
}

#[test]
fn an_address_the_editor_suppressed_is_never_added_by_the_form() {
    let smtp = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace();
    let server = serve(&workspace, &smtp, "2021-08-16T12:00:00Z");
    // A link mailed before the editor removed the address...
    sign_up(&server, "email=bob%40example.com");
    let confirm = link(&server, &nth_message(&smtp, 1));
    let removed = workspace.run(&["subscribers", "remove", "bob@example.com"]);
    assert_eq!(removed.status, 0, "{removed:?}");
    // ...does not add it, and a new sign-up mails nothing.
    let refused = http("POST", &confirm, None);
    assert!(
        refused.body.contains("We could not subscribe you"),
        "{}",
        refused.body
    );
    let again = sign_up(&server, "email=bob%40example.com");
    assert!(again.body.contains("Check your inbox"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(smtp.message_count(), 1);
    let run = workspace.send(&smtp.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(issue_recipients(&smtp), ["ada@example.com"]);
    let list = workspace.run(&["subscribers", "list", "--status", "suppressed"]);
    assert!(
        list.stdout.contains("bob@example.com  web       suppressed    2021-08-16 12:00  manual (removed with `letterpress subscribers remove`)"),
        "{}",
        list.stdout
    );
}
