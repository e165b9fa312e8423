//! ManageSieve (RFC 5804): users upload, list, activate, download and delete their Sieve
//! scripts. The scripts are stored where Pigeonhole keeps them ([`store`]), so delivery
//! (`crate::config::SieveConfig::locate`) and a migrating Dovecot site find them unchanged.
//!
//! - [`parse`]: the pure part of the protocol: lines and literals into arguments.
//! - [`response`]: `OK`/`NO`/`BYE` with response codes; [`response::SieveError`] is the one place
//!   an error becomes its answer.
//! - [`table`]: the command table (name, state); [`cmd`]: one file per command.
//! - [`session`]: the connection's states and reads; [`store`]: durable script storage.

pub mod cmd;
pub mod parse;
pub mod response;
pub mod session;
pub mod store;
pub mod table;
