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
