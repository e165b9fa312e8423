//! Sort results: `SORT` (RFC 5256 section 4, with RFC 7162's MODSEQ).

use super::number::write_num;

/// `* SORT n...[ (MODSEQ m)]\r\n`, numbers in sort order (RFC 5256 `sort-data`; RFC 7162 3.1.5
/// adds the MODSEQ when results exist).
pub fn sort(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SORT");
    for n in numbers {
        out.push(b' ');
        write_num(out, n);
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        out.extend_from_slice(b" (MODSEQ ");
        write_num(out, m);
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_results() {
        let mut v = Vec::new();
        sort(&mut v, &[5, 3, 4, 1, 2], None);
        sort(&mut v, &[], Some(7));
        sort(&mut v, &[2], Some(9));
        assert_eq!(v, b"* SORT 5 3 4 1 2\r\n* SORT\r\n* SORT 2 (MODSEQ 9)\r\n");
    }
}
