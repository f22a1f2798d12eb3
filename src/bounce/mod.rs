//! Bounces and complaints: the tags that tie them to a reader (`verp`), reading them from
//! files and standard input (`source`) or an IMAP mailbox (`imap`), and recognising what each
//! message says (`parse`, into `Report`s). Data in, data out: recording them in the ledger
//! and suppressing readers is the caller's.
//!
//! ```text
//! source::messages(path) / imap::process  ->  raw bytes  ->  parse::classify  ->  Vec<Report>
//! ```
//!
//! A caller ties a report to a delivery by its `verp_tag`, else by its `original_message_id`:
//! both carry an HMAC that appears only in the copy sent to that reader (and in what they
//! forward), so a forged bounce cannot name a reader of the forger's choosing. The `recipient` alone proves nothing (anyone can
//! write any address into a message that looks like a bounce): it is for showing, and for
//! matching only when no `bounce_address` is set.

pub mod imap;
pub mod imap_url;
pub mod parse;
mod plain;
pub mod report;
pub mod source;
pub mod verp;

pub use parse::classify;
pub use report::{Bounce, BounceKind, Complaint, Ignored, IgnoredReason, Report};
pub use source::{MAX_MESSAGE_BYTES, RawMessage};
pub use verp::{VerpTag, parse_verp, verp_address};

#[cfg(test)]
mod tests;
