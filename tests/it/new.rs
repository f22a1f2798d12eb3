//! `letterpress new`: the next issue's skeleton, numbered and dated from the schedule.

use crate::support::TestWorkspace;

#[test]
fn new_starts_the_next_free_slot_numbered_after_the_latest_issue() {
    let workspace = TestWorkspace::example();
    // The clock says Monday 2021-08-16 08:00 in Toronto: that morning's 09:00 slot is next.
    let run = workspace.run(&["new"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "Started issues/2021-08-16.yaml (issue 2, goes out Monday August 16, 2021 at 09:00 -04:00 once its status is `ready`)\n\
         Fill it in, then run `letterpress check` to see what is still missing.\n"
    );
    let skeleton = workspace.read("issues/2021-08-16.yaml");
    assert!(
        skeleton.contains("\nnumber: 2\ndate: 2021-08-16\nstatus: draft\n"),
        "{skeleton}"
    );

    // 2021-08-23 already has an issue, so the one after goes to 2021-08-30.
    let run = workspace.run(&["new"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with("Started issues/2021-08-30.yaml (issue 3,"),
        "{}",
        run.stdout
    );
}

#[test]
fn new_never_overwrites_an_issue() {
    let workspace = TestWorkspace::example();
    let before = workspace.read("issues/2021-08-23.yaml");
    let run = workspace.run(&["new", "--date", "2021-08-23"]);
    assert_eq!(run.status, 2);
    assert_eq!(
        run.stderr,
        "error: issues/2021-08-23.yaml already exists; letterpress never overwrites an issue (pick another --date)\n"
    );
    assert_eq!(workspace.read("issues/2021-08-23.yaml"), before);
}

#[test]
fn the_skeleton_lists_what_is_left_to_write_and_passes_check_once_filled() {
    let workspace = TestWorkspace::example();
    workspace.run(&["new", "--date", "2021-09-06"]);
    let run = workspace.run(&["check", "2021-09-06"]);
    assert_eq!(run.status, 1);
    let problems: Vec<&str> = run
        .stdout
        .lines()
        .take_while(|line| !line.is_empty())
        .collect();
    assert_eq!(
        problems,
        [
            crate::support::DKIM_NOT_SET,
            "issues/2021-09-06.yaml:7:1: subject: is empty; fill it in",
            "issues/2021-09-06.yaml:7:1: warning: preheader: missing; without it inboxes preview the first words of the email instead",
            "issues/2021-09-06.yaml:11:5: sections[0].heading: is empty; fill it in",
            "issues/2021-09-06.yaml:13:9: sections[0].articles[0].title: is empty; fill it in",
            "issues/2021-09-06.yaml:14:9: sections[0].articles[0].url: is empty; fill it in",
            "issues/2021-09-06.yaml:17:9: sections[0].articles[0].excerpt: is empty; fill it in",
        ]
    );

    let file = "issues/2021-09-06.yaml";
    workspace.replace(file, "subject:   ", "subject: \"A filled-in subject\"");
    workspace.replace(file, "preheader: ", "preheader: \"The preview line\"");
    workspace.replace(file, "  - heading:", "  - heading: News");
    workspace.replace(file, "      - title:", "      - title: A story");
    workspace.replace(
        file,
        "        url:   ",
        "        url: https://news.example.com/story",
    );
    workspace.replace(
        file,
        "        excerpt:   ",
        "        excerpt: What happened, briefly.",
    );
    let run = workspace.run(&["check", "2021-09-06"]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert!(
        run.stdout.ends_with("check passed with 1 warning\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn new_from_keeps_the_latest_issues_sections_with_empty_articles() {
    let workspace = TestWorkspace::example();
    let run = workspace.run(&["new", "--from"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "Started issues/2021-08-16.yaml (issue 2, with the sections of issues/2021-08-23.yaml, goes out Monday August 16, 2021 at 09:00 -04:00"
        ),
        "{}",
        run.stdout
    );
    let skeleton = workspace.read("issues/2021-08-16.yaml");
    let headings: Vec<&str> = skeleton
        .lines()
        .filter_map(|line| line.strip_prefix("  - heading: "))
        .collect();
    let example = workspace.read("issues/2021-08-23.yaml");
    let expected: Vec<String> = example
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- heading: "))
        .map(|heading| format!("\"{}\"", heading.trim_matches('"')))
        .collect();
    assert!(expected.len() > 1, "the example has several sections");
    assert_eq!(headings, expected);
    // One empty article per section, nothing of the old issue's text.
    assert_eq!(skeleton.matches("      - title:\n").count(), expected.len());
    assert!(!skeleton.contains("Foundation"), "{skeleton}");
    assert!(skeleton.contains("\nnumber: 2\ndate: 2021-08-16\nstatus: draft\n"));

    // Named explicitly, from a half-written issue: its outline still comes through.
    workspace.write(
        "issues/2021-09-06.yaml",
        "number: 9\nsections:\n  - heading: \"Quoted \\\"heading\\\"\"\n  - heading:\n",
    );
    let run = workspace.run(&["new", "--from", "2021-09-06", "--date", "2021-09-13"]);
    assert_eq!(run.status, 0, "{run:?}");
    let skeleton = workspace.read("issues/2021-09-13.yaml");
    assert!(
        skeleton.contains("\nnumber: 10\n"),
        "numbered past the highest: {skeleton}"
    );
    assert!(
        skeleton.contains("  - heading: \"Quoted \\\"heading\\\"\"\n"),
        "{skeleton}"
    );
    assert!(skeleton.contains("  - heading:\n"), "{skeleton}");

    let run = workspace.run(&["new", "--from", "2031-01-01"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert_eq!(
        run.stderr,
        "error: --from: issues/2031-01-01.yaml is not an issue file\n"
    );
}

#[test]
fn a_half_edited_issue_keeps_its_number_and_a_heading_with_a_line_break_comes_through_on_one_line()
{
    let workspace = TestWorkspace::example();
    // Not YAML at all half way through an edit, yet it says which number it has.
    workspace.write(
        "issues/2021-09-06.yaml",
        "number: 7\nsubject: \"unfinished\nsections:\n  - heading: \"line one\\nline two: injected\"\n",
    );
    workspace.write(
        "issues/2021-09-13.yaml",
        "number: 6\nsections:\n  - heading: \"line one\\nline two: injected\"\n",
    );
    let run = workspace.run(&["new", "--from", "2021-09-13", "--date", "2021-09-20"]);
    assert_eq!(run.status, 0, "{run:?}");
    let skeleton = workspace.read("issues/2021-09-20.yaml");
    assert!(skeleton.contains("\nnumber: 8\n"), "{skeleton}");
    assert!(
        skeleton.contains("  - heading: \"line one line two: injected\"\n"),
        "{skeleton}"
    );
    workspace.write(
        "issues/2021-09-06.yaml",
        &workspace
            .read("issues/2021-09-20.yaml")
            .replace("number: 8", "number: 7"),
    );
    let check = workspace.run(&["check", "2021-09-20"]);
    assert!(
        !check.stdout.contains("invalid YAML"),
        "the new file reads as YAML: {}",
        check.stdout
    );
}
