//! VERP: each message's envelope sender names its issue and reader, so that a bounce names them
//! too, whatever else the bouncing server mangles or leaves out.
//!
//! With `bounce_address: bounces@example.com`, the message of an issue to a reader goes out
//! with `MAIL FROM:<bounces+<tag>@example.com>`; every bounce goes to that address, and its
//! tag is looked up in the ledger, which stored it with the delivery. The tag is
//! `Secret::bounce_tag`: 16 characters of lowercase base32 (80 bits of HMAC over the list,
//! the issue and the address). Why a lookup rather than the issue and reader spelled into
//! the tag:
//! - an address does not fit: a local part is at most 64 octets (RFC 5321 4.5.3.1.1), and
//!   a reader's own local part may already be that long;
//! - an id of our own (a ledger row number) would have to be known before the row exists,
//!   and would tie the tag to one ledger file; the HMAC is known from the issue and address
//!   alone, the same on every retry and resume, like the Message-ID;
//! - an HMAC cannot be forged, and a lookup is its verification: a made-up tag matches no
//!   delivery, so a forged bounce cannot suppress a reader of our choosing;
//! - the envelope sender shows in every reader's `Return-Path`; an opaque tag says nothing
//!   about anyone to anyone.
//!
//! Lowercase base32 rather than base64 because some MTAs lowercase local parts, and tags are
//! compared lowercased.

use std::fmt;

use crate::model::address::EmailAddress;
use crate::secret::Secret;

/// A tag's length in characters: 80 bits of base32.
pub const TAG_LEN: usize = 16;

/// The longest local part an address may have (RFC 5321 4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;

/// A tag as it appears in `bounces+<tag>@example.com`: 16 characters `a-z2-7`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerpTag(String);

impl VerpTag {
    /// Accepts a tag in any case (an MTA may have uppercased or lowercased it); `None` for
    /// anything that cannot be one of ours.
    pub fn parse(text: &str) -> Option<VerpTag> {
        let tag = text.trim().to_ascii_lowercase();
        let valid = tag.len() == TAG_LEN
            && tag
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte));
        valid.then_some(VerpTag(tag))
    }

    /// The tag of an issue's message to a reader (`address_key` is `EmailAddress::key`).
    pub fn for_delivery(secret: &Secret, list_id: &str, issue: &str, address_key: &str) -> Self {
        let tag = secret.bounce_tag(list_id, issue, address_key);
        VerpTag::parse(&tag).expect("Secret::bounce_tag makes 16 characters of base32")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for VerpTag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VerpTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    #[error(
        "bounce_address: the part before @ of `{address}` is {length} characters long; with `+` and a {TAG_LEN}-character tag it must stay within {MAX_LOCAL_PART}, so use at most {max} (for example bounces@{domain})",
        max = MAX_LOCAL_PART - 1 - TAG_LEN
    )]
    TooLong {
        address: String,
        length: usize,
        domain: String,
    },
    #[error(
        "bounce_address: `{0}` has a quoted local part; use a plain one like bounces@example.com"
    )]
    Quoted(String),
}

/// Checks that `bounce_address` can carry a tag: for the settings decoder, so that
/// `verp_address` never has to fail.
pub fn check_bounce_address(bounce_address: &EmailAddress) -> Result<(), VerpError> {
    let (local, domain) = split(bounce_address.as_str());
    if local.contains('"') {
        return Err(VerpError::Quoted(bounce_address.to_string()));
    }
    if local.len() + 1 + TAG_LEN > MAX_LOCAL_PART {
        return Err(VerpError::TooLong {
            address: bounce_address.to_string(),
            length: local.len(),
            domain: domain.to_string(),
        });
    }
    Ok(())
}

/// `bounces@example.com` and a tag give `bounces+<tag>@example.com`, the envelope sender of
/// one message.
pub fn verp_address(bounce_address: &EmailAddress, tag: &VerpTag) -> String {
    let (local, domain) = split(bounce_address.as_str());
    format!("{local}+{tag}@{domain}")
}

/// The tag in `address` if it is `bounce_address` with a tag after `+`, in any case and with
/// or without angle brackets (`<BOUNCES+ABC...@Example.COM>` is ours too).
pub fn parse_verp(address: &str, bounce_address: &EmailAddress) -> Option<VerpTag> {
    let address = address.trim();
    let address = address
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(address)
        .trim();
    let (local, domain) = address.rsplit_once('@')?;
    let (bounce_local, bounce_domain) = split(bounce_address.as_str());
    if !domain.eq_ignore_ascii_case(bounce_domain) || local.len() <= bounce_local.len() + 1 {
        return None;
    }
    // `split_at_checked`: what comes back from the internet may have a multi-byte character
    // where our local part ends (found by the `bounce` fuzz target, as a panic).
    let (prefix, tag) = local.split_at_checked(bounce_local.len())?;
    if !prefix.eq_ignore_ascii_case(bounce_local) {
        return None;
    }
    VerpTag::parse(tag.strip_prefix('+')?)
}

/// The local part and the domain; `EmailAddress` guarantees the `@`.
fn split(address: &str) -> (&str, &str) {
    address
        .rsplit_once('@')
        .expect("a valid email address has an @")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_with_a_multibyte_character_where_ours_ends_is_not_ours_and_no_panic() {
        let ours = EmailAddress::parse("bounces@example.com").unwrap();
        for address in [
            "bounce\u{FFFD}+abc@example.com",
            "bounceé@example.com",
            "bounc\u{1F600}x@example.com",
        ] {
            assert_eq!(parse_verp(address, &ours), None, "{address}");
        }
    }

    fn bounces() -> EmailAddress {
        EmailAddress::parse("bounces@example.com").unwrap()
    }

    fn tag() -> VerpTag {
        let secret = Secret::from_passphrase(&"s".repeat(32)).unwrap();
        VerpTag::for_delivery(
            &secret,
            "weekly.example.com",
            "2021-08-23",
            "ada@example.org",
        )
    }

    #[test]
    fn a_verp_address_carries_the_tag_after_a_plus_well_within_64_octets() {
        let address = verp_address(&bounces(), &tag());
        assert_eq!(address, format!("bounces+{}@example.com", tag()));
        assert_eq!(address.split('@').next().unwrap().len(), 8 + 16);
        assert!(EmailAddress::parse(&address).is_ok());
    }

    #[test]
    fn the_tag_comes_back_from_the_address_whatever_its_case_or_brackets() {
        let address = verp_address(&bounces(), &tag());
        assert_eq!(parse_verp(&address, &bounces()), Some(tag()));
        assert_eq!(parse_verp(&address.to_uppercase(), &bounces()), Some(tag()));
        assert_eq!(
            parse_verp(&format!(" <{address}> "), &bounces()),
            Some(tag())
        );
        let capitalised = EmailAddress::parse("Bounces@Example.COM").unwrap();
        assert_eq!(parse_verp(&address, &capitalised), Some(tag()));
    }

    #[test]
    fn addresses_that_are_not_ours_give_no_tag() {
        let tag = tag();
        for address in [
            "bounces@example.com".to_string(),
            format!("bounces+{tag}@example.org"),
            format!("other+{tag}@example.com"),
            format!("bouncesx+{tag}@example.com"),
            format!("bounces-{tag}@example.com"),
            format!("bounces+{tag}x@example.com"),
            "bounces+0123456789abcdef@example.com".to_string(),
            "bounces+@example.com".to_string(),
            "not an address".to_string(),
        ] {
            assert_eq!(parse_verp(&address, &bounces()), None, "{address}");
        }
    }

    #[test]
    fn a_bounce_address_with_its_own_plus_still_works() {
        let bounce_address = EmailAddress::parse("editors+bounces@example.com").unwrap();
        let address = verp_address(&bounce_address, &tag());
        assert_eq!(parse_verp(&address, &bounce_address), Some(tag()));
    }

    #[test]
    fn a_bounce_address_too_long_for_a_tag_is_refused_with_the_limit() {
        assert_eq!(check_bounce_address(&bounces()), Ok(()));
        let long = EmailAddress::parse(&format!("{}@example.com", "b".repeat(48))).unwrap();
        let error = check_bounce_address(&long).unwrap_err();
        assert!(error.to_string().contains("use at most 47"), "{error}");
        let fits = EmailAddress::parse(&format!("{}@example.com", "b".repeat(47))).unwrap();
        assert_eq!(check_bounce_address(&fits), Ok(()));
    }

    #[test]
    fn tags_are_parsed_case_insensitively_and_only_in_the_base32_alphabet() {
        let tag = tag();
        assert_eq!(VerpTag::parse(&tag.as_str().to_uppercase()), Some(tag));
        assert_eq!(
            VerpTag::parse("abcdefghijklmnop"),
            VerpTag::parse("ABCDEFGHIJKLMNOP")
        );
        assert_eq!(VerpTag::parse("abcdefghijklmno1"), None, "1 is not base32");
        assert_eq!(VerpTag::parse("abcdefghijklmno"), None, "too short");
    }
}
