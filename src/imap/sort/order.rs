//! Ordering messages by SORT criteria (RFC 5256 section 3): each criterion in priority order,
//! REVERSE flipping only its own criterion, and the sequence number as the final, always
//! ascending tie-breaker. Strings are compared as the bytes of their `i;unicode-casemap` form
//! (the keys hold that form), so the empty string sorts first, as RFC 5256 requires.

use std::cmp::Ordering;
use std::collections::HashMap;

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
/// differ), so unstable sorts give the one right answer.
///
/// Each criterion first becomes one integer per message that orders as the key does
/// ([`column`]): integer keys are themselves, a string key is the rank of the message's string
/// among the distinct strings. Equal strings (a thread's subject, a frequent sender) are then
/// compared once when the distinct strings are sorted instead of in every comparison, and the
/// sort proper compares integers only; the [`Keys`] records are never moved.
pub fn order(criteria: &[SortCriterion], keys: &[Keys]) -> Vec<usize> {
    let columns = criteria.iter().map(|c| column(c.key, keys)).collect();
    order_columns(criteria, columns, |i| keys.get(i).map_or(0, |k| k.seq))
}

/// [`order`] of messages given as one column per criterion (each ascending, as [`column`]
/// makes them) and their sequence numbers.
pub(crate) fn order_columns(
    criteria: &[SortCriterion],
    mut columns: Vec<Vec<i64>>,
    seq: impl Fn(usize) -> u32,
) -> Vec<usize> {
    for (c, col) in criteria.iter().zip(columns.iter_mut()) {
        if c.reverse {
            // Ranks and dates are far from i64::MIN; saturating keeps it total anyway.
            col.iter_mut().for_each(|v| *v = v.saturating_neg());
        }
    }
    if let [col] = columns.as_slice() {
        let mut triples: Vec<(i64, u32, usize)> = col
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, seq(i), i))
            .collect();
        triples.sort_unstable();
        return triples.into_iter().map(|t| t.2).collect();
    }
    let n = columns.first().map_or(0, Vec::len);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_unstable_by(|&a, &b| {
        for col in &columns {
            let o = col.get(a).cmp(&col.get(b));
            if o != Ordering::Equal {
                return o;
            }
        }
        seq(a).cmp(&seq(b))
    });
    idx
}

/// One integer per message (in `keys` order) that orders as `key` does, ascending.
fn column(key: SortKey, keys: &[Keys]) -> Vec<i64> {
    match key {
        SortKey::Arrival => keys.iter().map(|k| k.arrival).collect(),
        SortKey::Date => keys.iter().map(|k| k.sent).collect(),
        SortKey::Size => keys
            .iter()
            .map(|k| i64::try_from(k.size).unwrap_or(i64::MAX))
            .collect(),
        _ => {
            let text = string_key(key);
            ranks(keys.iter().map(text))
        }
    }
}

/// The rank of each string among the distinct strings (equal strings, equal rank), by
/// octets (the strings are casemapped forms).
pub(crate) fn ranks<'a>(texts: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<i64> {
    let mut ids: HashMap<&[u8], usize> = HashMap::with_capacity(texts.len() / 2);
    let mut distinct: Vec<&[u8]> = Vec::new();
    let per: Vec<usize> = texts
        .map(|t| {
            *ids.entry(t).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            })
        })
        .collect();
    let mut by_text: Vec<usize> = (0..distinct.len()).collect();
    by_text.sort_unstable_by(|&a, &b| distinct.get(a).cmp(&distinct.get(b)));
    let mut rank = vec![0i64; distinct.len()];
    for (r, &d) in by_text.iter().enumerate() {
        if let Some(slot) = rank.get_mut(d) {
            *slot = i64::try_from(r).unwrap_or(i64::MAX);
        }
    }
    per.into_iter()
        .map(|d| rank.get(d).copied().unwrap_or(0))
        .collect()
}

/// The string a string key compares.
pub(crate) fn string_key(key: SortKey) -> fn(&Keys) -> &[u8] {
    match key {
        SortKey::From => |k| k.from.as_bytes(),
        SortKey::To => |k| k.to.as_bytes(),
        SortKey::Cc => |k| k.cc.as_bytes(),
        SortKey::DisplayFrom => |k| k.display_from.as_bytes(),
        SortKey::DisplayTo => |k| k.display_to.as_bytes(),
        // Subject (the integer keys never get here: see `column`).
        _ => |k| k.subject.as_bytes(),
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
