//! A workspace: the folder holding the files the editor writes (`newsletter.yaml`, `issues/`,
//! `templates/`, the subscriber list). Loading reads and validates them into the model, and
//! turns every problem, down to an unreadable file, into a diagnostic that names it.
//!
//! The file layer only: the state the workspace accumulates is `state::StateDir`, and what
//! the environment says is `config::Settings`.

use std::path::{Path, PathBuf};

use crate::decode::Decoder;
use crate::diagnostic::{Checked, Diagnostic, Diagnostics, FieldPath, Severity, Valid};
use crate::model::issue::{self, Issue, IssueId};
use crate::model::newsletter::{self, Newsletter};
use crate::model::subscriber::{self, Subscriber};
use crate::theme::Theme;
use crate::yaml;

pub const NEWSLETTER_FILE: &str = "newsletter.yaml";
pub const ISSUES_DIR: &str = "issues";
/// The name of the issue a file holds: its file stem (`2021-08-23` for
/// `issues/2021-08-23.yaml`), empty when the name is not text.
pub fn issue_name(path: &Path) -> &str {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Workspace { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path relative to the workspace, as the user gave it or as we name it.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// How a file is named in messages: relative to the workspace when inside it.
    pub fn display(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The issue file an argument names: a path (`issues/2021-08-23.yaml`), or just the issue's
    /// name (`2021-08-23`), looked up in `issues/`.
    pub fn issue_path(&self, argument: &str) -> PathBuf {
        let as_given = self.path(argument);
        let looks_like_a_name = !argument.contains('/') && !argument.ends_with(".yaml");
        if looks_like_a_name && !as_given.exists() {
            self.path(ISSUES_DIR).join(format!("{argument}.yaml"))
        } else {
            as_given
        }
    }

    /// Every `issues/*.yaml`, in name order (which is date order for dated names).
    pub fn issue_files(&self) -> std::io::Result<Vec<PathBuf>> {
        let dir = self.path(ISSUES_DIR);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|extension| extension == "yaml")
            })
            .collect();
        files.sort();
        Ok(files)
    }

    fn read(&self, path: &Path, diagnostics: &mut Diagnostics) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(error) => {
                let message = match error.kind() {
                    std::io::ErrorKind::NotFound => "file not found".to_string(),
                    std::io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
                    _ => format!("cannot read: {error}"),
                };
                diagnostics.push(Diagnostic::about_file(
                    Severity::Error,
                    self.display(path),
                    message,
                ));
                None
            }
        }
    }

    /// Reads and parses a YAML file, reporting a syntax error at its position.
    fn parse(&self, path: &Path, diagnostics: &mut Diagnostics) -> Option<(yaml::Node, Decoder)> {
        let source = self.read(path, diagnostics)?;
        let mut decoder = Decoder::new(self.display(path));
        match yaml::parse(&source) {
            Ok(root) => Some((root, decoder)),
            Err(error) => {
                decoder.error(error.mark, &FieldPath::Root, error.message);
                diagnostics.extend(decoder.into_diagnostics());
                None
            }
        }
    }

    pub fn load_newsletter(&self) -> Checked<Newsletter> {
        let mut diagnostics = Diagnostics::default();
        let path = self.path(NEWSLETTER_FILE);
        let value = self
            .parse(&path, &mut diagnostics)
            .and_then(|(root, mut decoder)| {
                let value = newsletter::decode(&mut decoder, &root);
                diagnostics.extend(decoder.into_diagnostics());
                value
            });
        Valid::from_decoded(NEWSLETTER_FILE, value, diagnostics)
    }

    pub fn load_issue(&self, path: &Path) -> Checked<Issue> {
        let mut diagnostics = Diagnostics::default();
        let id = match IssueId::parse(issue_name(path)) {
            Ok(id) => id,
            Err(message) => {
                diagnostics.push(Diagnostic::about_file(
                    Severity::Error,
                    self.display(path),
                    message,
                ));
                return Valid::from_decoded(&self.display(path), None, diagnostics);
            }
        };
        let value = self
            .parse(path, &mut diagnostics)
            .and_then(|(root, mut decoder)| {
                let value = issue::decode(&mut decoder, &root, id);
                diagnostics.extend(decoder.into_diagnostics());
                value
            });
        Valid::from_decoded(&self.display(path), value, diagnostics)
    }

    pub fn subscribers_path(&self, newsletter: &Newsletter) -> PathBuf {
        self.path(&newsletter.subscribers)
    }

    pub fn load_subscribers(&self, newsletter: &Newsletter) -> Checked<Vec<Subscriber>> {
        let mut diagnostics = Diagnostics::default();
        let path = self.subscribers_path(newsletter);
        let value = self.read(&path, &mut diagnostics).and_then(|source| {
            let mut decoder = Decoder::new(self.display(&path));
            let value = subscriber::decode_list(&mut decoder, &source);
            diagnostics.extend(decoder.into_diagnostics());
            value
        });
        Valid::from_decoded(&self.display(&path), value, diagnostics)
    }

    pub fn load_theme(&self, newsletter: &Newsletter) -> Checked<Theme> {
        Theme::load(&self.root, &newsletter.theme)
            .map(Valid::new)
            .map_err(|diagnostics| crate::diagnostic::Invalid::new("the theme", diagnostics))
    }
}
