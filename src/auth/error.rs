//! Errors of the users file and its administration ([`AuthError`]), and why a login did not
//! succeed ([`AuthFailure`]), which the protocols map to their responses.

use std::path::PathBuf;

/// Errors of loading, reloading and editing the users file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than `limits::MAX_USERS_FILE_SIZE`.
    #[error("{}: larger than limits::MAX_USERS_FILE_SIZE", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line of the file is invalid; nothing of the file was used.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The options are unusable.
    #[error("invalid auth options: {0}")]
    InvalidOptions(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A user name given to an admin function is invalid.
    #[error("invalid user name: {0}")]
    InvalidUsername(&'static str),
    /// An extra field given to an admin function is invalid.
    #[error("invalid extra field {0:?}: must be key or key=value without whitespace")]
    InvalidExtraField(String),
    /// A quota rule given to an admin function cannot be applied; the text says why.
    #[error("{0}")]
    InvalidQuotaRule(String),
    /// `user_add` for a user already in the file.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// `user_passwd` / `user_del` for a user not in the file.
    #[error("no such user {0:?}")]
    UnknownUser(String),
}

/// Why a login did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Wrong user or password (deliberately indistinguishable); answer
    /// `NO [AUTHENTICATIONFAILED]` / `-ERR [AUTH]`.
    #[error("invalid credentials")]
    Invalid,
    /// The server could not check now; answer `NO [UNAVAILABLE]` /
    /// `-ERR [SYS/TEMP]` so the client retries later.
    #[error("authentication temporarily unavailable: {0}")]
    TempFail(TempFailReason),
}

/// Why a login failed temporarily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TempFailReason {
    /// All hashing threads busy and the queue full.
    #[error("too many logins in progress")]
    Overloaded,
    /// An internal failure (a hashing job failed, runtime shutting down).
    #[error("internal error")]
    Internal,
    /// The SQL or LDAP user database is down, too slow or misconfigured.
    #[error("user database unavailable")]
    Unavailable,
}
