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
/// Largest PBKDF2 iteration count a stored SCRAM entry may have (`{SCRAM-SHA-256}iter,...`):
/// each login (SCRAM or plain against a SCRAM entry) costs that many HMACs, and a hand-edited
/// 2^31 would pin a core for minutes. Dovecot allows up to INT_MAX; entries above are refused.
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;
/// Iteration count of newly made SCRAM keys (`user add --scheme SCRAM-SHA-256`) and of the fake
/// keys offered for users without SCRAM keys: 4096, as Dovecot and RFC 7677's minimum.
pub const DEFAULT_SCRAM_ITERATIONS: u32 = 4096;
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

// ---- auth ----

/// Default Argon2id memory cost for new hashes, in KiB: the OWASP password
/// storage cheat sheet's first recommended setting (m=19 MiB, t=2, p=1).
pub const DEFAULT_ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Default Argon2id iterations for new hashes (OWASP, with the memory cost above).
pub const DEFAULT_ARGON2_T_COST: u32 = 2;
/// Default Argon2id lanes for new hashes (OWASP). One lane keeps a login on one
/// core so `hash_threads` really bounds the CPU used by authentication.
pub const DEFAULT_ARGON2_P_COST: u32 = 1;
/// Largest Argon2 memory cost (KiB) a stored hash may ask for. A verification
/// allocates this much, `hash_threads` times at once: 256 MiB still covers the
/// `argon2` CLI and libsodium "moderate" settings found in Dovecot files.
pub const MAX_ARGON2_M_COST_KIB: u32 = 256 * 1024;
/// Largest Argon2 iteration count a stored hash may ask for (CPU per login).
pub const MAX_ARGON2_T_COST: u32 = 64;
/// Largest Argon2 lane count a stored hash may ask for.
pub const MAX_ARGON2_P_COST: u32 = 16;
/// Largest SHA-crypt `rounds=` a stored hash may ask for; the default is 5000
/// and each round is cheap, but 999,999,999 (the format's maximum) would pin a
/// core for minutes per login.
pub const MAX_SHA_CRYPT_ROUNDS: u32 = 1_000_000;
/// Largest bcrypt cost a stored hash may ask for (2^cost rounds; 16 is several
/// seconds per login, the format allows 31).
pub const MAX_BCRYPT_COST: u32 = 16;
/// Longest password accepted for verification. Far beyond any real password;
/// keeps a LOGIN command's 64 KiB line from becoming hashing input.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest user name, as the admin tools enforce and logins accept.
pub const MAX_USERNAME_LEN: usize = 255;
/// Largest users file read; a passwd-file with a million users stays below it.
pub const MAX_USERS_FILE_SIZE: u64 = 256 * 1024 * 1024;
/// Longest line of the users file (hash plus extra fields stay far below).
pub const MAX_USERS_FILE_LINE: usize = 16 * 1024;
/// Minimum time between two checks of the users file's mtime/size/inode.
pub const USERS_FILE_CHECK_INTERVAL_MS: u64 = 1000;
/// Default first delay after a failed login, as Dovecot's auth penalty (2 s).
pub const DEFAULT_AUTH_FAILURE_DELAY_MS: u64 = 2000;
/// Default cap of the doubling failed-login delay, as Dovecot's (15 s).
pub const DEFAULT_AUTH_FAILURE_DELAY_MAX_MS: u64 = 15_000;
/// A remote address's failure count is forgotten after this long without a
/// failure, as Dovecot's auth penalty table.
pub const AUTH_PENALTY_FORGET_SECS: u64 = 3600;
/// Most remote addresses the failure table remembers; bounds its memory when
/// an attack comes from many addresses (oldest entries are evicted first).
pub const MAX_AUTH_PENALTY_ENTRIES: usize = 65_536;
/// Default number of logins that may wait for a hashing thread; beyond it a
/// login fails at once with a temporary error instead of queueing unbounded.
pub const DEFAULT_AUTH_MAX_QUEUED: usize = 256;
/// Default number of verified credentials the login cache remembers (about 100 bytes each).
pub const DEFAULT_CREDENTIAL_CACHE_SIZE: usize = 100_000;
/// Most verified credentials the login cache may be configured to remember.
pub const MAX_CREDENTIAL_CACHE_SIZE: usize = 10_000_000;
/// Longest time a verified credential may be configured to stay in the login cache (a day).
pub const MAX_CREDENTIAL_CACHE_SECS: u64 = 86_400;
/// Largest decoded SASL PLAIN/LOGIN field (authzid, authcid); RFC 4616 asks for
/// at least 255 octets.
pub const MAX_SASL_FIELD: usize = 1024;
// ---- mime ----

/// Largest decoded BINARY section kept in memory for the next FETCH of it (RFC 3516; see
/// `imap::fetch::binary`): an attachment a client opens again, or fetches in windows.
pub const MAX_BINARY_DECODED_ENTRY_BYTES: u64 = 8 * 1024 * 1024;
/// Decoded BINARY sections kept, and being collected, by the whole process together; least
/// recently used first out.
pub const MAX_BINARY_DECODED_CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Deepest nesting of multipart and message/rfc822 parts we descend into, as
/// Dovecot's `mail_max_nested_mime_parts` default (100). A container deeper than
/// this is kept as an opaque leaf, so a hostile message cannot make the part
/// tree (or the recursive BODYSTRUCTURE writer) grow without bound.
pub const MAX_MIME_DEPTH: usize = 100;
/// Most MIME parts in one message, as Dovecot's `mail_max_total_mime_parts`
/// default (10,000). Past it, boundaries are no longer recognised and the rest
/// of the message stays in the current part.
pub const MAX_MIME_PARTS: usize = 10_000;
/// Deepest parenthesis nesting the UTF-8 header downgrade (`imap::fetch::downgrade`) reads back
/// from a cached ENVELOPE or BODYSTRUCTURE. Our writer nests a list per MIME level plus a few for
/// parameters and a message/rfc822 part's envelope, so twice [`MAX_MIME_DEPTH`] and some is more
/// than it ever writes; deeper text is a damaged cache entry and is only stripped of 8-bit octets.
pub const MAX_DOWNGRADE_DEPTH: usize = 2 * MAX_MIME_DEPTH + 8;
/// Longest run of whitespace inside a quoted-printable line that FETCH BINARY keeps pending
/// while it waits to see whether the line ends there (trailing whitespace is dropped, RFC 2045
/// 6.7 rule 3): the longest legal line (RFC 5322 2.1.1). A longer run followed by text cannot be
/// valid quoted-printable and answers `NO [PARSE]`; a longer trailing run is dropped as usual.
/// Dovecot stops at 76 (the longest encoded line), which refuses some real mail.
pub const QP_MAX_WHITESPACE_RUN: usize = 998;
/// Most sections whose FETCH BINARY decoded size is remembered per message (in the opaque
/// cache field `imap::fetch::binary::BINARY_SIZE_CACHE`, about 20 bytes each): a client asks
/// for a few parts of a message, and a hostile one cannot grow the entry past this.
pub const BINARY_SIZE_CACHE_SECTIONS: usize = 16;
/// Most decoded text kept per message for SEARCH BODY/TEXT (and most raw bytes
/// of one part fed to the decoders). Text past it is not searched: a 50 MiB
/// attachment must not cost 50 MiB of UTF-8 per SEARCH.
pub const MAX_SEARCH_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Most entries (addresses and group markers) one address header (From, Sender,
/// Reply-To, To, Cc, Bcc) contributes to ENVELOPE; the rest of the field is not
/// parsed. Each entry costs a fixed maximum of text (`(NIL NIL "MISSING_MAILBOX"
/// "MISSING_DOMAIN")` for a 1-2 byte broken address), and From is written three
/// times (Sender and Reply-To default to it), so without a cap a 1 MiB header of
/// `a,a,a,...` became a 45 MB ENVELOPE. Dovecot has no such cap; 1,000 is far
/// above real recipient lists (mailing list software sends one copy per
/// recipient or uses Bcc) and SEARCH still sees the whole field.
pub const MAX_ENVELOPE_ADDRESSES: usize = 1000;
/// Largest cache blob `MessageInfo::from_cache_bytes` accepts.
pub const MAX_MIME_CACHE_BYTES: usize = 16 * 1024 * 1024;
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
/// Live `UPDATE` search/sort contexts (RFC 5267 4.3) one session may hold; each keeps its search
/// program and its current result. Beyond it the search still answers, with `* NO [NOUPDATE]`
/// instead of updates (RFC 5267 4.3.1). Dovecot's limit (`CLIENT_MAX_SEARCH_UPDATES`) is the same.
pub const MAX_UPDATE_CONTEXTS: usize = 10;
/// Tags one CANCELUPDATE may name: no session has more live contexts than
/// [`MAX_UPDATE_CONTEXTS`], so a longer list can only be a client bug or an attack.
pub const MAX_CANCELUPDATE_TAGS: usize = 100;
/// Bytes of a discarded line the receiver remembers to spot a literal header
/// (`~{18446744073709551615+}\r` is 25 bytes) at its end.
pub const LITERAL_HEADER_TAIL: usize = 32;
/// Longest string the encoder sends quoted; longer ones go as literals so a
/// client never has to scan an unbounded quoted string.
pub const MAX_QUOTED_RESPONSE_LEN: usize = 1024;
// ---- storage ----
/// Threads that fsync the messages of one MULTIAPPEND at once. The journal of ext4/xfs commits
/// concurrent fsyncs together, so 100 messages cost a few commits instead of 100 in a row.
pub const MAX_PARALLEL_FSYNCS: usize = 16;

/// Longest mailbox name in bytes, on the wire and as a directory name on
/// disk: 255 is the file-name limit of every common Unix file system.
pub const MAX_MAILBOX_NAME_BYTES: usize = 255;
/// Deepest mailbox hierarchy; bounds every walk over a name's levels.
pub const MAX_MAILBOX_DEPTH: usize = 32;
/// Most mailboxes one user's LIST reports; more are ignored (and logged), so
/// a hostile tree cannot make LIST allocate without bound.
pub const MAX_MAILBOXES_PER_USER: usize = 10_000;
/// Most keywords one mailbox holds; a STORE, APPEND or COPY that would need more fails
/// before creating any. Every message's keyword set can reach this many bits (1.25 KiB), and
/// `* FLAGS` lists them all, so it stays far below what would make a picture or a response
/// unreasonable, while leaving room for clients that tag freely (at least 1,000 are needed).
pub const MAX_KEYWORDS_PER_MAILBOX: usize = 10_000;
/// Keywords that a Maildir file name can carry, as the letters `a`..`z` indexing
/// `dovecot-keywords` (Dovecot and Courier read them); the rest live in mailcove's index.
pub const MAILDIR_KEYWORD_LETTERS: usize = 26;
/// Largest `mailcove-keywords` file read: every keyword beyond the letters, with its index.
pub const MAX_KEYWORDS_FILE_BYTES: usize = MAX_KEYWORDS_PER_MAILBOX * (MAX_KEYWORD_BYTES + 8);
/// Longest keyword name.
pub const MAX_KEYWORD_BYTES: usize = 128;
/// Most header bytes [`crate::storage::ReadPart::Header`] returns.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// `tmp/` files older than this are leftovers of crashed writers (Maildir spec: 36 h).
pub const TMP_MAX_AGE_SECS: i64 = 36 * 3600;
/// Messages per copy-on-write chunk of a view: copying one chunk on a flag
/// change costs ~48 KiB; a 100,000-message view holds ~100 chunk pointers.
pub const MESSAGE_LIST_CHUNK: usize = 1024;
/// The index log is compacted into the base once it holds more records than
/// this or than half the messages, whichever is larger.
pub const INDEX_LOG_COMPACT_MIN: usize = 1000;
/// Expunged UIDs a mailbox remembers with their modseq, to answer QRESYNC `VANISHED (EARLIER)`
/// exactly (RFC 7162 3.2.5.2). A client that was away for more expunges than this gets every UID
/// below UIDNEXT not in the mailbox instead (which the RFC allows, only bigger). 16 bytes each in
/// memory, ~20 in the index base: at most ~320 KiB per mailbox, and it covers 10% of a
/// 100,000-message mailbox expunged while a phone was offline.
pub const VANISHED_WINDOW: usize = 10_000;
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
// ---- imap search ----

/// Most bytes of one message SEARCH BODY/TEXT reads (from its start). Text parts past this
/// point of a larger message are not searched: a search holds one message at a time, and this
/// bounds it; 16 MiB covers the text of all but attachment-laden messages, whose text part
/// usually comes first.
pub const MAX_SEARCH_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Largest search header cache entry (From, To, Cc, Bcc, Subject, Date lines). A message with
/// more (a To: with thousands of recipients) is read from its file each time instead of bloating
/// the cache file.
pub const MAX_SEARCH_HEADER_CACHE_BYTES: usize = 64 * 1024;
/// Messages the metadata stage leaves undecided that are handled together: one cache read and
/// one cache write per batch, a bounded list of pending messages.
pub const SEARCH_BATCH: usize = 256;
// ---- imap fetch ----

/// Messages FETCH handles together: one `\Seen` store and one list of metadata per batch. The
/// structures of a batch are looked up in as few cache reads as
/// [`FETCH_STRUCTURE_LOOKUP_BYTES`] allows, and parsed [`FETCH_PARSE_BATCH`] at a time.
pub const FETCH_BATCH_MESSAGES: usize = 512;
/// Output FETCH lets accumulate before writing it to the client; a streamed section that fits
/// in what is left of it is queued rather than written on its own.
pub const FETCH_FLUSH_BYTES: usize = 64 * 1024;
/// Mailbox states kept in memory after their last view closed (LRU), so
/// repeated deliveries or STATUS do not reload an index each time. A
/// 100,000-message state is ~15 MB, so this bounds idle memory.
pub const MAILBOX_STATE_CACHE: usize = 16;
/// Names of our own recent changes in `cur/` remembered so their inotify
/// events are not mistaken for someone else's (which would cost a rescan).
pub const OWN_NAMES_MAX: usize = 16_384;
// ---- imap COMPRESS=DEFLATE (RFC 4978) ----

/// DEFLATE level of what the server sends after `COMPRESS DEFLATE`: Dovecot's default
/// (`imap_compress_deflate_level = 6`), which compresses IMAP responses to about a quarter.
pub const DEFLATE_LEVEL: u32 = 6;
/// Compressed bytes produced before each write to the socket: a large FETCH body streams through
/// the compressor in pieces of this size rather than being compressed whole.
pub const DEFLATE_OUTPUT_CHUNK: usize = 16 * 1024;
// ---- pop3 ----

/// A LIST/UIDL answer is flushed whenever this many bytes are queued, so its memory does not
/// grow with the maildrop.
pub const POP3_LISTING_FLUSH: usize = 64 * 1024;
/// Users whose last POP3 login time is remembered for LOGIN-DELAY. At ~100 bytes each this is a
/// few MB; past it, logins are not delayed rather than memory growing.
pub const MAX_LOGIN_DELAY_ENTRIES: usize = 100_000;
// ---- messages in flight (IMAP APPEND, LMTP DATA/BDAT, deliver) ----

/// Default budget of message bytes buffered in memory, summed over all connections
/// (`limits.max_inflight_message_bytes`). Each streamed transfer holds one chunk of it while its
/// bytes pass through; 64 MiB lets about a thousand transfers stream at once, and past it a new
/// one is refused (`NO [LIMIT]`, LMTP `452 4.3.1`) instead of memory growing.
pub const DEFAULT_MAX_INFLIGHT_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes of a message read from a client before they are written to storage or the spool: the
/// memory one transfer holds, and the size of each write. Large enough that a 50 MB literal is a
/// few hundred writes, small enough that 1,000 transfers fit the default budget.
pub const INCOMING_MESSAGE_CHUNK: usize = 64 * 1024;
/// The share of the in-flight budget kept for mail delivery (LMTP, `deliver`): IMAP APPENDs may
/// use all but one part in this many, so clients trickling big literals cannot refuse the MTA's
/// deliveries (`452 4.3.1`) server-wide. Never less than one chunk is left to IMAP.
pub const DELIVERY_INFLIGHT_RESERVE_DIVISOR: u64 = 4;
/// How long a new transfer waits for budget before it is refused: long enough to ride out a
/// burst, short enough that the client is not left hanging.
pub const INFLIGHT_WAIT_MS: u64 = 2000;
/// An LMTP/deliver message spooled for several recipients stays in memory up to this size (while
/// the in-flight budget allows); a larger one is moved to an unlinked temporary file.
pub const SPOOL_MEMORY_MAX: usize = 256 * 1024;

// ---- lmtp ----

/// Default permissions of an LMTP Unix socket: owner and group (the MTA's group) may connect.
pub const DEFAULT_LMTP_SOCKET_MODE: u32 = 0o660;
/// Longest LMTP command line. RFC 5321 section 4.5.3.1.4 sets 512 octets; MAIL and RCPT with
/// parameters from real MTAs (ORCPT with a long address, SIZE, BODY) stay far below 4 KiB.
pub const LMTP_MAX_COMMAND_LINE: usize = 4096;
/// Longest address accepted in MAIL FROM or RCPT TO: RFC 5321 section 4.5.3.1.3 (path: 256).
pub const LMTP_MAX_PATH: usize = 256;
/// Recipients per transaction; RFC 5321 section 4.5.3.1.8 asks for at least 100. The message is
/// spooled once and streamed to each recipient, so recipients cost no copy of it.
pub const LMTP_MAX_RECIPIENTS: usize = 100;
/// Copies of one message stored at once in a transaction: recipients are stored in parallel so
/// a slow mailbox does not hold the others up; each copy being written holds one chunk.
pub const LMTP_PARALLEL_DELIVERIES: usize = 4;
/// Seconds an LMTP client may stay silent (between commands or inside DATA): RFC 5321
/// section 4.5.3.2.7 asks servers to wait at least 5 minutes.
pub const LMTP_IDLE_SECS: u64 = 300;
/// Unrecognised or malformed commands tolerated before the connection is closed.
pub const LMTP_MAX_BAD_COMMANDS: u32 = 20;

// ---- sieve at delivery (LMTP, deliver) ----

/// Compiled Sieve scripts the process keeps (users' active scripts, `sieve_before`/`sieve_after`,
/// includes), keyed by path and file identity. A script is a few KiB compiled; past this many
/// the least recently used is dropped and compiled again when next needed.
pub const SIEVE_SCRIPT_CACHE_ENTRIES: usize = 1024;
/// `*.sieve` files taken from one `sieve_before`/`sieve_after` directory.
pub const SIEVE_MAX_SCRIPTS_PER_DIRECTORY: usize = 64;
/// Entries of a user's Sieve tracking file (duplicate ids, vacation responses, redirects), each
/// under 100 bytes: past this many the ones expiring first are dropped, so the file stays under
/// half a MiB however much mail arrives.
pub const SIEVE_TRACKING_ENTRIES: usize = 4096;
/// How long a redirect of a message (by Message-ID and target) is remembered, so a delivery the
/// MTA retries does not send it again (Pigeonhole's `sieve_redirect_duplicate_period`, 12h).
pub const SIEVE_REDIRECT_DUPLICATE_SECS: u64 = 12 * 3600;
/// Seconds for each step of an SMTP submission (connect, each reply) or a sendmail run, for
/// vacation replies and redirects.
pub const SIEVE_SUBMISSION_TIMEOUT_SECS: u64 = 30;
/// Longest SMTP reply line read from the submission server.
pub const SIEVE_SUBMISSION_MAX_LINE: usize = 4096;
// ---- hostile-input hardening ----

/// Password verifications a remote address (IPv6: its /64) with failed logins on record may
/// have queued or running at once; its further logins wait their turn. One keeps a guessing
/// storm from occupying more than one hashing thread, so other addresses still log in at once
/// (`hash_threads` is at least 2 by default on any multi-core machine). An address without
/// failures may use all `hash_threads` (a webmail front end logs all its users in from one).
pub const MAX_AUTH_HASHES_PER_FAILING_ADDRESS: u32 = 1;

// ---- allocator ----

/// Allocations at least this large are mmapped by glibc and returned to the kernel when freed
/// (`server::alloc`). 256 KiB keeps small, frequent allocations in the arenas, where they are
/// fast, and sends password-hash memory and message-sized buffers back after use.
pub const MALLOC_MMAP_THRESHOLD_BYTES: usize = 256 * 1024;

// ---- Maildir listing (SELECT of big mailboxes) ----

/// Files one thread stats, at least, when many new files are found at once (the first SELECT
/// of a Maildir): each file's mtime is its INTERNALDATE, and stat dominates that first look.
/// Below this a second thread costs more to start than it saves.
pub const STAT_FILES_PER_THREAD: usize = 512;
/// Threads that stat such a listing at once (also capped by the CPUs available).
pub const STAT_THREADS_MAX: usize = 4;

/// Messages whose file names a batch open (FETCH and SEARCH workers) looks up under one hold
/// of the mailbox state, rather than one hold per message.
pub const VISIT_LOCATE_CHUNK: usize = 256;

// ---- streaming message bodies (FETCH BODY[...], POP3 RETR/TOP) ----

/// Bytes of a message file read and converted per step (`storage::stream`): on the runtime thread
/// when they are in the page cache, else one blocking-thread hop per step, so larger chunks mean
/// fewer hops. A stream holds one read buffer and two converted ones of about this size (a CR
/// more per bare LF): some 400 KiB per connection streaming a body, each buffer below the
/// allocator's mmap threshold so they come from the arenas without page faults.
pub const MESSAGE_STREAM_CHUNK: usize = 128 * 1024;
/// Smallest chunk of a stored message sent straight from its file with `sendfile(2)` when it
/// needs no conversion (plain TCP, no COMPRESS; `storage::stream::Pump::allow_file`). Smaller
/// ones (a small message, the end of a large one) are copied into the output buffer, where they
/// join the rest of the response in one write instead of costing a system call of their own.
pub const SENDFILE_MIN_BYTES: usize = 64 * 1024;
/// A RETR/TOP chunk is queued with the status line and terminator rather than written on its own
/// while the queued output stays under this: a typical message goes out in one write.
pub const POP3_RETR_QUEUE_BYTES: usize = 64 * 1024;

// ---- imap fetch: structure (ENVELOPE, BODY, BODYSTRUCTURE) ----

/// Blocking threads that read and parse one FETCH group of structure-cache misses together;
/// each holds one message file open and in memory at a time.
pub const FETCH_PARSE_WORKERS: usize = 2;
/// Cache records of one lookup that lie at most this many bytes apart are read with one `pread`
/// (the bytes between them are read and dropped).
pub const CACHE_READ_GAP_BYTES: u64 = 4 * 1024;
/// Most bytes one such combined `pread` covers (a single larger record is read alone).
pub const CACHE_READ_SPAN_BYTES: u64 = 256 * 1024;
/// Bytes of one kind of structure-cache entry FETCH reads in one lookup. Entries are usually a
/// few hundred bytes (so a whole batch is one lookup), but a hostile message's can reach the
/// cache's per-entry limit, so lookups stop at this size to bound what a batch holds.
pub const FETCH_STRUCTURE_LOOKUP_BYTES: usize = 1024 * 1024;
/// Structure-cache misses FETCH parses together (fewer hand-offs to blocking threads). Each
/// worker opens one message at a time, and [`FETCH_PARSE_BYTES`] bounds what a group holds.
pub const FETCH_PARSE_BATCH: usize = 256;
/// Bytes of parsed structures (cache entries and texts, parsed forms estimated) a group of
/// misses may hold until its responses are written; parsing stops early past it, so a few
/// hostile messages with huge structures cannot make one FETCH hold hundreds of megabytes. A
/// FETCH holds at most two groups: the one being written and the next, loaded meanwhile.
pub const FETCH_PARSE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of messages (by recorded size; at least one message) a FETCH or SEARCH lane asks
/// storage for in one `read_messages` call; the next piece is read while one is parsed, so a
/// lane holds at most two. Each piece costs two thread hand-offs: on the benchmark's first
/// `FETCH 1:* ENVELOPE` over 100,000 messages, 128 KiB pieces took 2.6-3.0 s against 1.5-1.8 s
/// for the per-message reads they replaced, 1 and 2 MiB about 2.0 s, 4 MiB 1.7-1.9 s.
pub const READ_PIECE_BYTES: u64 = 4 * 1024 * 1024;
/// Buffers the Maildir backend keeps for reading pieces (`read_messages`): a piece's messages are
/// read into one buffer without zeroing it, and the buffer goes back to this pool when the last
/// message of the piece is dropped, so reading 100,000 messages costs no allocation, zeroing or
/// page fault per message. Two FETCH lanes hold at most two pieces each.
pub const READ_PIECE_POOL_BUFFERS: usize = 4;
/// Largest buffer the piece pool keeps (a typical piece is 1-2 MiB); a larger one, made for a
/// piece of a few big messages, is freed instead, so the pool holds at most
/// `READ_PIECE_POOL_BUFFERS` times this.
pub const READ_PIECE_POOL_MAX_BYTES: usize = 2 * 1024 * 1024;

// ---- search (SEARCH header/body stages) ----

/// Blocking workers one SEARCH spreads a batch's file reads and parsing over (each worker
/// holds at most one message in memory). Two keeps both cores of a small server busy on a large
/// TEXT search without letting one session take over a big machine's blocking pool.
pub const SEARCH_WORKERS: usize = 2;

// ---- coldselect: writing a big mailbox's first index ----
/// Bytes of index text formatted before each `write` of a base file.
pub const INDEX_WRITE_CHUNK: usize = 256 * 1024;
/// Buffer for one `getdents64` call when listing a Maildir directory.
pub const DIR_READ_BUF_BYTES: usize = 64 * 1024;
/// At most this many bytes are reserved up front for a directory's names
/// (guessed from its size; a larger listing grows as it goes).
pub const DIR_LIST_RESERVE_MAX: usize = 64 * 1024 * 1024;

// ---- sort and thread keys (SORT, THREAD) ----

/// Longest sort string kept per message and key (base subject, addr-mailbox, display name),
/// in bytes of its casemapped form: two subjects alike in their first 512 bytes sort as equal
/// (and then by sequence number). Real subjects and names are far shorter; the cap bounds what
/// a sort of a large mailbox holds (one key per message: at most 50 MB for 100,000).
pub const MAX_SORT_KEY_BYTES: usize = 512;
/// Longest Message-ID (between the brackets) kept for THREAD; a longer one counts as invalid
/// rather than being cut, which could make two different ids equal.
pub const MAX_MSGID_BYTES: usize = 512;
/// Message-IDs of References: kept per message for THREAD, the last ones (the nearest
/// ancestors).
pub const MAX_THREAD_REFERENCES: usize = 64;
/// Messages whose sort keys are looked up in the cache, and whose headers are read on a miss,
/// together: one cache read and one cache write per batch.
pub const SORT_BATCH: usize = 1024;
/// Most criteria in one SORT program: there are nine keys, so more than this repeats one, and
/// Dovecot refuses more than ten as well.
pub const MAX_SORT_CRITERIA: usize = 10;
/// Bytes the process keeps of sort columns shared by all sessions (per mailbox, UIDVALIDITY
/// and key: 12 bytes a message, so 1.2 MB for a 100,000-message mailbox and key); the least
/// recently used columns go first. See [`crate::imap::sort::shared`].
pub const MAX_SORT_COLUMN_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most sort columns the process keeps (whatever their size): bounds the lookup, a scan of
/// them, when many small mailboxes are sorted.
pub const MAX_SORT_COLUMN_CACHE_ENTRIES: usize = 4096;

/// THREAD REFERENCES/REFS: most ancestors walked to check that a new parent link closes no loop
/// (RFC 5256 step 1.A). Deeper chains are not linked further, which bounds a crafted mailbox's
/// cost at this many steps per message instead of the whole chain's depth.
pub const MAX_THREAD_LINK_WALK: usize = 1_000;

// ---- imap preview (RFC 8970) ----

/// Most characters (Unicode scalar values, not octets) of a PREVIEW text: RFC 8970 3.3 says a
/// server SHOULD stop at 200 and MUST NOT send more than 256; Dovecot's snippet stops at 200.
pub const PREVIEW_MAX_CHARS: usize = 200;
/// The hard limit of RFC 8970 3.3 (MUST NOT exceed 256 preview characters); a cached preview
/// longer than this is not served.
pub const PREVIEW_RFC_MAX_CHARS: usize = 256;
/// Most raw (still transfer-encoded) bytes of one body part read to make its preview. 200
/// characters of text need far less; 64 KiB leaves room for HTML markup, style sheets and
/// quoted lines before the text, and bounds the work a huge text part can cause.
pub const PREVIEW_PART_BYTES: u64 = 64 * 1024;
/// Most text parts tried, in order, when the first ones give no text (empty HTML, only
/// whitespace): with [`PREVIEW_PART_BYTES`] this bounds one preview at 512 KiB read, whatever
/// a crafted message with thousands of empty text parts holds.
pub const PREVIEW_MAX_PARTS: usize = 8;
/// OBJECTID/SAVEDATE (RFC 8474, RFC 8514): messages whose EMAILID, THREADID and SAVEDATE are
/// asked of the storage in one call. A SEARCH by EMAILID or SAVEDATE walks a mailbox in batches
/// of this many, keeping only what matched, so a search never holds the ids of a whole mailbox.
pub const OBJECT_BATCH: usize = 4096;
/// Most messages in one MULTIAPPEND (RFC 3502). Each waits as an open temporary file until the
/// command ends (all are stored at once or none), so a client could otherwise hold any number of
/// file descriptors; answered `NO [LIMIT]`.
pub const MAX_MULTIAPPEND_MESSAGES: usize = 100;
/// Most parts in one CATENATE message (RFC 4469). Each URL part is a message read; answered BAD.
pub const MAX_CATENATE_PARTS: usize = 100;

// ---- storage admin commands (mailcove import / export) ----

/// Most bytes of one mbox line handled at once by `mailcove import`: a longer line is taken in
/// pieces of this size (only a piece at a line start can be a `From ` separator), so a crafted
/// file with a gigabyte on one line costs no more memory than this.
pub const MBOX_PIECE_BYTES: usize = 64 * 1024;
/// Bytes of a message gathered before they are written to its append stream by
/// `mailcove import`, and read from storage at a time by `mailcove export`: each write is a
/// trip to a blocking worker, so a line at a time would make a large import crawl.
pub const MBOX_CHUNK_BYTES: usize = 256 * 1024;

// ---- mailcove migrate ----

/// Most messages `mailcove migrate` imports in one batch (stored all or none, durable before
/// the next is read): an interrupted run loses at most one batch of work, and progress is
/// printed per batch.
pub const MIGRATE_BATCH_MESSAGES: usize = 100;
/// Most bytes of content `mailcove migrate` holds for one batch: a batch ends before a message
/// that would pass it (a larger message goes alone, it must be stored whole).
pub const MIGRATE_BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Copy passes over one user after which `mailcove migrate` gives up on a source that keeps
/// changing (mail arriving faster than it is copied): stop deliveries and run again.
pub const MIGRATE_MAX_PASSES: u32 = 20;

// ---- metrics endpoint (docs/metrics.md) ----

/// Most bytes of an HTTP request head to the metrics endpoint. A Prometheus scrape sends about
/// 300; a longer head is answered 431 and the connection closed, so a client cannot make the
/// endpoint buffer more.
pub const METRICS_MAX_REQUEST: usize = 8 * 1024;
/// Seconds a metrics connection may take from accept to the end of the response (Prometheus'
/// default scrape timeout is 10 s).
pub const METRICS_REQUEST_SECS: u64 = 10;
/// Metrics connections served at once; more are closed at accept. Scrapers are a handful of
/// Prometheus servers, so this only bounds what a misbehaving client can hold.
pub const METRICS_MAX_CONNECTIONS: usize = 8;

/// Where the control socket (`mailcove who`, `kick`, `reload`) is, unless `server.control_socket`
/// says otherwise: the runtime directory systemd's `RuntimeDirectory=mailcove` creates.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/mailcove/control.sock";
/// Longest control request line: a JSON object naming a command and a user name.
pub const CONTROL_MAX_REQUEST: usize = 4096;
/// Longest control response the CLI reads: `who` lists at most `limits.max_connections` rows of
/// a few hundred bytes each.
pub const CONTROL_MAX_RESPONSE: u64 = 64 * 1024 * 1024;
/// Seconds a control client gets to send its request and read the answer; the daemon serves one
/// control connection at a time, so a silent one must not hold the socket.
pub const CONTROL_IO_SECS: u64 = 10;
/// Longest path a Unix socket can be bound at (`sun_path` is 108 bytes with its NUL).
pub const MAX_UNIX_SOCKET_PATH: usize = 107;
// ---- imap metadata (RFC 5464) ----

/// Largest METADATA entry value stored, in octets: SETMETADATA over it is `NO [METADATA MAXSIZE
/// n]`. RFC 5464 4.1 asks for at least 1024; 16 KiB holds any comment or client setting seen
/// in practice (Thunderbird, push services). It stays well below the command line limit
/// ([`DEFAULT_MAX_COMMAND_LINE`], which bounds every literal but APPEND's), so a value just over
/// it still reaches SETMETADATA and gets the METADATA code; a literal over the line limit is
/// refused by the framing first (`[TOOBIG]`, RFC 7888).
pub const MAX_METADATA_VALUE_BYTES: usize = 16 * 1024;
/// Most METADATA entries on one mailbox, and on the server entries of one user: a new entry
/// past it is `NO [METADATA TOOMANY]`. RFC 5464 4.1 asks for at least 10.
pub const MAX_METADATA_ENTRIES: usize = 100;
/// Most octets of METADATA (entry names plus values) one user may keep over all their
/// mailboxes and server entries; past it a new value is `NO [METADATA TOOMANY]` too. This also
/// bounds one GETMETADATA answer and the memory the memory backend spends on a user's entries.
pub const MAX_METADATA_USER_BYTES: usize = 1024 * 1024;
/// Longest METADATA entry name, in octets; a longer one is BAD like any invalid name.
pub const MAX_METADATA_ENTRY_NAME_BYTES: usize = 1024;

// ---- PROXY protocol (HAProxy proxy-protocol.txt) ----

/// Time a proxy has to send its PROXY header after connecting: Dovecot's
/// `haproxy_timeout` default. The proxy sends it at once, so only a broken or hostile peer waits.
pub const PROXY_HEADER_TIMEOUT_SECS: u64 = 3;
/// The longest version 1 header, CRLF included: the spec's worst case (TCP6 with full-length
/// addresses and ports) is 104 bytes and it tells receivers to read at most 107.
pub const PROXY_V1_MAX_BYTES: usize = 107;
/// Most bytes a version 2 header may declare after its 16 fixed bytes (the spec allows 65535).
/// The address block is at most 216 bytes (AF_UNIX); the rest is TLVs, of which HAProxy's SSL,
/// ALPN and authority TLVs and the cloud load balancers' ids fit well inside 2 KiB. A longer
/// header is refused rather than buffered.
pub const PROXY_V2_MAX_PAYLOAD: usize = 2048;

// ---- imap notify (RFC 5465) ----

/// Events one user's change feed holds for its slowest subscriber. The ring is shared by every
/// session of the user (a session costs a cursor, not a queue); a session that falls further
/// behind gets `* OK [NOTIFICATIONOVERFLOW]` and its NOTIFY is turned off (RFC 5465 5.8).
pub const NOTIFY_FEED_CAPACITY: usize = 64;
/// Most mailbox names in one NOTIFY SET (over all `mailboxes` and `subtree` filters); more is
/// answered `NO [NOTIFICATIONOVERFLOW]`, as Dovecot (its `IMAP_NOTIFY_MAX_NAMES_PER_NS`).
pub const NOTIFY_MAX_NAMES: usize = 100;
/// Most event groups in one NOTIFY SET (the grammar allows any number; answered BAD).
pub const NOTIFY_MAX_GROUPS: usize = 32;
/// Mailboxes whose last unsolicited STATUS a session remembers, so the same STATUS is not sent
/// twice for one change reported twice (in process and again by inotify).
pub const NOTIFY_STATUS_MEMORY: usize = 8;
/// Events handled in one go between commands or in IDLE before the session writes them out;
/// the rest wait in the feed.
pub const NOTIFY_BATCH: usize = 32;

// ---- OAUTHBEARER / XOAUTH2 (RFC 7628; docs/oauth2.md) ----

/// Seconds of clock difference allowed between mailcove and the token issuer when checking a
/// JWT's `exp`, `nbf` and `iat` (RFC 7519 4.1.4 allows "some small leeway"; a minute is what
/// most JWT libraries use).
pub const OAUTH_CLOCK_LEEWAY_SECS: i64 = 60;
/// Longest bearer token accepted. Azure AD tokens with many groups reach 4-5 KiB; the SASL line
/// carrying it (base64) is bounded by `MAX_SASL_LINE` anyway.
pub const MAX_OAUTH_TOKEN_LEN: usize = 6 * 1024;
/// Largest JWKS document read from `jwks_file` or `jwks_url`; real ones are a few KiB.
pub const MAX_JWKS_SIZE: u64 = 256 * 1024;
/// Most keys of a JWKS that are kept; a token is checked against at most this many.
pub const MAX_JWKS_KEYS: usize = 64;
/// Largest introspection (RFC 7662) response read.
pub const MAX_INTROSPECTION_RESPONSE: u64 = 64 * 1024;
/// Timeout of one HTTP request to the JWKS URL or the introspection endpoint, connection
/// included; a hanging identity provider then fails the login temporarily instead of holding it.
pub const OAUTH_HTTP_TIMEOUT_SECS: u64 = 10;
/// Default seconds a fetched JWKS is used before it is fetched again (`jwks_refresh_secs`).
pub const DEFAULT_JWKS_REFRESH_SECS: u64 = 3600;
/// Least time between two fetches of the JWKS, also when a token names an unknown `kid` (a key
/// rotation): a stream of tokens with made-up key ids cannot make mailcove hammer the provider.
pub const MIN_JWKS_REFRESH_SECS: u64 = 60;
/// Longest `jwks_refresh_secs` (a day).
pub const MAX_JWKS_REFRESH_SECS: u64 = 86_400;
// ---- ldap user database (issue 22) ----

/// Time to open a TCP connection to one LDAP URI (and finish TLS); the next URI is tried after.
pub const LDAP_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Time one user-database call (connect if needed, bind, search) may take in all before it
/// answers `DbError::Timeout`: a hung server (stopped, or a firewall dropping packets) must not
/// hold logins longer than a client waits. Dovecot has no such default; 5 s is well above a
/// healthy directory's milliseconds.
pub const LDAP_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// First wait after a failed connect before the next attempt; doubles per failure. Calls in the
/// wait answer `DbError::Unavailable` at once instead of queueing behind a dead server.
pub const LDAP_RECONNECT_BACKOFF_MIN_MS: u64 = 250;
/// Cap of that wait.
pub const LDAP_RECONNECT_BACKOFF_MAX_MS: u64 = 10_000;
/// Connections used for auth binds (`auth_bind = yes`): each bind needs a connection of its own
/// (a bind changes the connection's identity), so at most this many binds run at once; more wait.
pub const LDAP_MAX_AUTH_BIND_CONNECTIONS: usize = 8;
/// Most entries one iterate search returns (`mailcove ... -A`); the server is asked for no more.
pub const LDAP_MAX_ITERATE_ENTRIES: i32 = 100_000;
/// Longest value a template expands to (a filter, a DN, a mapped field); longer is refused.
pub const LDAP_MAX_EXPANDED_LEN: usize = 8 * 1024;
// ---- ManageSieve (RFC 5804) ----

/// Longest ManageSieve command line (each line between literals), CRLF excluded: Dovecot's
/// `managesieve_max_line_length` default. Longer lines are read to their end and answered NO.
pub const MANAGESIEVE_MAX_LINE: usize = 64 * 1024;
/// Most arguments (strings, numbers, atoms) in one command; the longest command, RENAMESCRIPT
/// or AUTHENTICATE with an initial response, has three.
pub const MANAGESIEVE_MAX_ARGS: usize = 8;
/// Largest literal other than a script (a name, a SASL response): a quoted string may hold 1024
/// octets (RFC 5804 section 4), a SASL line `MAX_SASL_LINE`.
pub const MANAGESIEVE_MAX_SMALL_LITERAL: usize = MAX_SASL_LINE;
/// A literal larger than this is not even read to its end to keep the stream in step: the
/// connection is closed with BYE. Smaller oversized literals are discarded and answered NO.
pub const MANAGESIEVE_MAX_DISCARD: u64 = 64 * 1024 * 1024;
/// Default `[sieve] max_script_size`: the compiler's own limit, Pigeonhole's
/// `sieve_max_script_size` default (1 MiB).
pub const MANAGESIEVE_DEFAULT_MAX_SCRIPT_SIZE: usize = SIEVE_MAX_SCRIPT_SIZE;
/// Default `[sieve] max_scripts` per user (Pigeonhole's `sieve_quota_max_scripts` is unlimited
/// by default; a bound keeps one user's directory listing small).
pub const MANAGESIEVE_DEFAULT_MAX_SCRIPTS: usize = 100;
/// Longest script name in characters: RFC 5804 section 1.6 asks servers to allow 128.
pub const MANAGESIEVE_MAX_NAME_CHARS: usize = 128;
/// Longest script name in octets: `NAME.sieve` must fit a file name (255 octets on Linux file
/// systems), so a name of 128 characters outside the BMP is refused rather than truncated.
pub const MANAGESIEVE_MAX_NAME_BYTES: usize = 255 - ".sieve".len();
/// The MAXREDIRECTS capability: `redirect` actions one script run may perform, the
/// interpreter's default.
pub const MANAGESIEVE_MAXREDIRECTS: usize = SIEVE_DEFAULT_MAX_REDIRECTS;

// ---- Sieve language (src/sieve) ----

/// Largest Sieve script source accepted by the compiler, as Pigeonhole's `sieve_max_script_size`
/// default (1 MiB): real rule sets are a few KiB.
pub const SIEVE_MAX_SCRIPT_SIZE: usize = 1024 * 1024;
/// Deepest nesting of blocks and test lists (`if` in `if`, `anyof(allof(...))`): the compiler
/// and interpreter recurse on it, so it bounds their stack.
pub const SIEVE_MAX_NESTING: usize = 32;
/// Default interpreter steps per run (`RunOptions::max_steps`): every command, test, compared
/// value and wildcard step counts one. A 40-rule script over a normal message takes a few
/// thousand; a hostile one is stopped well under a second of CPU.
pub const SIEVE_DEFAULT_MAX_STEPS: u64 = 2_000_000;
/// Default actions per run (`RunOptions::max_actions`), as Pigeonhole's `sieve_max_actions` (32).
pub const SIEVE_DEFAULT_MAX_ACTIONS: usize = 32;
/// Default redirects per message (`RunOptions::max_redirects`), as Pigeonhole's
/// `sieve_max_redirects` (4): enough for forwarding to a few addresses, too few to be a relay.
pub const SIEVE_DEFAULT_MAX_REDIRECTS: usize = 4;
/// Default nesting of `include` (`RunOptions::max_include_depth`), Pigeonhole's
/// `sieve_include_max_nesting_depth` (10).
pub const SIEVE_DEFAULT_MAX_INCLUDE_DEPTH: usize = 10;
/// Compiled size of one `:regex` key (`regex::RegexBuilder::size_limit`): a pattern that
/// needs more (`(a{1000}){1000}`) is a script error, not a memory spike.
pub const SIEVE_REGEX_SIZE_LIMIT: usize = 1024 * 1024;
/// Lazy DFA cache of one `:regex` key (`regex::RegexBuilder::dfa_size_limit`).
pub const SIEVE_REGEX_DFA_SIZE_LIMIT: usize = 1024 * 1024;
/// Variables per script run (local and global together), as Pigeonhole's
/// `sieve_variables_max_scope_size` (255).
pub const SIEVE_MAX_VARIABLES: usize = 255;
/// Longest variable value in bytes; RFC 5229 section 3 asks for at least 4000 characters,
/// Pigeonhole's `sieve_variables_max_variable_size` is 4 KiB. Longer values are truncated.
pub const SIEVE_MAX_VARIABLE_LEN: usize = 4096;
/// Longest variable name (RFC 5229 does not bound it; Pigeonhole allows 64).
pub const SIEVE_MAX_VARIABLE_NAME: usize = 64;
/// Strings in one string list (a key list) of a script.
pub const SIEVE_MAX_STRING_LIST: usize = 1024;
/// `vacation :days` below this is raised to it (Pigeonhole's `sieve_vacation_min_period`, 1d).
pub const SIEVE_VACATION_MIN_DAYS: u64 = 1;
/// `vacation :days` above this is lowered to it (the Pigeonhole site default, 90d).
pub const SIEVE_VACATION_MAX_DAYS: u64 = 90;
/// `vacation` without `:days`/`:seconds` (RFC 5230 section 4.1 suggests 7 days).
pub const SIEVE_VACATION_DEFAULT_DAYS: u64 = 7;
/// `vacation :seconds` below this is raised to it (RFC 6131 section 2 lets a site set a
/// minimum; one minute keeps two mails a second from making two replies).
pub const SIEVE_VACATION_MIN_SECONDS: u64 = 60;
/// `duplicate` without `:seconds`: Pigeonhole's `sieve_duplicate_default_period` (14 days).
pub const SIEVE_DUPLICATE_DEFAULT_SECS: u64 = 14 * 24 * 3600;
/// `duplicate :seconds` above this is lowered to it (90 days: the tracking store must not keep
/// entries for ever).
pub const SIEVE_DUPLICATE_MAX_SECS: u64 = 90 * 24 * 3600;
// ---- external user databases (auth::sql, auth::db lookup cache) ----

/// Default time one SQL lookup (taking a pooled connection, running the query, reading the rows)
/// may take before the login answers a temporary failure. A hung database server (stopped,
/// partitioned) thus costs a client this long, never forever. `[auth.sql] query_timeout_ms`.
pub const DEFAULT_SQL_QUERY_TIMEOUT_MS: u64 = 5000;
/// Longest query timeout that may be configured: beyond a minute clients give up anyway.
pub const MAX_SQL_QUERY_TIMEOUT_MS: u64 = 60_000;
/// Default connections per SQL database, as Dovecot's `maxconns=5` in the connect string.
pub const DEFAULT_SQL_MAX_CONNECTIONS: u32 = 5;
/// Most connections per SQL database `maxconns=` may ask for.
pub const MAX_SQL_MAX_CONNECTIONS: u32 = 256;
/// First wait after a failed SQL connection or timed-out query before the database is tried
/// again; lookups in between fail at once with a temporary error instead of each waiting the
/// timeout. Doubles per failure up to the maximum below (Dovecot: 1 s doubling).
pub const SQL_RECONNECT_BACKOFF_MIN_MS: u64 = 1000;
/// Longest wait between two tries of a failed SQL database. Dovecot goes to 60 s; 8 s keeps the
/// outage seen by clients within seconds of the database coming back.
pub const SQL_RECONNECT_BACKOFF_MAX_MS: u64 = 8000;
/// Longest value of one result column (a password hash, a home path, an extra field) read
/// from a user database; longer values make the lookup fail as misconfigured.
pub const MAX_DB_FIELD_LEN: usize = 16 * 1024;
/// Most result columns one lookup may return.
pub const MAX_DB_FIELDS: usize = 64;
/// Most user names `iterate_query` may return (the `-A` admin option); bounds its memory.
pub const MAX_DB_ITERATE_USERS: usize = 10_000_000;
/// Most entries the per-database lookup cache may be configured to hold
/// (`[auth] cache_size`, Dovecot's auth_cache_size).
pub const MAX_DB_CACHE_SIZE: usize = 10_000_000;
/// Default number of entries of the lookup cache when it is on.
pub const DEFAULT_DB_CACHE_SIZE: usize = 100_000;
/// Longest time a lookup may be configured to stay in the lookup cache (a day).
pub const MAX_DB_CACHE_SECS: u64 = 86_400;
/// Memory tantivy's index writer may buffer before it writes a segment, per full-text indexing
/// job (tantivy's minimum is 15 MB; at most [`FTS_INDEX_JOBS`] writers exist at once).
pub const FTS_WRITER_MEMORY_BYTES: usize = 32 * 1024 * 1024;

/// Full-text indexing jobs running at once in the process (one per mailbox at a time): the
/// background indexer never takes more than this many blocking threads, whatever the number of
/// users whose first search found an unindexed mailbox.
pub const FTS_INDEX_JOBS: usize = 1;

/// Message bytes read and indexed in one step of an indexing job: one commit per step, so a
/// crash loses at most this much work (the step is indexed again), and the job yields to others
/// between steps.
pub const FTS_INDEX_STEP_BYTES: u64 = 32 * 1024 * 1024;

/// Messages indexed in one step at most (see [`FTS_INDEX_STEP_BYTES`]).
pub const FTS_INDEX_STEP_MESSAGES: usize = 5000;

/// Trigrams of one SEARCH key looked up in the full-text index at most: more only narrow the
/// candidates a little, and each is a posting list to intersect.
pub const FTS_MAX_QUERY_NGRAMS: usize = 32;

/// Users' full-text indexes the Maildir backend keeps open when no session uses them (each holds
/// a few file descriptors and maps).
pub const FTS_OPEN_INDEXES: usize = 64;

/// How long a full-text index write waits for the writer lock another process holds (the admin
/// CLI's `index rebuild --fts` and the daemon's indexer take turns) before giving up; a
/// background job that gives up is simply run again at the next search.
pub const FTS_WRITER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Mailboxes waiting for the background full-text indexer after new mail at most
/// ([`crate::fts::indexer::enqueue`]); more are dropped (their next search indexes them), so
/// delivery never waits for the indexer and the queue's memory is bounded.
pub const FTS_QUEUE_SIZE: usize = 1024;

/// How long after new mail the background indexer takes up its mailbox: deliveries within this
/// time are indexed in one job (one commit) instead of one each.
pub const FTS_QUEUE_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// The PostgreSQL backend stores message content in rows of at most this many bytes (issue 18:
/// at most 1 MiB), so a ranged read fetches only the chunks it covers and no row nears the
/// 1 GB `bytea` limit.
pub const PG_CHUNK_BYTES: usize = 1024 * 1024;

/// Connections the PostgreSQL backend's pool opens at most (per process). PostgreSQL's default
/// `max_connections` is 100: a few nodes fit with room for the administrator.
pub const PG_POOL_CONNECTIONS: u32 = 16;

/// How long the PostgreSQL backend keeps a message's content after its last reference went (an
/// expunge by another session): long enough for a session that opened it before to send it,
/// as a Maildir file stays readable to whoever opened it. Quota usage drops at once.
pub const PG_BLOB_GRACE_SECS: u64 = 3600;

/// Most released contents one purge deletes (each release of a user runs one).
pub const PG_BLOB_PURGE_BATCH: u64 = 256;

/// How much of each message the PostgreSQL backend reads first when a batch asks for headers
/// (SEARCH, the first FETCH ENVELOPE): one query for the batch; a message whose header is
/// longer is read on by itself.
pub const PG_HEADER_PROBE_BYTES: usize = 16 * 1024;

/// Bytes of cached summaries (ENVELOPE, BODYSTRUCTURE, header fields) the PostgreSQL backend keeps
/// in memory per process, least recently used dropped first: about 200,000 messages' ENVELOPE
/// and BODYSTRUCTURE.
pub const PG_FIELD_CACHE_BYTES: usize = 128 * 1024 * 1024;

/// Bytes of large messages' content chunks the PostgreSQL backend keeps in memory per process
/// after streaming them out, least recently used dropped first (content-addressed, so never
/// stale): a second FETCH of a large attachment is sent from memory, as from the page cache.
pub const PG_CHUNK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Messages at least this large have their chunks kept in [`PG_CHUNK_CACHE_BYTES`] when streamed.
pub const PG_CHUNK_CACHE_MIN_MESSAGE: u64 = 1024 * 1024;

/// Messages the PostgreSQL backend keeps in its per-process cache of mailbox pictures (the
/// message lists refreshes start from; about 100 bytes each, so about 100 MB at most): beyond
/// it, the least recently used mailbox's picture is dropped and read whole at its next SELECT.
pub const PG_PICTURE_CACHE_MESSAGES: usize = 1_000_000;

/// How long a PostgreSQL storage operation waits for a pooled connection before it answers
/// `[UNAVAILABLE]` (the database is down or every connection is busy).
pub const PG_ACQUIRE_TIMEOUT_SECS: u64 = 10;

/// A pooled PostgreSQL connection idle longer than this is tested (one round trip, a ping)
/// before it is handed out; one used more recently is handed out at once, so a busy session
/// pays no round trip for the test. A connection the database dropped within this time (a
/// restart) fails at its first use with a connection error, and the reads and transaction
/// starts that meet such an error run again on another connection ([`PG_STALE_RETRIES`]).
pub const PG_POOL_PING_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// How many times a PostgreSQL read (or the `BEGIN` of a transaction) that failed because its
/// pooled connection was dead (an I/O error, SQLSTATE 57P01/57P02 after a database restart)
/// runs again on another connection: each failure closes one stale connection, so at most the
/// pool's size are met, and a database that is really down answers at the first new connect.
pub const PG_STALE_RETRIES: u32 = PG_POOL_CONNECTIONS + 1;

/// Messages the PostgreSQL backend reads ahead in one query when a session opens messages in
/// ascending UID order (POP3 RETR 1, 2, 3..., IMAP FETCH 1:* BODY[]): the row and the whole
/// content of each of the next ones up to [`PG_READ_AHEAD_MESSAGE_BYTES`], kept per open mailbox
/// (per session) until opened.
pub const PG_READ_AHEAD_MESSAGES: usize = 32;

/// The largest message the PostgreSQL read-ahead takes (larger ones are opened one by one,
/// their content read in ranges as before). At most [`PG_CHUNK_BYTES`]: a read-ahead message
/// is its first chunk.
pub const PG_READ_AHEAD_MESSAGE_BYTES: usize = 64 * 1024;

/// Bytes of message content one PostgreSQL read-ahead holds at most (per open mailbox, i.e. per
/// session): what a session keeps in memory for it.
pub const PG_READ_AHEAD_BYTES: usize = 512 * 1024;

/// How long a POP3 maildrop lease of the PostgreSQL backend lasts without renewal (it is renewed
/// every third of it while the session lives): a node that dies leaves the maildrop locked this
/// long at most.
pub const POP3_LEASE_SECS: u64 = 60;

/// How many times the PostgreSQL backend runs one write transaction that the database aborted
/// with a serialization failure (SQLSTATE 40001) or a deadlock (40P01) before it answers
/// `[UNAVAILABLE]`. Such an abort rolled everything back, so running it again is safe; it is
/// rare on PostgreSQL (READ COMMITTED, locks taken in one order) and the normal way of working
/// on CockroachDB and YugabyteDB (SERIALIZABLE), whose drivers also retry a handful of times.
pub const PG_TX_ATTEMPTS: u32 = 5;

/// The first pause before a retried PostgreSQL transaction; each next one doubles, and each is
/// jittered (a random part of the step added) so two sessions that collided do not collide
/// again in step. 5 ms, 10, 20, 40: under 0.2 s in all, well inside a client's patience.
pub const PG_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(5);

/// How long the PostgreSQL backend remembers an LMTP delivery (per user, the SHA-256 of sender,
/// recipient and message as the MTA sent it, and the mailbox), so the MTA's retry of a delivery
/// that was committed but not acknowledged (a 451 after the commit, a dropped connection) is
/// answered 250 without a second copy. Postfix and Exim retry for up to 5 days, but the retries
/// that matter follow within minutes; a day keeps the table small (one row per delivery).
pub const PG_DELIVERY_MEMORY_SECS: u64 = 24 * 3600;
/// How often one process deletes a user's LMTP delivery records older than
/// [`PG_DELIVERY_MEMORY_SECS`]: at most once per this interval per user, in a delivery's
/// transaction, instead of in every one (one statement saved per delivery). Expired rows are
/// ignored by the retry lookup whenever they are deleted; the table holds at most this much more
/// than a day of deliveries.
pub const PG_DELIVERY_SWEEP_SECS: u64 = 3600;
/// Most message content the PostgreSQL backend sends inline in the one statement that stores a
/// batch (content rows, chunks, message rows, delivery record, change notice); the contents of a
/// batch past it are stored with a statement per chunk first, so that one statement's parameters
/// stay this size in the database's memory (and ours) whatever a MULTIAPPEND holds.
pub const PG_STORE_INLINE_BYTES: usize = 4 * 1024 * 1024;
/// The shortest POP3 lease `[mail] postgresql_pop3_lease_secs` accepts: it is renewed every
/// third of it, and a renewal must not race the expiry on a busy database.
pub const POP3_LEASE_MIN_SECS: u64 = 3;

/// How often the PostgreSQL backend's catch-up poll compares the watched mailboxes (their
/// `highest_modseq` and `uidnext`) with what this process last saw and wakes the sessions of
/// those that changed: the push latency across nodes when LISTEN/NOTIFY is missing
/// (CockroachDB) or its connection is down. One query per process per interval.
pub const PG_CATCHUP_POLL_SECS: u64 = 5;

/// The largest NOTIFY payload the PostgreSQL backend sends: PostgreSQL refuses 8000 bytes and
/// more. A longer notice leaves out details (metadata entry names, then the changes: the
/// receivers then resynchronise every mailbox of the user).
pub const PG_NOTIFY_PAYLOAD_BYTES: usize = 7900;
