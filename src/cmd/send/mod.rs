//! `letterpress send`: the real thing, to every active subscriber, resumable.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use super::{Context, print};

mod dry_run;
mod summary;
use crate::delivery::engine::Stop;
use crate::delivery::transport::{Destination, Transport};
use crate::delivery::{PreparedSend, Report, SendOptions};
use crate::model::issue::Readiness;
use crate::signals::{Announce, INTERRUPTED, Signals};
use crate::units::{grouped, plural, printable};

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
        return dry_run::run(context, &edition, args.list, draft);
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
            "{} recipient(s) were left uncertain by an earlier send of {issue_id} (it was interrupted, or the relay never answered their message): they may already have the issue, so they are not sent again (`letterpress status {issue_id}` lists them; --resend-uncertain sends to them anyway).",
            prepared.uncertain
        );
    }
    let count = prepared.jobs.len();
    if count == 0 {
        println!(
            "Nothing to send: every active subscriber already has {issue_id}, may have it (uncertain), or failed for good."
        );
        let report = Report::after_own_send(&prepared.ledger, &issue_id)?;
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
    let report = Report::after_own_send(&ledger, &issue_id)?;
    summary::print(&summary.tally, started.elapsed());
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
