//! One Maildir mailbox: its in-memory state, shared by every session of the
//! process, and every operation on it.
//!
//! This file holds the state ([`MailboxState`], shared by the views; [`Inner`],
//! behind its mutex) and the sync that brings it up to date. Each operation
//! lives in the file named after it:
//!
//! * [`lock`]: the in-process mutex and the cross-process `flock` every
//!   operation runs under (`MailboxState::locked`), and the group commit that
//!   makes its changes durable after both are released.
//! * [`append`]: APPEND and COPY, from `tmp/` into `cur/` with new UIDs.
//! * [`store`]: STORE, flags by renaming files; [`keywords`]: the keyword table.
//! * [`expunge`]: EXPUNGE (and the second half of MOVE).
//! * [`locate`]: finding and opening message files for reads;
//!   [`dates`]: INTERNALDATEs read lazily from the files' mtimes;
//!   [`cached`]: the cache of parsed MIME data; [`pop3`]: POP3 download times.
//! * [`load`]: loading the index (base + log replay) or rebuilding it from the
//!   files; [`commit`]: applying records to memory and logging them, and
//!   writing a new base.
//! * [`scan`]: finding changes others made; [`listing`]: reading `cur/` and
//!   `new/` and stat-ing what they hold.
//! * [`uidvalidity`]: allocating UIDVALIDITY values.
//! * [`rebuild`]: `mailcove index rebuild`, a fresh index and an empty cache.
//! * Helpers for speed: [`hasher`] (FxHash for file-name maps),
//!   [`prefetch`] (CPU prefetch hints) and [`par_map`] (stat-ing on a few
//!   threads).

mod append;
mod cached;
mod commit;
mod dates;
mod expunge;
mod hasher;
mod import;
mod keywords;
mod listing;
mod load;
mod locate;
mod lock;
mod objects;
mod par_map;
mod pop3;
mod prefetch;
mod rebuild;
mod scan;
mod store;
mod uidvalidity;

pub(crate) use self::locate::{LocatedRun, MessageDirs};

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::limits::{MAX_EVENT_QUEUE, MAX_KEYWORDS_PER_MAILBOX};
use crate::storage::maildir::cache::Cache;
use crate::storage::maildir::fsutil::{mtime_ns, now_ns};
use crate::storage::maildir::group_commit::GroupCommit;
use crate::storage::maildir::index::Header;
use crate::storage::{MessageList, MessageMeta, Result, Snapshot, VanishedWindow};

use self::hasher::BuildFx;

/// Where a message file is.
#[derive(Debug, Clone)]
struct FileRec {
    name: Box<str>,
    in_new: bool,
    dl: i64,
}

/// (inode, size, mtime) of a file, to notice replacement by another process.
type Stamp = (u64, u64, i64);

fn stamp_of(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.ino(), m.size(), mtime_ns(&m)))
}

#[derive(Default)]
struct Inner {
    loaded: bool,
    hdr: Header,
    list: MessageList,
    /// Parallel to `list`: `files[i]` is the file of `list.get(i)`.
    files: Vec<FileRec>,
    /// Names in `cur/` we created or removed ourselves and whose inotify
    /// events have not arrived yet.
    /// Counted, because a flag toggled back and forth touches a name twice.
    own_names: HashMap<Box<str>, u32, BuildFx>,
    /// Some file may still be in `new/` (cleared by a scan that found none).
    maybe_in_new: bool,
    /// The keyword table: 0..26 from `dovecot-keywords` (file-name letters), the rest from
    /// `mailcove-keywords`.
    keywords: Vec<String>,
    keywords_stamp: Option<Stamp>,
    /// Stamp of `mailcove-keywords`.
    more_keywords_stamp: Option<Stamp>,
    /// `mailcove-keywords` (as of `more_keywords_stamp`) names every keyword of the table from
    /// index 26 on and ends with a whole line, so new keywords can be appended to it.
    more_keywords_whole: bool,
    base_stamp: Option<Stamp>,
    log: Option<File>,
    log_offset: u64,
    log_records: usize,
    version: u64,
    snapshot: Option<(u64, Arc<Snapshot>)>,
    keywords_arc: Option<Arc<[String]>>,
    /// Index in `keywords` by ASCII-lower-cased name (the first of equal names), built when
    /// first needed after the table changed: a STORE naming thousands of keywords in a table
    /// of thousands then costs no scan of the table per name.
    keyword_lookup: Option<HashMap<String, usize>>,
    cache: Option<Cache>,
    /// Memory was rebuilt from the files and the base not written yet: the
    /// operation's commit writes it (before anything is acknowledged).
    base_pending: bool,
    /// The last expunges with their modseqs (QRESYNC), kept in the base and the log.
    vanished: VanishedWindow,
}

/// A message copied out of a mailbox, ready to be linked into another.
pub(crate) struct Source {
    pub uid: u32,
    pub path: PathBuf,
    pub meta: MessageMeta,
    pub keywords: Vec<String>,
}

/// Bytes and messages added (positive) or removed, for quota bookkeeping.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Usage {
    pub bytes: i64,
    pub messages: i64,
}

/// The shared state of one mailbox directory.
pub(crate) struct MailboxState {
    dir: PathBuf,
    /// User root, where the UIDVALIDITY counter lives.
    root: PathBuf,
    fsync: bool,
    inner: Mutex<Inner>,
    lock: Mutex<Option<Arc<File>>>,
    /// The fsyncs of `cur/` and the index log that the writers share (see `lock.rs`).
    group: GroupCommit,
    changes: watch::Sender<u64>,
    /// Set when inotify overflowed our queue: rescan `cur/`.
    dirty: AtomicBool,
    /// Since when (ns) inotify has been watching this mailbox; 0 = not.
    watched_since: AtomicI64,
    events: Mutex<Vec<PathBuf>>,
}

/// What an operation does to the in-memory state besides its records.
struct Ctx<'a> {
    dir: &'a Path,
    root: &'a Path,
    fsync: bool,
    state: &'a MailboxState,
}

impl MailboxState {
    pub(crate) fn new(dir: PathBuf, root: PathBuf, fsync: bool) -> Self {
        MailboxState {
            dir,
            root,
            fsync,
            inner: Mutex::new(Inner::default()),
            lock: Mutex::new(None),
            group: GroupCommit::default(),
            changes: watch::Sender::new(0),
            dirty: AtomicBool::new(false),
            watched_since: AtomicI64::new(0),
            events: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Wakes views (the mailbox was deleted or renamed away, or inotify fired).
    pub(crate) fn poke(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Records that inotify now watches (or no longer watches) the mailbox.
    pub(crate) fn set_watched(&self, on: bool) {
        self.watched_since
            .store(if on { now_ns() } else { 0 }, Ordering::SeqCst);
    }

    /// Forces a rescan of `cur/` at the next sync and wakes views (inotify
    /// lost events).
    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        self.poke();
    }

    /// Called from the inotify thread with a path under `new/` or `cur/`.
    pub(crate) fn fs_event(&self, path: PathBuf) {
        {
            let mut ev = self.events.lock();
            if ev.len() >= MAX_EVENT_QUEUE {
                self.dirty.store(true, Ordering::Relaxed);
                ev.clear();
            } else {
                ev.push(path);
            }
        }
        self.poke();
    }

    /// Brings the state up to date (scanning `new/` always, `cur/` when it
    /// may have changed); optionally moves `new/` files to `cur/` and claims
    /// `\Recent`. Returns the snapshot and the UIDs nobody had claimed (now
    /// the caller's when it claimed).
    pub(crate) fn sync(
        &self,
        move_new: bool,
        claim_recent: bool,
    ) -> Result<(Arc<Snapshot>, Option<std::ops::Range<u32>>)> {
        self.locked(|inner, ctx| {
            let mut records = inner.scan(ctx, false)?;
            inner.apply_all(records.clone());
            if move_new {
                let moved = inner.move_new_to_cur(ctx)?;
                inner.apply_all(moved.clone());
                records.extend(moved);
                if inner.maybe_in_new {
                    inner.maybe_in_new = inner.files.iter().any(|f| f.in_new);
                }
            }
            let recent = if inner.hdr.first_recent < inner.hdr.uidnext {
                let r = inner.hdr.first_recent..inner.hdr.uidnext;
                if claim_recent {
                    inner.hdr.first_recent = inner.hdr.uidnext;
                }
                Some(r)
            } else {
                None
            };
            Ok(((inner.snapshot(), recent), records))
        })
    }

    /// Number of messages that no view has claimed as `\Recent` yet.
    pub(crate) fn unclaimed_recent(&self) -> u32 {
        let inner = self.inner.lock();
        let n = inner.list.len() - inner.list.rank(inner.hdr.first_recent);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

fn dir_mtime(dir: &Path) -> Option<i64> {
    std::fs::metadata(dir).ok().map(|m| mtime_ns(&m))
}

impl Inner {
    fn file_path(&self, dir: &Path, f: &FileRec) -> PathBuf {
        dir.join(if f.in_new { "new" } else { "cur" })
            .join(&*f.name)
    }

    fn keywords_arc(&mut self) -> Arc<[String]> {
        if let Some(k) = &self.keywords_arc {
            return k.clone();
        }
        let k: Arc<[String]> = Arc::from(self.keywords.clone());
        self.keywords_arc = Some(k.clone());
        k
    }

    fn snapshot(&mut self) -> Arc<Snapshot> {
        if let Some((v, s)) = &self.snapshot
            && *v == self.version
        {
            return s.clone();
        }
        let s = Arc::new(Snapshot {
            uidvalidity: self.hdr.uidvalidity,
            uidnext: self.hdr.uidnext,
            highest_modseq: self.hdr.highest_modseq,
            keywords: self.keywords_arc(),
            keyword_limit: MAX_KEYWORDS_PER_MAILBOX,
            messages: self.list.clone(),
        });
        self.snapshot = Some((self.version, s.clone()));
        s
    }
}
