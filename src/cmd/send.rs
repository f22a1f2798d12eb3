//! `letterpress send`: the real thing, to every active subscriber, resumable.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::delivery::PreparedSend;
use crate::delivery::engine::{Progress, Stop, Tally};
use crate::delivery::transport::Transport;
use crate::ledger::State;
use crate::message::{Kind, Recipient};
use crate::model::issue::IssueStatus as Readiness;

use super::status::IssueStatus;
use super::{Context, grouped, human_size};
use crate::edition::Edition;

pub struct SendArgs<'a> {
    pub issue: &'a str,
    pub yes: bool,
    pub dry_run: bool,
    pub resend_uncertain: bool,
}

/// Exit status of a send stopped by a signal, as shells report one (128 + SIGINT).
const INTERRUPTED: u8 = 130;

pub fn run(context: &Context, args: SendArgs) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let edition = super::load_edition(workspace, args.issue)?;
    let issue_id = edition.issue.id.as_str().to_string();
    if edition.issue.status != Readiness::Ready {
        eprintln!(
            "error: {} is a draft; set `status: ready` in it when it may go out (`letterpress test` sends a draft to yourself)",
            edition.issue_file
        );
        return Ok(ExitCode::from(2));
    }
    if args.dry_run {
        return dry_run(context, &edition);
    }

    let prepared = PreparedSend::prepare(
        workspace,
        &edition,
        args.resend_uncertain,
        context.clock.now(),
    )?;
    if prepared.requeued > 0 {
        eprintln!(
            "{} uncertain recipient(s) from an interrupted send will be sent again (--resend-uncertain).",
            prepared.requeued
        );
    }
    if prepared.uncertain > 0 {
        eprintln!(
            "{} recipient(s) were in flight when an earlier send of {issue_id} was interrupted: they may already have the issue, so they are not sent again (`letterpress status {issue_id}` lists them; --resend-uncertain sends to them anyway).",
            prepared.uncertain
        );
    }
    let transport = Transport::from_env(workspace, &edition.newsletter.delivery, &issue_id)?;
    let count = prepared.jobs.len();
    if count == 0 {
        println!(
            "Nothing to send: every active subscriber already has {issue_id} (or it failed for good)."
        );
        let status = IssueStatus::read(workspace, &prepared.ledger, &issue_id)?;
        status.print();
        return Ok(super::exit_status(status.is_complete()));
    }
    if !args.yes && !confirm(&edition, count, &transport.describe())? {
        println!("Not sent.");
        return Ok(ExitCode::from(1));
    }
    if let Transport::Outbox(outbox) = &transport {
        eprintln!(
            "No {} set: writing the messages to {} instead of sending them.",
            crate::delivery::smtp_url::SMTP_URL_ENV,
            workspace.display(outbox.dir())
        );
    }
    println!(
        "Sending \"{}\" ({issue_id}) to {} subscriber{} via {}",
        edition.issue.subject,
        grouped(count as u64),
        if count == 1 { "" } else { "s" },
        transport.describe()
    );

    let started = Instant::now();
    let runtime = super::runtime()?;
    let (report, ledger) = runtime.block_on(async {
        let (stop_sender, stop) = watch::channel(false);
        tokio::spawn(watch_signals(stop_sender));
        let transport = Arc::new(transport);
        let progress = Reporter::new(count as u64);
        let result = prepared
            .run(
                &edition,
                transport.clone(),
                context.clock.clone(),
                stop,
                &progress,
            )
            .await;
        progress.finish();
        transport.shutdown().await;
        result
    })?;
    let elapsed = started.elapsed();

    let status = IssueStatus::read(workspace, &ledger, &issue_id)?;
    summarise(&report.tally, elapsed);
    status.print();
    match report.stopped {
        Some(Stop::Interrupted) => {
            println!(
                "Stopped before the end. Run `letterpress send {issue_id}` again to send to the rest: nobody gets it twice."
            );
            Ok(ExitCode::from(INTERRUPTED))
        }
        Some(Stop::RelayUnreachable(reply)) => {
            eprintln!(
                "error: stopped: every recent attempt failed ({reply}); the relay looks down or is refusing mail. Nothing was lost: run `letterpress send {issue_id}` again later."
            );
            Ok(ExitCode::from(1))
        }
        Some(Stop::Fatal(reason)) => {
            eprintln!(
                "error: stopped: {reason}. Nothing was lost: fix it and run `letterpress send {issue_id}` again."
            );
            Ok(ExitCode::from(1))
        }
        None => Ok(super::exit_status(status.is_complete())),
    }
}

fn summarise(tally: &Tally, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let skipped = if tally.skipped > 0 {
        format!(", {} unsubscribed during the send", grouped(tally.skipped))
    } else {
        String::new()
    };
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

fn confirm(edition: &Edition, count: usize, via: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to send without confirmation: stdin is not a terminal; pass --yes to send"
        );
    }
    print!(
        "Send \"{}\" to {} subscriber{} via {via}? [y/N] ",
        edition.issue.subject,
        grouped(count as u64),
        if count == 1 { "" } else { "s" }
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn dry_run(context: &Context, edition: &Edition) -> anyhow::Result<ExitCode> {
    let workspace = &context.workspace;
    let secret = &workspace.secret_or_ephemeral()?;
    let template = &edition.message_template(Kind::Issue)?;
    let issue_id = edition.issue.id.as_str();
    // Read-only: a dry run never creates or changes the ledger.
    let ledger_path = workspace.state_dir().join(crate::ledger::LEDGER_FILE);
    let (suppressed, done): (HashSet<String>, HashSet<String>) = if ledger_path.exists() {
        let ledger = workspace.open_ledger()?;
        let done = [State::Sent, State::Failed, State::Sending]
            .into_iter()
            .map(|state| ledger.rows_in(issue_id, state))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .map(|row| row.email)
            .collect();
        (ledger.suppressed()?, done)
    } else {
        Default::default()
    };
    let date = context.clock.now().to_rfc2822();
    let started = Instant::now();
    let (mut count, mut bytes, mut largest, mut already) = (0u64, 0u64, 0usize, 0u64);
    let mut message = Vec::new();
    for subscriber in &edition.subscribers {
        let key = subscriber.email.key();
        if !subscriber.is_active() || suppressed.contains(&key) {
            continue;
        }
        if done.contains(&key) {
            already += 1;
            continue;
        }
        message.clear();
        template.write(
            Recipient {
                email: &subscriber.email,
                name: subscriber.name.as_ref().map(|name| name.as_str()),
            },
            secret,
            &date,
            &mut message,
        );
        count += 1;
        bytes += message.len() as u64;
        largest = largest.max(message.len());
    }
    let elapsed = started.elapsed();
    println!(
        "Dry run of {issue_id}: {} message{} built in {:.1} ms ({:.0} per second), {} in all, {} on average, {} the largest",
        grouped(count),
        if count == 1 { "" } else { "s" },
        elapsed.as_secs_f64() * 1000.0,
        count as f64 / elapsed.as_secs_f64().max(1e-9),
        human_size(bytes as usize),
        human_size(bytes.checked_div(count).unwrap_or(0) as usize),
        human_size(largest)
    );
    if already > 0 {
        println!(
            "{} subscriber{} already done (sent, failed or uncertain) would be skipped.",
            grouped(already),
            if already == 1 { "" } else { "s" }
        );
    }
    println!("Nothing was sent and the ledger was not touched.");
    Ok(ExitCode::SUCCESS)
}

/// First Ctrl-C or SIGTERM: stop taking recipients and finish what is in flight. Second:
/// leave at once (what was in flight is then uncertain, and reported so).
async fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!(
        "\nStopping: finishing the messages in flight and recording them (signal again to abort at once)"
    );
    let _ = stop.send(true);
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    eprintln!("Aborted: messages in flight are left uncertain; `letterpress status` lists them.");
    std::process::exit(i32::from(INTERRUPTED));
}

/// A progress bar with rate and ETA on a terminal; a line every few seconds otherwise (logs).
struct Reporter {
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
    total: u64,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Reporter {
    fn new(total: u64) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:32.cyan/blue} {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .expect("a valid progress template"),
            );
            bar
        });
        Reporter {
            bar,
            last_line: Mutex::new(Instant::now()),
            total,
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn update(&self, tally: &Tally) {
        if let Some(bar) = &self.bar {
            bar.set_position(tally.done());
            bar.set_message(format!(
                "failed {} retrying {}",
                tally.failed, tally.retries
            ));
            return;
        }
        let mut last = self
            .last_line
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.elapsed() >= LINE_EVERY {
            *last = Instant::now();
            eprintln!(
                "progress: {}/{} done ({} sent, {} failed, {} retries)",
                grouped(tally.done()),
                grouped(self.total),
                grouped(tally.sent),
                grouped(tally.failed),
                grouped(tally.retries)
            );
        }
    }
}
