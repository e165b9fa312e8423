//! `sort` (RFC 5256 section 5, RFC 5957 section 5):
//!
//! ```text
//! sort            = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
//! sort-criteria   = "(" sort-criterion *(SP sort-criterion) ")"
//! sort-criterion  = ["REVERSE" SP] sort-key
//! sort-key        = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO"
//!                 / "DISPLAYFROM" / "DISPLAYTO"
//! search-criteria = charset 1*(SP search-key)
//! charset         = atom / quoted
//! ```

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::combinator::value;
use nom::multi::separated_list0;

use super::core::{astring, keyword, sp};
use super::search::search_program;
use super::{PResult, ParseErrorKind, ctx, ctx_override, error, failure};
use crate::imap::proto::types::{CommandBody, SearchReturn, SortCriterion, SortKey};
use crate::limits::MAX_SORT_CRITERIA;

/// `sort-key`.
fn sort_key(i: &[u8]) -> PResult<'_, SortKey> {
    ctx_override(
        "unknown SORT criterion",
        alt((
            value(SortKey::Arrival, keyword("ARRIVAL")),
            value(SortKey::Cc, keyword("CC")),
            value(SortKey::Date, keyword("DATE")),
            value(SortKey::From, keyword("FROM")),
            value(SortKey::Size, keyword("SIZE")),
            value(SortKey::Subject, keyword("SUBJECT")),
            value(SortKey::To, keyword("TO")),
            value(SortKey::DisplayFrom, keyword("DISPLAYFROM")),
            value(SortKey::DisplayTo, keyword("DISPLAYTO")),
        )),
    )
    .parse(i)
}

/// `sort-criterion = ["REVERSE" SP] sort-key`.
fn sort_criterion(i: &[u8]) -> PResult<'_, SortCriterion> {
    let (rest, reverse) = match keyword("REVERSE").parse(i) {
        Ok((r, ())) => (sp(r)?.0, true),
        Err(_) => (i, false),
    };
    let (rest, key) = sort_key(rest)?;
    Ok((rest, SortCriterion { reverse, key }))
}

/// `sort-criteria`, at most [`MAX_SORT_CRITERIA`] of them.
pub(crate) fn sort_criteria(i: &[u8]) -> PResult<'_, Vec<SortCriterion>> {
    let Some(mut rest) = i.strip_prefix(b"(") else {
        return Err(error(i, "expected a parenthesized list of sort criteria"));
    };
    let mut list = Vec::new();
    loop {
        let (r, c) = sort_criterion(rest)?;
        if list.len() == MAX_SORT_CRITERIA {
            return Err(failure(
                rest,
                ParseErrorKind::Syntax,
                "too many sort criteria",
            ));
        }
        list.push(c);
        if let Some(r) = r.strip_prefix(b" ") {
            rest = r;
        } else if let Some(r) = r.strip_prefix(b")") {
            return Ok((r, list));
        } else {
            return Err(error(r, "expected SP or ) in the sort criteria"));
        }
    }
}

/// `search-return-opts SP` of `extended-sort = ["UID" SP] "SORT" search-return-opts SP
/// sort-criteria SP search-criteria` (RFC 5267 5), after the SP that follows the command name:
/// `RETURN (opts) SP`, or nothing for a plain SORT.
fn sort_return_opts(i: &[u8]) -> PResult<'_, Option<Vec<SearchReturn>>> {
    let Ok((rest, ())) = keyword("RETURN").parse(i) else {
        return Ok((i, None));
    };
    let (rest, (_, list, _)) = (
        (sp, tag(&b"("[..])),
        separated_list0(sp, super::command::search_return_opt),
        ctx("expected ) after the SORT return options", tag(&b")"[..])),
    )
        .parse(rest)?;
    let (rest, _) = sp(rest)?;
    Ok((rest, Some(list)))
}

/// The arguments of `[UID] SORT` after the command name.
pub(crate) fn sort(i: &[u8], uid: bool) -> PResult<'_, CommandBody> {
    let (rest, _) = sp(i)?;
    let (rest, returns) = sort_return_opts(rest)?;
    let (rest, criteria) = sort_criteria(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, charset) = ctx("expected a charset name", astring).parse(rest)?;
    let (rest, _) = sp(rest)?;
    let (rest, search) = search_program(rest)?;
    Ok((
        rest,
        CommandBody::Sort {
            uid,
            criteria,
            charset: charset.into_owned(),
            search,
            returns,
        },
    ))
}
