//! One send per issue at a time (a lock file per issue, held for the whole run), and one
//! scheduler per workspace.
//!
//! The operating system releases the lock when the holder dies, however it dies, so a crash
//! never leaves an issue locked; the file keeps the holder's pid to name it in messages.
//!
//! The locks are Linux's open file description locks (`F_OFD_SETLK`), not `flock`: they can
//! be asked about (`F_OFD_GETLK`) without being taken, so `status` seeing whether a send is
//! running never makes a send starting at that moment find the issue locked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
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
        match set_lock(&file) {
            Ok(true) => {}
            Ok(false) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Busy {
                    what: what.to_string(),
                    pid: pid.trim().to_string(),
                });
            }
            Err(error) => return Err(io_error(error)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(io_error)?;
        Ok(FileLock { _file: file })
    }

    /// Whether someone holds the lock right now, asked without taking it.
    pub fn is_held(path: &Path) -> bool {
        match File::open(path) {
            Ok(file) => get_lock(&file).unwrap_or(false),
            Err(_) => false,
        }
    }
}

/// An exclusive lock over the whole file; `false` when another holds it.
fn set_lock(file: &File) -> std::io::Result<bool> {
    let mut request = whole_file(libc::F_WRLCK);
    // SAFETY: a valid descriptor and a fully initialised flock struct, which the kernel only
    // reads for F_OFD_SETLK.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut request) };
    if result == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EAGAIN | libc::EACCES) => Ok(false),
        _ => Err(error),
    }
}

/// Whether another holds a lock on the file, without taking one: the kernel answers with the
/// lock that would conflict with ours, or `F_UNLCK` when none would.
fn get_lock(file: &File) -> std::io::Result<bool> {
    let mut request = whole_file(libc::F_WRLCK);
    // SAFETY: as above; for F_OFD_GETLK the kernel writes the answer into the struct.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut request) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(request.l_type != libc::F_UNLCK as libc::c_short)
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value, then filled in.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = kind as libc::c_short;
    request.l_whence = libc::SEEK_SET as libc::c_short;
    request.l_start = 0;
    request.l_len = 0; // to the end of the file, however long
    request.l_pid = 0; // required for OFD locks
    request
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
        // Asking does not take it: a send starting right after still gets it.
        drop(first);
        assert!(!IssueLock::is_held(&state, &issue("2021-08-23")));
        let again = IssueLock::acquire(&state, &issue("2021-08-23")).unwrap();
        assert!(IssueLock::is_held(&state, &issue("2021-08-23")));
        drop(again);
        assert!(!IssueLock::is_held(&state, &issue("2021-08-23")));
        assert!(IssueLock::acquire(&state, &issue("2021-08-23")).is_ok());
    }
}
