//! Mail that comes back (bounces, complaints, auto-replies, anything else): whatever arrives
//! from the internet is classified without a panic, and each report names at most what the
//! message holds.
#![no_main]

use letterpress::bounce::parse::classify;
use letterpress::model::address::EmailAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bounce_address = EmailAddress::parse("bounces@example.com").unwrap();
    let reports = classify(data, Some(&bounce_address));
    assert!(
        reports.len() <= data.len() / 8 + 1,
        "{} reports",
        reports.len()
    );
    let _ = classify(data, None);
});
