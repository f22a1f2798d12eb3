//! The IMAP wire: commands out, responses in, every read bounded; parsing just what
//! `Mailbox` needs.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::ImapError;
use crate::bounce::imap_url::{ImapSecurity, ImapUrl};
use crate::bounce::source::MAX_MESSAGE_BYTES;

/// The longest response line read: capability lists, listings and FETCH lines are far
/// shorter; only a message's literal is longer, and literals are read apart.
const MAX_LINE: usize = 64 * 1024;

/// The most literals in one response: a FETCH of one message has one.
const MAX_LITERALS: usize = 8;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn within<T>(
    timeout: Duration,
    during: &str,
    future: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(timeout, future)
        .await
        .unwrap_or_else(|_| {
            let waited = if timeout.as_secs() > 0 {
                format!("{} s", timeout.as_secs())
            } else {
                format!("{} ms", timeout.as_millis())
            };
            Err(ImapError::Timeout {
                waited,
                during: during.to_string(),
            })
        })
}

/// The TLS handshake, verifying the server's certificate and name as for SMTP.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    tls: &Arc<ClientConfig>,
    host: &str,
    stream: S,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<S>, ImapError> {
    let failed = |source: std::io::Error| ImapError::Tls {
        host: host.to_string(),
        source,
    };
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        failed(std::io::Error::other(format!(
            "`{host}` is not a valid TLS server name"
        )))
    })?;
    within(timeout, "the TLS handshake", async {
        tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await
            .map_err(failed)
    })
    .await
}

impl Connection {
    /// Connects and secures the connection as the URL says; returns the connection, at the
    /// point of logging in, and the capabilities the server announced (after TLS, when
    /// STARTTLS was used).
    pub(super) async fn open(
        url: &ImapUrl,
        tls: Arc<ClientConfig>,
        timeout: Duration,
    ) -> Result<(Connection, Vec<String>), ImapError> {
        let tcp = within(timeout, "connecting", async {
            TcpStream::connect((url.host.as_str(), url.port))
                .await
                .map_err(|source| ImapError::Connect {
                    host: url.host.clone(),
                    port: url.port,
                    source,
                })
        })
        .await?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = if url.security == ImapSecurity::Implicit {
            Box::new(handshake(&tls, &url.host, tcp, timeout).await?)
        } else {
            Box::new(tcp)
        };
        let mut connection = Connection {
            stream: BufReader::new(stream),
            next_tag: 1,
            timeout,
            bye: None,
        };
        let greeting = connection.read_response().await?;
        let mut capabilities = match greeting.status() {
            Some(("*", "OK", code, _)) => code_capabilities(code),
            Some(("*", "PREAUTH", ..)) => {
                // Already logged in as someone: not the user the URL names, and STARTTLS
                // is no longer possible.
                return Err(ImapError::Protocol(
                    "the server logged us in before we gave a password (PREAUTH)".into(),
                ));
            }
            _ => return Err(ImapError::Closed(greeting.text_lossy())),
        };
        if capabilities.is_empty() {
            capabilities = connection.capabilities().await?;
        }
        if url.security == ImapSecurity::StartTls {
            if !has(&capabilities, "STARTTLS") {
                return Err(ImapError::NoStartTls);
            }
            connection
                .command("STARTTLS", |_| Ok(()))
                .await?
                .ok("STARTTLS")?;
            if !connection.stream.buffer().is_empty() {
                // Bytes sent before TLS started would be read as if they came over it.
                return Err(ImapError::Protocol("data after the STARTTLS reply".into()));
            }
            let Connection {
                stream,
                next_tag: connection_tag,
                ..
            } = connection;
            let secured = handshake(&tls, &url.host, stream.into_inner(), timeout).await?;
            connection = Connection {
                stream: BufReader::new(Box::new(secured)),
                next_tag: connection_tag,
                timeout,
                bye: None,
            };
            // What the server said before TLS may have been forged: ask again.
            capabilities = connection.capabilities().await?;
        }
        Ok((connection, capabilities))
    }
}

pub(super) struct Connection {
    stream: BufReader<Box<dyn Stream>>,
    next_tag: u32,
    timeout: Duration,
    /// The text of the server's BYE, for the error when the stream then ends.
    bye: Option<String>,
}

/// A command's tagged completion: `OK`, `NO` or `BAD`, its response code and its text.
pub(super) struct Completion {
    pub(super) status: String,
    pub(super) code: Option<String>,
    pub(super) text: String,
}

impl Completion {
    pub(super) fn ok(self, command: &str) -> Result<(), ImapError> {
        if self.status == "OK" {
            return Ok(());
        }
        Err(ImapError::Refused {
            command: command.to_string(),
            reply: format!("{} {}", self.status, self.text),
        })
    }
}

impl Connection {
    /// Sends a command and reads up to its completion, handing each untagged response to
    /// `untagged` as it arrives, so that none has to be kept.
    pub(super) async fn command(
        &mut self,
        command: &str,
        mut untagged: impl FnMut(&Response) -> Result<(), ImapError>,
    ) -> Result<Completion, ImapError> {
        let tag = format!("L{}", self.next_tag);
        self.next_tag += 1;
        self.write(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.complete(&tag, &mut untagged).await
    }

    async fn complete(
        &mut self,
        tag: &str,
        untagged: &mut impl FnMut(&Response) -> Result<(), ImapError>,
    ) -> Result<Completion, ImapError> {
        loop {
            let response = self.read_response().await?;
            match response.status() {
                Some((t, status, code, text)) if t == tag => {
                    return Ok(Completion {
                        status: status.to_ascii_uppercase(),
                        code: code.map(str::to_string),
                        text: text.to_string(),
                    });
                }
                Some(("*", "BYE", _, text)) => {
                    // LOGOUT's completion follows its BYE; after any other BYE the stream
                    // ends, and the error says why.
                    self.bye = Some(text.to_string());
                }
                _ if response.first_byte() == Some(b'+') => {
                    return Err(ImapError::Protocol(
                        "a continuation request where none was expected".into(),
                    ));
                }
                _ => untagged(&response)?,
            }
        }
    }

    async fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
        let mut capabilities = Vec::new();
        self.command("CAPABILITY", |response| {
            let tokens = response.data().transpose()?.unwrap_or_default();
            if tokens.get(1) == Some(&Token::Atom("CAPABILITY".into())) {
                capabilities = atoms(&tokens[2..]);
            }
            Ok(())
        })
        .await?
        .ok("CAPABILITY")?;
        Ok(capabilities)
    }

    /// AUTHENTICATE PLAIN when offered (any password, in base64), else LOGIN; returns the
    /// capabilities after login, which servers extend (MOVE, UIDPLUS).
    pub(super) async fn log_in(
        &mut self,
        url: &ImapUrl,
        capabilities: &[String],
    ) -> Result<Vec<String>, ImapError> {
        let mut after = Vec::new();
        let mut collect = |response: &Response| {
            let tokens = response.data().transpose()?.unwrap_or_default();
            if tokens.get(1) == Some(&Token::Atom("CAPABILITY".into())) {
                after = atoms(&tokens[2..]);
            }
            Ok(())
        };
        let done = if has(capabilities, "AUTH=PLAIN") {
            let token = STANDARD.encode(format!("\0{}\0{}", url.username, url.password()));
            if has(capabilities, "SASL-IR") {
                self.command(&format!("AUTHENTICATE PLAIN {token}"), &mut collect)
                    .await?
            } else {
                let tag = format!("L{}", self.next_tag);
                self.next_tag += 1;
                self.write(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())
                    .await?;
                let response = self.read_response().await?;
                if response.first_byte() != Some(b'+') {
                    return Err(ImapError::LoginRefused {
                        user: url.username.clone(),
                        reply: response.text_lossy(),
                    });
                }
                self.write(format!("{token}\r\n").as_bytes()).await?;
                self.complete(&tag, &mut collect).await?
            }
        } else if has(capabilities, "LOGINDISABLED") {
            return Err(ImapError::LoginDisabled);
        } else {
            let command = format!(
                "LOGIN {} {}",
                login_string(&url.username)?,
                login_string(url.password())?
            );
            self.command(&command, &mut collect).await?
        };
        if done.status != "OK" {
            return Err(ImapError::LoginRefused {
                user: url.username.clone(),
                reply: done.text,
            });
        }
        if let Some(code) = done.code.as_deref() {
            let listed = code_capabilities(Some(code));
            if !listed.is_empty() {
                after = listed;
            }
        }
        if after.is_empty() {
            after = self.capabilities().await?;
        }
        Ok(after)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        let timeout = self.timeout;
        let stream = self.stream.get_mut();
        within(timeout, "sending a command", async {
            stream.write_all(bytes).await?;
            stream.flush().await?;
            Ok(())
        })
        .await
    }

    /// One response: a line, and when it ends in `{n}`, the n-byte literal and the rest of
    /// the response after it.
    async fn read_response(&mut self) -> Result<Response, ImapError> {
        let timeout = self.timeout;
        within(timeout, "waiting for a reply", async {
            let mut pieces = Vec::new();
            loop {
                let mut line = Vec::with_capacity(128);
                let read = (&mut self.stream)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut line)
                    .await?;
                if read == 0 {
                    let why = self.bye.take().unwrap_or_else(|| "without a word".into());
                    return Err(ImapError::Closed(why));
                }
                if !line.ends_with(b"\n") {
                    return Err(ImapError::Protocol(format!(
                        "a line longer than {MAX_LINE} bytes"
                    )));
                }
                line.truncate(line.len() - 1);
                if line.ends_with(b"\r") {
                    line.truncate(line.len() - 1);
                }
                let Some((before, size)) = literal_announcement(&line) else {
                    pieces.push(Piece::Text(line));
                    return Ok(Response { pieces });
                };
                if size > MAX_MESSAGE_BYTES + MAX_LINE {
                    return Err(ImapError::Protocol(format!(
                        "a literal of {size} bytes, more than any message we fetch"
                    )));
                }
                if pieces.len() >= 2 * MAX_LITERALS {
                    return Err(ImapError::Protocol("too many literals in one reply".into()));
                }
                line.truncate(before);
                pieces.push(Piece::Text(line));
                let mut literal = vec![0; size];
                self.stream.read_exact(&mut literal).await?;
                pieces.push(Piece::Literal(literal));
            }
        })
        .await
    }
}

/// `{123}` at the end of a line: where it starts and the size it announces.
fn literal_announcement(line: &[u8]) -> Option<(usize, usize)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&byte| byte == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let size = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((open, size))
}

enum Piece {
    Text(Vec<u8>),
    Literal(Vec<u8>),
}

/// One server response with its literals.
pub(super) struct Response {
    pieces: Vec<Piece>,
}

/// A parsed piece of a response: an atom (numbers and `NIL` included), a string (quoted or
/// literal), or a parenthesised list of atoms (a FETCH value such as FLAGS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Atom(String),
    String(Vec<u8>),
    List(Vec<String>),
    Open,
    Close,
}

impl Response {
    fn first_line(&self) -> &[u8] {
        match self.pieces.first() {
            Some(Piece::Text(line)) => line,
            _ => b"",
        }
    }

    fn first_byte(&self) -> Option<u8> {
        self.first_line().first().copied()
    }

    fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.first_line()).into_owned()
    }

    /// A status response, `tag STATUS [CODE] text` or `* STATUS [CODE] text`, as (tag,
    /// status, code, text); `None` for data responses.
    pub(super) fn status(&self) -> Option<(&str, &str, Option<&str>, &str)> {
        let line = std::str::from_utf8(self.first_line()).ok()?;
        let (tag, rest) = line.split_once(' ')?;
        let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
        let status_known = ["OK", "NO", "BAD", "BYE", "PREAUTH"]
            .iter()
            .any(|known| status.eq_ignore_ascii_case(known));
        if !status_known {
            return None;
        }
        let (code, text) = match text.strip_prefix('[').and_then(|code| code.split_once(']')) {
            Some((code, text)) => (Some(code), text.trim_start()),
            None => (None, text),
        };
        Some((tag, status, code, text))
    }

    /// A data response (`* 3 EXISTS`, `* 1 FETCH (...)`, `* CAPABILITY ...`) as tokens;
    /// `None` for status responses and continuations, whose text is for people and need
    /// not parse.
    pub(super) fn data(&self) -> Option<Result<Vec<Token>, ImapError>> {
        (self.first_line().starts_with(b"* ") && self.status().is_none()).then(|| self.tokens())
    }

    /// The response as tokens; a parenthesised list of atoms becomes one `List`, other
    /// parentheses stay `Open`/`Close`.
    fn tokens(&self) -> Result<Vec<Token>, ImapError> {
        let mut tokens = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(bytes) => tokens.push(Token::String(bytes.clone())),
                Piece::Text(text) => lex(text, &mut tokens)?,
            }
        }
        Ok(fold_flat_lists(tokens))
    }
}

fn lex(text: &[u8], tokens: &mut Vec<Token>) -> Result<(), ImapError> {
    let mut at = 0;
    while at < text.len() {
        match text[at] {
            b' ' => at += 1,
            b'(' => {
                tokens.push(Token::Open);
                at += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                at += 1;
            }
            b'"' => {
                let mut value = Vec::new();
                at += 1;
                loop {
                    match text.get(at) {
                        None => return Err(ImapError::Protocol("an unterminated string".into())),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            value.extend(text.get(at + 1));
                            at += 2;
                        }
                        Some(&byte) => {
                            value.push(byte);
                            at += 1;
                        }
                    }
                }
                at += 1;
                tokens.push(Token::String(value));
            }
            _ => {
                // An atom; `BODY[HEADER.FIELDS (A B)]` is one, brackets and all.
                let start = at;
                let mut depth = 0;
                while let Some(&byte) = text.get(at) {
                    match byte {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b'(' | b')' | b'"' if depth <= 0 => break,
                        _ => {}
                    }
                    at += 1;
                }
                tokens.push(Token::Atom(
                    String::from_utf8_lossy(&text[start..at]).into_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// `Open Atom Atom Close` becomes `List([..])`: FLAGS values and the like.
fn fold_flat_lists(tokens: Vec<Token>) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if token == Token::Close
            && let Some(open) = out.iter().rposition(|t| *t == Token::Open)
            && out[open + 1..].iter().all(|t| matches!(t, Token::Atom(_)))
            // The outermost list of a FETCH holds its items: keep it open.
            && !(open >= 3 && matches!(&out[open - 1], Token::Atom(name) if name.eq_ignore_ascii_case("FETCH")))
        {
            let items = out.split_off(open + 1);
            out.pop();
            out.push(Token::List(atoms(&items)));
            continue;
        }
        out.push(token);
    }
    out
}

fn atoms(tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|token| match token {
            Token::Atom(atom) => Some(atom.clone()),
            _ => None,
        })
        .collect()
}

/// The `name value` items of `* n FETCH (...)`, or `None` for any other response.
pub(super) fn fetch_items(response: &Response) -> Result<Option<Vec<(String, Token)>>, ImapError> {
    let Some(tokens) = response.data().transpose()? else {
        return Ok(None);
    };
    let [
        Token::Atom(star),
        Token::Atom(_),
        Token::Atom(fetch),
        Token::Open,
        items @ ..,
    ] = &tokens[..]
    else {
        return Ok(None);
    };
    if star != "*" || !fetch.eq_ignore_ascii_case("FETCH") {
        return Ok(None);
    }
    let items = items.strip_suffix(&[Token::Close]).unwrap_or(items);
    let mut pairs = Vec::new();
    let mut items = items.iter();
    while let (Some(Token::Atom(name)), Some(value)) = (items.next(), items.next()) {
        pairs.push((name.clone(), value.clone()));
    }
    Ok(Some(pairs))
}

/// Capabilities from a `[CAPABILITY ...]` response code.
fn code_capabilities(code: Option<&str>) -> Vec<String> {
    code.and_then(|code| code.strip_prefix("CAPABILITY "))
        .map(|list| list.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

pub(super) fn has(capabilities: &[String], name: &str) -> bool {
    capabilities
        .iter()
        .any(|capability| capability.eq_ignore_ascii_case(name))
}

/// A quoted string for a mailbox name (ASCII without controls, as `ImapUrl` ensures).
pub(super) fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A user name or password for LOGIN, which can only be sent as a quoted string here; line
/// breaks and NUL cannot be.
fn login_string(text: &str) -> Result<String, ImapError> {
    if text.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(ImapError::Protocol(
            "the server offers only LOGIN, which cannot send a user name or password with a line break".into(),
        ));
    }
    Ok(quoted(text))
}

/// `1:3,7` for 1, 2, 3 and 7.
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for uid in sorted {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == uid => *end = uid,
            _ => ranges.push((uid, uid)),
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}:{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(pieces: Vec<Piece>) -> Response {
        Response { pieces }
    }

    #[test]
    fn a_fetch_response_gives_its_items_with_the_literal_body() {
        let fetched = response(vec![
            Piece::Text(b"* 3 FETCH (UID 17 FLAGS (\\Seen $Label1) BODY[] ".to_vec()),
            Piece::Literal(b"Subject: x\r\n\r\nbody".to_vec()),
            Piece::Text(b")".to_vec()),
        ]);
        let items = fetch_items(&fetched).unwrap().unwrap();
        assert_eq!(
            items,
            [
                ("UID".to_string(), Token::Atom("17".into())),
                (
                    "FLAGS".to_string(),
                    Token::List(vec!["\\Seen".into(), "$Label1".into()])
                ),
                (
                    "BODY[]".to_string(),
                    Token::String(b"Subject: x\r\n\r\nbody".to_vec())
                ),
            ]
        );
        let listing = response(vec![Piece::Text(
            b"* 1 FETCH (UID 4 RFC822.SIZE 1234 FLAGS ())".to_vec(),
        )]);
        assert_eq!(
            fetch_items(&listing).unwrap().unwrap()[2],
            ("FLAGS".to_string(), Token::List(vec![]))
        );
        let other = response(vec![Piece::Text(b"* 4 EXISTS".to_vec())]);
        assert!(fetch_items(&other).unwrap().is_none());
    }

    #[test]
    fn status_responses_give_tag_status_code_and_text() {
        let done = response(vec![Piece::Text(
            b"L3 OK [READ-WRITE] Select completed (0.001 secs).".to_vec(),
        )]);
        assert_eq!(
            done.status(),
            Some((
                "L3",
                "OK",
                Some("READ-WRITE"),
                "Select completed (0.001 secs)."
            ))
        );
        let greeting = response(vec![Piece::Text(
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.".to_vec(),
        )]);
        let (_, _, code, _) = greeting.status().unwrap();
        assert_eq!(
            code_capabilities(code),
            ["IMAP4rev1", "STARTTLS", "AUTH=PLAIN"]
        );
        let data = response(vec![Piece::Text(b"* 2 EXISTS".to_vec())]);
        assert_eq!(data.status(), None);
    }

    #[test]
    fn literals_are_announced_only_by_braces_with_digits_at_the_end() {
        assert_eq!(
            literal_announcement(b"* 1 FETCH (BODY[] {42}"),
            Some((18, 42))
        );
        assert_eq!(literal_announcement(b"* OK {not a literal}"), None);
        assert_eq!(literal_announcement(b"* OK done"), None);
        assert_eq!(literal_announcement(b"x {99999999999}"), None);
    }

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[7, 1, 2, 3, 3, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
    }
    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(login_string("pass\r\nword").is_err());
    }
}
