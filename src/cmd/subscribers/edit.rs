//! `subscribers add`, `remove` and `lift`.

use std::process::ExitCode;

use super::{Context, address, newsletter};
use crate::diagnostic::Invalid;
use crate::ledger::Source;
use crate::list::append::{NewEntry, append_entries};
use crate::model::text::OneLine;

pub fn add(
    context: &Context,
    text: &str,
    name: Option<&str>,
    tags: &[String],
) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let email = address(text)?;
    let one_line = |what: &str, text: &str| {
        OneLine::parse(text).map_err(|error| Invalid::usage(format!("{what} {error}")))
    };
    let entry = NewEntry {
        name: name.map(|name| one_line("--name", name)).transpose()?,
        tags: tags
            .iter()
            .map(|tag| one_line("--tag", tag))
            .collect::<Result<_, _>>()?,
        email,
    };
    let workspace = &context.workspace;
    let path = workspace.subscribers_path(&newsletter);
    let file = workspace.display(&path);
    if let Some(line) = crate::list::line_in_file(workspace, &newsletter, &entry.email.key())? {
        return Err(Invalid::usage(format!(
            "`{}` is already in {file} on line {line}; addresses are compared without case",
            entry.email
        ))
        .into());
    }
    append_entries(&path, &file, std::slice::from_ref(&entry))?;
    println!("Added {} to {file}.", entry.email);
    if let Some(ledger) = context.state.open_existing_ledger()?
        && let Some(suppression) = ledger.suppression(&entry.email.key())?
    {
        println!(
            "note: it is suppressed ({}), so it gets no mail until `letterpress subscribers lift {}`.",
            suppression.source.as_str(),
            entry.email
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(context: &Context, text: &str) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let email = address(text)?;
    let key = email.key();
    let mut ledger = context.state.open_ledger()?;
    let now = context.clock.now();
    let known = crate::list::line_in_file(&context.workspace, &newsletter, &key)?.is_some()
        || ledger.signup(&key)?.is_some()
        || !ledger.deliveries_of(&key)?.is_empty();
    match ledger.suppression(&key)? {
        Some(suppression) if !suppression.is_own() => {
            println!(
                "{email} is suppressed already ({}, since {}): it gets no mail.",
                suppression.source.as_str(),
                suppression.created_at.format("%Y-%m-%d %H:%M UTC")
            );
            return Ok(ExitCode::SUCCESS);
        }
        // Their own unsubscribe they could undo with the form; the editor's they cannot.
        Some(_) => {
            ledger.lift(&key, "replaced by the editor's suppression", now)?;
        }
        None => {}
    }
    ledger.suppress(
        &key,
        &Source::Manual,
        Some("removed with `letterpress subscribers remove`"),
        now,
    )?;
    println!(
        "Suppressed {email} (manual): it gets no mail from now on, and the sign-up form never adds it back. `letterpress subscribers lift {email}` undoes it."
    );
    if !known {
        println!(
            "note: {email} is not on the list, not signed up and never mailed: it is suppressed all the same."
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lift(context: &Context, text: &str) -> anyhow::Result<ExitCode> {
    let email = address(text)?;
    let mut ledger = context.state.open_ledger()?;
    let lifted = ledger.lift(
        &email.key(),
        "lifted with `letterpress subscribers lift`",
        context.clock.now(),
    )?;
    match lifted {
        Some(suppression) => println!(
            "Lifted the suppression of {email} ({}, since {}): it gets mail again if it is on the list or signed up.",
            suppression.source.as_str(),
            suppression.created_at.format("%Y-%m-%d %H:%M UTC")
        ),
        None => println!("{email} is not suppressed: nothing to lift."),
    }
    Ok(ExitCode::SUCCESS)
}
