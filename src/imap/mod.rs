//! IMAP4rev1 server side: the protocol without I/O (`proto`), the session state machine, and one
//! file per command family under `cmd`.

pub mod capability;
mod catenate;
mod cmd;
pub mod context;
pub mod fetch;
pub mod names;
pub mod notify;
pub mod proto;
pub mod response;
pub mod search;
pub mod selected;
pub mod session;
pub mod sort;
pub mod thread;
pub mod url;
mod workers;

/// Every row of the command table (the metrics take their `command` labels from it).
pub use cmd::table::ALL as COMMAND_TABLE;
