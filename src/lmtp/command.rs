//! The LMTP command parser: one command line (without its line end) in, one [`Command`] or a
//! [`ParseError`] out. Pure and allocation-bounded by the line, so it can be fuzzed on its own.
//!
//! The grammar is RFC 5321's (section 4.1) with LMTP's LHLO (RFC 2033 section 4.1). Where MTAs
//! are known to bend it, the parser is lenient in the direction that cannot change the meaning:
//! verbs and parameter names are case-insensitive, a space after `FROM:`/`TO:` is accepted, and so
//! is a path without angle brackets. A source route (`<@a,@b:user@c>`) is accepted and dropped, as
//! RFC 5321 section 4.1.1.3 requires.

use thiserror::Error;

use crate::limits::LMTP_MAX_PATH;

/// `BODY=` of MAIL FROM (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `7BIT`, also the default.
    SevenBit,
    /// `8BITMIME`.
    EightBitMime,
}

/// One parsed LMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LHLO domain`
    Lhlo(String),
    /// `HELO` or `EHLO`: SMTP greetings, which an LMTP server must refuse (RFC 2033 section 4.1).
    SmtpGreeting,
    /// `MAIL FROM:<path> [SIZE=n] [BODY=...]`; `from` is empty for the null path `<>`.
    Mail {
        /// The reverse path without brackets.
        from: String,
        /// The size the client announced (RFC 1870).
        size: Option<u64>,
        /// The body type the client announced.
        body: Body,
        /// `AUTH=` (RFC 4954 section 5), xtext-decoded: the submitter the client vouches for;
        /// `None` when absent or `AUTH=<>` (not known or not trusted).
        auth: Option<String>,
    },
    /// `RCPT TO:<path> [ORCPT=addr-type;xtext]`
    Rcpt {
        /// The forward path without brackets.
        to: String,
        /// `ORCPT=` (RFC 3461 section 4.2), the original recipient, xtext-decoded, for the
        /// `rfc822` address type (and RFC 6533's `utf-8`); other types are accepted and dropped.
        orcpt: Option<String>,
    },
    /// `DATA`
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets that follow the command line.
        size: u64,
        /// The last chunk of the message.
        last: bool,
    },
    /// `RSET`
    Rset,
    /// `NOOP [string]`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY ...`: refused.
    Vrfy,
    /// Any other verb.
    Unknown,
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// A known command with bad arguments (501 5.5.4).
    #[error("{0}")]
    Syntax(&'static str),
    /// A MAIL or RCPT parameter we do not support (555 5.5.4).
    #[error("unsupported parameter {0}")]
    UnknownParameter(String),
}

/// Parses one command line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax("invalid UTF-8"))?;
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r),
        None => (line, ""),
    };
    let upper = verb.to_ascii_uppercase();
    match upper.as_str() {
        "LHLO" => {
            let domain = rest.trim();
            if domain.is_empty() || domain.contains(' ') {
                return Err(ParseError::Syntax("LHLO needs one domain argument"));
            }
            Ok(Command::Lhlo(domain.to_string()))
        }
        "HELO" | "EHLO" => Ok(Command::SmtpGreeting),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => no_args(rest, Command::Data),
        "BDAT" => parse_bdat(rest),
        "RSET" => no_args(rest, Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(rest, Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        _ => Ok(Command::Unknown),
    }
}

fn no_args(rest: &str, cmd: Command) -> Result<Command, ParseError> {
    if rest.trim().is_empty() {
        Ok(cmd)
    } else {
        Err(ParseError::Syntax("this command takes no arguments"))
    }
}

/// Strips a case-insensitive keyword such as `FROM:` and the optional spaces after it.
fn keyword<'a>(rest: &'a str, kw: &str) -> Option<&'a str> {
    let head = rest.get(..kw.len())?;
    if !head.eq_ignore_ascii_case(kw) {
        return None;
    }
    rest.get(kw.len()..).map(|r| r.trim_start_matches(' '))
}

fn parse_mail(rest: &str) -> Result<Command, ParseError> {
    let rest = keyword(rest, "FROM:").ok_or(ParseError::Syntax("expected MAIL FROM:<address>"))?;
    let (from, params) = path(rest)?;
    let mut size = None;
    let mut body = Body::SevenBit;
    let mut auth = None;
    for (key, value) in parameters(params) {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) => {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::Syntax("SIZE needs a number"));
                }
                // A number too large for u64 is certainly over any limit.
                size = Some(v.parse::<u64>().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => body = Body::SevenBit,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => body = Body::EightBitMime,
            ("BODY", _) => return Err(ParseError::Syntax("BODY must be 7BIT or 8BITMIME")),
            // Accepted although LHLO does not announce AUTH, as the value only informs Sieve's
            // `envelope "auth"`; nothing is trusted because of it.
            ("AUTH", Some("<>")) => auth = None,
            ("AUTH", Some(v)) => {
                auth = Some(xtext(v).ok_or(ParseError::Syntax("AUTH needs an xtext mailbox"))?)
            }
            _ => return Err(ParseError::UnknownParameter(key.to_string())),
        }
    }
    Ok(Command::Mail {
        from,
        size,
        body,
        auth,
    })
}

fn parse_rcpt(rest: &str) -> Result<Command, ParseError> {
    let rest = keyword(rest, "TO:").ok_or(ParseError::Syntax("expected RCPT TO:<address>"))?;
    let (to, params) = path(rest)?;
    if to.is_empty() {
        return Err(ParseError::Syntax("empty recipient address"));
    }
    let mut orcpt = None;
    for (key, value) in parameters(params) {
        match (key.to_ascii_uppercase().as_str(), value) {
            // Accepted although LHLO does not announce DSN (Postfix sends ORCPT to LMTP only
            // when it is announced, other MTAs may not ask); kept for the Sieve envelope.
            ("ORCPT", Some(v)) => {
                let (kind, addr) = v
                    .split_once(';')
                    .ok_or(ParseError::Syntax("ORCPT needs addr-type;address"))?;
                let addr = xtext(addr).ok_or(ParseError::Syntax("ORCPT needs an xtext address"))?;
                if kind.eq_ignore_ascii_case("rfc822") || kind.eq_ignore_ascii_case("utf-8") {
                    orcpt = Some(addr);
                }
            }
            _ => return Err(ParseError::UnknownParameter(key.to_string())),
        }
    }
    Ok(Command::Rcpt { to, orcpt })
}

fn parse_bdat(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(ParseError::Syntax("BDAT needs a chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("expected BDAT size [LAST]")),
    };
    if words.next().is_some() {
        return Err(ParseError::Syntax("expected BDAT size [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

/// Decodes RFC 3461 section 4 `xtext` (`+HH` escapes two upper-case hex digits); `None` when
/// malformed, empty, or longer than a path may be.
fn xtext(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'+' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h))
            {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if (33..=126).contains(&c) && c != b'=' {
            out.push(c);
            i += 1;
        } else if c >= 0x80 {
            // RFC 6533 utf-8-addr-xtext carries UTF-8 as is.
            out.push(c);
            i += 1;
        } else {
            return None;
        }
    }
    if out.is_empty() || out.len() > LMTP_MAX_PATH {
        return None;
    }
    String::from_utf8(out).ok()
}

/// `KEY[=VALUE]` items separated by spaces.
fn parameters(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (w, None),
        })
}

/// Reads a path (`<addr>`, `<>`, or a bare address) and returns it with the rest of the line.
fn path(s: &str) -> Result<(String, &str), ParseError> {
    let (inner, rest) = if let Some(after) = s.strip_prefix('<') {
        let end = closing_bracket(after).ok_or(ParseError::Syntax("unterminated <address>"))?;
        let inner = after.get(..end).unwrap_or_default();
        let rest = after.get(end + 1..).unwrap_or_default();
        if !rest.is_empty() && !rest.starts_with(' ') {
            return Err(ParseError::Syntax("text after the address"));
        }
        (inner, rest)
    } else {
        match s.split_once(' ') {
            Some((a, r)) => (a, r),
            None => (s, ""),
        }
    };
    let inner = strip_source_route(inner);
    if inner.len() > LMTP_MAX_PATH {
        return Err(ParseError::Syntax("address too long"));
    }
    if inner.chars().any(|c| c.is_control()) || inner.contains('<') || inner.contains('>') {
        return Err(ParseError::Syntax("invalid characters in the address"));
    }
    if !inner.is_empty() && !inner.starts_with('"') && inner.contains(' ') {
        return Err(ParseError::Syntax("space in the address"));
    }
    Ok((inner.to_string(), rest))
}

/// Index of the `>` closing a path, skipping quoted strings (`"a>b"@c`) and their escapes.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `@a,@b:user@c` is `user@c` (RFC 5321 section 4.1.1.3: accept and ignore source routes).
fn strip_source_route(s: &str) -> &str {
    if s.starts_with('@')
        && let Some((_, addr)) = s.split_once(':')
    {
        return addr;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        parse(s.as_bytes())
    }

    #[test]
    fn greetings() {
        assert_eq!(p("LHLO mx.example"), Ok(Command::Lhlo("mx.example".into())));
        assert_eq!(p("lhlo mx"), Ok(Command::Lhlo("mx".into())));
        assert!(matches!(p("LHLO"), Err(ParseError::Syntax(_))));
        assert_eq!(p("EHLO mx"), Ok(Command::SmtpGreeting));
        assert_eq!(p("helo mx"), Ok(Command::SmtpGreeting));
    }

    #[test]
    fn mail_from_with_parameters() {
        assert_eq!(
            p("MAIL FROM:<a@b.example> SIZE=1024 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "a@b.example".into(),
                size: Some(1024),
                body: Body::EightBitMime,
                auth: None
            })
        );
        assert_eq!(
            p("mail from: <>"),
            Ok(Command::Mail {
                from: String::new(),
                size: None,
                body: Body::SevenBit,
                auth: None
            })
        );
        assert_eq!(
            p("MAIL FROM:<a@b> SIZE=99999999999999999999999"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: Some(u64::MAX),
                body: Body::SevenBit,
                auth: None
            })
        );
        // RFC 4954 section 5: `AUTH=<>` is an unknown submitter; the value is xtext.
        assert_eq!(
            p("MAIL FROM:<a@b> AUTH=<>"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: None,
                body: Body::SevenBit,
                auth: None
            })
        );
        assert_eq!(
            p("MAIL FROM:<a@b> auth=e+3Dmc2@example.com SIZE=1"),
            Ok(Command::Mail {
                from: "a@b".into(),
                size: Some(1),
                body: Body::SevenBit,
                auth: Some("e=mc2@example.com".into())
            })
        );
        assert!(matches!(
            p("MAIL FROM:<a@b> AUTH=a+2"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b> AUTH=a=b"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            p("MAIL FROM:<a@b> RET=FULL"),
            Err(ParseError::UnknownParameter("RET".into()))
        );
        assert!(matches!(
            p("MAIL FROM:<a@b> SIZE=x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            p("MAIL FROM:<a@b> BODY=BINARYMIME"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(p("MAIL TO:<a@b>"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("MAIL FROM:<a@b"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn rcpt_paths() {
        let rcpt = |to: &str| {
            Ok(Command::Rcpt {
                to: to.into(),
                orcpt: None,
            })
        };
        assert_eq!(p("RCPT TO:<user@example.org>"), rcpt("user@example.org"));
        assert_eq!(p("rcpt to:user@example.org"), rcpt("user@example.org"));
        assert_eq!(p("RCPT TO:<@relay.example:u@x>"), rcpt("u@x"));
        assert_eq!(p("RCPT TO:<\"a b\"@x>"), rcpt("\"a b\"@x"));
        // Brackets are found past quotes, but refused inside an address: they would break the
        // `<address>` in replies and headers, and no real mailbox needs them.
        assert!(matches!(
            p("RCPT TO:<\"a>b\"@x>"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(p("RCPT TO:<Postmaster>"), rcpt("Postmaster"));
        assert!(matches!(p("RCPT TO:<>"), Err(ParseError::Syntax(_))));
        assert_eq!(
            p("RCPT TO:<u@x> NOTIFY=NEVER"),
            Err(ParseError::UnknownParameter("NOTIFY".into()))
        );
        let long = format!("RCPT TO:<{}@x>", "a".repeat(LMTP_MAX_PATH));
        assert!(matches!(p(&long), Err(ParseError::Syntax(_))));
        assert!(matches!(p("RCPT TO:<a\tb@x>"), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn data_bdat_and_simple_verbs() {
        assert_eq!(p("DATA"), Ok(Command::Data));
        assert!(matches!(p("DATA x"), Err(ParseError::Syntax(_))));
        assert_eq!(
            p("BDAT 10"),
            Ok(Command::Bdat {
                size: 10,
                last: false
            })
        );
        assert_eq!(
            p("bdat 0 last"),
            Ok(Command::Bdat {
                size: 0,
                last: true
            })
        );
        assert!(matches!(p("BDAT"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("BDAT -1"), Err(ParseError::Syntax(_))));
        assert!(matches!(p("BDAT 1 LAST x"), Err(ParseError::Syntax(_))));
        assert_eq!(p("RSET"), Ok(Command::Rset));
        assert_eq!(p("NOOP anything"), Ok(Command::Noop));
        assert_eq!(p("QUIT"), Ok(Command::Quit));
        assert_eq!(p("VRFY root"), Ok(Command::Vrfy));
        assert_eq!(p("STARTTLS"), Ok(Command::Unknown));
        assert_eq!(p(""), Ok(Command::Unknown));
        assert!(matches!(
            parse(b"MAIL FROM:<\xff>"),
            Err(ParseError::Syntax(_))
        ));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every prefix and byte flip of real commands.
        let seeds: [&[u8]; 5] = [
            b"MAIL FROM:<\"q\\\"x>\"@a> SIZE=12 BODY=8BITMIME",
            b"RCPT TO:<@a,@b:c@d>",
            b"BDAT 4294967296 LAST",
            b"LHLO \xc3\xa9x",
            b"rcpt to:   <x@y>   ",
        ];
        for seed in seeds {
            for cut in 0..=seed.len() {
                let prefix = seed.get(..cut).unwrap_or_default();
                let _ = parse(prefix);
                for i in 0..prefix.len() {
                    let mut v = prefix.to_vec();
                    if let Some(b) = v.get_mut(i) {
                        *b ^= 0x5a;
                    }
                    let _ = parse(&v);
                }
            }
        }
    }

    #[test]
    fn rcpt_orcpt_is_xtext_decoded() {
        // RFC 3461 section 4.2: ORCPT=addr-type;xtext.
        assert_eq!(
            p("RCPT TO:<u@x> ORCPT=rfc822;Orig+2Bdetail@example.org"),
            Ok(Command::Rcpt {
                to: "u@x".into(),
                orcpt: Some("Orig+detail@example.org".into())
            })
        );
        assert_eq!(
            p("RCPT TO:<u@x> orcpt=x400;something"),
            Ok(Command::Rcpt {
                to: "u@x".into(),
                orcpt: None
            })
        );
        assert!(matches!(
            p("RCPT TO:<u@x> ORCPT=rfc822"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            p("RCPT TO:<u@x> ORCPT=rfc822;a+zz"),
            Err(ParseError::Syntax(_))
        ));
        assert_eq!(
            p("RCPT TO:<u@x> NOTIFY=NEVER"),
            Err(ParseError::UnknownParameter("NOTIFY".into()))
        );
    }
}
