//! `LETTERPRESS_BOUNCE_IMAP_URL`: the bounce mailbox, parsed into settings that cannot leak
//! the password. The same rules as `LETTERPRESS_SMTP_URL` (`delivery::smtp_url`): the password
//! only ever travels over TLS, except to a server on this machine's loopback.
//!
//! `imaps://user:password@imap.example.com/INBOX` (TLS from the first byte, port 993),
//! `imap://user:password@imap.example.com/Bounces` (STARTTLS, refused without it, port 143),
//! `imap://user:password@127.0.0.1:1143/INBOX?tls=none` (plaintext, loopback only).

use std::fmt;
use std::net::IpAddr;

use url::Url;

pub const BOUNCE_IMAP_URL_ENV: &str = "LETTERPRESS_BOUNCE_IMAP_URL";

/// Where processed messages go; never read from.
pub const PROCESSED_FOLDER: &str = "letterpress-processed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the first byte (`imaps://`).
    Implicit,
    /// STARTTLS, and the connection fails if the server does not offer it.
    StartTls,
    /// Plaintext: only to a server on loopback.
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ImapUrl {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    password: String,
    /// The folder bounces arrive in; `INBOX` when the URL names none.
    pub mailbox: String,
}

/// Never shows the password, whatever formats it.
impl fmt::Debug for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImapUrl({self})")
    }
}

impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            ImapSecurity::Implicit => "imaps",
            ImapSecurity::StartTls | ImapSecurity::None => "imap",
        };
        write!(
            f,
            "{scheme}://{}:***@{}:{}/{}",
            self.username, self.host, self.port, self.mailbox
        )?;
        if self.security == ImapSecurity::None {
            f.write_str("?tls=none")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapUrlError {
    #[error(
        "{BOUNCE_IMAP_URL_ENV} is not a URL; write it like imaps://user:password@imap.example.com/INBOX"
    )]
    Malformed,
    #[error("{BOUNCE_IMAP_URL_ENV} must start with imaps:// or imap://, not `{0}://`")]
    Scheme(String),
    #[error("{BOUNCE_IMAP_URL_ENV} has no host")]
    NoHost,
    #[error(
        "{BOUNCE_IMAP_URL_ENV} needs the mailbox's user and password: imaps://user:password@{0}/INBOX"
    )]
    NoCredentials(String),
    #[error(
        "{BOUNCE_IMAP_URL_ENV}: unknown setting `{0}`; the only one is tls=required or tls=none (imap:// only)"
    )]
    Parameter(String),
    #[error(
        "refusing to send the password for `{user}` unencrypted to {host}: use imaps:// or imap:// without tls=none (plaintext login is only allowed to a server on loopback)"
    )]
    PlaintextAuth { user: String, host: String },
    #[error(
        "{BOUNCE_IMAP_URL_ENV}: the folder `{0}` must be plain ASCII without control characters (rename it, or use INBOX)"
    )]
    Mailbox(String),
    #[error(
        "{BOUNCE_IMAP_URL_ENV}: `{PROCESSED_FOLDER}` is where processed messages go; name the folder bounces arrive in (usually INBOX)"
    )]
    ProcessedFolder,
}

impl ImapUrl {
    pub fn parse(text: &str) -> Result<ImapUrl, ImapUrlError> {
        let url = Url::parse(text.trim()).map_err(|_| ImapUrlError::Malformed)?;
        let implicit = match url.scheme() {
            "imap" => false,
            "imaps" => true,
            other => return Err(ImapUrlError::Scheme(other.to_string())),
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(ImapUrlError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut security = if implicit {
            ImapSecurity::Implicit
        } else {
            ImapSecurity::StartTls
        };
        for (key, value) in url.query_pairs() {
            security = match (key.as_ref(), value.as_ref(), implicit) {
                ("tls", "required", false) => ImapSecurity::StartTls,
                ("tls", "none", false) => ImapSecurity::None,
                _ => return Err(ImapUrlError::Parameter(format!("{key}={value}"))),
            };
        }
        let (username, password) = match (url.username(), url.password()) {
            ("", _) | (_, None) => return Err(ImapUrlError::NoCredentials(host)),
            (user, Some(password)) => (percent_decode(user), percent_decode(password)),
        };
        let mailbox = match percent_decode(url.path().trim_start_matches('/')) {
            name if name.is_empty() => "INBOX".to_string(),
            name => name,
        };
        if !mailbox.is_ascii() || mailbox.chars().any(|c| c.is_control()) {
            // Non-ASCII names travel in modified UTF-7 (RFC 3501 5.1.3); no bounce folder
            // needs one, and refusing is clearer than a folder that is silently not found.
            return Err(ImapUrlError::Mailbox(mailbox));
        }
        if mailbox.eq_ignore_ascii_case(PROCESSED_FOLDER) {
            return Err(ImapUrlError::ProcessedFolder);
        }
        let port = url.port().unwrap_or(match security {
            ImapSecurity::Implicit => 993,
            ImapSecurity::StartTls | ImapSecurity::None => 143,
        });
        let imap_url = ImapUrl {
            host,
            port,
            security,
            username,
            password,
            mailbox,
        };
        if security == ImapSecurity::None && !imap_url.is_loopback() {
            return Err(ImapUrlError::PlaintextAuth {
                user: imap_url.username,
                host: imap_url.host,
            });
        }
        Ok(imap_url)
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }

    pub(super) fn password(&self) -> &str {
        &self.password
    }

    /// One message of the mailbox, for messages and the ledger (RFC 5092's form, without
    /// the password): `imaps://user@imap.example.com:993/INBOX;UID=12`.
    pub fn message_source(&self, uid: u32) -> String {
        let scheme = match self.security {
            ImapSecurity::Implicit => "imaps",
            ImapSecurity::StartTls | ImapSecurity::None => "imap",
        };
        format!(
            "{scheme}://{}@{}:{}/{};UID={uid}",
            self.username, self.host, self.port, self.mailbox
        )
    }
}

/// `%40` to `@`: user names and passwords in a URL are percent-encoded. (The same small
/// function as in `smtp_url`, which keeps its own private.)
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_security_and_folder_with_sensible_defaults() {
        let url = ImapUrl::parse("imaps://bounces:p%40ss@imap.example.com/INBOX").unwrap();
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.security,
                url.mailbox.as_str()
            ),
            ("imap.example.com", 993, ImapSecurity::Implicit, "INBOX")
        );
        assert_eq!((url.username.as_str(), url.password()), ("bounces", "p@ss"));
        let url = ImapUrl::parse("imap://u:p@imap.example.com").unwrap();
        assert_eq!(
            (url.port, url.security, url.mailbox.as_str()),
            (143, ImapSecurity::StartTls, "INBOX")
        );
        let url =
            ImapUrl::parse("imap://u:p@imap.example.com:1143/Bounces%20In?tls=required").unwrap();
        assert_eq!((url.port, url.mailbox.as_str()), (1143, "Bounces In"));
    }

    #[test]
    fn the_password_never_shows_in_display_debug_or_message_sources() {
        let url = ImapUrl::parse("imaps://bounces:hunter2@imap.example.com/INBOX").unwrap();
        assert_eq!(
            url.to_string(),
            "imaps://bounces:***@imap.example.com:993/INBOX"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(
            url.message_source(12),
            "imaps://bounces@imap.example.com:993/INBOX;UID=12"
        );
    }

    #[test]
    fn plaintext_is_refused_except_on_loopback() {
        assert_eq!(
            ImapUrl::parse("imap://u:secret@imap.example.com/INBOX?tls=none"),
            Err(ImapUrlError::PlaintextAuth {
                user: "u".into(),
                host: "imap.example.com".into()
            })
        );
        for url in [
            "imap://u:secret@127.0.0.1:1143/INBOX?tls=none",
            "imap://u:secret@[::1]:1143/INBOX?tls=none",
            "imap://u:secret@localhost/INBOX?tls=none",
        ] {
            assert_eq!(ImapUrl::parse(url).unwrap().security, ImapSecurity::None);
        }
        assert!(ImapUrl::parse("imaps://u:s@imap.example.com/?tls=none").is_err());
    }

    #[test]
    fn credentials_schemes_settings_and_folders_are_checked() {
        assert_eq!(
            ImapUrl::parse("imaps://imap.example.com/INBOX"),
            Err(ImapUrlError::NoCredentials("imap.example.com".into()))
        );
        assert_eq!(
            ImapUrl::parse("imaps://user@imap.example.com/INBOX"),
            Err(ImapUrlError::NoCredentials("imap.example.com".into()))
        );
        assert_eq!(
            ImapUrl::parse("pop3://u:p@example.com"),
            Err(ImapUrlError::Scheme("pop3".into()))
        );
        assert_eq!(
            ImapUrl::parse("imap://u:p@example.com?tls=maybe"),
            Err(ImapUrlError::Parameter("tls=maybe".into()))
        );
        assert_eq!(
            ImapUrl::parse("imaps://u:p@example.com/R%C3%BCckl%C3%A4ufer"),
            Err(ImapUrlError::Mailbox("Rückläufer".into()))
        );
        assert_eq!(
            ImapUrl::parse("imaps://u:p@example.com/letterpress-processed"),
            Err(ImapUrlError::ProcessedFolder)
        );
        assert_eq!(ImapUrl::parse("not a url"), Err(ImapUrlError::Malformed));
    }
}
