//! Shell completions and man pages, generated from the clap definitions in `cli` (the same
//! ones behind `--help`), so that they cannot fall behind a new command or option.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;

pub use clap_complete::Shell;

use crate::cli::Cli;

/// The command the scripts complete.
const BIN_NAME: &str = "letterpress";

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    // clap_complete panics when its writer fails (a closed pipe, a full disk), so the script
    // is built in memory and a failed write comes back as an error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes `letterpress.1` and one page per command (`letterpress-send.1`, ...) to `dir`,
/// creating it if needed, and returns the files written, `letterpress.1` first.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    // As clap_mangen::generate_to does: no page for clap's own `help` command, and a build
    // first, which names each command's page after its parents (`letterpress-send`).
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    Ok(written)
}

fn write_pages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|subcommand| !subcommand.is_hide_set())
        .cloned()
        .collect();
    // Every page names the program and its version, not just the command.
    let page = clap_mangen::Man::new(command)
        .source(format!("letterpress {}", env!("CARGO_PKG_VERSION")))
        .manual("letterpress manual");
    let path = dir.join(page.get_filename());
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    let roff = sections_from_after_help(&String::from_utf8_lossy(&roff));
    std::fs::write(&path, roff).with_context(|| format!("cannot write `{}`", path.display()))?;
    written.push(path);
    for subcommand in subcommands {
        write_pages(subcommand, dir, written)?;
    }
    Ok(())
}

/// clap_mangen puts a command's `after_help` under one EXTRA heading as filled text, which
/// runs the example lines together and wraps them mid-command. Ours is paragraphs: a heading
/// line ("Examples:") over indented lines, or a line that starts with its heading ("Exit
/// status: 0 ok, ..."), or plain prose. Each headed paragraph becomes a section of its own
/// (EXAMPLES, ENVIRONMENT, EXIT STATUS) with the indented lines kept as written; the rest
/// goes under NOTES.
fn sections_from_after_help(roff: &str) -> String {
    let Some((page, extra)) = roff.split_once(".SH EXTRA\n") else {
        return roff.to_string();
    };
    // The extra section runs to the next heading (VERSION, AUTHORS) or the end.
    let (extra, rest) = match extra.find("\n.SH ") {
        Some(end) => (&extra[..end + 1], &extra[end + 1..]),
        None => (extra, ""),
    };
    let mut out = page.to_string();
    let mut notes = false;
    for paragraph in extra.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let mut lines = paragraph.lines();
        let first = lines.next().unwrap_or_default();
        let (heading, first_text) = match first.split_once(':') {
            Some((heading, text)) if !heading.contains('\\') && !heading.starts_with(' ') => {
                (Some(heading.to_uppercase()), text.trim())
            }
            _ => (None, first),
        };
        match heading {
            Some(heading) => out.push_str(&format!(".SH \"{heading}\"\n")),
            None if !notes => {
                out.push_str(".SH NOTES\n");
                notes = true;
            }
            None => out.push_str(".PP\n"),
        }
        let mut verbatim = false;
        for line in std::iter::once(first_text).chain(lines) {
            if let Some(kept) = line.strip_prefix("  ") {
                if !verbatim {
                    out.push_str(".nf\n");
                    verbatim = true;
                }
                // A line that now starts with a dot or quote would be read as a request.
                if kept.starts_with(['.', '\'']) {
                    out.push_str("\\&");
                }
                out.push_str(kept);
            } else if !line.is_empty() {
                if verbatim {
                    out.push_str(".fi\n");
                    verbatim = false;
                }
                out.push_str(line);
            } else {
                continue;
            }
            out.push('\n');
        }
        if verbatim {
            out.push_str(".fi\n");
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    /// The commands a user can type, new ones included.
    fn commands() -> Vec<clap::Command> {
        Cli::command()
            .get_subcommands()
            .filter(|command| !command.is_hide_set())
            .cloned()
            .collect()
    }

    /// Whether `word` appears in `text` on its own, not inside a longer name (`send` in
    /// `--resend-uncertain`).
    fn names(text: &str, word: &str) -> bool {
        let part_of_a_name = |c: char| c.is_ascii_alphanumeric() || c == '-';
        text.match_indices(word).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + word.len()..].chars().next();
            !before.is_some_and(part_of_a_name) && !after.is_some_and(part_of_a_name)
        })
    }

    #[test]
    fn every_completion_script_names_every_command() {
        for shell in Shell::value_variants() {
            let mut script = Vec::new();
            completions(*shell, &mut script).unwrap();
            let script = String::from_utf8(script).unwrap();
            for command in commands() {
                assert!(
                    names(&script, command.get_name()),
                    "the {shell} completion script does not name `{}`",
                    command.get_name()
                );
            }
        }
    }

    #[test]
    fn the_completion_scripts_complete_options_too() {
        let mut script = Vec::new();
        completions(Shell::Bash, &mut script).unwrap();
        let script = String::from_utf8(script).unwrap();
        for command in commands() {
            for long in command.get_arguments().filter_map(|arg| arg.get_long()) {
                assert!(
                    names(&script, &format!("--{long}")),
                    "the bash script does not offer `{} --{long}`",
                    command.get_name()
                );
            }
        }
    }

    #[test]
    fn a_failed_write_is_an_error_not_a_panic() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::StorageFull))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(completions(Shell::Zsh, &mut Full).is_err());
    }

    #[test]
    fn the_after_help_becomes_sections_with_the_examples_kept_as_written() {
        let roff = ".SH OPTIONS\nx\n.SH EXTRA\nExamples:\n  letterpress send 2021\\-08\\-23\n  \
                    .hidden \\-\\-yes\n\nEnvironment:\n  LETTERPRESS_LOG   a filter\n\n\
                    Exit status: 0 ok, 1 failed.\n\nStops on Ctrl\\-C.\n\nLogs go to stderr.\n\
                    .SH VERSION\nv0.1.0\n";
        assert_eq!(
            sections_from_after_help(roff),
            ".SH OPTIONS\nx\n\
             .SH \"EXAMPLES\"\n.nf\nletterpress send 2021\\-08\\-23\n\\&.hidden \\-\\-yes\n.fi\n\
             .SH \"ENVIRONMENT\"\n.nf\nLETTERPRESS_LOG   a filter\n.fi\n\
             .SH \"EXIT STATUS\"\n0 ok, 1 failed.\n\
             .SH NOTES\nStops on Ctrl\\-C.\n.PP\nLogs go to stderr.\n\
             .SH VERSION\nv0.1.0\n"
        );
    }

    #[test]
    fn there_is_a_man_page_for_every_command_with_its_options() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(&dir.path().join("man1")).unwrap();
        let file_names: Vec<String> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // Every command a user can type, with the commands under it (`subscribers add`),
        // each page after its parent.
        fn pages(command: &clap::Command, name: &str, into: &mut Vec<(String, clap::Command)>) {
            for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
                if sub.get_name() == "help" {
                    continue;
                }
                let page = format!("{name}-{}", sub.get_name());
                into.push((page.clone(), sub.clone()));
                pages(sub, &page, into);
            }
        }
        let mut expected = Vec::new();
        pages(&Cli::command(), "letterpress", &mut expected);
        let expected_names: Vec<String> = std::iter::once("letterpress.1".to_string())
            .chain(expected.iter().map(|(page, _)| format!("{page}.1")))
            .collect();
        assert_eq!(file_names, expected_names);
        for ((page_name, command), path) in expected.iter().zip(&written[1..]) {
            // Without roff's font changes (`\fB--yes\fR`) and escaped hyphens (`\-`).
            let mut page = std::fs::read_to_string(path).unwrap().replace("\\-", "-");
            for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
                page = page.replace(font, "");
            }
            assert!(
                page.contains(&format!(
                    ".TH {page_name} 1  \"letterpress {}\" \"letterpress manual\"",
                    env!("CARGO_PKG_VERSION")
                )),
                "{page}"
            );
            for long in command.get_arguments().filter_map(|arg| arg.get_long()) {
                assert!(
                    names(&page, &format!("--{long}")),
                    "{} does not mention --{long}",
                    path.display()
                );
            }
        }
    }

    /// `MANWIDTH=80 man --warnings -l PAGE` prints nothing on stderr for any page. Without
    /// `man` (Debian's man-db) this is skipped, except in CI (`CI` set), where it fails.
    #[test]
    fn the_man_pages_render_without_warnings() {
        if let Err(error) = std::process::Command::new("man").arg("--version").output() {
            let reason = format!("`man` cannot be run ({error}); install man-db");
            if std::env::var_os("CI").is_some() {
                panic!("{reason}");
            }
            eprintln!("skipped: {reason}");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for page in write_man_pages(dir.path()).unwrap() {
            let output = std::process::Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&page)
                .env("MANWIDTH", "80")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success() && stderr.is_empty(),
                "man --warnings -l {} ({}):\n{stderr}",
                page.display(),
                output.status
            );
            assert!(
                !output.stdout.is_empty(),
                "{} renders empty",
                page.display()
            );
        }
    }
}
