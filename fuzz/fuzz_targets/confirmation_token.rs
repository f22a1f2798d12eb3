//! The confirmation link's token, as a stranger may send it to `serve`: taken apart without a
//! panic, never accepted unless we made it, and every token we make reads back as made.
#![no_main]

use letterpress::model::address::EmailAddress;
use letterpress::secret::{Secret, parse_confirmation_token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secret = Secret::from_passphrase("fuzzing secret, not a real one, 0123456789").unwrap();
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let _ = parse_confirmation_token(text);
    // A forged token: whatever it holds, the MAC is not ours.
    assert!(secret.verify_confirmation("list", text, now).is_err());
    // The input as an address: a token made for it reads back to it.
    if let Ok(address) = EmailAddress::parse(text) {
        let token = secret.confirmation_token("list", &address, now);
        let parts = parse_confirmation_token(&token).expect("our own token parses");
        assert_eq!(parts.address, address.as_str());
        let confirmed = secret
            .verify_confirmation("list", &token, now)
            .expect("ours verifies");
        assert_eq!(confirmed.address, address);
    }
});
