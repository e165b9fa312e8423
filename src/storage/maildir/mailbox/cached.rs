//! The cache of parsed MIME data (`mailcove-cache`) as seen through the mailbox: only UIDs
//! still in the mailbox are read or stored.

use std::path::Path;

use crate::storage::maildir::cache::Cache;
use crate::storage::{Result, StorageError};

use super::{Inner, MailboxState};

impl MailboxState {
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
            .get_many_with(
                &present,
                field,
                max_bytes,
                crate::storage::maildir::content::read_cached,
            )
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

impl Inner {
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
