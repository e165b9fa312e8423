//! Locking: every operation on a mailbox runs inside [`MailboxState::locked`].
//!
//! Each operation takes the in-process mutex, then an exclusive `flock` on
//! `mailcove-index.lock` (so `mailcove deliver` and the daemon serialise),
//! then catches up with what other processes logged, then works. The flock
//! is released on process death, so a SIGKILLed writer never leaves a stale
//! lock behind (a dotlock would).

use std::fs::File;
use std::sync::Arc;

use crate::storage::maildir::fsutil::{LockMode, flock, funlock, open_lock_file};
use crate::storage::maildir::index::{LOCK_FILE, Record};
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

    /// Runs `f` under the in-process mutex and the cross-process flock, after
    /// catching up with the disk. Records `f` returns are applied and logged.
    pub(super) fn locked<R>(
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
}
