//! Sort columns shared by all sessions of the process, as Dovecot keeps sort ranks in its
//! index: for one mailbox (its [`crate::storage::MailboxHandle::identity`] and UIDVALIDITY) and
//! one key, the integer [`super::keys::columns`] computed per UID (a string's rank among the
//! distinct strings of the messages it was computed for, a date as itself).
//!
//! A message's keys never change while its UID and UIDVALIDITY stay, and ranks order any
//! subset of the messages they were computed for as the strings do, so a column answers for
//! every set of UIDs it holds: expunged UIDs are simply not asked for. A sort that asks for a
//! UID the column lacks (a message arrived since) computes the column from the storage cache
//! as without this cache and replaces it. Bounded by [`MAX_SORT_COLUMN_CACHE_BYTES`] and
//! [`MAX_SORT_COLUMN_CACHE_ENTRIES`], least recently used first out.

use std::sync::Arc;

use parking_lot::Mutex;

use super::keys;
use crate::imap::proto::types::{SortCriterion, SortKey};
use crate::imap::search::Hit;
use crate::imap::selected::Selected;
use crate::limits::{MAX_SORT_COLUMN_CACHE_BYTES, MAX_SORT_COLUMN_CACHE_ENTRIES};
use crate::storage::StorageError;

/// The values of one key for some UIDs of one mailbox.
struct Column {
    /// Ascending.
    uids: Vec<u32>,
    /// `values[i]` belongs to `uids[i]`.
    values: Vec<i64>,
}

impl Column {
    /// What it holds, with room for its entry.
    fn bytes(&self) -> usize {
        self.uids.len() * (4 + 8) + 256
    }

    /// The values of `hits` (UIDs ascending), `None` when one of them is missing.
    fn values_of(&self, hits: &[Hit]) -> Option<Vec<i64>> {
        let mut out = Vec::with_capacity(hits.len());
        let mut at = 0usize;
        for h in hits {
            let rest = self.uids.get(at..)?;
            // Usually the next one: a scan from here, then a search of what is left.
            let step = match rest.first() {
                Some(&u) if u == h.uid => 0,
                _ => rest.binary_search(&h.uid).ok()?,
            };
            at += step;
            out.push(*self.values.get(at)?);
            at += 1;
        }
        Some(out)
    }
}

struct Entry {
    identity: String,
    uidvalidity: u32,
    key: SortKey,
    column: Arc<Column>,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    entries: Vec<Entry>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn get(&mut self, identity: &str, uidvalidity: u32, key: SortKey) -> Option<Arc<Column>> {
        self.clock += 1;
        let now = self.clock;
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.key == key && e.uidvalidity == uidvalidity && e.identity == identity)?;
        e.last_used = now;
        Some(Arc::clone(&e.column))
    }

    fn put(&mut self, identity: &str, uidvalidity: u32, key: SortKey, column: Column) {
        self.clock += 1;
        let now = self.clock;
        if let Some(i) = self
            .entries
            .iter()
            .position(|e| e.key == key && e.identity == identity)
        {
            // Another UIDVALIDITY of the same mailbox is dead: replace it too.
            let old = self.entries.swap_remove(i);
            self.bytes -= old.column.bytes();
        }
        let size = column.bytes();
        if size > MAX_SORT_COLUMN_CACHE_BYTES {
            return;
        }
        while self.bytes + size > MAX_SORT_COLUMN_CACHE_BYTES
            || self.entries.len() >= MAX_SORT_COLUMN_CACHE_ENTRIES
        {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            let old = self.entries.swap_remove(oldest);
            self.bytes -= old.column.bytes();
        }
        self.bytes += size;
        self.entries.push(Entry {
            identity: identity.to_owned(),
            uidvalidity,
            key,
            column: Arc::new(column),
            last_used: now,
        });
    }
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

fn with_cache<T>(f: impl FnOnce(&mut Cache) -> T) -> T {
    let mut guard = CACHE.lock();
    f(guard.get_or_insert_with(Cache::default))
}

/// Whether a key's column is kept here (SIZE comes from the picture at no cost).
fn shared(key: SortKey) -> bool {
    key != SortKey::Size
}

/// [`keys::columns`] for `hits` (ascending) and `criteria`, answered from the shared columns
/// where they hold every UID of `hits`; the others are computed and stored.
pub(crate) async fn columns(
    sel: &mut Selected,
    hits: &[Hit],
    criteria: &[SortCriterion],
) -> Result<Vec<Vec<i64>>, StorageError> {
    let Some(identity) = sel.view.identity() else {
        return keys::columns(sel, hits, criteria).await;
    };
    let uidvalidity = sel.view.uidvalidity();
    let mut out: Vec<Option<Vec<i64>>> = criteria
        .iter()
        .map(|c| {
            if !shared(c.key) {
                return None;
            }
            let col = with_cache(|cache| cache.get(&identity, uidvalidity, c.key))?;
            col.values_of(hits)
        })
        .collect();
    // Columns do not depend on REVERSE (the order applies it).
    let missing: Vec<SortCriterion> = criteria
        .iter()
        .zip(&out)
        .filter(|(_, got)| got.is_none())
        .map(|(c, _)| SortCriterion {
            reverse: false,
            key: c.key,
        })
        .collect();
    if !missing.is_empty() {
        let mut computed = keys::columns(sel, hits, &missing).await?.into_iter();
        let uids: Vec<u32> = hits.iter().map(|h| h.uid).collect();
        for (c, slot) in criteria.iter().zip(out.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            let col = computed.next().unwrap_or_default();
            // A message expunged meanwhile got empty keys: keep its UID out of the column
            // (a session that still shows it computes its keys itself).
            if shared(c.key) && col.len() == uids.len() {
                let live: Vec<bool> = hits
                    .iter()
                    .map(|h| sel.view.get(h.seq).is_some_and(|m| m.uid == h.uid))
                    .collect();
                let (u, v): (Vec<u32>, Vec<i64>) = uids
                    .iter()
                    .zip(&col)
                    .zip(&live)
                    .filter(|(_, l)| **l)
                    .map(|((u, v), _)| (*u, *v))
                    .unzip();
                let column = Column { uids: u, values: v };
                with_cache(|cache| cache.put(&identity, uidvalidity, c.key, column));
            }
            *slot = Some(col);
        }
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(uid: u32) -> Hit {
        Hit {
            seq: uid,
            uid,
            modseq: 0,
        }
    }

    #[test]
    fn a_column_answers_for_subsets_only() {
        let c = Column {
            uids: vec![2, 3, 5, 9],
            values: vec![20, 30, 50, 90],
        };
        let hits: Vec<Hit> = [3, 9].into_iter().map(hit).collect();
        assert_eq!(c.values_of(&hits), Some(vec![30, 90]));
        let all: Vec<Hit> = [2, 3, 5, 9].into_iter().map(hit).collect();
        assert_eq!(c.values_of(&all), Some(vec![20, 30, 50, 90]));
        let new: Vec<Hit> = [3, 10].into_iter().map(hit).collect();
        assert_eq!(c.values_of(&new), None);
        let gap: Vec<Hit> = [4].into_iter().map(hit).collect();
        assert_eq!(c.values_of(&gap), None);
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let mut cache = Cache::default();
        let n = MAX_SORT_COLUMN_CACHE_BYTES / 12 / 3;
        let col = || Column {
            uids: (0..n as u32).collect(),
            values: vec![0; n],
        };
        for name in ["a", "b", "c", "d"] {
            cache.put(name, 1, SortKey::Subject, col());
            assert!(cache.bytes <= MAX_SORT_COLUMN_CACHE_BYTES);
        }
        assert!(cache.get("a", 1, SortKey::Subject).is_none());
        assert!(cache.get("d", 1, SortKey::Subject).is_some());
        assert!(cache.get("d", 2, SortKey::Subject).is_none());
        assert!(cache.get("d", 1, SortKey::From).is_none());
        for i in 0..MAX_SORT_COLUMN_CACHE_ENTRIES + 10 {
            cache.put(
                &i.to_string(),
                1,
                SortKey::From,
                Column {
                    uids: vec![1],
                    values: vec![1],
                },
            );
        }
        assert!(cache.entries.len() <= MAX_SORT_COLUMN_CACHE_ENTRIES);
        assert!(cache.get("0", 1, SortKey::From).is_none());
        assert!(cache.get("4100", 1, SortKey::From).is_some());
    }
}
