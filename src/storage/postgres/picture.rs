//! The last picture (message list) of each mailbox this process read, so that a refresh reads
//! only what changed since: the rows whose modseq is above the picture's HIGHESTMODSEQ and the
//! expunge tombstones above it. A warm SELECT of a mailbox nobody changed reads one row (the
//! mailbox's), whatever its size, as Dovecot's index makes it; one with a few changes reads those.
//!
//! Bounded: at most [`crate::limits::PG_PICTURE_CACHE_MESSAGES`] messages across all cached
//! pictures, the least recently used dropped first. A picture still held by a session's view
//! costs nothing extra (the chunks are shared, [`crate::storage::MessageList`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::storage::{MessageList, MessageMeta, Snapshot};

/// The cached pictures of one process, keyed by `(user_id, mailbox_id)`.
#[derive(Default)]
pub(crate) struct Pictures {
    entries: HashMap<(i64, i64), (Arc<Snapshot>, u64)>,
    /// Messages in all entries.
    messages: usize,
    /// Use counter for least-recently-used eviction.
    clock: u64,
}

impl Pictures {
    /// The cached picture of a mailbox, marked as used.
    pub fn get(&mut self, key: (i64, i64)) -> Option<Arc<Snapshot>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(&key).map(|(s, used)| {
            *used = clock;
            s.clone()
        })
    }

    /// Keeps `snapshot` as the mailbox's picture, dropping the least recently used ones beyond
    /// the budget (a picture larger than the whole budget is not kept).
    pub fn put(&mut self, key: (i64, i64), snapshot: Arc<Snapshot>) {
        self.forget(key);
        let n = snapshot.messages.len();
        let budget = crate::limits::PG_PICTURE_CACHE_MESSAGES;
        if n > budget {
            return;
        }
        while self.messages + n > budget {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            self.forget(oldest);
        }
        self.clock += 1;
        self.messages += n;
        self.entries.insert(key, (snapshot, self.clock));
    }

    /// Drops a mailbox's picture (deleted, or its refresh failed half-way).
    pub fn forget(&mut self, key: (i64, i64)) {
        if let Some((s, _)) = self.entries.remove(&key) {
            self.messages -= s.messages.len();
        }
    }
}

/// `base` with the expunged UIDs removed and the changed or new messages (ascending UID)
/// applied; `None` when a change does not fit (a new UID below one present), and the caller
/// reads the whole list instead.
pub(crate) fn apply(
    base: &MessageList,
    expunged: &[u32],
    changed: Vec<MessageMeta>,
) -> Option<MessageList> {
    let mut list = base.clone();
    if !expunged.is_empty() {
        let gone: std::collections::HashSet<u32> = expunged.iter().copied().collect();
        list.retain(|m| !gone.contains(&m.uid));
    }
    for meta in changed {
        match list.position(meta.uid) {
            Some(i) => {
                list.update(i, |m| *m = meta);
            }
            None => {
                if !list.push(meta) {
                    return None;
                }
            }
        }
    }
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Flags, InternalDate, SystemFlags};

    fn meta(uid: u32, modseq: u64, seen: bool) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Flags {
                system: if seen {
                    SystemFlags::SEEN
                } else {
                    SystemFlags::default()
                },
                keywords: Default::default(),
            },
            modseq,
            phys_size: 10,
            virt_size: 10,
            internal_date: InternalDate::at(0),
        }
    }

    fn snapshot(uids: &[u32]) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            uidvalidity: 1,
            uidnext: uids.last().map_or(1, |u| u + 1),
            highest_modseq: 1,
            keywords: Arc::from([]),
            keyword_limit: 0,
            messages: MessageList::from_sorted(uids.iter().map(|&u| meta(u, 1, false))),
        })
    }

    #[test]
    fn changes_apply_in_place_and_new_uids_append() {
        let base = MessageList::from_sorted((1..=5).map(|u| meta(u, 1, false)));
        let out = apply(&base, &[2, 4], vec![meta(3, 7, true), meta(9, 8, false)]).unwrap();
        let uids: Vec<u32> = out.iter().map(|m| m.uid).collect();
        assert_eq!(uids, vec![1, 3, 5, 9]);
        let three = out.find(3).unwrap();
        assert_eq!(three.modseq, 7);
        assert!(three.flags.system.contains(SystemFlags::SEEN));
        // The base picture (still held by views) is untouched.
        assert_eq!(base.len(), 5);
        assert_eq!(base.find(3).unwrap().modseq, 1);
        // A "new" UID below the last one present does not fit.
        assert!(apply(&base, &[], vec![meta(0, 9, false)]).is_none());
    }

    #[test]
    fn the_cache_keeps_to_its_budget_least_recently_used_first() {
        let budget = crate::limits::PG_PICTURE_CACHE_MESSAGES;
        let mut p = Pictures::default();
        let half: Vec<u32> = (1..=u32::try_from(budget / 2).unwrap()).collect();
        p.put((1, 1), snapshot(&half));
        p.put((1, 2), snapshot(&half));
        assert!(
            p.get((1, 1)).is_some(),
            "touch (1, 1): (1, 2) is now the oldest"
        );
        p.put((2, 1), snapshot(&[1, 2, 3]));
        assert!(p.get((1, 2)).is_none());
        assert!(p.get((1, 1)).is_some());
        assert!(p.get((2, 1)).is_some());
        assert!(p.messages <= budget);
        p.forget((1, 1));
        assert_eq!(p.messages, 3);
        let too_big: Vec<u32> = (1..=u32::try_from(budget + 1).unwrap()).collect();
        p.put((3, 1), snapshot(&too_big));
        assert!(p.get((3, 1)).is_none());
        assert_eq!(p.messages, 3);
    }
}
