//! The mail storage layer shared by IMAP, POP3 and delivery.
//!
//! # Shape
//!
//! Three object-safe async traits form a ladder, so a later backend (a
//! distributed database plus an object store) can sit behind the protocol
//! code unchanged:
//!
//! * [`Storage`]: one per daemon; turns a [`StorageUser`] into a
//!   [`UserStore`].
//! * [`UserStore`]: one user's mailbox tree (list, create, delete, rename,
//!   subscriptions), per-mailbox operations that need no open view (status,
//!   append for delivery), quota and the POP3 maildrop lock.
//! * [`MailboxHandle`]: what a backend hands out for one mailbox; the
//!   protocol layers do not call it directly but through a [`View`].
//!
//! [`View`] is concrete and backend-independent: it holds a session's
//! frozen picture of a mailbox (sequence numbers, UIDs, flags, sizes,
//! modseqs) as an [`Arc`]'d, chunked, copy-on-write [`MessageList`] that it
//! shares with every other view of the same mailbox until something changes.
//! It only moves forward when the session calls [`View::refresh`], which
//! returns a [`Delta`] (expunged sequence numbers, new EXISTS/RECENT counts,
//! flag changes) that the IMAP session turns into untagged responses at the
//! moments RFC 3501 section 7 allows. [`View::changed`] is the future IDLE
//! waits on.
//!
//! Mailbox names crossing these traits are UTF-8 with the configured wire
//! separator; the IMAP layer converts to and from modified UTF-7
//! ([`crate::mutf7`]). Generic name checks live in [`names`]; a backend may
//! refuse more (Maildir++ refuses `.` in a name).
//!
//! Blocking file-system work never runs on the runtime threads: backends use
//! `tokio::task::spawn_blocking`. Message content crosses the traits as an async, ranged byte
//! source ([`MessageContent`]), so the protocol layers never see a file, a path or a blocking
//! thread.

mod content;
mod date;
pub mod feed;
mod keywords;
pub mod maildir;
pub mod memory;
pub mod metadata;
mod msglist;
pub mod names;
pub mod postgres;
pub mod stream;
mod vanished;
mod view;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;
use tokio::sync::watch;

pub use content::{Head, Message, MessageContent, ReadPart};
pub use date::{InternalDate, InternalDates};
pub use feed::{Change, ChangeFeed, ChangeKind, FeedError, FeedSubscription};
pub use keywords::KeywordSet;
pub use metadata::{MetadataChange, MetadataLimit, MetadataMap};
pub use msglist::{MessageList, Tally, UidCursor};
pub use vanished::Vanished;
pub(crate) use vanished::VanishedWindow;
pub use view::{Delta, StoreOutcome, View};

/// Result type of every storage operation.
pub type Result<T> = std::result::Result<T, StorageError>;

/// Why DELETE of a name that is only an implicit parent (`\Noselect`) fails: it has children
/// and nothing of its own to delete (RFC 3501 6.3.4). Both backends answer
/// `StorageError::Cannot(HAS_CHILDREN_NOT_SELECTABLE)`, so IMAP4rev2 can tell it with
/// `[HASCHILDREN]` (RFC 9051 7.1).
pub const HAS_CHILDREN_NOT_SELECTABLE: &str = "mailbox has children and is not selectable";

/// Every way a storage operation can fail; the protocol layers map each
/// variant to one response code in one place.
#[derive(Debug, Error)]
pub enum StorageError {
    /// Target mailbox exists (IMAP `[ALREADYEXISTS]`).
    #[error("mailbox already exists")]
    AlreadyExists,
    /// Mailbox does not exist (IMAP `[NONEXISTENT]` or `[TRYCREATE]`).
    #[error("mailbox does not exist")]
    NonExistent,
    /// The mailbox name is not acceptable; the text says why.
    #[error("invalid mailbox name: {0}")]
    InvalidName(&'static str),
    /// A quota limit would be exceeded (IMAP `[OVERQUOTA]`, LMTP 552/452).
    #[error("quota exceeded")]
    OverQuota,
    /// The file system is full (ENOSPC). For the user it is like a full quota (IMAP
    /// `[OVERQUOTA] Not enough disk space`, as Dovecot), but for an MTA it is temporary (LMTP
    /// 451, deliver EX_TEMPFAIL): the administrator will make room, so mail must not bounce.
    #[error("no space left on the mail file system")]
    NoSpace,
    /// A lock is held by another session (POP3 `[IN-USE]`, IMAP `[INUSE]`).
    #[error("in use by another session")]
    InUse,
    /// The message was expunged by another session after the view was taken.
    #[error("message has been expunged")]
    Expunged,
    /// Write attempted through a read-only view.
    #[error("mailbox is read-only")]
    ReadOnly,
    /// The operation is not allowed here (IMAP `[CANNOT]`); the text says why.
    #[error("{0}")]
    Cannot(&'static str),
    /// A bad argument (unknown keyword syntax, too many keywords, ...).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// A transient failure (I/O error, lock timeout): retry later
    /// (IMAP `[UNAVAILABLE]`, LMTP 451, deliver EX_TEMPFAIL).
    #[error("temporary storage failure: {0}")]
    Temporary(String),
    /// On-disk data could not be understood and was not repaired.
    #[error("corrupt mailbox data: {0}")]
    Corrupt(String),
    /// A METADATA limit refused a change (RFC 5464 4.3: IMAP `[METADATA MAXSIZE n]` or
    /// `[METADATA TOOMANY]`).
    #[error("metadata limit: {0:?}")]
    Metadata(MetadataLimit),
    /// The daemon's user lacks a permission on the mail store (EACCES): answered like
    /// [`StorageError::Temporary`] (an administrator fixes ownership, then it works), logged with
    /// the path, the user the daemon runs as and the owner and mode it found.
    #[error("{0}")]
    Permission(Box<PermissionError>),
}

/// A permission failure on one path, explained ([`crate::fsperm`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionError {
    /// What was being done (`open lock file`, `create maildir`).
    pub context: String,
    /// The path the system call failed on.
    pub path: PathBuf,
    /// The missing permission found by mode bits, when they explain it.
    pub denied: Option<crate::fsperm::Denied>,
}

impl std::fmt::Display for PermissionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: permission denied; ",
            self.context,
            self.path.display()
        )?;
        match &self.denied {
            Some(d) => write!(f, "{d}"),
            None => {
                let who = crate::fsperm::Who::current();
                write!(
                    f,
                    "running as user {}, group {}; the mode bits allow it (an ACL or a read-only mount?)",
                    who.user, who.group
                )
            }
        }
    }
}

impl StorageError {
    /// Wraps an I/O error; a file-system quota error is an over-quota error, a full file system
    /// is [`StorageError::NoSpace`].
    pub fn io(context: &str, e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::EDQUOT) => return StorageError::OverQuota,
            Some(libc::ENOSPC) => {
                tracing::warn!(context, error = %e, "file system full");
                return StorageError::NoSpace;
            }
            _ => {}
        }
        StorageError::Temporary(format!("{context}: {e}"))
    }

    /// [`StorageError::io`] for a failure on `path`: a "permission denied" becomes
    /// [`StorageError::Permission`] with the path, the user and the owner found.
    pub fn io_at(context: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return StorageError::Permission(Box::new(PermissionError {
                context: context.to_string(),
                path: path.to_path_buf(),
                denied: crate::fsperm::explain(path),
            }));
        }
        StorageError::io(context, e)
    }
}

/// Who the storage is working for, as the lead maps it from the auth module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUser {
    /// Full login name (`user` or `user@domain`).
    pub name: String,
    /// Home directory, used for `~` in the location template.
    pub home: Option<PathBuf>,
    /// Per-user byte quota; `None` means the backend default, `Some(0)` unlimited.
    pub quota_bytes: Option<u64>,
    /// Per-user message-count quota; `None` means the default, `Some(0)` unlimited.
    pub quota_messages: Option<u64>,
    /// Per-user mail location from the user database (Dovecot's userdb `mail` field, such as
    /// `maildir:~/Maildir` or `maildir:/var/vmail/%d/%n`); `None` means `[mail] location`.
    /// A backend whose mail has no per-user place (the in-memory one) ignores it.
    pub location: Option<String>,
}

/// RFC 6154 special-use attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    /// `\All`
    All,
    /// `\Archive`
    Archive,
    /// `\Drafts`
    Drafts,
    /// `\Flagged`
    Flagged,
    /// `\Junk`
    Junk,
    /// `\Sent`
    Sent,
    /// `\Trash`
    Trash,
}

impl SpecialUse {
    /// The IMAP attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::All => "\\All",
            SpecialUse::Archive => "\\Archive",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Flagged => "\\Flagged",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Trash => "\\Trash",
        }
    }

    /// Parses an attribute, case-insensitively (`\sent` is `\Sent`).
    pub fn from_attribute(s: &str) -> Option<Self> {
        [
            SpecialUse::All,
            SpecialUse::Archive,
            SpecialUse::Drafts,
            SpecialUse::Flagged,
            SpecialUse::Junk,
            SpecialUse::Sent,
            SpecialUse::Trash,
        ]
        .into_iter()
        .find(|u| u.attribute().eq_ignore_ascii_case(s))
    }
}

/// The IMAP system flags a message can carry (`\Recent` is per view, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemFlags(pub u8);

impl SystemFlags {
    /// `\Seen`
    pub const SEEN: SystemFlags = SystemFlags(1);
    /// `\Answered`
    pub const ANSWERED: SystemFlags = SystemFlags(2);
    /// `\Flagged`
    pub const FLAGGED: SystemFlags = SystemFlags(4);
    /// `\Deleted`
    pub const DELETED: SystemFlags = SystemFlags(8);
    /// `\Draft`
    pub const DRAFT: SystemFlags = SystemFlags(16);
    /// No flag.
    pub const EMPTY: SystemFlags = SystemFlags(0);
    const ALL: [(SystemFlags, &'static str); 5] = [
        (SystemFlags::ANSWERED, "\\Answered"),
        (SystemFlags::FLAGGED, "\\Flagged"),
        (SystemFlags::DELETED, "\\Deleted"),
        (SystemFlags::SEEN, "\\Seen"),
        (SystemFlags::DRAFT, "\\Draft"),
    ];

    /// True when every flag of `other` is set here.
    pub fn contains(self, other: SystemFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Union.
    pub fn union(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 | other.0)
    }
    /// Flags of `self` not in `other`.
    pub fn minus(self, other: SystemFlags) -> SystemFlags {
        SystemFlags(self.0 & !other.0)
    }
    /// The IMAP names of the set flags, e.g. `["\\Seen"]`.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }
    /// Parses one IMAP system flag name (case-insensitive); `None` for
    /// keywords and for `\Recent`, which cannot be stored.
    pub fn from_name(name: &str) -> Option<SystemFlags> {
        Self::ALL
            .into_iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| f)
    }
}

/// The stored flags of one message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// System flags.
    pub system: SystemFlags,
    /// Keywords, indexing the mailbox keyword table.
    pub keywords: KeywordSet,
}

/// What a view knows of one message. 64 bytes; cloning allocates only for a message carrying
/// a keyword beyond the 64th of its mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    /// The message UID.
    pub uid: u32,
    /// Stored flags and keywords.
    pub flags: Flags,
    /// CONDSTORE modification sequence of the last change.
    pub modseq: u64,
    /// Bytes in the stored file.
    pub phys_size: u64,
    /// Bytes a client is sent: every bare LF counted as CRLF (RFC822.SIZE, POP3 LIST).
    pub virt_size: u64,
    /// INTERNALDATE, possibly not read yet: read it with [`View::internal_dates`].
    pub internal_date: InternalDate,
}

/// A consistent picture of a mailbox at one moment, shared between views.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Keyword table: index `i` is the name of keyword bit `i`. Only grows.
    /// An empty string is an unused slot (a gap in Dovecot's file): skip it.
    pub keywords: Arc<[String]>,
    /// Most keywords the mailbox can hold
    /// ([`crate::limits::MAX_KEYWORDS_PER_MAILBOX`] in Maildir).
    pub keyword_limit: usize,
    /// Messages in ascending UID order.
    pub messages: MessageList,
}

/// What [`MailboxHandle::sync`] returns.
#[derive(Debug, Clone)]
pub struct SyncOutcome {
    /// The mailbox after the sync.
    pub snapshot: Arc<Snapshot>,
    /// UIDs `\Recent` for the caller: with `claim_recent`, those it took (exclusively);
    /// without, those nobody has taken yet, left for the next read-write session (what a
    /// read-only session sees as `\Recent`, RFC 3501 section 2.3.2). `None` when empty.
    pub recent: Option<Range<u32>>,
}

/// A message to append.
#[derive(Debug, Clone, Default)]
pub struct AppendMessage {
    /// The message, stored exactly as given.
    pub data: Bytes,
    /// System flags to set.
    pub flags: SystemFlags,
    /// Keywords to set (created in the mailbox's table when new).
    pub keywords: Vec<String>,
    /// INTERNALDATE in Unix seconds; `None` means now.
    pub internal_date: Option<i64>,
}

/// Where an append went (for APPENDUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// The new message's UID.
    pub uid: u32,
}

/// One message of a batch stored all at once by [`UserStore::commit_many`] (MULTIAPPEND).
pub struct PendingAppend {
    /// The message's bytes, all written (from this user's [`UserStore::append_stream`]).
    pub stream: Box<dyn AppendStream>,
    /// System flags to set.
    pub flags: SystemFlags,
    /// Keywords to set.
    pub keywords: Vec<String>,
    /// INTERNALDATE in Unix seconds; `None` means now.
    pub internal_date: Option<i64>,
}

/// A message stored by [`UserStore::import_messages`] under the UID it has in another store
/// (`mailcove migrate`), so a client's cache of the mailbox stays valid.
#[derive(Debug, Clone, Default)]
pub struct ImportMessage {
    /// The UID it keeps.
    pub uid: u32,
    /// The message, stored exactly as given.
    pub data: Bytes,
    /// System flags.
    pub flags: SystemFlags,
    /// Keywords (created in the mailbox's table when new).
    pub keywords: Vec<String>,
    /// INTERNALDATE in Unix seconds.
    pub internal_date: i64,
}

/// Why [`UserStore::import_messages`] refuses a UID below the mailbox's UIDNEXT.
pub const IMPORT_UID_BELOW_UIDNEXT: &str =
    "an imported UID must ascend and be above every UID the mailbox has had (UIDNEXT)";

/// The UID rule of [`UserStore::import_messages`], the same in every backend: `uids` ascend
/// from at least `uidnext`. Returns the UIDNEXT after them.
pub(crate) fn import_uidnext(uidnext: u32, uids: impl IntoIterator<Item = u32>) -> Result<u32> {
    let mut next = uidnext.max(1);
    for uid in uids {
        if uid < next {
            return Err(StorageError::Cannot(IMPORT_UID_BELOW_UIDNEXT));
        }
        next = uid
            .checked_add(1)
            .ok_or(StorageError::Cannot("UID space exhausted"))?;
    }
    Ok(next)
}

/// Why [`UserStore::import_mailbox`] refuses a mailbox.
pub const IMPORT_OTHER_UIDVALIDITY: &str = "the mailbox holds messages under another UIDVALIDITY";

/// The rule of [`UserStore::import_mailbox`] for an existing mailbox, the same in every backend:
/// from its `(UIDVALIDITY, UIDNEXT)` and whether it holds no message, the pair it gets for the
/// wanted one, or `Cannot`.
pub(crate) fn import_counters(
    have: (u32, u32),
    empty: bool,
    want: (u32, u32),
) -> Result<(u32, u32)> {
    if want.0 == 0 {
        return Err(StorageError::Invalid("UIDVALIDITY 0"));
    }
    if have.0 == want.0 {
        return Ok((want.0, have.1.max(want.1)));
    }
    if !empty {
        return Err(StorageError::Cannot(IMPORT_OTHER_UIDVALIDITY));
    }
    Ok((want.0, want.1.max(1)))
}

/// Where a batch went (for APPENDUID with a UID set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendManyResult {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// The new messages' UIDs, in batch order (consecutive).
    pub uids: Vec<u32>,
}

/// Where copied or moved messages went (for COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// UIDVALIDITY of the destination.
    pub uidvalidity: u32,
    /// `(source uid, destination uid)`, in source UID order.
    pub mapping: Vec<(u32, u32)>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// One STORE request.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    /// Replace, add or remove.
    pub op: StoreOp,
    /// System flags named in the request.
    pub flags: SystemFlags,
    /// Keywords named in the request.
    pub keywords: Vec<String>,
    /// CONDSTORE `UNCHANGEDSINCE`: messages with a higher modseq are not changed.
    pub unchanged_since: Option<u64>,
}

/// One message changed by STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// UID.
    pub uid: u32,
    /// Flags after the change.
    pub flags: Flags,
    /// Modseq after the change.
    pub modseq: u64,
}

/// What a STORE did.
#[derive(Debug, Clone)]
pub struct StoreResult {
    /// Messages whose flags were set (even if unchanged, so FETCH can report them).
    pub updated: Vec<Updated>,
    /// UIDs that failed the `unchanged_since` check (CONDSTORE `[MODIFIED]`).
    pub failed: Vec<u32>,
    /// Keyword table after the store (it may have grown).
    pub keywords: Arc<[String]>,
}

/// What RFC 8474 (OBJECTID) and RFC 8514 (SAVEDATE) say of one message, as
/// [`MailboxHandle::objects`] answers: per-message columns a database backend keeps next to
/// the flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageObject {
    /// UID.
    pub uid: u32,
    /// When the message was saved into this mailbox (APPEND, COPY, MOVE, delivery), Unix
    /// seconds; unlike INTERNALDATE never carried over by COPY or MOVE. `None` when the storage
    /// does not know it (then FETCH SAVEDATE answers NIL and SEARCH SAVED* uses INTERNALDATE,
    /// RFC 8514 4.3).
    pub save_date: Option<i64>,
    /// EMAILID: an object id ([`is_object_id`]) of the immutable content, the same for a copy
    /// or a moved message as for its source (RFC 8474 5.1).
    pub email_id: String,
    /// THREADID, `None` when the storage does not track threads (FETCH answers NIL, SEARCH
    /// THREADID matches nothing, RFC 8474 5.2).
    pub thread_id: Option<String>,
}

/// True when `s` is an RFC 8474 `objectid`: 1 to 255 of `A-Z a-z 0-9 _ -`.
pub fn is_object_id(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// STATUS items, computed without opening a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailboxStatus {
    /// MESSAGES
    pub messages: u32,
    /// RECENT (not yet claimed by any session)
    pub recent: u32,
    /// UIDNEXT
    pub uidnext: u32,
    /// UIDVALIDITY
    pub uidvalidity: u32,
    /// UNSEEN
    pub unseen: u32,
    /// HIGHESTMODSEQ
    pub highest_modseq: u64,
    /// SIZE (RFC 8438): sum of the virtual sizes.
    pub size: u64,
    /// DELETED (RFC 9208): messages with `\Deleted`.
    pub deleted: u32,
    /// Physical bytes of the messages with `\Deleted`: what an EXPUNGE would give back to the
    /// quota (RFC 9208 DELETED-STORAGE, which the IMAP layer reports in KiB).
    pub deleted_bytes: u64,
}

/// One mailbox as LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// UTF-8 name with the wire separator.
    pub name: String,
    /// `\Noselect`: an implicit parent (Maildir++ keeps none on disk) or a
    /// deleted mailbox that still has children.
    pub noselect: bool,
    /// `\HasChildren` when true, `\HasNoChildren` otherwise.
    pub has_children: bool,
    /// Special use, from the per-user file or the autocreate list.
    pub special_use: Option<SpecialUse>,
    /// `\Subscribed`.
    pub subscribed: bool,
}

/// Quota usage of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaUsage {
    /// Bytes used (physical sizes).
    pub bytes_used: u64,
    /// Byte limit; `None` when unlimited.
    pub bytes_limit: Option<u64>,
    /// Messages stored.
    pub messages_used: u64,
    /// Message limit; `None` when unlimited.
    pub messages_limit: Option<u64>,
}

/// How a view is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// EXAMINE: no writes through this view.
    pub read_only: bool,
    /// Take `\Recent` for new messages (SELECT does, EXAMINE and POP3 do not). A read-only
    /// view (EXAMINE) still sees the messages nobody has taken as `\Recent`, without taking
    /// them: RFC 3501 section 2.3.2 makes the first session notified see \Recent, and only a
    /// read-write one hides it from later sessions (Dovecot does the same).
    pub claim_recent: bool,
    /// Watch the mailbox for changes by others (IMAP does, POP3 does not).
    pub watch: bool,
}

impl OpenOptions {
    /// IMAP SELECT.
    pub const SELECT: OpenOptions = OpenOptions {
        read_only: false,
        claim_recent: true,
        watch: true,
    };
    /// IMAP EXAMINE.
    pub const EXAMINE: OpenOptions = OpenOptions {
        read_only: true,
        claim_recent: false,
        watch: true,
    };
    /// POP3 maildrop snapshot.
    pub const POP3: OpenOptions = OpenOptions {
        read_only: false,
        claim_recent: false,
        watch: false,
    };
}

/// Opaque tag of a cached per-message blob; the IMAP layer owns the meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheField(pub u8);

impl CacheField {
    /// The IMAP ENVELOPE as written to clients.
    pub const ENVELOPE: CacheField = CacheField(1);
    /// The parsed MIME structure of the message (BODY, BODYSTRUCTURE, section offsets).
    pub const BODYSTRUCTURE: CacheField = CacheField(2);
    /// The IMAP BODY (non-extensible structure) as written to clients.
    pub const BODY: CacheField = CacheField(3);
    /// The IMAP BODYSTRUCTURE as written to clients.
    pub const BODYSTRUCTURE_TEXT: CacheField = CacheField(4);
    /// The PREVIEW text (RFC 8970) of the message (ids 16 and 17 are SEARCH's header entry and
    /// the sort keys).
    pub const PREVIEW: CacheField = CacheField(20);
}

/// The header block of a whole message in memory, through the blank line, exactly as
/// [`ReadPart::Header`] reads it; `None` when the message has no blank line
/// within [`crate::limits::MAX_HEADER_BYTES`] (the file read's own cut-off rules then apply).
pub fn header_block(message: &[u8]) -> Option<&[u8]> {
    header_end(message, 0)
        .filter(|&end| end <= crate::limits::MAX_HEADER_BYTES)
        .and_then(|end| message.get(..end))
}

/// End offset of the header block (after the blank line), searching from `from`.
pub(crate) fn header_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(rel) = buf.get(i..).and_then(|b| memchr::memchr(b'\n', b)) {
        let lf = i + rel;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => {}
        }
        i = lf + 1;
    }
    // A message starting with an empty line has an empty header.
    if from == 0 {
        if buf.starts_with(b"\r\n") {
            return Some(2);
        }
        if buf.starts_with(b"\n") {
            return Some(1);
        }
    }
    None
}

/// A message being streamed into a mailbox (an APPEND literal or LMTP DATA
/// written as it arrives, so a 50 MB message never sits in memory). Dropped
/// without [`AppendStream::commit`], nothing is stored.
#[async_trait]
pub trait AppendStream: Send {
    /// Appends bytes to the message; `OverQuota` as soon as it cannot fit.
    async fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Announces the message's full size before its bytes come, so a message that cannot fit
    /// the quota is refused before the client sends it (`OverQuota`). Writes are still checked.
    fn reserve(&mut self, size: u64) -> Result<()>;
    /// Bytes written so far.
    fn len(&self) -> u64;
    /// True when nothing was written yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The stream as `Any`, so its backend's [`UserStore::commit_many`] can take it back.
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
    /// Names the LMTP delivery this message is. A backend that remembers deliveries returns
    /// true: committing a delivery it stored into the same mailbox before (the MTA retrying
    /// after a 451 or a lost connection) stores nothing and answers the first copy's UID. The
    /// others return false and store every copy: Maildir, as Dovecot, and the memory backend
    /// (which a restart empties anyway). The PostgreSQL backend remembers them for
    /// [`crate::limits::PG_DELIVERY_MEMORY_SECS`].
    fn set_delivery(&mut self, _id: DeliveryId) -> bool {
        false
    }
    /// Stores the message durably with its flags and INTERNALDATE (`None`:
    /// now) and returns its UID.
    async fn commit(
        self: Box<Self>,
        flags: SystemFlags,
        keywords: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<AppendResult>;
}

/// One delivery by the MTA: the SHA-256 of the envelope sender, the recipient address and the
/// message as the MTA sent it (before `Return-Path:` and `Delivered-To:` are added), so the
/// MTA's retry of the same delivery has the same id ([`AppendStream::set_delivery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryId(pub [u8; 32]);

impl DeliveryId {
    /// The id of delivering the message whose SHA-256 is `message` from `sender` to `recipient`.
    pub fn new(sender: &str, recipient: &str, message: &[u8; 32]) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        // Lengths first, so no two (sender, recipient) pairs give the same bytes.
        h.update((sender.len() as u64).to_be_bytes());
        h.update(sender.as_bytes());
        h.update((recipient.len() as u64).to_be_bytes());
        h.update(recipient.as_bytes());
        h.update(message);
        let mut id = [0u8; 32];
        id.copy_from_slice(&h.finalize());
        DeliveryId(id)
    }
}

/// Guard of the per-user POP3 maildrop lock; released when dropped.
pub struct Pop3Lock(pub Box<dyn Send + Sync>);

impl std::fmt::Debug for Pop3Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pop3Lock")
    }
}

/// The storage of the whole daemon.
#[async_trait]
pub trait Storage: Send + Sync {
    /// The mailbox tree of one user; creates the user's INBOX and the
    /// configured autocreate mailboxes when missing.
    async fn user(&self, user: &StorageUser) -> Result<Arc<dyn UserStore>>;
}

/// One user's mail.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The hierarchy separator on the wire.
    fn separator(&self) -> char;
    /// Every mailbox, implicit parents included (as `\Noselect`), INBOX first;
    /// the IMAP layer applies LIST patterns.
    async fn list(&self) -> Result<Vec<MailboxInfo>>;
    /// Subscribed names, existing or not (for LSUB).
    async fn subscriptions(&self) -> Result<Vec<String>>;
    /// Creates a mailbox (a trailing separator is ignored).
    async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()>;
    /// Deletes a mailbox; its children stay (it then lists as `\Noselect`).
    async fn delete(&self, name: &str) -> Result<()>;
    /// Renames a mailbox and its children; INBOX moves its messages instead.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Adds a name to the subscriptions.
    async fn subscribe(&self, name: &str) -> Result<()>;
    /// Removes a name from the subscriptions.
    async fn unsubscribe(&self, name: &str) -> Result<()>;
    /// STATUS without a view (scans for new mail first).
    async fn status(&self, name: &str) -> Result<MailboxStatus>;
    /// Opens a view (SELECT, EXAMINE, POP3 login).
    async fn open(&self, name: &str, options: OpenOptions) -> Result<View>;
    /// APPEND or delivery into a mailbox by name; durable when it returns.
    async fn append(&self, name: &str, message: AppendMessage) -> Result<AppendResult>;
    /// Starts a streamed append into a mailbox by name (quota is checked
    /// now for the message count and as bytes arrive).
    async fn append_stream(&self, name: &str) -> Result<Box<dyn AppendStream>>;
    /// Stores streamed messages of one mailbox durably and atomically, all or none (MULTIAPPEND,
    /// RFC 3502), with consecutive UIDs. Quota is checked for the whole batch (`OverQuota`);
    /// streams of different mailboxes or of another backend are refused. On failure nothing is
    /// stored (dropping the streams removes their data).
    async fn commit_many(&self, items: Vec<PendingAppend>) -> Result<AppendManyResult>;
    /// Migration (`mailcove migrate`), never called per command: makes mailbox `name` exist with
    /// UIDVALIDITY `uidvalidity` and a UIDNEXT of at least `uidnext`, so messages can be
    /// imported under the UIDs they have elsewhere. A missing mailbox is created (with
    /// `special_use`); an existing one with the same UIDVALIDITY only has its UIDNEXT raised
    /// (never lowered); an existing one with another UIDVALIDITY takes the new one only while it
    /// holds no message (its UIDNEXT then becomes `uidnext`), else `Cannot`. Durable on return.
    async fn import_mailbox(
        &self,
        name: &str,
        uidvalidity: u32,
        uidnext: u32,
        special_use: Option<SpecialUse>,
    ) -> Result<()>;
    /// Migration: stores `messages` into mailbox `name` under their own UIDs, with their flags,
    /// keywords and INTERNALDATEs, all or none, durable on return. UIDs must ascend and be at
    /// least the mailbox's UIDNEXT (`Cannot` otherwise, nothing stored): a UID is never reused
    /// and a client never sees a UID below one it saw before. UIDNEXT ends above the last one.
    /// Each message takes a new modseq. The messages count towards the quota usage but are not
    /// refused by it, nor by the size limit: they are mail the user already has.
    async fn import_messages(&self, name: &str, messages: Vec<ImportMessage>) -> Result<()>;
    /// Quota usage and limits.
    async fn quota(&self) -> Result<QuotaUsage>;
    /// Recalculates the quota usage from the messages themselves (walking every mailbox),
    /// replaces the incrementally kept usage with it and returns it. An administrator's repair
    /// (`mailcove quota recalc`), never called per command.
    async fn quota_recalc(&self) -> Result<QuotaUsage>;
    /// Takes the exclusive POP3 maildrop lock (across processes), or `InUse`.
    async fn pop3_lock(&self) -> Result<Pop3Lock>;
    /// Expunges INBOX messages first downloaded by POP3 at least `days` days ago.
    async fn pop3_expire(&self, days: u32) -> Result<Vec<u32>>;
    /// The MAILBOXID of a mailbox (RFC 8474 4): an object id ([`is_object_id`]), the same for
    /// as long as the mailbox exists, kept by RENAME, never given to another mailbox (a mailbox
    /// deleted and created again gets a new one). Stable across restarts where the backend is.
    async fn mailbox_id(&self, name: &str) -> Result<String>;
    /// An administrator's repair (`mailcove index rebuild`), never called per command: brings
    /// what the backend keeps about mailbox `name` besides the messages (an index, a cache of
    /// parsed data) back in line with the messages and rewrites it from scratch, keeping every
    /// UID, flag, modseq and the UIDVALIDITY; cached per-message data is dropped (it is made
    /// again when next asked for). Safe while other sessions use the mailbox. A backend that
    /// keeps no such data answers `Cannot` (after `NonExistent` for a missing mailbox).
    async fn rebuild_index(&self, name: &str) -> Result<()>;
    /// METADATA (RFC 5464): every entry of mailbox `mailbox`, or of the user's server entries
    /// with `None`. `NonExistent` when the mailbox does not exist (a `\Noselect` parent has no
    /// entries to keep). Bounded by [`crate::limits::MAX_METADATA_USER_BYTES`].
    async fn metadata_get(&self, mailbox: Option<&str>) -> Result<MetadataMap>;
    /// METADATA: sets (`Some`) or removes (`None`) entries of a mailbox, or of the server entries
    /// with `None`, all or none ([`metadata::apply`] checks the limits), durable when it returns.
    /// A mailbox's entries follow it through RENAME (INBOX's are copied, RFC 5464 4.1) and
    /// go with it on DELETE, so a mailbox created again under the name starts with none.
    async fn metadata_set(&self, mailbox: Option<&str>, changes: Vec<MetadataChange>)
    -> Result<()>;
    /// The id this store stamps on the changes it publishes ([`Change::origin`]): a session
    /// recognises its own changes by it.
    fn origin(&self) -> u64;
    /// True when this user's appends honour [`AppendStream::set_delivery`] (the PostgreSQL
    /// backend): LMTP hashes a message for its delivery id only then, not on Maildir's path.
    fn remembers_deliveries(&self) -> bool {
        false
    }
    /// Subscribes to the user's change feed (see [`feed`]): one feed per user shared by all its
    /// sessions, carrying what this process changes and, where the backend can see them, changes
    /// by other processes (Maildir: one inotify watch set per user, held while anyone listens).
    async fn subscribe_changes(&self) -> Result<FeedSubscription>;
    /// Tells the user's feed that the metadata `entries` (RFC 5464, e.g. `/shared/comment`) of
    /// `mailbox` (or of the server, `None`) changed; SETMETADATA calls it once it has stored them.
    fn publish_metadata_change(&self, mailbox: Option<&str>, entries: &[String]);
    /// The user's full-text index ([`crate::fts`]), opened when first asked for; `None` when
    /// the backend keeps none (configured off). The backend chooses where it lives.
    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>>;
}

/// One open mailbox as a backend provides it; used through [`View`].
#[async_trait]
pub trait MailboxHandle: Send + Sync {
    /// The mailbox name (UTF-8, wire separator).
    fn name(&self) -> &str;
    /// A process-wide name of this mailbox's storage (a Maildir's directory, a memory
    /// mailbox's serial number) that, together with UIDVALIDITY, names the same messages for
    /// as long as the process runs: what caches shared by all sessions key on
    /// ([`crate::imap::sort::shared`]). `None` (the default) keeps such caches away.
    fn identity(&self) -> Option<String> {
        None
    }
    /// A receiver whose value changes whenever the mailbox may have changed.
    fn changes(&self) -> watch::Receiver<u64>;
    /// Starts watching for changes made outside this process (inotify), so
    /// that [`MailboxHandle::changes`] also fires for them. Idempotent;
    /// [`View::changed`] calls it the first time a session waits, so
    /// sessions that never IDLE cost no watch.
    async fn watch(&self) -> Result<()>;
    /// Brings the shared state up to date with the disk and other processes;
    /// with `claim_recent`, takes `\Recent` for messages nobody has seen;
    /// without, only reports them (see [`SyncOutcome::recent`]).
    async fn sync(&self, claim_recent: bool) -> Result<SyncOutcome>;
    /// Changes flags of the given UIDs (missing UIDs are skipped).
    async fn store(&self, uids: Vec<u32>, request: StoreRequest) -> Result<StoreResult>;
    /// Expunges messages with `\Deleted` (only those in `uids` when given);
    /// returns the expunged UIDs.
    async fn expunge(&self, uids: Option<Vec<u32>>) -> Result<Vec<u32>>;
    /// Copies (or moves, expunging the sources) messages to another mailbox.
    async fn copy(&self, uids: Vec<u32>, dest: &str, move_: bool) -> Result<CopyResult>;
    /// Opens a message for reading and reads up to `max_head` of its first bytes in the same
    /// step (at most one beyond the recorded size, so a message read whole is known to be
    /// complete); `Expunged` when it is gone.
    async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message>;
    /// Reads many messages in one backend call (for Maildir, one hop to a blocking worker, one
    /// file open at a time), `None` for those expunged, each cut at the header end
    /// ([`ReadPart::Header`]) or at `cap` ([`ReadPart::Whole`]). The caller bounds the batch by
    /// the sizes it knows: everything returned is held in memory at once.
    async fn read_messages(&self, uids: Vec<u32>, part: ReadPart) -> Result<Vec<Option<Bytes>>>;
    /// INTERNALDATEs (Unix seconds) of `uids`, read for the ones the picture left
    /// [`InternalDate::NOT_READ`]; a message that is gone is left out. [`View::internal_dates`]
    /// calls it for the dates its picture lacks.
    async fn resolve_dates(&self, uids: Vec<u32>) -> Result<Vec<(u32, i64)>>;
    /// Cached blobs of `field` for a prefix of `uids` (at least one UID) whose blobs add up to
    /// at most `max_bytes`, `None` where absent: lets a caller ask for many UIDs at once without
    /// holding unbounded memory. A backend without the means answers for all of `uids`.
    /// ([`View::cache_get`] asks for all of them with `usize::MAX`.)
    async fn cache_get_prefix(
        &self,
        uids: Vec<u32>,
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>>;
    /// Stores cached blobs of one or several fields; entries of expunged UIDs are ignored. A
    /// backend that can should do it in one go. ([`View::cache_put`] passes one field.)
    async fn cache_put_fields(&self, fields: Vec<(CacheField, Vec<(u32, Bytes)>)>) -> Result<()>;
    /// Records the first POP3 download time of messages (for keep-days).
    async fn pop3_mark_downloaded(&self, uids: Vec<u32>) -> Result<()>;
    /// The UIDs expunged with a modseq greater than `modseq`, as the mailbox is now (QRESYNC
    /// `VANISHED (EARLIER)`, RFC 7162 3.2.5.2 and 3.2.6). Every expunge takes its own modseq,
    /// and the last [`crate::limits::VANISHED_WINDOW`] of them are remembered across restarts;
    /// further back the answer is [`Vanished::Unknown`]. A backend that remembers nothing may
    /// always answer `Unknown`: correct, only bigger on the wire.
    async fn vanished_since(&self, modseq: u64) -> Result<Vanished>;
    /// SAVEDATE, EMAILID and THREADID of `uids` (RFC 8514, RFC 8474), in the order asked, a
    /// message that is gone left out. Answered from what the backend keeps per message, never
    /// by reading message content: SEARCH asks for a whole mailbox (in
    /// [`crate::limits::OBJECT_BATCH`]es).
    async fn objects(&self, uids: Vec<u32>) -> Result<Vec<MessageObject>>;
    /// The full-text index of the user this mailbox belongs to, as
    /// [`UserStore::fts`]; its messages are indexed under [`crate::fts::mailbox_key`] of
    /// [`MailboxHandle::identity`] and the UIDVALIDITY.
    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>>;
}
