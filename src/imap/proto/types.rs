//! Validated command types: what a parsed IMAP command means, with no wire syntax left.
//!
//! Every value here was checked by the parser against the ABNF of RFC 3501 and
//! the extensions the task lists, so the session never re-validates syntax: it
//! only decides semantics (state, permissions, mailbox existence). Mailbox names
//! stay raw bytes because decoding modified UTF-7 is the session's decision.

use std::fmt;
use std::num::NonZeroU32;

pub use super::date::{Date, DateTime};
pub use super::sequence::{ResolvedSet, SeqNum, SequenceSet, SequenceSetItem};

/// True for `ATOM-CHAR`: any CHAR except `atom-specials` (RFC 3501 section 9).
pub(crate) fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

/// True for `ASTRING-CHAR = ATOM-CHAR / resp-specials`.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// True for the characters of a `tag`: any ASTRING-CHAR except "+".
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// A command tag (`tag = 1*<any ASTRING-CHAR except "+">`), echoed in the tagged response.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// Validates `s` as a tag.
    pub fn new(s: &[u8]) -> Option<Tag> {
        if s.is_empty() || !s.iter().all(|&b| is_tag_char(b)) {
            return None;
        }
        // Tag characters are all 7-bit, so this cannot fail; no unwrap needed.
        std::str::from_utf8(s).ok().map(|s| Tag(s.to_owned()))
    }

    /// The tag's text, safe to write into a response as it is.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `atom` (RFC 3501): 1*ATOM-CHAR, always 7-bit. Used for keywords,
/// capability names, SASL mechanism names and extension names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(String);

impl Atom {
    /// Validates `s` as an atom.
    pub fn new(s: &[u8]) -> Option<Atom> {
        if s.is_empty() || !s.iter().all(|&b| is_atom_char(b)) {
            return None;
        }
        std::str::from_utf8(s).ok().map(|s| Atom(s.to_owned()))
    }

    /// The atom's text as the client sent it (case preserved).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atom({})", self.0)
    }
}

/// A mailbox name as sent by the client (modified UTF-7 is not decoded here).
///
/// RFC 3501 section 5.1: every case variant of `INBOX` means INBOX, so the
/// parser stores those as exactly `INBOX`; all other names keep their bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mailbox(Vec<u8>);

impl Mailbox {
    /// Builds a mailbox name, normalising case variants of INBOX.
    pub fn new(name: Vec<u8>) -> Mailbox {
        if name.eq_ignore_ascii_case(b"INBOX") {
            Mailbox(b"INBOX".to_vec())
        } else {
            Mailbox(name)
        }
    }

    /// The raw name bytes (still modified UTF-7 if the client used it).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// True for INBOX (after normalisation, so `inbox` too).
    pub fn is_inbox(&self) -> bool {
        self.0 == b"INBOX"
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// A message flag as clients send it in STORE, APPEND and SEARCH KEYWORD.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `\Answered`
    Answered,
    /// `\Flagged`
    Flagged,
    /// `\Deleted`
    Deleted,
    /// `\Seen`
    Seen,
    /// `\Draft`
    Draft,
    /// `\Recent`: not settable by clients (RFC 3501 `flag` excludes it); kept
    /// distinguishable so the session can answer it precisely.
    Recent,
    /// `flag-keyword = atom`, e.g. `$Forwarded`.
    Keyword(Atom),
    /// `flag-extension = "\" atom` other than the system flags; the atom without the backslash.
    Extension(Atom),
}

impl Flag {
    /// Maps `\name` (without the backslash) to a system flag or an extension flag.
    pub(crate) fn from_system(name: Atom) -> Flag {
        match name.as_str().to_ascii_uppercase().as_str() {
            "ANSWERED" => Flag::Answered,
            "FLAGGED" => Flag::Flagged,
            "DELETED" => Flag::Deleted,
            "SEEN" => Flag::Seen,
            "DRAFT" => Flag::Draft,
            "RECENT" => Flag::Recent,
            _ => Flag::Extension(name),
        }
    }

    /// Appends the flag's wire form (`\Seen`, `$Label1`).
    pub fn write(&self, out: &mut Vec<u8>) {
        let s: &str = match self {
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Seen => "\\Seen",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(a) => a.as_str(),
            Flag::Extension(a) => {
                out.push(b'\\');
                a.as_str()
            }
        };
        out.extend_from_slice(s.as_bytes());
    }
}

/// One parsed command: its tag and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, to echo in the tagged response.
    pub tag: Tag,
    /// The command and its typed arguments.
    pub body: CommandBody,
}

/// Every command mailcove parses, with typed arguments.
///
/// `uid: bool` on FETCH/SEARCH/STORE/COPY/MOVE says the command came as
/// `UID <cmd>`, so sets name UIDs, not sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// `CAPABILITY` (any state).
    Capability,
    /// `NOOP` (any state).
    Noop,
    /// `LOGOUT` (any state).
    Logout,
    /// `STARTTLS` (not authenticated).
    StartTls,
    /// `AUTHENTICATE mechanism [initial-response]` (RFC 3501, RFC 4959 SASL-IR).
    Authenticate {
        /// SASL mechanism name, upper-cased (`PLAIN`).
        mechanism: String,
        /// The decoded initial response: `None` when absent, `Some(empty)` for `=`.
        initial_response: Option<Secret>,
    },
    /// `LOGIN userid password`.
    Login {
        /// User name bytes.
        username: Vec<u8>,
        /// Password bytes (redacted in Debug).
        password: Secret,
    },
    /// `ENABLE cap...` (RFC 5161); names as sent.
    Enable {
        /// Capability names the client wants enabled.
        capabilities: Vec<Atom>,
    },
    /// `ID (...)` / `ID NIL` (RFC 2971).
    Id {
        /// Field/value pairs; `None` for NIL.
        parameters: Option<Vec<IdParam>>,
    },
    /// `NAMESPACE` (RFC 2342).
    Namespace,
    /// `IDLE` (RFC 2177); the session then waits for a `DONE` line.
    Idle,
    /// `NOTIFY SET [STATUS] event-groups` / `NOTIFY NONE` (RFC 5465); `None` is NONE.
    Notify {
        /// The new set of events; `None` for NOTIFY NONE.
        set: Option<Box<NotifySet>>,
    },
    /// `COMPRESS algorithm` (RFC 4978), name upper-cased.
    Compress {
        /// Requested algorithm, e.g. `DEFLATE`.
        algorithm: String,
    },
    /// `SELECT mailbox [(CONDSTORE / QRESYNC (...))]`.
    Select {
        /// Mailbox to select.
        mailbox: Mailbox,
        /// The CONDSTORE select parameter (RFC 7162) was given.
        condstore: bool,
        /// The QRESYNC select parameter (RFC 7162 3.2.5).
        qresync: Option<Box<QresyncParams>>,
    },
    /// `EXAMINE mailbox [(CONDSTORE / QRESYNC (...))]`.
    Examine {
        /// Mailbox to examine.
        mailbox: Mailbox,
        /// The CONDSTORE select parameter was given.
        condstore: bool,
        /// The QRESYNC select parameter (RFC 7162 3.2.5).
        qresync: Option<Box<QresyncParams>>,
    },
    /// `CREATE mailbox [(USE (\Attr ...))]` (RFC 6154 CREATE-SPECIAL-USE).
    Create {
        /// Name to create (may end with the hierarchy delimiter).
        mailbox: Mailbox,
        /// Special-use attributes requested, empty when none.
        special_use: Vec<MailboxAttr>,
    },
    /// `DELETE mailbox`.
    Delete {
        /// Mailbox to delete.
        mailbox: Mailbox,
    },
    /// `RENAME from to`.
    Rename {
        /// Existing name.
        from: Mailbox,
        /// New name.
        to: Mailbox,
    },
    /// `SUBSCRIBE mailbox`.
    Subscribe {
        /// Mailbox to subscribe.
        mailbox: Mailbox,
    },
    /// `UNSUBSCRIBE mailbox`.
    Unsubscribe {
        /// Mailbox to unsubscribe.
        mailbox: Mailbox,
    },
    /// `LIST` in its RFC 3501 or RFC 5258 extended form.
    List {
        /// Selection options; `None` when the client sent none (basic LIST).
        selection: Option<Vec<ListSelect>>,
        /// Reference name.
        reference: Mailbox,
        /// One pattern for basic LIST, one or more for `(pat1 pat2)`.
        patterns: Vec<Vec<u8>>,
        /// Return options; `None` when no `RETURN (...)` was sent.
        returns: Option<Vec<ListReturn>>,
    },
    /// `LSUB reference pattern`.
    Lsub {
        /// Reference name.
        reference: Mailbox,
        /// Pattern with `*` / `%` wildcards.
        pattern: Vec<u8>,
    },
    /// `STATUS mailbox (items)`.
    Status {
        /// Mailbox to report on.
        mailbox: Mailbox,
        /// Requested items, in order.
        items: Vec<StatusItem>,
    },
    /// `APPEND mailbox [flags] [date-time] literal` (and RFC 3502 MULTIAPPEND).
    Append {
        /// Destination mailbox.
        mailbox: Mailbox,
        /// One message per literal; at least one.
        messages: Vec<AppendMessage>,
    },
    /// `GETQUOTA root` (RFC 9208).
    GetQuota {
        /// Quota root name.
        root: Vec<u8>,
    },
    /// `GETQUOTAROOT mailbox` (RFC 9208).
    GetQuotaRoot {
        /// Mailbox whose roots are asked for.
        mailbox: Mailbox,
    },
    /// `SETQUOTA root (resource limit ...)` (RFC 9208 4.1.3).
    SetQuota {
        /// Quota root name.
        root: Vec<u8>,
        /// `(resource name in upper case, limit)` pairs, in order.
        limits: Vec<(String, u64)>,
    },
    /// `GETMETADATA [(options)] mailbox entries` (RFC 5464 4.2); the mailbox `""` names the
    /// server entries.
    GetMetadata {
        /// The mailbox, or `""`.
        mailbox: Mailbox,
        /// MAXSIZE: only values of at most this many octets are returned.
        maxsize: Option<u64>,
        /// DEPTH (0 when not given).
        depth: MetadataDepth,
        /// Entry names, checked (RFC 5464 3.2) and lower-cased, at least one.
        entries: Vec<String>,
    },
    /// `SETMETADATA mailbox (entry value ...)` (RFC 5464 4.3); `None` removes the entry.
    SetMetadata {
        /// The mailbox, or `""`.
        mailbox: Mailbox,
        /// Entry names (checked, lower-cased) and values, at least one, in order.
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// `CHECK`.
    Check,
    /// `CLOSE`.
    Close,
    /// `UNSELECT` (RFC 3691).
    Unselect,
    /// `EXPUNGE`, or `UID EXPUNGE set` (RFC 4315) when `uids` is set.
    Expunge {
        /// UIDs to restrict the expunge to.
        uids: Option<SequenceSet>,
    },
    /// `[UID] SEARCH [RETURN (...)] [CHARSET x] keys`.
    Search {
        /// Came as UID SEARCH.
        uid: bool,
        /// ESEARCH return options (RFC 4731, RFC 5182 SAVE); `None` for classic SEARCH.
        returns: Option<Vec<SearchReturn>>,
        /// The CHARSET argument, as sent.
        charset: Option<Vec<u8>>,
        /// The keys, ANDed (a single key is not wrapped).
        criteria: SearchKey,
    },
    /// `[UID] THREAD algorithm charset keys` (RFC 5256).
    Thread {
        /// Came as UID THREAD.
        uid: bool,
        /// The threading algorithm.
        algorithm: ThreadAlgorithm,
        /// The (mandatory) charset argument, as sent.
        charset: Vec<u8>,
        /// The keys, ANDed (a single key is not wrapped).
        criteria: SearchKey,
    },
    /// `CANCELUPDATE "tag" ...` (RFC 5267 4.3.5): stop the updates of these searches.
    CancelUpdate {
        /// The tags of the searching commands, as quoted.
        tags: Vec<Vec<u8>>,
    },
    /// `[UID] SORT (sort-criteria) charset search-keys` (RFC 5256, RFC 5957).
    Sort {
        /// Came as UID SORT.
        uid: bool,
        /// The sort criteria, in priority order (at least one).
        criteria: Vec<SortCriterion>,
        /// The (mandatory) charset of the search strings, as sent.
        charset: Vec<u8>,
        /// The search keys, ANDed (a single key is not wrapped).
        search: SearchKey,
        /// ESORT return options (RFC 5267); `None` for a plain SORT.
        returns: Option<Vec<SearchReturn>>,
    },
    /// `[UID] FETCH set attrs [(CHANGEDSINCE n [VANISHED])]`.
    Fetch {
        /// Came as UID FETCH.
        uid: bool,
        /// Messages to fetch.
        set: SequenceSet,
        /// Requested attributes, macros expanded.
        attrs: Vec<FetchAttr>,
        /// CONDSTORE `CHANGEDSINCE` modifier.
        changed_since: Option<u64>,
        /// QRESYNC `VANISHED` modifier (RFC 7162 3.2.6); the parser only accepts it on UID FETCH
        /// together with CHANGEDSINCE.
        vanished: bool,
    },
    /// `[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags`.
    Store {
        /// Came as UID STORE.
        uid: bool,
        /// Messages to change.
        set: SequenceSet,
        /// Replace, add or remove.
        op: StoreOp,
        /// `.SILENT`: no untagged FETCH for the change.
        silent: bool,
        /// The flags (may contain `\Recent`, which the session refuses).
        flags: Vec<Flag>,
        /// CONDSTORE `UNCHANGEDSINCE` modifier.
        unchanged_since: Option<u64>,
    },
    /// `[UID] COPY set mailbox`.
    Copy {
        /// Came as UID COPY.
        uid: bool,
        /// Messages to copy.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
    /// `[UID] MOVE set mailbox` (RFC 6851).
    Move {
        /// Came as UID MOVE.
        uid: bool,
        /// Messages to move.
        set: SequenceSet,
        /// Destination.
        mailbox: Mailbox,
    },
}

impl CommandBody {
    /// The command's name as the client would write it (upper case, `UID FETCH` for UID forms),
    /// for logs and response texts.
    pub fn name(&self) -> &'static str {
        use CommandBody as C;
        match self {
            C::Capability => "CAPABILITY",
            C::Noop => "NOOP",
            C::Logout => "LOGOUT",
            C::StartTls => "STARTTLS",
            C::Authenticate { .. } => "AUTHENTICATE",
            C::Login { .. } => "LOGIN",
            C::Enable { .. } => "ENABLE",
            C::Id { .. } => "ID",
            C::Namespace => "NAMESPACE",
            C::Idle => "IDLE",
            C::Notify { .. } => "NOTIFY",
            C::Compress { .. } => "COMPRESS",
            C::Select { .. } => "SELECT",
            C::Examine { .. } => "EXAMINE",
            C::Create { .. } => "CREATE",
            C::Delete { .. } => "DELETE",
            C::Rename { .. } => "RENAME",
            C::Subscribe { .. } => "SUBSCRIBE",
            C::Unsubscribe { .. } => "UNSUBSCRIBE",
            C::List { .. } => "LIST",
            C::Lsub { .. } => "LSUB",
            C::Status { .. } => "STATUS",
            C::Append { .. } => "APPEND",
            C::GetQuota { .. } => "GETQUOTA",
            C::GetQuotaRoot { .. } => "GETQUOTAROOT",
            C::SetQuota { .. } => "SETQUOTA",
            C::GetMetadata { .. } => "GETMETADATA",
            C::SetMetadata { .. } => "SETMETADATA",
            C::Check => "CHECK",
            C::Close => "CLOSE",
            C::Unselect => "UNSELECT",
            C::Expunge { uids: None } => "EXPUNGE",
            C::Expunge { uids: Some(_) } => "UID EXPUNGE",
            C::Search { uid: false, .. } => "SEARCH",
            C::Search { uid: true, .. } => "UID SEARCH",
            C::Thread { uid: false, .. } => "THREAD",
            C::Thread { uid: true, .. } => "UID THREAD",
            C::CancelUpdate { .. } => "CANCELUPDATE",
            C::Sort { uid: false, .. } => "SORT",
            C::Sort { uid: true, .. } => "UID SORT",
            C::Fetch { uid: false, .. } => "FETCH",
            C::Fetch { uid: true, .. } => "UID FETCH",
            C::Store { uid: false, .. } => "STORE",
            C::Store { uid: true, .. } => "UID STORE",
            C::Copy { uid: false, .. } => "COPY",
            C::Copy { uid: true, .. } => "UID COPY",
            C::Move { uid: false, .. } => "MOVE",
            C::Move { uid: true, .. } => "UID MOVE",
        }
    }
}

/// One ID field and its value (`None` for NIL).
pub type IdParam = (Vec<u8>, Option<Vec<u8>>);

/// Bytes that must not reach logs (passwords, SASL responses): `Debug` prints only their length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl Secret {
    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set on the new message (may include `\Recent`, which the session ignores or refuses).
    pub flags: Vec<Flag>,
    /// Internal date to give the message.
    pub date: Option<DateTime>,
    /// The message octets.
    pub data: Vec<u8>,
    /// The data came as `~{n}` (RFC 3516 literal8), so it may hold NUL and raw binary.
    pub binary: bool,
    /// The data came as `UTF8 (~{n})` (RFC 6855 4): accepted only after `ENABLE UTF8=ACCEPT`.
    pub utf8: bool,
    /// `CATENATE (part ...)` (RFC 4469): the message is these parts joined; `data` is empty.
    pub catenate: Option<Vec<CatPart>>,
}

/// One part of a CATENATE message (RFC 4469 5 `cat-part`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT literal` (also literal8, as Dovecot takes it, and RFC 6855 `UTF8 (literal8)`).
    Text {
        /// The octets.
        data: Vec<u8>,
        /// Came as a literal8.
        binary: bool,
        /// Came as `UTF8 (literal8)`.
        utf8: bool,
    },
    /// `URL astring`: an IMAP URL (RFC 5092) naming a message or part to copy in.
    Url(Vec<u8>),
}

/// Mailbox attributes: LIST response flags (RFC 3501, 5258, 3348) and special-use (RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailboxAttr {
    /// `\Noinferiors`
    Noinferiors,
    /// `\Noselect`
    Noselect,
    /// `\Marked`
    Marked,
    /// `\Unmarked`
    Unmarked,
    /// `\HasChildren` (RFC 3348/5258)
    HasChildren,
    /// `\HasNoChildren`
    HasNoChildren,
    /// `\Subscribed` (RFC 5258)
    Subscribed,
    /// `\Remote` (RFC 5258)
    Remote,
    /// `\NonExistent` (RFC 5258)
    NonExistent,
    /// `\All` (RFC 6154)
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

impl MailboxAttr {
    /// The wire form, backslash included.
    pub fn as_str(self) -> &'static str {
        use MailboxAttr as A;
        match self {
            A::Noinferiors => "\\Noinferiors",
            A::Noselect => "\\Noselect",
            A::Marked => "\\Marked",
            A::Unmarked => "\\Unmarked",
            A::HasChildren => "\\HasChildren",
            A::HasNoChildren => "\\HasNoChildren",
            A::Subscribed => "\\Subscribed",
            A::Remote => "\\Remote",
            A::NonExistent => "\\NonExistent",
            A::All => "\\All",
            A::Archive => "\\Archive",
            A::Drafts => "\\Drafts",
            A::Flagged => "\\Flagged",
            A::Junk => "\\Junk",
            A::Sent => "\\Sent",
            A::Trash => "\\Trash",
        }
    }

    /// The special-use attribute named `name` (without backslash, any case), if it is one.
    pub fn special_use(name: &str) -> Option<MailboxAttr> {
        use MailboxAttr as A;
        Some(match name.to_ascii_uppercase().as_str() {
            "ALL" => A::All,
            "ARCHIVE" => A::Archive,
            "DRAFTS" => A::Drafts,
            "FLAGGED" => A::Flagged,
            "JUNK" => A::Junk,
            "SENT" => A::Sent,
            "TRASH" => A::Trash,
            _ => return None,
        })
    }

    /// True for the RFC 6154 special-use attributes.
    pub fn is_special_use(self) -> bool {
        self.as_str()
            .strip_prefix('\\')
            .and_then(Self::special_use)
            .is_some()
    }
}

/// LIST selection options (RFC 5258 section 3.1, RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListSelect {
    /// `SUBSCRIBED`
    Subscribed,
    /// `REMOTE`
    Remote,
    /// `RECURSIVEMATCH` (the parser checks a base option accompanies it)
    RecursiveMatch,
    /// `SPECIAL-USE`
    SpecialUse,
}

/// LIST return options (RFC 5258 section 3.2, RFC 6154, RFC 5819).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListReturn {
    /// `SUBSCRIBED`
    Subscribed,
    /// `CHILDREN`
    Children,
    /// `SPECIAL-USE`
    SpecialUse,
    /// `STATUS (items)` (RFC 5819 LIST-STATUS)
    Status(Vec<StatusItem>),
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`
/// (RFC 7162 3.2.5). The sets never contain `*` or `$` (the parser refuses them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY the client's cache belongs to.
    pub uidvalidity: u32,
    /// The last HIGHESTMODSEQ the client knows.
    pub modseq: u64,
    /// The UIDs the client knows (`1:UIDNEXT-1` when absent).
    pub known_uids: Option<SequenceSet>,
    /// `(known-sequence-set known-uid-set)`: sample pairs the client knows.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// STATUS data items (RFC 3501, 7162 HIGHESTMODSEQ, 8438 SIZE, 9208 DELETED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    /// `MESSAGES`
    Messages,
    /// `RECENT`
    Recent,
    /// `UIDNEXT`
    UidNext,
    /// `UIDVALIDITY`
    UidValidity,
    /// `UNSEEN`
    Unseen,
    /// `SIZE` (RFC 8438)
    Size,
    /// `HIGHESTMODSEQ` (RFC 7162)
    HighestModSeq,
    /// `DELETED` (RFC 9208)
    Deleted,
    /// `DELETED-STORAGE` (RFC 9208)
    DeletedStorage,
    /// `MAILBOXID` (RFC 8474 4.3): a string, answered apart from the numbers.
    MailboxId,
}

impl StatusItem {
    /// The item's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::Size => "SIZE",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::Deleted => "DELETED",
            StatusItem::DeletedStorage => "DELETED-STORAGE",
            StatusItem::MailboxId => "MAILBOXID",
        }
    }

    /// The item named `name` (any case).
    pub fn from_name(name: &str) -> Option<StatusItem> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "SIZE" => StatusItem::Size,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "DELETED" => StatusItem::Deleted,
            "DELETED-STORAGE" => StatusItem::DeletedStorage,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return None,
        })
    }
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// A threading algorithm (`thread-alg`, RFC 5256 section 5) this server implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// `ORDEREDSUBJECT`: "poor man's threading" by base subject.
    OrderedSubject,
    /// `REFERENCES`: parent/child links from References/In-Reply-To, then subject merging.
    References,
    /// `REFS` (Dovecot): REFERENCES without subject merging, threads ordered by their latest
    /// message.
    Refs,
}

/// ESEARCH return options (RFC 4731) and SAVE (RFC 5182).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    /// `MIN`
    Min,
    /// `MAX`
    Max,
    /// `ALL`
    All,
    /// `COUNT`
    Count,
    /// `SAVE`
    Save,
    /// `PARTIAL lo:hi` (RFC 5267 4.4): the results at these positions (1-based) of the result
    /// list, in the requested order.
    Partial(PartialRange),
    /// `UPDATE` (RFC 5267 4.3): keep telling ADDTO/REMOVEFROM while the mailbox is selected.
    Update,
    /// `CONTEXT` (RFC 5267 4.2): a hint only.
    Context,
    /// `RELEVANCY` (RFC 6203 4): the relevancy score of each result, with a FUZZY key only.
    Relevancy,
}

/// `partial-range = nz-number ":" nz-number` (RFC 5267 5), kept with `lo <= hi`: the RFC says
/// 500:400 is the same as 400:500, and Dovecot echoes the range in that order too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    /// First position wanted (1 is the first result).
    pub lo: u32,
    /// Last position wanted.
    pub hi: u32,
}

/// Metadata type for the CONDSTORE `MODSEQ "/flags/x" priv|shared|all` search form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `priv`
    Private,
    /// `shared`
    Shared,
    /// `all`
    All,
}

/// A SEARCH criterion (RFC 3501 section 6.4.4, RFC 7162 MODSEQ, RFC 5182 `$`).
///
/// String arguments are the raw bytes of the astring; the session decodes them
/// with the command's CHARSET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Several keys that must all match: the top-level list or `( ... )`.
    And(Vec<SearchKey>),
    /// `ALL`
    All,
    /// `ANSWERED`
    Answered,
    /// `BCC string`
    Bcc(Vec<u8>),
    /// `BEFORE date` (internal date)
    Before(Date),
    /// `BODY string`
    Body(Vec<u8>),
    /// `CC string`
    Cc(Vec<u8>),
    /// `DELETED`
    Deleted,
    /// `DRAFT`
    Draft,
    /// `FLAGGED`
    Flagged,
    /// `FROM string`
    From(Vec<u8>),
    /// `HEADER field-name string`
    Header(Vec<u8>, Vec<u8>),
    /// `KEYWORD flag`
    Keyword(Atom),
    /// `LARGER n` (`number64` in RFC 9051)
    Larger(u64),
    /// `NEW`
    New,
    /// `NOT key`
    Not(Box<SearchKey>),
    /// `OLD`
    Old,
    /// `ON date`
    On(Date),
    /// `OR key key`
    Or(Box<SearchKey>, Box<SearchKey>),
    /// `RECENT`
    Recent,
    /// `SEEN`
    Seen,
    /// `SENTBEFORE date` (Date: header)
    SentBefore(Date),
    /// `SENTON date`
    SentOn(Date),
    /// `SENTSINCE date`
    SentSince(Date),
    /// `SINCE date`
    Since(Date),
    /// `SMALLER n` (`number64` in RFC 9051)
    Smaller(u64),
    /// `SUBJECT string`
    Subject(Vec<u8>),
    /// `TEXT string`
    Text(Vec<u8>),
    /// `TO string`
    To(Vec<u8>),
    /// `UID set`
    Uid(SequenceSet),
    /// `UNANSWERED`
    Unanswered,
    /// `UNDELETED`
    Undeleted,
    /// `UNDRAFT`
    Undraft,
    /// `UNFLAGGED`
    Unflagged,
    /// `UNKEYWORD flag`
    Unkeyword(Atom),
    /// `UNSEEN`
    Unseen,
    /// A bare sequence set (message numbers), including `$`.
    SequenceSet(SequenceSet),
    /// `MODSEQ [entry-name entry-type] n` (RFC 7162).
    ModSeq {
        /// Optional `"/flags/\\seen" priv` part: the flag entry name and its type.
        entry: Option<(Vec<u8>, EntryType)>,
        /// Mod-sequence to compare with (messages with a greater or equal one match).
        modseq: u64,
    },
    /// `OLDER n` (RFC 5032): INTERNALDATE at least `n` seconds before now.
    Older(NonZeroU32),
    /// `YOUNGER n` (RFC 5032): INTERNALDATE at most `n` seconds before now.
    Younger(NonZeroU32),
    /// `SAVEDBEFORE date` (RFC 8514): save date's day earlier than `date`.
    SavedBefore(Date),
    /// `SAVEDON date` (RFC 8514)
    SavedOn(Date),
    /// `SAVEDSINCE date` (RFC 8514)
    SavedSince(Date),
    /// `SAVEDATESUPPORTED` (RFC 8514): every message when the mailbox keeps save dates.
    SaveDateSupported,
    /// `EMAILID objectid` (RFC 8474 6)
    EmailId(String),
    /// `THREADID objectid` (RFC 8474 6)
    ThreadId(String),
    /// `FUZZY search-key` (RFC 6203 3): string keys inside match approximately.
    Fuzzy(Box<SearchKey>),
}

/// FETCH macros (RFC 3501 section 6.4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMacro {
    /// `ALL` = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE
    All,
    /// `FAST` = FLAGS INTERNALDATE RFC822.SIZE
    Fast,
    /// `FULL` = FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY
    Full,
}

impl FetchMacro {
    /// The attributes the macro stands for.
    pub fn expand(self) -> Vec<FetchAttr> {
        let mut v = vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
        ];
        match self {
            FetchMacro::Fast => {}
            FetchMacro::All => v.push(FetchAttr::Envelope),
            FetchMacro::Full => {
                v.push(FetchAttr::Envelope);
                v.push(FetchAttr::Body);
            }
        }
        v
    }
}

/// `<origin.count>` of a partial fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    /// First octet (0-based).
    pub origin: u32,
    /// Most octets to return.
    pub count: NonZeroU32,
}

/// The text part of a section spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `HEADER`
    Header,
    /// `HEADER.FIELDS (names)`, names as sent
    HeaderFields(Vec<Vec<u8>>),
    /// `HEADER.FIELDS.NOT (names)`
    HeaderFieldsNot(Vec<Vec<u8>>),
    /// `TEXT`
    Text,
    /// `MIME` (only after a part number)
    Mime,
}

/// A `section-spec`: part path (empty = whole message) and what of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// `section-part`, e.g. `[1, 2]` for `1.2`.
    pub part: Vec<NonZeroU32>,
    /// `HEADER`, `TEXT`, `MIME`...; `None` for the whole part.
    pub text: Option<SectionText>,
}

/// A FETCH attribute (RFC 3501, RFC 3516 BINARY, RFC 7162 MODSEQ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    /// `ENVELOPE`
    Envelope,
    /// `FLAGS`
    Flags,
    /// `INTERNALDATE`
    InternalDate,
    /// `RFC822` (like BODY[], sets \Seen)
    Rfc822,
    /// `RFC822.HEADER` (like `BODY.PEEK[HEADER]`)
    Rfc822Header,
    /// `RFC822.SIZE`
    Rfc822Size,
    /// `RFC822.TEXT` (like `BODY[TEXT]`)
    Rfc822Text,
    /// `BODY` (non-extensible structure)
    Body,
    /// `BODYSTRUCTURE`
    BodyStructure,
    /// `UID`
    Uid,
    /// `MODSEQ` (RFC 7162)
    ModSeq,
    /// `BODY[section]<partial>` or `BODY.PEEK[...]`
    BodySection {
        /// `.PEEK`: do not set \Seen.
        peek: bool,
        /// Which section.
        section: Section,
        /// Byte range.
        partial: Option<Partial>,
    },
    /// `BINARY[part]<partial>` or `BINARY.PEEK[...]` (RFC 3516)
    Binary {
        /// `.PEEK`
        peek: bool,
        /// Part path (empty = whole message).
        part: Vec<NonZeroU32>,
        /// Byte range.
        partial: Option<Partial>,
    },
    /// `BINARY.SIZE[part]` (RFC 3516)
    BinarySize {
        /// Part path.
        part: Vec<NonZeroU32>,
    },
    /// `PREVIEW` or `PREVIEW (LAZY)` (RFC 8970)
    Preview {
        /// `LAZY`: answer NIL rather than generate a preview now.
        lazy: bool,
    },
    /// `SAVEDATE` (RFC 8514)
    SaveDate,
    /// `EMAILID` (RFC 8474)
    EmailId,
    /// `THREADID` (RFC 8474)
    ThreadId,
}

impl FetchAttr {
    /// True when fetching this attribute sets `\Seen` on a read-write mailbox.
    pub fn sets_seen(&self) -> bool {
        match self {
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
            FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
            _ => false,
        }
    }
}

/// One sort criterion of SORT: `sort-criterion = ["REVERSE" SP] sort-key` (RFC 5256).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// REVERSE: this criterion descending.
    pub reverse: bool,
    /// What is compared.
    pub key: SortKey,
}

/// `sort-key` (RFC 5256 section 5, RFC 5957 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// addr-mailbox of the first Cc address.
    Cc,
    /// Sent date (RFC 5256 section 2.2).
    Date,
    /// addr-mailbox of the first From address.
    From,
    /// RFC822.SIZE.
    Size,
    /// Base subject (RFC 5256 section 2.1).
    Subject,
    /// addr-mailbox of the first To address.
    To,
    /// Display name (else address) of the first From address (RFC 5957).
    DisplayFrom,
    /// Display name (else address) of the first To address (RFC 5957).
    DisplayTo,
}

/// The DEPTH option of GETMETADATA (RFC 5464 4.2.2): which entries below a named one are
/// returned besides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    /// `0`: the entry only (also when DEPTH is not given).
    Zero,
    /// `1`: and its children.
    One,
    /// `infinity`: and everything below it.
    Infinity,
}

/// `notify-set` (RFC 5465 8): what a NOTIFY SET asks for, as parsed (the handler checks the
/// rules the grammar does not say: event combinations, one selected filter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySet {
    /// `STATUS`: send a STATUS for each watched mailbox before the tagged OK.
    pub status: bool,
    /// The event groups, in order.
    pub groups: Vec<NotifyGroup>,
}

/// `event-group = "(" filter-mailboxes SP events ")"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    /// Which mailboxes.
    pub filter: NotifyFilter,
    /// Which events; empty for `NONE`.
    pub events: Vec<NotifyEvent>,
}

/// `filter-mailboxes` (RFC 5465 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    /// `selected`: the selected mailbox, immediately.
    Selected,
    /// `selected-delayed`: the selected mailbox, expunges held until a command allows them.
    SelectedDelayed,
    /// `inboxes` (mailcove: every personal mailbox, as Dovecot).
    Inboxes,
    /// `personal`: every mailbox of the user.
    Personal,
    /// `subscribed`: the subscribed mailboxes.
    Subscribed,
    /// `subtree (names)`: the mailboxes and everything below them.
    Subtree(Vec<Mailbox>),
    /// `mailboxes (names)`: exactly these mailboxes (no wildcards).
    Mailboxes(Vec<Mailbox>),
}

impl NotifyFilter {
    /// True for `selected` and `selected-delayed`.
    pub fn is_selected(&self) -> bool {
        matches!(self, NotifyFilter::Selected | NotifyFilter::SelectedDelayed)
    }
}

/// `event` (RFC 5465 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// `MessageNew [(fetch-att ...)]`; the attributes are empty when none were given.
    MessageNew(Vec<FetchAttr>),
    /// `MessageExpunge`
    MessageExpunge,
    /// `FlagChange`
    FlagChange,
    /// `AnnotationChange` (accepted; mailcove has no ANNOTATE, so it never fires)
    AnnotationChange,
    /// `MailboxName`
    MailboxName,
    /// `SubscriptionChange`
    SubscriptionChange,
    /// `MailboxMetadataChange`
    MailboxMetadataChange,
    /// `ServerMetadataChange`
    ServerMetadataChange,
    /// An `event-ext` atom this server does not know (answered `NO [BADEVENT ...]`).
    Unknown,
}

impl NotifyEvent {
    /// Every event name mailcove supports, for `[BADEVENT (...)]` (RFC 5465 3.1: the code
    /// MUST list all supported events).
    pub const SUPPORTED: [&'static str; 8] = [
        "MessageNew",
        "MessageExpunge",
        "FlagChange",
        "AnnotationChange",
        "MailboxName",
        "SubscriptionChange",
        "MailboxMetadataChange",
        "ServerMetadataChange",
    ];

    /// True for a `message-event`.
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            NotifyEvent::MessageNew(_)
                | NotifyEvent::MessageExpunge
                | NotifyEvent::FlagChange
                | NotifyEvent::AnnotationChange
        )
    }
}
