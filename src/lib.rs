//! letterpress builds a weekly newsletter from YAML files and delivers it over SMTP, once per
//! subscriber. `ARCHITECTURE.md` at the repository root is the map: the layers, the direction
//! of the arrows, and the invariants each one keeps.

pub mod archive;
pub mod bounce;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod decode;
pub mod delivery;
pub mod diagnostic;
pub mod edition;
pub mod images;
pub mod ledger;
pub mod lint;
pub mod list;
pub mod logging;
pub mod manual;
pub mod message;
pub mod model;
pub mod preview;
pub mod render;
pub mod scaffold;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod signals;
pub mod source;
pub mod state;
pub mod theme;
pub mod units;
pub mod workspace;
pub mod yaml;
