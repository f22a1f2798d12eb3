//! The readers as the editor manages them (`letterpress subscribers`): the file they keep
//! (`subscribers.yaml`) and what the ledger adds to it (web sign-ups, suppressions), seen
//! together; adding to the file without disturbing it; and imports from other tools.

pub mod append;
pub mod csv;
pub mod import;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::ledger::{Ledger, Signup, Source};
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::newsletter::Newsletter;
use crate::model::subscriber::SubscriberStatus;
use crate::workspace::Workspace;

/// Where an address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `subscribers.yaml`.
    File,
    /// A web sign-up.
    Web,
    /// Both: one reader.
    #[serde(rename = "file+web")]
    FileAndWeb,
    /// Only a suppression an import recorded.
    Import,
    /// Only a suppression in the ledger (someone removed from the file, or suppressed
    /// before they were ever on it).
    Ledger,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::File => "file",
            Origin::Web => "web",
            Origin::FileAndWeb => "file+web",
            Origin::Import => "import",
            Origin::Ledger => "ledger",
        }
    }
}

/// Where an address stands, as `subscribers list --status` filters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// Gets every issue.
    Active,
    /// Signed up on the web, not confirmed yet.
    Pending,
    /// Marked `status: unsubscribed` in the file.
    Unsubscribed,
    /// On the ledger's suppression list.
    Suppressed,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Active => "active",
            Standing::Pending => "pending",
            Standing::Unsubscribed => "unsubscribed",
            Standing::Suppressed => "suppressed",
        }
    }
}

/// An address the file or the ledger knows, as `subscribers list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Known {
    pub address: String,
    pub name: Option<String>,
    pub origin: Origin,
    pub standing: Standing,
    /// Since when it stands so, where that is known (the file keeps no dates).
    pub since: Option<DateTime<Utc>>,
    /// For a suppressed address: why (one-click, mailto, bounce, complaint, manual, import).
    pub why: Option<String>,
    /// The reason written with the suppression, if any.
    pub reason: Option<String>,
    /// The file's line, for an address in it.
    pub line: Option<u32>,
}

/// Every address the file and the ledger know: the file's in its order, then web sign-ups,
/// then addresses known only as suppressions. Holds them all; for the editor's commands, not
/// for a send.
pub fn roster(
    workspace: &Workspace,
    newsletter: &Newsletter,
    ledger: Option<&Ledger>,
) -> anyhow::Result<Vec<Known>> {
    let file = workspace.load_subscribers_with_lines(newsletter)?.value;
    let mut known: Vec<Known> = Vec::with_capacity(file.len());
    let mut index: HashMap<AddressKey, usize> = HashMap::with_capacity(file.len());
    for (subscriber, line) in file {
        index.insert(subscriber.email.key(), known.len());
        known.push(Known {
            address: subscriber.email.to_string(),
            name: subscriber.name.map(|name| name.to_string()),
            origin: Origin::File,
            standing: match subscriber.status {
                SubscriberStatus::Active => Standing::Active,
                SubscriberStatus::Unsubscribed => Standing::Unsubscribed,
            },
            since: None,
            why: None,
            reason: None,
            line: Some(line),
        });
    }
    let Some(ledger) = ledger else {
        return Ok(known);
    };
    for signup in ledger.signups()? {
        let at = signup_since(&signup);
        match index.get(&signup.email) {
            Some(&at_index) => {
                let entry = &mut known[at_index];
                entry.origin = Origin::FileAndWeb;
                if entry.standing == Standing::Active && signup.is_confirmed() {
                    entry.since = Some(at);
                }
                if entry.name.is_none() {
                    entry.name = signup.name;
                }
            }
            None => {
                index.insert(signup.email.clone(), known.len());
                known.push(Known {
                    address: signup.address,
                    name: signup.name,
                    origin: Origin::Web,
                    standing: if signup.state == crate::ledger::SignupState::Confirmed {
                        Standing::Active
                    } else {
                        Standing::Pending
                    },
                    since: Some(at),
                    why: None,
                    reason: None,
                    line: None,
                });
            }
        }
    }
    for (key, suppression, reason) in ledger.suppressions()? {
        let at_index = match index.get(&key) {
            Some(&at_index) => at_index,
            None => {
                let origin = if suppression.source == Source::Import {
                    Origin::Import
                } else {
                    Origin::Ledger
                };
                index.insert(key.clone(), known.len());
                known.push(Known {
                    address: key.to_string(),
                    name: None,
                    origin,
                    standing: Standing::Suppressed,
                    since: None,
                    why: None,
                    reason: None,
                    line: None,
                });
                known.len() - 1
            }
        };
        let entry = &mut known[at_index];
        entry.standing = Standing::Suppressed;
        entry.since = Some(suppression.created_at);
        entry.why = Some(suppression.source.as_str().to_string());
        entry.reason = reason;
    }
    Ok(known)
}

fn signup_since(signup: &Signup) -> DateTime<Utc> {
    signup
        .confirmed
        .as_ref()
        .map_or(signup.requested.at, |confirmed| confirmed.at)
}

/// The file's entries that are active but suppressed in the ledger (they get no mail; the
/// editor may want to tidy the file), each with its line: `check` notes them.
pub fn suppressed_entries(
    list: &crate::workspace::SubscriberList,
    ledger: &Ledger,
) -> anyhow::Result<
    Vec<(
        crate::model::subscriber::Place,
        EmailAddress,
        crate::ledger::Suppression,
    )>,
> {
    let exclusions = crate::delivery::audience::Exclusions::read(Some(ledger))?;
    let mut found = Vec::new();
    let mut failure = None;
    list.entries(|entry, _| {
        if let Some(subscriber) = entry.subscriber.as_ref().filter(|s| s.is_active()) {
            let key = subscriber.email.key();
            match exclusions
                .is_suppressed(&key)
                .and_then(|suppressed| match suppressed {
                    true => ledger.suppression(&key),
                    false => Ok(None),
                }) {
                Ok(Some(suppression)) => {
                    found.push((entry.place, subscriber.email.clone(), suppression))
                }
                Ok(None) => {}
                Err(error) => {
                    failure = Some(error);
                    return std::ops::ControlFlow::Break(());
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    Ok(found)
}

/// `check`'s notes on the file's active entries that the ledger suppresses, one a line.
pub fn suppression_notes(
    list: &crate::workspace::SubscriberList,
    ledger: &Ledger,
) -> anyhow::Result<Vec<String>> {
    Ok(suppressed_entries(list, ledger)?
        .into_iter()
        .map(|(place, email, suppression)| {
            format!(
                "{}:{}: note: [{}].email: `{email}` is suppressed ({} since {}): it gets no mail; remove the entry, or `letterpress subscribers lift {email}`",
                list.file,
                place.email,
                place.index,
                suppression.source.as_str(),
                suppression.created_at.format("%Y-%m-%d")
            )
        })
        .collect())
}

/// Where an address is in the file, if it is: its line.
pub fn line_in_file(
    workspace: &Workspace,
    newsletter: &Newsletter,
    key: &AddressKey,
) -> anyhow::Result<Option<u32>> {
    let file = workspace.load_subscribers_with_lines(newsletter)?.value;
    Ok(file
        .into_iter()
        .find(|(subscriber, _)| &subscriber.email.key() == key)
        .map(|(_, line)| line))
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub rows: u64,
    /// Added to the file.
    pub new: Vec<append::NewEntry>,
    /// In the file already (or twice in the export).
    pub already: u64,
    /// Unsubscribed, cleaned or bounced in the export: suppressions recorded now.
    pub suppressed: u64,
    /// Of those, suppressed here already.
    pub suppressed_before: u64,
    /// Active in the export, suppressed here: not added.
    pub kept_out: u64,
    /// Never confirmed or disabled there: left out.
    pub skipped: u64,
    /// Lines whose address is not one.
    pub invalid: Vec<u64>,
}

/// Imports an export: new active readers appended to the file, the export's unsubscribed,
/// cleaned and bounced rows suppressed (source `import`). Running it again changes nothing.
pub fn import(
    workspace: &Workspace,
    newsletter: &Newsletter,
    rows: Vec<import::Row>,
    ledger: &mut Ledger,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    let file = workspace.load_subscribers_with_lines(newsletter)?.value;
    let mut in_file: HashSet<AddressKey> = file.iter().map(|(s, _)| s.email.key()).collect();
    drop(file);
    let mut report = ImportReport::default();
    for row in rows {
        report.rows += 1;
        let Ok(email) = row.address else {
            report.invalid.push(row.line);
            continue;
        };
        let key = email.key();
        match row.status {
            import::RowStatus::Active => {
                if in_file.contains(&key) {
                    report.already += 1;
                } else if ledger.suppression(&key)?.is_some() {
                    report.kept_out += 1;
                } else {
                    in_file.insert(key);
                    report.new.push(append::NewEntry {
                        email,
                        name: row.name,
                        tags: Vec::new(),
                    });
                }
            }
            import::RowStatus::Suppress(reason) => {
                report.suppressed += 1;
                let before = if dry_run {
                    ledger.suppression(&key)?.is_some()
                } else {
                    !ledger.suppress(&key, &Source::Import, Some(&reason), now)?
                };
                report.suppressed_before += u64::from(before);
            }
            import::RowStatus::Skip => report.skipped += 1,
        }
    }
    if !dry_run && !report.new.is_empty() {
        let path = workspace.subscribers_path(newsletter);
        append::append_entries(&path, &workspace.display(&path), &report.new)?;
    }
    Ok(report)
}
