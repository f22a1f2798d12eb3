//! The line a real send ends with: what this run did, and how fast.

use std::time::Duration;

use crate::delivery::engine::Tally;
use crate::units::{grouped, human_size};

/// What this run did, in one line, and the heading of the report that follows.
pub fn print(tally: &Tally, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let mut skipped = String::new();
    if tally.skipped > 0 {
        skipped.push_str(&format!(
            ", {} unsubscribed during the send",
            grouped(tally.skipped)
        ));
    }
    if tally.uncertain > 0 {
        skipped.push_str(&format!(", {} uncertain", grouped(tally.uncertain)));
    }
    println!(
        "This run: {} sent, {} failed, {} deferred, {} retries{skipped}, {} in {:.1}s ({:.0} messages/s)",
        grouped(tally.sent),
        grouped(tally.failed),
        grouped(tally.deferred),
        grouped(tally.retries),
        human_size(tally.bytes as usize),
        seconds,
        tally.sent as f64 / seconds.max(0.001)
    );
    println!("The issue now:");
}
