//! The scheduler: weeks of slots in milliseconds on a clock the test sets, restarts in the
//! middle of a send, two schedulers at once, an issue broken at its slot, and the real binary
//! sending a slot a few seconds away.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestWorkspace, numbered_subscribers};
use chrono::{DateTime, Timelike, Utc};
use letterpress::clock::{Clock, FixedClock};
use letterpress::delivery::smtp::TlsSettings;
use letterpress::delivery::smtp_url::SmtpUrl;
use letterpress::delivery::transport::Destination;
use letterpress::schedule::daemon::Scheduler;
use letterpress::state::StateDir;
use letterpress::workspace::Workspace;
use letterpress_testkit::{Behaviour, SmtpServer};
use tokio::sync::watch;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn issue(date: &str, status: &str, extra: &str) -> String {
    format!(
        "date: {date}\nstatus: {status}\nsubject: \"Issue of {date}\"\npreheader: p\nsections:\n  - heading: News\n    articles:\n      - title: A story\n        url: https://news.example.com/{date}\n        excerpt: What happened.\n{extra}"
    )
}

/// A workspace whose issues are only the ones the test writes.
fn workspace(subscribers: usize, delivery: &str) -> TestWorkspace {
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(subscribers), delivery);
    std::fs::remove_file(workspace.path("issues/2021-08-23.yaml")).unwrap();
    workspace
}

fn scheduler(workspace: &TestWorkspace, clock: &Arc<FixedClock>, server: &SmtpServer) -> Scheduler {
    Scheduler::start(
        Workspace::new(workspace.root()),
        StateDir::of(workspace.root()),
        clock.clone(),
        Destination::Relay(
            SmtpUrl::parse(&server.url()).unwrap(),
            TlsSettings::load(None).unwrap(),
        ),
        None,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Messages received per subject.
fn subjects(server: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in server.messages() {
        *counts
            .entry(message.header("Subject").unwrap())
            .or_insert(0) += 1;
    }
    counts
}

const DELIVERY: &str = "delivery:\n  concurrency: 4\n  timeout_seconds: 5\n";

#[tokio::test]
async fn three_weeks_of_slots_pass_in_milliseconds_and_only_ready_issues_go_out() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let workspace = workspace(3, DELIVERY);
    workspace.write("issues/2026-11-30.yaml", &issue("2026-11-30", "ready", ""));
    workspace.write("issues/2026-12-07.yaml", &issue("2026-12-07", "draft", ""));
    workspace.write("issues/2026-12-14.yaml", &issue("2026-12-14", "ready", ""));
    let clock = Arc::new(FixedClock::new(utc("2026-11-29T00:00:00Z")));
    let mut scheduler = scheduler(&workspace, &clock, &server);
    let (_stop_sender, stop) = watch::channel(false);

    let started = Instant::now();
    let mut wakes = Vec::new();
    for _ in 0..20 {
        let pass = scheduler.pass(&stop).await.unwrap();
        match pass.next_wake {
            Some(wake) if wake > clock.now() => {
                wakes.push(wake);
                clock.set(wake);
            }
            Some(_) => {}
            None => break,
        }
    }
    eprintln!("three weeks of schedule in {:?}", started.elapsed());
    assert_eq!(
        wakes,
        [
            utc("2026-11-30T14:00:00Z"),
            utc("2026-12-07T14:00:00Z"),
            utc("2026-12-14T14:00:00Z")
        ],
        "the scheduler wakes exactly at each slot (09:00 in Toronto)"
    );
    let subjects = subjects(&server);
    assert_eq!(subjects.get("Issue of 2026-11-30"), Some(&3));
    assert_eq!(subjects.get("Issue of 2026-12-14"), Some(&3));
    assert_eq!(
        subjects.get("Issue of 2026-12-07"),
        None,
        "a draft is never sent"
    );
    let events = workspace
        .ledger()
        .events(Some(&crate::support::issue("2026-12-07")), 10)
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind.as_str(), "draft");

    // Another pass at the same time finds nothing left to do.
    scheduler.pass(&stop).await.unwrap();
    assert_eq!(server.message_count(), 6);
}

#[tokio::test]
async fn a_scheduler_restarted_in_the_middle_of_a_send_resumes_it_and_sends_nobody_twice() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let workspace = workspace(200, "delivery:\n  concurrency: 4\n  rate_per_second: 200\n");
    workspace.write("issues/2026-11-30.yaml", &issue("2026-11-30", "ready", ""));
    let clock = Arc::new(FixedClock::new(utc("2026-11-30T14:00:00Z")));

    let mut first = scheduler(&workspace, &clock, &server);
    let (stop_sender, stop) = watch::channel(false);
    let pass = tokio::spawn(async move {
        let pass = first.pass(&stop).await.unwrap();
        (first, pass)
    });
    server
        .wait_for_messages(40, Duration::from_secs(20))
        .await
        .unwrap();
    stop_sender.send(true).unwrap();
    let (first, pass) = pass.await.unwrap();
    assert!(pass.stopped);
    let before_restart = server.message_count();
    assert!(before_restart < 200, "stopped before the end");
    drop(first);

    clock.set(utc("2026-11-30T14:01:00Z"));
    let mut second = scheduler(&workspace, &clock, &server);
    let (_stop_sender, stop) = watch::channel(false);
    second.pass(&stop).await.unwrap();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for message in server.messages() {
        *per_recipient.entry(message.rcpt_to[0].clone()).or_insert(0) += 1;
    }
    assert_eq!(per_recipient.len(), 200, "nobody left out");
    assert!(
        per_recipient.values().all(|&count| count == 1),
        "nobody twice"
    );
    let counts = workspace
        .ledger()
        .counts(&crate::support::issue("2026-11-30"))
        .unwrap();
    assert_eq!((counts.sent, counts.sending, counts.pending), (200, 0, 0));
}

#[tokio::test]
async fn only_one_scheduler_runs_in_a_workspace() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let workspace = workspace(1, DELIVERY);
    let clock = Arc::new(FixedClock::new(utc("2026-11-30T00:00:00Z")));
    let _first = scheduler(&workspace, &clock, &server);
    let second = Scheduler::start(
        Workspace::new(workspace.root()),
        StateDir::of(workspace.root()),
        clock.clone(),
        Destination::Outbox,
        None,
    );
    assert_eq!(
        second.err().unwrap().to_string(),
        format!(
            "a scheduler is already running in this workspace (pid {})",
            std::process::id()
        )
    );
}

#[tokio::test]
async fn an_issue_broken_at_its_slot_is_not_sent_until_fixed_within_the_grace() {
    let server = SmtpServer::start(Behaviour::new()).await;
    let workspace = workspace(2, DELIVERY);
    workspace.write("issues/2026-11-30.yaml", &issue("2026-11-30", "ready", ""));
    let clock = Arc::new(FixedClock::new(utc("2026-11-30T13:00:00Z")));
    let mut scheduler = scheduler(&workspace, &clock, &server);
    let (_stop_sender, stop) = watch::channel(false);
    assert!(scheduler.pass(&stop).await.unwrap().sent.is_empty());

    // The editor breaks it an hour before the slot.
    workspace.replace(
        "issues/2026-11-30.yaml",
        "https://news.example.com/2026-11-30",
        "javascript:alert(1)",
    );
    clock.set(utc("2026-11-30T14:00:00Z"));
    scheduler.pass(&stop).await.unwrap();
    assert_eq!(server.message_count(), 0);
    let events = workspace
        .ledger()
        .events(Some(&crate::support::issue("2026-11-30")), 10)
        .unwrap();
    assert_eq!(events[0].kind.as_str(), "invalid");
    assert_eq!(
        events[0].detail.as_deref(),
        Some(
            "issues/2026-11-30.yaml:9:14: sections[0].articles[0].url: `javascript:alert(1)` must be an http(s) URL, not `javascript:`"
        )
    );

    // Fixed two hours later, inside the six-hour grace: it goes out, late.
    workspace.replace(
        "issues/2026-11-30.yaml",
        "javascript:alert(1)",
        "https://news.example.com/fixed",
    );
    clock.set(utc("2026-11-30T16:00:00Z"));
    scheduler.pass(&stop).await.unwrap();
    assert_eq!(server.message_count(), 2);
    let events = workspace
        .ledger()
        .events(Some(&crate::support::issue("2026-11-30")), 10)
        .unwrap();
    assert_eq!(events[1].kind.as_str(), "started");
    assert_eq!(events[1].detail.as_deref(), Some("late by 2h"));
}

#[test]
fn the_real_binary_sends_a_slot_a_few_seconds_away_and_a_second_scheduler_is_refused() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(5, DELIVERY);
    let toronto = chrono_tz::America::Toronto;
    // send_at has whole seconds.
    let due = (Utc::now() + chrono::Duration::seconds(4))
        .with_timezone(&toronto)
        .with_nanosecond(0)
        .unwrap();
    let date = due.format("%Y-%m-%d").to_string();
    let send_at = due.format("%Y-%m-%d %H:%M:%S").to_string();
    workspace.write(
        &format!("issues/{date}-soon.yaml"),
        &issue(&date, "ready", &format!("send_at: \"{send_at}\"\n")),
    );

    let mut command = workspace.std_sender(&server.url());
    command.env_remove("LETTERPRESS_NOW");
    let mut daemon = command
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    std::thread::sleep(Duration::from_millis(500));
    let mut second = workspace.std_sender(&server.url());
    second.env_remove("LETTERPRESS_NOW");
    let second = second.arg("run").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!(
            "error: a scheduler is already running in this workspace (pid {})",
            daemon.id()
        )),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    server
        .wait_for_messages_blocking(5, Duration::from_secs(30))
        .unwrap();
    let arrived = Utc::now();
    let started_late_by = arrived - due.with_timezone(&Utc);
    eprintln!(
        "the slot's first messages arrived {} ms after it",
        started_late_by.num_milliseconds()
    );
    assert!(
        started_late_by >= chrono::Duration::zero(),
        "sent before its time"
    );

    // The last message arriving is not the run's end: it still records and logs the send.
    // Stopping it before then is another test's business, so wait for the log line.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let mut stderr = std::io::BufReader::new(daemon.stderr.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut stderr, &mut line).unwrap_or(0) > 0 {
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
        })
    };
    let waiting_since = std::time::Instant::now();
    while !log.lock().unwrap().contains("send finished")
        && waiting_since.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    let status = daemon.wait().unwrap();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "{log}");
    assert!(log.contains("scheduler started"), "{log}");
    assert!(log.contains(&format!("sending issue={date}-soon")), "{log}");
    assert!(log.contains("send finished"), "{log}");
    assert_eq!(server.message_count(), 5);
}

/// What `run --once --outbox` prints on Tuesday 2021-08-17, the day after a slot.
fn run_once_on_tuesday(workspace: &TestWorkspace) -> String {
    let run = workspace
        .command()
        .env("LETTERPRESS_NOW", "2021-08-17T12:00:00Z")
        .args(["run", "--once", "--outbox"])
        .output()
        .unwrap();
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn run_once_with_nothing_due_says_when_the_next_slot_is_in_one_line() {
    let workspace = workspace(2, crate::support::EXAMPLE_DELIVERY);
    workspace.write("issues/2021-08-23.yaml", &issue("2021-08-23", "ready", ""));
    // Monday 2021-08-16 12:00 UTC is 08:00 in Toronto: that day's 09:00 slot has no issue.
    let run = workspace.run(&["run", "--once", "--outbox"]);
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "Nothing is due; the next slot is Mon 2021-08-16 09:00 -04:00 -> no issue yet\n"
    );
    assert_eq!(
        run_once_on_tuesday(&workspace),
        "Nothing is due; the next slot is Mon 2021-08-23 09:00 -04:00 -> issues/2021-08-23.yaml (ready)\n"
    );

    // Sent by hand before its slot (or the clock set back after its send): not "ready".
    let server = SmtpServer::start_in_background(Behaviour::new());
    let sent = workspace.send(&server.url(), &["2021-08-23", "--yes"]);
    assert_eq!(sent.status, 0, "{sent:?}");
    assert_eq!(
        run_once_on_tuesday(&workspace),
        "Nothing is due; the next slot is Mon 2021-08-23 09:00 -04:00 -> issues/2021-08-23.yaml (already sent)\n"
    );
}
