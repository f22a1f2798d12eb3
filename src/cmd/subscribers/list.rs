//! `subscribers list` and `subscribers show`.

use std::process::ExitCode;

use super::{Context, address, newsletter};
use crate::list::{Known, Standing, roster};
use crate::units::printable;

pub fn list(context: &Context, json: bool, status: Option<Standing>) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let ledger = context.state.open_existing_ledger()?;
    let known: Vec<Known> = roster(&context.workspace, &newsletter, ledger.as_ref())?
        .into_iter()
        .filter(|known| status.is_none_or(|status| known.standing == status))
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&known)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = known
        .iter()
        .map(|known| known.address.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:width$}  SOURCE    STATE         SINCE             WHY",
        "ADDRESS"
    );
    for known in &known {
        let since = known
            .since
            .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into());
        let why = match (&known.why, &known.reason) {
            (Some(why), Some(reason)) => format!("{why} ({})", printable(reason)),
            (Some(why), None) => why.clone(),
            _ => String::new(),
        };
        let line = format!(
            "{:width$}  {:8}  {:12}  {:16}  {why}",
            known.address,
            known.origin.as_str(),
            known.standing.as_str(),
            since
        );
        println!("{}", line.trim_end());
    }
    let count = |standing| known.iter().filter(|k| k.standing == standing).count();
    println!(
        "{} addresses: {} active, {} pending, {} unsubscribed, {} suppressed",
        known.len(),
        count(Standing::Active),
        count(Standing::Pending),
        count(Standing::Unsubscribed),
        count(Standing::Suppressed)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn show(context: &Context, text: &str) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let key = address(text)?.key();
    let ledger = context.state.open_existing_ledger()?;
    let known = roster(&context.workspace, &newsletter, ledger.as_ref())?
        .into_iter()
        .find(|known| {
            crate::model::address::AddressKey::of(&known.address).is_ok_and(|k| k == key)
        });
    let Some(known) = known else {
        println!("{text} is not known: not in the list, not signed up, never suppressed.");
        return Ok(ExitCode::from(1));
    };
    let time = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    println!("{}", known.address);
    if let Some(name) = &known.name {
        println!("  name:     {name}");
    }
    let line = known
        .line
        .map(|line| format!(" (line {line})"))
        .unwrap_or_default();
    println!("  source:   {}{line}", known.origin.as_str());
    let since = known
        .since
        .map(|at| format!(" since {}", time(at)))
        .unwrap_or_default();
    let why = known
        .why
        .as_ref()
        .map(|why| format!(", {why}"))
        .unwrap_or_default();
    println!("  state:    {}{why}{since}", known.standing.as_str());
    let Some(ledger) = ledger else {
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(signup) = ledger.signup(&key)? {
        let step = |label: &str, consent: &crate::ledger::Consent| {
            println!(
                "  {label} {} from {}, user agent {}",
                time(consent.at),
                consent.ip.as_deref().unwrap_or("(not recorded)"),
                consent
                    .agent
                    .as_deref()
                    .map(printable)
                    .unwrap_or_else(|| "(not recorded)".into())
            );
        };
        println!("  consent (web sign-up, double opt-in):");
        step("  asked:    ", &signup.requested);
        match &signup.confirmed {
            Some(confirmed) => step("  confirmed:", confirmed),
            None => println!("    confirmed: not yet"),
        }
    }
    let issues = ledger.deliveries_of(&key)?;
    if issues.is_empty() {
        println!("  issues:   none yet");
    } else {
        println!("  issues:");
        for delivered in issues {
            let mut state = delivered.state.as_str().to_string();
            if delivered.via == Some(crate::ledger::Via::Outbox) {
                state.push_str(" (to the outbox only)");
            }
            let at = delivered
                .sent_at
                .map(|at| format!(" {}", time(at)))
                .unwrap_or_default();
            let reply = delivered
                .last_reply
                .filter(|_| delivered.state != crate::ledger::State::Sent)
                .map(|reply| format!(": {}", printable(&reply)))
                .unwrap_or_default();
            println!("    {}  {state}{at}{reply}", delivered.issue);
        }
    }
    let history = ledger.suppression_history(&key)?;
    if !history.is_empty() {
        println!("  suppressions:");
        for entry in history {
            let reason = entry
                .reason
                .map(|reason| format!(" ({})", printable(&reason)))
                .unwrap_or_default();
            println!(
                "    {}  {}  {}{reason}",
                time(entry.at),
                if entry.lifted {
                    "lifted    "
                } else {
                    "suppressed"
                },
                entry.source.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
