//! mailcove: an IMAP4rev1 and POP3 mail-access server.

pub mod auth;
pub mod cli;
pub mod cli_generate;
pub mod compute;
pub mod config;
pub mod digits;
pub mod imap;
pub mod inflight;
pub mod limits;
pub mod lmtp;
pub mod logging;
pub mod mime;
pub mod mutf7;
pub mod pop3;
pub mod quota_cli;
pub mod server;
pub mod setup;
pub mod spool;
pub mod storage;
