//! POP3 command lines (`mailcove::pop3::command::parse`).
//!
//! Invariants: no panic; keywords are case-insensitive (the line with its
//! keyword upper-cased parses the same); a parsed command written back in
//! canonical form parses to the same command.

use mailcove::pop3::command::{Command, parse};

/// The canonical line for `cmd`, or `None` for commands whose text is not
/// kept (APOP arguments).
fn render(cmd: &Command) -> Option<Vec<u8>> {
    let s = |t: &str| Some(t.as_bytes().to_vec());
    match cmd {
        Command::Capa => s("CAPA"),
        Command::Stls => s("STLS"),
        Command::User(u) => s(&format!("USER {u}")),
        Command::Pass(p) => Some([b"PASS ".as_slice(), p].concat()),
        Command::Auth(None, _) => s("AUTH"),
        Command::Auth(Some(m), None) => s(&format!("AUTH {m}")),
        Command::Auth(Some(m), Some(ir)) => s(&format!("AUTH {m} {ir}")),
        Command::Apop => None,
        Command::Stat => s("STAT"),
        Command::List(None) => s("LIST"),
        Command::List(Some(n)) => s(&format!("LIST {n}")),
        Command::Retr(n) => s(&format!("RETR {n}")),
        Command::Top(n, l) => s(&format!("TOP {n} {l}")),
        Command::Uidl(None) => s("UIDL"),
        Command::Uidl(Some(n)) => s(&format!("UIDL {n}")),
        Command::Dele(n) => s(&format!("DELE {n}")),
        Command::Noop => s("NOOP"),
        Command::Rset => s("RSET"),
        Command::Quit => s("QUIT"),
    }
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let result = parse(data);

    let kw_len = data.iter().position(|&b| b == b' ').unwrap_or(data.len());
    let mut upper = data.to_vec();
    if let Some(kw) = upper.get_mut(..kw_len) {
        kw.make_ascii_uppercase();
    }
    assert_eq!(parse(&upper), result, "keyword case changed the result");

    if let Ok(cmd) = &result {
        match cmd {
            Command::Retr(n) | Command::Dele(n) | Command::Top(n, _) => assert!(*n >= 1),
            Command::List(Some(n)) | Command::Uidl(Some(n)) => assert!(*n >= 1),
            _ => {}
        }
        if let Some(line) = render(cmd) {
            assert_eq!(
                parse(&line).as_ref(),
                Ok(cmd),
                "canonical form does not round-trip"
            );
        }
    }
}
