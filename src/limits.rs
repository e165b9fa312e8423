//! Every fixed limit of mailcove in one place, with why it has the value it has.
//!
//! Limits an operator may want to tune live in the config (`[limits]`,
//! `[timeouts]`); the defaults of those are the `DEFAULT_*` constants here.
//! Each module adds its constants under its own heading.

// ---- connections and protocol framing (server) ----

/// Default cap on concurrent connections for the whole daemon.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default cap on concurrent connections from one remote IP address.
/// Generous because offices sit behind one NAT address.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 200;
/// Default cap on concurrent logged-in connections of one user from one IP,
/// as Dovecot's `mail_max_userip_connections` (Thunderbird opens several).
pub const DEFAULT_MAX_USERIP_CONNECTIONS: usize = 10;
/// Default longest IMAP command line, 64 KiB as Dovecot: clients send long UID sets.
pub const DEFAULT_MAX_COMMAND_LINE: usize = 64 * 1024;
/// Default largest message (APPEND literal, LMTP DATA, deliver input).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// POP3 command lines are at most 255 octets (RFC 2449 section 4).
pub const POP3_MAX_COMMAND_LINE: usize = 255;
/// Longest SASL response line we accept (base64 of user, authzid and password).
pub const MAX_SASL_LINE: usize = 8 * 1024;
/// Bad commands tolerated before the connection is closed, as Dovecot.
pub const MAX_BAD_COMMANDS: u32 = 20;
/// Failed authentication attempts on one connection before it is closed.
pub const MAX_AUTH_FAILURES_PER_CONNECTION: u32 = 3;

// ---- timeouts ----

/// IMAP autologout: RFC 3501 section 5.4 requires at least 30 minutes.
pub const MIN_IMAP_IDLE_SECS: u64 = 30 * 60;
/// POP3 autologout: RFC 1939 section 3 requires at least 10 minutes.
pub const MIN_POP3_IDLE_SECS: u64 = 10 * 60;
/// Time a client has to authenticate, as Dovecot's login timeout.
pub const DEFAULT_PREAUTH_SECS: u64 = 60;
/// Time a TLS handshake may take before the connection is dropped.
pub const TLS_HANDSHAKE_SECS: u64 = 30;
/// Default time sessions get to say BYE after SIGTERM before the process exits.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

// ---- storage ----

/// Longest mailbox name in bytes, on the wire and as a directory name on
/// disk: 255 is the file-name limit of every common Unix file system.
pub const MAX_MAILBOX_NAME_BYTES: usize = 255;
/// Deepest mailbox hierarchy; bounds every walk over a name's levels.
pub const MAX_MAILBOX_DEPTH: usize = 32;
/// Most mailboxes one user's LIST reports; more are ignored (and logged), so
/// a hostile tree cannot make LIST allocate without bound.
pub const MAX_MAILBOXES_PER_USER: usize = 10_000;
/// Maildir keeps keywords as the letters `a`..`z`: 26 per mailbox.
pub const MAX_KEYWORDS_MAILDIR: usize = 26;
/// Longest keyword name.
pub const MAX_KEYWORD_BYTES: usize = 128;
/// Most header bytes [`crate::storage::MessageFile::header`] returns.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// `tmp/` files older than this are leftovers of crashed writers (Maildir spec: 36 h).
pub const TMP_MAX_AGE_SECS: i64 = 36 * 3600;
/// Messages per copy-on-write chunk of a view: copying one chunk on a flag
/// change costs ~48 KiB; a 100,000-message view holds ~100 chunk pointers.
pub const MESSAGE_LIST_CHUNK: usize = 1024;
/// The index log is compacted into the base once it holds more records than
/// this or than half the messages, whichever is larger.
pub const INDEX_LOG_COMPACT_MIN: usize = 1000;
/// Largest index file we read (a 100,000-message base is ~10 MB).
pub const MAX_INDEX_BYTES: usize = 512 * 1024 * 1024;
/// Largest small control file we read (keywords, subscriptions, quota).
pub const MAX_SMALL_FILE_BYTES: usize = 1024 * 1024;
/// A directory mtime younger than this may hide a second change in the same
/// clock tick: such a record is trusted only after a rescan once it settled.
pub const DIR_MTIME_SETTLE_NS: i64 = 2_000_000_000;
/// inotify events queued per mailbox before we give up and rescan instead.
pub const MAX_EVENT_QUEUE: usize = 4096;
/// Largest cached blob per message and field.
pub const MAX_CACHE_ENTRY_BYTES: usize = 4 * 1024 * 1024;
/// The cache file is rewritten when more than this many bytes (and more
/// than half of it) belong to expunged messages.
pub const CACHE_COMPACT_MIN_DEAD_BYTES: u64 = 1024 * 1024;
/// Maildir++ `maildirsize` is recalculated when it grows beyond this (the spec's 5120).
pub const MAILDIRSIZE_RECALC_BYTES: usize = 5120;
/// Mailbox states kept in memory after their last view closed (LRU), so
/// repeated deliveries or STATUS do not reload an index each time. A
/// 100,000-message state is ~15 MB, so this bounds idle memory.
pub const MAILBOX_STATE_CACHE: usize = 16;
/// Names of our own recent changes in `cur/` remembered so their inotify
/// events are not mistaken for someone else's (which would cost a rescan).
pub const OWN_NAMES_MAX: usize = 16_384;
