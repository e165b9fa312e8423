//! The IMAP protocol without I/O: command framing and parsing, response encoding.

pub mod encode;
