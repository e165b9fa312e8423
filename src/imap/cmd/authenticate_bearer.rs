//! The end of AUTHENTICATE OAUTHBEARER / XOAUTH2 (RFC 7628 3.2): a valid token logs in like a
//! password; a refused one is answered with the JSON error challenge as a `+ ` continuation,
//! the client's dummy response (`AQ==`, %x01, for OAUTHBEARER; an empty line for XOAUTH2) is
//! read, and only then does the command fail with `NO [AUTHENTICATIONFAILED]`.

use super::Reply;
use crate::auth::oauth::message::error_challenge;
use crate::auth::sasl::{BearerCredentials, encode_challenge};
use crate::imap::capability;
use crate::imap::proto::encode::Code;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State, UserCtx};
use crate::limits;
use crate::server::login::{self, LoginError};

/// Validates `creds` and enters the authenticated state, or fails after the error challenge.
pub async fn finish_bearer(s: &mut Session, creds: BearerCredentials) -> Result<Reply, ImapError> {
    match login::login_bearer(&s.shared, &s.conn, &creds, "AUTHENTICATE").await {
        Ok(login) => {
            let storage_user = crate::setup::storage_user(&login.user);
            let store = s.shared.storage.user(&storage_user).await?;
            s.state = State::Authenticated(Box::new(UserCtx { login, store }));
            let caps = capability::after_login(&s.shared)
                .split(' ')
                .map(str::to_string)
                .collect();
            Ok(Reply::Ok(Some(Code::Capability(caps)), "Logged in".into()))
        }
        Err(LoginError::PlaintextRefused) => Err(ImapError::PrivacyRequired),
        Err(LoginError::TempFail) => Err(ImapError::AuthTemp),
        Err(LoginError::UserIpLimit(n)) => {
            // As finish_login: BYE rather than a NO that clients would take for a bad token.
            s.untagged(&format!(
                "BYE [UNAVAILABLE] Maximum number of connections from user+IP exceeded (limit {n})."
            ));
            s.conn.set_end(crate::server::sessions::EndReason::Closed);
            Ok(Reply::Close)
        }
        Err(LoginError::Invalid) => {
            let challenge = error_challenge(creds.mechanism, &s.shared.config().auth.oauth2);
            let line = format!("+ {}\r\n", encode_challenge(&challenge));
            s.conn.queue(line.as_bytes());
            // RFC 7628 3.2.3: the client answers with a dummy response; its content does not
            // matter (a `*` cancel ends the exchange just the same), the exchange fails.
            match s.read_line(limits::MAX_SASL_LINE).await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return Ok(Reply::Close),
            }
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                s.untagged("BYE Too many failed logins.");
                s.conn.set_end(crate::server::sessions::EndReason::Closed);
                return Ok(Reply::Close);
            }
            Err(ImapError::AuthFailed)
        }
    }
}
