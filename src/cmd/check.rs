//! `letterpress check`: every problem in every file, then a line per file.

use std::collections::HashSet;
use std::process::ExitCode;

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::model::issue::{Issue, IssueStatus};
use crate::model::newsletter::Newsletter;
use crate::model::subscriber::Subscriber;
use crate::render::template::SlotValues;
use crate::render::{self, GMAIL_CLIP_BYTES};
use crate::schedule::plan::{self, IssueEntry};
use crate::theme::Theme;

use super::{Context, human_size};

/// A line of the summary table.
struct Row {
    file: String,
    details: String,
}

pub fn run(context: &Context, issue_arguments: &[String]) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let mut diagnostics = Diagnostics::default();
    let mut rows = Vec::new();

    let newsletter = workspace.load_newsletter();
    rows.push(Row {
        file: crate::workspace::NEWSLETTER_FILE.to_string(),
        details: String::new(),
    });
    diagnostics.extend(newsletter.diagnostics);
    let newsletter = newsletter.value;

    let mut theme = None;
    if let Some(newsletter) = &newsletter {
        let loaded = workspace.load_theme(newsletter);
        diagnostics.extend(loaded.diagnostics);
        theme = loaded.value;

        let loaded = workspace.load_subscribers(newsletter);
        let suppressed = suppressed_addresses(context)?;
        rows.push(Row {
            file: workspace.display(&workspace.subscribers_path(newsletter)),
            details: loaded
                .value
                .as_deref()
                .map(|subscribers| describe_subscribers(subscribers, &suppressed))
                .unwrap_or_default(),
        });
        diagnostics.extend(loaded.diagnostics);
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
        let loaded = workspace.load_issue(path);
        let file = workspace.display(path);
        let mut details = String::new();
        diagnostics.extend(loaded.diagnostics);
        if let Some(issue) = &loaded.value {
            details = describe_issue(issue);
            if let (Some(newsletter), Some(theme)) = (&newsletter, &theme) {
                let html_bytes =
                    check_rendering(context, newsletter, theme, issue, &file, &mut diagnostics)?;
                details.push_str(&format!(", HTML {}", human_size(html_bytes)));
            }
        }
        entries.push(IssueEntry {
            id: crate::workspace::issue_name(path).to_string(),
            file: file.clone(),
            issue: loaded.value,
        });
        rows.push(Row { file, details });
    }
    if let Some(newsletter) = &newsletter {
        check_schedule(context, newsletter, &entries, &mut diagnostics);
    }

    let file_order: Vec<String> = rows.iter().map(|row| row.file.clone()).collect();
    diagnostics.sort_by_position(&file_order);
    print_report(&diagnostics, &rows, issue_paths.len());
    Ok(super::exit_status(!diagnostics.has_errors()))
}

/// Renders the issue as a subscriber would get it, to catch what only shows in the output.
fn check_rendering(
    context: &Context,
    newsletter: &Newsletter,
    theme: &Theme,
    issue: &Issue,
    file: &str,
    diagnostics: &mut Diagnostics,
) -> anyhow::Result<usize> {
    let rendered = render::render(newsletter, issue, theme)?;
    // Values as long as real ones, so the size is what subscribers get.
    let sample = SlotValues {
        greeting: &theme
            .texts
            .greeting_for(Some("Maximiliana Example-Subscriber")),
        unsubscribe_url: &format!(
            "{}unsubscribe/xxxxxxxxxxxxxxxxxxxxxx",
            newsletter
                .site_url
                .as_ref()
                .map_or("https://example.com/", |site| site.as_str())
        ),
        recipient_email: "maximiliana.example-subscriber@example.com",
    };
    let html_bytes = rendered.html.fill(&sample).len();
    if html_bytes > GMAIL_CLIP_BYTES {
        diagnostics.push(Diagnostic::about_file(Severity::Warning, file.to_string(), format!(
                "the HTML is {}; Gmail clips emails over {}, hiding the footer and its unsubscribe link: shorten the excerpts or split the issue",
                human_size(html_bytes),
                human_size(GMAIL_CLIP_BYTES)
            )));
    }
    let today = newsletter.schedule.local_date(context.clock.now());
    if issue.status == IssueStatus::Draft && issue.date < today {
        diagnostics.push(Diagnostic::at_field(Severity::Warning, file.to_string(), issue.marks.status, "status", format!(
                "the issue is dated {}, in the past, but is still a draft: it will never be sent; set `status: ready` and a new date, or delete it",
                issue.date
            )));
    }
    Ok(html_bytes)
}

/// Problems that only show across issues and the clock: two ready issues for one slot, a
/// draft about to miss its slot, a ready issue the scheduler will never send.
fn check_schedule(
    context: &Context,
    newsletter: &Newsletter,
    entries: &[IssueEntry],
    diagnostics: &mut Diagnostics,
) {
    let slot = &newsletter.schedule;
    let when =
        |due: &chrono::DateTime<chrono_tz::Tz>| due.format("%a %Y-%m-%d %H:%M %Z").to_string();
    for (due, group) in plan::conflicts(slot, entries) {
        for entry in &group {
            let others: Vec<&str> = group
                .iter()
                .filter(|other| other.id != entry.id)
                .map(|other| other.file.as_str())
                .collect();
            let issue = entry
                .issue
                .as_ref()
                .expect("conflicts are between loaded issues");
            diagnostics.push(Diagnostic::at_field(Severity::Error, entry.file.clone(), issue.marks.status, "status", format!(
                    "ready for the same slot as {} ({}); one issue per slot: mark the other a draft or give one a send_at",
                    others.join(", "),
                    when(&due)
                )));
        }
    }
    let now = context.clock.now();
    for (entry, due) in plan::drafts_due_soon(now, slot, entries) {
        let issue = entry.issue.as_ref().expect("drafts are loaded issues");
        let hours = (due.with_timezone(&chrono::Utc) - now).num_minutes() as f64 / 60.0;
        diagnostics.push(Diagnostic::at_field(Severity::Warning, entry.file.clone(), issue.marks.status, "status", format!(
                "due {} (in {hours:.1} hours) but still a draft: it will not go out unless marked `ready`",
                when(&due)
            )));
    }
    for entry in entries {
        let Some(issue) = &entry.issue else { continue };
        if issue.status == IssueStatus::Ready && plan::due(slot, entry).is_none() {
            diagnostics.push(Diagnostic::at_field(Severity::Warning, entry.file.clone(), issue.marks.date, "date", format!(
                    "{} is a {} and the newsletter goes out on {}s: the scheduler will never send this issue; change the date or add send_at (`letterpress send` still can)",
                    issue.date,
                    issue.date.format("%A"),
                    weekday_name(slot.day),
                )));
        }
    }
}

/// `Monday` for `Weekday::Mon`: chrono formats weekdays only as part of a date.
fn weekday_name(day: chrono::Weekday) -> String {
    chrono::NaiveDate::from_isoywd_opt(2024, 1, day)
        .map(|date| date.format("%A").to_string())
        .unwrap_or_default()
}

/// The ledger's suppression list, read only if there is a ledger: `check` creates nothing.
fn suppressed_addresses(context: &Context) -> anyhow::Result<HashSet<String>> {
    let workspace = &context.workspace;
    let path = workspace.state_dir().join(crate::ledger::LEDGER_FILE);
    if !path.exists() {
        return Ok(HashSet::new());
    }
    Ok(workspace.open_ledger()?.suppressed()?)
}

/// The list's counts; suppressed ones (unsubscribed by link, or by the editor in the ledger)
/// are active in the file but get no mail, so they are named when there are any.
fn describe_subscribers(subscribers: &[Subscriber], suppressed: &HashSet<String>) -> String {
    let active = subscribers
        .iter()
        .filter(|subscriber| subscriber.is_active())
        .count();
    let on_list_suppressed = subscribers
        .iter()
        .filter(|subscriber| suppressed.contains(&subscriber.email.key()))
        .count();
    let mut details = format!(
        "{} subscriber{}: {active} active, {} unsubscribed",
        subscribers.len(),
        plural(subscribers.len()),
        subscribers.len() - active
    );
    if on_list_suppressed > 0 {
        details.push_str(&format!(", {on_list_suppressed} suppressed"));
    }
    details
}

fn describe_issue(issue: &Issue) -> String {
    let articles: usize = issue
        .sections
        .iter()
        .map(|section| section.articles.len())
        .sum();
    format!(
        "{}, {} section{}, {articles} article{}",
        issue.status.as_str(),
        issue.sections.len(),
        plural(issue.sections.len()),
        plural(articles)
    )
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn print_report(diagnostics: &Diagnostics, rows: &[Row], issue_count: usize) {
    for diagnostic in diagnostics.iter() {
        println!("{diagnostic}");
    }
    if !diagnostics.is_empty() {
        println!();
    }
    let width = rows
        .iter()
        .map(|row| row.file.chars().count())
        .max()
        .unwrap_or(0);
    for row in rows {
        let in_file = diagnostics.iter().filter(|d| d.file == row.file);
        let (errors, warnings) = in_file.fold((0, 0), |(e, w), d| match d.severity {
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
    if issue_count == 0 {
        println!("(no issues yet: `letterpress new` starts one)");
    }
    let errors = diagnostics.error_count();
    let warnings = diagnostics.warning_count();
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
