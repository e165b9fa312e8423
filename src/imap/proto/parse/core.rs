//! Basic rules of RFC 3501 section 9: tokens, strings, numbers, flags, sets, dates.

use std::borrow::Cow;
use std::num::NonZeroU32;

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take, take_while, take_while_m_n, take_while1};
use nom::combinator::{map, opt, value};
use nom::multi::separated_list0;
use nom::sequence::delimited;

use super::{PResult, ParseErrorKind, ctx, error, failure};
use crate::imap::proto::date::month_from_name;
use crate::imap::proto::types::{
    Atom, Date, DateTime, Flag, Mailbox, SeqNum, SequenceSet, SequenceSetItem, Tag,
    is_astring_char, is_atom_char, is_tag_char,
};
use crate::limits::MAX_SEQUENCE_SET_RANGES;

/// `SP`: exactly one space (RFC 3501 section 9 note 2: no tabs, no runs).
pub(crate) fn sp(i: &[u8]) -> PResult<'_, ()> {
    ctx("expected a single space", value((), tag(&b" "[..]))).parse(i)
}

/// `CRLF`, ending the command.
pub(crate) fn crlf(i: &[u8]) -> PResult<'_, ()> {
    ctx(
        "unexpected characters after the command's arguments",
        value((), tag(&b"\r\n"[..])),
    )
    .parse(i)
}

/// `tag = 1*<any ASTRING-CHAR except "+">`
pub(crate) fn tag_rule(i: &[u8]) -> PResult<'_, Tag> {
    let (rest, t) = ctx("missing or invalid tag", take_while1(is_tag_char)).parse(i)?;
    match Tag::new(t) {
        Some(t) => Ok((rest, t)),
        None => Err(error(i, "missing or invalid tag")),
    }
}

/// `atom = 1*ATOM-CHAR`
pub(crate) fn atom(i: &[u8]) -> PResult<'_, Atom> {
    let (rest, a) = ctx("expected an atom", take_while1(is_atom_char)).parse(i)?;
    match Atom::new(a) {
        Some(a) => Ok((rest, a)),
        None => Err(error(i, "expected an atom")),
    }
}

/// A case-insensitive keyword such as `FLAGS`, which must not run on into
/// further atom characters (so `FLAGSX` is not `FLAGS`).
pub(crate) fn keyword<'a>(word: &'static str) -> impl FnMut(&'a [u8]) -> PResult<'a, ()> {
    move |i| {
        let (rest, _) = tag_no_case(word.as_bytes()).parse(i)?;
        match rest.first() {
            Some(&b) if is_atom_char(b) => Err(error(i, "unknown keyword")),
            _ => Ok((rest, ())),
        }
    }
}

/// `number = 1*DIGIT`, an unsigned 32-bit integer.
pub(crate) fn number(i: &[u8]) -> PResult<'_, u32> {
    let (rest, digits) =
        ctx("expected a number", take_while1(|b: u8| b.is_ascii_digit())).parse(i)?;
    let mut n: u32 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
            .ok_or_else(|| {
                failure(
                    i,
                    ParseErrorKind::NumberTooLarge,
                    "number does not fit in 32 bits",
                )
            })?;
    }
    Ok((rest, n))
}

/// `nz-number = digit-nz *DIGIT`
pub(crate) fn nz_number(i: &[u8]) -> PResult<'_, NonZeroU32> {
    let (rest, n) = number(i)?;
    match NonZeroU32::new(n) {
        Some(n) => Ok((rest, n)),
        None => Err(error(i, "number must not be zero")),
    }
}

/// `number64 = 1*DIGIT` (RFC 8438/9051): at most 2^63-1. Also `mod-sequence-valzer`.
pub(crate) fn number64(i: &[u8]) -> PResult<'_, u64> {
    let (rest, digits) =
        ctx("expected a number", take_while1(|b: u8| b.is_ascii_digit())).parse(i)?;
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| {
                failure(
                    i,
                    ParseErrorKind::NumberTooLarge,
                    "number does not fit in 63 bits",
                )
            })?;
    }
    Ok((rest, n))
}

/// `mod-sequence-value = 1*DIGIT` (RFC 7162): 1 to 2^63-1.
pub(crate) fn mod_sequence_value(i: &[u8]) -> PResult<'_, u64> {
    let (rest, n) = number64(i)?;
    if n == 0 {
        return Err(error(i, "mod-sequence must not be zero"));
    }
    Ok((rest, n))
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`, `QUOTED-CHAR = <TEXT-CHAR except quoted-specials> / "\" quoted-specials`
///
/// Deliberately lenient on one point: 8-bit bytes are accepted inside quotes
/// (RFC 3501 allows only 7-bit) because deployed clients send UTF-8 search
/// strings and names quoted, and Dovecot accepts them. CR, LF and NUL are not.
pub(crate) fn quoted(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    let (mut rest, _) = tag(&b"\""[..]).parse(i)?;
    let start = rest;
    let mut owned: Option<Vec<u8>> = None;
    loop {
        match rest.first() {
            None | Some(b'\r') | Some(b'\n') | Some(0) => {
                return Err(error(rest, "unterminated quoted string"));
            }
            Some(b'"') => {
                let consumed = start.len() - rest.len();
                let s = match owned {
                    Some(v) => Cow::Owned(v),
                    None => Cow::Borrowed(start.get(..consumed).unwrap_or_default()),
                };
                return Ok((rest.get(1..).unwrap_or_default(), s));
            }
            Some(b'\\') => {
                let esc = match rest.get(1) {
                    Some(&c @ (b'"' | b'\\')) => c,
                    _ => {
                        return Err(error(
                            rest,
                            "only \\\" and \\\\ may be escaped in a quoted string",
                        ));
                    }
                };
                let v = owned.get_or_insert_with(|| {
                    start
                        .get(..start.len() - rest.len())
                        .unwrap_or_default()
                        .to_vec()
                });
                v.push(esc);
                rest = rest.get(2..).unwrap_or_default();
            }
            Some(&c) => {
                if let Some(v) = owned.as_mut() {
                    v.push(c);
                }
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
}

/// The `{n}` / `{n+}` header of a literal (RFC 3501, RFC 7888), CRLF included.
fn literal_header(i: &[u8]) -> PResult<'_, u32> {
    let (rest, n) = delimited(tag(&b"{"[..]), number, opt(tag(&b"+"[..]))).parse(i)?;
    let (rest, _) = ctx("malformed literal header", tag(&b"}\r\n"[..])).parse(rest)?;
    Ok((rest, n))
}

fn literal_data(i: &[u8], n: u32) -> PResult<'_, &[u8]> {
    let len = usize::try_from(n).map_err(|_| error(i, "literal too large"))?;
    ctx("literal data is incomplete", take(len)).parse(i)
}

/// `literal = "{" number ["+"] "}" CRLF *CHAR8` (CHAR8 excludes NUL).
pub(crate) fn literal(i: &[u8]) -> PResult<'_, &[u8]> {
    let (rest, n) = literal_header(i)?;
    let (rest, data) = literal_data(rest, n)?;
    if data.contains(&0) {
        return Err(error(i, "NUL is not allowed in a literal"));
    }
    Ok((rest, data))
}

/// `literal8 = "~{" number ["+"] "}" CRLF *OCTET` (RFC 3516, RFC 4466).
pub(crate) fn literal8(i: &[u8]) -> PResult<'_, &[u8]> {
    let (rest, _) = tag(&b"~"[..]).parse(i)?;
    let (rest, n) = literal_header(rest)?;
    literal_data(rest, n)
}

/// `string = quoted / literal`
pub(crate) fn string(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    ctx(
        "expected a quoted string or literal",
        alt((quoted, map(literal, Cow::Borrowed))),
    )
    .parse(i)
}

/// `astring = 1*ASTRING-CHAR / string`
pub(crate) fn astring(i: &[u8]) -> PResult<'_, Cow<'_, [u8]>> {
    ctx(
        "expected an atom, quoted string or literal",
        alt((map(take_while1(is_astring_char), Cow::Borrowed), string)),
    )
    .parse(i)
}

/// `nil = "NIL"`
pub(crate) fn nil(i: &[u8]) -> PResult<'_, ()> {
    keyword("NIL")(i)
}

/// `nstring = string / nil`
pub(crate) fn nstring(i: &[u8]) -> PResult<'_, Option<Cow<'_, [u8]>>> {
    ctx(
        "expected a string or NIL",
        alt((map(string, Some), value(None, nil))),
    )
    .parse(i)
}

/// `mailbox = "INBOX" / astring` with INBOX case-normalised (RFC 3501 section 5.1).
pub(crate) fn mailbox(i: &[u8]) -> PResult<'_, Mailbox> {
    let (rest, name) = ctx("expected a mailbox name", astring).parse(i)?;
    Ok((rest, Mailbox::new(name.into_owned())))
}

/// `list-mailbox = 1*list-char / string`, `list-char = ATOM-CHAR / list-wildcards / resp-specials`
pub(crate) fn list_mailbox(i: &[u8]) -> PResult<'_, Vec<u8>> {
    ctx(
        "expected a mailbox pattern",
        alt((
            map(
                take_while1(|b| is_astring_char(b) || b == b'%' || b == b'*'),
                <[u8]>::to_vec,
            ),
            map(string, Cow::into_owned),
        )),
    )
    .parse(i)
}

/// `flag = "\Answered" / ... / flag-keyword / flag-extension` (also accepts `\Recent`,
/// which the session must refuse: RFC 3501 `flag` excludes it).
pub(crate) fn flag(i: &[u8]) -> PResult<'_, Flag> {
    ctx(
        "expected a flag",
        alt((
            map((tag(&b"\\"[..]), atom), |(_, a)| Flag::from_system(a)),
            map(atom, Flag::Keyword),
        )),
    )
    .parse(i)
}

/// `flag-list = "(" [flag *(SP flag)] ")"`
pub(crate) fn flag_list(i: &[u8]) -> PResult<'_, Vec<Flag>> {
    ctx(
        "expected a parenthesised flag list",
        delimited(tag(&b"("[..]), separated_list0(sp, flag), tag(&b")"[..])),
    )
    .parse(i)
}

/// `seq-number = nz-number / "*"`
fn seq_number(i: &[u8]) -> PResult<'_, SeqNum> {
    alt((
        value(SeqNum::Star, tag(&b"*"[..])),
        map(nz_number, SeqNum::Value),
    ))
    .parse(i)
}

/// `sequence-set = (seq-number / seq-range) *("," sequence-set)`, `seq-range = seq-number ":" seq-number`,
/// `sequence-set =/ seq-last-command` (`$`, RFC 5182).
///
/// Parsed iteratively (the ABNF's recursion would use one stack frame per
/// comma) and capped at `MAX_SEQUENCE_SET_RANGES` items.
pub(crate) fn sequence_set(i: &[u8]) -> PResult<'_, SequenceSet> {
    let mut items = Vec::new();
    let mut rest = i;
    loop {
        if items.len() >= MAX_SEQUENCE_SET_RANGES {
            return Err(failure(
                rest,
                ParseErrorKind::TooMany,
                "sequence set has too many ranges",
            ));
        }
        let item;
        if let Some(r) = rest.strip_prefix(b"$") {
            item = SequenceSetItem::Saved;
            rest = r;
        } else {
            let (r, a) = ctx("expected a sequence set", seq_number).parse(rest)?;
            let (r, b) = match r.strip_prefix(b":") {
                Some(r) => {
                    let (r, b) = ctx("expected a sequence set", seq_number).parse(r)?;
                    (r, b)
                }
                None => (r, a),
            };
            item = SequenceSetItem::Range(a, b);
            rest = r;
        }
        items.push(item);
        match rest.strip_prefix(b",") {
            Some(r) => rest = r,
            None => break,
        }
    }
    match SequenceSet::new(items) {
        Some(s) => Ok((rest, s)),
        None => Err(failure(
            i,
            ParseErrorKind::TooMany,
            "sequence set has too many ranges",
        )),
    }
}

fn digits_value(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'))
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

/// `date-month = "Jan" / ... / "Dec"`
fn date_month(i: &[u8]) -> PResult<'_, u8> {
    let (rest, m) = take(3usize)(i)?;
    match month_from_name(m) {
        Some(m) => Ok((rest, m)),
        None => Err(error(i, "invalid month name")),
    }
}

/// `date-text = date-day "-" date-month "-" date-year`
fn date_text(i: &[u8]) -> PResult<'_, Date> {
    let (rest, (day, _, month, _, year)) = (
        take_while_m_n(1, 2, is_digit),
        tag(&b"-"[..]),
        date_month,
        tag(&b"-"[..]),
        take_while_m_n(4, 4, is_digit),
    )
        .parse(i)?;
    let date = u8::try_from(digits_value(day))
        .ok()
        .zip(u16::try_from(digits_value(year)).ok())
        .and_then(|(d, y)| Date::new(y, month, d));
    match date {
        Some(d) => Ok((rest, d)),
        None => Err(error(i, "no such date")),
    }
}

/// `date = date-text / DQUOTE date-text DQUOTE`
pub(crate) fn date(i: &[u8]) -> PResult<'_, Date> {
    ctx(
        "expected a date like 1-Feb-1994",
        alt((
            date_text,
            delimited(tag(&b"\""[..]), date_text, tag(&b"\""[..])),
        )),
    )
    .parse(i)
}

/// `date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE`
///
/// `date-day-fixed = (SP DIGIT) / 2DIGIT`; a lone digit is accepted too,
/// because some clients drop the padding space and the meaning is unambiguous.
pub(crate) fn date_time(i: &[u8]) -> PResult<'_, DateTime> {
    let body = |i| -> PResult<'_, DateTime> {
        let (i, _) = tag(&b"\""[..]).parse(i)?;
        let (i, _) = opt(tag(&b" "[..])).parse(i)?;
        let (i, day) = take_while_m_n(1, 2, is_digit)(i)?;
        let (i, _) = tag(&b"-"[..]).parse(i)?;
        let (i, month) = date_month(i)?;
        let (i, _) = tag(&b"-"[..]).parse(i)?;
        let (i, year) = take_while_m_n(4, 4, is_digit)(i)?;
        let (i, _) = tag(&b" "[..]).parse(i)?;
        let (i, h) = take_while_m_n(2, 2, is_digit)(i)?;
        let (i, _) = tag(&b":"[..]).parse(i)?;
        let (i, m) = take_while_m_n(2, 2, is_digit)(i)?;
        let (i, _) = tag(&b":"[..]).parse(i)?;
        let (i, s) = take_while_m_n(2, 2, is_digit)(i)?;
        let (i, _) = tag(&b" "[..]).parse(i)?;
        let (i, sign) = alt((tag(&b"+"[..]), tag(&b"-"[..]))).parse(i)?;
        let (i, zh) = take_while_m_n(2, 2, is_digit)(i)?;
        let (i, zm) = take_while_m_n(2, 2, is_digit)(i)?;
        let (i, _) = tag(&b"\""[..]).parse(i)?;
        let (zh, zm) = (digits_value(zh), digits_value(zm));
        let zone = if zm < 60 {
            i16::try_from(zh * 60 + zm).ok()
        } else {
            None
        };
        let zone = zone.map(|z| if sign == b"-" { -z } else { z });
        let dt = (|| {
            let date = Date::new(
                u16::try_from(digits_value(year)).ok()?,
                month,
                u8::try_from(digits_value(day)).ok()?,
            )?;
            DateTime::new(
                date,
                u8::try_from(digits_value(h)).ok()?,
                u8::try_from(digits_value(m)).ok()?,
                u8::try_from(digits_value(s)).ok()?,
                zone?,
            )
        })();
        match dt {
            Some(dt) => Ok((i, dt)),
            None => Err(error(i, "no such date-time")),
        }
    };
    ctx(
        "expected a date-time like \"17-Jul-1996 02:44:25 -0700\"",
        body,
    )
    .parse(i)
}

/// `base64 = *(4base64-char) [base64-terminal]` (non-empty here), decoded.
pub(crate) fn base64(i: &[u8]) -> PResult<'_, Vec<u8>> {
    use base64::Engine;
    let (rest, text) =
        take_while(|b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=')(i)?;
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(v) if !text.is_empty() => Ok((rest, v)),
        _ => Err(error(i, "invalid base64")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(r: PResult<'_, T>) -> Option<(&[u8], T)> {
        r.ok()
    }

    #[test]
    fn quoted_escapes() {
        let r = ok(quoted(b"\"a\\\"b\\\\c\" rest"));
        assert_eq!(r, Some((&b" rest"[..], Cow::Owned(b"a\"b\\c".to_vec()))));
        assert!(quoted(b"\"a\\nb\"").is_err());
        assert!(quoted(b"\"a\r\nb\"").is_err());
        assert!(quoted(b"\"abc").is_err());
        let r = ok(quoted("\"caf\u{e9}\"".as_bytes())).map(|(_, s)| s.into_owned());
        assert_eq!(r, Some("caf\u{e9}".as_bytes().to_vec()));
    }

    #[test]
    fn literals() {
        let r = ok(literal(b"{5}\r\nhello world"));
        assert_eq!(r, Some((&b" world"[..], &b"hello"[..])));
        let r = ok(literal(b"{5+}\r\nhello"));
        assert_eq!(r.map(|r| r.1), Some(&b"hello"[..]));
        assert!(literal(b"{5}\r\nhell").is_err());
        assert!(literal(b"{3}\r\na\0b").is_err());
        let r = ok(literal8(b"~{3}\r\na\0b"));
        assert_eq!(r.map(|r| r.1), Some(&b"a\0b"[..]));
        assert!(literal(b"{5}hello").is_err());
    }

    #[test]
    fn numbers_and_sets() {
        assert_eq!(ok(number(b"4294967295")).map(|r| r.1), Some(u32::MAX));
        assert!(matches!(number(b"4294967296"), Err(nom::Err::Failure(_))));
        assert!(nz_number(b"0").is_err());
        assert_eq!(
            ok(number64(b"9223372036854775807")).map(|r| r.1),
            Some(i64::MAX as u64)
        );
        assert!(number64(b"9223372036854775808").is_err());
        let set = ok(sequence_set(b"1:4294967295 ")).map(|r| r.1.resolve(1, None).count());
        assert_eq!(set, Some(u64::from(u32::MAX)));
        assert!(sequence_set(b"0").is_err());
        assert!(sequence_set(b"1:0").is_err());
        assert!(sequence_set(b"1,").is_err());
        let set = ok(sequence_set(b"$,5:*")).map(|r| r.1.items().len());
        assert_eq!(set, Some(2));
    }

    #[test]
    fn sequence_set_limit() {
        let mut s = b"1".to_vec();
        for _ in 0..100_000 {
            s.extend_from_slice(b",1");
        }
        match sequence_set(&s) {
            Err(nom::Err::Failure(e)) => assert_eq!(e.kind, ParseErrorKind::TooMany),
            other => panic!("expected a limit failure, got {other:?}"),
        }
    }

    #[test]
    fn dates() {
        assert_eq!(ok(date(b"1-Feb-1994")).map(|r| r.1), Date::new(1994, 2, 1));
        assert_eq!(
            ok(date(b"\"01-feb-1994\"")).map(|r| r.1),
            Date::new(1994, 2, 1)
        );
        assert!(date(b"30-Feb-1994").is_err());
        assert!(date(b"1-Foo-1994").is_err());
        let dt = ok(date_time(b"\" 7-Jul-1996 02:44:25 -0700\"")).map(|r| r.1.to_string());
        assert_eq!(dt.as_deref(), Some("\" 7-Jul-1996 02:44:25 -0700\""));
        assert!(date_time(b"\"17-Jul-1996 24:44:25 -0700\"").is_err());
        assert!(date_time(b"\"17-Jul-1996 02:44:25 -0760\"").is_err());
        assert!(date_time(b"\"17-Jul-1996 02:44:25\"").is_err());
    }

    #[test]
    fn astrings_and_mailboxes() {
        let r = ok(astring(b"foo]bar baz")).map(|r| r.1.into_owned());
        assert_eq!(r, Some(b"foo]bar".to_vec()));
        let r = ok(mailbox(b"iNbOx")).map(|r| r.1);
        assert_eq!(r, Some(Mailbox::new(b"INBOX".to_vec())));
        assert!(r.is_some_and(|m| m.is_inbox()));
        let r = ok(mailbox(b"\"inbox\"")).map(|r| r.1.is_inbox());
        assert_eq!(r, Some(true));
        let r = ok(mailbox(b"INBOX.Sent")).map(|r| r.1.is_inbox());
        assert_eq!(r, Some(false));
        let r = ok(list_mailbox(b"%/*x ")).map(|r| r.1);
        assert_eq!(r, Some(b"%/*x".to_vec()));
        assert!(astring(b"(foo").is_err());
    }

    #[test]
    fn flags() {
        let r = ok(flag_list(b"(\\Seen \\recent $Fwd \\Custom)")).map(|r| r.1);
        let custom = Flag::Extension(Atom::new(b"Custom").expect("atom"));
        let fwd = Flag::Keyword(Atom::new(b"$Fwd").expect("atom"));
        assert_eq!(r, Some(vec![Flag::Seen, Flag::Recent, fwd, custom]));
        assert_eq!(ok(flag_list(b"()")).map(|r| r.1), Some(Vec::new()));
        assert!(flag_list(b"(\\Seen  \\Draft)").is_err());
        assert!(flag(b"\\*").is_err());
    }
}
