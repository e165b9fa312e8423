//! Writing `BINARY[section]<partial>` and `BINARY.SIZE[section]` (RFC 3516, RFC 9051 6.4.5).
//!
//! The section's segments come from [`MessageInfo::binary_segments`]; their stored bytes are read
//! in chunks of [`MESSAGE_STREAM_CHUNK`] and decoded ([`Decoder`]) chunk by chunk, so memory per
//! item is one read chunk and its decoded output however large the part is.
//!
//! The literal's length must be on the wire before its data, and the decoded size is only known
//! after decoding, so BINARY decodes twice: a measuring pass (size, and whether the data holds
//! NUL, which decides `~{n}` literal8 against `{n}`, RFC 3516 4.3) and the sending pass. The
//! measuring pass also finds invalid encoded data before anything is sent, so a bad part fails
//! the command cleanly (`NO [PARSE]`, Dovecot's answer) instead of breaking the connection.
//! BINARY.SIZE is the measuring pass alone.
//!
//! A measured size is remembered per message and section in the opaque cache field
//! [`BINARY_SIZE_CACHE`] (both backends keep such fields), so a repeated BINARY.SIZE costs a
//! cache lookup instead of decoding the part again (RFC 3516 4.2 warns clients that it may be
//! expensive; Dovecot caches its `binary.parts` sizes the same way), and a BINARY after it skips
//! the measuring pass. Messages never change, so an entry never goes stale; the entry starts with
//! a format version, so a later change to the decoders can disown old entries.
//!
//! The decoded bytes of recently fetched sections are kept too, in memory shared by every session
//! of the process ([`decoded`]): a client that fetches the same attachment again, or in windows
//! with `<origin.count>`, gets it without decoding. An entry is at most
//! [`MAX_BINARY_DECODED_ENTRY_BYTES`] and all of them (plus those being collected) at most
//! [`MAX_BINARY_DECODED_CACHE_BYTES`]; a section over the limit, or one decoded while the budget
//! is spent, is streamed as before. Dovecot keeps the last decoded part the same way.
//!
//! `~{n}` is used when the whole decoded section holds a NUL, also for a partial fetch whose
//! window has none: literal8 is always valid for BINARY, and the answer does not then depend on
//! the window. Dovecot sends literal8 for every base64 or quoted-printable part whether or not it
//! holds NUL (it does not scan); RFC 3516 says a string SHOULD be used when there is none, and we
//! scan anyway to measure, so we follow the RFC.

use super::plan::BinaryItem;
use crate::imap::proto::encode::FetchResponse;
use crate::imap::proto::types::FetchAttr;
use crate::imap::response::ImapError;
use crate::limits::{
    BINARY_SIZE_CACHE_SECTIONS, MAX_BINARY_DECODED_CACHE_BYTES, MAX_BINARY_DECODED_ENTRY_BYTES,
};
use crate::limits::{MAX_HEADER_BYTES, MESSAGE_STREAM_CHUNK};
use crate::mime::decode::{DecodeError, Decoder};
use crate::mime::{BinarySegment, MessageInfo, binary_header, partial_window};
use crate::server::conn::Conn;
use crate::storage::{CacheField, Message, StorageError, View};

/// Cache field of the decoded sizes of a message's BINARY sections (see the module docs). 21:
/// the preview branch takes 20 for PREVIEW.
pub const BINARY_SIZE_CACHE: CacheField = CacheField(21);

/// Version byte at the start of a [`BINARY_SIZE_CACHE`] entry.
const CACHE_VERSION: u8 = 1;

/// Why a BINARY item could not be written.
#[derive(Debug)]
pub enum BinaryError {
    /// Nothing of this item was written; the command can fail with this answer.
    Before(ImapError),
    /// The literal was announced, so the connection must be closed.
    Broken(String),
}

/// Why decoding a section stopped.
#[derive(Debug)]
enum Fail {
    Decode(DecodeError),
    Storage(StorageError),
}

impl From<Fail> for ImapError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Decode(e) => {
                tracing::info!(error = %e, "FETCH BINARY of a part with invalid encoded data");
                ImapError::InvalidContent
            }
            Fail::Storage(e) => e.into(),
        }
    }
}

/// The decoded bytes of a section, chunk by chunk, cut to a window of decoded offsets.
struct Decoded<'m> {
    msg: &'m Message,
    segments: Vec<BinarySegment>,
    next_segment: usize,
    /// The data segment being decoded: decoder, next stored offset, end offset.
    current: Option<(Decoder, u64, u64)>,
    /// Decoded offset of the next decoded byte.
    vpos: u64,
    /// Window `[start, end)` in decoded offsets.
    start: u64,
    end: u64,
    buf: Vec<u8>,
}

impl<'m> Decoded<'m> {
    fn new(msg: &'m Message, segments: Vec<BinarySegment>, window: (u64, u64)) -> Self {
        Decoded {
            msg,
            segments,
            next_segment: 0,
            current: None,
            vpos: 0,
            start: window.0,
            end: window.0.saturating_add(window.1),
            buf: Vec::new(),
        }
    }

    /// Appends the window's part of `data` (the next decoded bytes) to `out`.
    fn emit(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let len = data.len() as u64;
        let from = self.start.saturating_sub(self.vpos).min(len);
        let to = self.end.saturating_sub(self.vpos).min(len);
        if from < to {
            let (Ok(a), Ok(b)) = (usize::try_from(from), usize::try_from(to)) else {
                return;
            };
            out.extend_from_slice(data.get(a..b).unwrap_or_default());
        }
        self.vpos = self.vpos.saturating_add(len);
    }

    /// Appends the next decoded bytes inside the window to `out` (possibly none); `Ok(false)`
    /// once the window or the section is complete.
    async fn next(&mut self, out: &mut Vec<u8>) -> Result<bool, Fail> {
        if self.vpos >= self.end {
            return Ok(false);
        }
        let Some((decoder, pos, end)) = self.current.as_mut() else {
            let Some(segment) = self.segments.get(self.next_segment).copied() else {
                return Ok(false);
            };
            self.next_segment += 1;
            match segment {
                BinarySegment::Header(range) => {
                    let len = usize::try_from(range.len())
                        .ok()
                        .filter(|&l| l <= MAX_HEADER_BYTES)
                        .ok_or(Fail::Decode(DecodeError::Invalid("header")))?;
                    let raw = self
                        .msg
                        .read(range.start, len)
                        .await
                        .map_err(Fail::Storage)?;
                    if raw.len() != len {
                        return Err(Fail::Storage(short_message(self.msg)));
                    }
                    let header = binary_header(&raw);
                    self.emit(&header, out);
                }
                BinarySegment::Data(range, cte) => {
                    self.current = Some((Decoder::new(cte), range.start, range.end));
                }
            }
            return Ok(true);
        };
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if *pos >= *end {
            decoder.finish(&mut buf).map_err(Fail::Decode)?;
            self.current = None;
        } else {
            let want = usize::try_from(*end - *pos)
                .unwrap_or(usize::MAX)
                .min(MESSAGE_STREAM_CHUNK);
            let data = self.msg.read(*pos, want).await.map_err(Fail::Storage)?;
            if data.is_empty() {
                return Err(Fail::Storage(short_message(self.msg)));
            }
            *pos += data.len() as u64;
            decoder.feed(&data, &mut buf).map_err(Fail::Decode)?;
        }
        self.emit(&buf, out);
        self.buf = buf;
        Ok(true)
    }
}

fn short_message(msg: &Message) -> StorageError {
    StorageError::Corrupt(format!(
        "UID {}: message is shorter than its cached structure",
        msg.uid
    ))
}

/// Decoded size of a section and whether it holds NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Measured {
    size: u64,
    nul: bool,
}

async fn measure(msg: &Message, segments: Vec<BinarySegment>) -> Result<Measured, Fail> {
    let mut d = Decoded::new(msg, segments, (0, u64::MAX));
    let mut out = Vec::new();
    let mut m = Measured {
        size: 0,
        nul: false,
    };
    loop {
        out.clear();
        let more = d.next(&mut out).await?;
        m.size += out.len() as u64;
        m.nul |= memchr::memchr(0, &out).is_some();
        if !more {
            return Ok(m);
        }
    }
}

/// One remembered section: its part path and what measuring it found.
type CachedSize = (Vec<u32>, Measured);

/// Reads a [`BINARY_SIZE_CACHE`] entry: version, then per section the number of part numbers,
/// the numbers (u32 LE), the size (u64 LE) and a NUL flag. Anything malformed reads as empty.
fn decode_sizes(blob: &[u8]) -> Vec<CachedSize> {
    let mut out = Vec::new();
    let Some((&CACHE_VERSION, mut rest)) = blob.split_first() else {
        return out;
    };
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n);
        let Some(nums) = tail.get(..4 * n) else {
            return Vec::new();
        };
        let path = nums
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let Some(fixed) = tail.get(4 * n..4 * n + 9) else {
            return Vec::new();
        };
        let mut size = [0u8; 8];
        size.copy_from_slice(&fixed[..8]);
        out.push((
            path,
            Measured {
                size: u64::from_le_bytes(size),
                nul: fixed[8] != 0,
            },
        ));
        rest = tail.get(4 * n + 9..).unwrap_or_default();
    }
    out
}

/// Writes a [`BINARY_SIZE_CACHE`] entry (see [`decode_sizes`]). Paths longer than 255 numbers
/// are left out (they cannot come from a real part tree, which is at most 100 deep).
fn encode_sizes(entries: &[CachedSize]) -> Vec<u8> {
    let mut out = vec![CACHE_VERSION];
    for (path, m) in entries {
        let Ok(n) = u8::try_from(path.len()) else {
            continue;
        };
        out.push(n);
        for p in path {
            out.extend_from_slice(&p.to_le_bytes());
        }
        out.extend_from_slice(&m.size.to_le_bytes());
        out.push(u8::from(m.nul));
    }
    out
}

/// The section's size from the cache, or measured (and then remembered).
async fn measured(
    view: &View,
    msg: &Message,
    path: &[u32],
    segments: Vec<BinarySegment>,
) -> Result<Measured, Fail> {
    let mut entries = match view.cache_get(&[msg.uid], BINARY_SIZE_CACHE).await {
        Ok(blobs) => blobs
            .into_iter()
            .next()
            .flatten()
            .map(|b| decode_sizes(&b))
            .unwrap_or_default(),
        Err(e) => {
            tracing::debug!(error = %e, "BINARY size cache lookup failed");
            Vec::new()
        }
    };
    if let Some((_, m)) = entries.iter().find(|(p, _)| p == path) {
        return Ok(*m);
    }
    let m = measure(msg, segments).await?;
    if entries.len() >= BINARY_SIZE_CACHE_SECTIONS {
        entries.remove(0);
    }
    entries.push((path.to_vec(), m));
    let blob = bytes::Bytes::from(encode_sizes(&entries));
    if let Err(e) = view
        .cache_put(BINARY_SIZE_CACHE, vec![(msg.uid, blob)])
        .await
    {
        tracing::debug!(error = %e, "BINARY size cache store failed");
    }
    Ok(m)
}

/// The section's segments, or why it cannot be served.
fn segments(
    item: &BinaryItem,
    info: Option<&MessageInfo>,
) -> Result<Option<Vec<BinarySegment>>, BinaryError> {
    let Some(info) = info else {
        return Err(BinaryError::Before(
            StorageError::Corrupt("BINARY requested without a message structure".into()).into(),
        ));
    };
    info.binary_segments(&item.path)
        .map_err(|_| BinaryError::Before(ImapError::UnknownCte))
}

/// Writes `BINARY.SIZE[section] n`.
pub async fn write_size(
    view: &View,
    conn: &mut Conn,
    f: &mut FetchResponse,
    item: &BinaryItem,
    info: Option<&MessageInfo>,
    msg: &Message,
) -> Result<(), BinaryError> {
    let size = match segments(item, info)? {
        None => 0,
        Some(segs) => {
            measured(view, msg, &item.path, segs)
                .await
                .map_err(|e| BinaryError::Before(e.into()))?
                .size
        }
    };
    let part = match &item.attr {
        FetchAttr::BinarySize { part } | FetchAttr::Binary { part, .. } => part.as_slice(),
        _ => &[],
    };
    f.binary_size(conn.out(), part, size);
    Ok(())
}

/// Writes `BINARY[section]<origin> {n}` (or `~{n}`) and the decoded data. `committed` becomes
/// true once bytes of the current response have been sent.
pub async fn write_data(
    view: &View,
    conn: &mut Conn,
    f: &mut FetchResponse,
    item: &BinaryItem,
    info: Option<&MessageInfo>,
    msg: &Message,
    committed: &mut bool,
) -> Result<(), BinaryError> {
    let Some(segs) = segments(item, info)? else {
        // A part that does not exist is an empty string, as for BODY[...].
        f.section_value(conn.out(), &item.attr, b"");
        return Ok(());
    };
    let key = view.identity().map(|identity| decoded::Key {
        identity,
        uidvalidity: view.uidvalidity(),
        uid: msg.uid,
        path: item.path.clone(),
    });
    let hit = key.as_ref().and_then(decoded::get);
    let measured = match &hit {
        Some((bytes, nul)) => Measured {
            size: bytes.len() as u64,
            nul: *nul,
        },
        None => measured(view, msg, &item.path, segs.clone())
            .await
            .map_err(|e| BinaryError::Before(e.into()))?,
    };
    let (start, len) = match item.partial {
        Some((origin, count)) => partial_window(measured.size, origin, count),
        None => (0, measured.size),
    };
    if len == 0 {
        f.section_value(conn.out(), &item.attr, b"");
        return Ok(());
    }
    f.section_prefix(conn.out(), &item.attr, len, measured.nul);
    let uid = msg.uid;
    let broken = |what: String| BinaryError::Broken(format!("UID {uid}: {what}"));
    let window = |pos: u64, n: usize| {
        // The part of `n` decoded octets at `pos` that falls in `[start, start + len)`.
        let from = start.saturating_sub(pos).min(n as u64) as usize;
        let to = (start + len).saturating_sub(pos).min(n as u64) as usize;
        from..to.max(from)
    };
    if let Some((bytes, _)) = hit {
        let part = bytes.slice(window(0, bytes.len()));
        for piece in part.chunks(MESSAGE_STREAM_CHUNK) {
            super::body::send_chunk(conn, piece, committed)
                .await
                .map_err(|e| broken(format!("client write failed: {e}")))?;
        }
        return Ok(());
    }
    // Collect the whole section for the shared cache when it may be kept; else decode only the
    // window asked for.
    let mut collect = key.and_then(|k| decoded::Collecting::start(k, measured));
    let decode_window = if collect.is_some() {
        (0, measured.size)
    } else {
        (start, len)
    };
    let mut pos = decode_window.0;
    let mut d = Decoded::new(msg, segs, decode_window);
    let mut chunk = Vec::new();
    let mut sent = 0u64;
    loop {
        chunk.clear();
        let more = d
            .next(&mut chunk)
            .await
            .map_err(|e| broken(format!("decoding failed on the second pass: {e:?}")))?;
        let piece = chunk.get(window(pos, chunk.len())).unwrap_or_default();
        pos += chunk.len() as u64;
        sent += piece.len() as u64;
        super::body::send_chunk(conn, piece, committed)
            .await
            .map_err(|e| broken(format!("client write failed: {e}")))?;
        if let Some(c) = collect.as_mut() {
            c.push(&chunk);
        }
        if !more {
            break;
        }
    }
    if sent != len {
        return Err(broken(format!(
            "decoded {sent} octets where {len} were announced"
        )));
    }
    if let Some(c) = collect {
        c.finish();
    }
    Ok(())
}

/// The decoded sections shared by all sessions (see the module documentation).
mod decoded {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::{MAX_BINARY_DECODED_CACHE_BYTES, MAX_BINARY_DECODED_ENTRY_BYTES, Measured};

    /// One section of one message of one mailbox.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Key {
        pub identity: String,
        pub uidvalidity: u32,
        pub uid: u32,
        pub path: Vec<u32>,
    }

    #[derive(Default)]
    struct Cache {
        /// Least recently used first.
        entries: VecDeque<(Key, Bytes, bool)>,
        /// Bytes held by `entries` plus those reserved by [`Collecting`].
        bytes: u64,
    }

    static CACHE: Mutex<Cache> = Mutex::new(Cache {
        entries: VecDeque::new(),
        bytes: 0,
    });

    fn lock() -> std::sync::MutexGuard<'static, Cache> {
        CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The decoded bytes of `key` and whether they hold NUL; the entry becomes the most recent.
    pub fn get(key: &Key) -> Option<(Bytes, bool)> {
        let mut c = lock();
        let i = c.entries.iter().position(|(k, _, _)| k == key)?;
        let e = c.entries.remove(i)?;
        let found = (e.1.clone(), e.2);
        c.entries.push_back(e);
        Some(found)
    }

    /// A section being decoded for the cache; its size is reserved in the budget until it is
    /// stored or dropped.
    pub struct Collecting {
        key: Key,
        nul: bool,
        reserved: u64,
        data: Vec<u8>,
    }

    impl Collecting {
        /// Starts collecting a section of `m.size` octets, when it may be kept and the budget
        /// has room after dropping the least recently used entries.
        pub fn start(key: Key, m: Measured) -> Option<Collecting> {
            if m.size == 0 || m.size > MAX_BINARY_DECODED_ENTRY_BYTES {
                return None;
            }
            let capacity = usize::try_from(m.size).ok()?;
            let mut c = lock();
            while c.bytes + m.size > MAX_BINARY_DECODED_CACHE_BYTES {
                let (_, old, _) = c.entries.pop_front()?;
                c.bytes -= old.len() as u64;
            }
            c.bytes += m.size;
            Some(Collecting {
                key,
                nul: m.nul,
                reserved: m.size,
                data: Vec::with_capacity(capacity),
            })
        }

        /// Decoded octets, in order; never more than reserved.
        pub fn push(&mut self, bytes: &[u8]) {
            let room = (self.reserved as usize).saturating_sub(self.data.len());
            self.data
                .extend_from_slice(bytes.get(..bytes.len().min(room)).unwrap_or_default());
        }

        /// Stores the section when it is complete (another session may have stored it first).
        pub fn finish(mut self) {
            if self.data.len() as u64 != self.reserved {
                return;
            }
            let data = Bytes::from(std::mem::take(&mut self.data));
            let mut c = lock();
            if c.entries.iter().any(|(k, _, _)| *k == self.key) {
                return;
            }
            c.entries.push_back((self.key.clone(), data, self.nul));
            // The reservation becomes the entry's bytes.
            self.reserved = 0;
        }
    }

    impl Drop for Collecting {
        fn drop(&mut self) {
            if self.reserved > 0 {
                let mut c = lock();
                c.bytes = c.bytes.saturating_sub(self.reserved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_sections_are_shared_bounded_and_only_kept_whole() {
        let key = |uid: u32| decoded::Key {
            identity: "test:decoded-cache".into(),
            uidvalidity: 7,
            uid,
            path: vec![2],
        };
        let m = |size: u64| Measured { size, nul: true };
        // Kept once complete, and found by every session.
        let Some(mut c) = decoded::Collecting::start(key(1), m(3)) else {
            panic!("no room for 3 bytes")
        };
        c.push(b"ab");
        c.push(b"cdef");
        c.finish();
        assert_eq!(
            decoded::get(&key(1)),
            Some((bytes::Bytes::from_static(b"abc"), true))
        );
        // An incomplete section is not kept.
        let Some(mut c) = decoded::Collecting::start(key(2), m(4)) else {
            panic!("no room for 4 bytes")
        };
        c.push(b"ab");
        c.finish();
        assert_eq!(decoded::get(&key(2)), None);
        // Over the entry limit: streamed, never collected.
        assert!(
            decoded::Collecting::start(key(3), m(MAX_BINARY_DECODED_ENTRY_BYTES + 1)).is_none()
        );
        // Filling the budget pushes the oldest entries out.
        let big = MAX_BINARY_DECODED_ENTRY_BYTES;
        for uid in 10..10 + (MAX_BINARY_DECODED_CACHE_BYTES / big) as u32 + 1 {
            if let Some(mut c) = decoded::Collecting::start(key(uid), m(big)) {
                c.push(&vec![0u8; big as usize]);
                c.finish();
            }
        }
        assert_eq!(decoded::get(&key(1)), None);
        assert!(decoded::get(&key(10 + (MAX_BINARY_DECODED_CACHE_BYTES / big) as u32)).is_some());
    }

    #[test]
    fn size_cache_entries_round_trip_and_reject_garbage() {
        let entries: Vec<CachedSize> = vec![
            (
                Vec::new(),
                Measured {
                    size: 0,
                    nul: false,
                },
            ),
            (
                vec![1],
                Measured {
                    size: 25,
                    nul: false,
                },
            ),
            (
                vec![2, 1, 3],
                Measured {
                    size: u64::MAX,
                    nul: true,
                },
            ),
        ];
        let blob = encode_sizes(&entries);
        assert_eq!(decode_sizes(&blob), entries);
        // Another version, a cut entry, or nothing at all: no sizes, so they are measured.
        let mut other = blob.clone();
        other[0] = CACHE_VERSION + 1;
        assert!(decode_sizes(&other).is_empty());
        assert!(decode_sizes(&blob[..blob.len() - 1]).is_empty());
        assert!(decode_sizes(&[]).is_empty());
    }
}
