//! The end of AUTHENTICATE OAUTHBEARER / XOAUTH2 (RFC 7628 3.2): a valid token logs in like a
//! password; a refused one is answered with the JSON error challenge as a `+ ` continuation,
//! the client's dummy response (`AQ==`, %x01, for OAUTHBEARER; an empty line for XOAUTH2) is
//! read, and only then does the command fail with `NO [AUTHENTICATIONFAILED]`.

use super::Reply;
use super::helpers::complete_login;
use crate::auth::oauth::message::error_challenge;
use crate::auth::sasl::{BearerCredentials, encode_challenge};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::limits;
use crate::server::login::{self, LoginError};

/// Validates `creds` and enters the authenticated state, or fails after the error challenge.
pub async fn finish_bearer(s: &mut Session, creds: BearerCredentials) -> Result<Reply, ImapError> {
    let result = login::login_bearer(&s.shared, &s.conn, &creds, "AUTHENTICATE").await;
    if matches!(result, Err(LoginError::Invalid)) {
        let challenge = error_challenge(creds.mechanism, &s.shared.config().auth.oauth2);
        let line = format!("+ {}\r\n", encode_challenge(&challenge));
        s.conn.queue(line.as_bytes());
        // RFC 7628 3.2.3: the client answers with a dummy response; its content does not
        // matter (a `*` cancel ends the exchange just the same), the exchange fails.
        match s.read_line(limits::MAX_SASL_LINE).await {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return Ok(Reply::Close),
        }
    }
    complete_login(s, result).await
}
