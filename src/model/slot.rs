//! The newsletter's weekly slot in its time zone, and when it next comes round.
//!
//! Slots are computed on the local calendar, so 09:00 stays 09:00 across daylight-saving
//! changes. Two local times need a rule: one skipped by a spring-forward change moves to the
//! first valid instant after it (02:30 becomes 03:00); one repeated by a fall-back change
//! takes its first occurrence (the earlier instant, still on summer time).

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// The newsletter's weekly slot: a weekday and wall-clock time in an IANA time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklySlot {
    pub day: Weekday,
    pub time: NaiveTime,
    pub timezone: Tz,
    /// How late the scheduler may still send a slot it was not running for.
    pub grace: chrono::Duration,
}

impl WeeklySlot {
    /// The slot's instant on a given local date, whatever weekday that is.
    pub fn instant_on(&self, date: NaiveDate) -> DateTime<Tz> {
        self.resolve_local(date.and_time(self.time))
    }

    /// A local date and time in the newsletter's zone as an instant, by the rules above for
    /// times that a daylight-saving change skips or repeats.
    pub fn resolve_local(&self, local: NaiveDateTime) -> DateTime<Tz> {
        match self.timezone.from_local_datetime(&local) {
            LocalResult::Single(instant) => instant,
            LocalResult::Ambiguous(first, _) => first,
            LocalResult::None => {
                // In a gap: walk forward a minute at a time to where local time resumes.
                // Gaps are at most a few hours (a day, once, in Samoa in 2011).
                (1..=48 * 60)
                    .find_map(|minutes| {
                        self.timezone
                            .from_local_datetime(&(local + Duration::minutes(minutes)))
                            .earliest()
                    })
                    .expect("a time zone gap ends within two days")
            }
        }
    }

    /// The local date of the first slot on or after `date`.
    pub fn slot_date_on_or_after(&self, date: NaiveDate) -> NaiveDate {
        let ahead =
            (7 + self.day.num_days_from_monday() - date.weekday().num_days_from_monday()) % 7;
        date + Duration::days(i64::from(ahead))
    }

    /// The first slot strictly after `instant`.
    pub fn next_after(&self, instant: DateTime<Utc>) -> DateTime<Tz> {
        let today = instant.with_timezone(&self.timezone).date_naive();
        let mut date = self.slot_date_on_or_after(today);
        loop {
            let slot = self.instant_on(date);
            if slot > instant {
                return slot;
            }
            date += Duration::days(7);
        }
    }

    /// Today's local date in the newsletter's zone.
    pub fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.timezone).date_naive()
    }
}

/// Slots and instants for the tests of this module and of the scheduler's plan.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn slot(day: Weekday, time: &str, timezone: Tz) -> WeeklySlot {
        WeeklySlot {
            day,
            time: NaiveTime::parse_from_str(time, "%H:%M").unwrap(),
            timezone,
            grace: Duration::hours(6),
        }
    }

    pub fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{slot, utc};
    use super::*;

    #[test]
    fn the_next_slot_keeps_local_time_across_a_daylight_saving_change() {
        let monday_nine = slot(Weekday::Mon, "09:00", chrono_tz::America::Toronto);
        // Toronto leaves daylight time on Sunday 2026-11-01.
        let before = monday_nine.next_after(utc("2026-10-27T00:00:00Z"));
        assert_eq!(before.to_rfc3339(), "2026-11-02T09:00:00-05:00");
        let earlier = monday_nine.next_after(utc("2026-10-20T00:00:00Z"));
        assert_eq!(earlier.to_rfc3339(), "2026-10-26T09:00:00-04:00");
    }

    #[test]
    fn a_slot_at_the_very_instant_is_not_next() {
        let monday_nine = slot(Weekday::Mon, "09:00", chrono_tz::UTC);
        let next = monday_nine.next_after(utc("2026-11-30T09:00:00Z"));
        assert_eq!(next.to_rfc3339(), "2026-12-07T09:00:00+00:00");
    }

    #[test]
    fn skipped_and_repeated_local_times_follow_the_documented_rules_in_both_zones() {
        let at = |zone: Tz, day: Weekday, time: &str, date: &str| {
            slot(day, time, zone)
                .instant_on(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
                .to_rfc3339()
        };
        // Spring forward: 02:30 does not exist; the first valid instant after it is 03:00.
        assert_eq!(
            at(
                chrono_tz::Europe::Berlin,
                Weekday::Sun,
                "02:30",
                "2026-03-29"
            ),
            "2026-03-29T03:00:00+02:00"
        );
        assert_eq!(
            at(
                chrono_tz::America::New_York,
                Weekday::Sun,
                "02:30",
                "2026-03-08"
            ),
            "2026-03-08T03:00:00-04:00"
        );
        // Fall back: 02:30 (Berlin) and 01:30 (New York) happen twice; the first one counts.
        assert_eq!(
            at(
                chrono_tz::Europe::Berlin,
                Weekday::Sun,
                "02:30",
                "2026-10-25"
            ),
            "2026-10-25T02:30:00+02:00"
        );
        assert_eq!(
            at(
                chrono_tz::America::New_York,
                Weekday::Sun,
                "01:30",
                "2026-11-01"
            ),
            "2026-11-01T01:30:00-04:00"
        );
    }
}
