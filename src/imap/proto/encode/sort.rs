//! Sort results: `SORT` (RFC 5256 section 4, with RFC 7162's MODSEQ).

/// `* SORT n...[ (MODSEQ m)]\r\n`, numbers in sort order (RFC 5256 `sort-data`; RFC 7162 3.1.5
/// adds the MODSEQ when results exist).
pub fn sort(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    super::search::number_list(out, b"* SORT", numbers, modseq);
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
