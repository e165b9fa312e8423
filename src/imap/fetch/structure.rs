//! The MIME structure of messages, through the storage cache.
//!
//! Two kinds of cache entries serve ENVELOPE, BODY, BODYSTRUCTURE and sections:
//! - the response text of ENVELOPE ([`CacheField::ENVELOPE`]), BODYSTRUCTURE
//!   ([`CacheField::BODYSTRUCTURE_TEXT`]) and BODY ([`CacheField::BODY`]), exactly as written to
//!   clients, so a warm `FETCH 1:* ENVELOPE` is a read of the cache file and a copy;
//! - the parsed structure (`MessageInfo::to_cache_bytes`, [`CacheField::BODYSTRUCTURE`]), for
//!   sections and for texts missing from the cache (written by an older version, or BODY, which
//!   is only stored once asked for).
//!
//! Each text entry starts with [`TEXT_VERSION`] and the message's virtual size: an entry of
//! another version or of a message of another size (stale or foreign) is ignored, as are blobs
//! the parsed-structure decoder refuses; damaged records are caught by the cache file's CRCs.
//! Texts are sent as stored, so the cache file is trusted as much as the index beside it (both
//! are written only by the server, in the owner's mail directory).
//!
//! A call of [`load`] asks the cache once per field for as many messages as fit in
//! [`FETCH_STRUCTURE_LOOKUP_BYTES`]; misses are parsed in groups (see `parse_batch`) and every
//! new entry of a group goes back to the cache in one write. The cache only saves work: when it
//! cannot be read, messages are parsed instead of failing the FETCH.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::imap::search::{SEARCH_HEADER_CACHE, cache_blob};
use crate::imap::workers::{by_bytes, join_all, read_and_compute, shares};
use crate::limits::{
    FETCH_PARSE_BATCH, FETCH_PARSE_BYTES, FETCH_PARSE_WORKERS, FETCH_STRUCTURE_LOOKUP_BYTES,
    READ_PIECE_BYTES,
};
use crate::mime::{MessageInfo, write_body, write_envelope};
use crate::storage::{CacheField, MessageMeta, ReadPart, StorageError, View, header_block};

/// Version of the text entries; bump it whenever the ENVELOPE or BODY[STRUCTURE] writers change
/// what they write, so entries of the old form are not served.
pub const TEXT_VERSION: u8 = 1;
/// Version byte and virtual size (u64, little endian) in front of a text entry.
const TEXT_PREFIX: usize = 9;

/// The structure items one FETCH needs of every message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    /// ENVELOPE
    pub envelope: bool,
    /// BODY
    pub body: bool,
    /// BODYSTRUCTURE
    pub bodystructure: bool,
    /// The parsed structure itself (body sections other than the whole message).
    pub info: bool,
}

/// What one message's response has of its structure: each text asked for, or the parsed
/// structure to write it from.
#[derive(Debug, Default)]
pub struct Structure {
    /// ENVELOPE text, parentheses included.
    pub envelope: Option<Bytes>,
    /// BODY text.
    pub body: Option<Bytes>,
    /// BODYSTRUCTURE text.
    pub bodystructure: Option<Bytes>,
    /// The parsed structure, when sections need it or a text had to be made.
    pub info: Option<MessageInfo>,
}

/// Why a structure could not be had.
#[derive(Debug)]
pub enum ParseError {
    /// The message is larger than we are willing to hold in memory to parse.
    TooLarge,
    /// Reading the file failed.
    Storage(StorageError),
}

/// Cached entries of `field` for a prefix of `uids` (at least one UID, entries within
/// [`FETCH_STRUCTURE_LOOKUP_BYTES`]), `None` where absent or unreadable.
async fn cached(view: &View, uids: &[u32], field: CacheField) -> Vec<Option<Bytes>> {
    if uids.is_empty() {
        return Vec::new();
    }
    match view
        .cache_get_prefix(uids, field, FETCH_STRUCTURE_LOOKUP_BYTES)
        .await
    {
        // A backend answering out of step would attach structures to the wrong messages.
        Ok(blobs) if !blobs.is_empty() && blobs.len() <= uids.len() => blobs,
        Ok(blobs) => {
            tracing::warn!(
                asked = uids.len(),
                got = blobs.len(),
                "structure cache answered a different number of entries"
            );
            vec![None; uids.len()]
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the structure cache failed; parsing instead");
            vec![None; uids.len()]
        }
    }
}

/// Decodes a cached parsed structure, refusing one that does not describe a message of
/// `virt_size` client bytes (a stale or foreign entry): the caller then parses the message again.
pub fn decode(blob: &[u8], virt_size: u64) -> Option<MessageInfo> {
    MessageInfo::from_cache_bytes(blob).filter(|i| i.virtual_size() == virt_size)
}

/// The text of a cached text entry of a message of `virt_size` bytes; `None` for an entry of
/// another version or size, or one that is not a parenthesised list.
pub fn text_of(entry: &Bytes, virt_size: u64) -> Option<Bytes> {
    let (head, text) = entry.split_at_checked(TEXT_PREFIX)?;
    let (version, size) = head.split_first()?;
    let size = u64::from_le_bytes(size.try_into().ok()?);
    (*version == TEXT_VERSION
        && size == virt_size
        && text.first() == Some(&b'(')
        && text.last() == Some(&b')'))
    .then(|| entry.slice(TEXT_PREFIX..))
}

/// A text entry: version, virtual size, then what `write` writes. It is written into
/// `scratch` (reused from one text to the next, so it stops growing) and copied out at its size.
fn make_text(scratch: &mut Vec<u8>, virt_size: u64, write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    scratch.clear();
    scratch.push(TEXT_VERSION);
    scratch.extend_from_slice(&virt_size.to_le_bytes());
    write(scratch);
    Bytes::copy_from_slice(scratch)
}

/// New cache entries of one batch, by field.
#[derive(Default)]
struct Fresh {
    info: Vec<(u32, Bytes)>,
    envelope: Vec<(u32, Bytes)>,
    body: Vec<(u32, Bytes)>,
    bodystructure: Vec<(u32, Bytes)>,
    /// SEARCH's header entries, made from the header just read: Dovecot's one cache serves
    /// FETCH and SEARCH alike, and so should reading a message once.
    search: Vec<(u32, Bytes)>,
}

impl Fresh {
    /// Moves the entries of `other` here, leaving it empty with its room kept for reuse.
    fn append(&mut self, other: &mut Fresh) {
        self.info.append(&mut other.info);
        self.envelope.append(&mut other.envelope);
        self.body.append(&mut other.body);
        self.bodystructure.append(&mut other.bodystructure);
        self.search.append(&mut other.search);
    }

    /// Bytes held by the entries.
    fn weight(&self) -> usize {
        [
            &self.info,
            &self.envelope,
            &self.body,
            &self.bodystructure,
            &self.search,
        ]
        .iter()
        .flat_map(|v| v.iter())
        .map(|(_, b)| b.len())
        .sum()
    }

    fn into_fields(self) -> Vec<(CacheField, Vec<(u32, Bytes)>)> {
        [
            (CacheField::ENVELOPE, self.envelope),
            (CacheField::BODYSTRUCTURE_TEXT, self.bodystructure),
            (CacheField::BODY, self.body),
            (CacheField::BODYSTRUCTURE, self.info),
            (SEARCH_HEADER_CACHE, self.search),
        ]
        .into_iter()
        .filter(|(_, e)| !e.is_empty())
        .collect()
    }
}

/// Fills the texts `wanted` that `s` lacks from its parsed structure; a text made here goes to
/// `fresh` for the cache, keyed by the message's UID. Texts not asked for are not made: the
/// parsed structure is cached beside them, and a later FETCH makes its text from that without
/// reading the message (a tenth of what making it here would cost a first FETCH ENVELOPE of a
/// big mailbox: a text and a cache write per message).
fn fill_texts(
    s: &mut Structure,
    info: &MessageInfo,
    (uid, virt_size): (u32, u64),
    wanted: Wanted,
    fresh: &mut Fresh,
    scratch: &mut Vec<u8>,
) {
    if s.envelope.is_none() && wanted.envelope {
        let e = make_text(scratch, virt_size, |o| write_envelope(o, info.envelope()));
        s.envelope = Some(e.slice(TEXT_PREFIX..));
        fresh.envelope.push((uid, e));
    }
    if s.bodystructure.is_none() && wanted.bodystructure {
        let e = make_text(scratch, virt_size, |o| write_body(o, info, true));
        s.bodystructure = Some(e.slice(TEXT_PREFIX..));
        fresh.bodystructure.push((uid, e));
    }
    if s.body.is_none() && wanted.body {
        let e = make_text(scratch, virt_size, |o| write_body(o, info, false));
        s.body = Some(e.slice(TEXT_PREFIX..));
        fresh.body.push((uid, e));
    }
}

/// The structures of a group of messages, as [`load`] answers them.
pub struct Group {
    /// UIDs of the messages answered: a prefix of those asked, in order.
    pub uids: Vec<u32>,
    /// Their structures, same order, or why there is none.
    pub structures: Vec<Result<Structure, ParseError>>,
    /// New cache entries made on the way; give them to [`store`].
    pub fresh: Pending,
}

/// Cache entries made by [`load`], not yet stored.
#[derive(Default)]
pub struct Pending(Fresh);

/// Stores what [`load`] made, in one cache write. The cache only saves work, so a failure is
/// logged, not reported: the messages are parsed again next time.
pub async fn store(view: &View, pending: Pending) {
    let fields = pending.0.into_fields();
    if !fields.is_empty()
        && let Err(e) = view.cache_put_fields(fields).await
    {
        tracing::warn!(error = %e, "storing message structures in the cache failed");
    }
}

/// The structure of the first messages of `metas` (at least one, same order), as `wanted`:
/// texts from the cache where present, else made from the cached parsed structure, else from
/// parsing the message (all misses together). The answer stops early rather than hold more than
/// [`FETCH_STRUCTURE_LOOKUP_BYTES`] of one kind of cache entry or parse more than
/// [`FETCH_PARSE_BATCH`] messages; the caller asks again for the rest. New entries are returned
/// for [`store`], so the caller can store them while it does something else (write responses,
/// load the next group).
pub async fn load(
    view: &View,
    metas: &[(u32, MessageMeta)],
    wanted: Wanted,
    max: u64,
) -> Result<Group, StorageError> {
    let uids: Vec<u32> = metas.iter().map(|(_, m)| m.uid).collect();
    let mut n = uids.len();
    let mut out: Vec<Structure> = metas.iter().map(|_| Structure::default()).collect();
    for (want, field) in [
        (wanted.envelope, CacheField::ENVELOPE),
        (wanted.body, CacheField::BODY),
        (wanted.bodystructure, CacheField::BODYSTRUCTURE_TEXT),
    ] {
        if !want {
            continue;
        }
        let entries = cached(view, uids.get(..n).unwrap_or_default(), field).await;
        n = n.min(entries.len());
        for ((s, (_, meta)), e) in out.iter_mut().zip(metas).zip(entries) {
            let text = e.and_then(|e| text_of(&e, meta.virt_size));
            match field {
                CacheField::ENVELOPE => s.envelope = text,
                CacheField::BODY => s.body = text,
                _ => s.bodystructure = text,
            }
        }
    }
    out.truncate(n);
    // Messages still needing their parsed structure.
    let mut need: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            wanted.info
                || (wanted.envelope && s.envelope.is_none())
                || (wanted.body && s.body.is_none())
                || (wanted.bodystructure && s.bodystructure.is_none())
        })
        .map(|(i, _)| i)
        .collect();
    if need.is_empty() {
        return Ok(Group {
            uids: uids.get(..n).unwrap_or_default().to_vec(),
            structures: out.into_iter().map(Ok).collect(),
            fresh: Pending::default(),
        });
    }
    let need_uids: Vec<u32> = need.iter().filter_map(|&i| uids.get(i).copied()).collect();
    let blobs = cached(view, &need_uids, CacheField::BODYSTRUCTURE).await;
    if let Some(&cut) = need.get(blobs.len()) {
        n = n.min(cut);
        need.truncate(blobs.len());
    }
    let mut fresh = Fresh::default();
    let mut scratch = Vec::new();
    let mut missing = Vec::new();
    for (&i, blob) in need.iter().zip(blobs) {
        let (Some(s), Some((_, meta))) = (out.get_mut(i), metas.get(i)) else {
            continue;
        };
        match blob.and_then(|b| decode(&b, meta.virt_size)) {
            Some(info) => {
                fill_texts(
                    s,
                    &info,
                    (meta.uid, meta.virt_size),
                    wanted,
                    &mut fresh,
                    &mut scratch,
                );
                s.info = Some(info);
            }
            None => missing.push(i),
        }
    }
    if let Some(&cut) = missing.get(FETCH_PARSE_BATCH) {
        n = n.min(cut);
        missing.truncate(FETCH_PARSE_BATCH);
    }
    let jobs: Vec<Job> = missing
        .iter()
        .filter_map(|&i| {
            metas.get(i).map(|(_, m)| Job {
                index: i,
                uid: m.uid,
                phys_size: m.phys_size,
                virt_size: m.virt_size,
            })
        })
        .collect();
    let (mut parsed, mut new) = parse_batch(view, jobs, max, wanted).await?;
    fresh.append(&mut new);
    parsed.sort_unstable_by_key(|(i, _)| *i);
    let mut failed: Vec<Option<ParseError>> = out.iter().map(|_| None).collect();
    let mut parsed = parsed.into_iter().peekable();
    for &i in &missing {
        match parsed.next_if(|(j, _)| *j == i) {
            Some((_, Ok(st))) => {
                if let Some(s) = out.get_mut(i) {
                    *s = st;
                }
            }
            Some((_, Err(e))) => {
                if let Some(f) = failed.get_mut(i) {
                    *f = Some(e);
                }
            }
            // Not parsed (the group's memory budget ran out): answered by the next call.
            None => n = n.min(i),
        }
    }
    out.truncate(n);
    if !wanted.info {
        // The texts are all the responses need; do not hold the parsed structures.
        for s in &mut out {
            s.info = None;
        }
    }
    let structures = out
        .into_iter()
        .zip(failed)
        .map(|(s, f)| match f {
            Some(e) => Err(e),
            None => Ok(s),
        })
        .collect();
    Ok(Group {
        uids: uids.get(..n).unwrap_or_default().to_vec(),
        structures,
        fresh: Pending(fresh),
    })
}

/// What the response needs of a freshly parsed message, its new cache entries added to `fresh`
/// (empty on entry), and roughly how many bytes that holds.
fn made(
    info: MessageInfo,
    uid: u32,
    virt_size: u64,
    wanted: Wanted,
    scratch: &mut Vec<u8>,
    fresh: &mut Fresh,
) -> (Structure, usize) {
    let mut st = Structure::default();
    if info.virtual_size() == virt_size {
        fresh.info.push((uid, Bytes::from(info.to_cache_bytes())));
        fill_texts(&mut st, &info, (uid, virt_size), wanted, fresh, scratch);
    } else {
        // An entry made from it would be refused on every read (or, for texts, describe another
        // message), so nothing is cached.
        tracing::warn!(
            uid,
            parsed = info.virtual_size(),
            stored = virt_size,
            "message size differs between storage and MIME parser; not caching"
        );
        fill_texts(
            &mut st,
            &info,
            (uid, virt_size),
            wanted,
            &mut Fresh::default(),
            scratch,
        );
    }
    let mut weight = fresh.weight();
    if wanted.info {
        // The parsed form is several times its cache blob.
        weight += 4 * fresh.info.iter().map(|(_, b)| b.len()).sum::<usize>();
        st.info = Some(info);
    }
    (st, weight)
}

/// What opening, parsing and encoding one message costs beside its bytes, counted as bytes
/// (measured: about as long as copying and scanning 48 KiB), for sharing a group out.
const PARSE_COST_BYTES: u64 = 48 * 1024;

/// One message to parse: its place in the caller's list and what the view knows of it.
#[derive(Debug, Clone, Copy)]
struct Job {
    index: usize,
    uid: u32,
    phys_size: u64,
    virt_size: u64,
}

/// Reads, parses and encodes the messages of `jobs`. Those larger than `max` are refused
/// unread; of the rest, a prefix of at most [`FETCH_PARSE_BYTES`] by recorded size (at least one
/// message) is shared out by estimated work into [`FETCH_PARSE_WORKERS`] lanes, side by side;
/// each lane reads its messages in pieces of [`READ_PIECE_BYTES`] and parses a piece on
/// `compute::run` while the next is read (`workers::read_and_compute`). Parsing also
/// stops taking new messages once the results hold about [`FETCH_PARSE_BYTES`]. Jobs left out
/// (either bound) are missing from the answer; the caller asks for them again. A batch of cache
/// misses thus costs a few thread hand-offs instead of several per message, and memory does not
/// grow with the batch. The new cache entries of all messages parsed come back together.
async fn parse_batch(
    view: &View,
    jobs: Vec<Job>,
    max: u64,
    wanted: Wanted,
) -> Result<(Vec<(usize, Result<Structure, ParseError>)>, Fresh), StorageError> {
    let mut out = Vec::new();
    let (too_large, fit): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.phys_size > max);
    out.extend(
        too_large
            .iter()
            .map(|j| (j.index, Err(ParseError::TooLarge))),
    );
    let Some(first) = by_bytes(fit, FETCH_PARSE_BYTES as u64, |j| j.phys_size)
        .into_iter()
        .next()
    else {
        return Ok((out, Fresh::default()));
    };
    let used = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(parking_lot::Mutex::new(Fresh::default()));
    let lanes = shares(first, FETCH_PARSE_WORKERS, |j| {
        PARSE_COST_BYTES.saturating_add(j.virt_size)
    });
    // One byte past `max`, which tells a file that grew past the limit from one that fits.
    let cap = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
    let calls = lanes.into_iter().map(|lane| {
        let (used, shared) = (used.clone(), shared.clone());
        // The lane's first job is always parsed (see `parse_lane`), the rest within the budget.
        let first = AtomicBool::new(true);
        let pieces = by_bytes(lane, READ_PIECE_BYTES, |j| j.phys_size);
        let part = ReadPart::Whole { cap };
        read_and_compute(
            view,
            pieces,
            |j| j.uid,
            part,
            move |piece, raws| {
                let first = first.swap(false, Ordering::Relaxed);
                parse_lane(piece, raws, (max, wanted, first), &used, &shared)
            },
        )
    });
    for done in join_all(calls.collect()).await {
        out.extend(done?.into_iter().flatten());
    }
    let fresh = std::mem::take(&mut *shared.lock());
    Ok((out, fresh))
}

/// Parses one piece of a lane's messages (`raws`: their bytes, `None` when expunged) and adds
/// their new cache entries to `shared`. The first job of a lane's first piece is always done, so
/// the caller's first miss is answered and every call makes progress; past the byte budget
/// `used` the rest are left for the caller's next group. Each message's entries are collected in lists reused from message to
/// message and moved to the shared ones, so a message costs no list allocations of its own.
fn parse_lane(
    lane: Vec<Job>,
    raws: Vec<Option<Bytes>>,
    (max, wanted, first): (u64, Wanted, bool),
    used: &AtomicUsize,
    shared: &parking_lot::Mutex<Fresh>,
) -> Vec<(usize, Result<Structure, ParseError>)> {
    let mut out = Vec::with_capacity(lane.len());
    let mut local = Fresh::default();
    let mut text = Vec::new();
    for (k, (job, raw)) in lane.into_iter().zip(raws).enumerate() {
        if (k > 0 || !first) && used.load(Ordering::Relaxed) >= FETCH_PARSE_BYTES {
            break;
        }
        let res = match raw {
            None => Err(ParseError::Storage(StorageError::Expunged)),
            Some(raw) if raw.len() as u64 > max => Err(ParseError::TooLarge),
            Some(raw) => {
                let info = MessageInfo::parse(&raw);
                let (st, mut weight) =
                    made(info, job.uid, job.virt_size, wanted, &mut text, &mut local);
                // Only beside a consistent structure entry, for the same reason as in `made`.
                if !local.info.is_empty()
                    && let Some(blob) = header_block(&raw).and_then(cache_blob)
                {
                    weight += blob.len();
                    local.search.push((job.uid, blob));
                }
                used.fetch_add(weight, Ordering::Relaxed);
                shared.lock().append(&mut local);
                Ok(st)
            }
        };
        out.push((job.index, res));
    }
    out
}
