//! `letterpress bounces ingest|fetch`: bounce and complaint reports from files, standard input
//! or the IMAP mailbox, into the ledger, a line per report.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{Context, require};
use crate::bounce::imap::{self, Mailbox};
use crate::bounce::imap_url::{BOUNCE_IMAP_URL_ENV, PROCESSED_FOLDER};
use crate::bounce::source::{self, RawMessage, SourceError};
use crate::cli::BouncesCommand;
use crate::delivery::bounces::{Ingest, Ingested, Tally};
use crate::delivery::smtp::TlsSettings;
use crate::diagnostic::Invalid;
use crate::units::printable;

pub fn run(context: &Context, command: &BouncesCommand) -> anyhow::Result<ExitCode> {
    match command {
        BouncesCommand::Ingest { paths } => ingest(context, paths),
        BouncesCommand::Fetch => fetch(context),
    }
}

fn ingest(context: &Context, paths: &[String]) -> anyhow::Result<ExitCode> {
    let newsletter = require(context.workspace.load_newsletter())?;
    let mut ledger = context.state.open_ledger()?;
    let mut ingest = Ingest::new(
        &mut ledger,
        newsletter.bounce_address.as_ref(),
        newsletter.bounces,
        context.clock.now(),
    );
    let mut tally = Tally::default();
    let mut unreadable = 0;
    let stdin = ["-".to_string()];
    let paths = if paths.is_empty() { &stdin[..] } else { paths };
    for path in paths {
        let messages: Box<dyn Iterator<Item = Result<RawMessage, SourceError>>> = if path == "-" {
            Box::new(std::iter::once(source::stdin_message()))
        } else {
            match source::messages(Path::new(path)) {
                Ok(messages) => Box::new(messages),
                Err(error) => Box::new(std::iter::once(Err(error))),
            }
        };
        for message in messages {
            match message {
                Ok(message) => {
                    let ingested = ingest.message(&message)?;
                    print_message(&ingested);
                    tally.add(&ingested);
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    unreadable += 1;
                }
            }
        }
    }
    println!("{tally}");
    Ok(super::exit_status(unreadable == 0))
}

fn fetch(context: &Context) -> anyhow::Result<ExitCode> {
    let newsletter = require(context.workspace.load_newsletter())?;
    let url = match context.settings.bounce_imap() {
        Ok(Some(url)) => url.clone(),
        Ok(None) => {
            return Err(Invalid::usage(format!(
                "no bounce mailbox: set {BOUNCE_IMAP_URL_ENV} (for example imaps://bounces:password@imap.example.com/INBOX)"
            ))
            .into());
        }
        Err(error) => return Err(Invalid::usage(error.to_string()).into()),
    };
    let tls = TlsSettings::load(context.settings.smtp_ca.as_deref()).map_err(anyhow::Error::msg)?;
    let timeout = Duration::from_secs(u64::from(newsletter.delivery.timeout_seconds));
    let mut ledger = context.state.open_ledger()?;
    let mut ingest = Ingest::new(
        &mut ledger,
        newsletter.bounce_address.as_ref(),
        newsletter.bounces,
        context.clock.now(),
    );
    let mut tally = Tally::default();
    println!("Reading {url}");
    let summary = super::runtime()?.block_on(async {
        let mut mailbox = Mailbox::open(&url, &tls, timeout).await?;
        let summary = imap::process(&mut mailbox, |message| {
            let ingested = ingest.message(message)?;
            print_message(&ingested);
            tally.add(&ingested);
            Ok::<_, anyhow::Error>(ingested.disposition())
        })
        .await;
        mailbox.logout().await;
        summary
    })?;
    println!("{tally}");
    println!(
        "{} message{} {} to {PROCESSED_FOLDER}; {} left in {} as they were",
        summary.processed,
        if summary.processed == 1 { "" } else { "s" },
        summary.method,
        summary.left + summary.too_large.len(),
        url.mailbox
    );
    for uid in &summary.too_large {
        eprintln!(
            "warning: message UID {uid} is larger than any bounce ({} MiB) and was left unread",
            crate::bounce::MAX_MESSAGE_BYTES / 1024 / 1024
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `bounces.mbox, message 2: hard bounce (5.1.1) for ada@example.org of 2021-08-23 (by its
/// VERP tag): suppressed`, a line per report in the message.
fn print_message(ingested: &Ingested) {
    for finding in &ingested.findings {
        println!(
            "{}: {}",
            printable(&ingested.source),
            printable(&finding.to_string())
        );
    }
}
