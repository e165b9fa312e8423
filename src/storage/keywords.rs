//! [`KeywordSet`]: the keywords of one message, as bits indexing its mailbox's keyword table.
//!
//! A mailbox may hold up to [`crate::limits::MAX_KEYWORDS_PER_MAILBOX`] keywords, but nearly
//! every message carries a handful from the first few: the first 64 bits live inline and only a
//! set using a higher bit allocates, so a 100,000-message picture with no such keyword costs
//! no allocation for them.

/// A set of keyword indexes (bits of the mailbox's keyword table, [`super::View::keywords`]).
///
/// Growable: any index fits. Two sets holding the same indexes compare equal however they were
/// built (the heap part never ends in an empty word).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeywordSet {
    /// Bits 0..64.
    low: u64,
    /// Bits 64 and up, 64 per word; `None` when they are all clear.
    high: Option<Box<HighBits>>,
}

/// The words of a [`KeywordSet`] beyond the first; never empty, last word never zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HighBits(Vec<u64>);

const WORD: usize = 64;

impl KeywordSet {
    /// The empty set.
    pub const fn new() -> KeywordSet {
        KeywordSet { low: 0, high: None }
    }

    fn word(&self, w: usize) -> u64 {
        match w.checked_sub(1) {
            None => self.low,
            Some(h) => self
                .high
                .as_ref()
                .and_then(|b| b.0.get(h).copied())
                .unwrap_or(0),
        }
    }

    /// Number of words in use (1 + heap words).
    fn words(&self) -> usize {
        1 + self.high.as_ref().map_or(0, |b| b.0.len())
    }

    fn word_mut(&mut self, w: usize) -> &mut u64 {
        let Some(h) = w.checked_sub(1) else {
            return &mut self.low;
        };
        let high = &mut self
            .high
            .get_or_insert_with(|| Box::new(HighBits(Vec::new())))
            .0;
        if high.len() <= h {
            high.resize(h + 1, 0);
        }
        // In bounds: the resize above made the slot exist.
        &mut high[h]
    }

    /// Drops trailing empty heap words (and the heap part when it is all clear).
    fn normalize(&mut self) {
        if let Some(b) = self.high.as_mut() {
            while b.0.last() == Some(&0) {
                b.0.pop();
            }
            if b.0.is_empty() {
                self.high = None;
            }
        }
    }

    /// True when keyword `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.word(i / WORD) & (1u64 << (i % WORD)) != 0
    }

    /// Adds keyword `i`.
    pub fn insert(&mut self, i: usize) {
        *self.word_mut(i / WORD) |= 1u64 << (i % WORD);
    }

    /// Removes keyword `i`.
    pub fn remove(&mut self, i: usize) {
        if self.contains(i) {
            *self.word_mut(i / WORD) &= !(1u64 << (i % WORD));
            self.normalize();
        }
    }

    /// True when no keyword is set.
    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_none()
    }

    /// Number of keywords in the set.
    pub fn len(&self) -> usize {
        (0..self.words())
            .map(|w| self.word(w).count_ones() as usize)
            .sum()
    }

    /// Indexes of the set keywords, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.words()).flat_map(move |w| {
            let mut bits = self.word(w);
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * WORD + b)
            })
        })
    }

    /// Adds every keyword of `other`.
    pub fn union_with(&mut self, other: &KeywordSet) {
        for w in 0..other.words() {
            let o = other.word(w);
            if o != 0 {
                *self.word_mut(w) |= o;
            }
        }
    }

    /// Removes every keyword of `other`.
    pub fn remove_all(&mut self, other: &KeywordSet) {
        for w in 0..other.words().min(self.words()) {
            let o = other.word(w);
            if o != 0 {
                *self.word_mut(w) &= !o;
            }
        }
        self.normalize();
    }

    /// True when the sets share a keyword.
    pub fn intersects(&self, other: &KeywordSet) -> bool {
        (0..self.words().min(other.words())).any(|w| self.word(w) & other.word(w) != 0)
    }

    /// The keywords with an index below `n`, and those at `n` or above.
    pub fn split_at(&self, n: usize) -> (KeywordSet, KeywordSet) {
        // The common case, all bits below `n` and inline: no bit-by-bit walk.
        if self.high.is_none() && (n >= WORD || self.low >> n == 0) {
            return (self.clone(), KeywordSet::new());
        }
        // Word by word: a message holding thousands of keywords is split without visiting each.
        let (split_word, split_bit) = (n / WORD, n % WORD);
        let mut below = KeywordSet::new();
        let mut rest = KeywordSet::new();
        for w in 0..self.words() {
            let bits = self.word(w);
            let mask = match w.cmp(&split_word) {
                std::cmp::Ordering::Less => u64::MAX,
                std::cmp::Ordering::Equal => (1u64 << split_bit) - 1,
                std::cmp::Ordering::Greater => 0,
            };
            if bits & mask != 0 {
                *below.word_mut(w) |= bits & mask;
            }
            if bits & !mask != 0 {
                *rest.word_mut(w) |= bits & !mask;
            }
        }
        (below, rest)
    }
}

impl FromIterator<usize> for KeywordSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut s = KeywordSet::new();
        for i in iter {
            s.insert(i);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_two_words() {
        // A 100,000-message picture holds one per message.
        assert_eq!(std::mem::size_of::<KeywordSet>(), 16);
    }

    #[test]
    fn small_sets_stay_inline() {
        let mut s = KeywordSet::new();
        assert!(s.is_empty());
        s.insert(0);
        s.insert(63);
        assert!(s.high.is_none());
        assert!(s.contains(0) && s.contains(63) && !s.contains(1) && !s.contains(64));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63]);
        assert_eq!(s.len(), 2);
        s.remove(0);
        s.remove(5);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![63]);
    }

    #[test]
    fn large_indexes_grow_and_shrink_back() {
        let mut s: KeywordSet = [1, 64, 1000, 9_999].into_iter().collect();
        assert!(s.contains(1000) && s.contains(9_999) && s.contains(64));
        assert!(!s.contains(999) && !s.contains(100_000));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 64, 1000, 9_999]);
        assert_eq!(s.len(), 4);
        s.remove(9_999);
        s.remove(1000);
        s.remove(64);
        // Built differently, the same set: equal, and no heap part left.
        assert_eq!(s, [1].into_iter().collect());
        assert!(s.high.is_none());
    }

    #[test]
    fn set_operations() {
        let a: KeywordSet = [0, 5, 70, 700].into_iter().collect();
        let b: KeywordSet = [5, 700, 701].into_iter().collect();
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(u.iter().collect::<Vec<_>>(), vec![0, 5, 70, 700, 701]);
        let mut m = u.clone();
        m.remove_all(&b);
        assert_eq!(m, [0, 70].into_iter().collect());
        assert!(a.intersects(&b));
        assert!(!m.intersects(&b));
        assert!(!KeywordSet::new().intersects(&a));
        let mut all_gone = b.clone();
        all_gone.remove_all(&b);
        assert_eq!(all_gone, KeywordSet::new());
        let (below, rest) = u.split_at(26);
        assert_eq!(below, [0, 5].into_iter().collect());
        assert_eq!(rest, [70, 700, 701].into_iter().collect());
        let (below, rest) = KeywordSet::from_iter([3, 30]).split_at(26);
        assert_eq!((below.len(), rest.len()), (1, 1));
        // Splits on and off word boundaries give the same sets as bit by bit.
        let many: KeywordSet = (0..2000).filter(|i| i % 3 != 1).collect();
        for n in [0, 1, 26, 63, 64, 65, 128, 1000, 1999, 2000, 5000] {
            let (below, rest) = many.split_at(n);
            let want_below: KeywordSet = many.iter().filter(|&i| i < n).collect();
            let want_rest: KeywordSet = many.iter().filter(|&i| i >= n).collect();
            assert_eq!((&below, &rest), (&want_below, &want_rest), "split at {n}");
        }
    }
}
