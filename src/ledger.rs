//! The delivery ledger: what was sent to whom, in SQLite. The single source of truth for
//! resuming a send and for `status`.
//!
//! Schema (version 2; `PRAGMA user_version` holds the version, `migrate` moves it forward):
//!
//! ```sql
//! deliveries  (issue, email, address, position, state, attempts, last_reply, message_id,
//!              created_at, updated_at, sent_at)      -- one row per issue and recipient
//!   state: pending | sending | sent | deferred | failed | skipped
//! suppressions (email, source, reason, created_at)   -- never mail these addresses
//!   source: one-click (the subscriber's own unsubscribe link: they may lift it again)
//!           | anything else (set by the editor or a tool: only they lift it)
//! test_sends  (id, issue, email, outcome, reply, sent_at)  -- test emails, never deliveries
//! schedule_events (id, issue, due_at, event, detail, at)   -- what the scheduler did (v2)
//!   event: started | finished | missed | draft | invalid | busy
//! ```
//!
//! `email` is the address compared without case; `address` is as written in the list. Times
//! are RFC 3339 UTC. A row is `sending` from just before its message is handed to the relay
//! until the relay's answer is recorded; a `sending` row found while no send of its issue is
//! running is *uncertain*: its message may or may not have arrived.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

pub const LEDGER_FILE: &str = "ledger.sqlite3";
const SCHEMA_VERSION: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Sending,
    Sent,
    Deferred,
    Failed,
    /// On the list when the send began, no longer active or suppressed when their turn came.
    Skipped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Deferred => "deferred",
            State::Failed => "failed",
            State::Skipped => "skipped",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<State> {
        Ok(match text {
            "pending" => State::Pending,
            "sending" => State::Sending,
            "sent" => State::Sent,
            "deferred" => State::Deferred,
            "failed" => State::Failed,
            "skipped" => State::Skipped,
            other => {
                return Err(rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("unknown delivery state `{other}`").into(),
                ));
            }
        })
    }
}

/// A recipient of an issue as the ledger knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub email: String,
    pub address: String,
    pub state: State,
    pub attempts: u32,
    pub last_reply: Option<String>,
}

/// The outcome of one attempt, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub email: String,
    pub state: State,
    pub reply: Option<String>,
}

/// How many recipients of an issue are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.pending + self.sending + self.sent + self.deferred + self.failed + self.skipped
    }
}

pub struct Ledger {
    connection: Connection,
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Ledger {
    /// Opens (creating and migrating as needed) the ledger at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Ledger> {
        let connection = Connection::open(path)?;
        // WAL lets `status` and `serve` read while a send writes. FULL makes every commit
        // durable against power loss, not just a crash: a recipient marked `sending` must
        // still be marked after the machine comes back.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut ledger = Ledger { connection };
        ledger.migrate()?;
        Ok(ledger)
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        let version: i64 = self
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "the ledger has schema version {version}, newer than this letterpress knows ({SCHEMA_VERSION}); upgrade letterpress"
            )));
        }
        let transaction = self.connection.transaction()?;
        if version < 1 {
            transaction.execute_batch(
                "CREATE TABLE deliveries (
                    issue TEXT NOT NULL,
                    email TEXT NOT NULL,
                    address TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending','sending','sent','deferred','failed','skipped')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_reply TEXT,
                    message_id TEXT,
                    created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL,
                    sent_at TEXT,
                    PRIMARY KEY (issue, email)
                ) WITHOUT ROWID;
                CREATE INDEX deliveries_by_state ON deliveries (issue, state);
                CREATE TABLE suppressions (
                    email TEXT PRIMARY KEY,
                    source TEXT NOT NULL,
                    reason TEXT,
                    created_at TEXT NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE test_sends (
                    id INTEGER PRIMARY KEY,
                    issue TEXT NOT NULL,
                    email TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    reply TEXT,
                    sent_at TEXT NOT NULL
                );",
            )?;
        }
        if version < 2 {
            transaction.execute_batch(
                "CREATE TABLE schedule_events (
                    id INTEGER PRIMARY KEY,
                    issue TEXT NOT NULL,
                    due_at TEXT NOT NULL,
                    event TEXT NOT NULL,
                    detail TEXT,
                    at TEXT NOT NULL
                );
                CREATE INDEX schedule_events_by_issue ON schedule_events (issue, due_at);",
            )?;
        }
        transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        transaction.commit()
    }

    /// Brings the issue's rows in line with who should get it now: new recipients become
    /// `pending`; pending or deferred ones who are no longer wanted become `skipped`, and
    /// skipped ones who are wanted again go back to `pending`. Sent, failed and in-flight
    /// rows never change here. Returns how many rows were added.
    pub fn enqueue<'a>(
        &mut self,
        issue: &str,
        recipients: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<usize> {
        let now = timestamp(now);
        let existing: HashMap<String, State> = self.states(issue)?;
        let transaction = self.connection.transaction()?;
        let mut added = 0;
        let mut wanted = HashSet::new();
        // New recipients go after everyone already queued, in list order.
        let mut position: i64 = transaction.query_row(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM deliveries WHERE issue = ?1",
            [issue],
            |row| row.get(0),
        )?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO deliveries (issue, email, address, position, state, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )?;
            let mut set_state = transaction.prepare_cached(
                "UPDATE deliveries SET state = ?3, last_reply = ?4, updated_at = ?5
                 WHERE issue = ?1 AND email = ?2",
            )?;
            for (email, address) in recipients {
                wanted.insert(email);
                match existing.get(email) {
                    None => {
                        insert.execute(params![issue, email, address, position, now])?;
                        position += 1;
                        added += 1;
                    }
                    Some(State::Skipped) => {
                        set_state.execute(params![issue, email, "pending", None::<String>, now])?;
                    }
                    Some(_) => {}
                }
            }
            for (email, state) in &existing {
                if matches!(state, State::Pending | State::Deferred)
                    && !wanted.contains(email.as_str())
                {
                    set_state.execute(params![
                        issue,
                        email,
                        "skipped",
                        "no longer an active subscriber",
                        now
                    ])?;
                }
            }
        }
        transaction.commit()?;
        Ok(added)
    }

    fn states(&self, issue: &str) -> rusqlite::Result<HashMap<String, State>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email, state FROM deliveries WHERE issue = ?1")?;
        let rows = statement.query_map([issue], |row| {
            Ok((
                row.get::<_, String>(0)?,
                State::parse(&row.get::<_, String>(1)?)?,
            ))
        })?;
        rows.collect()
    }

    /// The rows a send should work on: pending first, then deferred, each in list order.
    pub fn sendable(&self, issue: &str) -> rusqlite::Result<Vec<Row>> {
        self.rows_where(
            issue,
            "state IN ('pending', 'deferred') ORDER BY state = 'deferred', position",
        )
    }

    pub fn rows_in(&self, issue: &str, state: State) -> rusqlite::Result<Vec<Row>> {
        self.rows_where(
            issue,
            &format!("state = '{}' ORDER BY position", state.as_str()),
        )
    }

    fn rows_where(&self, issue: &str, condition: &str) -> rusqlite::Result<Vec<Row>> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT email, address, state, attempts, last_reply FROM deliveries
             WHERE issue = ?1 AND {condition}"
        ))?;
        let rows = statement.query_map([issue], row_from_sql)?;
        rows.collect()
    }

    /// Marks recipients in flight, durably, before their messages go to the relay.
    pub fn mark_sending(
        &mut self,
        issue: &str,
        claims: &[(String, String)],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        let now = timestamp(now);
        let transaction = self.connection.transaction()?;
        {
            let mut update = transaction.prepare_cached(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,
                    message_id = ?3, updated_at = ?4
                 WHERE issue = ?1 AND email = ?2 AND state IN ('pending', 'deferred')",
            )?;
            for (email, message_id) in claims {
                let changed = update.execute(params![issue, email, message_id, now])?;
                if changed != 1 {
                    // Only this process may move a row out of pending or deferred (it holds
                    // the issue's lock), so anything else is a bug worth stopping for.
                    return Err(rusqlite::Error::StatementChangedRows(changed));
                }
            }
        }
        transaction.commit()
    }

    /// Records the relay's answers, in one transaction.
    pub fn record(
        &mut self,
        issue: &str,
        outcomes: &[Outcome],
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        let now = timestamp(now);
        let transaction = self.connection.transaction()?;
        {
            let mut update = transaction.prepare_cached(
                "UPDATE deliveries SET state = ?3, last_reply = ?4, updated_at = ?5,
                    sent_at = CASE WHEN ?3 = 'sent' THEN ?5 ELSE sent_at END
                 WHERE issue = ?1 AND email = ?2",
            )?;
            for outcome in outcomes {
                update.execute(params![
                    issue,
                    outcome.email,
                    outcome.state.as_str(),
                    outcome.reply,
                    now
                ])?;
            }
        }
        transaction.commit()
    }

    /// Puts uncertain recipients (left `sending` by a run that died) back in the queue.
    pub fn requeue_uncertain(
        &mut self,
        issue: &str,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<usize> {
        self.connection.execute(
            "UPDATE deliveries SET state = 'pending', updated_at = ?2,
                last_reply = 'uncertain after an interrupted send; sent again on request'
             WHERE issue = ?1 AND state = 'sending'",
            params![issue, timestamp(now)],
        )
    }

    pub fn counts(&self, issue: &str) -> rusqlite::Result<Counts> {
        let mut statement = self.connection.prepare_cached(
            "SELECT state, COUNT(*) FROM deliveries WHERE issue = ?1 GROUP BY state",
        )?;
        let mut counts = Counts::default();
        let rows = statement.query_map([issue], |row| {
            Ok((
                State::parse(&row.get::<_, String>(0)?)?,
                row.get::<_, i64>(1)? as u64,
            ))
        })?;
        for row in rows {
            let (state, count) = row?;
            *match state {
                State::Pending => &mut counts.pending,
                State::Sending => &mut counts.sending,
                State::Sent => &mut counts.sent,
                State::Deferred => &mut counts.deferred,
                State::Failed => &mut counts.failed,
                State::Skipped => &mut counts.skipped,
            } += count;
        }
        Ok(counts)
    }

    /// Every issue the ledger has rows for, oldest first.
    pub fn issues(&self) -> rusqlite::Result<Vec<String>> {
        let mut statement = self.connection.prepare(
            "SELECT issue FROM deliveries GROUP BY issue ORDER BY MIN(created_at), issue",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect()
    }

    pub fn suppressed(&self) -> rusqlite::Result<HashSet<String>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email FROM suppressions")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect()
    }

    /// Addresses suppressed at or after `since`: a send checks these before each batch, so a
    /// reader who unsubscribes while their issue is going out does not get it.
    pub fn suppressed_since(&self, since: DateTime<Utc>) -> rusqlite::Result<HashSet<String>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email FROM suppressions WHERE created_at >= ?1")?;
        let rows = statement.query_map([timestamp(since)], |row| row.get(0))?;
        rows.collect()
    }

    /// Adds an address to the suppression list; returns false if it was already there.
    pub fn suppress(
        &mut self,
        email: &str,
        source: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<bool> {
        let changed = self.connection.execute(
            "INSERT OR IGNORE INTO suppressions (email, source, reason, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![email, source, reason, timestamp(now)],
        )?;
        Ok(changed == 1)
    }

    /// The address's suppression, if it has one.
    pub fn suppression(&self, email: &str) -> rusqlite::Result<Option<Suppression>> {
        self.connection
            .query_row(
                "SELECT source, created_at FROM suppressions WHERE email = ?1",
                [email],
                |row| {
                    Ok(Suppression {
                        source: row.get(0)?,
                        created_at: parse_timestamp(&row.get::<_, String>(1)?)?,
                    })
                },
            )
            .optional()
    }

    /// Lifts the address's suppression only if the subscriber caused it (an unsubscribe
    /// link); one set by the editor or after a bounce stays. Returns whether one was lifted.
    pub fn unsuppress_own(&mut self, email: &str) -> rusqlite::Result<bool> {
        let changed = self.connection.execute(
            "DELETE FROM suppressions WHERE email = ?1 AND source = ?2",
            params![email, ONE_CLICK_SOURCE],
        )?;
        Ok(changed == 1)
    }

    /// How many addresses are suppressed, per source, the most common first.
    pub fn suppression_counts(&self) -> rusqlite::Result<Vec<(String, u64)>> {
        let mut statement = self.connection.prepare(
            "SELECT source, COUNT(*) FROM suppressions GROUP BY source ORDER BY COUNT(*) DESC, source",
        )?;
        let rows =
            statement.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
        rows.collect()
    }

    /// Every address the ledger has seen (delivered to, tested, or suppressed): anyone who may
    /// hold an unsubscribe link, even if they are no longer on the list.
    pub fn known_addresses(&self) -> rusqlite::Result<Vec<String>> {
        let mut statement = self.connection.prepare(
            "SELECT email FROM deliveries UNION SELECT email FROM suppressions
             UNION SELECT email FROM test_sends",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect()
    }

    /// The issues that went out (someone has them), the most recently sent first, each with
    /// when its first message was accepted.
    pub fn sent_issues(&self) -> rusqlite::Result<Vec<SentIssue>> {
        let mut statement = self.connection.prepare(
            "SELECT issue, MIN(sent_at) FROM deliveries WHERE state = 'sent' AND sent_at IS NOT NULL
             GROUP BY issue ORDER BY MIN(sent_at) DESC, issue DESC",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(SentIssue {
                issue: row.get(0)?,
                first_sent: parse_timestamp(&row.get::<_, String>(1)?)?,
            })
        })?;
        rows.collect()
    }

    pub fn log_test_send(
        &mut self,
        issue: &str,
        email: &str,
        outcome: &str,
        reply: Option<&str>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT INTO test_sends (issue, email, outcome, reply, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue, email, outcome, reply, timestamp(now)],
        )?;
        Ok(())
    }

    pub fn test_send_count(&self, issue: &str) -> rusqlite::Result<u64> {
        self.connection.query_row(
            "SELECT COUNT(*) FROM test_sends WHERE issue = ?1",
            [issue],
            |row| row.get::<_, i64>(0).map(|count| count as u64),
        )
    }

    /// Notes what the scheduler did about an issue's slot.
    pub fn record_event(
        &mut self,
        issue: &str,
        due: DateTime<Utc>,
        event: &str,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<()> {
        self.connection.execute(
            "INSERT INTO schedule_events (issue, due_at, event, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue, timestamp(due), event, detail, timestamp(now)],
        )?;
        Ok(())
    }

    /// The scheduler's events, newest first; for one issue, or all when `issue` is `None`.
    pub fn events(&self, issue: Option<&str>, limit: usize) -> rusqlite::Result<Vec<Event>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT issue, due_at, event, detail, at FROM schedule_events
             WHERE ?1 IS NULL OR issue = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![issue, limit as i64], |row| {
            Ok(Event {
                issue: row.get(0)?,
                due: parse_timestamp(&row.get::<_, String>(1)?)?,
                event: row.get(2)?,
                detail: row.get(3)?,
                at: parse_timestamp(&row.get::<_, String>(4)?)?,
            })
        })?;
        rows.collect()
    }

    /// When the issue's deliveries last changed, if it has any.
    pub fn last_activity(&self, issue: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
        let latest: Option<String> = self.connection.query_row(
            "SELECT MAX(updated_at) FROM deliveries WHERE issue = ?1",
            [issue],
            |row| row.get(0),
        )?;
        latest.as_deref().map(parse_timestamp).transpose()
    }

    /// One recipient's row, for tests and `status`.
    pub fn row(&self, issue: &str, email: &str) -> rusqlite::Result<Option<Row>> {
        self.connection
            .query_row(
                "SELECT email, address, state, attempts, last_reply FROM deliveries
                 WHERE issue = ?1 AND email = ?2",
                [issue, email],
                row_from_sql,
            )
            .optional()
    }
}

/// The source of a suppression the subscriber caused with their unsubscribe link (the
/// one-click POST from their mail app, or the button on the unsubscribe page); the only
/// source the subscriber may lift again.
pub const ONE_CLICK_SOURCE: &str = "one-click";

/// Why an address gets no mail, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub source: String,
    pub created_at: DateTime<Utc>,
}

impl Suppression {
    /// Whether the subscriber set it themselves, and so may lift it.
    pub fn is_own(&self) -> bool {
        self.source == ONE_CLICK_SOURCE
    }
}

/// An issue that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentIssue {
    pub issue: String,
    pub first_sent: DateTime<Utc>,
}

/// Something the scheduler did, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub issue: String,
    pub due: DateTime<Utc>,
    pub event: String,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

fn parse_timestamp(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })
}

fn row_from_sql(row: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok(Row {
        email: row.get(0)?,
        address: row.get(1)?,
        state: State::parse(&row.get::<_, String>(2)?)?,
        attempts: row.get(3)?,
        last_reply: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2021-08-23T13:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn open() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join(LEDGER_FILE)).unwrap();
        (dir, ledger)
    }

    fn state(ledger: &Ledger, email: &str) -> State {
        ledger.row("i", email).unwrap().unwrap().state
    }

    #[test]
    fn enqueue_adds_new_recipients_once_in_list_order() {
        let (_dir, mut ledger) = open();
        let added = ledger
            .enqueue(
                "i",
                [
                    ("b@x.example", "B@x.example"),
                    ("a@x.example", "a@x.example"),
                ],
                now(),
            )
            .unwrap();
        assert_eq!(added, 2);
        let again = [
            ("b@x.example", "B@x.example"),
            ("a@x.example", "a@x.example"),
        ];
        assert_eq!(ledger.enqueue("i", again, now()).unwrap(), 0);
        let order: Vec<String> = ledger
            .sendable("i")
            .unwrap()
            .into_iter()
            .map(|row| row.address)
            .collect();
        assert_eq!(order, ["B@x.example", "a@x.example"]);
    }

    #[test]
    fn recipients_who_leave_before_their_turn_are_skipped_and_come_back_if_they_return() {
        let (_dir, mut ledger) = open();
        ledger
            .enqueue("i", [("a@x", "a@x"), ("b@x", "b@x")], now())
            .unwrap();
        ledger.enqueue("i", [("a@x", "a@x")], now()).unwrap();
        assert_eq!(state(&ledger, "b@x"), State::Skipped);
        assert_eq!(ledger.sendable("i").unwrap().len(), 1);
        ledger
            .enqueue("i", [("a@x", "a@x"), ("b@x", "b@x")], now())
            .unwrap();
        assert_eq!(state(&ledger, "b@x"), State::Pending);
    }

    #[test]
    fn claims_count_attempts_and_results_are_recorded() {
        let (_dir, mut ledger) = open();
        ledger
            .enqueue("i", [("a@x", "a@x"), ("b@x", "b@x")], now())
            .unwrap();
        ledger
            .mark_sending(
                "i",
                &[
                    ("a@x".into(), "<m1@x>".into()),
                    ("b@x".into(), "<m2@x>".into()),
                ],
                now(),
            )
            .unwrap();
        assert_eq!(ledger.counts("i").unwrap().sending, 2);
        ledger
            .record(
                "i",
                &[
                    Outcome {
                        email: "a@x".into(),
                        state: State::Sent,
                        reply: Some("250 ok".into()),
                    },
                    Outcome {
                        email: "b@x".into(),
                        state: State::Deferred,
                        reply: Some("451 later".into()),
                    },
                ],
                now(),
            )
            .unwrap();
        let b = ledger.row("i", "b@x").unwrap().unwrap();
        assert_eq!(
            (b.state, b.attempts, b.last_reply.as_deref()),
            (State::Deferred, 1, Some("451 later"))
        );
        // A sent recipient can never be claimed again.
        assert!(
            ledger
                .mark_sending("i", &[("a@x".into(), "<m1@x>".into())], now())
                .is_err()
        );
        assert_eq!(state(&ledger, "a@x"), State::Sent);
    }

    #[test]
    fn a_version_1_ledger_is_migrated_forward_keeping_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        {
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE deliveries (issue TEXT NOT NULL, email TEXT NOT NULL, address TEXT NOT NULL,
                        position INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                        last_reply TEXT, message_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                        sent_at TEXT, PRIMARY KEY (issue, email)) WITHOUT ROWID;
                     CREATE TABLE suppressions (email TEXT PRIMARY KEY, source TEXT NOT NULL, reason TEXT,
                        created_at TEXT NOT NULL) WITHOUT ROWID;
                     CREATE TABLE test_sends (id INTEGER PRIMARY KEY, issue TEXT NOT NULL, email TEXT NOT NULL,
                        outcome TEXT NOT NULL, reply TEXT, sent_at TEXT NOT NULL);
                     INSERT INTO deliveries VALUES ('i', 'a@x', 'a@x', 0, 'sent', 1, '250 ok', NULL,
                        '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z');
                     PRAGMA user_version = 1;",
                )
                .unwrap();
        }
        let mut ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.counts("i").unwrap().sent, 1);
        ledger
            .record_event("i", now(), "missed", None, now())
            .unwrap();
        assert_eq!(ledger.events(Some("i"), 5).unwrap().len(), 1);
    }

    #[test]
    fn a_subscriber_lifts_only_the_suppression_they_caused() {
        let (_dir, mut ledger) = open();
        ledger
            .suppress("ada@x", ONE_CLICK_SOURCE, None, now())
            .unwrap();
        ledger
            .suppress("bob@x", "editor", Some("asked by phone"), now())
            .unwrap();
        assert!(ledger.unsuppress_own("ada@x").unwrap());
        assert!(!ledger.unsuppress_own("bob@x").unwrap());
        assert!(!ledger.unsuppress_own("ada@x").unwrap(), "already lifted");
        assert_eq!(ledger.suppression("ada@x").unwrap(), None);
        let bob = ledger.suppression("bob@x").unwrap().unwrap();
        assert_eq!((bob.source.as_str(), bob.is_own()), ("editor", false));
        assert_eq!(
            ledger.suppression_counts().unwrap(),
            [("editor".to_string(), 1)]
        );
    }

    #[test]
    fn sent_issues_are_those_someone_has_newest_first() {
        let (_dir, mut ledger) = open();
        let later = now() + chrono::Duration::days(7);
        for (issue, when) in [("old", now()), ("new", later), ("failed", later)] {
            ledger.enqueue(issue, [("a@x", "a@x")], when).unwrap();
            ledger
                .mark_sending(issue, &[("a@x".into(), "<m@x>".into())], when)
                .unwrap();
            let state = if issue == "failed" {
                State::Failed
            } else {
                State::Sent
            };
            let outcome = Outcome {
                email: "a@x".into(),
                state,
                reply: None,
            };
            ledger.record(issue, &[outcome], when).unwrap();
        }
        ledger.enqueue("pending", [("a@x", "a@x")], later).unwrap();
        assert_eq!(
            ledger.sent_issues().unwrap(),
            [
                SentIssue {
                    issue: "new".into(),
                    first_sent: later
                },
                SentIssue {
                    issue: "old".into(),
                    first_sent: now()
                },
            ]
        );
    }

    #[test]
    fn known_addresses_include_the_delivered_the_tested_and_the_suppressed() {
        let (_dir, mut ledger) = open();
        ledger.enqueue("i", [("a@x", "A@x")], now()).unwrap();
        ledger
            .log_test_send("i", "editor@x", "sent", None, now())
            .unwrap();
        ledger.suppress("gone@x", "editor", None, now()).unwrap();
        let mut known = ledger.known_addresses().unwrap();
        known.sort();
        assert_eq!(known, ["a@x", "editor@x", "gone@x"]);
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
        assert!(
            server
                .suppress("a@x", ONE_CLICK_SOURCE, None, now())
                .unwrap()
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        release.join().unwrap();
        assert!(server.suppression("a@x").unwrap().is_some());
    }

    #[test]
    fn reopening_keeps_everything_and_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        {
            let mut ledger = Ledger::open(&path).unwrap();
            ledger.enqueue("i", [("a@x", "a@x")], now()).unwrap();
            ledger
                .suppress("z@x", "unsubscribe link", None, now())
                .unwrap();
        }
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.counts("i").unwrap().pending, 1);
        assert!(ledger.suppressed().unwrap().contains("z@x"));
        let version: i64 = ledger
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
