//! `letterpress status`: what happened to an issue, recipient by recipient, from the ledger.

use std::process::ExitCode;

use serde::Serialize;

use crate::delivery::lock::IssueLock;
use crate::ledger::{Counts, Ledger, State};
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
    let issues: Vec<String> = match issue_argument {
        Some(argument) => {
            let path = workspace.issue_path(argument);
            let stem = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or(argument);
            vec![stem.to_string()]
        }
        None => ledger.issues()?,
    };
    let statuses = issues
        .iter()
        .map(|issue| IssueStatus::read(workspace, &ledger, issue))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if json {
        let text = match (issue_argument, statuses.as_slice()) {
            (Some(_), [status]) => serde_json::to_string_pretty(status)?,
            _ => serde_json::to_string_pretty(&statuses)?,
        };
        println!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    if statuses.is_empty() {
        println!("Nothing has been sent yet.");
    }
    for status in &statuses {
        println!("{}", status.issue);
        status.print();
    }
    Ok(ExitCode::SUCCESS)
}
