//! The SEARCH engine: which messages of the selected mailbox match a search program.
//!
//! # Design
//!
//! A parsed [`SearchKey`](crate::imap::proto::types::SearchKey) tree is first compiled
//! ([`Program::compile`]) against the view: strings are checked against the CHARSET and
//! casemapped once, keywords become bit masks of the mailbox's keyword table, sequence sets
//! (with `*` and the saved `$` result) become [`ResolvedSet`](crate::imap::proto::sequence::ResolvedSet)s, and dates become day numbers.
//!
//! The compiled tree is then evaluated with three-valued logic (`Some(true)`, `Some(false)`,
//! `None` = "cannot tell yet") in up to three stages per message, each stage only for the messages
//! the previous one left undecided:
//!
//! 1. **metadata**: flags, keywords, `\Recent`, sizes, INTERNALDATE, UIDs, sequence numbers and
//!    modseqs come from the view; no file is touched. `AND` stops at the first false key and `OR`
//!    at the first true one, so `UNSEEN FROM x` never opens the header of a seen message.
//! 2. **header**: FROM/TO/CC/BCC/SUBJECT/HEADER and SENT* need the header. When every header key
//!    names one of [`CACHED_FIELDS`] (and there is no TEXT), the fields come from a per-message
//!    cache entry ([`SEARCH_HEADER_CACHE`], see [`cache_blob`]) written the first time the header
//!    was read: the values decoded and casemapped as the keys compare them, and the `Date:` day,
//!    so a repeated `SEARCH FROM x` on a large mailbox opens no message file and parses nothing.
//!    Otherwise only the header block of the file is read.
//! 3. **body**: BODY and TEXT read the message (at most [`MAX_SEARCH_MESSAGE_BYTES`](crate::limits::MAX_SEARCH_MESSAGE_BYTES)) and match
//!    the decoded text of its text parts (quoted-printable, base64, charsets; see
//!    [`crate::mime::MessageInfo::body_text`]). A program whose only content keys are BODY/TEXT
//!    reads each message once, not its header first.
//!
//! Messages are processed in batches of [`SEARCH_BATCH`](crate::limits::SEARCH_BATCH), so the cache is read and written in
//! one storage call per batch and memory stays bounded. The messages of a batch that the cache
//! cannot decide are split over [`SEARCH_WORKERS`](crate::limits::SEARCH_WORKERS) lanes: each
//! reads its messages from storage ([`crate::storage::View::read_messages`]) in pieces of
//! [`READ_PIECE_BYTES`](crate::limits::READ_PIECE_BYTES) and evaluates a piece on
//! [`crate::compute::run`] while the next is read, so a large search costs two thread hops per
//! piece instead of several per message, and a lane holds about two pieces. A message expunged
//! by another session while the search runs is not read: it simply does not match.
//!
//! Semantics chosen where RFC 3501 leaves room (and why):
//! - BEFORE/ON/SINCE compare the calendar date of INTERNALDATE **in UTC** (the server's zone is
//!   not configurable; UTC makes answers independent of the host's TZ setting).
//! - SENT* use the date as written in `Date:` (time and zone disregarded, RFC 3501 6.4.4); a
//!   message without a usable `Date:` matches no SENT* key (and so matches `NOT SENTON x`).
//! - String keys are case-insensitive substring matches under `i;unicode-casemap` (RFC 5051:
//!   titlecase, then NFKD; the I18NLEVEL=1 comparator, RFC 5255 4.2), on decoded (RFC 2047)
//!   header values; `HEADER name ""` matches every message that has the field.
//! - FUZZY (RFC 6203) string keys match word by word within a small edit distance and give
//!   the RELEVANCY score; the rule is in [`fuzzy`].
//! - A bare sequence-set key with numbers beyond the mailbox simply matches nothing there (as
//!   Dovecot): SEARCH is a question, not an operation on those messages.

#![deny(missing_docs)]

mod eval;
mod fts;
mod fuzzy;
mod program;
mod source;

pub use eval::{Hit, relevancy, run};
pub use program::{Program, SearchError, charset_supported};
pub use source::{CACHED_FIELDS, SEARCH_HEADER_CACHE, cache_blob};
