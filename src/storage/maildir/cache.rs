//! The per-mailbox cache of parsed message data (`mailcove-cache`).
//!
//! An append-only file of records `uid:u32 field:u8 len:u32 crc:u32 data`
//! after a 16-byte header holding the UIDVALIDITY. Only offsets live in
//! memory; values are read with `pread` on demand, so a 100,000-message
//! cache costs a few megabytes of RAM however large the blobs are. A torn
//! tail (crash mid-write) is cut off on open; a record whose CRC does not
//! match reads as absent. Expunged UIDs are forgotten; the file is rewritten
//! once more than half of it is dead.
//!
//! The offsets are ordered by field, then UID: a FETCH asks for one field of many messages in
//! ascending UID order, and walking a range of an ordered map touches memory in order, where a
//! hash lookup per message missed the CPU caches on every one of 100,000 messages.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::content;
use crate::limits::{
    CACHE_COMPACT_MIN_DEAD_BYTES, CACHE_READ_GAP_BYTES, CACHE_READ_SPAN_BYTES,
    MAX_CACHE_ENTRY_BYTES,
};
use crate::storage::{Result, StorageError};

/// File name of the cache.
pub(crate) const CACHE_FILE: &str = "mailcove-cache";
const MAGIC: &[u8; 8] = b"MCCACHE1";
const HEADER_LEN: u64 = 16;
const REC_HEADER: usize = 13;

/// Magic, UIDVALIDITY, four reserved zero bytes.
fn file_header(uidvalidity: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    let v = uidvalidity.to_le_bytes();
    for (d, s) in h.iter_mut().zip(MAGIC.iter().chain(v.iter())) {
        *d = *s;
    }
    h
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
    crc: u32,
}

/// An open cache file and the offsets of its live records.
pub(crate) struct Cache {
    path: PathBuf,
    file: File,
    ino: u64,
    uidvalidity: u32,
    /// By (field, UID).
    slots: BTreeMap<(u8, u32), Slot>,
    end: u64,
    dead: u64,
}

fn io_err(e: std::io::Error) -> StorageError {
    StorageError::io("mailbox cache", e)
}

impl Cache {
    /// Opens (or starts) the cache of a mailbox; a cache of another
    /// UIDVALIDITY is discarded.
    pub(crate) fn open(dir: &Path, uidvalidity: u32) -> Result<Cache> {
        let path = dir.join(CACHE_FILE);
        let mut file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let mut header = [0u8; HEADER_LEN as usize];
        let valid = file.read_exact(&mut header).is_ok() && header == file_header(uidvalidity);
        let mut cache = Cache {
            ino: file.metadata().map_err(io_err)?.ino(),
            path,
            file,
            uidvalidity,
            slots: BTreeMap::new(),
            end: HEADER_LEN,
            dead: 0,
        };
        if valid {
            cache.load()?;
        } else {
            cache.reset()?;
        }
        Ok(cache)
    }

    fn reset(&mut self) -> Result<()> {
        self.file.set_len(0).map_err(io_err)?;
        let header = file_header(self.uidvalidity);
        self.file.write_all_at(&header, 0).map_err(io_err)?;
        self.slots.clear();
        self.end = HEADER_LEN;
        self.dead = 0;
        Ok(())
    }

    fn load(&mut self) -> Result<()> {
        let len = self.file.metadata().map_err(io_err)?.len();
        let mut r = BufReader::new(&self.file);
        r.seek(SeekFrom::Start(HEADER_LEN)).map_err(io_err)?;
        let mut off = HEADER_LEN;
        let mut h = [0u8; REC_HEADER];
        let mut slots = Vec::new();
        while off + REC_HEADER as u64 <= len {
            if r.read_exact(&mut h).is_err() {
                break;
            }
            let [u0, u1, u2, u3, field, l0, l1, l2, l3, c0, c1, c2, c3] = h;
            let uid = u32::from_le_bytes([u0, u1, u2, u3]);
            let dlen = u32::from_le_bytes([l0, l1, l2, l3]);
            let crc = u32::from_le_bytes([c0, c1, c2, c3]);
            let data_off = off + REC_HEADER as u64;
            if data_off + u64::from(dlen) > len || dlen as usize > MAX_CACHE_ENTRY_BYTES {
                break;
            }
            if r.seek_relative(i64::from(dlen)).is_err() {
                break;
            }
            let slot = Slot {
                offset: data_off,
                len: dlen,
                crc,
            };
            slots.push(((field, uid), slot));
            off = data_off + u64::from(dlen);
        }
        // Sorted (stable: a later record of the same key replaces an earlier one), the map is
        // built in one pass instead of 400,000 inserts.
        slots.sort_by_key(|(k, _)| *k);
        let mut dead = 0;
        slots.dedup_by(|(k, later), (kept, earlier)| {
            if k != kept {
                return false;
            }
            dead += u64::from(earlier.len) + REC_HEADER as u64;
            *earlier = *later;
            true
        });
        self.dead += dead;
        self.slots = slots.into_iter().collect();
        if off < len {
            self.file.set_len(off).map_err(io_err)?;
        }
        self.end = off;
        Ok(())
    }

    /// The UIDVALIDITY this cache belongs to.
    pub(crate) fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    /// True when another process replaced the file (compaction).
    pub(crate) fn replaced(&self) -> bool {
        std::fs::metadata(&self.path).map_or(true, |m| m.ino() != self.ino)
    }

    /// The cached value, if present and intact.
    pub(crate) fn get(&self, uid: u32, field: u8) -> Option<Bytes> {
        let slot = self.slots.get(&(field, uid))?;
        let mut buf = vec![0u8; slot.len as usize];
        self.file.read_exact_at(&mut buf, slot.offset).ok()?;
        (crc32fast::hash(&buf) == slot.crc).then(|| Bytes::from(buf))
    }

    /// The cached values of `uids` for `field` (same order), `None` where absent or damaged,
    /// for as many UIDs as fit in `max_bytes` of values (at least one): the answer may cover
    /// only a prefix of `uids`. Records lying close together in the file (as one batch's puts
    /// do) are read with one `pread` of at most [`CACHE_READ_SPAN_BYTES`] (or one record, if
    /// larger) instead of one per record.
    pub(crate) fn get_many(&self, uids: &[u32], field: u8, max_bytes: usize) -> Vec<Option<Bytes>> {
        // A failed read makes its records absent (a short read does).
        let read = |f: &File, pos, buf: &mut [u8]| Ok(content::read_at(f, pos, buf).unwrap_or(0));
        self.get_many_with(uids, field, max_bytes, read)
            .unwrap_or_default()
    }

    /// [`Cache::get_many`] reading with `read` (fills the buffer from an offset, returns the
    /// bytes read; records it reads short are absent). An `Err` of `read` fails the whole call,
    /// so a reader that refuses to wait for the disk (`content::read_cached`) can be tried on a
    /// thread that must not block, and the caller goes the blocking way on any refusal.
    pub(crate) fn get_many_with(
        &self,
        uids: &[u32],
        field: u8,
        max_bytes: usize,
        read: impl Fn(&File, u64, &mut [u8]) -> std::io::Result<usize>,
    ) -> std::io::Result<Vec<Option<Bytes>>> {
        let mut total = 0usize;
        let mut wanted: Vec<(usize, Slot)> = Vec::new();
        let mut count = 0;
        let mut slots = SlotWalk::new(&self.slots, field);
        for (i, u) in uids.iter().enumerate() {
            if let Some(s) = slots.get(*u) {
                total = total.saturating_add(s.len as usize);
                if total > max_bytes && i > 0 {
                    break;
                }
                wanted.push((i, s));
            }
            count = i + 1;
        }
        let mut out: Vec<Option<Bytes>> = vec![None; count];
        wanted.sort_unstable_by_key(|(_, s)| s.offset);
        let mut rest = wanted.as_slice();
        while let Some(((_, first), _)) = rest.split_first() {
            let start = first.offset;
            let mut end = start + u64::from(first.len);
            let mut n = 1;
            for (_, s) in rest.iter().skip(1) {
                let s_end = s.offset + u64::from(s.len);
                if s.offset.saturating_sub(end) > CACHE_READ_GAP_BYTES
                    || s_end.saturating_sub(start) > CACHE_READ_SPAN_BYTES
                {
                    break;
                }
                end = end.max(s_end);
                n += 1;
            }
            let (run, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            let Ok(len) = usize::try_from(end - start) else {
                continue;
            };
            let mut buf = vec![0u8; len];
            if read(&self.file, start, &mut buf)? != len {
                continue;
            }
            let buf = Bytes::from(buf);
            for (i, slot) in run {
                let Ok(a) = usize::try_from(slot.offset - start) else {
                    continue;
                };
                let Some(data) = buf.get(a..a + slot.len as usize) else {
                    continue;
                };
                if crc32fast::hash(data) == slot.crc
                    && let Some(o) = out.get_mut(*i)
                {
                    *o = Some(buf.slice(a..a + slot.len as usize));
                }
            }
        }
        Ok(out)
    }

    /// Stores a value (values above the entry limit are not cached).
    #[cfg(test)]
    pub(crate) fn put(&mut self, uid: u32, field: u8, data: &[u8]) -> Result<()> {
        self.put_many(field, std::iter::once((uid, data)))
    }

    /// Stores values with one write (values above the entry limit are not cached). The cache
    /// is rebuilt from the messages when lost, so it is never fsync'd.
    pub(crate) fn put_many<'a>(
        &mut self,
        field: u8,
        entries: impl IntoIterator<Item = (u32, &'a [u8])>,
    ) -> Result<()> {
        let entries = entries.into_iter();
        let mut rec = Vec::new();
        let mut slots = Vec::with_capacity(entries.size_hint().0);
        for (uid, data) in entries {
            if data.len() > MAX_CACHE_ENTRY_BYTES {
                continue;
            }
            let crc = crc32fast::hash(data);
            let dlen = u32::try_from(data.len()).unwrap_or(u32::MAX);
            rec.extend_from_slice(&uid.to_le_bytes());
            rec.push(field);
            rec.extend_from_slice(&dlen.to_le_bytes());
            rec.extend_from_slice(&crc.to_le_bytes());
            slots.push((
                uid,
                Slot {
                    offset: self.end + rec.len() as u64,
                    len: dlen,
                    crc,
                },
            ));
            rec.extend_from_slice(data);
        }
        if rec.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&rec, self.end).map_err(io_err)?;
        self.end += rec.len() as u64;
        for (uid, slot) in slots {
            if let Some(old) = self.slots.insert((field, uid), slot) {
                self.dead += u64::from(old.len) + REC_HEADER as u64;
            }
        }
        Ok(())
    }

    /// Drops entries of UIDs for which `keep` is false (expunged while the
    /// cache was not open).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        let gone: HashSet<u32> = self
            .slots
            .keys()
            .map(|(_, u)| *u)
            .filter(|u| !keep(*u))
            .collect();
        self.forget(&gone);
    }

    /// Drops the entries of expunged messages; compacts when mostly dead.
    pub(crate) fn forget(&mut self, uids: &HashSet<u32>) {
        let dead: u64 = self
            .slots
            .iter()
            .filter(|((_, u), _)| uids.contains(u))
            .map(|(_, s)| u64::from(s.len) + REC_HEADER as u64)
            .sum();
        if dead == 0 {
            return;
        }
        self.slots.retain(|(_, u), _| !uids.contains(u));
        self.dead += dead;
        if self.dead > CACHE_COMPACT_MIN_DEAD_BYTES
            && self.dead * 2 > self.end
            && let Err(e) = self.compact()
        {
            tracing::warn!(error = %e, "cache compaction failed");
        }
    }

    fn compact(&mut self) -> Result<()> {
        let tmp = self.path.with_extension("compact");
        let mut out = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err)?;
        let header = file_header(self.uidvalidity);
        out.write_all(&header).map_err(io_err)?;
        let mut slots = BTreeMap::new();
        let mut end = HEADER_LEN;
        for (&(field, uid), slot) in &self.slots {
            let Some(data) = self.get(uid, field) else {
                continue;
            };
            let mut rec = Vec::with_capacity(REC_HEADER + data.len());
            rec.extend_from_slice(&uid.to_le_bytes());
            rec.push(field);
            rec.extend_from_slice(&slot.len.to_le_bytes());
            rec.extend_from_slice(&slot.crc.to_le_bytes());
            rec.extend_from_slice(&data);
            out.write_all(&rec).map_err(io_err)?;
            slots.insert(
                (field, uid),
                Slot {
                    offset: end + REC_HEADER as u64,
                    ..*slot
                },
            );
            end += rec.len() as u64;
        }
        std::fs::rename(&tmp, &self.path).map_err(io_err)?;
        self.ino = out.metadata().map_err(io_err)?.ino();
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io_err)?;
        self.slots = slots;
        self.end = end;
        self.dead = 0;
        Ok(())
    }
}

/// Looks up one field's slots for UIDs asked mostly in ascending order: each lookup continues
/// from the previous one by a few steps, and seeks afresh when the UID is behind or far ahead.
struct SlotWalk<'a> {
    slots: &'a BTreeMap<(u8, u32), Slot>,
    field: u8,
    walk: std::iter::Peekable<std::collections::btree_map::Range<'a, (u8, u32), Slot>>,
    /// The UID the walk was last asked for (it never moves past an entry for a larger one).
    last: Option<u32>,
}

/// Entries a walk steps over before it seeks instead.
const WALK_STEPS: usize = 8;

impl<'a> SlotWalk<'a> {
    fn new(slots: &'a BTreeMap<(u8, u32), Slot>, field: u8) -> Self {
        SlotWalk {
            slots,
            field,
            walk: slots.range((field, 0)..=(field, u32::MAX)).peekable(),
            last: None,
        }
    }

    fn get(&mut self, uid: u32) -> Option<Slot> {
        if self.last.is_some_and(|l| l > uid) {
            self.seek(uid);
        }
        self.last = Some(uid);
        for _ in 0..WALK_STEPS {
            match self.peek() {
                Some((u, s)) if u == uid => return Some(s),
                Some((u, _)) if u < uid => {
                    self.walk.next();
                }
                _ => return None,
            }
        }
        self.seek(uid);
        self.peek().filter(|(u, _)| *u == uid).map(|(_, s)| s)
    }

    fn peek(&mut self) -> Option<(u32, Slot)> {
        self.walk.peek().map(|&(&(_, u), s)| (u, *s))
    }

    fn seek(&mut self, uid: u32) {
        self.walk = self
            .slots
            .range((self.field, uid)..=(self.field, u32::MAX))
            .peekable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_reopen_forget() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io_err)?;
        let mut c = Cache::open(dir.path(), 5)?;
        c.put(1, 2, b"envelope-1")?;
        c.put(2, 2, b"envelope-2")?;
        c.put(1, 2, b"envelope-1b")?;
        assert_eq!(c.get(1, 2).as_deref(), Some(&b"envelope-1b"[..]));
        drop(c);
        // Simulate a torn tail.
        let f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CACHE_FILE))
            .map_err(io_err)?;
        (&f).write_all(&[1, 0, 0, 0, 2, 99]).map_err(io_err)?;
        let mut c = Cache::open(dir.path(), 5)?;
        assert_eq!(c.get(2, 2).as_deref(), Some(&b"envelope-2"[..]));
        // The later record of a UID and field wins; the earlier one counts as dead.
        assert_eq!(c.get(1, 2).as_deref(), Some(&b"envelope-1b"[..]));
        assert_eq!(c.dead, (REC_HEADER + b"envelope-1".len()) as u64);
        c.forget(&[2].into_iter().collect());
        assert_eq!(c.get(2, 2), None);
        c.put(3, 1, b"x")?;
        assert_eq!(c.get(3, 1).as_deref(), Some(&b"x"[..]));
        // Mostly dead: compaction rewrites the file, live entries survive.
        let blob = vec![7u8; 256 * 1024];
        for uid in 10..20 {
            c.put(uid, 2, &blob)?;
        }
        let before = std::fs::metadata(dir.path().join(CACHE_FILE))
            .map_err(io_err)?
            .len();
        c.forget(&(10..19).collect());
        let after = std::fs::metadata(dir.path().join(CACHE_FILE))
            .map_err(io_err)?
            .len();
        assert!(after < before / 4, "no compaction: {before} -> {after}");
        assert_eq!(c.get(19, 2).map(|b| b.len()), Some(blob.len()));
        assert_eq!(c.get(3, 1).as_deref(), Some(&b"x"[..]));
        assert_eq!(c.get(12, 2), None);
        drop(c);
        let c = Cache::open(dir.path(), 5)?;
        assert_eq!(c.get(19, 2).map(|b| b.len()), Some(blob.len()));
        drop(c);
        // Another UIDVALIDITY discards everything.
        let c = Cache::open(dir.path(), 6)?;
        assert_eq!(c.get(1, 2), None);
        Ok(())
    }

    #[test]
    fn get_many_answers_like_get_in_any_order() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io_err)?;
        let mut c = Cache::open(dir.path(), 5)?;
        // Three fields, UIDs with gaps; field 2 holds every third UID only.
        for field in [1u8, 2, 3] {
            let vals: Vec<(u32, Vec<u8>)> = (1..=3000u32)
                .filter(|u| u % 7 != 0 && (field != 2 || u % 3 == 0))
                .map(|u| (u, format!("{field}:{u}").into_bytes()))
                .collect();
            c.put_many(field, vals.iter().map(|(u, v)| (*u, v.as_slice())))?;
        }
        let mut asked: Vec<u32> = (0..=3010).collect();
        asked.extend([5, 4, 2999, 1, 1500, 1501, 1400, 0, 3000, 2]);
        asked.extend((1..=3000).step_by(50));
        asked.extend((1..=3000).rev().step_by(13));
        for field in [0u8, 1, 2, 3, 4] {
            let got = c.get_many(&asked, field, usize::MAX);
            let want: Vec<Option<Bytes>> = asked.iter().map(|u| c.get(*u, field)).collect();
            assert_eq!(got, want, "field {field}");
            // The page-cache-only reader answers the same here (the file was just written).
            let cached = c.get_many_with(&asked, field, usize::MAX, content::read_cached);
            assert_eq!(cached.ok(), Some(want), "field {field}, cached reader");
        }
        // A reader refusing to read fails the call; one reading short makes records absent.
        let refuse = |_: &File, _, _: &mut [u8]| Err(std::io::ErrorKind::WouldBlock.into());
        assert!(c.get_many_with(&[1, 2], 1, usize::MAX, refuse).is_err());
        let short = |_: &File, _, _: &mut [u8]| Ok(0);
        let got = c.get_many_with(&[1, 2, 9999], 1, usize::MAX, short);
        assert_eq!(got.ok(), Some(vec![None, None, None]));
        Ok(())
    }

    #[test]
    fn get_many_reads_neighbours_together_and_stops_at_the_budget() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io_err)?;
        let mut c = Cache::open(dir.path(), 5)?;
        let vals: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
        c.put_many(4, (1..=10u32).zip(vals.iter().map(Vec::as_slice)))?;
        c.put(20, 4, b"far")?;
        // All present, in the order asked, absent ones as None.
        let got = c.get_many(&[3, 99, 1, 20], 4, usize::MAX);
        let want: Vec<Option<&[u8]>> = vec![Some(&vals[2]), None, Some(&vals[0]), Some(b"far")];
        assert_eq!(got.iter().map(Option::as_deref).collect::<Vec<_>>(), want);
        // A budget of 250 bytes covers two 100-byte values; a UID without an entry costs nothing.
        let got = c.get_many(&[1, 99, 2, 3, 4], 4, 250);
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].as_deref(), Some(&vals[1][..]));
        // At least one UID is answered, however small the budget.
        assert_eq!(c.get_many(&[5, 6], 4, 1).len(), 1);
        assert!(c.get_many(&[], 4, 1).is_empty());
        // A damaged value reads as absent; its neighbours, read in the same pread, do not.
        let slot = c.slots[&(4, 2)];
        c.file.write_all_at(b"X", slot.offset + 5).map_err(io_err)?;
        let got = c.get_many(&[1, 2, 3], 4, usize::MAX);
        assert_eq!(got[0].as_deref(), Some(&vals[0][..]));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_deref(), Some(&vals[2][..]));
        Ok(())
    }
}
