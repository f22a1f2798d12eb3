//! `letterpress run`: the scheduler, in the foreground, logging one line per event.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::{Notify, watch};
use tracing_subscriber::EnvFilter;

use crate::delivery::transport::Destination;
use crate::schedule::daemon::{self, Scheduler};

use super::Context;

/// Log filter, in tracing's syntax (`info`, `debug`, `letterpress=debug`).
const LOG_ENV: &str = "LETTERPRESS_LOG";

pub fn run(context: &Context, once: bool) -> anyhow::Result<ExitCode> {
    init_logging();
    let destination = Destination::from_env()?;
    let scheduler = Scheduler::start(
        context.workspace.clone(),
        context.clock.clone(),
        destination.clone(),
    )?;
    let runtime = super::runtime()?;
    let pass = runtime.block_on(async {
        let (stop_sender, stop) = watch::channel(false);
        let reload = Arc::new(Notify::new());
        if !once {
            tokio::spawn(watch_signals(stop_sender, reload.clone()));
            let sends_to = match &destination {
                Destination::Relay(url) => url.to_string(),
                Destination::Outbox => "the outbox .letterpress/outbox/ (no LETTERPRESS_SMTP_URL)".into(),
            };
            tracing::info!(pid = std::process::id(), workspace = %context.workspace.root().display(), to = %sends_to, "scheduler started");
        }
        daemon::run(scheduler, once, stop, reload).await
    })?;
    let failed = pass
        .sent
        .iter()
        .any(|(_, tally)| tally.failed + tally.deferred > 0);
    Ok(super::exit_status(!failed))
}

/// One line per event on stderr, without colours or timestamps under systemd (the journal
/// adds its own).
pub(super) fn init_logging() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && !under_journal)
        .with_writer(std::io::stderr);
    let _ = if under_journal {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// SIGTERM or Ctrl-C: finish the send in flight, then exit; a second one exits at once.
/// SIGHUP: read everything again now.
async fn watch_signals(stop: watch::Sender<bool>, reload: Arc<Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                reload.notify_one();
                continue;
            }
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if stopping {
            tracing::warn!("second signal: exiting now; recipients in flight are left uncertain");
            std::process::exit(130);
        }
        stopping = true;
        tracing::info!("signal received: finishing what is in flight, then exiting");
        let _ = stop.send(true);
    }
}
