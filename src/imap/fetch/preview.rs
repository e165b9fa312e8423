//! FETCH PREVIEW and PREVIEW (LAZY) (RFC 8970), through the storage cache.
//!
//! A preview is made once per message (`crate::mime::preview` has the algorithm) and kept as a
//! [`CacheField::PREVIEW`] entry: [`VERSION`], the message's virtual size (u64, little endian),
//! then the UTF-8 text. An entry of another version or size (stale, or the algorithm changed) or
//! one that is not a valid preview is ignored and the preview made again.
//!
//! The entries of the messages one FETCH writes together are looked up in one cache read
//! ([`cached`]). `PREVIEW` makes the missing ones from the MIME structure FETCH already loads
//! and at most [`crate::limits::PREVIEW_MAX_PARTS`] windows of
//! [`crate::limits::PREVIEW_PART_BYTES`] of the message ([`compute`]), and the new entries go
//! back to the cache in one write ([`store`]). `PREVIEW (LAZY)` never reads a message: a preview
//! not in the cache is NIL (RFC 8970 4.1), and a later `PREVIEW` without LAZY fills the cache.

use bytes::Bytes;

use crate::limits::{FETCH_STRUCTURE_LOOKUP_BYTES, PREVIEW_RFC_MAX_CHARS};
use crate::mime::{MessageInfo, part_preview, preview_sources};
use crate::storage::{CacheField, Message, MessageMeta, StorageError, View};

/// Version of the cache entries; bump it whenever the preview algorithm changes what it makes,
/// so previews of the old algorithm are made again.
pub const VERSION: u8 = 1;
/// Version byte and virtual size in front of the text.
const PREFIX: usize = 9;

/// A cache entry for a preview of a message of `virt_size` bytes.
pub fn entry(virt_size: u64, text: &str) -> Bytes {
    let mut e = Vec::with_capacity(PREFIX + text.len());
    e.push(VERSION);
    e.extend_from_slice(&virt_size.to_le_bytes());
    e.extend_from_slice(text.as_bytes());
    Bytes::from(e)
}

/// The text of a cache entry of a message of `virt_size` bytes; `None` for an entry of another
/// version or size, or whose text is not UTF-8 or longer than RFC 8970 allows.
pub fn text_of(entry: &[u8], virt_size: u64) -> Option<String> {
    let (head, text) = entry.split_at_checked(PREFIX)?;
    let (version, size) = head.split_first()?;
    let size = u64::from_le_bytes(size.try_into().ok()?);
    if *version != VERSION
        || size != virt_size
        || text.len() > PREVIEW_RFC_MAX_CHARS * 4
        || text.contains(&0)
    {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    (text.chars().count() <= PREVIEW_RFC_MAX_CHARS).then(|| text.to_owned())
}

/// The cached previews of `metas` (same order), `None` where there is none usable. Asked in
/// pieces of at most [`FETCH_STRUCTURE_LOOKUP_BYTES`]; the cache only saves work, so when it
/// cannot be read the previews count as missing.
pub async fn cached(view: &View, metas: &[(u32, MessageMeta)]) -> Vec<Option<String>> {
    let uids: Vec<u32> = metas.iter().map(|(_, m)| m.uid).collect();
    let mut out: Vec<Option<String>> = Vec::with_capacity(uids.len());
    while let Some(rest) = uids.get(out.len()..).filter(|r| !r.is_empty()) {
        match view
            .cache_get_prefix(rest, CacheField::PREVIEW, FETCH_STRUCTURE_LOOKUP_BYTES)
            .await
        {
            Ok(blobs) if !blobs.is_empty() && blobs.len() <= rest.len() => {
                for blob in blobs {
                    let virt_size = metas.get(out.len()).map(|(_, m)| m.virt_size);
                    out.push(blob.zip(virt_size).and_then(|(b, size)| text_of(&b, size)));
                }
            }
            Ok(blobs) => {
                tracing::warn!(
                    asked = rest.len(),
                    got = blobs.len(),
                    "preview cache answered a different number of entries"
                );
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the preview cache failed; making previews");
                break;
            }
        }
    }
    out.resize(uids.len(), None);
    out
}

/// Stores new previews in one cache write. A failure is logged, not reported: the previews
/// are made again next time.
pub async fn store(view: &View, fresh: Vec<(u32, Bytes)>) {
    if !fresh.is_empty()
        && let Err(e) = view.cache_put(CacheField::PREVIEW, fresh).await
    {
        tracing::warn!(error = %e, "storing previews in the cache failed");
    }
}

/// Makes the preview of an open message from its structure, reading only the windows
/// `preview_sources` names.
pub async fn compute(msg: &Message, info: &MessageInfo) -> Result<String, StorageError> {
    for src in preview_sources(info) {
        let Some(part) = info.part(src.part) else {
            continue;
        };
        if src.window.end > msg.phys_size {
            return Err(StorageError::Corrupt(format!(
                "cached structure of UID {} points past the end of the message",
                msg.uid
            )));
        }
        let len = usize::try_from(src.window.len())
            .map_err(|_| StorageError::Corrupt("preview window too large".into()))?;
        let bytes = msg.read(src.window.start, len).await?;
        let text = part_preview(&part.content, &bytes, src.cut);
        if !text.is_empty() {
            return Ok(text);
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_stale_ones_are_refused() {
        let e = entry(1234, "Grüße");
        assert_eq!(text_of(&e, 1234).as_deref(), Some("Grüße"));
        assert_eq!(text_of(&entry(1234, ""), 1234).as_deref(), Some(""));
        // Another message size: the message is not the one the entry was made for.
        assert_eq!(text_of(&e, 1235), None);
        // Another version.
        let mut old = e.to_vec();
        old[0] = VERSION.wrapping_add(1);
        assert_eq!(text_of(&old, 1234), None);
        // Truncated, not UTF-8, too long.
        assert_eq!(text_of(&e[..5], 1234), None);
        let mut bad = entry(1, "").to_vec();
        bad.push(0xff);
        assert_eq!(text_of(&bad, 1), None);
        let long = "x".repeat(PREVIEW_RFC_MAX_CHARS + 1);
        assert_eq!(text_of(&entry(1, &long), 1), None);
        let max = "é".repeat(PREVIEW_RFC_MAX_CHARS);
        assert_eq!(text_of(&entry(1, &max), 1), Some(max));
    }
}
