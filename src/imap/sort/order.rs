//! Ordering messages by SORT criteria (RFC 5256 section 3): each criterion in priority order,
//! REVERSE flipping only its own criterion, and the sequence number as the final, always
//! ascending tie-breaker. Strings are compared as the bytes of their `i;unicode-casemap` form
//! (the keys hold that form), so the empty string sorts first, as RFC 5256 requires.

use std::cmp::Ordering;

use super::keys::{KeyMask, Keys};
use crate::imap::proto::types::{SortCriterion, SortKey};

/// The keys the criteria compare.
pub fn mask(criteria: &[SortCriterion]) -> KeyMask {
    criteria.iter().fold(KeyMask::empty(), |m, c| {
        m | match c.key {
            SortKey::Arrival => KeyMask::ARRIVAL,
            SortKey::Cc => KeyMask::CC,
            SortKey::Date => KeyMask::SENT,
            SortKey::From => KeyMask::FROM,
            SortKey::Size => KeyMask::SIZE,
            SortKey::Subject => KeyMask::SUBJECT,
            SortKey::To => KeyMask::TO,
            SortKey::DisplayFrom => KeyMask::DISPLAY_FROM,
            SortKey::DisplayTo => KeyMask::DISPLAY_TO,
        }
    })
}

/// One criterion, ascending.
fn by_key(key: SortKey, a: &Keys, b: &Keys) -> Ordering {
    match key {
        SortKey::Arrival => a.arrival.cmp(&b.arrival),
        SortKey::Date => a.sent.cmp(&b.sent),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => a.subject.as_bytes().cmp(b.subject.as_bytes()),
        SortKey::From => a.from.as_bytes().cmp(b.from.as_bytes()),
        SortKey::To => a.to.as_bytes().cmp(b.to.as_bytes()),
        SortKey::Cc => a.cc.as_bytes().cmp(b.cc.as_bytes()),
        SortKey::DisplayFrom => a.display_from.as_bytes().cmp(b.display_from.as_bytes()),
        SortKey::DisplayTo => a.display_to.as_bytes().cmp(b.display_to.as_bytes()),
    }
}

/// How `a` and `b` order under `criteria`; never `Equal` for two different messages.
pub fn compare(criteria: &[SortCriterion], a: &Keys, b: &Keys) -> Ordering {
    for c in criteria {
        let o = by_key(c.key, a, b);
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.seq.cmp(&b.seq)
}

/// The indices of `keys` in the order of `criteria`. The order is total (sequence numbers
/// differ), so unstable sorts give the one right answer. The [`Keys`] records are never moved:
/// a single integer criterion sorts `(value, seq, index)` triples; a single string criterion
/// sorts triples of the string's first eight bytes (as a big-endian number, so most comparisons
/// are one integer comparison), its sequence number and index, looking at the whole strings only
/// when the first bytes are equal; anything else sorts indices with [`compare`].
pub fn order(criteria: &[SortCriterion], keys: &[Keys]) -> Vec<usize> {
    if let [c] = criteria {
        if let Some(value) = integer_key(c.key) {
            let mut triples: Vec<(i128, u32, usize)> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let v = value(k);
                    (if c.reverse { -v } else { v }, k.seq, i)
                })
                .collect();
            triples.sort_unstable();
            return triples.into_iter().map(|t| t.2).collect();
        }
        let text = string_key(c.key);
        let mut triples: Vec<(u64, u32, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (prefix(text(k)), k.seq, i))
            .collect();
        let full = |t: &(u64, u32, usize)| keys.get(t.2).map_or(&b""[..], |k| text(k));
        triples.sort_unstable_by(|a, b| {
            let o = a.0.cmp(&b.0).then_with(|| full(a).cmp(full(b)));
            let o = if c.reverse { o.reverse() } else { o };
            o.then(a.1.cmp(&b.1))
        });
        return triples.into_iter().map(|t| t.2).collect();
    }
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_unstable_by(|&a, &b| match (keys.get(a), keys.get(b)) {
        (Some(a), Some(b)) => compare(criteria, a, b),
        _ => a.cmp(&b),
    });
    idx
}

/// The first eight bytes of `s` as a big-endian number, zero-padded: numbers compare as the
/// bytes do, except that a string and its zero-padded extension tie (the full compare decides).
fn prefix(s: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    if let (Some(dst), Some(src)) = (b.get_mut(..n), s.get(..n)) {
        dst.copy_from_slice(src);
    }
    u64::from_be_bytes(b)
}

fn string_key(key: SortKey) -> fn(&Keys) -> &[u8] {
    match key {
        SortKey::From => |k| k.from.as_bytes(),
        SortKey::To => |k| k.to.as_bytes(),
        SortKey::Cc => |k| k.cc.as_bytes(),
        SortKey::DisplayFrom => |k| k.display_from.as_bytes(),
        SortKey::DisplayTo => |k| k.display_to.as_bytes(),
        // Subject, and the integer keys (never asked: they take the other path).
        _ => |k| k.subject.as_bytes(),
    }
}

fn integer_key(key: SortKey) -> Option<fn(&Keys) -> i128> {
    match key {
        SortKey::Arrival => Some(|k| i128::from(k.arrival)),
        SortKey::Date => Some(|k| i128::from(k.sent)),
        SortKey::Size => Some(|k| i128::from(k.size)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(seq: u32, sent: i64, subject: &str) -> Keys {
        Keys {
            seq,
            sent,
            subject: subject.into(),
            ..Keys::default()
        }
    }

    fn c(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    fn order(criteria: &[SortCriterion], keys: Vec<Keys>) -> Vec<u32> {
        let by_compare = {
            let mut k = keys.clone();
            k.sort_unstable_by(|a, b| compare(criteria, a, b));
            k.iter().map(|k| k.seq).collect::<Vec<u32>>()
        };
        let fast: Vec<u32> = super::order(criteria, &keys)
            .into_iter()
            .filter_map(|i| keys.get(i).map(|k| k.seq))
            .collect();
        // The fast paths agree with the plain comparison.
        assert_eq!(fast, by_compare, "{criteria:?}");
        fast
    }

    #[test]
    fn reverse_flips_one_criterion_and_seq_breaks_ties_ascending() {
        let keys = vec![
            k(1, 10, "B"),
            k(2, 20, "A"),
            k(3, 10, "A"),
            k(4, 20, "B"),
            k(5, 10, ""),
        ];
        let subject = c(false, SortKey::Subject);
        let date = c(false, SortKey::Date);
        assert_eq!(order(&[subject], keys.clone()), [5, 2, 3, 1, 4]);
        assert_eq!(order(&[subject, date], keys.clone()), [5, 3, 2, 1, 4]);
        // RFC 5256: REVERSE SUBJECT is not the reverse of SUBJECT (ties stay ascending).
        assert_eq!(
            order(&[c(true, SortKey::Subject)], keys.clone()),
            [1, 4, 2, 3, 5]
        );
        assert_eq!(order(&[date], keys.clone()), [1, 3, 5, 2, 4]);
        assert_eq!(
            order(&[c(true, SortKey::Date)], keys.clone()),
            [2, 4, 1, 3, 5]
        );
        assert_eq!(
            order(&[subject, c(true, SortKey::Date)], keys),
            [5, 2, 3, 4, 1]
        );
    }

    #[test]
    fn string_prefix_path_handles_long_equal_prefixes_and_empty_strings() {
        let keys = vec![
            k(1, 0, "ABCDEFGHIJ"),
            k(2, 0, "ABCDEFGH"),
            k(3, 0, ""),
            k(4, 0, "ABCDEFGHI"),
            k(5, 0, "ABCDEFGH\u{0}"),
            k(6, 0, "ABCDEFGH"),
        ];
        assert_eq!(
            order(&[c(false, SortKey::Subject)], keys.clone()),
            [3, 2, 6, 5, 4, 1]
        );
        assert_eq!(
            order(&[c(true, SortKey::Subject)], keys),
            [1, 4, 5, 2, 6, 3]
        );
    }

    #[test]
    fn mask_covers_the_keys() {
        let m = mask(&[c(false, SortKey::Date), c(true, SortKey::DisplayTo)]);
        assert!(m.contains(KeyMask::SENT | KeyMask::DISPLAY_TO));
        assert!(!m.contains(KeyMask::SUBJECT));
        assert!(!mask(&[c(false, SortKey::Size)]).needs_header());
    }
}
