//! The lines `status` prints from the ledger beside the issues: suppressions, web sign-ups,
//! and what the scheduler did.

use crate::ledger::{Event, Source};
use crate::units::{grouped, short_time};

/// A moment from the ledger in the newsletter's zone (UTC while the settings do not load).
pub(super) fn in_zone(at: chrono::DateTime<chrono::Utc>, zone: Option<chrono_tz::Tz>) -> String {
    short_time(&at.with_timezone(&zone.unwrap_or(chrono_tz::UTC)))
}

/// One line on who gets no mail, by why: `3 addresses suppressed (unsubscribed by link)`.
pub(super) fn suppressions(counts: &[(Source, u64)]) {
    let total: u64 = counts.iter().map(|(_, count)| count).sum();
    if total == 0 {
        return;
    }
    let label = |source: &Source| match source {
        Source::OneClick => "unsubscribed by link".to_string(),
        other => other.as_str().to_string(),
    };
    let why = match counts {
        [(source, _)] => label(source),
        several => several
            .iter()
            .map(|(source, count)| format!("{} {}", grouped(*count), label(source)))
            .collect::<Vec<_>>()
            .join(", "),
    };
    println!(
        "{} address{} suppressed ({why})",
        grouped(total),
        if total == 1 { "" } else { "es" }
    );
}

/// One line on the web's sign-ups, when there are any.
pub(super) fn signups((confirmed, pending): (u64, u64)) {
    if confirmed + pending > 0 {
        println!(
            "Web sign-ups: {} confirmed, {} awaiting confirmation",
            grouped(confirmed),
            grouped(pending)
        );
    }
}

/// What the scheduler did lately, the newest first, in the newsletter's zone.
pub(super) fn events(events: &[Event], zone: Option<chrono_tz::Tz>) {
    if events.is_empty() {
        return;
    }
    println!("Scheduler, most recent first:");
    for event in events {
        let detail = event
            .detail
            .as_deref()
            .map(|detail| format!(": {}", crate::units::printable(detail)))
            .unwrap_or_default();
        println!(
            "  {}  {} (slot {})  {}{detail}",
            in_zone(event.at, zone),
            event.issue,
            in_zone(event.due, zone),
            event.kind.as_str()
        );
    }
}
