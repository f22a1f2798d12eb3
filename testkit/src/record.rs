//! What the server remembers, for tests to assert on.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::behaviour::{Reply, Stage};

/// A message the server accepted (answered `250` at the end of DATA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Which connection it came on (connections are numbered from 1 in the
    /// order they were accepted), to tell pooled reuse from reconnects.
    pub connection: u64,
    /// The name the client gave in EHLO/HELO, if it gave one.
    pub helo: Option<String>,
    /// The user the client authenticated as, if it did.
    pub authenticated_as: Option<String>,
    /// The MAIL FROM address, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// MAIL FROM parameters such as `BODY=8BITMIME` or `SMTPUTF8`.
    pub mail_params: Vec<String>,
    /// The accepted RCPT TO addresses, without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// The message exactly as received, after dot-unstuffing, without the
    /// terminating `.` line. Per RFC 5321 the CRLF before that `.` belongs
    /// to the message's last line, so a client that sends `body` followed by
    /// `\r\n.\r\n` (as letterpress's client does when `body` lacks a final
    /// line break) yields `body\r\n` here.
    pub data: Vec<u8>,
    pub received_at: SystemTime,
}

impl ReceivedMessage {
    /// The message as text (invalid UTF-8 replaced), handy in assertions.
    pub fn data_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }

    /// The first header with this name (case-insensitive), unfolded and
    /// trimmed, still encoded (RFC 2047 words are left as they are).
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.data_str();
        let mut found: Option<String> = None;
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                // A folded continuation of the previous header line.
                if let Some(value) = &mut found {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((key, value)) = line.split_once(':')
                && key.trim().eq_ignore_ascii_case(name)
            {
                found = Some(value.trim().to_owned());
            }
        }
        found
    }

    /// Everything after the blank line that ends the header section.
    pub fn body(&self) -> &[u8] {
        self.data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(&[][..], |i| &self.data[i + 4..])
    }
}

/// Something that went other than "message accepted": a refusal the server
/// sent, a connection it dropped or stalled on purpose, or a message the
/// client abandoned half-way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incident {
    pub connection: u64,
    pub kind: IncidentKind,
    /// The transaction's MAIL FROM, if one was under way.
    pub mail_from: Option<String>,
    /// The recipients involved: for [`IncidentKind::RcptRefused`] the refused
    /// address; otherwise the transaction's accepted recipients so far.
    pub rcpt_to: Vec<String>,
    /// The message bytes received so far (after dot-unstuffing), if any.
    pub data: Vec<u8>,
    pub at: SystemTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentKind {
    /// MAIL FROM answered with this (negative) reply.
    MailRefused(Reply),
    /// RCPT TO answered with this (negative) reply.
    RcptRefused(Reply),
    /// End of DATA answered with this (negative) reply; the message was not kept.
    DataRefused(Reply),
    /// End of DATA answered with the rate-limit reply.
    RateLimited(Reply),
    /// The message exceeded the SIZE limit and got `552`.
    TooLarge,
    /// A command or greeting got `421` and the connection was closed.
    ShutDown,
    /// The connection was dropped on purpose in the middle of DATA.
    Dropped(crate::behaviour::DropStyle),
    /// The server went quiet on purpose at this stage for this long.
    Stalled { stage: Stage, duration: Duration },
    /// The client went away after the `354` and before the message's final
    /// `.`, so the message was never whole. (A client that leaves during a
    /// stall at [`Stage::DataEnd`] leaves a whole message, which is kept.)
    Abandoned,
}

/// A login attempt, right or wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    pub connection: u64,
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
    /// Whether the server answered `235`.
    pub accepted: bool,
}

/// How many of each command the server has seen, over all connections.
/// `data` counts DATA commands; `messages_completed` counts message bodies
/// that reached their final `.`, whatever the reply was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandCounts {
    pub ehlo: usize,
    pub helo: usize,
    pub auth: usize,
    pub mail: usize,
    pub rcpt: usize,
    pub data: usize,
    pub messages_completed: usize,
    pub rset: usize,
    pub noop: usize,
    pub quit: usize,
    /// Anything else, including unknown commands.
    pub other: usize,
    /// Commands that had already arrived when the server started on the
    /// command before them, i.e. sent without waiting for its reply
    /// (RFC 2920 pipelining). A client that pipelines MAIL, RCPT and DATA
    /// scores 2 per message; one that waits for every reply scores 0.
    pub pipelined: usize,
}

/// Returned by the `wait_for_messages` methods when the messages did not
/// arrive in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitTimeout {
    pub wanted: usize,
    pub received: usize,
    pub waited: Duration,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "waited {:?} for {} message(s) but the SMTP server received {}",
            self.waited, self.wanted, self.received
        )
    }
}

impl std::error::Error for WaitTimeout {}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(data: &str) -> ReceivedMessage {
        ReceivedMessage {
            connection: 1,
            helo: None,
            authenticated_as: None,
            mail_from: String::new(),
            mail_params: Vec::new(),
            rcpt_to: Vec::new(),
            data: data.as_bytes().to_vec(),
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn headers_are_unfolded_and_matched_case_insensitively() {
        let m = message(
            "From: a@example.com\r\nList-Unsubscribe: <https://x.example/u>,\r\n <mailto:u@x.example>\r\nSubject: Hi\r\n\r\nSubject: not a header\r\n",
        );
        assert_eq!(
            m.header("list-unsubscribe").as_deref(),
            Some("<https://x.example/u>, <mailto:u@x.example>")
        );
        assert_eq!(m.header("SUBJECT").as_deref(), Some("Hi"));
        assert_eq!(m.header("To"), None);
        assert_eq!(m.body(), b"Subject: not a header\r\n");
    }
}
