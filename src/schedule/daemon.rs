//! `letterpress run`: the scheduler as a long-running process (or a single pass for cron).
//!
//! Each pass re-reads every file, works out a plan, and carries it out; between passes the
//! process sleeps until the next slot, a file change, SIGHUP, or a signal to stop. Sending goes
//! through the same preparation, engine and ledger as `letterpress send`, so an issue sent by
//! hand is never sent again by the scheduler, and a send cut short is resumed.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::plan::{self, Action, History};
use crate::clock::Clock;
use crate::config::Passphrase;
use crate::delivery::engine::{Progress, Stop, Tally};
use crate::delivery::lock::{FileLock, IssueLock, LockError};
use crate::delivery::transport::{Destination, Transport};
use crate::delivery::{PreparedSend, SendOptions};
use crate::edition::Edition;
use crate::ledger::{EventKind, Ledger};
use crate::model::issue::{IssueId, Readiness};
use crate::state::StateDir;
use crate::units::printable;
use crate::workspace::Workspace;

/// Where the scheduler works and what it needs to send.
pub struct Scheduler {
    workspace: Workspace,
    state: StateDir,
    clock: Arc<dyn Clock>,
    destination: Destination,
    secret: Option<Passphrase>,
    _lock: FileLock,
}

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Pass {
    pub sent: Vec<(IssueId, Tally)>,
    /// When the next thing is due, if anything is.
    pub next_wake: Option<DateTime<Utc>>,
    /// A stop was asked for during a send, which finished cleanly.
    pub stopped: bool,
}

impl Scheduler {
    /// Takes the workspace's scheduler lock: only one may run per workspace.
    pub fn start(
        workspace: Workspace,
        state: StateDir,
        clock: Arc<dyn Clock>,
        destination: Destination,
        secret: Option<Passphrase>,
    ) -> Result<Scheduler, LockError> {
        let lock = FileLock::acquire(
            &state.scheduler_lock_path(),
            "a scheduler is already running in this workspace",
        )?;
        Ok(Scheduler {
            workspace,
            state,
            clock,
            destination,
            secret,
            _lock: lock,
        })
    }

    /// One pass: re-read the files, plan, act.
    pub async fn pass(&mut self, stop: &watch::Receiver<bool>) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let newsletter = match self.workspace.load_newsletter() {
            Ok(valid) => valid.value,
            Err(invalid) => {
                let problem = invalid.first_problem();
                error!(%problem, "newsletter.yaml is invalid; nothing is sent until it is fixed");
                return Ok(Pass::default());
            }
        };
        let entries =
            super::issue_entries(&self.workspace).context("cannot list the issues folder")?;
        let mut ledger = self.state.open_ledger()?;
        let mut histories = Vec::new();
        for entry in &entries {
            if let Some(due) = plan::due(&newsletter.schedule, entry) {
                let due = due.with_timezone(&Utc);
                histories.push((entry.id.clone(), due, history(&ledger, &entry.id, due)?));
            }
        }
        let plan = plan::plan(now, &newsletter.schedule, &entries, |id, due| {
            histories
                .iter()
                .find(|(known, known_due, _)| known == id && *known_due == due)
                .map(|(_, _, history)| history.clone())
                .unwrap_or_default()
        });

        let mut pass = Pass {
            next_wake: plan.next_wake,
            ..Pass::default()
        };
        for action in plan.actions {
            // Every action changes what the next plan sees; look again right after.
            pass.next_wake = Some(now);
            match action {
                Action::Draft { id, due } => {
                    warn!(issue = %id, due = %due, "the slot came with the issue still a draft: not sent");
                    ledger.record_event(
                        &id,
                        due.with_timezone(&Utc),
                        EventKind::Draft,
                        None,
                        now,
                    )?;
                }
                Action::Missed { id, due, detail } => {
                    warn!(issue = %id, due = %due, "slot missed: {detail}");
                    ledger.record_event(
                        &id,
                        due.with_timezone(&Utc),
                        EventKind::Missed,
                        Some(&detail),
                        now,
                    )?;
                }
                Action::Conflict { ids, due } => {
                    let names: Vec<&str> = ids.iter().map(IssueId::as_str).collect();
                    let detail = format!(
                        "{} are all ready for this slot; none is sent until only one is",
                        names.join(", ")
                    );
                    error!(due = %due, "{detail}");
                    for id in &ids {
                        ledger.record_event(
                            id,
                            due.with_timezone(&Utc),
                            EventKind::Conflict,
                            Some(&detail),
                            now,
                        )?;
                    }
                }
                Action::Send { id, due, late } => {
                    drop(ledger);
                    let outcome = self.send(&id, due, late, stop).await?;
                    ledger = self.state.open_ledger()?;
                    if let Some(tally) = outcome {
                        pass.stopped |= *stop.borrow();
                        pass.sent.push((id, tally));
                    }
                    if pass.stopped {
                        break;
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Checks the issue again, fresh from disk, and sends it. `None` if it was not sent.
    async fn send(
        &self,
        id: &IssueId,
        due: DateTime<Tz>,
        late: Option<chrono::Duration>,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Tally>> {
        let now = self.clock.now();
        let due_utc = due.with_timezone(&Utc);
        if IssueLock::is_held(&self.state, id) {
            info!(issue = %id, "a send of this issue is already running; looking again later");
            return Ok(None);
        }
        let edition = match Edition::load(&self.workspace, id.as_str()) {
            Ok(valid) => valid.value,
            Err(problem) => {
                let detail = problem.first_problem();
                error!(issue = %id, %detail, "the issue does not pass check: not sent");
                self.state.open_ledger()?.record_event(
                    id,
                    due_utc,
                    EventKind::Invalid,
                    Some(&detail),
                    now,
                )?;
                return Ok(None);
            }
        };
        if edition.issue.status != Readiness::Ready {
            return Ok(None);
        }
        let secret = self.state.secret(self.secret.as_ref())?;
        let transport = Arc::new(Transport::open(
            &self.destination,
            &self.state,
            &edition.newsletter,
            id.as_str(),
        )?);
        let options = SendOptions {
            resend_uncertain: false,
            retry_failed: false,
            via: transport.via(),
        };
        let prepared = PreparedSend::prepare(&self.state, &edition, secret, options, now)?;
        if prepared.uncertain > 0 {
            warn!(
                issue = %id,
                uncertain = prepared.uncertain,
                "recipients left in flight by an interrupted send are not sent again; `letterpress status` lists them"
            );
        }
        let started = match late {
            Some(late) => {
                let late = plan::describe(late);
                warn!(issue = %id, due = %due, %late, recipients = prepared.jobs.len(), "sending late");
                Some(format!("late by {late}"))
            }
            None => {
                info!(issue = %id, due = %due, recipients = prepared.jobs.len(), "sending");
                None
            }
        };
        let mut ledger = self.state.open_ledger()?;
        ledger.record_event(id, due_utc, EventKind::Started, started.as_deref(), now)?;
        drop(ledger);

        let progress = LogProgress::new(id);
        let (summary, mut ledger) = prepared
            .run(
                &edition,
                transport.clone(),
                self.clock.clone(),
                stop.clone(),
                &progress,
            )
            .await?;
        transport.shutdown().await;
        let tally = summary.tally;
        let detail = format!(
            "sent {}, failed {}, deferred {}",
            tally.sent, tally.failed, tally.deferred
        );
        match &summary.stopped {
            None => {
                info!(issue = %id, sent = tally.sent, failed = tally.failed, deferred = tally.deferred, "send finished")
            }
            Some(Stop::Interrupted) => {
                info!(issue = %id, sent = tally.sent, "send stopped by a signal; the next run resumes it")
            }
            Some(Stop::RelayUnreachable(reply)) => {
                error!(issue = %id, reply = %printable(reply), "send stopped: the relay refuses everything; retrying later")
            }
            Some(Stop::Fatal(reason)) => {
                error!(issue = %id, reason = %printable(reason), "send stopped; nobody was failed")
            }
            Some(Stop::Refused(reply)) => error!(
                issue = %id,
                reply = %printable(reply),
                "send stopped: the relay refuses the issue itself; those readers are back in the queue"
            ),
        }
        ledger.record_event(
            id,
            due_utc,
            EventKind::Finished,
            Some(&detail),
            self.clock.now(),
        )?;
        Ok(Some(tally))
    }
}

/// What the ledger knows of an issue's slot, for the plan. A ledger that cannot be read
/// stops the pass: planning without it could send an issue twice.
fn history(ledger: &Ledger, id: &IssueId, due: DateTime<Utc>) -> crate::ledger::Result<History> {
    let counts = ledger.counts(id)?;
    Ok(History {
        started: counts.total() > 0,
        pending: counts.pending,
        deferred: counts.deferred,
        last_activity: ledger.last_activity(id)?,
        recorded: ledger.events_for_slot(id, due)?,
    })
}

/// Progress as a log line every 30 seconds, for the journal.
struct LogProgress {
    issue: IssueId,
    last: std::sync::Mutex<std::time::Instant>,
}

impl LogProgress {
    fn new(issue: &IssueId) -> LogProgress {
        LogProgress {
            issue: issue.clone(),
            last: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }
}

impl Progress for LogProgress {
    fn update(&self, tally: &Tally) {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.elapsed() >= StdDuration::from_secs(30) {
            *last = std::time::Instant::now();
            info!(issue = %self.issue, done = tally.done(), total = tally.total, sent = tally.sent, failed = tally.failed, "sending");
        }
    }
}

/// Runs passes until stopped (or once). Sleeps between them until the next thing to do,
/// a change to a YAML file in the workspace, or SIGHUP.
pub async fn run(
    mut scheduler: Scheduler,
    once: bool,
    mut stop: watch::Receiver<bool>,
    reload: Arc<tokio::sync::Notify>,
) -> anyhow::Result<Pass> {
    let (changed_sender, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
    let _watcher = watch_files(&scheduler.workspace, changed_sender);
    let mut last_announced: Option<DateTime<Utc>> = None;
    loop {
        let pass = scheduler.pass(&stop).await?;
        if once || pass.stopped || *stop.borrow() {
            return Ok(pass);
        }
        let now = scheduler.clock.now();
        if let Some(wake) = pass.next_wake
            && wake > now
            && Some(wake) != last_announced
        {
            info!(until = %wake, "sleeping until the next thing to do");
            last_announced = Some(wake);
        }
        let wake = pass
            .next_wake
            .unwrap_or(now + plan::LONGEST_SLEEP)
            .min(now + plan::LONGEST_SLEEP);
        let sleep = (wake - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            Some(()) = changed.recv() => {
                // Editors save in bursts (a temp file, a rename): let it settle.
                tokio::time::sleep(StdDuration::from_millis(300)).await;
                while changed.try_recv().is_ok() {}
                info!("files changed; reading them again");
            }
            _ = reload.notified() => info!("SIGHUP: reading everything again"),
            _ = stop.changed() => {
                info!("stopping");
                return Ok(Pass::default());
            }
        }
    }
}

/// Watches the workspace folder and `issues/` for YAML files being written, added or removed.
fn watch_files(
    workspace: &Workspace,
    changed: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let yaml = event.paths.iter().any(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml")
        });
        if yaml && !matches!(event.kind, notify::EventKind::Access(_)) {
            let _ = changed.send(());
        }
    })
    .map_err(|problem| warn!(%problem, "cannot watch files; changes are noticed at the next wake"))
    .ok()?;
    for dir in [
        workspace.root().to_path_buf(),
        workspace.path(crate::workspace::ISSUES_DIR),
    ] {
        if dir.is_dir()
            && let Err(problem) = watcher.watch(&dir, RecursiveMode::NonRecursive)
        {
            warn!(%problem, dir = %dir.display(), "cannot watch a folder");
        }
    }
    Some(watcher)
}
