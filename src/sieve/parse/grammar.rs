//! The grammar of RFC 5228 section 8.2, one function per rule. White space and comments may
//! come before every token; each rule skips them itself.
//!
//! Depth: a block is one level deeper than its command, a test one level deeper than what it
//! belongs to (the command, or the test it is an argument of); a test list's tests are at the
//! list's level. Beyond [`SIEVE_MAX_NESTING`] the script is refused before recursing further.

use nom::Parser;
use nom::branch::alt;
use nom::combinator::{map, success, value};
use nom::multi::many0;
use nom::sequence::preceded;

use super::lexical::{self, white_space};
use super::{Arg, Cx, Pos, RawCommand, RawTest, SErr, SResult, fail, miss};
use crate::limits::{SIEVE_MAX_NESTING, SIEVE_MAX_STRING_LIST};

/// `start = commands`, and nothing after them.
pub(super) fn start<'a>(cx: &Cx, i: &'a str) -> SResult<'a, Vec<RawCommand>> {
    let (i, commands) = commands(cx, 0, i)?;
    let (rest, ()) = white_space(i)?;
    if rest.is_empty() {
        return Ok((rest, commands));
    }
    let (_, found) = lexical::token(rest)?;
    Err(fail(rest, format!("unexpected {}", found.describe())))
}

/// `commands = *command`
fn commands<'a>(cx: &Cx, depth: usize, i: &'a str) -> SResult<'a, Vec<RawCommand>> {
    many0(|i| command(cx, depth, i)).parse(i)
}

/// `command = identifier arguments (";" / block)`
fn command<'a>(cx: &Cx, depth: usize, i: &'a str) -> SResult<'a, RawCommand> {
    let (at, ()) = white_space(i)?;
    let (i, name) = lexical::identifier(at)?;
    let pos = cx.pos(at);
    let (i, (args, tests)) = arguments(cx, depth, i)?;
    let (i, block) = expect(
        "';' or '{'",
        alt((
            value(None, separator(';')),
            map(|i| block(cx, depth, i), Some),
        )),
    )
    .parse(i)?;
    Ok((
        i,
        RawCommand {
            name,
            pos,
            args,
            tests,
            block,
        },
    ))
}

/// `block = "{" commands "}"`
fn block<'a>(cx: &Cx, depth: usize, i: &'a str) -> SResult<'a, Vec<RawCommand>> {
    let (open, ()) = white_space(i)?;
    let i = open.strip_prefix('{').ok_or_else(|| miss(open))?;
    if depth + 1 > SIEVE_MAX_NESTING {
        return Err(fail(open, "blocks are nested too deeply"));
    }
    let (i, commands) = commands(cx, depth + 1, i)?;
    let (i, _) = expect("'}' or a command", separator('}')).parse(i)?;
    Ok((i, commands))
}

/// `arguments = *argument [ test / test-list ]`
#[allow(clippy::type_complexity)]
fn arguments<'a>(
    cx: &Cx,
    depth: usize,
    i: &'a str,
) -> SResult<'a, (Vec<(Arg, Pos)>, Vec<RawTest>)> {
    let (i, args) = many0(|i| argument(cx, i)).parse(i)?;
    let (i, tests) = alt((
        map(|i| test(cx, depth + 1, i), |t| vec![t]),
        |i| test_list(cx, depth + 1, i),
        success(Vec::new()),
    ))
    .parse(i)?;
    Ok((i, (args, tests)))
}

/// `argument = string-list / number / tag`
fn argument<'a>(cx: &Cx, i: &'a str) -> SResult<'a, (Arg, Pos)> {
    let (at, ()) = white_space(i)?;
    let (i, arg) = alt((
        string_list,
        map(lexical::number, Arg::Number),
        map(lexical::tag, Arg::Tag),
    ))
    .parse(at)?;
    Ok((i, (arg, cx.pos(at))))
}

/// `string-list = "[" string *("," string) "]" / string`; at most [`SIEVE_MAX_STRING_LIST`]
/// strings in brackets.
fn string_list(i: &str) -> SResult<'_, Arg> {
    alt((
        map(lexical::string, |s| Arg::Strings {
            values: vec![s],
            list: false,
        }),
        bracketed_strings,
    ))
    .parse(i)
}

/// `"[" string *("," string) "]"`, counted as it goes.
fn bracketed_strings(i: &str) -> SResult<'_, Arg> {
    let mut rest = i.strip_prefix('[').ok_or_else(|| miss(i))?;
    let mut values = Vec::new();
    loop {
        let (r, s) = expect("a string", preceded(white_space, lexical::string)).parse(rest)?;
        values.push(s);
        if values.len() > SIEVE_MAX_STRING_LIST {
            return Err(fail(i, "string list too long"));
        }
        let (r, more) = expect("',' or ']'", comma_or(']')).parse(r)?;
        rest = r;
        if !more {
            return Ok((rest, Arg::Strings { values, list: true }));
        }
    }
}

/// `test = identifier arguments`
fn test<'a>(cx: &Cx, depth: usize, i: &'a str) -> SResult<'a, RawTest> {
    let (at, ()) = white_space(i)?;
    let (i, name) = lexical::identifier(at)?;
    if depth > SIEVE_MAX_NESTING {
        return Err(fail(at, "tests are nested too deeply"));
    }
    let pos = cx.pos(at);
    let (i, (args, tests)) = arguments(cx, depth, i)?;
    Ok((
        i,
        RawTest {
            name,
            pos,
            args,
            tests,
        },
    ))
}

/// `test-list = "(" test *("," test) ")"`
fn test_list<'a>(cx: &Cx, depth: usize, i: &'a str) -> SResult<'a, Vec<RawTest>> {
    let (open, ()) = white_space(i)?;
    let mut rest = open.strip_prefix('(').ok_or_else(|| miss(open))?;
    if depth > SIEVE_MAX_NESTING {
        return Err(fail(open, "tests are nested too deeply"));
    }
    let mut tests = Vec::new();
    loop {
        let (r, t) = expect("a test", |i| test(cx, depth, i)).parse(rest)?;
        tests.push(t);
        let (r, more) = expect("',' or ')'", comma_or(')')).parse(r)?;
        rest = r;
        if !more {
            return Ok((rest, tests));
        }
    }
}

/// One of the separators, after white space.
fn separator<'a>(c: char) -> impl Parser<&'a str, Output = (), Error = SErr> {
    move |i: &'a str| {
        let (at, ()) = white_space(i)?;
        let rest = at.strip_prefix(c).ok_or_else(|| miss(at))?;
        Ok((rest, ()))
    }
}

/// `","` (true: the list goes on) or the list's closing bracket (false).
fn comma_or<'a>(close: char) -> impl Parser<&'a str, Output = bool, Error = SErr> {
    alt((value(true, separator(',')), value(false, separator(close))))
}

/// Runs `parser`; when it does not match, the script is wrong here: "expected WANTED, found
/// ..." naming the next token, at that token, or at the end of the previous one when the
/// script ends (that is where the missing `;` or `}` belongs). A next token that is itself
/// malformed (an unterminated string) is reported as such.
fn expect<'a, O>(
    wanted: &'static str,
    mut parser: impl Parser<&'a str, Output = O, Error = SErr>,
) -> impl Parser<&'a str, Output = O, Error = SErr> {
    move |i: &'a str| match parser.parse(i) {
        Err(nom::Err::Error(_)) => {
            let (rest, ()) = white_space(i)?;
            if rest.is_empty() {
                return Err(fail(
                    i,
                    format!("expected {wanted}, found the end of the script"),
                ));
            }
            let (_, found) = lexical::token(rest)?;
            Err(fail(
                rest,
                format!("expected {wanted}, found {}", found.describe()),
            ))
        }
        other => other,
    }
}
