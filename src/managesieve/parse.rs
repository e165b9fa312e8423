//! The pure part of ManageSieve's grammar (RFC 5804 section 4): one command line into its
//! arguments, a line that ends in a literal announcement reported so the session reads the
//! literal's octets and goes on with the next line. No I/O here.
//!
//! ```text
//! command     = atom *(SP (string / number)) CRLF
//! string      = quoted / literal-c2s
//! quoted      = DQUOTE *1024QUOTED-CHAR DQUOTE
//! literal-c2s = "{" number "+}" CRLF *OCTET
//! ```
//!
//! Clients may also send the synchronizing form `{n}`: Dovecot accepts it (older clients send
//! it), and since ManageSieve has no continuation response it is read exactly like `{n+}`.

use crate::limits;

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// An atom: the command name, or a bare word.
    Atom(String),
    /// A number (32-bit unsigned, RFC 5804 `number`).
    Number(u32),
    /// A quoted string or a literal, as octets.
    String(Vec<u8>),
}

/// How a scanned line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The command is complete.
    Done,
    /// A literal of this many octets follows the line; the command continues after it.
    Literal(u64),
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing on the line.
    #[error("empty command line")]
    Empty,
    /// A character that starts no token.
    #[error("unexpected character in command")]
    Unexpected,
    /// A quoted string without its closing quote, with a bad escape or a control character.
    #[error("invalid quoted string")]
    BadQuoted,
    /// A quoted string over 1024 octets.
    #[error("quoted string too long (use a literal)")]
    QuotedTooLong,
    /// `{...}` that is no literal announcement, or not at the end of the line.
    #[error("invalid literal")]
    BadLiteral,
    /// A number over 32 bits or with a leading zero.
    #[error("invalid number")]
    BadNumber,
    /// Arguments not separated by exactly one space.
    #[error("expected a single space between arguments")]
    BadSpacing,
    /// More than [`limits::MANAGESIEVE_MAX_ARGS`] arguments.
    #[error("too many arguments")]
    TooManyArgs,
}

/// RFC 5804 `quoted` may hold at most 1024 octets.
const MAX_QUOTED: usize = 1024;

/// ATOM-CHAR: any CHAR except `(` `)` `{` SP CTL `"` `\`.
fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\')
}

/// Scans one line (without CRLF) into `out`. `continuation` is true for a line that follows a
/// literal: it is either empty (the command ends) or goes on with SP and more arguments.
pub fn scan_line(line: &[u8], out: &mut Vec<Arg>, continuation: bool) -> Result<Scan, ParseError> {
    let mut pos = 0;
    if continuation {
        match line.first() {
            None => return Ok(Scan::Done),
            Some(b' ') => pos = 1,
            Some(_) => return Err(ParseError::BadSpacing),
        }
    } else if line.is_empty() {
        return Err(ParseError::Empty);
    }
    loop {
        if out.len() >= limits::MANAGESIEVE_MAX_ARGS {
            return Err(ParseError::TooManyArgs);
        }
        let rest = &line[pos..];
        let used = match rest.first() {
            Some(b'"') => {
                let (s, n) = quoted(rest)?;
                out.push(Arg::String(s));
                n
            }
            Some(b'{') => {
                let len = literal(rest)?;
                return Ok(Scan::Literal(len));
            }
            Some(b) if b.is_ascii_digit() => {
                let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if rest.get(n).is_some_and(|&b| b != b' ') {
                    return Err(ParseError::BadNumber);
                }
                out.push(Arg::Number(number(&rest[..n])?));
                n
            }
            Some(&b) if is_atom_char(b) => {
                let n = rest.iter().take_while(|&&b| is_atom_char(b)).count();
                // ATOM-CHARs are ASCII, so this is UTF-8.
                out.push(Arg::Atom(String::from_utf8_lossy(&rest[..n]).into_owned()));
                n
            }
            Some(b' ') | None => return Err(ParseError::BadSpacing),
            Some(_) => return Err(ParseError::Unexpected),
        };
        pos += used;
        match line.get(pos) {
            None => return Ok(Scan::Done),
            Some(b' ') => pos += 1,
            Some(_) => return Err(ParseError::BadSpacing),
        }
    }
}

/// `number = (NZDIGIT *DIGIT) / "0"`, below 2^32.
fn number(digits: &[u8]) -> Result<u32, ParseError> {
    if digits.len() > 1 && digits[0] == b'0' {
        return Err(ParseError::BadNumber);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u32>().ok())
        .ok_or(ParseError::BadNumber)
}

/// A quoted string at the start of `s`: its content and the octets used, quotes included.
fn quoted(s: &[u8]) -> Result<(Vec<u8>, usize), ParseError> {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match s.get(i) {
            None => return Err(ParseError::BadQuoted),
            Some(b'"') => return Ok((out, i + 1)),
            Some(b'\\') => match s.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    i += 2;
                }
                _ => return Err(ParseError::BadQuoted),
            },
            Some(b'\r' | b'\n' | 0) => return Err(ParseError::BadQuoted),
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
        if out.len() > MAX_QUOTED {
            return Err(ParseError::QuotedTooLong);
        }
    }
}

/// `{n+}` or `{n}` that must end the line: the announced length.
fn literal(s: &[u8]) -> Result<u64, ParseError> {
    let inner = s
        .strip_prefix(b"{")
        .and_then(|r| r.strip_suffix(b"}"))
        .ok_or(ParseError::BadLiteral)?;
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits.len() > 10 {
        return Err(ParseError::BadLiteral);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|&n| n <= u64::from(u32::MAX))
        .ok_or(ParseError::BadLiteral)
}

/// After a line failed to scan: does it still end in a literal announcement? The session then
/// reads past that literal too, so the literal's octets are never taken for commands.
pub fn trailing_literal(line: &[u8]) -> Scan {
    match line.iter().rposition(|&b| b == b'{') {
        Some(at) if line.ends_with(b"}") => match literal(&line[at..]) {
            Ok(n) => Scan::Literal(n),
            Err(_) => Scan::Done,
        },
        _ => Scan::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Result<(Vec<Arg>, Scan), ParseError> {
        let mut out = Vec::new();
        let s = scan_line(line.as_bytes(), &mut out, false)?;
        Ok((out, s))
    }

    fn s(v: &str) -> Arg {
        Arg::String(v.as_bytes().to_vec())
    }

    #[test]
    fn commands_and_their_arguments() {
        assert_eq!(
            scan("CAPABILITY").unwrap(),
            (vec![Arg::Atom("CAPABILITY".into())], Scan::Done)
        );
        assert_eq!(
            scan(r#"HAVESPACE "myscript" 999999"#).unwrap(),
            (
                vec![
                    Arg::Atom("HAVESPACE".into()),
                    s("myscript"),
                    Arg::Number(999999)
                ],
                Scan::Done
            )
        );
        // RFC 5804 section 2.6: PUTSCRIPT with a literal.
        assert_eq!(
            scan(r#"Putscript "foo" {31+}"#).unwrap(),
            (
                vec![Arg::Atom("Putscript".into()), s("foo")],
                Scan::Literal(31)
            )
        );
        assert_eq!(
            scan(r#"PUTSCRIPT "foo" {31}"#).unwrap().1,
            Scan::Literal(31)
        );
        assert_eq!(
            scan(r#"NOOP "a \"b\" \\c""#).unwrap().0[1],
            s(r#"a "b" \c"#)
        );
        assert_eq!(scan(r#"SETACTIVE """#).unwrap().0[1], s(""));
        let mut out = vec![Arg::Atom("PUTSCRIPT".into())];
        assert_eq!(scan_line(b"", &mut out, true), Ok(Scan::Done));
        assert_eq!(scan_line(b" \"x\"", &mut out, true), Ok(Scan::Done));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn bad_lines_are_typed_errors() {
        let bad = [
            ("", ParseError::Empty),
            ("NOOP  \"x\"", ParseError::BadSpacing),
            ("NOOP \"x\" ", ParseError::BadSpacing),
            ("NOOP \"x", ParseError::BadQuoted),
            ("NOOP \"a\\b\"", ParseError::BadQuoted),
            ("NOOP {12+} x", ParseError::BadLiteral),
            ("NOOP {x}", ParseError::BadLiteral),
            ("NOOP {99999999999}", ParseError::BadLiteral),
            ("HAVESPACE \"a\" 4294967296", ParseError::BadNumber),
            ("HAVESPACE \"a\" 012", ParseError::BadNumber),
            ("HAVESPACE \"a\" 12x", ParseError::BadNumber),
            ("NOOP (x)", ParseError::Unexpected),
            ("\"quoted\"first\"", ParseError::BadSpacing),
            ("A B C D E F G H I", ParseError::TooManyArgs),
        ];
        for (line, want) in bad {
            assert_eq!(scan(line).map(|_| ()), Err(want), "{line:?}");
        }
        let long = format!("NOOP \"{}\"", "x".repeat(1025));
        assert_eq!(scan(&long).map(|_| ()), Err(ParseError::QuotedTooLong));
        let ok = format!("NOOP \"{}\"", "x".repeat(1024));
        assert!(scan(&ok).is_ok());
        let mut out = Vec::new();
        assert_eq!(scan_line(b"x", &mut out, true), Err(ParseError::BadSpacing));
    }

    #[test]
    fn a_bad_line_still_announces_its_literal() {
        assert_eq!(
            trailing_literal(b"PUTSCRIPT \"a\\q\" {12+}"),
            Scan::Literal(12)
        );
        assert_eq!(trailing_literal(b"X {3}"), Scan::Literal(3));
        assert_eq!(trailing_literal(b"X {3}y"), Scan::Done);
        assert_eq!(trailing_literal(b"X"), Scan::Done);
    }
}
