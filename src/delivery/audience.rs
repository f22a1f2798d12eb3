//! Who gets an issue. One rule, in one place, for a send, a dry run and the scheduler:
//! the active entries of the subscriber list, minus every suppressed address, once each, in
//! list order.

use std::collections::HashSet;

use crate::model::address::AddressKey;
use crate::model::subscriber::Subscriber;

/// The subscribers who get the issue, in list order. The list holds each address once
/// (decoding refuses duplicates), so neither does this.
pub fn audience<'a>(
    subscribers: &'a [Subscriber],
    suppressed: &'a HashSet<AddressKey>,
) -> impl Iterator<Item = &'a Subscriber> + 'a {
    subscribers.iter().filter(move |subscriber| {
        subscriber.is_active() && !suppressed.contains(&subscriber.email.key())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unsubscribed_and_the_suppressed_get_nothing_and_the_order_is_the_lists() {
        let mut decoder = crate::decode::Decoder::new("subscribers.yaml");
        let list = crate::model::subscriber::decode_list(
            &mut decoder,
            "- email: b@example.com\n- email: Gone@Example.com\n- email: a@example.com\n- email: left@example.com\n  status: unsubscribed\n",
        )
        .unwrap();
        let suppressed: HashSet<AddressKey> = [AddressKey::of("gone@example.com").unwrap()].into();
        let who: Vec<&str> = audience(&list, &suppressed)
            .map(|subscriber| subscriber.email.as_str())
            .collect();
        assert_eq!(who, ["b@example.com", "a@example.com"]);
    }
}
