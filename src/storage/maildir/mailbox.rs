//! One Maildir mailbox: its in-memory state, shared by every session of the
//! process, and every operation on it.
//!
//! # Locking
//!
//! Each operation takes the in-process mutex, then an exclusive `flock` on
//! `mailcove-index.lock` (so `mailcove deliver` and the daemon serialise),
//! then catches up with what other processes logged, then works. The flock
//! is released on process death, so a SIGKILLed writer never leaves a stale
//! lock behind (a dotlock would).
//!
//! # Finding changes made by others
//!
//! * mailcove processes log every change in `mailcove-index.log`; replaying
//!   the new tail is cheap.
//! * `new/` is read on every sync: it is where MTAs drop mail, mailcove
//!   never writes there, and it is normally empty, so a readdir costs
//!   microseconds.
//! * `cur/` (100,000 files) is read only when its mtime differs from the one
//!   recorded when we last knew it, when that record was taken within
//!   [`DIR_MTIME_SETTLE_NS`] of the change (a later change in the same clock
//!   tick would not move the mtime: we rescan once it has settled), when
//!   inotify reported a name we do not know, or when a file we expected
//!   vanished.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::cache::Cache;
use super::dovecot::{self, KEYWORDS_FILE, UIDLIST_FILE};
use super::filename;
use super::fsutil::{
    Dir, DirNames, FileStat, LockMode, flock, fsync_dir, funlock, list_dir, mtime_ns, now_ns,
    now_secs, open_lock_file, read_small, replace_file, replace_file_with, write_atomic,
};
use super::index::{self, BASE_FILE, Entry, Header, LOCK_FILE, LOG_FILE, Record};
use crate::limits::{
    DIR_MTIME_SETTLE_NS, INDEX_LOG_COMPACT_MIN, MAILDIR_KEYWORD_LETTERS, MAX_EVENT_QUEUE,
    MAX_INDEX_BYTES, MAX_KEYWORD_BYTES, MAX_KEYWORDS_FILE_BYTES, MAX_KEYWORDS_PER_MAILBOX,
    MAX_SMALL_FILE_BYTES, OWN_NAMES_MAX, STAT_FILES_PER_THREAD, STAT_THREADS_MAX, TMP_MAX_AGE_SECS,
};
use crate::storage::{
    Flags, InternalDate, KeywordSet, MessageList, MessageMeta, Result, Snapshot, StorageError,
    StoreOp, StoreRequest, StoreResult, SystemFlags, Updated,
};

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
    changes: watch::Sender<u64>,
    /// Set when inotify overflowed our queue: rescan `cur/`.
    dirty: AtomicBool,
    /// Since when (ns) inotify has been watching this mailbox; 0 = not.
    watched_since: AtomicI64,
    events: Mutex<Vec<PathBuf>>,
}

struct FlockGuard(Arc<File>);
impl Drop for FlockGuard {
    fn drop(&mut self) {
        funlock(&self.0);
    }
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

    fn lock_file(&self) -> Result<Arc<File>> {
        let mut slot = self.lock.lock();
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let f = Arc::new(open_lock_file(&self.dir.join(LOCK_FILE))?);
        *slot = Some(f.clone());
        Ok(f)
    }

    /// Runs `f` under the in-process mutex and the cross-process flock, after
    /// catching up with the disk. Records `f` returns are applied and logged.
    fn locked<R>(
        &self,
        f: impl FnOnce(&mut Inner, &Ctx<'_>) -> Result<(R, Vec<Record>)>,
    ) -> Result<R> {
        let mut inner = self.inner.lock();
        if !self.dir.join("cur").is_dir() {
            return Err(StorageError::NonExistent);
        }
        let lock = self.lock_file()?;
        flock(&lock, LockMode::Exclusive).map_err(|e| StorageError::io("lock index", e))?;
        let guard = FlockGuard(lock);
        let ctx = Ctx {
            dir: &self.dir,
            root: &self.root,
            fsync: self.fsync,
            state: self,
        };
        let before = inner.version;
        if let Err(e) = inner.catch_up(&ctx) {
            // A half-done load must not be mistaken for a loaded state.
            inner.loaded = false;
            return Err(e);
        }
        let hdr_before = inner.hdr;
        let version_before = inner.version;
        let (r, mut records) = match f(&mut inner, &ctx) {
            Ok(v) => v,
            Err(e) => {
                // Memory may now be ahead of the log: reload from disk next time.
                if inner.version != version_before || inner.hdr != hdr_before {
                    inner.loaded = false;
                }
                return Err(e);
            }
        };
        if inner.hdr != hdr_before || records.iter().any(|r| matches!(r, Record::Header(_))) {
            records.retain(|r| !matches!(r, Record::Header(_)));
            records.push(Record::Header(inner.hdr));
        }
        if let Err(e) = inner.commit(&ctx, records) {
            inner.loaded = false;
            return Err(e);
        }
        let changed = inner.version != before;
        // The flock belongs to the descriptor every thread of this state
        // shares: release it while still holding the mutex, or a thread
        // that takes the mutex next would "re-lock" the held flock for free
        // and lose it when this guard drops.
        drop(guard);
        drop(inner);
        if changed {
            self.poke();
        }
        Ok(r)
    }

    /// Brings the state up to date (scanning `new/` always, `cur/` when it
    /// may have changed); optionally moves `new/` files to `cur/` and claims
    /// `\Recent`.
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
            let recent = if claim_recent && inner.hdr.first_recent < inner.hdr.uidnext {
                let r = inner.hdr.first_recent..inner.hdr.uidnext;
                inner.hdr.first_recent = inner.hdr.uidnext;
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

    /// Writes `data` into `tmp/` durably and returns the temp path and base name.
    pub(crate) fn write_tmp(&self, data: &[u8], date: i64) -> Result<(PathBuf, String)> {
        let base = filename::new_base(data.len() as u64, filename::virtual_size(data));
        let path = self.dir.join("tmp").join(&base);
        let res = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .mode(0o600)
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(data)?;
            set_mtime(&f, date)?;
            if self.fsync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&path);
            return Err(StorageError::io("write message", e));
        }
        Ok((path, base))
    }

    /// Creates an empty file in `tmp/` for a streamed append.
    pub(crate) fn create_tmp(&self) -> Result<(File, PathBuf)> {
        let path = self.dir.join("tmp").join(filename::new_unique());
        let f = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io("create message", e))?;
        Ok((f, path))
    }

    /// Makes a streamed append's file durable and dates it.
    pub(crate) fn finish_tmp(&self, f: &File, date: i64) -> Result<()> {
        set_mtime(f, date).map_err(|e| StorageError::io("date message", e))?;
        if self.fsync {
            f.sync_all()
                .map_err(|e| StorageError::io("fsync message", e))?;
        }
        Ok(())
    }

    /// Links (or copies) another mailbox's file into our `tmp/`.
    pub(crate) fn link_tmp(&self, src: &Source) -> Result<Option<(PathBuf, String)>> {
        let base = filename::new_base(src.meta.phys_size, src.meta.virt_size);
        let path = self.dir.join("tmp").join(&base);
        match std::fs::hard_link(&src.path, &path) {
            Ok(()) => Ok(Some((path, base))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(_) => {
                // Different file system or links refused: copy the bytes.
                let res = (|| -> io::Result<()> {
                    let date = match src.meta.internal_date.get() {
                        Some(d) => d,
                        None => std::fs::metadata(&src.path)?.mtime(),
                    };
                    std::fs::copy(&src.path, &path)?;
                    let f = OpenOptions::new().write(true).open(&path)?;
                    set_mtime(&f, date)?;
                    if self.fsync {
                        f.sync_all()?;
                    }
                    Ok(())
                })();
                match res {
                    Ok(()) => Ok(Some((path, base))),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        if e.kind() == io::ErrorKind::NotFound {
                            Ok(None)
                        } else {
                            Err(StorageError::io("copy message", e))
                        }
                    }
                }
            }
        }
    }

    /// Moves prepared `tmp/` files into `cur/` with their flags and gives
    /// them UIDs; durable (file and directory fsynced, log fsynced) on return.
    /// Each item is `(tmp path, base name, date, flags, keywords)`; the date is Unix seconds,
    /// or a copy's [`InternalDate`] (then possibly not read yet: the link has the same mtime).
    pub(crate) fn commit_new<D: Into<InternalDate> + Copy>(
        &self,
        items: Vec<(PathBuf, String, D, SystemFlags, Vec<String>)>,
    ) -> Result<(u32, Vec<u32>)> {
        let cleanup = |items: &[(PathBuf, String, D, SystemFlags, Vec<String>)]| {
            for (p, ..) in items {
                let _ = std::fs::remove_file(p);
            }
        };
        let res = self.locked(|inner, ctx| {
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let mut records = Vec::with_capacity(items.len());
            let mut uids = Vec::with_capacity(items.len());
            // Every new keyword of every item, created at once (or none, when they would not fit).
            let all: Vec<String> = items.iter().flat_map(|i| i.4.iter().cloned()).collect();
            inner.intern_keywords(ctx, &all, true)?;
            for (tmp, base, date, system, keywords) in &items {
                let kws = inner.intern_keywords(ctx, keywords, false)?;
                let beyond = beyond_letters(&kws);
                let flags = Flags {
                    system: *system,
                    keywords: kws,
                };
                // A linked copy whose source date was never read: the link
                // is the same inode, with the same mtime.
                let date = match (*date).into().get() {
                    Some(d) => d,
                    None => std::fs::metadata(tmp)
                        .map_err(|e| StorageError::io("stat message", e))?
                        .mtime(),
                };
                let name = filename::with_flags(base, &flags, inner.keywords.len());
                std::fs::rename(tmp, cur.join(&name))
                    .map_err(|e| StorageError::io("rename into cur", e))?;
                inner.note_own(&name);
                let (phys, virt) = match filename::sizes(base) {
                    (Some(p), Some(v)) => (p, v),
                    _ => (0, 0),
                };
                let uid = inner.hdr.uidnext;
                inner.hdr.uidnext = uid
                    .checked_add(1)
                    .ok_or_else(|| StorageError::Corrupt("UID space exhausted".into()))?;
                inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                let modseq = inner.hdr.highest_modseq;
                let e = Entry {
                    uid,
                    modseq,
                    date: InternalDate::at(date),
                    phys,
                    virt,
                    dl: 0,
                    in_new: false,
                    name,
                };
                records.push(Record::Append(e));
                if !beyond.is_empty() {
                    records.push(Record::Keywords {
                        uid,
                        modseq,
                        keywords: beyond,
                    });
                }
                uids.push(uid);
            }
            if ctx.fsync {
                fsync_dir(&cur).map_err(|e| StorageError::io("fsync cur", e))?;
            }
            inner.own_cur_change(&cur, pre);
            inner.apply_all(records.clone());
            Ok(((inner.hdr.uidvalidity, uids), records))
        });
        if res.is_err() {
            cleanup(&items);
        }
        res
    }

    /// STORE.
    pub(crate) fn store(&self, uids: &[u32], req: &StoreRequest) -> Result<StoreResult> {
        self.locked(|inner, ctx| {
            // Removing a keyword the mailbox does not know removes nothing: never create it.
            let kws = inner.intern_keywords(ctx, &req.keywords, req.op != StoreOp::Remove)?;
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let mut out = StoreResult {
                updated: Vec::new(),
                failed: Vec::new(),
                keywords: Arc::from([]),
            };
            let mut records = Vec::new();
            let mut retry = Vec::new();
            let mut uids = uids.to_vec();
            uids.sort_unstable();
            uids.dedup();
            for uid in uids {
                match inner.store_one(ctx, uid, req, &kws)? {
                    StoreStep::Done(u, rec) => {
                        out.updated.push(u);
                        records.extend(rec);
                    }
                    StoreStep::Failed => out.failed.push(uid),
                    StoreStep::Missing => {}
                    StoreStep::Vanished => retry.push(uid),
                }
            }
            inner.apply_all(records.clone());
            if !retry.is_empty() {
                // Someone renamed files under us: learn their names, try again.
                let mut found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                records.append(&mut found);
                for uid in retry {
                    if let StoreStep::Done(u, rec) = inner.store_one(ctx, uid, req, &kws)? {
                        out.updated.push(u);
                        inner.apply_all(rec.clone());
                        records.extend(rec);
                    }
                }
            }
            inner.own_cur_change(&cur, pre);
            out.keywords = inner.keywords_arc();
            Ok((out, records))
        })
    }

    /// EXPUNGE: `\Deleted` messages (within `uids` when given); with `force`,
    /// every message of `uids` (the second half of MOVE).
    pub(crate) fn expunge(&self, uids: Option<&[u32]>, force: bool) -> Result<(Vec<u32>, Usage)> {
        self.locked(|inner, ctx| {
            let wanted: Option<HashSet<u32>> = uids.map(|u| u.iter().copied().collect());
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let pick = |inner: &Inner| -> Vec<(u32, PathBuf, u64)> {
                inner
                    .list
                    .iter()
                    .zip(inner.files.iter())
                    .filter(|(m, _)| {
                        wanted.as_ref().is_none_or(|w| w.contains(&m.uid))
                            && (force || m.flags.system.contains(SystemFlags::DELETED))
                    })
                    .map(|(m, f)| (m.uid, inner.file_path(ctx.dir, f), m.phys_size))
                    .collect()
            };
            let mut records = Vec::new();
            let mut gone = Vec::new();
            let mut usage = Usage::default();
            let mut vanished = false;
            for (uid, path, size) in pick(inner) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        if let Some(n) = path.file_name().and_then(|n| n.to_str()) {
                            inner.note_own(n);
                        }
                        inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                        records.push(Record::Expunge {
                            uid,
                            modseq: inner.hdr.highest_modseq,
                        });
                        gone.push(uid);
                        usage.bytes -= i64::try_from(size).unwrap_or(i64::MAX);
                        usage.messages -= 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => vanished = true,
                    Err(e) => return Err(StorageError::io("unlink message", e)),
                }
            }
            inner.apply_all(records.clone());
            if vanished {
                let mut found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                records.append(&mut found);
                let mut again = Vec::new();
                for (uid, path, size) in pick(inner) {
                    if std::fs::remove_file(&path).is_ok() {
                        if let Some(n) = path.file_name().and_then(|n| n.to_str()) {
                            inner.note_own(n);
                        }
                        inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                        let r = Record::Expunge {
                            uid,
                            modseq: inner.hdr.highest_modseq,
                        };
                        again.push(r.clone());
                        records.push(r);
                        gone.push(uid);
                        usage.bytes -= i64::try_from(size).unwrap_or(i64::MAX);
                        usage.messages -= 1;
                    }
                }
                inner.apply_all(again);
            }
            inner.own_cur_change(&cur, pre);
            gone.sort_unstable();
            Ok(((gone, usage), records))
        })
    }

    /// Paths and metadata of `uids` for copying (missing ones are skipped).
    pub(crate) fn sources(&self, uids: &[u32]) -> Result<Vec<Source>> {
        self.locked(|inner, ctx| {
            let mut out = Vec::new();
            let mut sorted = uids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            for uid in sorted {
                let Some(i) = inner.list.position(uid) else {
                    continue;
                };
                let (Some(m), Some(f)) = (inner.list.get(i), inner.files.get(i)) else {
                    continue;
                };
                let keywords = m
                    .flags
                    .keywords
                    .iter()
                    .filter_map(|k| inner.keywords.get(k).cloned())
                    .filter(|k| !k.is_empty())
                    .collect();
                out.push(Source {
                    uid,
                    path: inner.file_path(ctx.dir, f),
                    meta: m.clone(),
                    keywords,
                });
            }
            // The copy keeps the source's INTERNALDATE: read the ones not
            // known yet (a source whose file is gone keeps an unknown date
            // and is not found by the link that follows).
            let dates = par_map(&out, |s| {
                if s.meta.internal_date.is_read() {
                    None
                } else {
                    std::fs::metadata(&s.path).ok().map(|m| m.mtime())
                }
            });
            let mut learned = Vec::new();
            for (s, d) in out.iter_mut().zip(dates) {
                if let Some(d) = d {
                    s.meta.internal_date = InternalDate::at(d);
                    learned.push((s.uid, d));
                }
            }
            inner.set_dates(&learned);
            Ok((out, Vec::new()))
        })
    }

    /// [`MailboxState::locate`] for a caller on a runtime thread: `None` also when another
    /// thread holds the state (a scan can take milliseconds), rather than waiting for it.
    pub(crate) fn try_locate(&self, uid: u32) -> Option<(PathBuf, u64, u64)> {
        let inner = self.inner.try_lock()?;
        let i = inner.list.position(uid)?;
        let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
        Some((inner.file_path(&self.dir, f), m.phys_size, m.virt_size))
    }

    /// Opens the file of `uid` by its bare name, relative to the open directory in `dirs`
    /// (no path built, one component for the kernel to look up); `None` when `uid` is not in
    /// the mailbox, else the open's result (`NotFound` when renamed or expunged by someone else:
    /// the caller rescans and asks again) and the message's physical and virtual sizes.
    pub(crate) fn open_in(
        &self,
        uid: u32,
        dirs: &mut MessageDirs,
    ) -> Option<(io::Result<File>, u64, u64)> {
        let (in_new, phys, virt) = {
            let inner = self.inner.lock();
            let i = inner.list.position(uid)?;
            let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
            dirs.name.clear();
            dirs.name.push_str(&f.name);
            (f.in_new, m.phys_size, m.virt_size)
        };
        Some((dirs.open(&self.dir, in_new), phys, virt))
    }

    /// The file names and sizes of `uids` under one hold of the state, for a run of opens by
    /// [`MessageDirs::open_located`] (`None` for a UID not in the mailbox). A run of opens then
    /// takes the state lock once, instead of once per message, and does not stall behind a
    /// cache write or a rescan on another thread between its opens.
    pub(crate) fn locate_many(&self, uids: &[u32], out: &mut LocatedRun) {
        out.names.clear();
        out.files.clear();
        let inner = self.inner.lock();
        let mut list = inner.list.cursor();
        for &uid in uids {
            let found = list.find(uid).and_then(|(i, m)| {
                let f = inner.files.get(i)?;
                let start = out.names.len();
                out.names.push_str(&f.name);
                Some(LocatedFile {
                    name: start..out.names.len(),
                    in_new: f.in_new,
                    phys_size: m.phys_size,
                })
            });
            out.files.push(found);
        }
    }

    /// Path and sizes of one message from memory (no lock).
    pub(crate) fn locate(&self, uid: u32) -> Option<(PathBuf, u64, u64)> {
        let inner = self.inner.lock();
        let i = inner.list.position(uid)?;
        let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
        Some((inner.file_path(&self.dir, f), m.phys_size, m.virt_size))
    }

    /// INTERNALDATEs of `uids` (those still in the mailbox), reading the
    /// files' mtimes for the ones not known yet (see [`make_entries`]).
    ///
    /// The files are stat-ed without holding the mailbox, by bare name from
    /// the open directories. A file that is not where we thought (renamed or
    /// expunged by someone else) is looked for once more after a rescan,
    /// which records the expunge of one that is gone: its date stays
    /// unknown and it is treated as expunged. Dates read are kept in memory
    /// (never changed once known) and go to disk with the next index write;
    /// until then another process reads the same mtimes.
    pub(crate) fn resolve_dates(&self, uids: &[u32]) -> Result<Vec<(u32, i64)>> {
        let (uidvalidity, mut out, todo) = {
            let inner = self.inner.lock();
            let (out, todo) = inner.dates_or_files(uids.iter().copied());
            (inner.hdr.uidvalidity, out, todo)
        };
        if todo.is_empty() {
            return Ok(out);
        }
        let files: Vec<(&str, bool)> = todo.iter().map(|(_, n, i)| (&**n, *i)).collect();
        let dates = stat_dates(&self.dir, &files)?;
        let mut learned = Vec::with_capacity(todo.len());
        let mut missing = Vec::new();
        for ((uid, ..), d) in todo.iter().zip(dates) {
            match d {
                Some(d) => learned.push((*uid, d)),
                None => missing.push(*uid),
            }
        }
        {
            let mut inner = self.inner.lock();
            if inner.hdr.uidvalidity == uidvalidity {
                inner.set_dates(&learned);
            }
        }
        out.append(&mut learned);
        if !missing.is_empty() {
            // Renamed or expunged by someone else: learn the names, once.
            let mut again = self.locked(|inner, ctx| {
                let found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                let (mut known, todo) = inner.dates_or_files(missing);
                let files: Vec<(&str, bool)> = todo.iter().map(|(_, n, i)| (&**n, *i)).collect();
                let dates = stat_dates(ctx.dir, &files)?;
                let learned: Vec<(u32, i64)> = todo
                    .iter()
                    .zip(dates)
                    .filter_map(|((uid, ..), d)| Some((*uid, d?)))
                    .collect();
                inner.set_dates(&learned);
                known.extend(learned);
                Ok((known, found))
            })?;
            out.append(&mut again);
        }
        Ok(out)
    }

    /// Forces a full rescan (a file we expected was not there).
    pub(crate) fn rescan(&self) -> Result<()> {
        self.locked(|inner, ctx| {
            let found = inner.scan(ctx, true)?;
            inner.apply_all(found.clone());
            Ok(((), found))
        })
    }

    /// Records the first POP3 download time of `uids`.
    pub(crate) fn mark_downloaded(&self, uids: &[u32]) -> Result<()> {
        let now = now_secs();
        self.locked(|inner, _| {
            let mut records = Vec::new();
            for &uid in uids {
                if let Some(i) = inner.list.position(uid)
                    && inner.files.get(i).is_some_and(|f| f.dl == 0)
                {
                    records.push(Record::Pop3 { uid, dl: now });
                }
            }
            inner.apply_all(records.clone());
            Ok(((), records))
        })
    }

    /// UIDs first downloaded at or before `cutoff` (Unix seconds).
    pub(crate) fn downloaded_before(&self, cutoff: i64) -> Result<Vec<u32>> {
        self.locked(|inner, _| {
            let uids = inner
                .list
                .iter()
                .zip(inner.files.iter())
                .filter(|(_, f)| f.dl != 0 && f.dl <= cutoff)
                .map(|(m, _)| m.uid)
                .collect();
            Ok((uids, Vec::new()))
        })
    }

    /// Cached blobs of a prefix of `uids` holding at most `max_bytes` (see `Cache::get_many`).
    pub(crate) fn cache_get(
        &self,
        uids: &[u32],
        field: u8,
        max_bytes: usize,
    ) -> Result<Vec<Option<bytes::Bytes>>> {
        let mut inner = self.inner.lock();
        let uidvalidity = inner.hdr.uidvalidity;
        let (at, present) = inner.present(uids);
        let cache = inner.cache_mut(&self.dir, uidvalidity)?;
        let got = cache.get_many(&present, field, max_bytes);
        Ok(spread(uids.len(), at, got))
    }

    /// [`MailboxState::cache_get`] on the caller's thread, when that cannot block: no other
    /// thread holds the mailbox, its cache is open, and every record asked for is in the page
    /// cache. `None` otherwise: the caller then goes the blocking way. A warm `FETCH 1:*
    /// BODYSTRUCTURE` thus reads its 200 batches without 200 round trips to a blocking thread.
    /// (The cache file may have been replaced by another process's compaction: reads then come
    /// from the file still open, whose records the offsets describe.)
    pub(crate) fn try_cache_get(
        &self,
        uids: &[u32],
        field: u8,
        max_bytes: usize,
    ) -> Option<Vec<Option<bytes::Bytes>>> {
        let inner = self.inner.try_lock()?;
        let cache = inner
            .cache
            .as_ref()
            .filter(|c| c.uidvalidity() == inner.hdr.uidvalidity)?;
        let (at, present) = inner.present(uids);
        let got = cache
            .get_many_with(&present, field, max_bytes, super::content::read_cached)
            .ok()?;
        Some(spread(uids.len(), at, got))
    }

    /// Stores cached blobs (one list per field) for UIDs still present, in one write per field.
    pub(crate) fn cache_put(&self, fields: &[(u8, Vec<(u32, bytes::Bytes)>)]) -> Result<()> {
        self.locked(|inner, ctx| {
            let uidvalidity = inner.hdr.uidvalidity;
            // The fields mostly hold entries of the same messages: look each UID up in the
            // mailbox once, then in this short sorted list.
            let mut live: Vec<u32> = fields
                .iter()
                .flat_map(|(_, entries)| entries.iter().map(|(u, _)| *u))
                .collect();
            live.sort_unstable();
            live.dedup();
            live.retain(|u| inner.list.position(*u).is_some());
            let cache = inner.cache_mut(ctx.dir, uidvalidity)?;
            for (field, entries) in fields {
                let present = entries
                    .iter()
                    .filter(|(uid, _)| live.binary_search(uid).is_ok())
                    .map(|(uid, data)| (*uid, data.as_ref()));
                cache.put_many(*field, present)?;
            }
            Ok(((), Vec::new()))
        })
    }
}

/// `cur/` and `new/` of one mailbox, each opened (`O_PATH`) when first needed, for a run of
/// message opens by [`MailboxState::open_in`]. Held for one run only, so a mailbox renamed
/// meanwhile is found at its new path by the next run.
#[derive(Default)]
pub(crate) struct MessageDirs {
    /// `cur/` (0) and `new/` (1).
    fds: [Option<File>; 2],
    /// The name of the message being opened; reused, so an open allocates nothing.
    name: String,
}

impl MessageDirs {
    /// Opens a message of `run` (located by [`MailboxState::locate_many`] in the mailbox at
    /// `dir`); `NotFound` when it was renamed or expunged since.
    pub(crate) fn open_located(
        &mut self,
        dir: &Path,
        run: &LocatedRun,
        file: &LocatedFile,
    ) -> io::Result<File> {
        self.name.clear();
        self.name
            .push_str(run.names.get(file.name.clone()).unwrap_or_default());
        self.open(dir, file.in_new)
    }

    fn open(&mut self, dir: &Path, in_new: bool) -> io::Result<File> {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::Mode;
        let slot = self
            .fds
            .get_mut(usize::from(in_new))
            .ok_or_else(|| io::Error::other("no directory slot"))?;
        let d = match slot {
            Some(d) => d,
            None => slot.insert(
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(dir.join(if in_new { "new" } else { "cur" }))?,
            ),
        };
        let fd = openat(
            &*d,
            self.name.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(File::from(fd))
    }
}

/// Where the files of a run of UIDs were when [`MailboxState::locate_many`] looked: their
/// names in one buffer (reused from run to run) and, per UID, its place in it and its sizes.
#[derive(Default)]
pub(crate) struct LocatedRun {
    names: String,
    files: Vec<Option<LocatedFile>>,
}

/// One message of a [`LocatedRun`].
#[derive(Clone)]
pub(crate) struct LocatedFile {
    name: std::ops::Range<usize>,
    in_new: bool,
    /// Size of the file.
    pub(crate) phys_size: u64,
}

impl LocatedRun {
    /// The messages located, in the order asked for.
    pub(crate) fn files(&self) -> &[Option<LocatedFile>] {
        &self.files
    }
}

/// FxHash (rotate, xor, multiply) with a final avalanche: file names are
/// not chosen by remote clients, and SipHash dominated building a
/// 100,000-entry map.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn finish(&self) -> u64 {
        // Plain FxHash leaves the low bits weak, and hashbrown picks buckets
        // with them: finish with MurmurHash3's avalanche step.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

type BuildFx = std::hash::BuildHasherDefault<FxHasher>;

enum StoreStep {
    /// Changed (or already so): the new state and the records saying so.
    Done(Updated, Vec<Record>),
    Failed,
    Missing,
    Vanished,
}

/// Generation and header length of a log file.
fn log_generation(path: &Path) -> Option<(u64, usize)> {
    let mut buf = [0u8; 64];
    let f = File::open(path).ok()?;
    let n = f.read_at(&mut buf, 0).ok()?;
    index::parse_log_header(buf.get(..n)?)
}

fn dir_mtime(dir: &Path) -> Option<i64> {
    std::fs::metadata(dir).ok().map(|m| mtime_ns(&m))
}

fn set_mtime(f: &File, date: i64) -> io::Result<()> {
    let t = if date >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(date.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH
    };
    f.set_modified(t)
}

/// Whether a file name is one we are willing to manage.
fn acceptable_name(name: &str) -> bool {
    // Every name of a 100,000-file listing passes here: bytes when ASCII.
    let control = if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    };
    !name.starts_with('.') && !name.is_empty() && name.len() <= 255 && !control
}

fn read_names(dir: &Path) -> Result<DirNames> {
    match list_dir(dir, acceptable_name) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NonExistent),
        Err(e) => Err(StorageError::io("read directory", e)),
    }
}

/// mtimes of `files` (name, in `new/`), `None` for one that is gone or not
/// a plain file.
fn stat_dates(dir: &Path, files: &[(&str, bool)]) -> Result<Vec<Option<i64>>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let dirs = Dirs::open(dir, files)?;
    Ok(par_map(files, |&(name, in_new)| {
        dirs.stat(name, in_new)
            .filter(|st| st.is_file)
            .map(|st| st.mtime)
    }))
}

/// A message whose date is read from its file: UID, file name, whether in `new/`.
type ToStat = (u32, Box<str>, bool);

impl Inner {
    /// For each of `uids` still in the mailbox: its date when known, else the file to stat.
    fn dates_or_files(
        &self,
        uids: impl IntoIterator<Item = u32>,
    ) -> (Vec<(u32, i64)>, Vec<ToStat>) {
        let (mut known, mut todo) = (Vec::new(), Vec::new());
        for uid in uids {
            let Some(i) = self.list.position(uid) else {
                continue;
            };
            let (Some(m), Some(f)) = (self.list.get(i), self.files.get(i)) else {
                continue;
            };
            if let Some(d) = m.internal_date.get() {
                known.push((uid, d));
            } else {
                todo.push((uid, f.name.clone(), f.in_new));
            }
        }
        (known, todo)
    }

    /// Records dates read from the files; a date already known never changes.
    fn set_dates(&mut self, dates: &[(u32, i64)]) {
        let mut changed = false;
        for &(uid, date) in dates {
            if let Some(i) = self.list.position(uid)
                && self.list.get(i).is_some_and(|m| !m.internal_date.is_read())
            {
                self.list
                    .update(i, |m| m.internal_date = InternalDate::at(date));
                changed = true;
            }
        }
        if changed {
            // A new snapshot carries them to views; nothing to tell clients.
            self.version += 1;
        }
    }

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

    /// Indexes in `uids` and UIDs of the messages of `uids` that are in the mailbox.
    fn present(&self, uids: &[u32]) -> (Vec<usize>, Vec<u32>) {
        let mut list = self.list.cursor();
        uids.iter()
            .enumerate()
            .filter(|(_, u)| list.find(**u).is_some())
            .map(|(i, u)| (i, *u))
            .unzip()
    }

    fn cache_mut(&mut self, dir: &Path, uidvalidity: u32) -> Result<&mut Cache> {
        if self
            .cache
            .as_ref()
            .is_none_or(|c| c.uidvalidity() != uidvalidity || c.replaced())
        {
            let mut cache = Cache::open(dir, uidvalidity)?;
            let mut list = self.list.cursor();
            cache.retain(|uid| list.find(uid).is_some());
            self.cache = Some(cache);
        }
        self.cache
            .as_mut()
            .ok_or_else(|| StorageError::Temporary("cache unavailable".into()))
    }

    /// The keywords named `names` (ASCII case-insensitive), as a set of table indexes. With
    /// `create`, names the table lacks are added first: all of them, or none when one is not a
    /// valid keyword or they would not fit ([`MAX_KEYWORDS_PER_MAILBOX`]). New names are on
    /// disk before this returns (`dovecot-keywords` for the 26 file-name letters,
    /// `mailcove-keywords` beyond), so no record can name a keyword that another process
    /// cannot find. Without `create`, unknown names are left out.
    fn intern_keywords(
        &mut self,
        ctx: &Ctx<'_>,
        names: &[String],
        create: bool,
    ) -> Result<KeywordSet> {
        if create {
            let lookup = self.keyword_lookup();
            let mut new: Vec<&str> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            for n in names {
                let lower = n.to_ascii_lowercase();
                if !lookup.contains_key(&lower) && seen.insert(lower) {
                    check_keyword_name(n)?;
                    new.push(n);
                }
            }
            if !new.is_empty() {
                if self.keywords.len() + new.len() > MAX_KEYWORDS_PER_MAILBOX {
                    return Err(StorageError::Invalid(TOO_MANY_KEYWORDS));
                }
                let first_new = self.keywords.len();
                self.keywords.extend(new.into_iter().map(str::to_owned));
                self.keywords_arc = None;
                self.keyword_lookup = None;
                self.version += 1;
                if first_new < MAILDIR_KEYWORD_LETTERS {
                    let path = ctx.dir.join(KEYWORDS_FILE);
                    let text = dovecot::format_keywords(&self.keywords, 0..MAILDIR_KEYWORD_LETTERS);
                    write_atomic(&path, &text, ctx.fsync)?;
                    self.keywords_stamp = stamp_of(&path);
                }
                if self.keywords.len() > MAILDIR_KEYWORD_LETTERS {
                    let path = ctx.dir.join(index::KEYWORDS_FILE);
                    let beyond = MAILDIR_KEYWORD_LETTERS..MAX_KEYWORDS_PER_MAILBOX;
                    let text = dovecot::format_keywords(&self.keywords, beyond);
                    write_atomic(&path, &text, ctx.fsync)?;
                    self.more_keywords_stamp = stamp_of(&path);
                }
            }
        }
        let lookup = self.keyword_lookup();
        Ok(names
            .iter()
            .filter_map(|n| lookup.get(&n.to_ascii_lowercase()).copied())
            .collect())
    }

    /// The `keyword_lookup` map, built if the table changed since.
    fn keyword_lookup(&mut self) -> &HashMap<String, usize> {
        self.keyword_lookup.get_or_insert_with(|| {
            let mut m = HashMap::with_capacity(self.keywords.len());
            for (i, k) in self.keywords.iter().enumerate() {
                if !k.is_empty() {
                    m.entry(k.to_ascii_lowercase()).or_insert(i);
                }
            }
            m
        })
    }

    /// Rereads the keyword table when `dovecot-keywords` or `mailcove-keywords` changed.
    fn reload_keywords(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(KEYWORDS_FILE);
        let more_path = dir.join(index::KEYWORDS_FILE);
        let stamp = stamp_of(&path);
        let more_stamp = stamp_of(&more_path);
        if stamp == self.keywords_stamp && more_stamp == self.more_keywords_stamp {
            return Ok(false);
        }
        let data = read_small(&path, MAX_SMALL_FILE_BYTES)?.unwrap_or_default();
        let mut k = dovecot::parse_keywords(&data, 0..MAILDIR_KEYWORD_LETTERS);
        let more = read_small(&more_path, MAX_KEYWORDS_FILE_BYTES)?.unwrap_or_default();
        let more =
            dovecot::parse_keywords(&more, MAILDIR_KEYWORD_LETTERS..MAX_KEYWORDS_PER_MAILBOX);
        if more.len() > MAILDIR_KEYWORD_LETTERS {
            k.resize(MAILDIR_KEYWORD_LETTERS, String::new());
            k.extend(more.into_iter().skip(MAILDIR_KEYWORD_LETTERS));
        }
        // Never shrink: bits already handed out keep their meaning.
        if k.len() < self.keywords.len() {
            k.resize(self.keywords.len(), String::new());
        }
        for (i, old) in self.keywords.iter().enumerate() {
            if let Some(slot) = k.get_mut(i)
                && slot.is_empty()
            {
                slot.clone_from(old);
            }
        }
        let changed = k != self.keywords;
        self.keywords = k;
        self.keywords_stamp = stamp;
        self.more_keywords_stamp = more_stamp;
        if changed {
            self.keywords_arc = None;
            self.keyword_lookup = None;
            self.reparse_flags();
        }
        Ok(changed)
    }

    /// Recomputes keyword bits from file names after the table grew (the keywords beyond
    /// the letters come from the index and stay).
    fn reparse_flags(&mut self) {
        let n = self.keywords.len();
        for (i, f) in self.files.iter().enumerate() {
            let Some(m) = self.list.get(i) else { continue };
            let flags = name_flags(&f.name, n, &m.flags.keywords);
            if m.flags != flags {
                self.list.update(i, |m| m.flags = flags);
            }
        }
        self.version += 1;
    }

    /// Loads or catches up with the index on disk; the flock is held.
    fn catch_up(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        if !self.loaded || stamp_of(&base_path) != self.base_stamp {
            return self.load(ctx);
        }
        self.reload_keywords(ctx.dir)?;
        self.replay_log(ctx)
    }

    fn replay_log(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let Some(log) = self.log.as_ref() else {
            return Ok(());
        };
        let len = log
            .metadata()
            .map_err(|e| StorageError::io("stat log", e))?
            .len();
        if len <= self.log_offset {
            return Ok(());
        }
        let want = usize::try_from(len - self.log_offset).unwrap_or(usize::MAX);
        if want > MAX_INDEX_BYTES {
            return self.rebuild_from_files(ctx, "index log too large");
        }
        let mut buf = vec![0u8; want];
        log.read_exact_at(&mut buf, self.log_offset)
            .map_err(|e| StorageError::io("read log", e))?;
        let (records, good) = index::parse_log(&buf);
        if good < buf.len() {
            if index::valid_record_after(&buf, good) {
                // Damage in the middle, not a torn end: the records after it
                // (and the UIDs they gave out) cannot be trusted.
                return self.rebuild_from_files(ctx, "index log damaged");
            }
            // A writer died mid-record; we hold the lock, so cut the tail.
            tracing::warn!(dir = %ctx.dir.display(), "cutting torn index log tail");
            log.set_len(self.log_offset + good as u64)
                .map_err(|e| StorageError::io("truncate log", e))?;
        }
        self.log_offset += good as u64;
        self.log_records += records.len();
        self.apply_all(records);
        Ok(())
    }

    /// Starts over from the message files with a new UIDVALIDITY.
    fn rebuild_from_files(&mut self, ctx: &Ctx<'_>, why: &str) -> Result<()> {
        tracing::warn!(dir = %ctx.dir.display(), why, "rebuilding index with a new UIDVALIDITY");
        self.list = MessageList::default();
        self.files.clear();
        self.own_names.clear();
        self.cache = None;
        self.rebuild(ctx)?;
        self.version += 1;
        Ok(())
    }

    fn load(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        let stamp = stamp_of(&base_path);
        let data = match read_small(&base_path, MAX_INDEX_BYTES) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(dir = %ctx.dir.display(), error = %e, "rebuilding index");
                None
            }
        };
        let fresh_load = !self.loaded;
        if fresh_load {
            // Some tools create only cur/ or only new/; we need all three to work.
            let mut b = std::fs::DirBuilder::new();
            b.mode(0o700);
            for sub in ["cur", "new", "tmp"] {
                let _ = b.create(ctx.dir.join(sub));
            }
        }
        let old_uidvalidity = self.hdr.uidvalidity;
        self.list = MessageList::default();
        self.files.clear();
        self.keywords_stamp = None;
        self.more_keywords_stamp = None;
        self.keywords.clear();
        self.keyword_lookup = None;
        self.reload_keywords(ctx.dir)?;
        let n = self.keywords.len();
        let mut metas = Vec::new();
        let mut files = Vec::new();
        let parsed = data.as_deref().map(|d| {
            index::parse_base_with(d, |e| {
                metas.push(MessageMeta {
                    uid: e.uid,
                    flags: filename::flags_of(e.name, n),
                    modseq: e.modseq,
                    phys_size: e.phys,
                    virt_size: e.virt,
                    internal_date: e.date,
                });
                files.push(FileRec {
                    name: e.name.into(),
                    in_new: e.in_new,
                    dl: e.dl,
                });
            })
        });
        match parsed {
            Some(Ok((hdr, beyond))) => {
                for (uid, set) in beyond {
                    if let Ok(i) = metas.binary_search_by_key(&uid, |m| m.uid)
                        && let Some(m) = metas.get_mut(i)
                    {
                        m.flags.keywords.union_with(&beyond_letters(&set));
                    }
                }
                self.hdr = hdr;
                self.base_pending = false;
                self.maybe_in_new = files.iter().any(|f| f.in_new);
                self.files = files;
                self.list = MessageList::from_sorted(metas);
                self.base_stamp = stamp;
                self.open_log(ctx)?;
            }
            Some(Err(e)) => {
                tracing::warn!(dir = %ctx.dir.display(), error = %e, "rebuilding index");
                self.base_stamp = stamp;
                self.rebuild(ctx)?;
            }
            None => {
                self.base_stamp = stamp;
                self.rebuild(ctx)?;
            }
        }
        self.loaded = true;
        self.version += 1;
        if fresh_load {
            clean_tmp(ctx.dir);
        }
        if old_uidvalidity != 0 && old_uidvalidity != self.hdr.uidvalidity {
            self.cache = None;
        }
        Ok(())
    }

    /// Opens the log of our generation and replays it (replacing a missing
    /// or stale one; the base it belongs to is already durable).
    fn open_log(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let path = ctx.dir.join(LOG_FILE);
        let header_len = log_generation(&path)
            .filter(|(g, _)| *g == self.hdr.generation)
            .map(|(_, l)| l);
        let header_len = match header_len {
            Some(l) => l,
            None => {
                let h = index::log_header(self.hdr.generation);
                write_atomic(&path, h.as_bytes(), ctx.fsync)?;
                h.len()
            }
        };
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("open log", e))?;
        self.log = Some(f);
        self.log_offset = header_len as u64;
        self.log_records = 0;
        self.replay_log(ctx)
    }

    /// Builds the index from the directories, adopting `dovecot-uidlist`.
    fn rebuild(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        // Adopt Dovecot's UIDs only on first contact. Once we have kept an
        // index here (even a damaged one), the uidlist is stale: messages
        // we added since would get UIDs it already gave to others under the
        // same UIDVALIDITY. Then a fresh UIDVALIDITY is the honest answer.
        let ours_existed = ctx.dir.join(BASE_FILE).exists() || ctx.dir.join(LOG_FILE).exists();
        let uidlist = if ours_existed {
            None
        } else {
            read_small(&ctx.dir.join(UIDLIST_FILE), MAX_INDEX_BYTES)
                .ok()
                .flatten()
                .and_then(|d| dovecot::parse_uidlist(&d))
        };
        let (uidvalidity, mut uidnext) = match &uidlist {
            Some(l) => (l.uidvalidity, l.next_uid.max(1)),
            None => (alloc_uidvalidity(ctx.root)?, 1),
        };
        let cur_stamp = dir_mtime(&ctx.dir.join("cur")).unwrap_or(0);
        let log_gen = log_generation(&ctx.dir.join(LOG_FILE)).map_or(0, |(g, _)| g);
        let cur_names = read_names(&ctx.dir.join("cur"))?;
        let new_names = read_names(&ctx.dir.join("new"))?;
        let listed =
            (cur_names.iter().map(|n| (n, false))).chain(new_names.iter().map(|n| (n, true)));
        let found = make_found(ctx.dir, listed)?;
        let mut adopted: Vec<(u32, Found<'_>)> = Vec::new();
        let fresh: Vec<Found<'_>> = match &uidlist {
            None => found,
            Some(l) => {
                let mut fresh = Vec::new();
                for f in found {
                    match l.uids.get(filename::base_of(f.name)) {
                        Some(&uid) if uid > 0 => adopted.push((uid, f)),
                        _ => fresh.push(f),
                    }
                }
                // Operators migrating from Dovecot watch for this (docs/migration.md).
                tracing::info!(
                    mailbox = %ctx.dir.display(),
                    uidvalidity = l.uidvalidity,
                    messages = adopted.len(),
                    "adopted dovecot-uidlist"
                );
                fresh
            }
        };
        adopted.sort_by_key(|a| a.0);
        adopted.dedup_by_key(|a| a.0);
        if let Some(last) = adopted.last() {
            uidnext = uidnext.max(last.0.saturating_add(1));
        }
        let first_recent = uidnext;
        let order = sort_found(&fresh);
        let n = self.keywords.len();
        // Message `k` in UID order: the adopted ones, then the fresh ones
        // numbered from `first_recent` in their sorted order.
        let nth = |k: usize| -> Option<(u32, &Found<'_>)> {
            match adopted.get(k) {
                Some((uid, f)) => Some((*uid, f)),
                None => {
                    let j = k - adopted.len();
                    let f = fresh.get(*order.get(j)? as usize)?;
                    let uid = u32::try_from(j).ok()?.checked_add(first_recent)?;
                    Some((uid, f))
                }
            }
        };
        let total = adopted.len() + fresh.len();
        self.files.reserve(total);
        let files = &mut self.files;
        let mut in_new = false;
        // One pass in UID order: each name is copied out of the listing
        // (and its flags parsed) while it is in the cache, and the copies
        // lie in UID order for the index write that follows.
        let metas = (0..total).filter_map(|k| {
            // Two steps ahead: the entry, then (once it is in) its name.
            if let Some(ahead) = k
                .checked_sub(adopted.len())
                .and_then(|j| order.get(j + 2 * PREFETCH_AHEAD))
                .and_then(|&i| fresh.get(i as usize))
            {
                prefetch(ahead);
            }
            if let Some((_, ahead)) = nth(k + PREFETCH_AHEAD) {
                prefetch(ahead.name);
            }
            let (uid, f) = nth(k)?;
            in_new |= f.in_new;
            files.push(FileRec {
                name: f.name.into(),
                in_new: f.in_new,
                dl: 0,
            });
            Some(MessageMeta {
                uid,
                flags: filename::flags_of(f.name, n),
                modseq: 1,
                phys_size: f.phys,
                virt_size: f.virt,
                internal_date: f.date,
            })
        });
        self.list = MessageList::from_sorted(metas);
        self.maybe_in_new |= in_new;
        uidnext = uidnext.max(
            u32::try_from(fresh.len())
                .unwrap_or(u32::MAX)
                .saturating_add(first_recent),
        );
        self.hdr = Header {
            uidvalidity,
            uidnext,
            highest_modseq: 1,
            first_recent,
            generation: self.hdr.generation.max(log_gen).saturating_add(1),
            cur_mtime: cur_stamp,
            cur_uncertain: now_ns().saturating_sub(cur_stamp) < DIR_MTIME_SETTLE_NS,
            // Our first index here, under a UIDVALIDITY nobody has seen:
            // losing it in a crash costs a rebuild under a new one, never a
            // UID reused (docs/design.md, "The first index").
            unsynced: !ours_existed && uidlist.is_none(),
        };
        // Written when the operation that loaded us commits, together with
        // what it changed (the first SELECT's \Recent claim): one base write
        // instead of a base and a log record, each fsynced.
        self.base_pending = true;
        self.log = None;
        Ok(())
    }

    /// Writes a full base of the current generation and starts its empty log.
    ///
    /// The base is fsynced before its rename. A log already there holds
    /// records an older base lacks, so then the new base's name is made
    /// durable before that log is replaced: a crash in between must not
    /// leave the old base with a new, empty log. The new log's header line
    /// is not fsynced (a torn or missing header makes a log stale, and a
    /// stale log is replaced; the first record appended is fdatasynced
    /// together with it). One directory fsync then makes both names durable
    /// before anything that relies on them is acknowledged.
    fn write_index(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        let log_path = ctx.dir.join(LOG_FILE);
        let entries = self
            .list
            .iter()
            .zip(self.files.iter())
            .map(|(m, f)| index::EntryRef {
                uid: m.uid,
                modseq: m.modseq,
                date: m.internal_date,
                phys: m.phys_size,
                virt: m.virt_size,
                dl: f.dl,
                in_new: f.in_new,
                name: &f.name,
            });
        // Keywords no file name can carry (rare: a cheap pass over the bits when there are none).
        let beyond: Vec<(u32, KeywordSet)> = (self.list.iter())
            .map(|m| (m.uid, beyond_letters(&m.flags.keywords)))
            .filter(|(_, set)| !set.is_empty())
            .collect();
        // A brand-new base is synced with the first record logged after it.
        let durable = ctx.fsync && !self.hdr.unsynced;
        replace_file_with(&base_path, durable, |f| {
            index::write_base(f, &self.hdr, entries, &beyond)
        })?;
        self.base_stamp = stamp_of(&base_path);
        let sync_dir = || {
            if durable {
                fsync_dir(ctx.dir).map_err(|e| StorageError::io("fsync mailbox directory", e))
            } else {
                Ok(())
            }
        };
        if std::fs::symlink_metadata(&log_path).is_ok() {
            sync_dir()?;
        }
        let header = index::log_header(self.hdr.generation);
        replace_file(&log_path, header.as_bytes(), false)?;
        sync_dir()?;
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| StorageError::io("open log", e))?;
        self.log = Some(f);
        self.log_offset = header.len() as u64;
        self.log_records = 0;
        self.base_pending = false;
        Ok(())
    }

    /// Applies records to memory: ours right after the file-system change
    /// they describe, others' when replaying the log.
    fn apply_all(&mut self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let n = self.keywords.len();
        let mut removed: HashSet<u32> = HashSet::new();
        for r in records {
            match r {
                Record::Append(e) => {
                    let meta = meta_of(&e, n);
                    if self.list.push(meta) {
                        self.maybe_in_new |= e.in_new;
                        self.files.push(FileRec {
                            name: e.name.into(),
                            in_new: e.in_new,
                            dl: e.dl,
                        });
                    }
                    self.hdr.uidnext = self.hdr.uidnext.max(e.uid.saturating_add(1));
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(e.modseq);
                }
                Record::Rename {
                    uid,
                    modseq,
                    in_new,
                    name,
                } => {
                    if let Some(i) = self.list.position(uid) {
                        self.list.update(i, |m| {
                            m.flags = name_flags(&name, n, &m.flags.keywords);
                            if modseq != 0 {
                                m.modseq = modseq;
                            }
                        });
                        if let Some(f) = self.files.get_mut(i) {
                            self.maybe_in_new |= in_new;
                            f.name = name.into();
                            f.in_new = in_new;
                        }
                    }
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
                Record::Expunge { uid, modseq } => {
                    removed.insert(uid);
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
                Record::Header(h) => {
                    let (generation, unsynced) = (self.hdr.generation, self.hdr.unsynced);
                    self.hdr = Header {
                        generation,
                        unsynced,
                        ..h
                    };
                }
                Record::Pop3 { uid, dl } => {
                    if let Some(i) = self.list.position(uid)
                        && let Some(f) = self.files.get_mut(i)
                    {
                        f.dl = dl;
                    }
                }
                Record::Keywords {
                    uid,
                    modseq,
                    keywords,
                } => {
                    if let Some(i) = self.list.position(uid) {
                        self.list.update(i, |m| {
                            let mut set = m.flags.keywords.split_at(MAILDIR_KEYWORD_LETTERS).0;
                            set.union_with(&beyond_letters(&keywords));
                            m.flags.keywords = set;
                            if modseq != 0 {
                                m.modseq = modseq;
                            }
                        });
                    }
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
            }
        }
        if !removed.is_empty() {
            let keep: Vec<bool> = self
                .list
                .iter()
                .map(|m| !removed.contains(&m.uid))
                .collect();
            let mut it = keep.iter();
            self.files.retain(|_| *it.next().unwrap_or(&true));
            self.list.retain(|m| !removed.contains(&m.uid));
            if let Some(c) = self.cache.as_mut() {
                c.forget(&removed);
            }
        }
        self.version += 1;
    }

    /// Appends records to the log (durably) and compacts when it grew large.
    fn commit(&mut self, ctx: &Ctx<'_>, records: Vec<Record>) -> Result<()> {
        if self.base_pending {
            // Memory already holds the records; the base gets them all.
            return self.write_index(ctx);
        }
        if records.is_empty() {
            return Ok(());
        }
        if self.hdr.unsynced {
            self.sync_base(ctx)?;
        }
        let mut text = String::new();
        for r in &records {
            index::format_record(&mut text, r);
        }
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| StorageError::Temporary("index log not open".into()))?;
        log.write_all(text.as_bytes())
            .map_err(|e| StorageError::io("append index log", e))?;
        if ctx.fsync {
            log.sync_data()
                .map_err(|e| StorageError::io("fsync index log", e))?;
        }
        self.log_offset += text.len() as u64;
        self.log_records += records.len();
        if self.log_records > INDEX_LOG_COMPACT_MIN.max(self.list.len() / 2) {
            self.hdr.generation = self.hdr.generation.saturating_add(1);
            self.write_index(ctx)?;
        }
        Ok(())
    }

    /// Makes a base written without an fsync durable, with its log's name,
    /// before a record that relies on it is appended (by whichever process
    /// appends first; the others find nothing left to write).
    fn sync_base(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        if ctx.fsync {
            File::open(ctx.dir.join(BASE_FILE))
                .and_then(|f| f.sync_all())
                .and_then(|()| fsync_dir(ctx.dir))
                .map_err(|e| StorageError::io("fsync index", e))?;
        }
        self.hdr.unsynced = false;
        Ok(())
    }

    /// After our own change in `cur/`: if nobody else had changed it since
    /// we last knew it, we still know it.
    fn own_cur_change(&mut self, cur: &Path, pre: Option<i64>) {
        if pre.is_some()
            && pre == Some(self.hdr.cur_mtime)
            && let Some(post) = dir_mtime(cur)
        {
            self.hdr.cur_mtime = post;
            self.hdr.cur_uncertain = true;
        }
    }

    /// Remembers a name in `cur/` that we ourselves created or removed, so
    /// its inotify event is not taken for someone else's change.
    fn note_own(&mut self, name: &str) {
        if self.own_names.len() >= OWN_NAMES_MAX {
            // Events for the forgotten names cost one spurious rescan.
            self.own_names.clear();
        }
        *self.own_names.entry(name.into()).or_insert(0) += 1;
    }

    /// Decides from queued inotify events whether `cur/` holds something
    /// we did not do ourselves.
    fn events_say_dirty(&mut self, ctx: &Ctx<'_>) -> bool {
        let events = std::mem::take(&mut *ctx.state.events.lock());
        let cur = ctx.dir.join("cur");
        let mut dirty = false;
        for p in events {
            if p.parent() != Some(cur.as_path()) {
                continue;
            }
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            match self.own_names.get_mut(name) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    self.own_names.remove(name);
                }
                None => dirty = true,
            }
        }
        dirty
    }

    /// Looks at `new/` (always) and `cur/` (when it may have changed) and
    /// returns records for what others did: new files, flag renames, removals.
    ///
    /// The directory listing goes into a map and the index is walked in
    /// UID order against it: one hash probe per message and sequential
    /// access to our own arrays, instead of random lookups into them.
    fn scan(&mut self, ctx: &Ctx<'_>, force_cur: bool) -> Result<Vec<Record>> {
        let cur = ctx.dir.join("cur");
        // A Maildir made by a tool that skipped new/ is still a mailbox.
        let new_names = match read_names(&ctx.dir.join("new")) {
            Err(StorageError::NonExistent) => DirNames::default(),
            other => other?,
        };
        let cur_meta = std::fs::metadata(&cur).map_err(|e| StorageError::io("stat cur", e))?;
        let cur_mtime = mtime_ns(&cur_meta);
        let now = now_ns();
        let events_dirty = self.events_say_dirty(ctx);
        let mut settle_scan =
            self.hdr.cur_uncertain && now.saturating_sub(self.hdr.cur_mtime) >= DIR_MTIME_SETTLE_NS;
        if settle_scan && cur_mtime == self.hdr.cur_mtime {
            // A change hidden in the same mtime tick as our last record
            // would still have produced an inotify event if the watch was
            // already in place then; its absence settles the record
            // without reading 100,000 names.
            let since = ctx.state.watched_since.load(Ordering::SeqCst);
            if since != 0 && since.saturating_add(DIR_MTIME_SETTLE_NS) <= self.hdr.cur_mtime {
                self.hdr.cur_uncertain = false;
                settle_scan = false;
            }
        }
        let mut need_cur = force_cur
            || events_dirty
            || ctx.state.dirty.swap(false, Ordering::Relaxed)
            || cur_mtime != self.hdr.cur_mtime
            || settle_scan;
        if !need_cur && self.maybe_in_new {
            // A file we think is in new/ but is not: someone moved it to cur/.
            let new_set: HashSet<&str> = new_names.iter().collect();
            need_cur = self
                .files
                .iter()
                .any(|f| f.in_new && !new_set.contains(&*f.name));
        }
        if !need_cur && new_names.is_empty() {
            return Ok(Vec::new());
        }
        let cur_names = if need_cur {
            read_names(&cur)?
        } else {
            DirNames::default()
        };
        // base -> (full name, in new/); cur/ wins over new/ for one base.
        let mut listing: HashMap<&str, (&str, bool), BuildFx> = HashMap::with_capacity_and_hasher(
            cur_names.len() + new_names.len(),
            BuildFx::default(),
        );
        for n in new_names.iter() {
            listing.insert(filename::base_of(n), (n, true));
        }
        for n in cur_names.iter() {
            listing.insert(filename::base_of(n), (n, false));
        }
        let kw = self.keywords.len();
        let mut records = Vec::new();
        let mut modseq = self.hdr.highest_modseq;
        for (m, f) in self.list.iter().zip(self.files.iter()) {
            match listing.remove(filename::base_of(&f.name)) {
                Some((name, in_new)) => {
                    if &*f.name == name && f.in_new == in_new {
                        continue;
                    }
                    if !need_cur && in_new && !f.in_new {
                        // Only new/ was listed; this is a second copy of
                        // a base we already have elsewhere.
                        continue;
                    }
                    let flags = name_flags(name, kw, &m.flags.keywords);
                    let ms = if flags != m.flags {
                        modseq = modseq.saturating_add(1);
                        modseq
                    } else {
                        0
                    };
                    records.push(Record::Rename {
                        uid: m.uid,
                        modseq: ms,
                        in_new,
                        name: name.to_owned(),
                    });
                }
                None if need_cur => {
                    // Gone, unless readdir raced with a rename.
                    if self.file_path(ctx.dir, f).exists() {
                        continue;
                    }
                    modseq = modseq.saturating_add(1);
                    records.push(Record::Expunge { uid: m.uid, modseq });
                }
                None => {}
            }
        }
        self.hdr.highest_modseq = modseq;
        if need_cur {
            self.hdr.cur_mtime = cur_mtime;
            self.hdr.cur_uncertain = now.saturating_sub(cur_mtime) < DIR_MTIME_SETTLE_NS;
        }
        // What is left in the listing is new to us.
        let found = make_found(ctx.dir, listing.into_values())?;
        for f in sort_found(&found)
            .into_iter()
            .filter_map(|i| found.get(i as usize))
        {
            let uid = self.hdr.uidnext;
            self.hdr.uidnext = self.hdr.uidnext.saturating_add(1);
            self.hdr.highest_modseq = self.hdr.highest_modseq.saturating_add(1);
            records.push(Record::Append(Entry {
                uid,
                modseq: self.hdr.highest_modseq,
                date: f.date,
                phys: f.phys,
                virt: f.virt,
                dl: 0,
                in_new: f.in_new,
                name: f.name.to_owned(),
            }));
        }
        Ok(records)
    }

    /// Moves files a view has now seen from `new/` to `cur/`, as Dovecot does.
    fn move_new_to_cur(&mut self, ctx: &Ctx<'_>) -> Result<Vec<Record>> {
        if !self.maybe_in_new {
            return Ok(Vec::new());
        }
        let mut pending: Vec<(u32, String, String)> = Vec::new();
        for (m, f) in self.list.iter().zip(self.files.iter()) {
            if f.in_new {
                let new_name = if f.name.contains(":2,") {
                    f.name.to_string()
                } else {
                    format!("{}:2,", filename::base_of(&f.name))
                };
                pending.push((m.uid, f.name.to_string(), new_name));
            }
        }
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let cur = ctx.dir.join("cur");
        let pre = dir_mtime(&cur);
        let mut records = Vec::new();
        for (uid, old, new_name) in pending {
            match std::fs::rename(ctx.dir.join("new").join(&old), cur.join(&new_name)) {
                Ok(()) => {
                    self.note_own(&new_name);
                    records.push(Record::Rename {
                        uid,
                        modseq: 0,
                        in_new: false,
                        name: new_name,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    ctx.state.dirty.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(StorageError::io("move new to cur", e)),
            }
        }
        self.own_cur_change(&cur, pre);
        Ok(records)
    }

    fn store_one(
        &mut self,
        ctx: &Ctx<'_>,
        uid: u32,
        req: &StoreRequest,
        kws: &KeywordSet,
    ) -> Result<StoreStep> {
        let Some(i) = self.list.position(uid) else {
            return Ok(StoreStep::Missing);
        };
        let (Some(m), Some(f)) = (self.list.get(i).cloned(), self.files.get(i).cloned()) else {
            return Ok(StoreStep::Missing);
        };
        if req.unchanged_since.is_some_and(|us| m.modseq > us) {
            return Ok(StoreStep::Failed);
        }
        let new_flags = match req.op {
            StoreOp::Replace => Flags {
                system: req.flags,
                keywords: kws.clone(),
            },
            StoreOp::Add => {
                let mut keywords = m.flags.keywords.clone();
                keywords.union_with(kws);
                Flags {
                    system: m.flags.system.union(req.flags),
                    keywords,
                }
            }
            StoreOp::Remove => {
                let mut keywords = m.flags.keywords.clone();
                keywords.remove_all(kws);
                Flags {
                    system: m.flags.system.minus(req.flags),
                    keywords,
                }
            }
        };
        if new_flags == m.flags {
            return Ok(StoreStep::Done(
                Updated {
                    uid,
                    flags: m.flags,
                    modseq: m.modseq,
                },
                Vec::new(),
            ));
        }
        // The letters go into the file name; keywords beyond them into the index.
        let new_name = filename::with_flags(&f.name, &new_flags, self.keywords.len());
        let renamed = new_name != *f.name;
        if renamed {
            let from = self.file_path(ctx.dir, &f);
            match std::fs::rename(&from, ctx.dir.join("cur").join(&new_name)) {
                Ok(()) => {
                    self.note_own(&f.name);
                    self.note_own(&new_name);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoreStep::Vanished),
                Err(e) => return Err(StorageError::io("rename for flags", e)),
            }
        }
        let beyond = beyond_letters(&new_flags.keywords);
        let beyond_changed = beyond != beyond_letters(&m.flags.keywords);
        self.hdr.highest_modseq = self.hdr.highest_modseq.saturating_add(1);
        let modseq = self.hdr.highest_modseq;
        let mut records = Vec::with_capacity(2);
        if renamed {
            records.push(Record::Rename {
                uid,
                modseq,
                in_new: false,
                name: new_name,
            });
        }
        if beyond_changed || !renamed {
            records.push(Record::Keywords {
                uid,
                modseq,
                keywords: beyond,
            });
        }
        Ok(StoreStep::Done(
            Updated {
                uid,
                flags: new_flags,
                modseq,
            },
            records,
        ))
    }
}

/// What a client is told past [`MAX_KEYWORDS_PER_MAILBOX`] (a unit test keeps the number true).
const TOO_MANY_KEYWORDS: &str = "too many keywords in this mailbox (at most 10000)";

/// The keywords of `set` that a file name cannot carry (index 26 and up): the index keeps them.
fn beyond_letters(set: &KeywordSet) -> KeywordSet {
    set.split_at(MAILDIR_KEYWORD_LETTERS).1
}

/// The flags a file name carries, plus the keywords beyond the letters of `keywords` (which
/// the name cannot carry, so a rename by anyone leaves them as they were).
fn name_flags(name: &str, keyword_count: usize, keywords: &KeywordSet) -> Flags {
    let mut flags = filename::flags_of(name, keyword_count);
    flags.keywords.union_with(&beyond_letters(keywords));
    flags
}

/// Refuses a keyword name that IMAP could not send back as an atom, or that is too long.
fn check_keyword_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_KEYWORD_BYTES
        || name.starts_with('\\')
        || name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "(){%*\"]".contains(c))
    {
        return Err(StorageError::Invalid("bad keyword"));
    }
    Ok(())
}

fn meta_of(e: &Entry, keyword_count: usize) -> MessageMeta {
    MessageMeta {
        uid: e.uid,
        flags: filename::flags_of(&e.name, keyword_count),
        modseq: e.modseq,
        phys_size: e.phys,
        virt_size: e.virt,
        internal_date: e.date,
    }
}

/// How many names ahead [`prefetch`] runs.
const PREFETCH_AHEAD: usize = 8;

/// A message file found on disk, its name borrowed from the listing.
#[derive(Debug, Clone, Copy)]
struct Found<'a> {
    name: &'a str,
    in_new: bool,
    /// The mtime, or [`InternalDate::NOT_READ`].
    date: InternalDate,
    phys: u64,
    virt: u64,
    /// What new files are numbered by (then by name): the mtime when it was
    /// read, else the delivery time the name starts with.
    order: i64,
}

/// The files found on disk (name, in `new/`) with their sizes; files that
/// vanished or are not plain files are left out.
///
/// A file whose name carries both sizes (`,S=` and `,W=`) and starts with
/// its delivery time is not stat-ed: its INTERNALDATE (the mtime) is left
/// unknown and read when a command needs it ([`MailboxState::resolve_dates`]),
/// as Dovecot does, since stat-ing every file dominated the first SELECT of
/// a big Maildir. Other files are stat-ed by bare name relative to an open
/// `cur/` or `new/`, by a few threads at once when there are many.
fn make_found<'a>(
    dir: &Path,
    listed: impl Iterator<Item = (&'a str, bool)>,
) -> Result<Vec<Found<'a>>> {
    let named = |name: &str| -> Option<(u64, u64, i64)> {
        match filename::sizes(name) {
            (Some(s), Some(w)) => Some((s, w, filename::delivery_time(name)?)),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(listed.size_hint().0);
    let mut to_stat: Vec<(&str, bool)> = Vec::new();
    for (name, in_new) in listed {
        match named(name) {
            Some((phys, virt, order)) => out.push(Found {
                name,
                in_new,
                date: InternalDate::NOT_READ,
                phys,
                virt,
                order,
            }),
            None => to_stat.push((name, in_new)),
        }
    }
    if to_stat.is_empty() {
        return Ok(out);
    }
    let dirs = Dirs::open(dir, &to_stat)?;
    let stats = par_map(&to_stat, |&(name, in_new)| dirs.stat(name, in_new));
    for ((name, in_new), st) in to_stat.into_iter().zip(stats) {
        let Some(st) = st.filter(|st| st.is_file) else {
            continue;
        };
        let (s, w) = filename::sizes(name);
        let phys = s.unwrap_or(st.size);
        let virt = match w {
            Some(w) => w,
            None => {
                let sub = if in_new { "new" } else { "cur" };
                match filename::virtual_size_of(&dir.join(sub).join(name)) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
        };
        out.push(Found {
            name,
            in_new,
            date: InternalDate::at(st.mtime),
            phys,
            virt,
            order: st.mtime,
        });
    }
    Ok(out)
}

/// The order in which files new to us get their UIDs (positions in
/// `found`): by [`Found::order`], then by name.
fn sort_found(found: &[Found<'_>]) -> Vec<u32> {
    let mut order: Vec<(i64, u32)> = found
        .iter()
        .zip(0u32..)
        .map(|(f, i)| (f.order, i))
        .collect();
    // Plain pairs sort fastest; then the rare runs of equal times by name.
    order.sort_unstable();
    let name = |i: u32| found.get(i as usize).map(|f| f.name);
    for run in order.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| name(a.1).cmp(&name(b.1)));
        }
    }
    order.into_iter().map(|(_, i)| i).collect()
}

/// Asks the CPU to start loading `s`: the files of a first SELECT are read
/// in UID order, which is not the order the directory listed them in, and
/// waiting for each one's cache misses in turn was a sixth of the time.
#[inline]
fn prefetch<T: ?Sized>(s: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        // Its first and last byte: a value may straddle two cache lines.
        let first = std::ptr::from_ref(s).cast::<i8>();
        let last = first.wrapping_add(std::mem::size_of_val(s).saturating_sub(1));
        // SAFETY: SSE is part of x86_64; a prefetch is a hint that never
        // faults, and both addresses lie inside `s`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(first);
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(last);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = s;
}

/// `cur/` and `new/` opened for stat-ing entries by bare name.
struct Dirs {
    cur: Option<Dir>,
    new: Option<Dir>,
}

impl Dirs {
    /// Opens the directories `files` live in. Failing to open one (out of
    /// descriptors) is an error, not an empty listing: the caller must not
    /// record `cur/` as known.
    fn open(dir: &Path, files: &[(&str, bool)]) -> Result<Dirs> {
        let open = |sub: &str, needed: bool| -> Result<Option<Dir>> {
            if !needed {
                return Ok(None);
            }
            match Dir::open(&dir.join(sub)) {
                Ok(d) => Ok(Some(d)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StorageError::io("open directory", e)),
            }
        };
        Ok(Dirs {
            cur: open("cur", files.iter().any(|f| !f.1))?,
            new: open("new", files.iter().any(|f| f.1))?,
        })
    }

    fn stat(&self, name: &str, in_new: bool) -> Option<FileStat> {
        if in_new {
            self.new.as_ref()
        } else {
            self.cur.as_ref()
        }?
        .stat(name)
    }
}

/// `f` over `items`, in order, by a few threads when there are many (each
/// call is one `fstatat`, and 100,000 of them are the cost that matters).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = stat_threads(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        // A chunk whose thread cannot be started (thread limit reached) is
        // done here instead: the result must stay complete.
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|c| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || c.iter().map(f).collect::<Vec<_>>())
                    .map_err(|_| c)
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for p in parts {
            match p {
                Ok(h) => match h.join() {
                    Ok(mut v) => out.append(&mut v),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(c) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

/// Threads to stat `n` files with.
fn stat_threads(n: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
    (n / STAT_FILES_PER_THREAD).clamp(1, cpus.clamp(1, STAT_THREADS_MAX))
}

/// Removes `tmp/` leftovers older than 36 hours (crashed writers).
fn clean_tmp(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir.join("tmp")) else {
        return;
    };
    let cutoff = now_secs() - TMP_MAX_AGE_SECS;
    for ent in rd.flatten() {
        if let Ok(m) = ent.metadata()
            && m.is_file()
            && tmp_is_stale(m.mtime(), m.ctime(), cutoff)
        {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// A `tmp/` file is a crashed writer's leftover only when both its mtime and
/// its ctime are old: appends set mtime to the INTERNALDATE and copies
/// hard-link files with old mtimes, but both make the ctime fresh.
fn tmp_is_stale(mtime: i64, ctime: i64, cutoff: i64) -> bool {
    mtime.max(ctime) < cutoff
}

/// A new UIDVALIDITY for a mailbox of the user at `root`: the time, but
/// always above the last one handed out, so a mailbox deleted and recreated
/// within a second still gets a new one.
///
/// The counter is durable before the value is used. Once the file exists it
/// is rewritten in place (11 bytes, one sector: one fdatasync, no directory
/// fsync); a write torn anyway reads as no counter, and the clock, which a
/// restart after the crash has moved on, takes over.
pub(crate) fn alloc_uidvalidity(root: &Path) -> Result<u32> {
    let path = root.join("mailcove-uidvalidity");
    let lock = open_lock_file(&root.join("mailcove-uidvalidity.lock"))?;
    flock(&lock, LockMode::Exclusive).map_err(|e| StorageError::io("lock uidvalidity", e))?;
    let _g = FlockGuard(Arc::new(lock));
    let io_err = |e| StorageError::io("uidvalidity counter", e);
    let existing = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    let mut buf = [0u8; 64];
    let n = match &existing {
        Some(f) => f.read_at(&mut buf, 0).map_err(io_err)?,
        None => 0,
    };
    let last: u32 = std::str::from_utf8(buf.get(..n).unwrap_or_default())
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let now = u32::try_from(now_secs()).unwrap_or(u32::MAX);
    let next = now.max(last.saturating_add(1)).max(1);
    // Fixed width, so an in-place rewrite never leaves a longer old tail.
    let text = format!("{next:010}\n");
    match existing {
        Some(f) => {
            f.write_all_at(text.as_bytes(), 0).map_err(io_err)?;
            f.set_len(text.len() as u64).map_err(io_err)?;
            f.sync_data().map_err(io_err)?;
        }
        None => write_atomic(&path, text.as_bytes(), true)?,
    }
    Ok(next)
}

/// The answer for `n` asked UIDs from the answer `got` for the present ones (at indexes `at`):
/// absent UIDs read as `None`, and the prefix answered ends just before the first present UID
/// not looked up.
fn spread(n: usize, at: Vec<usize>, got: Vec<Option<bytes::Bytes>>) -> Vec<Option<bytes::Bytes>> {
    let len = at.get(got.len()).copied().unwrap_or(n);
    let mut out = vec![None; len];
    for (i, blob) in at.into_iter().zip(got) {
        if let Some(o) = out.get_mut(i) {
            *o = blob;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{
        Found, InternalDate, MAX_KEYWORDS_PER_MAILBOX, TOO_MANY_KEYWORDS, sort_found, tmp_is_stale,
    };

    #[test]
    fn the_keyword_limit_message_names_the_limit() {
        let n = MAX_KEYWORDS_PER_MAILBOX.to_string();
        assert!(TOO_MANY_KEYWORDS.ends_with(&format!("(at most {n})")));
    }

    #[test]
    fn new_files_are_numbered_by_time_then_name() {
        let f = |name, order| Found {
            name,
            in_new: false,
            date: InternalDate::NOT_READ,
            phys: 0,
            virt: 0,
            order,
        };
        let found = vec![
            f("b", 2),
            f("z", 1),
            f("a", 2),
            f("c", 0),
            f("a0", 2),
            f("y", 9),
        ];
        let order = sort_found(&found);
        let names: Vec<&str> = order.iter().map(|&i| found[i as usize].name).collect();
        assert_eq!(names, ["c", "z", "a", "a0", "b", "y"]);
    }

    #[test]
    fn tmp_staleness_needs_old_mtime_and_ctime() {
        let cutoff = 1_000_000;
        assert!(tmp_is_stale(10, 20, cutoff));
        assert!(
            !tmp_is_stale(10, cutoff + 5, cutoff),
            "fresh link of an old message"
        );
        assert!(!tmp_is_stale(cutoff + 5, 10, cutoff));
    }
}
