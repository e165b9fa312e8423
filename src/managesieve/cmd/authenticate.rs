//! AUTHENTICATE (RFC 5804 section 2.1) through the shared SASL codec and login path (plaintext
//! policy, penalty, user+IP cap, the log line), as IMAP's AUTHENTICATE.
//!
//! - Challenges are quoted strings of base64; the client answers with a string (quoted or
//!   literal), `"*"` cancels (`NO`).
//! - An initial response is the optional second argument; `""` is an empty one.
//! - Plaintext mechanisms without TLS off loopback: `NO (ENCRYPT-NEEDED)` unless
//!   `[auth] allow_plaintext_without_tls`.
//! - After [`crate::limits::MAX_AUTH_FAILURES_PER_CONNECTION`] failures: BYE.

use tracing::{error, info};

use crate::auth::sasl::{Mechanism, SaslError, SaslExchange, Step, encode_challenge};
use crate::limits;
use crate::managesieve::response::{SieveError, Status, push_response, push_string};
use crate::managesieve::session::{Args, Next, Session, State};
use crate::managesieve::store::ScriptStore;
use crate::server::login::{self, LoginError, plaintext_allowed};

/// AUTHENTICATE mechanism [initial-response].
pub async fn run(s: &mut Session, mut args: Args) -> Result<Next, SieveError> {
    let mech = args.text("expected a SASL mechanism name")?;
    let initial = args.opt_string("expected an initial response string")?;
    args.finish()?;
    let plaintext = matches!(
        Mechanism::from_name(&mech),
        Some(Mechanism::Plain | Mechanism::Login)
    );
    if !plaintext {
        return Err(SieveError::UnknownMechanism);
    }
    if plaintext && !plaintext_allowed(&s.shared, &s.conn) {
        info!(mechanism = %mech, reason = "plaintext auth refused without TLS", "login failed");
        return Err(SieveError::EncryptNeeded);
    }
    // Section 2.1: an initial response with a mechanism whose server speaks first (LOGIN asks
    // for the user name) MUST be rejected.
    if initial.is_some() && Mechanism::from_name(&mech) == Some(Mechanism::Login) {
        return Err(SieveError::BadSasl);
    }
    let initial = match initial {
        // The shared codec spells an empty initial response `=` (SASL-IR); here it is "".
        Some(ir) if ir.is_empty() => Some("=".to_string()),
        Some(ir) => Some(String::from_utf8(ir).map_err(|_| SieveError::BadSasl)?),
        None => None,
    };
    let (mut exchange, mut step) = match SaslExchange::start(&mech, initial.as_deref()) {
        Ok(x) => x,
        Err(SaslError::UnknownMechanism) => return Err(SieveError::UnknownMechanism),
        Err(_) => return Err(SieveError::BadSasl),
    };
    let creds = loop {
        match step {
            Step::Done(creds) => break creds,
            // Only PLAIN and LOGIN get here (checked above).
            Step::Bearer(_) => return Err(SieveError::UnknownMechanism),
            Step::Challenge(data) => {
                let out = s.conn.out();
                push_string(out, encode_challenge(&data).as_bytes());
                out.extend_from_slice(b"\r\n");
                s.conn.flush().await?;
                let reply = zeroize::Zeroizing::new(s.read_sasl_response().await?);
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
    let logged_in = match login::login_for(
        &s.shared,
        &s.conn,
        &creds.authcid,
        &creds.password,
        "AUTHENTICATE",
        "managesieve",
    )
    .await
    {
        Ok(l) => l,
        Err(LoginError::PlaintextRefused) => return Err(SieveError::EncryptNeeded),
        Err(LoginError::TempFail) => return Err(SieveError::AuthTemp),
        Err(LoginError::UserIpLimit(n)) => return Err(SieveError::UserIpLimit(n)),
        Err(LoginError::Invalid) => {
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                return Err(SieveError::TooManyFailures);
            }
            return Err(SieveError::AuthFailed);
        }
    };
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
    push_response(s.conn.out(), Status::Ok, None, "Logged in.");
    Ok(Next::Continue)
}
