//! `letterpress init`: a new workspace that `check` passes at once. Settings with every
//! field explained (the optional ones commented out), a subscriber list with one entry, a
//! first draft dated the next slot, and a `.gitignore` that keeps the secret, the ledger,
//! the readers and the rendered files out of git. Nothing that is there already is
//! overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::model::address::Mailbox;
use crate::model::newsletter::{Newsletter, parse_timezone};
use crate::model::text::OneLine;
use crate::workspace::{ISSUES_DIR, NEWSLETTER_FILE, Workspace};

/// The few things every newsletter sets; the rest is in the file, commented.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub name: Option<String>,
    pub from: Option<String>,
    pub timezone: Option<String>,
}

/// What `init` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// There already; left as it was.
    Kept,
    /// `.gitignore` was there: the lines it lacked were added at its end.
    Extended(Vec<String>),
}

/// What `init` wrote, in the order a newcomer reads it.
#[derive(Debug)]
pub struct Initialized {
    pub files: Vec<(PathBuf, Outcome, String)>,
    /// The first draft, when one was written.
    pub draft: Option<(String, DateTime<Tz>)>,
    /// The settings as they now are (read back, so `check` agrees with them).
    pub newsletter: Newsletter,
    /// Placeholders the editor must replace before a real send.
    pub placeholders: Vec<&'static str>,
}

/// Why the flags cannot be used; each names its flag.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("--name: {0}")]
    Name(String),
    #[error("--from: {0}")]
    From(String),
    #[error("--timezone: {0}")]
    Timezone(String),
    #[error("`{path}` is {is}, where letterpress needs {needs}; nothing was written")]
    Taken {
        path: String,
        is: &'static str,
        needs: &'static str,
    },
}

/// The entries every workspace's `.gitignore` needs.
pub const GITIGNORE: [&str; 3] = [".letterpress/", "subscribers.yaml", "out/"];

/// The sender when `--from` is not given: a placeholder `check` accepts, replaced before
/// the first real send.
const PLACEHOLDER_ADDRESS: &str = "newsletter@example.com";

/// The machine's time zone (from `/etc/localtime`), or UTC when it has none.
pub fn machine_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Checks the flags before anything is written.
pub fn validate(options: &InitOptions, root: &Path) -> Result<(String, Mailbox, Tz), InitError> {
    let name = match &options.name {
        Some(name) => OneLine::parse(name)
            .map_err(|error| InitError::Name(error.to_string()))?
            .to_string(),
        None => name_from_folder(root),
    };
    let from = match &options.from {
        Some(from) => {
            let mut mailbox =
                Mailbox::parse(from).map_err(|error| InitError::From(error.to_string()))?;
            if mailbox.name.is_none() {
                mailbox.name = OneLine::parse(&name).ok();
            }
            mailbox
        }
        None => Mailbox {
            name: OneLine::parse(&name).ok(),
            address: crate::model::address::EmailAddress::parse(PLACEHOLDER_ADDRESS)
                .expect("the placeholder is an address"),
        },
    };
    let timezone = match &options.timezone {
        Some(zone) => parse_timezone(zone).map_err(InitError::Timezone)?,
        None => machine_timezone(),
    };
    refuse_taken_names(root)?;
    Ok((name, from, timezone))
}

/// "deep-signal" → "Deep Signal": the folder's name, as a newsletter's.
fn name_from_folder(root: &Path) -> String {
    let absolute = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let folder = absolute
        .file_name()
        .map(|last| last.to_string_lossy().into_owned())
        .unwrap_or_default();
    let words: Vec<String> = folder
        .split(['-', '_', ' ', '.'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect();
    let name = words.join(" ");
    if OneLine::parse(&name).is_ok() && !name.is_empty() {
        name
    } else {
        "My Newsletter".to_string()
    }
}

/// Refuses a workspace where a name init writes to is the wrong kind of thing (an `issues`
/// file, a `newsletter.yaml` folder): found before the first file is written, not after.
fn refuse_taken_names(root: &Path) -> Result<(), InitError> {
    for (name, needs_folder) in [
        (NEWSLETTER_FILE, false),
        (ISSUES_DIR, true),
        (".gitignore", false),
    ] {
        let path = root.join(name);
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() != needs_folder {
            return Err(InitError::Taken {
                path: path.display().to_string(),
                is: if metadata.is_dir() {
                    "a folder"
                } else {
                    "a file"
                },
                needs: if needs_folder { "a folder" } else { "a file" },
            });
        }
    }
    Ok(())
}

/// Creates the workspace at `root` (made if missing). The flags only shape files that are
/// created; existing ones are kept as they are.
pub fn init(root: &Path, options: &InitOptions, now: DateTime<Utc>) -> anyhow::Result<Initialized> {
    let (name, from, timezone) = validate(options, root)
        .map_err(|error| crate::diagnostic::Invalid::usage(error.to_string()))?;
    std::fs::create_dir_all(root).with_context(|| format!("cannot create `{}`", root.display()))?;
    let workspace = Workspace::new(root);
    let mut files = Vec::new();
    let mut placeholders = Vec::new();

    let settings = settings_file(&name, &from, timezone);
    let outcome = create_new(&workspace.path(NEWSLETTER_FILE), &settings)?;
    if outcome == Outcome::Created {
        if options.from.is_none() {
            placeholders.push("from");
        }
        placeholders.push("postal_address");
    }
    files.push((
        PathBuf::from(NEWSLETTER_FILE),
        outcome,
        "the settings: name, sender, schedule".to_string(),
    ));
    // Read back as every command will read it: what init wrote must pass `check`.
    let newsletter = workspace
        .load_newsletter()
        .map_err(|invalid| anyhow::anyhow!("{}: {}", NEWSLETTER_FILE, invalid.first_problem()))?
        .value;

    let subscribers = workspace.subscribers_path(&newsletter);
    let outcome = create_new(&subscribers, SUBSCRIBERS)?;
    files.push((
        PathBuf::from(workspace.display(&subscribers)),
        outcome,
        "the readers (one example entry; kept out of git)".to_string(),
    ));

    let mut draft = None;
    let has_issues = !workspace
        .issue_files()
        .with_context(|| format!("cannot read `{ISSUES_DIR}/`"))?
        .is_empty();
    if !has_issues {
        // The first slot a day or more away: one due within hours would greet the editor
        // with a warning that their first draft is about to miss it.
        let due = newsletter
            .schedule
            .next_after(now + chrono::Duration::hours(24));
        let date = due.date_naive();
        let relative = format!("{ISSUES_DIR}/{date}.yaml");
        let path = workspace.path(&relative);
        std::fs::create_dir_all(workspace.path(ISSUES_DIR))
            .with_context(|| format!("cannot create `{ISSUES_DIR}/`"))?;
        let outcome = create_new(&path, &first_draft(&newsletter, due))?;
        files.push((
            PathBuf::from(&relative),
            outcome,
            format!("issue 1, a draft for {}", crate::units::slot_time(&due)),
        ));
        draft = Some((date.to_string(), due));
    }

    let (outcome, purpose) = gitignore(&workspace.path(".gitignore"))?;
    files.push((PathBuf::from(".gitignore"), outcome, purpose));

    Ok(Initialized {
        files,
        draft,
        newsletter,
        placeholders,
    })
}

/// Writes `contents` to `path` unless something is there already.
fn create_new(path: &Path, contents: &str) -> anyhow::Result<Outcome> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(contents.as_bytes())
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            Ok(Outcome::Created)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(Outcome::Kept),
        Err(error) => Err(error).with_context(|| format!("cannot create `{}`", path.display())),
    }
}

/// A new `.gitignore`, or the missing lines added to the end of one that is there.
fn gitignore(path: &Path) -> anyhow::Result<(Outcome, String)> {
    let purpose = "keeps the secret, the ledger, the readers and out/ out of git".to_string();
    let contents = format!(
        "# letterpress: its state (the ledger, the secret, the outbox), your readers, rendered files.\n{}\n",
        GITIGNORE.join("\n")
    );
    match create_new(path, &contents)? {
        Outcome::Created => Ok((Outcome::Created, purpose)),
        _ => {
            let existing = crate::source::read_string(path, crate::source::FileKind::Settings)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let has = |entry: &str| {
                let bare = entry.trim_end_matches('/');
                existing.lines().map(str::trim).any(|line| {
                    let line = line.trim_start_matches('/').trim_end_matches('/');
                    line == bare
                })
            };
            let missing: Vec<String> = GITIGNORE
                .iter()
                .filter(|entry| !has(entry))
                .map(|entry| entry.to_string())
                .collect();
            if missing.is_empty() {
                return Ok((Outcome::Kept, "has what letterpress needs".to_string()));
            }
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open `{}`", path.display()))?;
            let separator = if existing.is_empty() || existing.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            write!(file, "{separator}# letterpress\n{}\n", missing.join("\n"))
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            Ok((Outcome::Extended(missing), purpose))
        }
    }
}

fn settings_file(name: &str, from: &Mailbox, timezone: Tz) -> String {
    let domain = from.address.domain().to_string();
    let from = match &from.name {
        Some(display) => format!("{display} <{}>", from.address),
        None => from.address.to_string(),
    };
    format!(
        r#"# The settings of {name}, read by every letterpress command.
# Every field is here; the optional ones are commented out, showing their default.
# `letterpress check` points at any mistake by line and column.

# The newsletter's name: the sender's display name, the header, the footer, page titles.
name: {name_value}
# The sender, "Display Name <address>", at a domain whose mail you control.
from: {from_value}
# Where readers' replies go, if not to `from`.
# reply_to: "editors@example.com"
# Your postal address, printed in every footer: anti-spam laws (CAN-SPAM, CASL) require it.
postal_address: {postal}
# Where `letterpress serve` (or a copy of `render --site`) answers: the web archive,
# one-click unsubscribe and the issues' local images need it. To try things out on this
# machine, "http://localhost:8080" works too (its links then work only here).
# site_url: "https://news.example.com"
# The language readers read (a BCP 47 tag): screen readers, right-to-left scripts.
# language: en
# The readers. Kept out of git by .gitignore: it is their personal data.
subscribers: subscribers.yaml
# The email's look: templates/<theme>/ if you add one, else the built-in default.
# theme: default

# When issues go out: a weekday, a 24-hour time, and the zone that time is in.
schedule:
  day: monday
  time: "09:00"
  timezone: {timezone}
  # How long after its slot an issue still goes out, if the scheduler was down then.
  # grace: 6h

# How mail is sent; the defaults suit most relays.
# delivery:
#   concurrency: 4           # messages sent at once
#   rate_per_second: 50      # a ceiling, for a relay with a quota (default: none)
#   max_attempts: 5          # tries per reader before a temporary failure waits for the next run
#   timeout_seconds: 60      # for each step of the conversation with the relay
#   final_reply_seconds: 600 # for the relay's answer to a whole message

# Who `letterpress test` sends proofs to when no --to is given.
# test_recipients:
#   - you@example.com

# Sign every message with DKIM (Gmail and Yahoo ask bulk senders for it): `letterpress dkim
# keygen` makes the key and prints the DNS record to publish; then set the selector here.
# dkim:
#   selector: lp1
#   domain: {domain}     # the signing domain, by default the From address's

# An envelope sender for bounces (the mailbox `letterpress bounces fetch` reads): each
# message goes out from bounces+<tag>@..., so every bounce names its reader.
# bounce_address: bounces@{domain}

# When bounces take a reader off the list: hard bounces and complaints at once, soft bounces
# once the last soft_limit issues sent to the address all bounced.
# bounces:
#   soft_limit: 3
"#,
        name_value = super::yaml_quoted(name),
        from_value = super::yaml_quoted(&from),
        postal = super::yaml_quoted(&format!("{name}, 1 Example Street, Example City")),
        timezone = timezone.name(),
        domain = domain,
    )
}

const SUBSCRIBERS: &str = r#"# The readers: one entry each. `letterpress send` mails those that are active.
# Kept out of git by .gitignore: it is their personal data.
- email: you@example.com
  name: You
  # timezone: Europe/Berlin     # for their greeting; the issue goes out at one time for all
  # tags: [friends]
  # status: unsubscribed        # kept on the list, sent nothing
"#;

fn first_draft(newsletter: &Newsletter, due: DateTime<Tz>) -> String {
    let name = newsletter.name.as_str();
    format!(
        r#"# {name}, issue 1: goes out {when} once `status` is `ready`.
# A first draft showing every field: replace the text with yours.
# `letterpress preview` shows it as readers will see it, while you edit.
number: 1
date: {date}
status: draft
subject: {subject}
preheader: "What this newsletter is about, and what is in the first issue"
intro: |
  Welcome to the first issue of *{name_markdown}*. Every week: a few pieces worth your
  time, each summed up in a few lines, with a link to the original.
sections:
  - heading: This week
    articles:
      - title: "The piece's title"
        url: https://example.com/
        source: "The publication"
        author: "Its author"
        excerpt: |
          Two to four sentences in your own words: what the piece says, and why it
          matters to your readers. Markdown works: *emphasis*, [links](https://example.com/).
        # image:
        #   src: images/picture.png    # a file in this folder (PNG, JPEG, GIF, WebP), or https://...
        #   alt: "What the picture shows"
outro: |
  Thanks for reading. Reply to this email to tell us what you think.
"#,
        when = crate::units::slot_time(&due),
        date = due.date_naive(),
        subject = super::yaml_quoted(&format!("{name} #1: the first issue")),
        // The name as text, whatever it holds: `<a@b.example>` or `[x](y)` is not a link.
        name_markdown = name
            .chars()
            .flat_map(|c| c
                .is_ascii_punctuation()
                .then_some('\\')
                .into_iter()
                .chain([c]))
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_comes_from_the_folder_unless_given() {
        assert_eq!(
            name_from_folder(Path::new("/tmp/deep-signal")),
            "Deep Signal"
        );
        assert_eq!(name_from_folder(Path::new("/tmp/ai_weekly")), "Ai Weekly");
        assert_eq!(name_from_folder(Path::new("/")), "My Newsletter");
    }

    #[test]
    fn an_issues_file_or_a_settings_folder_is_refused_before_anything_is_written() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join(ISSUES_DIR), "not a folder").unwrap();
        let error = init(root.path(), &InitOptions::default(), Utc::now()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is a file, where letterpress needs a folder"),
            "{error:#}"
        );
        assert!(!root.path().join(NEWSLETTER_FILE).exists());
        assert!(!root.path().join(".gitignore").exists());

        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(NEWSLETTER_FILE)).unwrap();
        let error = init(root.path(), &InitOptions::default(), Utc::now()).unwrap_err();
        assert!(error.to_string().contains("is a folder"), "{error:#}");
        assert!(!root.path().join(ISSUES_DIR).exists());
    }

    #[test]
    fn quoting_keeps_any_line_intact() {
        let text = r#"Deep "Signal" #2: a \ b"#;
        let parsed =
            crate::yaml::parse(&format!("x: {}", crate::scaffold::yaml_quoted(text))).unwrap();
        let crate::yaml::Value::Map(entries) = parsed.value else {
            panic!("not a map")
        };
        assert_eq!(
            entries[0].1.value,
            crate::yaml::Value::Scalar(text.to_string())
        );
    }
}
