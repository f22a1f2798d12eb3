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
    Ok(workspace
        .issue_files()?
        .into_iter()
        .filter_map(|path| {
            let id = IssueId::parse(issue_name(&path)).ok()?;
            Some(IssueEntry {
                id,
                file: workspace.display(&path),
                issue: workspace.load_issue(&path).ok().map(|valid| valid.value),
            })
        })
        .collect())
}
