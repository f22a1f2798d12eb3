//! The send loop: claims recipients in the ledger, hands their messages to the transport at
//! the configured concurrency and rate, retries what is worth retrying, and records every
//! outcome.
//!
//! The order of writes is what makes a crash safe. A recipient is marked `sending` (and the
//! commit reaches the disk) before their message is handed over, and `sent` only after the
//! relay accepted it; so after a crash a recipient is either untouched, known sent, or
//! `sending`: uncertain, and never sent again without being asked. Claims and results are
//! written in batches, so the ledger keeps up with thousands of messages a second.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use lettre::address::Envelope;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::transport::{Attempt, Transport};
use crate::clock::Clock;
use crate::ledger::{Ledger, Outcome, State};
use crate::message::{MessageTemplate, Recipient};
use crate::model::address::EmailAddress;
use crate::secret::Secret;

/// One recipient's message to deliver.
#[derive(Debug, Clone)]
pub struct Job {
    pub email_key: String,
    pub address: EmailAddress,
    pub name: Option<String>,
    /// Where the row was before this run claimed it, to put it back if never handed over.
    pub previous: State,
    attempts: u32,
}

impl Job {
    pub fn new(
        email_key: String,
        address: EmailAddress,
        name: Option<String>,
        previous: State,
    ) -> Job {
        Job {
            email_key,
            address,
            name,
            previous,
            attempts: 0,
        }
    }
}

/// What the loop needs to build messages.
pub struct Plan {
    pub issue: String,
    pub template: Arc<MessageTemplate>,
    pub secret: Arc<Secret>,
    /// The envelope sender (MAIL FROM).
    pub sender: EmailAddress,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    pub rate_per_second: Option<f64>,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// Live counts, for progress and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub total: u64,
    pub sent: u64,
    pub failed: u64,
    /// Deferred for good this run (out of attempts, or the run stopped first).
    pub deferred: u64,
    /// Transient failures that were retried.
    pub retries: u64,
    /// Unsubscribed while the send was running, so never sent.
    pub skipped: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn done(&self) -> u64 {
        self.sent + self.failed + self.deferred + self.skipped
    }
}

/// Why a run ended before its queue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The last many attempts all failed without a delivery between them: the relay looks
    /// down or is refusing everything for now.
    RelayUnreachable(String),
    /// Nothing can be sent (credentials, TLS, a full disk).
    Fatal(String),
}

#[derive(Debug, Clone)]
pub struct Report {
    pub tally: Tally,
    pub stopped: Option<Stop>,
}

pub trait Progress: Send + Sync {
    fn update(&self, tally: &Tally);
}

/// Keeps the engine testable without a terminal.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &Tally) {}
}

/// Spaces out message starts to at most `rate` a second.
struct Pacer {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(rate_per_second: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate_per_second),
            next: tokio::sync::Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let now = Instant::now();
        let start = {
            let mut next = self.next.lock().await;
            let start = (*next).max(now);
            *next = start + self.interval;
            start
        };
        // A timer that is already due still waits for the next tick of tokio's timer wheel
        // (a millisecond): only sleep when there is something to wait for.
        if start > now {
            tokio::time::sleep_until(start).await;
        }
    }
}

/// Results are committed when this many are waiting, or after `FLUSH_INTERVAL`.
const FLUSH_BATCH: usize = 512;
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

pub async fn run(
    plan: Plan,
    transport: Arc<Transport>,
    ledger: Arc<Mutex<Ledger>>,
    options: Options,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
    progress: &dyn Progress,
) -> anyhow::Result<Report> {
    let issue: Arc<str> = plan.issue.into();
    let template = plan.template;
    let secret = plan.secret;
    let sender = plan.sender;
    let concurrency = options.concurrency.max(1);
    let pacer = options
        .rate_per_second
        .map(|rate| Arc::new(Pacer::new(rate)));
    let recorder = Recorder {
        issue: issue.clone(),
        ledger,
        clock: clock.clone(),
    };

    let mut tally = Tally {
        total: plan.jobs.len() as u64,
        ..Tally::default()
    };
    let mut queue: VecDeque<Job> = plan.jobs.into();
    let mut retries: BinaryHeap<Reverse<Retry>> = BinaryHeap::new();
    let mut claimed: VecDeque<Job> = VecDeque::new();
    let mut running: JoinSet<(Job, Attempt, usize)> = JoinSet::new();
    let mut results: Vec<Outcome> = Vec::new();
    let mut last_flush = Instant::now();
    let mut stopped: Option<Stop> = None;
    let mut failures_since_delivery = 0usize;
    let mut retry_sequence = 0u64;
    // Claims grow with the pace actually reached, so a claim commit is needed only every
    // ~50ms while the recipients in flight (the uncertain ones after a crash) stay few.
    let mut claim_size = concurrency * 2;
    let started = Instant::now();
    let run_started = clock.now();

    loop {
        if stopped.is_none() && *stop.borrow() {
            stopped = Some(Stop::Interrupted);
        }
        while stopped.is_none() && running.len() < concurrency {
            if claimed.is_empty() {
                let now = Instant::now();
                while retries
                    .peek()
                    .is_some_and(|Reverse(retry)| retry.ready <= now)
                {
                    let Reverse(retry) = retries.pop().expect("peeked");
                    queue.push_front(retry.job);
                }
                if queue.is_empty() {
                    break;
                }
                let rate = tally.done() as f64 / started.elapsed().as_secs_f64().max(0.001);
                claim_size = claim_size.max((rate * 0.05) as usize).min(1024);
                let mut batch: Vec<Job> = queue.drain(..claim_size.min(queue.len())).collect();
                let unsubscribed = recorder.suppressed_since(run_started).await?;
                if !unsubscribed.is_empty() {
                    batch.retain(|job| {
                        let keep = !unsubscribed.contains(&job.email_key);
                        if !keep {
                            tally.skipped += 1;
                            results.push(Outcome {
                                email: job.email_key.clone(),
                                state: State::Skipped,
                                reply: Some("unsubscribed while the issue was going out".into()),
                            });
                        }
                        keep
                    });
                }
                let claims = batch
                    .iter()
                    .map(|job| {
                        (
                            job.email_key.clone(),
                            template.message_id(&secret, &job.address),
                        )
                    })
                    .collect();
                recorder.claim(claims).await?;
                claimed.extend(batch);
            }
            let Some(job) = claimed.pop_front() else {
                break;
            };
            let transport = transport.clone();
            let template = template.clone();
            let secret = secret.clone();
            let pacer = pacer.clone();
            let sender = sender.clone();
            let clock = clock.clone();
            running.spawn(async move {
                if let Some(pacer) = pacer {
                    pacer.wait().await;
                }
                let mut message = Vec::new();
                template.write(
                    Recipient {
                        email: &job.address,
                        name: job.name.as_deref(),
                    },
                    &secret,
                    &clock.now().to_rfc2822(),
                    &mut message,
                );
                let attempt = match Envelope::new(
                    Some(sender.as_lettre().clone()),
                    vec![job.address.as_lettre().clone()],
                ) {
                    Ok(envelope) => transport.send(&envelope, &message).await,
                    Err(error) => {
                        Attempt::Permanent(format!("cannot address the message: {error}"))
                    }
                };
                (job, attempt, message.len())
            });
        }

        let idle = queue.is_empty() && claimed.is_empty() && retries.is_empty();
        if running.is_empty() && (stopped.is_some() || idle) {
            break;
        }

        let next_retry = retries.peek().map(|Reverse(retry)| retry.ready);
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (mut job, attempt, bytes) = joined.context("a send task panicked")?;
                match attempt {
                    Attempt::Delivered(reply) => {
                        failures_since_delivery = 0;
                        tally.sent += 1;
                        tally.bytes += bytes as u64;
                        results.push(outcome(&job, State::Sent, reply));
                    }
                    Attempt::Permanent(reply) => {
                        tally.failed += 1;
                        results.push(outcome(&job, State::Failed, reply));
                    }
                    Attempt::Transient(reply) => {
                        failures_since_delivery += 1;
                        job.attempts += 1;
                        results.push(outcome(&job, State::Deferred, reply.clone()));
                        if failures_since_delivery >= (concurrency * 3).max(10) {
                            stopped.get_or_insert(Stop::RelayUnreachable(reply));
                            tally.deferred += 1;
                        } else if job.attempts < options.max_attempts {
                            tally.retries += 1;
                            retry_sequence += 1;
                            retries.push(Reverse(Retry {
                                ready: Instant::now() + backoff(&options, job.attempts),
                                sequence: retry_sequence,
                                job,
                            }));
                        } else {
                            tally.deferred += 1;
                        }
                    }
                    Attempt::Fatal(reason) => {
                        // Nothing was handed over: the recipient goes back where they were.
                        results.push(Outcome {
                            email: job.email_key.clone(),
                            state: job.previous,
                            reply: Some(reason.clone()),
                        });
                        tally.total -= 1;
                        queue.push_front(job);
                        stopped.get_or_insert(Stop::Fatal(reason));
                    }
                }
                progress.update(&tally);
            }
            _ = sleep_until_option(next_retry), if next_retry.is_some() && running.len() < concurrency => {}
            changed = stop.changed(), if stopped.is_none() => {
                if changed.is_err() || *stop.borrow() {
                    stopped = Some(Stop::Interrupted);
                }
            }
            _ = tokio::time::sleep_until(last_flush + FLUSH_INTERVAL), if !results.is_empty() => {}
        }
        if results.len() >= FLUSH_BATCH
            || (!results.is_empty() && last_flush.elapsed() >= FLUSH_INTERVAL)
        {
            recorder.record(std::mem::take(&mut results)).await?;
            last_flush = Instant::now();
        }
    }

    // Claimed but never handed over: back where they were, so the next run takes them.
    for job in claimed {
        results.push(Outcome {
            email: job.email_key.clone(),
            state: job.previous,
            reply: None,
        });
        tally.total -= 1;
    }
    // Waiting for a retry when the run stopped: deferred, already recorded as such.
    tally.deferred += retries.len() as u64;
    recorder.record(results).await?;
    progress.update(&tally);
    Ok(Report { tally, stopped })
}

fn outcome(job: &Job, state: State, reply: String) -> Outcome {
    Outcome {
        email: job.email_key.clone(),
        state,
        reply: Some(reply),
    }
}

struct Retry {
    ready: Instant,
    sequence: u64,
    job: Job,
}

impl PartialEq for Retry {
    fn eq(&self, other: &Self) -> bool {
        (self.ready, self.sequence) == (other.ready, other.sequence)
    }
}
impl Eq for Retry {}
impl PartialOrd for Retry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Retry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.ready, self.sequence).cmp(&(other.ready, other.sequence))
    }
}

/// Exponential backoff with jitter: half the step fixed, half random, so retries from many
/// recipients spread out instead of hitting a throttled relay together.
fn backoff(options: &Options, attempts: u32) -> Duration {
    let step = options
        .backoff_base
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
        .min(options.backoff_cap);
    let mut random = [0u8; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    step / 2 + step.mul_f64(fraction / 2.0)
}

async fn sleep_until_option(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Ledger writes, off the async threads (SQLite blocks on fsync).
struct Recorder {
    issue: Arc<str>,
    ledger: Arc<Mutex<Ledger>>,
    clock: Arc<dyn Clock>,
}

impl Recorder {
    async fn suppressed_since(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<std::collections::HashSet<String>> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let ledger = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            ledger.suppressed_since(since)
        })
        .await?
        .context("cannot read the suppression list")
    }

    async fn claim(&self, claims: Vec<(String, String)>) -> anyhow::Result<()> {
        let (issue, ledger, now) = (self.issue.clone(), self.ledger.clone(), self.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut ledger = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            ledger.mark_sending(&issue, &claims, now)
        })
        .await?
        .context("cannot mark recipients as sending in the ledger")
    }

    async fn record(&self, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let (issue, ledger, now) = (self.issue.clone(), self.ledger.clone(), self.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut ledger = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            ledger.record(&issue, &outcomes, now)
        })
        .await?
        .context("cannot record delivery results in the ledger")
    }
}
