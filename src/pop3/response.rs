//! Every POP3 failure as one enum, mapped to its `-ERR` line (with RFC 2449/3206 response codes) in
//! one place.

use crate::storage::StorageError;

/// A command that failed.
#[derive(Debug)]
pub enum Pop3Error {
    /// Unknown keyword.
    UnknownCommand,
    /// Known keyword, wrong arguments.
    BadArguments(&'static str),
    /// Command not valid in this state.
    WrongState(&'static str),
    /// APOP is not offered: it needs plaintext passwords stored on the server.
    ApopNotSupported,
    /// STLS when TLS is not offered here or already active.
    TlsUnavailable(&'static str),
    /// Plaintext credentials refused on an insecure connection.
    PlaintextRefused,
    /// PASS without USER.
    PassWithoutUser,
    /// Wrong user name or password.
    AuthFailed,
    /// Too many failed logins on this connection.
    TooManyFailures,
    /// AUTH with a mechanism we do not offer.
    UnknownMechanism,
    /// The client cancelled an AUTH exchange with `*`.
    AuthCancelled,
    /// The client's SASL data could not be decoded.
    BadSasl,
    /// Password check unavailable for now.
    AuthTemp,
    /// Another POP3 session holds the maildrop.
    InUse,
    /// Too many sessions of this user from this address.
    UserIpLimit(usize),
    /// No such message number in the snapshot.
    NoSuchMessage(u32),
    /// The message was marked deleted in this session.
    MessageDeleted(u32),
    /// The storage failed; `temporary` picks SYS/TEMP over SYS/PERM.
    Storage(StorageError),
    /// The connection broke while sending.
    Io,
}

impl Pop3Error {
    /// The `-ERR` line, CRLF included.
    pub fn line(&self) -> String {
        let text = match self {
            Pop3Error::UnknownCommand => "Unknown command.".to_string(),
            Pop3Error::BadArguments(why) => format!("Invalid arguments: {why}."),
            Pop3Error::WrongState(why) => format!("Command not valid in this state: {why}."),
            Pop3Error::ApopNotSupported => "APOP is not supported; use USER/PASS or AUTH over TLS.".into(),
            Pop3Error::TlsUnavailable(why) => format!("STLS not available: {why}."),
            Pop3Error::PlaintextRefused => {
                "[AUTH] Plaintext authentication disallowed on non-secure connections; issue STLS first.".into()
            }
            Pop3Error::PassWithoutUser => "No user name given; send USER first.".into(),
            Pop3Error::AuthFailed => "[AUTH] Authentication failed.".into(),
            Pop3Error::TooManyFailures => "[AUTH] Too many failed logins, disconnecting.".into(),
            Pop3Error::UnknownMechanism => "Unsupported authentication mechanism.".into(),
            Pop3Error::AuthCancelled => "Authentication cancelled.".into(),
            Pop3Error::BadSasl => "Invalid base64 or malformed SASL data.".into(),
            Pop3Error::AuthTemp => "[SYS/TEMP] Temporary authentication failure, try again later.".into(),
            Pop3Error::InUse => "[IN-USE] Mailbox is locked by another POP3 session.".into(),
            Pop3Error::UserIpLimit(n) => {
                format!("[IN-USE] Maximum number of connections from user+IP exceeded ({n}).")
            }
            Pop3Error::NoSuchMessage(n) => format!("There's no message {n}."),
            Pop3Error::MessageDeleted(n) => format!("Message {n} is deleted."),
            Pop3Error::Storage(StorageError::InUse) => "[IN-USE] Mailbox is in use, try again later.".into(),
            Pop3Error::Storage(StorageError::Expunged) => "Message was removed by another session.".into(),
            Pop3Error::Storage(StorageError::Temporary(_) | StorageError::OverQuota) => {
                "[SYS/TEMP] Internal error occurred, try again later; details are in the server log.".into()
            }
            Pop3Error::Storage(_) => "[SYS/PERM] Internal error occurred; details are in the server log.".into(),
            Pop3Error::Io => "Connection error.".into(),
        };
        format!("-ERR {text}\r\n")
    }

    /// Errors that count towards the bad-command limit (client mistakes, not our refusals).
    pub fn counts_as_bad(&self) -> bool {
        matches!(
            self,
            Pop3Error::UnknownCommand | Pop3Error::BadArguments(_) | Pop3Error::WrongState(_)
        )
    }

    /// Errors after which the connection is closed.
    pub fn closes(&self) -> bool {
        matches!(
            self,
            Pop3Error::TooManyFailures | Pop3Error::Io | Pop3Error::UserIpLimit(_)
        )
    }
}

impl From<std::io::Error> for Pop3Error {
    fn from(_: std::io::Error) -> Self {
        Pop3Error::Io
    }
}
