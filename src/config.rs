//! Everything the environment says, read once at start-up and passed down.
//!
//! This is the only module that reads environment variables: where mail goes, the secret
//! behind links, extra certificate authorities, the DKIM keys, the bounce mailbox, a fixed
//! clock for tests, and how to log. The
//! rest of the program takes these values as arguments, so a test can set them without
//! touching its own process's environment.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::bounce::imap_url::{BOUNCE_IMAP_URL_ENV, ImapUrl, ImapUrlError};
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::delivery::smtp_url::{SmtpUrl, SmtpUrlError};
use crate::message::dkim::{ED25519_KEY_ENV, KEY_ENV, KeyEnv};

/// Where mail goes: `smtp://host:port`, `smtp://host:587?tls=required`, `smtps://user:pass@host`.
pub const SMTP_URL_ENV: &str = "LETTERPRESS_SMTP_URL";
/// Signs unsubscribe links; at least 32 characters. Unset: `.letterpress/secret`.
pub const SECRET_ENV: &str = "LETTERPRESS_SECRET";
/// A PEM file of extra certificate authorities for the relay's certificate.
pub const SMTP_CA_ENV: &str = "LETTERPRESS_SMTP_CA";
/// For tests of the real binary: `LETTERPRESS_NOW=2021-08-23T13:00:00Z` fixes the clock.
pub const NOW_ENV: &str = "LETTERPRESS_NOW";
/// Log filter, in tracing's syntax (`info`, `debug`, `letterpress=debug`).
pub const LOG_ENV: &str = "LETTERPRESS_LOG";
/// Set by systemd when stderr goes to the journal, which adds its own timestamps.
const JOURNAL_ENV: &str = "JOURNAL_STREAM";

/// The settings that come from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The relay, or `None` for the outbox; a malformed URL is kept as its error, reported
    /// only by the commands that send (a typo in it must not stop `check`).
    smtp_url: Option<Result<SmtpUrl, SmtpUrlError>>,
    pub secret: Option<Passphrase>,
    pub smtp_ca: Option<PathBuf>,
    /// A fixed "now", for tests.
    pub now: Option<DateTime<Utc>>,
    pub log: LogSettings,
    /// The DKIM key files `LETTERPRESS_DKIM_KEY` and `LETTERPRESS_DKIM_ED25519_KEY` name, when
    /// the keys are not in `.letterpress/dkim/`.
    pub dkim_keys: KeyEnv,
    /// The bounce mailbox (`LETTERPRESS_BOUNCE_IMAP_URL`); a malformed URL is kept as its
    /// error, reported only by `bounces fetch`.
    bounce_imap_url: Option<Result<ImapUrl, ImapUrlError>>,
}

#[derive(Debug, Clone, Default)]
pub struct LogSettings {
    /// `LETTERPRESS_LOG`, or `info`.
    pub filter: Option<String>,
    /// Under systemd: no colours, no timestamps of our own.
    pub under_journal: bool,
}

/// A value that must never be printed: `Debug` shows a redaction.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{NOW_ENV}=`{0}` is not an RFC 3339 time like 2021-08-23T13:00:00Z")]
    Now(String),
}

impl Settings {
    /// Reads the process's environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings from any source of variables (a test's map, say). Empty values count
    /// as unset, as shells and environment files often leave them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let now = match get(NOW_ENV) {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|_| ConfigError::Now(text.clone()))?
                    .with_timezone(&Utc),
            ),
        };
        Ok(Settings {
            smtp_url: get(SMTP_URL_ENV).map(|text| SmtpUrl::parse(&text)),
            secret: get(SECRET_ENV).map(Passphrase),
            smtp_ca: get(SMTP_CA_ENV).map(PathBuf::from),
            now,
            log: LogSettings {
                filter: get(LOG_ENV),
                under_journal: lookup(JOURNAL_ENV).is_some(),
            },
            dkim_keys: KeyEnv {
                key: get(KEY_ENV).map(PathBuf::from),
                ed25519_key: get(ED25519_KEY_ENV).map(PathBuf::from),
            },
            bounce_imap_url: get(BOUNCE_IMAP_URL_ENV).map(|text| ImapUrl::parse(&text)),
        })
    }

    /// The bounce mailbox `LETTERPRESS_BOUNCE_IMAP_URL` names, `None` when it is unset, or why
    /// it cannot be used.
    pub fn bounce_imap(&self) -> Result<Option<&ImapUrl>, ImapUrlError> {
        match &self.bounce_imap_url {
            None => Ok(None),
            Some(Ok(url)) => Ok(Some(url)),
            Some(Err(error)) => Err(error.clone()),
        }
    }

    /// The relay named by `LETTERPRESS_SMTP_URL`, `None` when it is unset (the outbox), or
    /// why it cannot be used.
    pub fn relay(&self) -> Result<Option<&SmtpUrl>, SmtpUrlError> {
        match &self.smtp_url {
            None => Ok(None),
            Some(Ok(url)) => Ok(Some(url)),
            Some(Err(error)) => Err(error.clone()),
        }
    }

    /// The clock every command reads: the system's, unless `LETTERPRESS_NOW` fixes it.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(now) => Arc::new(FixedClock::new(now)),
            None => Arc::new(SystemClock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_the_outbox_the_system_clock_and_no_secret() {
        let settings = settings(&[]).unwrap();
        assert!(settings.relay().unwrap().is_none());
        assert!(settings.secret.is_none() && settings.now.is_none());
        assert!(!settings.log.under_journal);
    }

    #[test]
    fn a_bad_relay_url_is_kept_for_the_commands_that_send_and_empty_values_are_unset() {
        let settings =
            settings(&[(SMTP_URL_ENV, "http://example.com"), (SECRET_ENV, "  ")]).unwrap();
        assert!(settings.relay().is_err());
        assert!(settings.secret.is_none());
    }

    #[test]
    fn a_fixed_clock_must_be_rfc_3339_and_the_secret_never_prints() {
        assert!(settings(&[(NOW_ENV, "yesterday")]).is_err());
        let settings = settings(&[
            (NOW_ENV, "2021-08-23T13:00:00Z"),
            (SECRET_ENV, "hunter2 hunter2 hunter2 hunter2 hunter2"),
        ])
        .unwrap();
        assert_eq!(
            settings.clock().now().to_rfc3339(),
            "2021-08-23T13:00:00+00:00"
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn dkim_key_paths_and_the_bounce_mailbox_come_from_the_environment_never_printed() {
        let found = settings(&[
            (KEY_ENV, "/etc/letterpress/lp2026.pem"),
            (ED25519_KEY_ENV, " "),
            (
                BOUNCE_IMAP_URL_ENV,
                "imaps://bounces:hunter2@imap.example.com/INBOX",
            ),
        ])
        .unwrap();
        assert_eq!(
            found.dkim_keys,
            KeyEnv {
                key: Some(PathBuf::from("/etc/letterpress/lp2026.pem")),
                ed25519_key: None,
            }
        );
        let url = found.bounce_imap().unwrap().unwrap();
        assert_eq!(url.host, "imap.example.com");
        assert!(!format!("{found:?}").contains("hunter2"));
        let broken = settings(&[(BOUNCE_IMAP_URL_ENV, "pop3://x@y")]).unwrap();
        assert!(
            broken.bounce_imap().is_err(),
            "kept for `bounces fetch` to report"
        );
    }
}
