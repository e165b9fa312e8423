//! POP3 command lines (RFC 1939 section 3, RFC 2449, RFC 5034) parsed into typed commands.
//!
//! Pure code without I/O, so every malformed line can be tested directly. Keywords are
//! case-insensitive; arguments are split on spaces, except PASS, whose argument is the rest of
//! the line because RFC 1939 lets a password contain spaces. Message numbers are 1-based and fit
//! a `u32`; anything else is a typed [`ParseError`] the session turns into `-ERR`.

/// A parsed POP3 command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// CAPA (RFC 2449).
    Capa,
    /// STLS (RFC 2595).
    Stls,
    /// USER name.
    User(String),
    /// PASS password (the rest of the line, spaces included, as RFC 1939 allows).
    Pass(Vec<u8>),
    /// AUTH [mechanism [initial-response]] (RFC 5034); no mechanism lists them.
    Auth(Option<String>, Option<String>),
    /// APOP: recognised so it can be refused clearly.
    Apop,
    /// STAT.
    Stat,
    /// LIST [msg].
    List(Option<u32>),
    /// RETR msg.
    Retr(u32),
    /// TOP msg lines.
    Top(u32, u64),
    /// UIDL [msg].
    Uidl(Option<u32>),
    /// DELE msg.
    Dele(u32),
    /// NOOP.
    Noop,
    /// RSET.
    Rset,
    /// QUIT.
    Quit,
}

impl Command {
    /// The keyword, upper case (the `command` label of the metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth(..) => "AUTH",
            Command::Apop => "APOP",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
        }
    }
}

/// Why a line is not a command we can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Empty line or a keyword we do not know.
    Unknown,
    /// The keyword is known but its arguments are wrong; the text says how.
    BadArguments(&'static str),
}

/// Parses one line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    // RFC 1939 section 3: keywords and arguments are printable ASCII. A NUL or bare CR in a user
    // name would reach the users file lookup, the log and the per-user limits as a different
    // name than any tool shows; refuse the whole line instead.
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(ParseError::BadArguments(
            "control characters are not allowed",
        ));
    }
    let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => {
            let (keyword, rest) = line.split_at(i);
            (keyword, rest.get(1..).unwrap_or_default())
        }
        None => (line, &b""[..]),
    };
    // RFC 1939: keywords are case-insensitive, 3 or 4 characters.
    if keyword.len() > 4 || keyword.len() < 3 {
        return Err(ParseError::Unknown);
    }
    let kw = keyword.to_ascii_uppercase();
    let args = || {
        rest.split(|&b| b == b' ')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
    };
    let none = |c: Command| {
        if args().is_empty() {
            Ok(c)
        } else {
            Err(ParseError::BadArguments("this command takes no arguments"))
        }
    };
    match kw.as_slice() {
        b"CAPA" => none(Command::Capa),
        b"STLS" => none(Command::Stls),
        b"STAT" => none(Command::Stat),
        b"NOOP" => none(Command::Noop),
        b"RSET" => none(Command::Rset),
        b"QUIT" => none(Command::Quit),
        b"APOP" => Ok(Command::Apop),
        b"USER" => {
            let a = args();
            match a.as_slice() {
                [name] => utf8(name).map(Command::User),
                _ => Err(ParseError::BadArguments("USER needs exactly one user name")),
            }
        }
        b"PASS" => {
            if rest.is_empty() {
                Err(ParseError::BadArguments("PASS needs a password"))
            } else {
                Ok(Command::Pass(rest.to_vec()))
            }
        }
        b"AUTH" => {
            let a = args();
            match a.as_slice() {
                [] => Ok(Command::Auth(None, None)),
                [m] => Ok(Command::Auth(Some(utf8(m)?.to_ascii_uppercase()), None)),
                [m, ir] => Ok(Command::Auth(
                    Some(utf8(m)?.to_ascii_uppercase()),
                    Some(utf8(ir)?),
                )),
                _ => Err(ParseError::BadArguments(
                    "AUTH takes a mechanism and an optional initial response",
                )),
            }
        }
        b"LIST" => optional_msg(&args()).map(Command::List),
        b"UIDL" => optional_msg(&args()).map(Command::Uidl),
        b"RETR" => one_msg(&args()).map(Command::Retr),
        b"DELE" => one_msg(&args()).map(Command::Dele),
        b"TOP" => {
            let a = args();
            match a.as_slice() {
                [m, n] => {
                    let m = msg_number(m)?;
                    let n = number(n).ok_or(ParseError::BadArguments("TOP needs a line count"))?;
                    Ok(Command::Top(m, n))
                }
                _ => Err(ParseError::BadArguments(
                    "TOP needs a message number and a line count",
                )),
            }
        }
        _ => Err(ParseError::Unknown),
    }
}

fn utf8(b: &[u8]) -> Result<String, ParseError> {
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| ParseError::BadArguments("argument is not valid UTF-8"))
}

fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn msg_number(b: &[u8]) -> Result<u32, ParseError> {
    match number(b) {
        Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Ok(n as u32),
        _ => Err(ParseError::BadArguments("invalid message number")),
    }
}

fn one_msg(a: &[&[u8]]) -> Result<u32, ParseError> {
    match a {
        [m] => msg_number(m),
        _ => Err(ParseError::BadArguments("a message number is needed")),
    }
}

fn optional_msg(a: &[&[u8]]) -> Result<Option<u32>, ParseError> {
    match a {
        [] => Ok(None),
        [m] => msg_number(m).map(Some),
        _ => Err(ParseError::BadArguments("at most one message number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse(b"capa"), Ok(Command::Capa));
        assert_eq!(parse(b"USER demo"), Ok(Command::User("demo".into())));
        for hostile in [
            &b"USER de\0mo"[..],
            b"NO\0OP",
            b"USER demo\rPASS x",
            b"PASS a\x7fb",
        ] {
            assert_eq!(
                parse(hostile),
                Err(ParseError::BadArguments(
                    "control characters are not allowed"
                ))
            );
        }
        assert_eq!(
            parse(b"PASS a secret with spaces"),
            Ok(Command::Pass(b"a secret with spaces".to_vec()))
        );
        assert_eq!(parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(parse(b"list 3"), Ok(Command::List(Some(3))));
        assert_eq!(parse(b"TOP 1 0"), Ok(Command::Top(1, 0)));
        assert_eq!(
            parse(b"AUTH plain dGVzdA=="),
            Ok(Command::Auth(Some("PLAIN".into()), Some("dGVzdA==".into())))
        );
        assert_eq!(parse(b"AUTH"), Ok(Command::Auth(None, None)));
    }

    #[test]
    fn bad_lines_are_typed() {
        assert_eq!(parse(b""), Err(ParseError::Unknown));
        assert_eq!(parse(b"FROB"), Err(ParseError::Unknown));
        assert_eq!(
            parse(b"RETR"),
            Err(ParseError::BadArguments("a message number is needed"))
        );
        assert_eq!(
            parse(b"RETR 0"),
            Err(ParseError::BadArguments("invalid message number"))
        );
        assert_eq!(
            parse(b"RETR -1"),
            Err(ParseError::BadArguments("invalid message number"))
        );
        assert_eq!(
            parse(b"RETR 99999999999"),
            Err(ParseError::BadArguments("invalid message number"))
        );
        assert_eq!(
            parse(b"STAT 1"),
            Err(ParseError::BadArguments("this command takes no arguments"))
        );
        assert!(parse(b"TOP 1").is_err());
        assert!(parse(b"TOP 1 x").is_err());
        assert!(parse(b"USER").is_err());
        assert!(parse(b"USER a b").is_err());
        assert!(parse(b"USER \xff").is_err());
        assert!(parse(b"PASS").is_err());
        assert!(parse(b"LIST 1 2").is_err());
        assert_eq!(parse(b"UTF8"), Err(ParseError::Unknown));
        assert_eq!(parse(b"RETRX 1"), Err(ParseError::Unknown));
    }

    #[test]
    fn any_bytes_parse_without_panicking() {
        // A small deterministic generator: every line is either a command or a typed error.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = b"RETOPLISUDAHNQ 0123456789\x00\xff.-=";
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let line: Vec<u8> = (0..len)
                .map(|i| alphabet[((x >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            match parse(&line) {
                Ok(Command::Retr(n) | Command::Dele(n) | Command::Top(n, _)) => assert!(n >= 1),
                Ok(Command::List(Some(n)) | Command::Uidl(Some(n))) => assert!(n >= 1),
                Ok(_) | Err(ParseError::Unknown) => {}
                Err(ParseError::BadArguments(why)) => assert!(!why.is_empty()),
            }
        }
    }
}
