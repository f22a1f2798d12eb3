//! The files a site is built from (settings, theme, list, the sent issues), kept as of their
//! last change: re-read when a file's stamp changes, and kept as they were when the new
//! version does not load.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use super::directory::Directory;
use super::{Shared, lock};
use crate::archive::Archive;
use crate::diagnostic::Invalid;
use crate::ledger::Ledger;
use crate::model::issue::IssueId;
use crate::model::newsletter::Newsletter;
use crate::secret::Secret;
use crate::theme::Theme;
use crate::workspace::{NEWSLETTER_FILE, Workspace};
use chrono::{DateTime, Utc};

/// The settings, theme and token directory, as of the files' last change.
pub(super) struct Site {
    stamp: Stamp,
    /// What tokens are signed with (`Ledger::list_key`).
    pub list_key: String,
    pub newsletter: Newsletter,
    pub theme: Theme,
    pub directory: Directory,
}

pub(super) struct SiteCache {
    pub site: Arc<Site>,
    /// The files as they were when reloading them last failed, to log that only once.
    pub failed: Option<Stamp>,
}

pub(super) struct CachedArchive {
    /// The files, and which issues went out when (a snapshot never changes once kept).
    key: (Stamp, Vec<(IssueId, DateTime<Utc>)>),
    archive: Arc<Archive>,
}

/// The workspace's images by published name, as of the issue files' and images' stamps.
pub(super) struct CachedImages {
    stamp: Stamp,
    by_name: BTreeMap<String, String>,
}

/// When files last changed: their modification times and sizes. Comparing stamps costs a
/// few `stat` calls per request, so edits are picked up without watching anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp(Vec<(PathBuf, Option<(SystemTime, u64)>)>);

impl Stamp {
    fn of(paths: impl IntoIterator<Item = PathBuf>) -> Stamp {
        Stamp(
            paths
                .into_iter()
                .map(|path| {
                    let seen = std::fs::metadata(&path)
                        .ok()
                        .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
                    (path, seen)
                })
                .collect(),
        )
    }

    fn paths(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.0.iter().map(|(path, _)| path.clone())
    }
}

/// The files a site is read from.
fn site_files(workspace: &Workspace, newsletter: &Newsletter) -> Vec<PathBuf> {
    let theme = workspace.path("templates").join(newsletter.theme.as_str());
    vec![
        workspace.path(NEWSLETTER_FILE),
        workspace.subscribers_path(newsletter),
        theme.join("style.css"),
        theme.join("theme.yaml"),
    ]
}

/// Why the site could not be read: the files, or the ledger.
#[derive(Debug, thiserror::Error)]
pub(super) enum SiteError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("cannot read the ledger")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Unavailable(anyhow::Error),
}

impl SiteError {
    /// One line for the log.
    fn describe(&self) -> String {
        match self {
            SiteError::Invalid(invalid) => {
                format!("{} ({})", invalid.summary, invalid.first_problem())
            }
            SiteError::Ledger(error) => format!("{self}: {error}"),
            SiteError::Unavailable(error) => format!("{error:#}"),
        }
    }
}

impl Site {
    pub(super) fn load(
        workspace: &Workspace,
        secret: &Secret,
        ledger: &mut Ledger,
    ) -> Result<Site, SiteError> {
        let newsletter = workspace.load_newsletter()?.value;
        // Stamped before the rest is read, so a change made while reading is seen next time.
        let stamp = Stamp::of(site_files(workspace, &newsletter));
        let theme = workspace.load_theme(&newsletter)?.value;
        let subscribers = workspace.load_subscribers(&newsletter)?.value;
        let known = ledger.known_addresses()?;
        // Tokens are signed with the key fixed at the first send, so the links already sent
        // still work after a rename.
        let list_key = ledger.list_key(&crate::message::list_id(&newsletter))?;
        let directory = Directory::build(secret, &list_key, &subscribers, known);
        Ok(Site {
            stamp,
            list_key,
            newsletter,
            theme,
            directory,
        })
    }
}

impl Shared {
    /// The site, read again first if any of its files changed. If they no longer load, the
    /// last good version stays in use (a half-edited list must not turn every link away).
    pub(super) fn site(&self) -> Arc<Site> {
        let mut cache = lock(&self.site);
        let now = Stamp::of(cache.site.stamp.paths());
        if now == cache.site.stamp || cache.failed.as_ref() == Some(&now) {
            return cache.site.clone();
        }
        let loaded = self
            .with_ledger(|ledger| Ok(Site::load(&self.workspace, &self.secret, ledger)))
            .map_err(SiteError::Unavailable)
            .and_then(|loaded| loaded);
        match loaded {
            Ok(site) => {
                tracing::info!(
                    addresses = site.directory.len(),
                    "settings or subscriber list changed: read again"
                );
                cache.site = Arc::new(site);
                cache.failed = None;
            }
            Err(error) => {
                tracing::warn!(
                    "the site no longer loads: {}; still using it as it was",
                    error.describe()
                );
                cache.failed = Some(now);
            }
        }
        cache.site.clone()
    }

    /// The archive, built again when an issue went out or a file it is made from changed.
    pub(super) fn archive(&self) -> anyhow::Result<Arc<Archive>> {
        let site = self.site();
        let sent = self.with_ledger(|ledger| ledger.sent_issues())?;
        let files: Vec<PathBuf> = site
            .stamp
            .paths()
            .chain(
                sent.iter()
                    .map(|sent_issue| self.workspace.issue_path(sent_issue.issue.as_str())),
            )
            .collect();
        let sends: Vec<(IssueId, DateTime<Utc>)> = sent
            .iter()
            .map(|sent_issue| (sent_issue.issue.clone(), sent_issue.first_sent))
            .collect();
        // The images are part of the key: a changed picture gets a new name in the pages.
        let key_of = |archive: &Archive| {
            let images = archive
                .images()
                .into_values()
                .map(|relative| self.workspace.path(relative));
            (
                Stamp::of(files.iter().cloned().chain(images)),
                sends.clone(),
            )
        };
        let mut cache = lock(&self.archive);
        if let Some(cached) = cache
            .as_ref()
            .filter(|cached| cached.key == key_of(&cached.archive))
        {
            return Ok(cached.archive.clone());
        }
        let (archive, left_out) = Archive::collect(
            &self.workspace,
            site.newsletter.clone(),
            site.theme.clone(),
            &sent,
        );
        for line in left_out {
            tracing::warn!("{line}");
        }
        let key = key_of(&archive);
        let archive = Arc::new(archive);
        *cache = Some(CachedArchive {
            key,
            archive: archive.clone(),
        });
        Ok(archive)
    }

    /// The image published as `name` (`<stem>-<hash>.<ext>`) with its kind: the copy a send
    /// kept, or else the workspace's file, if a sent issue or one in `issues/` shows it and
    /// its bytes still have that hash. Nothing else in the workspace is ever served.
    pub(super) fn image(&self, name: &str) -> Option<(crate::images::Format, Vec<u8>)> {
        if !crate::images::is_published_name(name) {
            return None;
        }
        // As it went out, when a send kept it: the file may hold another picture since.
        let sent = crate::images::SentImages::in_state(
            crate::state::StateDir::of(self.workspace.root()).path(),
        );
        if let Some(kept) = sent.by_name(name) {
            return Some(kept);
        }
        let relative = self.image_source(name)?;
        let (file, bytes) = crate::images::read(self.workspace.root(), &relative).ok()?;
        (file.published == name).then_some((file.format, bytes))
    }

    fn image_source(&self, name: &str) -> Option<String> {
        if let Ok(archive) = self.archive()
            && let Some(relative) = archive.images().get(name)
        {
            return Some(relative.clone());
        }
        let mut cache = lock(&self.images);
        let fresh = cache
            .as_ref()
            .is_some_and(|cached| Stamp::of(cached.stamp.paths()) == cached.stamp);
        if !fresh {
            // The folder's own stamp changes when an issue file is added or removed.
            let issues_dir = self.workspace.path(crate::workspace::ISSUES_DIR);
            let issue_files = self.workspace.issue_files().unwrap_or_default();
            let by_name = self.workspace.published_images();
            let image_files = by_name
                .values()
                .map(|relative| self.workspace.path(relative));
            let stamp = Stamp::of(
                std::iter::once(issues_dir)
                    .chain(issue_files)
                    .chain(image_files),
            );
            *cache = Some(CachedImages { stamp, by_name });
        }
        cache.as_ref()?.by_name.get(name).cloned()
    }
}
