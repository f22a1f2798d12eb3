//! `letterpress backup FILE`: a consistent copy of the ledger, taken while the services run.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use crate::diagnostic::Invalid;
use crate::units::human_size;

pub fn run(context: &Context, file: &Path) -> anyhow::Result<ExitCode> {
    let Some(ledger) = context.state.open_existing_ledger()? else {
        anyhow::bail!(
            "there is no ledger to back up yet (nothing was sent, suppressed or signed up)"
        );
    };
    let target = context.workspace.path(file);
    if let Some(problem) = context.state.backup_target_problem(&target) {
        return Err(
            Invalid::usage(format!("cannot back up to `{}`: {problem}", file.display())).into(),
        );
    }
    // Written beside the target and renamed over it: a backup cut short never replaces a
    // good one.
    let partial = target.with_file_name(format!(
        ".{}.partial-{}",
        target
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("backup"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&partial);
    crate::delivery::transport::write_private(&partial, b"")
        .with_context(|| format!("cannot write `{}`", partial.display()))?;
    let copied = ledger
        .backup_to(&partial)
        .with_context(|| format!("cannot back up the ledger to `{}`", file.display()));
    if let Err(error) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("cannot write `{}`", file.display()))?;
    let size = std::fs::metadata(&target)
        .map(|meta| meta.len())
        .unwrap_or(0);
    println!(
        "Backed up the ledger to {} ({}). To restore it: stop `run` and `serve`, then copy it to {}.",
        file.display(),
        human_size(size as usize),
        context.state.display(crate::ledger::LEDGER_FILE)
    );
    Ok(ExitCode::SUCCESS)
}
