//! `meta`: facts about the newsletter fixed once and kept, like the key its links are signed
//! with; and `issue_snapshots`: each issue's source as it was when it first went out.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, Result, timestamp};
use crate::model::issue::IssueId;

const LIST_KEY: &str = "list_key";

impl Ledger {
    /// The key unsubscribe tokens and Message-IDs are signed with: the newsletter's list id
    /// as it was when the ledger first needed one (`current` the first time), and that same
    /// value forever after, so that renaming the newsletter or moving its site breaks no
    /// link already sent.
    pub fn list_key(&mut self, current: &str) -> Result<String> {
        self.connection.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
            params![LIST_KEY, current],
        )?;
        Ok(self.connection.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [LIST_KEY],
            |row| row.get(0),
        )?)
    }

    /// The key, if one was fixed already (for readers that must not write).
    pub fn stored_list_key(&self) -> Result<Option<String>> {
        Ok(self
            .connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [LIST_KEY], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Keeps the issue's source as it is now, unless one is kept already: called as a send
    /// begins, so the first send's version is the one kept.
    pub fn keep_snapshot(
        &mut self,
        issue: &IssueId,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.connection.execute(
            "INSERT OR IGNORE INTO issue_snapshots (issue, source, taken_at) VALUES (?1, ?2, ?3)",
            params![issue.as_str(), source, timestamp(now)],
        )?;
        Ok(())
    }

    /// The source the issue had when it first went out, if it did.
    pub fn snapshot(&self, issue: &IssueId) -> Result<Option<String>> {
        Ok(self
            .connection
            .query_row(
                "SELECT source FROM issue_snapshots WHERE issue = ?1",
                [issue.as_str()],
                |row| row.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, now, open};

    #[test]
    fn the_list_key_is_fixed_by_the_first_caller_and_kept_through_renames() {
        let (_dir, mut ledger) = open();
        assert_eq!(ledger.stored_list_key().unwrap(), None);
        assert_eq!(
            ledger.list_key("weekly.example.com").unwrap(),
            "weekly.example.com"
        );
        assert_eq!(
            ledger.list_key("weekly-digest.example.com").unwrap(),
            "weekly.example.com"
        );
        assert_eq!(
            ledger.stored_list_key().unwrap().as_deref(),
            Some("weekly.example.com")
        );
    }

    #[test]
    fn the_first_snapshot_of_an_issue_is_the_one_kept() {
        let (_dir, mut ledger) = open();
        ledger
            .keep_snapshot(&issue("i"), "subject: first", now())
            .unwrap();
        ledger
            .keep_snapshot(&issue("i"), "subject: edited", now())
            .unwrap();
        assert_eq!(
            ledger.snapshot(&issue("i")).unwrap().as_deref(),
            Some("subject: first")
        );
        assert_eq!(ledger.snapshot(&issue("other")).unwrap(), None);
    }
}
