//! `.letterpress/`: the state a workspace accumulates (the ledger, the secret, locks, the
//! outbox), as opposed to the files the editor writes.
//!
//! Everything in it is private (addresses, unsubscribe tokens, the secret): the folder is
//! created 0700 and the files in it 0600, whatever the umask.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::config::Passphrase;
use crate::ledger::{LEDGER_FILE, Ledger};
use crate::message::dkim::KeyEnv;
use crate::secret::{Secret, SecretError};

pub const STATE_DIR: &str = ".letterpress";

/// Written beside the ledger when it is first opened: its absence later, with the marker
/// here, means the ledger was lost, not that the workspace is new.
pub const LEDGER_MARKER: &str = "ledger.created";

/// The ledger went missing from a workspace that had one.
#[derive(Debug, thiserror::Error)]
#[error(
    "the ledger `{ledger}` is gone, but this workspace had one: it is what keeps readers from getting an issue twice and unsubscribed readers unsubscribed, so nothing is sent without it. Restore it from your backup (`letterpress backup` makes one; copy it back to `{ledger}`); to start over on purpose, with every reader getting every issue again, delete `{marker}` (and restart a running `run` or `serve`, which remember that there was one)"
)]
pub struct LedgerGone {
    pub ledger: String,
    pub marker: String,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// How the folder is named in messages (relative to the workspace).
    display: String,
    /// Key files named by the environment, which take the place of `dkim/<selector>.pem`
    /// here. Carried with the folder so that everything that sends for this workspace (a
    /// send, a proof, the scheduler, the sign-up mail from `serve`) signs with the same keys
    /// without being handed them one by one.
    dkim_keys: KeyEnv,
    /// Set once this process has seen a ledger here, and shared by every clone: a
    /// `.letterpress/` deleted whole (the marker with it) under a running scheduler must not
    /// look like a new workspace to that scheduler, which would send every issue again.
    saw_a_ledger: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StateDir {
    /// The state folder of the workspace at `root`.
    pub fn of(root: &Path) -> StateDir {
        StateDir {
            path: root.join(STATE_DIR),
            display: STATE_DIR.to_string(),
            dkim_keys: KeyEnv::default(),
            saw_a_ledger: Default::default(),
        }
    }

    /// The same folder, with the DKIM key files the environment names
    /// (`Settings::dkim_keys`).
    pub fn with_dkim_keys(mut self, keys: KeyEnv) -> StateDir {
        self.dkim_keys = keys;
        self
    }

    /// Where DKIM keys are read from beside `dkim/<selector>.pem` (see `DkimConfig::key_files`).
    pub fn dkim_keys(&self) -> &KeyEnv {
        &self.dkim_keys
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the folder, as shown to the user.
    pub fn display(&self, relative: impl AsRef<Path>) -> String {
        Path::new(&self.display)
            .join(relative)
            .display()
            .to_string()
    }

    /// Why `target` must not receive a backup of the ledger, if it must not. A backup replaces
    /// only an earlier backup (an SQLite file) outside `.letterpress/`: never the list, an
    /// issue, a device, or the ledger and its WAL, whose loss would mail readers who left.
    pub fn backup_target_problem(&self, target: &Path) -> Option<String> {
        let parent = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let Ok(real_parent) = parent.canonicalize() else {
            return Some(format!("the folder `{}` does not exist", parent.display()));
        };
        if let Ok(state) = self.path.canonicalize()
            && real_parent.starts_with(&state)
        {
            return Some(format!(
                "it is inside {}, beside the ledger; back it up to another folder",
                self.display("")
            ));
        }
        let metadata = match std::fs::metadata(target) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => return Some(error.to_string()),
        };
        if !metadata.is_file() {
            return Some("it exists and is not a regular file".into());
        }
        let mut header = [0u8; 16];
        let is_sqlite = std::fs::File::open(target)
            .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header))
            .is_ok()
            && &header == b"SQLite format 3\0";
        (!is_sqlite).then(|| {
            "it exists and is not an earlier backup (an SQLite file); choose another name, or remove it first".into()
        })
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.path.join(LEDGER_FILE)
    }

    /// Creates the folder, private to its owner, if it is not there yet.
    pub fn create(&self) -> anyhow::Result<()> {
        create_private_dir(&self.path).with_context(|| format!("cannot create `{}`", self.display))
    }

    /// The delivery ledger, created on first use, readable by its owner only (with its
    /// WAL files, which hold the same data). A workspace that had a ledger and lost it gets
    /// an error (`LedgerGone`), not a fresh one: an empty ledger would send every issue
    /// again and forget every unsubscribe.
    pub fn open_ledger(&self) -> anyhow::Result<Ledger> {
        self.create()?;
        let path = self.ledger_path();
        self.refuse_a_lost_ledger()?;
        let ledger = Ledger::open(&path)
            .with_context(|| format!("cannot open the ledger `{}`", self.display(LEDGER_FILE)))?;
        self.saw_a_ledger
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let marker = self.path.join(LEDGER_MARKER);
        if !marker.exists() {
            crate::delivery::transport::write_private(
                &marker,
                b"A ledger was created here. If ledger.sqlite3 goes missing, restore it from a backup: letterpress will not start an empty one while this file is here.\n",
            )
            .with_context(|| format!("cannot write `{}`", self.display(LEDGER_MARKER)))?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            make_private(&file)
                .with_context(|| format!("cannot make `{}` private", file.display()))?;
        }
        Ok(ledger)
    }

    /// `LedgerGone` when the ledger is missing from a workspace that had one: what every
    /// opening, for writing or reading, says instead of starting an empty one.
    fn refuse_a_lost_ledger(&self) -> Result<(), LedgerGone> {
        if self.ledger_is_gone() {
            return Err(LedgerGone {
                ledger: self.display(LEDGER_FILE),
                marker: self.display(LEDGER_MARKER),
            });
        }
        Ok(())
    }

    /// Whether the ledger is missing from a workspace that had one. Looked at again after the
    /// marker: another process creating the ledger writes the file first and the marker
    /// after, so one found between the two looks is new, not gone.
    fn ledger_is_gone(&self) -> bool {
        let path = self.ledger_path();
        !path.exists() && self.had_a_ledger() && !path.exists()
    }

    /// Whether this workspace has had a ledger: its marker says so. (Not the outbox or the
    /// secret: a send writes those before its ledger exists, and two processes starting
    /// together must both find a new workspace new.)
    fn had_a_ledger(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.path.join(LEDGER_MARKER).exists() || self.ledger_path().exists() {
            self.saw_a_ledger.store(true, Ordering::Relaxed);
            return true;
        }
        self.saw_a_ledger.load(Ordering::Relaxed)
    }

    /// The ledger if there is one, opened only to read: commands that only read (`status`,
    /// `check`, a dry run, `render --site`) create and change nothing, work on a read-only
    /// `.letterpress/`, and never get in the way of a send. A ledger from an older version
    /// is upgraded first, where that can be done.
    pub fn open_existing_ledger(&self) -> anyhow::Result<Option<Ledger>> {
        let path = self.ledger_path();
        self.refuse_a_lost_ledger()?;
        if !path.exists() {
            return Ok(None);
        }
        match Ledger::open_read_only(&path) {
            Ok(ledger) => Ok(Some(ledger)),
            Err(crate::ledger::LedgerError::NeedsMigration { .. }) => self.open_ledger().map(Some),
            Err(error) => Err(anyhow::Error::new(error).context(format!(
                "cannot read the ledger `{}`",
                self.display(LEDGER_FILE)
            ))),
        }
    }

    /// The secret behind unsubscribe links: the passphrase from the environment, or
    /// `secret` in this folder, created on first use.
    pub fn secret(&self, passphrase: Option<&Passphrase>) -> Result<Secret, SecretError> {
        Secret::load(passphrase.map(Passphrase::expose), &self.path)
    }

    /// A warning when the secret comes from a file others can read: anyone who reads it can
    /// forge unsubscribe links. Left to the owner to fix, since they may have a reason.
    pub fn secret_file_warning(&self, passphrase: Option<&Passphrase>) -> Option<String> {
        if passphrase.is_some() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(self.path.join("secret"))
                .ok()?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                let shown = self.display("secret");
                return Some(format!(
                    "warning: {shown} can be read by others (mode {:o}), and with it anyone can forge unsubscribe links: `chmod 600 {shown}`",
                    mode & 0o777
                ));
            }
        }
        None
    }

    /// The secret if there is one, else a throwaway one: a preview must not create files.
    pub fn secret_or_ephemeral(
        &self,
        passphrase: Option<&Passphrase>,
    ) -> Result<Secret, SecretError> {
        if passphrase.is_some() || self.path.join("secret").exists() {
            self.secret(passphrase)
        } else {
            Secret::ephemeral()
        }
    }

    /// Where messages for `name` (an issue, or its tests) go when no relay is configured.
    pub fn outbox_dir(&self, name: &str) -> PathBuf {
        self.path.join("outbox").join(name)
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.path.join("locks")
    }

    pub fn scheduler_lock_path(&self) -> PathBuf {
        self.path.join("scheduler.lock")
    }

    /// Notes that the scheduler's passes are failing, for `status`. Best effort: when the
    /// disk is full this fails too, and the log still says it.
    pub fn record_scheduler_problem(&self, problem: &str, failures: u32, at: DateTime<Utc>) {
        let record = SchedulerProblem {
            problem: problem.to_string(),
            failures,
            at,
        };
        let path = self.path.join(SCHEDULER_PROBLEM);
        let partial = self.path.join(format!(".{SCHEDULER_PROBLEM}.partial"));
        if let Ok(json) = serde_json::to_vec(&record) {
            let _ = crate::delivery::transport::write_private(&partial, &json)
                .and_then(|()| std::fs::rename(&partial, &path));
        }
    }

    pub fn clear_scheduler_problem(&self) {
        let _ = std::fs::remove_file(self.path.join(SCHEDULER_PROBLEM));
    }

    /// The scheduler's last failing pass, while its passes keep failing.
    pub fn scheduler_problem(&self) -> Option<SchedulerProblem> {
        let bytes = std::fs::read(self.path.join(SCHEDULER_PROBLEM)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

const SCHEDULER_PROBLEM: &str = "scheduler-problem.json";

/// A scheduler pass that failed, and how many in a row have.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchedulerProblem {
    pub problem: String,
    pub failures: u32,
    pub at: DateTime<Utc>,
}

/// Takes away every permission but the owner's from a file, if it exists.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                let mode = metadata.permissions().mode() & 0o700;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// A folder only its owner can enter, created with its parents if needed. An existing one
/// is tightened to 0700: it may have been made by an older letterpress under a lax umask.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}
