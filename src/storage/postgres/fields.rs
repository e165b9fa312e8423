//! The cached summaries (ENVELOPE, BODYSTRUCTURE, header fields: `message_cache` rows) this
//! process read or wrote, kept in memory so that a warm FETCH ENVELOPE or SEARCH FROM of a
//! mailbox reads no rows at all, as Maildir's cache file makes it. An entry never changes: it is
//! derived from a message's bytes, and `(mailbox_id, UIDVALIDITY, uid)` names one message for
//! good (mailbox ids are not reused, and a UID is not reused under one UIDVALIDITY; only an
//! import into an empty mailbox gives it another UIDVALIDITY). A message expunged through this
//! process is forgotten at once ([`Fields::forget`]); one expunged on another node is no longer
//! asked for once the views here have refreshed, and ages out.
//!
//! Bounded to [`crate::limits::PG_FIELD_CACHE_BYTES`], least recently used message first out
//! (the `lru` crate, already in the tree through tantivy).

use bytes::Bytes;
use lru::LruCache;

/// `(user_id, mailbox_id, uidvalidity, uid)`.
pub(crate) type Key = (i64, i64, u32, u32);

/// What one entry costs besides its bytes (key, field id, list).
const ENTRY_OVERHEAD: usize = 64;

/// See the module docs.
pub(crate) struct Fields {
    lru: LruCache<Key, Vec<(u8, Bytes)>>,
    bytes: usize,
    budget: usize,
}

impl Default for Fields {
    fn default() -> Self {
        Fields::with_budget(crate::limits::PG_FIELD_CACHE_BYTES)
    }
}

fn cost(fields: &[(u8, Bytes)]) -> usize {
    fields.iter().map(|(_, b)| b.len() + ENTRY_OVERHEAD).sum()
}

impl Fields {
    pub fn with_budget(budget: usize) -> Self {
        Fields {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    /// Field `field` of message `key`, marking the message as used.
    pub fn get(&mut self, key: &Key, field: u8) -> Option<Bytes> {
        self.lru
            .get(key)
            .and_then(|f| f.iter().find(|(id, _)| *id == field))
            .map(|(_, b)| b.clone())
    }

    /// Keeps field `field` of message `key`, dropping the least recently used messages beyond
    /// the budget.
    pub fn put(&mut self, key: Key, field: u8, value: Bytes) {
        if value.len() + ENTRY_OVERHEAD > self.budget {
            return;
        }
        let added = value.len() + ENTRY_OVERHEAD;
        match self.lru.get_mut(&key) {
            Some(fields) => match fields.iter_mut().find(|(id, _)| *id == field) {
                Some(slot) => {
                    self.bytes -= slot.1.len() + ENTRY_OVERHEAD;
                    slot.1 = value;
                }
                None => fields.push((field, value)),
            },
            None => {
                self.lru.put(key, vec![(field, value)]);
            }
        }
        self.bytes += added;
        while self.bytes > self.budget {
            match self.lru.pop_lru() {
                Some((_, f)) => self.bytes -= cost(&f),
                None => break,
            }
        }
    }

    /// Forgets a message (expunged).
    pub fn forget(&mut self, key: &Key) {
        if let Some(f) = self.lru.pop(key) {
            self.bytes -= cost(&f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_within_the_budget_least_recently_used_out() {
        let entry = 100 + ENTRY_OVERHEAD;
        let mut f = Fields::with_budget(entry * 3);
        for uid in 1..=3 {
            f.put((1, 1, 7, uid), 1, Bytes::from(vec![b'x'; 100]));
        }
        assert!(
            f.get(&(1, 1, 7, 1), 1).is_some(),
            "1 is now the most recent"
        );
        assert!(f.get(&(1, 1, 7, 1), 2).is_none(), "another field of it");
        f.put((1, 1, 7, 4), 1, Bytes::from(vec![b'y'; 100]));
        assert!(
            f.get(&(1, 1, 7, 2), 1).is_none(),
            "2 was the least recently used"
        );
        assert!(f.get(&(1, 1, 7, 1), 1).is_some());
        assert!(f.get(&(1, 1, 7, 3), 1).is_some());
        assert_eq!(f.get(&(1, 1, 7, 4), 1).map(|b| b.len()), Some(100));
        assert_eq!(f.bytes, entry * 3);
        // Replacing a field counts its new size only.
        f.put((1, 1, 7, 4), 1, Bytes::from(vec![b'z'; 50]));
        assert_eq!(f.bytes, entry * 3 - 50);
        // A second field of one message; the oldest message goes to make room.
        f.put((1, 1, 7, 4), 3, Bytes::from(vec![b'b'; 50]));
        assert_eq!(f.get(&(1, 1, 7, 4), 3).map(|b| b.len()), Some(50));
        assert!(f.bytes <= entry * 3);
        // Another UIDVALIDITY is another message.
        assert!(f.get(&(1, 1, 8, 4), 1).is_none());
        // An entry above the whole budget is not kept.
        f.put((1, 1, 7, 9), 1, Bytes::from(vec![b'x'; entry * 4]));
        assert!(f.get(&(1, 1, 7, 9), 1).is_none());
        let before = f.bytes;
        f.forget(&(1, 1, 7, 4));
        assert!(f.get(&(1, 1, 7, 4), 1).is_none());
        assert_eq!(f.bytes, before - (50 + ENTRY_OVERHEAD) * 2);
    }
}
