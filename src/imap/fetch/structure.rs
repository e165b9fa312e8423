//! The parsed MIME structure of messages, through the storage cache.
//!
//! One blob (`MessageInfo::to_cache_bytes`) under [`CacheField::BODYSTRUCTURE`] serves ENVELOPE,
//! BODY, BODYSTRUCTURE and section offsets. A batch asks the cache once for all its UIDs, so a
//! warm mailbox answers `FETCH 1:* ENVELOPE` without MIME parsing; a miss reads the message (up
//! to the configured maximum message size) and parses it on a blocking thread, and the new blobs
//! go back to the cache in one write per batch.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::mime::MessageInfo;
use crate::storage::{CacheField, MessageFile, StorageError, View};

/// Cached blobs of `uids` (in the same order), `None` where absent or unreadable. The cache only
/// saves work: when it cannot be read, every message is parsed instead of failing the FETCH.
pub async fn cached_blobs(view: &View, uids: &[u32]) -> Vec<Option<Bytes>> {
    let none = || vec![None; uids.len()];
    if uids.is_empty() {
        return Vec::new();
    }
    match view.cache_get(uids, CacheField::BODYSTRUCTURE).await {
        // A backend answering out of step would attach structures to the wrong messages.
        Ok(blobs) if blobs.len() == uids.len() => blobs,
        Ok(blobs) => {
            tracing::warn!(
                asked = uids.len(),
                got = blobs.len(),
                "structure cache answered a different number of entries"
            );
            none()
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the structure cache failed; parsing instead");
            none()
        }
    }
}

/// Decodes a cached blob, refusing one that does not describe a message of `virt_size` client
/// bytes (a stale or foreign entry): the caller then parses the message again.
pub fn decode(blob: &[u8], virt_size: u64) -> Option<MessageInfo> {
    MessageInfo::from_cache_bytes(blob).filter(|i| i.virtual_size() == virt_size)
}

/// Why a structure could not be had.
#[derive(Debug)]
pub enum ParseError {
    /// The message is larger than we are willing to hold in memory to parse.
    TooLarge,
    /// Reading the file failed.
    Storage(StorageError),
}

/// Reads the whole message (at most `max` bytes) and parses it on a blocking thread. Leaves the
/// file position anywhere; readers seek before use.
pub async fn parse(file: &mut MessageFile, max: u64) -> Result<MessageInfo, ParseError> {
    if file.phys_size > max {
        return Err(ParseError::TooLarge);
    }
    file.file
        .seek(std::io::SeekFrom::Start(0))
        .await
        .map_err(|e| ParseError::Storage(StorageError::io("seek message", e)))?;
    let cap = usize::try_from(file.phys_size).unwrap_or(0);
    let mut raw = Vec::with_capacity(cap);
    // One byte beyond the limit tells a file that grew past it from one that fits exactly.
    (&mut file.file)
        .take(max.saturating_add(1))
        .read_to_end(&mut raw)
        .await
        .map_err(|e| ParseError::Storage(StorageError::io("read message", e)))?;
    if raw.len() as u64 > max {
        return Err(ParseError::TooLarge);
    }
    tokio::task::spawn_blocking(move || MessageInfo::parse(&raw))
        .await
        .map_err(|e| {
            ParseError::Storage(StorageError::Temporary(format!(
                "message parser task failed: {e}"
            )))
        })
}

/// Stores freshly parsed structures; a failure only costs a re-parse later, so it is logged and
/// otherwise ignored.
pub async fn store_blobs(view: &View, entries: Vec<(u32, Bytes)>) {
    if entries.is_empty() {
        return;
    }
    if let Err(e) = view.cache_put(CacheField::BODYSTRUCTURE, entries).await {
        tracing::warn!(error = %e, "storing message structures in the cache failed");
    }
}
