//! `letterpress new`: the next issue's file, as a commented skeleton.

use std::process::ExitCode;

use chrono::NaiveDate;

use super::{Context, require};
use crate::diagnostic::Invalid;
use crate::scaffold::{NewIssue, latest_issue, new_issue};

/// `from`: `None` for a blank skeleton, `Some("")` for the latest issue's outline, or the
/// issue to take it from.
pub fn run(
    context: &Context,
    date: Option<NaiveDate>,
    from: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let newsletter = require(workspace.load_newsletter())?;
    let base = match from {
        None => None,
        Some("") => Some(latest_issue(workspace)?.ok_or_else(|| {
            Invalid::usage("--from: there is no issue in issues/ yet to start from")
        })?),
        Some(argument) => {
            let path = workspace.issue_path(argument);
            if !path.is_file() {
                return Err(Invalid::usage(format!(
                    "--from: {} is not an issue file",
                    workspace.display(&path)
                ))
                .into());
            }
            Some(path)
        }
    };
    match new_issue(
        workspace,
        &newsletter,
        date,
        base.as_deref(),
        context.clock.now(),
    )? {
        NewIssue::Exists(path) => {
            eprintln!(
                "error: {} already exists; letterpress never overwrites an issue (pick another --date)",
                workspace.display(&path)
            );
            Ok(ExitCode::from(2))
        }
        NewIssue::Created { path, number, date } => {
            let slot = newsletter.schedule.instant_on(date);
            let outline = base
                .map(|base| format!(", with the sections of {}", workspace.display(&base)))
                .unwrap_or_default();
            println!(
                "Started {} (issue {number}{outline}, goes out {} once its status is `ready`)",
                workspace.display(&path),
                crate::units::slot_time(&slot)
            );
            println!("Fill it in, then run `letterpress check` to see what is still missing.");
            Ok(ExitCode::SUCCESS)
        }
    }
}
