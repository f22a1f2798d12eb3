//! `letterpress preview`: the issue being written, shown in a browser as it will arrive, and
//! shown again within a second of any file of the workspace being saved.
//!
//! The library decides everything: `build` looks at the workspace as `check` and `send` do
//! (the same loaders, the same lint rules, the same render filled for one reader), `Preview`
//! keeps the last good render while the files do not render, `stamp` notices changes,
//! `inbox` cuts the inbox line where Gmail does, `dark` makes the dark-mode rules apply, and
//! `server` and `page` show it on loopback. A preview writes nothing: no `.letterpress/`, no
//! secret, no ledger.

mod build;
mod dark;
pub mod images;
pub mod inbox;
mod page;
mod server;
mod stamp;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::clock::Clock;
use crate::model::address::EmailAddress;
use crate::secret::Secret;
use crate::state::StateDir;
use crate::workspace::Workspace;
use build::{Outcome, Watched};
use stamp::Stamp;

pub use build::{Level, Problem, Shown};
pub use dark::dark_variant;
pub use server::PreviewServer;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";

/// What the editor asked to see.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The ISSUE argument; `None` follows the issue file saved last.
    pub issue: Option<String>,
    /// `--as`: the reader to show it for; `None` for the first one `send` would mail.
    pub reader: Option<EmailAddress>,
}

/// Where the preview reads from.
pub struct Sources {
    pub workspace: Workspace,
    pub state: StateDir,
    /// Signs the reader's unsubscribe link; a throwaway one when the workspace has none
    /// (`StateDir::secret_or_ephemeral`), since a preview must not create one.
    pub secret: Secret,
    pub clock: Arc<dyn Clock>,
    pub options: Options,
}

/// What the page shows at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Goes up by one each time the files change.
    pub version: u64,
    /// The issue file being previewed, if there is one.
    pub issue_file: Option<String>,
    pub problems: Vec<Problem>,
    /// The last good render: of these files, or of earlier ones when these do not render.
    pub shown: Option<Arc<Shown>>,
    /// The version `shown` was rendered at, so the page reloads the email only when it
    /// changed.
    pub shown_version: u64,
}

impl Snapshot {
    /// The snapshot after a look at the files: the new render if there is one, else the last
    /// good one kept.
    fn after(previous: Option<&Snapshot>, outcome: Outcome, version: u64) -> Snapshot {
        let (shown, shown_version) = match (outcome.shown, previous) {
            (Some(shown), _) => (Some(Arc::new(shown)), version),
            (None, Some(previous)) => (previous.shown.clone(), previous.shown_version),
            (None, None) => (None, 0),
        };
        Snapshot {
            version,
            issue_file: outcome.issue_file,
            problems: outcome.problems,
            shown,
            shown_version,
        }
    }

    /// Whether what is shown is older than the files, which no longer render.
    pub fn is_stale(&self) -> bool {
        self.shown.is_some() && self.shown_version != self.version
    }

    pub fn count(&self, level: Level) -> usize {
        self.problems
            .iter()
            .filter(|problem| problem.level == level)
            .count()
    }
}

/// The preview of a workspace: the latest snapshot, looked at again when the files change.
pub struct Preview {
    sources: Sources,
    /// Held while looking at the files, so that two requests do not both rebuild.
    looking: Mutex<Looked>,
    current: RwLock<Arc<Snapshot>>,
}

/// What the last look was of.
struct Looked {
    stamp: Stamp,
    watched: Watched,
}

impl Preview {
    /// Looks at the workspace a first time.
    pub fn open(sources: Sources) -> Preview {
        let first = Watched::default();
        let (snapshot, looked) = Preview::look(&sources, None, &first, 1);
        Preview {
            sources,
            looking: Mutex::new(looked),
            current: RwLock::new(Arc::new(snapshot)),
        }
    }

    pub fn workspace(&self) -> &Workspace {
        &self.sources.workspace
    }

    /// The snapshot as of the last look.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The snapshot, after looking again if any file changed since the last look.
    pub fn refresh(&self) -> Arc<Snapshot> {
        let mut looked = lock(&self.looking);
        let now = Stamp::of(&looked.watched.files, &looked.watched.folders);
        if now == looked.stamp {
            return self.snapshot();
        }
        let previous = self.snapshot();
        let (snapshot, next) = Preview::look(
            &self.sources,
            Some(&previous),
            &looked.watched,
            previous.version + 1,
        );
        tracing::info!(
            version = snapshot.version,
            issue = snapshot.issue_file.as_deref().unwrap_or("none"),
            errors = snapshot.count(Level::Error),
            warnings = snapshot.count(Level::Warning),
            stale = snapshot.is_stale(),
            "files changed: looked again"
        );
        *looked = next;
        let snapshot = Arc::new(snapshot);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot.clone();
        snapshot
    }

    /// One look, with the stamp taken before it, so that a file saved while it reads is
    /// looked at again next time. When the look finds that other files matter (the first
    /// look, or settings that now name another list or theme), it looks again at those.
    fn look(
        sources: &Sources,
        previous: Option<&Snapshot>,
        watched: &Watched,
        version: u64,
    ) -> (Snapshot, Looked) {
        let mut watched = watched.clone();
        let mut tries = 0;
        loop {
            let before = Stamp::of(&watched.files, &watched.folders);
            let outcome = build::look(sources, &watched);
            tries += 1;
            let settled = outcome.watched == watched;
            if settled || tries == 3 {
                watched = outcome.watched.clone();
                // Files that keep coming and going: an empty stamp matches no real one, so
                // the next refresh looks again.
                let stamp = if settled { before } else { Stamp::default() };
                let snapshot = Snapshot::after(previous, outcome, version);
                return (snapshot, Looked { stamp, watched });
            }
            watched = outcome.watched;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    const ISSUE: &str = "issues/2021-08-23.yaml";

    /// The repository's example workspace, copied.
    fn example() -> (tempfile::TempDir, Preview) {
        let dir = tempfile::tempdir().unwrap();
        let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir(dir.path().join("issues")).unwrap();
        for file in ["newsletter.yaml", "subscribers.example.yaml", ISSUE] {
            std::fs::copy(repository.join(file), dir.path().join(file)).unwrap();
        }
        let preview = Preview::open(Sources {
            workspace: Workspace::new(dir.path()),
            state: StateDir::of(dir.path()),
            secret: Secret::from_passphrase(&"x".repeat(32)).unwrap(),
            clock: Arc::new(FixedClock::new("2021-08-16T12:00:00Z".parse().unwrap())),
            options: Options::default(),
        });
        (dir, preview)
    }

    fn edit(dir: &tempfile::TempDir, from: &str, to: &str) {
        let path = dir.path().join(ISSUE);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from));
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    fn subject(snapshot: &Snapshot) -> &str {
        &snapshot.shown.as_ref().unwrap().inbox.desktop_subject.shown
    }

    #[test]
    fn a_broken_save_keeps_the_last_good_render_and_a_fixed_one_replaces_it() {
        let (dir, preview) = example();
        let first = preview.refresh();
        assert_eq!(first.issue_file.as_deref(), Some(ISSUE));
        assert!(subject(&first).starts_with("Global AI Weekly #1"));
        assert_eq!(first.count(Level::Error), 0, "{:?}", first.problems);
        assert!(!first.is_stale());
        assert_eq!(
            first.shown.as_ref().unwrap().reader,
            "Ada Okafor <ada.okafor@example.com>"
        );
        assert_eq!(preview.refresh().version, first.version, "nothing changed");

        edit(&dir, "number: 1\n", "number: one\n");
        let broken = preview.refresh();
        assert_eq!(broken.version, first.version + 1);
        assert!(broken.is_stale());
        assert_eq!(broken.shown_version, first.version);
        assert_eq!(subject(&broken), subject(&first));
        assert_eq!(broken.problems[0].level, Level::Error);
        assert!(
            broken.problems[0]
                .text
                .starts_with("issues/2021-08-23.yaml:1:9: number: "),
            "{:?}",
            broken.problems
        );

        edit(&dir, "number: one\n", "number: 2\n");
        edit(&dir, "subject: \"Global AI Weekly #1", "subject: \"Second");
        let fixed = preview.refresh();
        assert!(!fixed.is_stale());
        assert_eq!(fixed.shown_version, fixed.version);
        assert!(subject(&fixed).starts_with("Second"), "{}", subject(&fixed));
        assert!(!dir.path().join(".letterpress").exists());
    }
}
