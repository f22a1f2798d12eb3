//! `letterpress new`: the next issue's file, as a commented skeleton.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{Duration, NaiveDate};

use crate::model::newsletter::Newsletter;
use crate::workspace::{ISSUES_DIR, Workspace};
use crate::yaml::{self, Value};

use super::{Context, require};

pub fn run(context: &Context, date: Option<NaiveDate>) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let newsletter = require(workspace.load_newsletter())?;
    let issue_dir = workspace.path(ISSUES_DIR);
    let file_for = |date: NaiveDate| issue_dir.join(format!("{date}.yaml"));

    let date = match date {
        Some(date) => date,
        None => {
            // The first upcoming slot that has no issue yet.
            let mut slot_date = newsletter
                .schedule
                .next_after(context.clock.now())
                .date_naive();
            while file_for(slot_date).exists() {
                slot_date += Duration::days(7);
            }
            slot_date
        }
    };
    let path = file_for(date);
    let number = next_number(workspace)?;

    std::fs::create_dir_all(&issue_dir)
        .with_context(|| format!("cannot create `{}`", issue_dir.display()))?;
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "error: {} already exists; letterpress never overwrites an issue (pick another --date)",
                workspace.display(&path)
            );
            return Ok(ExitCode::from(2));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create `{}`", path.display()));
        }
    };
    file.write_all(skeleton(&newsletter, date, number).as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;

    let slot = newsletter.schedule.instant_on(date);
    println!(
        "Started {} (issue {number}, goes out {} once its status is `ready`)",
        workspace.display(&path),
        slot.format("%A %B %-d, %Y at %H:%M %Z")
    );
    println!("Fill it in, then run `letterpress check` to see what is still missing.");
    Ok(ExitCode::SUCCESS)
}

/// One past the highest `number` among the issues (1 for the first), read leniently: an
/// issue with other problems still counts.
fn next_number(workspace: &Workspace) -> anyhow::Result<u32> {
    let mut highest = 0;
    for path in workspace.issue_files()? {
        let Ok(source) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(root) = yaml::parse(&source) else {
            continue;
        };
        if let Value::Map(entries) = root.value {
            for (key, value) in entries {
                if let (Value::Scalar(key), Value::Scalar(value)) = (key.value, value.value)
                    && key == "number"
                {
                    highest = highest.max(value.trim().parse::<u32>().unwrap_or(0));
                }
            }
        }
    }
    Ok(highest + 1)
}

fn skeleton(newsletter: &Newsletter, date: NaiveDate, number: u32) -> String {
    let slot = newsletter.schedule.instant_on(date);
    format!(
        "# {name}, issue {number}: goes out {when} once `status` is `ready`.
# Empty fields are what is left to write; `letterpress check` lists them.
# Prose fields (intro, excerpt, outro) are Markdown; HTML in them is shown as text.
number: {number}
date: {date}
status: draft
subject:             # one line, under 78 characters
preheader:           # the preview line inboxes show after the subject
intro:               # optional: a few words to open the issue; `|` for several lines
sections:
  - heading:
    articles:
      - title:
        url:         # https://...
        source:      # the publication (optional)
        author:      # optional
        excerpt:     # two to four sentences, in your own words
        # image:
        #   src: https://...
        #   alt: what the picture shows
        #   width: 560
        #   height: 280
outro:               # optional: a sign-off
",
        name = newsletter.name,
        when = slot.format("%A %B %-d, %Y at %H:%M %Z"),
    )
}
