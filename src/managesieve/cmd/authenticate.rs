//! AUTHENTICATE (RFC 5804 section 2.1) with the mechanisms and login path of IMAP's
//! AUTHENTICATE (plaintext policy, penalty, user+IP cap, the log line): PLAIN and LOGIN through
//! the shared SASL codec, SCRAM-SHA-1/256(-PLUS) through the shared driver
//! [`crate::server::scram`], OAUTHBEARER and XOAUTH2 through [`login::login_bearer`].
//!
//! - Challenges are quoted strings of base64; the client answers with a string (quoted or
//!   literal), `"*"` cancels (`NO`).
//! - An initial response is the optional second argument; `""` is an empty one.
//! - Plaintext mechanisms (PLAIN, LOGIN, and the bearer tokens, which are credentials too)
//!   without TLS off loopback: `NO (ENCRYPT-NEEDED)` unless `[auth] allow_plaintext_without_tls`.
//!   SCRAM is accepted there, as IMAP does (server::scram explains).
//! - SCRAM's server-final message (`v=`) goes in the `OK (SASL "...")` response code, as section
//!   2.1 allows and Dovecot does, instead of one more challenge round.
//! - A refused bearer token gets RFC 7628's JSON error challenge; after the client's dummy
//!   response the command fails.
//! - After [`crate::limits::MAX_AUTH_FAILURES_PER_CONNECTION`] failures: BYE.

use std::sync::Arc;

use tracing::{error, info};

use crate::auth::oauth::message::error_challenge;
use crate::auth::sasl::{
    BearerCredentials, Mechanism, SaslError, SaslExchange, Step, encode_challenge,
};
use crate::limits;
use crate::managesieve::response::{SieveError, Status, push_response, push_string};
use crate::managesieve::session::{Args, Next, Session, State};
use crate::managesieve::store::ScriptStore;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::{self, LoggedIn, LoginError, plaintext_allowed};
use crate::server::scram::{self, SaslChannel, ScramFailure, scram_login};

/// The SASL mechanisms to list in CAPABILITY on this connection before login: exactly what
/// IMAP's CAPABILITY would offer (`AUTH=`) on the same connection.
pub fn mechanisms(shared: &Shared, conn: &Conn) -> Vec<&'static str> {
    let mut out = Vec::new();
    if plaintext_allowed(shared, conn) {
        out.extend(Mechanism::ALL.iter().map(|m| m.name()));
        // A bearer token is a credential: offered where PLAIN is, as IMAP and Dovecot do.
        if shared.config().auth.oauth2.enabled {
            out.push(Mechanism::OAuthBearer.name());
            out.push(Mechanism::XOAuth2.name());
        }
    }
    out.extend(
        scram::mechanisms(shared, conn)
            .into_iter()
            .map(|m| m.name()),
    );
    out
}

/// AUTHENTICATE mechanism [initial-response].
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let mech = args.text("expected a SASL mechanism name")?;
    let initial = args.opt_string("expected an initial response string")?;
    args.finish()?;
    let Some(mechanism) = Mechanism::from_name(&mech) else {
        return Err(SieveError::UnknownMechanism);
    };
    let initial = match initial {
        // The shared codec spells an empty initial response `=` (SASL-IR); here it is "".
        Some(ir) if ir.is_empty() => Some("=".to_string()),
        Some(ir) => Some(String::from_utf8(ir).map_err(|_| SieveError::BadSasl)?),
        None => None,
    };
    // SCRAM does not expose the password: allowed without TLS (server::scram explains).
    if mechanism.scram().is_some() {
        return authenticate_scram(s, mechanism, initial).await;
    }
    // OAUTHBEARER and XOAUTH2 exist only with `[auth.oauth2] enabled`.
    if mechanism.is_bearer() && !s.shared.config().auth.oauth2.enabled {
        return Err(SieveError::UnknownMechanism);
    }
    if !plaintext_allowed(&s.shared, &s.conn) {
        info!(mechanism = %mech, reason = "plaintext auth refused without TLS", "login failed");
        return Err(SieveError::EncryptNeeded);
    }
    // Section 2.1: an initial response with a mechanism whose server speaks first (LOGIN asks
    // for the user name) MUST be rejected.
    if initial.is_some() && mechanism == Mechanism::Login {
        return Err(SieveError::BadSasl);
    }
    let (mut exchange, mut step) = match SaslExchange::start(&mech, initial.as_deref()) {
        Ok(x) => x,
        Err(SaslError::UnknownMechanism) => return Err(SieveError::UnknownMechanism),
        Err(_) => return Err(SieveError::BadSasl),
    };
    let creds = loop {
        match step {
            Step::Done(creds) => break creds,
            Step::Bearer(creds) => return finish_bearer(s, creds).await,
            Step::Challenge(data) => {
                let reply = challenge(s, &data).await?;
                if reply.as_slice() == b"*" {
                    return Err(SieveError::AuthCancelled);
                }
                let reply = std::str::from_utf8(&reply).map_err(|_| SieveError::BadSasl)?;
                step = match exchange.step(reply) {
                    Ok(st) => st,
                    Err(SaslError::Cancelled) => return Err(SieveError::AuthCancelled),
                    Err(_) => return Err(SieveError::BadSasl),
                };
            }
        }
    };
    let result = login::login_for(
        &s.shared,
        &s.conn,
        &creds.authcid,
        &creds.password,
        "AUTHENTICATE",
        "managesieve",
    )
    .await;
    match result {
        Ok(l) => enter(s, l, None),
        Err(e) => Err(login_failed(s, e)),
    }
}

/// Sends one challenge (a quoted base64 string) and reads the client's answer.
async fn challenge(
    s: &mut Session,
    data: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, SieveError> {
    let out = s.conn.out();
    push_string(out, encode_challenge(data).as_bytes());
    out.extend_from_slice(b"\r\n");
    s.conn.flush().await?;
    Ok(zeroize::Zeroizing::new(s.read_sasl_response().await?))
}

/// The answer to a failed login; counts wrong credentials towards the BYE.
fn login_failed(s: &mut Session, e: LoginError) -> SieveError {
    match e {
        LoginError::PlaintextRefused => SieveError::EncryptNeeded,
        LoginError::TempFail => SieveError::AuthTemp,
        LoginError::UserIpLimit(n) => SieveError::UserIpLimit(n),
        LoginError::Invalid => {
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                SieveError::TooManyFailures
            } else {
                SieveError::AuthFailed
            }
        }
    }
}

/// Enters the authenticated state with the user's scripts; `sasl` is server data for the
/// `OK (SASL "...")` response code.
fn enter(s: &mut Session, logged_in: LoggedIn, sasl: Option<&[u8]>) -> Result<Next, SieveError> {
    let cfg = s.shared.config();
    let Some(location) = cfg.sieve.locate(logged_in.user.home.as_deref()) else {
        error!(user = %logged_in.user.name, sieve = %cfg.sieve.sieve, "no Sieve script location for this user (no home directory for ~/?)");
        return Err(SieveError::NoStorage);
    };
    let store = ScriptStore::new(location, cfg.sieve.max_script_size, cfg.sieve.max_scripts);
    s.state = State::Auth {
        login: Box::new(logged_in),
        store,
    };
    let code = sasl.map(|d| format!("SASL \"{}\"", encode_challenge(d)));
    push_response(s.conn.out(), Status::Ok, code.as_deref(), "Logged in.");
    Ok(Next::Continue)
}

/// OAUTHBEARER / XOAUTH2 (RFC 7628 3.2): a valid token logs in; a refused one is answered with
/// the JSON error challenge, the client's dummy response is read, then the command fails.
async fn finish_bearer(s: &mut Session, creds: BearerCredentials) -> Result<Next, SieveError> {
    match login::login_bearer(&s.shared, &s.conn, &creds, "AUTHENTICATE").await {
        Ok(l) => enter(s, l, None),
        Err(LoginError::Invalid) => {
            let data = error_challenge(creds.mechanism, &s.shared.config().auth.oauth2);
            // RFC 7628 3.2.3: the answer's content does not matter (a `"*"` cancel ends the
            // exchange just the same); the exchange fails.
            challenge(s, &data).await?;
            Err(login_failed(s, LoginError::Invalid))
        }
        Err(e) => Err(login_failed(s, e)),
    }
}

/// The ManageSieve side of a SASL exchange run by `server::scram`.
struct SieveSasl<'a> {
    s: &'a mut Session,
    /// The server-final message, kept for the `OK (SASL ...)` response code.
    server_final: Option<Vec<u8>>,
}

impl SaslChannel for SieveSasl<'_> {
    /// How AUTHENTICATE ends when the connection fails mid-exchange.
    type End = SieveError;

    fn shared(&self) -> &Arc<Shared> {
        &self.s.shared
    }

    fn conn(&self) -> &Conn {
        &self.s.conn
    }

    async fn challenge(&mut self, data: &[u8]) -> Result<String, Self::End> {
        // The server-final message (`v=`, RFC 5802 section 7) is the only challenge starting
        // so (server-first starts `r=`): it is kept for the OK and answered here with the empty
        // response the client would send.
        if data.starts_with(b"v=") {
            self.server_final = Some(data.to_vec());
            return Ok(String::new());
        }
        let reply = challenge(self.s, data).await?;
        String::from_utf8(reply.to_vec()).map_err(|_| SieveError::BadSasl)
    }
}

/// AUTHENTICATE SCRAM-* (RFC 5802, RFC 7677; -PLUS with `tls-exporter`).
async fn authenticate_scram(
    s: &mut Session,
    mechanism: Mechanism,
    initial: Option<String>,
) -> Result<Next, SieveError> {
    let mut io = SieveSasl {
        s,
        server_final: None,
    };
    let result = scram_login(&mut io, mechanism, initial.as_deref()).await;
    let server_final = io.server_final.take();
    match result {
        Ok(l) => enter(s, l, server_final.as_deref()),
        Err(ScramFailure::End(e)) => Err(e),
        Err(ScramFailure::Sasl(SaslError::UnknownMechanism)) => Err(SieveError::UnknownMechanism),
        Err(ScramFailure::Sasl(SaslError::Cancelled)) => Err(SieveError::AuthCancelled),
        // As IMAP: refused like a wrong password (the auth module logged why).
        Err(ScramFailure::Sasl(SaslError::AuthzidNotPermitted)) => Err(SieveError::AuthFailed),
        Err(ScramFailure::Sasl(_) | ScramFailure::Malformed(_)) => Err(SieveError::BadSasl),
        Err(ScramFailure::Login(e)) => Err(login_failed(s, e)),
    }
}
