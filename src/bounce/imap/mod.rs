//! The bounce mailbox over IMAP: log in, list the messages, fetch each without marking it
//! read, and move those the caller processed to `letterpress-processed`. Nothing else in the
//! mailbox is touched: not read, not flagged, not moved, and never expunged but by UID.
//!
//! Our own minimal client, as for SMTP (`delivery::smtp`), rather than async-imap: we need ten
//! commands, already run tokio and rustls with `TlsSettings`, and need every read bounded,
//! while async-imap's buffer grows to a fixed 512 MiB per response, and brings a second
//! parser stack (nom, imap-proto) and futures plumbing for a job this size. Bounds here:
//! a response line is at most `MAX_LINE`, a literal at most `MAX_MESSAGE_BYTES` plus a little,
//! a message over the limit is never fetched (its size is known from the listing), and every
//! read and write has the caller's timeout.
//!
//! How processed messages leave the folder, best first:
//! - `UID MOVE` (RFC 6851) when offered: atomic;
//! - else with UIDPLUS (RFC 4315): `UID COPY`, `UID STORE +FLAGS (\Deleted)`, `UID EXPUNGE`
//!   of exactly those UIDs; never a plain `EXPUNGE`, which would also remove whatever else
//!   someone had flagged deleted;
//! - else `UID COPY` and flag the original `\Seen` (and `$LetterpressProcessed` where the
//!   server keeps keywords, so the next run skips it): it stays in the folder, as
//!   `Mailbox::settle_method` reports.

mod wire;

use std::fmt;
use std::time::Duration;

use super::imap_url::{ImapUrl, PROCESSED_FOLDER};
use super::source::{MAX_MESSAGE_BYTES, RawMessage};
use crate::delivery::smtp::TlsSettings;
use wire::{Connection, Token, fetch_items, has, quoted, uid_set};

/// The keyword that marks a processed message left in place (no MOVE, no UIDPLUS).
const PROCESSED_KEYWORD: &str = "$LetterpressProcessed";

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("the connection to the IMAP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the IMAP server did not answer within {waited} ({during})")]
    Timeout { waited: String, during: String },
    #[error("the IMAP server does not offer STARTTLS; use imaps:// if it has a TLS port")]
    NoStartTls,
    #[error(
        "the IMAP server does not allow logging in here (LOGINDISABLED); use imaps:// or STARTTLS"
    )]
    LoginDisabled,
    #[error("the IMAP server refused the login for `{user}`: {reply}")]
    LoginRefused { user: String, reply: String },
    #[error("cannot open the folder `{mailbox}`: {reply}")]
    NoMailbox { mailbox: String, reply: String },
    #[error(
        "the folder `{0}` is read-only for this user, so processed messages cannot be moved out"
    )]
    ReadOnly(String),
    #[error("the IMAP server refused {command}: {reply}")]
    Refused { command: String, reply: String },
    #[error("the IMAP server closed the connection: {0}")]
    Closed(String),
    #[error("the IMAP server's reply makes no sense: {0}")]
    Protocol(String),
}

/// How processed messages leave the folder on this server (see the module's doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleMethod {
    Move,
    CopyAndExpunge,
    /// The server has neither MOVE nor UIDPLUS: copied, and the original left marked.
    CopyAndMark,
}

impl fmt::Display for SettleMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SettleMethod::Move => "moved (UID MOVE)",
            SettleMethod::CopyAndExpunge => "moved (UID COPY, then UID EXPUNGE of those only)",
            SettleMethod::CopyAndMark => {
                "copied; the server has neither MOVE nor UIDPLUS, so the originals stay in the folder, marked read"
            }
        })
    }
}

/// A message in the folder, as listed: its UID and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub uid: u32,
    pub size: u64,
}

/// What the caller decided about a fetched message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A report of ours, recorded: move it to `letterpress-processed`.
    Processed,
    /// Not ours, or not understood: leave it exactly as it was.
    Leave,
}

/// What `process` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub fetched: usize,
    pub processed: usize,
    pub left: usize,
    /// UIDs of messages over `MAX_MESSAGE_BYTES`, left unread.
    pub too_large: Vec<u32>,
    pub method: SettleMethod,
}

/// A logged-in session with the bounce folder selected.
pub struct Mailbox {
    connection: Connection,
    url: ImapUrl,
    exists: u32,
    method: SettleMethod,
    keywords_allowed: bool,
}

impl Mailbox {
    /// Connects, secures the connection as the URL says, logs in, selects the folder and
    /// makes sure `letterpress-processed` exists. `timeout` bounds each step.
    pub async fn open(
        url: &ImapUrl,
        tls: &TlsSettings,
        timeout: Duration,
    ) -> Result<Mailbox, ImapError> {
        let (mut connection, capabilities) =
            Connection::open(url, tls.client_config(), timeout).await?;
        let capabilities = connection.log_in(url, &capabilities).await?;
        let method = if has(&capabilities, "MOVE") {
            SettleMethod::Move
        } else if has(&capabilities, "UIDPLUS") {
            SettleMethod::CopyAndExpunge
        } else {
            SettleMethod::CopyAndMark
        };
        let mut mailbox = Mailbox {
            connection,
            url: url.clone(),
            exists: 0,
            method,
            keywords_allowed: false,
        };
        mailbox.select().await?;
        mailbox.ensure_processed_folder().await?;
        Ok(mailbox)
    }

    pub fn settle_method(&self) -> SettleMethod {
        self.method
    }

    async fn select(&mut self) -> Result<(), ImapError> {
        let (mut exists, mut keywords) = (0, false);
        let done = self
            .connection
            .command(
                &format!("SELECT {}", quoted(&self.url.mailbox)),
                |response| {
                    if let Some(tokens) = response.data().transpose()?
                        && let [_, Token::Atom(count), Token::Atom(name), ..] = &tokens[..]
                        && name.eq_ignore_ascii_case("EXISTS")
                    {
                        exists = count.parse().unwrap_or(0);
                    }
                    if let Some(("*", "OK", Some(code), _)) = response.status()
                        && let Some(flags) = code.strip_prefix("PERMANENTFLAGS")
                    {
                        keywords = flags.contains("\\*") || flags.contains(PROCESSED_KEYWORD);
                    }
                    Ok(())
                },
            )
            .await?;
        if done.status != "OK" {
            return Err(ImapError::NoMailbox {
                mailbox: self.url.mailbox.clone(),
                reply: done.text,
            });
        }
        if done
            .code
            .as_deref()
            .is_some_and(|code| code.starts_with("READ-ONLY"))
        {
            return Err(ImapError::ReadOnly(self.url.mailbox.clone()));
        }
        self.exists = exists;
        self.keywords_allowed = keywords;
        Ok(())
    }

    async fn ensure_processed_folder(&mut self) -> Result<(), ImapError> {
        let mut listed = false;
        self.connection
            .command(
                &format!("LIST \"\" {}", quoted(PROCESSED_FOLDER)),
                |response| {
                    let tokens = response.data().transpose()?.unwrap_or_default();
                    listed |= tokens.get(1) == Some(&Token::Atom("LIST".into()));
                    Ok(())
                },
            )
            .await?
            .ok("LIST")?;
        if listed {
            return Ok(());
        }
        let created = self
            .connection
            .command(&format!("CREATE {}", quoted(PROCESSED_FOLDER)), |_| Ok(()))
            .await?;
        // ALREADYEXISTS: another run created it in between, which is as good.
        if created.status != "OK" && created.code.as_deref() != Some("ALREADYEXISTS") {
            return Err(ImapError::Refused {
                command: format!("CREATE {PROCESSED_FOLDER}"),
                reply: created.text,
            });
        }
        // So that mail clients that show only subscribed folders show it; not essential.
        self.connection
            .command(&format!("SUBSCRIBE {}", quoted(PROCESSED_FOLDER)), |_| {
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// The folder's messages, oldest first, without those flagged `\Deleted` (someone else's
    /// business) or already processed in place.
    pub async fn list(&mut self) -> Result<Vec<Listed>, ImapError> {
        if self.exists == 0 {
            return Ok(Vec::new());
        }
        let mut listed = Vec::new();
        self.connection
            .command("UID FETCH 1:* (UID FLAGS RFC822.SIZE)", |response| {
                let Some(items) = fetch_items(response)? else {
                    return Ok(());
                };
                let (mut uid, mut size, mut skip) = (None, None, false);
                for (name, value) in items {
                    match (name.to_ascii_uppercase().as_str(), value) {
                        ("UID", Token::Atom(number)) => uid = number.parse().ok(),
                        ("RFC822.SIZE", Token::Atom(number)) => size = number.parse().ok(),
                        ("FLAGS", Token::List(flags)) => {
                            skip = flags.iter().any(|flag| {
                                flag.eq_ignore_ascii_case("\\Deleted")
                                    || flag.eq_ignore_ascii_case(PROCESSED_KEYWORD)
                            });
                        }
                        _ => {}
                    }
                }
                if let (Some(uid), Some(size), false) = (uid, size, skip) {
                    listed.push(Listed { uid, size });
                }
                Ok(())
            })
            .await?
            .ok("UID FETCH")?;
        listed.sort_by_key(|message| message.uid);
        listed.dedup_by_key(|message| message.uid);
        Ok(listed)
    }

    /// The whole message, without setting `\Seen` (`BODY.PEEK[]`); `None` if it has gone
    /// since it was listed.
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<RawMessage>, ImapError> {
        let mut body = None;
        self.connection
            .command(&format!("UID FETCH {uid} (UID BODY.PEEK[])"), |response| {
                let Some(items) = fetch_items(response)? else {
                    return Ok(());
                };
                let this_uid = items.iter().any(|(name, value)| {
                    name.eq_ignore_ascii_case("UID") && *value == Token::Atom(uid.to_string())
                });
                for (name, value) in items {
                    if this_uid
                        && name.eq_ignore_ascii_case("BODY[]")
                        && let Token::String(bytes) = value
                    {
                        body = Some(bytes);
                    }
                }
                Ok(())
            })
            .await?
            .ok("UID FETCH")?;
        Ok(body.map(|bytes| RawMessage {
            source: self.url.message_source(uid),
            bytes,
        }))
    }

    /// Moves the messages `uids` to `letterpress-processed`, by the best method the server
    /// offers; touches no other message.
    pub async fn settle(&mut self, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        let folder = quoted(PROCESSED_FOLDER);
        let commands = match self.method {
            SettleMethod::Move => vec![format!("UID MOVE {set} {folder}")],
            SettleMethod::CopyAndExpunge => vec![
                format!("UID COPY {set} {folder}"),
                format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"),
                format!("UID EXPUNGE {set}"),
            ],
            SettleMethod::CopyAndMark => {
                let keyword = if self.keywords_allowed {
                    format!(" {PROCESSED_KEYWORD}")
                } else {
                    String::new()
                };
                vec![
                    format!("UID COPY {set} {folder}"),
                    format!("UID STORE {set} +FLAGS.SILENT (\\Seen{keyword})"),
                ]
            }
        };
        for command in commands {
            self.connection
                .command(&command, |_| Ok(()))
                .await?
                .ok(&command)?;
        }
        Ok(())
    }

    /// Says goodbye; the server's answer does not matter any more.
    pub async fn logout(mut self) {
        let _ = self.connection.command("LOGOUT", |_| Ok(())).await;
    }
}

/// Every message of the folder through `handle`, oldest first; each it calls `Processed`
/// moves to `letterpress-processed` before the next is fetched, so that a crash leaves at
/// most one processed message behind to be seen again. An error from `handle` stops the
/// run; the message it was handling stays where it was.
pub async fn process<E>(
    mailbox: &mut Mailbox,
    mut handle: impl FnMut(&RawMessage) -> Result<Disposition, E>,
) -> Result<Summary, E>
where
    E: From<ImapError>,
{
    let mut summary = Summary {
        fetched: 0,
        processed: 0,
        left: 0,
        too_large: Vec::new(),
        method: mailbox.settle_method(),
    };
    for listed in mailbox.list().await? {
        if listed.size > MAX_MESSAGE_BYTES as u64 {
            summary.too_large.push(listed.uid);
            continue;
        }
        let Some(message) = mailbox.fetch(listed.uid).await? else {
            continue;
        };
        summary.fetched += 1;
        match handle(&message)? {
            Disposition::Processed => {
                mailbox.settle(&[listed.uid]).await?;
                summary.processed += 1;
            }
            Disposition::Leave => summary.left += 1,
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    /// A scripted server on loopback: `greeting` first, then for each command line the
    /// reply `answer` gives for it (`{tag}` stands for the command's tag); `None` to go
    /// silent.
    async fn fake_server(greeting: &'static [u8], answer: fn(&str) -> Option<Vec<u8>>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = BufReader::new(socket);
            socket.get_mut().write_all(greeting).await.unwrap();
            let mut line = String::new();
            while socket.read_line(&mut line).await.unwrap_or(0) > 0 {
                let (tag, command) = line.trim_end().split_once(' ').unwrap_or(("", ""));
                match answer(command) {
                    Some(reply) => {
                        let reply = String::from_utf8(reply).unwrap().replace("{tag}", tag);
                        socket.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    }
                    None => std::future::pending::<()>().await,
                }
                line.clear();
            }
        });
        port
    }

    fn plaintext(port: u16) -> ImapUrl {
        ImapUrl::parse(&format!("imap://u:p@127.0.0.1:{port}/INBOX?tls=none")).unwrap()
    }

    fn settings() -> TlsSettings {
        TlsSettings::with_extra_roots(&[]).unwrap()
    }

    /// Answers enough for `Mailbox::open` and a listing of one small message.
    fn cooperative(command: &str) -> Option<Vec<u8>> {
        let reply: &[u8] = match command.split(' ').next().unwrap_or("") {
            "LOGIN" => b"* CAPABILITY IMAP4rev1 MOVE\r\n{tag} OK Logged in\r\n",
            "SELECT" => b"* 1 EXISTS\r\n* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] ok\r\n{tag} OK [READ-WRITE] done\r\n",
            "LIST" => b"* LIST () \"/\" letterpress-processed\r\n{tag} OK done\r\n",
            "UID" if command.contains("RFC822.SIZE") => {
                b"* 1 FETCH (UID 7 FLAGS () RFC822.SIZE 100)\r\n{tag} OK done\r\n"
            }
            "UID" => b"* 1 FETCH (UID 7 BODY[] {20971520}\r\n",
            _ => b"{tag} OK done\r\n",
        };
        Some(reply.to_vec())
    }

    #[tokio::test]
    async fn a_server_that_goes_silent_times_out() {
        let url = plaintext(fake_server(b"* OK [CAPABILITY IMAP4rev1] hi\r\n", |_| None).await);
        let error = Mailbox::open(&url, &settings(), Duration::from_millis(300))
            .await
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "the IMAP server did not answer within 300 ms (waiting for a reply)"
        );
    }

    #[tokio::test]
    async fn an_endless_line_is_refused_before_it_fills_memory() {
        static ENDLESS: [u8; 70_000] = [b'x'; 70_000];
        let url = plaintext(fake_server(&ENDLESS, cooperative).await);
        let error = Mailbox::open(&url, &settings(), Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, ImapError::Protocol(_)), "{error}");
    }

    #[tokio::test]
    async fn a_literal_larger_than_any_message_is_refused_before_it_is_read() {
        let url = plaintext(fake_server(b"* OK [CAPABILITY IMAP4rev1] hi\r\n", cooperative).await);
        let mut mailbox = Mailbox::open(&url, &settings(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            mailbox.list().await.unwrap(),
            [Listed { uid: 7, size: 100 }]
        );
        let error = mailbox.fetch(7).await.err().unwrap();
        assert!(
            error.to_string().contains("a literal of 20971520 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn starttls_required_but_not_offered_and_preauth_are_refused() {
        let port = fake_server(
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n",
            cooperative,
        )
        .await;
        let url = ImapUrl::parse(&format!("imap://u:p@127.0.0.1:{port}/INBOX")).unwrap();
        let error = Mailbox::open(&url, &settings(), Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(matches!(error, ImapError::NoStartTls), "{error}");

        let url = plaintext(
            fake_server(
                b"* PREAUTH [CAPABILITY IMAP4rev1] welcome back\r\n",
                cooperative,
            )
            .await,
        );
        let error = Mailbox::open(&url, &settings(), Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert!(error.to_string().contains("PREAUTH"), "{error}");
    }
}
