//! Rules about issues that only show once an issue is rendered or placed in the schedule: a
//! message Gmail would clip, a draft left in the past or about to miss its slot, two ready
//! issues for one slot, a ready issue the scheduler will never send. `check` reports them,
//! and the scheduler and the preview share the same list.

use chrono::{DateTime, Utc};

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::message::dkim::{self, DnsRecord, KeyEnv};
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::model::address::EmailAddress;
use crate::model::issue::{Issue, Readiness};
use crate::model::newsletter::Newsletter;
use crate::render::{self, GMAIL_CLIP_BYTES, RenderError};
use crate::schedule::plan::{self, IssueEntry};
use crate::secret::Secret;
use crate::theme::Theme;
use crate::units::human_size;

/// A reader with a long name and address, so the size measured is what real readers get.
const SAMPLE_NAME: &str = "Maximiliana Example-Subscriber";
const SAMPLE_ADDRESS: &str = "maximiliana.example-subscriber@example.com";

/// The issue's own problems that only rendering shows, and the size of its HTML part as a
/// reader gets it.
pub fn lint_issue(
    newsletter: &Newsletter,
    theme: &Theme,
    issue: &Issue,
    file: &str,
    now: DateTime<Utc>,
) -> Result<(Diagnostics, usize), RenderError> {
    let mut diagnostics = Diagnostics::default();
    let rendered = render::render(newsletter, issue, theme)?;
    let template = MessageTemplate::new(newsletter, issue, &rendered, &theme.texts, Kind::Issue);
    let sample = EmailAddress::parse(SAMPLE_ADDRESS).expect("the sample address is valid");
    // Any key gives a token of the same length; this one is never stored or used again.
    let secret = Secret::from_passphrase(&"x".repeat(32)).expect("a long enough passphrase");
    let personal = template.personal(
        Recipient {
            email: &sample,
            name: Some(SAMPLE_NAME),
        },
        &secret,
    );
    let html_bytes = rendered.html.fill(&personal.values()).len();
    if html_bytes > GMAIL_CLIP_BYTES {
        diagnostics.push(Diagnostic::about_file(Severity::Warning, file, format!(
            "the HTML is {}; Gmail clips emails over {}, hiding the footer and its unsubscribe link: shorten the excerpts or split the issue",
            human_size(html_bytes),
            human_size(GMAIL_CLIP_BYTES)
        )));
    }
    if newsletter.site_url.is_none() && has_local_images(issue) {
        diagnostics.push(Diagnostic::about_file(
            Severity::Error,
            file,
            "the issue has images from the workspace, which are published under the site: set `site_url` in newsletter.yaml (and run `letterpress serve` there, or copy `render --site`'s images/)",
        ));
    }
    let today = newsletter.schedule.local_date(now);
    if issue.status == Readiness::Draft && issue.date < today {
        diagnostics.push(Diagnostic::at_field(Severity::Warning, file, issue.marks.status, "status", format!(
            "the issue is dated {}, in the past, but is still a draft: it will never be sent; set `status: ready` and a new date, or delete it",
            issue.date
        )));
    }
    Ok((diagnostics, html_bytes))
}

/// A rename (or a new `site_url`) that changes the `List-Id` readers' mail apps know the
/// newsletter by. Links already sent keep working: tokens are signed with the list key the
/// ledger fixed at the first send (`stored`).
pub fn lint_list_id(newsletter: &Newsletter, stored: Option<String>) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    let current = crate::message::list_id(newsletter);
    if let Some(stored) = stored.filter(|stored| *stored != current) {
        diagnostics.push(Diagnostic::about_file(
            Severity::Warning,
            crate::workspace::NEWSLETTER_FILE,
            format!(
                "the List-Id is now `{current}`, and was `{stored}` when the first issue went out: filters and mail apps that group the newsletter by it will see a new list (unsubscribe links already sent keep working)"
            ),
        ));
    }
    diagnostics
}

fn has_local_images(issue: &Issue) -> bool {
    issue.local_images().next().is_some()
}

/// DKIM as `check` sees it, without signing anything: with `dkim:`, every configured key
/// exists, parses and is of its selector's algorithm (errors, since a send would refuse to go
/// out unsigned), and the signing domain is aligned with From (a warning); without `dkim:`, a
/// warning naming the command that fixes it. Also the DNS records the keys must be published
/// as.
pub fn lint_dkim(
    newsletter: &Newsletter,
    keys: &KeyEnv,
    state_dir: &std::path::Path,
) -> (Diagnostics, Vec<DnsRecord>) {
    let file = crate::workspace::NEWSLETTER_FILE;
    let mut diagnostics = Diagnostics::default();
    let about = |severity, message: String| Diagnostic {
        severity,
        file: file.to_string(),
        mark: None,
        field: "dkim".to_string(),
        message,
    };
    let Some(config) = &newsletter.dkim else {
        diagnostics.push(about(
            Severity::Warning,
            "not set, so messages go out unsigned, and Gmail and Yahoo want bulk mail signed by the From domain: `letterpress dkim keygen` makes a key and prints the DNS record and the lines to add".to_string(),
        ));
        return (diagnostics, Vec::new());
    };
    let report = dkim::check(config, &newsletter.from.address, keys, state_dir);
    for error in &report.errors {
        diagnostics.push(about(Severity::Error, error.to_string()));
    }
    for warning in &report.warnings {
        diagnostics.push(about(Severity::Warning, warning.to_string()));
    }
    let records = report
        .keys
        .into_iter()
        .filter_map(|(_, record)| record)
        .collect();
    (diagnostics, records)
}

/// Problems that only show across issues and the clock: two ready issues for one slot, a
/// draft about to miss its slot, a ready issue the scheduler will never send.
pub fn lint_schedule(
    newsletter: &Newsletter,
    entries: &[IssueEntry],
    now: DateTime<Utc>,
) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    let slot = &newsletter.schedule;
    let when = |due: &chrono::DateTime<chrono_tz::Tz>| crate::units::short_time(due);
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
    for (entry, due) in plan::drafts_due_soon(now, slot, entries) {
        let issue = entry.issue.as_ref().expect("drafts are loaded issues");
        let hours = (due.with_timezone(&Utc) - now).num_minutes() as f64 / 60.0;
        diagnostics.push(Diagnostic::at_field(Severity::Warning, entry.file.clone(), issue.marks.status, "status", format!(
            "due {} (in {hours:.1} hours) but still a draft: it will not go out unless marked `ready`",
            when(&due)
        )));
    }
    for entry in entries {
        let Some(issue) = &entry.issue else { continue };
        if issue.status == Readiness::Ready && plan::due(slot, entry).is_none() {
            diagnostics.push(Diagnostic::at_field(Severity::Warning, entry.file.clone(), issue.marks.date, "date", format!(
                "{} is a {} and the newsletter goes out on {}s: the scheduler will never send this issue; change the date or add send_at (`letterpress send` still can)",
                issue.date,
                issue.date.format("%A"),
                crate::units::weekday_name(slot.day),
            )));
        }
    }
    duplicate_numbers(entries, &mut diagnostics);
    diagnostics
}

/// Two issues with one `number`: readers see "#7" twice, and the archive lists both.
fn duplicate_numbers(entries: &[IssueEntry], diagnostics: &mut Diagnostics) {
    let mut by_number: std::collections::BTreeMap<u32, Vec<(&IssueEntry, &Issue)>> =
        Default::default();
    for entry in entries {
        if let Some(issue) = &entry.issue
            && let Some(number) = issue.number
        {
            by_number.entry(number).or_default().push((entry, issue));
        }
    }
    for (number, group) in by_number.into_iter().filter(|(_, group)| group.len() > 1) {
        for (entry, issue) in &group {
            let others: Vec<&str> = group
                .iter()
                .filter(|(other, _)| other.id != entry.id)
                .map(|(other, _)| other.file.as_str())
                .collect();
            diagnostics.push(Diagnostic::at_field(
                Severity::Error,
                entry.file.clone(),
                issue.marks.number,
                "number",
                format!(
                    "{number} is also the number of {}; give each issue its own (`letterpress new` numbers the next one)",
                    others.join(", ")
                ),
            ));
        }
    }
}
