//! Who gets an issue. One rule, in one place, for a send, a dry run, the scheduler and
//! `subscribers export`:
//!
//! (the active entries of the subscriber list) + (the confirmed web sign-ups)
//! − (the entries marked unsubscribed, and every suppressed address)
//!
//! with addresses compared as keys (without case), so that someone both in the file and
//! signed up on the web is one reader, named as the file names them. The file's readers come
//! first, in its order, then the web's, in key order.
//!
//! Read as a stream, so that a million readers never exist in memory at once: the file is
//! read entry by entry (it was checked whole before, and a reading that finds it changed is
//! an error), the sign-ups a page at a time, and the suppressed and signed-up addresses are
//! held as 8-byte hashes (`KeyHashes`), a match confirmed against the ledger.

use std::collections::{HashSet, VecDeque};
use std::ops::ControlFlow;

use crate::ledger::{Ledger, LedgerError, Signup};
use crate::model::address::{AddressKey, EmailAddress, KeyHashes, key_hash};
use crate::model::subscriber::SubscriberStatus;
use crate::workspace::{ListChanged, SubscriberList};

/// Someone who gets the issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub key: AddressKey,
    pub email: EmailAddress,
    pub name: Option<String>,
    pub source: ReaderSource,
}

/// Where a reader is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderSource {
    /// The subscriber list (perhaps also signed up on the web).
    File,
    /// Only a confirmed web sign-up.
    Web,
}

#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error(transparent)]
    Changed(#[from] ListChanged),
    #[error("cannot read the ledger")]
    Ledger(#[from] LedgerError),
}

/// How many sign-ups are read from the ledger at a time.
const PAGE: usize = 1000;

/// The addresses the audience is checked against, held small.
pub struct Exclusions<'l> {
    ledger: Option<&'l Ledger>,
    suppressed: KeyHashes,
    signed_up: KeyHashes,
}

impl<'l> Exclusions<'l> {
    /// Reads the suppressed and signed-up addresses from the ledger (none without one).
    pub fn read(ledger: Option<&'l Ledger>) -> Result<Exclusions<'l>, LedgerError> {
        let (mut suppressed, mut signed_up) = (Vec::new(), Vec::new());
        if let Some(ledger) = ledger {
            ledger.each_suppressed(|key| suppressed.push(key_hash(key)))?;
            ledger.each_confirmed_signup(|key| signed_up.push(key_hash(key)))?;
        }
        Ok(Exclusions {
            ledger,
            suppressed: KeyHashes::from_hashes(suppressed),
            signed_up: KeyHashes::from_hashes(signed_up),
        })
    }

    /// Whether the address is suppressed (a hash match confirmed in the ledger).
    pub fn is_suppressed(&self, key: &AddressKey) -> Result<bool, LedgerError> {
        match self.ledger {
            Some(ledger) if self.suppressed.might_contain(key) => {
                Ok(ledger.suppression(key)?.is_some())
            }
            _ => Ok(false),
        }
    }

    fn is_signed_up(&self, key: &AddressKey) -> Result<bool, LedgerError> {
        match self.ledger {
            Some(ledger) if self.signed_up.might_contain(key) => ledger.is_confirmed_signup(key),
            _ => Ok(false),
        }
    }
}

/// Calls `each` with every reader of the issue, in order; stops early when it says so.
pub fn for_each_reader(
    list: &SubscriberList,
    ledger: Option<&Ledger>,
    mut each: impl FnMut(Reader) -> ControlFlow<()>,
) -> Result<(), AudienceError> {
    let exclusions = Exclusions::read(ledger)?;
    // Confirmed sign-ups met in the file: the file has them already. Usually few; at most
    // the sign-ups themselves.
    let mut in_file: HashSet<AddressKey> = HashSet::new();
    let mut failure: Option<LedgerError> = None;
    let mut stopped = false;
    list.entries(|entry, _| {
        let Some(subscriber) = &entry.subscriber else {
            return ControlFlow::Continue(());
        };
        let key = subscriber.email.key();
        let verdict = (|| {
            if exclusions.is_signed_up(&key)? {
                in_file.insert(key.clone());
            }
            Ok::<_, LedgerError>(
                subscriber.status == SubscriberStatus::Active && !exclusions.is_suppressed(&key)?,
            )
        })();
        match verdict {
            Ok(true) => {
                let reader = Reader {
                    key,
                    email: subscriber.email.clone(),
                    name: subscriber
                        .name
                        .as_ref()
                        .map(|name| name.as_str().to_string()),
                    source: ReaderSource::File,
                };
                if each(reader).is_break() {
                    stopped = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            Ok(false) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    let Some(ledger) = ledger else {
        return Ok(());
    };
    if stopped || exclusions.signed_up.is_empty() {
        return Ok(());
    }
    let mut page: VecDeque<Signup> = VecDeque::new();
    let mut after: Option<AddressKey> = None;
    loop {
        if page.is_empty() {
            page = ledger.confirmed_signups_after(after.as_ref(), PAGE)?.into();
            match page.back() {
                Some(last) => after = Some(last.email.clone()),
                None => return Ok(()),
            }
        }
        let Some(signup) = page.pop_front() else {
            continue;
        };
        if in_file.contains(&signup.email) || exclusions.is_suppressed(&signup.email)? {
            continue;
        }
        // Only a valid address is ever signed up; one that no longer parses (a ledger edited
        // by hand) is left out rather than stopping the send.
        let Ok(email) = EmailAddress::parse(&signup.address) else {
            tracing::warn!(
                "the sign-up of `{}` has an invalid address; left out",
                signup.address
            );
            continue;
        };
        let reader = Reader {
            key: signup.email,
            email,
            name: signup.name,
            source: ReaderSource::Web,
        };
        if each(reader).is_break() {
            return Ok(());
        }
    }
}

/// Every reader of the issue, collected: for a send, which holds them all anyway.
pub fn audience(
    list: &SubscriberList,
    ledger: Option<&Ledger>,
) -> Result<Vec<Reader>, AudienceError> {
    let mut readers = Vec::new();
    for_each_reader(list, ledger, |reader| {
        readers.push(reader);
        ControlFlow::Continue(())
    })?;
    Ok(readers)
}

/// The reader with this address, if the issue would go to them.
pub fn find_reader(
    list: &SubscriberList,
    ledger: Option<&Ledger>,
    key: &AddressKey,
) -> Result<Option<Reader>, AudienceError> {
    let mut found = None;
    for_each_reader(list, ledger, |reader| {
        if &reader.key == key {
            found = Some(reader);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Consent, LEDGER_FILE, Source};
    use crate::workspace::Workspace;

    fn list(dir: &std::path::Path, yaml: &str) -> SubscriberList {
        std::fs::write(
            dir.join("newsletter.yaml"),
            "name: Weekly\nfrom: w@example.com\npostal_address: 1 Street\nschedule:\n  day: monday\n  time: \"09:00\"\n  timezone: UTC\n",
        )
        .unwrap();
        std::fs::write(dir.join("subscribers.yaml"), yaml).unwrap();
        let workspace = Workspace::new(dir);
        let newsletter = workspace.load_newsletter().unwrap().value;
        workspace.check_subscribers(&newsletter).unwrap().value
    }

    fn confirm(ledger: &mut Ledger, address: &str, name: Option<&str>) {
        let key = AddressKey::of(address).unwrap();
        let now = chrono::Utc::now();
        let request = crate::ledger::SignupRequest {
            email: &key,
            address,
            name,
            consent: Consent {
                at: now,
                ip: None,
                agent: None,
            },
        };
        ledger.request_signup(&request, now).unwrap();
        ledger
            .confirm_signup(
                &key,
                address,
                now,
                &Consent {
                    at: now,
                    ip: None,
                    agent: None,
                },
            )
            .unwrap();
    }

    #[test]
    fn the_file_then_the_web_once_each_without_the_unsubscribed_and_the_suppressed() {
        let dir = tempfile::tempdir().unwrap();
        let list = list(
            dir.path(),
            "- email: b@example.com\n  name: Bee\n- email: Gone@Example.com\n- email: a@example.com\n- email: left@example.com\n  status: unsubscribed\n",
        );
        let mut ledger = Ledger::open(&dir.path().join(LEDGER_FILE)).unwrap();
        ledger
            .suppress(
                &AddressKey::of("gone@example.com").unwrap(),
                &Source::OneClick,
                None,
                chrono::Utc::now(),
            )
            .unwrap();
        confirm(&mut ledger, "B@example.com", Some("Web Bee"));
        confirm(&mut ledger, "web@example.org", Some("Wendy"));
        confirm(&mut ledger, "left@example.com", None);
        confirm(&mut ledger, "z@example.org", None);
        ledger
            .suppress(
                &AddressKey::of("z@example.org").unwrap(),
                &Source::Manual,
                None,
                chrono::Utc::now(),
            )
            .unwrap();
        let who: Vec<(String, Option<String>, ReaderSource)> = audience(&list, Some(&ledger))
            .unwrap()
            .into_iter()
            .map(|reader| (reader.email.to_string(), reader.name, reader.source))
            .collect();
        assert_eq!(
            who,
            [
                (
                    "b@example.com".into(),
                    Some("Bee".into()),
                    ReaderSource::File
                ),
                ("a@example.com".into(), None, ReaderSource::File),
                (
                    "web@example.org".into(),
                    Some("Wendy".into()),
                    ReaderSource::Web
                ),
            ]
        );
        let found = find_reader(
            &list,
            Some(&ledger),
            &AddressKey::of("web@example.org").unwrap(),
        )
        .unwrap();
        assert_eq!(found.map(|reader| reader.source), Some(ReaderSource::Web));
        // Without a ledger, the file alone.
        assert_eq!(audience(&list, None).unwrap().len(), 3);
    }

    #[test]
    fn a_list_edited_after_its_check_is_an_error_not_a_send() {
        let dir = tempfile::tempdir().unwrap();
        let list = list(dir.path(), "- email: a@example.com\n");
        std::fs::write(
            dir.path().join("subscribers.yaml"),
            "- email: a@example.com\n- email: b@example.com\n",
        )
        .unwrap();
        let error = audience(&list, None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("subscribers.yaml changed while it was being read"),
            "{error}"
        );
        std::fs::write(dir.path().join("subscribers.yaml"), "- email: a@\n").unwrap();
        assert!(audience(&list, None).is_err());
    }
}
