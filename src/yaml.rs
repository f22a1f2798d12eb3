//! A YAML tree that remembers where every node came from.
//!
//! Editors need errors that point at `file:line:col`, and they need all of them in one run.
//! serde-based YAML readers give neither (no spans on values, and they stop at the first
//! error), so files are read into this small tree first and decoded by hand in `decode`.
//!
//! The reader is also where hostile or damaged files are stopped, before the parser or the tree
//! can be misled by them:
//! - Every character is checked against YAML's `c-printable` on its way to the parser (see
//!   `Input`). yaml-rust2 takes a `'\0'` for the end of its input, so a NUL byte used to end a
//!   file early without a word, and `check` passed a list missing everyone after it.
//! - Nesting is limited to [`MAX_DEPTH`] while reading, with a stack of its own rather than
//!   recursion, so no tree deep enough to overflow the stack (when built, compared, cloned or
//!   dropped) ever exists.
//! - Each mapping remembers its keys in a set, so finding duplicates stays linear.
//! - Plain one-line values cut short by a ` #` comment are recorded ([`Comments`]), so text
//!   fields can warn that `subject: Deep Signal #2` says `Deep Signal`.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufRead};
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// How deeply lists and mappings may nest. Our files need four levels; 64 leaves room for any
/// honest file and keeps every recursive walk over the tree (drop, clone, compare) shallow.
pub const MAX_DEPTH: usize = 64;

/// A position in a source file, both 1-based, as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Mark {
    pub line: u32,
    pub col: u32,
}

impl Mark {
    fn from_marker(marker: &Marker) -> Self {
        Mark {
            line: to_u32(marker.line()),
            col: to_u32(marker.col()).saturating_add(1),
        }
    }
}

fn to_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Every scalar stays text: whether `2021` is a title or a number is the decoder's call,
    /// so that a title like `1984` is not an error.
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub mark: Mark,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "nothing",
            Value::Scalar(_) => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// A tree and the comments that cut its plain values short.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Node,
    pub comments: Comments,
}

/// For each plain (unquoted) one-line value followed on its line, one blank after it, by a
/// comment, where the value starts and where its `#` is. YAML drops everything from ` #` on, which is rarely what an
/// editor means in a text field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comments(Vec<(Mark, Mark)>);

impl Comments {
    /// The `#` of the comment that ends the plain value starting at `value`, if any.
    pub fn after(&self, value: Mark) -> Option<Mark> {
        // Values are recorded in reading order, which is position order.
        self.0
            .binary_search_by_key(&value, |(start, _)| *start)
            .ok()
            .map(|index| self.0[index].1)
    }
}

/// A file that is not well-formed YAML, or uses YAML features we refuse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub mark: Mark,
    pub message: String,
}

impl SyntaxError {
    fn new(mark: Mark, message: impl Into<String>) -> Self {
        SyntaxError {
            mark,
            message: message.into(),
        }
    }
}

/// Why a stream of bytes did not become a tree: a problem at a place in the text, or the
/// bytes could not be read at all (the file went away, or grew past its limit).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Parses a whole file holding a single document. An empty file is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    parse_document(source).map(|document| document.root)
}

/// Like [`parse`], with the comments that cut plain values short.
pub fn parse_document(source: &str) -> Result<Document, SyntaxError> {
    read(source.as_bytes()).map_err(|error| match error {
        ReadError::Syntax(error) => error,
        // Reading from a byte slice involves no I/O.
        ReadError::Io(error) => unreachable!("reading a byte slice failed: {error}"),
    })
}

/// Reads a single document from `input` (UTF-8 bytes, one leading byte-order mark allowed),
/// without holding the text in memory. An empty input is `Null`.
pub fn read<R: BufRead>(input: R) -> Result<Document, ReadError> {
    let mut reader = EventReader::new(input);
    reader.expect_stream_start()?;
    let root = match reader.next()? {
        (Event::StreamEnd, mark) => Node {
            value: Value::Null,
            mark,
        },
        (Event::DocumentStart, _) => {
            let (event, mark) = reader.next()?;
            let root = reader.read_node(event, mark, 0)?;
            reader.expect_end_of_single_document()?;
            root
        }
        (_, mark) => return Err(SyntaxError::new(mark, "expected a YAML document").into()),
    };
    Ok(Document {
        root,
        comments: reader.take_comments(),
    })
}

/// Reads a file whose top level is a list, one item at a time, so that a list of a million
/// subscribers never exists as a tree in memory (nor, read from a file, as text): only the
/// current item does.
pub struct SeqItems<R> {
    reader: EventReader<R>,
    finished: bool,
}

/// What the top level of a streamed file turned out to be.
pub enum TopLevel<R> {
    Seq(Box<SeqItems<R>>),
    /// An empty file: an empty list.
    Empty,
    /// Something other than a list, for the caller to report.
    Other(Node),
}

pub fn stream_seq<R: BufRead>(input: R) -> Result<TopLevel<R>, ReadError> {
    let mut reader = EventReader::new(input);
    reader.expect_stream_start()?;
    match reader.next()? {
        (Event::StreamEnd, _) => return Ok(TopLevel::Empty),
        (Event::DocumentStart, _) => {}
        (_, mark) => return Err(SyntaxError::new(mark, "expected a YAML document").into()),
    }
    match reader.next()? {
        (Event::SequenceStart(anchor, tag), mark) => {
            refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
            Ok(TopLevel::Seq(Box::new(SeqItems {
                reader,
                finished: false,
            })))
        }
        (event, mark) => {
            let node = reader.read_node(event, mark, 0)?;
            reader.expect_end_of_single_document()?;
            if node.value == Value::Null {
                Ok(TopLevel::Empty)
            } else {
                Ok(TopLevel::Other(node))
            }
        }
    }
}

impl<R: BufRead> Iterator for SeqItems<R> {
    /// Each item with the comments that cut its plain values short.
    type Item = Result<Document, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let item = match self.reader.next() {
            Ok((Event::SequenceEnd, _)) => {
                self.finished = true;
                return self.reader.expect_end_of_single_document().err().map(Err);
            }
            // The top-level list itself is the first level of nesting.
            Ok((event, mark)) => self.reader.read_node(event, mark, 1).map(|root| Document {
                root,
                comments: self.reader.take_comments(),
            }),
            Err(error) => Err(error),
        };
        if item.is_err() {
            self.finished = true;
        }
        Some(item)
    }
}

/// A list or mapping whose end has not been read yet.
enum Open {
    Seq {
        mark: Mark,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        entries: Vec<(Node, Node)>,
        /// Each key's line, to find duplicates in constant time and name the first.
        lines: HashMap<String, u32>,
        key: Option<Node>,
    },
}

struct EventReader<R> {
    parser: Parser<Input<R>>,
    shared: Rc<RefCell<Shared>>,
    comments: Vec<(Mark, Mark)>,
}

impl<R: BufRead> EventReader<R> {
    fn new(input: R) -> Self {
        let shared = Rc::new(RefCell::new(Shared::default()));
        EventReader {
            parser: Parser::new(Input::new(input, Rc::clone(&shared))),
            shared,
            comments: Vec::new(),
        }
    }

    fn next(&mut self) -> Result<(Event, Mark), ReadError> {
        let result = self.parser.next_token();
        let mut shared = self.shared.borrow_mut();
        // A character the input refused ended the text the parser saw; whatever the parser
        // made of that early end, the refusal is the real problem.
        if let Some(problem) = shared.problem.take() {
            return Err(problem);
        }
        match result {
            Ok((event, marker)) => {
                let mark = Mark::from_marker(&marker);
                // Events come in order: nothing before this line is asked about again.
                shared.lines.forget_before(mark.line);
                if let Event::Scalar(text, TScalarStyle::Plain, ..) = &event
                    && !is_null(text)
                    && let Some(hash) = shared.lines.comment_after(mark, text)
                {
                    self.comments.push((mark, hash));
                }
                Ok((event, mark))
            }
            Err(error) => Err(syntax_error(&error, &shared.lines).into()),
        }
    }

    fn take_comments(&mut self) -> Comments {
        Comments(std::mem::take(&mut self.comments))
    }

    fn expect_stream_start(&mut self) -> Result<(), ReadError> {
        match self.next()? {
            (Event::StreamStart, _) => Ok(()),
            (_, mark) => Err(SyntaxError::new(mark, "expected the start of a YAML stream").into()),
        }
    }

    fn expect_end_of_single_document(&mut self) -> Result<(), ReadError> {
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, mark) => {
                return Err(SyntaxError::new(mark, "expected the end of the document").into());
            }
        }
        match self.next()? {
            (Event::StreamEnd, _) => Ok(()),
            (_, mark) => Err(SyntaxError::new(
                mark,
                "found a second YAML document (`---`); put one document in each file",
            )
            .into()),
        }
    }

    /// Reads the node that `event` starts, `depth` levels of lists and mappings down. A loop
    /// over a stack of open collections, not recursion, so the input cannot choose how deep
    /// our own stack goes.
    fn read_node(&mut self, event: Event, mark: Mark, depth: usize) -> Result<Node, ReadError> {
        let mut open: Vec<Open> = Vec::new();
        let (mut event, mut mark) = (event, mark);
        loop {
            let in_key_position = matches!(open.last(), Some(Open::Map { key: None, .. }));
            let done = match event {
                Event::Scalar(text, style, anchor, tag) => {
                    refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                    let value = if style == TScalarStyle::Plain && is_null(&text) {
                        Value::Null
                    } else {
                        Value::Scalar(text)
                    };
                    Node { value, mark }
                }
                Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                    refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                    if in_key_position {
                        return Err(SyntaxError::new(
                            mark,
                            "a key must be a plain name, not a list or mapping",
                        )
                        .into());
                    }
                    if depth + open.len() >= MAX_DEPTH {
                        return Err(SyntaxError::new(mark, too_deep()).into());
                    }
                    open.push(match event {
                        Event::SequenceStart(..) => Open::Seq {
                            mark,
                            items: Vec::new(),
                        },
                        _ => Open::Map {
                            mark,
                            entries: Vec::new(),
                            lines: HashMap::new(),
                            key: None,
                        },
                    });
                    (event, mark) = self.next()?;
                    continue;
                }
                Event::SequenceEnd => match open.pop() {
                    Some(Open::Seq { mark, items }) => Node {
                        value: Value::Seq(items),
                        mark,
                    },
                    _ => return Err(SyntaxError::new(mark, "unexpected end of a list").into()),
                },
                Event::MappingEnd => match open.pop() {
                    Some(Open::Map {
                        mark,
                        entries,
                        key: None,
                        ..
                    }) => {
                        // A block mapping's own start marker points past its first key; the
                        // first key is where a reader looks for the mapping.
                        let mark = entries.first().map_or(mark, |(key, _)| key.mark);
                        Node {
                            value: Value::Map(entries),
                            mark,
                        }
                    }
                    _ => {
                        return Err(SyntaxError::new(mark, "unexpected end of a mapping").into());
                    }
                },
                Event::Alias(_) => {
                    return Err(SyntaxError::new(
                        mark,
                        "aliases (`*name`) are not supported; write the value out",
                    )
                    .into());
                }
                _ => return Err(SyntaxError::new(mark, "unexpected YAML structure").into()),
            };
            match open.last_mut() {
                None => return Ok(done),
                Some(Open::Seq { items, .. }) => items.push(done),
                Some(Open::Map {
                    entries,
                    lines,
                    key,
                    ..
                }) => match key.take() {
                    Some(key) => entries.push((key, done)),
                    None => {
                        let Value::Scalar(name) = &done.value else {
                            return Err(SyntaxError::new(
                                done.mark,
                                "a key must be a plain name, not a list or mapping",
                            )
                            .into());
                        };
                        if let Some(first) = lines.get(name) {
                            return Err(SyntaxError::new(
                                done.mark,
                                format!("duplicate key `{name}` (first given on line {first})"),
                            )
                            .into());
                        }
                        lines.insert(name.clone(), done.mark.line);
                        *key = Some(done);
                    }
                },
            }
            (event, mark) = self.next()?;
        }
    }
}

fn too_deep() -> String {
    format!("nested more than {MAX_DEPTH} levels deep; no letterpress file needs that many")
}

/// Our message for a parser error, with a hint where the usual cause is known.
fn syntax_error(error: &ScanError, lines: &KeptLines) -> SyntaxError {
    let mark = Mark::from_marker(error.marker());
    match error.info() {
        // yaml-rust2's own limit on `[`/`{` nesting (255), met before ours while it looks
        // ahead: the same problem, said the same way.
        "recursion limit exceeded" => SyntaxError::new(mark, too_deep()),
        info @ "mapping values are not allowed in this context" => SyntaxError::new(
            mark,
            format!("invalid YAML: {info}; a value containing `: ` needs quotes"),
        ),
        // yaml-rust2 reports this one at the start of the value being read, which is on an
        // earlier line than the tab; the tab is on the first line after it indented by one.
        "while scanning a plain scalar, found a tab" => SyntaxError::new(
            lines.indenting_tab(mark.line + 1).unwrap_or(mark),
            TAB_MESSAGE,
        ),
        "tabs disallowed within this context (block indentation)" => {
            SyntaxError::new(lines.indenting_tab(mark.line).unwrap_or(mark), TAB_MESSAGE)
        }
        info => SyntaxError::new(mark, format!("invalid YAML: {info}")),
    }
}

const TAB_MESSAGE: &str = "invalid YAML: a tab indents this line; indent YAML with spaces only";

fn refuse_anchor_and_tag(anchor: usize, has_tag: bool, mark: Mark) -> Result<(), SyntaxError> {
    if anchor != 0 {
        return Err(SyntaxError::new(
            mark,
            "anchors (`&name`) are not supported; write the value out",
        ));
    }
    if has_tag {
        return Err(SyntaxError::new(
            mark,
            "tags (`!name`) are not supported; remove the tag",
        ));
    }
    Ok(())
}

fn is_null(plain: &str) -> bool {
    matches!(plain, "" | "~" | "null" | "Null" | "NULL")
}

/// What the input and the event reader share: the problem that ended the input, and the
/// lines the parser has read but not finished with.
#[derive(Default)]
struct Shared {
    problem: Option<ReadError>,
    lines: KeptLines,
}

/// The text of the lines from the current event on, to look at what the parser leaves out of
/// its events: where a comment starts, where a tab is. Bounded, so a huge value costs no more
/// than a missed hint.
#[derive(Default)]
struct KeptLines {
    /// The number of the first kept line.
    first: u32,
    lines: VecDeque<String>,
    kept_bytes: usize,
    /// Strings of forgotten lines, reused so a long file does not allocate one per line.
    spare: Vec<String>,
}

/// The longest prefix of a line kept: longer than any line a hint is about.
const KEPT_LINE_BYTES: usize = 4096;
/// At most this much text is kept at once, for values that span many lines.
const KEPT_BYTES: usize = 1 << 20;

impl KeptLines {
    fn start_line(&mut self, number: u32) {
        if self.lines.is_empty() {
            self.first = number;
        }
        let line = self.spare.pop().unwrap_or_default();
        self.lines.push_back(line);
    }

    fn push(&mut self, c: char) {
        if self.kept_bytes >= KEPT_BYTES {
            return;
        }
        if let Some(line) = self.lines.back_mut()
            && line.len() < KEPT_LINE_BYTES
        {
            line.push(c);
            self.kept_bytes += c.len_utf8();
        }
    }

    fn forget_before(&mut self, number: u32) {
        while self.first < number && self.lines.len() > 1 {
            if let Some(mut line) = self.lines.pop_front() {
                self.kept_bytes -= line.len();
                line.clear();
                self.spare.push(line);
            }
            self.first += 1;
        }
    }

    fn line(&self, number: u32) -> Option<&str> {
        let index = number.checked_sub(self.first)?;
        self.lines.get(index as usize).map(String::as_str)
    }

    /// Where the `#` is, if the plain value `text` starting at `start` is all on its line and
    /// followed there by blanks and a comment.
    fn comment_after(&self, start: Mark, text: &str) -> Option<Mark> {
        let line = self.line(start.line)?;
        let mut rest = line.chars().skip(start.col.saturating_sub(1) as usize);
        for expected in text.chars() {
            if rest.next()? != expected {
                // Folded from several lines, or the line was too long to keep.
                return None;
            }
        }
        let end = start.col + to_u32(text.chars().count());
        let mut blanks = 0;
        for c in rest {
            match c {
                ' ' | '\t' => blanks += 1,
                // One blank, as in `subject: Deep Signal #2: ...`, is text cut short; a comment
                // set apart by several (aligned, as `letterpress new` writes them) is meant.
                '#' if blanks == 1 => {
                    return Some(Mark {
                        line: start.line,
                        col: end + blanks,
                    });
                }
                _ => return None,
            }
        }
        None
    }

    /// The first line from `from` on that has a tab in its indentation and content after it,
    /// at that tab.
    fn indenting_tab(&self, from: u32) -> Option<Mark> {
        (from..self.first + to_u32(self.lines.len())).find_map(|number| {
            let line = self.line(number)?;
            let content = line.find(|c| c != ' ' && c != '\t')?;
            if line[content..].starts_with('#') {
                return None;
            }
            let tab = line[..content].find('\t')?;
            Some(Mark {
                line: number,
                col: to_u32(tab + 1),
            })
        })
    }
}

/// The characters of a YAML file on their way to the parser, decoded from UTF-8 and checked.
///
/// yaml-rust2 reads any `Iterator<Item = char>`, so a file is decoded as it is read and never
/// held whole. This iterator ends the input at the first problem, which it leaves in `Shared`
/// for the event reader to report at its line and column:
/// - bytes that are not UTF-8;
/// - characters outside YAML 1.2's `c-printable` (production [1]): C0 controls other than tab,
///   line feed and carriage return (above all NUL, which yaml-rust2 would take for the end of
///   the file), DEL, C1 controls other than NEL, and the noncharacters U+FFFE and U+FFFF;
/// - a byte-order mark anywhere but at the very start, where one is skipped (Windows editors
///   write one; YAML allows it there, and only there outside quoted text).
///
/// It counts lines as yaml-rust2 does (`\n`, `\r` or `\r\n` each end one), so its positions
/// and the parser's agree.
struct Input<R> {
    reader: R,
    shared: Rc<RefCell<Shared>>,
    /// Where the next character is, 1-based.
    line: u32,
    col: u32,
    after_cr: bool,
    at_start: bool,
    finished: bool,
}

impl<R: BufRead> Input<R> {
    fn new(reader: R, shared: Rc<RefCell<Shared>>) -> Self {
        shared.borrow_mut().lines.start_line(1);
        Input {
            reader,
            shared,
            line: 1,
            col: 1,
            after_cr: false,
            at_start: true,
            finished: false,
        }
    }

    fn stop(&mut self, problem: ReadError) -> Option<char> {
        self.finished = true;
        self.shared.borrow_mut().problem = Some(problem);
        None
    }

    fn here(&self) -> Mark {
        Mark {
            line: self.line,
            col: self.col,
        }
    }
}

impl<R: BufRead> Iterator for Input<R> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if self.finished {
            return None;
        }
        let c = match decode_utf8(&mut self.reader) {
            Ok(Decoded::Char(c)) => c,
            Ok(Decoded::End) => {
                self.finished = true;
                return None;
            }
            Ok(Decoded::Invalid(byte)) => {
                return self.stop(SyntaxError::new(self.here(), not_utf8(byte)).into());
            }
            Err(error) => return self.stop(error.into()),
        };
        if std::mem::take(&mut self.at_start) && c == BYTE_ORDER_MARK {
            return self.next();
        }
        if !is_printable(c) {
            return self.stop(SyntaxError::new(self.here(), refusal(c)).into());
        }
        let mut shared = self.shared.borrow_mut();
        match c {
            '\n' if self.after_cr => self.after_cr = false,
            '\n' | '\r' => {
                self.line = self.line.saturating_add(1);
                self.col = 1;
                self.after_cr = c == '\r';
                shared.lines.start_line(self.line);
            }
            _ => {
                self.col = self.col.saturating_add(1);
                self.after_cr = false;
                shared.lines.push(c);
            }
        }
        Some(c)
    }
}

/// The message for bytes that are not UTF-8, starting with `byte`.
pub(crate) fn not_utf8(byte: u8) -> String {
    format!(
        "is not UTF-8 text: byte 0x{byte:02X} does not start a valid character here; save the file as UTF-8"
    )
}

const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// YAML 1.2's `c-printable`, less the byte-order mark, which may only start a file.
fn is_printable(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FEFE}' | '\u{FF00}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn refusal(c: char) -> String {
    let code = c as u32;
    match c {
        '\0' => "a NUL byte (U+0000) cannot appear in a YAML file; remove it".to_string(),
        BYTE_ORDER_MARK => {
            "a byte-order mark (U+FEFF) may only start a file; remove this one".to_string()
        }
        '\u{FFFE}' | '\u{FFFF}' => {
            format!("U+{code:04X} is not a character (a Unicode noncharacter); remove it")
        }
        _ => format!("the control character U+{code:04X} cannot appear in a YAML file; remove it"),
    }
}

enum Decoded {
    Char(char),
    End,
    /// The first byte of a sequence that is not UTF-8.
    Invalid(u8),
}

/// Decodes one character, reading no further than it. The buffer usually holds the whole
/// character; one split across two reads is gathered byte by byte.
fn decode_utf8(reader: &mut impl BufRead) -> io::Result<Decoded> {
    let buffer = fill(reader)?;
    let Some(&first) = buffer.first() else {
        return Ok(Decoded::End);
    };
    if first.is_ascii() {
        reader.consume(1);
        return Ok(Decoded::Char(char::from(first)));
    }
    let width = match first {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return Ok(Decoded::Invalid(first)),
    };
    let mut bytes = [0; 4];
    if buffer.len() >= width {
        bytes[..width].copy_from_slice(&buffer[..width]);
        reader.consume(width);
    } else {
        let mut have = 0;
        while have < width {
            let buffer = fill(reader)?;
            if buffer.is_empty() {
                return Ok(Decoded::Invalid(first));
            }
            let take = (width - have).min(buffer.len());
            bytes[have..have + take].copy_from_slice(&buffer[..take]);
            reader.consume(take);
            have += take;
        }
    }
    // The standard library knows the finer rules (no overlong forms, no surrogates).
    match std::str::from_utf8(&bytes[..width]) {
        Ok(text) => Ok(text.chars().next().map_or(Decoded::End, Decoded::Char)),
        Err(_) => Ok(Decoded::Invalid(first)),
    }
}

fn fill(reader: &mut impl BufRead) -> io::Result<&[u8]> {
    // Two borrows of `reader` in a retry loop do not pass the borrow checker; `fill_buf` is
    // asked again only after an interruption, when nothing was borrowed.
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    reader.fill_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar(text) => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn error(source: &str) -> String {
        let error = parse(source).unwrap_err();
        format!("{}: {}", error.mark, error.message)
    }

    #[test]
    fn marks_are_one_based_line_and_column_of_each_value() {
        let root = parse("a: 1\nlist:\n  - x: \"q\"\n    y: |\n      hi\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(entries[0].0.mark, Mark { line: 1, col: 1 });
        assert_eq!(entries[0].1.mark, Mark { line: 1, col: 4 });
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].mark, Mark { line: 3, col: 5 });
        let Value::Map(item) = &items[0].value else {
            panic!()
        };
        assert_eq!(item[0].1.mark, Mark { line: 3, col: 8 });
        assert_eq!(scalar(&item[1].1), "hi\n");
    }

    #[test]
    fn plain_null_words_are_null_but_quoted_ones_are_text() {
        let root = parse("a: ~\nb: \"null\"\nc:\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, Value::Null);
        assert_eq!(scalar(&entries[1].1), "null");
        assert_eq!(entries[2].1.value, Value::Null);
    }

    #[test]
    fn an_empty_file_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap().value, Value::Null);
        assert_eq!(parse("\u{FEFF}").unwrap().value, Value::Null);
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_lines() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.mark, Mark { line: 3, col: 1 });
        assert_eq!(error.message, "duplicate key `a` (first given on line 1)");
    }

    #[test]
    fn finding_duplicate_keys_takes_linear_time() {
        // 100,000 keys took 55 s when each key was compared with every earlier one.
        let mut source: String = (0..100_000).map(|i| format!("k{i}: v\n")).collect();
        let started = std::time::Instant::now();
        let Value::Map(entries) = parse(&source).unwrap().value else {
            panic!()
        };
        assert_eq!(entries.len(), 100_000);
        source.push_str("k5: again\n");
        assert_eq!(
            error(&source),
            "100001:1: duplicate key `k5` (first given on line 6)"
        );
        // Generous for a debug build on a busy machine; the quadratic check took minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn malformed_yaml_reports_where_the_parser_stopped() {
        let error = parse("a: [1\nb: 2\n").unwrap_err();
        assert_eq!(error.mark.line, 2);
    }

    #[test]
    fn aliases_and_second_documents_are_refused() {
        assert!(
            parse("a: &x 1\nb: *x\n")
                .unwrap_err()
                .message
                .contains("anchors")
        );
        assert!(
            parse("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("second")
        );
    }

    #[test]
    fn a_top_level_list_streams_item_by_item() {
        let TopLevel::Seq(items) = stream_seq("- a: 1\n- a: 2\n- 3\n".as_bytes()).unwrap() else {
            panic!()
        };
        let items: Vec<Node> = items.map(|item| item.unwrap().root).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].mark, Mark { line: 2, col: 3 });
        assert!(matches!(
            stream_seq("".as_bytes()).unwrap(),
            TopLevel::Empty
        ));
        assert!(matches!(
            stream_seq("a: 1\n".as_bytes()).unwrap(),
            TopLevel::Other(_)
        ));
    }

    #[test]
    fn a_nul_byte_is_an_error_at_its_place_not_the_end_of_the_file() {
        // yaml-rust2 reads '\0' as the end of input: this used to parse as `a: 1`.
        assert_eq!(
            error("a: 1\nb: x\0y\nc: 3\n"),
            "2:5: a NUL byte (U+0000) cannot appear in a YAML file; remove it"
        );
        assert_eq!(
            error("a: 1\n\0"),
            "2:1: a NUL byte (U+0000) cannot appear in a YAML file; remove it"
        );
    }

    #[test]
    fn characters_outside_yaml_c_printable_are_refused_and_the_rest_allowed() {
        for c in ('\u{0}'..='\u{8}')
            .chain(['\u{B}', '\u{C}'])
            .chain('\u{E}'..='\u{1F}')
            .chain(['\u{7F}'])
            .chain('\u{80}'..='\u{84}')
            .chain('\u{86}'..='\u{9F}')
            .chain(['\u{FFFE}', '\u{FFFF}'])
        {
            let source = format!("a: \"x{c}y\"\n");
            let error = parse(&source).unwrap_err();
            assert_eq!(error.mark, Mark { line: 1, col: 6 }, "{c:?}");
            assert!(
                error.message.contains(&format!("U+{:04X}", c as u32)),
                "{c:?}: {}",
                error.message
            );
        }
        for c in [
            '\t',
            '\u{85}',
            '\u{A0}',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '\u{10FFFF}',
            'é',
            '🎉',
        ] {
            let source = format!("a: \"x{c}y\"\n");
            assert!(parse(&source).is_ok(), "{c:?}");
        }
    }

    #[test]
    fn one_leading_byte_order_mark_is_skipped_and_any_other_refused() {
        let root = parse("\u{FEFF}number: 1\n").unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].0), "number");
        assert_eq!(entries[0].0.mark, Mark { line: 1, col: 1 });
        assert_eq!(
            error("\u{FEFF}\u{FEFF}number: 1\n"),
            "1:1: a byte-order mark (U+FEFF) may only start a file; remove this one"
        );
        assert_eq!(
            error("a: x\u{FEFF}\n"),
            "1:5: a byte-order mark (U+FEFF) may only start a file; remove this one"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_the_line_and_column_of_the_first_bad_byte() {
        let read_error = |bytes: &[u8]| match read(bytes).unwrap_err() {
            ReadError::Syntax(error) => format!("{}: {}", error.mark, error.message),
            ReadError::Io(error) => panic!("{error}"),
        };
        assert_eq!(
            read_error(b"a: 1\nb: \xC3\xA9\xFF\n"),
            "2:5: is not UTF-8 text: byte 0xFF does not start a valid character here; save the file as UTF-8"
        );
        // A sequence cut short, an overlong form and an encoded surrogate.
        assert!(read_error(b"a: \xE2\x82").starts_with("1:4: is not UTF-8 text: byte 0xE2"));
        assert!(read_error(b"a: \xC0\xAF").starts_with("1:4: is not UTF-8 text: byte 0xC0"));
        assert!(read_error(b"a: \xED\xA0\x80").starts_with("1:4: is not UTF-8 text: byte 0xED"));
        // Windows line ends count once.
        assert!(read_error(b"a: 1\r\nb: 2\r\nc: \x80").starts_with("3:4: "));
    }

    #[test]
    fn characters_split_across_reads_decode_whole() {
        // A one-byte buffer splits every multi-byte character.
        let source = "title: \"Café 日本 🎉\"\n";
        let reader = io::BufReader::with_capacity(1, source.as_bytes());
        let document = read(reader).unwrap();
        let Value::Map(entries) = &document.root.value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].1), "Café 日本 🎉");
    }

    #[test]
    fn an_input_that_fails_to_read_is_an_error_not_an_end() {
        struct Failing(usize);
        impl io::Read for Failing {
            fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let source = b"- a\n";
                let n = source.len().min(buffer.len());
                buffer[..n].copy_from_slice(&source[..n]);
                self.0 -= 1;
                Ok(n)
            }
        }
        let reader = io::BufReader::new(Failing(3));
        assert!(
            matches!(read(reader), Err(ReadError::Io(error)) if error.to_string() == "disk on fire")
        );
        let TopLevel::Seq(items) = stream_seq(io::BufReader::new(Failing(3))).unwrap() else {
            panic!()
        };
        let results: Vec<_> = items.collect();
        assert!(matches!(results.last(), Some(Err(ReadError::Io(_)))));
    }

    fn nested(levels: usize, open: &str, close: &str) -> String {
        let mut source = open.repeat(levels);
        source.push_str(&close.repeat(levels));
        source
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_a_located_error_at_any_depth() {
        let too_deep = format!(
            "nested more than {MAX_DEPTH} levels deep; no letterpress file needs that many"
        );
        for levels in [100, 10_000, 1_000_000] {
            // Block lists: `- - - ... v`, as in the report that overflowed the stack.
            let block = format!("{}v\n", "- ".repeat(levels));
            assert_eq!(
                error(&block),
                format!("1:{}: {too_deep}", 2 * MAX_DEPTH + 1)
            );
            // Flow lists and mappings; yaml-rust2 stops these itself at 255 levels.
            for (open, close) in [("[", "]"), ("{a: ", "}")] {
                let message = parse(&nested(levels, open, close)).unwrap_err().message;
                assert_eq!(message, too_deep, "{open}");
            }
        }
        // `{{{{`: a mapping as a key is refused where it starts, or the depth first.
        for levels in [100, 10_000, 1_000_000] {
            assert!(parse(&nested(levels, "{", "}")).is_err());
        }
        // Block mappings, one more level per line.
        let mut mapping = String::new();
        for level in 0..100 {
            mapping.push_str(&format!("{}k:\n", " ".repeat(level)));
        }
        assert_eq!(parse(&mapping).unwrap_err().message, too_deep);
        // Within the limit, all is well.
        assert!(parse(&format!("{}v\n", "- ".repeat(MAX_DEPTH))).is_ok());
        assert!(parse(&nested(MAX_DEPTH, "[", "]")).is_ok());
    }

    #[test]
    fn a_streamed_item_counts_the_list_it_is_in() {
        let source = format!("- {}v\n", "- ".repeat(MAX_DEPTH));
        let TopLevel::Seq(mut items) = stream_seq(source.as_bytes()).unwrap() else {
            panic!()
        };
        let Some(Err(ReadError::Syntax(error))) = items.next() else {
            panic!()
        };
        assert!(error.message.starts_with("nested more than 64"));
        assert!(items.next().is_none());
    }

    #[test]
    fn a_plain_value_cut_short_by_a_comment_is_recorded_with_the_hash() {
        let document = parse_document(
            "subject: Deep Signal #2: Foundation models\nstatus: draft # or ready\n",
        )
        .unwrap();
        let Value::Map(entries) = &document.root.value else {
            panic!()
        };
        assert_eq!(scalar(&entries[0].1), "Deep Signal");
        assert_eq!(
            document.comments.after(entries[0].1.mark),
            Some(Mark { line: 1, col: 22 })
        );
        assert_eq!(
            document.comments.after(entries[1].1.mark),
            Some(Mark { line: 2, col: 15 })
        );
        assert_eq!(document.comments.after(entries[0].0.mark), None);
    }

    #[test]
    fn quoted_block_null_folded_and_whole_line_comments_are_not_recorded() {
        let source = "a: \"x\" # c\nb: 'x' # c\nc: |  # c\n  x\nd:    # c\ne: x\n# c\nf: x\n  y # c\ng: x#y\n";
        let document = parse_document(source).unwrap();
        assert_eq!(document.comments, Comments::default());
    }

    #[test]
    fn comments_are_recorded_per_streamed_item() {
        let source = "- name: Ada #1 fan\n- name: Bob\n";
        let TopLevel::Seq(items) = stream_seq(source.as_bytes()).unwrap() else {
            panic!()
        };
        let items: Vec<Document> = items.map(Result::unwrap).collect();
        let Value::Map(first) = &items[0].root.value else {
            panic!()
        };
        assert_eq!(
            items[0].comments.after(first[0].1.mark),
            Some(Mark { line: 1, col: 13 })
        );
        assert_eq!(items[1].comments, Comments::default());
    }

    #[test]
    fn a_value_with_a_colon_gets_a_hint_to_quote_it() {
        assert_eq!(
            error("subject: Deep Signal: Foundation models\n"),
            "1:21: invalid YAML: mapping values are not allowed in this context; a value containing `: ` needs quotes"
        );
    }

    #[test]
    fn a_tab_used_for_indentation_is_reported_on_its_own_line() {
        let tab = "invalid YAML: a tab indents this line; indent YAML with spaces only";
        // yaml-rust2 puts this one on the line of the value before the tab (2:5).
        assert_eq!(error("a:\n  b: 1\n\tc: 2\n"), format!("3:1: {tab}"));
        assert_eq!(error("a:\n  b: x\n\n\n  \td: z\n"), format!("5:3: {tab}"));
        assert_eq!(error("a:\n\tb: 1\n"), format!("2:1: {tab}"));
        assert_eq!(error("a:\n\t b: 1\n"), format!("2:1: {tab}"));
    }
}
