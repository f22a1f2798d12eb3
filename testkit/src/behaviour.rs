//! What the server does, including how it misbehaves.
//!
//! A [`Behaviour`] is a plain value built up with chained calls. Every
//! misbehaviour is a rule; rules combine freely and are checked in the order
//! they were added (the first rule that matches and still has uses left wins).

use std::fmt;
use std::time::Duration;

/// One SMTP reply: a three-digit code and its text.
///
/// The text may hold several lines separated by `\n`; they are sent as a
/// multi-line reply (`250-first`, `250 last`). Put the enhanced status code,
/// if you want one, at the start of the text: `Reply::new(550, "5.1.1 User unknown")`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            text: text.into(),
        }
    }

    /// `550 5.1.1 User unknown`: the classic hard bounce.
    pub fn user_unknown() -> Self {
        Reply::new(550, "5.1.1 User unknown")
    }

    /// `451 4.7.1 Try again later`: a greylisting-style soft failure.
    pub fn try_later() -> Self {
        Reply::new(451, "4.7.1 Try again later")
    }

    /// Amazon SES's answer when the account's sending rate is exceeded.
    pub fn ses_throttling() -> Self {
        Reply::new(454, "Throttling failure: Maximum sending rate exceeded.")
    }

    /// `421 4.3.2 Service shutting down`, after which the server hangs up.
    pub fn shutting_down() -> Self {
        Reply::new(421, "4.3.2 Service shutting down")
    }

    /// True for 2xx and 3xx codes, which a client treats as success.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// The reply as it goes on the wire, CRLF-terminated.
    pub(crate) fn to_wire(&self) -> String {
        let lines: Vec<&str> = self
            .text
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .collect();
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let separator = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{}{}{}\r\n", self.code, separator, line));
        }
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

impl From<(u16, &str)> for Reply {
    fn from((code, text): (u16, &str)) -> Self {
        Reply::new(code, text)
    }
}

impl From<(u16, String)> for Reply {
    fn from((code, text): (u16, String)) -> Self {
        Reply::new(code, text)
    }
}

/// Which transactions a rule applies to.
///
/// `&str` and `String` convert into [`Target::Address`], so most calls just
/// pass the address: `.rcpt_reply("bounce@example.com", Reply::user_unknown())`.
/// Addresses compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every transaction (and, for greeting/EHLO stalls, every connection).
    Any,
    /// Only transactions involving this address. Which address of the
    /// envelope is compared depends on the stage, see [`Stage`].
    Address(String),
}

impl Target {
    pub(crate) fn matches(&self, address: &str) -> bool {
        match self {
            Target::Any => true,
            Target::Address(wanted) => wanted.eq_ignore_ascii_case(address),
        }
    }

    pub(crate) fn matches_any<'a>(&self, mut addresses: impl Iterator<Item = &'a str>) -> bool {
        match self {
            Target::Any => true,
            Target::Address(_) => addresses.any(|a| self.matches(a)),
        }
    }
}

impl From<&str> for Target {
    fn from(address: &str) -> Self {
        Target::Address(address.to_owned())
    }
}

impl From<String> for Target {
    fn from(address: String) -> Self {
        Target::Address(address)
    }
}

impl From<&String> for Target {
    fn from(address: &String) -> Self {
        Target::Address(address.clone())
    }
}

/// Where in the conversation a stall happens: the server goes quiet just
/// before it would send the reply for that stage.
///
/// An [`Target::Address`] is compared with: nothing at `Greeting` and `Ehlo`
/// (no envelope exists yet, so only [`Target::Any`] is allowed there), the
/// MAIL FROM address at `Mail`, the address of that RCPT command at `Rcpt`,
/// and every accepted recipient at `Data` and `DataEnd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Before the `220` banner.
    Greeting,
    /// Before the reply to EHLO/HELO.
    Ehlo,
    /// Before the reply to MAIL FROM.
    Mail,
    /// Before the reply to RCPT TO.
    Rcpt,
    /// Before the `354` reply to the DATA command.
    Data,
    /// After the final `.` of the message, before its `250` (or error).
    /// The message has been fully received at that point, which is exactly
    /// the case where a client cannot know whether it was delivered.
    DataEnd,
}

/// How a connection is dropped in the middle of DATA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropStyle {
    /// An orderly close (FIN) without any reply: the client reads end-of-file
    /// where it expected the reply to the message. The server drains what the
    /// client still sends so that the kernel does not turn the close into a
    /// reset.
    Close,
    /// An abortive close (RST, via `SO_LINGER` 0), as when a server process
    /// crashes: the client sees "connection reset by peer".
    Reset,
}

/// How often a rule fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Uses {
    /// `None` means every time.
    remaining: Option<usize>,
}

impl Uses {
    pub(crate) fn always() -> Self {
        Uses { remaining: None }
    }

    pub(crate) fn first(times: usize) -> Self {
        Uses {
            remaining: Some(times),
        }
    }

    pub(crate) fn available(&self) -> bool {
        self.remaining != Some(0)
    }

    /// Spends one use; callers check [`Uses::available`] first.
    pub(crate) fn spend(&mut self) {
        if let Some(n) = &mut self.remaining {
            *n = n.saturating_sub(1);
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ReplyRule {
    pub(crate) target: Target,
    pub(crate) reply: Reply,
    pub(crate) uses: Uses,
}

#[derive(Clone, Debug)]
pub(crate) struct DropRule {
    pub(crate) target: Target,
    pub(crate) style: DropStyle,
    pub(crate) uses: Uses,
}

#[derive(Clone, Debug)]
pub(crate) struct StallRule {
    pub(crate) stage: Stage,
    pub(crate) target: Target,
    pub(crate) duration: Duration,
    pub(crate) uses: Uses,
}

#[derive(Clone, Debug)]
pub(crate) struct ShutdownRule {
    pub(crate) after_messages: usize,
    pub(crate) uses: Uses,
}

#[derive(Clone, Debug)]
pub(crate) struct RateLimit {
    pub(crate) max_messages: usize,
    pub(crate) per: Duration,
    pub(crate) reply: Reply,
}

/// How the server behaves. `Behaviour::new()` (or `default()`) is a
/// well-behaved server that accepts everything.
///
/// ```
/// use std::time::Duration;
/// use letterpress_testkit::{Behaviour, Reply, Stage, Target};
///
/// let behaviour = Behaviour::new()
///     .rcpt_reply("bounce@example.com", Reply::user_unknown())
///     .rcpt_reply_first("slow@example.com", Reply::ses_throttling(), 2)
///     .data_reply("spam@example.com", (554, "5.7.1 Message rejected"))
///     .drop_in_data_first("flaky@example.com", 1)
///     .stall(Stage::DataEnd, "hang@example.com", Duration::from_secs(30))
///     .reply_delay(Duration::from_millis(5));
/// ```
///
/// Rules with a "first K times" variant count separately per rule: a rule on
/// one address counts the attempts for that address, a rule on
/// [`Target::Any`] counts every attempt. Installing a behaviour with
/// [`crate::SmtpServer::set_behaviour`] starts all counts afresh.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub(crate) hostname: String,
    pub(crate) credentials: Vec<(String, String)>,
    pub(crate) auth_mechanisms: Vec<String>,
    pub(crate) max_size: usize,
    pub(crate) mail_rules: Vec<ReplyRule>,
    pub(crate) rcpt_rules: Vec<ReplyRule>,
    pub(crate) data_rules: Vec<ReplyRule>,
    pub(crate) drop_rules: Vec<DropRule>,
    pub(crate) stall_rules: Vec<StallRule>,
    pub(crate) shutdown: Option<ShutdownRule>,
    pub(crate) reply_delay: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) pipelining: bool,
    pub(crate) smtputf8: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            hostname: "testkit.letterpress.invalid".to_owned(),
            credentials: Vec::new(),
            auth_mechanisms: vec!["PLAIN".to_owned(), "LOGIN".to_owned()],
            // Large enough for any newsletter, small enough to notice a runaway.
            max_size: 35 * 1024 * 1024,
            mail_rules: Vec::new(),
            rcpt_rules: Vec::new(),
            data_rules: Vec::new(),
            drop_rules: Vec::new(),
            stall_rules: Vec::new(),
            shutdown: None,
            reply_delay: Duration::ZERO,
            rate_limit: None,
            pipelining: true,
            smtputf8: true,
        }
    }
}

impl Behaviour {
    /// A server that accepts every message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leave PIPELINING out of the EHLO reply, like an old relay, so a client must wait for
    /// each reply before its next command.
    pub fn without_pipelining(mut self) -> Self {
        self.pipelining = false;
        self
    }

    /// Leave SMTPUTF8 (RFC 6531) out of the EHLO reply, like most relays still, so a client
    /// cannot send to an address whose local part is not ASCII.
    pub fn without_smtputf8(mut self) -> Self {
        self.smtputf8 = false;
        self
    }

    /// The name the server gives in its banner and EHLO reply.
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }

    /// Advertise `AUTH PLAIN LOGIN` (or what [`Behaviour::auth_mechanisms`]
    /// says), accept this user/password pair (call again to accept several)
    /// and refuse MAIL FROM with `530` until the client has authenticated.
    /// Every attempt, right or wrong, is recorded.
    pub fn auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials.push((username.into(), password.into()));
        self
    }

    /// Offer only these AUTH mechanisms (of `PLAIN` and `LOGIN`), in this
    /// order, and answer any other with `504`: for a relay that takes LOGIN
    /// only, say. Has an effect only together with [`Behaviour::auth`].
    pub fn auth_mechanisms<S: Into<String>>(
        mut self,
        mechanisms: impl IntoIterator<Item = S>,
    ) -> Self {
        self.auth_mechanisms = mechanisms
            .into_iter()
            .map(|mechanism| mechanism.into().to_ascii_uppercase())
            .collect();
        self
    }

    /// The `SIZE` advertised in EHLO; larger messages get `552` at the end of DATA.
    pub fn max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Answer MAIL FROM with `reply` when the sender matches `target`.
    pub fn mail_reply(self, target: impl Into<Target>, reply: impl Into<Reply>) -> Self {
        self.push_mail(target.into(), reply.into(), Uses::always())
    }

    /// Like [`Behaviour::mail_reply`], for the first `times` matching MAIL commands only.
    pub fn mail_reply_first(
        self,
        target: impl Into<Target>,
        reply: impl Into<Reply>,
        times: usize,
    ) -> Self {
        self.push_mail(target.into(), reply.into(), Uses::first(times))
    }

    /// Answer RCPT TO with `reply` for recipients matching `target`, every time.
    pub fn rcpt_reply(self, target: impl Into<Target>, reply: impl Into<Reply>) -> Self {
        self.push_rcpt(target.into(), reply.into(), Uses::always())
    }

    /// Answer RCPT TO with `reply` for the first `times` attempts only, then
    /// accept: the shape of a throttled or greylisting server that a retrying
    /// client eventually gets through.
    pub fn rcpt_reply_first(
        self,
        target: impl Into<Target>,
        reply: impl Into<Reply>,
        times: usize,
    ) -> Self {
        self.push_rcpt(target.into(), reply.into(), Uses::first(times))
    }

    /// Answer the end of DATA with `reply` when any recipient matches
    /// `target`. The message is not recorded as received.
    pub fn data_reply(self, target: impl Into<Target>, reply: impl Into<Reply>) -> Self {
        self.push_data(target.into(), reply.into(), Uses::always())
    }

    /// Like [`Behaviour::data_reply`], for the first `times` matching messages only.
    pub fn data_reply_first(
        self,
        target: impl Into<Target>,
        reply: impl Into<Reply>,
        times: usize,
    ) -> Self {
        self.push_data(target.into(), reply.into(), Uses::first(times))
    }

    /// Once `messages` messages have been accepted (counted from when this
    /// behaviour was installed), answer every following command — and the
    /// greeting of every new connection — with
    /// `421 4.3.2 Service shutting down` and hang up: a server going down.
    pub fn shutdown_after(mut self, messages: usize) -> Self {
        self.shutdown = Some(ShutdownRule {
            after_messages: messages,
            uses: Uses::always(),
        });
        self
    }

    /// Like [`Behaviour::shutdown_after`], but only the first `times`
    /// commands/greetings get the `421`; then the server is back to normal:
    /// a restart rather than an outage.
    pub fn shutdown_after_first(mut self, messages: usize, times: usize) -> Self {
        self.shutdown = Some(ShutdownRule {
            after_messages: messages,
            uses: Uses::first(times),
        });
        self
    }

    /// Close the connection without a reply in the middle of DATA (after the
    /// first line of the message has arrived) when a recipient matches.
    pub fn drop_in_data(self, target: impl Into<Target>) -> Self {
        self.push_drop(target.into(), DropStyle::Close, Uses::always())
    }

    /// Like [`Behaviour::drop_in_data`], for the first `times` matching messages only.
    pub fn drop_in_data_first(self, target: impl Into<Target>, times: usize) -> Self {
        self.push_drop(target.into(), DropStyle::Close, Uses::first(times))
    }

    /// Drop in the middle of DATA choosing how: see [`DropStyle`].
    pub fn drop_in_data_with(
        self,
        target: impl Into<Target>,
        style: DropStyle,
        times: Option<usize>,
    ) -> Self {
        let uses = times.map_or_else(Uses::always, Uses::first);
        self.push_drop(target.into(), style, uses)
    }

    /// Stop replying for `duration` at `stage` for matching transactions:
    /// the socket stays open and whatever the client sends meanwhile waits.
    /// Afterwards the pending reply is sent as usual (if the client is still
    /// there), and then the replies to anything the client pipelined. Use a
    /// long duration for "forever"; the server still shuts down promptly when
    /// dropped.
    ///
    /// # Panics
    /// If `stage` is `Greeting` or `Ehlo` and `target` is an address: there
    /// is no envelope yet to match it against.
    pub fn stall(self, stage: Stage, target: impl Into<Target>, duration: Duration) -> Self {
        self.push_stall(stage, target.into(), duration, Uses::always())
    }

    /// Like [`Behaviour::stall`], for the first `times` matching occasions only.
    pub fn stall_first(
        self,
        stage: Stage,
        target: impl Into<Target>,
        duration: Duration,
        times: usize,
    ) -> Self {
        self.push_stall(stage, target.into(), duration, Uses::first(times))
    }

    /// Wait this long before every reply, to simulate a slow or distant server.
    pub fn reply_delay(mut self, delay: Duration) -> Self {
        self.reply_delay = delay;
        self
    }

    /// Accept at most `max_messages` messages in any window of `per` (all
    /// connections together); messages beyond that get
    /// [`Reply::ses_throttling`] at the end of DATA.
    pub fn max_rate(self, max_messages: usize, per: Duration) -> Self {
        self.max_rate_with_reply(max_messages, per, Reply::ses_throttling())
    }

    /// Like [`Behaviour::max_rate`] with your own reply for the excess messages.
    pub fn max_rate_with_reply(
        mut self,
        max_messages: usize,
        per: Duration,
        reply: impl Into<Reply>,
    ) -> Self {
        self.rate_limit = Some(RateLimit {
            max_messages,
            per,
            reply: reply.into(),
        });
        self
    }

    fn push_mail(mut self, target: Target, reply: Reply, uses: Uses) -> Self {
        self.mail_rules.push(ReplyRule {
            target,
            reply,
            uses,
        });
        self
    }

    fn push_rcpt(mut self, target: Target, reply: Reply, uses: Uses) -> Self {
        self.rcpt_rules.push(ReplyRule {
            target,
            reply,
            uses,
        });
        self
    }

    fn push_data(mut self, target: Target, reply: Reply, uses: Uses) -> Self {
        self.data_rules.push(ReplyRule {
            target,
            reply,
            uses,
        });
        self
    }

    fn push_drop(mut self, target: Target, style: DropStyle, uses: Uses) -> Self {
        self.drop_rules.push(DropRule {
            target,
            style,
            uses,
        });
        self
    }

    fn push_stall(mut self, stage: Stage, target: Target, duration: Duration, uses: Uses) -> Self {
        assert!(
            target == Target::Any || !matches!(stage, Stage::Greeting | Stage::Ehlo),
            "a stall at {stage:?} cannot be limited to an address: no envelope exists yet"
        );
        self.stall_rules.push(StallRule {
            stage,
            target,
            duration,
            uses,
        });
        self
    }
}

/// Finds the first rule that matches and still has uses left, and spends one use.
pub(crate) fn fire<R>(
    rules: &mut [R],
    uses: impl Fn(&mut R) -> &mut Uses,
    matches: impl Fn(&R) -> bool,
) -> Option<&R> {
    let index = rules
        .iter_mut()
        .position(|rule| matches(rule) && uses(rule).available())?;
    let rule = &mut rules[index];
    uses(rule).spend();
    Some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_use_dashes_until_the_last_line() {
        let reply = Reply::new(250, "first\nsecond\nlast");
        assert_eq!(reply.to_wire(), "250-first\r\n250-second\r\n250 last\r\n");
        assert_eq!(
            Reply::user_unknown().to_wire(),
            "550 5.1.1 User unknown\r\n"
        );
    }

    #[test]
    fn first_k_rules_run_out_and_fall_through() {
        let mut rules = vec![
            ReplyRule {
                target: "a@example.com".into(),
                reply: Reply::try_later(),
                uses: Uses::first(2),
            },
            ReplyRule {
                target: Target::Any,
                reply: Reply::user_unknown(),
                uses: Uses::always(),
            },
        ];
        let pick = |rules: &mut Vec<ReplyRule>, address: &str| {
            fire(rules, |r| &mut r.uses, |r| r.target.matches(address)).map(|r| r.reply.code)
        };
        assert_eq!(pick(&mut rules, "A@Example.com"), Some(451));
        assert_eq!(pick(&mut rules, "b@example.com"), Some(550));
        assert_eq!(pick(&mut rules, "a@example.com"), Some(451));
        assert_eq!(pick(&mut rules, "a@example.com"), Some(550));
    }

    #[test]
    #[should_panic(expected = "cannot be limited to an address")]
    fn greeting_stalls_cannot_target_an_address() {
        let _ = Behaviour::new().stall(Stage::Greeting, "a@example.com", Duration::from_secs(1));
    }
}
