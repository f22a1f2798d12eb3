//! The subscriber list: one YAML list item per subscriber.

use std::collections::HashMap;
use std::io::BufRead;

use chrono_tz::Tz;

use crate::decode::Decoder;
use crate::diagnostic::FieldPath;
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::newsletter::parse_timezone;
use crate::model::text::OneLine;
use crate::yaml::{self, Mark, Node, TopLevel};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberStatus {
    Active,
    Unsubscribed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub email: EmailAddress,
    pub name: Option<OneLine>,
    pub status: SubscriberStatus,
    pub timezone: Option<Tz>,
    pub tags: Vec<OneLine>,
}

impl Subscriber {
    pub fn is_active(&self) -> bool {
        self.status == SubscriberStatus::Active
    }
}

fn parse_status(text: &str) -> Result<SubscriberStatus, String> {
    match text.trim() {
        "active" => Ok(SubscriberStatus::Active),
        "unsubscribed" => Ok(SubscriberStatus::Unsubscribed),
        other => Err(format!(
            "`{other}` is not a status; use `active` or `unsubscribed`"
        )),
    }
}

fn parse_name(text: &str) -> Result<OneLine, String> {
    OneLine::parse(text).map_err(|error| format!("the name {error}"))
}

/// Decodes the whole list item by item, reporting every bad entry and every duplicate. Holds
/// every subscriber, and every key to find duplicates; a send reads the list as a stream
/// instead (`workspace::Workspace::check_subscribers`, `delivery::audience`).
pub fn decode_list(decoder: &mut Decoder, source: &str) -> Option<Vec<Subscriber>> {
    decode_list_from(decoder, source.as_bytes())
}

/// Like [`decode_list`], reading the list as it decodes it (from `source::open`), so that the
/// file is never held in memory whole.
pub fn decode_list_from(decoder: &mut Decoder, input: impl BufRead) -> Option<Vec<Subscriber>> {
    let mut reader = ListReader::new(decoder, input)?;
    let mut subscribers = Vec::new();
    let mut duplicates = Duplicates::default();
    while let Some(entry) = reader.next_entry(decoder) {
        let Some(subscriber) = entry.subscriber else {
            continue;
        };
        if duplicates.check(decoder, &entry.place, &subscriber) {
            subscribers.push(subscriber);
        }
    }
    (!decoder.has_errors()).then_some(subscribers)
}

/// Where an entry is in the file: its index, and where its address is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub index: usize,
    pub email: Mark,
}

/// One entry of the list as it was read: where it is, and the subscriber, or `None` when it
/// did not decode (its problems are with the decoder).
#[derive(Debug, Clone)]
pub struct ListEntry {
    pub place: Place,
    pub subscriber: Option<Subscriber>,
}

/// The list read one entry at a time, each decoded as it comes, so that a list of a million
/// never exists in memory whole.
pub struct ListReader<R> {
    items: Option<Box<yaml::SeqItems<R>>>,
    index: usize,
}

impl<R: BufRead> ListReader<R> {
    /// Starts reading the list; a file that is not a list (or not YAML) is reported to the
    /// decoder and gives `None`.
    pub fn new(decoder: &mut Decoder, input: R) -> Option<ListReader<R>> {
        let items = match yaml::stream_seq(input) {
            Ok(TopLevel::Seq(items)) => Some(items),
            Ok(TopLevel::Empty) => None,
            Ok(TopLevel::Other(node)) => {
                decoder.error(
                    node.mark,
                    &FieldPath::Root,
                    format!(
                        "expected a list of subscribers (`- email: ...`), found {}",
                        node.kind()
                    ),
                );
                return None;
            }
            Err(error) => {
                decoder.read_error(error);
                return None;
            }
        };
        Some(ListReader { items, index: 0 })
    }

    /// The next entry, or `None` at the end of the list or at a problem that ends the
    /// reading (reported to the decoder).
    pub fn next_entry(&mut self, decoder: &mut Decoder) -> Option<ListEntry> {
        let item = match self.items.as_mut()?.next()? {
            Ok(document) => {
                decoder.set_comments(document.comments);
                document.root
            }
            Err(error) => {
                decoder.read_error(error);
                self.items = None;
                return None;
            }
        };
        let index = self.index;
        self.index += 1;
        let subscriber = decode_subscriber(decoder, &item, &FieldPath::Root.index(index));
        Some(ListEntry {
            place: Place {
                index,
                email: email_mark(&item),
            },
            subscriber,
        })
    }
}

/// Finds addresses listed twice, naming the first: every key seen so far is kept.
#[derive(Default)]
pub struct Duplicates {
    seen: HashMap<AddressKey, Place>,
}

impl Duplicates {
    /// Whether `subscriber` is the first with their address; if not, the duplicate is
    /// reported at `place`.
    pub fn check(&mut self, decoder: &mut Decoder, place: &Place, subscriber: &Subscriber) -> bool {
        match self.seen.entry(subscriber.email.key()) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = first.get();
                decoder.error(
                    place.email,
                    &FieldPath::Root.index(place.index).key("email"),
                    format!(
                        "`{}` is already on the list as [{}] (line {}); addresses are compared without case",
                        subscriber.email, first.index, first.email.line
                    ),
                );
                false
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(*place);
                true
            }
        }
    }
}

fn email_mark(item: &Node) -> Mark {
    match &item.value {
        yaml::Value::Map(entries) => entries
            .iter()
            .find(|(key, _)| matches!(&key.value, yaml::Value::Scalar(k) if k == "email"))
            .map_or(item.mark, |(_, value)| value.mark),
        _ => item.mark,
    }
}

fn decode_subscriber(decoder: &mut Decoder, node: &Node, path: &FieldPath) -> Option<Subscriber> {
    let mut fields = decoder.fields(node, path)?;
    let email = decoder.required(&mut fields, path, "email", EmailAddress::parse);
    if let Some(address) = email
        .as_ref()
        .filter(|address| address.has_international_local_part())
    {
        decoder.warning(
            email_mark(node),
            &path.key("email"),
            format!(
                "`{address}` has a non-ASCII local part: only a relay that offers SMTPUTF8 (RFC 6531) can deliver to it; through any other it stays deferred"
            ),
        );
    }
    let name = decoder.optional_text(&mut fields, path, "name", parse_name);
    let status = decoder.optional(&mut fields, path, "status", parse_status);
    let timezone = decoder.optional(&mut fields, path, "timezone", parse_timezone);
    let tags = match fields.get("tags") {
        None => Some(Vec::new()),
        Some(node) => {
            let tags_path = path.key("tags");
            decoder.list(node, &tags_path).and_then(|items| {
                let tags: Vec<Option<OneLine>> = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        decoder.parse_text(item, &tags_path.index(index), OneLine::parse)
                    })
                    .collect();
                tags.into_iter().collect()
            })
        }
    };
    fields.finish(decoder, path);
    Some(Subscriber {
        email: email?,
        name: name.ok()?,
        status: status.ok()?.unwrap_or(SubscriberStatus::Active),
        timezone: timezone.ok()?,
        tags: tags?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_text(source: &str) -> (Option<Vec<Subscriber>>, Vec<String>) {
        let mut decoder = Decoder::new("subscribers.yaml");
        let list = decode_list(&mut decoder, source);
        let messages = decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        (list, messages)
    }

    #[test]
    fn a_list_decodes_with_defaults() {
        let (list, messages) = decode_text(
            "- email: ada@example.com\n  name: Ada\n- email: bob@example.com\n  status: unsubscribed\n  tags: [research]\n",
        );
        assert!(messages.is_empty(), "{messages:?}");
        let list = list.unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].is_active());
        assert!(!list[1].is_active());
        assert_eq!(list[1].tags[0].as_str(), "research");
    }

    #[test]
    fn bad_addresses_duplicates_and_multiline_names_name_the_entry() {
        let source = "- email: ada@example.com\n- email: bob@\n- email: ADA@example.com\n- email: eve@example.com\n  name: \"Eve\\r\\nBcc: all@example.com\"\n";
        let (list, messages) = decode_text(source);
        assert!(list.is_none());
        assert_eq!(
            messages,
            [
                "subscribers.yaml:2:10: [1].email: `bob@` is not a valid email address",
                "subscribers.yaml:3:10: [2].email: `ADA@example.com` is already on the list as [0] (line 1); addresses are compared without case",
                "subscribers.yaml:5:9: [3].name: the name must be one line (found a line break)",
            ]
        );
    }

    #[test]
    fn an_empty_file_is_an_empty_list_and_a_mapping_is_an_error() {
        assert_eq!(decode_text("").0.unwrap().len(), 0);
        let (list, messages) = decode_text("email: a@example.com\n");
        assert!(list.is_none());
        assert_eq!(
            messages,
            [
                "subscribers.yaml:1:1: expected a list of subscribers (`- email: ...`), found a mapping"
            ]
        );
    }
}
