//! AUTHENTICATE (RFC 3501 6.2.2, SASL-IR of RFC 4959) through the shared SASL codec and login
//! path.

use super::Reply;
use super::authenticate_bearer::finish_bearer;
use super::helpers::finish_login;
use crate::auth::sasl::{Mechanism, SaslError, SaslExchange, Step, encode_challenge};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::limits;
use crate::server::login::plaintext_allowed;

/// AUTHENTICATE mechanism [initial-response].
pub async fn authenticate(
    s: &mut Session,
    mechanism: &str,
    initial: Option<&[u8]>,
) -> Result<Reply, ImapError> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(ImapError::PrivacyRequired);
    }
    // OAUTHBEARER and XOAUTH2 exist only with `[auth.oauth2] enabled`.
    if Mechanism::from_name(mechanism).is_some_and(Mechanism::is_bearer)
        && !s.shared.config().auth.oauth2.enabled
    {
        return Err(ImapError::UnknownMechanism);
    }
    // The parser has already decoded the SASL-IR base64; the shared codec takes the wire form.
    let initial = initial.map(|b| {
        if b.is_empty() {
            "=".to_string()
        } else {
            encode_challenge(b)
        }
    });
    let (mut exchange, mut step) =
        SaslExchange::start(mechanism, initial.as_deref()).map_err(sasl_error)?;
    loop {
        match step {
            Step::Done(creds) => {
                let user = creds.authcid.clone();
                return finish_login(s, &user, &creds.password, "AUTHENTICATE").await;
            }
            Step::Bearer(creds) => return finish_bearer(s, creds).await,
            Step::Challenge(data) => {
                let line = format!("+ {}\r\n", encode_challenge(&data));
                s.conn.queue(line.as_bytes());
                let reply = match s.read_line(limits::MAX_SASL_LINE).await {
                    Ok(Some(Some(l))) => l,
                    Ok(Some(None)) => return Err(ImapError::BadSasl),
                    Ok(None) | Err(_) => return Ok(Reply::Close),
                };
                let reply = std::str::from_utf8(&reply).map_err(|_| ImapError::BadSasl)?;
                step = exchange.step(reply).map_err(sasl_error)?;
            }
        }
    }
}

fn sasl_error(e: SaslError) -> ImapError {
    match e {
        SaslError::UnknownMechanism => ImapError::UnknownMechanism,
        SaslError::Cancelled => ImapError::AuthCancelled,
        SaslError::AuthzidNotPermitted => ImapError::AuthFailed,
        _ => ImapError::BadSasl,
    }
}
