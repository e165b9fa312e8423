//! The lexical tokens of RFC 5228 section 8.1. Each parser starts exactly at its token (the
//! grammar skips [`white_space`] first) and ends exactly after it, so that the input left after
//! a token is where "found the end of the script" is reported.
//!
//! Line ends may be CRLF or a bare LF: scripts uploaded from Unix editors have bare LFs, and
//! Pigeonhole accepts them too although section 8.1 says "CR and LF can only appear in CRLF
//! pairs". Identifiers and tags are lowercased (they are case-insensitive, section 2.3).
//!
//! A token that starts well but ends badly (an unterminated string or comment, `:` without a
//! name, a number too large) is a `Failure` at the token's first character.

use nom::Parser;
use nom::bytes::complete::{take_till, take_while};
use nom::character::complete::one_of;
use nom::combinator::opt;

use super::{SResult, fail, miss};

/// `ALPHA / "_"`: what an identifier starts with.
fn is_identifier_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// `ALPHA / DIGIT / "_"`: what an identifier goes on with.
fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `white-space = 1*(SP / CRLF / HTAB) / comment`, any number of them (also none).
/// `comment = bracket-comment / hash-comment`; a bracket comment ends at the first `*/` (they
/// do not nest; a `*` not followed by `/` is part of the comment). The hash comment's line end
/// is left as white space, so a comment on the script's last line needs none.
pub(super) fn white_space(mut i: &str) -> SResult<'_, ()> {
    loop {
        // Plain byte tests rather than `take_while`: this runs before every token, several
        // times where alternatives are tried, and most often finds one blank or nothing.
        let at = i.trim_start_matches([' ', '\t', '\r', '\n']);
        match at.as_bytes() {
            [b'#', ..] => i = at.find('\n').and_then(|k| at.get(k..)).unwrap_or(""),
            [b'/', b'*', comment @ ..] => match memchr::memmem::find(comment, b"*/") {
                Some(end) => i = at.get(end + 4..).unwrap_or(""),
                None => return Err(fail(at, "unterminated /* comment")),
            },
            _ => return Ok((at, ())),
        }
    }
}

/// `identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")`, lowercased. `text` directly followed
/// by `:` is not an identifier but the start of a [`multi_line`] string.
pub(super) fn identifier(i: &str) -> SResult<'_, String> {
    let (rest, word) = word(i)?;
    if rest.starts_with(':') && word.eq_ignore_ascii_case("text") {
        return Err(miss(i));
    }
    Ok((rest, word.to_ascii_lowercase()))
}

/// The characters of an identifier, as written.
fn word(i: &str) -> SResult<'_, &str> {
    if !i.starts_with(is_identifier_start) {
        return Err(miss(i));
    }
    let end = i.find(|c| !is_identifier_char(c)).unwrap_or(i.len());
    Ok((i.get(end..).unwrap_or(""), i.get(..end).unwrap_or("")))
}

/// `tag = ":" identifier`: the lowercased name, without the colon.
pub(super) fn tag(i: &str) -> SResult<'_, String> {
    let name = i.strip_prefix(':').ok_or_else(|| miss(i))?;
    match word(name) {
        Ok((rest, word)) => Ok((rest, word.to_ascii_lowercase())),
        Err(_) => Err(fail(i, "a tag needs a name after ':'")),
    }
}

/// `number = 1*DIGIT [ QUANTIFIER ]`, `QUANTIFIER = "K" / "M" / "G"` (case-insensitive,
/// section 2.4.1: 2^10, 2^20, 2^30), multiplied out. A number that does not fit 64 bits is an
/// error, and so is a number run on into letters (`10KB`).
pub(super) fn number(i: &str) -> SResult<'_, u64> {
    let end = i.find(|c: char| !c.is_ascii_digit()).unwrap_or(i.len());
    let (Some(digits), Some(rest)) = (i.get(..end), i.get(end..)) else {
        return Err(miss(i));
    };
    if digits.is_empty() {
        return Err(miss(i));
    }
    let too_large = || fail(i, "number too large");
    let mut n: u64 = 0;
    for d in digits.bytes() {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or_else(too_large)?;
    }
    let (rest, quantifier) = opt(one_of("KkMmGg")).parse(rest)?;
    let multiplier: u64 = match quantifier {
        Some('K' | 'k') => 1 << 10,
        Some('M' | 'm') => 1 << 20,
        Some('G' | 'g') => 1 << 30,
        _ => 1,
    };
    if rest.starts_with(is_identifier_char) {
        return Err(fail(i, "a number is followed by letters"));
    }
    let n = n.checked_mul(multiplier).ok_or_else(too_large)?;
    Ok((rest, n))
}

/// `string = quoted-string / multi-line`
pub(super) fn string(i: &str) -> SResult<'_, String> {
    nom::branch::alt((quoted_string, multi_line)).parse(i)
}

/// `quoted-string = DQUOTE quoted-text DQUOTE`: `\\` and `\"` stand for the character, any
/// other backslash is dropped (`quoted-other`, section 2.4.2). Line ends inside are kept as
/// CRLF (see [`crlf_line_ends`]).
pub(super) fn quoted_string(i: &str) -> SResult<'_, String> {
    let mut rest = i.strip_prefix('"').ok_or_else(|| miss(i))?;
    let unterminated = || fail(i, "unterminated string");
    let mut out = String::new();
    loop {
        let end = rest.find(['"', '\\']).unwrap_or(rest.len());
        let (text, at) = (rest.get(..end).unwrap_or(""), rest.get(end..).unwrap_or(""));
        out.push_str(text);
        let mut chars = at.chars();
        match chars.next() {
            Some('"') => return Ok((chars.as_str(), crlf_line_ends(out))),
            Some(_backslash) => {
                let escaped = chars.next().ok_or_else(unterminated)?;
                out.push(escaped);
                rest = chars.as_str();
            }
            None => return Err(unterminated()),
        }
    }
}

/// `multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF)
///               *(multiline-literal / multiline-dotstart) "." CRLF`
///
/// Each line becomes the line and CRLF; a line of a single `.` ends the string (its line end is
/// left as white space, so the token ends on the `.` line). Dot-stuffing (RFC 5228 section
/// 2.4.2, as Pigeonhole reads it): a line starting with `..` loses its first `.`; a line starting
/// with a `.` and then anything else is taken as written (`.foo` stays `.foo`).
pub(super) fn multi_line(i: &str) -> SResult<'_, String> {
    if !i.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("text:")) {
        return Err(miss(i));
    }
    let rest = i.get(5..).unwrap_or("");
    let (rest, _) = take_while(|c| c == ' ' || c == '\t').parse(rest)?;
    let rest = match rest.strip_prefix('#') {
        Some(comment) => take_till(|c| c == '\n').parse(comment)?.0,
        None => rest,
    };
    let rest = rest.strip_prefix('\r').unwrap_or(rest);
    let Some(mut rest) = rest.strip_prefix('\n') else {
        return Err(fail(i, "text: must be followed by a line end"));
    };
    let mut out = String::new();
    loop {
        if rest.is_empty() {
            return Err(fail(
                i,
                "unterminated text: string (no line with a single '.')",
            ));
        }
        let (line, next) = match rest.split_once('\n') {
            Some((line, next)) => (line, next),
            None => (rest, ""),
        };
        let content = line.strip_suffix('\r').unwrap_or(line);
        if content == "." {
            return Ok((rest.get(1..).unwrap_or(""), out));
        }
        out.push_str(if content.starts_with("..") {
            &content[1..]
        } else {
            content
        });
        out.push_str("\r\n");
        rest = next;
    }
}

/// Strings keep their line ends as CRLF (a bare LF in the script becomes CRLF), so a reason or
/// header value reads the same whatever editor wrote the script.
fn crlf_line_ends(s: String) -> String {
    if !s.contains('\n') {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut prev = '\0';
    for c in s.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Any one token, for error messages: what the grammar found where it wanted something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// An identifier (lowercased).
    Identifier(String),
    /// A tag (lowercased, without the colon).
    Tag(String),
    /// A number.
    Number(u64),
    /// A quoted or multi-line string.
    Str,
    /// One of the separators `[ ] ( ) { } , ;`.
    Separator(char),
}

impl Token {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Token::Identifier(s) => format!("identifier '{s}'"),
            Token::Tag(s) => format!("tag ':{s}'"),
            Token::Number(n) => format!("number {n}"),
            Token::Str => "string".to_string(),
            Token::Separator(c) => format!("'{c}'"),
        }
    }
}

/// One token of any kind; a character that starts none is an error.
pub(super) fn token(i: &str) -> SResult<'_, Token> {
    use nom::branch::alt;
    use nom::combinator::map;
    let parsed = alt((
        map(one_of("[](){},;"), Token::Separator),
        map(string, |_| Token::Str),
        map(number, Token::Number),
        map(tag, Token::Tag),
        map(identifier, Token::Identifier),
    ))
    .parse(i);
    match parsed {
        Err(nom::Err::Error(_)) => {
            let c = i.chars().next().unwrap_or('?');
            Err(fail(
                i,
                format!("unexpected character '{}'", c.escape_default()),
            ))
        }
        other => other,
    }
}
