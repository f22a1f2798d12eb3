//! `send --dry-run`: every message built, none sent, and (with `--list`) who would get one.

use std::io::Write;
use std::process::ExitCode;

use super::super::Context;
use crate::delivery::{DryRun, dry_run};
use crate::edition::Edition;
use crate::units::{grouped, human_size, plural, printable};

pub fn run(
    context: &Context,
    edition: &Edition,
    list: bool,
    draft: bool,
) -> anyhow::Result<ExitCode> {
    let secret = context
        .state
        .secret_or_ephemeral(context.settings.secret.as_ref())?;
    let ledger = context.state.open_existing_ledger()?;
    let date = context.clock.now().to_rfc2822();
    let mut out = std::io::stdout().lock();
    let mut list_error = None;
    let measured = dry_run(edition, ledger.as_ref(), &secret, &date, &mut |reader| {
        if list && list_error.is_none() {
            // Always two fields, so `cut -f2` and spreadsheets line up.
            let name = reader.name.as_deref().map(printable).unwrap_or_default();
            let line = format!("{}\t{name}", reader.email);
            if let Err(error) = writeln!(out, "{line}") {
                list_error = Some(error);
            }
        }
    })?;
    drop(out);
    if let Some(error) = list_error {
        return Err(anyhow::Error::new(error).context("cannot print the list"));
    }
    // With --list, stdout holds the list alone, for scripts; what is said about it
    // goes to stderr.
    let mut notes: Box<dyn Write> = if list {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    print_dry_run(&mut notes, edition.issue.id.as_str(), &measured)?;
    if draft {
        writeln!(
            notes,
            "{} is a draft: `send` refuses it until its status is `ready`.",
            edition.issue_file
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_dry_run(out: &mut dyn Write, issue: &str, measured: &DryRun) -> std::io::Result<()> {
    let count = measured.messages;
    let seconds = measured.elapsed.as_secs_f64();
    writeln!(
        out,
        "Dry run of {issue}: {} message{} built in {:.1} ms ({:.0} per second), {} in all, {} on average, {} the largest",
        grouped(count),
        plural(count),
        seconds * 1000.0,
        count as f64 / seconds.max(1e-9),
        human_size(measured.bytes as usize),
        human_size(measured.bytes.checked_div(count).unwrap_or(0) as usize),
        human_size(measured.largest)
    )?;
    if measured.already_done > 0 {
        writeln!(
            out,
            "{} subscriber{} already done (sent, failed or uncertain) would be skipped.",
            grouped(measured.already_done),
            plural(measured.already_done)
        )?;
    }
    writeln!(out, "Nothing was sent and the ledger was not touched.")
}
