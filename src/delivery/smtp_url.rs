//! `LETTERPRESS_SMTP_URL`: where mail goes, parsed into settings that cannot leak a password.
//!
//! `smtp://host:25` (STARTTLS whenever the relay offers it, the certificate verified),
//! `smtp://host:587?tls=required` (STARTTLS, refused without it), `smtps://user:pass@host:465`
//! (TLS from the first byte), `?tls=none` (plaintext, for a relay on loopback), and
//! `?ehlo=mail.example.com` for the name we greet the relay with. Credentials only ever
//! travel over TLS, except to a relay on this machine's loopback.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use crate::config::SMTP_URL_ENV;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// STARTTLS, and the send fails if the server does not offer it.
    Required,
    /// STARTTLS when offered (the certificate verified as for `Required`), plaintext only
    /// when the relay does not offer it: the default, since most relays do. An attacker on
    /// the path can strip the offer, which is why a password needs `Required`.
    Opportunistic,
    /// Plaintext, asked for explicitly (`?tls=none`): a relay on loopback, tests.
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    password: Option<String>,
    /// The name to give in EHLO (`?ehlo=`), instead of the one worked out for this machine.
    pub ehlo: Option<String>,
}

/// Never shows the password, whatever formats it.
impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.security == Security::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some(username) = &self.username {
            write!(f, "{username}")?;
            if self.password.is_some() {
                write!(f, ":***")?;
            }
            write!(f, "@")?;
        }
        write!(f, "{}:{}", self.host, self.port)?;
        let mut parameters = Vec::new();
        match self.security {
            Security::Required => parameters.push("tls=required".to_string()),
            Security::None => parameters.push("tls=none".to_string()),
            Security::Implicit | Security::Opportunistic => {}
        }
        if let Some(ehlo) = &self.ehlo {
            parameters.push(format!("ehlo={ehlo}"));
        }
        if !parameters.is_empty() {
            write!(f, "?{}", parameters.join("&"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    #[error(
        "{SMTP_URL_ENV} is not a URL; write it like smtp://127.0.0.1:2525 or smtps://user:password@smtp.example.com:465"
    )]
    Malformed,
    #[error("{SMTP_URL_ENV} must start with smtp:// or smtps://, not `{0}://`")]
    Scheme(String),
    #[error("{SMTP_URL_ENV} has no host")]
    NoHost,
    #[error(
        "{SMTP_URL_ENV}: unknown setting `{0}`; the settings are tls=required, tls=opportunistic (the default), tls=none and ehlo=NAME"
    )]
    Parameter(String),
    #[error(
        "{SMTP_URL_ENV}: ehlo=`{0}` is not a host name; write the relay-facing name of this machine, like ehlo=mail.example.com"
    )]
    Ehlo(String),
    #[error(
        "refusing to send the password for `{user}` unencrypted to {host}: use smtps:// or add ?tls=required (plaintext AUTH is only allowed to a relay on loopback)"
    )]
    PlaintextAuth { user: String, host: String },
}

impl SmtpUrl {
    pub fn parse(text: &str) -> Result<SmtpUrl, SmtpUrlError> {
        let url = Url::parse(text.trim()).map_err(|_| SmtpUrlError::Malformed)?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(SmtpUrlError::Scheme(other.to_string())),
        };
        let host = url
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(SmtpUrlError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let mut security = if implicit {
            Security::Implicit
        } else {
            Security::Opportunistic
        };
        let mut ehlo = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref(), implicit) {
                ("tls", "required", false) => security = Security::Required,
                ("tls", "opportunistic", false) => security = Security::Opportunistic,
                ("tls", "none", false) => security = Security::None,
                ("ehlo", name, _) if is_host_name(name) => ehlo = Some(name.to_string()),
                ("ehlo", name, _) => return Err(SmtpUrlError::Ehlo(name.to_string())),
                _ => return Err(SmtpUrlError::Parameter(format!("{key}={value}"))),
            }
        }
        let username = (!url.username().is_empty()).then(|| percent_decode(url.username()));
        let password = url.password().map(percent_decode);
        let port = url.port().unwrap_or(match security {
            Security::Implicit => 465,
            Security::Required => 587,
            Security::Opportunistic | Security::None => 25,
        });
        let smtp_url = SmtpUrl {
            host,
            port,
            security,
            username,
            password,
            ehlo,
        };
        smtp_url.check_credentials_are_protected()?;
        Ok(smtp_url)
    }

    fn check_credentials_are_protected(&self) -> Result<(), SmtpUrlError> {
        let encrypted = matches!(self.security, Security::Implicit | Security::Required);
        match &self.username {
            Some(user) if !encrypted && !self.is_loopback() => Err(SmtpUrlError::PlaintextAuth {
                user: user.clone(),
                host: self.host.clone(),
            }),
            _ => Ok(()),
        }
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }

    pub fn credentials(&self) -> Option<(String, String)> {
        self.username
            .as_ref()
            .map(|user| (user.clone(), self.password.clone().unwrap_or_default()))
    }
}

/// A name fit for EHLO: letters, digits, hyphens and dots, as DNS names are (RFC 5321 4.1.2).
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

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
    fn urls_give_host_port_and_security_with_sensible_default_ports() {
        let url = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.security),
            ("127.0.0.1", 2525, Security::Opportunistic)
        );
        let url = SmtpUrl::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(url.security, Security::None);
        assert_eq!(url.to_string(), "smtp://127.0.0.1:2525?tls=none");
        let url = SmtpUrl::parse("smtp://relay.example.com?tls=required").unwrap();
        assert_eq!((url.port, url.security), (587, Security::Required));
        let url = SmtpUrl::parse("smtps://user:p%40ss@smtp.example.com").unwrap();
        assert_eq!((url.port, url.security), (465, Security::Implicit));
        assert_eq!(url.credentials(), Some(("user".into(), "p@ss".into())));
    }

    #[test]
    fn the_password_never_shows_in_display_or_debug() {
        let url = SmtpUrl::parse("smtps://user:hunter2@smtp.example.com:465").unwrap();
        assert_eq!(url.to_string(), "smtps://user:***@smtp.example.com:465");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn plaintext_auth_is_refused_except_on_loopback() {
        assert_eq!(
            SmtpUrl::parse("smtp://user:secret@smtp.example.com:587"),
            Err(SmtpUrlError::PlaintextAuth {
                user: "user".into(),
                host: "smtp.example.com".into()
            })
        );
        assert!(
            SmtpUrl::parse("smtp://user:secret@smtp.example.com:587?tls=opportunistic").is_err()
        );
        assert!(SmtpUrl::parse("smtp://user:secret@127.0.0.1:2525").is_ok());
        assert!(SmtpUrl::parse("smtp://user:secret@[::1]:2525").is_ok());
        assert!(SmtpUrl::parse("smtp://user:secret@smtp.example.com:587?tls=required").is_ok());
    }

    #[test]
    fn other_schemes_and_settings_are_refused() {
        assert_eq!(
            SmtpUrl::parse("http://example.com"),
            Err(SmtpUrlError::Scheme("http".into()))
        );
        assert_eq!(
            SmtpUrl::parse("smtp://example.com?tls=maybe"),
            Err(SmtpUrlError::Parameter("tls=maybe".into()))
        );
        assert_eq!(
            SmtpUrl::parse("smtp://example.com?ehlo=bad_name"),
            Err(SmtpUrlError::Ehlo("bad_name".into()))
        );
    }

    #[test]
    fn the_ehlo_name_can_be_set_in_the_url() {
        let url =
            SmtpUrl::parse("smtp://relay.example.com?ehlo=mail.example.com&tls=required").unwrap();
        assert_eq!(url.ehlo.as_deref(), Some("mail.example.com"));
        assert_eq!(
            url.to_string(),
            "smtp://relay.example.com:587?tls=required&ehlo=mail.example.com"
        );
    }
}
