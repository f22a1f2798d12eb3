//! The bounce mailbox over IMAP against a real Dovecot (`dovecot.rs`): reports of
//! ours move to `letterpress-processed`, and every other message stays exactly as it was,
//! flags included, whichever way the server lets messages be moved.

use std::collections::HashSet;
use std::time::Duration;

use crate::dovecot::{Dovecot, Folder, PASSWORD, Stored};
use letterpress::bounce::imap::{self, Disposition, ImapError, Mailbox, SettleMethod, Summary};
use letterpress::bounce::imap_url::{ImapUrl, PROCESSED_FOLDER};
use letterpress::bounce::{BounceKind, IgnoredReason, RawMessage, Report, VerpTag, classify};
use letterpress::delivery::smtp::TlsSettings;
use letterpress::model::address::EmailAddress;

const TIMEOUT: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/bounces/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The tags the ledger knows in these tests: those of the hard bounce, the complaint and the
/// vacation reply fixtures.
fn known_tags() -> HashSet<VerpTag> {
    ["2rsusdqnst3itmht", "4kpmjeefxgnnr7nh", "6xerklamffr63ur5"]
        .iter()
        .map(|tag| VerpTag::parse(tag).unwrap())
        .collect()
}

/// What `bounces fetch` will do with each message, with a set of tags standing in for the
/// ledger: processed when no report needs a person and one names one of our deliveries,
/// left alone otherwise.
fn ledger_stand_in(
    seen: &mut Vec<Vec<Report>>,
) -> impl FnMut(&RawMessage) -> Result<Disposition, ImapError> + '_ {
    let bounce_address = EmailAddress::parse("bounces@example.com").unwrap();
    let known = known_tags();
    move |message| {
        assert!(message.source.contains(";UID="), "{}", message.source);
        assert!(!message.source.contains(PASSWORD));
        let reports = classify(&message.bytes, Some(&bounce_address));
        let ours = !reports.iter().any(Report::needs_a_person)
            && reports
                .iter()
                .any(|report| report.verp_tag().is_some_and(|tag| known.contains(tag)));
        seen.push(reports);
        Ok(if ours {
            Disposition::Processed
        } else {
            Disposition::Leave
        })
    }
}

fn tls(dovecot: &Dovecot) -> TlsSettings {
    TlsSettings::with_extra_roots(dovecot.ca_pem.as_bytes()).unwrap()
}

async fn run(dovecot: &Dovecot, url: &str) -> (Summary, Vec<Vec<Report>>) {
    let url = ImapUrl::parse(url).unwrap();
    let mut mailbox = Mailbox::open(&url, &tls(dovecot), TIMEOUT)
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", dovecot.log()));
    let mut seen = Vec::new();
    let summary = imap::process(&mut mailbox, ledger_stand_in(&mut seen))
        .await
        .unwrap();
    mailbox.logout().await;
    (summary, seen)
}

/// Unrelated mail: a colleague's message, as the inbox's owner left it.
fn unrelated(subject: &str) -> Vec<u8> {
    format!(
        "From: Jonas Berg <jonas@example.org>\r\nTo: editors@example.com\r\nSubject: {subject}\r\nMessage-ID: <{}@mail.example.org>\r\nDate: Mon, 23 Aug 2021 12:00:00 +0200\r\n\r\nSee you at noon.\r\n",
        subject.to_lowercase().replace(' ', "-")
    )
    .into_bytes()
}

/// A bounce of mail someone sent by hand from the same mailbox: no tag of ours.
fn someone_elses_bounce() -> Vec<u8> {
    String::from_utf8(fixture("postfix-hard-5.1.1.eml"))
        .unwrap()
        .replace(
            "bounces+2rsusdqnst3itmht@example.com",
            "editors@example.com",
        )
        .into_bytes()
}

fn oversized() -> Vec<u8> {
    let mut bytes = b"From: MAILER-DAEMON@mail.example.com\r\nSubject: huge\r\n\r\n".to_vec();
    let line = [b'x'; 998];
    while bytes.len() <= letterpress::bounce::MAX_MESSAGE_BYTES {
        bytes.extend_from_slice(&line);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// The stored message whose bytes contain `needle`.
fn find<'s>(stored: &'s [Stored], needle: &str) -> &'s Stored {
    let matches: Vec<&Stored> = stored
        .iter()
        .filter(|message| memchr::memmem::find(&message.bytes, needle.as_bytes()).is_some())
        .collect();
    assert_eq!(matches.len(), 1, "one message with `{needle}`");
    matches[0]
}

fn describe(dovecot: &Dovecot, folder: Folder<'_>) -> String {
    let mut lines: Vec<String> = dovecot
        .stored(folder)
        .iter()
        .map(|message| {
            let text = String::from_utf8_lossy(&message.bytes);
            let subject = text
                .lines()
                .find(|line| line.starts_with("Subject:"))
                .unwrap_or("Subject: ?")
                .to_string();
            format!("  [{}] {subject}", message.flags)
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

#[tokio::test]
async fn reports_of_ours_move_to_their_folder_and_all_other_mail_stays_exactly_as_it_was() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let hard = fixture("postfix-hard-5.1.1.eml");
    let complaint = fixture("arf-yahoo-abuse.eml");
    let vacation = fixture("vacation-auto-submitted.eml");
    dovecot.deliver(Folder::Inbox, None, &hard);
    dovecot.deliver(Folder::Inbox, None, &complaint);
    dovecot.deliver(Folder::Inbox, Some(""), &vacation);
    dovecot.deliver(Folder::Inbox, None, &fixture("human-reply.eml"));
    dovecot.deliver(
        Folder::Inbox,
        Some("T"),
        &unrelated("Deleted but not expunged"),
    );
    dovecot.deliver(Folder::Inbox, Some("FS"), &unrelated("Read and flagged"));
    dovecot.deliver(Folder::Inbox, None, &someone_elses_bounce());
    dovecot.deliver(Folder::Inbox, None, &oversized());

    let (summary, seen) = run(&dovecot, &dovecot.imaps_url()).await;

    assert_eq!(summary.method, SettleMethod::Move);
    assert_eq!(
        (summary.fetched, summary.processed, summary.left),
        (6, 3, 3),
        "{summary:?}"
    );
    assert_eq!(summary.too_large.len(), 1);
    let kinds: Vec<&str> = seen
        .iter()
        .flatten()
        .map(|report| match report {
            Report::Bounce(bounce) if bounce.kind == BounceKind::Hard => "hard",
            Report::Bounce(_) => "soft",
            Report::Complaint(_) => "complaint",
            Report::Ignored(ignored) if ignored.reason == IgnoredReason::AutoReply => "auto-reply",
            Report::Ignored(_) => "ignored",
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "auto-reply",
            "complaint",
            "hard",
            "hard",
            "ignored",
            "ignored"
        ],
        "{seen:#?}"
    );

    let inbox = dovecot.stored(Folder::Inbox);
    let processed = dovecot.stored(Folder::Named(PROCESSED_FOLDER));
    eprintln!(
        "INBOX after the run:\n{}\n{PROCESSED_FOLDER} after the run:\n{}",
        describe(&dovecot, Folder::Inbox),
        describe(&dovecot, Folder::Named(PROCESSED_FOLDER))
    );
    assert_eq!(processed.len(), 3, "{processed:#?}");
    for original in [&hard, &complaint, &vacation] {
        let moved = processed
            .iter()
            .find(|message| message.bytes == *original)
            .expect("moved byte for byte");
        // Fetched with BODY.PEEK[]: still unread where it landed.
        assert_eq!(moved.flags, "", "{}", moved.path.display());
    }
    assert_eq!(inbox.len(), 5, "{inbox:#?}");
    assert_eq!(find(&inbox, "Thanks for the first issue").flags, "");
    assert_eq!(find(&inbox, "Deleted but not expunged").flags, "T");
    assert_eq!(find(&inbox, "Read and flagged").flags, "FS");
    assert_eq!(find(&inbox, "X-Postfix-Sender: rfc822; editors@").flags, "");
    assert_eq!(find(&inbox, "Subject: huge").flags, "");

    // A second run finds nothing more of ours, and still changes nothing else.
    let (again, _) = run(&dovecot, &dovecot.imaps_url()).await;
    assert_eq!((again.fetched, again.processed, again.left), (3, 0, 3));
    assert_eq!(dovecot.stored(Folder::Named(PROCESSED_FOLDER)).len(), 3);
    let inbox_again = dovecot.stored(Folder::Inbox);
    assert_eq!(inbox_again.len(), 5);
    for message in &inbox {
        let now = inbox_again
            .iter()
            .find(|other| other.bytes == message.bytes)
            .unwrap();
        assert_eq!(now.flags, message.flags);
    }
}

#[tokio::test]
async fn starttls_and_plaintext_to_loopback_log_in_too() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    dovecot.deliver(Folder::Inbox, None, &fixture("postfix-hard-5.1.1.eml"));
    for url in [dovecot.starttls_url(), dovecot.plaintext_url()] {
        let url = ImapUrl::parse(&url).unwrap();
        let mut mailbox = Mailbox::open(&url, &tls(&dovecot), TIMEOUT)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}\n{}", dovecot.log()));
        assert_eq!(mailbox.list().await.unwrap().len(), 1, "{url}");
        mailbox.logout().await;
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_being_shown() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let url = dovecot
        .imaps_url()
        .replace(&PASSWORD.replace(' ', "%20"), "not-the-password");
    let url = ImapUrl::parse(&url).unwrap();
    let error = Mailbox::open(&url, &tls(&dovecot), TIMEOUT)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ImapError::LoginRefused { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("the IMAP server refused the login for `bounces`"),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");
}

#[tokio::test]
async fn a_certificate_from_an_unknown_authority_is_refused() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let url = ImapUrl::parse(&dovecot.imaps_url()).unwrap();
    let mozilla_roots_only = TlsSettings::with_extra_roots(&[]).unwrap();
    let error = Mailbox::open(&url, &mozilla_roots_only, TIMEOUT)
        .await
        .err()
        .expect("refused");
    assert!(matches!(error, ImapError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn without_move_processed_mail_leaves_by_uid_expunge_and_deleted_mail_survives() {
    let Some(dovecot) =
        Dovecot::start_with_capabilities(Some("IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN UIDPLUS"))
    else {
        return;
    };
    let hard = fixture("postfix-hard-5.1.1.eml");
    dovecot.deliver(Folder::Inbox, None, &hard);
    dovecot.deliver(
        Folder::Inbox,
        Some("T"),
        &unrelated("Deleted but not expunged"),
    );
    dovecot.deliver(Folder::Inbox, Some("S"), &unrelated("Read"));

    let (summary, _) = run(&dovecot, &dovecot.imaps_url()).await;

    assert_eq!(summary.method, SettleMethod::CopyAndExpunge);
    assert_eq!((summary.fetched, summary.processed), (2, 1));
    let processed = dovecot.stored(Folder::Named(PROCESSED_FOLDER));
    assert_eq!(processed.len(), 1);
    assert_eq!(processed[0].bytes, hard);
    let inbox = dovecot.stored(Folder::Inbox);
    assert_eq!(
        inbox.len(),
        2,
        "a plain EXPUNGE would have removed the deleted one"
    );
    assert_eq!(find(&inbox, "Deleted but not expunged").flags, "T");
    assert_eq!(find(&inbox, "Subject: Read").flags, "S");
}

#[tokio::test]
async fn without_move_or_uidplus_processed_mail_is_copied_and_marked_and_not_fetched_again() {
    let Some(dovecot) =
        Dovecot::start_with_capabilities(Some("IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN"))
    else {
        return;
    };
    let hard = fixture("postfix-hard-5.1.1.eml");
    dovecot.deliver(Folder::Inbox, None, &hard);
    dovecot.deliver(
        Folder::Inbox,
        Some("T"),
        &unrelated("Deleted but not expunged"),
    );
    dovecot.deliver(Folder::Inbox, None, &fixture("human-reply.eml"));

    let (summary, _) = run(&dovecot, &dovecot.imaps_url()).await;

    assert_eq!(summary.method, SettleMethod::CopyAndMark);
    assert_eq!(
        (summary.fetched, summary.processed, summary.left),
        (2, 1, 1)
    );
    assert_eq!(dovecot.stored(Folder::Named(PROCESSED_FOLDER)).len(), 1);
    let inbox = dovecot.stored(Folder::Inbox);
    assert_eq!(inbox.len(), 3, "nothing expunged");
    let original = inbox.iter().find(|message| message.bytes == hard).unwrap();
    assert_eq!(original.flags, "Sa", "seen, and keyword a");
    assert_eq!(dovecot.keywords(Folder::Inbox), ["$LetterpressProcessed"]);
    assert_eq!(find(&inbox, "Deleted but not expunged").flags, "T");
    assert_eq!(find(&inbox, "Thanks for the first issue").flags, "");

    let (again, _) = run(&dovecot, &dovecot.imaps_url()).await;
    assert_eq!(
        (again.fetched, again.processed, again.left),
        (1, 0, 1),
        "the marked original is not processed twice"
    );
    assert_eq!(dovecot.stored(Folder::Named(PROCESSED_FOLDER)).len(), 1);
}
