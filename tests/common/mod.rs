//! Helpers shared by the integration tests: a fresh workspace in a temp dir per test, and the
//! real binary run in it with the tool's own environment removed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The example workspace at the repository root, copied into a temp dir.
pub struct TestWorkspace {
    dir: tempfile::TempDir,
}

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

impl TestWorkspace {
    /// A copy of the repository's example workspace.
    pub fn example() -> Self {
        let workspace = TestWorkspace::empty();
        for file in ["newsletter.yaml", "subscribers.example.yaml"] {
            std::fs::copy(Path::new(REPO).join(file), workspace.path(file)).unwrap();
        }
        copy_dir(&Path::new(REPO).join("issues"), &workspace.path("issues"));
        copy_dir(
            &Path::new(REPO).join("templates"),
            &workspace.path("templates"),
        );
        workspace
    }

    pub fn empty() -> Self {
        TestWorkspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Edits a file by replacing one exact piece of text, which must be there.
    pub fn replace(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{relative} does not contain {from:?}");
        self.write(relative, &text.replacen(from, to, 1));
    }

    /// The binary, run in this workspace, with no LETTERPRESS_* variables from outside.
    pub fn command(&self) -> Command {
        let mut command = Command::cargo_bin("letterpress").unwrap();
        command.current_dir(self.root());
        for (name, _) in std::env::vars() {
            if name.starts_with("LETTERPRESS_") {
                command.env_remove(name);
            }
        }
        command.env("LETTERPRESS_NOW", "2021-08-16T12:00:00Z");
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().unwrap())
    }
}

/// What a run of the binary printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A small, complete issue for tests that need a known shape.
pub const SMALL_ISSUE: &str = r#"number: 7
date: 2021-08-30
status: ready
subject: "Small issue"
preheader: "A short preview line"
intro: |
  Hello *readers*.
sections:
  - heading: News
    articles:
      - title: First story
        url: https://news.example.com/first
        source: Example News
        author: Ann Writer
        excerpt: |
          The first excerpt, with a [link](https://news.example.com/more).
"#;
