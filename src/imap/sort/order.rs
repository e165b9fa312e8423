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

/// Sorts `keys` by `criteria`. The order is total (sequence numbers differ), so an unstable
/// sort gives the one right answer. Integer keys alone are sorted as `(key, seq)` pairs without
/// touching the larger [`Keys`] records in the comparisons.
pub fn sort(criteria: &[SortCriterion], keys: &mut [Keys]) {
    if let [c] = criteria
        && let Some(value) = integer_key(c.key)
    {
        let mut pairs: Vec<(i128, u32, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v = value(k);
                (if c.reverse { -v } else { v }, k.seq, i)
            })
            .collect();
        pairs.sort_unstable();
        let mut slots: Vec<Option<Keys>> =
            keys.iter_mut().map(|k| Some(std::mem::take(k))).collect();
        for (k, (_, _, i)) in keys.iter_mut().zip(pairs) {
            if let Some(taken) = slots.get_mut(i).and_then(Option::take) {
                *k = taken;
            }
        }
        return;
    }
    keys.sort_unstable_by(|a, b| compare(criteria, a, b));
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

    fn order(criteria: &[SortCriterion], mut keys: Vec<Keys>) -> Vec<u32> {
        sort(criteria, &mut keys);
        keys.iter().map(|k| k.seq).collect()
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
    fn mask_covers_the_keys() {
        let m = mask(&[c(false, SortKey::Date), c(true, SortKey::DisplayTo)]);
        assert!(m.contains(KeyMask::SENT | KeyMask::DISPLAY_TO));
        assert!(!m.contains(KeyMask::SUBJECT));
        assert!(!mask(&[c(false, SortKey::Size)]).needs_header());
    }
}
