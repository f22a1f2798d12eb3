//! Email addresses and "Name <address>" mailboxes.

use std::fmt;
use std::str::FromStr;

use super::text::{OneLine, TextError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{0}` is not a valid email address")]
    Invalid(String),
    #[error("`{0}` is not a valid mailbox; write `Name <address>` or just the address")]
    Mailbox(String),
    #[error("the name {0}")]
    Name(TextError),
}

/// A syntactically valid address, checked by `lettre::Address`'s parser: lettre stays our
/// address type (well kept, RFC 5321 syntax), though our own client does the sending.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        // lettre's parser accepts quoted local parts, which may carry spaces and line
        // breaks: a header injection in waiting.
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::Invalid(text.into()));
        }
        lettre::Address::from_str(text)
            .map(EmailAddress)
            .map_err(|_| AddressError::Invalid(text.into()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// The part before the `@`, as written.
    pub fn local_part(&self) -> &str {
        self.0.user()
    }

    /// The domain in its ASCII form (IDNA: `bücher.example` is `xn--bcher-kva.example`),
    /// lower-cased: how it goes on the envelope and how addresses compare.
    pub fn ascii_domain(&self) -> String {
        idna::domain_to_ascii(self.domain()).unwrap_or_else(|_| self.domain().to_lowercase())
    }

    /// Whether the part before the `@` has characters beyond ASCII: such an address can only
    /// be sent through a relay that offers SMTPUTF8 (RFC 6531).
    pub fn has_international_local_part(&self) -> bool {
        !self.local_part().is_ascii()
    }

    /// The address as it goes on the envelope (MAIL FROM, RCPT TO) and, when its local part
    /// is ASCII, in headers: the local part as written, the domain in ASCII.
    pub fn envelope_form(&self) -> String {
        format!("{}@{}", self.local_part(), self.ascii_domain())
    }

    /// The address as it goes in a header: the envelope's form (the domain in ASCII), unless
    /// the local part needs SMTPUTF8 anyway, when it is written as is (RFC 6532).
    pub fn header_form(&self) -> String {
        if self.has_international_local_part() {
            self.as_str().to_string()
        } else {
            self.envelope_form()
        }
    }

    /// The form two addresses are compared in: the domain in ASCII and the local part in
    /// Unicode's composed form (NFC), both without case. Mailbox providers treat case as
    /// insignificant, so `Ada@Example.com` and `ada@example.com` are one subscriber, and
    /// `user@bücher.example`, `user@xn--bcher-kva.example` and its decomposed spelling are
    /// one mailbox too.
    pub fn key(&self) -> AddressKey {
        let local = icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
            .normalize(self.local_part())
            .to_lowercase();
        AddressKey(format!("{local}@{}", self.ascii_domain()))
    }

    pub fn as_lettre(&self) -> &lettre::Address {
        &self.0
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An address as two addresses are compared: the key of the ledger's rows, suppressions and
/// tokens. Only made from a valid address (or read back from the ledger, which stores only
/// keys), so it always names one mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AddressKey(String);

impl AddressKey {
    /// The key of a written address, if it is a valid one.
    pub fn of(text: &str) -> Result<AddressKey, AddressError> {
        EmailAddress::parse(text).map(|address| address.key())
    }

    /// A key as the ledger stored it.
    pub(crate) fn from_stored(key: String) -> AddressKey {
        AddressKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// See [`key_hash`].
    pub fn hash64(&self) -> u64 {
        key_hash(&self.0)
    }
}

/// A 64-bit hash of a key (as the ledger stores it), for sets of a million addresses that
/// must stay small: 8 bytes each instead of the key's 60 or so. Two keys may share a hash, so
/// a match is only a candidate, to be confirmed against the key itself; a miss is certain.
pub fn key_hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same in every run of this binary, which the sets rely on
    // only within one process.
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// A set of keys as their [`key_hash`]es, sorted: `might_contain` is certain when it says
/// no, and a yes must be confirmed.
#[derive(Debug, Clone, Default)]
pub struct KeyHashes(Vec<u64>);

impl KeyHashes {
    pub fn from_hashes(mut hashes: Vec<u64>) -> KeyHashes {
        hashes.sort_unstable();
        hashes.dedup();
        hashes.shrink_to_fit();
        KeyHashes(hashes)
    }

    pub fn might_contain(&self, key: &AddressKey) -> bool {
        self.0.binary_search(&key.hash64()).is_ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AddressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AddressKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An address with an optional display name, as in `From:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<OneLine>,
    pub address: EmailAddress,
}

impl Mailbox {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        let Some(open) = text.rfind('<') else {
            return Ok(Mailbox {
                name: None,
                address: EmailAddress::parse(text)?,
            });
        };
        let Some(inner) = text[open + 1..].strip_suffix('>') else {
            return Err(AddressError::Mailbox(text.into()));
        };
        let address = EmailAddress::parse(inner)?;
        let name = text[..open].trim();
        let name = name
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or(name);
        let name = if name.is_empty() {
            None
        } else {
            Some(OneLine::parse(name).map_err(AddressError::Name)?)
        };
        Ok(Mailbox { name, address })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_validated_and_compared_without_case() {
        let address = EmailAddress::parse("Ada@Example.com").unwrap();
        assert_eq!(address.key().as_str(), "ada@example.com");
        assert_eq!(address.envelope_form(), "Ada@example.com");
        assert_eq!(address.domain(), "Example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "a@b\r\nBcc: x",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn mailboxes_take_a_name_in_angle_brackets_or_a_bare_address() {
        let mailbox = Mailbox::parse("Global AI Weekly <weekly@example.com>").unwrap();
        assert_eq!(mailbox.name.unwrap().as_str(), "Global AI Weekly");
        assert_eq!(mailbox.address.as_str(), "weekly@example.com");
        let quoted = Mailbox::parse("\"Weekly, The\" <weekly@example.com>").unwrap();
        assert_eq!(quoted.name.unwrap().as_str(), "Weekly, The");
        assert!(Mailbox::parse("weekly@example.com").unwrap().name.is_none());
        assert_eq!(
            Mailbox::parse("Weekly <weekly@example.com"),
            Err(AddressError::Mailbox("Weekly <weekly@example.com".into()))
        );
    }
}
#[cfg(test)]
mod international {
    use super::*;

    #[test]
    fn one_mailbox_is_one_key_whatever_the_spelling_of_its_domain_or_accents() {
        let keys: Vec<String> = [
            "user@bücher.example",
            "user@xn--bcher-kva.example",
            "user@bu\u{308}cher.example",
            "USER@BÜCHER.example",
        ]
        .into_iter()
        .map(|text| EmailAddress::parse(text).unwrap().key().to_string())
        .collect();
        assert!(
            keys.iter().all(|key| key == "user@xn--bcher-kva.example"),
            "{keys:?}"
        );
        let composed = EmailAddress::parse("jos\u{e9}@example.com").unwrap();
        let decomposed = EmailAddress::parse("jose\u{301}@example.com").unwrap();
        assert_eq!(composed.key(), decomposed.key());
        assert_ne!(
            composed.key(),
            EmailAddress::parse("jos\u{e8}@example.com").unwrap().key()
        );
    }

    #[test]
    fn the_envelope_carries_the_domain_in_ascii_and_flags_international_local_parts() {
        let address = EmailAddress::parse("user@bücher.example").unwrap();
        assert_eq!(address.envelope_form(), "user@xn--bcher-kva.example");
        assert!(!address.has_international_local_part());
        let address = EmailAddress::parse("josé@bücher.example").unwrap();
        assert!(address.has_international_local_part());
        assert_eq!(address.envelope_form(), "josé@xn--bcher-kva.example");
    }
}
