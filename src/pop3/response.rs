//! Every POP3 failure as one enum, mapped to its `-ERR` line in one place.
//!
//! Response codes follow RFC 2449 section 8 (`[IN-USE]`, `[LOGIN-DELAY]`) and RFC 3206
//! (`[AUTH]`, `[SYS/TEMP]`, `[SYS/PERM]`), which CAPA announces as RESP-CODES and AUTH-RESP-CODE.
//! The text after `-ERR ` is the `Display` of the variant, so the wording lives next to the variant.

use thiserror::Error;

use crate::storage::StorageError;

/// A command that failed, or a reason the session ends.
#[derive(Debug, Error)]
pub enum Pop3Error {
    /// Unknown keyword (or an empty line).
    #[error("Unknown command.")]
    UnknownCommand,
    /// Known keyword, wrong arguments; the text says how.
    #[error("Invalid arguments: {0}.")]
    BadArguments(&'static str),
    /// Command not valid in this state.
    #[error("Command not valid in this state: {0}.")]
    WrongState(&'static str),
    /// A line longer than RFC 2449 allows.
    #[error("Line too long (RFC 2449: at most 255 octets).")]
    LineTooLong,
    /// Too many client mistakes on this connection; it is closed.
    #[error("Too many invalid commands, disconnecting.")]
    TooManyBadCommands,
    /// APOP is not offered: it needs plaintext-equivalent passwords stored on the server.
    #[error("APOP is not supported; use USER/PASS or AUTH over TLS.")]
    ApopNotSupported,
    /// STLS when TLS is not offered here or already active.
    #[error("STLS not available: {0}.")]
    TlsUnavailable(&'static str),
    /// Plaintext credentials refused on an insecure connection.
    #[error(
        "[AUTH] Plaintext authentication disallowed on non-secure connections; issue STLS first."
    )]
    PlaintextRefused,
    /// Plaintext credentials refused on an insecure connection where STLS is not offered.
    #[error(
        "[AUTH] Plaintext authentication disallowed on non-secure connections; use a TLS port."
    )]
    PlaintextRefusedNoStls,
    /// PASS without USER.
    #[error("No user name given; send USER first.")]
    PassWithoutUser,
    /// Wrong user name or password.
    #[error("[AUTH] Authentication failed.")]
    AuthFailed,
    /// Too many failed logins on this connection; it is closed.
    #[error("[AUTH] Too many failed logins, disconnecting.")]
    TooManyFailures,
    /// AUTH with a mechanism we do not offer.
    #[error("Unsupported authentication mechanism.")]
    UnknownMechanism,
    /// The client cancelled an AUTH exchange with `*`.
    #[error("Authentication cancelled.")]
    AuthCancelled,
    /// The client's SASL data could not be decoded (RFC 5034: reject, never ignore).
    #[error("Invalid base64 or malformed SASL data.")]
    BadSasl,
    /// Password check unavailable for now.
    #[error("[SYS/TEMP] Temporary authentication failure, try again later.")]
    AuthTemp,
    /// Another POP3 session holds the maildrop (RFC 2449 8.1.2).
    #[error("[IN-USE] Mailbox is locked by another POP3 session.")]
    InUse,
    /// The user logged in less than the advertised LOGIN-DELAY ago (RFC 2449 8.1.1).
    #[error("[LOGIN-DELAY] Logged in too recently; wait {0} more seconds.")]
    LoginDelay(u64),
    /// Too many sessions of this user from this address; the connection is closed.
    #[error("[IN-USE] Maximum number of connections from user+IP exceeded ({0}).")]
    UserIpLimit(usize),
    /// No such message number in the snapshot.
    #[error("There's no message {0}.")]
    NoSuchMessage(u32),
    /// The message was marked deleted in this session.
    #[error("Message {0} is deleted.")]
    MessageDeleted(u32),
    /// The message was expunged by another (IMAP) session after the snapshot was taken.
    #[error("Message {0} was removed by another session.")]
    Expunged(u32),
    /// The storage failed.
    #[error("{}", storage_text(.0))]
    Storage(StorageError),
    /// No command within the autologout time (RFC 1939 section 3); the connection is closed.
    #[error("Disconnected for inactivity.")]
    Autologout,
    /// The daemon is stopping; the connection is closed.
    #[error("[SYS/TEMP] Server shutting down.")]
    ShuttingDown,
    /// The connection broke; nothing more can be sent.
    #[error("Connection error.")]
    Io,
    /// `mailcove kick` ended the session; the connection is closed and nothing is committed.
    /// SYS/TEMP (RFC 3206), as Dovecot answers when it stops a session: the client may log in
    /// again, as after a shutdown.
    #[error("[SYS/TEMP] Disconnected by administrator.")]
    Kicked,
}

fn storage_text(e: &StorageError) -> &'static str {
    match e {
        StorageError::InUse => "[IN-USE] Mailbox is in use, try again later.",
        StorageError::Temporary(_) | StorageError::OverQuota | StorageError::NoSpace => {
            "[SYS/TEMP] Internal error occurred, try again later; details are in the server log."
        }
        // An administrator's chown fixes it: temporary for the client, as a full disk.
        StorageError::Permission(_) => {
            "[SYS/TEMP] Internal error occurred, try again later; details are in the server log."
        }
        _ => "[SYS/PERM] Internal error occurred; details are in the server log.",
    }
}

impl Pop3Error {
    /// The `-ERR` line, CRLF included.
    pub fn line(&self) -> String {
        format!("-ERR {self}\r\n")
    }

    /// Errors that count towards the bad-command limit (client mistakes, not our refusals).
    pub fn counts_as_bad(&self) -> bool {
        matches!(
            self,
            Pop3Error::UnknownCommand
                | Pop3Error::BadArguments(_)
                | Pop3Error::WrongState(_)
                | Pop3Error::LineTooLong
        )
    }

    /// Errors after which the connection is closed.
    pub fn closes(&self) -> bool {
        matches!(
            self,
            Pop3Error::TooManyFailures
                | Pop3Error::TooManyBadCommands
                | Pop3Error::Io
                | Pop3Error::UserIpLimit(_)
                | Pop3Error::Autologout
                | Pop3Error::ShuttingDown
                | Pop3Error::Kicked
        )
    }
}

impl From<std::io::Error> for Pop3Error {
    fn from(_: std::io::Error) -> Self {
        Pop3Error::Io
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_one_crlf_terminated_err_line_within_512_octets() {
        let all = [
            Pop3Error::UnknownCommand,
            Pop3Error::BadArguments("x"),
            Pop3Error::WrongState("x"),
            Pop3Error::LineTooLong,
            Pop3Error::TooManyBadCommands,
            Pop3Error::ApopNotSupported,
            Pop3Error::TlsUnavailable("x"),
            Pop3Error::PlaintextRefused,
            Pop3Error::PlaintextRefusedNoStls,
            Pop3Error::PassWithoutUser,
            Pop3Error::AuthFailed,
            Pop3Error::TooManyFailures,
            Pop3Error::UnknownMechanism,
            Pop3Error::AuthCancelled,
            Pop3Error::BadSasl,
            Pop3Error::AuthTemp,
            Pop3Error::InUse,
            Pop3Error::LoginDelay(u64::MAX),
            Pop3Error::UserIpLimit(usize::MAX),
            Pop3Error::NoSuchMessage(u32::MAX),
            Pop3Error::MessageDeleted(u32::MAX),
            Pop3Error::Expunged(u32::MAX),
            Pop3Error::Storage(StorageError::Corrupt("x".into())),
            Pop3Error::Autologout,
            Pop3Error::ShuttingDown,
            Pop3Error::Io,
        ];
        for e in all {
            let l = e.line();
            assert!(l.starts_with("-ERR "), "{l}");
            assert!(l.ends_with("\r\n") && l.matches('\n').count() == 1, "{l}");
            assert!(l.len() <= 512, "{l}");
        }
    }

    #[test]
    fn storage_failures_carry_the_rfc_3206_codes_and_no_details() {
        let temp = Pop3Error::Storage(StorageError::Temporary("secret path".into())).line();
        assert!(temp.starts_with("-ERR [SYS/TEMP] "), "{temp}");
        assert!(!temp.contains("secret"), "{temp}");
        let perm = Pop3Error::Storage(StorageError::Corrupt("x".into())).line();
        assert!(perm.starts_with("-ERR [SYS/PERM] "), "{perm}");
        let busy = Pop3Error::Storage(StorageError::InUse).line();
        assert!(busy.starts_with("-ERR [IN-USE] "), "{busy}");
        assert!(
            Pop3Error::LoginDelay(5)
                .line()
                .starts_with("-ERR [LOGIN-DELAY] ")
        );
    }
}
