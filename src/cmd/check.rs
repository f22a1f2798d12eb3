//! `letterpress check`: every problem in every file, then a line per file.

use std::process::ExitCode;

use super::Context;
use crate::diagnostic::{Diagnostics, Severity, split};
use crate::lint;
use crate::model::issue::{Issue, IssueId};
use crate::schedule::plan::IssueEntry;
use crate::units::{human_size, plural};
use crate::workspace::{NEWSLETTER_FILE, issue_name};

/// A line of the summary table.
struct Row {
    file: String,
    details: String,
}

pub fn run(context: &Context, issue_arguments: &[String]) -> anyhow::Result<ExitCode> {
    context.warn_if_secret_exposed();
    let workspace = &context.workspace;
    let now = context.clock.now();
    let mut diagnostics = Diagnostics::default();
    let mut rows = vec![Row {
        file: NEWSLETTER_FILE.to_string(),
        details: String::new(),
    }];
    let (newsletter, found) = split(workspace.load_newsletter());
    diagnostics.extend(found);
    // Active entries the ledger suppresses: worth knowing, not an error.
    let mut notes: Vec<String> = Vec::new();

    let mut theme = None;
    let mut dkim_records = Vec::new();
    if let Some(newsletter) = &newsletter {
        let (loaded, found) = split(workspace.load_theme(newsletter));
        diagnostics.extend(found);
        theme = loaded;
        // Checked as a stream: a million addresses cost 8 bytes each here, not the list.
        let (list, found) = split(workspace.check_subscribers(newsletter));
        let ledger = context.state.open_existing_ledger()?;
        if let Some(ledger) = &ledger {
            diagnostics.extend(lint::lint_list_id(newsletter, ledger.stored_list_key()?));
        }
        let mut details = String::new();
        if let Some(list) = &list {
            if let Some(ledger) = &ledger {
                notes = crate::list::suppression_notes(list, ledger)?;
            }
            let signups = match &ledger {
                Some(ledger) => ledger.signup_counts()?,
                None => (0, 0),
            };
            details = describe_subscribers(&list.summary, notes.len(), signups);
        }
        let state = &context.state;
        let (dkim, records) = lint::lint_dkim(newsletter, state.dkim_keys(), state.path());
        diagnostics.extend(dkim);
        dkim_records = records;
        rows.push(Row {
            file: workspace.display(&workspace.subscribers_path(newsletter)),
            details,
        });
        diagnostics.extend(found);
    }

    let issue_paths = if issue_arguments.is_empty() {
        workspace.issue_files()?
    } else {
        issue_arguments
            .iter()
            .map(|argument| workspace.issue_path(argument))
            .collect()
    };
    let mut entries = Vec::new();
    for path in &issue_paths {
        let file = workspace.display(path);
        let (issue, found) = split(workspace.load_issue(path));
        diagnostics.extend(found);
        let mut details = String::new();
        if let Some(issue) = &issue {
            details = describe_issue(issue);
            if let (Some(newsletter), Some(theme)) = (&newsletter, &theme) {
                let (found, html_bytes) = lint::lint_issue(newsletter, theme, issue, &file, now)?;
                diagnostics.extend(found);
                details.push_str(&format!(", HTML {}", human_size(html_bytes)));
            }
        }
        if let Ok(id) = IssueId::parse(issue_name(path)) {
            entries.push(IssueEntry {
                id,
                file: file.clone(),
                issue,
            });
        }
        rows.push(Row { file, details });
    }
    if let Some(newsletter) = &newsletter {
        diagnostics.extend(lint::lint_schedule(newsletter, &entries, now));
    }

    let file_order: Vec<String> = rows.iter().map(|row| row.file.clone()).collect();
    diagnostics.sort_by_position(&file_order);
    super::print::dns_records(&dkim_records);
    print_report(&diagnostics, &notes, &rows, issue_paths.len());
    Ok(super::exit_status(!diagnostics.has_errors()))
}

/// The list's counts; suppressed ones (unsubscribed by link, or by the editor in the ledger)
/// are active in the file but get no mail, so they are named when there are any; then the
/// web's sign-ups, when there are any.
fn describe_subscribers(
    summary: &crate::workspace::ListSummary,
    on_list_suppressed: usize,
    (confirmed, pending): (u64, u64),
) -> String {
    let (total, active) = (summary.total, summary.active);
    let mut details = format!(
        "{total} subscriber{}: {active} active, {} unsubscribed",
        plural(total),
        total - active
    );
    if on_list_suppressed > 0 {
        details.push_str(&format!(", {on_list_suppressed} suppressed"));
    }
    if confirmed + pending > 0 {
        details.push_str(&format!(
            "; web sign-ups: {confirmed} confirmed, {pending} awaiting confirmation"
        ));
    }
    details
}

fn describe_issue(issue: &Issue) -> String {
    let sections = issue.sections.len() as u64;
    let articles: u64 = issue
        .sections
        .iter()
        .map(|section| section.articles.len() as u64)
        .sum();
    format!(
        "{}, {sections} section{}, {articles} article{}",
        issue.status.as_str(),
        plural(sections),
        plural(articles)
    )
}

fn print_report(diagnostics: &Diagnostics, notes: &[String], rows: &[Row], issue_count: usize) {
    for diagnostic in diagnostics.iter() {
        println!("{diagnostic}");
    }
    for note in notes {
        println!("{note}");
    }
    if !diagnostics.is_empty() || !notes.is_empty() {
        println!();
    }
    let width = rows
        .iter()
        .map(|row| row.file.chars().count())
        .max()
        .unwrap_or(0);
    for row in rows {
        let in_file = diagnostics.iter().filter(|d| d.file == row.file);
        let (errors, warnings) = in_file.fold((0u64, 0u64), |(e, w), d| match d.severity {
            Severity::Error => (e + 1, w),
            Severity::Warning => (e, w + 1),
        });
        let status = match (errors, warnings) {
            (0, 0) => "ok".to_string(),
            (0, w) => format!("ok, {w} warning{}", plural(w)),
            (e, _) => format!("{e} error{}", plural(e)),
        };
        let details = if row.details.is_empty() || errors > 0 {
            String::new()
        } else {
            format!("  {}", row.details)
        };
        println!("{:width$}  {status}{details}", row.file);
    }
    let has_settings = !diagnostics.iter().any(|d| {
        d.file == crate::workspace::NEWSLETTER_FILE && d.message.starts_with("file not found")
    });
    if issue_count == 0 && has_settings {
        println!("(no issues yet: `letterpress new` starts one)");
    }
    let errors = diagnostics.error_count() as u64;
    let warnings = diagnostics.warning_count() as u64;
    match (errors, warnings) {
        (0, 0) => println!("check passed"),
        (0, w) => println!("check passed with {w} warning{}", plural(w)),
        (e, 0) => println!("check failed: {e} error{}", plural(e)),
        (e, w) => println!(
            "check failed: {e} error{}, {w} warning{}",
            plural(e),
            plural(w)
        ),
    }
}
