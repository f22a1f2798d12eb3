//! What comes back after a send: bounce and complaint reports (`bounce::classify`), tied to
//! the delivery they are about, kept in the ledger, and acted on by the newsletter's policy.
//!
//! The policy (README, "Bounces and complaints"): a hard bounce suppresses the address at once
//! (source `bounce`, with the receiving server's words); soft bounces suppress it once the
//! `bounces.soft_limit` issues most recently delivered to it all bounced; a complaint
//! suppresses it at once (source `complaint`); anything else (an automatic reply, a delay
//! warning) is kept when it is about one of our messages, and changes nothing.
//!
//! A report is tied to a delivery by the VERP tag of its envelope sender, else by the
//! Message-ID of the message it returns: both are HMACs only the reader's own copy carries,
//! so no one can write a bounce that takes a reader of their choosing off the list. The
//! recipient address alone ties a report only when no `bounce_address` is set (without VERP,
//! a bounce that drops the returned message has nothing better). A report tied to nothing of
//! ours is not kept and changes nothing: the mailbox may hold a colleague's own bounces.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::bounce::imap::Disposition;
use crate::bounce::{Bounce, BounceKind, RawMessage, Report, classify};
use crate::ledger::{Delivered, Kept, Ledger, NewReport, ReportKind, Source, Suppress, report_id};
use crate::model::address::EmailAddress;
use crate::model::newsletter::BouncePolicy;

/// Reads reports into one ledger, for one newsletter.
pub struct Ingest<'a> {
    ledger: &'a mut Ledger,
    bounce_address: Option<&'a EmailAddress>,
    policy: BouncePolicy,
    now: DateTime<Utc>,
}

/// How a report was tied to one of our deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiedBy {
    VerpTag,
    MessageId,
    /// The recipient address alone (no `bounce_address` set).
    Address,
}

/// One report found in a message, and what became of it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub report: Report,
    /// The delivery it is about, when it could be tied to one.
    pub delivery: Option<(Delivered, TiedBy)>,
    /// What keeping it did; `None` when it was not kept (tied to nothing of ours).
    pub kept: Option<Kept>,
}

/// A message read, and what each report in it came to.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub source: String,
    pub findings: Vec<Finding>,
}

impl Ingested {
    /// Whether the message may leave the bounce mailbox: every report in it was understood
    /// and one is about a delivery of ours. A person's reply, a bounce of a colleague's mail,
    /// anything unclear stays where it was.
    pub fn disposition(&self) -> Disposition {
        let understood = !self
            .findings
            .iter()
            .any(|finding| finding.report.needs_a_person());
        let ours = self
            .findings
            .iter()
            .any(|finding| finding.delivery.is_some());
        if understood && ours {
            Disposition::Processed
        } else {
            Disposition::Leave
        }
    }

    /// Addresses this message took off the list.
    pub fn suppressed(&self) -> usize {
        self.findings
            .iter()
            .filter(|finding| {
                matches!(
                    finding.kept,
                    Some(Kept::New {
                        suppressed: true,
                        ..
                    })
                )
            })
            .count()
    }
}

impl<'a> Ingest<'a> {
    pub fn new(
        ledger: &'a mut Ledger,
        bounce_address: Option<&'a EmailAddress>,
        policy: BouncePolicy,
        now: DateTime<Utc>,
    ) -> Ingest<'a> {
        Ingest {
            ledger,
            bounce_address,
            policy,
            now,
        }
    }

    /// Classifies one message, and keeps and acts on each report in it that is about one of
    /// our deliveries.
    pub fn message(&mut self, message: &RawMessage) -> crate::ledger::Result<Ingested> {
        let reports = classify(&message.bytes, self.bounce_address);
        let mut findings = Vec::with_capacity(reports.len());
        for (index, report) in reports.into_iter().enumerate() {
            let delivery = self.tie(&report)?;
            let kept = match &delivery {
                Some((delivered, _)) => Some(self.keep(&report, delivered, message, index)?),
                None => None,
            };
            findings.push(Finding {
                report,
                delivery,
                kept,
            });
        }
        Ok(Ingested {
            source: message.source.clone(),
            findings,
        })
    }

    fn tie(&self, report: &Report) -> crate::ledger::Result<Option<(Delivered, TiedBy)>> {
        if let Some(tag) = report.verp_tag()
            && let Some(delivered) = self.ledger.delivery_by_verp_tag(tag.as_str())?
        {
            return Ok(Some((delivered, TiedBy::VerpTag)));
        }
        if let Some(message_id) = report.original_message_id()
            && let Some(delivered) = self.ledger.delivery_by_message_id(message_id)?
        {
            return Ok(Some((delivered, TiedBy::MessageId)));
        }
        let recipient = match report {
            Report::Bounce(bounce) => bounce.recipient.as_ref(),
            Report::Complaint(complaint) => complaint.recipient.as_ref(),
            Report::Ignored(_) => None,
        };
        if self.bounce_address.is_none()
            && let Some(recipient) = recipient
            && let Some(delivered) = self.ledger.latest_delivery_to(&recipient.key())?
        {
            return Ok(Some((delivered, TiedBy::Address)));
        }
        Ok(None)
    }

    fn keep(
        &mut self,
        report: &Report,
        delivered: &Delivered,
        message: &RawMessage,
        index: usize,
    ) -> crate::ledger::Result<Kept> {
        let issue = &delivered.issue;
        let (kind, status, detail, suppress) = match report {
            Report::Bounce(bounce) => {
                let words = bounce_words(bounce);
                match bounce.kind {
                    BounceKind::Hard => (
                        ReportKind::Hard,
                        bounce.status.clone(),
                        bounce.diagnostic.clone(),
                        Suppress::Now {
                            source: Source::Bounce,
                            reason: format!("hard bounce of {issue}: {words}"),
                        },
                    ),
                    BounceKind::Soft => (
                        ReportKind::Soft,
                        bounce.status.clone(),
                        bounce.diagnostic.clone(),
                        Suppress::AfterStreak {
                            limit: self.policy.soft_limit,
                            reason: format!(
                                "soft bounces from the last {} issues in a row, the latest of {issue}: {words}",
                                self.policy.soft_limit
                            ),
                        },
                    ),
                }
            }
            Report::Complaint(complaint) => (
                ReportKind::Complaint,
                Some(complaint.feedback_type.clone()),
                None,
                Suppress::Now {
                    source: Source::Complaint,
                    reason: format!(
                        "marked {issue} as spam (a feedback report of type `{}`)",
                        complaint.feedback_type
                    ),
                },
            ),
            Report::Ignored(ignored) => (
                ReportKind::Ignored,
                None,
                Some(ignored.reason.to_string()),
                Suppress::Never,
            ),
        };
        self.ledger.keep_report(
            &NewReport {
                id: report_id(&message.bytes, index),
                source: &message.source,
                kind,
                email: Some(&delivered.email),
                issue: Some(issue),
                status: status.as_deref(),
                detail: detail.as_deref(),
                raw: &message.bytes,
            },
            &suppress,
            self.now,
        )
    }
}

/// `5.1.1 smtp; 550 5.1.1 <x@example.org>: User unknown`, or what there is of it.
fn bounce_words(bounce: &Bounce) -> String {
    match (&bounce.status, &bounce.diagnostic) {
        (Some(status), Some(diagnostic)) => format!("{status} {diagnostic}"),
        (Some(status), None) => status.clone(),
        (None, Some(diagnostic)) => diagnostic.clone(),
        (None, None) => "no status given".to_string(),
    }
}

impl fmt::Display for Finding {
    /// One line: what the report is, whom it is about, and what was done.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.report {
            Report::Bounce(bounce) => {
                let kind = bounce.kind.as_str();
                match &bounce.status {
                    Some(status) => write!(f, "{kind} bounce ({status})")?,
                    None => write!(f, "{kind} bounce")?,
                }
            }
            Report::Complaint(complaint) => {
                write!(f, "complaint (feedback type {})", complaint.feedback_type)?
            }
            Report::Ignored(ignored) => write!(f, "{}", ignored.reason)?,
        }
        let Some((delivered, tied_by)) = &self.delivery else {
            return f.write_str(": about no delivery of ours; ignored");
        };
        let how = match tied_by {
            TiedBy::VerpTag => "by its VERP tag",
            TiedBy::MessageId => "by its Message-ID",
            TiedBy::Address => "by the address alone",
        };
        write!(f, " for {} of {} ({how})", delivered.email, delivered.issue)?;
        match (&self.kept, &self.report) {
            (Some(Kept::Duplicate), _) => f.write_str(": already recorded"),
            (
                Some(Kept::New {
                    suppressed: true, ..
                }),
                _,
            ) => f.write_str(": suppressed"),
            (Some(Kept::New { .. }), Report::Bounce(bounce)) if bounce.kind == BounceKind::Soft => {
                f.write_str(": counted")
            }
            (Some(Kept::New { .. }), Report::Ignored(_)) => f.write_str(": kept, nothing to do"),
            (Some(Kept::New { .. }), _) => f.write_str(": recorded (already suppressed)"),
            (None, _) => Ok(()),
        }
    }
}

/// What a run of `bounces ingest` or `bounces fetch` came to, for its last line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub messages: u64,
    pub hard: u64,
    pub soft: u64,
    pub complaints: u64,
    /// About one of our messages but asking nothing: automatic replies, delay warnings.
    pub ignored: u64,
    /// Reports tied to nothing of ours (or not reports at all).
    pub not_ours: u64,
    /// Kept before: reading the same message again.
    pub duplicates: u64,
    pub suppressed: u64,
}

impl Tally {
    pub fn add(&mut self, ingested: &Ingested) {
        self.messages += 1;
        for finding in &ingested.findings {
            match (&finding.delivery, &finding.kept, &finding.report) {
                (None, _, _) => self.not_ours += 1,
                (_, Some(Kept::Duplicate), _) => self.duplicates += 1,
                (_, _, Report::Bounce(bounce)) if bounce.kind == BounceKind::Hard => self.hard += 1,
                (_, _, Report::Bounce(_)) => self.soft += 1,
                (_, _, Report::Complaint(_)) => self.complaints += 1,
                (_, _, Report::Ignored(_)) => self.ignored += 1,
            }
        }
        self.suppressed += ingested.suppressed() as u64;
    }
}

impl fmt::Display for Tally {
    /// `5 messages: 1 hard bounce, 3 soft, 1 complaint, 1 asking nothing, 0 not about our
    /// mail, 0 already recorded; 3 addresses taken off the list`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |count: u64| if count == 1 { "" } else { "s" };
        write!(
            f,
            "{} message{}: {} hard bounce{}, {} soft, {} complaint{}, {} asking nothing, {} not about our mail, {} already recorded; {} address{} taken off the list",
            self.messages,
            s(self.messages),
            self.hard,
            s(self.hard),
            self.soft,
            self.complaints,
            s(self.complaints),
            self.ignored,
            self.not_ours,
            self.duplicates,
            self.suppressed,
            if self.suppressed == 1 { "" } else { "es" },
        )
    }
}
