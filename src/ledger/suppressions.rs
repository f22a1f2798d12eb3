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
    /// The subscriber's unsubscribe email (the `mailto:` in `List-Unsubscribe`).
    Mailto,
    /// A hard bounce, or soft bounces in a row: the address does not take mail.
    Bounce,
    /// The reader marked the newsletter as spam (a feedback report).
    Complaint,
    /// Set by the editor (`letterpress subscribers remove`).
    Manual,
    /// Unsubscribed, cleaned or bounced in a list imported from another tool.
    Import,
    /// Written into the ledger by hand or by another tool: kept, shown, never lifted by a
    /// subscriber.
    Other(String),
}

impl Source {
    pub fn as_str(&self) -> &str {
        match self {
            Source::OneClick => "one-click",
            Source::Mailto => "mailto",
            Source::Bounce => "bounce",
            Source::Complaint => "complaint",
            Source::Manual => "manual",
            Source::Import => "import",
            Source::Other(text) => text,
        }
    }

    fn parse(text: String) -> Source {
        match text.as_str() {
            "one-click" => Source::OneClick,
            "mailto" => Source::Mailto,
            "bounce" => Source::Bounce,
            "complaint" => Source::Complaint,
            "manual" => Source::Manual,
            "import" => Source::Import,
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
    /// Whether the subscriber set it themselves with their link, and so may lift it there.
    pub fn is_own(&self) -> bool {
        self.source == Source::OneClick
    }
}

impl Ledger {
    pub fn suppressed(&self) -> Result<HashSet<AddressKey>> {
        self.keys("SELECT email FROM suppressions", [])
    }

    /// Calls `each` with every suppressed key, without collecting them: a list of a million
    /// is read in the memory of one.
    pub fn each_suppressed(&self, mut each: impl FnMut(&str)) -> Result<()> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email FROM suppressions")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            each(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
        }
        Ok(())
    }

    /// Every suppression with its address and reason, the oldest first.
    pub fn suppressions(&self) -> Result<Vec<(AddressKey, Suppression, Option<String>)>> {
        let mut statement = self.connection.prepare(
            "SELECT email, source, created_at, reason FROM suppressions ORDER BY created_at, email",
        )?;
        let mut rows = statement.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push((
                AddressKey::from_stored(row.get(0)?),
                Suppression {
                    source: Source::parse(row.get(1)?),
                    created_at: parse_timestamp(&row.get::<_, String>(2)?)?,
                },
                row.get(3)?,
            ));
        }
        Ok(found)
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

    /// Adds an address to the suppression list, and to its log; returns false if it was
    /// already there (and changes nothing).
    pub fn suppress(
        &mut self,
        email: &AddressKey,
        source: &Source,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let transaction = self.connection.transaction()?;
        let added = insert_suppression(&transaction, email, source, reason, now)?;
        transaction.commit()?;
        Ok(added)
    }

    /// Lifts any suppression of the address (the editor's `subscribers lift`), noting who did
    /// and why in its log. Returns the suppression lifted, if there was one.
    pub fn lift(
        &mut self,
        email: &AddressKey,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Suppression>> {
        let Some(suppression) = self.suppression(email)? else {
            return Ok(None);
        };
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "DELETE FROM suppressions WHERE email = ?1",
            [email.as_str()],
        )?;
        log(
            &transaction,
            email,
            "lifted",
            &suppression.source,
            Some(reason),
            now,
        )?;
        transaction.commit()?;
        Ok(Some(suppression))
    }

    /// Every suppression and lift of the address, oldest first.
    pub fn suppression_history(&self, email: &AddressKey) -> Result<Vec<LogEntry>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT action, source, reason, at FROM suppression_log WHERE email = ?1 ORDER BY id",
        )?;
        let mut rows = statement.query([email.as_str()])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            entries.push(LogEntry {
                lifted: row.get::<_, String>(0)? == "lifted",
                source: Source::parse(row.get(1)?),
                reason: row.get(2)?,
                at: parse_timestamp(&row.get::<_, String>(3)?)?,
            });
        }
        Ok(entries)
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
        let transaction = self.connection.transaction()?;
        let changed = transaction.execute(
            "DELETE FROM suppressions WHERE email = ?1 AND source = ?2",
            params![email.as_str(), Source::OneClick.as_str()],
        )?;
        if changed == 1 {
            let reason = Some("by the subscriber, with their link");
            log(
                &transaction,
                email,
                "lifted",
                &Source::OneClick,
                reason,
                Utc::now(),
            )?;
        }
        transaction.commit()?;
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

    /// Every address the ledger has seen (delivered to, tested, suppressed, or signed up on
    /// the web): anyone who may hold an unsubscribe link, even if they are no longer on the
    /// list.
    pub fn known_addresses(&self) -> Result<Vec<AddressKey>> {
        let mut statement = self.connection.prepare(
            "SELECT email FROM deliveries UNION SELECT email FROM suppressions
             UNION SELECT email FROM test_sends UNION SELECT email FROM signups",
        )?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        let mut keys = Vec::new();
        for row in rows {
            keys.push(AddressKey::from_stored(row?));
        }
        Ok(keys)
    }
}

/// One suppression or lift of an address, as its log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub lifted: bool,
    pub source: Source,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Adds the address to the list and its log, in the caller's transaction, unless it is there
/// already; returns whether it was added.
pub(super) fn insert_suppression(
    connection: &rusqlite::Connection,
    email: &AddressKey,
    source: &Source,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = connection.execute(
        "INSERT OR IGNORE INTO suppressions (email, source, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![email.as_str(), source.as_str(), reason, timestamp(now)],
    )?;
    if changed == 1 {
        log(connection, email, "suppressed", source, reason, now)?;
    }
    Ok(changed == 1)
}

pub(super) fn log(
    connection: &rusqlite::Connection,
    email: &AddressKey,
    action: &str,
    source: &Source,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO suppression_log (email, action, source, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![email.as_str(), action, source.as_str(), reason, timestamp(at)],
    )?;
    Ok(())
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
        let lifted = ledger.lift(&bob, "asked again by phone", now()).unwrap();
        assert_eq!(lifted.map(|s| s.source), Some(Source::Manual));
        let history = ledger.suppression_history(&bob).unwrap();
        assert_eq!(history.len(), 2);
        assert!(!history[0].lifted && history[1].lifted);
        assert_eq!(history[1].reason.as_deref(), Some("asked again by phone"));
        assert_eq!(ledger.suppression_history(&ada).unwrap().len(), 2);
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
