//! The contract of an external user database (Dovecot's passdb and userdb in one): SQL
//! ([`super`]`::sql`) and LDAP ([`super`]`::ldap`) implement [`UserDatabase`]; the users file
//! stays the default and is served by the authenticator's own snapshot.
//!
//! Every call is async and bounded by the database's own timeout (a named limit); a database
//! that is down or too slow answers [`DbError`], which the protocols map to a temporary failure
//! (`NO [UNAVAILABLE]`, `-ERR [SYS/TEMP]`, LMTP 451 4.3.0). `Ok(None)` means "no such user".

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use super::UserInfo;

/// The future every database call returns.
pub type DbFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DbError>> + Send + 'a>>;

/// Why a database could not answer. Never "wrong password": that is `Ok(None)` or a mismatch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// The server is down, refused us, or a query failed; retried with backoff.
    #[error("user database unavailable: {0}")]
    Unavailable(String),
    /// The call took longer than the configured timeout.
    #[error("user database timed out")]
    Timeout,
    /// The configured query or mapping cannot work (e.g. a missing column); logged once.
    #[error("user database misconfigured: {0}")]
    Config(String),
}

/// What a lookup is about: the name the client gave and where it connects from, for the
/// `%u %n %d %r %l %s` variables (`%{user}`, `%{remote_ip}`, ...), bound as parameters.
#[derive(Debug, Clone, Copy)]
pub struct LookupRequest<'a> {
    /// The user name as given (`user` or `user@domain`).
    pub user: &'a str,
    /// The client's address (`%r`), if there is a client.
    pub remote: Option<IpAddr>,
    /// The local address the client connected to (`%l`).
    pub local: Option<IpAddr>,
    /// `"imap"`, `"pop3"`, `"lmtp"`, `"managesieve"`, `"deliver"` or `"admin"` (`%s`).
    pub service: &'a str,
}

/// What a password lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassRecord {
    /// The user as the database names it, with passdb extra fields (`nologin`, `allow_nets`)
    /// and any userdb fields the same query returned (`home`, `mail`, `quota_rule`, ...).
    pub info: UserInfo,
    /// The stored password in users-file syntax (`{SCHEME}hash`, or bare with the
    /// configured `default_pass_scheme` already applied as a `{SCHEME}` prefix); `None` when
    /// the database itself verified the password (LDAP auth bind).
    pub password: Option<String>,
}

/// An external passdb + userdb.
pub trait UserDatabase: Send + Sync + 'static {
    /// A short name for logs and metrics: `"sql"`, `"ldap"`.
    fn kind(&self) -> &'static str;

    /// passdb: the stored password and passdb fields of `req.user`.
    fn password_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<PassRecord>>;

    /// For a database that checks passwords itself (LDAP `auth_bind = yes`): `Some` future
    /// answering `Ok(Some(record))` when `password` is right, `Ok(None)` when the user is
    /// unknown or the password wrong. `None` (the default) means: use [`password_lookup`] and
    /// verify the stored hash here.
    ///
    /// [`password_lookup`]: UserDatabase::password_lookup
    fn verify_password<'a>(
        &'a self,
        req: LookupRequest<'a>,
        password: &'a [u8],
    ) -> Option<DbFuture<'a, Option<PassRecord>>> {
        let _ = (req, password);
        None
    }

    /// userdb: the user's home, mail location, quota rule and other fields, for LMTP,
    /// `deliver` and the admin commands (no password involved).
    fn user_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<UserInfo>>;

    /// Every user name (`iterate_query`, or the LDAP iterate filter), for `-A`.
    fn iterate(&self) -> DbFuture<'_, Vec<String>>;
}
