//! Delivery: turning an issue into one message per subscriber and getting each to a relay
//! exactly once, with every outcome in the ledger.

pub mod engine;
pub mod lock;
pub mod smtp;
pub mod smtp_url;
pub mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::edition::Edition;
use crate::ledger::{Ledger, State};
use crate::message::{Kind, MessageTemplate};
use crate::model::subscriber::Subscriber;
use crate::secret::Secret;
use crate::workspace::Workspace;
use engine::{Job, Options, Plan, Progress, Report};
use lock::IssueLock;
use transport::Transport;

/// A send of one issue, ready to go: its lock held, its recipients queued in the ledger.
/// `send` and the scheduler both go through here, so both send to nobody twice.
pub struct PreparedSend {
    _lock: IssueLock,
    pub ledger: Ledger,
    pub jobs: Vec<Job>,
    /// Left in flight by an interrupted send and not being sent again.
    pub uncertain: usize,
    /// Uncertain ones put back in the queue because the caller asked.
    pub requeued: usize,
    pub template: Arc<MessageTemplate>,
    pub secret: Arc<Secret>,
}

impl PreparedSend {
    /// Locks the issue, brings the ledger in line with the active subscribers who are not
    /// suppressed, and collects who still needs the issue.
    pub fn prepare(
        workspace: &Workspace,
        edition: &Edition,
        resend_uncertain: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<PreparedSend> {
        let issue = edition.issue.id.as_str();
        let lock = IssueLock::acquire(&workspace.state_dir(), issue)?;
        let secret = Arc::new(workspace.secret()?);
        let template = Arc::new(edition.message_template(Kind::Issue)?);
        let mut ledger = workspace.open_ledger()?;
        let suppressed = ledger.suppressed()?;
        let wanted: HashMap<String, &Subscriber> = edition
            .subscribers
            .iter()
            .filter(|subscriber| subscriber.is_active())
            .map(|subscriber| (subscriber.email.key(), subscriber))
            .filter(|(key, _)| !suppressed.contains(key))
            .collect();

        let mut uncertain = ledger.rows_in(issue, State::Sending)?.len();
        let mut requeued = 0;
        if uncertain > 0 && resend_uncertain {
            requeued = ledger.requeue_uncertain(issue, now)?;
            uncertain = 0;
        }
        // In list order, so the ledger keeps the list's order for the first send.
        let in_order = edition.subscribers.iter().filter_map(|subscriber| {
            let key = subscriber.email.key();
            wanted
                .get_key_value(&key)
                .map(|(key, subscriber)| (key.as_str(), subscriber.email.as_str()))
        });
        ledger.enqueue(issue, in_order, now)?;
        let jobs = ledger
            .sendable(issue)?
            .into_iter()
            .filter_map(|row| {
                let subscriber = wanted.get(&row.email)?;
                Some(Job::new(
                    row.email,
                    subscriber.email.clone(),
                    subscriber
                        .name
                        .as_ref()
                        .map(|name| name.as_str().to_string()),
                    row.state,
                ))
            })
            .collect();
        Ok(PreparedSend {
            _lock: lock,
            ledger,
            jobs,
            uncertain,
            requeued,
            template,
            secret,
        })
    }

    /// Sends to everyone queued. The ledger comes back with the report, for the summary.
    pub async fn run(
        self,
        edition: &Edition,
        transport: Arc<Transport>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
        progress: &dyn Progress,
    ) -> anyhow::Result<(Report, Ledger)> {
        let PreparedSend {
            _lock: lock,
            ledger,
            jobs,
            template,
            secret,
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
        let plan = Plan {
            issue: edition.issue.id.as_str().to_string(),
            template,
            secret,
            sender: edition.newsletter.from.address.clone(),
            jobs,
        };
        let ledger = Arc::new(Mutex::new(ledger));
        let report = engine::run(
            plan,
            transport,
            ledger.clone(),
            options,
            clock,
            stop,
            progress,
        )
        .await;
        drop(lock);
        let ledger = Arc::try_unwrap(ledger)
            .map_err(|_| anyhow::anyhow!("the ledger is still in use after the send"))?
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok((report?, ledger))
    }
}
