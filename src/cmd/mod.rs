//! One module per command, each a thin `run` over the library.

pub mod check;
pub mod new;
pub mod render;
pub mod run;
pub mod send;
pub mod serve;
pub mod status;
pub mod test;

use std::process::ExitCode;

use crate::clock::Clock;
use crate::diagnostic::Diagnostics;
use crate::workspace::{Loaded, Workspace};

/// What every command gets: where it runs and what time it is.
pub struct Context {
    pub workspace: Workspace,
    pub clock: std::sync::Arc<dyn Clock>,
}

/// Input that failed validation: `main` prints the diagnostics and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{summary}")]
pub struct InvalidInput {
    pub diagnostics: Diagnostics,
    pub summary: String,
}

/// The loaded value, or every problem found as an `InvalidInput`. Warnings are printed to
/// stderr on the way, since the command goes on.
pub fn require<T>(loaded: Loaded<T>, what: &str) -> Result<T, InvalidInput> {
    match loaded.value {
        Some(value) => {
            for warning in loaded.diagnostics.iter() {
                eprintln!("{warning}");
            }
            Ok(value)
        }
        None => Err(invalid(what, loaded.diagnostics)),
    }
}

fn invalid(what: &str, diagnostics: Diagnostics) -> InvalidInput {
    let count = diagnostics.error_count();
    InvalidInput {
        summary: format!(
            "{what}: {count} error{}; `letterpress check` shows every problem",
            if count == 1 { "" } else { "s" }
        ),
        diagnostics,
    }
}

pub fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A byte count as people read it, in binary units named as such.
pub fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// The edition for a command: warnings printed, errors as `InvalidInput`.
pub fn load_edition(
    workspace: &Workspace,
    issue_argument: &str,
) -> Result<crate::edition::Edition, InvalidInput> {
    match crate::edition::Edition::load(workspace, issue_argument) {
        Ok((edition, warnings)) => {
            for warning in warnings.iter() {
                eprintln!("{warning}");
            }
            Ok(edition)
        }
        Err(error) => Err(invalid(&error.what, error.diagnostics)),
    }
}

/// The async runtime for commands that talk to the network.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A number with thousands separators, as people read counts.
pub fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
