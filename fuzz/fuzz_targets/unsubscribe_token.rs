//! The unsubscribe link, as anyone may send it to `serve`: the token is taken from the path
//! without a panic, and only a token we issued names a reader. The token is an HMAC with
//! nothing to decode, so what there is to get wrong is the path, the lookup and the masked
//! address the page shows.
#![no_main]

use letterpress::model::address::EmailAddress;
use letterpress::secret::Secret;
use letterpress::serve::directory::{Directory, Listing, mask_address, token_in_path};
use libfuzzer_sys::fuzz_target;

const READERS: [&str; 3] = ["ada@example.com", "bob@example.org", "josé@bücher.example"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secret = Secret::from_passphrase("fuzzing secret, not a real one, 0123456789").unwrap();
    let mut directory = Directory::empty();
    let mut issued = Vec::new();
    for reader in READERS {
        let key = EmailAddress::parse(reader).unwrap().key();
        issued.push((secret.unsubscribe_token("list", &key), key.clone()));
        directory.add(&secret, "list", key, Listing::Active);
    }
    // As a request line would carry it: whatever the URI parser lets through.
    if let Ok(uri) = format!("/unsubscribe/{text}").parse::<http::Uri>() {
        let token = token_in_path(uri.path());
        let found = directory.find(token);
        let ours = issued.iter().find(|(issued, _)| issued == token);
        assert_eq!(found.map(|holder| &holder.key), ours.map(|(_, key)| key));
    }
    // As the raw path: only an exact token we issued names anyone.
    let found = directory.find(token_in_path(text));
    assert!(found.is_none() || issued.iter().any(|(token, _)| token == token_in_path(text)));
    // Every reader's own token names them, and their masked address hides the rest.
    for (token, key) in &issued {
        let holder = directory.find(token).expect("an issued token is found");
        assert_eq!(&holder.key, key);
    }
    let masked = mask_address(text);
    assert!(masked.contains("***@"), "{masked}");
});
