//! Adding entries to the editor's subscriber list without disturbing it: the new entries go
//! at the end, written the way the file already writes its items (their indentation, its
//! line ends), and nothing before them is rewritten, so comments, order and blank lines stay
//! and a diff shows only what was added.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::model::address::EmailAddress;
use crate::model::text::OneLine;

/// An entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub email: EmailAddress,
    pub name: Option<OneLine>,
    pub tags: Vec<OneLine>,
}

/// How the file writes its items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    /// What comes before `- ` on an item's first line.
    indent: String,
    line_end: &'static str,
    /// Whether the file ends without a line break, which the first new line must add.
    needs_break: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(
        "{0} writes its list in brackets (`[...]`); write it as one `- email: ...` item per entry to add to it"
    )]
    FlowList(String),
    #[error(
        "{file}:{line}: `{text}` is not a list item; new entries go at the end of a list of `- email: ...` items (an empty file or one of only comments takes them too)"
    )]
    NotAList {
        file: String,
        line: u64,
        text: String,
    },
    #[error(
        "{0} ends its YAML document with `...`: an entry after it would be a second document; remove that line to add to it"
    )]
    EndsTheDocument(String),
    #[error("cannot write {file}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
}

/// Appends `entries` to the list at `path` (created if missing, readable by its owner only:
/// it holds people's addresses). `file` names it in errors.
pub fn append_entries(path: &Path, file: &str, entries: &[NewEntry]) -> Result<(), AppendError> {
    let io_error = |source| AppendError::Io {
        file: file.to_string(),
        source,
    };
    let style = match std::fs::File::open(path) {
        Ok(existing) => match style_of(existing).map_err(io_error)? {
            Shape::Items(style) => style,
            Shape::Flow => return Err(AppendError::FlowList(file.to_string())),
            Shape::NotAList { line, text } => {
                return Err(AppendError::NotAList {
                    file: file.to_string(),
                    line,
                    text,
                });
            }
            Shape::Ended => return Err(AppendError::EndsTheDocument(file.to_string())),
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => Style {
            indent: String::new(),
            line_end: "\n",
            needs_break: false,
        },
        Err(error) => return Err(io_error(error)),
    };
    let mut text = String::new();
    if style.needs_break {
        text.push_str(style.line_end);
    }
    for entry in entries {
        text.push_str(&entry_text(entry, &style));
    }
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut output = options.open(path).map_err(io_error)?;
    output.write_all(text.as_bytes()).map_err(io_error)?;
    output.sync_all().map_err(io_error)?;
    Ok(())
}

/// What the file holds, as far as appending goes.
enum Shape {
    /// `- ` items (or nothing yet), written in this style.
    Items(Style),
    /// A list in brackets, which cannot take `- ` items.
    Flow,
    /// Something else first (`null`, `~`, a mapping): items after it would not be YAML.
    NotAList { line: u64, text: String },
    /// A `...` line last: items after it would be a second document.
    Ended,
}

/// How much of the file's end is read to find its last line.
const TAIL: u64 = 4096;

fn style_of(mut file: std::fs::File) -> io::Result<Shape> {
    let length = file.metadata()?.len();
    let needs_break = if length == 0 {
        false
    } else {
        file.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        last[0] != b'\n'
    };
    // The last line that says something: `...` ends the document.
    file.seek(SeekFrom::Start(length.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    (&mut file).take(TAIL).read_to_end(&mut tail)?;
    let last = String::from_utf8_lossy(&tail)
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string);
    if last
        .as_deref()
        .is_some_and(|line| line == "..." || line.starts_with("... "))
    {
        return Ok(Shape::Ended);
    }
    file.seek(SeekFrom::Start(0))?;
    let mut line_end = None;
    let mut number = 0u64;
    let mut indent = None;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    // The first item's line says both; a list of a million is not read past it.
    while indent.is_none() {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line_end.is_none() && line.ends_with(b"\n") {
            line_end = Some(if line.ends_with(b"\r\n") {
                "\r\n"
            } else {
                "\n"
            });
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        let content = text.trim_start_matches('\u{FEFF}');
        let mut trimmed = content.trim_start();
        // `---` starts the document; anything after it on its line is the document's start.
        if let Some(rest) = trimmed.strip_prefix("---")
            && (rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        {
            trimmed = rest.trim_start();
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('[') {
            return Ok(Shape::Flow);
        }
        if trimmed.starts_with("- ") || trimmed.trim_end() == "-" {
            let before = &content[..content.len() - trimmed.len()];
            // After `--- ` on the same line the items have no indentation of their own.
            indent = Some(if before.trim().is_empty() {
                before.to_string()
            } else {
                String::new()
            });
        } else {
            return Ok(Shape::NotAList {
                line: number,
                text: crate::units::printable(trimmed.trim_end()).into_owned(),
            });
        }
    }
    Ok(Shape::Items(Style {
        indent: indent.unwrap_or_default(),
        line_end: line_end.unwrap_or("\n"),
        needs_break,
    }))
}

fn entry_text(entry: &NewEntry, style: &Style) -> String {
    let (indent, end) = (&style.indent, style.line_end);
    let mut text = format!("{indent}- email: {}{end}", scalar(entry.email.as_str()));
    if let Some(name) = &entry.name {
        text.push_str(&format!("{indent}  name: {}{end}", quoted(name.as_str())));
    }
    if !entry.tags.is_empty() {
        let tags: Vec<String> = entry.tags.iter().map(|tag| quoted(tag.as_str())).collect();
        text.push_str(&format!("{indent}  tags: [{}]{end}", tags.join(", ")));
    }
    text
}

/// An address as YAML: plain when it is only the characters most addresses have, quoted
/// otherwise (`#`, `:` and others mean something to YAML).
fn scalar(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c))
        && !text.starts_with(['-', '.', '@']);
    if plain {
        text.to_string()
    } else {
        quoted(text)
    }
}

/// A double-quoted YAML string: one line (the model refuses control characters), so only
/// the backslash and the quote need escaping.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(email: &str, name: Option<&str>, tags: &[&str]) -> NewEntry {
        NewEntry {
            email: EmailAddress::parse(email).unwrap(),
            name: name.map(|name| OneLine::parse(name).unwrap()),
            tags: tags
                .iter()
                .map(|tag| OneLine::parse(tag).unwrap())
                .collect(),
        }
    }

    #[test]
    fn entries_go_at_the_end_in_the_files_own_style_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        let before = "# Our readers\r\n  - email: ada@example.com   # the first\r\n    name: Ada\r\n\r\n# the end";
        std::fs::write(&path, before).unwrap();
        append_entries(
            &path,
            "subscribers.yaml",
            &[entry(
                "o'hara+news@example.com",
                Some("Sam \"Q\" O'Hara"),
                &["a", "b c"],
            )],
        )
        .unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            format!(
                "{before}\r\n  - email: \"o'hara+news@example.com\"\r\n    name: \"Sam \\\"Q\\\" O'Hara\"\r\n    tags: [\"a\", \"b c\"]\r\n"
            )
        );
        let mut decoder = crate::decode::Decoder::new("subscribers.yaml");
        let list = crate::model::subscriber::decode_list(&mut decoder, &after).unwrap();
        assert_eq!(list[1].name.as_ref().unwrap().as_str(), "Sam \"Q\" O'Hara");
        assert_eq!(list[1].email.as_str(), "o'hara+news@example.com");
    }

    #[test]
    fn a_missing_file_is_created_and_a_list_in_brackets_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        append_entries(
            &path,
            "subscribers.yaml",
            &[entry("a@example.com", None, &[])],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "- email: a@example.com\n"
        );
        std::fs::write(&path, "[{email: a@example.com}]\n").unwrap();
        let error = append_entries(
            &path,
            "subscribers.yaml",
            &[entry("b@example.com", None, &[])],
        )
        .unwrap_err();
        assert!(matches!(error, AppendError::FlowList(_)));
    }

    #[test]
    fn a_file_that_is_not_a_list_of_items_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.yaml");
        for (text, expected) in [
            ("null\n", "subscribers.yaml:1: `null` is not a list item"),
            (
                "# readers\n~\n",
                "subscribers.yaml:2: `~` is not a list item",
            ),
            ("--- []\n", "subscribers.yaml writes its list in brackets"),
            (
                "- email: a@example.com\n...\n",
                "subscribers.yaml ends its YAML document with `...`",
            ),
            (
                "ada@example.com: Ada\n",
                "subscribers.yaml:1: `ada@example.com: Ada` is not a list item",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = append_entries(
                &path,
                "subscribers.yaml",
                &[entry("b@example.com", None, &[])],
            )
            .unwrap_err();
            assert!(error.to_string().starts_with(expected), "{text:?}: {error}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
        // A document start alone, or before the items, is fine.
        for text in ["---\n", "---\n- email: a@example.com\n", "--- # readers\n"] {
            std::fs::write(&path, text).unwrap();
            append_entries(
                &path,
                "subscribers.yaml",
                &[entry("b@example.com", None, &[])],
            )
            .unwrap();
            assert!(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .ends_with("\n- email: b@example.com\n")
            );
        }
    }
}
