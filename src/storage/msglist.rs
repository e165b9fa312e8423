//! A UID-ordered list of [`MessageMeta`] split into `Arc`'d chunks.
//!
//! Views of a 100,000-message mailbox must be cheap: cloning a list clones
//! about a hundred `Arc`s, and a change to one message copies one chunk
//! (`Arc::make_mut`) while every other chunk stays shared with the views
//! that still hold the old picture.

use std::sync::Arc;

use super::MessageMeta;
use crate::limits::MESSAGE_LIST_CHUNK;

/// Messages in ascending UID order, chunked and copy-on-write.
#[derive(Debug, Clone, Default)]
pub struct MessageList {
    chunks: Vec<Arc<Vec<MessageMeta>>>,
    /// `starts[i]` is the index of the first message of `chunks[i]`.
    starts: Vec<usize>,
    /// `firsts[i]` is the first UID of `chunks[i]`: UID lookups binary-search
    /// this small array instead of touching every probed chunk.
    firsts: Vec<u32>,
    len: usize,
}

impl MessageList {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there is no message.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message at 0-based position `i` (sequence number `i + 1`).
    pub fn get(&self, i: usize) -> Option<&MessageMeta> {
        if i >= self.len {
            return None;
        }
        let c = self.starts.partition_point(|s| *s <= i).checked_sub(1)?;
        let start = *self.starts.get(c)?;
        self.chunks.get(c)?.get(i - start)
    }

    /// 0-based position of `uid`.
    pub fn position(&self, uid: u32) -> Option<usize> {
        let c = self.firsts.partition_point(|f| *f <= uid).checked_sub(1)?;
        let chunk = self.chunks.get(c)?;
        let off = chunk.binary_search_by_key(&uid, |m| m.uid).ok()?;
        Some(self.starts.get(c)? + off)
    }

    /// Number of messages with a UID below `uid`.
    pub fn rank(&self, uid: u32) -> usize {
        let Some(c) = self.firsts.partition_point(|f| *f < uid).checked_sub(1) else {
            return 0;
        };
        match (self.chunks.get(c), self.starts.get(c)) {
            (Some(chunk), Some(start)) => start + chunk.partition_point(|m| m.uid < uid),
            _ => self.len,
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
            list: self,
            chunk: 0,
            off: 0,
        }
    }

    /// The messages from 0-based position `i` on, in order.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &MessageMeta> {
        let c = self.starts.partition_point(|s| *s <= i).saturating_sub(1);
        let skip = i.saturating_sub(self.starts.get(c).copied().unwrap_or(0));
        self.chunks
            .get(c..)
            .unwrap_or_default()
            .iter()
            .flat_map(|c| c.iter())
            .skip(skip)
    }

    /// The highest UID present.
    pub fn last_uid(&self) -> Option<u32> {
        self.chunks.last().and_then(|c| c.last()).map(|m| m.uid)
    }

    /// All messages in UID order.
    pub fn iter(&self) -> impl Iterator<Item = &MessageMeta> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Appends a message; its UID must be above every UID present
    /// (returns false and does nothing otherwise).
    pub fn push(&mut self, meta: MessageMeta) -> bool {
        if self.last_uid().is_some_and(|u| u >= meta.uid) {
            return false;
        }
        match self.chunks.last_mut() {
            Some(last) if last.len() < MESSAGE_LIST_CHUNK => Arc::make_mut(last).push(meta),
            _ => {
                self.starts.push(self.len);
                self.firsts.push(meta.uid);
                let mut v = Vec::with_capacity(MESSAGE_LIST_CHUNK);
                v.push(meta);
                self.chunks.push(Arc::new(v));
            }
        }
        self.len += 1;
        true
    }

    /// Changes the message at position `i` (copying only its chunk if shared).
    pub fn update(&mut self, i: usize, f: impl FnOnce(&mut MessageMeta)) -> bool {
        if i >= self.len {
            return false;
        }
        let Some(c) = self.starts.partition_point(|s| *s <= i).checked_sub(1) else {
            return false;
        };
        let (Some(start), Some(chunk)) = (self.starts.get(c).copied(), self.chunks.get_mut(c))
        else {
            return false;
        };
        match Arc::make_mut(chunk).get_mut(i - start) {
            Some(m) => {
                f(m);
                true
            }
            None => false,
        }
    }

    /// Keeps only messages for which `keep` is true; untouched chunks stay shared.
    pub fn retain(&mut self, mut keep: impl FnMut(&MessageMeta) -> bool) {
        let mut chunks = Vec::with_capacity(self.chunks.len());
        for chunk in self.chunks.drain(..) {
            if chunk.iter().all(&mut keep) {
                chunks.push(chunk);
                continue;
            }
            let v: Vec<MessageMeta> = chunk.iter().filter(|m| keep(m)).cloned().collect();
            if !v.is_empty() {
                chunks.push(Arc::new(v));
            }
        }
        // Merge neighbours left small by expunges so lookups stay logarithmic.
        let mut merged: Vec<Arc<Vec<MessageMeta>>> = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            if let Some(prev) = merged.last_mut()
                && prev.len() + chunk.len() <= MESSAGE_LIST_CHUNK / 2
            {
                Arc::make_mut(prev).extend_from_slice(&chunk);
                continue;
            }
            merged.push(chunk);
        }
        self.chunks = merged;
        self.reindex();
    }

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

    /// True when both lists share every chunk, i.e. are the same picture
    /// (a refresh with nothing new skips comparing 100,000 entries).
    pub fn same_chunks(&self, other: &MessageList) -> bool {
        self.chunks.len() == other.chunks.len()
            && self
                .chunks
                .iter()
                .zip(other.chunks.iter())
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// Builds a list from messages already in ascending UID order.
    pub fn from_sorted(metas: impl IntoIterator<Item = MessageMeta>) -> Self {
        // Chunks filled in place, not a push (and `Arc::make_mut`) each.
        let mut list = MessageList::default();
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
                list.chunks.push(Arc::new(full));
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
            list.chunks.push(Arc::new(chunk));
        }
        list
    }
}

/// Looks UIDs up in a [`MessageList`], remembering where the last one was found.
pub struct UidCursor<'a> {
    list: &'a MessageList,
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
            (a.starts.clone(), a.firsts.clone()),
            (b.starts.clone(), b.firsts.clone())
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
}
