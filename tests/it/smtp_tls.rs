//! TLS to the relay: implicit TLS (`smtps://`), STARTTLS (`?tls=required`), and what happens
//! when the relay cannot offer it or its certificate does not verify. The relay here is a small
//! TLS SMTP server with a certificate from a throwaway certificate authority.

use std::sync::{Arc, Mutex};

use letterpress::delivery::smtp::{Session, SmtpError, TlsSettings};
use letterpress::delivery::smtp_url::SmtpUrl;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority and a `localhost` certificate it signed.
struct Pki {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Implicit,
    StartTls,
    PlainOnly,
}

/// What the relay saw: whether AUTH and each message came over TLS.
#[derive(Default)]
struct Seen {
    auth_over_tls: Vec<bool>,
    messages_over_tls: Vec<bool>,
}

async fn relay(mode: Mode, acceptor: TlsAcceptor) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                if mode == Mode::Implicit {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    converse(BufReader::new(Box::new(tls)), true, mode, None, seen).await;
                } else {
                    converse(
                        BufReader::new(Box::new(tcp)),
                        false,
                        mode,
                        Some(acceptor),
                        seen,
                    )
                    .await;
                }
            });
        }
    });
    (port, seen)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Just enough SMTP for one client: greeting, EHLO, STARTTLS, AUTH, transactions, QUIT.
async fn converse(
    mut stream: BufReader<Box<dyn Io>>,
    encrypted: bool,
    mode: Mode,
    acceptor: Option<TlsAcceptor>,
    seen: Arc<Mutex<Seen>>,
) {
    if !encrypted || mode == Mode::Implicit {
        let _ = stream
            .get_mut()
            .write_all(b"220 relay.test ESMTP\r\n")
            .await;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            if mode == Mode::StartTls && !encrypted {
                b"250-relay.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
            } else {
                b"250-relay.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"
            }
        } else if command == "STARTTLS" {
            let _ = stream.get_mut().write_all(b"220 go ahead\r\n").await;
            let Some(acceptor) = acceptor else { return };
            let Ok(tls) = acceptor.accept(stream.into_inner()).await else {
                return;
            };
            Box::pin(converse(
                BufReader::new(Box::new(tls)),
                true,
                mode,
                None,
                seen,
            ))
            .await;
            return;
        } else if command.starts_with("AUTH PLAIN") {
            seen.lock().unwrap().auth_over_tls.push(encrypted);
            b"235 2.7.0 ok\r\n"
        } else if command == "DATA" {
            let _ = stream.get_mut().write_all(b"354 go\r\n").await;
            let mut data = String::new();
            while !data.ends_with("\r\n.\r\n") {
                if stream.read_line(&mut data).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            seen.lock().unwrap().messages_over_tls.push(encrypted);
            b"250 2.0.0 queued\r\n"
        } else if command == "QUIT" {
            let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 2.0.0 ok\r\n"
        };
        let _ = stream.get_mut().write_all(reply).await;
    }
}

const MESSAGE: &[u8] = b"Subject: over TLS\r\n\r\nHello.\r\n";

#[tokio::test]
async fn smtps_sends_over_tls_from_the_first_byte() {
    let pki = pki();
    let (port, seen) = relay(Mode::Implicit, pki.acceptor.clone()).await;
    let settings = TlsSettings::with_extra_roots(pki.ca_pem.as_bytes()).unwrap();
    let url = SmtpUrl::parse(&format!("smtps://editor:secret@localhost:{port}")).unwrap();
    let mut session = Session::open(&url, "client.test", &settings).await.unwrap();
    session
        .send("from@example.com", "to@example.com", MESSAGE)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.auth_over_tls, [true]);
    assert_eq!(seen.messages_over_tls, [true]);
}

#[tokio::test]
async fn starttls_is_used_before_auth_when_required() {
    let pki = pki();
    let (port, seen) = relay(Mode::StartTls, pki.acceptor.clone()).await;
    let settings = TlsSettings::with_extra_roots(pki.ca_pem.as_bytes()).unwrap();
    let url = SmtpUrl::parse(&format!(
        "smtp://editor:secret@localhost:{port}?tls=required"
    ))
    .unwrap();
    let mut session = Session::open(&url, "client.test", &settings).await.unwrap();
    session
        .send("from@example.com", "to@example.com", MESSAGE)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.auth_over_tls,
        [true],
        "the password only ever travels encrypted"
    );
    assert_eq!(seen.messages_over_tls, [true]);
}

#[tokio::test]
async fn a_plain_smtp_url_uses_starttls_whenever_the_relay_offers_it_and_verifies_it() {
    let pki = pki();
    let (port, seen) = relay(Mode::StartTls, pki.acceptor.clone()).await;
    let settings = TlsSettings::with_extra_roots(pki.ca_pem.as_bytes()).unwrap();
    let url = SmtpUrl::parse(&format!("smtp://localhost:{port}")).unwrap();
    let mut session = Session::open(&url, "client.test", &settings).await.unwrap();
    session
        .send("from@example.com", "to@example.com", MESSAGE)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().messages_over_tls, [true]);

    // The same relay, with a certificate we cannot verify: refused, never plaintext.
    let (port, seen) = relay(Mode::StartTls, pki.acceptor.clone()).await;
    let untrusting = TlsSettings::with_extra_roots(&[]).unwrap();
    let url = SmtpUrl::parse(&format!("smtp://localhost:{port}")).unwrap();
    let error = Session::open(&url, "client.test", &untrusting)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SmtpError::Tls { .. }), "{error}");
    assert!(seen.lock().unwrap().messages_over_tls.is_empty());

    // ?tls=none asks for plaintext: no STARTTLS even when offered.
    let (port, seen) = relay(Mode::StartTls, pki.acceptor.clone()).await;
    let url = SmtpUrl::parse(&format!("smtp://localhost:{port}?tls=none")).unwrap();
    let mut session = Session::open(&url, "client.test", &settings).await.unwrap();
    session
        .send("from@example.com", "to@example.com", MESSAGE)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().messages_over_tls, [false]);
}

#[tokio::test]
async fn a_relay_without_starttls_is_refused_when_tls_is_required() {
    let pki = pki();
    let (port, seen) = relay(Mode::PlainOnly, pki.acceptor.clone()).await;
    let settings = TlsSettings::with_extra_roots(pki.ca_pem.as_bytes()).unwrap();
    let url = SmtpUrl::parse(&format!(
        "smtp://editor:secret@localhost:{port}?tls=required"
    ))
    .unwrap();
    let error = Session::open(&url, "client.test", &settings)
        .await
        .err()
        .unwrap();
    assert!(matches!(error, SmtpError::NoStartTls), "{error}");
    assert!(
        seen.lock().unwrap().auth_over_tls.is_empty(),
        "no AUTH was attempted"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_authority_is_refused() {
    let pki = pki();
    let (port, seen) = relay(Mode::Implicit, pki.acceptor.clone()).await;
    let url = SmtpUrl::parse(&format!("smtps://editor:secret@localhost:{port}")).unwrap();
    let error = Session::open(
        &url,
        "client.test",
        &TlsSettings::with_extra_roots(&[]).unwrap(),
    )
    .await
    .err()
    .unwrap();
    match &error {
        SmtpError::Tls { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
            assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        }
        other => panic!("expected a TLS failure, got {other}"),
    }
    assert!(seen.lock().unwrap().auth_over_tls.is_empty());
}
