//! `letterpress subscribers` and `backup`: the real binary on a copy of the example
//! workspace, imports from fixtures shaped like each tool's export
//! (`tests/fixtures/imports/`).

use crate::support::{REPO, TestWorkspace, key};
use letterpress::ledger::Source;

const LIST: &str = "# Our readers\n- email: ada@example.com\n  name: Ada Okafor\n\n- email: left@example.org  # gone\n  status: unsubscribed\n";

fn workspace() -> TestWorkspace {
    let workspace = TestWorkspace::example();
    workspace.write("subscribers.example.yaml", LIST);
    workspace
}

fn fixture(name: &str) -> String {
    format!("{REPO}/tests/fixtures/imports/{name}")
}

#[test]
fn each_tools_export_imports_with_its_counts_and_a_second_import_changes_nothing() {
    let workspace = workspace();
    let expected = [
        (
            "mailchimp-subscribed.csv",
            "a Mailchimp export (subscribed members), 4 rows",
            2,
            1,
            0,
            "1  (lines 5)",
        ),
        (
            "mailchimp-unsubscribed.csv",
            "a Mailchimp export (unsubscribed members), 2 rows",
            0,
            0,
            2,
            "0",
        ),
        (
            "mailchimp-cleaned.csv",
            "a Mailchimp export (cleaned members), 1 rows",
            0,
            0,
            1,
            "0",
        ),
        ("substack.csv", "a Substack export, 4 rows", 2, 1, 1, "0"),
        (
            "buttondown.csv",
            "a Buttondown export, 6 rows",
            2,
            0,
            2,
            "1  (lines 7)",
        ),
        ("listmonk.csv", "a listmonk export, 4 rows", 2, 0, 1, "0"),
        (
            "plain.csv",
            "a CSV with an email column, 3 rows",
            2,
            0,
            0,
            "1  (lines 4)",
        ),
    ];
    let mut summary = Vec::new();
    for (file, described, new, already, suppressed, invalid) in expected {
        let run = workspace.run(&["subscribers", "import", &fixture(file)]);
        assert_eq!(run.status, 0, "{run:?}");
        let first = run.stdout.lines().next().unwrap();
        assert!(first.ends_with(&format!(": {described}")), "{first}");
        for (label, count) in [
            ("new:", new),
            ("already there:", already),
            ("suppressed:", suppressed),
        ] {
            let line = run
                .stdout
                .lines()
                .find(|line| line.trim_start().starts_with(label))
                .unwrap();
            let value: u64 = line[label.len() + 2..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(value, count, "{file} {label}\n{}", run.stdout);
        }
        assert!(
            run.stdout.contains(
                &format!("  invalid:       {invalid:>7}").replace("       1  (", "      1  (")
            ) || run
                .stdout
                .contains(&format!("invalid:             {invalid}")),
            "{file}\n{}",
            run.stdout
        );
        summary.push(format!(
            "{file}: {}",
            run.stdout
                .lines()
                .skip(1)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    eprintln!("{}", summary.join("\n"));
    let list = workspace.read("subscribers.example.yaml");
    assert!(
        list.starts_with(LIST),
        "the file's own lines changed:\n{list}"
    );
    assert!(list.contains("- email: mc.one@example.net\n  name: \"Maria Costa\"\n"));
    assert!(list.contains("- email: lm.one@example.com\n  name: \"Lena Marsh\"\n"));
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0, "{check:?}");
    assert!(
        check.stdout.contains(
            "subscribers.example.yaml  ok  12 subscribers: 11 active, 1 unsubscribed, 1 suppressed"
        ),
        "{}",
        check.stdout
    );
    assert!(check.stdout.lines().nth(1).unwrap_or_default().starts_with("subscribers.example.yaml:2:10: note: [0].email: `ada@example.com` is suppressed (import since 2021-08-16)"), "{}", check.stdout);
    let ledger = workspace.ledger();
    let suppression = ledger
        .suppression(&key("mc.bounced@example.net"))
        .unwrap()
        .unwrap();
    assert_eq!(suppression.source, Source::Import);
    let counts = ledger.suppression_counts().unwrap();
    drop(ledger);

    for (file, ..) in expected {
        let run = workspace.run(&["subscribers", "import", &fixture(file)]);
        assert_eq!(run.status, 0, "{run:?}");
        assert!(
            run.stdout.contains("  new:                 0  "),
            "{file}\n{}",
            run.stdout
        );
    }
    assert_eq!(workspace.read("subscribers.example.yaml"), list);
    assert_eq!(workspace.ledger().suppression_counts().unwrap(), counts);
}

#[test]
fn a_dry_run_import_changes_nothing_and_creates_no_ledger() {
    let workspace = workspace();
    let run = workspace.run(&[
        "subscribers",
        "import",
        &fixture("buttondown.csv"),
        "--dry-run",
    ]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("(would be added to subscribers.example.yaml)")
    );
    assert!(run.stdout.ends_with("Nothing was changed (--dry-run).\n"));
    assert_eq!(workspace.read("subscribers.example.yaml"), LIST);
    assert!(!workspace.path(".letterpress/ledger.sqlite3").exists());
}

#[test]
fn add_keeps_the_file_remove_suppresses_lift_undoes_and_export_follows_the_rule() {
    let workspace = workspace();
    let added = workspace.run(&[
        "subscribers",
        "add",
        "new@example.net",
        "--name",
        "New O'Neil",
        "--tag",
        "research",
    ]);
    assert_eq!(added.status, 0, "{added:?}");
    assert_eq!(
        workspace.read("subscribers.example.yaml"),
        format!("{LIST}- email: new@example.net\n  name: \"New O'Neil\"\n  tags: [\"research\"]\n")
    );
    let twice = workspace.run(&["subscribers", "add", "ADA@example.com"]);
    assert_eq!(twice.status, 2);
    assert_eq!(
        twice.stderr,
        "error: `ADA@example.com` is already in subscribers.example.yaml on line 2; addresses are compared without case\n"
    );
    let export = workspace.run(&["subscribers", "export"]);
    assert_eq!(
        export.stdout,
        "email,name\nada@example.com,Ada Okafor\nnew@example.net,New O'Neil\n"
    );

    let removed = workspace.run(&["subscribers", "remove", "ada@example.com"]);
    assert_eq!(removed.status, 0, "{removed:?}");
    let unknown = workspace.run(&["subscribers", "remove", "stranger@example.org"]);
    assert!(
        unknown.stdout.contains(
            "note: stranger@example.org is not on the list, not signed up and never mailed"
        ),
        "{unknown:?}"
    );
    let export = workspace.run(&["subscribers", "export", "--format", "yaml"]);
    assert_eq!(
        export.stdout,
        "- email: \"new@example.net\"\n  name: \"New O'Neil\"\n"
    );
    let list = workspace.run(&["subscribers", "list", "--status", "suppressed", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let addresses: Vec<(&str, &str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|known| {
            (
                known["address"].as_str().unwrap(),
                known["origin"].as_str().unwrap(),
                known["why"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        addresses,
        [
            ("ada@example.com", "file", "manual"),
            ("stranger@example.org", "ledger", "manual")
        ]
    );

    let lifted = workspace.run(&["subscribers", "lift", "ada@example.com"]);
    assert!(
        lifted
            .stdout
            .starts_with("Lifted the suppression of ada@example.com (manual"),
        "{lifted:?}"
    );
    let show = workspace.run(&["subscribers", "show", "ada@example.com"]);
    assert!(
        show.stdout
            .contains("  source:   file (line 2)\n  state:    active\n"),
        "{}",
        show.stdout
    );
    assert!(
        show.stdout
            .contains("suppressed  manual (removed with `letterpress subscribers remove`)")
    );
    assert!(
        show.stdout
            .contains("lifted      manual (lifted with `letterpress subscribers lift`)")
    );
    let form = workspace.run(&["subscribers", "form"]);
    assert!(
        form.stdout
            .contains("<form method=\"post\" action=\"https://weekly.example.com/subscribe\">")
    );
    assert!(!form.stdout.contains("<script"));
}

#[test]
fn a_backup_is_a_ledger_that_opens_with_everything_in_it() {
    let workspace = workspace();
    assert_eq!(workspace.run(&["backup", "b.sqlite3"]).status, 1);
    workspace.run(&["subscribers", "remove", "ada@example.com"]);
    let run = workspace.run(&["backup", "b.sqlite3"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("Backed up the ledger to b.sqlite3 ("),
        "{}",
        run.stdout
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(workspace.path("b.sqlite3"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let copy = letterpress::ledger::Ledger::open(&workspace.path("b.sqlite3")).unwrap();
    assert_eq!(
        copy.suppression(&key("ada@example.com"))
            .unwrap()
            .unwrap()
            .source,
        Source::Manual
    );
    // Again to the same file: an earlier backup is replaced.
    assert_eq!(workspace.run(&["backup", "b.sqlite3"]).status, 0);
}

#[test]
fn a_backup_never_replaces_the_list_the_ledger_or_its_wal_or_a_device() {
    let workspace = workspace();
    workspace.run(&["subscribers", "remove", "ada@example.com"]);
    let list_before = workspace.read("subscribers.example.yaml");
    for (target, why) in [
        (
            "subscribers.example.yaml",
            "it exists and is not an earlier backup (an SQLite file); choose another name, or remove it first",
        ),
        (
            ".letterpress/ledger.sqlite3",
            "it is inside .letterpress/, beside the ledger; back it up to another folder",
        ),
        (
            ".letterpress/ledger.sqlite3-wal",
            "it is inside .letterpress/, beside the ledger; back it up to another folder",
        ),
        ("/dev/null", "it exists and is not a regular file"),
        ("issues", "it exists and is not a regular file"),
    ] {
        let refused = workspace.run(&["backup", target]);
        assert_eq!(refused.status, 2, "{target}: {refused:?}");
        assert_eq!(
            refused.stderr,
            format!("error: cannot back up to `{target}`: {why}\n"),
            "{target}"
        );
    }
    assert_eq!(workspace.read("subscribers.example.yaml"), list_before);
    let ledger = workspace.ledger();
    assert!(
        ledger
            .suppression(&key("ada@example.com"))
            .unwrap()
            .is_some()
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}
