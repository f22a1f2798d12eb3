//! Turns a `yaml::Node` tree into domain values, collecting every problem with its position.
//!
//! This is our answer to serde's `deny_unknown_fields` for files people edit by hand: the
//! same strictness (unknown fields, wrong kinds, missing fields are errors), but each problem
//! is reported at its line and column, and decoding goes on to find the next one.

use std::fmt::Display;

use crate::diagnostic::{Diagnostic, Diagnostics, FieldPath, Severity};
use crate::yaml::{Mark, Node, Value};

pub struct Decoder {
    file: String,
    diagnostics: Diagnostics,
}

impl Decoder {
    pub fn new(file: impl Into<String>) -> Self {
        Decoder {
            file: file.into(),
            diagnostics: Diagnostics::default(),
        }
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

    pub fn error(&mut self, mark: Mark, path: &FieldPath, message: impl Display) {
        self.report(Severity::Error, Some(mark), path, message);
    }

    pub fn warning(&mut self, mark: Mark, path: &FieldPath, message: impl Display) {
        self.report(Severity::Warning, Some(mark), path, message);
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
            let hint = match closest(name, &self.asked) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("expected one of: {}", self.asked.join(", ")),
            };
            decoder.error(key.mark, &path.key(name), format!("unknown field; {hint}"));
        }
    }
}

/// The known name an unknown one was most likely meant to be: a typo of at most two edits,
/// or the same name in other case or with `-` for `_`.
fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    let normalised = unknown.to_lowercase().replace('-', "_");
    known
        .iter()
        .map(|candidate| (edit_distance(&normalised, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
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
            closest("postal-address", &["postal_address"]),
            Some("postal_address")
        );
        assert_eq!(closest("Subject", &["subject"]), Some("subject"));
        assert_eq!(closest("colour", &["subject"]), None);
    }
}
