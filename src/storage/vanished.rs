//! The remembered expunges of one mailbox, for QRESYNC's `VANISHED (EARLIER)`.
//!
//! Every expunge takes its own modseq (strictly greater than every earlier one), so the UIDs
//! expunged after a client's last known modseq are exactly the window's entries above it, as long
//! as the window still reaches back that far. It keeps the last [`VANISHED_WINDOW`] expunges; the
//! `floor` is the highest modseq it has forgotten (or, for a mailbox whose earlier history is not
//! known, the modseq it started at): a question about any modseq at or above the floor has an
//! exact answer, one below it does not ([`Vanished::Unknown`]).

use std::collections::VecDeque;

use crate::limits::VANISHED_WINDOW;

/// What [`crate::storage::MailboxHandle::vanished_since`] knows (RFC 7162 3.2.5.2, 3.2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vanished {
    /// Every UID expunged with a modseq greater than the one asked about, ascending.
    Exact(Vec<u32>),
    /// The remembered window does not reach back that far: the caller must treat every UID
    /// below UIDNEXT that is not in the mailbox as possibly expunged (the RFC allows that).
    Unknown,
}

/// The bounded window of `(modseq, uid)` expunges of one mailbox, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VanishedWindow {
    /// Ascending by modseq.
    entries: VecDeque<(u64, u32)>,
    /// Expunges with a modseq at or below this may have been forgotten.
    floor: u64,
}

impl VanishedWindow {
    /// An empty window that knows every expunge with a modseq above `floor` (0 for a new
    /// mailbox: it knows them all).
    pub(crate) fn new(floor: u64) -> Self {
        VanishedWindow {
            entries: VecDeque::new(),
            floor,
        }
    }

    /// The highest modseq whose expunges may have been forgotten.
    #[allow(
        dead_code,
        reason = "the Maildir index keeps the window too, next step"
    )]
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// Forgets everything at or below `floor` (a base that did not carry the window).
    #[allow(
        dead_code,
        reason = "the Maildir index keeps the window too, next step"
    )]
    pub(crate) fn raise_floor(&mut self, floor: u64) {
        if floor > self.floor {
            self.floor = floor;
            while self.entries.front().is_some_and(|(m, _)| *m <= floor) {
                self.entries.pop_front();
            }
        }
    }

    /// Remembers that `uid` was expunged at `modseq`, forgetting the oldest entry when full.
    /// An entry older than the newest one (a replayed record seen twice) is ignored.
    pub(crate) fn record(&mut self, uid: u32, modseq: u64) {
        if modseq <= self.floor || self.entries.back().is_some_and(|(m, _)| *m >= modseq) {
            return;
        }
        self.entries.push_back((modseq, uid));
        while self.entries.len() > VANISHED_WINDOW {
            if let Some((m, _)) = self.entries.pop_front() {
                self.floor = self.floor.max(m);
            }
        }
    }

    /// The UIDs expunged after `modseq`, if the window reaches back that far.
    pub(crate) fn since(&self, modseq: u64) -> Vanished {
        if modseq < self.floor {
            return Vanished::Unknown;
        }
        let start = self.entries.partition_point(|(m, _)| *m <= modseq);
        let mut uids: Vec<u32> = self.entries.range(start..).map(|(_, u)| *u).collect();
        uids.sort_unstable();
        uids.dedup();
        Vanished::Exact(uids)
    }

    /// The remembered `(uid, modseq)` pairs, oldest first (for writing them out).
    #[allow(
        dead_code,
        reason = "the Maildir index keeps the window too, next step"
    )]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.entries.iter().map(|(m, u)| (*u, *m))
    }

    /// Number of remembered expunges.
    #[allow(
        dead_code,
        reason = "the Maildir index keeps the window too, next step"
    )]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_inside_the_window_unknown_below_it() {
        let mut w = VanishedWindow::new(0);
        assert_eq!(w.since(1), Vanished::Exact(vec![]));
        w.record(9, 5);
        w.record(3, 6);
        w.record(4, 8);
        assert_eq!(w.since(0), Vanished::Exact(vec![3, 4, 9]));
        assert_eq!(w.since(5), Vanished::Exact(vec![3, 4]));
        assert_eq!(w.since(7), Vanished::Exact(vec![4]));
        assert_eq!(w.since(8), Vanished::Exact(vec![]));
        // A replayed record is not counted twice.
        w.record(9, 5);
        assert_eq!(w.len(), 3);
        w.raise_floor(6);
        assert_eq!(w.since(5), Vanished::Unknown);
        assert_eq!(w.since(6), Vanished::Exact(vec![4]));
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![(4, 8)]);
    }

    #[test]
    fn the_window_is_bounded_and_its_floor_follows_what_it_forgot() {
        let mut w = VanishedWindow::new(10);
        w.record(1, 10);
        assert_eq!(w.len(), 0, "at or below the floor is already unknown");
        let n = u32::try_from(VANISHED_WINDOW).unwrap_or(u32::MAX);
        for i in 1..=n + 2 {
            w.record(i, 10 + u64::from(i));
        }
        assert_eq!(w.len(), VANISHED_WINDOW);
        assert_eq!(w.floor(), 12);
        assert_eq!(w.since(11), Vanished::Unknown);
        assert_eq!(
            w.since(10 + u64::from(n)),
            Vanished::Exact(vec![n + 1, n + 2])
        );
    }
}
