//! Bounces and complaints: the tags that tie them to a reader (`verp`).

pub mod verp;

pub use verp::{VerpTag, parse_verp, verp_address};
