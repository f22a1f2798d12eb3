//! Ctrl-C, SIGTERM and SIGHUP, handled alike by every command that runs for a while.
//!
//! The first Ctrl-C or SIGTERM asks the work in flight to finish and be recorded (a send stops
//! taking recipients; `serve` stops accepting connections); a second leaves at once, with
//! status 130, leaving what was in flight uncertain, which `status` reports. SIGHUP asks to
//! read the files again.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

/// Exit status of a command stopped by a signal, as shells report one (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// What a command hears about signals.
pub struct Signals {
    /// Turns `true` at the first Ctrl-C or SIGTERM.
    pub stop: watch::Receiver<bool>,
    /// Notified on SIGHUP.
    pub reload: Arc<Notify>,
}

/// How a command tells the user what a signal did: on the terminal for `send`, in the log
/// for the services.
pub struct Announce {
    pub stopping: Box<dyn Fn() + Send>,
    pub aborting: Box<dyn Fn() + Send>,
}

impl Announce {
    /// What a web server (`serve`, `preview`) logs: that it stops, and that a second signal
    /// ends it at once.
    pub fn server() -> Announce {
        Announce {
            stopping: Box::new(|| tracing::info!("stopping")),
            aborting: Box::new(|| tracing::warn!("second signal: exiting now")),
        }
    }
}

impl Signals {
    /// Starts listening, on the current tokio runtime. Without signal handlers (which only
    /// fails in odd sandboxes) the command runs on and can still be killed.
    pub fn listen(announce: Announce) -> Signals {
        let (stop_sender, stop) = watch::channel(false);
        let reload = Arc::new(Notify::new());
        tokio::spawn(watch_signals(stop_sender, reload.clone(), announce));
        Signals { stop, reload }
    }

    /// Completes at the first Ctrl-C or SIGTERM.
    pub async fn stopped(&mut self) {
        // An error means the watcher is gone, which never happens while the process lives:
        // wait for nothing then, rather than stopping for no reason.
        if self.stop.wait_for(|stopped| *stopped).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn watch_signals(stop: watch::Sender<bool>, reload: Arc<Notify>, announce: Announce) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        // Keep the sender alive, so that `stop` never reads as closed.
        std::future::pending::<()>().await;
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
            (announce.aborting)();
            std::process::exit(i32::from(INTERRUPTED));
        }
        stopping = true;
        (announce.stopping)();
        let _ = stop.send(true);
    }
}
