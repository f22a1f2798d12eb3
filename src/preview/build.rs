//! One look at the workspace: the problems `check` would report for the issue and the files
//! around it, and the issue rendered for one reader exactly as they would get it, when
//! everything it is made from loads.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Sources;
use super::dark::dark_variant;
use super::images::IMAGES_DIR;
use super::inbox::Inbox;
use crate::diagnostic::{Diagnostics, Severity, split};
use crate::ledger::Ledger;
use crate::lint;
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::issue::{ImageSrc, Issue, IssueId};
use crate::model::newsletter::Newsletter;
use crate::model::subscriber::Subscriber;
use crate::schedule::plan::IssueEntry;
use crate::theme::Theme;
use crate::workspace::{ISSUES_DIR, NEWSLETTER_FILE, Workspace, issue_name};

const TEMPLATES_DIR: &str = "templates";

/// How bad a problem is; `Note` is for what is not about a file (the ledger cannot be read,
/// there is nobody to preview for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Note,
}

/// A line of the banner: a diagnostic as `check` prints it, or a note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub level: Level,
    pub text: String,
}

/// The issue as one reader gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shown {
    pub issue_file: String,
    /// Who it is shown for, as their `To:` would name them.
    pub reader: String,
    pub inbox: Inbox,
    /// The HTML part, byte for byte as sent to the reader.
    #[serde(skip)]
    pub html: String,
    /// The same with the dark-mode rules applied (`dark::dark_variant`).
    #[serde(skip)]
    pub dark_html: String,
    /// The plain-text part as sent.
    pub text: String,
}

/// What one look found.
pub(super) struct Outcome {
    pub issue_file: Option<String>,
    pub problems: Vec<Problem>,
    /// `None` when something the render needs does not load.
    pub shown: Option<Shown>,
    /// The files to watch for the next change.
    pub watched: Watched,
}

/// The files and folders the preview is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Watched {
    pub files: Vec<PathBuf>,
    pub folders: Vec<PathBuf>,
    /// The list among `files`, if the settings named one.
    subscribers: Option<PathBuf>,
}

impl Watched {
    /// The settings, the list (at the path the settings name, or named last time they
    /// loaded), the issue argument's file wherever it is, and the issues, images and theme
    /// folders.
    fn of(workspace: &Workspace, subscribers: Option<PathBuf>, issue: Option<&Path>) -> Watched {
        let mut files = vec![workspace.path(NEWSLETTER_FILE)];
        files.extend(subscribers.clone());
        files.extend(issue.map(Path::to_path_buf));
        let mut folders = vec![workspace.path(ISSUES_DIR), workspace.path(IMAGES_DIR)];
        // Every theme's folder, so a change of `theme:` and an edit to the new one are both
        // seen whatever state the settings are in.
        if let Ok(themes) = std::fs::read_dir(workspace.path(TEMPLATES_DIR)) {
            let mut themes: Vec<PathBuf> = themes
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.is_dir())
                .collect();
            themes.sort();
            folders.extend(themes);
        }
        Watched {
            files,
            folders,
            subscribers,
        }
    }
}

/// Looks at the workspace once. `previous` says which list to watch while the settings do
/// not load.
pub(super) fn look(sources: &Sources, previous: &Watched) -> Outcome {
    let workspace = &sources.workspace;
    let now = sources.clock.now();
    let mut diagnostics = Diagnostics::default();
    let mut notes = Vec::new();

    let (newsletter, found) = split(workspace.load_newsletter());
    diagnostics.extend(found);
    // Read only, and created never: a preview leaves no trace in `.letterpress/`.
    let ledger = sources
        .state
        .open_existing_ledger()
        .unwrap_or_else(|error| {
            notes.push(format!("{error:#}"));
            None
        });
    let (mut theme, mut subscribers, mut subscribers_file) = (None, None, None);
    if let Some(newsletter) = &newsletter {
        let (loaded, found) = split(workspace.load_theme(newsletter));
        diagnostics.extend(found);
        theme = loaded;
        let (loaded, found) = split(workspace.load_subscribers(newsletter));
        diagnostics.extend(found);
        subscribers = loaded;
        subscribers_file = Some(workspace.subscribers_path(newsletter));
        if let Some(ledger) = &ledger {
            match ledger.stored_list_key() {
                Ok(stored) => diagnostics.extend(lint::lint_list_id(newsletter, stored)),
                Err(error) => notes.push(format!("cannot read the ledger: {error}")),
            }
        }
    }

    let issue_path = match &sources.options.issue {
        Some(argument) => Some(workspace.issue_path(argument)),
        None => most_recently_modified(workspace),
    };
    let issue_file = issue_path.as_deref().map(|path| workspace.display(path));
    let explicit_path = sources.options.issue.as_ref().and(issue_path.as_deref());
    let mut watched = Watched::of(
        workspace,
        subscribers_file
            .clone()
            .or_else(|| previous.subscribers.clone()),
        explicit_path,
    );

    let mut issue = None;
    if let (Some(path), Some(file)) = (&issue_path, &issue_file) {
        let (loaded, found) = split(workspace.load_issue(path));
        diagnostics.extend(found);
        if let (Some(loaded), Some(newsletter), Some(theme)) = (&loaded, &newsletter, &theme) {
            match lint::lint_issue(newsletter, theme, loaded, file, now) {
                Ok((found, _)) => diagnostics.extend(found),
                Err(error) => notes.push(error.to_string()),
            }
        }
        if let Some(newsletter) = &newsletter {
            let entries = schedule_entries(workspace, path, file, loaded.clone());
            // The schedule's rules about this issue only: the others have their own
            // preview, and `check` lists them all.
            for diagnostic in lint::lint_schedule(newsletter, &entries, now).iter() {
                if diagnostic.file == *file {
                    diagnostics.push(diagnostic.clone());
                }
            }
        }
        // The issue's own image files, wherever in the workspace they are (a missing one
        // too, so that saving it shows it).
        if let Some(loaded) = &loaded {
            let local = loaded
                .sections
                .iter()
                .flat_map(|section| &section.articles)
                .filter_map(
                    |article| match article.image.as_ref().map(|image| &image.src) {
                        Some(ImageSrc::Local(local)) => Some(workspace.path(&local.relative)),
                        _ => None,
                    },
                );
            watched.files.extend(local);
        }
        issue = loaded;
    } else {
        notes.push(format!(
            "no issue yet in {ISSUES_DIR}/: `letterpress new` starts one, and it shows here as soon as it is saved"
        ));
    }

    let mut file_order = vec![NEWSLETTER_FILE.to_string()];
    file_order.extend(subscribers_file.map(|path| workspace.display(&path)));
    file_order.extend(issue_file.clone());
    diagnostics.sort_by_position(&file_order);
    let mut problems: Vec<Problem> = diagnostics
        .iter()
        .map(|diagnostic| Problem {
            level: match diagnostic.severity {
                Severity::Error => Level::Error,
                Severity::Warning => Level::Warning,
            },
            text: diagnostic.to_string(),
        })
        .collect();

    let mut shown = None;
    if let (Some(newsletter), Some(theme), Some(subscribers), Some(issue), Some(file)) =
        (&newsletter, &theme, &subscribers, &issue, &issue_file)
    {
        let parts = Parts {
            newsletter,
            theme,
            issue,
            ledger: ledger.as_ref(),
        };
        match parts.show(sources, subscribers, file) {
            Ok(rendered) => shown = Some(rendered),
            Err(note) => notes.push(note),
        }
    }
    problems.extend(notes.into_iter().map(|text| Problem {
        level: Level::Note,
        text,
    }));
    Outcome {
        issue_file,
        problems,
        shown,
        watched,
    }
}

/// Every issue, as the schedule's rules need them (two ready issues for one slot are a
/// problem of both), with the one being previewed as already loaded.
fn schedule_entries(
    workspace: &Workspace,
    path: &Path,
    file: &str,
    issue: Option<Issue>,
) -> Vec<IssueEntry> {
    let mut entries = Vec::new();
    let mut paths = workspace.issue_files().unwrap_or_default();
    if !paths.iter().any(|other| other == path) {
        paths.push(path.to_path_buf());
    }
    for other in paths {
        let Ok(id) = IssueId::parse(issue_name(&other)) else {
            continue;
        };
        let (file, issue) = if other == path {
            (file.to_string(), issue.clone())
        } else {
            let (loaded, _) = split(workspace.load_issue(&other));
            (workspace.display(&other), loaded)
        };
        entries.push(IssueEntry { id, file, issue });
    }
    entries
}

/// The issue file saved last, when no ISSUE was named: the one being written.
fn most_recently_modified(workspace: &Workspace) -> Option<PathBuf> {
    let files = workspace.issue_files().ok()?;
    files
        .into_iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
            Some((modified, path))
        })
        // Ties (files checked out together) go to the later name, which is the later date.
        .max()
        .map(|(_, path)| path)
}

/// What a render is made from, every part of it loaded.
struct Parts<'a> {
    newsletter: &'a Newsletter,
    theme: &'a Theme,
    issue: &'a Issue,
    ledger: Option<&'a Ledger>,
}

impl Parts<'_> {
    /// The issue rendered and filled in for the reader, as `send` would; or why not, in a
    /// sentence.
    fn show(
        &self,
        sources: &Sources,
        subscribers: &[Subscriber],
        issue_file: &str,
    ) -> Result<Shown, String> {
        let ledger_error =
            |error: crate::ledger::LedgerError| format!("cannot read the ledger: {error}");
        let suppressed = match self.ledger {
            Some(ledger) => ledger.suppressed().map_err(ledger_error)?,
            None => HashSet::new(),
        };
        let (email, name) = pick_reader(
            sources.options.reader.as_ref(),
            subscribers,
            &suppressed,
            self.newsletter,
        )?;
        let rendered = crate::render::render(self.newsletter, self.issue, self.theme)
            .map_err(|error| error.to_string())?;
        let mut template = MessageTemplate::new(
            self.newsletter,
            self.issue,
            &rendered,
            &self.theme.texts,
            Kind::Issue,
        );
        // Links signed as the ledger signs them, as `render` and `send --dry-run` do.
        if let Some(list_key) = self
            .ledger
            .map(Ledger::stored_list_key)
            .transpose()
            .map_err(ledger_error)?
            .flatten()
        {
            template = template.keyed(list_key);
        }
        let recipient = Recipient {
            email: &email,
            name: name.as_deref(),
        };
        let personal = template.personal(recipient, &sources.secret);
        let html = super::images::from_the_preview(
            &rendered.html.fill(&personal.values()),
            self.newsletter,
            self.issue,
        );
        let text = rendered.text.fill(&personal.values());
        let from = &self.newsletter.from;
        let from_name = from
            .name
            .as_ref()
            .map_or(from.address.as_str(), |name| name.as_str());
        Ok(Shown {
            issue_file: issue_file.to_string(),
            reader: match &name {
                Some(name) => format!("{name} <{email}>", email = email.as_str()),
                None => email.as_str().to_string(),
            },
            inbox: Inbox::new(
                from_name,
                self.issue.subject.as_str(),
                &html,
                self.issue.preheader.is_some(),
            ),
            dark_html: dark_variant(&html),
            html,
            text,
        })
    }
}

/// Who the issue is shown for: `--as`'s address (with their name when they are on the
/// list), or the first reader `send` would mail, or the first test recipient.
fn pick_reader(
    asked: Option<&EmailAddress>,
    subscribers: &[Subscriber],
    suppressed: &HashSet<AddressKey>,
    newsletter: &Newsletter,
) -> Result<(EmailAddress, Option<String>), String> {
    let name_of = |subscriber: &Subscriber| subscriber.name.as_ref().map(|name| name.to_string());
    if let Some(asked) = asked {
        let on_list = subscribers
            .iter()
            .find(|subscriber| subscriber.email.key() == asked.key());
        return Ok((asked.clone(), on_list.and_then(name_of)));
    }
    // The list's first reader `send` would mail (web sign-ups come after the list's).
    let first = subscribers
        .iter()
        .find(|subscriber| subscriber.is_active() && !suppressed.contains(&subscriber.email.key()));
    if let Some(first) = first {
        return Ok((first.email.clone(), name_of(first)));
    }
    match newsletter.test_recipients.first() {
        Some(address) => Ok((address.clone(), None)),
        None => Err(format!(
            "nobody to show the issue to: the list has no active subscriber and {NEWSLETTER_FILE} no test_recipients; `letterpress preview --as ADDR` names a reader"
        )),
    }
}
