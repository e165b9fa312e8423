//! mailcove: an IMAP4rev1 and POP3 mail-access server.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod cli_generate;
pub mod compute;
pub mod config;
pub mod control_cli;
pub mod digits;
pub mod fsperm;
pub mod fts;
pub mod imap;
pub mod inflight;
pub mod limits;
pub mod lmtp;
pub mod logging;
pub mod managesieve;
pub mod metrics;
pub mod mime;
pub mod mutf7;
pub mod pop3;
pub mod server;
pub mod setup;
pub mod sieve;
pub mod spool;
pub mod storage;
