//! Problems found in the editor's files, each pinned to `file:line:col` and a field path.
//!
//! Every reader collects these instead of stopping at the first one, so `check` can show the
//! editor everything that is wrong in one run.

use std::fmt;

use crate::yaml::Mark;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file as the user should see it: relative to the workspace when inside it.
    pub file: String,
    /// `None` for problems about a file as a whole (it cannot be read, say).
    pub mark: Option<Mark>,
    /// The field path (`sections[0].articles[2].url`); empty for the whole file.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    /// A problem with a file as a whole (it cannot be read, it is too big).
    pub fn about_file(
        severity: Severity,
        file: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            file: file.into(),
            mark: None,
            field: String::new(),
            message: message.into(),
        }
    }

    /// A problem with one field, where it is written.
    pub fn at_field(
        severity: Severity,
        file: impl Into<String>,
        mark: Mark,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            file: file.into(),
            mark: Some(mark),
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(mark) = self.mark {
            write!(f, "{mark}:")?;
        }
        if self.severity == Severity::Warning {
            write!(f, " warning:")?;
        }
        if !self.field.is_empty() {
            write!(f, " {}:", self.field)?;
        }
        write!(f, " {}", self.message)
    }
}

/// The problems found so far, in the order they were found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Orders problems as an editor reads: file by file (in `file_order`, then any other in
    /// the order first reported), top to bottom within each file.
    pub fn sort_by_position(&mut self, file_order: &[String]) {
        let mut files: Vec<&str> = file_order.iter().map(String::as_str).collect();
        for diagnostic in &self.items {
            if !files.contains(&diagnostic.file.as_str()) {
                files.push(&diagnostic.file);
            }
        }
        let order: Vec<usize> = self
            .items
            .iter()
            .map(|diagnostic| {
                files
                    .iter()
                    .position(|file| *file == diagnostic.file)
                    .unwrap_or(0)
            })
            .collect();
        let mut indexed: Vec<(usize, Diagnostic)> =
            order.into_iter().zip(self.items.drain(..)).collect();
        indexed.sort_by_key(|(file, diagnostic)| (*file, diagnostic.mark));
        self.items = indexed
            .into_iter()
            .map(|(_, diagnostic)| diagnostic)
            .collect();
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|diagnostic| diagnostic.severity == Severity::Error)
    }

    fn count(&self, severity: Severity) -> usize {
        self.items
            .iter()
            .filter(|diagnostic| diagnostic.severity == severity)
            .count()
    }
}

/// A value read from the editor's files that passed validation, with the warnings found on
/// the way (a long subject, a missing preheader): they do not stop anything, but the editor
/// should see them.
#[derive(Debug, Clone)]
pub struct Valid<T> {
    pub value: T,
    pub warnings: Diagnostics,
}

/// Input that did not pass validation: every problem found (warnings too), or a bad argument.
/// `main` prints the problems and exits with status 2; a long-running process logs the first
/// and keeps what it had.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{summary}")]
pub struct Invalid {
    pub summary: String,
    pub diagnostics: Diagnostics,
}

/// What reading and validating one thing gives: the value and its warnings, or every problem.
pub type Checked<T> = Result<Valid<T>, Invalid>;

impl<T> Valid<T> {
    pub fn new(value: T) -> Self {
        Valid {
            value,
            warnings: Diagnostics::default(),
        }
    }

    /// The outcome of a decoder: a value only if no error was found.
    pub fn from_decoded(what: &str, value: Option<T>, diagnostics: Diagnostics) -> Checked<T> {
        match value {
            Some(value) if !diagnostics.has_errors() => Ok(Valid {
                value,
                warnings: diagnostics,
            }),
            _ => Err(Invalid::new(what, diagnostics)),
        }
    }

    /// The value, with its warnings added to `warnings`.
    pub fn collect_warnings(self, warnings: &mut Diagnostics) -> T {
        warnings.extend(self.warnings);
        self.value
    }
}

impl Invalid {
    /// Problems found in `what` (a file, "the theme").
    pub fn new(what: &str, diagnostics: Diagnostics) -> Self {
        let count = diagnostics.error_count().max(1);
        Invalid {
            summary: format!(
                "{what}: {count} error{}; `letterpress check` shows every problem",
                if count == 1 { "" } else { "s" }
            ),
            diagnostics,
        }
    }

    /// A bad argument or setting, said in one sentence.
    pub fn usage(message: impl Into<String>) -> Self {
        Invalid {
            summary: message.into(),
            diagnostics: Diagnostics::default(),
        }
    }

    /// The first error, for a one-line log.
    pub fn first_problem(&self) -> String {
        self.diagnostics
            .errors()
            .next()
            .map(ToString::to_string)
            .unwrap_or_else(|| self.summary.clone())
    }
}

/// Every problem of a check, whether it passed or not, and the value if it did: what
/// `letterpress check` needs to list them all.
pub fn split<T>(checked: Checked<T>) -> (Option<T>, Diagnostics) {
    match checked {
        Ok(valid) => (Some(valid.value), valid.warnings),
        Err(invalid) => (None, invalid.diagnostics),
    }
}

/// The field path of a value, built on the stack while decoding and only formatted when a
/// problem is reported: decoding a million subscribers must not format a million paths.
#[derive(Debug, Clone, Copy)]
pub enum FieldPath<'a> {
    Root,
    Key(&'a FieldPath<'a>, &'a str),
    Index(&'a FieldPath<'a>, usize),
}

impl<'a> FieldPath<'a> {
    pub fn key(&'a self, key: &'a str) -> FieldPath<'a> {
        FieldPath::Key(self, key)
    }

    pub fn index(&'a self, index: usize) -> FieldPath<'a> {
        FieldPath::Index(self, index)
    }
}

impl fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldPath::Root => Ok(()),
            FieldPath::Key(FieldPath::Root, key) => write!(f, "{key}"),
            FieldPath::Key(parent, key) => write!(f, "{parent}.{key}"),
            FieldPath::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_the_yaml_they_point_into() {
        let root = FieldPath::Root;
        let sections = root.key("sections");
        let first = sections.index(0);
        let articles = first.key("articles");
        let third = articles.index(2);
        assert_eq!(third.key("url").to_string(), "sections[0].articles[2].url");
        assert_eq!(root.index(3).key("email").to_string(), "[3].email");
    }

    #[test]
    fn a_diagnostic_prints_as_file_line_col_field_message() {
        let diagnostic = Diagnostic {
            severity: Severity::Error,
            file: "issues/2021-08-23.yaml".into(),
            mark: Some(Mark { line: 14, col: 9 }),
            field: "sections[0].articles[2].url".into(),
            message: "must be an absolute http(s) URL".into(),
        };
        assert_eq!(
            diagnostic.to_string(),
            "issues/2021-08-23.yaml:14:9: sections[0].articles[2].url: must be an absolute http(s) URL"
        );
        let warning = Diagnostic {
            severity: Severity::Warning,
            mark: None,
            field: String::new(),
            message: "no preheader".into(),
            ..diagnostic
        };
        assert_eq!(
            warning.to_string(),
            "issues/2021-08-23.yaml: warning: no preheader"
        );
    }
}
