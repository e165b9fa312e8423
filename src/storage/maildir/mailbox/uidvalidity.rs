//! UIDVALIDITY allocation, one counter per user.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::storage::maildir::fsutil::{LockMode, flock, now_secs, open_lock_file, write_atomic};
use crate::storage::{Result, StorageError};

use super::lock::FlockGuard;

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
