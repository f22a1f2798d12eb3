//! One module per command, each a thin `run` over the library.

pub mod check;
pub mod new;
pub mod render;

use std::process::ExitCode;

use crate::clock::Clock;
use crate::diagnostic::Diagnostics;
use crate::workspace::{Loaded, Workspace};

/// What every command gets: where it runs and what time it is.
pub struct Context {
    pub workspace: Workspace,
    pub clock: Box<dyn Clock>,
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
        None => Err(InvalidInput {
            summary: format!(
                "{what}: {} error{}; `letterpress check` shows every problem",
                loaded.diagnostics.error_count(),
                if loaded.diagnostics.error_count() == 1 {
                    ""
                } else {
                    "s"
                }
            ),
            diagnostics: loaded.diagnostics,
        }),
    }
}

pub fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A byte count as people read it.
pub fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    }
}
