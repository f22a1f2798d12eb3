//! Bounces written for people only: qmail's and Yahoo's "failure notice", Exim's "Mail
//! delivery failed", sendmail's and old Postfix's plain-text reports. No fields to read, so
//! heuristics, each required to agree before a message counts:
//! 1. it comes from a mail system (`MAILER-DAEMON`, `postmaster`, a "Mail Delivery" name, or a
//!    null `Return-Path`), and
//! 2. its subject or its text says it is about a failed delivery, and
//! 3. a status code, or the words "permanent error", tell hard from soft.
//!
//! Recipients are the addresses that start a line in the part above the returned copy of the
//! message (`<ada@example.org>:` in qmail's, an indented `ada@example.org` in Exim's); the
//! lines after each, up to a blank line, are its diagnostic.

use super::parse::{Context, Returned, address_in, ignored, kind_of_status};
use super::report::{Bounce, BounceKind, IgnoredReason, Report};
use crate::model::address::EmailAddress;

/// Local parts that mail systems send reports from.
const DAEMONS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "mdaemon",
];

/// Subjects of failure reports, lowercased, matched anywhere in the subject.
const FAILURE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "failure notice",
    "mail delivery failed",
    "delivery failure",
    "returned mail",
    "delivery has failed",
    "could not be delivered",
    "non-delivery",
    "nondeliverable",
    "not delivered",
    "delivery problem",
    "delivery notification",
    "warning: could not send",
];

/// Sentences of failure reports, lowercased.
const FAILURE_TEXTS: &[&str] = &[
    "qmail-send program",
    "could not be delivered",
    "couldn't be delivered",
    "wasn't delivered",
    "was not delivered",
    "unable to deliver",
    "wasn't able to deliver",
    "delivery has failed",
    "the following address(es) failed",
    "permanent fatal error",
    "permanent error",
    "not yet been delivered",
];

/// Where the copy of the returned message starts, lowercased; the text above is the report.
const COPY_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "original message headers",
    "----- original message -----",
    "-----original message-----",
    "the header of the original message",
    "unsent message below",
    "returned message follows",
    "------ received headers",
    "----- transcript of session follows",
];

/// A report that the message is still being retried: not a failure (see `Delayed`).
const DELAY_TEXTS: &[&str] = &[
    "not yet been delivered",
    "has been delayed",
    "will continue to try",
    "will keep trying",
    "will retry",
    "still trying",
    "this is a warning message only",
    "delivery delayed",
    "(delay)",
];

/// Words that say permanent when a report gives no code.
const PERMANENT_TEXTS: &[&str] = &["permanent error", "permanent fatal", "permanent failure"];

/// A plain-text bounce, or `None` if the message is not clearly one.
pub(super) fn bounce(context: &Context<'_, '_>) -> Option<Vec<Report>> {
    if !from_a_mail_system(context) {
        return None;
    }
    let text = context.message.body_text(0)?.into_owned();
    let lowered = text.to_lowercase();
    let copy_at = COPY_MARKERS
        .iter()
        .filter_map(|marker| lowered.find(marker))
        .min()
        .map(|at| lowered[..at].rfind('\n').map_or(0, |line| line + 1));
    let (human, copy) = text.split_at(copy_at.unwrap_or(text.len()));
    let human_lowered = human.to_lowercase();
    let subject = context.subject().to_lowercase();
    let looks_failed = FAILURE_SUBJECTS.iter().any(|s| subject.contains(s))
        || FAILURE_TEXTS.iter().any(|s| human_lowered.contains(s));
    if !looks_failed {
        return None;
    }
    let returned = context.returned().unwrap_or_else(|| {
        // After the marker line, the returned headers (or whole message) follow.
        let after = copy.split_once('\n').map_or("", |(_, rest)| rest);
        Returned::from_header_text(after.trim_start().as_bytes())
    });
    let original_message_id = returned.message_id();
    let verp_tag = context
        .envelope_tag()
        .or_else(|| context.tag_in(returned.get("Return-Path")));
    let mut recipients = recipients(context, human);
    if recipients.is_empty() {
        // Exim and Gmail name the failed addresses in a header too.
        let failed = context.headers("X-Failed-Recipients");
        recipients = failed
            .iter()
            .flat_map(|value| super::parse::address_tokens(value))
            .filter_map(|token| EmailAddress::parse(token).ok())
            .map(|address| (address, String::new()))
            .collect();
    }
    let delayed = DELAY_TEXTS
        .iter()
        .any(|s| subject.contains(s) || human_lowered.contains(s));
    if delayed {
        let recipient = recipients.into_iter().next().map(|(address, _)| address);
        let reason = IgnoredReason::Delayed { recipient };
        return Some(vec![ignored(reason, verp_tag, original_message_id)]);
    }
    let says_permanent = PERMANENT_TEXTS.iter().any(|s| human_lowered.contains(s));
    let only_one = recipients.len() <= 1;
    let entries: Vec<(Option<EmailAddress>, Option<String>)> = if recipients.is_empty() {
        vec![(None, diagnostic_line(human))]
    } else {
        recipients
            .into_iter()
            .map(|(address, diagnostic)| (Some(address), Some(diagnostic)))
            .collect()
    };
    let reports = entries
        .into_iter()
        .map(|(recipient, diagnostic)| {
            let diagnostic = diagnostic.filter(|text| !text.is_empty());
            let status = diagnostic
                .as_deref()
                .and_then(status_code)
                // The whole report's code is this recipient's only if there is no other.
                .or_else(|| only_one.then(|| status_code(human)).flatten());
            let kind = status
                .as_deref()
                .and_then(kind_of_status)
                .or(says_permanent.then_some(BounceKind::Hard));
            match kind {
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

fn from_a_mail_system(context: &Context<'_, '_>) -> bool {
    let (address, name) = context.from();
    let local = address.split('@').next().unwrap_or("");
    let null_sender = context
        .header("Return-Path")
        .is_some_and(|path| path.trim() == "<>");
    DAEMONS.contains(&local)
        || local.starts_with("microsoftexchange")
        || ["mail delivery", "mailer-daemon", "postmaster"]
            .iter()
            .any(|daemon| name.contains(daemon))
        || null_sender
}

/// The addresses that start a line of the report, each with the text that follows it up to
/// a blank line: its diagnostic. Never our own address, the mail system's, or the sender's.
fn recipients(context: &Context<'_, '_>, human: &str) -> Vec<(EmailAddress, String)> {
    let (sender, _) = context.from();
    let mut found: Vec<(EmailAddress, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in human.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            current = None;
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        let candidate = first
            .trim_end_matches(':')
            .trim_start_matches('<')
            .trim_end_matches(['>', ':', ',', '.']);
        let address = candidate
            .contains('@')
            .then(|| address_in(candidate))
            .flatten()
            .filter(|address| {
                let key = address.key();
                let key = key.as_str();
                let local = key.split('@').next().unwrap_or("");
                key != sender && !DAEMONS.contains(&local) && !context.is_ours(key)
            });
        match address {
            Some(address) => {
                let rest = trimmed[first.len()..].trim().trim_start_matches(':').trim();
                let index = match found
                    .iter()
                    .position(|(known, _)| known.key() == address.key())
                {
                    Some(index) => index,
                    None => {
                        found.push((address, String::new()));
                        found.len() - 1
                    }
                };
                append(&mut found[index].1, rest);
                current = Some(index);
            }
            None => {
                if let Some(index) = current {
                    append(&mut found[index].1, trimmed);
                }
            }
        }
    }
    found
}

fn append(text: &mut String, more: &str) {
    if more.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(more);
}

/// The first line of the report that holds a status code: the best diagnostic when no line
/// names a recipient.
fn diagnostic_line(human: &str) -> Option<String> {
    human
        .lines()
        .map(str::trim)
        .find(|line| status_code(line).is_some())
        .map(str::to_string)
}

/// The status in `text`: the first RFC 3463 code (`5.1.1`), else the first SMTP reply code
/// (`554`) standing as a word of its own.
pub(super) fn status_code(text: &str) -> Option<String> {
    enhanced_code(text).or_else(|| reply_code(text))
}

fn enhanced_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|start| {
        if !matches!(bytes[start], b'2' | b'4' | b'5') || !word_start(bytes, start) {
            return None;
        }
        let mut at = start + 1;
        for _ in 0..2 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            let digits = count_digits(&bytes[at + 1..]);
            if !(1..=3).contains(&digits) {
                return None;
            }
            at += 1 + digits;
        }
        word_end(bytes, at).then(|| text[start..at].to_string())
    })
}

fn reply_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find_map(|start| {
        let candidate = matches!(bytes[start], b'4' | b'5')
            && word_start(bytes, start)
            && count_digits(&bytes[start..]) == 3
            && word_end(bytes, start + 3);
        candidate.then(|| text[start..start + 3].to_string())
    })
}

/// Not inside a word, a number or a dotted sequence such as an IP address or a version.
fn word_start(bytes: &[u8], at: usize) -> bool {
    at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'.')
}

fn word_end(bytes: &[u8], at: usize) -> bool {
    match bytes.get(at) {
        None => true,
        Some(b'.') => !bytes.get(at + 1).is_some_and(u8::is_ascii_alphanumeric),
        Some(byte) => !byte.is_ascii_alphanumeric(),
    }
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_but_not_in_addresses_versions_or_dates() {
        for (text, code) in [
            ("550 5.1.1 <a@example.org>: User unknown", Some("5.1.1")),
            (
                "Sorry, no mailbox here by that name. (#5.1.1)",
                Some("5.1.1"),
            ),
            (
                "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound",
                Some("5.1.10"),
            ),
            (
                "554: delivery error: dd This user doesn't have an account",
                Some("554"),
            ),
            (
                "host mx.example.org [192.0.2.25] said: 552 full",
                Some("552"),
            ),
            ("Postfix 3.8.6 on 192.0.2.5 at 13:30:02 2021", None),
            ("back on 5.1.2022", None),
            ("version 4.2.2.1", None),
        ] {
            assert_eq!(status_code(text).as_deref(), code, "{text}");
        }
    }
}
