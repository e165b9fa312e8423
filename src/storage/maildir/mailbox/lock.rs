//! Locking: every operation on a mailbox runs inside [`MailboxState::locked`].
//!
//! Each operation takes the in-process mutex, then an exclusive `flock` on
//! `mailcove-index.lock` (so `mailcove deliver` and the daemon serialise),
//! then catches up with what other processes logged, then works. The flock
//! is released on process death, so a SIGKILLed writer never leaves a stale
//! lock behind (a dotlock would).
//!
//! Group commit: the work's changes (renames and unlinks in `cur/`, index-log records) are
//! made under both locks but not fsynced there. After releasing them, the operation waits for a
//! round of [`GroupCommit`](crate::storage::maildir::group_commit::GroupCommit) that started
//! after its changes: one fsync of `cur/` and one fdatasync of the log acknowledge every writer
//! of the mailbox that was waiting, while the next writers already work under the lock. An
//! operation that only read, but saw changes not yet durable, waits for the same round, so no
//! client is shown what a crash could take back. A message file itself is fsynced before its
//! rename into `cur/`, as before.

use std::fs::File;
use std::io;
use std::sync::Arc;

use crate::storage::maildir::fsutil::{LockMode, flock, fsync_dir, funlock, open_lock_file};
use crate::storage::maildir::index::{LOCK_FILE, LOG_FILE, Record};
use crate::storage::{Result, StorageError};

use super::{Ctx, Inner, MailboxState};

pub(super) struct FlockGuard(pub(super) Arc<File>);
impl Drop for FlockGuard {
    fn drop(&mut self) {
        funlock(&self.0);
    }
}

impl MailboxState {
    fn lock_file(&self) -> Result<Arc<File>> {
        let mut slot = self.lock.lock();
        if let Some(f) = slot.as_ref() {
            return Ok(f.clone());
        }
        let f = Arc::new(open_lock_file(&self.dir.join(LOCK_FILE))?);
        *slot = Some(f.clone());
        Ok(f)
    }

    /// One group-commit round: `cur/` (renames and unlinks into and out of it) and the index log
    /// (the current one: a log replaced by compaction was folded into a base that was fsynced
    /// with its directory before the replacement).
    fn sync_round(&self) -> io::Result<()> {
        fsync_dir(&self.dir.join("cur"))?;
        File::open(self.dir.join(LOG_FILE))?.sync_data()
    }

    /// Runs `f` under the in-process mutex and the cross-process flock, after
    /// catching up with the disk. Records `f` returns are applied and logged, and durable
    /// (with every file-system change `f` made in `cur/`) when this returns.
    pub(super) fn locked<R>(
        &self,
        f: impl FnOnce(&mut Inner, &Ctx<'_>) -> Result<(R, Vec<Record>)>,
    ) -> Result<R> {
        let mut inner = self.inner.lock();
        if self.group.take_failed() {
            // A shared fsync failed: memory may hold changes the disk does not.
            inner.loaded = false;
        }
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
        let wrote = match inner.commit(&ctx, records) {
            Ok(wrote) => wrote,
            Err(e) => {
                inner.loaded = false;
                return Err(e);
            }
        };
        // What to wait for before answering: our own changes, or (having only read) the
        // changes of others we saw that are not durable yet.
        let durable_at = match (ctx.fsync, wrote) {
            (false, _) => None,
            (true, true) => Some(self.group.note_write()),
            (true, false) => self.group.written(),
        };
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
        if let Some(seq) = durable_at {
            self.group
                .wait(seq, || self.sync_round())
                .map_err(|e| StorageError::io("fsync mailbox", e))?;
        }
        Ok(r)
    }
}
