//! `schedule_events`: what the scheduler did about each slot, for `status` and for the
//! scheduler itself (a slot already recorded as missed is not recorded again).

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::deliveries::stored_issue;
use super::{Ledger, Result, parse_timestamp, parse_word, timestamp};
use crate::model::issue::IssueId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A send of the issue began (or resumed) in its slot.
    Started,
    /// That send ended; the detail has its counts.
    Finished,
    /// The slot passed beyond its grace without the issue going out.
    Missed,
    /// The slot came with the issue still a draft.
    Draft,
    /// The issue did not pass its check when its slot came.
    Invalid,
    /// Two or more ready issues claimed one slot; none was sent.
    Conflict,
}

impl EventKind {
    const ALL: [EventKind; 6] = [
        EventKind::Started,
        EventKind::Finished,
        EventKind::Missed,
        EventKind::Draft,
        EventKind::Invalid,
        EventKind::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Finished => "finished",
            EventKind::Missed => "missed",
            EventKind::Draft => "draft",
            EventKind::Invalid => "invalid",
            EventKind::Conflict => "conflict",
        }
    }

    fn parse(text: &str) -> Result<EventKind> {
        parse_word(text, "the scheduler event", |text| {
            EventKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == text)
        })
    }
}

/// Something the scheduler did, as `status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub issue: IssueId,
    pub due: DateTime<Utc>,
    pub kind: EventKind,
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

impl Ledger {
    /// Notes what the scheduler did about an issue's slot.
    pub fn record_event(
        &mut self,
        issue: &IssueId,
        due: DateTime<Utc>,
        kind: EventKind,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.connection.execute(
            "INSERT INTO schedule_events (issue, due_at, event, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue.as_str(), timestamp(due), kind.as_str(), detail, timestamp(now)],
        )?;
        Ok(())
    }

    /// The scheduler's events, newest first; for one issue, or all when `issue` is `None`.
    pub fn events(&self, issue: Option<&IssueId>, limit: usize) -> Result<Vec<Event>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT issue, due_at, event, detail, at FROM schedule_events
             WHERE ?1 IS NULL OR issue = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows = statement.query(params![issue.map(IssueId::as_str), limit as i64])?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(Event {
                issue: stored_issue(row.get(0)?)?,
                due: parse_timestamp(&row.get::<_, String>(1)?)?,
                kind: EventKind::parse(&row.get::<_, String>(2)?)?,
                detail: row.get(3)?,
                at: parse_timestamp(&row.get::<_, String>(4)?)?,
            });
        }
        Ok(events)
    }

    /// The kinds of event already recorded for one slot of an issue.
    pub fn events_for_slot(&self, issue: &IssueId, due: DateTime<Utc>) -> Result<Vec<EventKind>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT event FROM schedule_events WHERE issue = ?1 AND due_at = ?2 ORDER BY id",
        )?;
        let mut rows = statement.query(params![issue.as_str(), timestamp(due)])?;
        let mut kinds = Vec::new();
        while let Some(row) = rows.next()? {
            kinds.push(EventKind::parse(&row.get::<_, String>(0)?)?);
        }
        Ok(kinds)
    }
}
