//! Who an unsubscribe token belongs to. A token carries no address (it is an HMAC of one), so
//! the server recomputes the token of every address that may hold a link (the subscriber
//! list, and everyone the ledger has mailed, tested or suppressed, so that someone since
//! removed from the list can still leave) and looks the presented one up.

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use crate::model::address::AddressKey;
use crate::model::subscriber::{Subscriber, SubscriberStatus};
use crate::secret::Secret;

/// Someone a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The address as the ledger keys it.
    pub key: AddressKey,
    /// How the subscriber list has them (the ledger may still suppress them, or have them
    /// as a web sign-up).
    pub listing: Listing,
}

/// How the subscriber list has an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Active,
    /// Marked `status: unsubscribed`: the editor's word, which the sign-up form respects.
    Unsubscribed,
    /// Not in the file (a web sign-up, or someone since removed).
    Absent,
}

impl Holder {
    /// Whether the list has them as an active subscriber.
    pub fn on_list(&self) -> bool {
        self.listing == Listing::Active
    }
}

struct Entry {
    token: String,
    holder: Holder,
}

pub struct Directory {
    by_token: HashMap<String, Entry>,
}

/// Compared against when no token matched, so a failed lookup does the same work as a
/// successful one.
const NO_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAA";

impl Directory {
    /// The tokens of the list's subscribers and of every other address the ledger knows.
    pub fn build(
        secret: &Secret,
        list_id: &str,
        subscribers: &[Subscriber],
        known_addresses: impl IntoIterator<Item = AddressKey>,
    ) -> Directory {
        let mut directory = Directory {
            by_token: HashMap::with_capacity(subscribers.len()),
        };
        for subscriber in subscribers {
            let listing = match subscriber.status {
                SubscriberStatus::Active => Listing::Active,
                SubscriberStatus::Unsubscribed => Listing::Unsubscribed,
            };
            directory.add(secret, list_id, subscriber.email.key(), listing);
        }
        for key in known_addresses {
            directory.add(secret, list_id, key, Listing::Absent);
        }
        directory
    }

    /// A directory with nobody in it yet.
    pub fn empty() -> Directory {
        Directory {
            by_token: HashMap::new(),
        }
    }

    /// Adds the token of `key`, unless it is there already.
    pub fn add(&mut self, secret: &Secret, list_id: &str, key: AddressKey, listing: Listing) {
        let token = secret.unsubscribe_token(list_id, &key);
        self.by_token.entry(token.clone()).or_insert(Entry {
            token,
            holder: Holder { key, listing },
        });
    }

    /// The holder of `presented`, if it is a token this newsletter issued. Whatever is wrong
    /// with a token (unknown, forged, cut short, from another newsletter, not a token at
    /// all), the answer is the same `None` after the same steps.
    pub fn find(&self, presented: &str) -> Option<&Holder> {
        let entry = self.by_token.get(presented);
        // The hash map found the entry by comparing strings the ordinary way; deciding on a
        // constant-time comparison keeps the time of that decision from depending on how much
        // of a forged token was right.
        let stored = entry.map_or(NO_TOKEN, |entry| entry.token.as_str());
        let equal: bool = stored.as_bytes().ct_eq(presented.as_bytes()).into();
        match entry {
            Some(entry) if equal => Some(&entry.holder),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The token in an unsubscribe URL's path, exactly as sent: not percent-decoded, since a
/// real token never needs it, and a path that does not decode must fail like any other.
pub fn token_in_path(path: &str) -> &str {
    path.strip_prefix("/unsubscribe/").unwrap_or_default()
}

/// An address as a page may show it to whoever holds its link: enough to recognise, not
/// enough to read off (`ada@example.com` is `a***@e***.com`).
pub fn mask_address(key: &str) -> String {
    let (local, domain) = key.rsplit_once('@').unwrap_or((key, ""));
    let first = |text: &str| text.chars().next().map(String::from).unwrap_or_default();
    let (host, top_level) = match domain.rsplit_once('.') {
        Some((host, top_level)) => (host, format!(".{top_level}")),
        None => (domain, String::new()),
    };
    format!("{}***@{}***{top_level}", first(local), first(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribers(yaml: &str) -> Vec<Subscriber> {
        let mut decoder = crate::decode::Decoder::new("subscribers.yaml");
        crate::model::subscriber::decode_list(&mut decoder, yaml).unwrap()
    }

    #[test]
    fn a_token_finds_its_subscriber_and_nothing_else_finds_anyone() {
        let secret = Secret::from_passphrase(&"s".repeat(32)).unwrap();
        let list = subscribers(
            "- email: Ada@Example.com\n- email: bob@example.org\n  status: unsubscribed\n",
        );
        let directory = Directory::build(
            &secret,
            "weekly.example.com",
            &list,
            [AddressKey::of("gone@example.net").unwrap()],
        );
        assert_eq!(directory.len(), 3);
        let key = |address| AddressKey::of(address).unwrap();
        let ada = secret.unsubscribe_token("weekly.example.com", &key("ada@example.com"));
        assert_eq!(
            directory.find(&ada),
            Some(&Holder {
                key: key("ada@example.com"),
                listing: Listing::Active
            })
        );
        let gone = secret.unsubscribe_token("weekly.example.com", &key("gone@example.net"));
        assert_eq!(
            directory.find(&gone).map(|holder| holder.listing),
            Some(Listing::Absent)
        );
        let bob = secret.unsubscribe_token("weekly.example.com", &key("bob@example.org"));
        assert_eq!(
            directory.find(&bob).map(|holder| holder.listing),
            Some(Listing::Unsubscribed)
        );

        let other_list = secret.unsubscribe_token("other.example.com", &key("ada@example.com"));
        let other_secret = Secret::from_passphrase(&"t".repeat(32))
            .unwrap()
            .unsubscribe_token("weekly.example.com", &key("ada@example.com"));
        for bad in [
            other_list.as_str(),
            other_secret.as_str(),
            &ada[..21],
            &format!("{ada}A"),
            NO_TOKEN,
            "",
            "%00<script>",
        ] {
            assert_eq!(directory.find(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_are_masked_to_their_first_letters() {
        assert_eq!(mask_address("ada@example.com"), "a***@e***.com");
        assert_eq!(mask_address("li@mail.example.org"), "l***@m***.org");
        assert_eq!(mask_address("root@localhost"), "r***@l***");
        assert_eq!(mask_address("élodie@été.fr"), "é***@é***.fr");
    }
}
