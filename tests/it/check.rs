//! `letterpress check` end to end: what an editor sees for good and broken files.

use crate::support::{
    DKIM_NOT_SET, SMALL_ISSUE, TestWorkspace, assert_under_gmail_clip, key, mask_sizes,
};
use letterpress::ledger::Source;

#[test]
fn the_example_workspace_passes_with_a_line_per_file() {
    let workspace = TestWorkspace::example();
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 0, "{run:?}");
    let (stdout, sizes) = mask_sizes(&run.stdout);
    assert_eq!(
        stdout,
        format!(
            "{DKIM_NOT_SET}\n\n\
             newsletter.yaml           ok, 1 warning\n\
             subscribers.example.yaml  ok  6 subscribers: 5 active, 1 unsubscribed\n\
             issues/2021-08-23.yaml    ok  ready, 3 sections, 12 articles, HTML <size>\n\
             check passed with 1 warning\n"
        )
    );
    assert_under_gmail_clip(&sizes);
}

#[test]
fn every_problem_in_a_broken_issue_is_reported_with_file_line_column_and_field() {
    let workspace = TestWorkspace::example();
    workspace.write(
        "issues/2021-08-30.yaml",
        r#"number: two
date: 2021-08-30
status: sent
subject: "Line one\r\nBcc: everyone@example.com"
sections:
  - heading: News
    articles:
      - title: Good story
        url: https://news.example.com/good
        excerpt: Fine.
      - titel: Typo in a key
        url: https://news.example.com/typo
        excerpt: Fine.
      - title: Hostile link
        url: javascript:alert(document.cookie)
        excerpt: "Click [here](javascript:alert(1))."
        image:
          src: /relative.png
          width: 600
          height: 300
"#,
    );
    let run = workspace.run(&["check", "issues/2021-08-30.yaml"]);
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stdout,
        DKIM_NOT_SET.to_string()
            + "\n\
         issues/2021-08-30.yaml:1:9: number: expected a whole number, found `two`\n\
         issues/2021-08-30.yaml:3:9: status: `sent` is not a status; use `draft` or `ready`\n\
         issues/2021-08-30.yaml:4:1: warning: preheader: missing; without it inboxes preview the first words of the email instead\n\
         issues/2021-08-30.yaml:4:10: subject: must be one line (found a line break)\n\
         issues/2021-08-30.yaml:11:9: sections[0].articles[1].title: required field is missing\n\
         issues/2021-08-30.yaml:11:9: sections[0].articles[1].titel: unknown field; did you mean `title`?\n\
         issues/2021-08-30.yaml:15:14: sections[0].articles[2].url: `javascript:alert(document.cookie)` must be an http(s) URL, not `javascript:`\n\
         issues/2021-08-30.yaml:16:18: sections[0].articles[2].excerpt: link `javascript:alert(1)` must be an absolute http(s) or mailto URL\n\
         issues/2021-08-30.yaml:18:11: sections[0].articles[2].image.alt: required field is missing\n\
         issues/2021-08-30.yaml:18:16: sections[0].articles[2].image.src: `/relative.png` is not an absolute URL; write it in full, starting with https://\n\
         \n\
         newsletter.yaml           ok, 1 warning\n\
         subscribers.example.yaml  ok  6 subscribers: 5 active, 1 unsubscribed\n\
         issues/2021-08-30.yaml    9 errors\n\
         check failed: 9 errors, 2 warnings\n"
    );
}

#[test]
fn malformed_yaml_points_at_where_the_parser_stopped() {
    let workspace = TestWorkspace::example();
    workspace.write(
        "issues/2021-08-30.yaml",
        "date: 2021-08-30\nsubject: [unclosed\nsections: []\n",
    );
    let run = workspace.run(&["check", "2021-08-30"]);
    assert_eq!(run.status, 1);
    assert!(
        run.stdout.starts_with(&format!(
            "{DKIM_NOT_SET}\nissues/2021-08-30.yaml:3:9: invalid YAML: illegal placement of ':' indicator\n"
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn subscriber_problems_name_the_entry() {
    let workspace = TestWorkspace::example();
    workspace.write(
        "subscribers.example.yaml",
        "- email: ada@example.com\n- email: not-an-address\n- email: Ada@Example.com\n- email: eve@example.com\n  name: \"Eve\\nBcc: everyone@example.com\"\n- email: bob@example.com\n  stauts: active\n",
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stdout.lines().skip(1).take(4).collect::<Vec<_>>(),
        [
            "subscribers.example.yaml:2:10: [1].email: `not-an-address` is not a valid email address",
            "subscribers.example.yaml:3:10: [2].email: `Ada@Example.com` is already on the list as [0] (line 1); addresses are compared without case",
            "subscribers.example.yaml:5:9: [3].name: the name must be one line (found a line break)",
            "subscribers.example.yaml:7:3: [4].stauts: unknown field; did you mean `status`?",
        ]
    );
}

#[test]
fn settings_problems_stop_nothing_else_from_being_checked() {
    let workspace = TestWorkspace::example();
    workspace.replace(
        "newsletter.yaml",
        "timezone: America/Toronto",
        "timezone: America/Springfield",
    );
    workspace.replace(
        "newsletter.yaml",
        "name: Global AI Weekly",
        "name: Global AI Weekly\ncolour: blue",
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1);
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("newsletter.yaml:"))
        .collect();
    assert_eq!(errors.len(), 2, "{}", run.stdout);
    assert_eq!(
        errors[0],
        "newsletter.yaml:6:1: colour: unknown field; expected one of: name, description, from, reply_to, postal_address, site_url, language, subscribers, theme, schedule, delivery, test_recipients, dkim, bounce_address, bounces"
    );
    assert!(
        errors[1]
            .contains(":26:13: schedule.timezone: `America/Springfield` is not an IANA time zone"),
        "{}",
        errors[1]
    );
    assert!(
        run.stdout.contains("issues/2021-08-23.yaml  ok  ready"),
        "{}",
        run.stdout
    );
}

#[test]
fn warnings_are_printed_but_the_check_passes() {
    let workspace = TestWorkspace::example();
    let long_subject =
        "A subject line that goes on and on well past what any inbox will show in its list";
    let issue = SMALL_ISSUE
        .replace("status: ready", "status: draft")
        .replace(
            "subject: \"Small issue\"",
            &format!("subject: \"{long_subject}\""),
        )
        .replace("preheader: \"A short preview line\"\n", "");
    workspace.write(
        "issues/2021-08-09.yaml",
        &issue.replace("2021-08-30", "2021-08-09"),
    );
    let run = workspace.run(&["check", "issues/2021-08-09.yaml"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout.lines().take(4).collect::<Vec<_>>(),
        [
            DKIM_NOT_SET,
            "issues/2021-08-09.yaml:3:9: warning: status: the issue is dated 2021-08-09, in the past, but is still a draft: it will never be sent; set `status: ready` and a new date, or delete it",
            "issues/2021-08-09.yaml:4:1: warning: preheader: missing; without it inboxes preview the first words of the email instead",
            "issues/2021-08-09.yaml:4:10: warning: subject: 81 characters; inboxes cut subjects after about 78",
        ]
    );
    assert!(
        run.stdout.ends_with("check passed with 4 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_issue_too_big_for_gmail_is_a_warning() {
    let workspace = TestWorkspace::example();
    let mut issue = SMALL_ISSUE.to_string();
    for index in 0..120 {
        issue.push_str(&format!(
            "      - title: Story {index}\n        url: https://news.example.com/{index}\n        excerpt: {}\n",
            "Many words about this story. ".repeat(25)
        ));
    }
    workspace.write("issues/2021-08-30.yaml", &issue);
    let run = workspace.run(&["check", "2021-08-30"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(&format!(
            "{DKIM_NOT_SET}\nissues/2021-08-30.yaml: warning: the HTML is "
        )),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Gmail clips emails over 102.0 KiB"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_missing_file_and_a_usage_error_have_their_own_exit_codes() {
    let workspace = TestWorkspace::example();
    let run = workspace.run(&["check", "issues/nope.yaml"]);
    assert_eq!(run.status, 1);
    assert!(
        run.stdout.starts_with(&format!(
            "{DKIM_NOT_SET}\nissues/nope.yaml: file not found\n"
        )),
        "{}",
        run.stdout
    );
    let run = workspace.run(&["check", "--frobnicate"]);
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("unexpected argument '--frobnicate'"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_empty_folder_says_to_run_init() {
    let workspace = TestWorkspace::empty();
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1);
    assert_eq!(
        run.stdout,
        "newsletter.yaml: file not found: this is not a newsletter's folder; `letterpress init` sets one up here (or run in the right folder, or pass -C DIR)\n\nnewsletter.yaml  1 error\ncheck failed: 1 error\n"
    );
    // With issues there, it is a workspace that lost its settings: no advice to start anew.
    workspace.write("issues/2021-08-30.yaml", crate::support::SMALL_ISSUE);
    let run = workspace.run(&["check"]);
    assert!(
        run.stdout.starts_with("newsletter.yaml: file not found\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn two_ready_issues_for_one_slot_are_an_error_and_a_draft_due_soon_a_warning() {
    let workspace = TestWorkspace::example();
    let twin = workspace.read("issues/2021-08-23.yaml");
    workspace.write(
        "issues/2021-08-23-extra.yaml",
        &twin.replacen("number: 1\n", "number: 11\n", 1),
    );
    // The clock says Monday 2021-08-16 08:00 in Toronto: this draft's slot is in an hour.
    workspace.write(
        "issues/2021-08-16.yaml",
        &SMALL_ISSUE
            .replace("2021-08-30", "2021-08-16")
            .replace("number: 7", "number: 8")
            .replace("status: ready", "status: draft"),
    );
    workspace.write(
        "issues/2021-08-31.yaml",
        &SMALL_ISSUE.replace("2021-08-30", "2021-08-31"),
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1);
    let problems: Vec<&str> = run
        .stdout
        .lines()
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(
        problems,
        [
            DKIM_NOT_SET,
            "issues/2021-08-16.yaml:3:9: warning: status: due Mon 2021-08-16 09:00 -04:00 (in 1.0 hours) but still a draft: it will not go out unless marked `ready`",
            "issues/2021-08-23-extra.yaml:3:9: status: ready for the same slot as issues/2021-08-23.yaml (Mon 2021-08-23 09:00 -04:00); one issue per slot: mark the other a draft or give one a send_at",
            "issues/2021-08-23.yaml:3:9: status: ready for the same slot as issues/2021-08-23-extra.yaml (Mon 2021-08-23 09:00 -04:00); one issue per slot: mark the other a draft or give one a send_at",
            "issues/2021-08-31.yaml:2:7: warning: date: 2021-08-31 is a Tuesday and the newsletter goes out on Mondays: the scheduler will never send this issue; change the date or add send_at (`letterpress send` still can)",
        ]
    );
}

#[test]
fn subscribers_on_the_ledgers_suppression_list_are_counted_in_the_list_row_and_noted() {
    let workspace = TestWorkspace::example();
    {
        std::fs::create_dir_all(workspace.path(".letterpress")).unwrap();
        let mut ledger =
            letterpress::ledger::Ledger::open(&workspace.path(".letterpress/ledger.sqlite3"))
                .unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2021-08-16T12:00:00Z")
            .unwrap()
            .to_utc();
        ledger
            .suppress(&key("ada.okafor@example.com"), &Source::OneClick, None, now)
            .unwrap();
        ledger
            .suppress(&key("reader42@example.com"), &Source::Manual, None, now)
            .unwrap();
        // Not on the list: not counted in its row.
        ledger
            .suppress(&key("gone@example.net"), &Source::OneClick, None, now)
            .unwrap();
    }
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 0, "{run:?}");
    let (stdout, sizes) = mask_sizes(&run.stdout);
    // Active entries the ledger suppresses are notes, not errors: the check passes.
    assert_eq!(
        stdout,
        format!(
            "{DKIM_NOT_SET}\n\
             subscribers.example.yaml:2:10: note: [0].email: `ada.okafor@example.com` is suppressed (one-click since 2021-08-16): it gets no mail; remove the entry, or `letterpress subscribers lift ada.okafor@example.com`\n\
             subscribers.example.yaml:22:10: note: [4].email: `reader42@example.com` is suppressed (manual since 2021-08-16): it gets no mail; remove the entry, or `letterpress subscribers lift reader42@example.com`\n\
             \n\
             newsletter.yaml           ok, 1 warning\n\
             subscribers.example.yaml  ok  6 subscribers: 5 active, 1 unsubscribed, 2 suppressed\n\
             issues/2021-08-23.yaml    ok  ready, 3 sections, 12 articles, HTML <size>\n\
             check passed with 1 warning\n"
        )
    );
    assert_under_gmail_clip(&sizes);
}

#[test]
fn check_never_creates_a_ledger() {
    let workspace = TestWorkspace::example();
    assert_eq!(workspace.run(&["check"]).status, 0);
    assert!(!workspace.path(".letterpress").exists());
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly() {
    use std::io::BufRead;
    let workspace = TestWorkspace::example();
    let mut issue = SMALL_ISSUE.to_string();
    for index in 0..3000 {
        issue.push_str(&format!(
            "      - title: Story {index}\n        url: not-a-url-{index}\n        excerpt: x\n"
        ));
    }
    workspace.write("issues/2021-08-30.yaml", &issue);
    let mut child = workspace
        .std_command()
        .args(["check"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    assert_eq!(first.trim_end(), DKIM_NOT_SET);
    first.clear();
    reader.read_line(&mut first).unwrap();
    // The pipe closes here, like `letterpress check | head -2`.
    drop(reader);
    let output = child.wait_with_output().unwrap();
    assert!(first.starts_with("issues/2021-08-30.yaml:"), "{first}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101));
}

#[test]
fn two_issues_with_one_number_are_an_error_in_each() {
    let workspace = TestWorkspace::example();
    let first = workspace.read("issues/2021-08-23.yaml");
    assert!(first.lines().any(|line| line == "number: 1"));
    workspace.write(
        "issues/2021-08-30.yaml",
        &crate::support::SMALL_ISSUE.replace("number: 7", "number: 1"),
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1, "{run:?}");
    let line = |file: &str, other: &str| {
        let line = workspace
            .read(file)
            .lines()
            .position(|line| line.starts_with("number:"))
            .unwrap()
            + 1;
        format!(
            "{file}:{line}:1: number: 1 is also the number of {other}; give each issue its own (`letterpress new` numbers the next one)"
        )
    };
    assert!(
        run.stdout
            .contains(&line("issues/2021-08-23.yaml", "issues/2021-08-30.yaml")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&line("issues/2021-08-30.yaml", "issues/2021-08-23.yaml")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_localhost_site_is_allowed_with_a_warning_and_refused_for_a_real_send() {
    let workspace = TestWorkspace::example();
    workspace.replace(
        "newsletter.yaml",
        "site_url: \"https://weekly.example.com\"",
        "site_url: \"http://localhost:8080\"",
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "newsletter.yaml:13:1: warning: site_url: http://localhost:8080/ is this machine: its links (unsubscribe, archive, images) work only here"
        ),
        "{}",
        run.stdout
    );
    workspace.replace(
        "newsletter.yaml",
        "http://localhost:8080",
        "http://weekly.example.com",
    );
    let run = workspace.run(&["check"]);
    assert_eq!(run.status, 1, "{run:?}");

    // Through a relay, the send is refused before anything is queued.
    workspace.replace(
        "newsletter.yaml",
        "http://weekly.example.com",
        "http://127.0.0.1:8080",
    );
    let server =
        letterpress_testkit::SmtpServer::start_in_background(letterpress_testkit::Behaviour::new());
    let run = crate::support::Run::from(
        workspace
            .command()
            .env("LETTERPRESS_SMTP_URL", server.url())
            .env("LETTERPRESS_SECRET", crate::support::SECRET)
            .args(["send", "2021-08-23", "--yes"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains(
            "error: site_url is http://127.0.0.1:8080/, which only this machine can reach"
        ),
        "{}",
        run.stderr
    );
    assert!(server.messages().is_empty());
    // To the outbox, for clicking through locally, it goes.
    let run = workspace.run(&["send", "2021-08-23", "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
}
