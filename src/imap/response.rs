//! Every IMAP command failure as one enum, mapped to its tagged `NO`/`BAD` with an RFC 5530 /
//! RFC 3501 response code in one place. Internal errors reach the client as one fixed sentence;
//! their details go to the log.

use crate::storage::StorageError;

/// Why a command failed.
#[derive(Debug)]
pub enum ImapError {
    /// Syntax error or unknown command (`BAD`); the text is fixed, never client bytes.
    Parse(&'static str),
    /// Command not valid in the current state (`BAD`).
    WrongState(&'static str),
    /// STARTTLS not possible here.
    TlsUnavailable(&'static str),
    /// Plaintext login on a connection that is neither TLS nor loopback.
    PrivacyRequired,
    /// Wrong user name or password (deliberately indistinguishable).
    AuthFailed,
    /// The client cancelled AUTHENTICATE with `*` (RFC 3501 6.2.2: tagged BAD).
    AuthCancelled,
    /// Malformed SASL data.
    BadSasl,
    /// SASL mechanism not offered.
    UnknownMechanism,
    /// Password check unavailable for now.
    AuthTemp,
    /// The command is not implemented by this server.
    NotSupported(&'static str),
    /// A storage failure.
    Storage(StorageError),
}

/// Tagged status of a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `NO`: the command was valid but failed.
    No,
    /// `BAD`: the command was not valid.
    Bad,
}

impl ImapError {
    /// Status, response code and text of the tagged answer.
    pub fn answer(&self) -> (Status, Option<&'static str>, String) {
        use ImapError as E;
        match self {
            E::Parse(m) => (Status::Bad, None, (*m).to_string()),
            E::WrongState(m) => (
                Status::Bad,
                None,
                format!("Command not valid in this state: {m}."),
            ),
            E::TlsUnavailable(m) => (Status::Bad, None, format!("STARTTLS not available: {m}.")),
            E::PrivacyRequired => (
                Status::No,
                Some("PRIVACYREQUIRED"),
                "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.".into(),
            ),
            E::AuthFailed => (
                Status::No,
                Some("AUTHENTICATIONFAILED"),
                "Authentication failed.".into(),
            ),
            E::AuthCancelled => (Status::Bad, None, "Authentication cancelled.".into()),
            E::BadSasl => (
                Status::Bad,
                None,
                "Invalid base64 or malformed SASL response.".into(),
            ),
            E::UnknownMechanism => (
                Status::No,
                None,
                "Unsupported authentication mechanism.".into(),
            ),
            E::AuthTemp => (
                Status::No,
                Some("UNAVAILABLE"),
                "Temporary authentication failure, try again later.".into(),
            ),
            E::NotSupported(what) => (Status::Bad, None, format!("{what} is not supported.")),
            E::Storage(e) => storage_answer(e),
        }
    }

    /// Client mistakes count towards the bad-command limit.
    pub fn counts_as_bad(&self) -> bool {
        matches!(self, ImapError::Parse(_) | ImapError::WrongState(_))
    }
}

fn storage_answer(e: &StorageError) -> (Status, Option<&'static str>, String) {
    if matches!(e, StorageError::Temporary(_)) {
        (
            Status::No,
            Some("UNAVAILABLE"),
            "Internal error occurred, try again later; details are in the server log.".into(),
        )
    } else {
        (
            Status::No,
            Some("SERVERBUG"),
            "Internal error occurred; details are in the server log.".into(),
        )
    }
}

/// Writes `tag STATUS [CODE] text\r\n`.
pub fn write_status(out: &mut Vec<u8>, tag: &str, status: &str, code: Option<&str>, text: &str) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    if let Some(code) = code {
        out.push(b'[');
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"] ");
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}
