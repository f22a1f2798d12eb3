//! `.letterpress/`: the state a workspace accumulates (the ledger, the secret, locks, the
//! outbox), as opposed to the files the editor writes.
//!
//! Everything in it is private (addresses, unsubscribe tokens, the secret): the folder is
//! created 0700 and the files in it 0600, whatever the umask.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Passphrase;
use crate::ledger::{LEDGER_FILE, Ledger};
use crate::secret::{Secret, SecretError};

pub const STATE_DIR: &str = ".letterpress";

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
    /// How the folder is named in messages (relative to the workspace).
    display: String,
}

impl StateDir {
    /// The state folder of the workspace at `root`.
    pub fn of(root: &Path) -> StateDir {
        StateDir {
            path: root.join(STATE_DIR),
            display: STATE_DIR.to_string(),
        }
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

    pub fn ledger_path(&self) -> PathBuf {
        self.path.join(LEDGER_FILE)
    }

    /// Creates the folder, private to its owner, if it is not there yet.
    pub fn create(&self) -> anyhow::Result<()> {
        create_private_dir(&self.path).with_context(|| format!("cannot create `{}`", self.display))
    }

    /// The delivery ledger, created on first use, readable by its owner only (with its
    /// WAL files, which hold the same data).
    pub fn open_ledger(&self) -> anyhow::Result<Ledger> {
        self.create()?;
        let path = self.ledger_path();
        let ledger = Ledger::open(&path)
            .with_context(|| format!("cannot open the ledger `{}`", self.display(LEDGER_FILE)))?;
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            make_private(&file)
                .with_context(|| format!("cannot make `{}` private", file.display()))?;
        }
        Ok(ledger)
    }

    /// The ledger if there is one: commands that only read (`check`, a dry run, `render
    /// --site`) create nothing.
    pub fn open_existing_ledger(&self) -> anyhow::Result<Option<Ledger>> {
        if !self.ledger_path().exists() {
            return Ok(None);
        }
        self.open_ledger().map(Some)
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
