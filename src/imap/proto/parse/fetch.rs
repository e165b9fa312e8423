//! FETCH attributes: `fetch-att`, `section`, `section-binary`, `partial` (RFC 3501, 3516, 7162).

use std::num::NonZeroU32;

use nom::Parser;
use nom::bytes::complete::{tag, take_while1};

use super::core::{astring, number, nz_number, sp};
use super::{PResult, ctx, error};
use crate::imap::proto::types::{FetchAttr, FetchMacro, Partial, Section, SectionText};

fn is_att_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.'
}

/// `"ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"`, macros expanded.
pub(crate) fn fetch_atts(i: &[u8]) -> PResult<'_, Vec<FetchAttr>> {
    if let Some(mut rest) = i.strip_prefix(b"(") {
        let mut attrs = Vec::new();
        loop {
            let (r, a) = fetch_att(rest)?;
            attrs.push(a);
            if let Some(r) = r.strip_prefix(b" ") {
                rest = r;
            } else if let Some(r) = r.strip_prefix(b")") {
                return Ok((r, attrs));
            } else {
                return Err(error(r, "expected ) to close the FETCH attribute list"));
            }
        }
    }
    let (rest, name) = ctx("expected FETCH attributes", take_while1(is_att_char)).parse(i)?;
    let mac = match name.to_ascii_uppercase().as_slice() {
        b"ALL" => Some(FetchMacro::All),
        b"FAST" => Some(FetchMacro::Fast),
        b"FULL" => Some(FetchMacro::Full),
        _ => None,
    };
    match mac {
        Some(m) => Ok((rest, m.expand())),
        None => fetch_att(i).map(|(r, a)| (r, vec![a])),
    }
}

/// `partial = "<" number "." nz-number ">"`
fn partial(i: &[u8]) -> PResult<'_, Option<Partial>> {
    if !i.starts_with(b"<") {
        return Ok((i, None));
    }
    let (rest, (_, origin, _, count, _)) = ctx(
        "expected <origin.count> with a non-zero count",
        (
            tag(&b"<"[..]),
            number,
            tag(&b"."[..]),
            nz_number,
            tag(&b">"[..]),
        ),
    )
    .parse(i)?;
    Ok((rest, Some(Partial { origin, count })))
}

/// `section-part = nz-number *("." nz-number)`; stops before a `.` not followed by a digit.
fn section_part(i: &[u8]) -> PResult<'_, Vec<NonZeroU32>> {
    let (mut rest, first) = nz_number(i)?;
    let mut part = vec![first];
    while let Some(r) = rest.strip_prefix(b".") {
        if !r.first().is_some_and(u8::is_ascii_digit) {
            break;
        }
        let (r, n) = nz_number(r)?;
        part.push(n);
        rest = r;
    }
    Ok((rest, part))
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`, `header-fld-name = astring`
fn header_list(i: &[u8]) -> PResult<'_, Vec<Vec<u8>>> {
    let (mut rest, _) = ctx("expected a list of header field names", tag(&b"("[..])).parse(i)?;
    let mut names = Vec::new();
    loop {
        let (r, n) = ctx("expected a header field name", astring).parse(rest)?;
        names.push(n.into_owned());
        if let Some(r) = r.strip_prefix(b" ") {
            rest = r;
        } else if let Some(r) = r.strip_prefix(b")") {
            return Ok((r, names));
        } else {
            return Err(error(r, "expected ) to close the header field list"));
        }
    }
}

/// `section-text = section-msgtext / "MIME"`,
/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`
fn section_text(i: &[u8], allow_mime: bool) -> PResult<'_, SectionText> {
    let (rest, name) = ctx(
        "expected HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME",
        take_while1(|b: u8| b.is_ascii_alphabetic() || b == b'.'),
    )
    .parse(i)?;
    match name.to_ascii_uppercase().as_slice() {
        b"HEADER" => Ok((rest, SectionText::Header)),
        b"TEXT" => Ok((rest, SectionText::Text)),
        b"MIME" if allow_mime => Ok((rest, SectionText::Mime)),
        b"HEADER.FIELDS" => {
            let (r, (_, l)) = (sp, header_list).parse(rest)?;
            Ok((r, SectionText::HeaderFields(l)))
        }
        b"HEADER.FIELDS.NOT" => {
            let (r, (_, l)) = (sp, header_list).parse(rest)?;
            Ok((r, SectionText::HeaderFieldsNot(l)))
        }
        _ => Err(error(
            i,
            "expected HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME (MIME only after a part number)",
        )),
    }
}

/// `section = "[" [section-spec] "]"`,
/// `section-spec = section-msgtext / (section-part ["." section-text])`
fn section(i: &[u8]) -> PResult<'_, Section> {
    let (rest, _) = ctx("expected [ to start a section", tag(&b"["[..])).parse(i)?;
    let (rest, sec) = if rest.starts_with(b"]") {
        (rest, Section::default())
    } else if rest.first().is_some_and(u8::is_ascii_digit) {
        let (r, part) = section_part(rest)?;
        match r.strip_prefix(b".") {
            Some(r) => {
                let (r, text) = section_text(r, true)?;
                (
                    r,
                    Section {
                        part,
                        text: Some(text),
                    },
                )
            }
            None => (r, Section { part, text: None }),
        }
    } else {
        let (r, text) = section_text(rest, false)?;
        (
            r,
            Section {
                part: Vec::new(),
                text: Some(text),
            },
        )
    };
    let (rest, _) = ctx("expected ] to close the section", tag(&b"]"[..])).parse(rest)?;
    Ok((rest, sec))
}

/// `section-binary = "[" [section-part] "]"` (RFC 3516)
fn section_binary(i: &[u8]) -> PResult<'_, Vec<NonZeroU32>> {
    let (rest, _) = ctx("expected [ to start a section", tag(&b"["[..])).parse(i)?;
    let (rest, part) = if rest.starts_with(b"]") {
        (rest, Vec::new())
    } else {
        section_part(rest)?
    };
    let (rest, _) = ctx("expected ] to close the section", tag(&b"]"[..])).parse(rest)?;
    Ok((rest, part))
}

fn is_preview_mod_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// `[SP "(" preview-mod *(SP preview-mod) ")"]`, `preview-mod = "LAZY"` (RFC 8970 section 6);
/// true when LAZY was given. A `(` whose first word is not LAZY is left alone: after a lone
/// `PREVIEW` the FETCH modifiers of RFC 7162 (`(CHANGEDSINCE n)`) may follow, and inside an
/// attribute list the list parser then answers the stray `(` with BAD.
fn preview_mods(i: &[u8]) -> PResult<'_, bool> {
    let Some(list) = i.strip_prefix(b" (") else {
        return Ok((i, false));
    };
    let first = list.iter().take_while(|&&b| is_preview_mod_char(b)).count();
    if !list
        .get(..first)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"LAZY"))
    {
        return Ok((i, false));
    }
    let mut rest = list;
    loop {
        let (r, name) = ctx(
            "expected a PREVIEW modifier",
            take_while1(is_preview_mod_char),
        )
        .parse(rest)?;
        if !name.eq_ignore_ascii_case(b"LAZY") {
            return Err(error(rest, "the only PREVIEW modifier is LAZY"));
        }
        if let Some(r) = r.strip_prefix(b" ") {
            rest = r;
        } else if let Some(r) = r.strip_prefix(b")") {
            return Ok((r, true));
        } else {
            return Err(error(r, "expected ) to close the PREVIEW modifiers"));
        }
    }
}

/// `fetch-att` of RFC 3501, plus `"BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary`
/// (RFC 3516), `"MODSEQ"` (RFC 7162) and `"PREVIEW" [SP "(" preview-mod ...")"]` (RFC 8970).
pub(crate) fn fetch_att(i: &[u8]) -> PResult<'_, FetchAttr> {
    let (rest, name) = ctx("expected a FETCH attribute", take_while1(is_att_char)).parse(i)?;
    let name = name.to_ascii_uppercase();
    let has_section = rest.starts_with(b"[");
    let simple = |a| {
        if has_section {
            Err(error(rest, "this FETCH attribute takes no section"))
        } else {
            Ok((rest, a))
        }
    };
    match name.as_slice() {
        b"ENVELOPE" => simple(FetchAttr::Envelope),
        b"FLAGS" => simple(FetchAttr::Flags),
        b"INTERNALDATE" => simple(FetchAttr::InternalDate),
        b"RFC822" => simple(FetchAttr::Rfc822),
        b"RFC822.HEADER" => simple(FetchAttr::Rfc822Header),
        b"RFC822.SIZE" => simple(FetchAttr::Rfc822Size),
        b"RFC822.TEXT" => simple(FetchAttr::Rfc822Text),
        b"BODYSTRUCTURE" => simple(FetchAttr::BodyStructure),
        b"UID" => simple(FetchAttr::Uid),
        b"MODSEQ" => simple(FetchAttr::ModSeq),
        b"BODY" if !has_section => Ok((rest, FetchAttr::Body)),
        b"BODY" | b"BODY.PEEK" => {
            let (r, section) = section(rest)?;
            let (r, partial) = partial(r)?;
            Ok((
                r,
                FetchAttr::BodySection {
                    peek: name.len() > 4,
                    section,
                    partial,
                },
            ))
        }
        b"BINARY" | b"BINARY.PEEK" => {
            let (r, part) = section_binary(rest)?;
            let (r, partial) = partial(r)?;
            Ok((
                r,
                FetchAttr::Binary {
                    peek: name.len() > 6,
                    part,
                    partial,
                },
            ))
        }
        b"BINARY.SIZE" => {
            let (r, part) = section_binary(rest)?;
            Ok((r, FetchAttr::BinarySize { part }))
        }
        b"PREVIEW" if !has_section => {
            let (r, lazy) = preview_mods(rest)?;
            Ok((r, FetchAttr::Preview { lazy }))
        }
        _ => Err(error(i, "unknown FETCH attribute")),
    }
}

#[cfg(test)]
mod preview_tests {
    use super::super::parse_command;
    use crate::imap::proto::types::{CommandBody, FetchAttr};

    fn attrs(line: &[u8]) -> Option<(Vec<FetchAttr>, Option<u64>)> {
        match parse_command(line).ok()?.body {
            CommandBody::Fetch {
                attrs,
                changed_since,
                ..
            } => Some((attrs, changed_since)),
            _ => None,
        }
    }

    #[test]
    fn preview_with_and_without_lazy() {
        let plain = FetchAttr::Preview { lazy: false };
        let lazy = FetchAttr::Preview { lazy: true };
        assert_eq!(
            attrs(b"a FETCH 1 PREVIEW\r\n"),
            Some((vec![plain.clone()], None))
        );
        assert_eq!(
            attrs(b"a FETCH 1 (preview (lazy))\r\n"),
            Some((vec![lazy.clone()], None))
        );
        // RFC 8970 section 5, example 2 and 3.
        assert_eq!(
            attrs(b"B1 FETCH 1:4 (ENVELOPE PREVIEW (LAZY))\r\n"),
            Some((vec![FetchAttr::Envelope, lazy.clone()], None))
        );
        assert_eq!(
            attrs(b"C3 FETCH 1 (UID PREVIEW (LAZY) FLAGS)\r\n"),
            Some((vec![FetchAttr::Uid, lazy.clone(), FetchAttr::Flags], None))
        );
        // `*(SP preview-mod)`: a repeated modifier is grammatical.
        assert_eq!(
            attrs(b"a FETCH 1 (PREVIEW (LAZY LAZY))\r\n"),
            Some((vec![lazy.clone()], None))
        );
        // A lone PREVIEW followed by the RFC 7162 FETCH modifiers, with and without LAZY.
        assert_eq!(
            attrs(b"a FETCH 1 PREVIEW (CHANGEDSINCE 7)\r\n"),
            Some((vec![plain], Some(7)))
        );
        assert_eq!(
            attrs(b"a FETCH 1 PREVIEW (LAZY) (CHANGEDSINCE 7)\r\n"),
            Some((vec![lazy], Some(7)))
        );
    }

    #[test]
    fn bad_preview_forms_are_refused() {
        for line in [
            &b"a FETCH 1 (PREVIEW (FUZZY))\r\n"[..],
            b"a FETCH 1 (PREVIEW (LAZY FUZZY))\r\n",
            b"a FETCH 1 (PREVIEW (LAZY)\r\n",
            b"a FETCH 1 (PREVIEW ())\r\n",
            b"a FETCH 1 PREVIEW[]\r\n",
            b"a FETCH 1 PREVIEW (FUZZY)\r\n",
            b"a FETCH 1 (PREVIEW(LAZY))\r\n",
        ] {
            assert!(
                parse_command(line).is_err(),
                "{:?} parsed",
                String::from_utf8_lossy(line)
            );
        }
    }
}
