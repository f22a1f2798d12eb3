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

    /// The form two addresses are compared in: mailbox providers treat case as insignificant,
    /// so `Ada@Example.com` and `ada@example.com` are one subscriber.
    pub fn key(&self) -> AddressKey {
        AddressKey(self.as_str().to_lowercase())
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
