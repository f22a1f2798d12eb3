//! The newsletter's secret, and the unguessable values derived from it: unsubscribe tokens,
//! the per-recipient part of Message-IDs, and the links that confirm a web sign-up.
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

/// How long a link to confirm a sign-up works.
pub const CONFIRMATION_VALIDITY: chrono::Duration = chrono::Duration::days(7);

/// The version byte a confirmation token starts with, so its layout can change later.
const CONFIRMATION_VERSION: u8 = 1;
/// The longest token accepted: an address is at most 254 bytes, so a real one is under 400
/// characters; anything longer is refused before it is decoded.
const MAX_CONFIRMATION_TOKEN: usize = 512;

/// A confirmation token taken apart, not yet checked: what [`parse_confirmation_token`]
/// finds in any string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationParts {
    pub issued: i64,
    pub address: String,
    pub mac: [u8; TOKEN_BYTES],
}

/// Takes a confirmation token apart: base64url of a version byte, the time it was issued
/// (seconds since 1970, big-endian), the address as typed, and 16 bytes of HMAC. Pure and
/// total, for fuzzing: any input gives `None` or parts, never a panic.
pub fn parse_confirmation_token(token: &str) -> Option<ConfirmationParts> {
    if token.len() > MAX_CONFIRMATION_TOKEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let (&version, rest) = bytes.split_first()?;
    if version != CONFIRMATION_VERSION || rest.len() < 8 + 3 + TOKEN_BYTES {
        return None;
    }
    let (issued, rest) = rest.split_at(8);
    let (address, mac) = rest.split_at(rest.len() - TOKEN_BYTES);
    let address = std::str::from_utf8(address).ok()?;
    // The MAC separates its parts with NUL; an address never holds one.
    if address.contains('\0') {
        return None;
    }
    Some(ConfirmationParts {
        issued: i64::from_be_bytes(issued.try_into().ok()?),
        address: address.to_string(),
        mac: mac.try_into().ok()?,
    })
}

/// Why a confirmation link does not confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmationError {
    /// Forged, cut short, from another newsletter, or not a token at all.
    #[error("not a confirmation link of this newsletter")]
    Invalid,
    /// A real link, older than [`CONFIRMATION_VALIDITY`].
    #[error("the confirmation link has expired")]
    Expired,
}

/// What a valid confirmation link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    pub address: crate::model::address::EmailAddress,
    pub issued: chrono::DateTime<chrono::Utc>,
}

impl Secret {
    /// The token in a sign-up's confirmation link: it names the address and when it was
    /// issued, so the server needs no state to check it, and only this secret can make one.
    pub fn confirmation_token(
        &self,
        list_key: &str,
        address: &crate::model::address::EmailAddress,
        issued: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let issued = issued.timestamp();
        let mac = self.confirmation_mac(list_key, issued, address.as_str());
        let mut bytes = Vec::with_capacity(1 + 8 + address.as_str().len() + TOKEN_BYTES);
        bytes.push(CONFIRMATION_VERSION);
        bytes.extend_from_slice(&issued.to_be_bytes());
        bytes.extend_from_slice(address.as_str().as_bytes());
        bytes.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn confirmation_mac(&self, list_key: &str, issued: i64, address: &str) -> [u8; TOKEN_BYTES] {
        let mac = self.mac(&["confirm", list_key, &issued.to_string(), address]);
        mac[..TOKEN_BYTES].try_into().expect("16 of 32 bytes")
    }

    /// Checks a confirmation token: its MAC first (compared in constant time), then its age
    /// against `now`. One issued more than an hour in the future cannot be ours (clocks
    /// drift less), and is as invalid as a forged one.
    pub fn verify_confirmation(
        &self,
        list_key: &str,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Confirmed, ConfirmationError> {
        use subtle::ConstantTimeEq;
        let parts = parse_confirmation_token(token).ok_or(ConfirmationError::Invalid)?;
        let expected = self.confirmation_mac(list_key, parts.issued, &parts.address);
        if !bool::from(expected.ct_eq(&parts.mac)) {
            return Err(ConfirmationError::Invalid);
        }
        let issued =
            chrono::DateTime::from_timestamp(parts.issued, 0).ok_or(ConfirmationError::Invalid)?;
        let address = crate::model::address::EmailAddress::parse(&parts.address)
            .map_err(|_| ConfirmationError::Invalid)?;
        if issued > now + chrono::Duration::hours(1) {
            return Err(ConfirmationError::Invalid);
        }
        if now - issued > CONFIRMATION_VALIDITY {
            return Err(ConfirmationError::Expired);
        }
        Ok(Confirmed { address, issued })
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

/// The secret file's bytes, read no further than a secret can be long: a large file in its
/// place is damaged, and a device or a FIFO is refused; neither can fill the memory or hang.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use crate::source::{FileError, FileKind};
    use std::io::Read;
    let mut bytes = Vec::new();
    // Opened without waiting: a FIFO in its place is refused, not waited on.
    match crate::source::open(path, FileKind::Key) {
        Ok(file) => {
            file.take(4096).read_to_end(&mut bytes)?;
            Ok(bytes)
        }
        Err(FileError::NotFound) => Err(std::io::ErrorKind::NotFound.into()),
        Err(FileError::Io(error)) => Err(error),
        Err(other) => Err(std::io::Error::other(other.to_string())),
    }
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
    fn a_confirmation_token_names_its_address_and_expires_after_seven_days() {
        use chrono::{Duration, TimeZone, Utc};
        let secret = Secret::from_passphrase(&"a".repeat(32)).unwrap();
        let issued = Utc.with_ymd_and_hms(2021, 8, 16, 12, 0, 0).unwrap();
        let ada = crate::model::address::EmailAddress::parse("Ada@Example.com").unwrap();
        let token = secret.confirmation_token("list", &ada, issued);
        let confirmed = secret
            .verify_confirmation("list", &token, issued + Duration::days(7))
            .unwrap();
        assert_eq!(confirmed.address.as_str(), "Ada@Example.com");
        assert_eq!(confirmed.issued, issued);
        assert_eq!(
            secret.verify_confirmation(
                "list",
                &token,
                issued + Duration::days(7) + Duration::seconds(1)
            ),
            Err(ConfirmationError::Expired)
        );
        assert_eq!(
            secret.verify_confirmation("list", &token, issued - Duration::hours(2)),
            Err(ConfirmationError::Invalid)
        );
        let other = Secret::from_passphrase(&"b".repeat(32)).unwrap();
        assert_eq!(
            other.verify_confirmation("list", &token, issued),
            Err(ConfirmationError::Invalid)
        );
        assert_eq!(
            secret.verify_confirmation("other-list", &token, issued),
            Err(ConfirmationError::Invalid)
        );
        // Another address or time under the same MAC: forged.
        let mut parts = parse_confirmation_token(&token).unwrap();
        parts.issued += 86_400 * 30;
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&parts.issued.to_be_bytes());
        bytes.extend_from_slice(parts.address.as_bytes());
        bytes.extend_from_slice(&parts.mac);
        let forged = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            secret.verify_confirmation("list", &forged, issued),
            Err(ConfirmationError::Invalid)
        );
        for bad in [
            "",
            "x",
            &token[..token.len() - 1],
            &format!("{token}A"),
            "%00",
        ] {
            assert!(
                secret.verify_confirmation("list", bad, issued).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_token_parser_takes_any_input_without_panicking() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for length in 0..600 {
            let text: String = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let alphabet = b"ABCDEFabcdef0123456789-_=+/ .\0\xff";
                    char::from(alphabet[(state % alphabet.len() as u64) as usize])
                })
                .collect();
            let _ = parse_confirmation_token(&text);
        }
        assert!(parse_confirmation_token(&"A".repeat(MAX_CONFIRMATION_TOKEN + 1)).is_none());
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
