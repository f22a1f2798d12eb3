//! The readers as the editor manages them (`letterpress subscribers`): the file they keep
//! (`subscribers.yaml`) and what the ledger adds to it (web sign-ups, suppressions), seen
//! together; adding to the file without disturbing it; and imports from other tools.

pub mod append;
pub mod csv;
pub mod import;
