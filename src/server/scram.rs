//! The SCRAM exchange of IMAP AUTHENTICATE and POP3 AUTH (RFC 5802, RFC 7677, -PLUS with RFC
//! 9266's `tls-exporter`), written once: the protocol gives a [`SaslChannel`] (send a challenge,
//! read the answer) and gets a logged-in user or a typed failure to map to its responses.
//!
//! # Where SCRAM is offered
//!
//! SCRAM is off unless `[auth] scram_mechanisms` lists it, as Dovecot's default
//! `auth_mechanisms = plain`: clients that prefer SCRAM would pick it for every user, and fail
//! for users whose stored hash SCRAM cannot use (Argon2id, SHA-crypt).
//!
//! SCRAM never sends the password, so it is offered and accepted on connections where plaintext
//! logins are refused (no TLS, not loopback), as Dovecot does: Dovecot hides and refuses only
//! mechanisms flagged `MECH_SEC_PLAINTEXT` (PLAIN, LOGIN) under `disable_plaintext_auth`. The
//! -PLUS variants are offered only where the connection has a `tls-exporter` binding (TLS 1.3,
//! see [`Conn::tls_exporter`]); there a client's `y` flag means someone removed -PLUS from the
//! list it saw, and the exchange fails (RFC 5802 section 6).
//!
//! # Order of events
//!
//! client-first → keys looked up on the hashing pool in the address's turn (fake keys for a user
//! without usable ones) → server-first → client-final checked → on failure the penalty and the
//! failure log line, as a wrong password → on success the server-final `v=` is sent as a last
//! challenge (neither IMAP4rev1 nor POP3 can carry data with the OK, RFC 3501 6.2.2, RFC 5034
//! section 4), the client answers with an empty line, then the login completes (user+IP cap,
//! "login" log line, metric) through [`login::complete`].

use std::future::Future;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::Shared;
use super::conn::Conn;
use super::login::{self, LoggedIn, LoginError};
use crate::auth::sasl::{Mechanism, SaslError, decode_response};
use crate::auth::scram::{ScramError, ScramServer};

/// One protocol's way to run a SASL exchange.
pub trait SaslChannel {
    /// How the protocol ends the exchange when the connection fails (closed, timed out, line
    /// too long, shutting down): passed through unchanged.
    type End;
    /// The server state.
    fn shared(&self) -> &Arc<Shared>;
    /// The connection (for the address, TLS and channel binding).
    fn conn(&self) -> &Conn;
    /// Sends the challenge `data` (`+ base64`) and returns the client's answer line.
    fn challenge(&mut self, data: &[u8]) -> impl Future<Output = Result<String, Self::End>> + Send;
}

/// Why a SCRAM login did not succeed.
#[derive(Debug)]
pub enum ScramFailure<E> {
    /// The channel ended the exchange.
    End(E),
    /// A SASL-level error: unknown mechanism, cancelled (`*`), bad base64, authzid refused.
    Sasl(SaslError),
    /// A message that breaks RFC 5802's grammar (answered like bad SASL data).
    Malformed(ScramError),
    /// The login failed (wrong proof, replay, channel binding, unknown user: `Invalid`) or could
    /// not complete (temporary failure, user+IP cap).
    Login(LoginError),
}

impl<E> From<SaslError> for ScramFailure<E> {
    fn from(e: SaslError) -> Self {
        Self::Sasl(e)
    }
}

/// The SCRAM mechanisms to advertise on `conn`: those `[auth] scram_mechanisms` enables, the
/// -PLUS ones only with a channel binding.
pub fn mechanisms(shared: &Shared, conn: &Conn) -> Vec<Mechanism> {
    let cfg = shared.config();
    let enabled = |m: &Mechanism| {
        m.scram().is_some_and(|(hash, _)| {
            cfg.auth
                .scram_mechanisms
                .iter()
                .any(|n| n.eq_ignore_ascii_case(hash.name()))
        })
    };
    if !Mechanism::SCRAM.iter().any(enabled) {
        return Vec::new();
    }
    let plus = conn.tls_exporter().is_some();
    Mechanism::SCRAM
        .into_iter()
        .filter(|m| enabled(m) && (plus || !matches!(m.scram(), Some((_, true)))))
        .collect()
}

/// Runs the SCRAM exchange of `mechanism` (a SCRAM one: see [`Mechanism::scram`]) with the
/// client's `initial` response if it sent one (wire form: base64 or `=`).
pub async fn scram_login<C: SaslChannel>(
    io: &mut C,
    mechanism: Mechanism,
    initial: Option<&str>,
) -> Result<LoggedIn, ScramFailure<C::End>> {
    let (hash, plus) = mechanism.scram().ok_or(SaslError::UnknownMechanism)?;
    // Not enabled, or -PLUS where it is not offered: unknown, as any mechanism not listed.
    if !mechanisms(io.shared(), io.conn()).contains(&mechanism) {
        return Err(SaslError::UnknownMechanism.into());
    }
    let mut server = ScramServer::new(hash, plus, io.conn().tls_exporter())
        .map_err(|_| SaslError::UnknownMechanism)?;
    let label = mechanism.name();
    let ip = io.conn().info.peer.ip();
    let first: Zeroizing<Vec<u8>> = match initial {
        Some(ir) => decode_response(ir, true)?,
        None => {
            let line = io.challenge(b"").await.map_err(ScramFailure::End)?;
            decode_response(&line, false)?
        }
    };
    let user = match server.client_first(&first) {
        Ok(c) => c.user,
        Err(ScramError::AuthzidNotPermitted) => return Err(SaslError::AuthzidNotPermitted.into()),
        Err(e) if e.is_auth_failure() => {
            // A channel binding refused up front (downgrade, -PLUS misuse): a failed login.
            let name = server.claimed_user().unwrap_or_default().to_owned();
            return Err(fail(io, &name, label, ip, e).await);
        }
        Err(e) => return Err(ScramFailure::Malformed(e)),
    };
    let shared = Arc::clone(io.shared());
    let creds = match shared.auth.scram_credentials(hash, &user, ip).await {
        Ok(c) => c,
        Err(e) => {
            return Err(ScramFailure::Login(
                login::complete(&shared, io.conn(), &user, label, Err(e))
                    .err()
                    .unwrap_or(LoginError::TempFail),
            ));
        }
    };
    let server_first = server
        .server_first(creds.keys().clone())
        .map_err(ScramFailure::Malformed)?;
    let line = io
        .challenge(&server_first)
        .await
        .map_err(ScramFailure::End)?;
    let final_msg = decode_response(&line, false)?;
    let verdict = match server.client_final(&final_msg) {
        Ok(v) => Ok(v),
        Err(e) if e.is_auth_failure() => Err(e),
        Err(e) => return Err(ScramFailure::Malformed(e)),
    };
    let result = shared
        .auth
        .scram_outcome(
            &user,
            creds,
            verdict.as_ref().map(|_| ()).map_err(|e| reason(*e)),
            ip,
        )
        .await;
    let (info, server_final) = match (result, verdict) {
        (Ok(info), Ok(v)) => (info, v),
        (result, _) => {
            let err = match result {
                Ok(_) => Err(crate::auth::AuthFailure::Invalid),
                Err(e) => Err(e),
            };
            return Err(ScramFailure::Login(
                login::complete(&shared, io.conn(), &user, label, err)
                    .err()
                    .unwrap_or(LoginError::Invalid),
            ));
        }
    };
    // The server's proof; the client answers with an empty response (or `*` if it does not
    // trust it).
    let line = io
        .challenge(&server_final)
        .await
        .map_err(ScramFailure::End)?;
    if !decode_response(&line, false)?.is_empty() {
        return Err(ScramFailure::Malformed(ScramError::Malformed(
            "response to server-final is not empty",
        )));
    }
    login::complete(&shared, io.conn(), &user, label, Ok(info)).map_err(ScramFailure::Login)
}

/// A failure before the keys were looked up: logged, penalised and counted like any other.
async fn fail<C: SaslChannel>(
    io: &mut C,
    user: &str,
    label: &'static str,
    ip: std::net::IpAddr,
    e: ScramError,
) -> ScramFailure<C::End> {
    let shared = Arc::clone(io.shared());
    let result = shared.auth.scram_refused(user, reason(e), ip).await;
    ScramFailure::Login(
        login::complete(&shared, io.conn(), user, label, Err(result))
            .err()
            .unwrap_or(LoginError::Invalid),
    )
}

/// The log reason of a failed exchange.
fn reason(e: ScramError) -> &'static str {
    match e {
        ScramError::InvalidProof => "wrong password (SCRAM proof)",
        ScramError::NonceMismatch => "SCRAM nonce mismatch (replayed message)",
        ScramError::ChannelBindingMismatch => "SCRAM channel binding mismatch",
        ScramError::Downgrade => "SCRAM channel binding downgrade (y flag where PLUS is offered)",
        ScramError::ChannelBindingUnsupported => "SCRAM channel binding not supported",
        ScramError::AuthzidNotPermitted => "authorization identity not permitted",
        ScramError::Malformed(_) | ScramError::TooLong | ScramError::OutOfOrder => {
            "malformed SCRAM message"
        }
    }
}
