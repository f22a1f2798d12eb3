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
pub use crate::model::subscriber::ListEntry;
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
        resolve_images_with(issue, file, diagnostics, &|relative| {
            crate::images::read(&self.root, relative)
        });
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

    /// The subscriber list checked entry by entry, as `load_subscribers` does, without
    /// holding it: what comes back is where it is and what the check found, and
    /// [`SubscriberList::entries`] reads it again for a send. Duplicates are found from an
    /// 8-byte hash of each address (a million readers cost 8 MB, not the 100 MB of their
    /// keys); only when two hashes match is the file read a second time, keeping the few
    /// keys with those hashes, to report each duplicate exactly as `load_subscribers` would.
    pub fn check_subscribers(&self, newsletter: &Newsletter) -> Checked<SubscriberList> {
        let path = self.subscribers_path(newsletter);
        let file = self.display(&path);
        let mut decoder = Decoder::new(&file);
        let mut summary = ListSummary::default();
        let mut hashes = Vec::new();
        match read_list(&path, &mut decoder, |entry, _| {
            if let Some(subscriber) = &entry.subscriber {
                hashes.push(summary.add(subscriber));
            }
        }) {
            Ok(()) => {}
            Err(error) => decoder.push(error.into_diagnostic(&file)),
        }
        hashes.sort_unstable();
        let suspects: std::collections::HashSet<u64> = hashes
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect();
        drop(hashes);
        if !suspects.is_empty() {
            // The second reading reports nothing but the duplicates: every other problem
            // was reported by the first.
            let mut duplicates = subscriber::Duplicates::default();
            let mut quiet = Decoder::new(&file);
            let mut found = Decoder::new(&file);
            let reread = read_list(&path, &mut quiet, |entry, _| {
                if let Some(subscriber) = &entry.subscriber
                    && suspects.contains(&subscriber.email.key().hash64())
                {
                    duplicates.check(&mut found, &entry.place, subscriber);
                }
            });
            // A file that cannot be read again was reported by the first reading.
            if reread.is_ok() {
                decoder.take_diagnostics_from(found);
            }
        }
        let mut diagnostics = decoder.into_diagnostics();
        diagnostics.sort_by_position(std::slice::from_ref(&file));
        let list = SubscriberList {
            path,
            file: file.clone(),
            summary,
        };
        Valid::from_decoded(&file, Some(list), diagnostics)
    }

    /// The list as `load_subscribers` reads it, with the line of each address, and a file
    /// that does not exist yet as an empty list: for the commands that edit it.
    pub fn load_subscribers_with_lines(
        &self,
        newsletter: &Newsletter,
    ) -> Checked<Vec<(Subscriber, u32)>> {
        let path = self.subscribers_path(newsletter);
        let file = self.display(&path);
        let mut decoder = Decoder::new(&file);
        let mut found = Vec::new();
        let mut duplicates = subscriber::Duplicates::default();
        match read_list(&path, &mut decoder, |entry, decoder| {
            if let Some(subscriber) = &entry.subscriber
                && duplicates.check(decoder, &entry.place, subscriber)
            {
                found.push((subscriber.clone(), entry.place.email.line));
            }
        }) {
            Ok(()) | Err(crate::source::FileError::NotFound) => {}
            Err(error) => decoder.push(error.into_diagnostic(&file)),
        }
        Valid::from_decoded(&file, Some(found), decoder.into_diagnostics())
    }

    pub fn load_theme(&self, newsletter: &Newsletter) -> Checked<Theme> {
        Theme::load(&self.root, &newsletter.theme)
            .map(Valid::new)
            .map_err(|diagnostics| crate::diagnostic::Invalid::new("the theme", diagnostics))
    }
}

/// What checking a subscriber list found: its counts, and a fingerprint of its addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListSummary {
    pub total: u64,
    pub active: u64,
    fingerprint: (u64, u64),
}

impl ListSummary {
    /// Counts a subscriber in; returns the hash of their key.
    pub fn add(&mut self, subscriber: &Subscriber) -> u64 {
        let hash = subscriber.email.key().hash64();
        self.total += 1;
        self.active += u64::from(subscriber.is_active());
        // Order does not matter, the set of addresses does: a sum and an xor of their hashes.
        self.fingerprint.0 = self.fingerprint.0.wrapping_add(hash);
        self.fingerprint.1 ^= hash.rotate_left(17);
        hash
    }

    /// Whether `other` counted the same addresses (a file read again is the one checked).
    pub fn same_addresses(&self, other: &ListSummary) -> bool {
        self.total == other.total && self.fingerprint == other.fingerprint
    }
}

/// A subscriber list that passed its check: where it is, and what the check found. Reading it
/// again ([`SubscriberList::entries`]) is how a send goes through it without holding it.
#[derive(Debug, Clone)]
pub struct SubscriberList {
    pub path: PathBuf,
    /// As the user should see it.
    pub file: String,
    pub summary: ListSummary,
}

impl SubscriberList {
    /// Reads the list again, calling `each` with every entry and its decoder (for its
    /// problems): a list that no longer checks, or holds other addresses than when it was
    /// checked, was edited since, and is an error rather than a send to a list nobody
    /// checked.
    pub fn entries(
        &self,
        mut each: impl FnMut(&subscriber::ListEntry, &mut Decoder) -> std::ops::ControlFlow<()>,
    ) -> Result<(), ListChanged> {
        let mut decoder = Decoder::new(&self.file);
        let mut summary = ListSummary::default();
        let mut stopped = false;
        let outcome = read_list_until(&self.path, &mut decoder, |entry, decoder| {
            if let Some(subscriber) = &entry.subscriber {
                summary.add(subscriber);
            }
            let flow = each(entry, decoder);
            stopped = flow.is_break();
            flow
        });
        let changed = |why: String| ListChanged {
            file: self.file.clone(),
            why,
        };
        if let Err(error) = outcome {
            return Err(changed(error.to_string()));
        }
        if let Some(problem) = decoder.into_diagnostics().errors().next() {
            return Err(changed(problem.to_string()));
        }
        if !stopped && !summary.same_addresses(&self.summary) {
            return Err(changed(
                "it holds other addresses than when it was checked".into(),
            ));
        }
        Ok(())
    }
}

/// The subscriber list was edited between its check and a later reading.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file} changed while it was being read ({why}); run the command again")]
pub struct ListChanged {
    pub file: String,
    pub why: String,
}

fn read_list(
    path: &Path,
    decoder: &mut Decoder,
    mut each: impl FnMut(&subscriber::ListEntry, &mut Decoder),
) -> Result<(), crate::source::FileError> {
    read_list_until(path, decoder, |entry, decoder| {
        each(entry, decoder);
        std::ops::ControlFlow::Continue(())
    })
}

fn read_list_until(
    path: &Path,
    decoder: &mut Decoder,
    mut each: impl FnMut(&subscriber::ListEntry, &mut Decoder) -> std::ops::ControlFlow<()>,
) -> Result<(), crate::source::FileError> {
    let input = crate::source::open(path, FileKind::Subscribers)?;
    let Some(mut reader) = subscriber::ListReader::new(decoder, input) else {
        return Ok(());
    };
    while let Some(entry) = reader.next_entry(decoder) {
        if each(&entry, decoder).is_break() {
            break;
        }
    }
    Ok(())
}

/// Measures the issue's local images with `read` (the workspace's files, or the copies kept
/// at an issue's first send), filling in a missing width or height from the file.
pub fn resolve_images_with(
    issue: &mut Issue,
    file: &str,
    diagnostics: &mut Diagnostics,
    read: &crate::images::ReadImage<'_>,
) {
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
            match read(&local.relative) {
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
                            image.height = Some(scaled(found.height, width, found.width));
                        }
                        (None, Some(height)) => {
                            image.width = Some(scaled(found.width, height, found.height));
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

/// `side` scaled by `given / measured`, at least 1 pixel (a 0 makes Outlook hide the
/// picture) and never wrapping.
fn scaled(side: u32, given: u32, measured: u32) -> u32 {
    let exact = u64::from(side) * u64::from(given) / u64::from(measured).max(1);
    u32::try_from(exact).unwrap_or(u32::MAX).max(1)
}
