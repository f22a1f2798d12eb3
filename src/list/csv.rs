//! A CSV reader for other tools' exports (RFC 4180: commas, fields in double quotes that may
//! hold commas, doubled quotes and line breaks), record by record, each with the line it
//! starts on, so an import can name the lines it could not use. Small enough to own rather
//! than take a dependency for one command.

use std::io::{self, BufRead};

/// One record and the line of the file it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: u64,
    pub fields: Vec<String>,
}

pub struct CsvReader<R> {
    input: R,
    /// The line the next record starts on.
    line: u64,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R) -> CsvReader<R> {
        CsvReader { input, line: 1 }
    }

    /// The next record, skipping blank lines; `None` at the end. Bytes that are not UTF-8
    /// become U+FFFD, so an address with them is reported as invalid, on its line.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            let start = self.line;
            let mut text = Vec::new();
            // A record goes on past a line break while a quoted field is open.
            loop {
                let read = self.input.read_until(b'\n', &mut text)?;
                if read == 0 {
                    break;
                }
                self.line += 1;
                if !ends_in_quoted_field(&text) {
                    break;
                }
            }
            if text.is_empty() {
                return Ok(None);
            }
            if start == 1 && text.starts_with("\u{FEFF}".as_bytes()) {
                text.drain(..3);
            }
            let text = String::from_utf8_lossy(&text);
            let record = text.trim_end_matches(['\r', '\n']);
            if record.trim().is_empty() {
                continue;
            }
            return Ok(Some(Record {
                line: start,
                fields: split(record),
            }));
        }
    }
}

/// Whether `text` ends inside a quoted field, by the rules `split` reads fields with: a quote
/// opens one only at a field's start; elsewhere it is a character like any other (as Excel
/// and Python's csv read `Bob "The Builder`), so a stray quote never swallows the records
/// after it.
fn ends_in_quoted_field(text: &[u8]) -> bool {
    let text = text.strip_prefix("\u{FEFF}".as_bytes()).unwrap_or(text);
    let mut quoted = false;
    let mut at_start = true;
    let mut bytes = text.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if quoted {
            if byte == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    quoted = false;
                }
            }
            continue;
        }
        if byte == b'"' && at_start {
            quoted = true;
        }
        at_start = byte == b',' || byte == b'\n';
    }
    quoted
}

/// The fields of one record's text.
fn split(record: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = record.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if at_start => {
                quoted = true;
                at_start = false;
            }
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            other => {
                field.push(other);
                at_start = false;
            }
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<Record> {
        let mut reader = CsvReader::new(text.as_bytes());
        let mut found = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            found.push(record);
        }
        found
    }

    #[test]
    fn a_stray_quote_inside_a_field_is_a_character_and_swallows_nothing() {
        let found = records(
            "email,name\nq1@x.com,Bob \"The Builder\nq2@x.com,Q2\nq3@x.com,\"ok \"\"quoted\"\"\"\n",
        );
        let fields: Vec<(u64, Vec<&str>)> = found
            .iter()
            .map(|record| {
                (
                    record.line,
                    record.fields.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                (1, vec!["email", "name"]),
                (2, vec!["q1@x.com", "Bob \"The Builder"]),
                (3, vec!["q2@x.com", "Q2"]),
                (4, vec!["q3@x.com", "ok \"quoted\""]),
            ]
        );
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks_and_lines_are_counted() {
        let found = records(
            "\u{FEFF}\"Email Address\",Name\r\na@example.com,\"Okafor, Ada\"\r\n\r\nb@example.com,\"Say \"\"hi\"\"\nand bye\"\nc@example.com,\n",
        );
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].fields, ["Email Address", "Name"]);
        assert_eq!(
            (found[1].line, found[1].fields[1].as_str()),
            (2, "Okafor, Ada")
        );
        assert_eq!(found[2].line, 4);
        assert_eq!(found[2].fields[1], "Say \"hi\"\nand bye");
        assert_eq!((found[3].line, found[3].fields.len()), (6, 2));
    }
}
