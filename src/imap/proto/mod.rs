//! The IMAP protocol without I/O: command framing and parsing, response encoding.
//!
//! Data flows one way through three layers, each testable with bytes alone:
//!
//! 1. [`receive::Receiver`] frames the byte stream into whole commands
//!    (lines plus their literals), enforcing line and literal limits and
//!    telling the session when to send a `+` continuation. It never looks at
//!    a command's meaning.
//! 2. [`parse::parse_command`] turns one framed command into a validated
//!    [`types::Command`], or a [`parse::ParseError`] whose sentence the session
//!    sends with BAD.
//! 3. [`encode`] writes responses, choosing atom / quoted / literal for every
//!    string so nothing a client sent can break a response line.

pub mod date;
pub mod encode;
pub mod parse;
pub mod receive;
pub mod sequence;
pub mod types;
