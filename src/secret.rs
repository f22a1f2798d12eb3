//! The newsletter's secret, and the unguessable values derived from it: unsubscribe tokens
//! and the per-recipient part of Message-IDs.
//!
//! The secret comes from `LETTERPRESS_SECRET`, or is generated once into
//! `.letterpress/secret` (mode 0600). It is never printed: `Debug` shows a redaction.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::SECRET_ENV;
use crate::model::address::AddressKey;

/// Bytes of HMAC kept in a token: 128 bits cannot be guessed or forged.
const TOKEN_BYTES: usize = 16;

#[derive(Clone)]
pub struct Secret {
    key: [u8; 32],
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{SECRET_ENV} is too short: use at least 32 characters (for example `openssl rand -hex 32`)"
    )]
    TooShort,
    #[error("cannot read or create the secret `{path}`")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the secret file `{0}` is damaged: it should hold 64 hex digits; restore it from a backup (a new one would invalidate every unsubscribe link already sent)"
    )]
    Damaged(String),
}

impl Secret {
    /// Any string of at least 32 characters; it is hashed into the key, so its form is free.
    pub fn from_passphrase(passphrase: &str) -> Result<Secret, SecretError> {
        if passphrase.trim().chars().count() < 32 {
            return Err(SecretError::TooShort);
        }
        let mut hasher = Sha256::new();
        hasher.update(b"letterpress secret v1\0");
        hasher.update(passphrase.trim().as_bytes());
        Ok(Secret {
            key: hasher.finalize().into(),
        })
    }

    /// The secret from the environment if set, else from `state_dir/secret`, created on first
    /// use.
    pub fn load(env_value: Option<&str>, state_dir: &Path) -> Result<Secret, SecretError> {
        if let Some(value) = env_value {
            return Secret::from_passphrase(value);
        }
        let path = state_dir.join("secret");
        let file_error = |source| SecretError::File {
            path: path.display().to_string(),
            source,
        };
        match read_small(&path) {
            Ok(bytes) => {
                return std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| Secret::from_hex(text.trim()))
                    .ok_or_else(|| SecretError::Damaged(path.display().to_string()));
            }
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(file_error(error));
            }
            Err(_) => {}
        }
        std::fs::create_dir_all(state_dir).map_err(file_error)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|error| file_error(std::io::Error::other(error.to_string())))?;
        // Written whole to a file of our own, then linked into place: a process that finds
        // `secret` finds it complete, and of two creating it at once, one link wins and the
        // other process reads the winner's key.
        let draft = state_dir.join(format!(".secret.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&draft).and_then(|mut file| {
            file.write_all(hex(&key).as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()
        });
        let linked = written.and_then(|()| std::fs::hard_link(&draft, &path));
        let _ = std::fs::remove_file(&draft);
        match linked {
            Ok(()) => Ok(Secret { key }),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Secret::load(None, state_dir)
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// A key for this process only, never stored: for previews that must not write anything.
    pub fn ephemeral() -> Result<Secret, SecretError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|error| SecretError::File {
            path: "(random key)".into(),
            source: std::io::Error::other(error.to_string()),
        })?;
        Ok(Secret { key })
    }

    fn from_hex(text: &str) -> Option<Secret> {
        if text.len() != 64 {
            return None;
        }
        let mut key = [0u8; 32];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
        }
        Some(Secret { key })
    }

    fn mac(&self, parts: &[&str]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(part.as_bytes());
            // A separator that cannot occur inside a part keeps ("ab","c") apart from ("a","bc").
            mac.update(b"\0");
        }
        mac.finalize().into_bytes().into()
    }

    /// The token in a subscriber's unsubscribe link: it names the subscriber to the server,
    /// which recomputes it, and reveals nothing about the address to anyone else.
    pub fn unsubscribe_token(&self, list_id: &str, address: &AddressKey) -> String {
        let mac = self.mac(&["unsubscribe", list_id, address.as_str()]);
        URL_SAFE_NO_PAD.encode(&mac[..TOKEN_BYTES])
    }

    /// The per-recipient part of a Message-ID: stable for an issue and recipient, so a
    /// resent message is recognisable as the same, yet unlinkable to the unsubscribe token
    /// (Message-IDs travel in replies and forwards).
    pub fn message_tag(&self, list_id: &str, issue: &str, address: &AddressKey) -> String {
        let mac = self.mac(&["message-id", list_id, issue, address.as_str()]);
        hex(&mac[..12])
    }

    /// The tag in a message's envelope sender (`bounces+<tag>@example.com`, see
    /// `bounce::verp`): stable for an issue and recipient, like the Message-ID, so a resent
    /// message bounces to the same address; 80 bits, which no one can guess for a reader, in
    /// 16 characters of lowercase base32, which survive an MTA that lowercases local parts.
    pub fn bounce_tag(&self, list_id: &str, issue: &str, address_key: &str) -> String {
        let mac = self.mac(&["bounce", list_id, issue, address_key]);
        base32_lower(&mac[..10])
    }
}

/// RFC 4648 base32 in lowercase, without padding (`bytes.len()` a multiple of 5 needs none).
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The secret file's bytes, read no further than a secret can be long: a secret replaced by
/// `/dev/zero` or a large file is damaged, not a way to fill the memory.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_secret_list_and_address() {
        let secret = Secret::from_passphrase(&"a".repeat(32)).unwrap();
        let other = Secret::from_passphrase(&"b".repeat(32)).unwrap();
        let ada = AddressKey::of("ada@example.com").unwrap();
        let bob = AddressKey::of("bob@example.com").unwrap();
        let token = secret.unsubscribe_token("list", &ada);
        assert_eq!(token.len(), 22);
        assert_eq!(token, secret.unsubscribe_token("list", &ada));
        assert_ne!(token, other.unsubscribe_token("list", &ada));
        assert_ne!(token, secret.unsubscribe_token("other-list", &ada));
        assert_ne!(token, secret.unsubscribe_token("list", &bob));
    }

    #[test]
    fn bounce_tags_are_short_lowercase_base32_and_differ_per_issue_and_reader() {
        let secret = Secret::from_passphrase(&"a".repeat(32)).unwrap();
        let tag = secret.bounce_tag("list", "2021-08-23", "ada@example.com");
        assert_eq!(tag.len(), 16);
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(
            tag,
            secret.bounce_tag("list", "2021-08-23", "ada@example.com")
        );
        assert_ne!(
            tag,
            secret.bounce_tag("list", "2021-08-30", "ada@example.com")
        );
        assert_ne!(
            tag,
            secret.bounce_tag("list", "2021-08-23", "bob@example.com")
        );
    }

    #[test]
    fn base32_matches_rfc_4648_test_vectors() {
        // RFC 4648 section 10, lowercased and without padding.
        assert_eq!(base32_lower(b"fooba"), "mzxw6ytb");
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32_lower(b"f"), "my");
    }

    #[test]
    fn short_passphrases_are_refused_and_debug_never_shows_the_key() {
        assert!(matches!(
            Secret::from_passphrase("short"),
            Err(SecretError::TooShort)
        ));
        let secret = Secret::from_passphrase(&"x".repeat(40)).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn a_generated_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secret::load(None, dir.path()).unwrap();
        let second = Secret::load(None, dir.path()).unwrap();
        assert_eq!(first.key, second.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("secret"), "garbage").unwrap();
        assert!(matches!(
            Secret::load(None, dir.path()),
            Err(SecretError::Damaged(_))
        ));
    }
}
