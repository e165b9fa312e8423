//! Sequence sets (`sequence-set`, RFC 3501 section 9; `$` from RFC 5182).
//!
//! A set is kept as the client wrote it (bounded by
//! [`MAX_SEQUENCE_SET_RANGES`] items)
//! and resolved against the mailbox's current largest number into a
//! [`ResolvedSet`]: sorted, merged ranges. Nothing is ever expanded into one
//! entry per message, so `1:4294967295` costs one range.

use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use crate::limits::MAX_SEQUENCE_SET_RANGES;

/// `seq-number = nz-number / "*"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    /// An explicit number.
    Value(NonZeroU32),
    /// `*`: the largest number in use.
    Star,
}

impl SeqNum {
    fn resolve(self, star: u32) -> u32 {
        match self {
            SeqNum::Value(v) => v.get(),
            SeqNum::Star => star,
        }
    }
}

/// One comma-separated element of a sequence set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceSetItem {
    /// `a:b` in either order; a single number `n` is `n:n`.
    Range(SeqNum, SeqNum),
    /// `$`: the result saved by the last `SEARCH RETURN (SAVE)`.
    Saved,
}

/// A parsed, non-empty sequence set with at most `MAX_SEQUENCE_SET_RANGES` items.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet {
    items: Vec<SequenceSetItem>,
}

impl SequenceSet {
    /// Builds a set; `None` when empty or over the item limit.
    pub fn new(items: Vec<SequenceSetItem>) -> Option<SequenceSet> {
        if items.is_empty() || items.len() > MAX_SEQUENCE_SET_RANGES {
            return None;
        }
        Some(SequenceSet { items })
    }

    /// A set of one explicit range (convenience for tests and the session).
    pub fn range(a: NonZeroU32, b: NonZeroU32) -> SequenceSet {
        SequenceSet {
            items: vec![SequenceSetItem::Range(SeqNum::Value(a), SeqNum::Value(b))],
        }
    }

    /// The items as written.
    pub fn items(&self) -> &[SequenceSetItem] {
        &self.items
    }

    /// True when the set refers to the saved search result (`$`).
    pub fn uses_saved(&self) -> bool {
        self.items.contains(&SequenceSetItem::Saved)
    }

    /// True when the set uses `*`.
    pub fn uses_star(&self) -> bool {
        self.items.iter().any(|i| {
            matches!(
                i,
                SequenceSetItem::Range(SeqNum::Star, _) | SequenceSetItem::Range(_, SeqNum::Star)
            )
        })
    }

    /// The largest explicit number in the set: the session answers BAD when a
    /// message sequence number exceeds the mailbox's size (RFC 3501 `seq-number`).
    pub fn max_explicit(&self) -> Option<u32> {
        self.items
            .iter()
            .flat_map(|i| match i {
                SequenceSetItem::Range(a, b) => [Some(*a), Some(*b)],
                SequenceSetItem::Saved => [None, None],
            })
            .flatten()
            .filter_map(|n| match n {
                SeqNum::Value(v) => Some(v.get()),
                SeqNum::Star => None,
            })
            .max()
    }

    /// Resolves `*` to `star` and `$` to `saved` (empty when `None`, as RFC 5182
    /// says for a missing saved result) into sorted merged ranges.
    ///
    /// `star` is the message count for sequence numbers or the largest UID for
    /// UID sets; a range touching 0 (only possible when `star` is 0) keeps its
    /// part from 1 up.
    pub fn resolve(&self, star: u32, saved: Option<&ResolvedSet>) -> ResolvedSet {
        let mut ranges: Vec<RangeInclusive<u32>> = Vec::with_capacity(self.items.len());
        for item in &self.items {
            match item {
                SequenceSetItem::Range(a, b) => {
                    let (a, b) = (a.resolve(star), b.resolve(star));
                    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                    if hi >= 1 {
                        ranges.push(lo.max(1)..=hi);
                    }
                }
                SequenceSetItem::Saved => {
                    if let Some(s) = saved {
                        ranges.extend(s.ranges.iter().cloned());
                    }
                }
            }
        }
        ResolvedSet::from_ranges(ranges)
    }
}

/// Numbers as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct ResolvedSet {
    ranges: Vec<RangeInclusive<u32>>,
}

impl ResolvedSet {
    /// Sorts and merges arbitrary ranges (empty ones are dropped).
    pub fn from_ranges(mut ranges: Vec<RangeInclusive<u32>>) -> ResolvedSet {
        ranges.retain(|r| r.start() <= r.end());
        ranges.sort_unstable_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if let Some(last) = merged.last_mut()
                && u64::from(*r.start()) <= u64::from(*last.end()) + 1
            {
                if r.end() > last.end() {
                    *last = *last.start()..=*r.end();
                }
                continue;
            }
            merged.push(r);
        }
        ResolvedSet { ranges: merged }
    }

    /// True when `n` is in the set (binary search over ranges).
    pub fn contains(&self, n: u32) -> bool {
        let i = self.ranges.partition_point(|r| *r.end() < n);
        self.ranges.get(i).is_some_and(|r| r.contains(&n))
    }

    /// The merged ranges in ascending order.
    pub fn ranges(&self) -> &[RangeInclusive<u32>] {
        &self.ranges
    }

    /// Every number in ascending order, generated lazily (clamp first: a UID
    /// set can span four billion numbers).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|r| r.clone())
    }

    /// How many numbers the set holds.
    pub fn count(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| u64::from(*r.end()) - u64::from(*r.start()) + 1)
            .sum()
    }

    /// True when the set holds no number.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The part of the set within `1..=max`: a UID set like `1:4294967295`
    /// shrinks to the mailbox's real range before anything iterates it.
    pub fn clamped(&self, max: u32) -> ResolvedSet {
        ResolvedSet {
            ranges: self
                .ranges
                .iter()
                .filter(|r| *r.start() <= max)
                .map(|r| *r.start()..=(*r.end()).min(max))
                .collect(),
        }
    }

    /// Smallest number.
    pub fn min(&self) -> Option<u32> {
        self.ranges.first().map(|r| *r.start())
    }

    /// Largest number.
    pub fn max(&self) -> Option<u32> {
        self.ranges.last().map(|r| *r.end())
    }
}

impl FromIterator<u32> for ResolvedSet {
    fn from_iter<T: IntoIterator<Item = u32>>(iter: T) -> Self {
        ResolvedSet::from_ranges(iter.into_iter().map(|n| n..=n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> SeqNum {
        NonZeroU32::new(n).map_or(SeqNum::Star, SeqNum::Value)
    }

    #[test]
    fn resolves_star_either_order_and_merges() {
        // RFC 3501: 2,4:7,9,12:* with 15 messages.
        let set = SequenceSet::new(vec![
            SequenceSetItem::Range(nz(2), nz(2)),
            SequenceSetItem::Range(nz(7), nz(4)),
            SequenceSetItem::Range(nz(9), nz(9)),
            SequenceSetItem::Range(nz(12), SeqNum::Star),
        ]);
        let r = set.map(|s| s.resolve(15, None));
        let got: Vec<u32> = r.iter().flat_map(|r| r.iter()).collect();
        assert_eq!(got, vec![2, 4, 5, 6, 7, 9, 12, 13, 14, 15]);
        // 3291:* includes the last UID even when below 3291.
        let set = SequenceSet::new(vec![SequenceSetItem::Range(nz(3291), SeqNum::Star)]);
        let r = set.map(|s| s.resolve(100, None));
        assert_eq!(r.map(|r| r.ranges().to_vec()), Some(vec![100..=3291]));
    }

    #[test]
    fn huge_range_is_one_range() {
        let set = SequenceSet::new(vec![SequenceSetItem::Range(nz(1), nz(u32::MAX))]);
        let r = set.map(|s| s.resolve(0, None)).unwrap_or_default();
        assert_eq!(r.count(), u64::from(u32::MAX));
        assert!(r.contains(u32::MAX));
        assert!(r.contains(1));
        assert!(!r.contains(0));
        let c = r.clamped(10);
        assert_eq!(c.ranges(), &[1..=10]);
        assert_eq!(c.iter().count(), 10);
        let two: ResolvedSet = [3, 4, 20].into_iter().collect();
        assert_eq!(two.clamped(3).ranges(), &[3..=3]);
        assert!(two.clamped(2).is_empty());
    }

    #[test]
    fn saved_result_substitutes() {
        let saved: ResolvedSet = [5, 3, 4, 10].into_iter().collect();
        assert_eq!(saved.ranges(), &[3..=5, 10..=10]);
        let set = SequenceSet::new(vec![
            SequenceSetItem::Saved,
            SequenceSetItem::Range(nz(11), nz(11)),
        ]);
        let r = set.as_ref().map(|s| s.resolve(20, Some(&saved)));
        assert_eq!(r.map(|r| r.ranges().to_vec()), Some(vec![3..=5, 10..=11]));
        let r = set.map(|s| s.resolve(20, None));
        assert_eq!(r.map(|r| r.ranges().to_vec()), Some(vec![11..=11]));
    }

    #[test]
    fn limits() {
        assert!(SequenceSet::new(Vec::new()).is_none());
        let many = vec![SequenceSetItem::Range(nz(1), nz(1)); MAX_SEQUENCE_SET_RANGES + 1];
        assert!(SequenceSet::new(many).is_none());
    }
}
