//! `test_sends`: proofs sent to the editor, logged apart from deliveries so they never count
//! as one.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Ledger, Result, timestamp};
use crate::model::address::AddressKey;
use crate::model::issue::IssueId;

/// How one proof went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofOutcome {
    Sent,
    Deferred,
    Failed,
    /// Handed over whole, and the relay's answer never came.
    Uncertain,
}

impl ProofOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ProofOutcome::Sent => "sent",
            ProofOutcome::Deferred => "deferred",
            ProofOutcome::Failed => "failed",
            ProofOutcome::Uncertain => "uncertain",
        }
    }
}

impl Ledger {
    pub fn log_test_send(
        &mut self,
        issue: &IssueId,
        email: &AddressKey,
        outcome: ProofOutcome,
        reply: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.connection.execute(
            "INSERT INTO test_sends (issue, email, outcome, reply, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![issue.as_str(), email.as_str(), outcome.as_str(), reply, timestamp(now)],
        )?;
        Ok(())
    }

    pub fn test_send_count(&self, issue: &IssueId) -> Result<u64> {
        Ok(self.connection.query_row(
            "SELECT COUNT(*) FROM test_sends WHERE issue = ?1",
            [issue.as_str()],
            |row| row.get::<_, i64>(0).map(|count| count as u64),
        )?)
    }
}
