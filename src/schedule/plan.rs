//! What the scheduler should do now, worked out from the issues, the ledger and the clock.
//!
//! Pure: no files, no network, no sleeping, so the rules can be tested a week at a time in
//! microseconds. The daemon carries the plan out and sleeps until `next_wake`.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;

use crate::ledger::EventKind;
use crate::model::issue::{Issue, IssueId, Readiness};
use crate::model::newsletter::WeeklySlot;

/// A deferred recipient is tried again this long after the issue's last delivery activity.
pub const RETRY_DEFERRED_AFTER: Duration = Duration::minutes(10);

/// The longest the daemon sleeps, however far the next slot: a suspended machine or a changed
/// wall clock is noticed within this time.
pub const LONGEST_SLEEP: Duration = Duration::minutes(10);

/// An issue file as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct IssueEntry {
    /// From the file's name.
    pub id: IssueId,
    pub file: String,
    /// `None` when the file does not pass `check` right now.
    pub issue: Option<Issue>,
}

impl IssueEntry {
    /// What the scheduler will do with it, in a few words.
    pub fn standing(&self) -> &'static str {
        match self.issue.as_ref().map(|issue| issue.status) {
            Some(crate::model::issue::Readiness::Ready) => "ready",
            Some(crate::model::issue::Readiness::Draft) => "draft: will not be sent",
            None => "does not pass check: will not be sent until fixed",
        }
    }
}

/// When an issue goes out: its `send_at`, or the weekly slot on its `date`. An issue dated on
/// another weekday without `send_at` has no slot. A file that does not load falls back to
/// the date in its name, so that its failure at send time is reported rather than silent.
pub fn due(slot: &WeeklySlot, entry: &IssueEntry) -> Option<DateTime<Tz>> {
    match &entry.issue {
        Some(issue) => match issue.send_at {
            Some(local) => Some(slot.resolve_local(local)),
            None => (issue.date.weekday() == slot.day).then(|| slot.instant_on(issue.date)),
        },
        None => entry
            .id
            .as_str()
            .get(..10)
            .and_then(|prefix| chrono::NaiveDate::parse_from_str(prefix, "%Y-%m-%d").ok())
            .filter(|date| date.weekday() == slot.day)
            .map(|date| slot.instant_on(date)),
    }
}

/// What the ledger knows about an issue, as far as planning needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Recipients have been queued for it (by `send` or the scheduler).
    pub started: bool,
    /// Recipients queued and never tried: a send was interrupted, resume at once.
    pub pending: u64,
    /// Recipients a relay turned away for now: try again after `RETRY_DEFERRED_AFTER`.
    pub deferred: u64,
    pub last_activity: Option<DateTime<Utc>>,
    /// Events already recorded for this issue's due instant.
    pub recorded: Vec<EventKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send (or resume) the issue; `late` when the daemon is past its slot.
    Send {
        id: IssueId,
        due: DateTime<Tz>,
        late: Option<Duration>,
    },
    /// The slot passed beyond its grace without the issue going out.
    Missed {
        id: IssueId,
        due: DateTime<Tz>,
        detail: String,
    },
    /// The issue was still a draft at its slot.
    Draft { id: IssueId, due: DateTime<Tz> },
    /// Two or more ready issues claim one slot: none is sent.
    Conflict {
        ids: Vec<IssueId>,
        due: DateTime<Tz>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// When there is something to do next, if anything is known (the daemon looks again at
    /// least every `LONGEST_SLEEP` anyway).
    pub next_wake: Option<DateTime<Utc>>,
}

/// Sending counts as late after this much delay, and is logged as such.
const LATE_AFTER: Duration = Duration::minutes(1);

pub fn plan(
    now: DateTime<Utc>,
    slot: &WeeklySlot,
    entries: &[IssueEntry],
    history: impl Fn(&IssueId, DateTime<Utc>) -> History,
) -> Plan {
    let mut actions = Vec::new();
    let mut next_wake: Option<DateTime<Utc>> = None;
    let mut wake_at = |time: DateTime<Utc>| {
        next_wake = Some(next_wake.map_or(time, |known| known.min(time)));
    };
    let mut due_entries: Vec<(DateTime<Tz>, &IssueEntry)> = entries
        .iter()
        .filter_map(|entry| due(slot, entry).map(|due| (due, entry)))
        .collect();
    due_entries.sort_by_key(|(due, entry)| (*due, entry.id.clone()));

    for (index, (due, entry)) in due_entries.iter().enumerate() {
        let due_utc = due.with_timezone(&Utc);
        if due_utc > now {
            wake_at(due_utc);
            continue;
        }
        let history = history(&entry.id, due_utc);
        let recorded = |event: EventKind| history.recorded.contains(&event);
        let status = entry.issue.as_ref().map(|issue| issue.status);
        if status == Some(Readiness::Draft) {
            if !recorded(EventKind::Draft) && !history.started {
                actions.push(Action::Draft {
                    id: entry.id.clone(),
                    due: *due,
                });
            }
            continue;
        }
        let rivals: Vec<IssueId> = due_entries
            .iter()
            .enumerate()
            .filter(|(other, (other_due, other_entry))| {
                *other != index
                    && other_due == due
                    && other_entry.issue.as_ref().map(|issue| issue.status)
                        != Some(Readiness::Draft)
            })
            .map(|(_, (_, other_entry))| other_entry.id.clone())
            .collect();
        let within_grace = now <= due_utc + slot.grace;
        if !rivals.is_empty() {
            if within_grace && !history.started && !recorded(EventKind::Conflict) {
                let mut ids = vec![entry.id.clone()];
                ids.extend(rivals);
                ids.sort();
                if ids[0] == entry.id {
                    actions.push(Action::Conflict { ids, due: *due });
                }
            }
            continue;
        }
        if within_grace {
            let lateness = now - due_utc;
            let late = (lateness > LATE_AFTER).then_some(lateness);
            // Never sent, or cut short: now. Only deferred ones left: after a pause.
            let send_at = if !history.started || history.pending > 0 {
                Some(now)
            } else if history.deferred > 0 {
                history
                    .last_activity
                    .map(|last| last + RETRY_DEFERRED_AFTER)
            } else {
                None
            };
            match send_at {
                Some(time) if time <= now => actions.push(Action::Send {
                    id: entry.id.clone(),
                    due: *due,
                    late,
                }),
                Some(time) if time <= due_utc + slot.grace => wake_at(time),
                _ => {}
            }
        } else if !recorded(EventKind::Missed)
            && (!history.started || history.pending + history.deferred > 0)
        {
            let detail = if history.started {
                format!(
                    "{} recipient(s) never got it: the scheduler was not running to finish within {} of the slot; `letterpress send {}` sends to them",
                    history.pending + history.deferred,
                    describe(slot.grace),
                    entry.id
                )
            } else {
                format!(
                    "the scheduler was not running between the slot and {} after it; not sent (`letterpress send {}` sends it by hand)",
                    describe(slot.grace),
                    entry.id
                )
            };
            actions.push(Action::Missed {
                id: entry.id.clone(),
                due: *due,
                detail,
            });
        }
    }
    Plan { actions, next_wake }
}

/// `6h`, `1h30m`, `45m`: how the grace is written in newsletter.yaml.
pub fn describe(duration: Duration) -> String {
    let minutes = duration.num_minutes();
    match (minutes / 60, minutes % 60) {
        (0, minutes) => format!("{minutes}m"),
        (hours, 0) => format!("{hours}h"),
        (hours, minutes) => format!("{hours}h{minutes}m"),
    }
}

/// A coming slot (or `send_at`) and the issues set for it.
#[derive(Debug, Clone)]
pub struct Upcoming<'a> {
    pub due: DateTime<Tz>,
    pub entries: Vec<&'a IssueEntry>,
}

/// The next `count` weekly slots after `now`, with any `send_at` before the last of them, in
/// time order.
pub fn upcoming<'a>(
    now: DateTime<Utc>,
    slot: &WeeklySlot,
    entries: &'a [IssueEntry],
    count: usize,
) -> Vec<Upcoming<'a>> {
    let mut dues: Vec<DateTime<Tz>> = Vec::new();
    let mut after = now;
    for _ in 0..count {
        let next = slot.next_after(after);
        after = next.with_timezone(&Utc);
        dues.push(next);
    }
    let horizon = dues.last().copied();
    for entry in entries {
        if let Some(due) = due(slot, entry)
            && due.with_timezone(&Utc) > now
            && horizon.is_some_and(|horizon| due <= horizon)
            && !dues.contains(&due)
        {
            dues.push(due);
        }
    }
    dues.sort();
    dues.into_iter()
        .map(|due_at| Upcoming {
            due: due_at,
            entries: entries
                .iter()
                .filter(|entry| due(slot, entry) == Some(due_at))
                .collect(),
        })
        .collect()
}

/// How a ready issue whose time has come, and which has not gone out, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// Within the grace: the scheduler sends it if it runs.
    Due,
    /// Past the grace: the scheduler will not send it by surprise; `send` can.
    Missed,
}

/// Ready issues whose slot (or `send_at`) came within the last week and which nobody has
/// started sending, `started` says, per the ledger: what `status` lists as due or missed,
/// so an issue never vanishes from view at the moment it matters.
pub fn overdue<'a>(
    now: DateTime<Utc>,
    slot: &WeeklySlot,
    entries: &'a [IssueEntry],
    started: impl Fn(&IssueId) -> bool,
) -> Vec<(&'a IssueEntry, DateTime<Tz>, Overdue)> {
    let mut found: Vec<(&IssueEntry, DateTime<Tz>, Overdue)> = entries
        .iter()
        .filter(|entry| {
            entry
                .issue
                .as_ref()
                .is_some_and(|issue| issue.status == Readiness::Ready)
        })
        .filter_map(|entry| due(slot, entry).map(|due| (entry, due)))
        .filter(|(entry, due)| {
            let due = due.with_timezone(&Utc);
            due <= now && now - due <= Duration::days(7) + slot.grace && !started(&entry.id)
        })
        .map(|(entry, due)| {
            let within_grace = now <= due.with_timezone(&Utc) + slot.grace;
            let standing = if within_grace {
                Overdue::Due
            } else {
                Overdue::Missed
            };
            (entry, due, standing)
        })
        .collect();
    found.sort_by_key(|(_, due, _)| *due);
    found
}

/// Drafts whose time comes within the next 24 hours: worth a warning, since they will not go.
pub fn drafts_due_soon<'a>(
    now: DateTime<Utc>,
    slot: &WeeklySlot,
    entries: &'a [IssueEntry],
) -> Vec<(&'a IssueEntry, DateTime<Tz>)> {
    entries
        .iter()
        .filter(|entry| {
            entry
                .issue
                .as_ref()
                .is_some_and(|issue| issue.status == Readiness::Draft)
        })
        .filter_map(|entry| due(slot, entry).map(|due| (entry, due)))
        .filter(|(_, due)| {
            let due = due.with_timezone(&Utc);
            due > now && due - now <= Duration::hours(24)
        })
        .collect()
}

/// Ready issues that share a due instant: `check` refuses them, the scheduler sends neither.
pub fn conflicts<'a>(
    slot: &WeeklySlot,
    entries: &'a [IssueEntry],
) -> Vec<(DateTime<Tz>, Vec<&'a IssueEntry>)> {
    let mut by_due: Vec<(DateTime<Tz>, Vec<&IssueEntry>)> = Vec::new();
    for entry in entries {
        let ready = entry
            .issue
            .as_ref()
            .is_some_and(|issue| issue.status == Readiness::Ready);
        let Some(due) = due(slot, entry).filter(|_| ready) else {
            continue;
        };
        match by_due.iter_mut().find(|(known, _)| *known == due) {
            Some((_, group)) => group.push(entry),
            None => by_due.push((due, vec![entry])),
        }
    }
    by_due.retain(|(_, group)| group.len() > 1);
    by_due
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Decoder;
    use crate::model::issue::{self, IssueId};
    use crate::model::slot::test_support::{slot, utc};
    use chrono::Weekday;

    fn monday_nine(timezone: Tz) -> WeeklySlot {
        slot(Weekday::Mon, "09:00", timezone)
    }

    fn entry(id: &str, status: &str, send_at: Option<&str>) -> IssueEntry {
        let mut source = format!(
            "date: {}\nstatus: {status}\nsubject: s\npreheader: p\nsections:\n  - heading: h\n    articles:\n      - title: t\n        url: https://a.example/\n        excerpt: e\n",
            &id[..10]
        );
        if let Some(send_at) = send_at {
            source.push_str(&format!("send_at: \"{send_at}\"\n"));
        }
        let root = crate::yaml::parse(&source).unwrap();
        let mut decoder = Decoder::new("x");
        let issue = issue::decode(&mut decoder, &root, IssueId::parse(id).unwrap()).unwrap();
        IssueEntry {
            id: IssueId::parse(id).unwrap(),
            file: format!("issues/{id}.yaml"),
            issue: Some(issue),
        }
    }

    fn fresh(_: &IssueId, _: DateTime<Utc>) -> History {
        History::default()
    }

    #[test]
    fn weekly_slots_keep_local_time_across_both_daylight_saving_changes() {
        for (zone, weeks) in [
            (
                chrono_tz::Europe::Berlin,
                [
                    (
                        "2026-03-16T00:00:00Z",
                        [
                            "2026-03-16T09:00:00+01:00",
                            "2026-03-23T09:00:00+01:00",
                            "2026-03-30T09:00:00+02:00",
                        ],
                    ),
                    (
                        "2026-10-19T00:00:00Z",
                        [
                            "2026-10-19T09:00:00+02:00",
                            "2026-10-26T09:00:00+01:00",
                            "2026-11-02T09:00:00+01:00",
                        ],
                    ),
                ],
            ),
            (
                chrono_tz::America::New_York,
                [
                    (
                        "2026-03-02T00:00:00Z",
                        [
                            "2026-03-02T09:00:00-05:00",
                            "2026-03-09T09:00:00-04:00",
                            "2026-03-16T09:00:00-04:00",
                        ],
                    ),
                    (
                        "2026-10-26T00:00:00Z",
                        [
                            "2026-10-26T09:00:00-04:00",
                            "2026-11-02T09:00:00-05:00",
                            "2026-11-09T09:00:00-05:00",
                        ],
                    ),
                ],
            ),
        ] {
            let slot = monday_nine(zone);
            for (start, expected) in weeks {
                let slots: Vec<String> = upcoming(utc(start), &slot, &[], 3)
                    .iter()
                    .map(|upcoming| upcoming.due.to_rfc3339())
                    .collect();
                assert_eq!(slots, expected, "{zone}");
            }
        }
    }

    #[test]
    fn a_ready_issue_is_sent_at_its_slot_and_not_before() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let entries = [entry("2026-11-30", "ready", None)];
        let before = plan(utc("2026-11-30T07:59:00Z"), &slot, &entries, fresh);
        assert!(before.actions.is_empty());
        assert_eq!(before.next_wake, Some(utc("2026-11-30T08:00:00Z")));
        let at = plan(utc("2026-11-30T08:00:00Z"), &slot, &entries, fresh);
        assert_eq!(at.actions.len(), 1);
        assert!(
            matches!(&at.actions[0], Action::Send { id, late: None, .. } if id == "2026-11-30")
        );
    }

    #[test]
    fn a_draft_made_ready_before_its_slot_goes_out() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let draft = [entry("2026-11-30", "draft", None)];
        assert!(
            plan(utc("2026-11-30T07:00:00Z"), &slot, &draft, fresh)
                .actions
                .is_empty()
        );
        let ready = [entry("2026-11-30", "ready", None)];
        let at = plan(utc("2026-11-30T08:00:00Z"), &slot, &ready, fresh);
        assert!(matches!(&at.actions[0], Action::Send { .. }));
        // Still a draft when the slot comes: noted once, never sent.
        let at = plan(utc("2026-11-30T08:00:00Z"), &slot, &draft, fresh);
        assert!(matches!(&at.actions[..], [Action::Draft { .. }]));
        let noted = |_: &IssueId, _| History {
            recorded: vec![EventKind::Draft],
            ..History::default()
        };
        assert!(
            plan(utc("2026-11-30T08:05:00Z"), &slot, &draft, noted)
                .actions
                .is_empty()
        );
    }

    #[test]
    fn a_slot_with_no_issue_does_nothing() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let result = plan(utc("2026-11-30T08:00:00Z"), &slot, &[], fresh);
        assert!(result.actions.is_empty());
        assert_eq!(result.next_wake, None);
    }

    #[test]
    fn a_missed_slot_is_sent_late_within_the_grace_and_recorded_as_missed_after_it() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let entries = [entry("2026-11-30", "ready", None)];
        let late = plan(utc("2026-11-30T13:30:00Z"), &slot, &entries, fresh);
        assert!(
            matches!(&late.actions[..], [Action::Send { late: Some(late), .. }] if *late == Duration::minutes(330))
        );
        let missed = plan(utc("2026-11-30T14:00:01Z"), &slot, &entries, fresh);
        assert!(
            matches!(&missed.actions[..], [Action::Missed { .. }]),
            "{missed:?}"
        );
        let noted = |_: &IssueId, _| History {
            recorded: vec![EventKind::Missed],
            ..History::default()
        };
        assert!(
            plan(utc("2026-12-01T00:00:00Z"), &slot, &entries, noted)
                .actions
                .is_empty()
        );
        // Sent by hand before the scheduler came back: nothing to do, nothing missed.
        let sent = |_: &IssueId, _| History {
            started: true,
            ..History::default()
        };
        assert!(
            plan(utc("2026-12-01T00:00:00Z"), &slot, &entries, sent)
                .actions
                .is_empty()
        );
    }

    #[test]
    fn an_interrupted_send_resumes_at_once_and_deferred_recipients_after_a_while() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let entries = [entry("2026-11-30", "ready", None)];
        let now = utc("2026-11-30T08:20:00Z");
        let interrupted = |_: &IssueId, _| History {
            started: true,
            pending: 40,
            last_activity: Some(now),
            ..History::default()
        };
        assert!(matches!(
            &plan(now, &slot, &entries, interrupted).actions[..],
            [Action::Send { .. }]
        ));
        let deferred = |_: &IssueId, _| History {
            started: true,
            deferred: 2,
            last_activity: Some(now),
            ..History::default()
        };
        let result = plan(now, &slot, &entries, deferred);
        assert!(result.actions.is_empty());
        assert_eq!(result.next_wake, Some(now + RETRY_DEFERRED_AFTER));
        assert!(matches!(
            &plan(now + RETRY_DEFERRED_AFTER, &slot, &entries, deferred).actions[..],
            [Action::Send { .. }]
        ));
    }

    #[test]
    fn send_at_replaces_the_weekly_slot_and_two_ready_issues_for_one_slot_send_neither() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let early = [entry("2026-11-30", "ready", Some("2026-11-30 07:30"))];
        assert_eq!(
            plan(utc("2026-11-30T00:00:00Z"), &slot, &early, fresh).next_wake,
            Some(utc("2026-11-30T06:30:00Z"))
        );
        let clash = [
            entry("2026-11-30", "ready", None),
            entry("2026-11-30-extra", "ready", Some("2026-11-30 09:00")),
        ];
        let result = plan(utc("2026-11-30T08:00:00Z"), &slot, &clash, fresh);
        assert!(
            matches!(&result.actions[..], [Action::Conflict { ids, .. }] if ids.len() == 2),
            "{result:?}"
        );
        assert_eq!(conflicts(&slot, &clash).len(), 1);
    }

    #[test]
    fn a_ready_issue_whose_time_came_is_listed_as_due_then_missed_until_it_is_sent() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let entries = [entry("2026-11-30", "ready", None)];
        let never = |_: &IssueId| false;
        // At the very instant of its slot it is due, not gone from view.
        let at = overdue(utc("2026-11-30T08:00:00Z"), &slot, &entries, never);
        assert_eq!(at.len(), 1);
        assert_eq!(at[0].2, Overdue::Due);
        let later = overdue(utc("2026-11-30T14:00:01Z"), &slot, &entries, never);
        assert_eq!(later[0].2, Overdue::Missed);
        let sent = overdue(utc("2026-11-30T08:05:00Z"), &slot, &entries, |_| true);
        assert!(sent.is_empty());
        assert!(overdue(utc("2026-11-30T07:59:59Z"), &slot, &entries, never).is_empty());
        assert!(overdue(utc("2026-12-30T08:00:00Z"), &slot, &entries, never).is_empty());
    }

    #[test]
    fn drafts_due_within_a_day_are_flagged() {
        let slot = monday_nine(chrono_tz::Europe::Berlin);
        let entries = [
            entry("2026-11-30", "draft", None),
            entry("2026-12-07", "draft", None),
        ];
        let soon = drafts_due_soon(utc("2026-11-29T12:00:00Z"), &slot, &entries);
        assert_eq!(soon.len(), 1);
        assert_eq!(soon[0].0.id, "2026-11-30");
    }
}
