//! One send per issue at a time (a lock file per issue, held for the whole run), and one
//! scheduler per workspace.
//!
//! The operating system releases the lock when the holder dies, however it dies, so a crash
//! never leaves an issue locked; the file keeps the holder's pid to name it in messages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::model::issue::IssueId;
use crate::state::StateDir;

pub struct IssueLock {
    _lock: FileLock,
}

/// An exclusive lock on a file, holding the holder's pid.
pub struct FileLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another send of {issue} is running (pid {pid}); wait for it to finish, or stop it first"
    )]
    Held { issue: String, pid: String },
    #[error("{what} (pid {pid})")]
    Busy { what: String, pid: String },
    #[error("cannot use the lock file `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub fn lock_path(state: &StateDir, issue: &IssueId) -> PathBuf {
    state.locks_dir().join(format!("{issue}.lock"))
}

impl FileLock {
    /// Takes the lock or says who has it: `what` describes the holder for the message.
    pub fn acquire(path: &Path, what: &str) -> Result<FileLock, LockError> {
        let io_error = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        crate::state::create_private_dir(path.parent().expect("a lock file has a folder"))
            .map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Busy {
                    what: what.to_string(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(error)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(io_error)?;
        Ok(FileLock { _file: file })
    }

    /// Whether someone holds the lock right now.
    pub fn is_held(path: &Path) -> bool {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => matches!(file.try_lock(), Err(TryLockError::WouldBlock)),
            Err(_) => false,
        }
    }
}

impl IssueLock {
    pub fn acquire(state: &StateDir, issue: &IssueId) -> Result<IssueLock, LockError> {
        match FileLock::acquire(&lock_path(state, issue), "") {
            Ok(lock) => Ok(IssueLock { _lock: lock }),
            Err(LockError::Busy { pid, .. }) => Err(LockError::Held {
                issue: issue.to_string(),
                pid,
            }),
            Err(other) => Err(other),
        }
    }

    /// Whether a send of the issue is running right now (someone holds its lock).
    pub fn is_held(state: &StateDir, issue: &IssueId) -> bool {
        FileLock::is_held(&lock_path(state, issue))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_the_same_issue_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::of(dir.path());
        let issue = |id| IssueId::parse(id).unwrap();
        let first = IssueLock::acquire(&state, &issue("2021-08-23")).unwrap();
        assert!(IssueLock::is_held(&state, &issue("2021-08-23")));
        let error = IssueLock::acquire(&state, &issue("2021-08-23"))
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "another send of 2021-08-23 is running (pid {}); wait for it to finish, or stop it first",
                std::process::id()
            )
        );
        assert!(IssueLock::acquire(&state, &issue("2021-08-30")).is_ok());
        drop(first);
        assert!(!IssueLock::is_held(&state, &issue("2021-08-23")));
        assert!(IssueLock::acquire(&state, &issue("2021-08-23")).is_ok());
    }
}
