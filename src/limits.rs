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

// ---- imap proto ----

/// Deepest nesting of parenthesised lists, NOT and OR in one SEARCH program.
/// Real clients nest a handful of levels; 64 keeps the recursive descent far
/// from the stack's end even in a debug build on a small tokio stack.
pub const MAX_SEARCH_DEPTH: usize = 64;
/// Most ranges (comma-separated items) in one sequence set. A 64 KiB line of
/// single-digit UIDs holds about 32k of them; more can only come from a raised
/// line limit, and we still refuse to build an unbounded vector then.
pub const MAX_SEQUENCE_SET_RANGES: usize = 50_000;
/// Largest non-synchronizing literal a client may send when only LITERAL- is
/// offered (RFC 7888 section 5).
pub const LITERAL_MINUS_MAX: u64 = 4096;
/// Most field/value pairs in an ID command (RFC 2971 section 3.3 caps clients at 30).
pub const MAX_ID_FIELDS: usize = 30;
/// Bytes of a discarded line the receiver remembers to spot a literal header
/// (`~{18446744073709551615+}\r` is 25 bytes) at its end.
pub const LITERAL_HEADER_TAIL: usize = 32;
/// Longest string the encoder sends quoted; longer ones go as literals so a
/// client never has to scan an unbounded quoted string.
pub const MAX_QUOTED_RESPONSE_LEN: usize = 1024;
