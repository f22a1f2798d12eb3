//! Opens the editor's files without trusting them: only regular files, only up to a size limit
//! for each kind of file, and never waiting on a FIFO.
//!
//! A path in `newsletter.yaml` can name anything. `check` once grew to 6.9 GB reading
//! `subscribers: /dev/zero`, hung forever on a FIFO, and took 34 s and 4.7 GB over a 200 MB
//! issue. Here a file is opened without blocking, checked with `fstat` on the descriptor that
//! was opened (not `stat` of the path, which may be swapped in between), refused unless it is a
//! regular file within its limit, and read through a reader that stops one byte past the limit
//! even if the file grows meanwhile.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::decode::Decoder;
use crate::diagnostic::{Diagnostic, Severity};
use crate::yaml::{self, Mark, Node};

const MIB: u64 = 1 << 20;

/// The largest `newsletter.yaml`, issue or theme file. The example issue is 12 KiB and an
/// email over 102 KiB is clipped by Gmail; 4 MiB is far past any honest file and keeps the
/// tree of one small enough to hold without thinking.
pub const TEXT_FILE_LIMIT: u64 = 4 * MIB;

/// The largest subscriber list. A million readers in the example's format take about 53 MB;
/// 256 MiB leaves room for a few million with names and tags. The list is read as it is
/// parsed, never held whole, so the limit bounds time rather than memory.
pub const SUBSCRIBER_LIST_LIMIT: u64 = 256 * MIB;
/// The largest key, certificate bundle or secret: Mozilla's whole bundle of roots is some
/// 220 KiB.
pub const KEY_FILE_LIMIT: u64 = MIB;

/// The largest CSV export `subscribers import` reads: a million rows with every column
/// Mailchimp writes (about 40, some 600 bytes a row), with room to spare.
pub const EXPORT_LIMIT: u64 = 1024 * MIB;

/// What a file is for, which decides how large it may be and how errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `newsletter.yaml`.
    Settings,
    Issue,
    /// A theme's `theme.yaml` or `style.css`.
    Theme,
    Subscribers,
    /// A picture in the workspace (see `images`).
    Image,
    /// Another tool's CSV export, for `subscribers import`.
    Export,
    /// A DKIM key, a CA certificate or the secret: small, and named by a setting.
    Key,
    /// An mbox file or a single message of mail that came back, for `bounces ingest`: read
    /// a message at a time, so only the folder's own bounds apply.
    Mailbox,
}

impl FileKind {
    pub fn limit(self) -> u64 {
        match self {
            FileKind::Subscribers => SUBSCRIBER_LIST_LIMIT,
            FileKind::Image => crate::images::IMAGE_LIMIT,
            FileKind::Export => EXPORT_LIMIT,
            FileKind::Mailbox => u64::MAX,
            FileKind::Key => KEY_FILE_LIMIT,
            FileKind::Settings | FileKind::Issue | FileKind::Theme => TEXT_FILE_LIMIT,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            FileKind::Settings => "the settings",
            FileKind::Issue => "an issue",
            FileKind::Theme => "a theme file",
            FileKind::Subscribers => "a subscriber list",
            FileKind::Image => "an image",
            FileKind::Export => "an export to import",
            FileKind::Mailbox => "a mailbox",
            FileKind::Key => "a key or certificate file",
        }
    }
}

/// Why a file could not be read. Each prints as the message after `file:`.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file not found")]
    NotFound,
    #[error("is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("is {}, over the {} limit for {}", size_text(*size), size_text(*limit), kind.noun())]
    TooBig {
        size: u64,
        limit: u64,
        kind: FileKind,
    },
    #[error("grew past the {} limit for {} while it was read", size_text(*limit), kind.noun())]
    Grew { limit: u64, kind: FileKind },
    /// Only from [`read_string`]; YAML files report this through the YAML reader.
    #[error("{message}")]
    NotUtf8 { mark: Mark, message: String },
    #[error("cannot read: {0}")]
    Io(io::Error),
}

impl FileError {
    /// The problem as `check` prints it, for the file named `file`.
    pub fn into_diagnostic(self, file: impl Into<String>) -> Diagnostic {
        match self {
            FileError::NotUtf8 { mark, message } => {
                Diagnostic::at_field(Severity::Error, file, mark, "", message)
            }
            other => Diagnostic::about_file(Severity::Error, file, other.to_string()),
        }
    }

    /// An error from reading an opened file: our own `Grew`, or the system's.
    fn from_read(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::FileTooLarge
            && let Some(grew) = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<FileError>())
            && let FileError::Grew { limit, kind } = grew
        {
            return FileError::Grew {
                limit: *limit,
                kind: *kind,
            };
        }
        FileError::Io(error)
    }
}

/// A file opened by [`open`]: a regular file, read through a buffer, never past its limit.
pub struct SourceFile {
    reader: BufReader<Limited>,
}

impl Read for SourceFile {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buffer)
    }
}

impl BufRead for SourceFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.reader.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

/// Opens `path` (following symlinks) for reading as a file of `kind`.
pub fn open(path: &Path, kind: FileKind) -> Result<SourceFile, FileError> {
    open_with_limit(path, kind, kind.limit())
}

fn open_with_limit(path: &Path, kind: FileKind, limit: u64) -> Result<SourceFile, FileError> {
    // O_NONBLOCK: opening a FIFO waits for a writer, forever, without it. It changes nothing
    // for the regular files read past the check below (open(2): "this flag has no effect for
    // regular files"). O_NOCTTY: a terminal named by mistake must not become ours.
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(FileError::NotFound),
        // A socket cannot be opened at all (ENXIO): say what it is. The path is looked at
        // again only to word the refusal; nothing is read from it.
        Err(error) => {
            return Err(match std::fs::metadata(path) {
                Ok(metadata) if !metadata.is_file() => {
                    FileError::NotRegular(describe(metadata.file_type()))
                }
                _ => FileError::Io(error),
            });
        }
    };
    let metadata = file.metadata().map_err(FileError::Io)?;
    if !metadata.is_file() {
        return Err(FileError::NotRegular(describe(metadata.file_type())));
    }
    if metadata.len() > limit {
        return Err(FileError::TooBig {
            size: metadata.len(),
            limit,
            kind,
        });
    }
    Ok(SourceFile {
        reader: BufReader::with_capacity(
            64 * 1024,
            Limited {
                file,
                read: 0,
                limit,
                kind,
            },
        ),
    })
}

fn describe(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Reads a file that the size check let through, failing once it yields more than `limit`
/// bytes: a file may grow between the check and the read, and `/proc` files report size 0.
struct Limited {
    file: File,
    read: u64,
    limit: u64,
    kind: FileKind,
}

impl Read for Limited {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit is all it takes to know the file outgrew it.
        let room = self.limit.saturating_add(1).saturating_sub(self.read);
        let wanted = buffer
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        let count = self.file.read(&mut buffer[..wanted])?;
        self.read += count as u64;
        if self.read > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                FileError::Grew {
                    limit: self.limit,
                    kind: self.kind,
                },
            ));
        }
        Ok(count)
    }
}

/// Reads a YAML file of `kind` into a tree. The decoder comes back named `file` (as the user
/// should see it), holding any problem met on the way, and knowing where comments cut plain
/// values short; the tree is `None` when the file could not be read or parsed.
pub fn load_yaml(path: &Path, kind: FileKind, file: impl Into<String>) -> (Option<Node>, Decoder) {
    let mut decoder = Decoder::new(file);
    let root = match open(path, kind) {
        Ok(source) => match yaml::read(source) {
            Ok(document) => {
                decoder.set_comments(document.comments);
                Some(document.root)
            }
            Err(error) => {
                decoder.read_error(error);
                None
            }
        },
        Err(error) => {
            decoder.push(error.into_diagnostic(decoder.file()));
            None
        }
    };
    (root, decoder)
}

/// Reads a whole file of bytes (an image, a key) of `kind`, within its limit.
pub fn read_bytes(path: &Path, kind: FileKind) -> Result<Vec<u8>, FileError> {
    let mut source = open(path, kind)?;
    let mut bytes = Vec::new();
    source
        .read_to_end(&mut bytes)
        .map_err(FileError::from_read)?;
    Ok(bytes)
}

/// Reads a whole text file of `kind` (a stylesheet, say) that must be UTF-8. One leading
/// byte-order mark is dropped, as for YAML files.
pub fn read_string(path: &Path, kind: FileKind) -> Result<String, FileError> {
    let mut source = open(path, kind)?;
    let mut bytes = Vec::new();
    source
        .read_to_end(&mut bytes)
        .map_err(FileError::from_read)?;
    let start = if bytes.starts_with("\u{FEFF}".as_bytes()) {
        3
    } else {
        0
    };
    match std::str::from_utf8(&bytes[start..]) {
        Ok(_) => {
            bytes.drain(..start);
            Ok(String::from_utf8(bytes).expect("checked just above"))
        }
        Err(error) => {
            let valid = &bytes[start..start + error.valid_up_to()];
            let valid = std::str::from_utf8(valid).expect("valid up to here");
            Err(FileError::NotUtf8 {
                mark: position_after(valid),
                message: yaml::not_utf8(bytes[start + error.valid_up_to()]),
            })
        }
    }
}

/// Where the character after `text` is, counting lines as the YAML reader does.
fn position_after(text: &str) -> Mark {
    let mut mark = Mark { line: 1, col: 1 };
    let mut after_cr = false;
    for c in text.chars() {
        match c {
            '\n' if after_cr => after_cr = false,
            '\n' | '\r' => {
                mark.line += 1;
                mark.col = 1;
                after_cr = c == '\r';
            }
            _ => {
                mark.col += 1;
                after_cr = false;
            }
        }
    }
    mark
}

/// A size as people say it: `4 MiB`, `200.5 MiB`, `100 bytes`.
fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let tenths = (u128::from(bytes) * 10 + u128::from(size) / 2) / u128::from(size);
            return if tenths % 10 == 0 {
                format!("{} {unit}", tenths / 10)
            } else {
                format!("{}.{} {unit}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};
    use std::os::unix::fs::symlink;

    use super::*;

    fn message(result: Result<SourceFile, FileError>) -> String {
        match result {
            Ok(_) => panic!("opened"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let result = open(&dir.path().join("nope.yaml"), FileKind::Issue);
        assert!(matches!(result, Err(FileError::NotFound)));
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("subscribers.yaml");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `name` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        assert_eq!(
            message(open(&fifo, FileKind::Subscribers)),
            "is a FIFO, not a regular file"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn devices_directories_and_sockets_are_refused_even_behind_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("subscribers.yaml");
        symlink("/dev/zero", &link).unwrap();
        assert_eq!(
            message(open(&link, FileKind::Subscribers)),
            "is a character device, not a regular file"
        );
        assert_eq!(
            message(open(dir.path(), FileKind::Issue)),
            "is a directory, not a regular file"
        );
        let socket_path = dir.path().join("socket");
        let _socket = std::os::unix::net::UnixListener::bind(&socket_path).unwrap();
        assert_eq!(
            message(open(&socket_path, FileKind::Issue)),
            "is a socket, not a regular file"
        );
    }

    #[test]
    fn a_file_over_its_limit_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2021-08-23.yaml");
        let file = File::create(&path).unwrap();
        // Sparse: the size is what counts, and nothing is read.
        file.set_len(200 * MIB).unwrap();
        assert_eq!(
            message(open(&path, FileKind::Issue)),
            "is 200 MiB, over the 4 MiB limit for an issue"
        );
        assert!(open(&path, FileKind::Subscribers).is_ok());
        file.set_len(300 * MIB + 512 * 1024).unwrap();
        assert_eq!(
            message(open(&path, FileKind::Subscribers)),
            "is 300.5 MiB, over the 256 MiB limit for a subscriber list"
        );
        file.set_len(TEXT_FILE_LIMIT).unwrap();
        assert!(open(&path, FileKind::Settings).is_ok());
    }

    #[test]
    fn a_file_that_grows_while_read_stops_one_byte_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        std::fs::write(&path, "- email: a@example.com\n").unwrap();
        let mut source = open_with_limit(&path, FileKind::Subscribers, 100).unwrap();
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        writer.write_all(&[b'#'; 10_000]).unwrap();
        let mut everything = Vec::new();
        let error = source.read_to_end(&mut everything).unwrap_err();
        assert_eq!(
            FileError::from_read(error).to_string(),
            "grew past the 100 bytes limit for a subscriber list while it was read"
        );
        let position = source.reader.get_mut().file.stream_position().unwrap();
        assert_eq!(position, 101);
    }

    #[test]
    fn a_yaml_file_that_grows_while_read_is_an_error_about_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        std::fs::write(&path, "- a\n".repeat(10)).unwrap();
        let source = open_with_limit(&path, FileKind::Subscribers, 200).unwrap();
        let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
        writer.write_all("- a\n".repeat(100).as_bytes()).unwrap();
        let mut decoder = Decoder::new("subscribers.yaml");
        match yaml::read(source) {
            Err(error) => decoder.read_error(error),
            Ok(_) => panic!("read past the limit"),
        }
        let messages: Vec<String> = decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "subscribers.yaml: grew past the 200 bytes limit for a subscriber list while it was read"
            ]
        );
    }

    #[test]
    fn load_yaml_reports_unreadable_files_and_syntax_with_the_files_name() {
        let dir = tempfile::tempdir().unwrap();
        let messages = |path: &Path| -> Vec<String> {
            let (root, decoder) = load_yaml(path, FileKind::Issue, "issues/x.yaml");
            assert!(root.is_none());
            decoder
                .into_diagnostics()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            messages(&dir.path().join("none")),
            ["issues/x.yaml: file not found"]
        );
        let path = dir.path().join("x.yaml");
        std::fs::write(&path, b"subject: a\nintro: \xFFb\n").unwrap();
        assert_eq!(
            messages(&path),
            [
                "issues/x.yaml:2:8: is not UTF-8 text: byte 0xFF does not start a valid character here; save the file as UTF-8"
            ]
        );
        std::fs::write(&path, "\u{FEFF}subject: Deep Signal #2\n").unwrap();
        let (root, decoder) = load_yaml(&path, FileKind::Issue, "issues/x.yaml");
        assert!(root.is_some() && !decoder.has_errors());
    }

    #[test]
    fn read_string_checks_utf8_with_a_position_and_drops_a_bom() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("style.css");
        std::fs::write(&path, "\u{FEFF}body { color: red }\n").unwrap();
        assert_eq!(
            read_string(&path, FileKind::Theme).unwrap(),
            "body { color: red }\n"
        );
        std::fs::write(&path, b"a {}\r\nb { content: \"\xE9\" }\n").unwrap();
        let error = read_string(&path, FileKind::Theme).unwrap_err();
        assert_eq!(
            error.into_diagnostic("templates/t/style.css").to_string(),
            "templates/t/style.css:2:15: is not UTF-8 text: byte 0xE9 does not start a valid character here; save the file as UTF-8"
        );
    }

    /// Bytes that must never pass silently, whatever their place in a file.
    const HOSTILE: &[&[u8]] = &[
        b"\0",
        b"\x01",
        b"\x1b",
        b"\x7f",
        "\u{80}".as_bytes(),
        "\u{9f}".as_bytes(),
        "\u{feff}".as_bytes(),
        "\u{fffe}".as_bytes(),
        "\u{ffff}".as_bytes(),
        b"\xff",
        b"\xc3",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
    ];

    /// `text` with `hostile` put in at the start of `line`, in its middle and at its end, and
    /// at the end of the file.
    fn spoilt(text: &str, line: usize, hostile: &[u8]) -> Vec<Vec<u8>> {
        let start: usize = text.lines().take(line - 1).map(|line| line.len() + 1).sum();
        let length = text.lines().nth(line - 1).unwrap().len();
        [start, start + length / 2, start + length, text.len()]
            .iter()
            .map(|&at| [&text.as_bytes()[..at], hostile, &text.as_bytes()[at..]].concat())
            .collect()
    }

    fn subscribers(count: usize) -> String {
        (0..count)
            .map(|i| {
                format!("- email: reader{i}@example.com\n  name: Reader {i}\n  tags: [a, b]\n")
            })
            .collect()
    }

    fn decode_subscribers(path: &Path) -> (Option<usize>, Vec<String>) {
        let mut decoder = Decoder::new("subscribers.yaml");
        let count = match open(path, FileKind::Subscribers) {
            Ok(file) => crate::model::subscriber::decode_list_from(&mut decoder, file)
                .map(|list| list.len()),
            Err(error) => panic!("{error}"),
        };
        let errors = decoder
            .into_diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        (count, errors)
    }

    #[test]
    fn a_list_of_n_subscribers_reads_back_as_n_or_as_an_error_never_fewer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        let list = subscribers(1000);
        std::fs::write(&path, &list).unwrap();
        assert_eq!(decode_subscribers(&path), (Some(1000), Vec::new()));
        // Windows: a byte-order mark and CRLF line ends.
        std::fs::write(&path, format!("\u{FEFF}{}", list.replace('\n', "\r\n"))).unwrap();
        assert_eq!(decode_subscribers(&path), (Some(1000), Vec::new()));
        for hostile in HOSTILE {
            // Line 11, as in the report: "ok 11 subscribers" from a list of 1,000.
            for bytes in spoilt(&list, 11, hostile) {
                std::fs::write(&path, &bytes).unwrap();
                let (count, errors) = decode_subscribers(&path);
                assert_eq!(count, None, "{hostile:?} passed");
                assert_eq!(errors.len(), 1, "{hostile:?}: {errors:?}");
            }
        }
    }

    fn issue(articles: usize) -> String {
        let mut issue = String::from(
            "date: 2021-08-23\nsubject: \"Weekly\"\npreheader: \"p\"\nsections:\n  - heading: News\n    articles:\n",
        );
        for i in 0..articles {
            issue.push_str(&format!(
                "      - title: Story {i}\n        url: https://news.example.com/{i}\n        excerpt: |\n          What happened, *briefly*.\n"
            ));
        }
        issue
    }

    fn decode_issue(path: &Path) -> (Option<usize>, usize) {
        let (root, mut decoder) = load_yaml(path, FileKind::Issue, "issues/2021-08-23.yaml");
        let id = crate::model::issue::IssueId::parse("2021-08-23").unwrap();
        let issue = root.and_then(|root| crate::model::issue::decode(&mut decoder, &root, id));
        let count = issue.map(|issue| issue.sections.iter().map(|s| s.articles.len()).sum());
        (count, decoder.into_diagnostics().error_count())
    }

    #[test]
    fn an_issue_of_n_articles_reads_back_as_n_or_as_an_error_never_fewer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2021-08-23.yaml");
        let text = issue(12);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(decode_issue(&path), (Some(12), 0));
        for hostile in HOSTILE {
            // After the first excerpt, where a NUL once lost 11 articles.
            for bytes in spoilt(&text, 10, hostile) {
                std::fs::write(&path, &bytes).unwrap();
                assert_eq!(decode_issue(&path), (None, 1), "{hostile:?}");
            }
        }
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(size_text(100), "100 bytes");
        assert_eq!(size_text(4 * MIB), "4 MiB");
        assert_eq!(size_text(6_900_000_000), "6.4 GiB");
        assert_eq!(size_text(1536), "1.5 KiB");
    }
}
