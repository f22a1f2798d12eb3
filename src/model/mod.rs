//! The newsletter, its issues and its subscribers as types that cannot hold invalid values.
//!
//! Everything is parsed once, here, with a position for every problem; code past this point
//! never re-checks an address, a URL or a subject line.

pub mod address;
pub mod issue;
pub mod link;
pub mod newsletter;
pub mod slot;
pub mod subscriber;
pub mod text;
