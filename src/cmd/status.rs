//! `letterpress status`: what happened to an issue, recipient by recipient, from the ledger.

use std::process::ExitCode;

use serde::Serialize;

use crate::delivery::lock::IssueLock;
use crate::ledger::{Counts, Ledger, State};
use crate::model::issue::IssueStatus as Readiness;
use crate::schedule::plan;
use crate::workspace::Workspace;

use super::{Context, grouped};

/// An issue's delivery state as `status` shows it and `--json` prints it.
#[derive(Debug, Serialize)]
pub struct IssueStatus {
    pub issue: String,
    /// Whether a send of the issue is running now.
    pub running: bool,
    pub pending: u64,
    /// In flight in the running send.
    pub sending: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// Left in flight by a send that died: maybe delivered, maybe not.
    pub uncertain: u64,
    pub skipped: u64,
    pub failures: Vec<Problem>,
    pub deferrals: Vec<Problem>,
    pub uncertain_recipients: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Problem {
    pub email: String,
    pub attempts: u32,
    pub reply: Option<String>,
}

impl IssueStatus {
    pub fn read(
        workspace: &Workspace,
        ledger: &Ledger,
        issue: &str,
    ) -> anyhow::Result<IssueStatus> {
        let running = IssueLock::is_held(&workspace.state_dir(), issue);
        let counts: Counts = ledger.counts(issue)?;
        let problems = |state| -> anyhow::Result<Vec<Problem>> {
            Ok(ledger
                .rows_in(issue, state)?
                .into_iter()
                .map(|row| Problem {
                    email: row.address,
                    attempts: row.attempts,
                    reply: row.last_reply,
                })
                .collect())
        };
        let uncertain_recipients = if running {
            Vec::new()
        } else {
            ledger
                .rows_in(issue, State::Sending)?
                .into_iter()
                .map(|row| row.address)
                .collect()
        };
        Ok(IssueStatus {
            issue: issue.to_string(),
            running,
            pending: counts.pending,
            sending: if running { counts.sending } else { 0 },
            sent: counts.sent,
            deferred: counts.deferred,
            failed: counts.failed,
            uncertain: if running { 0 } else { counts.sending },
            skipped: counts.skipped,
            failures: problems(State::Failed)?,
            deferrals: problems(State::Deferred)?,
            uncertain_recipients,
        })
    }

    /// Whether anything is left for a human to look at.
    pub fn is_complete(&self) -> bool {
        self.pending == 0
            && self.sending == 0
            && self.deferred == 0
            && self.failed == 0
            && self.uncertain == 0
    }

    pub fn print(&self) {
        let mut line = format!(
            "sent {}, failed {}, deferred {}, uncertain {}",
            grouped(self.sent),
            grouped(self.failed),
            grouped(self.deferred),
            grouped(self.uncertain)
        );
        for (label, count) in [
            ("pending", self.pending),
            ("in flight", self.sending),
            ("skipped", self.skipped),
        ] {
            if count > 0 {
                line.push_str(&format!(", {label} {}", grouped(count)));
            }
        }
        println!("{line}");
        print_problems("failed (not retried)", &self.failures);
        print_problems("deferred (retried on the next send)", &self.deferrals);
        if !self.uncertain_recipients.is_empty() {
            println!(
                "uncertain: a send was interrupted while these were in flight; they may or may not have their message, and are not sent again unless you run `letterpress send {} --resend-uncertain`:",
                self.issue
            );
            for address in self.uncertain_recipients.iter().take(20) {
                println!("  {address}");
            }
            if self.uncertain_recipients.len() > 20 {
                println!("  ... and {} more", self.uncertain_recipients.len() - 20);
            }
        }
    }
}

fn print_problems(title: &str, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    println!("{title}:");
    let width = problems
        .iter()
        .take(20)
        .map(|problem| problem.email.len())
        .max()
        .unwrap_or(0);
    for problem in problems.iter().take(20) {
        println!(
            "  {:width$}  {} ({} attempt{})",
            problem.email,
            problem.reply.as_deref().unwrap_or("no reply recorded"),
            problem.attempts,
            if problem.attempts == 1 { "" } else { "s" }
        );
    }
    if problems.len() > 20 {
        println!(
            "  ... and {} more (`letterpress status --json` lists all)",
            problems.len() - 20
        );
    }
}

pub fn run(
    context: &Context,
    issue_argument: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let ledger = workspace.open_ledger()?;
    if let Some(argument) = issue_argument {
        let path = workspace.issue_path(argument);
        let issue = crate::workspace::issue_name(&path);
        let status = IssueStatus::read(workspace, &ledger, issue)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            println!("{issue}");
            status.print();
            print_events(&ledger.events(Some(issue), 10)?);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let statuses = ledger
        .issues()?
        .iter()
        .map(|issue| IssueStatus::read(workspace, &ledger, issue))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_schedule(context)?;
    print_events(&ledger.events(None, 10)?);
    print_suppressions(&ledger.suppression_counts()?);
    if !statuses.is_empty() {
        println!("Issues in the ledger:");
        for status in &statuses {
            print!("  {}  ", status.issue);
            status.print();
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The next slots and the issues set for them, as the scheduler sees them now.
fn print_schedule(context: &Context) -> anyhow::Result<()> {
    let workspace = &context.workspace;
    let Some(newsletter) = workspace.load_newsletter().value else {
        println!(
            "newsletter.yaml is invalid: `letterpress check` shows why; no slots until it is fixed."
        );
        return Ok(());
    };
    let slot = &newsletter.schedule;
    let entries = workspace.issue_entries()?;
    let now = context.clock.now();
    println!("Next slots:");
    for upcoming in plan::upcoming(now, slot, &entries, 3) {
        let when = upcoming.due.format("%a %Y-%m-%d %H:%M");
        let what = match upcoming.entries.as_slice() {
            [] => "no issue yet".to_string(),
            [entry] => format!("{} ({})", entry.file, describe_entry(entry)),
            several => format!(
                "{}: ready for one slot together, none will be sent",
                several
                    .iter()
                    .map(|entry| entry.file.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        println!("  {when} {} -> {what}", slot.timezone.name());
    }
    for (entry, due) in plan::drafts_due_soon(now, slot, &entries) {
        println!(
            "warning: {} is due {} and still a draft: it will not go out unless marked ready",
            entry.file,
            due.format("%a %H:%M %Z")
        );
    }
    Ok(())
}

fn describe_entry(entry: &plan::IssueEntry) -> &'static str {
    match entry.issue.as_ref().map(|issue| issue.status) {
        Some(Readiness::Ready) => "ready",
        Some(Readiness::Draft) => "draft: will not be sent",
        None => "does not pass check: will not be sent until fixed",
    }
}

/// One line on who gets no mail, by why: `3 addresses suppressed (unsubscribed by link)`.
fn print_suppressions(counts: &[(String, u64)]) {
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return;
    }
    let label = |source: &str| match source {
        crate::ledger::ONE_CLICK_SOURCE => "unsubscribed by link".to_string(),
        other => other.to_string(),
    };
    let why = match counts {
        [(source, _)] => label(source),
        several => several
            .iter()
            .map(|(source, count)| format!("{} {}", grouped(*count), label(source)))
            .collect::<Vec<_>>()
            .join(", "),
    };
    println!(
        "{} address{} suppressed ({why})",
        grouped(total),
        if total == 1 { "" } else { "es" }
    );
}

fn print_events(events: &[crate::ledger::Event]) {
    if events.is_empty() {
        return;
    }
    println!("Scheduler, most recent first:");
    for event in events {
        let detail = event
            .detail
            .as_deref()
            .map(|detail| format!(": {detail}"))
            .unwrap_or_default();
        println!(
            "  {}  {} (slot {})  {}{detail}",
            event.at.format("%Y-%m-%d %H:%M UTC"),
            event.issue,
            event.due.format("%Y-%m-%d %H:%M UTC"),
            event.event
        );
    }
}
