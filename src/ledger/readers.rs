//! What the ledger knows of one reader across its tables (`subscribers show`), the scans a
//! streamed audience checks against without collecting them, and a consistent copy of the
//! whole ledger while other processes write to it (`letterpress backup`).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::deliveries::stored_issue;
use super::{Ledger, Result, State, Via, parse_timestamp};
use crate::model::address::AddressKey;
use crate::model::issue::IssueId;

/// One issue as it went to one reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderIssue {
    pub issue: IssueId,
    pub state: State,
    pub via: Option<Via>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_reply: Option<String>,
}

impl Ledger {
    /// Every issue the reader was queued for, the oldest first.
    pub fn deliveries_of(&self, email: &AddressKey) -> Result<Vec<ReaderIssue>> {
        let mut statement = self.connection.prepare(
            "SELECT issue, state, via, sent_at, last_reply FROM deliveries WHERE email = ?1
             ORDER BY created_at, issue",
        )?;
        let mut rows = statement.query([email.as_str()])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let sent_at: Option<String> = row.get(3)?;
            found.push(ReaderIssue {
                issue: stored_issue(row.get(0)?)?,
                state: State::parse(&row.get::<_, String>(1)?)?,
                via: match row.get::<_, Option<String>>(2)?.as_deref() {
                    Some("relay") => Some(Via::Relay),
                    Some("outbox") => Some(Via::Outbox),
                    _ => None,
                },
                sent_at: sent_at.as_deref().map(parse_timestamp).transpose()?,
                last_reply: row.get(4)?,
            });
        }
        Ok(found)
    }

    /// Calls `each` with the key of every reader of `issue` in one of `states`, without
    /// collecting them.
    pub fn each_delivery_in(
        &self,
        issue: &IssueId,
        states: &[State],
        mut each: impl FnMut(&str),
    ) -> Result<()> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email, state FROM deliveries WHERE issue = ?1")?;
        let mut rows = statement.query([issue.as_str()])?;
        while let Some(row) = rows.next()? {
            let state = State::parse(row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?)?;
            if states.contains(&state) {
                each(row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?);
            }
        }
        Ok(())
    }

    /// Copies the ledger to `path` with SQLite's online backup, page by page, while a send or
    /// `serve` may be writing: the copy is the ledger as of one moment, never a torn file
    /// (copying the file, or its WAL separately, can be). `path` must not exist yet.
    pub fn backup_to(&self, path: &Path) -> Result<()> {
        let mut copy = rusqlite::Connection::open(path)?;
        {
            let backup = rusqlite::backup::Backup::new(&self.connection, &mut copy)?;
            // A few hundred pages at a time, with a pause, so a writer is held up briefly;
            // a write by another connection in between makes SQLite start the copy again.
            backup.run_to_completion(256, std::time::Duration::from_millis(5), None)?;
        }
        // A copy that is one file, readable by any SQLite, without a WAL beside it.
        copy.pragma_update(None, "journal_mode", "DELETE")?;
        let check: String = copy.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(super::LedgerError::Corrupt(format!(
                "a copy that fails SQLite's check ({check})"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, key, now, open};
    use super::super::{Outcome, Source};
    use super::*;

    #[test]
    fn a_readers_issues_come_back_with_their_state() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@x.example");
        ledger
            .enqueue(&issue("2021-08-23"), [(&ada, "ada@x.example")], now())
            .unwrap();
        ledger
            .mark_sending(
                &issue("2021-08-23"),
                &[super::super::Claim {
                    email: ada.clone(),
                    message_id: "<m@x.example>".into(),
                    verp_tag: None,
                }],
                now(),
            )
            .unwrap();
        ledger
            .record(
                &issue("2021-08-23"),
                &[Outcome {
                    email: ada.clone(),
                    state: State::Sent,
                    reply: Some("250 ok".into()),
                    hard_bounce: false,
                }],
                Via::Relay,
                now(),
            )
            .unwrap();
        let got = ledger.deliveries_of(&ada).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].state, got[0].via, got[0].sent_at),
            (State::Sent, Some(Via::Relay), Some(now()))
        );
        let mut sent = Vec::new();
        ledger
            .each_delivery_in(&issue("2021-08-23"), &[State::Sent], |key| {
                sent.push(key.to_string())
            })
            .unwrap();
        assert_eq!(sent, ["ada@x.example"]);
    }

    #[test]
    fn a_backup_is_a_whole_ledger_in_one_file() {
        let (dir, mut ledger) = open();
        ledger
            .suppress(&key("gone@x.example"), &Source::Manual, None, now())
            .unwrap();
        let copy = dir.path().join("backup.sqlite3");
        ledger.backup_to(&copy).unwrap();
        assert!(!dir.path().join("backup.sqlite3-wal").exists());
        let restored = Ledger::open(&copy).unwrap();
        assert!(
            restored
                .suppression(&key("gone@x.example"))
                .unwrap()
                .is_some()
        );
    }
}
