//! `letterpress run`: the scheduler as a long-running process (or a single pass for cron).
//!
//! Each pass re-reads every file, works out a plan, and carries it out; between passes the
//! process sleeps until the next slot, a file change, SIGHUP, or a signal to stop. Sending goes
//! through the same preparation, engine and ledger as `letterpress send`, so an issue sent by
//! hand is never sent again by the scheduler, and a send cut short is resumed.

use std::collections::HashMap;
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
    /// What was last said about each thing that keeps repeating (a slot blocked, the
    /// settings invalid): said once at its level, then only at debug, until it changes.
    said: HashMap<String, String>,
    _lock: FileLock,
}

/// How long a slot that could not be sent (the issue does not pass check, another send
/// holds it, the relay refuses) waits before the next look, unless a file changes first.
pub const BLOCKED_RETRY: chrono::Duration = chrono::Duration::minutes(1);

/// Why a due issue did not go out in this pass.
enum SendOutcome {
    Sent(Tally),
    /// Not now: looked at again after `BLOCKED_RETRY` or when a file changes.
    Blocked,
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
            said: HashMap::new(),
            _lock: lock,
        })
    }

    /// Whether `message` is news for `topic`: true the first time and whenever it changes,
    /// so a state that lasts is logged once, not once a pass.
    fn is_news(&mut self, topic: &str, message: &str) -> bool {
        if self.said.get(topic).map(String::as_str) == Some(message) {
            return false;
        }
        self.said.insert(topic.to_string(), message.to_string());
        true
    }

    /// Logs, once per change, why an issue file does not pass `check`: an editor who saves a
    /// broken file learns it from the log at once, not at the slot.
    fn say_why_an_issue_does_not_load(&mut self, file: &str, problem: Option<String>) {
        let topic = format!("issue {file}");
        match problem {
            Some(problem) => {
                if self.is_news(&topic, &problem) {
                    warn!(file, %problem, "this issue does not pass check; it will not be sent until it is fixed");
                }
            }
            None => {
                if self.said.remove(&topic).is_some() {
                    info!(file, "this issue passes check again");
                }
            }
        }
    }

    /// One pass: re-read the files, plan, act.
    pub async fn pass(&mut self, stop: &watch::Receiver<bool>) -> anyhow::Result<Pass> {
        let now = self.clock.now();
        let newsletter = match self.workspace.load_newsletter() {
            Ok(valid) => {
                self.said.remove("settings");
                valid.value
            }
            Err(invalid) => {
                let problem = invalid.first_problem();
                if self.is_news("settings", &problem) {
                    error!(%problem, "newsletter.yaml is invalid; nothing is sent until it is fixed");
                }
                return Ok(Pass::default());
            }
        };
        let checked = super::issue_entries_and_problems(&self.workspace)
            .context("cannot list the issues folder")?;
        let mut entries = Vec::with_capacity(checked.len());
        for (entry, problem) in checked {
            self.say_why_an_issue_does_not_load(&entry.file, problem);
            entries.push(entry);
        }
        let mut ledger = self.state.open_ledger()?;
        let mut histories = Vec::new();
        for entry in &entries {
            if let Some(due) = plan::due(&newsletter.schedule, entry) {
                let due = due.with_timezone(&Utc);
                let mut history = history(&ledger, &entry.id, due)?;
                // Copies that only reached the outbox are still owed to their readers when
                // there is a relay: a send is due for them.
                if matches!(self.destination, Destination::Relay(..)) {
                    history.pending += ledger.counts(&entry.id)?.outbox;
                }
                histories.push((entry.id.clone(), due, history));
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
        let wake_at = |pass: &mut Pass, time: DateTime<Utc>| {
            pass.next_wake = Some(pass.next_wake.map_or(time, |known| known.min(time)));
        };
        for action in plan.actions {
            // An action recorded or sent changes what the next plan sees: look again right
            // after. One that could not be done waits, so a blocked slot never spins.
            match action {
                Action::Draft { id, due } => {
                    wake_at(&mut pass, now);
                    warn!(issue = %id, due = %crate::units::short_time(&due), "the slot came with the issue still a draft: not sent");
                    ledger.record_event(
                        &id,
                        due.with_timezone(&Utc),
                        EventKind::Draft,
                        None,
                        now,
                    )?;
                }
                Action::Missed { id, due, detail } => {
                    wake_at(&mut pass, now);
                    warn!(issue = %id, due = %crate::units::short_time(&due), "slot missed: {detail}");
                    ledger.record_event(
                        &id,
                        due.with_timezone(&Utc),
                        EventKind::Missed,
                        Some(&detail),
                        now,
                    )?;
                }
                Action::Conflict { ids, due } => {
                    wake_at(&mut pass, now);
                    let names: Vec<&str> = ids.iter().map(IssueId::as_str).collect();
                    let detail = format!(
                        "{} are all ready for this slot; none is sent until only one is",
                        names.join(", ")
                    );
                    error!(due = %crate::units::short_time(&due), "{detail}");
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
                    match outcome {
                        SendOutcome::Sent(tally) => {
                            wake_at(&mut pass, now);
                            pass.stopped |= *stop.borrow();
                            pass.sent.push((id, tally));
                        }
                        SendOutcome::Blocked => wake_at(&mut pass, now + BLOCKED_RETRY),
                    }
                    if pass.stopped {
                        break;
                    }
                }
            }
        }
        Ok(pass)
    }

    /// Checks the issue again, fresh from disk, and sends it.
    async fn send(
        &mut self,
        id: &IssueId,
        due: DateTime<Tz>,
        late: Option<chrono::Duration>,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<SendOutcome> {
        let now = self.clock.now();
        let due_utc = due.with_timezone(&Utc);
        let topic = format!("{id} {due_utc}");
        if IssueLock::is_held(&self.state, id) {
            if self.is_news(&topic, "busy") {
                info!(issue = %id, "a send of this issue is already running; looking again in a minute");
            }
            return Ok(SendOutcome::Blocked);
        }
        let edition = match Edition::load(&self.workspace, id.as_str()) {
            Ok(valid) => valid.value,
            Err(problem) => {
                let detail = problem.first_problem();
                if self.is_news(&topic, &detail) {
                    error!(issue = %id, %detail, "the issue does not pass check: not sent; looking again when a file changes");
                }
                // Recorded once for the slot, however many passes find it so.
                let mut ledger = self.state.open_ledger()?;
                let last = ledger.events(Some(id), 1)?.into_iter().next();
                let already = last.is_some_and(|event| {
                    event.due == due_utc
                        && event.kind == EventKind::Invalid
                        && event.detail.as_deref() == Some(detail.as_str())
                });
                if !already {
                    ledger.record_event(id, due_utc, EventKind::Invalid, Some(&detail), now)?;
                }
                return Ok(SendOutcome::Blocked);
            }
        };
        if edition.issue.status != Readiness::Ready {
            return Ok(SendOutcome::Blocked);
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
        let prepared = match PreparedSend::prepare(&self.state, &edition, secret, options, now) {
            Ok(prepared) => prepared,
            // A `send` by hand took the issue between the look above and now.
            Err(error) if matches!(error.downcast_ref(), Some(LockError::Held { .. })) => {
                if self.is_news(&topic, "busy") {
                    info!(issue = %id, "a send of this issue is already running; looking again in a minute");
                }
                return Ok(SendOutcome::Blocked);
            }
            Err(error) => return Err(error),
        };
        self.said.remove(&topic);
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
                warn!(issue = %id, due = %crate::units::short_time(&due), %late, recipients = prepared.jobs.len(), "sending late");
                Some(format!("late by {late}"))
            }
            None => {
                info!(issue = %id, due = %crate::units::short_time(&due), recipients = prepared.jobs.len(), "sending");
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
        let blocked = matches!(
            summary.stopped,
            Some(Stop::RelayUnreachable(_) | Stop::Fatal(_) | Stop::Refused(_))
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
        // A relay that refused the run is not asked again at once, but after a pause.
        Ok(if blocked {
            SendOutcome::Blocked
        } else {
            SendOutcome::Sent(tally)
        })
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
    let mut failures: u32 = 0;
    loop {
        let pass = match scheduler.pass(&stop).await {
            Ok(pass) => {
                if failures > 0 {
                    info!("the scheduler works again");
                    scheduler.state.clear_scheduler_problem();
                }
                failures = 0;
                pass
            }
            Err(error) if once => return Err(error),
            // A passing error (a full disk, a send started by hand at the same moment, a
            // ledger being restored) is logged, shown by `status`, and tried again later; the
            // scheduler is a service, and only a bad configuration at start-up ends it.
            Err(error) => {
                failures += 1;
                let delay = pass_retry_delay(failures);
                let problem = format!("{error:#}");
                error!(%problem, retry_in = %plan::describe(delay), "this pass of the scheduler failed");
                scheduler
                    .state
                    .record_scheduler_problem(&problem, failures, scheduler.clock.now());
                Pass {
                    next_wake: Some(scheduler.clock.now() + delay),
                    ..Pass::default()
                }
            }
        };
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

/// After the `failures`th failed pass in a row: 1 minute, doubling up to 10.
fn pass_retry_delay(failures: u32) -> chrono::Duration {
    let minutes = 1i64 << failures.saturating_sub(1).min(4);
    chrono::Duration::minutes(minutes.min(10))
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
