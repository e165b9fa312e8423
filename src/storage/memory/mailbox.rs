//! One mailbox of the memory backend: its messages, keyword table, counters and the channel that
//! tells the views of other sessions that something changed.
//!
//! Every operation takes the mailbox's mutex once, does its work and pokes the change channel
//! after releasing it; nothing waits while holding it.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::watch;

use crate::limits::{MAX_CACHE_ENTRY_BYTES, MAX_KEYWORD_BYTES};
use crate::storage::{
    Flags, InternalDate, KeywordSet, MailboxStatus, MessageList, MessageMeta, Result, Snapshot,
    StorageError, StoreOp, StoreRequest, StoreResult, SystemFlags, Updated, Vanished,
    VanishedWindow,
};

/// Most keywords one mailbox can hold, as in every backend.
pub(crate) const KEYWORD_LIMIT: usize = crate::limits::MAX_KEYWORDS_PER_MAILBOX;

/// One stored message: what the views know of it lives in the [`MessageList`], the rest here.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub data: Bytes,
    /// First POP3 download (Unix seconds), 0 when never.
    pub downloaded: i64,
    /// Cached blobs the IMAP layer stored, by [`crate::storage::CacheField`] number.
    pub cache: HashMap<u8, Bytes>,
    /// SAVEDATE (RFC 8514): when the message came into this mailbox, Unix seconds.
    pub saved: i64,
    /// EMAILID number (RFC 8474), shared with the message it was copied from.
    pub email: u64,
}

/// A message being added: its bytes, flags by name and INTERNALDATE.
pub(crate) struct NewMessage {
    pub data: Bytes,
    pub system: SystemFlags,
    pub keywords: Vec<String>,
    pub date: i64,
    /// The EMAILID number of the message this is a copy of; `None` for new content.
    pub email: Option<u64>,
}

/// The next EMAILID number of the process (never reused).
static NEXT_EMAIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The process's start, in the ids: a memory store starts empty, and ids a client cached from
/// an earlier run must not name anything of this one.
fn epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// An RFC 8474 object id: `prefix`, the process's start and `n`, in hex.
pub(crate) fn object_id(prefix: char, n: u64) -> String {
    format!("{prefix}{:x}{n:08x}", epoch())
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    /// UIDs at or above it have not been claimed as `\Recent` by any session.
    first_recent: u32,
    keywords: Vec<String>,
    keywords_arc: Arc<[String]>,
    /// Index in `keywords` by ASCII-lower-cased name: looking a name up costs no scan of a table
    /// that may hold thousands (a STORE naming each of them was quadratic).
    keyword_lookup: HashMap<String, usize>,
    pub list: MessageList,
    pub bodies: HashMap<u32, Stored>,
    /// The last expunges with their modseqs, for QRESYNC.
    vanished: VanishedWindow,
    /// Set when the mailbox was deleted: views still holding it learn it on their next sync.
    pub deleted: bool,
}

/// The state of one mailbox, shared by every view of it.
#[derive(Debug)]
pub(crate) struct MailboxState {
    inner: Mutex<Inner>,
    changes: watch::Sender<u64>,
    /// Unique in the process (see [`crate::storage::MailboxHandle::identity`]).
    serial: u64,
}

/// The next [`MailboxState::serial`].
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl MailboxState {
    pub(crate) fn new(uidvalidity: u32) -> Arc<Self> {
        Arc::new(MailboxState {
            inner: Mutex::new(Inner {
                uidvalidity,
                uidnext: 1,
                highest_modseq: 1,
                first_recent: 1,
                keywords: Vec::new(),
                keywords_arc: Arc::from([]),
                keyword_lookup: HashMap::new(),
                list: MessageList::default(),
                bodies: HashMap::new(),
                vanished: VanishedWindow::new(0),
                deleted: false,
            }),
            changes: watch::Sender::new(0),
            serial: NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Unique in the process, never reused.
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Wakes every view waiting in [`crate::storage::View::changed`].
    pub(crate) fn poke(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Runs `f` under the lock and pokes the views when it says it changed something.
    pub(crate) fn change<T>(&self, f: impl FnOnce(&mut Inner) -> Result<(T, bool)>) -> Result<T> {
        let (out, changed) = {
            let mut inner = self.inner.lock();
            if inner.deleted {
                return Err(StorageError::NonExistent);
            }
            f(&mut inner)?
        };
        if changed {
            self.poke();
        }
        Ok(out)
    }

    /// Marks the mailbox deleted and wakes its views.
    pub(crate) fn mark_deleted(&self) {
        self.inner.lock().deleted = true;
        self.poke();
    }
}

/// Bytes a client is sent for `data`: every bare LF counted as CRLF.
pub(crate) fn virtual_size(data: &[u8]) -> u64 {
    let bare = memchr::memchr_iter(b'\n', data)
        .filter(|&i| i == 0 || data.get(i - 1) != Some(&b'\r'))
        .count();
    data.len() as u64 + bare as u64
}

fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEYWORD_BYTES
        && !name.starts_with('\\')
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "(){%*\"]".contains(c))
}

impl Inner {
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            highest_modseq: self.highest_modseq,
            keywords: self.keywords_arc.clone(),
            keyword_limit: KEYWORD_LIMIT,
            messages: self.list.clone(),
        })
    }

    /// The UIDs nobody claimed as `\Recent` yet; taken when `claim`.
    pub(crate) fn unclaimed_recent(&mut self, claim: bool) -> Option<Range<u32>> {
        if self.first_recent >= self.uidnext {
            return None;
        }
        let r = self.first_recent..self.uidnext;
        if claim {
            self.first_recent = self.uidnext;
        }
        Some(r)
    }

    pub(crate) fn status(&self) -> MailboxStatus {
        let mut st = MailboxStatus {
            messages: u32::try_from(self.list.len()).unwrap_or(u32::MAX),
            recent: u32::try_from(self.list.len() - self.list.rank(self.first_recent))
                .unwrap_or(u32::MAX),
            uidnext: self.uidnext,
            uidvalidity: self.uidvalidity,
            highest_modseq: self.highest_modseq,
            ..MailboxStatus::default()
        };
        // Kept per chunk of the list: no scan of the messages (src/storage/msglist.rs).
        st.set_counts(self.list.tally());
        st
    }

    fn keyword_index(&self, name: &str) -> Option<usize> {
        self.keyword_lookup.get(&name.to_ascii_lowercase()).copied()
    }

    /// Refuses, before anything changes, keywords that are invalid or would not fit.
    pub(crate) fn check_keywords<'a>(
        &self,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Result<()> {
        let mut new: HashSet<String> = HashSet::new();
        for n in names {
            let lower = n.to_ascii_lowercase();
            if self.keyword_lookup.contains_key(&lower) || new.contains(&lower) {
                continue;
            }
            if !valid_keyword(n) {
                return Err(StorageError::Invalid("bad keyword"));
            }
            new.insert(lower);
        }
        if self.keywords.len() + new.len() > KEYWORD_LIMIT {
            return Err(StorageError::Invalid("too many keywords in this mailbox"));
        }
        Ok(())
    }

    /// The set of `names`, creating missing keywords when `create` (checked beforehand with
    /// [`Inner::check_keywords`]). The shared copy of the table is rebuilt once per call, not
    /// once per new keyword.
    fn keyword_set(&mut self, names: &[String], create: bool) -> Result<KeywordSet> {
        let mut set = KeywordSet::default();
        let grown = self.keywords.len();
        let mut result = Ok(());
        for n in names {
            let i = match self.keyword_index(n) {
                Some(i) => i,
                None if !create => continue,
                None => {
                    if self.keywords.len() >= KEYWORD_LIMIT || !valid_keyword(n) {
                        result = Err(StorageError::Invalid("too many keywords in this mailbox"));
                        break;
                    }
                    self.keywords.push(n.clone());
                    let i = self.keywords.len() - 1;
                    self.keyword_lookup.insert(n.to_ascii_lowercase(), i);
                    i
                }
            };
            set.insert(i);
        }
        if self.keywords.len() != grown {
            self.keywords_arc = Arc::from(self.keywords.as_slice());
        }
        result.map(|()| set)
    }

    /// Keyword names of a set, for copying a message into another mailbox.
    pub(crate) fn keyword_names(&self, set: &KeywordSet) -> Vec<String> {
        set.iter()
            .filter_map(|i| self.keywords.get(i).cloned())
            .collect()
    }

    fn next_modseq(&mut self) -> u64 {
        self.highest_modseq = self.highest_modseq.saturating_add(1);
        self.highest_modseq
    }

    /// Adds messages (keywords checked first, so nothing is added when one does not fit);
    /// returns their UIDs.
    pub(crate) fn add(&mut self, messages: Vec<NewMessage>) -> Result<Vec<u32>> {
        self.check_keywords(messages.iter().flat_map(|m| m.keywords.iter()))?;
        let last = u32::try_from(messages.len())
            .ok()
            .and_then(|n| self.uidnext.checked_add(n));
        if last.is_none() {
            return Err(StorageError::Cannot("UID space exhausted"));
        }
        let mut uids = Vec::with_capacity(messages.len());
        for m in messages {
            uids.push(self.push_new(m)?);
        }
        Ok(uids)
    }

    /// Adds messages under the UIDs given with them (migration, [`crate::storage::UserStore::import_messages`]):
    /// they ascend from at least UIDNEXT, checked with the keywords before anything is added.
    pub(crate) fn import(&mut self, messages: Vec<(u32, NewMessage)>) -> Result<()> {
        let next = crate::storage::import_uidnext(self.uidnext, messages.iter().map(|m| m.0))?;
        self.check_keywords(messages.iter().flat_map(|m| m.1.keywords.iter()))?;
        for (uid, m) in messages {
            self.uidnext = uid;
            self.push_new(m)?;
        }
        self.uidnext = next;
        Ok(())
    }

    /// Sets UIDVALIDITY and UIDNEXT (migration, [`crate::storage::import_counters`] decided).
    pub(crate) fn set_counters(&mut self, uidvalidity: u32, uidnext: u32) {
        self.uidvalidity = uidvalidity;
        self.uidnext = uidnext;
        self.first_recent = self.first_recent.min(uidnext);
    }

    /// Adds one message under UIDNEXT, its keywords checked by the caller; returns its UID.
    fn push_new(&mut self, m: NewMessage) -> Result<u32> {
        let keywords = self.keyword_set(&m.keywords, true)?;
        let uid = self.uidnext;
        self.uidnext += 1;
        let modseq = self.next_modseq();
        self.list.push(MessageMeta {
            uid,
            flags: Flags {
                system: m.system,
                keywords,
            },
            modseq,
            phys_size: m.data.len() as u64,
            virt_size: virtual_size(&m.data),
            internal_date: InternalDate::at(m.date),
        });
        let email = m
            .email
            .unwrap_or_else(|| NEXT_EMAIL.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.bodies.insert(
            uid,
            Stored {
                data: m.data,
                downloaded: 0,
                cache: HashMap::new(),
                saved: super::now_secs(),
                email,
            },
        );
        Ok(uid)
    }

    /// STORE; the bool says whether anything changed.
    pub(crate) fn store(
        &mut self,
        uids: &[u32],
        req: &StoreRequest,
    ) -> Result<(StoreResult, bool)> {
        let create = req.op != StoreOp::Remove;
        if create {
            self.check_keywords(&req.keywords)?;
        }
        let grown = self.keywords.len();
        let kws = self.keyword_set(&req.keywords, create)?;
        let mut changed = self.keywords.len() != grown;
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        let mut out = StoreResult {
            updated: Vec::new(),
            failed: Vec::new(),
            keywords: Arc::from([]),
        };
        for uid in uids {
            let Some(i) = self.list.position(uid) else {
                continue;
            };
            let Some(m) = self.list.get(i).cloned() else {
                continue;
            };
            if req.unchanged_since.is_some_and(|us| m.modseq > us) {
                out.failed.push(uid);
                continue;
            }
            let flags = match req.op {
                StoreOp::Replace => Flags {
                    system: req.flags,
                    keywords: kws.clone(),
                },
                StoreOp::Add => {
                    let mut keywords = m.flags.keywords.clone();
                    keywords.union_with(&kws);
                    Flags {
                        system: m.flags.system.union(req.flags),
                        keywords,
                    }
                }
                StoreOp::Remove => {
                    let mut keywords = m.flags.keywords.clone();
                    keywords.remove_all(&kws);
                    Flags {
                        system: m.flags.system.minus(req.flags),
                        keywords,
                    }
                }
            };
            let modseq = if flags == m.flags {
                m.modseq
            } else {
                changed = true;
                let modseq = self.next_modseq();
                let stored = flags.clone();
                self.list.update(i, |m| {
                    m.flags = stored;
                    m.modseq = modseq;
                });
                modseq
            };
            out.updated.push(Updated { uid, flags, modseq });
        }
        out.keywords = self.keywords_arc.clone();
        Ok((out, changed))
    }

    /// Removes messages: those of `uids` (all when `None`) carrying `\Deleted`, or every one of
    /// them with `force`. Returns the UIDs removed, ascending, and their bytes.
    pub(crate) fn expunge(&mut self, uids: Option<&[u32]>, force: bool) -> (Vec<u32>, u64) {
        let wanted: Option<std::collections::HashSet<u32>> =
            uids.map(|u| u.iter().copied().collect());
        let gone: Vec<u32> = self
            .list
            .iter()
            .filter(|m| {
                wanted.as_ref().is_none_or(|w| w.contains(&m.uid))
                    && (force || m.flags.system.contains(SystemFlags::DELETED))
            })
            .map(|m| m.uid)
            .collect();
        if gone.is_empty() {
            return (gone, 0);
        }
        let mut bytes = 0u64;
        for uid in &gone {
            if let Some(s) = self.bodies.remove(uid) {
                bytes += s.data.len() as u64;
            }
            // Every expunge is a change a CONDSTORE client can ask about.
            let modseq = self.next_modseq();
            self.vanished.record(*uid, modseq);
        }
        let bodies = &self.bodies;
        self.list.retain(|m| bodies.contains_key(&m.uid));
        (gone, bytes)
    }

    /// The UIDs expunged after `modseq` (see [`VanishedWindow::since`]).
    pub(crate) fn vanished_since(&self, modseq: u64) -> Vanished {
        self.vanished.since(modseq)
    }

    /// `(uid, meta, keyword names, bytes)` of the present messages of `uids`, in UID order.
    pub(crate) fn sources(&self, uids: &[u32]) -> Vec<(u32, MessageMeta, Vec<String>, Bytes)> {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        sorted
            .into_iter()
            .filter_map(|uid| {
                let m = self.list.find(uid)?.clone();
                let data = self.bodies.get(&uid)?.data.clone();
                let names = self.keyword_names(&m.flags.keywords);
                Some((uid, m, names, data))
            })
            .collect()
    }

    /// SAVEDATE and EMAILID of the present messages of `uids`, in the order asked.
    pub(crate) fn objects(&self, uids: &[u32]) -> Vec<crate::storage::MessageObject> {
        uids.iter()
            .filter_map(|&uid| {
                let s = self.bodies.get(&uid)?;
                Some(crate::storage::MessageObject {
                    uid,
                    save_date: Some(s.saved),
                    email_id: object_id('M', s.email),
                    thread_id: None,
                })
            })
            .collect()
    }

    /// The EMAILID number of `uid`, if present.
    pub(crate) fn email_of(&self, uid: u32) -> Option<u64> {
        self.bodies.get(&uid).map(|s| s.email)
    }

    pub(crate) fn body(&self, uid: u32) -> Option<(MessageMeta, Bytes)> {
        let m = self.list.find(uid)?.clone();
        Some((m, self.bodies.get(&uid)?.data.clone()))
    }

    pub(crate) fn cache_get(&self, uids: &[u32], field: u8) -> Vec<Option<Bytes>> {
        uids.iter()
            .map(|u| {
                self.bodies
                    .get(u)
                    .and_then(|s| s.cache.get(&field).cloned())
            })
            .collect()
    }

    /// Stores cached blobs; entries of expunged UIDs and oversized blobs are dropped.
    pub(crate) fn cache_put(&mut self, field: u8, entries: Vec<(u32, Bytes)>) {
        for (uid, blob) in entries {
            if blob.len() > MAX_CACHE_ENTRY_BYTES {
                continue;
            }
            if let Some(s) = self.bodies.get_mut(&uid) {
                s.cache.insert(field, blob);
            }
        }
    }

    pub(crate) fn mark_downloaded(&mut self, uids: &[u32], now: i64) {
        for uid in uids {
            if let Some(s) = self.bodies.get_mut(uid)
                && s.downloaded == 0
            {
                s.downloaded = now;
            }
        }
    }

    pub(crate) fn downloaded_before(&self, cutoff: i64) -> Vec<u32> {
        self.list
            .iter()
            .filter(|m| {
                self.bodies
                    .get(&m.uid)
                    .is_some_and(|s| s.downloaded != 0 && s.downloaded <= cutoff)
            })
            .map(|m| m.uid)
            .collect()
    }

    /// Physical bytes and count of the messages (for quota when the mailbox is deleted).
    pub(crate) fn usage(&self) -> (u64, u64) {
        let bytes = self.list.iter().map(|m| m.phys_size).sum();
        (bytes, self.list.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_size_counts_bare_lf_only() {
        assert_eq!(virtual_size(b""), 0);
        assert_eq!(virtual_size(b"a\r\nb\nc"), 7);
        assert_eq!(virtual_size(b"\n\n"), 4);
    }
}
