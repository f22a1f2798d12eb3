//! New files for the editor to fill in: the next issue's skeleton (`letterpress new`), placed
//! at the next free weekly slot and numbered after the latest issue. Never overwrites.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::model::newsletter::Newsletter;
use crate::workspace::{ISSUES_DIR, Workspace};
use crate::yaml::{self, Value};

/// What `new_issue` did.
#[derive(Debug)]
pub enum NewIssue {
    Created {
        path: PathBuf,
        number: u32,
        date: NaiveDate,
    },
    /// The file is there already; nothing was written.
    Exists(PathBuf),
}

/// Writes the skeleton of the next issue: dated `date`, or the first upcoming slot after
/// `now` that has no issue yet.
pub fn new_issue(
    workspace: &Workspace,
    newsletter: &Newsletter,
    date: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> anyhow::Result<NewIssue> {
    let issue_dir = workspace.path(ISSUES_DIR);
    let file_for = |date: NaiveDate| issue_dir.join(format!("{date}.yaml"));
    let date = match date {
        Some(date) => date,
        None => {
            let mut slot_date = newsletter.schedule.next_after(now).date_naive();
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
            return Ok(NewIssue::Exists(path));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot create `{}`", path.display()));
        }
    };
    file.write_all(skeleton(newsletter, date, number).as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(NewIssue::Created { path, number, date })
}

/// One past the highest `number` among the issues (1 for the first), read leniently: an
/// issue with other problems still counts.
pub fn next_number(workspace: &Workspace) -> anyhow::Result<u32> {
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
