//! `suppressions`: addresses that never get mail, each with why and since when.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, Result, parse_timestamp, timestamp};
use crate::model::address::AddressKey;

/// Why an address is suppressed. Only `OneClick` is the subscriber's own doing, and only it
/// may be lifted by them again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The subscriber's own unsubscribe link: the one-click POST from their mail app, or the
    /// button on the unsubscribe page.
    OneClick,
    /// Set by the editor.
    Manual,
    /// Written into the ledger by hand or by another tool: kept, shown, never lifted by a
    /// subscriber.
    Other(String),
}

impl Source {
    pub fn as_str(&self) -> &str {
        match self {
            Source::OneClick => "one-click",
            Source::Manual => "manual",
            Source::Other(text) => text,
        }
    }

    fn parse(text: String) -> Source {
        match text.as_str() {
            "one-click" => Source::OneClick,
            "manual" => Source::Manual,
            _ => Source::Other(text),
        }
    }
}

/// Why an address gets no mail, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub source: Source,
    pub created_at: DateTime<Utc>,
}

impl Suppression {
    /// Whether the subscriber set it themselves, and so may lift it.
    pub fn is_own(&self) -> bool {
        self.source == Source::OneClick
    }
}

impl Ledger {
    pub fn suppressed(&self) -> Result<HashSet<AddressKey>> {
        self.keys("SELECT email FROM suppressions", [])
    }

    /// Addresses suppressed at or after `since`: a send checks these before each batch, so a
    /// reader who unsubscribes while their issue is going out does not get it.
    pub fn suppressed_since(&self, since: DateTime<Utc>) -> Result<HashSet<AddressKey>> {
        self.keys(
            "SELECT email FROM suppressions WHERE created_at >= ?1",
            [timestamp(since)],
        )
    }

    fn keys(&self, query: &str, parameters: impl rusqlite::Params) -> Result<HashSet<AddressKey>> {
        let mut statement = self.connection.prepare_cached(query)?;
        let rows = statement.query_map(parameters, |row| row.get::<_, String>(0))?;
        let mut keys = HashSet::new();
        for row in rows {
            keys.insert(AddressKey::from_stored(row?));
        }
        Ok(keys)
    }

    /// Adds an address to the suppression list; returns false if it was already there.
    pub fn suppress(
        &mut self,
        email: &AddressKey,
        source: &Source,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let changed = self.connection.execute(
            "INSERT OR IGNORE INTO suppressions (email, source, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![email.as_str(), source.as_str(), reason, timestamp(now)],
        )?;
        Ok(changed == 1)
    }

    /// The address's suppression, if it has one.
    pub fn suppression(&self, email: &AddressKey) -> Result<Option<Suppression>> {
        let found = self
            .connection
            .query_row(
                "SELECT source, created_at FROM suppressions WHERE email = ?1",
                [email.as_str()],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(match found {
            None => None,
            Some((source, created_at)) => Some(Suppression {
                source: Source::parse(source),
                created_at: parse_timestamp(&created_at)?,
            }),
        })
    }

    /// Lifts the address's suppression only if the subscriber caused it (an unsubscribe
    /// link); one set by the editor or after a bounce stays. Returns whether one was lifted.
    pub fn unsuppress_own(&mut self, email: &AddressKey) -> Result<bool> {
        let changed = self.connection.execute(
            "DELETE FROM suppressions WHERE email = ?1 AND source = ?2",
            params![email.as_str(), Source::OneClick.as_str()],
        )?;
        Ok(changed == 1)
    }

    /// How many addresses are suppressed, per source, the most common first.
    pub fn suppression_counts(&self) -> Result<Vec<(Source, u64)>> {
        let mut statement = self.connection.prepare(
            "SELECT source, COUNT(*) FROM suppressions GROUP BY source ORDER BY COUNT(*) DESC, source",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((Source::parse(row.get(0)?), row.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every address the ledger has seen (delivered to, tested, or suppressed): anyone who may
    /// hold an unsubscribe link, even if they are no longer on the list.
    pub fn known_addresses(&self) -> Result<Vec<AddressKey>> {
        let mut statement = self.connection.prepare(
            "SELECT email FROM deliveries UNION SELECT email FROM suppressions
             UNION SELECT email FROM test_sends",
        )?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut keys = Vec::new();
        for row in rows {
            keys.push(AddressKey::from_stored(row?));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, key, now, open};
    use super::super::{LEDGER_FILE, ProofOutcome};
    use super::*;

    #[test]
    fn a_subscriber_lifts_only_the_suppression_they_caused() {
        let (_dir, mut ledger) = open();
        let (ada, bob) = (key("ada@x.example"), key("bob@x.example"));
        ledger
            .suppress(&ada, &Source::OneClick, None, now())
            .unwrap();
        ledger
            .suppress(&bob, &Source::Manual, Some("asked by phone"), now())
            .unwrap();
        assert!(ledger.unsuppress_own(&ada).unwrap());
        assert!(!ledger.unsuppress_own(&bob).unwrap());
        assert!(!ledger.unsuppress_own(&ada).unwrap(), "already lifted");
        assert_eq!(ledger.suppression(&ada).unwrap(), None);
        let suppression = ledger.suppression(&bob).unwrap().unwrap();
        assert_eq!(
            (suppression.source.clone(), suppression.is_own()),
            (Source::Manual, false)
        );
        assert_eq!(ledger.suppression_counts().unwrap(), [(Source::Manual, 1)]);
    }

    #[test]
    fn a_source_written_by_another_tool_is_kept_and_never_lifted_by_the_subscriber() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@x.example");
        let other = Source::Other("crm-import".into());
        ledger.suppress(&ada, &other, None, now()).unwrap();
        assert!(!ledger.unsuppress_own(&ada).unwrap());
        assert_eq!(ledger.suppression(&ada).unwrap().unwrap().source, other);
    }

    #[test]
    fn known_addresses_include_the_delivered_the_tested_and_the_suppressed() {
        let (_dir, mut ledger) = open();
        ledger
            .enqueue(&issue("i"), [(&key("a@x.example"), "A@x.example")], now())
            .unwrap();
        ledger
            .log_test_send(
                &issue("i"),
                &key("editor@x.example"),
                ProofOutcome::Sent,
                None,
                now(),
            )
            .unwrap();
        ledger
            .suppress(&key("gone@x.example"), &Source::Manual, None, now())
            .unwrap();
        let mut known = ledger.known_addresses().unwrap();
        known.sort();
        assert_eq!(
            known,
            [
                key("a@x.example"),
                key("editor@x.example"),
                key("gone@x.example")
            ]
        );
    }

    #[test]
    fn a_suppression_waits_for_a_send_holding_the_write_lock_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        let sender = Ledger::open(&path).unwrap();
        let mut server = Ledger::open(&path).unwrap();
        sender.connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            sender.connection.execute_batch("COMMIT").unwrap();
        });
        let started = std::time::Instant::now();
        let ada = key("ada@x.example");
        assert!(ledger_suppress(&mut server, &ada));
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        release.join().unwrap();
        assert!(server.suppression(&ada).unwrap().is_some());
    }

    fn ledger_suppress(ledger: &mut Ledger, email: &AddressKey) -> bool {
        ledger
            .suppress(email, &Source::OneClick, None, now())
            .unwrap()
    }
}
