//! Turns a `yaml::Node` tree into domain values, collecting every problem with its position.
//!
//! This is our answer to serde's `deny_unknown_fields` for files people edit by hand: the
//! same strictness (unknown fields, wrong kinds, missing fields are errors), but each problem
//! is reported at its line and column, and decoding goes on to find the next one.

use std::fmt::Display;

use crate::diagnostic::{Diagnostic, Diagnostics, FieldPath, Severity};
use crate::yaml::{Comments, Mark, Node, ReadError, Value};

pub struct Decoder {
    file: String,
    diagnostics: Diagnostics,
    /// Where comments cut plain values short, for the warnings of text fields.
    comments: Comments,
}

/// What a text field says when YAML took the end of its value for a comment.
pub const COMMENT_IN_TEXT: &str =
    "the rest of the line after ` #` is a YAML comment; put the value in quotes";

impl Decoder {
    pub fn new(file: impl Into<String>) -> Self {
        Decoder {
            file: file.into(),
            diagnostics: Diagnostics::default(),
            comments: Comments::default(),
        }
    }

    /// The comments of the tree about to be decoded (`yaml::Document::comments`).
    pub fn set_comments(&mut self, comments: Comments) {
        self.comments = comments;
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn into_diagnostics(self) -> Diagnostics {
        self.diagnostics
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.has_errors()
    }

    /// Moves the problems another decoder found into this one.
    pub fn take_diagnostics_from(&mut self, other: Decoder) {
        self.diagnostics.extend(other.diagnostics);
    }

    pub fn error(&mut self, mark: Mark, path: &FieldPath, message: impl Display) {
        self.report(Severity::Error, Some(mark), path, message);
    }

    pub fn warning(&mut self, mark: Mark, path: &FieldPath, message: impl Display) {
        self.report(Severity::Warning, Some(mark), path, message);
    }

    /// A problem found outside the decoder, already a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// A file that did not become a tree: a syntax error where it is, or a file that could not
    /// be read to the end, about the whole file.
    pub fn read_error(&mut self, error: ReadError) {
        match error {
            ReadError::Syntax(error) => self.error(error.mark, &FieldPath::Root, error.message),
            // `source` words its own limit (a custom error); the system's errors get a prefix.
            ReadError::Io(error)
                if error.kind() == std::io::ErrorKind::FileTooLarge
                    && error.get_ref().is_some() =>
            {
                self.report(Severity::Error, None, &FieldPath::Root, error);
            }
            ReadError::Io(error) => self.report(
                Severity::Error,
                None,
                &FieldPath::Root,
                format_args!("cannot read: {error}"),
            ),
        }
    }

    fn report(
        &mut self,
        severity: Severity,
        mark: Option<Mark>,
        path: &FieldPath,
        message: impl Display,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.file.clone(),
            mark,
            field: path.to_string(),
            message: message.to_string(),
        });
    }

    /// The node as a mapping of fields; anything else is reported.
    pub fn fields<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<Fields<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Fields {
                mark: node.mark,
                entries,
                asked: Vec::new(),
            }),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a mapping of fields, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// The node as a list; a single value where a list is expected is reported.
    pub fn list<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected a list, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// The node as text. YAML's plain scalars are all text here, so `1984` is a fine title.
    pub fn text<'n>(&mut self, node: &'n Node, path: &FieldPath) -> Option<&'n str> {
        match &node.value {
            Value::Scalar(text) => Some(text),
            _ => {
                self.error(
                    node.mark,
                    path,
                    format!("expected text, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// The node's text parsed by `parse`, whose error message is reported at the node.
    pub fn parse<'n, T, E: Display>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Option<T> {
        let text = self.text(node, path)?;
        match parse(text) {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(node.mark, path, error);
                None
            }
        }
    }

    /// Like [`Decoder::parse`], for a field of prose or a label (a subject, a title, a name):
    /// warns when a ` #` on the value's line made YAML drop the rest of it as a comment. Only
    /// text fields warn, since `status: draft  # or ready` is an ordinary comment.
    pub fn parse_text<'n, T, E: Display>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Option<T> {
        if let Value::Scalar(_) = node.value
            && let Some(hash) = self.comments.after(node.mark)
        {
            self.warning(hash, path, COMMENT_IN_TEXT);
        }
        self.parse(node, path, parse)
    }

    /// A required text field; see [`Decoder::parse_text`].
    pub fn required_text<'n, T, E: Display>(
        &mut self,
        fields: &mut Fields<'n>,
        path: &FieldPath,
        key: &'static str,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Option<T> {
        let node = fields.required(self, path, key)?;
        self.parse_text(node, &path.key(key), parse)
    }

    /// An optional text field; see [`Decoder::parse_text`].
    pub fn optional_text<'n, T, E: Display>(
        &mut self,
        fields: &mut Fields<'n>,
        path: &FieldPath,
        key: &'static str,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Result<Option<T>, Invalid> {
        match fields.get(key) {
            None => Ok(None),
            Some(node) => self
                .parse_text(node, &path.key(key), parse)
                .map(Some)
                .ok_or(Invalid),
        }
    }

    /// A required field parsed by `parse`; a missing one is reported at its mapping.
    pub fn required<'n, T, E: Display>(
        &mut self,
        fields: &mut Fields<'n>,
        path: &FieldPath,
        key: &'static str,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Option<T> {
        let node = fields.required(self, path, key)?;
        self.parse(node, &path.key(key), parse)
    }

    /// An optional field parsed by `parse`.
    pub fn optional<'n, T, E: Display>(
        &mut self,
        fields: &mut Fields<'n>,
        path: &FieldPath,
        key: &'static str,
        parse: impl FnOnce(&'n str) -> Result<T, E>,
    ) -> Result<Option<T>, Invalid> {
        match fields.get(key) {
            None => Ok(None),
            Some(node) => self
                .parse(node, &path.key(key), parse)
                .map(Some)
                .ok_or(Invalid),
        }
    }
}

/// Marks a value that was present but invalid (already reported), as opposed to absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid;

/// The fields of one mapping. Every key asked for is remembered, so that `finish` can report
/// the keys nobody asked for as unknown, with a suggestion.
pub struct Fields<'n> {
    mark: Mark,
    entries: &'n [(Node, Node)],
    asked: Vec<&'static str>,
}

impl<'n> Fields<'n> {
    /// The field's value; `None` when absent or written as null (`key:` or `key: ~`).
    pub fn get(&mut self, key: &'static str) -> Option<&'n Node> {
        self.entry(key)
            .map(|(_, value)| value)
            .filter(|value| value.value != Value::Null)
    }

    fn entry(&mut self, key: &'static str) -> Option<&'n (Node, Node)> {
        self.asked.push(key);
        self.entries
            .iter()
            .find(|(name, _)| matches!(&name.value, Value::Scalar(text) if text == key))
    }

    /// A field that must have a value: an absent one is reported at its mapping, an empty
    /// one (`key:`) at its key.
    pub fn required(
        &mut self,
        decoder: &mut Decoder,
        path: &FieldPath,
        key: &'static str,
    ) -> Option<&'n Node> {
        match self.entry(key) {
            Some((_, value)) if value.value != Value::Null => Some(value),
            Some((name, _)) => {
                decoder.error(name.mark, &path.key(key), "is empty; fill it in");
                None
            }
            None => {
                decoder.error(self.mark, &path.key(key), "required field is missing");
                None
            }
        }
    }

    /// Where `key` is written, if it is, without counting as asking for it.
    pub fn key_mark(&self, key: &str) -> Option<Mark> {
        self.entries
            .iter()
            .find(|(name, _)| matches!(&name.value, Value::Scalar(text) if text == key))
            .map(|(name, _)| name.mark)
    }

    /// Where the mapping starts, for problems about it as a whole.
    pub fn mark(&self) -> Mark {
        self.mark
    }

    /// Reports every key that was never asked for.
    pub fn finish(self, decoder: &mut Decoder, path: &FieldPath) {
        for (key, _) in self.entries {
            let Value::Scalar(name) = &key.value else {
                continue;
            };
            if self.asked.contains(&name.as_str()) {
                continue;
            }
            let hint = match did_you_mean(name, self.asked.iter().copied()) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("expected one of: {}", self.asked.join(", ")),
            };
            decoder.error(key.mark, &path.key(name), format!("unknown field; {hint}"));
        }
    }
}

/// The known name an unknown one was most likely meant to be: a typo of at most two edits,
/// or the same name in other case, or with `-` or a space for `_`.
///
/// Cheap enough to run for every bad value in a list of a million (a hostile list, say):
/// candidates of the wrong length are skipped before anything else, nothing is allocated per
/// candidate, and a comparison stops as soon as it cannot come within the limit.
pub fn did_you_mean<'k>(
    unknown: &str,
    known: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    // Past this length nothing is a typo of a name we know.
    const LONGEST: usize = 64;
    if unknown.len() > LONGEST {
        return None;
    }
    let mut unknown_chars = Vec::new();
    normalise(unknown, &mut unknown_chars);
    let mut candidate_chars = Vec::new();
    let mut rows = (Vec::new(), Vec::new());
    let mut best: Option<(usize, &'k str)> = None;
    for candidate in known {
        // Only a closer candidate than the best so far is worth finding.
        let limit = best.map_or(MAX_EDITS, |(distance, _)| distance.saturating_sub(1));
        // An ASCII name keeps its length when normalised: most are ruled out right here.
        if candidate.is_ascii() && candidate.len().abs_diff(unknown_chars.len()) > limit {
            continue;
        }
        normalise(candidate, &mut candidate_chars);
        if let Some(distance) =
            edit_distance_within(&unknown_chars, &candidate_chars, limit, &mut rows)
            && best.is_none_or(|(best, _)| distance < best)
        {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

const MAX_EDITS: usize = 2;

/// `name` lowercased, with `-` and spaces as `_`, into `chars`.
fn normalise(name: &str, chars: &mut Vec<char>) {
    let fold = |c: char| if c == '-' || c == ' ' { '_' } else { c };
    chars.clear();
    if name.is_ascii() {
        chars.extend(
            name.bytes()
                .map(|byte| fold(char::from(byte.to_ascii_lowercase()))),
        );
    } else {
        chars.extend(name.chars().flat_map(char::to_lowercase).map(fold));
    }
}

/// The edit distance between `a` and `b` if it is at most `limit`, computed a row at a time
/// in `rows`. Only the cells within `limit` of the diagonal can stay within the limit, so only
/// those are computed, and a comparison gives up at the first row where none does.
fn edit_distance_within(
    a: &[char],
    b: &[char],
    limit: usize,
    (previous, current): &mut (Vec<usize>, Vec<usize>),
) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    const FAR: usize = usize::MAX / 2;
    previous.clear();
    previous.extend(0..=b.len());
    current.clear();
    current.resize(b.len() + 1, FAR);
    for (i, ca) in a.iter().enumerate() {
        let row = i + 1;
        current[0] = row;
        let mut row_best = row;
        let first = row.saturating_sub(limit).max(1);
        let last = (row + limit).min(b.len());
        // The next row reads one cell past the band on each side: out of reach.
        if first > 1 {
            current[first - 1] = FAR;
        }
        if last < b.len() {
            current[last + 1] = FAR;
        }
        for column in first..=last {
            let substitution = previous[column - 1] + usize::from(*ca != b[column - 1]);
            let distance = substitution
                .min(previous[column] + 1)
                .min(current[column - 1] + 1);
            current[column] = distance;
            row_best = row_best.min(distance);
        }
        if row_best > limit {
            return None;
        }
        std::mem::swap(previous, current);
    }
    Some(previous[b.len()]).filter(|distance| *distance <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn unknown_fields_are_reported_at_the_key_with_a_suggestion() {
        let root = yaml::parse("title: a\nurl: b\ntitel: c\nzzz: d\n").unwrap();
        let mut decoder = Decoder::new("x.yaml");
        let path = FieldPath::Root;
        let mut fields = decoder.fields(&root, &path).unwrap();
        fields.get("title");
        fields.get("url");
        fields.finish(&mut decoder, &path);
        let messages: Vec<String> = decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "x.yaml:3:1: titel: unknown field; did you mean `title`?",
                "x.yaml:4:1: zzz: unknown field; expected one of: title, url",
            ]
        );
    }

    #[test]
    fn a_missing_required_field_is_reported_at_its_mapping() {
        let root = yaml::parse("a: 1\nb:\n  c: 2\n").unwrap();
        let mut decoder = Decoder::new("x.yaml");
        let path = FieldPath::Root;
        let mut fields = decoder.fields(&root, &path).unwrap();
        let b = fields.get("b").unwrap();
        let b_path = path.key("b");
        let mut inner = decoder.fields(b, &b_path).unwrap();
        assert!(inner.required(&mut decoder, &b_path, "d").is_none());
        let diagnostics = decoder.into_diagnostics();
        let message = diagnostics.iter().next().unwrap().to_string();
        assert_eq!(message, "x.yaml:3:3: b.d: required field is missing");
    }

    #[test]
    fn wrong_kinds_name_what_was_found() {
        let root = yaml::parse("a: [1, 2]\n").unwrap();
        let mut decoder = Decoder::new("x.yaml");
        let path = FieldPath::Root;
        let mut fields = decoder.fields(&root, &path).unwrap();
        let a = fields.get("a").unwrap();
        assert!(decoder.text(a, &path.key("a")).is_none());
        let message = decoder
            .into_diagnostics()
            .iter()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(message, "x.yaml:1:4: a: expected text, found a list");
    }

    #[test]
    fn suggestions_catch_typos_case_and_dashes() {
        assert_eq!(
            did_you_mean("postal-address", ["postal_address"]),
            Some("postal_address")
        );
        assert_eq!(did_you_mean("Subject", ["subject"]), Some("subject"));
        assert_eq!(did_you_mean("colour", ["subject"]), None);
        assert_eq!(
            did_you_mean("america/new york", ["America/New_York", "America/Toronto"]),
            Some("America/New_York")
        );
        // The closest wins, whatever the order.
        assert_eq!(
            did_you_mean("subjet", ["subjects", "subject"]),
            Some("subject")
        );
        assert_eq!(did_you_mean(&"x".repeat(65), ["x"]), None);
    }

    #[test]
    fn the_banded_distance_agrees_with_the_plain_one() {
        fn plain(a: &[char], b: &[char]) -> usize {
            let mut previous: Vec<usize> = (0..=b.len()).collect();
            for (i, ca) in a.iter().enumerate() {
                let mut current = vec![i + 1];
                for (j, cb) in b.iter().enumerate() {
                    let substitution = previous[j] + usize::from(ca != cb);
                    current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
                }
                previous = current;
            }
            previous[b.len()]
        }
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "title",
            "titel",
            "tile",
            "subject",
            "sbjct",
            "Asia/Shanghai",
            "asia/shangai",
            "xyz",
        ];
        let mut rows = (Vec::new(), Vec::new());
        for a in words {
            for b in words {
                let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                let expected = plain(&a, &b);
                for limit in 0..=3 {
                    let within = edit_distance_within(&a, &b, limit, &mut rows);
                    assert_eq!(
                        within,
                        (expected <= limit).then_some(expected),
                        "{a:?} {b:?} {limit}"
                    );
                }
            }
        }
    }

    fn messages(decoder: Decoder) -> Vec<String> {
        decoder
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn text_fields_warn_at_a_comment_that_cut_their_value_short() {
        let document = yaml::parse_document(
            "subject: Deep Signal #2: Foundation models\nstatus: draft # or ready\nnumber: 3 # third\n",
        )
        .unwrap();
        let mut decoder = Decoder::new("x.yaml");
        decoder.set_comments(document.comments);
        let path = FieldPath::Root;
        let mut fields = decoder.fields(&document.root, &path).unwrap();
        let subject = decoder.required_text(&mut fields, &path, "subject", |text| {
            Ok::<_, String>(text.to_string())
        });
        assert_eq!(subject.as_deref(), Some("Deep Signal"));
        decoder.required(&mut fields, &path, "status", Ok::<_, String>);
        let _ = decoder.optional(&mut fields, &path, "number", |text| text.parse::<u32>());
        assert_eq!(
            messages(decoder),
            [
                "x.yaml:1:22: warning: subject: the rest of the line after ` #` is a YAML comment; put the value in quotes"
            ]
        );
    }

    #[test]
    fn read_errors_are_reported_where_they_are_or_about_the_file() {
        let mut decoder = Decoder::new("x.yaml");
        decoder.read_error(yaml::parse("a: [\n").unwrap_err().into());
        decoder.read_error(std::io::Error::other("disk on fire").into());
        let messages = messages(decoder);
        assert!(
            messages[0].starts_with("x.yaml:2:1: invalid YAML: "),
            "{messages:?}"
        );
        assert_eq!(messages[1], "x.yaml: cannot read: disk on fire");
    }
}
