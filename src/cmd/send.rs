//! `letterpress send`: the real thing, to every active subscriber, resumable.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Context, print};
use crate::delivery::engine::{Stop, Tally};
use crate::delivery::transport::{Destination, Transport};
use crate::delivery::{PreparedSend, Report, SendOptions, dry_run};
use crate::model::issue::Readiness;
use crate::signals::{Announce, INTERRUPTED, Signals};
use crate::units::{grouped, human_size, plural, printable};

pub struct SendArgs<'a> {
    pub issue: &'a str,
    pub yes: bool,
    pub dry_run: bool,
    /// With `dry_run`: print each address that would get the issue.
    pub list: bool,
    pub resend_uncertain: bool,
    pub retry_failed: bool,
}

pub fn run(context: &Context, args: SendArgs) -> anyhow::Result<ExitCode> {
    let edition = context.load_edition(args.issue)?;
    let issue_id = edition.issue.id.clone();
    let draft = edition.issue.status != Readiness::Ready;
    if args.dry_run {
        let secret = context
            .state
            .secret_or_ephemeral(context.settings.secret.as_ref())?;
        let ledger = context.state.open_existing_ledger()?;
        let date = context.clock.now().to_rfc2822();
        let mut out = std::io::stdout().lock();
        let mut list_error = None;
        let measured = dry_run(&edition, ledger.as_ref(), &secret, &date, &mut |reader| {
            if args.list && list_error.is_none() {
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
        let mut notes: Box<dyn Write> = if args.list {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        print_dry_run(&mut notes, issue_id.as_str(), &measured)?;
        if draft {
            writeln!(
                notes,
                "{} is a draft: `send` refuses it until its status is `ready`.",
                edition.issue_file
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if draft {
        eprintln!(
            "error: {} is a draft; set `status: ready` in it when it may go out (`letterpress test` sends a draft to yourself; `--dry-run` shows who would get it)",
            edition.issue_file
        );
        return Ok(ExitCode::from(2));
    }

    let destination = Destination::from_settings(&context.settings)?;
    let secret = context.secret()?;
    let transport = Transport::open(
        &destination,
        &context.state,
        &edition.newsletter,
        issue_id.as_str(),
    )?;
    let options = SendOptions {
        resend_uncertain: args.resend_uncertain,
        retry_failed: args.retry_failed,
        via: transport.via(),
    };
    let now = context.clock.now();
    let prepared = PreparedSend::prepare(&context.state, &edition, secret, options, now)?;
    for (count, what) in [
        (
            prepared.requeued,
            "uncertain recipient(s) from an interrupted send will be sent again (--resend-uncertain)",
        ),
        (
            prepared.retried,
            "recipient(s) the relay refused will be tried again (--retry-failed)",
        ),
        (
            prepared.from_outbox,
            "recipient(s) whose message only went to the outbox will get it through the relay",
        ),
    ] {
        if count > 0 {
            eprintln!("{count} {what}.");
        }
    }
    if prepared.uncertain > 0 {
        eprintln!(
            "{} recipient(s) were in flight when an earlier send of {issue_id} was interrupted: they may already have the issue, so they are not sent again (`letterpress status {issue_id}` lists them; --resend-uncertain sends to them anyway).",
            prepared.uncertain
        );
    }
    let count = prepared.jobs.len();
    if count == 0 {
        println!(
            "Nothing to send: every active subscriber already has {issue_id} (or it failed for good)."
        );
        let report = Report::read(&context.state, &prepared.ledger, &issue_id)?;
        print::report(&report);
        return Ok(super::exit_status(report.is_complete()));
    }
    let subject = edition.issue.subject.as_str();
    if !args.yes && !confirm(subject, count, &transport.describe())? {
        println!("Not sent.");
        return Ok(ExitCode::from(1));
    }
    if let Transport::Outbox(outbox) = &transport {
        eprintln!(
            "No {} set: writing the messages to {} instead of sending them.",
            crate::config::SMTP_URL_ENV,
            outbox.display_dir()
        );
    }
    println!(
        "Sending \"{subject}\" ({issue_id}) to {} subscriber{} via {}",
        grouped(count as u64),
        plural(count as u64),
        transport.describe()
    );
    if let Some(signing) = transport.signing() {
        println!("Signing with {signing}");
    }

    let started = Instant::now();
    let (summary, ledger) = super::runtime()?.block_on(async {
        let signals = Signals::listen(Announce {
            stopping: Box::new(|| eprintln!("\nStopping: finishing the messages in flight and recording them (signal again to abort at once)")),
            aborting: Box::new(|| eprintln!("Aborted: messages in flight are left uncertain; `letterpress status` lists them.")),
        });
        let transport = Arc::new(transport);
        let progress = print::ProgressReporter::new(count as u64);
        let result = prepared
            .run(&edition, transport.clone(), context.clock.clone(), signals.stop, &progress)
            .await;
        progress.finish();
        transport.shutdown().await;
        result
    })?;
    let report = Report::read(&context.state, &ledger, &issue_id)?;
    summarise(&summary.tally, started.elapsed());
    print::report(&report);
    match summary.stopped {
        Some(Stop::Interrupted) => {
            println!(
                "Stopped before the end. Run `letterpress send {issue_id}` again to send to the rest: nobody gets it twice."
            );
            Ok(ExitCode::from(INTERRUPTED))
        }
        Some(Stop::RelayUnreachable(reply)) => {
            eprintln!(
                "error: stopped: every recent attempt failed ({}); the relay looks down or is refusing mail. Nothing was lost: run `letterpress send {issue_id}` again later.",
                printable(&reply)
            );
            Ok(ExitCode::from(1))
        }
        Some(Stop::Fatal(reason)) => {
            eprintln!(
                "error: stopped: {}. Nobody was failed: fix it and run `letterpress send {issue_id}` again.",
                printable(&reason)
            );
            Ok(ExitCode::from(1))
        }
        Some(Stop::Refused(reply)) => {
            eprintln!(
                "error: stopped: the relay refused the message itself for many readers in a row ({}): it refuses this issue, not them. They were put back in the queue; change what it objects to and run `letterpress send {issue_id}` again.",
                printable(&reply)
            );
            Ok(ExitCode::from(1))
        }
        None => Ok(super::exit_status(report.is_complete())),
    }
}

fn summarise(tally: &Tally, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let mut skipped = String::new();
    if tally.skipped > 0 {
        skipped.push_str(&format!(
            ", {} unsubscribed during the send",
            grouped(tally.skipped)
        ));
    }
    if tally.uncertain > 0 {
        skipped.push_str(&format!(", {} uncertain", grouped(tally.uncertain)));
    }
    println!(
        "This run: {} sent, {} failed, {} deferred, {} retries{skipped}, {} in {:.1}s ({:.0} messages/s)",
        grouped(tally.sent),
        grouped(tally.failed),
        grouped(tally.deferred),
        grouped(tally.retries),
        human_size(tally.bytes as usize),
        seconds,
        tally.sent as f64 / seconds.max(0.001)
    );
    println!("The issue now:");
}

fn confirm(subject: &str, count: usize, via: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to send without confirmation: stdin is not a terminal; pass --yes to send"
        );
    }
    print!(
        "Send \"{subject}\" to {} subscriber{} via {via}? [y/N] ",
        grouped(count as u64),
        plural(count as u64)
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn print_dry_run(
    out: &mut dyn Write,
    issue: &str,
    measured: &crate::delivery::DryRun,
) -> std::io::Result<()> {
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
