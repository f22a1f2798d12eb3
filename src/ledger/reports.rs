//! `reports`: the bounces and complaints that came back, each kept whole (the raw message, or
//! the relay's refusal), so that an editor can see why an address was taken off the list;
//! and the suppression each one caused, written in the same commit as the report.
//!
//! A report is identified by the SHA-256 of what came in (`sha256`, UNIQUE): reading the same
//! mailbox or file again records nothing twice. A message that reports on several readers
//! (one DSN for two recipients) gives one row each, the second and later under
//! `<sha256>#<n>`.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::deliveries::stored_issue;
use super::suppressions::insert_suppression;
use super::{Ledger, Result, Source, parse_timestamp, parse_word, timestamp};
use crate::model::address::AddressKey;
use crate::model::issue::IssueId;

/// What a report says about its reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportKind {
    /// The address does not take mail (a 5.x.x status, or a 5xx to RCPT during a send).
    Hard,
    /// Not this time: a full mailbox, a server that gave up retrying.
    Soft,
    /// The reader marked the mail as spam (a feedback report).
    Complaint,
    /// About one of our messages, but asking nothing (an automatic reply, a delay warning).
    Ignored,
}

impl ReportKind {
    const ALL: [ReportKind; 4] = [
        ReportKind::Hard,
        ReportKind::Soft,
        ReportKind::Complaint,
        ReportKind::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Hard => "hard",
            ReportKind::Soft => "soft",
            ReportKind::Complaint => "complaint",
            ReportKind::Ignored => "ignored",
        }
    }

    fn parse(text: &str) -> Result<ReportKind> {
        parse_word(text, "the report kind", |text| {
            ReportKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == text)
        })
    }
}

/// A report to keep.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    /// What identifies it: `report_id` of the bytes that came in.
    pub id: String,
    /// Where it came from: a file and message number, an IMAP message, `smtp` for a refusal.
    pub source: &'a str,
    pub kind: ReportKind,
    /// The reader it is about, once tied to one of our deliveries.
    pub email: Option<&'a AddressKey>,
    pub issue: Option<&'a IssueId>,
    /// The RFC 3463 status (`5.1.1`), the reply code, or the feedback type of a complaint.
    pub status: Option<&'a str>,
    /// The receiving server's words, or why the report asks nothing.
    pub detail: Option<&'a str>,
    pub raw: &'a [u8],
}

/// When a report takes its reader off the list, decided by the caller's policy and carried
/// out in the same commit as the report, so that neither is ever kept without the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suppress {
    Never,
    /// At once, with this source and reason.
    Now {
        source: Source,
        reason: String,
    },
    /// When the `limit` issues most recently delivered to the reader (through a relay) all
    /// bounced: soft bounces in a row, over different issues.
    AfterStreak {
        limit: u32,
        reason: String,
    },
}

/// What keeping a report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The same report was kept before: nothing changed.
    Duplicate,
    /// Kept as report `id`; `suppressed` when it took its reader off the list just now.
    New { id: i64, suppressed: bool },
}

/// A report as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredReport {
    pub id: i64,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub kind: ReportKind,
    pub email: Option<String>,
    pub issue: Option<String>,
    pub status: Option<String>,
    pub detail: Option<String>,
    /// The message as it came in (or the relay's reply), to show an editor exactly why.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// Readers of an issue with each kind of report: hard, soft (without a hard one) and
/// complaints, each reader counted once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportCounts {
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
}

/// The identifier of the `index`th report (from 0) found in the bytes `raw`.
pub fn report_id(raw: &[u8], index: usize) -> String {
    let digest: String = Sha256::digest(raw)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if index == 0 {
        digest
    } else {
        format!("{digest}#{}", index + 1)
    }
}

/// The prefix of the reason a refusal at RCPT suppresses with: `send --retry-failed` lifts
/// these for the readers it queues again (the refusal may have been the relay's mistake).
fn refusal_reason_prefix(issue: &IssueId) -> String {
    format!("refused at RCPT during the send of {issue}: ")
}

/// The RFC 3463 status in an SMTP reply (`550 5.1.1 ...` gives `5.1.1`), else its code.
pub fn reply_status(reply: &str) -> Option<String> {
    let mut words = reply.split_whitespace();
    let code = words.next()?;
    match words.next() {
        Some(status)
            if status.split('.').count() == 3
                && status.split('.').all(|part| part.parse::<u16>().is_ok()) =>
        {
            Some(status.to_string())
        }
        _ => Some(code.to_string()),
    }
}

impl Ledger {
    /// Keeps a report and carries out `suppress`, in one commit. A report kept before changes
    /// nothing.
    pub fn keep_report(
        &mut self,
        report: &NewReport,
        suppress: &Suppress,
        now: DateTime<Utc>,
    ) -> Result<Kept> {
        let transaction = self.connection.transaction()?;
        let Some(id) = insert_report(&transaction, report, now)? else {
            return Ok(Kept::Duplicate);
        };
        let suppressed = match (suppress, report.email) {
            (_, None) | (Suppress::Never, _) => false,
            (Suppress::Now { source, reason }, Some(email)) => {
                insert_suppression(&transaction, email, source, Some(reason), now)?
            }
            (Suppress::AfterStreak { limit, reason }, Some(email)) => {
                bounced_in_a_row(&transaction, email, *limit)?
                    && insert_suppression(&transaction, email, &Source::Bounce, Some(reason), now)?
            }
        };
        transaction.commit()?;
        Ok(Kept::New { id, suppressed })
    }

    /// Every report about the address, oldest first, raw bytes included: what `subscribers
    /// show` prints to say why an address was suppressed.
    pub fn reports_for(&self, email: &AddressKey) -> Result<Vec<StoredReport>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT id, source, received_at, kind, email, issue, status, detail, raw
             FROM reports WHERE email = ?1 ORDER BY id",
        )?;
        let mut rows = statement.query([email.as_str()])?;
        let mut reports = Vec::new();
        while let Some(row) = rows.next()? {
            reports.push(StoredReport {
                id: row.get(0)?,
                source: row.get(1)?,
                received_at: parse_timestamp(&row.get::<_, String>(2)?)?,
                kind: ReportKind::parse(&row.get::<_, String>(3)?)?,
                email: row.get(4)?,
                issue: row.get(5)?,
                status: row.get(6)?,
                detail: row.get(7)?,
                raw: row.get(8)?,
            });
        }
        Ok(reports)
    }

    /// How many of the issue's readers bounced or complained.
    pub fn report_counts(&self, issue: &IssueId) -> Result<ReportCounts> {
        let mut statement = self.connection.prepare_cached(
            "SELECT
                COUNT(DISTINCT CASE WHEN kind = 'hard' THEN email END),
                COUNT(DISTINCT CASE WHEN kind = 'soft' AND email NOT IN
                    (SELECT email FROM reports WHERE issue = ?1 AND kind = 'hard'
                     AND email IS NOT NULL) THEN email END),
                COUNT(DISTINCT CASE WHEN kind = 'complaint' THEN email END)
             FROM reports WHERE issue = ?1 AND email IS NOT NULL",
        )?;
        let (hard, soft, complaints) = statement.query_row([issue.as_str()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        Ok(ReportCounts {
            hard: hard as u64,
            soft: soft as u64,
            complaints: complaints as u64,
        })
    }

    /// The issue a report kept in the ledger is about, if known.
    pub fn report_issue(&self, id: i64) -> Result<Option<IssueId>> {
        let issue: Option<Option<String>> = self
            .connection
            .query_row("SELECT issue FROM reports WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        issue.flatten().map(stored_issue).transpose()
    }
}

/// Inserts the report; `None` when one with its id is already kept.
fn insert_report(
    connection: &rusqlite::Connection,
    report: &NewReport,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let changed = connection.execute(
        "INSERT OR IGNORE INTO reports
            (sha256, source, received_at, kind, email, issue, status, detail, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            report.id,
            report.source,
            timestamp(now),
            report.kind.as_str(),
            report.email.map(AddressKey::as_str),
            report.issue.map(IssueId::as_str),
            report.status,
            report.detail,
            report.raw,
        ],
    )?;
    Ok((changed == 1).then(|| connection.last_insert_rowid()))
}

/// Whether each of the `limit` issues most recently delivered to `email` through a relay has a
/// bounce from it: soft bounces in a row over different issues. An issue delivered without a
/// bounce in between breaks the run; so does one whose bounce has not come yet.
fn bounced_in_a_row(
    connection: &rusqlite::Connection,
    email: &AddressKey,
    limit: u32,
) -> Result<bool> {
    let bounced: i64 = connection.query_row(
        "SELECT COUNT(*) FROM (
             SELECT issue FROM deliveries
             WHERE email = ?1 AND state = 'sent' AND via = 'relay'
             ORDER BY sent_at DESC, issue DESC LIMIT ?2
         ) AS latest
         WHERE EXISTS (SELECT 1 FROM reports WHERE reports.email = ?1
                       AND reports.issue = latest.issue AND kind IN ('soft', 'hard'))",
        params![email.as_str(), limit],
        |row| row.get(0),
    )?;
    Ok(bounced >= i64::from(limit))
}

/// A 5xx to RCPT during a send, kept as a hard bounce of the issue and suppressing its
/// reader, in the caller's commit (the one that records the failure).
pub(super) fn keep_refusal(
    connection: &rusqlite::Connection,
    issue: &IssueId,
    email: &AddressKey,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let what = format!("RCPT\0{issue}\0{email}\0{reply}");
    let status = reply_status(reply);
    let report = NewReport {
        id: report_id(what.as_bytes(), 0),
        source: "smtp",
        kind: ReportKind::Hard,
        email: Some(email),
        issue: Some(issue),
        status: status.as_deref(),
        detail: Some(reply),
        raw: reply.as_bytes(),
    };
    insert_report(connection, &report, now)?;
    let reason = format!("{}{reply}", refusal_reason_prefix(issue));
    insert_suppression(connection, email, &Source::Bounce, Some(&reason), now)?;
    Ok(())
}

/// `send --retry-failed`: lifts the suppressions that the issue's own refusals at RCPT set
/// for `email`, noting why; any other suppression stays. Returns whether one was lifted.
pub(super) fn lift_refusal(
    connection: &rusqlite::Connection,
    issue: &IssueId,
    email: &AddressKey,
    now: DateTime<Utc>,
) -> Result<bool> {
    let prefix = refusal_reason_prefix(issue);
    let reason: Option<Option<String>> = connection
        .query_row(
            "SELECT reason FROM suppressions WHERE email = ?1 AND source = 'bounce'",
            [email.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    if !reason
        .flatten()
        .is_some_and(|reason| reason.starts_with(&prefix))
    {
        return Ok(false);
    }
    connection.execute(
        "DELETE FROM suppressions WHERE email = ?1",
        [email.as_str()],
    )?;
    super::suppressions::log(
        connection,
        email,
        "lifted",
        &Source::Bounce,
        Some(&format!("send --retry-failed of {issue}")),
        now,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{issue, key, now, open};
    use super::super::{Outcome, State, Via};
    use super::*;
    use crate::ledger::Claim;

    fn report<'a>(
        raw: &'a [u8],
        kind: ReportKind,
        email: &'a AddressKey,
        issue: &'a IssueId,
    ) -> NewReport<'a> {
        NewReport {
            id: report_id(raw, 0),
            source: "test.eml",
            kind,
            email: Some(email),
            issue: Some(issue),
            status: Some("5.1.1"),
            detail: Some("smtp; 550 5.1.1 User unknown"),
            raw,
        }
    }

    fn now_suppress() -> Suppress {
        Suppress::Now {
            source: Source::Bounce,
            reason: "5.1.1 User unknown".into(),
        }
    }

    /// `email` got each issue through a relay, one day apart, in order.
    fn delivered(ledger: &mut Ledger, email: &AddressKey, issues: &[&str]) {
        for (day, id) in issues.iter().enumerate() {
            let when = now() + chrono::Duration::days(day as i64);
            ledger
                .enqueue(&issue(id), [(email, email.as_str())], when)
                .unwrap();
            ledger
                .mark_sending(
                    &issue(id),
                    &[Claim {
                        email: email.clone(),
                        message_id: format!("<{id}@x>"),
                        verp_tag: None,
                    }],
                    when,
                )
                .unwrap();
            ledger
                .record(
                    &issue(id),
                    &[Outcome {
                        email: email.clone(),
                        state: State::Sent,
                        reply: Some("250 ok".into()),
                        hard_bounce: false,
                    }],
                    Via::Relay,
                    when,
                )
                .unwrap();
        }
    }

    #[test]
    fn a_report_is_kept_once_with_its_suppression_in_the_same_commit() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@x.example");
        let raw = b"a bounce";
        let kept = ledger
            .keep_report(
                &report(raw, ReportKind::Hard, &ada, &issue("i")),
                &now_suppress(),
                now(),
            )
            .unwrap();
        assert!(matches!(
            kept,
            Kept::New {
                suppressed: true,
                ..
            }
        ));
        let again = ledger
            .keep_report(
                &report(raw, ReportKind::Hard, &ada, &issue("i")),
                &now_suppress(),
                now(),
            )
            .unwrap();
        assert_eq!(again, Kept::Duplicate);
        let suppression = ledger.suppression(&ada).unwrap().unwrap();
        assert_eq!(suppression.source, Source::Bounce);
        let reports = ledger.reports_for(&ada).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].raw, raw);
        assert_eq!(reports[0].kind, ReportKind::Hard);
        let counts = ledger.report_counts(&issue("i")).unwrap();
        assert_eq!((counts.hard, counts.soft, counts.complaints), (1, 0, 0));
    }

    #[test]
    fn soft_bounces_suppress_only_over_the_latest_issues_all_bouncing() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@x.example");
        delivered(&mut ledger, &ada, &["i1", "i2", "i3", "i4"]);
        let streak = Suppress::AfterStreak {
            limit: 3,
            reason: "soft bounces".into(),
        };
        let soft = |ledger: &mut Ledger, id: &str| {
            let raw = format!("soft bounce of {id}");
            let kept = ledger
                .keep_report(
                    &report(raw.as_bytes(), ReportKind::Soft, &ada, &issue(id)),
                    &streak,
                    now(),
                )
                .unwrap();
            matches!(
                kept,
                Kept::New {
                    suppressed: true,
                    ..
                }
            )
        };
        // i1 and i2 bounced, i3 did not (yet), i4 bounced: no run of three.
        assert!(!soft(&mut ledger, "i1"));
        assert!(!soft(&mut ledger, "i2"));
        assert!(!soft(&mut ledger, "i4"));
        assert!(ledger.suppression(&ada).unwrap().is_none());
        // i3's bounce arrives late: i2, i3 and i4, the latest three, all bounced.
        assert!(soft(&mut ledger, "i3"));
        assert_eq!(
            ledger.suppression(&ada).unwrap().unwrap().source,
            Source::Bounce
        );
    }

    #[test]
    fn a_refusal_at_rcpt_is_a_hard_bounce_lifted_again_by_a_retry_of_its_issue() {
        let (_dir, mut ledger) = open();
        let ada = key("ada@x.example");
        ledger
            .enqueue(&issue("i"), [(&ada, "ada@x.example")], now())
            .unwrap();
        let claim = Claim {
            email: ada.clone(),
            message_id: "<m@x>".into(),
            verp_tag: None,
        };
        ledger
            .mark_sending(&issue("i"), std::slice::from_ref(&claim), now())
            .unwrap();
        let reply = "550 5.1.1 <ada@x.example>: Recipient address rejected: User unknown";
        ledger
            .record(
                &issue("i"),
                &[Outcome {
                    email: ada.clone(),
                    state: State::Failed,
                    reply: Some(reply.into()),
                    hard_bounce: true,
                }],
                Via::Relay,
                now(),
            )
            .unwrap();
        let reports = ledger.reports_for(&ada).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (reports[0].source.as_str(), reports[0].status.as_deref()),
            ("smtp", Some("5.1.1"))
        );
        assert!(ledger.suppression(&ada).unwrap().is_some());
        assert_eq!(ledger.requeue_failed(&issue("i"), now()).unwrap(), 1);
        assert!(ledger.suppression(&ada).unwrap().is_none());
        let history = ledger.suppression_history(&ada).unwrap();
        assert_eq!(
            history[1].reason.as_deref(),
            Some("send --retry-failed of i")
        );
    }

    #[test]
    fn statuses_come_from_the_reply() {
        assert_eq!(
            reply_status("550 5.1.1 <a@b>: no").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(reply_status("554 go away").as_deref(), Some("554"));
        assert_eq!(report_id(b"x", 0).len(), 64);
        assert!(report_id(b"x", 1).ends_with("#2"));
    }
}
