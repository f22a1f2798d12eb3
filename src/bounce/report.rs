//! What a message in the bounce mailbox says about our mail: data for the ledger, no I/O.

use std::fmt;

use crate::model::address::EmailAddress;

use super::verp::VerpTag;

/// One finding in one message. A message gives at least one: a delivery status notification
/// may report several recipients, each its own `Bounce` or `Ignored`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Bounce(Bounce),
    Complaint(Complaint),
    Ignored(Ignored),
}

impl Report {
    /// The tag of the message this report is about, if the report carries one.
    pub fn verp_tag(&self) -> Option<&VerpTag> {
        match self {
            Report::Bounce(bounce) => bounce.verp_tag.as_ref(),
            Report::Complaint(complaint) => complaint.verp_tag.as_ref(),
            Report::Ignored(ignored) => ignored.verp_tag.as_ref(),
        }
    }

    /// Whether a person should see the message: mail that is not a report (a reader's reply
    /// names our Message-ID in `In-Reply-To`, yet it is for the editors), a bounce that
    /// does not say how it failed, bytes that do not parse. A message may leave the inbox
    /// only if none of its reports needs a person and one of them is tied to a delivery.
    pub fn needs_a_person(&self) -> bool {
        matches!(
            self,
            Report::Ignored(Ignored {
                reason: IgnoredReason::NotAReport
                    | IgnoredReason::Unclassified
                    | IgnoredReason::Unparseable,
                ..
            })
        )
    }

    /// The Message-ID of the message this report is about, in angle brackets as the ledger
    /// stores it (`<2021-08-23.0123abcd@example.com>`).
    pub fn original_message_id(&self) -> Option<&str> {
        match self {
            Report::Bounce(bounce) => bounce.original_message_id.as_deref(),
            Report::Complaint(complaint) => complaint.original_message_id.as_deref(),
            Report::Ignored(ignored) => ignored.original_message_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    /// The address will never take mail: suppress it.
    Hard,
    /// Not this time (a full mailbox, a policy block, a server that gave up retrying): count
    /// it, and suppress after several in a row.
    Soft,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
        }
    }
}

/// A message that was not delivered and will not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub kind: BounceKind,
    /// The address that failed, as the report names it (`Original-Recipient`, else
    /// `Final-Recipient`, else what the text says).
    pub recipient: Option<EmailAddress>,
    pub verp_tag: Option<VerpTag>,
    /// An RFC 3463 status (`5.1.1`), or the bare SMTP reply code (`554`) from a bounce that
    /// gives none.
    pub status: Option<String>,
    /// The receiving server's words (`smtp; 550 5.1.1 <x@example.org>: User unknown`), on one
    /// line.
    pub diagnostic: Option<String>,
    pub original_message_id: Option<String>,
}

/// A reader marked our message as spam, reported through a feedback loop (ARF, RFC 5965).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// Often missing or redacted (`redacted@example.org`) by the mailbox provider: the tag
    /// and the Message-ID are what identify the reader.
    pub recipient: Option<EmailAddress>,
    pub verp_tag: Option<VerpTag>,
    /// `abuse`, `fraud` or `virus`.
    pub feedback_type: String,
    pub original_message_id: Option<String>,
}

/// A message, or one recipient block of it, that asks nothing of the ledger. The tag and
/// Message-ID are kept when found, so a caller can still tell a reply to our mail (which may
/// leave the inbox) from unrelated mail (which must stay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub reason: IgnoredReason,
    pub verp_tag: Option<VerpTag>,
    pub original_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredReason {
    /// A vacation or other automatic reply (RFC 3834 and its unofficial cousins).
    AutoReply,
    /// A warning that delivery is delayed (`Action: delayed`): the server is still trying, and
    /// will report again if it gives up. Counting it would count that failure twice, or
    /// count against a reader whose mail did arrive in the end.
    Delayed { recipient: Option<EmailAddress> },
    /// A delivery status notification that says delivered, relayed or expanded.
    NotAFailure { action: String },
    /// A feedback report of a type that is not a complaint (`not-spam`, `auth-failure`...).
    NotAComplaint { feedback_type: String },
    /// A bounce that gives no status and no wording to tell hard from soft.
    Unclassified,
    /// Not a bounce, complaint or automatic reply: most likely a person writing.
    NotAReport,
    /// Bytes that do not parse as a message.
    Unparseable,
}

impl fmt::Display for IgnoredReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoredReason::AutoReply => f.write_str("an automatic reply"),
            IgnoredReason::Delayed { recipient: Some(r) } => {
                write!(f, "a delay warning for {r}, not a failure")
            }
            IgnoredReason::Delayed { recipient: None } => {
                f.write_str("a delay warning, not a failure")
            }
            IgnoredReason::NotAFailure { action } => {
                write!(f, "a delivery report that says `{action}`, not a failure")
            }
            IgnoredReason::NotAComplaint { feedback_type } => {
                write!(
                    f,
                    "a feedback report of type `{feedback_type}`, not a complaint"
                )
            }
            IgnoredReason::Unclassified => {
                f.write_str("a bounce that does not say whether the failure is permanent")
            }
            IgnoredReason::NotAReport => f.write_str("not a bounce, complaint or automatic reply"),
            IgnoredReason::Unparseable => f.write_str("not a readable email message"),
        }
    }
}
