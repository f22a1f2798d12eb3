//! `letterpress completions` and `letterpress manpage`: what `manual` generates, printed.

use std::path::Path;
use std::process::ExitCode;

use crate::manual::{self, Shell};

pub fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    manual::completions(shell, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// DIR is taken from where the command runs, not the workspace: the pages are about the
/// program, not one newsletter.
pub fn manpage(dir: &Path) -> anyhow::Result<ExitCode> {
    for page in manual::write_man_pages(dir)? {
        println!("wrote {}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}
