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
    /// Readers whose address bounced for good: refused at RCPT during the send, or a hard
    /// bounce report afterwards. Each was taken off the list.
    pub hard_bounces: u64,
    /// Readers with a soft bounce (and no hard one) for this issue.
    pub soft_bounces: u64,
    /// Readers who marked the issue as spam (feedback reports).
    pub complaints: u64,
    /// Hard and soft bounces, in percent of the messages handed to a relay (sent or
    /// refused).
    pub bounce_rate: f64,
    /// Complaints, in percent of the messages a relay accepted.
    pub complaint_rate: f64,
    /// Rates above what mailbox providers tolerate, said in words.
    pub warnings: Vec<String>,
    pub failures: Vec<Problem>,
    pub deferrals: Vec<Problem>,
    /// With why each is uncertain, when known (no answer after the final dot, say).
    pub uncertain_recipients: Vec<Problem>,
}

/// Above this share of bounces (in percent) receivers start to doubt a sender's list: the
/// threshold Mailchimp, SES and Postmark hold senders to.
pub const BOUNCE_RATE_WARNING: f64 = 2.0;
/// Above this share of complaints (in percent) Gmail's bulk-sender rules start to bite (it
/// asks for under 0.1%, and blocks above 0.3%).
pub const COMPLAINT_RATE_WARNING: f64 = 0.1;

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
        Report::build(ledger, issue, IssueLock::is_held(state, issue))
    }

    /// The report a send prints when it is done, while it still holds the issue's lock: its
    /// own claims are all settled, so a `sending` row left is uncertain, as `status` will say.
    pub fn after_own_send(ledger: &Ledger, issue: &IssueId) -> crate::ledger::Result<Report> {
        Report::build(ledger, issue, false)
    }

    fn build(ledger: &Ledger, issue: &IssueId, running: bool) -> crate::ledger::Result<Report> {
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
        let reports = ledger.report_counts(issue)?;
        let rate = |count: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                count as f64 * 100.0 / of as f64
            }
        };
        let bounce_rate = rate(reports.hard + reports.soft, counts.sent + counts.failed);
        let complaint_rate = rate(reports.complaints, counts.sent);
        let mut warnings = Vec::new();
        if bounce_rate > BOUNCE_RATE_WARNING {
            warnings.push(format!(
                "{bounce_rate:.1}% of the messages bounced, above the {BOUNCE_RATE_WARNING}% receivers tolerate: the list has old or mistyped addresses (the bounced ones are off it now; check where new ones come from)"
            ));
        }
        if complaint_rate > COMPLAINT_RATE_WARNING {
            warnings.push(format!(
                "{complaint_rate:.2}% of the readers marked the issue as spam, above the {COMPLAINT_RATE_WARNING}% Gmail asks bulk senders to stay under (it blocks above 0.3%): make sure everyone on the list asked for it, and that leaving is easy"
            ));
        }
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
            hard_bounces: reports.hard,
            soft_bounces: reports.soft,
            complaints: reports.complaints,
            bounce_rate,
            complaint_rate,
            warnings,
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
            hard_bounces: 0,
            soft_bounces: 0,
            complaints: 0,
            bounce_rate: 0.0,
            complaint_rate: 0.0,
            warnings: Vec::new(),
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
