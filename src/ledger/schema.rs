//! Opening the ledger and bringing its schema up to date.

use std::path::Path;

use rusqlite::Connection;

use super::{LedgerError, Result};

pub(super) const SCHEMA_VERSION: i64 = 5;

pub(super) fn open(path: &Path) -> Result<Connection> {
    // SQLite answers SQLITE_BUSY at once, without calling the busy handler, to some steps of
    // two processes creating a ledger together (switching a new file to WAL, and a read that
    // meets the other's WAL being set up). Those steps are safe to repeat, so they are, for as
    // long as the busy timeout would have waited.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match open_once(path) {
            Err(LedgerError::Database(rusqlite::Error::SqliteFailure(error, _)))
                if is_busy(error.code) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn is_busy(code: rusqlite::ErrorCode) -> bool {
    matches!(
        code,
        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
    )
}

fn open_once(path: &Path) -> Result<Connection> {
    let mut connection = Connection::open(path)?;
    // First, so that every step below waits for another process (a `serve` and a `run`
    // starting together) instead of failing.
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets `status` and `serve` read while a send writes. FULL makes every commit
    // durable against power loss, not just a crash: a recipient marked `sending` must
    // still be marked after the machine comes back.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// Read-only: `mode=ro` first (it still sees a writer's WAL); where even that cannot work (a
/// read-only folder without the WAL's shared-memory file), `immutable=1`, which reads the
/// file as it is.
pub(super) fn open_read_only(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    // A URI, to pass the parameters: every byte of the path but the plainest escaped.
    let escaped: String = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                char::from(*byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let uri = |parameters: &str| format!("file:{escaped}?{parameters}");
    let try_open = |parameters: &str| -> Result<Connection> {
        let connection = Connection::open_with_flags(uri(parameters), flags)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let found = version(&connection)?;
        if found != SCHEMA_VERSION {
            return Err(LedgerError::NeedsMigration {
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(connection)
    };
    match try_open("mode=ro") {
        Err(LedgerError::Database(_)) => try_open("immutable=1"),
        other => other,
    }
}

fn version(connection: &Connection) -> Result<i64> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// Creates what is missing. An up-to-date ledger is only read; otherwise the version is read
/// again and the tables made in one write transaction (`BEGIN IMMEDIATE`): two processes
/// opening a new ledger at once then take turns, and the second finds the first one's
/// tables instead of creating them again.
fn migrate(connection: &mut Connection) -> Result<()> {
    if version(connection)? == SCHEMA_VERSION {
        return Ok(());
    }
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version = version(&transaction)?;
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
    if version < 3 {
        // Where each accepted message went: a copy in the outbox has reached no one, and a
        // send through a relay must still deliver it. Older ledgers recorded the outbox's
        // reply ("written to .letterpress/outbox/..."), which tells the two apart.
        transaction.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN via TEXT CHECK (via IN ('relay', 'outbox'));
            UPDATE deliveries SET via = CASE WHEN last_reply LIKE 'written to %'
                THEN 'outbox' ELSE 'relay' END
            WHERE state = 'sent';",
        )?;
    }
    if version < 4 {
        // Facts about the newsletter fixed once: `list_key` signs unsubscribe tokens and
        // Message-IDs, so renaming the newsletter or moving its site breaks no link already
        // sent. `issue_snapshots` keeps each issue's source as it was at its first send: the
        // archive shows what was sent, not what the file says now.
        transaction.execute_batch(
            "CREATE TABLE meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE issue_snapshots (
                issue TEXT PRIMARY KEY,
                source TEXT NOT NULL,
                taken_at TEXT NOT NULL
            ) WITHOUT ROWID;",
        )?;
    }
    if version < 5 {
        // Readers who join on the web (double opt-in, with the consent record GDPR asks a
        // sender to keep), every suppression and lift as it happened, and the bounce and
        // complaint reports that cleaned the list, kept whole so an editor can see why.
        transaction.execute_batch(
            "CREATE TABLE signups (
                email TEXT PRIMARY KEY,
                address TEXT NOT NULL,
                name TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'confirmed')),
                requested_at TEXT NOT NULL,
                request_ip TEXT,
                request_agent TEXT,
                confirmed_at TEXT,
                confirm_ip TEXT,
                confirm_agent TEXT
            ) WITHOUT ROWID;
            CREATE TABLE signup_mails (
                id INTEGER PRIMARY KEY,
                email TEXT NOT NULL,
                sent_at TEXT NOT NULL
            );
            CREATE INDEX signup_mails_by_email ON signup_mails (email, sent_at);
            CREATE TABLE suppression_log (
                id INTEGER PRIMARY KEY,
                email TEXT NOT NULL,
                action TEXT NOT NULL CHECK (action IN ('suppressed', 'lifted')),
                source TEXT NOT NULL,
                reason TEXT,
                at TEXT NOT NULL
            );
            CREATE INDEX suppression_log_by_email ON suppression_log (email, id);
            ALTER TABLE deliveries ADD COLUMN verp_tag TEXT;
            CREATE INDEX deliveries_by_verp_tag ON deliveries (verp_tag);
            CREATE INDEX deliveries_by_message_id ON deliveries (message_id);
            CREATE TABLE reports (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL UNIQUE,
                source TEXT NOT NULL,
                received_at TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'ignored')),
                email TEXT,
                issue TEXT,
                status TEXT,
                detail TEXT,
                raw BLOB NOT NULL
            );
            CREATE INDEX reports_by_email ON reports (email, id);
            CREATE INDEX reports_by_issue ON reports (issue, kind);",
        )?;
    }
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    transaction.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, now};
    use super::super::{EventKind, LEDGER_FILE, Ledger};
    use super::*;

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
        assert_eq!(ledger.counts(&issue("i")).unwrap().sent, 1);
        assert_eq!(ledger.counts(&issue("i")).unwrap().outbox, 0);
        ledger
            .record_event(&issue("i"), now(), EventKind::Missed, None, now())
            .unwrap();
        assert_eq!(ledger.events(Some(&issue("i")), 5).unwrap().len(), 1);
    }

    #[test]
    fn a_version_2_ledger_learns_which_messages_only_went_to_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE deliveries (issue TEXT NOT NULL, email TEXT NOT NULL, address TEXT NOT NULL,
                    position INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                    last_reply TEXT, message_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                    sent_at TEXT, PRIMARY KEY (issue, email)) WITHOUT ROWID;
                 CREATE TABLE suppressions (email TEXT PRIMARY KEY, source TEXT NOT NULL, reason TEXT,
                    created_at TEXT NOT NULL) WITHOUT ROWID;
                 CREATE TABLE test_sends (id INTEGER PRIMARY KEY, issue TEXT NOT NULL, email TEXT NOT NULL,
                    outcome TEXT NOT NULL, reply TEXT, sent_at TEXT NOT NULL);
                 CREATE TABLE schedule_events (id INTEGER PRIMARY KEY, issue TEXT NOT NULL,
                    due_at TEXT NOT NULL, event TEXT NOT NULL, detail TEXT, at TEXT NOT NULL);
                 INSERT INTO deliveries VALUES ('i', 'a@x.example', 'a@x.example', 0, 'sent', 1,
                    'written to .letterpress/outbox/i/a@x.example.eml', NULL,
                    '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z');
                 INSERT INTO deliveries VALUES ('i', 'b@x.example', 'b@x.example', 1, 'sent', 1,
                    '250 2.0.0 Ok: queued', NULL,
                    '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z', '2021-08-23T13:00:00.000Z');
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        let ledger = Ledger::open(&path).unwrap();
        let counts = ledger.counts(&issue("i")).unwrap();
        assert_eq!((counts.sent, counts.outbox), (1, 1));
    }

    #[test]
    fn a_ledger_from_a_newer_letterpress_is_refused_not_downgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
        assert!(matches!(
            Ledger::open(&path),
            Err(LedgerError::TooNew {
                found: 99,
                known: SCHEMA_VERSION
            })
        ));
    }

    #[test]
    fn reopening_keeps_everything_and_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEDGER_FILE);
        {
            let mut ledger = Ledger::open(&path).unwrap();
            ledger
                .enqueue(
                    &issue("i"),
                    [(
                        &super::super::test_support::key("a@x.example"),
                        "a@x.example",
                    )],
                    now(),
                )
                .unwrap();
        }
        let ledger = Ledger::open(&path).unwrap();
        assert_eq!(ledger.counts(&issue("i")).unwrap().pending, 1);
        let version: i64 = ledger
            .connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }
}
