//! Not-authenticated commands: STARTTLS (RFC 2595), LOGIN, AUTHENTICATE (RFC 3501 6.2.2 with
//! SASL-IR, RFC 4959) through the shared SASL codec and login path.

use tracing::debug;

use super::Reply;
use crate::auth::sasl::{SaslError, SaslExchange, Step, encode_challenge};
use crate::imap::capability;
use crate::imap::proto::encode::Code;
use crate::imap::proto::types::Tag;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State, UserCtx};
use crate::limits;
use crate::server::login::{self, LoginError, plaintext_allowed};

/// STARTTLS: answer OK, then handshake. Input pipelined behind the command is discarded, never
/// executed, and the framing state is reset with it.
pub async fn starttls(s: &mut Session, tag: &Tag) -> Result<Reply, ImapError> {
    if s.conn.is_tls() {
        return Err(ImapError::TlsUnavailable("TLS is already active"));
    }
    if !s.starttls_possible() {
        return Err(ImapError::TlsUnavailable("not offered on this port"));
    }
    let Some(acceptor) = s.shared.tls.current() else {
        return Err(ImapError::TlsUnavailable("no certificate configured"));
    };
    s.ok(tag, None, "Begin TLS negotiation now.");
    let res = s.conn.start_tls(&acceptor).await;
    s.reset_receiver();
    match res {
        Ok(()) => Ok(Reply::Written),
        Err(e) => {
            debug!(error = %e, "STARTTLS handshake failed");
            Ok(Reply::Close)
        }
    }
}

/// LOGIN user password.
pub async fn login(s: &mut Session, user: &[u8], password: &[u8]) -> Result<Reply, ImapError> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(ImapError::PrivacyRequired);
    }
    let user = String::from_utf8_lossy(user).into_owned();
    finish(s, &user, password, "LOGIN").await
}

/// AUTHENTICATE mechanism [initial-response].
pub async fn authenticate(
    s: &mut Session,
    mechanism: &str,
    initial: Option<&[u8]>,
) -> Result<Reply, ImapError> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(ImapError::PrivacyRequired);
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
                return finish(s, &user, &creds.password, "AUTHENTICATE").await;
            }
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

async fn finish(
    s: &mut Session,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
) -> Result<Reply, ImapError> {
    match login::login(&s.shared, &s.conn, user, password, mechanism).await {
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
            // As Dovecot: the session is ended with BYE rather than a NO that clients would
            // take for a wrong password.
            s.untagged(&format!(
                "BYE [UNAVAILABLE] Maximum number of connections from user+IP exceeded (limit {n})."
            ));
            Ok(Reply::Close)
        }
        Err(LoginError::Invalid) => {
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                s.untagged("BYE Too many failed logins.");
                return Ok(Reply::Close);
            }
            Err(ImapError::AuthFailed)
        }
    }
}
