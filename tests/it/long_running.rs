//! `run` and `serve` over time and under concurrency: a blocked slot that does not spin, a
//! passing error that does not end the scheduler, a ledger deleted or replaced under them,
//! two processes creating a ledger at once, an unsubscribe while `send` waits at its prompt,
//! `status` that never locks a send out, and `status` at the odd moments. Real processes,
//! with a set clock where time matters.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use letterpress::delivery::lock::IssueLock;
use letterpress::ledger::{EventKind, Ledger, Source};
use letterpress::state::StateDir;
use letterpress_testkit::{Behaviour, SmtpServer};

use crate::support::{
    ServeProcess, TestWorkspace, have_tool, issue, key, numbered_subscribers, one_click,
};

/// Monday 2026-11-30 09:00 in Toronto, the example newsletter's slot.
const SLOT: &str = "2026-11-30T14:00:00Z";
const ISSUE: &str = "2026-11-30";
const DELIVERY: &str = "delivery:\n  concurrency: 2\n  max_attempts: 2\n  timeout_seconds: 2\n";

fn issue_file(status: &str, url: &str) -> String {
    format!(
        "date: {ISSUE}\nstatus: {status}\nsubject: \"The issue\"\npreheader: p\nsections:\n  - heading: News\n    articles:\n      - title: A story\n        url: {url}\n        excerpt: What happened.\n"
    )
}

fn workspace(readers: usize) -> TestWorkspace {
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(readers), DELIVERY);
    std::fs::remove_file(workspace.path("issues/2021-08-23.yaml")).unwrap();
    workspace
}

/// `letterpress run` at the slot (plus `after`), sending to `server`, its log piped.
fn start_run(workspace: &TestWorkspace, server: &SmtpServer, now: &str) -> Child {
    workspace
        .std_sender(&server.url())
        .env("LETTERPRESS_NOW", now)
        .args(["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stops a child with SIGTERM and returns its log.
fn stop(mut child: Child) -> String {
    // SAFETY: kill only sends a signal to our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let output = {
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    };
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Seconds of CPU a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|both| both.iter().filter_map(|t| t.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

#[test]
fn a_slot_that_fails_its_check_is_logged_and_recorded_once_not_spun_on() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(3);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "javascript:alert(1)"),
    );
    let child = start_run(&workspace, &server, "2026-11-30T14:01:00Z");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(4));
    let cpu = cpu_seconds(pid);
    let log = stop(child);
    assert_eq!(
        log.matches("the issue does not pass check").count(),
        1,
        "{log}"
    );
    let events = workspace.ledger().events(Some(&issue(ISSUE)), 100).unwrap();
    let invalid = events
        .iter()
        .filter(|event| event.kind == EventKind::Invalid)
        .count();
    assert_eq!(invalid, 1, "{events:?}");
    assert!(cpu < 1.0, "{cpu} CPU seconds in 4 seconds of waiting");
    assert_eq!(server.message_count(), 0);
}

#[test]
fn an_issue_saved_broken_between_slots_is_logged_with_its_reason_at_once_and_once() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(3);
    // Two days before the slot: nothing is due, so only the file watcher brings a pass.
    let child = start_run(&workspace, &server, "2026-11-28T14:00:00Z");
    std::thread::sleep(Duration::from_secs(1));
    let file = format!("issues/{ISSUE}.yaml");
    workspace.write(&file, &issue_file("ready", "javascript:alert(1)"));
    std::thread::sleep(Duration::from_secs(2));
    // Saved again, still broken the same way: nothing new to say.
    workspace.write(&file, &issue_file("ready", "javascript:alert(1) "));
    std::thread::sleep(Duration::from_secs(2));
    workspace.write(&file, &issue_file("ready", "https://example.org/story"));
    std::thread::sleep(Duration::from_secs(2));
    let log = stop(child);
    let broken: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("this issue does not pass check"))
        .collect();
    assert_eq!(broken.len(), 1, "{log}");
    assert!(broken[0].contains("WARN"), "{log}");
    assert!(broken[0].contains(&file), "{log}");
    assert!(
        broken[0].contains("javascript"),
        "the reason is in the line: {log}"
    );
    assert_eq!(
        log.matches("this issue passes check again").count(),
        1,
        "{log}"
    );
    assert_eq!(server.message_count(), 0);
}

#[test]
fn a_send_by_hand_holding_the_issue_makes_the_scheduler_wait_once_not_spin() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(3);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    // The lock a `send` at its prompt holds.
    let state = StateDir::of(workspace.root());
    let held = IssueLock::acquire(&state, &issue(ISSUE)).unwrap();
    let child = start_run(&workspace, &server, "2026-11-30T14:01:00Z");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(pid);
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "run is still running"
    );
    drop(held);
    let log = stop(child);
    assert_eq!(log.matches("already running").count(), 1, "{log}");
    assert!(cpu < 1.0, "{cpu} CPU seconds in 3 seconds of waiting");
}

#[test]
fn a_pass_that_fails_is_logged_shown_and_retried_and_the_scheduler_lives_on() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(3);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    // Something in the way of the ledger: a folder where its file should be.
    std::fs::create_dir_all(workspace.path(".letterpress/ledger.sqlite3")).unwrap();
    let child = start_run(&workspace, &server, "2026-11-30T14:01:00Z");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while StateDir::of(workspace.root()).scheduler_problem().is_none() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = workspace.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("The scheduler's passes are failing (1 in a row"),
        "{status:?}"
    );
    // Fixed, and SIGHUP asks it to look again at once.
    std::fs::remove_dir(workspace.path(".letterpress/ledger.sqlite3")).unwrap();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    server
        .wait_for_messages_blocking(3, Duration::from_secs(20))
        .unwrap();
    let log = stop(child);
    assert!(log.contains("this pass of the scheduler failed"), "{log}");
    assert!(log.contains("the scheduler works again"), "{log}");
    assert!(StateDir::of(workspace.root()).scheduler_problem().is_none());
}

#[test]
fn a_deleted_ledger_stops_sending_instead_of_mailing_everyone_again() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(4);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    let once = |now: &str| {
        crate::support::Run::from(
            workspace
                .sender(&server.url())
                .env("LETTERPRESS_NOW", now)
                .args(["run", "--once"])
                .output()
                .unwrap(),
        )
    };
    assert_eq!(once("2026-11-30T14:01:00Z").status, 0);
    assert_eq!(server.message_count(), 4);
    for suffix in ["", "-wal", "-shm"] {
        let _ =
            std::fs::remove_file(workspace.path(&format!(".letterpress/ledger.sqlite3{suffix}")));
    }
    let again = once("2026-11-30T14:20:00Z");
    assert_eq!(again.status, 1, "{again:?}");
    assert!(
        again.stderr.contains(
            "the ledger `.letterpress/ledger.sqlite3` is gone, but this workspace had one"
        ),
        "{}",
        again.stderr
    );
    let by_hand = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(by_hand.status, 1, "{by_hand:?}");
    assert_eq!(server.message_count(), 4, "nobody got it twice");
}

#[test]
fn a_state_folder_deleted_whole_under_a_running_scheduler_is_not_taken_for_a_new_workspace() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(4);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    let run = start_run(&workspace, &server, "2026-11-30T14:01:00Z");
    server
        .wait_for_messages_blocking(4, Duration::from_secs(30))
        .unwrap();
    // Let the pass record the send before the folder goes.
    let ledger = workspace.path(".letterpress/ledger.sqlite3");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline
        && letterpress::ledger::Ledger::open_read_only(&ledger)
            .ok()
            .and_then(|ledger| ledger.counts(&crate::support::issue(ISSUE)).ok())
            .is_none_or(|counts| counts.sent < 4)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The ledger and the marker that says there was one, all at once; then "look again".
    std::fs::remove_dir_all(workspace.path(".letterpress")).unwrap();
    // SAFETY: kill only sends a signal to our own child's pid.
    unsafe { libc::kill(run.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_secs(3));
    let log = stop(run);
    assert_eq!(server.message_count(), 4, "nobody got it twice: {log}");
    assert!(log.contains("is gone, but this workspace had one"), "{log}");
}

#[test]
fn serve_never_answers_an_unsubscribe_it_wrote_to_a_ledger_that_is_gone_or_replaced() {
    let workspace = TestWorkspace::example();
    let run = workspace
        .command()
        .env("LETTERPRESS_SECRET", crate::support::SECRET)
        .args(["send", "2021-08-23", "--yes"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let server = ServeProcess::start(&workspace);
    let link = |address: &str| {
        let secret = letterpress::secret::Secret::from_passphrase(crate::support::SECRET).unwrap();
        server.url(&format!(
            "/unsubscribe/{}",
            secret.unsubscribe_token("global-ai-weekly.weekly.example.com", &key(address))
        ))
    };
    let ledger_path = workspace.path(".letterpress/ledger.sqlite3");
    let suppressed = |address: &str| {
        Ledger::open(&ledger_path)
            .unwrap()
            .suppression(&key(address))
            .unwrap()
            .is_some()
    };

    // A backup taken now, then restored over the live file with mv.
    let backup = workspace.path("backup.sqlite3");
    std::fs::copy(&ledger_path, &backup).unwrap();
    assert_eq!(one_click(&link("ada.okafor@example.com")).status, 200);
    std::fs::rename(&backup, &ledger_path).unwrap();
    let _ = std::fs::remove_file(workspace.path(".letterpress/ledger.sqlite3-wal"));
    let _ = std::fs::remove_file(workspace.path(".letterpress/ledger.sqlite3-shm"));
    assert_eq!(one_click(&link("li.wei@research.example.org")).status, 200);
    assert!(
        suppressed("li.wei@research.example.org"),
        "written to the ledger now at the path"
    );

    // Deleted: no answer that claims it was recorded.
    for suffix in ["", "-wal", "-shm"] {
        let _ =
            std::fs::remove_file(workspace.path(&format!(".letterpress/ledger.sqlite3{suffix}")));
    }
    let refused = one_click(&link("chloe.lefevre@example.com"));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        !ledger_path.exists(),
        "no empty ledger was made in its place"
    );
}

#[test]
fn two_processes_creating_a_ledger_at_once_both_succeed() {
    for _ in 0..10 {
        let workspace = TestWorkspace::example();
        let spawn = || {
            workspace
                .std_command()
                .args(["test", "2021-08-23", "--to", "editor@example.com"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (first, second) = (spawn(), spawn());
        for child in [first, second] {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert_eq!(
            workspace
                .ledger()
                .test_send_count(&issue("2021-08-23"))
                .unwrap(),
            2
        );
    }
}

#[test]
fn a_reader_who_unsubscribes_while_send_waits_at_its_prompt_is_not_mailed() {
    if !have_tool("script", "bsdutils") {
        return;
    }
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(&numbered_subscribers(3), DELIVERY);
    // `script` gives send the terminal its prompt needs; we answer through its stdin. The
    // sender's environment (relay, secret, clock) is what `std_sender` sets.
    let sender = workspace.std_sender(&server.url());
    let mut command = std::process::Command::new("script");
    command.current_dir(workspace.root()).env_clear();
    for (name, value) in sender.get_envs() {
        // The real clock: the unsubscribe must come after the send read its list.
        if let Some(value) = value.filter(|_| name != "LETTERPRESS_NOW") {
            command.env(name, value);
        }
    }
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    let mut child = command
        .args([
            "-qfec",
            &format!("{} send 2021-08-23", sender.get_program().to_string_lossy()),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&seen).contains("[y/N]") && Instant::now() < deadline {
        let mut chunk = [0u8; 256];
        let read = std::io::Read::read(stdout.get_mut(), &mut chunk).unwrap();
        if read == 0 {
            break;
        }
        seen.extend_from_slice(&chunk[..read]);
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("[y/N]"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    workspace
        .ledger()
        .suppress(
            &key("reader1@example.com"),
            &Source::OneClick,
            None,
            chrono::Utc::now(),
        )
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"y\n").unwrap();
    let mut rest = String::new();
    let _ = stdout.read_line(&mut rest);
    child.wait().unwrap();
    let mut recipients: Vec<String> = server
        .messages()
        .iter()
        .flat_map(|message| message.rcpt_to.clone())
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["reader0@example.com", "reader2@example.com"]);
}

#[test]
fn status_asking_about_a_send_never_locks_one_out() {
    let workspace = workspace(1);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    let state = StateDir::of(workspace.root());
    let mut statuses: Vec<Child> = (0..20)
        .map(|_| {
            workspace
                .std_command()
                .args(["status", ISSUE])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && statuses
            .iter_mut()
            .any(|child| child.try_wait().unwrap().is_none())
    {
        let lock = IssueLock::acquire(&state, &issue(ISSUE));
        assert!(
            lock.is_ok(),
            "a status took the issue's lock: {:?}",
            lock.err()
        );
    }
    for mut child in statuses {
        child.wait().unwrap();
    }
}

#[test]
fn status_shows_a_due_issue_at_its_very_slot_and_a_sent_one_as_sent_after_the_clock_goes_back() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = workspace(2);
    workspace.write(
        &format!("issues/{ISSUE}.yaml"),
        &issue_file("ready", "https://news.example.com/a"),
    );
    let at = |now: &str, args: &[&str]| {
        crate::support::Run::from(
            workspace
                .sender(&server.url())
                .env("LETTERPRESS_NOW", now)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let status = at(SLOT, &["status"]);
    assert!(
        status.stdout.contains(&format!(
            "Overdue: Mon 2026-11-30 09:00 -05:00 -> issues/{ISSUE}.yaml (ready and due now"
        )),
        "{}",
        status.stdout
    );
    assert_eq!(at(SLOT, &["run", "--once"]).status, 0);
    let back = at("2026-11-30T13:00:00Z", &["status"]);
    assert!(
        back.stdout.contains(&format!(
            "Mon 2026-11-30 09:00 -05:00 -> issues/{ISSUE}.yaml (already sent)"
        )),
        "{}",
        back.stdout
    );
    assert!(!back.stdout.contains("Overdue"), "{}", back.stdout);
}
