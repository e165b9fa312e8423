//! `mailcove index rebuild`: the index written anew from what the mailbox holds, and the cache
//! of parsed data dropped.
//!
//! Under the mailbox lock (so the daemon and `mailcove deliver` wait), the index is brought up to
//! date as every operation does (base plus log), then `cur/` and `new/` are read in full as if
//! their mtimes had changed: a file added by hand gets the next UID, a file gone is expunged,
//! every other message keeps its UID, flags and modseq. A base of the next generation then
//! replaces `mailcove-index` and an empty log replaces `mailcove-index.log`, which other
//! processes notice by the base's new stamp and reload. `mailcove-cache` only holds data parsed
//! from the messages, made again when asked for: it is removed, and a process that had it open
//! opens a new one when it notices the file replaced (reads it already started finish on the
//! old file, whose records still describe the same immutable messages).
//!
//! An index too damaged to read is already rebuilt from the files by the first operation that
//! loads it (with a new UIDVALIDITY, as no UID can be trusted then); this is the repair for an
//! index that reads fine but may have drifted from the files.

use crate::storage::maildir::cache::CACHE_FILE;
use crate::storage::maildir::fsutil::fsync_dir;
use crate::storage::{Result, StorageError};

use super::MailboxState;

impl MailboxState {
    /// Rescans the files, writes a new index base and log, and removes the cache.
    pub(crate) fn rebuild_index(&self) -> Result<()> {
        self.locked(|inner, ctx| {
            let found = inner.scan(ctx, true)?;
            inner.apply_all(found.clone());
            inner.cache = None;
            match std::fs::remove_file(ctx.dir.join(CACHE_FILE)) {
                Ok(()) => {
                    if ctx.fsync {
                        fsync_dir(ctx.dir)
                            .map_err(|e| StorageError::io("fsync mailbox directory", e))?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io("remove cache", e)),
            }
            // The commit that follows writes the whole base (of a new generation, so a log an
            // older base left behind is never replayed over it) instead of appending records.
            inner.hdr.generation = inner.hdr.generation.saturating_add(1);
            inner.base_pending = true;
            Ok(((), found))
        })
    }
}
