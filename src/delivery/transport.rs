//! Where messages go: an SMTP relay through our own client (`smtp`), or the outbox folder when
//! no relay is configured. Every attempt ends in one of four outcomes the send loop branches
//! on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;

use super::smtp::{Session, SmtpError, Step, TlsSettings};
use super::smtp_url::SmtpUrl;
use crate::config::Settings;
use crate::model::newsletter::Delivery;
use crate::state::StateDir;

/// How one attempt to hand a message over ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay accepted it (2xx), with its reply.
    Delivered(String),
    /// Try again later: a 4xx, a timeout, a refused or dropped connection.
    Transient(String),
    /// Never try again: a 5xx about this recipient.
    Permanent(String),
    /// Nothing can be sent this run (bad credentials, TLS failure): stop and say why.
    Fatal(String),
}

pub enum Transport {
    Smtp(SmtpRelay),
    Outbox(Outbox),
}

/// Where mail goes: a relay (with the certificate authorities its certificate must chain
/// to), or the outbox folder when none is configured.
#[derive(Debug, Clone)]
pub enum Destination {
    Relay(SmtpUrl, TlsSettings),
    Outbox,
}

impl Destination {
    /// The relay `LETTERPRESS_SMTP_URL` names, or the outbox when it is unset.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Destination> {
        match settings.relay()? {
            Some(url) => {
                let tls =
                    TlsSettings::load(settings.smtp_ca.as_deref()).map_err(anyhow::Error::msg)?;
                Ok(Destination::Relay(url.clone(), tls))
            }
            None => Ok(Destination::Outbox),
        }
    }

    /// How the destination is named to the user; never includes a password.
    pub fn describe(&self) -> String {
        match self {
            Destination::Relay(url, _) => url.to_string(),
            Destination::Outbox => format!(
                "the outbox {}/outbox/ (no {})",
                crate::state::STATE_DIR,
                crate::config::SMTP_URL_ENV
            ),
        }
    }
}

impl Transport {
    /// A transport to `destination`; the outbox is the folder `outbox` under
    /// `.letterpress/outbox/`.
    pub fn open(
        destination: &Destination,
        state: &StateDir,
        delivery: &Delivery,
        outbox: &str,
    ) -> anyhow::Result<Transport> {
        match destination {
            Destination::Relay(url, tls) => {
                let timeout = Duration::from_secs(u64::from(delivery.timeout_seconds));
                Ok(Transport::Smtp(SmtpRelay::new(
                    url.clone(),
                    timeout,
                    tls.clone(),
                )))
            }
            Destination::Outbox => {
                let dir = state.outbox_dir(outbox);
                let display = state.display(dir.strip_prefix(state.path()).unwrap_or(&dir));
                let outbox = Outbox::new(dir, display)
                    .map_err(|error| anyhow::anyhow!("cannot create the outbox folder: {error}"))?;
                Ok(Transport::Outbox(outbox))
            }
        }
    }

    /// How the transport is named to the user; never includes a password.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(relay) => relay.url.to_string(),
            Transport::Outbox(outbox) => format!("the outbox {}/", outbox.display_dir),
        }
    }

    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        match self {
            Transport::Smtp(relay) => relay.send(envelope, message).await,
            Transport::Outbox(outbox) => outbox.write(envelope, message),
        }
    }

    pub async fn shutdown(&self) {
        if let Transport::Smtp(relay) = self {
            relay.shutdown().await;
        }
    }
}

/// An SMTP relay, over up to `delivery.concurrency` sessions kept open and reused.
pub struct SmtpRelay {
    url: SmtpUrl,
    timeout: Duration,
    tls: TlsSettings,
    hello: String,
    idle: Mutex<Vec<IdleSession>>,
}

struct IdleSession {
    session: Session,
    since: Instant,
}

/// A session idle longer than this is checked with NOOP before reuse: relays close idle
/// connections, and a message must not be the one to find out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

impl SmtpRelay {
    pub fn new(url: SmtpUrl, timeout: Duration, tls: TlsSettings) -> SmtpRelay {
        SmtpRelay {
            url,
            timeout,
            tls,
            hello: hello_name(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// One attempt, bounded by the timeout from connecting to the relay's last reply. A
    /// session that timed out or broke is dropped, never reused.
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let mut session = match self.take_session().await {
            Ok(session) => session,
            Err(attempt) => return attempt,
        };
        let from = envelope.from().map(ToString::to_string).unwrap_or_default();
        let to = envelope
            .to()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default();
        match tokio::time::timeout(self.timeout, session.send(&from, &to, message)).await {
            Ok(Ok(reply)) => {
                self.put_back(session);
                Attempt::Delivered(reply.to_string())
            }
            Ok(Err(error)) => {
                if matches!(error, SmtpError::Rejected(..)) {
                    self.put_back(session);
                }
                classify(error)
            }
            Err(_) => Attempt::Transient(self.timed_out()),
        }
    }

    fn timed_out(&self) -> String {
        format!(
            "timed out after {}s waiting for the relay",
            self.timeout.as_secs_f64()
        )
    }

    /// An idle session that still answers, or a new one.
    async fn take_session(&self) -> Result<Session, Attempt> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop();
            let Some(IdleSession { mut session, since }) = idle else {
                break;
            };
            if since.elapsed() < CHECK_AFTER_IDLE {
                return Ok(session);
            }
            if let Ok(true) = tokio::time::timeout(self.timeout, session.is_alive()).await {
                return Ok(session);
            }
        }
        match tokio::time::timeout(
            self.timeout,
            Session::open(&self.url, &self.hello, &self.tls),
        )
        .await
        {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(Attempt::Transient(self.timed_out())),
        }
    }

    fn put_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(IdleSession {
                session,
                since: Instant::now(),
            });
    }

    async fn shutdown(&self) {
        let idle = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for IdleSession { session, .. } in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.quit()).await;
        }
    }
}

/// The name this machine gives in EHLO: its hostname when it has a usable one.
fn hello_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "[127.0.0.1]".to_string())
}

/// Sorts a failure into what the send loop does next.
fn classify(error: SmtpError) -> Attempt {
    let reason = error.to_string();
    match error {
        // A refused password, a missing STARTTLS or AUTH, a certificate that does not verify:
        // the same for every message, so the run stops instead of failing the whole list.
        SmtpError::Rejected(_, Step::Auth) | SmtpError::NoStartTls | SmtpError::NoAuth => {
            Attempt::Fatal(reason)
        }
        SmtpError::Tls { ref source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
            Attempt::Fatal(reason)
        }
        SmtpError::Rejected(reply, _) if reply.is_transient() => Attempt::Transient(reason),
        SmtpError::Rejected(..) => Attempt::Permanent(reason),
        // Refused, reset or dropped connections, garbled replies: worth another try.
        SmtpError::Connect { .. }
        | SmtpError::Io(_)
        | SmtpError::Tls { .. }
        | SmtpError::Protocol(_) => Attempt::Transient(reason),
    }
}

/// Writes each message as an `.eml` file: the default when no relay is configured, so every
/// command works on a fresh machine without sending anything.
pub struct Outbox {
    dir: PathBuf,
    display_dir: String,
}

impl Outbox {
    pub fn new(dir: PathBuf, display_dir: String) -> std::io::Result<Outbox> {
        std::fs::create_dir_all(&dir)?;
        Ok(Outbox { dir, display_dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder as the user should see it.
    pub fn display_dir(&self) -> &str {
        &self.display_dir
    }

    fn write(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let recipient = envelope
            .to()
            .first()
            .map(|address| address.to_string().to_lowercase())
            .unwrap_or_default();
        let name: String = recipient
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@._-+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let partial = self.dir.join(format!(".{name}.eml.partial"));
        // Written aside and renamed, so a crash never leaves half a message in the outbox.
        match std::fs::write(&partial, message).and_then(|()| std::fs::rename(&partial, &path)) {
            Ok(()) => Attempt::Delivered(format!("written to {}/{name}.eml", self.display_dir)),
            Err(error) => Attempt::Fatal(format!("cannot write {}: {error}", path.display())),
        }
    }
}
