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
                if text.iter().filter(|&&byte| byte == b'"').count() % 2 == 0 {
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
