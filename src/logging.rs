//! The log of the services (`run`, `serve`): one line per event on stderr, without colours or
//! timestamps under systemd, whose journal adds its own.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// Installs the logger; a second call does nothing.
pub fn init(settings: &LogSettings) {
    let filter = settings
        .filter
        .as_deref()
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && !settings.under_journal)
        .with_writer(std::io::stderr);
    let _ = if settings.under_journal {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
