//! Hostile files and settings: what once crashed, hung or misled, each pinned with the real
//! binary (the YAML reader's own cases are beside it in `src/yaml.rs` and `src/source.rs`).

use crate::support::{SECRET, ServeProcess, TestWorkspace, get, one_click};

/// The unsubscribe link of the first outbox message of the example issue.
fn first_unsubscribe_path(workspace: &TestWorkspace) -> String {
    let outbox = workspace.path(".letterpress/outbox/2021-08-23");
    let message = std::fs::read_to_string(outbox.join("ada.okafor@example.com.eml")).unwrap();
    let start = message.find("/unsubscribe/").unwrap();
    let end = start + message[start..].find('>').unwrap();
    message[start..end].to_string()
}

#[test]
fn renaming_the_newsletter_or_moving_its_site_breaks_no_link_already_sent() {
    let workspace = TestWorkspace::example();
    let sent = workspace
        .command()
        .env("LETTERPRESS_SECRET", SECRET)
        .args(["send", "2021-08-23", "--yes"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let path = first_unsubscribe_path(&workspace);

    workspace.replace(
        "newsletter.yaml",
        "name: Global AI Weekly",
        "name: Global AI Weekly Digest",
    );
    workspace.replace(
        "newsletter.yaml",
        "site_url: \"https://weekly.example.com\"",
        "site_url: \"https://news.example.org/weekly\"",
    );
    let check = workspace.run(&["check"]);
    assert!(
        check.stdout.contains("newsletter.yaml: warning: the List-Id is now `global-ai-weekly-digest.news.example.org`, and was `global-ai-weekly.weekly.example.com` when the first issue went out"),
        "{}",
        check.stdout
    );
    let server = ServeProcess::start(&workspace);
    let page = get(&server.url(&path));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(one_click(&server.url(&path)).status, 200);
    assert!(
        workspace
            .ledger()
            .suppression(&crate::support::key("ada.okafor@example.com"))
            .unwrap()
            .is_some()
    );
}

/// A FIFO at `path`: what a mistyped setting can name, and what once hung every reader.
fn make_fifo(path: &std::path::Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `name` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
}

#[test]
fn an_export_or_a_mailbox_that_is_a_device_or_a_fifo_is_refused_at_once() {
    let workspace = TestWorkspace::example();
    let list_before = workspace.read("subscribers.example.yaml");
    make_fifo(&workspace.path("export.csv"));
    for (path, what) in [
        ("/dev/zero", "is a character device, not a regular file"),
        ("export.csv", "is a FIFO, not a regular file"),
    ] {
        let started = std::time::Instant::now();
        let import = workspace.run(&["subscribers", "import", path]);
        assert_eq!(import.status, 1, "{}", import.stderr);
        assert!(import.stderr.contains(what), "{}", import.stderr);
        let ingest = workspace.run(&["bounces", "ingest", path]);
        assert_eq!(ingest.status, 1, "{}", ingest.stderr);
        assert!(
            ingest
                .stderr
                .contains(&format!("cannot read `{path}`: {what}")),
            "{}",
            ingest.stderr
        );
        // Before, /dev/zero grew `import` by gigabytes and the FIFO hung both for ever.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
    assert_eq!(workspace.read("subscribers.example.yaml"), list_before);
}

#[test]
fn a_key_a_certificate_or_the_secret_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let workspace = TestWorkspace::example();
    let fifo = workspace.path(".letterpress/secret");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    make_fifo(&fifo);
    let started = std::time::Instant::now();
    let send = workspace.run(&["send", "2021-08-23", "--dry-run"]);
    assert_eq!(send.status, 1, "{}", send.stderr);
    assert!(
        send.stderr.contains("is a FIFO, not a regular file"),
        "{}",
        send.stderr
    );
    std::fs::remove_file(&fifo).unwrap();

    let test = workspace
        .command()
        .env("LETTERPRESS_SMTP_URL", "smtp://127.0.0.1:9")
        .env("LETTERPRESS_SMTP_CA", "/dev/zero")
        .args(["test", "2021-08-23", "--to", "editor@example.com"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert_eq!(test.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "cannot read LETTERPRESS_SMTP_CA (/dev/zero): is a character device, not a regular file"
        ),
        "{stderr}"
    );

    workspace.replace(
        "newsletter.yaml",
        "# dkim:\n#   selector: lp2026\n",
        "dkim:\n  selector: lp2026\n",
    );
    let check = workspace
        .command()
        .env("LETTERPRESS_DKIM_KEY", "/dev/zero")
        .arg("check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        stdout.contains("cannot read the DKIM key `/dev/zero (from LETTERPRESS_DKIM_KEY)`: is a character device, not a regular file"),
        "{stdout}"
    );
    // Before, each waited on the FIFO for ever or read /dev/zero until memory ran out.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
