//! ManageSieve answers (RFC 5804 section 1.2-1.3): `OK`, `NO` or `BYE`, an optional response
//! code in parentheses and a human-readable string. [`SieveError`] is every way a command can
//! fail; [`SieveError::answer`] is the one place it becomes its response line.

use crate::sieve::CompileError;

/// The longest text sent as a quoted string; anything longer, or with CR, LF or NUL, is sent as
/// a literal (RFC 5804 `quoted` holds at most 1024 octets).
const MAX_QUOTED: usize = 1024;

/// Appends `s` as a ManageSieve string: quoted when it can be, else a server literal `{n}`.
pub fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= MAX_QUOTED && !s.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        out.extend_from_slice(s);
    }
}

/// The three kinds of final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Failure; the session goes on.
    No,
    /// The server closes the connection.
    Bye,
}

/// Appends one response line: `STATUS [(CODE)] "text"` CRLF.
pub fn push_response(out: &mut Vec<u8>, status: Status, code: Option<&str>, text: &str) {
    out.extend_from_slice(match status {
        Status::Ok => b"OK",
        Status::No => b"NO",
        Status::Bye => b"BYE",
    });
    if let Some(code) = code {
        out.extend_from_slice(b" (");
        out.extend_from_slice(code.as_bytes());
        out.push(b')');
    }
    out.push(b' ');
    push_string(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Why a command failed or the session ends.
#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    /// The command name is not one of ours.
    #[error("Unknown command.")]
    UnknownCommand,
    /// The arguments do not fit the command.
    #[error("Invalid arguments: {0}.")]
    BadArguments(&'static str),
    /// The line could not be parsed.
    #[error("Syntax error: {0}.")]
    Syntax(#[from] super::parse::ParseError),
    /// A command line over the limit.
    #[error("Command line too long.")]
    LineTooLong,
    /// A literal larger than a script may be (RFC 5804 QUOTA/MAXSIZE).
    #[error("Script too large.")]
    LiteralTooLarge,
    /// A command that needs the other state.
    #[error("{0}")]
    WrongState(&'static str),
    /// An invalid script name (RFC 5804 section 1.6).
    #[error("Invalid script name: {0}.")]
    BadName(&'static str),
    /// The script does not exist (RFC 5804 NONEXISTENT).
    #[error("There is no script by that name.")]
    NonExistent,
    /// RENAMESCRIPT onto an existing name (RFC 5804 ALREADYEXISTS).
    #[error("A script by that name already exists.")]
    AlreadyExists,
    /// DELETESCRIPT of the active script (RFC 5804 ACTIVE).
    #[error("You may not delete the active script.")]
    Active,
    /// A script over `[sieve] max_script_size` (RFC 5804 QUOTA/MAXSIZE).
    #[error("Script is larger than the {0} octets allowed.")]
    QuotaMaxSize(usize),
    /// One script more than `[sieve] max_scripts` (RFC 5804 QUOTA/MAXSCRIPTS).
    #[error("No more than {0} scripts are allowed.")]
    QuotaMaxScripts(usize),
    /// The script does not compile: `NO "line N: message"`.
    #[error("{0}")]
    Compile(CompileError),
    /// The active-script path is something other than a symlink we may replace.
    #[error("The active script is managed outside ManageSieve; ask the administrator.")]
    ActiveNotLink,
    /// The user has no place for scripts (no home for `~/` in `[sieve] sieve`).
    #[error("Script storage is not available for this account.")]
    NoStorage,
    /// A file-system failure (logged with the details where it happened).
    #[error("Internal error occurred. Refer to server log for more information.")]
    Internal,
    /// AUTHENTICATE with a mechanism we do not offer.
    #[error("Unsupported authentication mechanism.")]
    UnknownMechanism,
    /// A malformed SASL exchange.
    #[error("Invalid SASL response.")]
    BadSasl,
    /// The client sent `"*"`.
    #[error("Authentication cancelled.")]
    AuthCancelled,
    /// Wrong user name or password.
    #[error("Authentication failed.")]
    AuthFailed,
    /// The password check could not run now (RFC 5804 TRYLATER).
    #[error("Temporary authentication failure, try again later.")]
    AuthTemp,
    /// Plaintext credentials without TLS (RFC 5804 ENCRYPT-NEEDED).
    #[error("Plaintext authentication is not allowed without TLS; use STARTTLS.")]
    EncryptNeeded,
    /// Too many sessions of this user from this address (RFC 5804 TRYLATER).
    #[error("Too many connections from your address for this user ({0}).")]
    UserIpLimit(usize),
    /// STARTTLS not possible here.
    #[error("{0}")]
    TlsUnavailable(&'static str),
    /// Too many failed logins: BYE.
    #[error("Too many authentication failures.")]
    TooManyFailures,
    /// Too many bad commands: BYE.
    #[error("Too many invalid commands.")]
    TooManyBadCommands,
    /// A literal too large to even skip: BYE.
    #[error("Literal too large.")]
    LiteralFatal,
    /// Inactivity: BYE.
    #[error("Disconnected for inactivity.")]
    Autologout,
    /// The daemon is stopping: BYE.
    #[error("Server shutting down.")]
    ShuttingDown,
    /// `mailcove kick`: BYE.
    #[error("Disconnected by administrator.")]
    Kicked,
    /// The connection broke; nothing is sent.
    #[error("connection lost")]
    Io,
}

impl From<std::io::Error> for SieveError {
    fn from(_: std::io::Error) -> Self {
        SieveError::Io
    }
}

impl SieveError {
    /// The response: status and RFC 5804 response code.
    pub fn answer(&self) -> (Status, Option<&'static str>) {
        use SieveError::*;
        match self {
            NonExistent => (Status::No, Some("NONEXISTENT")),
            AlreadyExists => (Status::No, Some("ALREADYEXISTS")),
            Active => (Status::No, Some("ACTIVE")),
            QuotaMaxSize(_) | LiteralTooLarge => (Status::No, Some("QUOTA/MAXSIZE")),
            QuotaMaxScripts(_) => (Status::No, Some("QUOTA/MAXSCRIPTS")),
            Internal | AuthTemp | UserIpLimit(_) => (Status::No, Some("TRYLATER")),
            EncryptNeeded => (Status::No, Some("ENCRYPT-NEEDED")),
            TooManyFailures | TooManyBadCommands | LiteralFatal | Autologout | ShuttingDown
            | Kicked | Io => (Status::Bye, None),
            _ => (Status::No, None),
        }
    }

    /// The connection ends after this answer.
    pub fn closes(&self) -> bool {
        self.answer().0 == Status::Bye
    }

    /// Counts toward [`crate::limits::MAX_BAD_COMMANDS`].
    pub fn counts_as_bad(&self) -> bool {
        matches!(
            self,
            SieveError::UnknownCommand
                | SieveError::BadArguments(_)
                | SieveError::Syntax(_)
                | SieveError::LineTooLong
                | SieveError::WrongState(_)
        )
    }

    /// Appends the response line (nothing for a broken connection).
    pub fn write(&self, out: &mut Vec<u8>) {
        if matches!(self, SieveError::Io) {
            return;
        }
        let (status, code) = self.answer();
        push_response(out, status, code, &self.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_string(&mut out, s);
        out
    }

    #[test]
    fn strings_are_quoted_when_they_can_be_else_literals() {
        assert_eq!(string(b"plain"), b"\"plain\"");
        assert_eq!(string(b"a \"q\" \\"), b"\"a \\\"q\\\" \\\\\"");
        assert_eq!(string(b"two\r\nlines"), b"{10}\r\ntwo\r\nlines");
        let long = vec![b'x'; 1025];
        assert!(string(&long).starts_with(b"{1025}\r\n"));
    }

    #[test]
    fn errors_map_to_rfc5804_response_codes() {
        let line = |e: SieveError| {
            let mut out = Vec::new();
            e.write(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            line(SieveError::NonExistent),
            "NO (NONEXISTENT) \"There is no script by that name.\"\r\n"
        );
        assert_eq!(
            line(SieveError::QuotaMaxScripts(5)),
            "NO (QUOTA/MAXSCRIPTS) \"No more than 5 scripts are allowed.\"\r\n"
        );
        assert_eq!(
            line(SieveError::Compile(CompileError {
                line: 3,
                column: 7,
                message: "unknown command \"foo\"".into()
            })),
            "NO \"line 3: unknown command \\\"foo\\\"\"\r\n"
        );
        assert_eq!(line(SieveError::Io), "");
        assert!(SieveError::TooManyFailures.closes());
        assert!(!SieveError::Active.closes());
    }
}
