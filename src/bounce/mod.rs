//! Bounces and complaints: the tags that tie them to a reader (`verp`) and recognising what
//! each message says (`parse`, into `Report`s). Data in, data out: recording them in the
//! ledger and suppressing readers is the caller's.

pub mod parse;
mod plain;
pub mod report;
pub mod verp;

pub use parse::classify;
pub use report::{Bounce, BounceKind, Complaint, Ignored, IgnoredReason, Report};
pub use verp::{VerpTag, parse_verp, verp_address};

#[cfg(test)]
mod tests;
