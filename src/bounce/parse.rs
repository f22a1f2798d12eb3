//! Recognising what one message in the bounce mailbox is: a delivery status notification
//! (RFC 3464), an abuse report (ARF, RFC 5965, or Microsoft's JMRP), one of the common
//! non-standard bounces (`plain`), an automatic reply, or none of these.
//!
//! mail-parser takes the MIME apart; the machine-readable parts of a report
//! (`message/delivery-status`, `message/feedback-report`) are blocks of header-like fields
//! that it hands over as bytes, and `field_blocks` reads those. What the report is about is
//! looked for everywhere it may be, because bouncing servers drop different things: the VERP
//! tag in the bounce's own envelope headers (`Delivered-To`, `X-Original-To`, `To`,
//! `Received: ... for <...>`), in the report's fields (`X-Postfix-Sender`,
//! `Original-Mail-From`) and in the returned message's `Return-Path`; the Message-ID in the
//! returned message or headers. (listmonk read only the bounce's own headers, and missed
//! identifiers that sendmail returns in the `text/rfc822-headers` part.)
//!
//! Conservative throughout: a message becomes a bounce or a complaint only on clear evidence,
//! since either may suppress a reader; anything unclear is `Ignored` with the reason.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::model::address::EmailAddress;

use super::plain;
use super::report::{Bounce, BounceKind, Complaint, Ignored, IgnoredReason, Report};
use super::verp::{VerpTag, parse_verp};

/// What `raw` (one whole message) reports. Never empty. `bounce_address` is the newsletter's
/// `bounce_address`, to find VERP tags; without it, reports name readers only by address and
/// Message-ID.
pub fn classify(raw: &[u8], bounce_address: Option<&EmailAddress>) -> Vec<Report> {
    // Mail from anywhere goes through mail-parser: a panic inside it (the bounce fuzz target
    // found malformed MIME that trips one of its debug assertions) is one unreadable message,
    // not the end of an ingest of thousands.
    std::panic::catch_unwind(|| classify_message(raw, bounce_address))
        .unwrap_or_else(|_| vec![ignored(IgnoredReason::Unparseable, None, None)])
}

fn classify_message(raw: &[u8], bounce_address: Option<&EmailAddress>) -> Vec<Report> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return vec![ignored(IgnoredReason::Unparseable, None, None)];
    };
    let context = Context {
        bounce_address,
        message: &message,
    };
    let report_type = context.report_type();
    let reports = match report_type.as_deref() {
        Some("delivery-status" | "global-delivery-status") => context.delivery_status(),
        Some("feedback-report") => context.feedback_report(),
        _ => None,
    };
    reports
        .or_else(|| context.microsoft_complaint())
        .or_else(|| plain::bounce(&context))
        .unwrap_or_else(|| {
            let reason = if context.is_auto_reply() {
                IgnoredReason::AutoReply
            } else {
                IgnoredReason::NotAReport
            };
            let original_message_id = context
                .header("In-Reply-To")
                .and_then(|value| message_id(&value));
            vec![ignored(reason, context.envelope_tag(), original_message_id)]
        })
}

/// The parsed message and what to look for in it.
pub(super) struct Context<'a, 'm> {
    pub(super) bounce_address: Option<&'a EmailAddress>,
    pub(super) message: &'a Message<'m>,
}

/// The headers of the message a report returns, as `(name, unfolded value)`.
#[derive(Debug, Default)]
pub(super) struct Returned {
    fields: Vec<(String, String)>,
}

impl Returned {
    pub(super) fn from_message(message: &Message<'_>) -> Returned {
        Returned {
            fields: message
                .headers_raw()
                .map(|(name, value)| (name.to_string(), unfold(value)))
                .collect(),
        }
    }

    pub(super) fn from_header_text(text: &[u8]) -> Returned {
        MessageParser::default()
            .parse_headers(text)
            .map(|message| Returned::from_message(&message))
            .unwrap_or_default()
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn message_id(&self) -> Option<String> {
        self.get("Message-ID").and_then(message_id)
    }
}

impl Context<'_, '_> {
    /// `report-type` of a `multipart/report`, lowercased.
    fn report_type(&self) -> Option<String> {
        let content_type = self.message.root_part().content_type()?;
        let is_report = content_type.ctype().eq_ignore_ascii_case("multipart")
            && content_type
                .subtype()
                .is_some_and(|subtype| subtype.eq_ignore_ascii_case("report"));
        is_report
            .then(|| content_type.attribute("report-type"))
            .flatten()
            .map(str::to_ascii_lowercase)
    }

    /// Every value of a header of the message itself, unfolded.
    pub(super) fn headers(&self, name: &str) -> Vec<String> {
        self.message
            .headers_raw()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| unfold(value))
            .collect()
    }

    pub(super) fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    pub(super) fn subject(&self) -> String {
        self.message.subject().unwrap_or_default().to_string()
    }

    /// The sender's address and display name, lowercased.
    pub(super) fn from(&self) -> (String, String) {
        let first = self.message.from().and_then(|from| from.first());
        let address = first.and_then(|addr| addr.address()).unwrap_or_default();
        let name = first.and_then(|addr| addr.name()).unwrap_or_default();
        (address.to_lowercase(), name.to_lowercase())
    }

    /// The VERP tag in the headers that carry this message's own envelope recipient: the
    /// address our messages were sent from, which is where their bounces and replies go.
    pub(super) fn envelope_tag(&self) -> Option<VerpTag> {
        let values = [
            "Delivered-To",
            "X-Original-To",
            "Envelope-To",
            "X-Envelope-To",
            "To",
            "Cc",
            "Received",
        ]
        .iter()
        .flat_map(|name| self.headers(name))
        .collect::<Vec<_>>();
        self.tag_in(values.iter().map(String::as_str))
    }

    /// The first VERP tag of ours among the addresses in `values`.
    pub(super) fn tag_in<'v>(&self, values: impl IntoIterator<Item = &'v str>) -> Option<VerpTag> {
        let bounce_address = self.bounce_address?;
        values
            .into_iter()
            .flat_map(address_tokens)
            .find_map(|token| parse_verp(token, bounce_address))
    }

    /// Whether `address` is the bounce address or one of its VERP forms: never a reader.
    pub(super) fn is_ours(&self, address: &str) -> bool {
        self.bounce_address.is_some_and(|bounce| {
            address.eq_ignore_ascii_case(bounce.as_str()) || parse_verp(address, bounce).is_some()
        })
    }

    /// The returned original: a `message/rfc822` part, or the `text/rfc822-headers` part that
    /// many servers send instead.
    pub(super) fn returned(&self) -> Option<Returned> {
        self.message.parts.iter().skip(1).find_map(|part| {
            let content_type = part.content_type()?;
            let (ctype, subtype) = (
                content_type.ctype().to_ascii_lowercase(),
                content_type.subtype()?.to_ascii_lowercase(),
            );
            match (ctype.as_str(), subtype.as_str(), &part.body) {
                ("message", "rfc822" | "global", PartType::Message(original)) => {
                    Some(Returned::from_message(original))
                }
                ("text", "rfc822-headers", _) | ("message", "global-headers", _) => {
                    Some(Returned::from_header_text(part.contents()))
                }
                _ => None,
            }
        })
    }

    /// The field blocks of the first part of type `message/<subtypes>`.
    fn machine_part(&self, subtypes: &[&str]) -> Option<Vec<Vec<(String, String)>>> {
        self.message.parts.iter().find_map(|part| {
            let content_type = part.content_type()?;
            let subtype = content_type.subtype()?;
            (content_type.ctype().eq_ignore_ascii_case("message")
                && subtypes.iter().any(|s| subtype.eq_ignore_ascii_case(s)))
            .then(|| field_blocks(&String::from_utf8_lossy(part.contents())))
        })
    }

    /// An RFC 3464 delivery status notification: one report per recipient block. `None` when
    /// the machine-readable part is missing, to let the plain-text heuristics try.
    fn delivery_status(&self) -> Option<Vec<Report>> {
        let blocks = self.machine_part(&["delivery-status", "global-delivery-status"])?;
        let (recipients, per_message): (Vec<_>, Vec<_>) = blocks.iter().partition(|block| {
            ["Final-Recipient", "Original-Recipient", "Action"]
                .iter()
                .any(|name| field(block, name).is_some())
        });
        if recipients.is_empty() {
            return None;
        }
        let returned = self.returned().unwrap_or_default();
        let original_message_id = returned.message_id();
        let verp_tag = self.envelope_tag().or_else(|| {
            let fields = per_message
                .iter()
                .flat_map(|block| field(block, "X-Postfix-Sender"));
            self.tag_in(fields.chain(returned.get("Return-Path")))
        });
        let reports = recipients
            .iter()
            .map(|block| {
                let original = field(block, "Original-Recipient")
                    .and_then(typed_address)
                    .filter(|address| !self.is_ours(address.as_str()));
                let final_recipient = field(block, "Final-Recipient").and_then(typed_address);
                // The address we sent to accepted the message and forwarded it, or expanded
                // it to several (a team alias): a failure further on says nothing certain
                // about our reader's own address, so it counts as soft.
                let forwarded = matches!(
                    (&original, &final_recipient),
                    (Some(original), Some(last)) if original.key() != last.key()
                );
                let recipient = original.or(final_recipient);
                let diagnostic = field(block, "Diagnostic-Code").map(str::to_string);
                let status = field(block, "Status")
                    .and_then(plain::status_code)
                    .or_else(|| diagnostic.as_deref().and_then(plain::status_code));
                let action = field(block, "Action").map(|action| {
                    action
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_lowercase()
                });
                let failed = match action.as_deref() {
                    Some("failed") => true,
                    // Action is required; without it, only a permanent status says failure.
                    None => status.as_deref().is_some_and(|code| code.starts_with('5')),
                    Some("delayed") => {
                        let reason = IgnoredReason::Delayed { recipient };
                        return ignored(reason, verp_tag.clone(), original_message_id.clone());
                    }
                    Some(other) => {
                        let reason = IgnoredReason::NotAFailure {
                            action: other.to_string(),
                        };
                        return ignored(reason, verp_tag.clone(), original_message_id.clone());
                    }
                };
                let kind = status
                    .as_deref()
                    .filter(|_| failed)
                    .and_then(kind_of_status);
                match kind.map(|kind| if forwarded { BounceKind::Soft } else { kind }) {
                    Some(kind) => Report::Bounce(Bounce {
                        kind,
                        recipient,
                        verp_tag: verp_tag.clone(),
                        status,
                        diagnostic,
                        original_message_id: original_message_id.clone(),
                    }),
                    None => ignored(
                        IgnoredReason::Unclassified,
                        verp_tag.clone(),
                        original_message_id.clone(),
                    ),
                }
            })
            .collect();
        Some(reports)
    }

    /// An ARF feedback report: a complaint when its type is one.
    fn feedback_report(&self) -> Option<Vec<Report>> {
        let blocks = self.machine_part(&["feedback-report"])?;
        let fields: Vec<(String, String)> = blocks.into_iter().flatten().collect();
        let feedback_type = field(&fields, "Feedback-Type")?.to_ascii_lowercase();
        let returned = self.returned().unwrap_or_default();
        let original_message_id = returned.message_id();
        let verp_tag = self
            .tag_in(fields_named(&fields, "Original-Mail-From").chain(returned.get("Return-Path")));
        if !matches!(feedback_type.as_str(), "abuse" | "fraud" | "virus") {
            let reason = IgnoredReason::NotAComplaint { feedback_type };
            return Some(vec![ignored(reason, verp_tag, original_message_id)]);
        }
        let recipients: Vec<EmailAddress> = fields_named(&fields, "Original-Rcpt-To")
            .filter_map(address_in)
            .collect();
        // Providers often leave out Original-Rcpt-To; the returned message's To is the
        // reader's address then, unless the provider redacted it.
        let recipients = if recipients.is_empty() {
            returned
                .get("To")
                .and_then(address_in)
                .into_iter()
                .collect()
        } else {
            recipients
        };
        let complaint = |recipient| {
            Report::Complaint(Complaint {
                recipient,
                verp_tag: verp_tag.clone(),
                feedback_type: feedback_type.clone(),
                original_message_id: original_message_id.clone(),
            })
        };
        Some(if recipients.is_empty() {
            vec![complaint(None)]
        } else {
            recipients.into_iter().map(Some).map(complaint).collect()
        })
    }

    /// Microsoft's JMRP feedback loop in its own format: the complained-about message attached
    /// whole, with the reader in `X-HmXmrOriginalRecipient`. Both the sender and that header
    /// must be there: a person forwarding one of our issues as an attachment is no complaint.
    fn microsoft_complaint(&self) -> Option<Vec<Report>> {
        let (from, _) = self.from();
        let from_microsoft = ["@hotmail.com", "@outlook.com", "@microsoft.com"]
            .iter()
            .any(|domain| from.ends_with(domain));
        if !from_microsoft {
            return None;
        }
        let returned = self.returned()?;
        let recipient = returned.get("X-HmXmrOriginalRecipient")?;
        Some(vec![Report::Complaint(Complaint {
            recipient: address_in(recipient),
            verp_tag: self.tag_in(returned.get("Return-Path")),
            feedback_type: "abuse".to_string(),
            original_message_id: returned.message_id(),
        })])
    }

    /// An automatic reply: RFC 3834's `Auto-Submitted: auto-replied`, the older headers that
    /// vacation programs set, or failing those, a subject that says so.
    fn is_auto_reply(&self) -> bool {
        let auto_submitted = self.header("Auto-Submitted").is_some_and(|value| {
            let keyword = value.split(';').next().unwrap_or("").trim();
            keyword.eq_ignore_ascii_case("auto-replied")
        });
        let precedence = self
            .header("Precedence")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("auto_reply"));
        let vendor = ["X-Autoreply", "X-Autorespond", "X-Autoresponder"]
            .iter()
            .any(|name| self.header(name).is_some());
        auto_submitted || precedence || vendor || is_vacation_subject(&self.subject())
    }
}

/// Subjects that vacation programs use, in the languages most readers write in. A last
/// resort, checked after every other kind of report: a person's reply that happens to say
/// "vacation" is still only ignored, never counted.
fn is_vacation_subject(subject: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "out of office",
        "out of the office",
        "ooo:",
        "automatic reply",
        "auto reply",
        "auto-reply",
        "autoreply",
        "auto response",
        "auto-response",
        "autoresponse",
        "vacation",
        "away from",
        "abwesenheitsnotiz",
        "automatische antwort",
        "abwesend",
        "réponse automatique",
        "reponse automatique",
        "absence",
        "respuesta automática",
        "respuesta automatica",
        "fuera de la oficina",
        "risposta automatica",
        "fuori ufficio",
        "automatisch antwoord",
        "afwezig",
        "resposta automática",
        "autosvar",
        "automatisk svar",
    ];
    let subject = subject.trim().to_lowercase();
    PREFIXES.iter().any(|prefix| subject.starts_with(prefix))
}

/// The fields of a `message/delivery-status` or `message/feedback-report` body: blocks of
/// `Name: value` lines separated by blank lines, values unfolded.
pub(super) fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    fields_named(block, name).next()
}

fn fields_named<'b>(
    block: &'b [(String, String)],
    name: &str,
) -> impl Iterator<Item = &'b str> + use<'b> {
    let name = name.to_string();
    block
        .iter()
        .filter(move |(field, _)| field.eq_ignore_ascii_case(&name))
        .map(|(_, value)| value.as_str())
}

/// The address of a DSN address field: `rfc822; ada@example.org` (or `utf-8;`, RFC 6533).
/// Other address types (`x400;`) name no mailbox of ours.
fn typed_address(value: &str) -> Option<EmailAddress> {
    let (kind, address) = value.split_once(';')?;
    let kind = kind.trim();
    (kind.eq_ignore_ascii_case("rfc822") || kind.eq_ignore_ascii_case("utf-8"))
        .then(|| address_in(address))
        .flatten()
}

/// The first valid address in `text`: `<ada@example.org>`, `Ada <ada@example.org>`, bare.
pub(super) fn address_in(text: &str) -> Option<EmailAddress> {
    address_tokens(text).find_map(|token| EmailAddress::parse(token).ok())
}

/// The pieces of `text` that may be addresses, split at whatever surrounds an address in a
/// header, a report field or a sentence.
pub(super) fn address_tokens(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>' | '"' | '(' | ')' | '[' | ']' | ':')
    })
    .map(|token| token.trim_end_matches('.'))
    .filter(|token| token.contains('@') && !token.starts_with('@'))
}

/// A Message-ID in the angle brackets our ledger stores it with.
pub(super) fn message_id(value: &str) -> Option<String> {
    let value = value.trim();
    let inner = match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split_whitespace().next()?,
    };
    (!inner.is_empty() && inner.contains('@')).then(|| format!("<{}>", inner.trim()))
}

/// A header value on one line: folding removed, whitespace runs kept as one space.
pub(super) fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hard or soft, from a status (`5.1.1`) or a bare SMTP code (`550`); `None` when it is not a
/// failure at all. RFC 3463 says 5.x.x is permanent, but a permanent answer is not always
/// about the address: what says only "not this message, not now" counts as soft, so that a
/// block of our server or our content (5.7.x) does not suppress every reader at a provider.
pub(super) fn kind_of_status(status: &str) -> Option<BounceKind> {
    let mut numbers = status.split('.');
    let class = numbers.next()?;
    if !class.starts_with('5') {
        return class.starts_with('4').then_some(BounceKind::Soft);
    }
    let (subject, detail) = (numbers.next(), numbers.next());
    let Some(subject) = subject else {
        // A bare SMTP code: 552 is "exceeded storage allocation", a full mailbox.
        return Some(if class == "552" {
            BounceKind::Soft
        } else {
            BounceKind::Hard
        });
    };
    let soft = match (subject, detail.unwrap_or("")) {
        // The sender's address rejected (x.1.7, x.1.8): about us, not the reader.
        ("1", "7" | "8") => true,
        // Mailbox full (RFC 3463: "a persistent transient failure"), message too big,
        // mailing list expansion.
        ("2", "2" | "3" | "4") => true,
        // The mail system (too big, not accepting), routing loops and a queue that expired.
        ("3", _) | ("4", "6" | "7") => true,
        // Protocol, content, security and policy: our message or server, not the address.
        ("5" | "6" | "7", _) => true,
        _ => false,
    };
    Some(if soft {
        BounceKind::Soft
    } else {
        BounceKind::Hard
    })
}

pub(super) fn ignored(
    reason: IgnoredReason,
    verp_tag: Option<VerpTag>,
    original_message_id: Option<String>,
) -> Report {
    Report::Ignored(Ignored {
        reason,
        verp_tag,
        original_message_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_blocks_unfold_continuations_and_split_at_blank_lines() {
        let text = "Reporting-MTA: dns; mail.example.com\r\n\r\nFinal-Recipient: rfc822; a@example.org\r\nDiagnostic-Code: smtp; 550-5.1.1 first\r\n    550 5.1.1 second\r\n\r\n\r\n";
        let blocks = field_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            field(&blocks[1], "diagnostic-code"),
            Some("smtp; 550-5.1.1 first 550 5.1.1 second")
        );
    }

    #[test]
    fn statuses_say_hard_only_when_the_address_is_the_problem() {
        for (status, kind) in [
            ("5.1.1", Some(BounceKind::Hard)),
            ("5.1.10", Some(BounceKind::Hard)),
            ("5.0.0", Some(BounceKind::Hard)),
            ("5.2.1", Some(BounceKind::Hard)),
            ("5.4.4", Some(BounceKind::Hard)),
            ("550", Some(BounceKind::Hard)),
            ("554", Some(BounceKind::Hard)),
            ("5.2.2", Some(BounceKind::Soft)),
            ("552", Some(BounceKind::Soft)),
            ("5.7.1", Some(BounceKind::Soft)),
            ("5.1.8", Some(BounceKind::Soft)),
            ("5.4.7", Some(BounceKind::Soft)),
            ("4.2.2", Some(BounceKind::Soft)),
            ("451", Some(BounceKind::Soft)),
            ("2.0.0", None),
        ] {
            assert_eq!(kind_of_status(status), kind, "{status}");
        }
    }

    #[test]
    fn message_ids_come_back_in_angle_brackets() {
        assert_eq!(
            message_id(" <a.b@example.com> (comment)"),
            Some("<a.b@example.com>".into())
        );
        assert_eq!(
            message_id("a.b@example.com"),
            Some("<a.b@example.com>".into())
        );
        assert_eq!(message_id("<>"), None);
    }

    #[test]
    fn vacation_subjects_are_recognised_in_several_languages() {
        for subject in [
            "Out of Office: Global AI Weekly #1",
            "Automatic reply: Global AI Weekly #1",
            "Abwesenheitsnotiz: Global AI Weekly #1",
            "Réponse automatique : Global AI Weekly #1",
        ] {
            assert!(is_vacation_subject(subject), "{subject}");
        }
        assert!(!is_vacation_subject("Re: Global AI Weekly #1"));
    }
}
