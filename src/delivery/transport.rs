//! Where messages go: an SMTP relay through lettre, or the outbox folder when no relay is
//! configured. Every attempt ends in one of four outcomes the send loop branches on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;

use super::smtp_url::{SMTP_URL_ENV, Security, SmtpUrl};

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

impl Transport {
    /// The relay named by `LETTERPRESS_SMTP_URL`, or else the outbox folder `outbox` under
    /// the workspace's `.letterpress/outbox/`.
    pub fn from_env(
        workspace: &crate::workspace::Workspace,
        delivery: &crate::model::newsletter::Delivery,
        outbox: &str,
    ) -> anyhow::Result<Transport> {
        match std::env::var(SMTP_URL_ENV) {
            Ok(text) if !text.trim().is_empty() => {
                let url = SmtpUrl::parse(&text)?;
                let timeout = Duration::from_secs(u64::from(delivery.timeout_seconds));
                Ok(Transport::Smtp(
                    SmtpRelay::new(url, timeout).map_err(anyhow::Error::msg)?,
                ))
            }
            _ => {
                let dir = workspace.state_dir().join("outbox").join(outbox);
                let display = workspace.display(&dir);
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

/// An SMTP relay. lettre speaks the protocol (EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA); the
/// connections are ours, for two reasons measured against lettre's own pooled transport:
/// its sockets leave Nagle's algorithm on, so the five bytes ending every message wait for
/// the relay's delayed ACK (40 ms on Linux: 90 messages a second over four connections to a
/// loopback sink), and a send cancelled by a timeout goes back into its pool with replies
/// still in flight, to be misread by the next message. Here each socket has `TCP_NODELAY`,
/// every step has a deadline, and a connection that timed out or broke is dropped.
pub struct SmtpRelay {
    url: SmtpUrl,
    timeout: Duration,
    hello: ClientId,
    tls: Option<TlsParameters>,
    idle: Mutex<Vec<IdleConnection>>,
}

struct IdleConnection {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// A connection idle longer than this is checked with NOOP before reuse: relays close idle
/// connections, and a message must not be the one to find out.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);

impl SmtpRelay {
    pub fn new(url: SmtpUrl, timeout: Duration) -> Result<SmtpRelay, String> {
        // STARTTLS goes through lettre; implicit TLS is set up in `connect`.
        let tls = match url.security {
            Security::None | Security::Implicit => None,
            Security::Required | Security::Opportunistic => Some(
                TlsParameters::new(url.host.clone())
                    .map_err(|error| format!("cannot set up TLS for {}: {error}", url.host))?,
            ),
        };
        Ok(SmtpRelay {
            url,
            timeout,
            hello: ClientId::default(),
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    async fn send(&self, envelope: &Envelope, message: &[u8]) -> Attempt {
        let mut connection = match self.take_connection().await {
            Ok(connection) => connection,
            Err(attempt) => return attempt,
        };
        match tokio::time::timeout(self.timeout, connection.send(envelope, message)).await {
            Ok(Ok(response)) => {
                self.put_back(connection);
                Attempt::Delivered(format!(
                    "{} {}",
                    u16::from(response.code()),
                    response.message().collect::<Vec<_>>().join(" ")
                ))
            }
            Ok(Err(error)) => {
                // lettre ends the session after a negative reply; a healthy one is reused.
                if !connection.has_broken() {
                    self.put_back(connection);
                }
                classify(&error)
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

    /// An idle connection that still answers, or a new one.
    async fn take_connection(&self) -> Result<AsyncSmtpConnection, Attempt> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop();
            let Some(IdleConnection {
                mut connection,
                since,
            }) = idle
            else {
                break;
            };
            if since.elapsed() < CHECK_AFTER_IDLE {
                return Ok(connection);
            }
            if let Ok(true) = tokio::time::timeout(self.timeout, connection.test_connected()).await
            {
                return Ok(connection);
            }
        }
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(result) => result,
            Err(_) => Err(Attempt::Transient(self.timed_out())),
        }
    }

    fn put_back(&self, connection: AsyncSmtpConnection) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(IdleConnection {
                connection,
                since: Instant::now(),
            });
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Attempt> {
        let cannot_connect = |error: std::io::Error| {
            Attempt::Transient(format!(
                "cannot connect to {}:{}: {error}",
                self.url.host, self.url.port
            ))
        };
        let tcp = TcpStream::connect((self.url.host.as_str(), self.url.port))
            .await
            .map_err(cannot_connect)?;
        // Without it every message waits for a delayed ACK before its final line goes out.
        tcp.set_nodelay(true).map_err(cannot_connect)?;
        let stream: Box<dyn AsyncTokioStream> = if self.url.security == Security::Implicit {
            // TLS from the first byte; lettre then reads the greeting through it.
            Box::new(implicit_tls(&self.url.host, tcp).await.map_err(|error| {
                let reply = format!("TLS with {} failed: {error}", self.url.host);
                // A certificate that does not verify will not verify on the next try either.
                if error.kind() == std::io::ErrorKind::InvalidData {
                    Attempt::Fatal(reply)
                } else {
                    Attempt::Transient(reply)
                }
            })?)
        } else {
            Box::new(tcp)
        };
        self.open_session(stream)
            .await
            .map_err(|error| classify(&error))
    }

    /// Greeting, EHLO, STARTTLS and AUTH.
    async fn open_session(
        &self,
        stream: Box<dyn AsyncTokioStream>,
    ) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        match (&self.url.security, &self.tls) {
            (Security::Required, Some(tls)) => {
                connection.starttls(tls.clone(), &self.hello).await?
            }
            (Security::Opportunistic, Some(tls)) if connection.can_starttls() => {
                connection.starttls(tls.clone(), &self.hello).await?
            }
            _ => {}
        }
        if let Some((user, password)) = self.url.credentials() {
            connection
                .auth(
                    &[Mechanism::Plain, Mechanism::Login],
                    &Credentials::new(user, password),
                )
                .await?;
        }
        Ok(connection)
    }

    async fn shutdown(&self) {
        let idle = std::mem::take(
            &mut *self
                .idle
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for IdleConnection { mut connection, .. } in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), connection.quit()).await;
        }
    }
}

/// An implicit-TLS stream (`smtps://`), handed to lettre as a stream it speaks SMTP over.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl tokio::io::AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
        buffer: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(context, buffer)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(context)
    }
}

/// The TLS handshake for `smtps://`, verifying the relay against the Mozilla roots.
async fn implicit_tls(host: &str, tcp: TcpStream) -> std::io::Result<ImplicitTls> {
    use std::sync::{Arc, OnceLock};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| std::io::Error::other(format!("`{host}` is not a valid TLS server name")))?;
    let stream = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await?;
    Ok(ImplicitTls(stream))
}

/// Sorts a lettre error into what the send loop does next.
fn classify(error: &lettre::transport::smtp::Error) -> Attempt {
    let reply = describe_error(error);
    if error.is_client() || error.is_tls() {
        return Attempt::Fatal(reply);
    }
    match error.status().map(u16::from) {
        // Authentication is refused for every message alike: a wrong password must not mark
        // the whole list as failed.
        Some(530 | 534 | 535 | 538) => Attempt::Fatal(reply),
        _ if error.is_permanent() => Attempt::Permanent(reply),
        // 4xx, timeouts, refused, reset and dropped connections: all worth another try.
        _ => Attempt::Transient(reply),
    }
}

/// `550 5.1.1 User unknown` for a reply, lettre's description otherwise.
fn describe_error(error: &lettre::transport::smtp::Error) -> String {
    let text = error.to_string();
    match (error.status(), text.split_once("): ")) {
        (Some(code), Some((_, message))) => format!("{} {}", u16::from(code), message.trim()),
        _ => text,
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
