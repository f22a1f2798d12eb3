//! Messages from where bounces get saved: `.eml` files, mbox files, Maildir folders, and
//! standard input (one message, from a Postfix `pipe` or procmail).
//!
//! One message at a time, each at most `MAX_MESSAGE_BYTES`: a bounce mailbox can grow to
//! gigabytes, and nothing here holds more than the message being read. A message over the
//! limit is an error item and the next one is read, so one oversized message does not stop
//! the rest.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

/// The largest message read: bounces are small; a report carrying back a large original is
/// rarely over a few MiB.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// One message and where it came from (`bounces.mbox, message 3 (line 120)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub source: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{source_name} is larger than {} MiB, more than any bounce; skipped",
        MAX_MESSAGE_BYTES / 1024 / 1024
    )]
    TooLarge { source_name: String },
    #[error(
        "`{0}` is a folder but not a Maildir (it has no cur/ or new/); give an .eml file, an mbox file or a Maildir"
    )]
    NotAMaildir(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The messages at `path`: every message of a Maildir (`cur/` and `new/`), of an mbox file
/// (a file whose first line starts with `From `), or the one message of any other file.
pub fn messages(path: &Path) -> Result<Messages, SourceError> {
    if path.is_dir() {
        return Ok(Messages(Inner::Maildir(Maildir::open(path)?)));
    }
    // A regular file only: a FIFO or a device named by mistake is refused, not read forever.
    let mut reader =
        crate::source::open(path, crate::source::FileKind::Mailbox).map_err(|error| {
            SourceError::Io {
                path: path.display().to_string(),
                source: io::Error::other(error),
            }
        })?;
    let starts_like_mbox = reader
        .fill_buf()
        .map_err(io_error(path))?
        .starts_with(b"From ");
    let name = path.display().to_string();
    Ok(Messages(if starts_like_mbox {
        Inner::Mbox(Mbox::new(reader, name))
    } else {
        Inner::One(Some(read_message(reader, name)))
    }))
}

/// The one message on standard input. A leading mbox `From ` line, which Postfix's `pipe`
/// with the `F` flag adds, is dropped.
pub fn stdin_message() -> Result<RawMessage, SourceError> {
    read_message(io::stdin().lock(), "standard input".to_string())
}

/// Reads one whole message from `reader`, refusing more than `MAX_MESSAGE_BYTES`.
pub fn read_message(reader: impl Read, source: String) -> Result<RawMessage, SourceError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| SourceError::Io {
            path: source.clone(),
            source: error,
        })?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(SourceError::TooLarge {
            source_name: source,
        });
    }
    if bytes.starts_with(b"From ") {
        let line_end = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |at| at + 1);
        bytes.drain(..line_end);
    }
    Ok(RawMessage { source, bytes })
}

/// The messages of one path, one at a time.
pub struct Messages(Inner);

enum Inner {
    One(Option<Result<RawMessage, SourceError>>),
    Mbox(Mbox<crate::source::SourceFile>),
    Maildir(Maildir),
}

impl Iterator for Messages {
    type Item = Result<RawMessage, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::One(message) => message.take(),
            Inner::Mbox(mbox) => mbox.next(),
            Inner::Maildir(maildir) => maildir.next(),
        }
    }
}

/// The messages of a Maildir: its `new/` and `cur/` files in name order (`tmp/` holds
/// messages still being written).
pub struct Maildir {
    files: std::vec::IntoIter<PathBuf>,
}

impl Maildir {
    pub fn open(path: &Path) -> Result<Maildir, SourceError> {
        let (new, cur) = (path.join("new"), path.join("cur"));
        if !new.is_dir() && !cur.is_dir() {
            return Err(SourceError::NotAMaildir(path.display().to_string()));
        }
        let mut files = Vec::new();
        for folder in [new, cur] {
            if !folder.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&folder).map_err(io_error(&folder))? {
                let entry = entry.map_err(io_error(&folder))?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && entry.file_type().map_err(io_error(&folder))?.is_file() {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        Ok(Maildir {
            files: files.into_iter(),
        })
    }
}

impl Iterator for Maildir {
    type Item = Result<RawMessage, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let path = self.files.next()?;
        Some(
            File::open(&path)
                .map_err(io_error(&path))
                .and_then(|file| read_message(file, path.display().to_string())),
        )
    }
}

/// The longest piece of a line read at once: lines are read in pieces, so a file with no
/// line breaks cannot make one line fill memory.
const PIECE: u64 = 64 * 1024;

/// An mbox file, read message by message.
///
/// A message starts at a line `From <sender> <date>` that follows a blank line (or opens the
/// file); requiring both keeps a body line that merely starts with "From " (which an mboxo
/// writer does not quote) inside its message. One `>` is removed from `>From `, `>>From `...:
/// that undoes mboxrd's quoting exactly, and mboxo's for every line it quoted.
pub struct Mbox<R> {
    reader: R,
    name: String,
    line: u64,
    index: u64,
    /// The message being read: its number, first line and bytes, and whether it outgrew the
    /// limit (its bytes are dropped then, and the rest of it skipped).
    current: Option<(u64, u64, Vec<u8>, bool)>,
    previous_blank: bool,
    at_line_start: bool,
    failed: bool,
}

impl<R: BufRead> Mbox<R> {
    pub fn new(reader: R, name: String) -> Mbox<R> {
        Mbox {
            reader,
            name,
            line: 0,
            index: 0,
            current: None,
            previous_blank: true,
            at_line_start: true,
            failed: false,
        }
    }

    fn finish(&self, (index, line, mut bytes, too_large): (u64, u64, Vec<u8>, bool)) -> Item {
        let source = format!("{}, message {index} (line {line})", self.name);
        if too_large {
            return Err(SourceError::TooLarge {
                source_name: source,
            });
        }
        // The blank line before the next `From ` belongs to the mbox, not to the message.
        if bytes.ends_with(b"\r\n\r\n") {
            bytes.truncate(bytes.len() - 2);
        } else if bytes.ends_with(b"\n\n") {
            bytes.truncate(bytes.len() - 1);
        }
        Ok(RawMessage { source, bytes })
    }
}

type Item = Result<RawMessage, SourceError>;

fn is_separator(line: &[u8]) -> bool {
    // `From sender Mon Aug 23 13:30:02 2021`: the time is what prose rarely has.
    line.starts_with(b"From ")
        && line
            .windows(3)
            .any(|w| w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit())
}

impl<R: BufRead> Iterator for Mbox<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.failed {
            return None;
        }
        let mut piece = Vec::with_capacity(256);
        loop {
            piece.clear();
            let read = (&mut self.reader).take(PIECE).read_until(b'\n', &mut piece);
            match read {
                Err(source) => {
                    // Reading stops here: the same error could come back forever.
                    self.failed = true;
                    self.current = None;
                    return Some(Err(SourceError::Io {
                        path: self.name.clone(),
                        source,
                    }));
                }
                Ok(0) => {
                    let current = self.current.take()?;
                    return Some(self.finish(current));
                }
                Ok(_) => {}
            }
            let line_start = self.at_line_start;
            self.at_line_start = piece.ends_with(b"\n");
            if line_start {
                self.line += 1;
            }
            let blank = line_start && (piece == b"\n" || piece == b"\r\n");
            if line_start && self.previous_blank && is_separator(&piece) {
                self.index += 1;
                let started = (self.index, self.line, Vec::new(), false);
                self.previous_blank = false;
                if let Some(done) = self.current.replace(started) {
                    return Some(self.finish(done));
                }
                continue;
            }
            if line_start {
                self.previous_blank = blank;
            }
            let Some((_, _, bytes, too_large)) = &mut self.current else {
                // Text before the first `From ` line: not part of any message.
                continue;
            };
            if *too_large {
                continue;
            }
            let unquoted = if line_start && piece.starts_with(b">") {
                let quotes = piece.iter().take_while(|&&byte| byte == b'>').count();
                if piece[quotes..].starts_with(b"From ") {
                    &piece[1..]
                } else {
                    &piece[..]
                }
            } else {
                &piece[..]
            };
            if bytes.len() + unquoted.len() > MAX_MESSAGE_BYTES {
                *too_large = true;
                *bytes = Vec::new();
            } else {
                bytes.extend_from_slice(unquoted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox(text: &[u8]) -> Vec<Result<RawMessage, SourceError>> {
        Mbox::new(text, "test.mbox".to_string()).collect()
    }

    fn bodies(text: &[u8]) -> Vec<String> {
        mbox(text)
            .into_iter()
            .map(|message| String::from_utf8(message.unwrap().bytes).unwrap())
            .collect()
    }

    #[test]
    fn an_mbox_splits_at_from_lines_after_blank_lines_and_unquotes_one_level() {
        let text = b"From MAILER-DAEMON Mon Aug 23 13:30:04 2021\nSubject: one\n\n>From here\n>>From there\n>Not a from\n\nFrom MAILER-DAEMON Mon Aug 23 13:31:04 2021\nSubject: two\n\nbody\nFrom the desk of the editor, not a separator\n\n";
        assert_eq!(
            bodies(text),
            [
                "Subject: one\n\nFrom here\n>From there\n>Not a from\n",
                "Subject: two\n\nbody\nFrom the desk of the editor, not a separator\n",
            ]
        );
    }

    #[test]
    fn a_from_line_inside_a_paragraph_or_without_a_time_does_not_split() {
        let text = b"From a@example.org Mon Aug 23 13:30:04 2021\nSubject: one\n\nbody\nFrom a@example.org Mon Aug 23 13:30:04 2021 unquoted by mboxo\nstill one\n\nFrom me, with love\n";
        let messages = bodies(text);
        assert_eq!(messages.len(), 1, "{messages:?}");
    }

    #[test]
    fn mbox_messages_name_their_number_and_line() {
        let text =
            b"From x Mon Aug 23 13:30:04 2021\nA: 1\n\nFrom y Mon Aug 23 13:30:05 2021\nB: 2\n";
        let sources: Vec<String> = mbox(text)
            .into_iter()
            .map(|message| message.unwrap().source)
            .collect();
        assert_eq!(
            sources,
            [
                "test.mbox, message 1 (line 1)",
                "test.mbox, message 2 (line 4)"
            ]
        );
    }

    #[test]
    fn crlf_mboxes_keep_their_line_endings_and_lose_only_the_separating_blank_line() {
        let text = b"From x Mon Aug 23 13:30:04 2021\r\nA: 1\r\n\r\nbody\r\n\r\nFrom y Mon Aug 23 13:30:05 2021\r\nB: 2\r\n";
        assert_eq!(bodies(text), ["A: 1\r\n\r\nbody\r\n", "B: 2\r\n"]);
    }

    #[test]
    fn an_oversized_mbox_message_is_an_error_and_the_next_one_is_still_read() {
        let mut text = b"From x Mon Aug 23 13:30:04 2021\nA: 1\n\n".to_vec();
        // One line longer than the limit, with no line break in it: read in pieces.
        text.extend(std::iter::repeat_n(b'x', MAX_MESSAGE_BYTES + 10));
        text.extend_from_slice(b"\n\nFrom y Mon Aug 23 13:30:05 2021\nB: 2\n");
        let messages = mbox(&text);
        assert_eq!(messages.len(), 2);
        let error = messages[0].as_ref().unwrap_err().to_string();
        assert_eq!(
            error,
            "test.mbox, message 1 (line 1) is larger than 10 MiB, more than any bounce; skipped"
        );
        assert_eq!(messages[1].as_ref().unwrap().bytes, b"B: 2\n");
    }

    #[test]
    fn a_single_message_over_the_limit_is_refused() {
        let big = vec![b'x'; MAX_MESSAGE_BYTES + 1];
        let error = read_message(&big[..], "big.eml".into()).unwrap_err();
        assert!(matches!(error, SourceError::TooLarge { .. }), "{error}");
        let fits = vec![b'x'; MAX_MESSAGE_BYTES];
        assert_eq!(
            read_message(&fits[..], "fits.eml".into())
                .unwrap()
                .bytes
                .len(),
            MAX_MESSAGE_BYTES
        );
    }

    #[test]
    fn a_piped_message_loses_its_mbox_from_line() {
        let message = read_message(
            &b"From MAILER-DAEMON  Mon Aug 23 13:30:04 2021\nSubject: x\n\nbody\n"[..],
            "standard input".into(),
        )
        .unwrap();
        assert_eq!(message.bytes, b"Subject: x\n\nbody\n");
    }

    #[test]
    fn paths_are_read_as_maildir_mbox_or_one_message() {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        for folder in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(folder)).unwrap();
        }
        std::fs::write(maildir.join("new/2.host"), "Subject: new\n\n").unwrap();
        std::fs::write(maildir.join("cur/1.host:2,S"), "Subject: cur\n\n").unwrap();
        std::fs::write(maildir.join("cur/.hidden"), "Subject: hidden\n\n").unwrap();
        std::fs::write(maildir.join("tmp/3.host"), "Subject: half-written\n\n").unwrap();
        let read: Vec<Vec<u8>> = messages(&maildir)
            .unwrap()
            .map(|message| message.unwrap().bytes)
            .collect();
        assert_eq!(
            read,
            [b"Subject: cur\n\n".to_vec(), b"Subject: new\n\n".to_vec()]
        );

        let mbox_path = dir.path().join("bounces.mbox");
        std::fs::write(
            &mbox_path,
            "From x Mon Aug 23 13:30:04 2021\nA: 1\n\nFrom y Mon Aug 23 13:30:05 2021\nB: 2\n",
        )
        .unwrap();
        assert_eq!(messages(&mbox_path).unwrap().count(), 2);

        let eml = dir.path().join("one.eml");
        std::fs::write(&eml, "Subject: one\n\nFrom here on, one message\n").unwrap();
        let one: Vec<RawMessage> = messages(&eml).unwrap().map(Result::unwrap).collect();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].source, eml.display().to_string());

        let not_maildir = dir.path().join("empty");
        std::fs::create_dir(&not_maildir).unwrap();
        assert!(matches!(
            messages(&not_maildir),
            Err(SourceError::NotAMaildir(_))
        ));
        assert!(matches!(
            messages(&dir.path().join("missing.eml")),
            Err(SourceError::Io { .. })
        ));
    }
}
