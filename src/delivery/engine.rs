//! The send loop: claims recipients in the ledger, hands their messages to the transport at
//! the configured concurrency and rate, retries what is worth retrying, and records every
//! outcome.
//!
//! The order of writes is what makes a crash safe. A recipient is marked `sending` (and the
//! commit reaches the disk) before their message is handed over, and `sent` only after the
//! relay accepted it; so after a crash a recipient is either untouched, known sent, or
//! `sending`: uncertain, and never sent again without being asked. Claims and results are
//! written in batches, so the ledger keeps up with thousands of messages a second.
//!
//! `SendLoop` keeps that rule in four steps, each tested on its own below: `claim_batch`
//! (durably `sending`), `hand_over` (to the connections), `take_reply` (classify the answer)
//! and `flush` (record the answers).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::transport::{Attempt, Envelope, Transport};
use crate::bounce::verp::{VerpTag, verp_address};
use crate::clock::Clock;
use crate::ledger::{Claim, Ledger, Outcome, State, Via};
use crate::message::{MessageTemplate, Recipient};
use crate::model::address::{AddressKey, EmailAddress};
use crate::model::issue::IssueId;
use crate::secret::Secret;

/// One recipient's message to deliver.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: AddressKey,
    pub address: EmailAddress,
    pub name: Option<String>,
    /// Where the row was before this run claimed it, to put it back if never handed over.
    pub previous: State,
    attempts: u32,
    /// The tag of the message's envelope sender, with `bounce_address`; worked out and
    /// recorded when the row is claimed.
    verp_tag: Option<VerpTag>,
}

impl Job {
    pub fn new(
        key: AddressKey,
        address: EmailAddress,
        name: Option<String>,
        previous: State,
    ) -> Job {
        Job {
            key,
            address,
            name,
            previous,
            attempts: 0,
            verp_tag: None,
        }
    }
}

/// With `bounce_address`, each message's envelope sender is `bounces+<tag>@example.com`
/// (`bounce::verp`), the tag naming the issue and the reader, so that a bounce names them
/// even when it mangles everything else.
#[derive(Debug, Clone)]
pub struct Verp {
    /// `bounce_address` in its envelope form (the domain in ASCII).
    bounce_address: EmailAddress,
    /// What the tags are signed with: the ledger's list key, as for tokens and Message-IDs.
    list_key: String,
}

impl Verp {
    pub fn new(bounce_address: &EmailAddress, list_key: String) -> Verp {
        let bounce_address = EmailAddress::parse(&bounce_address.envelope_form())
            .unwrap_or_else(|_| bounce_address.clone());
        Verp {
            bounce_address,
            list_key,
        }
    }

    fn tag(&self, secret: &Secret, issue: &IssueId, reader: &AddressKey) -> VerpTag {
        VerpTag::for_delivery(secret, &self.list_key, issue.as_str(), reader.as_str())
    }
}

/// What the loop sends, and to whom.
pub struct Batch {
    pub issue: IssueId,
    pub template: Arc<MessageTemplate>,
    pub secret: Arc<Secret>,
    /// The envelope sender (MAIL FROM), unless `verp` gives each message its own.
    pub sender: EmailAddress,
    pub verp: Option<Verp>,
    pub jobs: Vec<Job>,
    /// When the jobs were chosen: readers suppressed since are skipped at their turn.
    pub suppressed_since: DateTime<Utc>,
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
    /// Handed over whole, with no answer from the relay: maybe delivered, not sent again.
    pub uncertain: u64,
    pub bytes: u64,
}

impl Tally {
    pub fn done(&self) -> u64 {
        self.sent + self.failed + self.deferred + self.skipped + self.uncertain
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
    /// Nothing can be sent (the relay refuses the session or the sender, credentials, TLS,
    /// a full disk).
    Fatal(String),
    /// The relay refused the message itself with the same permanent reply for many readers
    /// in a row (content rejected as spam, say): those readers went back in the queue.
    Refused(String),
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
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

/// This many readers in a row whose message the relay refused with the same permanent reply
/// means the relay refuses the issue, not them: the run stops and they go back in the queue.
const REFUSALS_IN_A_ROW: usize = 10;

/// Results are committed when this many are waiting, or after `FLUSH_INTERVAL`.
const FLUSH_BATCH: usize = 512;
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// A message handed over, and how it went.
struct Handed {
    job: Job,
    /// `None` when the run stopped while the message waited for its turn under the rate
    /// limit: it was never handed over.
    attempt: Option<Attempt>,
    bytes: usize,
}

/// One run over an issue's queue. See the module's comment for the order it keeps.
pub struct SendLoop {
    template: Arc<MessageTemplate>,
    secret: Arc<Secret>,
    sender: EmailAddress,
    verp: Option<Arc<Verp>>,
    transport: Arc<Transport>,
    options: Options,
    concurrency: usize,
    clock: Arc<dyn Clock>,
    pacer: Option<Arc<Pacer>>,
    recorder: Recorder,
    queue: VecDeque<Job>,
    retries: BinaryHeap<Reverse<Retry>>,
    /// Durably `sending`, not handed over yet.
    claimed: VecDeque<Job>,
    running: JoinSet<Handed>,
    /// Answers not yet in the ledger.
    results: Vec<Outcome>,
    last_flush: Instant,
    tally: Tally,
    stopped: Option<Stop>,
    failures_since_delivery: usize,
    /// The latest readers whose message was refused the same way (see `REFUSALS_IN_A_ROW`),
    /// and that refusal, as `refusal_kind` sums it up.
    refusals: Vec<Job>,
    refusal: Option<String>,
    retry_sequence: u64,
    /// Claims grow with the pace actually reached, so a claim commit is needed only every
    /// ~50ms while the recipients in flight (the uncertain ones after a crash) stay few.
    claim_size: usize,
    started: Instant,
    suppressed_since: DateTime<Utc>,
    /// The stop signal, for messages waiting for their turn under the rate limit: a stop
    /// must not wait for a slow rate to let them go.
    stop: Option<watch::Receiver<bool>>,
}

impl SendLoop {
    pub fn new(
        batch: Batch,
        transport: Arc<Transport>,
        ledger: Arc<Mutex<Ledger>>,
        options: Options,
        clock: Arc<dyn Clock>,
    ) -> SendLoop {
        let concurrency = options.concurrency.max(1);
        SendLoop {
            recorder: Recorder {
                issue: batch.issue,
                ledger,
                clock: clock.clone(),
                via: transport.via(),
            },
            template: batch.template,
            secret: batch.secret,
            sender: batch.sender,
            verp: batch.verp.map(Arc::new),
            transport,
            pacer: options
                .rate_per_second
                .map(|rate| Arc::new(Pacer::new(rate))),
            options,
            concurrency,
            suppressed_since: batch.suppressed_since,
            stop: None,
            clock,
            tally: Tally {
                total: batch.jobs.len() as u64,
                ..Tally::default()
            },
            queue: batch.jobs.into(),
            retries: BinaryHeap::new(),
            claimed: VecDeque::new(),
            running: JoinSet::new(),
            results: Vec::new(),
            last_flush: Instant::now(),
            stopped: None,
            failures_since_delivery: 0,
            refusals: Vec::new(),
            refusal: None,
            retry_sequence: 0,
            claim_size: concurrency * 2,
            started: Instant::now(),
        }
    }

    /// Sends to everyone queued, until done or stopped.
    pub async fn run(
        mut self,
        mut stop: watch::Receiver<bool>,
        progress: &dyn Progress,
    ) -> anyhow::Result<Summary> {
        self.stop = Some(stop.clone());
        loop {
            if self.stopped.is_none() && *stop.borrow() {
                self.stopped = Some(Stop::Interrupted);
            }
            while self.stopped.is_none() && self.running.len() < self.concurrency {
                if self.claimed.is_empty() && !self.claim_batch().await? {
                    break;
                }
                self.hand_over();
            }
            let idle = self.queue.is_empty() && self.claimed.is_empty() && self.retries.is_empty();
            if self.running.is_empty() && (self.stopped.is_some() || idle) {
                break;
            }

            let next_retry = self.retries.peek().map(|Reverse(retry)| retry.ready);
            let room = self.running.len() < self.concurrency;
            tokio::select! {
                Some(joined) = self.running.join_next(), if !self.running.is_empty() => {
                    self.take_reply(joined.context("a send task panicked")?);
                    progress.update(&self.tally);
                }
                _ = sleep_until_option(next_retry), if next_retry.is_some() && room => {}
                changed = stop.changed(), if self.stopped.is_none() => {
                    if changed.is_err() || *stop.borrow() {
                        self.stopped = Some(Stop::Interrupted);
                    }
                }
                _ = tokio::time::sleep_until(self.last_flush + FLUSH_INTERVAL), if !self.results.is_empty() => {}
            }
            self.flush(false).await?;
        }
        self.release_unsent();
        // Waiting for a retry when the run stopped: deferred, already recorded as such.
        self.tally.deferred += self.retries.len() as u64;
        self.flush(true).await?;
        progress.update(&self.tally);
        Ok(Summary {
            tally: self.tally,
            stopped: self.stopped,
        })
    }

    /// Takes the next recipients off the queue (retries that are due first) and marks them
    /// `sending` in one durable commit, before any of their messages exists. Readers who
    /// unsubscribed since the run started are skipped instead. `false` when nobody is
    /// ready.
    async fn claim_batch(&mut self) -> anyhow::Result<bool> {
        let now = Instant::now();
        while self
            .retries
            .peek()
            .is_some_and(|Reverse(retry)| retry.ready <= now)
        {
            let Reverse(retry) = self.retries.pop().expect("peeked");
            self.queue.push_front(retry.job);
        }
        if self.queue.is_empty() {
            return Ok(false);
        }
        let rate = self.tally.done() as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        self.claim_size = self.claim_size.max((rate * 0.05) as usize).min(1024);
        let take = self.claim_size.min(self.queue.len());
        let mut batch: Vec<Job> = self.queue.drain(..take).collect();
        let unsubscribed = self
            .recorder
            .suppressed_since(self.suppressed_since)
            .await?;
        if !unsubscribed.is_empty() {
            batch.retain(|job| {
                let keep = !unsubscribed.contains(&job.key);
                if !keep {
                    self.tally.skipped += 1;
                    self.results.push(Outcome {
                        email: job.key.clone(),
                        state: State::Skipped,
                        reply: Some("unsubscribed while the issue was going out".into()),
                        hard_bounce: false,
                    });
                }
                keep
            });
        }
        // The tag is known before the message exists, and kept with the claim: a bounce
        // that arrives even for a message whose answer was never recorded finds its reader.
        if let Some(verp) = &self.verp {
            for job in &mut batch {
                job.verp_tag = Some(verp.tag(&self.secret, &self.recorder.issue, &job.key));
            }
        }
        let claims = batch
            .iter()
            .map(|job| Claim {
                email: job.key.clone(),
                message_id: self.template.message_id(&self.secret, &job.address),
                verp_tag: job.verp_tag.as_ref().map(|tag| tag.as_str().to_string()),
            })
            .collect();
        self.recorder.claim(claims).await?;
        self.claimed.extend(batch);
        Ok(true)
    }

    /// Hands the next claimed recipient's message to a connection (after the pacer allows).
    fn hand_over(&mut self) {
        let Some(job) = self.claimed.pop_front() else {
            return;
        };
        let transport = self.transport.clone();
        let template = self.template.clone();
        let secret = self.secret.clone();
        let pacer = self.pacer.clone();
        let envelope = match (&self.verp, &job.verp_tag) {
            (Some(verp), Some(tag)) => {
                Envelope::with_sender(verp_address(&verp.bounce_address, tag), &job.address)
            }
            _ => Envelope::new(&self.sender, &job.address),
        };
        let clock = self.clock.clone();
        let mut stop = self.stop.clone();
        self.running.spawn(async move {
            if let Some(pacer) = pacer {
                let stopped = async {
                    match stop.as_mut() {
                        Some(stop) => stop.wait_for(|stopped| *stopped).await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = pacer.wait() => {}
                    true = stopped => {
                        return Handed {
                            job,
                            attempt: None,
                            bytes: 0,
                        };
                    }
                }
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
            let attempt = transport.send(&envelope, &message).await;
            Handed {
                job,
                attempt: Some(attempt),
                bytes: message.len(),
            }
        });
    }

    /// Turns a relay's answer into an outcome waiting to be recorded, a retry, or a stop.
    fn take_reply(&mut self, handed: Handed) {
        let Handed {
            mut job,
            attempt,
            bytes,
        } = handed;
        let Some(attempt) = attempt else {
            // Never handed over: back where it was, for the next run.
            self.results.push(Outcome {
                email: job.key.clone(),
                state: job.previous,
                reply: None,
                hard_bounce: false,
            });
            self.tally.total -= 1;
            return;
        };
        match attempt {
            Attempt::Delivered(reply) => {
                self.failures_since_delivery = 0;
                self.refusals.clear();
                self.tally.sent += 1;
                self.tally.bytes += bytes as u64;
                self.results.push(outcome(&job, State::Sent, reply));
            }
            Attempt::Permanent(reply) => {
                // A 5xx to RCPT is a hard bounce during the send: recorded with the failure.
                self.tally.failed += 1;
                self.results.push(Outcome {
                    hard_bounce: true,
                    ..outcome(&job, State::Failed, reply)
                });
            }
            Attempt::Refused(reply) => {
                self.tally.failed += 1;
                self.results
                    .push(outcome(&job, State::Failed, reply.clone()));
                self.note_refusal(job, reply);
            }
            Attempt::Uncertain(reason) => {
                // The row stays `sending`: once this run ends it reads as uncertain, and it
                // is not sent again unless asked.
                self.failures_since_delivery += 1;
                self.tally.uncertain += 1;
                self.results
                    .push(outcome(&job, State::Sending, reason.clone()));
                if self.failures_since_delivery >= (self.concurrency * 3).max(10) {
                    self.stopped.get_or_insert(Stop::RelayUnreachable(reason));
                }
            }
            Attempt::Unsendable(reason) => {
                self.tally.deferred += 1;
                self.results.push(outcome(&job, State::Deferred, reason));
            }
            Attempt::Transient(reply) => {
                self.failures_since_delivery += 1;
                job.attempts += 1;
                self.results
                    .push(outcome(&job, State::Deferred, reply.clone()));
                if self.failures_since_delivery >= (self.concurrency * 3).max(10) {
                    self.stopped.get_or_insert(Stop::RelayUnreachable(reply));
                    self.tally.deferred += 1;
                } else if job.attempts < self.options.max_attempts {
                    self.tally.retries += 1;
                    self.retry_sequence += 1;
                    self.retries.push(Reverse(Retry {
                        ready: Instant::now() + backoff(&self.options, job.attempts),
                        sequence: self.retry_sequence,
                        job,
                    }));
                } else {
                    self.tally.deferred += 1;
                }
            }
            Attempt::Fatal(reason) => {
                // Nothing was handed over: the recipient goes back where they were.
                self.results.push(Outcome {
                    email: job.key.clone(),
                    state: job.previous,
                    reply: Some(reason.clone()),
                    hard_bounce: false,
                });
                self.tally.total -= 1;
                self.queue.push_front(job);
                self.stopped.get_or_insert(Stop::Fatal(reason));
            }
        }
    }

    /// Counts a refusal of the message. When `REFUSALS_IN_A_ROW` readers in a row got the same
    /// one, the relay refuses the issue, not them: the run stops, and they go back to where
    /// they were (recorded after their failures, which they override).
    fn note_refusal(&mut self, job: Job, reply: String) {
        let kind = refusal_kind(&reply);
        // The run already stopped for this refusal: messages that were in flight on the
        // other connections come back with it too, and go back in the queue with the rest.
        if let Some(Stop::Refused(stopped_for)) = &self.stopped
            && refusal_kind(stopped_for) == kind
        {
            self.put_back_refused(job, &reply);
            return;
        }
        if self.refusal.as_deref() != Some(kind.as_str()) {
            self.refusals.clear();
            self.refusal = Some(kind);
        }
        self.refusals.push(job);
        if self.refusals.len() < REFUSALS_IN_A_ROW {
            return;
        }
        for job in std::mem::take(&mut self.refusals) {
            self.put_back_refused(job, &reply);
        }
        self.stopped.get_or_insert(Stop::Refused(reply));
    }

    /// A reader whose failure was the relay refusing the issue: back where they were
    /// (recorded after the failure, which it overrides).
    fn put_back_refused(&mut self, job: Job, reply: &str) {
        self.results.push(Outcome {
            email: job.key.clone(),
            state: job.previous,
            reply: Some(format!(
                "put back: the relay refused the issue itself ({reply})"
            )),
            hard_bounce: false,
        });
        self.tally.failed -= 1;
        self.tally.total -= 1;
    }

    /// Records the answers waiting, when enough have gathered or enough time has passed
    /// (always, with `force`).
    async fn flush(&mut self, force: bool) -> anyhow::Result<()> {
        let due = self.results.len() >= FLUSH_BATCH
            || (!self.results.is_empty() && self.last_flush.elapsed() >= FLUSH_INTERVAL);
        if force || due {
            self.recorder
                .record(std::mem::take(&mut self.results))
                .await?;
            self.last_flush = Instant::now();
        }
        Ok(())
    }

    /// Claimed but never handed over (the run stopped): back where they were, so the next
    /// run takes them. Recorded by the final flush.
    fn release_unsent(&mut self) {
        for job in std::mem::take(&mut self.claimed) {
            self.results.push(Outcome {
                email: job.key.clone(),
                state: job.previous,
                reply: None,
                hard_bounce: false,
            });
            self.tally.total -= 1;
        }
    }
}

/// What makes two refusals "the same": the reply code and its enhanced status
/// (`554 5.7.1`), or its first line when it has none. Queue ids and addresses in the text
/// differ from reader to reader.
fn refusal_kind(reply: &str) -> String {
    let mut words = reply.split_whitespace();
    let code = words.next().unwrap_or_default();
    match words.next() {
        Some(status) if status.split('.').count() == 3 => format!("{code} {status}"),
        _ => reply.lines().next().unwrap_or_default().to_string(),
    }
}

fn outcome(job: &Job, state: State, reply: String) -> Outcome {
    Outcome {
        email: job.key.clone(),
        state,
        reply: Some(reply),
        hard_bounce: false,
    }
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
    issue: IssueId,
    ledger: Arc<Mutex<Ledger>>,
    clock: Arc<dyn Clock>,
    /// Where accepted messages go.
    via: Via,
}

impl Recorder {
    async fn with_ledger<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Ledger, &IssueId, DateTime<Utc>) -> crate::ledger::Result<T>
        + Send
        + 'static,
    ) -> anyhow::Result<T> {
        let (issue, ledger, now) = (self.issue.clone(), self.ledger.clone(), self.clock.now());
        tokio::task::spawn_blocking(move || {
            let mut ledger = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = work(&mut ledger, &issue, now)?;
            // A ledger deleted or replaced under a running send takes its records into a file
            // nobody reads again, and the next send would mail everyone again: stop.
            anyhow::ensure!(
                ledger.is_still_at_its_path(),
                "the ledger file was deleted or replaced while the issue was going out; the send stopped, and what was recorded since went to the old file"
            );
            Ok(result)
        })
        .await?
    }

    async fn suppressed_since(&self, since: DateTime<Utc>) -> anyhow::Result<HashSet<AddressKey>> {
        self.with_ledger(move |ledger, _, _| ledger.suppressed_since(since))
            .await
            .context("cannot read the suppression list")
    }

    async fn claim(&self, claims: Vec<Claim>) -> anyhow::Result<()> {
        self.with_ledger(move |ledger, issue, now| ledger.mark_sending(issue, &claims, now))
            .await
            .context("cannot mark recipients as sending in the ledger")
    }

    async fn record(&self, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let via = self.via;
        self.with_ledger(move |ledger, issue, now| ledger.record(issue, &outcomes, via, now))
            .await
            .context("cannot record delivery results in the ledger")
    }
}

#[cfg(test)]
mod tests {
    //! Each step against the ordering rule: durably `sending` before a message is handed
    //! over, and `sent` only after the relay's 2xx, recorded by a flush.

    use std::path::Path;

    use letterpress_testkit::{Behaviour, Reply, SmtpServer};

    use super::*;
    use crate::clock::FixedClock;
    use crate::delivery::smtp::TlsSettings;
    use crate::delivery::smtp_url::SmtpUrl;
    use crate::delivery::transport::Destination;
    use crate::edition::Edition;
    use crate::ledger::LEDGER_FILE;
    use crate::state::StateDir;
    use crate::workspace::Workspace;

    const ADDRESSES: [&str; 3] = ["ada@example.com", "bob@example.com", "eve@example.com"];

    struct Setup {
        dir: tempfile::TempDir,
        ledger: Arc<Mutex<Ledger>>,
        edition: Edition,
    }

    impl Setup {
        fn new() -> Setup {
            let dir = tempfile::tempdir().unwrap();
            let workspace = Workspace::new(env!("CARGO_MANIFEST_DIR"));
            let edition = Edition::load(&workspace, "2021-08-23").unwrap().value;
            let mut ledger = Ledger::open(&dir.path().join(LEDGER_FILE)).unwrap();
            let keys: Vec<AddressKey> = ADDRESSES
                .iter()
                .map(|a| AddressKey::of(a).unwrap())
                .collect();
            ledger
                .enqueue(&edition.issue.id, keys.iter().zip(ADDRESSES), clock().now())
                .unwrap();
            Setup {
                dir,
                ledger: Arc::new(Mutex::new(ledger)),
                edition,
            }
        }

        /// A loop over every queued recipient, to `destination`.
        fn send_loop(&self, destination: &Destination) -> SendLoop {
            let state = StateDir::of(self.dir.path());
            let transport =
                Transport::open(destination, &state, &self.edition.newsletter, "test").unwrap();
            let jobs = ADDRESSES
                .iter()
                .map(|address| {
                    let address = EmailAddress::parse(address).unwrap();
                    Job::new(address.key(), address, None, State::Pending)
                })
                .collect();
            let batch = Batch {
                issue: self.edition.issue.id.clone(),
                template: Arc::new(
                    self.edition
                        .message_template(crate::message::Kind::Issue)
                        .unwrap(),
                ),
                secret: Arc::new(Secret::from_passphrase(&"s".repeat(32)).unwrap()),
                sender: self.edition.newsletter.from.address.clone(),
                verp: None,
                jobs,
                suppressed_since: clock().now(),
            };
            // Claims are twice the concurrency: all three recipients in the first batch.
            let options = Options {
                concurrency: 2,
                rate_per_second: None,
                max_attempts: 3,
                backoff_base: Duration::from_millis(1),
                backoff_cap: Duration::from_millis(1),
            };
            SendLoop::new(
                batch,
                Arc::new(transport),
                self.ledger.clone(),
                options,
                Arc::new(clock()),
            )
        }

        /// The states as a second connection sees them: what survives this process dying.
        fn states_on_disk(&self) -> Vec<State> {
            let ledger = Ledger::open(&self.dir.path().join(LEDGER_FILE)).unwrap();
            ADDRESSES
                .iter()
                .map(|address| {
                    let key = AddressKey::of(address).unwrap();
                    ledger
                        .row(&self.edition.issue.id, &key)
                        .unwrap()
                        .unwrap()
                        .state
                })
                .collect()
        }

        fn outbox_files(&self) -> usize {
            let outbox = self.dir.path().join(".letterpress/outbox/test");
            std::fs::read_dir(&outbox).map_or(0, |entries| entries.count())
        }
    }

    fn clock() -> FixedClock {
        FixedClock::new(
            DateTime::parse_from_rfc3339("2021-08-23T13:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    fn relay(server: &SmtpServer) -> Destination {
        Destination::Relay(
            SmtpUrl::parse(&server.url()).unwrap(),
            TlsSettings::load(None).unwrap(),
        )
    }

    async fn next_handed(send: &mut SendLoop) -> Handed {
        send.running.join_next().await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_claim_is_on_disk_before_any_message_is_handed_over() {
        let setup = Setup::new();
        let mut send = setup.send_loop(&Destination::Outbox);
        assert!(send.claim_batch().await.unwrap());
        assert_eq!(setup.states_on_disk(), [State::Sending; 3]);
        assert!(send.running.is_empty());
        assert_eq!(setup.outbox_files(), 0, "nothing handed over yet");
        assert!(Path::new(&setup.dir.path().join(LEDGER_FILE)).exists());
    }

    #[tokio::test]
    async fn a_delivery_is_recorded_as_sent_only_by_the_flush_after_the_relays_2xx() {
        let server = SmtpServer::start(Behaviour::new()).await;
        let setup = Setup::new();
        let mut send = setup.send_loop(&relay(&server));
        send.claim_batch().await.unwrap();
        send.hand_over();
        let handed = next_handed(&mut send).await;
        assert!(matches!(handed.attempt, Some(Attempt::Delivered(_))));
        assert_eq!(server.message_count(), 1);
        // The relay has it, but until its answer is recorded the row stays in flight: a
        // crash now leaves the reader uncertain, never sent twice.
        send.take_reply(handed);
        assert_eq!(setup.states_on_disk()[0], State::Sending);
        send.flush(true).await.unwrap();
        assert_eq!(
            setup.states_on_disk(),
            [State::Sent, State::Sending, State::Sending]
        );
        assert_eq!(send.tally.sent, 1);
    }

    #[tokio::test]
    async fn a_5xx_fails_for_good_and_a_4xx_waits_for_a_retry_deferred() {
        let server = SmtpServer::start(
            Behaviour::new()
                .rcpt_reply("ada@example.com", Reply::user_unknown())
                .rcpt_reply("bob@example.com", Reply::try_later()),
        )
        .await;
        let setup = Setup::new();
        let mut send = setup.send_loop(&relay(&server));
        send.claim_batch().await.unwrap();
        for _ in 0..2 {
            send.hand_over();
            let handed = next_handed(&mut send).await;
            send.take_reply(handed);
        }
        send.flush(true).await.unwrap();
        assert_eq!(
            setup.states_on_disk(),
            [State::Failed, State::Deferred, State::Sending]
        );
        assert_eq!(send.retries.len(), 1, "the 4xx is queued for another try");
        assert_eq!((send.tally.failed, send.tally.retries), (1, 1));
        assert_eq!(server.message_count(), 0);
    }

    #[tokio::test]
    async fn claimed_recipients_never_handed_over_go_back_where_they_were() {
        let setup = Setup::new();
        let mut send = setup.send_loop(&Destination::Outbox);
        send.claim_batch().await.unwrap();
        send.hand_over();
        let handed = next_handed(&mut send).await;
        send.take_reply(handed);
        send.release_unsent();
        send.flush(true).await.unwrap();
        assert_eq!(
            setup.states_on_disk(),
            [State::Sent, State::Pending, State::Pending]
        );
        assert_eq!(send.tally.total, 1);
    }

    #[tokio::test]
    async fn a_stop_ends_the_wait_for_a_slow_rate_at_once_and_the_waiting_go_back() {
        let setup = Setup::new();
        let mut send = setup.send_loop(&Destination::Outbox);
        // One message every hundred seconds: the second would wait that long.
        send.pacer = Some(Arc::new(Pacer::new(0.01)));
        let (stopper, stop) = watch::channel(false);
        send.stop = Some(stop);
        send.claim_batch().await.unwrap();
        send.hand_over();
        send.hand_over();
        let first = next_handed(&mut send).await;
        send.take_reply(first);
        let started = std::time::Instant::now();
        stopper.send(true).unwrap();
        let second = next_handed(&mut send).await;
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(second.attempt.is_none(), "never handed over");
        send.take_reply(second);
        send.release_unsent();
        send.flush(true).await.unwrap();
        assert_eq!(
            setup.states_on_disk(),
            [State::Sent, State::Pending, State::Pending]
        );
        assert_eq!(setup.outbox_files(), 1);
    }

    #[tokio::test]
    async fn a_refused_password_stops_the_run_and_fails_nobody() {
        let server = SmtpServer::start(Behaviour::new().auth("user", "right")).await;
        let url = server.url().replace("smtp://", "smtp://user:wrong@");
        let destination = Destination::Relay(
            SmtpUrl::parse(&url).unwrap(),
            TlsSettings::load(None).unwrap(),
        );
        let setup = Setup::new();
        let mut send = setup.send_loop(&destination);
        send.claim_batch().await.unwrap();
        send.hand_over();
        let handed = next_handed(&mut send).await;
        send.take_reply(handed);
        send.release_unsent();
        send.flush(true).await.unwrap();
        assert!(
            matches!(send.stopped, Some(Stop::Fatal(_))),
            "{:?}",
            send.stopped
        );
        assert_eq!(setup.states_on_disk(), [State::Pending; 3]);
    }
}
