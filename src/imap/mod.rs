//! IMAP4rev1 server side.

pub mod proto;
pub mod session;
