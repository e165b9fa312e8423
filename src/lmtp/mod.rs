//! Mail delivery: the LMTP listener (RFC 2033) and the `mailcove deliver` command.
//!
//! Both hand a message to [`deliver`], which resolves the recipient through the auth module's
//! user lookup, picks the folder (`+detail` or `-m`), prepends `Return-Path:` and `Delivered-To:`
//! and appends through the storage trait, whose append is durable when it returns. The promise is
//! the same as IMAP APPEND's: a 250 (or exit 0) is only ever given for a copy that is on disk.
//!
//! * [`command`]: the pure command-line parser.
//! * [`data`]: the DATA and BDAT readers (dot-unstuffing, bare LF, size limit).
//! * [`deliver`]: one message to one recipient, shared with the CLI.
//! * [`session`]: the connection loop, transaction state and per-recipient replies.
//! * [`cli`]: `mailcove deliver` and its sysexits.
//!
//! The whole message is read (within `limits.max_message_size`) before any mailbox is touched,
//! so a slow or stalled client never holds a lock another delivery or an IMAP session waits on.
//! It is read into a [`crate::spool::Spool`] (small messages in memory, larger ones in an unlinked
//! temporary file) and streamed from there into each recipient's mailbox, so memory does not grow
//! with the message size or the number of recipients.

pub mod cli;
pub mod command;
pub mod data;
pub mod deliver;
pub mod session;
