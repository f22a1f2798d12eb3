//! `letterpress subscribers`: the list as the editor manages it. One file per subcommand;
//! what they compute is in the library (`list`, `delivery::audience`, `ledger`).

mod edit;
mod export;
mod import;
mod list;

use std::process::ExitCode;

use super::Context;
use crate::cli::SubscribersCommand;
use crate::diagnostic::Invalid;
use crate::model::address::EmailAddress;
use crate::model::newsletter::Newsletter;

pub fn run(context: &Context, command: &SubscribersCommand) -> anyhow::Result<ExitCode> {
    match command {
        SubscribersCommand::List { json, status } => list::list(context, *json, *status),
        SubscribersCommand::Show { address } => list::show(context, address),
        SubscribersCommand::Add {
            address,
            name,
            tags,
        } => edit::add(context, address, name.as_deref(), tags),
        SubscribersCommand::Remove { address } => edit::remove(context, address),
        SubscribersCommand::Lift { address } => edit::lift(context, address),
        SubscribersCommand::Import { file, dry_run } => import::run(context, file, *dry_run),
        SubscribersCommand::Export { format } => export::export(context, *format),
        SubscribersCommand::Form => export::form(context),
    }
}

/// The newsletter's settings, required.
fn newsletter(context: &Context) -> anyhow::Result<Newsletter> {
    Ok(super::require(context.workspace.load_newsletter())?)
}

/// An address argument, or a usage error that says what is wrong with it.
fn address(text: &str) -> Result<EmailAddress, Invalid> {
    EmailAddress::parse(text).map_err(|error| Invalid::usage(error.to_string()))
}
