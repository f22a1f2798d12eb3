//! `letterpress status`: what happened to an issue, recipient by recipient, from the ledger;
//! without an issue, the coming slots and what the scheduler did.

use std::process::ExitCode;

use super::{Context, print};

mod ledger_lines;
use crate::delivery::Report;
use crate::ledger::Ledger;
use crate::model::issue::IssueId;
use crate::schedule::{self, plan};
use crate::units::short_time;
use crate::workspace::issue_name;
use ledger_lines::in_zone;

pub fn run(
    context: &Context,
    issue_argument: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    context.warn_if_secret_exposed();
    // Read-only: status never creates a ledger, and never gets in a send's way.
    if issue_argument.is_none() && !json {
        return overview(context);
    }
    let ledger = context.state.open_existing_ledger()?;
    if let Some(argument) = issue_argument {
        let path = context.workspace.issue_path(argument);
        let issue = IssueId::parse(issue_name(&path)).map_err(crate::diagnostic::Invalid::usage)?;
        let Some(ledger) = ledger else {
            if json {
                println!("{}", serde_json::to_string_pretty(&Report::empty(&issue))?);
            } else {
                println!("{issue}\nnot sent yet: nothing in the ledger");
            }
            return Ok(ExitCode::SUCCESS);
        };
        let report = Report::read(&context.state, &ledger, &issue)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{issue}");
            print::report(&report);
            let zone = context
                .workspace
                .load_newsletter()
                .ok()
                .map(|newsletter| newsletter.value.schedule.timezone);
            ledger_lines::events(&ledger.events(Some(&issue), 10)?, zone);
        }
        return Ok(ExitCode::SUCCESS);
    }

    let reports = match &ledger {
        Some(ledger) => reports(context, ledger)?,
        None => Vec::new(),
    };
    println!("{}", serde_json::to_string_pretty(&reports)?);
    Ok(ExitCode::SUCCESS)
}

fn reports(context: &Context, ledger: &Ledger) -> anyhow::Result<Vec<Report>> {
    Ok(ledger
        .issues()?
        .iter()
        .map(|issue| Report::read(&context.state, ledger, issue))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Everything at a glance. What cannot be read (a damaged ledger) is said, and the rest is
/// still shown: the schedule, and the scheduler's own problems, matter most then.
fn overview(context: &Context) -> anyhow::Result<ExitCode> {
    let (ledger, trouble) = match context.state.open_existing_ledger() {
        Ok(ledger) => (ledger, None),
        Err(error) => (None, Some(error)),
    };
    let zone = print_schedule(context, ledger.as_ref())?;
    if let Some(problem) = context.state.scheduler_problem() {
        println!(
            "The scheduler's passes are failing ({} in a row, the last at {}): {}; it keeps trying.",
            problem.failures,
            in_zone(problem.at, zone),
            crate::units::printable(&problem.problem)
        );
    }
    if let Some(error) = trouble {
        println!("The ledger cannot be read: {error:#}");
        return Ok(ExitCode::from(1));
    }
    if let Some(ledger) = &ledger {
        ledger_lines::events(&ledger.events(None, 10)?, zone);
        ledger_lines::suppressions(&ledger.suppression_counts()?);
        ledger_lines::signups(ledger.signup_counts()?);
        let reports = reports(context, ledger)?;
        if !reports.is_empty() {
            println!("Issues in the ledger:");
            for report in &reports {
                print!("  {}  ", report.issue);
                print::report(report);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What is due or was missed, then the next slots and the issues set for them, as the
/// scheduler sees them now. Returns the newsletter's zone, for the times printed after.
fn print_schedule(
    context: &Context,
    ledger: Option<&Ledger>,
) -> anyhow::Result<Option<chrono_tz::Tz>> {
    let Ok(newsletter) = context.workspace.load_newsletter() else {
        println!(
            "newsletter.yaml is invalid: `letterpress check` shows why; no slots until it is fixed."
        );
        return Ok(None);
    };
    let slot = &newsletter.value.schedule;
    let entries = schedule::issue_entries(&context.workspace)?;
    let now = context.clock.now();
    let started = |id: &IssueId| ledger.is_some_and(|ledger| ledger.has_gone_out(id));
    for (entry, due, standing) in plan::overdue(now, slot, &entries, started) {
        let when = short_time(&due);
        let what = match standing {
            plan::Overdue::Due => "ready and due now: the scheduler sends it if it is running",
            plan::Overdue::Missed => {
                "ready, and its slot passed beyond the grace without a send: `letterpress send` sends it"
            }
        };
        println!("Overdue: {when} -> {} ({what})", entry.file);
    }
    println!("Next slots ({}):", slot.timezone.name());
    for upcoming in plan::upcoming(now, slot, &entries, 3) {
        let when = short_time(&upcoming.due);
        let what = match upcoming.entries.as_slice() {
            [] => "no issue yet".to_string(),
            [entry] if started(&entry.id) => format!("{} (already sent)", entry.file),
            [entry] => format!("{} ({})", entry.file, entry.standing()),
            several => format!(
                "{}: ready for one slot together, none will be sent",
                several
                    .iter()
                    .map(|entry| entry.file.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        };
        println!("  {when} -> {what}");
    }
    for (entry, due) in plan::drafts_due_soon(now, slot, &entries) {
        println!(
            "warning: {} is due {} and still a draft: it will not go out unless marked ready",
            entry.file,
            short_time(&due)
        );
    }
    Ok(Some(slot.timezone))
}
