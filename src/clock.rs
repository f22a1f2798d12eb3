//! Where "now" comes from. Everything that depends on the time takes a `Clock`, so tests can
//! fix it or run weeks of schedule in milliseconds.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// For tests of the real binary: `LETTERPRESS_NOW=2021-08-23T13:00:00Z` fixes the clock.
pub const NOW_ENV: &str = "LETTERPRESS_NOW";

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(now))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// The system clock, unless `LETTERPRESS_NOW` fixes it.
pub fn from_env() -> Result<Arc<dyn Clock>, String> {
    match std::env::var(NOW_ENV) {
        Ok(value) => DateTime::parse_from_rfc3339(&value)
            .map(|now| Arc::new(FixedClock::new(now.with_timezone(&Utc))) as Arc<dyn Clock>)
            .map_err(|_| {
                format!("{NOW_ENV}=`{value}` is not an RFC 3339 time like 2021-08-23T13:00:00Z")
            }),
        Err(_) => Ok(Arc::new(SystemClock)),
    }
}
