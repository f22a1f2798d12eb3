//! `letterpress new`: the next issue's file, as a commented skeleton.

use std::process::ExitCode;

use chrono::NaiveDate;

use super::{Context, require};
use crate::scaffold::{NewIssue, new_issue};

pub fn run(context: &Context, date: Option<NaiveDate>) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let newsletter = require(workspace.load_newsletter())?;
    match new_issue(workspace, &newsletter, date, context.clock.now())? {
        NewIssue::Exists(path) => {
            eprintln!(
                "error: {} already exists; letterpress never overwrites an issue (pick another --date)",
                workspace.display(&path)
            );
            Ok(ExitCode::from(2))
        }
        NewIssue::Created { path, number, date } => {
            let slot = newsletter.schedule.instant_on(date);
            println!(
                "Started {} (issue {number}, goes out {} once its status is `ready`)",
                workspace.display(&path),
                slot.format("%A %B %-d, %Y at %H:%M %Z")
            );
            println!("Fill it in, then run `letterpress check` to see what is still missing.");
            Ok(ExitCode::SUCCESS)
        }
    }
}
