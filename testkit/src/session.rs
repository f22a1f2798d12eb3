//! One SMTP conversation, from greeting to hang-up.
//!
//! Errors here end this connection only: `serve` logs them and returns, so
//! a client that misbehaves (or that a test kills) never affects the server
//! or other connections. Decisions are taken with the state locked; the lock
//! is never held across an `.await`.

use std::io;
use std::slice;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Shared;
use crate::base64;
use crate::behaviour::{DropStyle, Reply, Stage, fire};
use crate::record::{AuthAttempt, Incident, IncidentKind, ReceivedMessage};

/// How long to keep reading after hanging up gracefully, so that the client
/// sees our FIN (end-of-file) rather than a reset caused by unread data.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The AUTH LOGIN prompts, base64 for "Username:" and "Password:", the words
/// clients conventionally expect (RFC 4954 leaves them open).
const LOGIN_USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, id: u64) {
    let mut session = Session {
        shared: Arc::clone(&shared),
        id,
        stream: BufReader::new(stream),
        helo: None,
        authenticated: None,
        tx: None,
    };
    if let Err(error) = session.run().await {
        shared.log(id, format!("! {error}"));
    }
    session.note_abandoned_message();
    shared.log(id, "* closed");
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// A mail transaction under way (after a successful MAIL FROM).
struct Transaction {
    mail_from: String,
    params: Vec<String>,
    rcpt_to: Vec<String>,
    /// `Some` from the `354` on: the message received so far.
    data: Option<Vec<u8>>,
}

struct Session {
    shared: Arc<Shared>,
    id: u64,
    /// Buffered for reading lines; writes go straight to the socket.
    stream: BufReader<TcpStream>,
    helo: Option<String>,
    authenticated: Option<String>,
    tx: Option<Transaction>,
}

impl Session {
    async fn run(&mut self) -> io::Result<()> {
        if !self.maybe_stall(Stage::Greeting, &[]).await? {
            return Ok(());
        }
        if self.shutdown_due() {
            return self.shut_down().await;
        }
        let hostname = self.shared.lock().behaviour.hostname.clone();
        self.reply(&Reply::new(
            220,
            format!("{hostname} ESMTP letterpress-testkit"),
        ))
        .await?;
        while let Some(line) = self.read_line().await? {
            if self.command(&line).await? == Flow::Close {
                break;
            }
        }
        Ok(())
    }

    async fn command(&mut self, raw: &[u8]) -> io::Result<Flow> {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        self.log(format!("> {line}"));
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        self.count(&verb);
        // This command has no reply yet, so whatever is already waiting behind
        // it was sent without waiting for one.
        if !self.stream.buffer().is_empty() {
            self.shared.lock().commands.pipelined += 1;
        }
        if self.shutdown_due() {
            self.shut_down().await?;
            return Ok(Flow::Close);
        }
        match verb.as_str() {
            "EHLO" => self.ehlo(arg).await,
            "HELO" => self.helo(arg).await,
            "MAIL" => self.mail(arg).await,
            "RCPT" => self.rcpt(arg).await,
            "DATA" => self.data().await,
            "AUTH" => self.auth(arg).await,
            "RSET" => {
                self.tx = None;
                self.send(250, "2.0.0 OK").await
            }
            "NOOP" => self.send(250, "2.0.0 OK").await,
            "QUIT" => {
                self.send(221, "2.0.0 Bye").await?;
                Ok(Flow::Close)
            }
            "VRFY" => self.send(252, "2.5.0 Will attempt delivery").await,
            _ => self.send(500, "5.5.2 Command not recognized").await,
        }
    }

    async fn ehlo(&mut self, client: &str) -> io::Result<Flow> {
        // EHLO resets any transaction (RFC 5321 4.1.4), not the login.
        self.tx = None;
        self.helo = Some(client.to_owned());
        if !self.maybe_stall(Stage::Ehlo, &[]).await? {
            return Ok(Flow::Close);
        }
        let (hostname, max_size, auth, pipelining, smtputf8) = {
            let state = self.shared.lock();
            let b = &state.behaviour;
            (
                b.hostname.clone(),
                b.max_size,
                (!b.credentials.is_empty()).then(|| b.auth_mechanisms.join(" ")),
                b.pipelining,
                b.smtputf8,
            )
        };
        let mut lines = vec![format!("{hostname} greets {client}")];
        if pipelining {
            lines.push("PIPELINING".to_owned());
        }
        lines.extend(["8BITMIME".to_owned(), format!("SIZE {max_size}")]);
        if smtputf8 {
            lines.push("SMTPUTF8".to_owned());
        }
        lines.push("ENHANCEDSTATUSCODES".to_owned());
        if let Some(mechanisms) = auth {
            lines.push(format!("AUTH {mechanisms}"));
        }
        self.reply(&Reply::new(250, lines.join("\n"))).await?;
        Ok(Flow::Continue)
    }

    async fn helo(&mut self, client: &str) -> io::Result<Flow> {
        self.tx = None;
        self.helo = Some(client.to_owned());
        if !self.maybe_stall(Stage::Ehlo, &[]).await? {
            return Ok(Flow::Close);
        }
        let hostname = self.shared.lock().behaviour.hostname.clone();
        self.send(250, &hostname).await
    }

    async fn mail(&mut self, arg: &str) -> io::Result<Flow> {
        let Some((sender, params)) = parse_path(arg, "FROM:") else {
            return self.send(501, "5.5.4 Syntax: MAIL FROM:<address>").await;
        };
        if self.tx.is_some() {
            return self.send(503, "5.5.1 Error: nested MAIL command").await;
        }
        let (auth_required, max_size) = {
            let state = self.shared.lock();
            let b = &state.behaviour;
            (!b.credentials.is_empty(), b.max_size)
        };
        if auth_required && self.authenticated.is_none() {
            return self.send(530, "5.7.0 Authentication required").await;
        }
        if !self
            .maybe_stall(Stage::Mail, slice::from_ref(&sender))
            .await?
        {
            return Ok(Flow::Close);
        }
        let declared_size = params.iter().find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<usize>().ok())
                .flatten()
        });
        if declared_size.is_some_and(|size| size > max_size) {
            return self
                .send(552, "5.3.4 Message size exceeds fixed maximum message size")
                .await;
        }
        let rule_reply = {
            let mut state = self.shared.lock();
            fire(
                &mut state.behaviour.mail_rules,
                |r| &mut r.uses,
                |r| r.target.matches(&sender),
            )
            .map(|r| r.reply.clone())
        };
        if let Some(reply) = rule_reply.as_ref().filter(|r| !r.is_positive()) {
            self.incident(
                IncidentKind::MailRefused(reply.clone()),
                Some(sender),
                Vec::new(),
            );
            self.reply(reply).await?;
            return Ok(Flow::Continue);
        }
        self.tx = Some(Transaction {
            mail_from: sender,
            params,
            rcpt_to: Vec::new(),
            data: None,
        });
        let reply = rule_reply.unwrap_or_else(|| Reply::new(250, "2.1.0 OK"));
        self.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    async fn rcpt(&mut self, arg: &str) -> io::Result<Flow> {
        let Some((recipient, _params)) = parse_path(arg, "TO:") else {
            return self.send(501, "5.5.4 Syntax: RCPT TO:<address>").await;
        };
        if self.tx.is_none() {
            return self.send(503, "5.5.1 Error: need MAIL command").await;
        }
        if !self
            .maybe_stall(Stage::Rcpt, slice::from_ref(&recipient))
            .await?
        {
            return Ok(Flow::Close);
        }
        let rule_reply = {
            let mut state = self.shared.lock();
            fire(
                &mut state.behaviour.rcpt_rules,
                |r| &mut r.uses,
                |r| r.target.matches(&recipient),
            )
            .map(|r| r.reply.clone())
        };
        if let Some(reply) = rule_reply.as_ref().filter(|r| !r.is_positive()) {
            let mail_from = self.tx.as_ref().map(|tx| tx.mail_from.clone());
            self.incident(
                IncidentKind::RcptRefused(reply.clone()),
                mail_from,
                vec![recipient],
            );
            self.reply(reply).await?;
            return Ok(Flow::Continue);
        }
        if let Some(tx) = &mut self.tx {
            tx.rcpt_to.push(recipient);
        }
        let reply = rule_reply.unwrap_or_else(|| Reply::new(250, "2.1.5 OK"));
        self.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    async fn data(&mut self) -> io::Result<Flow> {
        let Some(tx) = &self.tx else {
            return self.send(503, "5.5.1 Error: need MAIL command").await;
        };
        if tx.rcpt_to.is_empty() {
            return self.send(554, "5.5.1 Error: no valid recipients").await;
        }
        let recipients = tx.rcpt_to.clone();
        if !self.maybe_stall(Stage::Data, &recipients).await? {
            return Ok(Flow::Close);
        }
        let drop_style = {
            let mut state = self.shared.lock();
            fire(
                &mut state.behaviour.drop_rules,
                |r| &mut r.uses,
                |r| r.target.matches_any(recipients.iter().map(String::as_str)),
            )
            .map(|r| r.style)
        };
        self.send(354, "End data with <CR><LF>.<CR><LF>").await?;
        if let Some(tx) = &mut self.tx {
            tx.data = Some(Vec::new());
        }

        if let Some(style) = drop_style {
            return self.drop_mid_data(style).await;
        }

        loop {
            let Some(line) = self.read_line().await? else {
                // The client hung up mid-message; `serve` records it.
                return Ok(Flow::Close);
            };
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            self.append_data(&line);
        }
        let received = self.tx.as_ref().and_then(|tx| tx.data.as_ref());
        let size = received.map_or(0, Vec::len);
        self.log(format!("> <message, {size} bytes>"));
        self.shared.lock().commands.messages_completed += 1;

        let client_stayed = self.maybe_stall(Stage::DataEnd, &recipients).await;
        let Some(tx) = self.tx.take() else {
            return Ok(Flow::Close);
        };
        // The message is whole, so it is judged (and kept, if accepted) even
        // when the client gave up during the stall: a real server has queued
        // it by then, and this is the case where the client cannot know.
        let reply = self.judge_message(tx);
        if !client_stayed? {
            self.log(format!("~ the client left before the reply: {reply}"));
            return Ok(Flow::Close);
        }
        self.reply(&reply).await?;
        Ok(Flow::Continue)
    }

    /// Decides the fate of a fully received message and records it.
    fn judge_message(&mut self, tx: Transaction) -> Reply {
        let data = tx.data.unwrap_or_default();
        let mut state = self.shared.lock();
        let recipients = &tx.rcpt_to;

        let refusal = if data.len() > state.behaviour.max_size {
            Some((
                IncidentKind::TooLarge,
                Reply::new(552, "5.3.4 Message size exceeds fixed maximum message size"),
            ))
        } else {
            None
        };
        let rule_reply = if refusal.is_none() {
            fire(
                &mut state.behaviour.data_rules,
                |r| &mut r.uses,
                |r| r.target.matches_any(recipients.iter().map(String::as_str)),
            )
            .map(|r| r.reply.clone())
        } else {
            None
        };
        let refusal = refusal.or_else(|| {
            let reply = rule_reply.clone().filter(|r| !r.is_positive())?;
            Some((IncidentKind::DataRefused(reply.clone()), reply))
        });
        let refusal = refusal.or_else(|| {
            let limit = state.behaviour.rate_limit.clone()?;
            let now = Instant::now();
            while state
                .recent_accepts
                .front()
                .is_some_and(|at| now.duration_since(*at) >= limit.per)
            {
                state.recent_accepts.pop_front();
            }
            (state.recent_accepts.len() >= limit.max_messages)
                .then(|| (IncidentKind::RateLimited(limit.reply.clone()), limit.reply))
        });

        if let Some((kind, reply)) = refusal {
            state.incidents.push(Incident {
                connection: self.id,
                kind,
                mail_from: Some(tx.mail_from),
                rcpt_to: tx.rcpt_to,
                data,
                at: SystemTime::now(),
            });
            return reply;
        }

        let message = ReceivedMessage {
            connection: self.id,
            helo: self.helo.clone(),
            authenticated_as: self.authenticated.clone(),
            mail_from: tx.mail_from,
            mail_params: tx.params,
            rcpt_to: tx.rcpt_to,
            data,
            received_at: SystemTime::now(),
        };
        self.shared.accept_message(&mut state, message);
        let queue_id = state.accepted_total;
        rule_reply.unwrap_or_else(|| Reply::new(250, format!("2.0.0 Ok: queued as {queue_id}")))
    }

    /// Hangs up in the middle of DATA without replying.
    async fn drop_mid_data(&mut self, style: DropStyle) -> io::Result<Flow> {
        // Wait for the message to start arriving so the client really is
        // mid-DATA when the connection goes.
        if let Some(line) = self.read_line().await? {
            self.append_data(&line);
        }
        if let Some(tx) = self.tx.take() {
            self.shared.lock().incidents.push(Incident {
                connection: self.id,
                kind: IncidentKind::Dropped(style),
                mail_from: Some(tx.mail_from),
                rcpt_to: tx.rcpt_to,
                data: tx.data.unwrap_or_default(),
                at: SystemTime::now(),
            });
        }
        self.log(format!("~ dropping the connection ({style:?})"));
        match style {
            DropStyle::Close => self.close_gracefully().await?,
            // With a zero linger time, closing the socket sends RST.
            // Returning drops the socket.
            DropStyle::Reset => self.stream.get_ref().set_zero_linger()?,
        }
        Ok(Flow::Close)
    }

    async fn auth(&mut self, arg: &str) -> io::Result<Flow> {
        let (credentials, offered) = {
            let state = self.shared.lock();
            let b = &state.behaviour;
            (b.credentials.clone(), b.auth_mechanisms.clone())
        };
        if credentials.is_empty() {
            return self
                .send(503, "5.5.1 Error: authentication not enabled")
                .await;
        }
        if self.authenticated.is_some() {
            return self.send(503, "5.5.1 Error: already authenticated").await;
        }
        if self.tx.is_some() {
            return self
                .send(503, "5.5.1 Error: MAIL transaction in progress")
                .await;
        }
        let (mechanism, initial) = match arg.split_once(' ') {
            Some((mechanism, initial)) => (mechanism.to_ascii_uppercase(), Some(initial.trim())),
            None => (arg.to_ascii_uppercase(), None),
        };
        if !offered.contains(&mechanism) {
            return self
                .send(504, "5.5.4 Unrecognized authentication type")
                .await;
        }
        let (username, password) = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(initial) => initial.to_owned(),
                    None => match self.prompt("").await? {
                        Some(response) => response,
                        None => return Ok(Flow::Close),
                    },
                };
                // authzid NUL authcid NUL password
                let decoded = decode_auth(&response);
                let mut parts = decoded.as_deref().unwrap_or("").splitn(3, '\0');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(_authzid), Some(user), Some(pass)) if decoded.is_some() => {
                        (user.to_owned(), pass.to_owned())
                    }
                    _ => return self.send(501, "5.5.2 Cannot decode response").await,
                }
            }
            "LOGIN" => {
                let username = match initial {
                    Some(initial) => Some(initial.to_owned()),
                    None => self.prompt(LOGIN_USERNAME_PROMPT).await?,
                };
                let Some(username) = username else {
                    return Ok(Flow::Close);
                };
                let Some(password) = self.prompt(LOGIN_PASSWORD_PROMPT).await? else {
                    return Ok(Flow::Close);
                };
                match (decode_auth(&username), decode_auth(&password)) {
                    (Some(user), Some(pass)) => (user, pass),
                    _ => return self.send(501, "5.5.2 Cannot decode response").await,
                }
            }
            _ => {
                return self
                    .send(504, "5.5.4 Unrecognized authentication type")
                    .await;
            }
        };
        let accepted = credentials
            .iter()
            .any(|(u, p)| *u == username && *p == password);
        self.shared.lock().auth_attempts.push(AuthAttempt {
            connection: self.id,
            mechanism,
            username: username.clone(),
            password,
            accepted,
        });
        if accepted {
            self.authenticated = Some(username);
            self.send(235, "2.7.0 Authentication successful").await
        } else {
            self.send(535, "5.7.8 Authentication credentials invalid")
                .await
        }
    }

    /// Sends a `334` challenge and returns the client's answer line, or
    /// `None` if the client hung up. A `*` answer cancels (RFC 4954).
    async fn prompt(&mut self, challenge: &str) -> io::Result<Option<String>> {
        self.send(334, challenge).await?;
        let Some(line) = self.read_line().await? else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        self.log(format!("> {line}"));
        Ok(Some(line))
    }

    /// If a stall rule matches this stage, goes quiet for its duration.
    /// Returns `false` if the client hung up meanwhile.
    async fn maybe_stall(&mut self, stage: Stage, addresses: &[String]) -> io::Result<bool> {
        let duration = {
            let mut state = self.shared.lock();
            fire(
                &mut state.behaviour.stall_rules,
                |r| &mut r.uses,
                |r| r.stage == stage && r.target.matches_any(addresses.iter().map(String::as_str)),
            )
            .map(|r| r.duration)
        };
        let Some(duration) = duration else {
            return Ok(true);
        };
        let (mail_from, rcpt_to) = match &self.tx {
            Some(tx) => (Some(tx.mail_from.clone()), tx.rcpt_to.clone()),
            None => (None, Vec::new()),
        };
        self.incident(
            IncidentKind::Stalled { stage, duration },
            mail_from,
            rcpt_to,
        );
        self.log(format!("~ stalling {duration:?} at {stage:?}"));
        // Nothing the client sends meanwhile is consumed: commands it pipelined
        // are answered after the stall, as a slow server would. Its hanging up is
        // noticed at once while nothing is waiting to be read; once something
        // is, the end of input lies behind it, so the stall is simply sat out.
        let stream = &mut self.stream;
        let hung_up = tokio::time::timeout(duration, async {
            if stream.fill_buf().await?.is_empty() {
                return Ok::<(), io::Error>(());
            }
            std::future::pending().await
        })
        .await;
        match hung_up {
            Err(_elapsed) => Ok(true),
            Ok(Ok(())) => Ok(false),
            Ok(Err(error)) => Err(error),
        }
    }

    /// Answers `421` and hangs up if [`crate::Behaviour::shutdown_after`] says so.
    fn shutdown_due(&self) -> bool {
        let mut state = self.shared.lock();
        let accepted = state.accepted_total - state.accepted_before_behaviour;
        match &mut state.behaviour.shutdown {
            Some(rule) if accepted >= rule.after_messages && rule.uses.available() => {
                rule.uses.spend();
                true
            }
            _ => false,
        }
    }

    async fn shut_down(&mut self) -> io::Result<()> {
        let (mail_from, rcpt_to) = match self.tx.take() {
            Some(tx) => (Some(tx.mail_from), tx.rcpt_to),
            None => (None, Vec::new()),
        };
        self.incident(IncidentKind::ShutDown, mail_from, rcpt_to);
        self.reply(&Reply::shutting_down()).await?;
        self.close_gracefully().await
    }

    /// Sends FIN, then reads until the client closes too (or a while has
    /// passed), so that whatever the client sends after our last reply does
    /// not make the kernel answer with a reset that could destroy that reply
    /// before the client reads it.
    async fn close_gracefully(&mut self) -> io::Result<()> {
        self.stream.get_mut().shutdown().await?;
        let stream = &mut self.stream;
        let mut scratch = [0u8; 4096];
        let _ = tokio::time::timeout(DRAIN_LIMIT, async {
            while let Ok(n) = stream.read(&mut scratch).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }

    /// Records a message that was cut off by the client (not on purpose by
    /// the server, which records those itself and clears the transaction).
    fn note_abandoned_message(&mut self) {
        let Some(tx) = self.tx.take() else {
            return;
        };
        let Some(data) = tx.data else {
            // No DATA yet: an unfinished envelope is not a message.
            return;
        };
        self.shared.lock().incidents.push(Incident {
            connection: self.id,
            kind: IncidentKind::Abandoned,
            mail_from: Some(tx.mail_from),
            rcpt_to: tx.rcpt_to,
            data,
            at: SystemTime::now(),
        });
    }

    fn append_data(&mut self, line: &[u8]) {
        // Dot-unstuffing (RFC 5321 4.5.2): a leading '.' was doubled by the client.
        let content = line.strip_prefix(b".").unwrap_or(line);
        if let Some(data) = self.tx.as_mut().and_then(|tx| tx.data.as_mut()) {
            data.extend_from_slice(content);
        }
    }

    fn incident(&self, kind: IncidentKind, mail_from: Option<String>, rcpt_to: Vec<String>) {
        self.shared.lock().incidents.push(Incident {
            connection: self.id,
            kind,
            mail_from,
            rcpt_to,
            data: Vec::new(),
            at: SystemTime::now(),
        });
    }

    fn count(&self, verb: &str) {
        let mut state = self.shared.lock();
        let counts = &mut state.commands;
        let counter = match verb {
            "EHLO" => &mut counts.ehlo,
            "HELO" => &mut counts.helo,
            "AUTH" => &mut counts.auth,
            "MAIL" => &mut counts.mail,
            "RCPT" => &mut counts.rcpt,
            "DATA" => &mut counts.data,
            "RSET" => &mut counts.rset,
            "NOOP" => &mut counts.noop,
            "QUIT" => &mut counts.quit,
            _ => &mut counts.other,
        };
        *counter += 1;
    }

    /// Reads one line including its line ending; `None` at end of input.
    async fn read_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        if self.stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        Ok(Some(line))
    }

    async fn send(&mut self, code: u16, text: &str) -> io::Result<Flow> {
        self.reply(&Reply::new(code, text)).await?;
        Ok(Flow::Continue)
    }

    async fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        let delay = self.shared.lock().behaviour.reply_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.log(format!("< {}", reply.to_string().replace('\n', " | ")));
        self.stream
            .get_mut()
            .write_all(reply.to_wire().as_bytes())
            .await
    }

    fn log(&self, line: String) {
        self.shared.log(self.id, line);
    }
}

/// Decodes one base64 AUTH answer as text.
fn decode_auth(answer: &str) -> Option<String> {
    base64::decode(answer).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Parses `FROM:<address> PARAM=VALUE ...` (or `TO:...`) into the address,
/// without brackets, and the parameters.
fn parse_path(arg: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let rest = arg
        .get(..keyword.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(keyword))
        .map(|_| arg[keyword.len()..].trim_start())?;
    let (address, params) = match rest.strip_prefix('<') {
        Some(inside) => {
            let end = inside.find('>')?;
            (&inside[..end], &inside[end + 1..])
        }
        None => rest.split_once(' ').unwrap_or((rest, "")),
    };
    let params = params.split_whitespace().map(str::to_owned).collect();
    Some((address.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::parse_path;

    #[test]
    fn paths_are_parsed_with_or_without_brackets() {
        assert_eq!(
            parse_path("FROM:<a@example.com> BODY=8BITMIME SIZE=12", "FROM:"),
            Some((
                "a@example.com".to_owned(),
                vec!["BODY=8BITMIME".to_owned(), "SIZE=12".to_owned()]
            ))
        );
        assert_eq!(
            parse_path("to: b@example.com", "TO:"),
            Some(("b@example.com".to_owned(), vec![]))
        );
        assert_eq!(
            parse_path("FROM:<>", "FROM:"),
            Some((String::new(), vec![]))
        );
        assert_eq!(parse_path("TO:<a@example.com>", "FROM:"), None);
        assert_eq!(parse_path("FROM:<unterminated", "FROM:"), None);
    }
}
