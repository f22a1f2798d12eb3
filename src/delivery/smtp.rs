//! An SMTP client session: greeting, EHLO, STARTTLS, AUTH, then one transaction per message.
//!
//! Ours rather than lettre's transport, for what `bench/run` measured: lettre's sockets leave
//! Nagle's algorithm on (each message's last line waits 40 ms for a delayed ACK), it never
//! pipelines (four round trips per message where RFC 2920 allows two), it re-encodes every
//! byte of every message for dot-stuffing, and a send cancelled by a timeout goes back into its
//! pool half-read. Here sockets have `TCP_NODELAY`, MAIL, RCPT and DATA go out in one write
//! when the server offers PIPELINING, the body is copied only where a line starts with a dot,
//! and a session that fails or times out is dropped, never reused.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::smtp_url::{Security, SmtpUrl};
use crate::config::SMTP_CA_ENV;

/// A relay's reply: its code and the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The relay said no: a 4xx or 5xx, at the step named.
    #[error("{0}")]
    Rejected(Reply, Step),
    /// No answer within the time allowed, at the step named (before the message was whole).
    #[error("no answer from the relay within {}s ({step})", limit.as_secs_f64())]
    Timeout {
        step: Step,
        limit: std::time::Duration,
    },
    /// The whole message, final dot included, was written and then the relay's answer never
    /// came (a timeout, a dropped line): it may have the message (RFC 1047), so it must not
    /// be sent again without asking.
    #[error(
        "the message was handed over but the relay's answer never came ({0}); it may have been delivered"
    )]
    Unconfirmed(String),
    /// The envelope has an address with a non-ASCII local part, and the relay does not
    /// offer SMTPUTF8 (RFC 6531), without which it cannot be sent.
    #[error(
        "`{0}` has a non-ASCII local part and the relay does not offer SMTPUTF8 (RFC 6531), so it cannot be sent there"
    )]
    NeedsSmtpUtf8(String),
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("the connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("the relay does not offer STARTTLS, and the URL requires it (?tls=required)")]
    NoStartTls,
    #[error("the relay does not offer AUTH PLAIN or LOGIN, so the credentials cannot be used")]
    NoAuth,
    #[error("the relay's reply makes no sense: {0}")]
    Protocol(String),
}

/// Where in the conversation a reply came: a refusal of the session (its greeting, EHLO,
/// STARTTLS, AUTH, MAIL FROM) is about the sender and stops a run; one of RCPT is about one
/// reader; one of DATA or the final dot is about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Greeting,
    Hello,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    /// The reply to the final dot: whether the relay took the message.
    DataEnd,
    /// NOOP, RSET, QUIT: keeping the session in order.
    Housekeeping,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Greeting => "the greeting",
            Step::Hello => "EHLO",
            Step::StartTls => "STARTTLS",
            Step::Auth => "AUTH",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::DataEnd => "the end of the message",
            Step::Housekeeping => "RSET",
        })
    }
}

/// How long each step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting, and each command's reply.
    pub command: std::time::Duration,
    /// The reply to the final dot: RFC 5321 4.5.3.2.6 recommends 10 minutes, since the relay
    /// may be scanning the message, and giving up early risks sending it twice.
    pub final_reply: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            command: std::time::Duration::from_secs(60),
            final_reply: std::time::Duration::from_secs(600),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The longest reply line and the most lines we read before calling the relay broken: a
/// misbehaving server must not make us buffer without end.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 128;

pub struct Session {
    stream: BufReader<Box<dyn Stream>>,
    pipelining: bool,
    eight_bit: bool,
    smtputf8: bool,
    timeouts: Timeouts,
    /// False once the connection broke, timed out, or the relay said it is closing (421):
    /// such a session is dropped, never used for another message.
    usable: bool,
}

impl Session {
    /// Connects and gets the session ready for transactions: TLS as the URL says, then AUTH
    /// when it has credentials. Default timeouts.
    pub async fn open(
        url: &SmtpUrl,
        hello: &str,
        tls_settings: &TlsSettings,
    ) -> Result<Session, SmtpError> {
        Session::open_with(url, hello, tls_settings, Timeouts::default()).await
    }

    /// `open`, with each step bounded by `timeouts`.
    pub async fn open_with(
        url: &SmtpUrl,
        hello: &str,
        tls_settings: &TlsSettings,
        timeouts: Timeouts,
    ) -> Result<Session, SmtpError> {
        let connect = TcpStream::connect((url.host.as_str(), url.port));
        let tcp = match tokio::time::timeout(timeouts.command, connect).await {
            Ok(connected) => connected.map_err(|source| SmtpError::Connect {
                host: url.host.clone(),
                port: url.port,
                source,
            })?,
            Err(_) => {
                return Err(SmtpError::Connect {
                    host: url.host.clone(),
                    port: url.port,
                    source: std::io::ErrorKind::TimedOut.into(),
                });
            }
        };
        // Without it, each message's final line waits for the relay's delayed ACK.
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = if url.security == Security::Implicit {
            Box::new(bounded(timeouts, Step::Greeting, tls(tls_settings, &url.host, tcp)).await?)
        } else {
            Box::new(tcp)
        };
        let mut session = Session {
            stream: BufReader::new(stream),
            pipelining: false,
            eight_bit: false,
            smtputf8: false,
            timeouts,
            usable: true,
        };
        session.expect(Step::Greeting).await?;
        let mut extensions = session.hello(hello).await?;
        let offers_starttls = extensions
            .iter()
            .any(|line| line.eq_ignore_ascii_case("STARTTLS"));
        let wants_starttls = match url.security {
            Security::Required if !offers_starttls => return Err(SmtpError::NoStartTls),
            Security::Required => true,
            Security::Opportunistic => offers_starttls,
            Security::None | Security::Implicit => false,
        };
        if wants_starttls {
            session.command(b"STARTTLS\r\n", Step::StartTls).await?;
            let Session { stream, .. } = session;
            // Anything the relay sent after its reply would be an injection; there is none to
            // keep, as the buffer is empty at a reply boundary.
            let plain = stream.into_inner();
            let secured = bounded(
                timeouts,
                Step::StartTls,
                tls(tls_settings, &url.host, plain),
            )
            .await?;
            session = Session {
                stream: BufReader::new(Box::new(secured)),
                pipelining: false,
                eight_bit: false,
                smtputf8: false,
                timeouts,
                usable: true,
            };
            extensions = session.hello(hello).await?;
        }
        session.pipelining = extensions
            .iter()
            .any(|line| line.eq_ignore_ascii_case("PIPELINING"));
        session.eight_bit = extensions
            .iter()
            .any(|line| line.eq_ignore_ascii_case("8BITMIME"));
        session.smtputf8 = extensions
            .iter()
            .any(|line| line.eq_ignore_ascii_case("SMTPUTF8"));
        if let Some((user, password)) = url.credentials() {
            session.authenticate(&extensions, &user, &password).await?;
        }
        Ok(session)
    }

    /// EHLO, falling back to HELO for an old relay; returns the extensions offered.
    async fn hello(&mut self, hello: &str) -> Result<Vec<String>, SmtpError> {
        self.write(format!("EHLO {hello}\r\n").as_bytes()).await?;
        let reply = self.read_reply(Step::Hello).await?;
        if reply.is_positive() {
            return Ok(reply
                .text
                .lines()
                .skip(1)
                .map(|line| line.trim().to_string())
                .collect());
        }
        self.command(format!("HELO {hello}\r\n").as_bytes(), Step::Hello)
            .await?;
        Ok(Vec::new())
    }

    async fn authenticate(
        &mut self,
        extensions: &[String],
        user: &str,
        password: &str,
    ) -> Result<(), SmtpError> {
        let mechanisms: Vec<String> = extensions
            .iter()
            .filter_map(|line| {
                line.get(..5)
                    .filter(|prefix| prefix.eq_ignore_ascii_case("AUTH "))
                    .map(|_| line[5..].to_ascii_uppercase())
            })
            .flat_map(|list| {
                list.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        if mechanisms.iter().any(|mechanism| mechanism == "PLAIN") {
            let token = STANDARD.encode(format!("\0{user}\0{password}"));
            self.command(format!("AUTH PLAIN {token}\r\n").as_bytes(), Step::Auth)
                .await?;
        } else if mechanisms.iter().any(|mechanism| mechanism == "LOGIN") {
            self.command(b"AUTH LOGIN\r\n", Step::Auth).await?;
            self.command(
                format!("{}\r\n", STANDARD.encode(user)).as_bytes(),
                Step::Auth,
            )
            .await?;
            self.command(
                format!("{}\r\n", STANDARD.encode(password)).as_bytes(),
                Step::Auth,
            )
            .await?;
        } else {
            return Err(SmtpError::NoAuth);
        }
        Ok(())
    }

    /// One message to one recipient. The message must end with CRLF. A refusal leaves the
    /// session ready for the next message; any other error leaves it unusable. Envelope
    /// addresses must be in the form to send (domains in ASCII); one with a non-ASCII local
    /// part goes with SMTPUTF8, or not at all.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<Reply, SmtpError> {
        let international = !from.is_ascii() || !to.is_ascii();
        if international && !self.smtputf8 {
            let address = if to.is_ascii() { from } else { to };
            return Err(SmtpError::NeedsSmtpUtf8(address.to_string()));
        }
        let mut parameters = String::new();
        if self.eight_bit && !message.is_ascii() {
            parameters.push_str(" BODY=8BITMIME");
        }
        if international {
            parameters.push_str(" SMTPUTF8");
        }
        let mail = format!("MAIL FROM:<{from}>{parameters}\r\n");
        let rcpt = format!("RCPT TO:<{to}>\r\n");
        if self.pipelining {
            // RFC 2920: MAIL, RCPT and DATA in one go, then their three replies in order.
            let mut batch = Vec::with_capacity(mail.len() + rcpt.len() + 6);
            batch.extend_from_slice(mail.as_bytes());
            batch.extend_from_slice(rcpt.as_bytes());
            batch.extend_from_slice(b"DATA\r\n");
            self.write(&batch).await?;
            let mail_reply = self.read_reply(Step::Mail).await?;
            // A relay that refuses MAIL (or RCPT) may hang up without answering the rest
            // (421): then its refusal is the answer to report, not the hang-up.
            let rcpt_reply = match self.read_reply(Step::Rcpt).await {
                Ok(reply) => reply,
                Err(_) if !mail_reply.is_positive() => {
                    return Err(SmtpError::Rejected(mail_reply, Step::Mail));
                }
                Err(error) => return Err(error),
            };
            let data_reply = match self.read_reply(Step::Data).await {
                Ok(reply) => reply,
                Err(_) if !mail_reply.is_positive() => {
                    return Err(SmtpError::Rejected(mail_reply, Step::Mail));
                }
                Err(_) if !rcpt_reply.is_positive() => {
                    return Err(SmtpError::Rejected(rcpt_reply, Step::Rcpt));
                }
                Err(error) => return Err(error),
            };
            if data_reply.code == 354 && !(mail_reply.is_positive() && rcpt_reply.is_positive()) {
                // A relay that takes DATA with no valid recipient gets an empty message, which
                // goes nowhere, to end the transaction.
                self.write(b".\r\n").await?;
                self.read_reply(Step::Housekeeping).await?;
            }
            for (reply, step) in [
                (mail_reply, Step::Mail),
                (rcpt_reply, Step::Rcpt),
                (data_reply, Step::Data),
            ] {
                if !reply.is_positive() {
                    return Err(self.refused(reply, step).await);
                }
            }
        } else {
            for (command, step) in [
                (mail.as_bytes(), Step::Mail),
                (rcpt.as_bytes(), Step::Rcpt),
                (b"DATA\r\n".as_slice(), Step::Data),
            ] {
                self.write(command).await?;
                let reply = self.read_reply(step).await?;
                if !reply.is_positive() {
                    return Err(self.refused(reply, step).await);
                }
            }
        }
        self.write_data(message).await?;
        // From the final dot on, the relay may have the message: a missing answer is not a
        // refusal, and the message must not be sent again without asking.
        match self.read_reply(Step::DataEnd).await {
            Ok(reply) if reply.is_positive() => Ok(reply),
            Ok(reply) => Err(SmtpError::Rejected(reply, Step::DataEnd)),
            Err(error) => Err(SmtpError::Unconfirmed(error.to_string())),
        }
    }

    /// The refusal to report, after leaving the session ready for the next message (RSET),
    /// or marked unusable when the relay is closing it or the reset fails: the refusal is
    /// what matters, not what came after it.
    async fn refused(&mut self, reply: Reply, step: Step) -> SmtpError {
        if reply.code == 421 || self.reset().await.is_err() {
            self.usable = false;
        }
        SmtpError::Rejected(reply, step)
    }

    /// Whether the session may carry another message.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Whether the session still answers, for one that sat idle.
    pub async fn is_alive(&mut self) -> bool {
        self.command(b"NOOP\r\n", Step::Housekeeping).await.is_ok()
    }

    pub async fn quit(mut self) {
        let _ = self.write(b"QUIT\r\n").await;
        let _ = self.read_reply(Step::Housekeeping).await;
    }

    async fn reset(&mut self) -> Result<(), SmtpError> {
        self.command(b"RSET\r\n", Step::Housekeeping)
            .await
            .map(|_| ())
    }

    async fn expect(&mut self, step: Step) -> Result<Reply, SmtpError> {
        let reply = self.read_reply(step).await?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(SmtpError::Rejected(reply, step))
        }
    }

    async fn command(&mut self, command: &[u8], step: Step) -> Result<Reply, SmtpError> {
        self.write(command).await?;
        self.expect(step).await
    }

    /// Writes and flushes, within the command timeout: a relay that stops reading must not
    /// hold a connection forever.
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        let timeouts = self.timeouts;
        let stream = self.stream.get_mut();
        let written = bounded(timeouts, Step::Housekeeping, async {
            stream.write_all(bytes).await?;
            stream.flush().await?;
            Ok(())
        })
        .await;
        self.usable &= written.is_ok();
        written
    }

    /// The message with dot-stuffing (RFC 5321 4.5.2) and the final `.`, in as few writes as
    /// its lines allow: letterpress's messages never start a line with a dot, so one write
    /// and the terminator. A failure while writing the terminator leaves the message's fate
    /// unknown (some of it may have gone), so it is `Unconfirmed`.
    async fn write_data(&mut self, message: &[u8]) -> Result<(), SmtpError> {
        let timeouts = self.timeouts;
        // Until it is back, assume the worst: any failure below leaves the session unusable.
        self.usable = false;
        let stream = self.stream.get_mut();
        bounded(timeouts, Step::Data, write_stuffed(stream, message)).await?;
        let terminator: &[u8] = if message.ends_with(b"\r\n") {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        };
        bounded(timeouts, Step::DataEnd, async {
            stream.write_all(terminator).await?;
            stream.flush().await?;
            Ok(())
        })
        .await
        .map_err(|error| SmtpError::Unconfirmed(error.to_string()))?;
        self.usable = true;
        Ok(())
    }

    /// One reply, however many lines, within the step's time: the final dot's reply may take
    /// minutes (the relay scans the message), every other one a command timeout.
    async fn read_reply(&mut self, step: Step) -> Result<Reply, SmtpError> {
        let limit = if step == Step::DataEnd {
            self.timeouts.final_reply
        } else {
            self.timeouts.command
        };
        let reply = match tokio::time::timeout(limit, read_reply(&mut self.stream)).await {
            Ok(reply) => reply,
            Err(_) => Err(SmtpError::Timeout { step, limit }),
        };
        self.usable &= reply.is_ok();
        reply
    }
}

/// `work`, or a timeout error if it takes longer than a command may.
async fn bounded<T>(
    timeouts: Timeouts,
    step: Step,
    work: impl std::future::Future<Output = Result<T, SmtpError>>,
) -> Result<T, SmtpError> {
    tokio::time::timeout(timeouts.command, work)
        .await
        .unwrap_or(Err(SmtpError::Timeout {
            step,
            limit: timeouts.command,
        }))
}

/// The message with every line that starts with a dot stuffed, without the terminator.
async fn write_stuffed(stream: &mut Box<dyn Stream>, message: &[u8]) -> Result<(), SmtpError> {
    {
        let mut start = 0;
        if message.first() == Some(&b'.') {
            stream.write_all(b".").await?;
        }
        for dot in memchr::memmem::find_iter(message, b"\n.") {
            stream.write_all(&message[start..=dot]).await?;
            stream.write_all(b".").await?;
            start = dot + 1;
        }
        stream.write_all(&message[start..]).await?;
        Ok(())
    }
}

/// One reply, however many lines: `250-first`, `250-second`, `250 last`. Public for the
/// fuzz target `smtp_reply`: whatever a relay sends, a reply or an error, never a panic.
pub async fn read_reply<R: AsyncBufRead + Unpin>(stream: &mut R) -> Result<Reply, SmtpError> {
    {
        let mut text = String::new();
        let mut line = Vec::with_capacity(128);
        for count in 0.. {
            if count == MAX_LINES {
                return Err(SmtpError::Protocol(format!(
                    "more than {MAX_LINES} lines in one reply"
                )));
            }
            line.clear();
            let read = (&mut *stream)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await?;
            if read == 0 {
                return Err(SmtpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if !line.ends_with(b"\n") {
                return Err(SmtpError::Protocol(format!(
                    "a reply line longer than {MAX_LINE} bytes"
                )));
            }
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|code| code.parse::<u16>().ok())
                .filter(|code| (200..600).contains(code))
                .ok_or_else(|| SmtpError::Protocol(format!("`{line}`")))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line.get(4..).unwrap_or_default());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
        }
        unreachable!("the loop returns")
    }
}

/// The certificate authorities a relay's certificate must chain to.
#[derive(Clone)]
pub struct TlsSettings(Arc<ClientConfig>);

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSettings")
    }
}

impl TlsSettings {
    /// The Mozilla roots, plus the PEM file `LETTERPRESS_SMTP_CA` names (`ca`), for a relay
    /// with a private certificate authority.
    pub fn load(ca: Option<&std::path::Path>) -> Result<TlsSettings, String> {
        match ca {
            None => TlsSettings::with_extra_roots(&[]),
            Some(path) => {
                let pem = crate::source::read_bytes(path, crate::source::FileKind::Key).map_err(
                    |error| format!("cannot read {SMTP_CA_ENV} ({}): {error}", path.display()),
                )?;
                TlsSettings::with_extra_roots(&pem)
            }
        }
    }

    /// The rustls configuration, for another protocol that verifies its server the same
    /// way (the bounce mailbox over IMAP, `bounce::imap`).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.0.clone()
    }

    /// The Mozilla roots and the certificates in `pem` (which may be empty).
    pub fn with_extra_roots(pem: &[u8]) -> Result<TlsSettings, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("{SMTP_CA_ENV} is not a PEM file: {error}"))?;
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| format!("{SMTP_CA_ENV}: {error}"))?;
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsSettings(Arc::new(config)))
    }
}

/// The TLS handshake, verifying the relay's certificate and name.
async fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    settings: &TlsSettings,
    host: &str,
    stream: S,
) -> Result<tokio_rustls::client::TlsStream<S>, SmtpError> {
    let failed = |source: std::io::Error| SmtpError::Tls {
        host: host.to_string(),
        source,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        failed(std::io::Error::other(format!(
            "`{host}` is not a valid TLS server name"
        )))
    })?;
    tokio_rustls::TlsConnector::from(settings.0.clone())
        .connect(name, stream)
        .await
        .map_err(failed)
}
