//! `subscribers import`: another tool's export into the list and the ledger.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, newsletter};
use crate::list::import::read_export;
use crate::units::grouped;

pub fn run(context: &Context, file: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let newsletter = newsletter(context)?;
    let shown = file.display();
    // Bounded like every file we read: a device or a FIFO named by mistake is refused, not
    // read forever.
    let input = crate::source::open(file, crate::source::FileKind::Export)
        .with_context(|| format!("cannot read `{shown}`"))?;
    let (format, rows) = read_export(input).with_context(|| format!("cannot import `{shown}`"))?;
    let mut ledger = if dry_run {
        // A dry run creates nothing: an empty ledger in memory stands in for a missing one.
        match context.state.open_existing_ledger()? {
            Some(ledger) => ledger,
            None => crate::ledger::Ledger::open(std::path::Path::new(":memory:"))?,
        }
    } else {
        context.state.open_ledger()?
    };
    let report = crate::list::import(
        &context.workspace,
        &newsletter,
        rows,
        &mut ledger,
        dry_run,
        context.clock.now(),
    )?;
    let list = context
        .workspace
        .display(&context.workspace.subscribers_path(&newsletter));
    let would = if dry_run { "would be " } else { "" };
    println!(
        "{shown}: {}, {} rows",
        format.describe(),
        grouped(report.rows)
    );
    println!(
        "  new:           {:>7}  ({would}added to {list})",
        grouped(report.new.len() as u64)
    );
    println!("  already there: {:>7}", grouped(report.already));
    let before = if report.suppressed_before > 0 {
        format!(
            ", {} of them suppressed already",
            grouped(report.suppressed_before)
        )
    } else {
        String::new()
    };
    println!(
        "  suppressed:    {:>7}  (unsubscribed, cleaned or bounced there: {would}recorded in the ledger{before})",
        grouped(report.suppressed)
    );
    if report.kept_out > 0 {
        println!(
            "  kept out:      {:>7}  (active there, suppressed here: not added)",
            grouped(report.kept_out)
        );
    }
    if report.skipped > 0 {
        println!(
            "  left out:      {:>7}  (never confirmed or disabled there)",
            grouped(report.skipped)
        );
    }
    let lines: Vec<String> = report.invalid.iter().map(|line| line.to_string()).collect();
    if lines.is_empty() {
        println!("  invalid:             0");
    } else {
        println!(
            "  invalid:       {:>7}  (lines {})",
            lines.len(),
            lines.join(", ")
        );
    }
    if dry_run {
        println!("Nothing was changed (--dry-run).");
    }
    Ok(ExitCode::SUCCESS)
}
