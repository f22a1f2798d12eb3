//! The pages `letterpress serve` shows a reader, loaded in headless Chromium (Debian's
//! `chromium`) at a phone's and a desktop's width: no console errors (Content-Security-Policy
//! violations included), and screenshots left in `target/screenshots/` to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{SECRET, ServeProcess, TestWorkspace, have_tool, one_click};
use letterpress::secret::Secret;

const CHROMIUM: &str = "/usr/bin/chromium";
const LIST_ID: &str = "global-ai-weekly.weekly.example.com";
const WIDTHS: [(&str, u32, u32); 2] = [("phone", 390, 844), ("desktop", 1280, 900)];

fn screenshots_dir() -> PathBuf {
    // target/tmp is where cargo lets integration tests write; its parent is target/.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `url` at `width`x`height` and saves a screenshot to `png`; returns the console
/// messages Chromium logged (its stderr lines from the page's console).
fn load(url: &str, width: u32, height: u32, png: &Path) -> Vec<String> {
    let profile = tempfile::tempdir().unwrap();
    let _ = std::fs::remove_file(png);
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Every name but loopback fails to resolve, so the articles' images (on the
            // internet) cost no traffic and the run stays on this machine.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--hide-scrollbars",
            // Waits for the page to settle, including a form's navigation (`posting`).
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("cannot run {CHROMIUM} ({error}): `apt-get install chromium` (.ci/run does)")
        });
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish loading {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "chromium failed on {url}:\n{stderr}"
    );
    // Chromium writes console messages as `...:INFO:CONSOLE(12)] "..."` or, in newer
    // versions, `...:INFO:CONSOLE:12] "..."`.
    stderr
        .lines()
        .filter(|line| line.contains(":CONSOLE(") || line.contains(":CONSOLE:"))
        .map(String::from)
        .collect()
}

/// The width and height a PNG file declares.
fn png_size(png: &Path) -> (u32, u32) {
    let bytes = std::fs::read(png).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        png.display()
    );
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

/// Whether Chromium is here to run these tests (see `have_tool`).
fn chromium_installed() -> bool {
    have_tool(CHROMIUM, "chromium")
}

#[test]
fn the_detector_sees_a_content_security_policy_violation() {
    if !chromium_installed() {
        return;
    }
    let png = std::env::temp_dir().join(format!("letterpress-control-{}.png", std::process::id()));
    let console = load(
        "data:text/html,<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'\"><p style='color:red'>x</p>",
        390,
        844,
        &png,
    );
    let _ = std::fs::remove_file(&png);
    assert_eq!(console.len(), 1, "{console:?}");
    assert!(console[0].contains("violates the following Content Security Policy directive"));
}

#[test]
fn the_web_version_archive_and_unsubscribe_pages_render_cleanly_on_phone_and_desktop() {
    if !chromium_installed() {
        return;
    }
    let workspace = TestWorkspace::example();
    let sent = workspace
        .command()
        .env("LETTERPRESS_SECRET", SECRET)
        .args(["send", "2021-08-23", "--yes"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let server = ServeProcess::start(&workspace);
    let secret = Secret::from_passphrase(SECRET).unwrap();
    let link = |address: &str| {
        server.url(&format!(
            "/unsubscribe/{}",
            secret.unsubscribe_token(LIST_ID, &crate::support::key(address))
        ))
    };
    // One subscriber has already left, to show the page that offers to undo it.
    let left = link("chloe.lefevre@example.com");
    assert_eq!(one_click(&left).status, 200);

    let pages = [
        ("web-version", server.url("/issues/2021-08-23/")),
        ("archive", server.url("/")),
        ("unsubscribe", link("ada.okafor@example.com")),
        ("unsubscribed", left),
        ("invalid-link", server.url("/unsubscribe/not-a-valid-token")),
    ];
    let dir = screenshots_dir();
    let mut problems = Vec::new();
    for (name, url) in &pages {
        for (device, width, height) in WIDTHS {
            let png = dir.join(format!("{name}-{device}.png"));
            let console = load(url, width, height, &png);
            if !console.is_empty() {
                problems.push(format!("{name} at {device} width: {console:?}"));
            }
            assert_eq!(png_size(&png), (width, height), "{}", png.display());
            assert!(
                std::fs::metadata(&png).unwrap().len() > 2_000,
                "{} is blank",
                png.display()
            );
        }
    }
    assert!(
        problems.is_empty(),
        "console errors:\n{}",
        problems.join("\n")
    );
    eprintln!("screenshots in {}", dir.display());
}

/// A page that POSTs `body` (form fields) to `url` as it loads: how a screenshot of what a
/// form's answer looks like is taken. Its own script runs on a `data:` page, never on ours.
fn posting(url: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!("<input type=hidden name={name} value='{value}'>"))
        .collect();
    format!(
        "data:text/html,<form method=post action='{url}'>{inputs}</form><script>document.forms[0].submit()</script>"
    )
}

#[test]
fn the_sign_up_and_confirmation_pages_render_cleanly_on_phone_and_desktop() {
    if !chromium_installed() {
        return;
    }
    let workspace = TestWorkspace::example();
    workspace.replace(
        "newsletter.yaml",
        "language: en\n",
        "language: en\ndescription: \"Ten minutes every Monday on what changed in AI, and why it matters.\"\n",
    );
    let server = ServeProcess::start(&workspace);
    let secret = Secret::from_passphrase(SECRET).unwrap();
    let reader =
        letterpress::model::address::EmailAddress::parse("new.reader@example.org").unwrap();
    let issued = chrono::DateTime::parse_from_rfc3339("2021-08-16T12:00:00Z")
        .unwrap()
        .to_utc();
    let token = secret.confirmation_token(LIST_ID, &reader, issued);
    let expired = secret.confirmation_token(LIST_ID, &reader, issued - chrono::Duration::days(8));
    let pages = [
        ("subscribe", server.url("/subscribe")),
        (
            "subscribe-check-inbox",
            posting(
                &server.url("/subscribe"),
                &[("email", "new.reader@example.org"), ("name", "New Reader")],
            ),
        ),
        (
            "subscribe-invalid",
            posting(
                &server.url("/subscribe"),
                &[("email", "new.reader@"), ("name", "New Reader")],
            ),
        ),
        ("confirm", server.url(&format!("/confirm/{token}"))),
        (
            "confirmed",
            posting(&server.url(&format!("/confirm/{token}")), &[]),
        ),
        (
            "confirm-expired",
            server.url(&format!("/confirm/{expired}")),
        ),
        ("confirm-invalid", server.url("/confirm/not-a-valid-token")),
    ];
    let dir = screenshots_dir();
    let mut problems = Vec::new();
    for (name, url) in &pages {
        for (device, width, height) in WIDTHS {
            let png = dir.join(format!("{name}-{device}.png"));
            let console = load(url, width, height, &png);
            if !console.is_empty() {
                problems.push(format!("{name} at {device} width: {console:?}"));
            }
            assert_eq!(png_size(&png), (width, height), "{}", png.display());
            assert!(
                std::fs::metadata(&png).unwrap().len() > 2_000,
                "{} is blank",
                png.display()
            );
        }
    }
    assert!(
        problems.is_empty(),
        "console errors:\n{}",
        problems.join("\n")
    );
    // The form's answer really was what the screenshots show.
    let signup = workspace
        .ledger()
        .signup(&crate::support::key("new.reader@example.org"))
        .unwrap();
    assert!(signup.is_some_and(|signup| signup.is_confirmed()));
    eprintln!("screenshots in {}", dir.display());
}
