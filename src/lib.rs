//! mailcove: an IMAP4rev1 and POP3 mail-access server.

pub mod cli;
pub mod imap;
pub mod limits;
pub mod mutf7;
pub mod storage;
