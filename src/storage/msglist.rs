//! A UID-ordered list of [`MessageMeta`] split into `Arc`'d chunks.
//!
//! Views of a 100,000-message mailbox must be cheap: cloning a list clones
//! about a hundred `Arc`s, and a change to one message copies one chunk
//! (`Arc::make_mut`) while every other chunk stays shared with the views
//! that still hold the old picture.
//!
//! Each chunk carries a [`Tally`] of its messages (unseen, deleted, sizes), kept up to date by
//! every change that goes through the list. SELECT's first unseen message and STATUS's counts
//! then cost one step per chunk, not one per message: a warm SELECT of a 1,000,000-message
//! mailbox does not read 64 MB of message entries to find the first one without `\Seen`.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use super::{MailboxStatus, MessageMeta, SystemFlags};
use crate::limits::MESSAGE_LIST_CHUNK;

/// Counts over a set of messages, kept per chunk so that whole-mailbox counts need no scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages without `\Seen`.
    pub unseen: u64,
    /// Messages with `\Deleted`.
    pub deleted: u64,
    /// Sum of the virtual sizes (STATUS SIZE).
    pub virt_bytes: u64,
    /// Sum of the physical sizes of the `\Deleted` messages (STATUS DELETED-STORAGE).
    pub deleted_bytes: u64,
}

impl Tally {
    /// The tally of one message.
    fn of(m: &MessageMeta) -> Tally {
        let deleted = m.flags.system.contains(SystemFlags::DELETED);
        Tally {
            unseen: u64::from(!m.flags.system.contains(SystemFlags::SEEN)),
            deleted: u64::from(deleted),
            virt_bytes: m.virt_size,
            deleted_bytes: if deleted { m.phys_size } else { 0 },
        }
    }

    fn add(&mut self, o: Tally) {
        self.unseen += o.unseen;
        self.deleted += o.deleted;
        self.virt_bytes = self.virt_bytes.saturating_add(o.virt_bytes);
        self.deleted_bytes = self.deleted_bytes.saturating_add(o.deleted_bytes);
    }

    fn sub(&mut self, o: Tally) {
        self.unseen = self.unseen.saturating_sub(o.unseen);
        self.deleted = self.deleted.saturating_sub(o.deleted);
        self.virt_bytes = self.virt_bytes.saturating_sub(o.virt_bytes);
        self.deleted_bytes = self.deleted_bytes.saturating_sub(o.deleted_bytes);
    }
}

impl MailboxStatus {
    /// Sets UNSEEN, SIZE, DELETED and DELETED-STORAGE from a list's [`Tally`] (the backends'
    /// STATUS, which read no message).
    pub(crate) fn set_counts(&mut self, t: Tally) {
        self.unseen = u32::try_from(t.unseen).unwrap_or(u32::MAX);
        self.size = t.virt_bytes;
        self.deleted = u32::try_from(t.deleted).unwrap_or(u32::MAX);
        self.deleted_bytes = t.deleted_bytes;
    }
}

/// Up to [`MESSAGE_LIST_CHUNK`] messages and their [`Tally`]. Read as a slice; changed only
/// through its methods, which keep the tally right.
#[derive(Debug, Clone, Default)]
struct Chunk {
    metas: Vec<MessageMeta>,
    tally: Tally,
}

impl Deref for Chunk {
    type Target = [MessageMeta];
    fn deref(&self) -> &[MessageMeta] {
        &self.metas
    }
}

impl Chunk {
    fn from_vec(metas: Vec<MessageMeta>) -> Chunk {
        let mut tally = Tally::default();
        for m in &metas {
            tally.add(Tally::of(m));
        }
        Chunk { metas, tally }
    }

    fn push(&mut self, meta: MessageMeta) {
        self.tally.add(Tally::of(&meta));
        self.metas.push(meta);
    }

    fn extend(&mut self, other: &Chunk) {
        self.metas.extend_from_slice(&other.metas);
        self.tally.add(other.tally);
    }

    fn update(&mut self, off: usize, f: impl FnOnce(&mut MessageMeta)) -> bool {
        let Some(m) = self.metas.get_mut(off) else {
            return false;
        };
        let before = Tally::of(m);
        f(m);
        let after = Tally::of(m);
        if before != after {
            self.tally.sub(before);
            self.tally.add(after);
        }
        true
    }
}

/// Messages in ascending UID order, chunked and copy-on-write.
///
/// The list itself is one `Arc` too: a view taking the mailbox's picture, and dropping its
/// old one, costs one reference count whatever the mailbox's size. The first change to a
/// shared list copies its chunk pointers (one per [`MESSAGE_LIST_CHUNK`] messages) and the
/// chunk it changes.
#[derive(Debug, Clone, Default)]
pub struct MessageList {
    l: Arc<Lists>,
}

#[derive(Debug, Clone, Default)]
struct Lists {
    chunks: Vec<Arc<Chunk>>,
    /// `starts[i]` is the index of the first message of `chunks[i]`.
    starts: Vec<usize>,
    /// `firsts[i]` is the first UID of `chunks[i]`: UID lookups binary-search
    /// this small array instead of touching every probed chunk.
    firsts: Vec<u32>,
    len: usize,
    /// The whole list's tally and first unseen position, worked out (one step per chunk) when
    /// first asked for and shared by every holder of this picture; emptied by any change.
    summary: OnceLock<Summary>,
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    tally: Tally,
    first_unseen: Option<usize>,
}

impl MessageList {
    /// The lists, unshared (copying the chunk pointers if another holder has them) and with
    /// the summary dropped: every caller is about to change something.
    fn lists_mut(&mut self) -> &mut Lists {
        let l = Arc::make_mut(&mut self.l);
        l.summary = OnceLock::new();
        l
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.l.len
    }

    /// True when there is no message.
    pub fn is_empty(&self) -> bool {
        self.l.len == 0
    }

    /// The message at 0-based position `i` (sequence number `i + 1`).
    pub fn get(&self, i: usize) -> Option<&MessageMeta> {
        let l = &*self.l;
        if i >= l.len {
            return None;
        }
        let c = l.starts.partition_point(|s| *s <= i).checked_sub(1)?;
        let start = *l.starts.get(c)?;
        l.chunks.get(c)?.get(i - start)
    }

    /// 0-based position of `uid`.
    pub fn position(&self, uid: u32) -> Option<usize> {
        let l = &*self.l;
        let c = l.firsts.partition_point(|f| *f <= uid).checked_sub(1)?;
        let chunk = l.chunks.get(c)?;
        let off = chunk.binary_search_by_key(&uid, |m| m.uid).ok()?;
        Some(l.starts.get(c)? + off)
    }

    /// Number of messages with a UID below `uid`.
    pub fn rank(&self, uid: u32) -> usize {
        let l = &*self.l;
        let Some(c) = l.firsts.partition_point(|f| *f < uid).checked_sub(1) else {
            return 0;
        };
        match (l.chunks.get(c), l.starts.get(c)) {
            (Some(chunk), Some(start)) => start + chunk.partition_point(|m| m.uid < uid),
            _ => l.len,
        }
    }

    /// The message with `uid`.
    pub fn find(&self, uid: u32) -> Option<&MessageMeta> {
        self.position(uid).and_then(|i| self.get(i))
    }

    /// A cursor for looking up many UIDs: O(1) for each UID that follows the previous hit in
    /// the list (as ascending sets like `1:*` do), a full lookup otherwise.
    pub fn cursor(&self) -> UidCursor<'_> {
        UidCursor {
            list: &self.l,
            chunk: 0,
            off: 0,
        }
    }

    /// The messages from 0-based position `i` on, in order.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &MessageMeta> {
        let l = &*self.l;
        let c = l.starts.partition_point(|s| *s <= i).saturating_sub(1);
        let skip = i.saturating_sub(l.starts.get(c).copied().unwrap_or(0));
        l.chunks
            .get(c..)
            .unwrap_or_default()
            .iter()
            .flat_map(|c| c.iter())
            .skip(skip)
    }

    /// The highest UID present.
    pub fn last_uid(&self) -> Option<u32> {
        self.l.chunks.last().and_then(|c| c.last()).map(|m| m.uid)
    }

    /// The summary of this picture: worked out from the chunks' tallies once, then shared.
    fn summary(&self) -> Summary {
        let l = &*self.l;
        *l.summary.get_or_init(|| {
            let mut tally = Tally::default();
            let mut first_unseen = None;
            for (chunk, start) in l.chunks.iter().zip(&l.starts) {
                if first_unseen.is_none() && chunk.tally.unseen > 0 {
                    first_unseen = chunk
                        .iter()
                        .position(|m| !m.flags.system.contains(SystemFlags::SEEN))
                        .map(|off| start + off);
                }
                tally.add(chunk.tally);
            }
            Summary {
                tally,
                first_unseen,
            }
        })
    }

    /// Counts over all messages (STATUS): no scan of the messages, see the module docs.
    pub fn tally(&self) -> Tally {
        self.summary().tally
    }

    /// 0-based position of the first message without `\Seen` (SELECT's `[UNSEEN n]`): no
    /// scan of the messages, see the module docs.
    pub fn first_unseen(&self) -> Option<usize> {
        self.summary().first_unseen
    }

    /// All messages in UID order.
    pub fn iter(&self) -> impl Iterator<Item = &MessageMeta> {
        self.l.chunks.iter().flat_map(|c| c.iter())
    }

    /// Appends a message; its UID must be above every UID present
    /// (returns false and does nothing otherwise).
    pub fn push(&mut self, meta: MessageMeta) -> bool {
        if self.last_uid().is_some_and(|u| u >= meta.uid) {
            return false;
        }
        let l = self.lists_mut();
        match l.chunks.last_mut() {
            Some(last) if last.len() < MESSAGE_LIST_CHUNK => Arc::make_mut(last).push(meta),
            _ => {
                l.starts.push(l.len);
                l.firsts.push(meta.uid);
                let mut c = Chunk {
                    metas: Vec::with_capacity(MESSAGE_LIST_CHUNK),
                    tally: Tally::default(),
                };
                c.push(meta);
                l.chunks.push(Arc::new(c));
            }
        }
        l.len += 1;
        true
    }

    /// Changes the message at position `i` (copying only its chunk if shared).
    pub fn update(&mut self, i: usize, f: impl FnOnce(&mut MessageMeta)) -> bool {
        if i >= self.l.len {
            return false;
        }
        let Some(c) = self.l.starts.partition_point(|s| *s <= i).checked_sub(1) else {
            return false;
        };
        let l = self.lists_mut();
        let (Some(start), Some(chunk)) = (l.starts.get(c).copied(), l.chunks.get_mut(c)) else {
            return false;
        };
        Arc::make_mut(chunk).update(i - start, f)
    }

    /// Keeps only messages for which `keep` is true; untouched chunks stay shared.
    pub fn retain(&mut self, mut keep: impl FnMut(&MessageMeta) -> bool) {
        let l = self.lists_mut();
        let mut chunks = Vec::with_capacity(l.chunks.len());
        for chunk in l.chunks.drain(..) {
            if chunk.iter().all(&mut keep) {
                chunks.push(chunk);
                continue;
            }
            let v: Vec<MessageMeta> = chunk.iter().filter(|m| keep(m)).cloned().collect();
            if !v.is_empty() {
                chunks.push(Arc::new(Chunk::from_vec(v)));
            }
        }
        // Merge neighbours left small by expunges so lookups stay logarithmic.
        let mut merged: Vec<Arc<Chunk>> = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if let Some(prev) = merged.last_mut()
                && prev.len() + chunk.len() <= MESSAGE_LIST_CHUNK / 2
            {
                Arc::make_mut(prev).extend(&chunk);
                continue;
            }
            merged.push(chunk);
        }
        l.chunks = merged;
        l.reindex();
    }

    /// True when both lists share every chunk, i.e. are the same picture
    /// (a refresh with nothing new skips comparing 100,000 entries).
    pub fn same_chunks(&self, other: &MessageList) -> bool {
        let (a, b) = (&*self.l, &*other.l);
        Arc::ptr_eq(&self.l, &other.l)
            || (a.chunks.len() == b.chunks.len()
                && a.chunks
                    .iter()
                    .zip(b.chunks.iter())
                    .all(|(a, b)| Arc::ptr_eq(a, b)))
    }

    /// Builds a list from messages already in ascending UID order.
    pub fn from_sorted(metas: impl IntoIterator<Item = MessageMeta>) -> Self {
        // Chunks filled in place, not a push (and `Arc::make_mut`) each.
        let mut list = Lists::default();
        let mut chunk: Vec<MessageMeta> = Vec::new();
        let mut last: Option<u32> = None;
        for m in metas {
            // As `push` would: a UID not above the one before is dropped.
            if last.is_some_and(|u| u >= m.uid) {
                continue;
            }
            last = Some(m.uid);
            if chunk.len() >= MESSAGE_LIST_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(MESSAGE_LIST_CHUNK));
                list.chunks.push(Arc::new(Chunk::from_vec(full)));
            }
            if chunk.is_empty() {
                chunk.reserve_exact(MESSAGE_LIST_CHUNK);
                list.starts.push(list.len);
                list.firsts.push(m.uid);
            }
            chunk.push(m);
            list.len += 1;
        }
        if !chunk.is_empty() {
            list.chunks.push(Arc::new(Chunk::from_vec(chunk)));
        }
        MessageList { l: Arc::new(list) }
    }
}

impl Lists {
    fn reindex(&mut self) {
        self.starts.clear();
        self.firsts.clear();
        let mut n = 0;
        for c in &self.chunks {
            self.starts.push(n);
            self.firsts.push(c.first().map_or(0, |m| m.uid));
            n += c.len();
        }
        self.len = n;
    }
}

/// Looks UIDs up in a [`MessageList`], remembering where the last one was found.
pub struct UidCursor<'a> {
    list: &'a Lists,
    /// Chunk and offset just after the last hit.
    chunk: usize,
    off: usize,
}

impl<'a> UidCursor<'a> {
    /// 0-based position and message of `uid`.
    pub fn find(&mut self, uid: u32) -> Option<(usize, &'a MessageMeta)> {
        let list = self.list;
        if let Some(chunk) = list.chunks.get(self.chunk) {
            let rest = chunk.get(self.off..).unwrap_or_default();
            // Most lookups ask for the very next message; else it may be later in this chunk.
            let found = match rest.first() {
                Some(m) if m.uid == uid => Some(0),
                Some(m) if m.uid < uid && rest.last().is_some_and(|l| l.uid >= uid) => {
                    rest.binary_search_by_key(&uid, |m| m.uid).ok()
                }
                _ => None,
            };
            if let (Some(k), Some(start)) = (found, list.starts.get(self.chunk)) {
                let off = self.off + k;
                self.advance(off);
                return chunk.get(off).map(|m| (start + off, m));
            }
        }
        let c = list.firsts.partition_point(|f| *f <= uid).checked_sub(1)?;
        let chunk = list.chunks.get(c)?;
        let off = chunk.binary_search_by_key(&uid, |m| m.uid).ok()?;
        self.chunk = c;
        self.advance(off);
        Some((list.starts.get(c)? + off, chunk.get(off)?))
    }

    /// Moves just past offset `off` of the current chunk.
    fn advance(&mut self, off: usize) {
        let len = self.list.chunks.get(self.chunk).map_or(0, |c| c.len());
        if off + 1 >= len {
            self.chunk += 1;
            self.off = 0;
        } else {
            self.off = off + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Flags, InternalDate};

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Flags::default(),
            modseq: 1,
            phys_size: 10,
            virt_size: 10,
            internal_date: InternalDate::at(0),
        }
    }

    #[test]
    fn a_message_costs_64_bytes() {
        // docs/design/storage.md: a flag change copies one chunk of 1024 of them (64 KiB).
        assert_eq!(std::mem::size_of::<MessageMeta>(), 64);
    }

    #[test]
    fn from_sorted_matches_pushing_one_by_one() {
        let uids: Vec<u32> = (1..=3000).map(|u| u * 3).chain([2, 9000, 9001]).collect();
        let metas: Vec<MessageMeta> = uids.iter().map(|u| meta(*u)).collect();
        let a = MessageList::from_sorted(metas.clone());
        let mut b = MessageList::default();
        for m in metas {
            b.push(m);
        }
        assert_eq!(a.len(), 3001);
        assert_eq!(
            (a.l.starts.clone(), a.l.firsts.clone()),
            (b.l.starts.clone(), b.l.firsts.clone())
        );
        let all = |l: &MessageList| l.iter().map(|m| m.uid).collect::<Vec<_>>();
        assert_eq!(all(&a), all(&b));
        assert_eq!(a.position(9001), Some(3000));
        assert!(MessageList::from_sorted(Vec::new()).is_empty());
    }

    #[test]
    fn push_get_position_retain() {
        let mut l = MessageList::default();
        for uid in (1..=5000).map(|u| u * 2) {
            assert!(l.push(meta(uid)));
        }
        assert!(!l.push(meta(3)));
        assert_eq!(l.len(), 5000);
        assert_eq!(l.get(0).map(|m| m.uid), Some(2));
        assert_eq!(l.get(4999).map(|m| m.uid), Some(10000));
        assert_eq!(l.position(2048), Some(1023));
        assert_eq!(l.position(2049), None);
        assert_eq!(l.rank(2049), 1024);
        assert_eq!(l.rank(1), 0);
        assert_eq!(l.rank(20000), 5000);
        let snapshot = l.clone();
        l.retain(|m| m.uid % 4 != 0);
        assert_eq!(l.len(), 2500);
        assert_eq!(l.get(1).map(|m| m.uid), Some(6));
        assert_eq!(snapshot.len(), 5000);
        assert!(l.update(0, |m| m.modseq = 9));
        assert_eq!(l.get(0).map(|m| m.modseq), Some(9));
        assert_eq!(snapshot.get(0).map(|m| m.modseq), Some(1));
        assert_eq!(l.iter().count(), 2500);
    }

    #[test]
    fn cursor_and_iter_from_agree_with_lookups() {
        let mut l = MessageList::default();
        for uid in (1..=5000).map(|u| u * 3) {
            assert!(l.push(meta(uid)));
        }
        l.retain(|m| m.uid % 7 != 0);
        let mut cur = l.cursor();
        // Ascending (every UID, hits and misses), then backwards, jumps and repeats.
        let mut asked: Vec<u32> = (0..=15_010).collect();
        asked.extend([9000, 3, 3, 14_997, 1026, 1029, 6, 15_000, 2, 3075, 3078]);
        for uid in asked {
            let want = l.position(uid).and_then(|i| l.get(i).map(|m| (i, m.uid)));
            assert_eq!(cur.find(uid).map(|(i, m)| (i, m.uid)), want, "uid {uid}");
        }
        // Merged small chunks after heavy expunges.
        l.retain(|m| m.uid % 5 == 0);
        let mut cur = l.cursor();
        for uid in (0..=15_010).chain([30, 15, 14_985, 60]) {
            let want = l.position(uid).and_then(|i| l.get(i).map(|m| (i, m.uid)));
            assert_eq!(cur.find(uid).map(|(i, m)| (i, m.uid)), want, "uid {uid}");
        }
        for i in [0, 1, 200, 511, 512, l.len() - 1, l.len(), l.len() + 5] {
            let want: Vec<u32> = l.iter().skip(i).map(|m| m.uid).collect();
            let got: Vec<u32> = l.iter_from(i).map(|m| m.uid).collect();
            assert_eq!(got, want, "from {i}");
        }
    }

    /// What the tally and first unseen position must be, counted message by message.
    fn counted(l: &MessageList) -> (Tally, Option<usize>) {
        let mut t = Tally::default();
        for m in l.iter() {
            t.add(Tally::of(m));
        }
        let first = l
            .iter()
            .position(|m| !m.flags.system.contains(SystemFlags::SEEN));
        (t, first)
    }

    fn summarised(l: &MessageList) -> (Tally, Option<usize>) {
        (l.tally(), l.first_unseen())
    }

    #[test]
    fn tallies_follow_every_change_and_leave_shared_pictures_alone() {
        let seen = |uid: u32| {
            let mut m = meta(uid);
            m.virt_size = u64::from(uid % 7) + 1;
            m.phys_size = u64::from(uid % 5) + 1;
            m.flags.system = SystemFlags::SEEN;
            m
        };
        let mut l = MessageList::from_sorted((1..=3000).map(seen));
        assert_eq!(summarised(&l), counted(&l));
        assert_eq!(l.first_unseen(), None);
        assert_eq!(l.tally().unseen, 0);
        let mut pictures = vec![l.clone()];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % n as u64).unwrap_or(0)
        };
        let mut uid = 3000;
        for step in 0..400 {
            match next(5) {
                0 => {
                    uid += 1;
                    let mut m = seen(uid);
                    if next(3) == 0 {
                        m.flags.system = SystemFlags::EMPTY;
                    }
                    assert!(l.push(m));
                }
                1 if !l.is_empty() => {
                    let i = next(l.len());
                    assert!(l.update(i, |m| {
                        m.flags.system = SystemFlags(m.flags.system.0 ^ SystemFlags::SEEN.0)
                    }));
                }
                2 if !l.is_empty() => {
                    let i = next(l.len());
                    assert!(l.update(i, |m| {
                        m.flags.system = SystemFlags(m.flags.system.0 ^ SystemFlags::DELETED.0);
                        m.virt_size += 3;
                    }));
                }
                3 => {
                    let k = u32::try_from(next(9) + 2).unwrap_or(2);
                    l.retain(|m| m.uid % k != 0 || m.uid % 3 == 0);
                }
                _ => pictures.push(l.clone()),
            }
            // Asked for before and after the change: a stale summary would show.
            assert_eq!(summarised(&l), counted(&l), "step {step}");
        }
        // A picture taken earlier keeps its own counts, whatever the list did since.
        for p in &pictures {
            assert_eq!(summarised(p), counted(p));
        }
        let first = pictures.first().map(summarised);
        assert_eq!(first.map(|(t, f)| (t.unseen, f)), Some((0, None)));
    }
}
