//! `search-key` (RFC 3501 section 6.4.4 and 9, RFC 7162 MODSEQ, RFC 5182 `$`).
//!
//! Recursive descent with an explicit depth counter: `(`, `NOT` and `OR` each
//! go one level down, and passing `MAX_SEARCH_DEPTH` fails at once, so even
//! 100,000 nested parentheses cost 64 stack frames and a clear BAD.

use nom::Parser;
use nom::bytes::complete::take_while1;

use super::core::{
    astring, atom, date, mod_sequence_value, number64, nz_number, quoted, sequence_set, sp,
};
use super::{PResult, ParseErrorKind, ctx, error, failure};
use crate::imap::proto::types::{EntryType, SearchKey, is_atom_char};
use crate::limits::MAX_SEARCH_DEPTH;

/// `search-program = search-key *(SP search-key)`: the keys are ANDed; a single
/// key is returned as it is.
pub(crate) fn search_program(i: &[u8]) -> PResult<'_, SearchKey> {
    let (rest, mut keys) = key_list(i, 1)?;
    let key = if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    };
    Ok((rest, key))
}

/// `search-key *(SP search-key)` at `depth`, as a loop so that a bad key's own
/// error sentence reaches the client instead of a generic "trailing data".
fn key_list(i: &[u8], depth: usize) -> PResult<'_, Vec<SearchKey>> {
    let (mut rest, first) = search_key(i, depth)?;
    let mut keys = vec![first];
    while let Some(r) = rest.strip_prefix(b" ") {
        let (r, k) = search_key(r, depth)?;
        keys.push(k);
        rest = r;
    }
    Ok((rest, keys))
}

fn sp_astring(i: &[u8]) -> PResult<'_, Vec<u8>> {
    let (rest, (_, s)) = (sp, ctx("expected a search string", astring)).parse(i)?;
    Ok((rest, s.into_owned()))
}

fn sp_date(i: &[u8]) -> PResult<'_, crate::imap::proto::types::Date> {
    let (rest, (_, d)) = (sp, date).parse(i)?;
    Ok((rest, d))
}

/// `search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer`,
/// `search-modseq-ext = SP entry-name SP entry-type-req` (RFC 7162 section 3.1.5).
fn search_modsequence(i: &[u8]) -> PResult<'_, SearchKey> {
    let (rest, _) = sp(i)?;
    let (rest, entry) = if rest.starts_with(b"\"") {
        let (r, name) = quoted(rest)?;
        let ok_name = name
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"/flags/"))
            && name.len() > 7;
        if !ok_name {
            return Err(error(rest, "MODSEQ entry name must be \"/flags/<flag>\""));
        }
        let (r, _) = sp(r)?;
        let (r, t) = ctx("expected priv, shared or all", atom).parse(r)?;
        let t = match t.as_str().to_ascii_lowercase().as_str() {
            "priv" => EntryType::Private,
            "shared" => EntryType::Shared,
            "all" => EntryType::All,
            _ => return Err(error(r, "expected priv, shared or all")),
        };
        let (r, _) = sp(r)?;
        (r, Some((name.into_owned(), t)))
    } else {
        (rest, None)
    };
    // mod-sequence-valzer allows 0.
    let (rest, modseq) = if rest.starts_with(b"0") && !rest.get(1).is_some_and(u8::is_ascii_digit) {
        (rest.get(1..).unwrap_or_default(), 0)
    } else {
        mod_sequence_value(rest)?
    };
    Ok((rest, SearchKey::ModSeq { entry, modseq }))
}

/// `search-key` (see the module doc for the depth rule).
pub(crate) fn search_key(i: &[u8], depth: usize) -> PResult<'_, SearchKey> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(failure(
            i,
            ParseErrorKind::TooDeep,
            "search keys are nested too deeply",
        ));
    }
    match i.first() {
        Some(b'(') => {
            let (rest, keys) = key_list(i.get(1..).unwrap_or_default(), depth + 1)?;
            match rest.strip_prefix(b")") {
                Some(r) => Ok((r, SearchKey::And(keys))),
                None => Err(error(rest, "expected ) to close the search key list")),
            }
        }
        Some(b) if b.is_ascii_digit() || *b == b'*' || *b == b'$' => {
            let (rest, set) = sequence_set(i)?;
            Ok((rest, SearchKey::SequenceSet(set)))
        }
        _ => {
            let (rest, name) = ctx("expected a search key", take_while1(is_atom_char)).parse(i)?;
            keyed(i, rest, &name.to_ascii_uppercase(), depth)
        }
    }
}

/// The search keys that start with a name; `start` is where the name began (for errors).
fn keyed<'a>(start: &'a [u8], i: &'a [u8], name: &[u8], depth: usize) -> PResult<'a, SearchKey> {
    use SearchKey as K;
    let simple = |k| Ok((i, k));
    match name {
        b"ALL" => simple(K::All),
        b"ANSWERED" => simple(K::Answered),
        b"DELETED" => simple(K::Deleted),
        b"DRAFT" => simple(K::Draft),
        b"FLAGGED" => simple(K::Flagged),
        b"NEW" => simple(K::New),
        b"OLD" => simple(K::Old),
        b"RECENT" => simple(K::Recent),
        b"SEEN" => simple(K::Seen),
        b"UNANSWERED" => simple(K::Unanswered),
        b"UNDELETED" => simple(K::Undeleted),
        b"UNDRAFT" => simple(K::Undraft),
        b"UNFLAGGED" => simple(K::Unflagged),
        b"UNSEEN" => simple(K::Unseen),
        b"BCC" => sp_astring(i).map(|(r, s)| (r, K::Bcc(s))),
        b"BODY" => sp_astring(i).map(|(r, s)| (r, K::Body(s))),
        b"CC" => sp_astring(i).map(|(r, s)| (r, K::Cc(s))),
        b"FROM" => sp_astring(i).map(|(r, s)| (r, K::From(s))),
        b"SUBJECT" => sp_astring(i).map(|(r, s)| (r, K::Subject(s))),
        b"TEXT" => sp_astring(i).map(|(r, s)| (r, K::Text(s))),
        b"TO" => sp_astring(i).map(|(r, s)| (r, K::To(s))),
        b"HEADER" => {
            let (r, (_, field, _, value)) = (
                sp,
                ctx("expected a header field name", astring),
                sp,
                ctx("expected a search string", astring),
            )
                .parse(i)?;
            Ok((r, K::Header(field.into_owned(), value.into_owned())))
        }
        b"BEFORE" => sp_date(i).map(|(r, d)| (r, K::Before(d))),
        b"ON" => sp_date(i).map(|(r, d)| (r, K::On(d))),
        b"SINCE" => sp_date(i).map(|(r, d)| (r, K::Since(d))),
        b"SENTBEFORE" => sp_date(i).map(|(r, d)| (r, K::SentBefore(d))),
        b"SENTON" => sp_date(i).map(|(r, d)| (r, K::SentOn(d))),
        b"SENTSINCE" => sp_date(i).map(|(r, d)| (r, K::SentSince(d))),
        b"KEYWORD" => {
            let (r, (_, a)) = (sp, ctx("expected a keyword", atom)).parse(i)?;
            Ok((r, K::Keyword(a)))
        }
        b"UNKEYWORD" => {
            let (r, (_, a)) = (sp, ctx("expected a keyword", atom)).parse(i)?;
            Ok((r, K::Unkeyword(a)))
        }
        // RFC 9051 (Appendix E item 1): `"LARGER" SP number64`, for every client (RFC 3501 had
        // a 32-bit number; Dovecot too reads a 64-bit size in both).
        b"LARGER" => {
            let (r, (_, n)) = (sp, number64).parse(i)?;
            Ok((r, K::Larger(n)))
        }
        b"SMALLER" => {
            let (r, (_, n)) = (sp, number64).parse(i)?;
            Ok((r, K::Smaller(n)))
        }
        b"UID" => {
            let (r, (_, s)) = (sp, sequence_set).parse(i)?;
            Ok((r, K::Uid(s)))
        }
        b"NOT" => {
            let (r, _) = sp(i)?;
            let (r, k) = search_key(r, depth + 1)?;
            Ok((r, K::Not(Box::new(k))))
        }
        // RFC 6203 6: `"FUZZY" SP search-key`.
        b"FUZZY" => {
            let (r, _) = sp(i)?;
            let (r, k) = search_key(r, depth + 1)?;
            Ok((r, K::Fuzzy(Box::new(k))))
        }
        b"OR" => {
            let (r, _) = sp(i)?;
            let (r, a) = search_key(r, depth + 1)?;
            let (r, _) = sp(r)?;
            let (r, b) = search_key(r, depth + 1)?;
            Ok((r, K::Or(Box::new(a), Box::new(b))))
        }
        b"MODSEQ" => search_modsequence(i),
        // RFC 5032: `( "OLDER" / "YOUNGER" ) SP nz-number`, seconds.
        b"OLDER" => {
            let (r, (_, n)) =
                (sp, ctx("expected a non-zero number of seconds", nz_number)).parse(i)?;
            Ok((r, K::Older(n)))
        }
        b"YOUNGER" => {
            let (r, (_, n)) =
                (sp, ctx("expected a non-zero number of seconds", nz_number)).parse(i)?;
            Ok((r, K::Younger(n)))
        }
        // RFC 8514 4.3.
        b"SAVEDBEFORE" => sp_date(i).map(|(r, d)| (r, K::SavedBefore(d))),
        b"SAVEDON" => sp_date(i).map(|(r, d)| (r, K::SavedOn(d))),
        b"SAVEDSINCE" => sp_date(i).map(|(r, d)| (r, K::SavedSince(d))),
        b"SAVEDATESUPPORTED" => simple(K::SaveDateSupported),
        // RFC 8474 6: `"EMAILID" SP objectid / "THREADID" SP objectid`.
        b"EMAILID" => sp_objectid(i).map(|(r, id)| (r, K::EmailId(id))),
        b"THREADID" => sp_objectid(i).map(|(r, id)| (r, K::ThreadId(id))),
        _ => Err(error(start, "unknown search key")),
    }
}

/// `SP objectid`, `objectid = 1*255(ALPHA / DIGIT / "_" / "-")` (RFC 8474 7).
fn sp_objectid(i: &[u8]) -> PResult<'_, String> {
    let (r, _) = sp(i)?;
    let (rest, id) = ctx(
        "expected an object id",
        take_while1(|b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
    )
    .parse(r)?;
    if id.len() > 255 {
        return Err(error(r, "an object id is at most 255 characters"));
    }
    // Only ASCII letters, digits, `_` and `-` were taken.
    Ok((rest, String::from_utf8_lossy(id).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_limit_holds_for_deep_input() {
        let mut deep = vec![b'('; 100_000];
        deep.extend_from_slice(b"ALL");
        deep.extend(std::iter::repeat_n(b')', 100_000));
        match search_program(&deep) {
            Err(nom::Err::Failure(e)) => assert_eq!(e.kind, ParseErrorKind::TooDeep),
            other => panic!("expected TooDeep, got {other:?}"),
        }
        let nots = b"NOT ".repeat(100_000);
        match search_program(&[nots.as_slice(), b"ALL"].concat()) {
            Err(nom::Err::Failure(e)) => assert_eq!(e.kind, ParseErrorKind::TooDeep),
            other => panic!("expected TooDeep, got {other:?}"),
        }
        // Just inside the limit is fine.
        let mut ok = vec![b'('; MAX_SEARCH_DEPTH - 1];
        ok.extend_from_slice(b"ALL");
        ok.extend(std::iter::repeat_n(b')', MAX_SEARCH_DEPTH - 1));
        assert!(search_program(&ok).is_ok());
    }

    #[test]
    fn fuzzy_takes_one_search_key() {
        let r = search_program(b"FUZZY SUBJECT work FROM x").map(|r| r.1);
        assert_eq!(
            r,
            Ok(SearchKey::And(vec![
                SearchKey::Fuzzy(Box::new(SearchKey::Subject(b"work".to_vec()))),
                SearchKey::From(b"x".to_vec()),
            ]))
        );
        let r = search_program(b"fuzzy (TEXT a SEEN)").map(|r| r.1);
        assert_eq!(
            r,
            Ok(SearchKey::Fuzzy(Box::new(SearchKey::And(vec![
                SearchKey::Text(b"a".to_vec()),
                SearchKey::Seen,
            ]))))
        );
        assert!(search_program(b"FUZZY").is_err());
        let deep = [b"FUZZY ".repeat(100_000).as_slice(), b"ALL"].concat();
        match search_program(&deep) {
            Err(nom::Err::Failure(e)) => assert_eq!(e.kind, ParseErrorKind::TooDeep),
            other => panic!("expected TooDeep, got {other:?}"),
        }
    }

    #[test]
    fn modseq_forms() {
        let r = search_program(b"MODSEQ \"/flags/\\\\draft\" all 620162338").map(|r| r.1);
        assert_eq!(
            r,
            Ok(SearchKey::ModSeq {
                entry: Some((b"/flags/\\draft".to_vec(), EntryType::All)),
                modseq: 620_162_338
            })
        );
        let r = search_program(b"MODSEQ 0").map(|r| r.1);
        assert_eq!(
            r,
            Ok(SearchKey::ModSeq {
                entry: None,
                modseq: 0
            })
        );
        assert!(search_program(b"MODSEQ \"/x/y\" all 5").is_err());
    }

    #[test]
    fn savedate_and_objectid_keys() {
        let d = |s: &[u8]| crate::imap::proto::parse::core::date(s).map(|(_, d)| d);
        let day = d(b"28-Dec-2014").expect("date");
        assert_eq!(
            search_program(b"SAVEDON 28-Dec-2014 savedsince 28-Dec-2014 SAVEDBEFORE 28-Dec-2014 SAVEDATESUPPORTED")
                .map(|(r, k)| (r.len(), k)),
            Ok((
                0,
                SearchKey::And(vec![
                    SearchKey::SavedOn(day),
                    SearchKey::SavedSince(day),
                    SearchKey::SavedBefore(day),
                    SearchKey::SaveDateSupported,
                ])
            ))
        );
        assert_eq!(
            search_program(b"EMAILID M6d99ac3275bb4e").map(|(_, k)| k),
            Ok(SearchKey::EmailId("M6d99ac3275bb4e".into()))
        );
        assert_eq!(
            search_program(b"threadid T-_9").map(|(_, k)| k),
            Ok(SearchKey::ThreadId("T-_9".into()))
        );
        let long = [&b"EMAILID "[..], &[b'a'; 256]].concat();
        let max = [&b"EMAILID "[..], &[b'a'; 255]].concat();
        assert!(search_program(&max).is_ok());
        for bad in [
            &b"EMAILID"[..],
            b"EMAILID ",
            b"EMAILID a.b",
            b"EMAILID \"a\"",
            &long,
            b"SAVEDON x",
        ] {
            // Refused, or not taken whole (the command parser then refuses the rest).
            if let Ok((rest, _)) = search_program(bad) {
                assert!(!rest.is_empty(), "{bad:?}");
            }
        }
    }

    #[test]
    fn within_keys_take_non_zero_seconds() {
        use std::num::NonZeroU32;
        let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
        assert_eq!(
            search_program(b"OLDER 3600 YOUNGER 4294967295").map(|(r, k)| (r.len(), k)),
            Ok((
                0,
                SearchKey::And(vec![
                    SearchKey::Older(n(3600)),
                    SearchKey::Younger(n(u32::MAX))
                ])
            ))
        );
        assert_eq!(
            search_program(b"not younger 1").map(|(_, k)| k),
            Ok(SearchKey::Not(Box::new(SearchKey::Younger(n(1)))))
        );
        for bad in [
            &b"OLDER 0"[..],
            b"YOUNGER",
            b"YOUNGER -5",
            b"OLDER x",
            b"OLDER 4294967296",
        ] {
            assert!(search_program(bad).is_err(), "{bad:?}");
        }
    }
}
