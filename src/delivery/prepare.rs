//! Getting a send ready: the issue locked, its recipients queued in the ledger, and who still
//! needs it. `send` and the scheduler both go through here, so both send to nobody twice; a
//! dry run works out the same recipients without touching anything.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::audience::{Reader, audience, for_each_reader};
use super::engine::{Batch, Job, Options, Progress, SendLoop, Summary, Verp};
use super::lock::IssueLock;
use super::transport::Transport;
use crate::clock::Clock;
use crate::edition::Edition;
use crate::ledger::{Ledger, State, Via};
use crate::message::{Kind, MessageTemplate, Recipient};
use crate::model::address::{KeyHashes, key_hash};
use crate::secret::Secret;
use crate::state::StateDir;

/// A send of one issue, ready to go: its lock held, its recipients queued in the ledger.
pub struct PreparedSend {
    _lock: IssueLock,
    pub ledger: Ledger,
    pub jobs: Vec<Job>,
    /// Left in flight by an interrupted send and not being sent again.
    pub uncertain: usize,
    /// Uncertain ones put back in the queue because the caller asked.
    pub requeued: usize,
    /// Failed ones put back in the queue because the caller asked.
    pub retried: usize,
    /// Readers whose message only went to the outbox, queued for the relay.
    pub from_outbox: usize,
    template: Arc<MessageTemplate>,
    secret: Arc<Secret>,
    /// The ledger's list key, which VERP tags are signed with.
    list_key: String,
    /// When the audience was read: anyone suppressed since (while `send` waited at its
    /// prompt, say) is skipped when their turn comes.
    audience_at: DateTime<Utc>,
}

/// What the caller asks of a send beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct SendOptions {
    /// Send again to readers left uncertain by an interrupted send.
    pub resend_uncertain: bool,
    /// Send again to readers the relay refused for good.
    pub retry_failed: bool,
    /// Where the messages go: a send to a relay also delivers what only reached the outbox.
    pub via: Via,
}

impl PreparedSend {
    /// Locks the issue, brings the ledger in line with the audience, and collects who still
    /// needs the issue.
    pub fn prepare(
        state: &StateDir,
        edition: &Edition,
        secret: Secret,
        options: SendOptions,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PreparedSend> {
        if options.via == Via::Relay
            && let Some(site) = &edition.newsletter.site_url
            && site.is_this_machine()
        {
            // Every reader would get unsubscribe links that lead nowhere.
            return Err(crate::diagnostic::Invalid::usage(format!(
                "site_url is {}, which only this machine can reach: readers could not unsubscribe or see the archive; set the public https:// address in newsletter.yaml first",
                site.as_str()
            ))
            .into());
        }
        let issue = &edition.issue.id;
        let lock = IssueLock::acquire(state, issue)?;
        let mut ledger = state.open_ledger()?;
        let list_key = ledger.list_key(&edition.list_id())?;
        // The first send's version of the issue is the one the archive shows from now on.
        ledger.keep_snapshot(issue, &edition.issue_source, now)?;
        // And its images, which the emails name by their content's hash: a picture saved
        // over later must not break the ones that went out.
        crate::images::SentImages::in_state(state.path())
            .keep(issue.as_str(), &edition.root, edition.issue.local_images())
            .map_err(|error| {
                anyhow::anyhow!(
                    "cannot keep the issue's images in {}: {error}",
                    state.display("images")
                )
            })?;
        let template = Arc::new(
            edition
                .message_template(Kind::Issue)?
                .keyed(list_key.clone()),
        );
        // Before the audience is read: a retry lifts the suppressions its own refusals set.
        let retried = if options.retry_failed {
            ledger.requeue_failed(issue, now)?
        } else {
            0
        };
        let mut wanted: Vec<Reader> = audience(&edition.list, Some(&ledger))?;

        let mut uncertain = ledger.rows_in(issue, State::Sending)?.len();
        let mut requeued = 0;
        if uncertain > 0 && options.resend_uncertain {
            requeued = ledger.requeue_uncertain(issue, now)?;
            uncertain = 0;
        }
        let from_outbox = if options.via == Via::Relay {
            ledger.requeue_outbox_copies(issue, now)?
        } else {
            0
        };
        // In the audience's order, so the ledger keeps the list's order for the first send.
        ledger.enqueue(
            issue,
            wanted
                .iter()
                .map(|reader| (&reader.key, reader.email.as_str())),
            now,
        )?;
        // Sorted by key and looked up, rather than a map beside them: a million readers
        // once, not twice.
        wanted.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let jobs = ledger
            .sendable(issue)?
            .into_iter()
            .filter_map(|row| {
                let at = wanted
                    .binary_search_by(|reader| reader.key.cmp(&row.email))
                    .ok()?;
                let reader = &mut wanted[at];
                Some(Job::new(
                    row.email,
                    reader.email.clone(),
                    reader.name.take(),
                    row.state,
                ))
            })
            .collect();
        drop(wanted);
        Ok(PreparedSend {
            _lock: lock,
            ledger,
            jobs,
            uncertain,
            requeued,
            retried,
            from_outbox,
            template,
            secret: Arc::new(secret),
            list_key,
            audience_at: now,
        })
    }

    /// Sends to everyone queued. The ledger comes back with the summary, for the report.
    pub async fn run(
        self,
        edition: &Edition,
        transport: Arc<Transport>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
        progress: &dyn Progress,
    ) -> anyhow::Result<(Summary, Ledger)> {
        let PreparedSend {
            _lock: lock,
            ledger,
            jobs,
            template,
            secret,
            list_key,
            audience_at,
            ..
        } = self;
        let delivery = &edition.newsletter.delivery;
        let options = Options {
            concurrency: delivery.concurrency as usize,
            rate_per_second: delivery.rate_per_second,
            max_attempts: delivery.max_attempts,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
        };
        let verp = edition
            .newsletter
            .bounce_address
            .as_ref()
            .map(|bounce_address| Verp::new(bounce_address, list_key));
        let batch = Batch {
            issue: edition.issue.id.clone(),
            template,
            secret,
            sender: edition.newsletter.from.address.clone(),
            verp,
            jobs,
            suppressed_since: audience_at,
        };
        let ledger = Arc::new(Mutex::new(ledger));
        let summary = SendLoop::new(batch, transport, ledger.clone(), options, clock)
            .run(stop, progress)
            .await;
        drop(lock);
        let ledger = Arc::try_unwrap(ledger)
            .map_err(|_| anyhow::anyhow!("the ledger is still in use after the send"))?
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok((summary?, ledger))
    }
}

/// What a send would do, measured by building every message and sending none.
#[derive(Debug, Clone, Copy)]
pub struct DryRun {
    pub messages: u64,
    pub bytes: u64,
    pub largest: usize,
    /// Already sent, failed or uncertain: a real send would skip them.
    pub already_done: u64,
    pub elapsed: Duration,
}

/// Builds the message of everyone a send would reach now, without locking, queueing or
/// writing anything (`ledger` is `None` when there is none yet). `each` is shown every
/// subscriber who would get it, in list order.
pub fn dry_run(
    edition: &Edition,
    ledger: Option<&Ledger>,
    secret: &Secret,
    date: &str,
    each: &mut dyn FnMut(&Reader),
) -> anyhow::Result<DryRun> {
    let mut template = edition.message_template(Kind::Issue)?;
    if let Some(list_key) = ledger.map(Ledger::stored_list_key).transpose()?.flatten() {
        template = template.keyed(list_key);
    }
    let issue = &edition.issue.id;
    // Who has it already, as hashes (8 bytes each), a match confirmed in the ledger.
    const DONE: [State; 3] = [State::Sent, State::Failed, State::Sending];
    let mut done = Vec::new();
    if let Some(ledger) = ledger {
        ledger.each_delivery_in(issue, &DONE, |key| done.push(key_hash(key)))?;
    }
    let done = KeyHashes::from_hashes(done);
    let started = Instant::now();
    let mut result = DryRun {
        messages: 0,
        bytes: 0,
        largest: 0,
        already_done: 0,
        elapsed: Duration::ZERO,
    };
    let mut message = Vec::new();
    let mut failure = None;
    for_each_reader(&edition.list, ledger, |reader| {
        if let Some(ledger) = ledger.filter(|_| done.might_contain(&reader.key)) {
            match ledger.row(issue, &reader.key) {
                Ok(Some(row)) if DONE.contains(&row.state) => {
                    result.already_done += 1;
                    return std::ops::ControlFlow::Continue(());
                }
                Ok(_) => {}
                Err(error) => {
                    failure = Some(error);
                    return std::ops::ControlFlow::Break(());
                }
            }
        }
        message.clear();
        template.write(
            Recipient {
                email: &reader.email,
                name: reader.name.as_deref(),
            },
            secret,
            date,
            &mut message,
        );
        each(&reader);
        result.messages += 1;
        result.bytes += message.len() as u64;
        result.largest = result.largest.max(message.len());
        std::ops::ControlFlow::Continue(())
    })?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    result.elapsed = started.elapsed();
    Ok(result)
}
