//! A YAML tree that remembers where every node came from.
//!
//! Editors need errors that point at `file:line:col`, and they need all of them in one run.
//! serde-based YAML readers give neither (no spans on values, and they stop at the first
//! error), so files are read into this small tree first and decoded by hand in `decode`.

use std::fmt;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file, both 1-based, as editors count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mark {
    pub line: u32,
    pub col: u32,
}

impl Mark {
    fn from_marker(marker: &Marker) -> Self {
        Mark {
            line: marker.line() as u32,
            col: marker.col() as u32 + 1,
        }
    }
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

/// Parses a whole file holding a single document. An empty file is `Null`.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut reader = EventReader::new(source);
    reader.expect_stream_start()?;
    let root = match reader.next()? {
        (Event::StreamEnd, mark) => {
            return Ok(Node {
                value: Value::Null,
                mark,
            });
        }
        (Event::DocumentStart, _) => {
            let (event, mark) = reader.next()?;
            reader.read_node(event, mark)?
        }
        (_, mark) => return Err(SyntaxError::new(mark, "expected a YAML document")),
    };
    reader.expect_end_of_single_document()?;
    Ok(root)
}

/// Reads a file whose top level is a list, one item at a time, so that a list of a million
/// subscribers never exists as a tree in memory: only the current item does.
pub struct SeqItems<'a> {
    reader: EventReader<'a>,
    finished: bool,
}

/// What the top level of a streamed file turned out to be.
pub enum TopLevel<'a> {
    Seq(Box<SeqItems<'a>>),
    /// An empty file: an empty list.
    Empty,
    /// Something other than a list, for the caller to report.
    Other(Node),
}

pub fn stream_seq(source: &str) -> Result<TopLevel<'_>, SyntaxError> {
    let mut reader = EventReader::new(source);
    reader.expect_stream_start()?;
    match reader.next()? {
        (Event::StreamEnd, _) => return Ok(TopLevel::Empty),
        (Event::DocumentStart, _) => {}
        (_, mark) => return Err(SyntaxError::new(mark, "expected a YAML document")),
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
            let node = reader.read_node(event, mark)?;
            reader.expect_end_of_single_document()?;
            if node.value == Value::Null {
                Ok(TopLevel::Empty)
            } else {
                Ok(TopLevel::Other(node))
            }
        }
    }
}

impl Iterator for SeqItems<'_> {
    type Item = Result<Node, SyntaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let item = match self.reader.next() {
            Ok((Event::SequenceEnd, _)) => {
                self.finished = true;
                return self.reader.expect_end_of_single_document().err().map(Err);
            }
            Ok((event, mark)) => self.reader.read_node(event, mark),
            Err(error) => Err(error),
        };
        if item.is_err() {
            self.finished = true;
        }
        Some(item)
    }
}

struct EventReader<'a> {
    parser: Parser<std::str::Chars<'a>>,
}

impl<'a> EventReader<'a> {
    fn new(source: &'a str) -> Self {
        EventReader {
            parser: Parser::new_from_str(source),
        }
    }

    fn next(&mut self) -> Result<(Event, Mark), SyntaxError> {
        match self.parser.next_token() {
            Ok((event, marker)) => Ok((event, Mark::from_marker(&marker))),
            Err(error) => Err(SyntaxError::new(
                Mark::from_marker(error.marker()),
                format!("invalid YAML: {}", error.info()),
            )),
        }
    }

    fn expect_stream_start(&mut self) -> Result<(), SyntaxError> {
        match self.next()? {
            (Event::StreamStart, _) => Ok(()),
            (_, mark) => Err(SyntaxError::new(
                mark,
                "expected the start of a YAML stream",
            )),
        }
    }

    fn expect_end_of_single_document(&mut self) -> Result<(), SyntaxError> {
        match self.next()? {
            (Event::DocumentEnd, _) => {}
            (_, mark) => return Err(SyntaxError::new(mark, "expected the end of the document")),
        }
        match self.next()? {
            (Event::StreamEnd, _) => Ok(()),
            (_, mark) => Err(SyntaxError::new(
                mark,
                "found a second YAML document (`---`); put one document in each file",
            )),
        }
    }

    fn read_node(&mut self, event: Event, mark: Mark) -> Result<Node, SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                let value = if style == TScalarStyle::Plain && is_null(&text) {
                    Value::Null
                } else {
                    Value::Scalar(text)
                };
                Ok(Node { value, mark })
            }
            Event::SequenceStart(anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, mark) => items.push(self.read_node(event, mark)?),
                    }
                }
                Ok(Node {
                    value: Value::Seq(items),
                    mark,
                })
            }
            Event::MappingStart(anchor, tag) => {
                refuse_anchor_and_tag(anchor, tag.is_some(), mark)?;
                let mut entries: Vec<(Node, Node)> = Vec::new();
                loop {
                    let key = match self.next()? {
                        (Event::MappingEnd, _) => break,
                        (event, mark) => self.read_node(event, mark)?,
                    };
                    let Value::Scalar(key_text) = &key.value else {
                        return Err(SyntaxError::new(
                            key.mark,
                            "a key must be a plain name, not a list or mapping",
                        ));
                    };
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(existing, _)| existing.value == key.value)
                    {
                        return Err(SyntaxError::new(
                            key.mark,
                            format!(
                                "duplicate key `{key_text}` (first given on line {})",
                                first.mark.line
                            ),
                        ));
                    }
                    let (event, mark) = self.next()?;
                    let value = self.read_node(event, mark)?;
                    entries.push((key, value));
                }
                // A block mapping's own start marker points past its first key; the first key
                // is where a reader looks for the mapping.
                let mark = entries.first().map_or(mark, |(key, _)| key.mark);
                Ok(Node {
                    value: Value::Map(entries),
                    mark,
                })
            }
            Event::Alias(_) => Err(SyntaxError::new(
                mark,
                "aliases (`*name`) are not supported; write the value out",
            )),
            _ => Err(SyntaxError::new(mark, "unexpected YAML structure")),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.value {
            Value::Scalar(text) => text,
            other => panic!("not a scalar: {other:?}"),
        }
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
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_lines() {
        let error = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.mark, Mark { line: 3, col: 1 });
        assert_eq!(error.message, "duplicate key `a` (first given on line 1)");
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
        let TopLevel::Seq(items) = stream_seq("- a: 1\n- a: 2\n- 3\n").unwrap() else {
            panic!()
        };
        let items: Vec<Node> = items.map(Result::unwrap).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].mark, Mark { line: 2, col: 3 });
        assert!(matches!(stream_seq("").unwrap(), TopLevel::Empty));
        assert!(matches!(stream_seq("a: 1\n").unwrap(), TopLevel::Other(_)));
    }
}
