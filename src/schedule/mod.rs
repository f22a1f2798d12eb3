//! The scheduler: what to send when (`plan`, pure), and the process that does it (`daemon`).
//! The weekly slot itself, and its daylight-saving rules, are `model::slot::WeeklySlot`.

pub mod daemon;
pub mod plan;

use crate::model::issue::IssueId;
use crate::workspace::{Workspace, issue_name};
use plan::IssueEntry;

/// Every issue file as the scheduler sees it: loaded if it passes `check`, without its issue
/// otherwise (so its failure at send time is reported, not silent). A file whose name cannot
/// name an issue is left out; `check` reports it.
pub fn issue_entries(workspace: &Workspace) -> std::io::Result<Vec<IssueEntry>> {
    Ok(issue_entries_and_problems(workspace)?
        .into_iter()
        .map(|(entry, _)| entry)
        .collect())
}

/// `issue_entries`, each with the first problem of a file that does not pass `check`: what
/// `run` logs when a file it watches goes bad, long before its slot.
pub fn issue_entries_and_problems(
    workspace: &Workspace,
) -> std::io::Result<Vec<(IssueEntry, Option<String>)>> {
    Ok(workspace
        .issue_files()?
        .into_iter()
        .filter_map(|path| {
            let id = IssueId::parse(issue_name(&path)).ok()?;
            let (issue, problem) = match workspace.load_issue(&path) {
                Ok(valid) => (Some(valid.value), None),
                Err(invalid) => (None, Some(invalid.first_problem())),
            };
            let file = workspace.display(&path);
            Some((IssueEntry { id, file, issue }, problem))
        })
        .collect())
}

/// One line for a pass that found nothing to send: when the next slot is, and what is set
/// for it.
pub fn nothing_due(
    workspace: &Workspace,
    ledger: Option<&crate::ledger::Ledger>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<String> {
    let newsletter = workspace.load_newsletter()?.value;
    let entries = issue_entries(workspace)?;
    let next = plan::upcoming(now, &newsletter.schedule, &entries, 1);
    let Some(upcoming) = next.first() else {
        return Ok("Nothing is due.".to_string());
    };
    let what = match upcoming.entries.as_slice() {
        [] => "no issue yet".to_string(),
        // Sent already (the clock set back after its send): not "ready", which would
        // promise a send that will not happen.
        [entry] if ledger.is_some_and(|ledger| ledger.has_gone_out(&entry.id)) => {
            format!("{} (already sent)", entry.file)
        }
        [entry] => format!("{} ({})", entry.file, entry.standing()),
        several => format!(
            "{} issues, none will be sent: `letterpress check` says why",
            several.len()
        ),
    };
    Ok(format!(
        "Nothing is due; the next slot is {} -> {what}",
        crate::units::short_time(&upcoming.due)
    ))
}
