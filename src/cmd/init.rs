//! `letterpress init`: a new workspace, and what to run next.

use std::path::Path;
use std::process::ExitCode;

use super::Context;
use crate::scaffold::init::{self, InitOptions, Outcome};

pub fn run(
    context: &Context,
    dir: Option<&Path>,
    options: &InitOptions,
) -> anyhow::Result<ExitCode> {
    let root = match dir {
        Some(dir) => context.workspace.path(dir),
        None => context.workspace.root().to_path_buf(),
    };
    let done = init::init(&root, options, context.clock.now())?;
    let shown = dir.map_or_else(
        || "this folder".to_string(),
        |dir| format!("{}/", dir.display()),
    );
    let created = done
        .files
        .iter()
        .any(|(_, outcome, _)| *outcome != Outcome::Kept);
    println!(
        "{} {} in {shown}:",
        if created { "Set up" } else { "Nothing to do:" },
        done.newsletter.name
    );
    for (file, outcome, purpose) in &done.files {
        let what = match outcome {
            Outcome::Created => purpose.clone(),
            Outcome::Kept => "already there, kept as it was".to_string(),
            Outcome::Extended(lines) => format!("added {}", lines.join(", ")),
        };
        println!("  {:<26} {what}", file.display());
    }
    let slot = &done.newsletter.schedule;
    println!(
        "Issues go out on {}s at {} ({}); newsletter.yaml says how to change it.",
        crate::units::weekday_name(slot.day),
        slot.time.format("%H:%M"),
        slot.timezone.name()
    );
    if !done.placeholders.is_empty() {
        println!(
            "Before the first real send, put your own {} in newsletter.yaml.",
            done.placeholders
                .iter()
                .map(|field| format!("`{field}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        );
    }
    println!("\nNext:");
    if let Some(dir) = dir.filter(|dir| *dir != Path::new(".")) {
        println!("  cd {}", dir.display());
    }
    println!("  letterpress preview        the first issue as readers will see it, while you edit");
    println!("  letterpress check          every problem, as file:line:col: field: message");
    let issue = done
        .draft
        .as_ref()
        .map_or("ISSUE", |(date, _)| date.as_str());
    println!("  letterpress send {issue} --dry-run --list   who would get it (nothing is sent)");
    Ok(ExitCode::SUCCESS)
}
