//! Numbers and number sets: decimals formatted without `fmt`, sequence sets, and UID lists that
//! keep their order.

use crate::imap::proto::sequence::ResolvedSet;

/// Numbers the protocol writes in decimal.
pub(super) trait Decimal: Copy {
    fn value(self) -> u64;
}

impl Decimal for u32 {
    fn value(self) -> u64 {
        u64::from(self)
    }
}

impl Decimal for u64 {
    fn value(self) -> u64 {
        self
    }
}

impl Decimal for std::num::NonZeroU32 {
    fn value(self) -> u64 {
        u64::from(self.get())
    }
}

impl<T: Decimal> Decimal for &T {
    fn value(self) -> u64 {
        (*self).value()
    }
}

/// Writes `n` in decimal. A FETCH of 100,000 messages writes several numbers per message, so
/// this formats on the stack instead of through `fmt` and a temporary `String`.
pub(super) fn write_num(out: &mut Vec<u8>, n: impl Decimal) {
    write_decimal(out, n.value());
}

/// Writes `n` in decimal.
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::digits::decimal(&mut [0u8; 20], n));
}

/// Writes a resolved set compactly: `1:3,5,9:12`.
pub fn write_sequence_set(out: &mut Vec<u8>, set: &ResolvedSet) {
    for (i, r) in set.ranges().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_num(out, r.start());
        if r.end() != r.start() {
            out.push(b':');
            write_num(out, r.end());
        }
    }
}

/// Writes UIDs in the given order, joining ascending runs (`5,6,7,2` → `5:7,2`):
/// COPYUID's two lists must correspond item by item (RFC 4315), so no sorting.
pub fn write_uid_list(out: &mut Vec<u8>, uids: &[u32]) {
    let mut i = 0;
    let mut first = true;
    while let Some(&start) = uids.get(i) {
        let mut end = start;
        let mut j = i + 1;
        while let Some(&next) = uids.get(j) {
            if end.checked_add(1) != Some(next) {
                break;
            }
            end = next;
            j += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_num(out, start);
        if end != start {
            out.push(b':');
            write_num(out, end);
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_numbers_at_the_edges() {
        let mut v = Vec::new();
        for n in [0u64, 7, 10, 99, 100, 4_294_967_295, u64::MAX] {
            v.clear();
            write_decimal(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
        v.clear();
        write_num(&mut v, std::num::NonZeroU32::MIN);
        write_num(&mut v, 12u32);
        assert_eq!(v, b"112");
    }

    #[test]
    fn uid_lists_keep_order() {
        let mut v = Vec::new();
        write_uid_list(&mut v, &[5, 6, 7, 2, 3, 10, u32::MAX]);
        assert_eq!(v, b"5:7,2:3,10,4294967295");
    }
}
