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

// ---- mime ----

/// Deepest nesting of multipart and message/rfc822 parts we descend into, as
/// Dovecot's `mail_max_nested_mime_parts` default (100). A container deeper than
/// this is kept as an opaque leaf, so a hostile message cannot make the part
/// tree (or the recursive BODYSTRUCTURE writer) grow without bound.
pub const MAX_MIME_DEPTH: usize = 100;
/// Most MIME parts in one message, as Dovecot's `mail_max_total_mime_parts`
/// default (10,000). Past it, boundaries are no longer recognised and the rest
/// of the message stays in the current part.
pub const MAX_MIME_PARTS: usize = 10_000;
/// Most decoded text kept per message for SEARCH BODY/TEXT (and most raw bytes
/// of one part fed to the decoders). Text past it is not searched: a 50 MiB
/// attachment must not cost 50 MiB of UTF-8 per SEARCH.
pub const MAX_SEARCH_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Largest cache blob `MessageInfo::from_cache_bytes` accepts.
pub const MAX_MIME_CACHE_BYTES: usize = 16 * 1024 * 1024;
