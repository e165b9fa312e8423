//! The parsed MIME structure of messages, through the storage cache.
//!
//! One blob (`MessageInfo::to_cache_bytes`) under [`CacheField::BODYSTRUCTURE`] serves ENVELOPE,
//! BODY, BODYSTRUCTURE and section offsets. A batch asks the cache once for all its UIDs, so a
//! warm mailbox answers `FETCH 1:* ENVELOPE` without MIME parsing; a miss reads the message (up
//! to the configured maximum message size) and parses it on a blocking thread, and the new blobs
//! go back to the cache in one write per batch.

use std::io::Read;

use bytes::Bytes;

use crate::limits::FETCH_PARSE_WORKERS;
use crate::mime::MessageInfo;
use crate::storage::{CacheField, StorageError, View};

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

/// Opens and parses the messages `uids` (in the same order): the files are opened in one storage
/// call, then read and parsed on [`FETCH_PARSE_WORKERS`] blocking threads, each holding one
/// message (at most `max` bytes) in memory at a time. A batch of cache misses thus costs a few
/// thread hand-offs instead of several per message.
pub async fn parse_batch(
    view: &View,
    uids: &[u32],
    max: u64,
) -> Result<Vec<Result<MessageInfo, ParseError>>, StorageError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let files = view.open_messages(uids).await?;
    if files.len() != uids.len() {
        return Err(StorageError::Temporary(
            "storage opened a different number of files than asked".into(),
        ));
    }
    let mut jobs: Vec<Result<(std::fs::File, u64), ParseError>> = Vec::with_capacity(files.len());
    for f in files {
        jobs.push(match f {
            Ok(m) => {
                let size = m.phys_size;
                Ok((m.file.into_std().await, size))
            }
            Err(e) => Err(ParseError::Storage(e)),
        });
    }
    let per_worker = jobs.len().div_ceil(FETCH_PARSE_WORKERS.max(1));
    let mut handles = Vec::with_capacity(FETCH_PARSE_WORKERS);
    let mut jobs = jobs.into_iter();
    loop {
        let chunk: Vec<_> = jobs.by_ref().take(per_worker).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        let h = tokio::task::spawn_blocking(move || {
            let mut raw = Vec::new();
            chunk
                .into_iter()
                .map(|job| {
                    let (file, size) = job?;
                    read_and_parse(file, size, max, &mut raw)
                })
                .collect::<Vec<_>>()
        });
        handles.push((h, n));
    }
    let mut out = Vec::with_capacity(uids.len());
    for (h, n) in handles {
        match h.await {
            Ok(v) => out.extend(v),
            Err(e) => out.extend((0..n).map(|_| {
                Err(ParseError::Storage(StorageError::Temporary(format!(
                    "message parser task failed: {e}"
                ))))
            })),
        }
    }
    Ok(out)
}

/// Reads one message (at most `max` bytes; `raw` is a reused buffer) and parses it.
fn read_and_parse(
    file: std::fs::File,
    size: u64,
    max: u64,
    raw: &mut Vec<u8>,
) -> Result<MessageInfo, ParseError> {
    if size > max {
        return Err(ParseError::TooLarge);
    }
    raw.clear();
    raw.reserve(usize::try_from(size).unwrap_or(0));
    // One byte beyond the limit tells a file that grew past it from one that fits exactly.
    file.take(max.saturating_add(1))
        .read_to_end(raw)
        .map_err(|e| ParseError::Storage(StorageError::io("read message", e)))?;
    if raw.len() as u64 > max {
        return Err(ParseError::TooLarge);
    }
    Ok(MessageInfo::parse(raw))
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
