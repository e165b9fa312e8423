//! Compiling a parsed search-key tree into what the evaluator runs, against one view.

use std::sync::Arc;

use thiserror::Error;

use super::fuzzy::Fuzzy;
use super::source::is_cached_field;
use crate::imap::proto::sequence::{ResolvedSet, SequenceSet, SequenceSetItem};
use crate::imap::proto::types::{Atom, Date, SearchKey};
use crate::imap::selected::Selected;
use crate::limits::{MAX_SEARCH_DEPTH, OBJECT_BATCH};
use crate::storage::{InternalDates, KeywordSet, StorageError, SystemFlags};

/// Why a search could not run.
#[derive(Debug, Error)]
pub enum SearchError {
    /// CHARSET other than UTF-8 / US-ASCII (`NO [BADCHARSET (UTF-8 US-ASCII)]`).
    #[error("unsupported charset")]
    BadCharset,
    /// A search string is not valid in the command's charset (`BAD`).
    #[error("search string is not valid UTF-8")]
    InvalidString,
    /// The key tree is deeper than the parser allows (only reachable by building keys in code).
    #[error("search keys nested too deeply")]
    TooDeep,
    /// Reading a message or the cache failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How a date key compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// BEFORE / SENTBEFORE: strictly earlier day.
    Before,
    /// ON / SENTON: same day.
    On,
    /// SINCE / SENTSINCE: same day or later.
    Since,
}

impl Cmp {
    pub(crate) fn test(self, day: i64, key: i64) -> bool {
        match self {
            Cmp::Before => day < key,
            Cmp::On => day == key,
            Cmp::Since => day >= key,
        }
    }
}

/// One node of a compiled program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// ALL (and degenerate keys known in advance, e.g. KEYWORD of an unknown keyword is `Const(false)`).
    Const(bool),
    /// Every child must match.
    And(Vec<Node>),
    /// Either must match.
    Or(Box<Node>, Box<Node>),
    /// Negation.
    Not(Box<Node>),
    /// A system flag is set (`set`) or clear.
    System { flag: SystemFlags, set: bool },
    /// Any keyword of `mask` is set (`set`), or none is.
    Keyword { mask: KeywordSet, set: bool },
    /// `\Recent` for this session (`true`) or not.
    Recent(bool),
    /// Sequence number in the set.
    Seq(ResolvedSet),
    /// UID in the set.
    Uid(ResolvedSet),
    /// INTERNALDATE's UTC day compared with a day number. `dates` holds the dates of the
    /// view's messages, read by [`Program::compile`]; a message without one is gone and
    /// matches nothing.
    Internal {
        cmp: Cmp,
        day: i64,
        dates: Arc<InternalDates>,
    },
    /// WITHIN (RFC 5032): INTERNALDATE, in seconds since the epoch, at or before `target`
    /// (`older`, OLDER) or at or after it (YOUNGER), `target` being the time of the command
    /// minus the interval. `dates` as for [`Node::Internal`].
    Within {
        older: bool,
        target: i64,
        dates: Arc<InternalDates>,
    },
    /// Date: header's day compared with a day number.
    Sent(Cmp, i64),
    /// RFC822.SIZE greater than.
    Larger(u64),
    /// RFC822.SIZE less than.
    Smaller(u64),
    /// CONDSTORE modseq at least.
    ModSeq(u64),
    /// A header field (name as sent) whose decoded value contains the casemapped needle.
    Header { name: Vec<u8>, needle: String },
    /// SAVEDATE's UTC day compared with a day number (RFC 8514 4.3): as [`Node::Internal`], with
    /// `dates` holding each message's save date, or its INTERNALDATE where the storage has none
    /// (the RFC's fallback), read by [`Program::compile`].
    Saved {
        cmp: Cmp,
        day: i64,
        dates: Arc<InternalDates>,
    },
    /// EMAILID (`thread` false) or THREADID equal to `id` (RFC 8474 6); `uids` holds, in
    /// ascending order, the view's messages that have it, found by [`Program::compile`].
    ObjectId {
        thread: bool,
        id: String,
        uids: Arc<Vec<u32>>,
    },
    /// Decoded body text contains the casemapped needle.
    Body(String),
    /// Header or decoded body text contains the casemapped needle.
    Text(String),
    /// A FUZZY string key (RFC 6203, [`super::fuzzy`]) on the text `field` names.
    Fuzzy { field: FuzzyField, key: Fuzzy },
}

/// The text a FUZZY string key looks at: what the same key without FUZZY searches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FuzzyField {
    /// A header field's decoded values (SUBJECT, FROM, TO, CC, BCC, HEADER).
    Header(Vec<u8>),
    /// The decoded body (BODY).
    Body,
    /// Header, body and part headers (TEXT).
    Text,
}

/// What a program needs beyond the metadata.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    /// Some key looks at header fields.
    pub header: bool,
    /// Every header key can be answered from the search header cache.
    pub cacheable: bool,
    /// Some key looks at the body (BODY, TEXT).
    pub body: bool,
    /// Some key other than TEXT looks at header fields (so reading only the header may decide).
    pub header_keys: bool,
}

/// A compiled search program, ready to run on the view it was compiled against.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) root: Node,
    pub(crate) needs: Needs,
    /// The program contains a MODSEQ key (RFC 7162: answers carry the highest modseq).
    pub uses_modseq: bool,
}

/// True for the charsets mailcove accepts in `CHARSET` (none given means US-ASCII).
pub fn charset_supported(charset: Option<&[u8]>) -> bool {
    charset.is_none_or(|c| c.eq_ignore_ascii_case(b"UTF-8") || c.eq_ignore_ascii_case(b"US-ASCII"))
}

/// Calls `f` on every INTERNALDATE node of the tree.
fn for_each_internal(n: &mut Node, f: &mut impl FnMut(&mut Arc<InternalDates>)) {
    match n {
        Node::Internal { dates, .. } | Node::Within { dates, .. } => f(dates),
        Node::And(list) => list.iter_mut().for_each(|c| for_each_internal(c, f)),
        Node::Or(a, b) => {
            for_each_internal(a, f);
            for_each_internal(b, f);
        }
        Node::Not(a) => for_each_internal(a, f),
        _ => {}
    }
}

/// Calls `f` on every node of the tree, depth first.
fn for_each_node(n: &mut Node, f: &mut impl FnMut(&mut Node)) {
    match n {
        Node::And(list) => list.iter_mut().for_each(|c| for_each_node(c, f)),
        Node::Or(a, b) => {
            for_each_node(a, f);
            for_each_node(b, f);
        }
        Node::Not(a) => for_each_node(a, f),
        other => f(other),
    }
}

/// Reads what the SAVEDATE and OBJECTID nodes of `root` need, walking the view in
/// [`OBJECT_BATCH`]es and keeping only the dates and the matching UIDs.
async fn read_objects(root: &mut Node, sel: &mut Selected) -> Result<(), SearchError> {
    let mut wants_saved = false;
    let mut wanted: Vec<(bool, String)> = Vec::new();
    for_each_node(root, &mut |n| match n {
        Node::Saved { .. } => wants_saved = true,
        Node::ObjectId { thread, id, .. }
            if !wanted.iter().any(|(t, i)| t == thread && i == id) =>
        {
            wanted.push((*thread, id.clone()));
        }
        _ => {}
    });
    if !wants_saved && wanted.is_empty() {
        return Ok(());
    }
    let all: Vec<u32> = sel.view.messages().iter().map(|m| m.uid).collect();
    let mut saved: Vec<(u32, i64)> = Vec::new();
    let mut found: Vec<Vec<u32>> = vec![Vec::new(); wanted.len()];
    for batch in all.chunks(OBJECT_BATCH) {
        let objects = sel.view.objects(batch).await?;
        if wants_saved {
            let undated: Vec<u32> = (objects.iter())
                .filter(|o| o.save_date.is_none())
                .map(|o| o.uid)
                .collect();
            let fallback = if undated.is_empty() {
                InternalDates::default()
            } else {
                sel.view.internal_dates(&undated).await?
            };
            saved.extend(
                (objects.iter())
                    .filter_map(|o| Some((o.uid, o.save_date.or_else(|| fallback.get(o.uid))?))),
            );
        }
        for o in &objects {
            for ((thread, id), hits) in wanted.iter().zip(found.iter_mut()) {
                let have = if *thread {
                    o.thread_id.as_deref()
                } else {
                    Some(o.email_id.as_str())
                };
                if have == Some(id.as_str()) {
                    hits.push(o.uid);
                }
            }
        }
    }
    let saved = Arc::new(saved.into_iter().collect::<InternalDates>());
    let found: Vec<Arc<Vec<u32>>> = found
        .into_iter()
        .map(|mut v| {
            v.sort_unstable();
            Arc::new(v)
        })
        .collect();
    for_each_node(root, &mut |n| match n {
        Node::Saved { dates, .. } => *dates = saved.clone(),
        Node::ObjectId { thread, id, uids } => {
            if let Some(i) = wanted.iter().position(|(t, w)| t == thread && w == id)
                && let Some(hits) = found.get(i)
            {
                *uids = hits.clone();
            }
        }
        _ => {}
    });
    Ok(())
}

impl Program {
    /// Compiles `key` for the selected mailbox `sel` with the command's CHARSET.
    ///
    /// Strings are taken as UTF-8 for both accepted charsets: US-ASCII is a subset, and clients
    /// that say US-ASCII (or nothing) while sending 8-bit text mean UTF-8.
    ///
    /// When a key compares INTERNALDATE (BEFORE, ON, SINCE, OLDER, YOUNGER), the dates of every message of the
    /// view are read here ([`crate::storage::View::internal_dates`], one storage call for those
    /// a first look at the files left unread) and kept in the program.
    pub async fn compile(
        key: &SearchKey,
        charset: Option<&[u8]>,
        sel: &mut Selected,
    ) -> Result<Program, SearchError> {
        let mut prog = Self::compile_keys(key, charset, sel)?;
        let mut uses_dates = false;
        for_each_internal(&mut prog.root, &mut |_| uses_dates = true);
        if uses_dates {
            let all: Vec<u32> = sel.view.messages().iter().map(|m| m.uid).collect();
            let read = Arc::new(sel.view.internal_dates(&all).await?);
            for_each_internal(&mut prog.root, &mut |dates| *dates = read.clone());
        }
        // SAVEDATE and OBJECTID keys: from the storage's per-message data, never the files.
        read_objects(&mut prog.root, sel).await?;
        Ok(prog)
    }

    /// [`Program::compile`] without reading dates: INTERNALDATE keys hold none yet.
    fn compile_keys(
        key: &SearchKey,
        charset: Option<&[u8]>,
        sel: &Selected,
    ) -> Result<Program, SearchError> {
        if !charset_supported(charset) {
            return Err(SearchError::BadCharset);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut c = Compiler {
            sel,
            uses_modseq: false,
            now,
        };
        let root = c.node(key, 0)?;
        let mut needs = Needs {
            cacheable: true,
            ..Needs::default()
        };
        scan_needs(&root, &mut needs);
        if !needs.header {
            needs.cacheable = false;
        }
        Ok(Program {
            root,
            needs,
            uses_modseq: c.uses_modseq,
        })
    }
}

fn scan_needs(n: &Node, needs: &mut Needs) {
    match n {
        Node::And(list) => list.iter().for_each(|c| scan_needs(c, needs)),
        Node::Or(a, b) => {
            scan_needs(a, needs);
            scan_needs(b, needs);
        }
        Node::Not(a) => scan_needs(a, needs),
        Node::Header { name, .. } => {
            needs.header = true;
            needs.header_keys = true;
            needs.cacheable &= is_cached_field(name);
        }
        Node::Sent(..) => {
            needs.header = true;
            needs.header_keys = true;
            needs.cacheable &= is_cached_field(b"Date");
        }
        Node::Body(_) => needs.body = true,
        Node::Text(_)
        | Node::Fuzzy {
            field: FuzzyField::Text,
            ..
        } => {
            needs.header = true;
            needs.body = true;
            needs.cacheable = false;
        }
        // The cache keeps substrings' haystacks, not words: fuzzy header keys read the header.
        Node::Fuzzy {
            field: FuzzyField::Header(_),
            ..
        } => {
            needs.header = true;
            needs.header_keys = true;
            needs.cacheable = false;
        }
        Node::Fuzzy {
            field: FuzzyField::Body,
            ..
        } => needs.body = true,
        _ => {}
    }
}

struct Compiler<'a> {
    sel: &'a Selected,
    uses_modseq: bool,
    /// The command's time, seconds since the epoch: every OLDER/YOUNGER key of one SEARCH
    /// counts from the same second.
    now: i64,
}

fn needle(s: &[u8]) -> Result<String, SearchError> {
    std::str::from_utf8(s)
        // i;unicode-casemap (RFC 5051), as the text it is compared with (RFC 5255 4.2).
        .map(crate::mime::casemap::casemap)
        .map_err(|_| SearchError::InvalidString)
}

impl Compiler<'_> {
    fn node(&mut self, key: &SearchKey, depth: usize) -> Result<Node, SearchError> {
        use SearchKey as K;
        // The parser already caps nesting at MAX_SEARCH_DEPTH; a tree built in code is held to
        // the same bound so compiling and evaluating can never run out of stack.
        if depth > MAX_SEARCH_DEPTH + 1 {
            return Err(SearchError::TooDeep);
        }
        let flag = |flag, set| Node::System { flag, set };
        let header = |name: &[u8], s: &[u8]| -> Result<Node, SearchError> {
            Ok(Node::Header {
                name: name.to_vec(),
                needle: needle(s)?,
            })
        };
        Ok(match key {
            K::And(keys) => {
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    out.push(self.node(k, depth + 1)?);
                }
                Node::And(out)
            }
            K::Or(a, b) => Node::Or(
                Box::new(self.node(a, depth + 1)?),
                Box::new(self.node(b, depth + 1)?),
            ),
            K::Not(a) => Node::Not(Box::new(self.node(a, depth + 1)?)),
            K::All => Node::Const(true),
            K::Answered => flag(SystemFlags::ANSWERED, true),
            K::Unanswered => flag(SystemFlags::ANSWERED, false),
            K::Deleted => flag(SystemFlags::DELETED, true),
            K::Undeleted => flag(SystemFlags::DELETED, false),
            K::Draft => flag(SystemFlags::DRAFT, true),
            K::Undraft => flag(SystemFlags::DRAFT, false),
            K::Flagged => flag(SystemFlags::FLAGGED, true),
            K::Unflagged => flag(SystemFlags::FLAGGED, false),
            K::Seen => flag(SystemFlags::SEEN, true),
            K::Unseen => flag(SystemFlags::SEEN, false),
            K::Recent => Node::Recent(true),
            K::Old => Node::Recent(false),
            // RFC 3501: NEW is equivalent to (RECENT UNSEEN).
            K::New => Node::And(vec![Node::Recent(true), flag(SystemFlags::SEEN, false)]),
            K::Keyword(k) => self.keyword(k, true),
            K::Unkeyword(k) => self.keyword(k, false),
            K::Larger(n) => Node::Larger(*n),
            K::Smaller(n) => Node::Smaller(*n),
            K::Before(d) => internal(Cmp::Before, *d),
            K::On(d) => internal(Cmp::On, *d),
            K::Since(d) => internal(Cmp::Since, *d),
            K::SentBefore(d) => sent(Cmp::Before, *d),
            K::SentOn(d) => sent(Cmp::On, *d),
            K::SentSince(d) => sent(Cmp::Since, *d),
            K::From(s) => header(b"From", s)?,
            K::To(s) => header(b"To", s)?,
            K::Cc(s) => header(b"Cc", s)?,
            K::Bcc(s) => header(b"Bcc", s)?,
            K::Subject(s) => header(b"Subject", s)?,
            K::Header(name, s) => header(name, s)?,
            K::Body(s) => Node::Body(needle(s)?),
            K::Text(s) => Node::Text(needle(s)?),
            K::Uid(set) => self.uid_set(set),
            K::SequenceSet(set) => self.seq_set(set),
            K::Older(n) => self.within(true, *n),
            K::Younger(n) => self.within(false, *n),
            K::SavedBefore(d) => saved(Cmp::Before, *d),
            K::SavedOn(d) => saved(Cmp::On, *d),
            K::SavedSince(d) => saved(Cmp::Since, *d),
            // Both backends keep a save date for every mailbox (RFC 8514 4.3).
            K::SaveDateSupported => Node::Const(true),
            K::EmailId(id) => object_id(false, id),
            K::ThreadId(id) => object_id(true, id),
            K::Fuzzy(inner) => self.fuzzy(inner, depth + 1)?,
            K::ModSeq { modseq, .. } => {
                // Per-flag modseqs are not kept; a message's modseq is an upper bound of every
                // entry's, which RFC 7162 3.1.5 allows a server to use.
                self.uses_modseq = true;
                Node::ModSeq(*modseq)
            }
        })
    }

    /// `FUZZY key` (RFC 6203): string keys become [`Node::Fuzzy`], through `( )`, OR and NOT;
    /// every other key means what it means without FUZZY (section 5).
    fn fuzzy(&mut self, key: &SearchKey, depth: usize) -> Result<Node, SearchError> {
        use SearchKey as K;
        if depth > MAX_SEARCH_DEPTH + 1 {
            return Err(SearchError::TooDeep);
        }
        let node = |field, s: &[u8]| -> Result<Node, SearchError> {
            Ok(Node::Fuzzy {
                field,
                key: Fuzzy::new(&needle(s)?),
            })
        };
        let header = |name: &[u8], s: &[u8]| node(FuzzyField::Header(name.to_vec()), s);
        Ok(match key {
            K::And(keys) => {
                let mut out = Vec::with_capacity(keys.len());
                for k in keys {
                    out.push(self.fuzzy(k, depth + 1)?);
                }
                Node::And(out)
            }
            K::Or(a, b) => Node::Or(
                Box::new(self.fuzzy(a, depth + 1)?),
                Box::new(self.fuzzy(b, depth + 1)?),
            ),
            K::Not(a) => Node::Not(Box::new(self.fuzzy(a, depth + 1)?)),
            K::Fuzzy(a) => self.fuzzy(a, depth + 1)?,
            K::From(s) => header(b"From", s)?,
            K::To(s) => header(b"To", s)?,
            K::Cc(s) => header(b"Cc", s)?,
            K::Bcc(s) => header(b"Bcc", s)?,
            K::Subject(s) => header(b"Subject", s)?,
            K::Header(name, s) => header(name, s)?,
            K::Body(s) => node(FuzzyField::Body, s)?,
            K::Text(s) => node(FuzzyField::Text, s)?,
            other => self.node(other, depth)?,
        })
    }

    fn keyword(&self, k: &Atom, set: bool) -> Node {
        let mask: KeywordSet = (self.sel.view.keywords().iter().enumerate())
            .filter(|(_, name)| name.eq_ignore_ascii_case(k.as_str()))
            .map(|(i, _)| i)
            .collect();
        if mask.is_empty() {
            // No message can carry a keyword the mailbox has never seen.
            return Node::Const(!set);
        }
        Node::Keyword { mask, set }
    }

    /// OLDER (`older`) or YOUNGER `secs`; [`Program::compile`] gives it the dates.
    fn within(&self, older: bool, secs: std::num::NonZeroU32) -> Node {
        Node::Within {
            older,
            target: self.now - i64::from(secs.get()),
            dates: Arc::default(),
        }
    }

    fn saved(&self) -> ResolvedSet {
        self.sel.saved.clone().unwrap_or_default()
    }

    /// `UID set`: `*` is the highest UID, `$` the saved UIDs.
    fn uid_set(&self, set: &SequenceSet) -> Node {
        let star = self.sel.view.messages().last_uid().unwrap_or(0);
        let saved = self.saved();
        Node::Uid(set.resolve(star, Some(&saved)))
    }

    /// A bare set names sequence numbers, except `$`, which holds UIDs (RFC 5182 saves UIDs
    /// here), so the two parts become two nodes.
    fn seq_set(&self, set: &SequenceSet) -> Node {
        let exists = self.sel.view.len();
        let plain: Vec<SequenceSetItem> = set
            .items()
            .iter()
            .filter(|i| !matches!(i, SequenceSetItem::Saved))
            .copied()
            .collect();
        let seqs = SequenceSet::new(plain)
            .map(|s| s.resolve(exists, None))
            .unwrap_or_default();
        if !set.uses_saved() {
            return Node::Seq(seqs);
        }
        let saved = Node::Uid(self.saved());
        if seqs.is_empty() {
            saved
        } else {
            Node::Or(Box::new(Node::Seq(seqs)), Box::new(saved))
        }
    }
}

/// An INTERNALDATE key; [`Program::compile`] gives it the dates.
fn internal(cmp: Cmp, d: Date) -> Node {
    Node::Internal {
        cmp,
        day: d.days_since_epoch(),
        dates: Arc::default(),
    }
}

/// A SAVEDATE key; [`Program::compile`] gives it the dates.
fn saved(cmp: Cmp, d: Date) -> Node {
    Node::Saved {
        cmp,
        day: d.days_since_epoch(),
        dates: Arc::default(),
    }
}

/// An EMAILID or THREADID key; [`Program::compile`] finds the messages that have the id.
fn object_id(thread: bool, id: &str) -> Node {
    Node::ObjectId {
        thread,
        id: id.to_owned(),
        uids: Arc::default(),
    }
}

fn sent(cmp: Cmp, d: Date) -> Node {
    Node::Sent(cmp, d.days_since_epoch())
}
