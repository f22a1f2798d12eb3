//! `deliveries`: one row per issue and recipient, and the state machine that makes a send
//! exactly-once (pending → sending → sent | deferred | failed; skipped for those who left).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError, Result, parse_timestamp, parse_word, timestamp};
use crate::model::address::AddressKey;
use crate::model::issue::IssueId;

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
    const ALL: [State; 6] = [
        State::Pending,
        State::Sending,
        State::Sent,
        State::Deferred,
        State::Failed,
        State::Skipped,
    ];

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

    pub(super) fn parse(text: &str) -> Result<State> {
        parse_word(text, "the delivery state", |text| {
            State::ALL.into_iter().find(|state| state.as_str() == text)
        })
    }
}

/// Where an accepted message went. A copy written to the outbox (no relay configured) has
/// reached no one: a later send through a relay still delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    Relay,
    Outbox,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Relay => "relay",
            Via::Outbox => "outbox",
        }
    }
}

/// A recipient of an issue as the ledger knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub email: AddressKey,
    /// As written in the list.
    pub address: String,
    pub state: State,
    pub attempts: u32,
    pub last_reply: Option<String>,
}

/// The outcome of one attempt, to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub email: AddressKey,
    pub state: State,
    pub reply: Option<String>,
    /// A 5xx to RCPT: the address takes no mail. Recorded with the failure, in the same
    /// commit, as a hard bounce of the issue that suppresses the address (`reports`).
    pub hard_bounce: bool,
}

/// A recipient claimed for sending: their message's Message-ID and, with `bounce_address`,
/// the VERP tag of its envelope sender. Both are kept with the row, so that a bounce naming
/// either is tied back to this reader and issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub email: AddressKey,
    pub message_id: String,
    pub verp_tag: Option<String>,
}

/// One of our deliveries, as a bounce or complaint is tied to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub issue: IssueId,
    pub email: AddressKey,
}

/// How many recipients of an issue are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub pending: u64,
    pub sending: u64,
    /// Accepted by a relay.
    pub sent: u64,
    /// Written to the outbox: sent as far as a send to the outbox goes, but delivered to no
    /// one.
    pub outbox: u64,
    pub deferred: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.pending
            + self.sending
            + self.sent
            + self.outbox
            + self.deferred
            + self.failed
            + self.skipped
    }

    fn slot(&mut self, state: State, via: Option<Via>) -> &mut u64 {
        match state {
            State::Pending => &mut self.pending,
            State::Sending => &mut self.sending,
            State::Sent if via == Some(Via::Outbox) => &mut self.outbox,
            State::Sent => &mut self.sent,
            State::Deferred => &mut self.deferred,
            State::Failed => &mut self.failed,
            State::Skipped => &mut self.skipped,
        }
    }
}

/// An issue that went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentIssue {
    pub issue: IssueId,
    pub first_sent: DateTime<Utc>,
    /// Its source as it was at its first send, when the ledger kept it (sends since v4).
    pub snapshot: Option<String>,
}

const ROW_COLUMNS: &str = "email, address, state, attempts, last_reply";

impl Ledger {
    /// Brings the issue's rows in line with who should get it now: new recipients become
    /// `pending`; pending or deferred ones who are no longer wanted become `skipped`, and
    /// skipped ones who are wanted again go back to `pending`. Sent, failed and in-flight
    /// rows never change here. Returns how many rows were added.
    pub fn enqueue<'a>(
        &mut self,
        issue: &IssueId,
        recipients: impl IntoIterator<Item = (&'a AddressKey, &'a str)>,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let issue = issue.as_str();
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
                let email = email.as_str();
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

    fn states(&self, issue: &str) -> Result<HashMap<String, State>> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT email, state FROM deliveries WHERE issue = ?1")?;
        let mut rows = statement.query([issue])?;
        let mut states = HashMap::new();
        while let Some(row) = rows.next()? {
            states.insert(row.get(0)?, State::parse(&row.get::<_, String>(1)?)?);
        }
        Ok(states)
    }

    /// The rows a send should work on: pending first, then deferred, each in list order.
    pub fn sendable(&self, issue: &IssueId) -> Result<Vec<Row>> {
        self.rows_where(
            issue,
            "state IN ('pending', 'deferred') ORDER BY state = 'deferred', position",
        )
    }

    pub fn rows_in(&self, issue: &IssueId, state: State) -> Result<Vec<Row>> {
        self.rows_where(
            issue,
            &format!("state = '{}' ORDER BY position", state.as_str()),
        )
    }

    fn rows_where(&self, issue: &IssueId, condition: &str) -> Result<Vec<Row>> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM deliveries WHERE issue = ?1 AND {condition}"
        ))?;
        let mut rows = statement.query([issue.as_str()])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(row_from_sql(row)?);
        }
        Ok(found)
    }

    /// One recipient's row.
    pub fn row(&self, issue: &IssueId, email: &AddressKey) -> Result<Option<Row>> {
        let raw = self
            .connection
            .query_row(
                &format!("SELECT {ROW_COLUMNS} FROM deliveries WHERE issue = ?1 AND email = ?2"),
                [issue.as_str(), email.as_str()],
                |row| Ok(row_from_sql(row)),
            )
            .optional()?;
        raw.transpose()
    }

    /// Marks recipients in flight, durably, before their messages go to the relay.
    pub fn mark_sending(
        &mut self,
        issue: &IssueId,
        claims: &[Claim],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = timestamp(now);
        let transaction = self.connection.transaction()?;
        {
            let mut update = transaction.prepare_cached(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,
                    message_id = ?3, verp_tag = ?4, updated_at = ?5
                 WHERE issue = ?1 AND email = ?2 AND state IN ('pending', 'deferred')",
            )?;
            for claim in claims {
                let changed = update.execute(params![
                    issue.as_str(),
                    claim.email.as_str(),
                    claim.message_id,
                    claim.verp_tag,
                    now
                ])?;
                if changed != 1 {
                    return Err(LedgerError::ClaimConflict {
                        issue: issue.to_string(),
                        email: claim.email.to_string(),
                    });
                }
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records the answers of the transport (`via`), in one transaction.
    pub fn record(
        &mut self,
        issue: &IssueId,
        outcomes: &[Outcome],
        via: Via,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let at = now;
        let now = timestamp(now);
        let transaction = self.connection.transaction()?;
        {
            let mut update = transaction.prepare_cached(
                "UPDATE deliveries SET state = ?3, last_reply = ?4, updated_at = ?5,
                    sent_at = CASE WHEN ?3 = 'sent' THEN ?5 ELSE sent_at END,
                    via = CASE WHEN ?3 = 'sent' THEN ?6 ELSE via END
                 WHERE issue = ?1 AND email = ?2",
            )?;
            for outcome in outcomes {
                update.execute(params![
                    issue.as_str(),
                    outcome.email.as_str(),
                    outcome.state.as_str(),
                    outcome.reply,
                    now,
                    via.as_str()
                ])?;
                if outcome.hard_bounce {
                    let reply = outcome.reply.as_deref().unwrap_or("5xx to RCPT");
                    super::reports::keep_refusal(&transaction, issue, &outcome.email, reply, at)?;
                }
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Before a send through a relay: readers whose message only went to the outbox still
    /// need it, so they are queued again.
    pub fn requeue_outbox_copies(&mut self, issue: &IssueId, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.connection.execute(
            "UPDATE deliveries SET state = 'pending', via = NULL, sent_at = NULL, updated_at = ?2,
                last_reply = 'written to the outbox only; to be sent through the relay'
             WHERE issue = ?1 AND state = 'sent' AND via = 'outbox'",
            params![issue.as_str(), timestamp(now)],
        )?)
    }

    /// `send --retry-failed`: readers the relay refused for good go back in the queue (after
    /// a mistake, like a relay that refused the whole session with a 5xx).
    /// The suppressions those refusals set at RCPT are lifted with them (and the lift
    /// logged): a reader who still refuses is suppressed again by this send.
    pub fn requeue_failed(&mut self, issue: &IssueId, now: DateTime<Utc>) -> Result<usize> {
        let failed: Vec<String> = {
            let mut statement = self.connection.prepare_cached(
                "SELECT email FROM deliveries WHERE issue = ?1 AND state = 'failed'",
            )?;
            statement
                .query_map([issue.as_str()], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let transaction = self.connection.transaction()?;
        for email in failed {
            super::reports::lift_refusal(
                &transaction,
                issue,
                &AddressKey::from_stored(email),
                now,
            )?;
        }
        let requeued = transaction.execute(
            "UPDATE deliveries SET state = 'pending', updated_at = ?2
             WHERE issue = ?1 AND state = 'failed'",
            params![issue.as_str(), timestamp(now)],
        )?;
        transaction.commit()?;
        Ok(requeued)
    }

    /// The delivery whose envelope sender carried `tag` (VERP).
    pub fn delivery_by_verp_tag(&self, tag: &str) -> Result<Option<Delivered>> {
        self.delivery_where("verp_tag = ?1", tag)
    }

    /// The delivery whose message had this Message-ID (angle brackets included).
    pub fn delivery_by_message_id(&self, message_id: &str) -> Result<Option<Delivered>> {
        self.delivery_where("message_id = ?1", message_id)
    }

    /// The issue most recently handed over for `email`, as its delivery: how a report naming
    /// only an address is tied, when no `bounce_address` gives a better way.
    pub fn latest_delivery_to(&self, email: &AddressKey) -> Result<Option<Delivered>> {
        self.delivery_where(
            "email = ?1 AND state IN ('sent', 'sending', 'failed') ORDER BY updated_at DESC",
            email.as_str(),
        )
    }

    fn delivery_where(&self, condition: &str, value: &str) -> Result<Option<Delivered>> {
        let found: Option<(String, String)> = self
            .connection
            .query_row(
                &format!("SELECT issue, email FROM deliveries WHERE {condition} LIMIT 1"),
                [value],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        found
            .map(|(issue, email)| {
                Ok(Delivered {
                    issue: stored_issue(issue)?,
                    email: AddressKey::from_stored(email),
                })
            })
            .transpose()
    }

    /// Puts uncertain recipients (left `sending` by a run that died) back in the queue.
    pub fn requeue_uncertain(&mut self, issue: &IssueId, now: DateTime<Utc>) -> Result<usize> {
        Ok(self.connection.execute(
            "UPDATE deliveries SET state = 'pending', updated_at = ?2,
                last_reply = 'uncertain after an interrupted send; sent again on request'
             WHERE issue = ?1 AND state = 'sending'",
            params![issue.as_str(), timestamp(now)],
        )?)
    }

    /// Whether a send of the issue began (by the scheduler or by hand): copies written only
    /// to the outbox reached no one, and do not count.
    pub fn has_gone_out(&self, issue: &IssueId) -> bool {
        self.counts(issue)
            .is_ok_and(|counts| counts.total() > counts.outbox)
    }

    pub fn counts(&self, issue: &IssueId) -> Result<Counts> {
        let mut statement = self.connection.prepare_cached(
            "SELECT state, via, COUNT(*) FROM deliveries WHERE issue = ?1 GROUP BY state, via",
        )?;
        let mut counts = Counts::default();
        let mut rows = statement.query([issue.as_str()])?;
        while let Some(row) = rows.next()? {
            let state = State::parse(&row.get::<_, String>(0)?)?;
            let via = match row.get::<_, Option<String>>(1)?.as_deref() {
                Some("outbox") => Some(Via::Outbox),
                Some("relay") => Some(Via::Relay),
                _ => None,
            };
            *counts.slot(state, via) += row.get::<_, i64>(2)? as u64;
        }
        Ok(counts)
    }

    /// Every issue the ledger has rows for, oldest first.
    pub fn issues(&self) -> Result<Vec<IssueId>> {
        let mut statement = self.connection.prepare(
            "SELECT issue FROM deliveries GROUP BY issue ORDER BY MIN(created_at), issue",
        )?;
        let mut rows = statement.query([])?;
        let mut issues = Vec::new();
        while let Some(row) = rows.next()? {
            issues.push(stored_issue(row.get(0)?)?);
        }
        Ok(issues)
    }

    /// The issues that went out (someone has them), the most recently sent first, each with
    /// when its first message was accepted.
    pub fn sent_issues(&self) -> Result<Vec<SentIssue>> {
        let mut statement = self.connection.prepare(
            "SELECT sent.issue, sent.first_sent, issue_snapshots.source
             FROM (SELECT issue, MIN(sent_at) AS first_sent FROM deliveries
                   WHERE state = 'sent' AND sent_at IS NOT NULL GROUP BY issue) AS sent
             LEFT JOIN issue_snapshots ON issue_snapshots.issue = sent.issue
             ORDER BY sent.first_sent DESC, sent.issue DESC",
        )?;
        let mut rows = statement.query([])?;
        let mut sent = Vec::new();
        while let Some(row) = rows.next()? {
            sent.push(SentIssue {
                issue: stored_issue(row.get(0)?)?,
                first_sent: parse_timestamp(&row.get::<_, String>(1)?)?,
                snapshot: row.get(2)?,
            });
        }
        Ok(sent)
    }

    /// When the issue's deliveries last changed, if it has any.
    pub fn last_activity(&self, issue: &IssueId) -> Result<Option<DateTime<Utc>>> {
        let latest: Option<String> = self.connection.query_row(
            "SELECT MAX(updated_at) FROM deliveries WHERE issue = ?1",
            [issue.as_str()],
            |row| row.get(0),
        )?;
        Ok(latest.as_deref().map(parse_timestamp).transpose()?)
    }
}

/// An issue id as the ledger stored it: only ever written from a valid one.
pub(super) fn stored_issue(text: String) -> Result<IssueId> {
    IssueId::parse(&text).map_err(|_| LedgerError::Corrupt(format!("the issue id `{text}`")))
}

fn row_from_sql(row: &rusqlite::Row) -> Result<Row> {
    Ok(Row {
        email: AddressKey::from_stored(row.get(0)?),
        address: row.get(1)?,
        state: State::parse(&row.get::<_, String>(2)?)?,
        attempts: row.get(3)?,
        last_reply: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, key, now, open};
    use super::*;

    fn state(ledger: &Ledger, email: &str) -> State {
        ledger.row(&issue("i"), &key(email)).unwrap().unwrap().state
    }

    fn enqueue(ledger: &mut Ledger, id: &str, addresses: &[&str], when: DateTime<Utc>) -> usize {
        let keys: Vec<AddressKey> = addresses.iter().map(|address| key(address)).collect();
        ledger
            .enqueue(&issue(id), keys.iter().zip(addresses.iter().copied()), when)
            .unwrap()
    }

    fn outcome(email: &str, state: State, reply: Option<&str>) -> Outcome {
        Outcome {
            email: key(email),
            state,
            reply: reply.map(str::to_string),
            hard_bounce: false,
        }
    }

    fn claim(email: &str, message_id: &str) -> Claim {
        Claim {
            email: key(email),
            message_id: message_id.to_string(),
            verp_tag: None,
        }
    }

    #[test]
    fn enqueue_adds_new_recipients_once_in_list_order() {
        let (_dir, mut ledger) = open();
        assert_eq!(
            enqueue(&mut ledger, "i", &["B@x.example", "a@x.example"], now()),
            2
        );
        assert_eq!(
            enqueue(&mut ledger, "i", &["B@x.example", "a@x.example"], now()),
            0
        );
        let order: Vec<String> = ledger
            .sendable(&issue("i"))
            .unwrap()
            .into_iter()
            .map(|row| row.address)
            .collect();
        assert_eq!(order, ["B@x.example", "a@x.example"]);
    }

    #[test]
    fn recipients_who_leave_before_their_turn_are_skipped_and_come_back_if_they_return() {
        let (_dir, mut ledger) = open();
        enqueue(&mut ledger, "i", &["a@x.example", "b@x.example"], now());
        enqueue(&mut ledger, "i", &["a@x.example"], now());
        assert_eq!(state(&ledger, "b@x.example"), State::Skipped);
        assert_eq!(ledger.sendable(&issue("i")).unwrap().len(), 1);
        enqueue(&mut ledger, "i", &["a@x.example", "b@x.example"], now());
        assert_eq!(state(&ledger, "b@x.example"), State::Pending);
    }

    #[test]
    fn claims_count_attempts_and_results_are_recorded() {
        let (_dir, mut ledger) = open();
        enqueue(&mut ledger, "i", &["a@x.example", "b@x.example"], now());
        let claims = [
            claim("a@x.example", "<m1@x>"),
            claim("b@x.example", "<m2@x>"),
        ];
        ledger.mark_sending(&issue("i"), &claims, now()).unwrap();
        assert_eq!(ledger.counts(&issue("i")).unwrap().sending, 2);
        ledger
            .record(
                &issue("i"),
                &[
                    outcome("a@x.example", State::Sent, Some("250 ok")),
                    outcome("b@x.example", State::Deferred, Some("451 later")),
                ],
                Via::Relay,
                now(),
            )
            .unwrap();
        let b = ledger
            .row(&issue("i"), &key("b@x.example"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.state, b.attempts, b.last_reply.as_deref()),
            (State::Deferred, 1, Some("451 later"))
        );
        // A sent recipient can never be claimed again.
        assert!(matches!(
            ledger.mark_sending(&issue("i"), &claims[..1], now()),
            Err(LedgerError::ClaimConflict { .. })
        ));
        assert_eq!(state(&ledger, "a@x.example"), State::Sent);
    }

    #[test]
    fn outbox_copies_are_counted_apart_and_queued_again_for_a_relay() {
        let (_dir, mut ledger) = open();
        enqueue(&mut ledger, "i", &["a@x.example", "b@x.example"], now());
        let claims = [
            claim("a@x.example", "<m1@x>"),
            claim("b@x.example", "<m2@x>"),
        ];
        ledger.mark_sending(&issue("i"), &claims, now()).unwrap();
        let written = outcome("a@x.example", State::Sent, Some("written to outbox"));
        ledger
            .record(&issue("i"), &[written], Via::Outbox, now())
            .unwrap();
        let delivered = outcome("b@x.example", State::Sent, Some("250 ok"));
        ledger
            .record(&issue("i"), &[delivered], Via::Relay, now())
            .unwrap();
        let counts = ledger.counts(&issue("i")).unwrap();
        assert_eq!((counts.sent, counts.outbox), (1, 1));
        assert_eq!(ledger.requeue_outbox_copies(&issue("i"), now()).unwrap(), 1);
        assert_eq!(state(&ledger, "a@x.example"), State::Pending);
        assert_eq!(state(&ledger, "b@x.example"), State::Sent);
    }

    #[test]
    fn sent_issues_are_those_someone_has_newest_first() {
        let (_dir, mut ledger) = open();
        let later = now() + chrono::Duration::days(7);
        for (id, when) in [("old", now()), ("new", later), ("failed", later)] {
            enqueue(&mut ledger, id, &["a@x.example"], when);
            ledger
                .mark_sending(&issue(id), &[claim("a@x.example", "<m@x>")], when)
                .unwrap();
            let state = if id == "failed" {
                State::Failed
            } else {
                State::Sent
            };
            ledger
                .record(
                    &issue(id),
                    &[outcome("a@x.example", state, None)],
                    Via::Relay,
                    when,
                )
                .unwrap();
        }
        enqueue(&mut ledger, "pending", &["a@x.example"], later);
        assert_eq!(
            ledger.sent_issues().unwrap(),
            [
                SentIssue {
                    issue: issue("new"),
                    first_sent: later,
                    snapshot: None,
                },
                SentIssue {
                    issue: issue("old"),
                    first_sent: now(),
                    snapshot: None,
                },
            ]
        );
    }

    #[test]
    fn a_state_letterpress_never_writes_is_reported_as_damage() {
        let (_dir, mut ledger) = open();
        enqueue(&mut ledger, "i", &["a@x.example"], now());
        ledger
            .connection
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON; UPDATE deliveries SET state = 'lost';",
            )
            .unwrap();
        let error = ledger.counts(&issue("i")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the ledger holds the delivery state `lost`, which letterpress never writes; restore it from a backup"
        );
    }
}
