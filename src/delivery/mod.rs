//! Delivery: turning an issue into one message per subscriber and getting each to a relay
//! exactly once, with every outcome in the ledger.

pub mod engine;
pub mod lock;
pub mod smtp_url;
pub mod transport;
