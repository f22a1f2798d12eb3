//! A workspace: the folder holding the files the editor writes (`newsletter.yaml`, `issues/`,
//! `templates/`, the subscriber list). Loading reads and validates them into the model, and
//! turns every problem, down to an unreadable file, into a diagnostic that names it.
//!
//! The file layer only: the state the workspace accumulates is `state::StateDir`, and what
//! the environment says is `config::Settings`.

use std::path::{Path, PathBuf};

use crate::decode::Decoder;
use crate::diagnostic::{Checked, Diagnostic, Diagnostics, Severity, Valid};
use crate::model::issue::{self, Issue, IssueId};
use crate::model::newsletter::{self, Newsletter};
use crate::model::subscriber::{self, Subscriber};
use crate::source::FileKind;
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

    /// Reads and parses a YAML file of `kind` (bounded: see `source`), every problem on the
    /// way a diagnostic.
    fn parse(&self, path: &Path, kind: FileKind) -> (Option<yaml::Node>, Decoder) {
        crate::source::load_yaml(path, kind, self.display(path))
    }

    pub fn load_newsletter(&self) -> Checked<Newsletter> {
        let path = self.path(NEWSLETTER_FILE);
        if std::fs::symlink_metadata(&path).is_err() && !self.path(ISSUES_DIR).is_dir() {
            // Most likely the wrong folder, or a new newsletter: say how to start one.
            let mut diagnostics = Diagnostics::default();
            diagnostics.push(Diagnostic::about_file(
                Severity::Error,
                NEWSLETTER_FILE,
                format!(
                    "file not found: {} is not a newsletter's folder; `letterpress init` sets one up here (or run in the right folder, or pass -C DIR)",
                    if self.root == Path::new(".") || self.root.as_os_str().is_empty() {
                        "this".to_string()
                    } else {
                        format!("`{}`", self.root.display())
                    }
                ),
            ));
            return Err(crate::diagnostic::Invalid::new(
                NEWSLETTER_FILE,
                diagnostics,
            ));
        }
        let (root, mut decoder) = self.parse(&path, FileKind::Settings);
        let value = root.and_then(|root| newsletter::decode(&mut decoder, &root));
        Valid::from_decoded(NEWSLETTER_FILE, value, decoder.into_diagnostics())
    }

    pub fn load_issue(&self, path: &Path) -> Checked<Issue> {
        self.load_issue_with_source(path).map(|valid| Valid {
            value: valid.value.0,
            warnings: valid.warnings,
        })
    }

    /// The issue, and its file's text as it was read: what a send keeps as the issue's
    /// snapshot, so the archive shows what went out.
    pub fn load_issue_with_source(&self, path: &Path) -> Checked<(Issue, String)> {
        let file = self.display(path);
        let id = match IssueId::parse(issue_name(path)) {
            Ok(id) => id,
            Err(message) => {
                let mut diagnostics = Diagnostics::default();
                diagnostics.push(Diagnostic::about_file(Severity::Error, &file, message));
                return Valid::from_decoded(&file, None, diagnostics);
            }
        };
        match crate::source::read_string(path, FileKind::Issue) {
            Ok(source) => {
                let (mut issue, mut diagnostics) = decode_issue(&source, id, &file);
                if let Some(issue) = &mut issue {
                    self.resolve_images(issue, &file, &mut diagnostics);
                }
                Valid::from_decoded(&file, issue.map(|issue| (issue, source)), diagnostics)
            }
            Err(error) => {
                let mut diagnostics = Diagnostics::default();
                diagnostics.push(error.into_diagnostic(&file));
                Valid::from_decoded(&file, None, diagnostics)
            }
        }
    }

    pub fn subscribers_path(&self, newsletter: &Newsletter) -> PathBuf {
        self.path(&newsletter.subscribers)
    }

    /// Reads and measures the issue's local images: each must be a PNG, JPEG, GIF or WebP
    /// inside the workspace, under 1 MiB; a missing width or height is read from the file.
    pub fn resolve_images(&self, issue: &mut Issue, file: &str, diagnostics: &mut Diagnostics) {
        for (section_index, section) in issue.sections.iter_mut().enumerate() {
            for (article_index, article) in section.articles.iter_mut().enumerate() {
                let Some(image) = &mut article.image else {
                    continue;
                };
                let crate::model::issue::ImageSrc::Local(local) = &mut image.src else {
                    continue;
                };
                let field = format!("sections[{section_index}].articles[{article_index}].image");
                let (mark, size_mark) = (local.mark, local.size_mark.unwrap_or(local.mark));
                let at = |severity, field: &str, message: String| {
                    let mark = if field.ends_with(".src") {
                        mark
                    } else {
                        size_mark
                    };
                    Diagnostic::at_field(severity, file, mark, field, message)
                };
                match crate::images::read(&self.root, &local.relative) {
                    Ok((found, _)) => {
                        if found.bytes > crate::images::IMAGE_WARN {
                            diagnostics.push(at(Severity::Warning, &format!("{field}.src"), format!(
                                "`{}` is {} KiB; readers download it with the email, so keep it under {} KiB",
                                local.relative,
                                found.bytes / 1024,
                                crate::images::IMAGE_WARN / 1024
                            )));
                        }
                        if let (Some(width), Some(height)) = (image.width, image.height)
                            && changes_aspect(width, height, found.width, found.height)
                        {
                            diagnostics.push(at(Severity::Warning, &format!("{field}.width"), format!(
                                "{width}x{height} stretches the picture, which is {}x{}: give the height that keeps its shape, or leave both out",
                                found.width, found.height
                            )));
                        }
                        match (image.width, image.height) {
                            (None, None) => {
                                image.width = Some(found.width);
                                image.height = Some(found.height);
                            }
                            (Some(width), None) => {
                                image.height = Some(
                                    (u64::from(found.height) * u64::from(width)
                                        / u64::from(found.width).max(1))
                                        as u32,
                                );
                            }
                            (None, Some(height)) => {
                                image.width = Some(
                                    (u64::from(found.width) * u64::from(height)
                                        / u64::from(found.height).max(1))
                                        as u32,
                                );
                            }
                            (Some(_), Some(_)) => {}
                        }
                        local.file = Some(found);
                    }
                    Err(error) => {
                        diagnostics.push(at(
                            Severity::Error,
                            &format!("{field}.src"),
                            error.to_string(),
                        ));
                    }
                }
            }
        }
    }

    /// Every local image the issues in `issues/` show, by the name it is published under,
    /// with where it is: what `serve` answers `/images/<name>` from (a test send of a draft
    /// points there too). Issues that do not load are passed over; `check` reports them.
    pub fn published_images(&self) -> std::collections::BTreeMap<String, String> {
        let mut images = std::collections::BTreeMap::new();
        for path in self.issue_files().unwrap_or_default() {
            if let Ok(loaded) = self.load_issue(&path) {
                for image in loaded.value.local_images() {
                    images.insert(image.published.clone(), image.relative.clone());
                }
            }
        }
        images
    }

    /// The subscriber list, read as it is decoded: the file is never held whole.
    pub fn load_subscribers(&self, newsletter: &Newsletter) -> Checked<Vec<Subscriber>> {
        let path = self.subscribers_path(newsletter);
        let file = self.display(&path);
        let mut decoder = Decoder::new(&file);
        let value = match crate::source::open(&path, FileKind::Subscribers) {
            Ok(input) => subscriber::decode_list_from(&mut decoder, input),
            Err(error) => {
                decoder.push(error.into_diagnostic(&file));
                None
            }
        };
        Valid::from_decoded(&file, value, decoder.into_diagnostics())
    }

    pub fn load_theme(&self, newsletter: &Newsletter) -> Checked<Theme> {
        Theme::load(&self.root, &newsletter.theme)
            .map(Valid::new)
            .map_err(|diagnostics| crate::diagnostic::Invalid::new("the theme", diagnostics))
    }
}

/// An issue from its text (a file's, or a snapshot the ledger kept), with every problem.
pub fn decode_issue(source: &str, id: IssueId, file: &str) -> (Option<Issue>, Diagnostics) {
    let mut decoder = Decoder::new(file);
    let issue = match yaml::read(source.as_bytes()) {
        Ok(document) => {
            decoder.set_comments(document.comments);
            issue::decode(&mut decoder, &document.root, id)
        }
        Err(error) => {
            decoder.read_error(error);
            None
        }
    };
    (issue, decoder.into_diagnostics())
}

/// Whether a given size differs in shape from the picture's own by more than 1%.
fn changes_aspect(width: u32, height: u32, real_width: u32, real_height: u32) -> bool {
    let given = f64::from(width) / f64::from(height.max(1));
    let real = f64::from(real_width) / f64::from(real_height.max(1));
    (given - real).abs() / real > 0.01
}
