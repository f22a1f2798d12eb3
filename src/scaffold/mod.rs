//! New files for the editor to fill in: a whole workspace (`letterpress init`, in `init`),
//! and the next issue's skeleton (`letterpress new`), placed at the next free weekly slot and
//! numbered after the latest issue. Never overwrites.

pub mod init;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::model::newsletter::Newsletter;
use crate::source::FileKind;
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
/// `now` that has no issue yet. With `from`, it has that issue's sections and headings,
/// each with one empty article to fill in.
pub fn new_issue(
    workspace: &Workspace,
    newsletter: &Newsletter,
    date: Option<NaiveDate>,
    from: Option<&Path>,
    now: DateTime<Utc>,
) -> anyhow::Result<NewIssue> {
    let headings = match from {
        Some(path) => section_headings(workspace, path)?,
        None => vec![String::new()],
    };
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
    file.write_all(skeleton(newsletter, date, number, &headings).as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(NewIssue::Created { path, number, date })
}

/// The latest issue in `issues/` (the last by name, which is by date): the default of
/// `new --from`.
pub fn latest_issue(workspace: &Workspace) -> anyhow::Result<Option<PathBuf>> {
    Ok(workspace
        .issue_files()
        .with_context(|| format!("cannot read `{ISSUES_DIR}/`"))?
        .pop())
}

/// The section headings of an issue file, read leniently: a half-written issue still gives
/// its outline.
fn section_headings(workspace: &Workspace, path: &Path) -> anyhow::Result<Vec<String>> {
    let shown = workspace.display(path);
    let (root, decoder) = crate::source::load_yaml(path, FileKind::Issue, shown.clone());
    let Some(root) = root else {
        anyhow::bail!(crate::diagnostic::Invalid::new(
            &shown,
            decoder.into_diagnostics()
        ));
    };
    let sections = field(&root, "sections").and_then(|sections| match &sections.value {
        Value::Seq(items) => Some(items),
        _ => None,
    });
    let headings: Vec<String> = sections
        .into_iter()
        .flatten()
        .map(
            |section| match field(section, "heading").map(|heading| &heading.value) {
                // One line, whatever the old file did (a heading with a line break is an
                // error there, and must not become one here).
                Some(Value::Scalar(text)) => text.split_whitespace().collect::<Vec<_>>().join(" "),
                _ => String::new(),
            },
        )
        .collect();
    anyhow::ensure!(
        !headings.is_empty(),
        "{shown} has no sections to start from; `letterpress new` without --from writes a skeleton"
    );
    Ok(headings)
}

/// The value of `key` in a mapping node.
fn field<'n>(node: &'n yaml::Node, key: &str) -> Option<&'n yaml::Node> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(name, _)| matches!(&name.value, Value::Scalar(text) if text == key))
            .map(|(_, value)| value),
        _ => None,
    }
}

/// One past the highest `number` among the issues (1 for the first), read leniently: an
/// issue with other problems still counts.
pub fn next_number(workspace: &Workspace) -> anyhow::Result<u32> {
    let mut highest = 0;
    for path in workspace.issue_files()? {
        let number = match crate::source::load_yaml(&path, FileKind::Issue, "") {
            (Some(root), _) => match field(&root, "number").map(|node| &node.value) {
                Some(Value::Scalar(number)) => number.trim().parse::<u32>().ok(),
                _ => None,
            },
            // Half edited, it still holds its number: the next issue must not take it.
            (None, _) => crate::source::read_string(&path, FileKind::Issue)
                .ok()
                .and_then(|text| written_number(&text)),
        };
        highest = highest.max(number.unwrap_or(0));
    }
    Ok(highest + 1)
}

/// The `number:` at the top of an issue that does not read as YAML, if its line does.
fn written_number(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("number:")?;
        let value = value.split(" #").next()?.trim().trim_matches(['"', '\'']);
        value.parse().ok()
    })
}

/// A YAML double-quoted string: safe for any text, control characters escaped.
pub(crate) fn yaml_quoted(text: &str) -> String {
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn skeleton(newsletter: &Newsletter, date: NaiveDate, number: u32, headings: &[String]) -> String {
    let slot = newsletter.schedule.instant_on(date);
    let mut text = format!(
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
",
        name = newsletter.name,
        when = crate::units::slot_time(&slot),
    );
    for heading in headings {
        let heading = if heading.is_empty() {
            String::new()
        } else {
            format!(" {}", yaml_quoted(heading))
        };
        text.push_str(&format!(
            "  - heading:{heading}
    articles:
      - title:
        url:         # https://...
        source:      # the publication (optional)
        author:      # optional
        excerpt:     # two to four sentences, in your own words
        # image:
        #   src: images/picture.png   # a file in this folder, or https://...
        #   alt: what the picture shows
"
        ));
    }
    text.push_str("outro:               # optional: a sign-off\n");
    text
}
