//! Search results: `SEARCH` (RFC 3501, with RFC 7162's MODSEQ) and `ESEARCH` (RFC 4731).

use super::number::{write_num, write_sequence_set, write_uid_list};
use super::string::write_string;
use crate::imap::proto::sequence::ResolvedSet;
use crate::imap::proto::types::{PartialRange, Tag};

/// `* SEARCH n...[ (MODSEQ m)]\r\n` (RFC 3501; RFC 7162 adds the MODSEQ when results exist).
pub fn search(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    number_list(out, b"* SEARCH", numbers, modseq);
}

/// `head n...[ (MODSEQ m)]\r\n`: the shape SEARCH and SORT answers share (the MODSEQ only when
/// there are results, RFC 7162 3.1.5).
pub(super) fn number_list(out: &mut Vec<u8>, head: &[u8], numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(head);
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

/// One ESEARCH result item (RFC 4731, RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsearchData {
    /// `MIN n`
    Min(u32),
    /// `MAX n`
    Max(u32),
    /// `ALL set`
    All(ResolvedSet),
    /// `COUNT n`
    Count(u32),
    /// `MODSEQ n`
    ModSeq(u64),
    /// `ALL set` of a SORT (RFC 5267 3.1): the numbers in the requested order; ascending runs
    /// become ranges, nothing else does (3.2: `12:10` would be read as 10,11,12).
    AllInOrder(Vec<u32>),
    /// `PARTIAL (lo:hi set)` (RFC 5267 4.4): the numbers at those positions in the requested
    /// order, `NIL` when there are none.
    Partial(PartialRange, Vec<u32>),
    /// `ADDTO (position set ...)` (RFC 5267 4.3.3): each set in the requested order.
    AddTo(Vec<(u32, Vec<u32>)>),
    /// `REMOVEFROM (position set ...)` (RFC 5267 4.3.4).
    RemoveFrom(Vec<(u32, Vec<u32>)>),
    /// `RELEVANCY (score ...)` (RFC 6203 4): one score per result, in the order of ALL.
    Relevancy(Vec<u8>),
}

/// `(position set *(SP position set))` of ADDTO and REMOVEFROM; ascending runs become ranges,
/// order is kept (RFC 5267 3.2 for sorted results).
fn write_updates(out: &mut Vec<u8>, pairs: &[(u32, Vec<u32>)]) {
    out.push(b'(');
    for (i, (pos, numbers)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_num(out, pos);
        out.push(b' ');
        write_uid_list(out, numbers);
    }
    out.push(b')');
}

/// `* ESEARCH (TAG "t") [UID] items\r\n` (RFC 4731).
pub fn esearch(out: &mut Vec<u8>, tag: Option<&Tag>, uid: bool, data: &[EsearchData]) {
    out.extend_from_slice(b"* ESEARCH");
    if let Some(t) = tag {
        out.extend_from_slice(b" (TAG ");
        write_string(out, t.as_str().as_bytes());
        out.push(b')');
    }
    if uid {
        out.extend_from_slice(b" UID");
    }
    for d in data {
        out.push(b' ');
        match d {
            EsearchData::Min(n) => {
                out.extend_from_slice(b"MIN ");
                write_num(out, n);
            }
            EsearchData::Max(n) => {
                out.extend_from_slice(b"MAX ");
                write_num(out, n);
            }
            EsearchData::Relevancy(scores) => {
                out.extend_from_slice(b"RELEVANCY (");
                for (k, n) in scores.iter().enumerate() {
                    if k > 0 {
                        out.push(b' ');
                    }
                    write_num(out, u32::from(*n));
                }
                out.push(b')');
            }
            EsearchData::Count(n) => {
                out.extend_from_slice(b"COUNT ");
                write_num(out, n);
            }
            EsearchData::ModSeq(n) => {
                out.extend_from_slice(b"MODSEQ ");
                write_num(out, n);
            }
            EsearchData::All(set) => {
                out.extend_from_slice(b"ALL ");
                write_sequence_set(out, set);
            }
            EsearchData::AllInOrder(numbers) => {
                out.extend_from_slice(b"ALL ");
                write_uid_list(out, numbers);
            }
            EsearchData::Partial(range, numbers) => {
                out.extend_from_slice(b"PARTIAL (");
                write_num(out, range.lo);
                out.push(b':');
                write_num(out, range.hi);
                out.push(b' ');
                if numbers.is_empty() {
                    out.extend_from_slice(b"NIL");
                } else {
                    write_uid_list(out, numbers);
                }
                out.push(b')');
            }
            EsearchData::AddTo(pairs) => {
                out.extend_from_slice(b"ADDTO ");
                write_updates(out, pairs);
            }
            EsearchData::RemoveFrom(pairs) => {
                out.extend_from_slice(b"REMOVEFROM ");
                write_updates(out, pairs);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_results() {
        let mut v = Vec::new();
        search(&mut v, &[2, 84, 882], None);
        search(&mut v, &[], Some(5));
        search(&mut v, &[2], Some(917162500));
        esearch(
            &mut v,
            Some(&Tag::new(b"A283").expect("tag")),
            true,
            &[
                EsearchData::Min(2),
                EsearchData::Count(3),
                EsearchData::All([2u32, 10, 11].into_iter().collect()),
            ],
        );
        esearch(&mut v, None, false, &[]);
        let range = PartialRange { lo: 1, hi: 10 };
        esearch(
            &mut v,
            Some(&Tag::new(b"P1").expect("tag")),
            true,
            &[
                EsearchData::Partial(range, vec![4, 5, 6, 9]),
                EsearchData::Partial(range, vec![]),
                EsearchData::AddTo(vec![(0, vec![7, 8, 12]), (3, vec![30, 20])]),
                EsearchData::RemoveFrom(vec![(0, vec![2])]),
            ],
        );
        // RFC 5267 3.3: 23765,23764,23763 is not written 23765:23763.
        esearch(
            &mut v,
            None,
            true,
            &[EsearchData::AllInOrder(vec![
                23765, 23764, 23763, 23761, 5, 6, 7,
            ])],
        );
        assert_eq!(
            String::from_utf8_lossy(&v),
            "* SEARCH 2 84 882\r\n\
             * SEARCH\r\n\
             * SEARCH 2 (MODSEQ 917162500)\r\n\
             * ESEARCH (TAG \"A283\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n\
             * ESEARCH\r\n\
             * ESEARCH (TAG \"P1\") UID PARTIAL (1:10 4:6,9) PARTIAL (1:10 NIL) \
             ADDTO (0 7:8,12 3 30,20) REMOVEFROM (0 2)\r\n\
             * ESEARCH UID ALL 23765,23764,23763,23761,5:7\r\n"
        );
    }
}
