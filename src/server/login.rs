//! The one login path of IMAP and POP3: plaintext policy, password check (with the auth module's
//! pool and penalty), the per user+IP connection cap, and the one log line per attempt.

use std::sync::Arc;

use tracing::{Span, info, warn};

use super::Shared;
use super::conn::Conn;
use super::tracker::LoginGuard;
use crate::auth::sasl::BearerCredentials;
use crate::auth::{AuthFailure, UserInfo};

/// A logged-in user and the slot its session holds.
pub struct LoggedIn {
    /// Who logged in.
    pub user: UserInfo,
    /// Released when the session ends.
    pub _slot: LoginGuard,
}

/// Why a login failed. Unknown user and wrong password are the same variant on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user name or password.
    Invalid,
    /// The password check could not run now (overload, unreadable users file).
    TempFail,
    /// Plaintext credentials on a connection that is neither TLS nor loopback.
    PlaintextRefused,
    /// Too many sessions of this user from this address.
    UserIpLimit(usize),
}

/// True when plaintext credentials may be used on `conn` under the current configuration.
pub fn plaintext_allowed(shared: &Shared, conn: &Conn) -> bool {
    conn.is_secure() || shared.config().auth.allow_plaintext_without_tls
}

/// Checks `user`/`password` for a session on `conn`. `mechanism` names the command for the log.
pub async fn login(
    shared: &Arc<Shared>,
    conn: &Conn,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
) -> Result<LoggedIn, LoginError> {
    login_for(shared, conn, user, password, mechanism, "imap").await
}

/// [`login`] for `service` (`"imap"`, `"pop3"`): an SQL or LDAP database's queries may use it
/// (`%s`), and the local address (`%l`).
pub async fn login_for(
    shared: &Arc<Shared>,
    conn: &Conn,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
    service: &'static str,
) -> Result<LoggedIn, LoginError> {
    let ip = conn.info.peer.ip();
    if !plaintext_allowed(shared, conn) {
        info!(user = %printable(user), mechanism, reason = "plaintext auth refused without TLS", "login failed");
        crate::metrics::login(mechanism, crate::metrics::login_result::REFUSED);
        return Err(LoginError::PlaintextRefused);
    }
    let ctx = crate::auth::LoginContext {
        remote: ip,
        local: Some(conn.info.local.ip()),
        service,
    };
    let result = shared.auth.authenticate_with(user, password, ctx).await;
    complete(shared, conn, user, mechanism, result)
}

/// The end of every login once the credentials were checked (by password, or by a SASL
/// mechanism such as SCRAM): the user+IP cap, the session's user, the log line and the metric.
pub fn complete(
    shared: &Arc<Shared>,
    conn: &Conn,
    user: &str,
    mechanism: &'static str,
    result: Result<UserInfo, AuthFailure>,
) -> Result<LoggedIn, LoginError> {
    let ip = conn.info.peer.ip();
    match result {
        Ok(info) => {
            let max = shared.config().limits.max_userip_connections;
            let Some(slot) = shared.tracker.login(&info.name, ip, max) else {
                info!(user = %info.name, mechanism, reason = "too many connections for user+IP", "login refused");
                crate::metrics::login(mechanism, crate::metrics::login_result::REFUSED);
                return Err(LoginError::UserIpLimit(max));
            };
            Span::current().record("user", info.name.as_str());
            if let Some(live) = &conn.live {
                live.set_user(&info.name);
            }
            info!(user = %info.name, mechanism, tls = conn.is_tls(), "login");
            crate::metrics::login(mechanism, crate::metrics::login_result::OK);
            Ok(LoggedIn {
                user: info,
                _slot: slot,
            })
        }
        Err(AuthFailure::Invalid) => {
            // The auth module has logged the failure with its reason and penalty.
            tracing::debug!(user = %printable(user), mechanism, "login failed");
            crate::metrics::login(mechanism, crate::metrics::login_result::FAILED);
            Err(LoginError::Invalid)
        }
        Err(e) => {
            warn!(user = %printable(user), mechanism, reason = %e, "login failed temporarily");
            crate::metrics::login(mechanism, crate::metrics::login_result::TEMPFAIL);
            Err(LoginError::TempFail)
        }
    }
}

/// Logs in with a bearer token (OAUTHBEARER, XOAUTH2): the same plaintext rule (a token is a
/// credential, as Dovecot treats it), penalty, user+IP cap, log line and metrics as [`login`];
/// the token is validated by `Authenticator::authenticate_bearer`.
pub async fn login_bearer(
    shared: &Arc<Shared>,
    conn: &Conn,
    creds: &BearerCredentials,
    mechanism: &'static str,
) -> Result<LoggedIn, LoginError> {
    let ip = conn.info.peer.ip();
    let claimed = creds.user.as_deref();
    let shown = printable(claimed.unwrap_or(""));
    let mech = creds.mechanism.name();
    if !plaintext_allowed(shared, conn) {
        info!(user = %shown, mechanism, sasl = mech, reason = "plaintext auth refused without TLS", "login failed");
        crate::metrics::login(mechanism, crate::metrics::login_result::REFUSED);
        return Err(LoginError::PlaintextRefused);
    }
    let validator = shared.oauth.validator(&shared.config().auth.oauth2);
    match shared
        .auth
        .authenticate_bearer(validator, claimed, &creds.token, ip)
        .await
    {
        Ok(info) => {
            let max = shared.config().limits.max_userip_connections;
            let Some(slot) = shared.tracker.login(&info.name, ip, max) else {
                info!(user = %info.name, mechanism, sasl = mech, reason = "too many connections for user+IP", "login refused");
                crate::metrics::login(mechanism, crate::metrics::login_result::REFUSED);
                return Err(LoginError::UserIpLimit(max));
            };
            Span::current().record("user", info.name.as_str());
            if let Some(live) = &conn.live {
                live.set_user(&info.name);
            }
            info!(user = %info.name, mechanism, sasl = mech, tls = conn.is_tls(), "login");
            crate::metrics::login(mechanism, crate::metrics::login_result::OK);
            Ok(LoggedIn {
                user: info,
                _slot: slot,
            })
        }
        Err(AuthFailure::Invalid) => {
            tracing::debug!(user = %shown, mechanism, sasl = mech, "login failed");
            crate::metrics::login(mechanism, crate::metrics::login_result::FAILED);
            Err(LoginError::Invalid)
        }
        Err(e) => {
            warn!(user = %shown, mechanism, sasl = mech, reason = %e, "login failed temporarily");
            crate::metrics::login(mechanism, crate::metrics::login_result::TEMPFAIL);
            Err(LoginError::TempFail)
        }
    }
}

/// A user-supplied name made safe for a log line: control characters escaped, length capped.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(64)
        .flat_map(|c| c.escape_default())
        .collect()
}
