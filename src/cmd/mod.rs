//! One module per command, each a thin `run` over the library.

pub mod check;
pub mod new;
pub mod render;
pub mod send;
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

/// Everything a command needs to build an issue's messages, loaded and validated.
pub struct Edition {
    pub newsletter: crate::model::newsletter::Newsletter,
    pub theme: crate::theme::Theme,
    pub issue: crate::model::issue::Issue,
    pub subscribers: Vec<crate::model::subscriber::Subscriber>,
    /// The issue file as the user should see it.
    pub issue_file: String,
}

impl Edition {
    pub fn load(workspace: &Workspace, issue_argument: &str) -> Result<Edition, InvalidInput> {
        let newsletter = require(
            workspace.load_newsletter(),
            crate::workspace::NEWSLETTER_FILE,
        )?;
        let theme = require(workspace.load_theme(&newsletter), "the theme")?;
        let path = workspace.issue_path(issue_argument);
        let issue_file = workspace.display(&path);
        let issue = require(workspace.load_issue(&path), &issue_file)?;
        let subscribers_file = workspace.display(&workspace.subscribers_path(&newsletter));
        let subscribers = require(workspace.load_subscribers(&newsletter), &subscribers_file)?;
        Ok(Edition {
            newsletter,
            theme,
            issue,
            subscribers,
            issue_file,
        })
    }

    pub fn render(
        &self,
        kind: crate::message::Kind,
    ) -> anyhow::Result<crate::message::MessageTemplate> {
        let rendered = crate::render::render(&self.newsletter, &self.issue, &self.theme)?;
        Ok(crate::message::MessageTemplate::new(
            &self.newsletter,
            &self.issue,
            &rendered,
            &self.theme.texts,
            kind,
        ))
    }
}

pub fn load_secret(workspace: &Workspace) -> anyhow::Result<crate::secret::Secret> {
    Ok(crate::secret::Secret::load(
        std::env::var(crate::secret::SECRET_ENV).ok().as_deref(),
        &workspace.state_dir(),
    )?)
}

pub fn open_ledger(workspace: &Workspace) -> anyhow::Result<crate::ledger::Ledger> {
    use anyhow::Context as _;
    let dir = workspace.state_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let path = dir.join(crate::ledger::LEDGER_FILE);
    crate::ledger::Ledger::open(&path)
        .with_context(|| format!("cannot open the ledger `{}`", workspace.display(&path)))
}

/// The relay named by `LETTERPRESS_SMTP_URL`, or else the outbox folder `outbox_dir` (relative
/// to the state folder).
pub fn transport(
    workspace: &Workspace,
    delivery: &crate::model::newsletter::Delivery,
    outbox_dir: &str,
) -> anyhow::Result<crate::delivery::transport::Transport> {
    use crate::delivery::smtp_url::{SMTP_URL_ENV, SmtpUrl};
    use crate::delivery::transport::{Outbox, SmtpRelay, Transport};
    match std::env::var(SMTP_URL_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let url = SmtpUrl::parse(&text)?;
            let timeout = std::time::Duration::from_secs(u64::from(delivery.timeout_seconds));
            Ok(Transport::Smtp(
                SmtpRelay::new(url, timeout).map_err(anyhow::Error::msg)?,
            ))
        }
        _ => {
            let dir = workspace.state_dir().join("outbox").join(outbox_dir);
            let display = workspace.display(&dir);
            let outbox = Outbox::new(dir, display)
                .map_err(|error| anyhow::anyhow!("cannot create the outbox folder: {error}"))?;
            Ok(Transport::Outbox(outbox))
        }
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
