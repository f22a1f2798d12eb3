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
        Ok(existing) => style_of(existing).map_err(io_error)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => Some(Style {
            indent: String::new(),
            line_end: "\n",
            needs_break: false,
        }),
        Err(error) => return Err(io_error(error)),
    };
    let Some(style) = style else {
        return Err(AppendError::FlowList(file.to_string()));
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

/// The file's style, or `None` for a list in brackets, which cannot take `- ` items.
fn style_of(mut file: std::fs::File) -> io::Result<Option<Style>> {
    let length = file.metadata()?.len();
    let needs_break = if length == 0 {
        false
    } else {
        file.seek(SeekFrom::End(-1))?;
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        last[0] != b'\n'
    };
    file.seek(SeekFrom::Start(0))?;
    let mut line_end = None;
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
        let text = String::from_utf8_lossy(&line);
        let content = text.trim_start_matches('\u{FEFF}');
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        if trimmed.starts_with('[') {
            return Ok(None);
        }
        if trimmed.starts_with("- ") || trimmed.trim_end() == "-" {
            indent = Some(content[..content.len() - trimmed.len()].to_string());
        } else {
            // Not a list item: the check of the file reports it.
            break;
        }
    }
    Ok(Some(Style {
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
}
