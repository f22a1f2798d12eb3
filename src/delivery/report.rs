//! An issue's delivery as people ask about it: how many have it, who failed and why, who is
//! uncertain. `send` prints it after a run, `status` on request, `--json` for scripts.

use serde::Serialize;

use super::lock::IssueLock;
use crate::ledger::{Ledger, State};
use crate::model::issue::IssueId;
use crate::state::StateDir;

/// An issue's delivery state, read from the ledger.
#[derive(Debug, Serialize)]
pub struct Report {
    pub issue: String,
    /// Whether a send of the issue is running now.
    pub running: bool,
    pub pending: u64,
    /// In flight in the running send.
    pub sending: u64,
    pub sent: u64,
    /// Written to the outbox (no relay configured): delivered to no one yet.
    pub outbox: u64,
    pub deferred: u64,
    pub failed: u64,
    /// Left in flight by a send that died: maybe delivered, maybe not.
    pub uncertain: u64,
    pub skipped: u64,
    pub failures: Vec<Problem>,
    pub deferrals: Vec<Problem>,
    /// With why each is uncertain, when known (no answer after the final dot, say).
    pub uncertain_recipients: Vec<Problem>,
}

/// A recipient who does not have the issue, and the relay's last word on it.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub email: String,
    pub attempts: u32,
    pub reply: Option<String>,
}

impl Report {
    /// A `sending` row is in flight while a send holds the issue's lock, and uncertain
    /// otherwise: the send that claimed it died before the relay's answer was recorded.
    pub fn read(
        state: &StateDir,
        ledger: &Ledger,
        issue: &IssueId,
    ) -> crate::ledger::Result<Report> {
        let running = IssueLock::is_held(state, issue);
        let counts = ledger.counts(issue)?;
        let problems = |state| -> crate::ledger::Result<Vec<Problem>> {
            Ok(ledger
                .rows_in(issue, state)?
                .into_iter()
                .map(|row| Problem {
                    email: row.address,
                    attempts: row.attempts,
                    reply: row.last_reply,
                })
                .collect())
        };
        let uncertain_recipients = if running {
            Vec::new()
        } else {
            problems(State::Sending)?
        };
        Ok(Report {
            issue: issue.to_string(),
            running,
            pending: counts.pending,
            sending: if running { counts.sending } else { 0 },
            sent: counts.sent,
            outbox: counts.outbox,
            deferred: counts.deferred,
            failed: counts.failed,
            uncertain: if running { 0 } else { counts.sending },
            skipped: counts.skipped,
            failures: problems(State::Failed)?,
            deferrals: problems(State::Deferred)?,
            uncertain_recipients,
        })
    }

    /// An issue nothing has been recorded for.
    pub fn empty(issue: &IssueId) -> Report {
        Report {
            issue: issue.to_string(),
            running: false,
            pending: 0,
            sending: 0,
            sent: 0,
            outbox: 0,
            deferred: 0,
            failed: 0,
            uncertain: 0,
            skipped: 0,
            failures: Vec::new(),
            deferrals: Vec::new(),
            uncertain_recipients: Vec::new(),
        }
    }

    /// Whether anything is left for a human to look at.
    pub fn is_complete(&self) -> bool {
        self.pending == 0
            && self.sending == 0
            && self.deferred == 0
            && self.failed == 0
            && self.uncertain == 0
    }
}
