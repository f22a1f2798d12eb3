//! `letterpress init`: a workspace that passes `check` at once, never overwriting anything.

use crate::support::{TestWorkspace, have_tool};

/// `init` in a fresh folder, with the clock at Monday 2021-08-16 12:00 UTC.
fn init(workspace: &TestWorkspace, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["init"];
    all.extend_from_slice(args);
    workspace.run(&all)
}

#[test]
fn init_writes_a_workspace_that_check_passes_and_says_what_to_run_next() {
    let workspace = TestWorkspace::empty();
    let run = init(
        &workspace,
        &[
            "deep-signal",
            "--from",
            "Deep Signal <editor@deepsignal.example>",
            "--timezone",
            "Asia/Shanghai",
        ],
    );
    assert_eq!(run.status, 0, "{run:?}");
    // Monday 12:00 UTC is 20:00 in Shanghai, past the 09:00 slot: the next is a week on.
    assert_eq!(
        run.stdout,
        "Set up Deep Signal in deep-signal/:
  newsletter.yaml            the settings: name, sender, schedule
  subscribers.yaml           the readers (one example entry; kept out of git)
  issues/2021-08-23.yaml     issue 1, a draft for Monday August 23, 2021 at 09:00 +08:00
  .gitignore                 keeps the secret, the ledger, the readers and out/ out of git
Issues go out on Mondays at 09:00 (Asia/Shanghai); newsletter.yaml says how to change it.
Before the first real send, put your own `postal_address` in newsletter.yaml.

Next:
  cd deep-signal
  letterpress preview        the first issue as readers will see it, while you edit
  letterpress check          every problem, as file:line:col: field: message
  letterpress send 2021-08-23 --dry-run --list   who would get it (nothing is sent)
"
    );
    let check = workspace.run(&["-C", "deep-signal", "check"]);
    assert_eq!(check.status, 0, "{check:?}");
    // The one warning is DKIM's, which needs a key and a DNS record only the editor can add.
    let warnings: Vec<&str> = check
        .stdout
        .lines()
        .filter(|line| line.contains("warning:"))
        .collect();
    assert_eq!(warnings, [crate::support::DKIM_NOT_SET], "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("issues/2021-08-23.yaml  ok  draft, 1 section, 1 article"),
        "{}",
        check.stdout
    );
    let settings = workspace.read("deep-signal/newsletter.yaml");
    assert!(settings.contains("from: \"Deep Signal <editor@deepsignal.example>\"\n"));
    // Every optional field is there, commented out.
    for field in [
        "# reply_to:",
        "# site_url:",
        "# language:",
        "# theme:",
        "# grace:",
        "# delivery:",
        "#   concurrency:",
        "#   rate_per_second:",
        "#   max_attempts:",
        "#   timeout_seconds:",
        "#   final_reply_seconds:",
        "# test_recipients:",
    ] {
        assert!(settings.contains(field), "{field} missing:\n{settings}");
    }
    assert_eq!(
        workspace
            .read("deep-signal/.gitignore")
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        [".letterpress/", "subscribers.yaml", "out/"]
    );
    // The first draft renders, and the dry run names who would get it.
    let render = workspace.run(&["-C", "deep-signal", "render", "2021-08-23"]);
    assert_eq!(render.status, 0, "{render:?}");
}

#[test]
fn every_optional_field_uncommented_still_passes_check() {
    let workspace = TestWorkspace::empty();
    assert_eq!(init(&workspace, &["--timezone", "UTC"]).status, 0);
    let settings = workspace.read("newsletter.yaml");
    let uncommented: String = settings
        .lines()
        .map(|line| {
            let stripped = line.trim_start();
            let indent = &line[..line.len() - stripped.len()];
            match stripped.strip_prefix("# ") {
                // A commented-out field (`# key: value`), not prose.
                Some(field)
                    if field
                        .split_once(':')
                        .is_some_and(|(key, _)| !key.contains(' ') && !key.is_empty())
                        || field.starts_with("  ")
                        || field.starts_with("- ") =>
                {
                    format!("{indent}{field}")
                }
                _ => line.to_string(),
            }
        })
        .map(|line| line + "\n")
        .collect();
    workspace.write("newsletter.yaml", &uncommented);
    // As the comment over `dkim:` says: the key first.
    let keygen = workspace.run(&["dkim", "keygen", "--selector", "lp1"]);
    assert_eq!(keygen.status, 0, "{keygen:?}");
    let check = workspace.run(&["check"]);
    assert_eq!(check.status, 0, "{uncommented}\n{check:?}");
    assert!(uncommented.contains("\nsite_url: \"https://news.example.com\"\n"));
    assert!(uncommented.contains("\n  concurrency: 4 "));
}

#[test]
fn init_never_overwrites_and_adds_only_what_is_missing() {
    let workspace = TestWorkspace::empty();
    workspace.write("newsletter.yaml", "name: Mine\n");
    workspace.write(".gitignore", "/target\nout");
    let run = init(&workspace, &["--name", "Other"]);
    // The settings there are kept, and they do not load: nothing else can be dated.
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(workspace.read("newsletter.yaml"), "name: Mine\n");

    let workspace = TestWorkspace::example();
    let before = workspace.read("newsletter.yaml");
    workspace.write(".gitignore", "/target\nout");
    let run = init(&workspace, &["--name", "Other", "--timezone", "UTC"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(workspace.read("newsletter.yaml"), before);
    assert!(
        run.stdout
            .contains("  newsletter.yaml            already there, kept as it was\n"),
        "{}",
        run.stdout
    );
    // The issues folder has issues: no draft is added.
    assert!(!run.stdout.contains("a draft for"), "{}", run.stdout);
    assert_eq!(
        workspace.read(".gitignore"),
        "/target\nout\n# letterpress\n.letterpress/\nsubscribers.yaml\n"
    );
    assert!(
        run.stdout.contains("added .letterpress/, subscribers.yaml"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let workspace = TestWorkspace::empty();
    for (args, expected) in [
        (
            vec!["new-list", "--timezone", "Asia/Shangai"],
            "error: --timezone: `Asia/Shangai` is not an IANA time zone; did you mean `Asia/Shanghai`?\n",
        ),
        (
            vec!["new-list", "--from", "Deep Signal <not an address>"],
            "error: --from: ",
        ),
        (vec!["new-list", "--name", "two\nlines"], "error: --name: "),
    ] {
        let run = init(&workspace, &args);
        assert_eq!(run.status, 2, "{args:?}: {run:?}");
        assert!(run.stderr.starts_with(expected), "{args:?}: {}", run.stderr);
        assert!(
            !workspace.path("new-list").exists(),
            "{args:?} wrote something"
        );
    }
}

#[test]
fn git_add_all_after_init_and_a_send_commits_no_secret_ledger_or_reader() {
    if !have_tool("git", "git") {
        return;
    }
    let workspace = TestWorkspace::empty();
    assert_eq!(init(&workspace, &["--timezone", "UTC"]).status, 0);
    // A proof to the outbox makes the state folder: the secret, the ledger, the outbox.
    let test = workspace
        .command()
        .args(["test", "2021-08-23", "--to", "you@example.com"])
        .output()
        .unwrap();
    assert!(test.status.success(), "{test:?}");
    assert!(workspace.path(".letterpress/secret").exists());
    assert!(workspace.path(".letterpress/ledger.sqlite3").exists());
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git")
            .args(args)
            .current_dir(workspace.root())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    let staged = git(&["ls-files"]);
    assert_eq!(
        staged.lines().collect::<Vec<_>>(),
        [".gitignore", "issues/2021-08-23.yaml", "newsletter.yaml"],
        "{staged}"
    );
}

#[test]
fn a_name_with_markdown_in_it_is_shown_as_text_and_still_passes_check() {
    for name in [
        "Name <x@y.z>",
        "[x](javascript:alert(1))",
        "A*B_C `d` #1: \"q\"",
    ] {
        let workspace = TestWorkspace::empty();
        assert_eq!(
            init(&workspace, &["--name", name, "--timezone", "UTC"]).status,
            0
        );
        let check = workspace.run(&["check"]);
        assert_eq!(check.status, 0, "{name}: {check:?}");
        let draft = workspace
            .path("issues")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let render = workspace.run(&["render", draft.to_str().unwrap(), "--out", "out"]);
        assert_eq!(render.status, 0, "{name}: {render:?}");
        let stem = draft.file_stem().unwrap().to_str().unwrap().to_string();
        let html = workspace.read(&format!("out/{stem}/email.html"));
        let shown = html
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"");
        assert!(
            shown.contains(&format!("first issue of <em>{name}</em>")),
            "{name}: {html}"
        );
    }
}
