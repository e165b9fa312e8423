//! AUTHENTICATE (RFC 3501 6.2.2, SASL-IR of RFC 4959) through the shared SASL codec and login
//! path.

use std::sync::Arc;

use super::Reply;
use super::authenticate_bearer::finish_bearer;
use super::helpers::{complete_login, finish_login};
use crate::auth::sasl::{Mechanism, SaslError, SaslExchange, Step, encode_challenge};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::limits;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::plaintext_allowed;
use crate::server::scram::{SaslChannel, ScramFailure, scram_login};

/// AUTHENTICATE mechanism [initial-response].
pub async fn authenticate(
    s: &mut Session,
    mechanism: &str,
    initial: Option<&[u8]>,
) -> Result<Reply, ImapError> {
    // SCRAM does not expose the password: allowed without TLS (server::scram explains).
    if let Some(m) = Mechanism::from_name(mechanism).filter(|m| m.scram().is_some()) {
        return authenticate_scram(s, m, initial).await;
    }
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

/// The IMAP side of a SASL exchange run by `server::scram`.
struct ImapSasl<'a>(&'a mut Session);

impl SaslChannel for ImapSasl<'_> {
    /// What AUTHENTICATE answers when the connection fails mid-exchange.
    type End = Result<Reply, ImapError>;

    fn shared(&self) -> &Arc<Shared> {
        &self.0.shared
    }

    fn conn(&self) -> &Conn {
        &self.0.conn
    }

    async fn challenge(&mut self, data: &[u8]) -> Result<String, Self::End> {
        let line = format!("+ {}\r\n", encode_challenge(data));
        self.0.conn.queue(line.as_bytes());
        let reply = match self.0.read_line(limits::MAX_SASL_LINE).await {
            Ok(Some(Some(l))) => l,
            Ok(Some(None)) => return Err(Err(ImapError::BadSasl)),
            Ok(None) | Err(_) => return Err(Ok(Reply::Close)),
        };
        String::from_utf8(reply).map_err(|_| Err(ImapError::BadSasl))
    }
}

async fn authenticate_scram(
    s: &mut Session,
    mechanism: Mechanism,
    initial: Option<&[u8]>,
) -> Result<Reply, ImapError> {
    let initial = initial.map(|b| {
        if b.is_empty() {
            "=".to_string()
        } else {
            encode_challenge(b)
        }
    });
    let result = scram_login(&mut ImapSasl(s), mechanism, initial.as_deref()).await;
    match result {
        Ok(logged_in) => complete_login(s, Ok(logged_in)).await,
        Err(ScramFailure::End(end)) => end,
        Err(ScramFailure::Sasl(e)) => Err(sasl_error(e)),
        Err(ScramFailure::Malformed(_)) => Err(ImapError::BadSasl),
        Err(ScramFailure::Login(e)) => complete_login(s, Err(e)).await,
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
