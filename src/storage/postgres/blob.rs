//! Message content: stored once per user and content hash (SHA-256) in chunks of at most
//! [`PG_CHUNK_BYTES`], with a reference count kept in the storing transaction; read back by
//! range, fetching only the chunks that cover it.
//!
//! Content nobody refers to any more is not deleted at once: a session that opened the message
//! before another one expunged it may still be sending it (a FETCH literal whose size is already
//! on the wire), as a Maildir file stays readable after its unlink. Its `released_at` is set, and
//! it is purged [`PG_BLOB_GRACE_SECS`] later by that user's next release ([`purge`]); stored
//! again meanwhile, it is simply referred to again.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, Postgres};
use sqlx::{Row as _, Transaction};

use super::{db, i64_of};
use crate::limits::{
    PG_BLOB_GRACE_SECS, PG_BLOB_PURGE_BATCH, PG_CHUNK_BYTES, PG_CHUNK_CACHE_BYTES,
    PG_CHUNK_CACHE_MIN_MESSAGE,
};
use crate::storage::{MessageContent, Result};

/// The content hash of `data`.
pub(crate) fn hash(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// Takes one more reference to the content `data` of `user_id` (hash `h`), writing its chunks
/// when it is new. Two transactions storing the same new content wait for each other on the
/// `blobs` row: the second only counts its reference.
pub(crate) async fn put(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    h: &[u8],
    data: &[u8],
) -> Result<()> {
    let refs: i64 = sqlx::query(
        "INSERT INTO blobs (user_id, hash, size, refs) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (user_id, hash) DO UPDATE SET refs = blobs.refs + 1, released_at = NULL \
         RETURNING refs",
    )
    .bind(user_id)
    .bind(h)
    .bind(i64_of(data.len() as u64))
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?
    .try_get(0)
    .map_err(db)?;
    if refs > 1 {
        return Ok(());
    }
    // A content released but not purged yet still has its chunks: they are the same bytes.
    for (seq, chunk) in data.chunks(PG_CHUNK_BYTES).enumerate() {
        sqlx::query(
            "INSERT INTO blob_chunks (user_id, hash, seq, data) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(h)
        .bind(i32::try_from(seq).unwrap_or(i32::MAX))
        .bind(chunk)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Adds `n` references to the stored contents `hashes` (a COPY).
pub(crate) async fn add_refs(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    hashes: &[Vec<u8>],
) -> Result<()> {
    sqlx::query(
        "UPDATE blobs b SET refs = b.refs + t.n FROM \
         (SELECT h, count(*) AS n FROM UNNEST($2::BYTEA[]) AS u(h) GROUP BY h) t \
         WHERE b.user_id = $1 AND b.hash = t.h",
    )
    .bind(user_id)
    .bind(hashes)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Drops one reference per entry of `hashes` and removes the contents nobody refers to.
pub(crate) async fn release(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    hashes: &[Vec<u8>],
) -> Result<()> {
    if hashes.is_empty() {
        return Ok(());
    }
    let gone: Vec<Vec<u8>> = sqlx::query(
        "UPDATE blobs b SET refs = b.refs - t.n FROM \
         (SELECT h, count(*) AS n FROM UNNEST($2::BYTEA[]) AS u(h) GROUP BY h) t \
         WHERE b.user_id = $1 AND b.hash = t.h RETURNING b.hash, b.refs",
    )
    .bind(user_id)
    .bind(hashes)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?
    .into_iter()
    .filter_map(|r| {
        let refs: i64 = r.try_get(1).ok()?;
        (refs <= 0)
            .then(|| r.try_get::<Vec<u8>, _>(0).ok())
            .flatten()
    })
    .collect();
    if !gone.is_empty() {
        sqlx::query(
            "UPDATE blobs SET released_at = extract(epoch FROM now())::BIGINT \
             WHERE user_id = $1 AND hash = ANY($2) AND refs <= 0",
        )
        .bind(user_id)
        .bind(&gone)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    purge(tx, user_id).await
}

/// Deletes up to [`PG_BLOB_PURGE_BATCH`] contents of `user_id` released more than
/// [`PG_BLOB_GRACE_SECS`] ago and not referred to since.
pub(crate) async fn purge(tx: &mut Transaction<'static, Postgres>, user_id: i64) -> Result<()> {
    let old: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT hash FROM blobs WHERE user_id = $1 AND refs <= 0 \
         AND released_at <= extract(epoch FROM now())::BIGINT - $2 LIMIT $3",
    )
    .bind(user_id)
    .bind(i64_of(PG_BLOB_GRACE_SECS))
    .bind(i64_of(PG_BLOB_PURGE_BATCH))
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    if old.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM blob_chunks WHERE user_id = $1 AND hash = ANY($2)")
        .bind(user_id)
        .bind(&old)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    sqlx::query("DELETE FROM blobs WHERE user_id = $1 AND hash = ANY($2) AND refs <= 0")
        .bind(user_id)
        .bind(&old)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// Up to `len` bytes of a stored content at `offset` (fewer only at its end).
pub(crate) async fn read(
    pool: &PgPool,
    user_id: i64,
    h: &[u8],
    size: u64,
    offset: u64,
    len: usize,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>> {
    buf.clear();
    let end = offset.saturating_add(len as u64).min(size);
    if offset >= end {
        return Ok(buf);
    }
    let chunk = PG_CHUNK_BYTES as u64;
    let first = offset / chunk;
    let last = (end - 1) / chunk;
    let rows = super::retry::fresh(|| {
        sqlx::query(
            "SELECT seq, data FROM blob_chunks WHERE user_id = $1 AND hash = $2 \
             AND seq BETWEEN $3 AND $4 ORDER BY seq",
        )
        .bind(user_id)
        .bind(h)
        .bind(i32::try_from(first).unwrap_or(i32::MAX))
        .bind(i32::try_from(last).unwrap_or(i32::MAX))
        .fetch_all(pool)
    })
    .await
    .map_err(db)?;
    for r in rows {
        let seq: i32 = r.try_get(0).map_err(db)?;
        let data: Vec<u8> = r.try_get(1).map_err(db)?;
        let start = u64::try_from(seq).unwrap_or(0) * chunk;
        let from = usize::try_from(offset.saturating_sub(start)).unwrap_or(usize::MAX);
        let to = usize::try_from(end - start).unwrap_or(usize::MAX);
        buf.extend_from_slice(data.get(from..to.min(data.len())).unwrap_or_default());
    }
    Ok(buf)
}

/// The 1 MiB chunks of large messages this process streamed out lately, keyed by content hash
/// and chunk number: a second FETCH of the same attachment (another device of the user, a
/// client that fetches the body again after the headers) is sent from memory, as a Maildir
/// file is from the page cache. Content is immutable per hash, so an entry is never stale, on
/// any node and for any user (the same hash is the same bytes). Bounded to
/// [`PG_CHUNK_CACHE_BYTES`], least recently used out first; only reads through
/// [`PgContent::read_at`] of messages over [`PG_CHUNK_CACHE_MIN_MESSAGE`] go in (small
/// messages are one query anyway, and a SEARCH of a whole mailbox would only flush it).
struct ChunkLru {
    lru: lru::LruCache<(Arc<[u8]>, u64), Bytes>,
    bytes: usize,
}

static CHUNKS: std::sync::LazyLock<parking_lot::Mutex<ChunkLru>> = std::sync::LazyLock::new(|| {
    parking_lot::Mutex::new(ChunkLru {
        lru: lru::LruCache::unbounded(),
        bytes: 0,
    })
});

fn cached_chunk(h: &Arc<[u8]>, seq: u64) -> Option<Bytes> {
    CHUNKS.lock().lru.get(&(h.clone(), seq)).cloned()
}

fn keep_chunk(h: &Arc<[u8]>, seq: u64, data: &Bytes) {
    if data.len() > PG_CHUNK_CACHE_BYTES {
        return;
    }
    let mut c = CHUNKS.lock();
    if let Some(old) = c.lru.put((h.clone(), seq), data.clone()) {
        c.bytes -= old.len();
    }
    c.bytes += data.len();
    while c.bytes > PG_CHUNK_CACHE_BYTES {
        let Some((_, out)) = c.lru.pop_lru() else {
            break;
        };
        c.bytes -= out.len();
    }
}

/// One chunk of a stored content, fetched whole (from [`CHUNKS`] when there).
async fn fetch_chunk(
    pool: &PgPool,
    user_id: i64,
    h: &Arc<[u8]>,
    seq: u64,
    size: u64,
) -> Result<Bytes> {
    if let Some(data) = cached_chunk(h, seq) {
        return Ok(data);
    }
    let data: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT data FROM blob_chunks WHERE user_id = $1 AND hash = $2 AND seq = $3",
    )
    .bind(user_id)
    .bind(&h[..])
    .bind(i32::try_from(seq).unwrap_or(i32::MAX))
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let data = data.map(Bytes::from).unwrap_or_default();
    if size >= PG_CHUNK_CACHE_MIN_MESSAGE && !data.is_empty() {
        keep_chunk(h, seq, &data);
    }
    Ok(data)
}

/// One stored message's content as the storage trait hands it out.
///
/// A reader streams a body in pieces much smaller than a chunk
/// ([`crate::limits::MESSAGE_STREAM_CHUNK`]), so the content keeps the chunk it read last and,
/// once a read reaches into a chunk with another after it, fetches that next one in the
/// background while the caller sends what it has: a whole-body FETCH of a 10 MB message costs
/// ten queries, overlapped with the writes, instead of one full-chunk query per piece. At most
/// two chunks ([`PG_CHUNK_BYTES`] each) are held per open content, and only while it is read.
pub(crate) struct PgContent {
    pub pool: PgPool,
    pub user_id: i64,
    pub hash: Arc<[u8]>,
    pub size: u64,
    /// The whole content, when it was read along with the open (the read-ahead of
    /// `PgMailbox::open_message`): ranges are answered from it without the database.
    pub held: Option<Bytes>,
    chunks: tokio::sync::Mutex<ChunkCache>,
}

/// What [`PgContent`] keeps between reads.
#[derive(Default)]
struct ChunkCache {
    /// The chunk read last: its number and bytes.
    last: Option<(u64, Bytes)>,
    /// The next chunk, being fetched.
    ahead: Option<(u64, tokio::task::JoinHandle<Result<Bytes>>)>,
}

impl Drop for ChunkCache {
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}

impl PgContent {
    pub(crate) fn new(pool: PgPool, user_id: i64, hash: Arc<[u8]>, size: u64) -> Self {
        PgContent {
            pool,
            user_id,
            hash,
            size,
            held: None,
            chunks: tokio::sync::Mutex::new(ChunkCache::default()),
        }
    }

    /// The content answered from `data`, its whole bytes read already.
    pub(crate) fn holding(mut self, data: Bytes) -> Self {
        self.held = Some(data);
        self
    }

    /// Chunk `seq`, from the cache, the read-ahead or the database; it becomes the cached one.
    async fn chunk(&self, cache: &mut ChunkCache, seq: u64) -> Result<Bytes> {
        if let Some((n, data)) = &cache.last
            && *n == seq
        {
            return Ok(data.clone());
        }
        let data = match cache.ahead.take() {
            Some((n, task)) if n == seq => match task.await {
                Ok(r) => r?,
                Err(_) => fetch_chunk(&self.pool, self.user_id, &self.hash, seq, self.size).await?,
            },
            Some((_, task)) => {
                task.abort();
                fetch_chunk(&self.pool, self.user_id, &self.hash, seq, self.size).await?
            }
            None => fetch_chunk(&self.pool, self.user_id, &self.hash, seq, self.size).await?,
        };
        cache.last = Some((seq, data.clone()));
        Ok(data)
    }
}

#[async_trait]
impl MessageContent for PgContent {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        self.held.as_ref()?.read_now(offset, buf)
    }

    async fn read_at(&self, offset: u64, len: usize, mut buf: Vec<u8>) -> Result<Vec<u8>> {
        if let Some(held) = &self.held {
            return held.read_at(offset, len, buf).await;
        }
        buf.clear();
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(buf);
        }
        let chunk = PG_CHUNK_BYTES as u64;
        let (first, last) = (offset / chunk, (end - 1) / chunk);
        if last - first > 1 {
            // A read over whole chunks (a large partial FETCH or a read_all): one query.
            return read(
                &self.pool,
                self.user_id,
                &self.hash,
                self.size,
                offset,
                len,
                buf,
            )
            .await;
        }
        let mut cache = self.chunks.lock().await;
        for seq in first..=last {
            let data = self.chunk(&mut cache, seq).await?;
            let start = seq * chunk;
            let from = usize::try_from(offset.saturating_sub(start)).unwrap_or(usize::MAX);
            let to = usize::try_from(end - start).unwrap_or(usize::MAX);
            buf.extend_from_slice(data.get(from..to.min(data.len())).unwrap_or_default());
        }
        // The reader is inside chunk `last`: start on the next one, if there is one.
        let next = last + 1;
        if next * chunk < self.size && cache.ahead.as_ref().is_none_or(|(n, _)| *n != next) {
            if let Some((_, task)) = cache.ahead.take() {
                task.abort();
            }
            let (pool, user_id, h, size) = (
                self.pool.clone(),
                self.user_id,
                self.hash.clone(),
                self.size,
            );
            cache.ahead = Some((
                next,
                tokio::spawn(async move { fetch_chunk(&pool, user_id, &h, next, size).await }),
            ));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_cache_keeps_to_its_budget_least_recently_used_first() {
        let hash = |i: u64| -> Arc<[u8]> { Arc::from(format!("test-chunk-{i}").into_bytes()) };
        let mib = Bytes::from(vec![7u8; 1024 * 1024]);
        let n = (PG_CHUNK_CACHE_BYTES / mib.len()) as u64 + 8;
        for i in 0..n {
            keep_chunk(&hash(i), 0, &mib);
            // The first one stays in use, so it is never the least recently used.
            assert!(cached_chunk(&hash(0), 0).is_some());
        }
        assert!(CHUNKS.lock().bytes <= PG_CHUNK_CACHE_BYTES);
        assert_eq!(cached_chunk(&hash(n - 1), 0).as_deref(), Some(&mib[..]));
        assert!(
            cached_chunk(&hash(1), 0).is_none(),
            "the oldest unused went"
        );
        assert!(
            cached_chunk(&hash(n - 1), 1).is_none(),
            "another chunk number"
        );
    }
}
