//! `letterpress run`: the scheduler, in the foreground, logging one line per event.

use std::process::ExitCode;

use super::Context;
use crate::delivery::transport::Destination;
use crate::diagnostic::Invalid;
use crate::schedule::daemon::{self, Scheduler};
use crate::signals::{Announce, Signals};

pub fn run(context: &Context, once: bool, outbox: bool) -> anyhow::Result<ExitCode> {
    crate::logging::init(&context.settings.log);
    let destination = Destination::from_settings(&context.settings)?;
    if matches!(destination, Destination::Outbox) && !outbox {
        // A scheduler started without its environment (cron, a new shell) would otherwise
        // write the issue to the outbox, where it reaches no one, and call it sent.
        return Err(Invalid::usage(format!(
            "no relay: set {} (for example smtps://user:password@smtp.example.com:465) so the scheduler can send, or pass --outbox to try it with the messages written to .letterpress/outbox/",
            crate::config::SMTP_URL_ENV
        ))
        .into());
    }
    if let Some(warning) = context
        .state
        .secret_file_warning(context.settings.secret.as_ref())
    {
        eprintln!("{warning}");
    }
    let pass = super::runtime()?.block_on(async {
        // Listening first: a SIGHUP from `systemctl reload` while the scheduler starts must
        // not end it (the default action of SIGHUP is to terminate).
        let signals = Signals::listen(Announce {
            stopping: Box::new(|| {
                tracing::info!("signal received: finishing what is in flight, then exiting")
            }),
            aborting: Box::new(|| {
                tracing::warn!("second signal: exiting now; recipients in flight are left uncertain")
            }),
        });
        let scheduler = Scheduler::start(
            context.workspace.clone(),
            context.state.clone(),
            context.clock.clone(),
            destination.clone(),
            context.settings.secret.clone(),
        )?;
        if !once {
            tracing::info!(pid = std::process::id(), workspace = %context.workspace.root().display(), to = %destination.describe(), "scheduler started");
        }
        daemon::run(scheduler, once, signals.stop, signals.reload).await
    })?;
    if once && pass.sent.is_empty() && !pass.stopped {
        println!(
            "{}",
            crate::schedule::nothing_due(
                &context.workspace,
                context.state.open_existing_ledger()?.as_ref(),
                context.clock.now()
            )?
        );
    }
    let failed = pass
        .sent
        .iter()
        .any(|(_, tally)| tally.failed + tally.deferred > 0);
    Ok(super::exit_status(!failed))
}
