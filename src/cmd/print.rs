//! Printing that several commands share: an issue's delivery report, a DKIM key's DNS record.

use crate::delivery::Report;
use crate::delivery::report::Problem;
use crate::message::dkim::DnsRecord;
use crate::units::{grouped, printable};

/// How many of each problem are listed before "... and N more".
const SHOWN: usize = 20;

/// One line of counts, then who failed, who is deferred and who is uncertain.
pub fn report(report: &Report) {
    let mut line = format!(
        "sent {}, failed {}, deferred {}, uncertain {}",
        grouped(report.sent),
        grouped(report.failed),
        grouped(report.deferred),
        grouped(report.uncertain)
    );
    for (label, count) in [
        ("pending", report.pending),
        ("in flight", report.sending),
        ("skipped", report.skipped),
    ] {
        if count > 0 {
            line.push_str(&format!(", {label} {}", grouped(count)));
        }
    }
    if report.outbox > 0 {
        line.push_str(&format!(
            "; {} in the outbox (delivered to no one)",
            grouped(report.outbox)
        ));
    }
    println!("{line}");
    if report.hard_bounces + report.soft_bounces + report.complaints > 0 {
        println!(
            "bounces: {} hard, {} soft ({:.1}%); complaints: {} ({:.2}%)",
            grouped(report.hard_bounces),
            grouped(report.soft_bounces),
            report.bounce_rate,
            grouped(report.complaints),
            report.complaint_rate
        );
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    problems("failed (not retried)", &report.failures);
    if !report.failures.is_empty() {
        println!(
            "(`letterpress send {} --retry-failed` tries the failed ones again, once whatever refused them is fixed)",
            report.issue
        );
    }
    problems("deferred (retried on the next send)", &report.deferrals);
    if !report.uncertain_recipients.is_empty() {
        println!(
            "uncertain: these were in flight when a send was interrupted or the relay never answered; they may or may not have their message, and are not sent again unless you run `letterpress send {} --resend-uncertain`:",
            report.issue
        );
        for problem in report.uncertain_recipients.iter().take(SHOWN) {
            match &problem.reply {
                Some(reply) => println!("  {}  {}", problem.email, printable(reply)),
                None => println!("  {}", problem.email),
            }
        }
        if report.uncertain_recipients.len() > SHOWN {
            println!(
                "  ... and {} more",
                report.uncertain_recipients.len() - SHOWN
            );
        }
    }
}

fn problems(title: &str, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    println!("{title}:");
    let width = problems
        .iter()
        .take(SHOWN)
        .map(|problem| problem.email.chars().count())
        .max()
        .unwrap_or(0);
    for problem in problems.iter().take(SHOWN) {
        println!(
            "  {:width$}  {} ({} attempt{})",
            problem.email,
            printable(problem.reply.as_deref().unwrap_or("no reply recorded")),
            problem.attempts,
            if problem.attempts == 1 { "" } else { "s" }
        );
    }
    if problems.len() > SHOWN {
        println!(
            "  ... and {} more (`letterpress status --json` lists all)",
            problems.len() - SHOWN
        );
    }
}

/// A send's progress: a bar with rate and ETA on a terminal; a line every few seconds
/// otherwise (logs).
pub struct ProgressReporter {
    bar: Option<indicatif::ProgressBar>,
    last_line: std::sync::Mutex<std::time::Instant>,
    total: u64,
}

const LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl ProgressReporter {
    pub fn new(total: u64) -> ProgressReporter {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:32.cyan/blue} {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .expect("a valid progress template"),
            );
            bar
        });
        ProgressReporter {
            bar,
            last_line: std::sync::Mutex::new(std::time::Instant::now()),
            total,
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl crate::delivery::engine::Progress for ProgressReporter {
    fn update(&self, tally: &crate::delivery::engine::Tally) {
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
            *last = std::time::Instant::now();
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

/// The DNS records of the configured DKIM keys, as `check` lists them: one line each.
pub fn dns_records(records: &[DnsRecord]) {
    if records.is_empty() {
        return;
    }
    println!("DKIM keys, each published in DNS as this TXT record:");
    for record in records {
        println!("  {record}");
    }
}

/// A DKIM key's TXT record: its name and value on one line each, for a DNS console, and the
/// zone-file form, split into strings of at most 255 bytes as DNS needs.
pub fn dns_record(record: &DnsRecord) {
    println!("  name:  {}", record.name);
    println!("  value: {}", record.value);
    println!("  zone file (BIND):");
    for line in record.zone_file().lines() {
        println!("    {line}");
    }
}
