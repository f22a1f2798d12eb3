//! Sends that are stopped: by a second send, by SIGTERM, and by SIGKILL in the middle. After
//! each, every subscriber has the issue exactly once, except those reported uncertain, and
//! nobody is left out.

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestWorkspace, numbered_subscribers};
use letterpress::ledger::State;
use letterpress_testkit::{Behaviour, SmtpServer};

const ISSUE: &str = "2021-08-23";

fn start_send(workspace: &TestWorkspace, server: &SmtpServer) -> Child {
    workspace
        .std_sender(&server.url())
        .args(["send", ISSUE, "--yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(server: &SmtpServer, messages: usize) {
    server
        .wait_for_messages_blocking(messages, Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("fewer than {messages} messages arrived"));
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// How many messages each recipient got.
fn deliveries(server: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for message in server.messages() {
        for recipient in message.rcpt_to {
            *counts.entry(recipient).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn a_second_send_of_the_same_issue_while_one_runs_is_refused() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(200),
        "delivery:\n  concurrency: 2\n  rate_per_second: 40\n",
    );
    let mut first = start_send(&workspace, &server);
    wait_for(&server, 5);
    let second = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(second.status, 1, "{second:?}");
    assert_eq!(
        second.stderr,
        format!(
            "error: another send of 2021-08-23 is running (pid {}); wait for it to finish, or stop it first\n",
            first.id()
        )
    );
    let status = workspace.run(&["status", ISSUE, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(
        status["uncertain"], 0,
        "in flight in a running send is not uncertain"
    );
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn sigterm_finishes_what_is_in_flight_and_a_rerun_sends_the_rest_exactly_once() {
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(300),
        "delivery:\n  concurrency: 4\n  rate_per_second: 100\n",
    );
    let child = start_send(&workspace, &server);
    wait_for(&server, 50);
    signal(&child, "TERM");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("Stopping: finishing the messages in flight and recording them"),
        "{stderr}"
    );
    assert!(stdout.contains("Stopped before the end. Run `letterpress send 2021-08-23` again to send to the rest: nobody gets it twice."), "{stdout}");

    let arrived = server.message_count();
    let counts = workspace
        .ledger()
        .counts(&crate::support::issue(ISSUE))
        .unwrap();
    assert_eq!(
        counts.sent as usize, arrived,
        "every message that arrived is recorded as sent"
    );
    assert_eq!(counts.sending, 0, "a clean stop leaves nothing uncertain");
    assert!(arrived < 300);

    let rerun = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(rerun.status, 0, "{rerun:?}");
    let deliveries = deliveries(&server);
    assert_eq!(deliveries.len(), 300);
    assert!(
        deliveries.values().all(|&count| count == 1),
        "someone got it twice"
    );
}

#[test]
fn a_killed_send_resumes_without_sending_anyone_twice_or_leaving_anyone_out() {
    const SUBSCRIBERS: usize = 3000;
    let server = SmtpServer::start_in_background(Behaviour::new());
    let workspace = TestWorkspace::for_delivery(
        &numbered_subscribers(SUBSCRIBERS),
        "delivery:\n  concurrency: 8\n  rate_per_second: 600\n",
    );
    let mut child = start_send(&workspace, &server);
    wait_for(&server, 1000);
    child.kill().unwrap(); // SIGKILL: no chance to record anything
    child.wait().unwrap();
    let arrived_before = server.message_count();

    let uncertain: Vec<String> = workspace
        .ledger()
        .rows_in(&crate::support::issue(ISSUE), State::Sending)
        .unwrap()
        .into_iter()
        .map(|row| row.email.to_string())
        .collect();
    let status = workspace.run(&["status", ISSUE, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["uncertain"].as_u64(), Some(uncertain.len() as u64));
    assert_eq!(status["running"], false);

    let started = Instant::now();
    let rerun = workspace.send(&server.url(), &[ISSUE, "--yes"]);
    assert_eq!(
        rerun.status, 1,
        "uncertain recipients keep the exit status non-zero: {rerun:?}"
    );
    assert!(
        rerun.stderr.contains(&format!(
            "{} recipient(s) were left uncertain by an earlier send of 2021-08-23 (it was interrupted, or the relay never answered their message)",
            uncertain.len()
        )),
        "{}",
        rerun.stderr
    );
    let deliveries = deliveries(&server);
    let mut missing = Vec::new();
    for index in 0..SUBSCRIBERS {
        let address = format!("reader{index}@example.com");
        let count = deliveries.get(&address).copied().unwrap_or(0);
        if uncertain.contains(&address) {
            assert!(count <= 1, "{address} (uncertain) got it {count} times");
        } else if count != 1 {
            missing.push((address, count));
        }
    }
    assert!(missing.is_empty(), "not exactly once: {missing:?}");
    // Uncertain means "was in flight": claimed and not yet recorded when the process died.
    assert!(
        uncertain.len() <= 128,
        "{} uncertain is more than were ever in flight",
        uncertain.len()
    );
    eprintln!(
        "crash test: {arrived_before} delivered before SIGKILL, {} uncertain, {} sent by the rerun in {:.1}s",
        uncertain.len(),
        server.message_count() - arrived_before,
        started.elapsed().as_secs_f64()
    );

    // Asked to, the uncertain ones are sent again; those who already had it get a second copy,
    // which is why it is never the default.
    let resend = workspace.send(&server.url(), &[ISSUE, "--yes", "--resend-uncertain"]);
    assert_eq!(resend.status, 0, "{resend:?}");
    let deliveries = self::deliveries(&server);
    for index in 0..SUBSCRIBERS {
        let address = format!("reader{index}@example.com");
        assert!(
            deliveries.get(&address).copied().unwrap_or(0) >= 1,
            "{address} never got it"
        );
    }
}

#[test]
fn a_second_signal_aborts_at_once_leaving_what_was_in_flight_uncertain() {
    // Every reply is slow, so messages are in flight when the signals arrive.
    let server =
        SmtpServer::start_in_background(Behaviour::new().reply_delay(Duration::from_millis(400)));
    let workspace =
        TestWorkspace::for_delivery(&numbered_subscribers(20), "delivery:\n  concurrency: 4\n");
    let child = start_send(&workspace, &server);
    wait_for(&server, 1);
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(100));
    signal(&child, "TERM");
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the second signal did not abort at once"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "Aborted: messages in flight are left uncertain; `letterpress status` lists them."
        ),
        "{stderr}"
    );
    let status = workspace.run(&["status", ISSUE, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(status["uncertain"].as_u64().unwrap() > 0, "{status}");
}
