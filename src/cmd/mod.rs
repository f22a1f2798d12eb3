//! One module per command, each a thin `run` over the library: parse, call, print. `print`
//! holds the printing several commands share.

pub mod backup;
pub mod bounces;
pub mod check;
pub mod dkim;
pub mod init;
pub mod manual;
pub mod new;
pub mod preview;
mod print;
pub mod render;
pub mod run;
pub mod send;
pub mod serve;
pub mod status;
pub mod subscribers;
pub mod test;

use std::process::ExitCode;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::diagnostic::{Checked, Invalid};
use crate::edition::Edition;
use crate::state::StateDir;
use crate::workspace::Workspace;

/// What every command gets: where it runs, what the environment said, and what time it is.
pub struct Context {
    pub workspace: Workspace,
    pub state: StateDir,
    pub settings: Settings,
    pub clock: Arc<dyn Clock>,
}

impl Context {
    pub fn new(workspace: Workspace, settings: Settings) -> Context {
        Context {
            state: StateDir::of(workspace.root()).with_dkim_keys(settings.dkim_keys.clone()),
            clock: settings.clock(),
            workspace,
            settings,
        }
    }

    /// The secret behind links, with a warning printed when its file is readable by others.
    pub fn secret(&self) -> anyhow::Result<crate::secret::Secret> {
        let passphrase = self.settings.secret.as_ref();
        let secret = self.state.secret(passphrase)?;
        self.warn_if_secret_exposed();
        Ok(secret)
    }

    /// Says so on stderr when the secret's file can be read by others: `check` and `status`
    /// too, not only the commands that use it.
    pub fn warn_if_secret_exposed(&self) {
        if let Some(warning) = self
            .state
            .secret_file_warning(self.settings.secret.as_ref())
        {
            eprintln!("{warning}");
        }
    }

    /// The edition an `ISSUE` argument names, its warnings printed.
    pub fn load_edition(&self, issue_argument: &str) -> Result<Edition, Invalid> {
        require(Edition::load(&self.workspace, issue_argument))
    }
}

/// The value, its warnings printed to stderr on the way, since the command goes on.
pub fn require<T>(checked: Checked<T>) -> Result<T, Invalid> {
    let valid = checked?;
    for warning in valid.warnings.iter() {
        eprintln!("{warning}");
    }
    Ok(valid.value)
}

pub fn exit_status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The async runtime for commands that talk to the network.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
