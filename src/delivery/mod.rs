//! Delivery: turning an issue into one message per subscriber and getting each to a relay
//! exactly once, with every outcome in the ledger.
//!
//! `audience` decides who gets an issue, `prepare` locks and queues a send (or measures one,
//! dry), `engine` runs it, `report` reads back how it went, `proof` sends tests to the editor;
//! `transport`, `smtp` and `smtp_url` are where messages go; `bounces` takes in what comes
//! back.

pub mod audience;
pub mod bounces;
pub mod engine;
pub mod lock;
pub mod prepare;
pub mod proof;
pub mod report;
pub mod smtp;
pub mod smtp_url;
pub mod transport;

pub use audience::{Reader, ReaderSource, audience, for_each_reader};
pub use prepare::{DryRun, PreparedSend, SendOptions, dry_run};
pub use report::Report;
