//! A workspace: the folder holding `newsletter.yaml`, `issues/`, `templates/` and the
//! `.letterpress/` state. Loading reads and validates files into the model, and turns every
//! problem, down to an unreadable file, into a diagnostic that names it.

use std::path::{Path, PathBuf};

use crate::decode::Decoder;
use crate::diagnostic::{Diagnostic, Diagnostics, FieldPath, Severity};
use crate::model::issue::{self, Issue, IssueId};
use crate::model::newsletter::{self, Newsletter};
use crate::model::subscriber::{self, Subscriber};
use crate::theme::Theme;
use crate::yaml;

pub const NEWSLETTER_FILE: &str = "newsletter.yaml";
pub const ISSUES_DIR: &str = "issues";
pub const STATE_DIR: &str = ".letterpress";

/// A value loaded from the workspace with the problems found on the way: `value` is `None`
/// when there were errors; warnings may come with a value.
/// The name of the issue a file holds: its file stem (`2021-08-23` for
/// `issues/2021-08-23.yaml`), empty when the name is not text.
pub fn issue_name(path: &Path) -> &str {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default()
}

pub struct Loaded<T> {
    pub value: Option<T>,
    pub diagnostics: Diagnostics,
}

impl<T> Loaded<T> {
    fn new(value: Option<T>, diagnostics: Diagnostics) -> Self {
        let value = if diagnostics.has_errors() {
            None
        } else {
            value
        };
        Loaded { value, diagnostics }
    }
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

    pub fn state_dir(&self) -> PathBuf {
        self.path(STATE_DIR)
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

    /// Every issue file, loaded for the scheduler: invalid ones come without an issue.
    pub fn issue_entries(&self) -> std::io::Result<Vec<crate::schedule::plan::IssueEntry>> {
        Ok(self
            .issue_files()?
            .into_iter()
            .map(|path| crate::schedule::plan::IssueEntry {
                id: issue_name(&path).to_string(),
                file: self.display(&path),
                issue: self.load_issue(&path).value,
            })
            .collect())
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

    pub fn load_newsletter(&self) -> Loaded<Newsletter> {
        let mut diagnostics = Diagnostics::default();
        let path = self.path(NEWSLETTER_FILE);
        let value = self
            .parse(&path, &mut diagnostics)
            .and_then(|(root, mut decoder)| {
                let value = newsletter::decode(&mut decoder, &root);
                diagnostics.extend(decoder.into_diagnostics());
                value
            });
        Loaded::new(value, diagnostics)
    }

    pub fn load_issue(&self, path: &Path) -> Loaded<Issue> {
        let mut diagnostics = Diagnostics::default();
        let id = match IssueId::parse(issue_name(path)) {
            Ok(id) => id,
            Err(message) => {
                diagnostics.push(Diagnostic::about_file(
                    Severity::Error,
                    self.display(path),
                    message,
                ));
                return Loaded::new(None, diagnostics);
            }
        };
        let value = self
            .parse(path, &mut diagnostics)
            .and_then(|(root, mut decoder)| {
                let value = issue::decode(&mut decoder, &root, id);
                diagnostics.extend(decoder.into_diagnostics());
                value
            });
        Loaded::new(value, diagnostics)
    }

    pub fn subscribers_path(&self, newsletter: &Newsletter) -> PathBuf {
        self.path(&newsletter.subscribers)
    }

    pub fn load_subscribers(&self, newsletter: &Newsletter) -> Loaded<Vec<Subscriber>> {
        let mut diagnostics = Diagnostics::default();
        let path = self.subscribers_path(newsletter);
        let value = self.read(&path, &mut diagnostics).and_then(|source| {
            let mut decoder = Decoder::new(self.display(&path));
            let value = subscriber::decode_list(&mut decoder, &source);
            diagnostics.extend(decoder.into_diagnostics());
            value
        });
        Loaded::new(value, diagnostics)
    }

    /// The delivery ledger, created on first use.
    pub fn open_ledger(&self) -> anyhow::Result<crate::ledger::Ledger> {
        use anyhow::Context as _;
        let dir = self.state_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join(crate::ledger::LEDGER_FILE);
        crate::ledger::Ledger::open(&path)
            .with_context(|| format!("cannot open the ledger `{}`", self.display(&path)))
    }

    /// The secret behind unsubscribe links: `LETTERPRESS_SECRET`, or `.letterpress/secret`.
    pub fn secret(&self) -> Result<crate::secret::Secret, crate::secret::SecretError> {
        crate::secret::Secret::load(
            std::env::var(crate::secret::SECRET_ENV).ok().as_deref(),
            &self.state_dir(),
        )
    }

    /// The secret if there is one, else a throwaway one: a preview must not create files.
    pub fn secret_or_ephemeral(&self) -> Result<crate::secret::Secret, crate::secret::SecretError> {
        let configured = std::env::var_os(crate::secret::SECRET_ENV).is_some()
            || self.state_dir().join("secret").exists();
        if configured {
            self.secret()
        } else {
            crate::secret::Secret::ephemeral()
        }
    }

    pub fn load_theme(&self, newsletter: &Newsletter) -> Loaded<Theme> {
        match Theme::load(&self.root, &newsletter.theme) {
            Ok(theme) => Loaded::new(Some(theme), Diagnostics::default()),
            Err(diagnostics) => Loaded::new(None, diagnostics),
        }
    }
}
