//! Where messages go: an SMTP relay through our own client (`smtp`), or the outbox folder when
//! no relay is configured. Every attempt ends in one of a few outcomes the send loop branches
//! on (`Attempt`); `classify` is where a relay's refusal is judged to be about the sender, the
//! reader or the message.
//!
//! Every message that leaves goes through `Transport::send`, so that is where it is signed
//! (DKIM, when `dkim:` is set): an issue, a proof, a sign-up confirmation, a copy in the
//! outbox. A transport for a newsletter with `dkim:` cannot be opened without its keys, so
//! nothing goes out unsigned by mistake.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::smtp::{Session, SmtpError, Step, Timeouts, TlsSettings};
use super::smtp_url::{SmtpUrl, is_host_name};
use crate::config::Settings;
use crate::ledger::Via;
use crate::message::dkim::DkimSigner;
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::newsletter::Newsletter;
use crate::state::StateDir;

/// How one attempt to hand a message over ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The relay accepted it (2xx), with its reply.
    Delivered(String),
    /// Try again later: a 4xx, a timeout before the message was whole, a refused or dropped
    /// connection.
    Transient(String),
    /// Never try again: a 5xx to RCPT, about this reader.
    Permanent(String),
    /// A 5xx to DATA or to the final dot: the relay refused the message itself. About this
    /// reader when it happens now and then; about the issue (content rejected as spam) when
    /// the same refusal comes for many readers in a row, which the send loop watches for.
    Refused(String),
    /// The message was handed over whole and the relay's answer never came: it may have it.
    Uncertain(String),
    /// This reader cannot be sent to through this relay (an address it cannot carry): left
    /// deferred with the reason, not retried this run, not failed for good.
    Unsendable(String),
    /// Nothing can be sent this run (the relay refuses the session, the password, the
    /// certificate, the sender): stop and say why, and fail nobody.
    Fatal(String),
}

/// The envelope of one message, in the form it goes on the wire (domains in ASCII), and the
/// key of its recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub to: String,
    pub to_key: AddressKey,
}

impl Envelope {
    pub fn new(from: &EmailAddress, to: &EmailAddress) -> Envelope {
        Envelope {
            from: from.envelope_form(),
            to: to.envelope_form(),
            to_key: to.key(),
        }
    }

    /// An envelope whose sender is already in its envelope form (a VERP address,
    /// `bounce::verp_address`).
    pub fn with_sender(from: String, to: &EmailAddress) -> Envelope {
        Envelope {
            from,
            to: to.envelope_form(),
            to_key: to.key(),
        }
    }
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
    /// A transport to `destination` for the newsletter's mail (its delivery settings, and
    /// its From domain to name us in EHLO when this machine has no fully qualified name);
    /// the outbox is the folder `outbox` under `.letterpress/outbox/`.
    pub fn open(
        destination: &Destination,
        state: &StateDir,
        newsletter: &Newsletter,
        outbox: &str,
    ) -> anyhow::Result<Transport> {
        let delivery = &newsletter.delivery;
        let sender_domain = newsletter.from.address.domain();
        let signer = signer_for(newsletter, state)?.map(Arc::new);
        match destination {
            Destination::Relay(url, tls) => {
                let timeouts = Timeouts {
                    command: Duration::from_secs(u64::from(delivery.timeout_seconds)),
                    final_reply: Duration::from_secs(u64::from(delivery.final_reply_seconds)),
                };
                let hello = hello_name(url, machine_name().as_deref(), sender_domain);
                Ok(Transport::Smtp(
                    SmtpRelay::new(url.clone(), timeouts, tls.clone(), hello).signed_by(signer),
                ))
            }
            Destination::Outbox => {
                let dir = state.outbox_dir(outbox);
                let display = state.display(dir.strip_prefix(state.path()).unwrap_or(&dir));
                let outbox = Outbox::new(dir, display)
                    .map_err(|error| anyhow::anyhow!("cannot create the outbox folder: {error}"))?;
                Ok(Transport::Outbox(outbox.signed_by(signer)))
            }
        }
    }

    /// The signer every message is signed with, when `dkim:` is set.
    pub fn signer(&self) -> Option<&Arc<DkimSigner>> {
        match self {
            Transport::Smtp(relay) => relay.signer.as_ref(),
            Transport::Outbox(outbox) => outbox.signer.as_ref(),
        }
    }

    /// How messages are signed, for the user: `DKIM as example.com: rsa-sha256 (lp2026),
    /// ed25519-sha256 (lp2026e)`; `None` when they are not.
    pub fn signing(&self) -> Option<String> {
        self.signer().map(|signer| describe_signer(signer))
    }

    /// Where a message accepted by this transport went, as the ledger records it.
    pub fn via(&self) -> Via {
        match self {
            Transport::Smtp(_) => Via::Relay,
            Transport::Outbox(_) => Via::Outbox,
        }
    }

    /// How the transport is named to the user; never includes a password.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(relay) => relay.url.to_string(),
            Transport::Outbox(outbox) => format!("the outbox {}/", outbox.display_dir),
        }
    }

    /// Hands one message over, signed first when `dkim:` is set.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let signed = match self.signer() {
            None => None,
            Some(signer) => match sign(signer.clone(), message.to_vec()).await {
                Ok(signed) => Some(signed),
                // Never sent unsigned: a key that signed once signs always, so this is a
                // fault worth stopping the run for.
                Err(reason) => return Attempt::Fatal(reason),
            },
        };
        let message = signed.as_deref().unwrap_or(message);
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

/// The DKIM signer for the newsletter's mail: `None` without `dkim:`, an error when `dkim:`
/// is set and a key cannot be used (missing, unreadable, of the wrong algorithm). Keys are
/// read from `LETTERPRESS_DKIM_KEY`/`LETTERPRESS_DKIM_ED25519_KEY`, else from
/// `.letterpress/dkim/<selector>.pem`.
pub fn signer_for(newsletter: &Newsletter, state: &StateDir) -> anyhow::Result<Option<DkimSigner>> {
    let Some(config) = &newsletter.dkim else {
        return Ok(None);
    };
    let signer = DkimSigner::load(
        config,
        &newsletter.from.address,
        state.dkim_keys(),
        state.path(),
    )
    .map_err(|error| {
        anyhow::Error::new(error)
            .context("newsletter.yaml sets `dkim:`, and nothing is sent unsigned")
    })?;
    Ok(Some(signer))
}

/// `DKIM as example.com: rsa-sha256 (lp2026), ed25519-sha256 (lp2026e)`.
pub fn describe_signer(signer: &DkimSigner) -> String {
    let keys: Vec<String> = signer
        .algorithms()
        .zip(signer.dns_records())
        .map(|(algorithm, record)| {
            let selector = record.name.split("._domainkey.").next().unwrap_or_default();
            format!("{algorithm} ({selector})")
        })
        .collect();
    format!("DKIM as {}: {}", signer.domain(), keys.join(", "))
}

/// The message with its `DKIM-Signature` fields in front. Signing is CPU work (about 0.9 ms
/// with RSA-2048, 0.1 ms with Ed25519), so it runs on tokio's blocking threads: the
/// connections' tasks keep reading and writing meanwhile, and messages for several
/// connections are signed on every core at once.
async fn sign(signer: Arc<DkimSigner>, mut message: Vec<u8>) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || {
        signer
            .prepend_signatures(&mut message)
            .map(|()| message)
            .map_err(|error| format!("cannot DKIM-sign the message: {error}"))
    })
    .await
    .map_err(|error| format!("the DKIM signing task failed: {error}"))?
}

/// An SMTP relay, over up to `delivery.concurrency` sessions kept open and reused.
pub struct SmtpRelay {
    url: SmtpUrl,
    timeouts: Timeouts,
    tls: TlsSettings,
    hello: String,
    idle: Mutex<Vec<IdleSession>>,
    signer: Option<Arc<DkimSigner>>,
}

struct IdleSession {
    session: Session,
    since: Instant,
}

/// A session idle longer than this is checked with NOOP before reuse: relays close idle
/// connections, and a message must not be the one to find out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

impl SmtpRelay {
    pub fn new(url: SmtpUrl, timeouts: Timeouts, tls: TlsSettings, hello: String) -> SmtpRelay {
        SmtpRelay {
            url,
            timeouts,
            tls,
            hello,
            idle: Mutex::new(Vec::new()),
            signer: None,
        }
    }

    /// The relay, signing every message with `signer` (when there is one).
    pub fn signed_by(mut self, signer: Option<Arc<DkimSigner>>) -> SmtpRelay {
        self.signer = signer;
        self
    }

    /// One attempt, each step bounded by its timeout. A session that timed out or broke is
    /// dropped, never reused.
    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let mut session = match self.take_session().await {
            Ok(session) => session,
            Err(attempt) => return attempt,
        };
        match session.send(&envelope.from, &envelope.to, message).await {
            Ok(reply) => {
                self.put_back(session);
                Attempt::Delivered(reply.to_string())
            }
            Err(error) => {
                if session.is_usable() {
                    self.put_back(session);
                }
                classify(error)
            }
        }
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
            if session.is_alive().await {
                return Ok(session);
            }
        }
        Session::open_with(&self.url, &self.hello, &self.tls, self.timeouts)
            .await
            .map_err(classify)
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

/// The name we greet a relay with (EHLO): `?ehlo=` in the URL, else this machine's fully
/// qualified name, else the From address's domain. Relays that check
/// (`reject_non_fqdn_helo_hostname`) refuse a bare host name like `vm`.
pub fn hello_name(url: &SmtpUrl, machine: Option<&str>, sender_domain: &str) -> String {
    if let Some(name) = &url.ehlo {
        return name.clone();
    }
    let fully_qualified =
        |name: &&str| is_host_name(name) && name.contains('.') && !name.ends_with(".localdomain");
    if let Some(name) = machine.filter(fully_qualified) {
        return name.to_string();
    }
    let domain = idna::domain_to_ascii(sender_domain).unwrap_or_default();
    if is_host_name(&domain) {
        domain
    } else {
        "[127.0.0.1]".to_string()
    }
}

/// This machine's fully qualified name, as `hostname -f` finds it: the kernel's host name,
/// and if that has no dot, the canonical name the resolver gives it.
fn machine_name() -> Option<String> {
    // gethostname, not /proc/sys/kernel/hostname: a hardened unit (ProcSubset=pid) hides /proc/sys.
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    if unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&buffer[..end]).ok()?.trim();
    if name.contains('.') {
        return Some(name.to_string());
    }
    canonical_name(name)
}

fn canonical_name(host: &str) -> Option<String> {
    let host = std::ffi::CString::new(host).ok()?;
    // SAFETY: getaddrinfo gets a NUL-terminated name and valid hints, and its result is freed
    // with freeaddrinfo exactly once; ai_canonname is a NUL-terminated string while it lives.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_flags = libc::AI_CANONNAME;
        hints.ai_family = libc::AF_UNSPEC;
        let mut result: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut result) != 0 {
            return None;
        }
        let name = if result.is_null() || (*result).ai_canonname.is_null() {
            None
        } else {
            std::ffi::CStr::from_ptr((*result).ai_canonname)
                .to_str()
                .ok()
                .map(str::to_string)
        };
        libc::freeaddrinfo(result);
        name
    }
}

/// Sorts a failure into what the send loop does next.
pub fn classify(error: SmtpError) -> Attempt {
    let reason = error.to_string();
    match error {
        SmtpError::Rejected(reply, step) => {
            if reply.is_transient() {
                return Attempt::Transient(reason);
            }
            match step {
                // 530: authentication required, whatever the command it answered.
                _ if reply.code == 530 => Attempt::Fatal(reason),
                // The relay refuses the session or the sender: the same for every message,
                // so the run stops instead of failing the whole list.
                Step::Greeting | Step::Hello | Step::StartTls | Step::Auth | Step::Mail => {
                    Attempt::Fatal(reason)
                }
                Step::Rcpt if refuses_the_session(&reply) => Attempt::Fatal(reason),
                Step::Rcpt => Attempt::Permanent(reason),
                Step::Data | Step::DataEnd => Attempt::Refused(reason),
                Step::Housekeeping => Attempt::Transient(reason),
            }
        }
        // A missing STARTTLS or AUTH, a certificate that does not verify: stop.
        SmtpError::NoStartTls | SmtpError::NoAuth => Attempt::Fatal(reason),
        SmtpError::Tls { ref source, .. } if source.kind() == std::io::ErrorKind::InvalidData => {
            Attempt::Fatal(reason)
        }
        SmtpError::Unconfirmed(_) => Attempt::Uncertain(reason),
        SmtpError::NeedsSmtpUtf8(_) => Attempt::Unsendable(reason),
        // Refused, reset or dropped connections, timeouts before the message was whole,
        // garbled replies: worth another try.
        SmtpError::Connect { .. }
        | SmtpError::Io(_)
        | SmtpError::Tls { .. }
        | SmtpError::Timeout { .. }
        | SmtpError::Protocol(_) => Attempt::Transient(reason),
    }
}

/// Writes each message as an `.eml` file: the default when no relay is configured, so every
/// command works on a fresh machine without sending anything.
pub struct Outbox {
    dir: PathBuf,
    display_dir: String,
    signer: Option<Arc<DkimSigner>>,
}

impl Outbox {
    pub fn new(dir: PathBuf, display_dir: String) -> std::io::Result<Outbox> {
        crate::state::create_private_dir(&dir)?;
        Ok(Outbox {
            dir,
            display_dir,
            signer: None,
        })
    }

    /// The outbox, signing every message with `signer` (when there is one), as a relay
    /// would get it.
    pub fn signed_by(mut self, signer: Option<Arc<DkimSigner>>) -> Outbox {
        self.signer = signer;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder as the user should see it.
    pub fn display_dir(&self) -> &str {
        &self.display_dir
    }

    fn write(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let name = outbox_file_name(&envelope.to_key);
        let path = self.dir.join(&name);
        // Written aside and renamed, so a crash never leaves half a message in the outbox; the
        // aside file is this process's own, so two tests to one address at once both land.
        let partial = self
            .dir
            .join(format!(".{name}.{}.partial", std::process::id()));
        match write_private(&partial, message).and_then(|()| std::fs::rename(&partial, &path)) {
            Ok(()) => Attempt::Delivered(format!("written to {}/{name}", self.display_dir)),
            Err(error) => Attempt::Fatal(format!("cannot write {}: {error}", path.display())),
        }
    }
}

/// A refusal that answers RCPT but is about us, not the reader: Postfix, by default, waits
/// until RCPT to apply its client, HELO and sender restrictions (`smtpd_delay_reject`), so
/// "504 5.5.2 <vm>: Helo command rejected" arrives there, and would fail every reader.
fn refuses_the_session(reply: &super::smtp::Reply) -> bool {
    const ABOUT_US: [&str; 5] = [
        "helo command rejected",
        "sender address rejected",
        "client host rejected",
        "relay access denied",
        "authentication required",
    ];
    let text = reply.text.to_lowercase();
    reply.code == 504
        || text.starts_with("5.5.2")
        || ABOUT_US.iter().any(|phrase| text.contains(phrase))
}

/// The file a reader's message goes to: their address, with every byte that is not a
/// letter, digit or one of `@._-+` percent-encoded (`%` included), so two addresses never
/// share a file (`josé@` and `josè@` once both became `jos_@`).
pub fn outbox_file_name(key: &AddressKey) -> String {
    let mut name = String::with_capacity(key.as_str().len() + 4);
    for byte in key.as_str().bytes() {
        if byte.is_ascii_alphanumeric() || b"@._-+".contains(&byte) {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    // A name starting with a dot would be hidden, like the partial files.
    if name.starts_with('.') {
        name.replace_range(..1, "%2E");
    }
    name.push_str(".eml");
    name
}

/// Writes a file only its owner can read: messages hold addresses and unsubscribe tokens.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_names_are_one_per_reader_and_readable() {
        let name = |address: &str| outbox_file_name(&AddressKey::of(address).unwrap());
        assert_eq!(name("ada@example.com"), "ada@example.com.eml");
        let names: std::collections::HashSet<String> = [
            "josé@example.com",
            "josè@example.com",
            "ü@example.com",
            "é@example.com",
            "_@example.com",
            "%C3%A9@example.com",
        ]
        .into_iter()
        .map(name)
        .collect();
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.contains("jos%C3%A9@example.com.eml"));
    }

    #[test]
    fn ehlo_is_the_urls_name_then_the_machines_fqdn_then_the_senders_domain() {
        let url = SmtpUrl::parse("smtp://relay.example.com").unwrap();
        assert_eq!(hello_name(&url, Some("vm"), "example.com"), "example.com");
        assert_eq!(
            hello_name(&url, Some("mail.example.org"), "example.com"),
            "mail.example.org"
        );
        assert_eq!(
            hello_name(&url, Some("vm.localdomain"), "bücher.example"),
            "xn--bcher-kva.example"
        );
        let url = SmtpUrl::parse("smtp://relay.example.com?ehlo=out.example.net").unwrap();
        assert_eq!(
            hello_name(&url, Some("mail.example.org"), "example.com"),
            "out.example.net"
        );
    }

    #[test]
    fn refusals_of_the_session_stop_the_run_and_of_a_reader_fail_only_them() {
        use super::super::smtp::Reply;
        let rejected = |code, step| {
            classify(SmtpError::Rejected(
                Reply {
                    code,
                    text: "no".into(),
                },
                step,
            ))
        };
        for step in [
            Step::Greeting,
            Step::Hello,
            Step::StartTls,
            Step::Auth,
            Step::Mail,
        ] {
            assert!(matches!(rejected(554, step), Attempt::Fatal(_)), "{step:?}");
            assert!(
                matches!(rejected(421, step), Attempt::Transient(_)),
                "{step:?}"
            );
        }
        assert!(matches!(rejected(550, Step::Rcpt), Attempt::Permanent(_)));
        let postfix_helo = classify(SmtpError::Rejected(
            Reply {
                code: 504,
                text: "5.5.2 <vm>: Helo command rejected: need fully-qualified hostname".into(),
            },
            Step::Rcpt,
        ));
        assert!(matches!(postfix_helo, Attempt::Fatal(_)));
        let relay_denied = classify(SmtpError::Rejected(
            Reply {
                code: 554,
                text: "5.7.1 <a@example.org>: Relay access denied".into(),
            },
            Step::Rcpt,
        ));
        assert!(matches!(relay_denied, Attempt::Fatal(_)));
        assert!(matches!(rejected(530, Step::Rcpt), Attempt::Fatal(_)));
        assert!(matches!(rejected(554, Step::Data), Attempt::Refused(_)));
        assert!(matches!(rejected(554, Step::DataEnd), Attempt::Refused(_)));
        assert!(matches!(
            classify(SmtpError::Unconfirmed("timed out".into())),
            Attempt::Uncertain(_)
        ));
    }
}
