//! When the editor's files last changed: a `stat` of each file the preview is made from, and
//! of every entry of the folders it reads (so a file added or removed counts too).
//!
//! Stamps rather than a file watcher: the page asks a few times a second anyway, a stamp of
//! a workspace is a few dozen `stat` calls, and it cannot miss an event (an editor that
//! saves by renaming, a network file system, a full inotify table).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What a file looked like: when it was modified, its size and which inode it is (an
/// editor that writes a new file and renames it over the old one may keep the time).
type Seen = Option<(SystemTime, u64, u64)>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stamp(Vec<(PathBuf, Seen)>);

impl Stamp {
    /// The stamp of `files`, and of every entry of `folders` (one level down: the issues,
    /// a theme, the images).
    pub fn of(files: &[PathBuf], folders: &[PathBuf]) -> Stamp {
        let mut seen: Vec<(PathBuf, Seen)> = files
            .iter()
            .map(|path| (path.clone(), look(path)))
            .collect();
        // Not the folders' own times: those change with every swap file written beside.
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut inside: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| !is_editor_scratch(path))
                .collect();
            inside.sort();
            seen.extend(inside.into_iter().map(|path| {
                let stat = look(&path);
                (path, stat)
            }));
        }
        Stamp(seen)
    }
}

fn look(path: &Path) -> Seen {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some((metadata.modified().ok()?, metadata.len(), inode))
}

/// Files editors write beside the one being edited (Vim's swap files, Emacs's lock and
/// backup files): they change on every keystroke or save and are no part of the issue.
fn is_editor_scratch(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    name.starts_with(".#")
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || (name.starts_with('#') && name.ends_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_an_addition_and_a_removal_each_change_the_stamp_and_scratch_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("newsletter.yaml");
        let issues = dir.path().join("issues");
        std::fs::create_dir(&issues).unwrap();
        std::fs::write(&settings, "name: a\n").unwrap();
        let stamp = || {
            Stamp::of(
                std::slice::from_ref(&settings),
                std::slice::from_ref(&issues),
            )
        };
        let first = stamp();
        assert_eq!(stamp(), first);

        std::fs::write(issues.join(".2021-08-23.yaml.swp"), "x").unwrap();
        std::fs::write(issues.join("2021-08-23.yaml~"), "x").unwrap();
        assert_eq!(stamp(), first);

        std::fs::write(issues.join("2021-08-23.yaml"), "date: 2021-08-23\n").unwrap();
        let added = stamp();
        assert_ne!(added, first);
        std::fs::write(&settings, "name: ab\n").unwrap();
        let changed = stamp();
        assert_ne!(changed, added);
        std::fs::remove_file(issues.join("2021-08-23.yaml")).unwrap();
        assert_ne!(stamp(), changed);
    }
}
