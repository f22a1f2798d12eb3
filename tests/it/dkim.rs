//! DKIM end to end: `dkim keygen` makes the keys, `check` verifies them, and every message that
//! leaves (a send through a relay, a copy in the outbox, a proof, render's sample) carries
//! signatures that dkimpy, an implementation that is not ours, verifies against the records
//! keygen printed; one byte changed in the body or a signed header fails them.

use std::collections::HashMap;
use std::path::Path;

use crate::support::{Run, TestWorkspace};
use letterpress_testkit::{Behaviour, SmtpServer};

const ISSUE: &str = "2021-08-23";
const FAST: &str = "delivery:\n  concurrency: 4\n  max_attempts: 3\n  timeout_seconds: 2\n";
const TWO: &str =
    "- email: ada@example.com\n  name: Ada Okafor\n- email: li@example.org\n  name: 李伟\n";
const BOTH_KEYS: &str = "dkim:\n  selector: lp2026\n  ed25519_selector: lp2026e\n";

/// dkimpy's verdict on every `DKIM-Signature` of the message in `argv[1]`, the DNS answered
/// from the `name=value` arguments: one line each, `rsa-sha256 pass`.
const VERIFY: &str = r#"
import sys, dkim
records = dict(arg.split('=', 1) for arg in sys.argv[2:])
message = open(sys.argv[1], 'rb').read()
def dns(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    value = records.get(name.rstrip('.'))
    return value.encode() if value else None
checker = dkim.DKIM(message)
fields = [value for name, value in checker.headers if name.lower() == b'dkim-signature']
for index, field in enumerate(fields):
    tags = dict(t.strip().split(b'=', 1) for t in field.split(b';') if b'=' in t)
    try:
        verdict = 'pass' if checker.verify(idx=index, dnsfunc=dns) else 'fail'
    except dkim.ValidationError:
        verdict = 'fail'
    print(tags[b'a'].decode(), verdict)
"#;

const PYTHON: &str = "/usr/bin/python3";

/// Whether dkimpy (and PyNaCl, for Ed25519) can be run; as `have_tool`, a failure under CI.
fn have_dkimpy() -> bool {
    if !crate::support::have_tool(PYTHON, "python3") {
        return false;
    }
    let found = std::process::Command::new(PYTHON)
        .args(["-c", "import dkim, nacl"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!(
                "dkimpy is missing and CI is set: install Debian's python3-dkim and python3-nacl"
            );
        }
        eprintln!("skipped: dkimpy is not installed (Debian's python3-dkim, python3-nacl)");
    }
    found
}

/// dkimpy's verdicts on `message`, one per signature, in order.
fn verdicts(message: &[u8], records: &HashMap<String, String>) -> Vec<String> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let output = std::process::Command::new(PYTHON)
        .arg("-c")
        .arg(VERIFY)
        .arg(file.path())
        .args(
            records
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The example workspace for two readers, with `dkim` appended to newsletter.yaml and its
/// keys made by `dkim keygen`; the records, by name, as `check` lists them.
fn signing_workspace(dkim: &str) -> (TestWorkspace, HashMap<String, String>) {
    let workspace = TestWorkspace::for_delivery(TWO, FAST);
    let settings = workspace.read("newsletter.yaml");
    workspace.write("newsletter.yaml", &format!("{settings}{dkim}"));
    let made = workspace.run(&["dkim", "keygen"]);
    assert_eq!(made.status, 0, "{made:?}");
    if dkim.contains("ed25519_selector") {
        let made = workspace.run(&["dkim", "keygen", "--algorithm", "ed25519"]);
        assert_eq!(made.status, 0, "{made:?}");
    }
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0, "{check:?}");
    (workspace, records_in(&check))
}

/// `  lp2026._domainkey.example.com TXT v=DKIM1; ...` lines of `check`, by name.
fn records_in(check: &Run) -> HashMap<String, String> {
    check
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("  ")?.split_once(" TXT "))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// `message` with the first `from` after `after` replaced by `to`.
fn altered(message: &[u8], after: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let start = text.find(after).expect("the marker is there");
    let at = start + text[start..].find(from).expect("the text is there");
    let mut changed = text[..at].to_string();
    changed.push_str(to);
    changed.push_str(&text[at + from.len()..]);
    changed.into_bytes()
}

#[test]
fn keygen_writes_a_private_key_once_and_prints_its_record_split_for_dns() {
    let workspace = TestWorkspace::example();
    let run = workspace.run(&["dkim", "keygen", "--selector", "lp2026"]);
    assert_eq!(run.status, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Wrote a new rsa-sha256 key (2048 bits) to .letterpress/dkim/lp2026.pem, readable by you alone. Keep it secret and back it up: losing it means a new key and a new DNS record."
    );
    assert_eq!(
        lines[2],
        "Publish this TXT record in the DNS of example.com:"
    );
    assert_eq!(lines[3], "  name:  lp2026._domainkey.example.com");
    let value = lines[4].strip_prefix("  value: ").unwrap();
    assert!(value.starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"));
    // The zone file's strings are at most 255 bytes each and make up the value.
    let strings: Vec<&str> = run.stdout.split('"').skip(1).step_by(2).collect();
    assert_eq!(strings.len(), 2, "{}", run.stdout);
    assert!(strings.iter().all(|string| string.len() <= 255));
    assert_eq!(strings.concat(), value);
    assert!(run.stdout.contains("  dkim:\n    selector: lp2026\n"));

    let key = workspace.path(".letterpress/dkim/lp2026.pem");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&key).unwrap();
    let again = workspace.run(&["dkim", "keygen", "--selector", "lp2026"]);
    assert_eq!(again.status, 2, "{again:?}");
    assert!(
        again.stderr.contains(
            "already exists, and a key may already be published in DNS: it is never overwritten"
        ),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn every_message_a_send_hands_over_is_signed_twice_and_dkimpy_passes_both() {
    if !have_dkimpy() {
        return;
    }
    let (workspace, records) = signing_workspace(BOTH_KEYS);
    assert_eq!(records.len(), 2, "{records:?}");
    let server = SmtpServer::start_in_background(Behaviour::new());
    let run = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "Signing with DKIM as example.com: rsa-sha256 (lp2026), ed25519-sha256 (lp2026e)"
        ),
        "{}",
        run.stdout
    );
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    for message in &messages {
        assert!(message.data.starts_with(
            b"DKIM-Signature: v=1; a=rsa-sha256; s=lp2026; d=example.com; c=relaxed/relaxed;"
        ));
        assert_eq!(
            verdicts(&message.data, &records),
            ["rsa-sha256 pass", "ed25519-sha256 pass"]
        );
        // One byte changed in the body, then in a signed header: both signatures fail.
        let body = altered(
            &message.data,
            "Content-Type: text/plain",
            "Welcome",
            "welcome",
        );
        assert_eq!(
            verdicts(&body, &records),
            ["rsa-sha256 fail", "ed25519-sha256 fail"]
        );
        let subject = altered(&message.data, "\r\nSubject: ", "Weekly", "Weekyl");
        assert_eq!(
            verdicts(&subject, &records),
            ["rsa-sha256 fail", "ed25519-sha256 fail"]
        );
        let unsubscribe = altered(
            &message.data,
            "\r\nList-Unsubscribe-Post:",
            "One-Click",
            "One-click",
        );
        assert_eq!(
            verdicts(&unsubscribe, &records),
            ["rsa-sha256 fail", "ed25519-sha256 fail"]
        );
    }
}

#[test]
fn outbox_copies_proofs_and_the_rendered_sample_are_signed_too() {
    if !have_dkimpy() {
        return;
    }
    let (workspace, records) = signing_workspace("dkim:\n  selector: lp2026\n");
    let secret = crate::support::SECRET;
    let send = workspace
        .command()
        .env("LETTERPRESS_SECRET", secret)
        .args(["send", ISSUE, "--yes"])
        .output()
        .unwrap();
    assert!(send.status.success(), "{send:?}");
    let test = workspace
        .command()
        .env("LETTERPRESS_SECRET", secret)
        .args(["test", ISSUE, "--to", "editor@example.com"])
        .output()
        .unwrap();
    assert!(test.status.success(), "{test:?}");
    let render = workspace.run(&["render", ISSUE]);
    assert_eq!(render.status, 0, "{render:?}");
    let outbox = workspace.path(&format!(".letterpress/outbox/{ISSUE}"));
    let files = [
        outbox.join("ada@example.com.eml"),
        outbox.join("li@example.org.eml"),
        outbox.join("tests/editor@example.com.eml"),
        workspace.path(&format!("out/{ISSUE}/sample.eml")),
    ];
    for file in &files {
        let message =
            std::fs::read(file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        assert_eq!(
            verdicts(&message, &records),
            ["rsa-sha256 pass"],
            "{}",
            file.display()
        );
    }
}

#[test]
fn a_key_named_by_the_environment_signs_and_a_missing_key_stops_the_send_before_anything_is_queued()
{
    let workspace = TestWorkspace::for_delivery(TWO, FAST);
    let settings = workspace.read("newsletter.yaml");
    workspace.write(
        "newsletter.yaml",
        &format!("{settings}dkim:\n  selector: news\n"),
    );
    let server = SmtpServer::start_in_background(Behaviour::new());

    let refused = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(
        refused.stderr.starts_with("error: newsletter.yaml sets `dkim:`, and nothing is sent unsigned\nCaused by: no DKIM key for selector `news`: `./.letterpress/dkim/news.pem` does not exist; make one with `letterpress dkim keygen --selector news`"),
        "{}",
        refused.stderr
    );
    assert_eq!(server.message_count(), 0);
    assert!(
        workspace.ledger().issues().unwrap().is_empty(),
        "nobody queued"
    );
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 1);
    assert!(
        check
            .stdout
            .starts_with("newsletter.yaml: dkim: no DKIM key for selector `news`"),
        "{}",
        check.stdout
    );

    // The same key kept outside the workspace, named by LETTERPRESS_DKIM_KEY.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("news.pem");
    let made = workspace
        .command()
        .env("LETTERPRESS_DKIM_KEY", &key)
        .args(["dkim", "keygen"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert!(
        String::from_utf8_lossy(&made.stdout)
            .contains(&format!("to {} (from LETTERPRESS_DKIM_KEY)", key.display()))
    );
    assert!(!workspace.path(".letterpress/dkim").exists());
    let sent = workspace
        .sender(&server.url())
        .env("LETTERPRESS_DKIM_KEY", &key)
        .args(["send", ISSUE, "--yes"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert!(server.messages().iter().all(|message| {
        message
            .data
            .starts_with(b"DKIM-Signature: v=1; a=rsa-sha256; s=news;")
    }));
    assert!(Path::new(&key).exists());
}

#[test]
fn check_says_how_to_sign_when_dkim_is_not_set_and_when_it_does_not_align_with_from() {
    let workspace = TestWorkspace::example();
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0);
    assert!(
        check.stdout.starts_with("newsletter.yaml: warning: dkim: not set, so messages go out unsigned, and Gmail and Yahoo want bulk mail signed by the From domain: `letterpress dkim keygen` makes a key and prints the DNS record and the lines to add\n"),
        "{}",
        check.stdout
    );
    let settings = workspace.read("newsletter.yaml");
    workspace.write(
        "newsletter.yaml",
        &format!("{settings}dkim:\n  selector: lp2026\n  domain: mail.example.net\n"),
    );
    assert_eq!(workspace.run(&["dkim", "keygen"]).status, 0);
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0, "{check:?}");
    assert!(check.stdout.contains("newsletter.yaml: warning: dkim: the signing domain `mail.example.net` is not aligned with the From domain `example.com`"), "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("  lp2026._domainkey.mail.example.net TXT v=DKIM1; k=rsa; p=")
    );
}
