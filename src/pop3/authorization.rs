//! AUTHORIZATION-state commands: CAPA (valid in both states), STLS, USER, PASS and AUTH.
//!
//! - Plaintext credentials (USER/PASS, AUTH PLAIN/LOGIN) are refused on a connection that is
//!   neither TLS nor loopback unless the operator allows it; CAPA then hides USER and SASL, as
//!   RFC 5034 section 4 asks of the default configuration.
//! - Every login goes through the shared [`login::login`] path (penalty, user+IP cap, log line),
//!   then the LOGIN-DELAY check, then the maildrop lock: a second session gets `[IN-USE]`.
//! - APOP is not offered (no timestamp in the greeting): it needs plaintext-equivalent passwords
//!   on the server, and the users file holds only strong hashes.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tracing::{debug, info};

use super::maildrop::{Maildrop, Policy};
use super::response::Pop3Error;
use super::session::{Input, Next, Session, State};
use crate::auth::oauth::message::error_challenge;
use crate::auth::sasl::{
    BearerCredentials, Mechanism, SaslError, SaslExchange, Step, encode_challenge,
};
use std::sync::Arc;

use crate::config::TlsMode;
use crate::limits;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::{self, LoginError, plaintext_allowed};
use crate::server::scram::{self, SaslChannel, ScramFailure, scram_login};

/// CAPA (RFC 2449): what this connection, in its current state, supports.
///
/// Capabilities of the AUTHORIZATION state are announced in both states (RFC 2449 section 5);
/// STLS only while it can be used (RFC 2595 section 4); EXPIRE gives the smallest retention any
/// user may have before login and the user's own after it.
pub fn capa(s: &mut Session) -> Result<Next, Pop3Error> {
    let cfg = s.shared.config();
    let mut caps: Vec<String> = vec![
        "TOP".into(),
        "UIDL".into(),
        "RESP-CODES".into(),
        "AUTH-RESP-CODE".into(),
        "PIPELINING".into(),
    ];
    // As Dovecot: USER and the SASL mechanisms are only shown where they may be used. Once logged
    // in they could be used (that is how the client got in), so they stay listed.
    let logged_in = matches!(s.state, State::Transaction { .. });
    let mut sasl = String::new();
    if logged_in || plaintext_allowed(&s.shared, &s.conn) {
        caps.push("USER".into());
        sasl.push_str("SASL PLAIN LOGIN");
        // A bearer token is a credential: offered where PLAIN is, as Dovecot does.
        if cfg.auth.oauth2.enabled {
            sasl.push_str(" OAUTHBEARER XOAUTH2");
        }
    }
    // SCRAM does not expose the password: offered without TLS too, as Dovecot (server::scram).
    for m in scram::mechanisms(&s.shared, &s.conn) {
        sasl.push_str(if sasl.is_empty() { "SASL " } else { " " });
        sasl.push_str(m.name());
    }
    if !sasl.is_empty() {
        caps.push(sasl);
    }
    if stls_possible(s) {
        caps.push("STLS".into());
    }
    caps.push(match &s.state {
        State::Authorization { .. } => Policy::expire_before_login(&cfg),
        State::Transaction { drop, .. } => drop.policy().expire_capability(),
    });
    if cfg.pop3.login_delay_secs > 0 {
        caps.push(format!("LOGIN-DELAY {}", cfg.pop3.login_delay_secs));
    }
    caps.push(format!(
        "IMPLEMENTATION mailcove-{}",
        env!("CARGO_PKG_VERSION")
    ));
    let out = s.conn.out();
    out.extend_from_slice(b"+OK Capability list follows\r\n");
    for c in caps {
        out.extend_from_slice(c.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    Ok(Next::Continue)
}

/// RFC 2595 section 4: STLS is announced only where it is permitted, in AUTHORIZATION state.
fn stls_possible(s: &Session) -> bool {
    matches!(s.state, State::Authorization { .. })
        && s.listener.tls == TlsMode::Starttls
        && !s.conn.is_tls()
        && s.shared.tls.current().is_some()
}

/// STLS (RFC 2595 section 4): upgrade, discarding anything pipelined behind the command.
pub async fn stls(s: &mut Session) -> Result<Next, Pop3Error> {
    if s.conn.is_tls() {
        return Err(Pop3Error::TlsUnavailable("TLS is already active"));
    }
    let acceptor = match (s.listener.tls, s.shared.tls.current()) {
        (TlsMode::Starttls, Some(a)) => a,
        _ => return Err(Pop3Error::TlsUnavailable("not offered on this port")),
    };
    s.conn.queue(b"+OK Begin TLS negotiation now.\r\n");
    match s.conn.start_tls(&acceptor).await {
        Ok(()) => {
            // RFC 2595: the client must discard what it knew; so do we (a USER given before).
            s.state = State::Authorization { user: None };
            Ok(Next::Continue)
        }
        Err(e) => {
            debug!(error = %e, "STLS handshake failed");
            Ok(Next::Close)
        }
    }
}

/// The refusal of plaintext credentials, telling the client the way to a secure connection.
fn plaintext_refused(s: &Session) -> Pop3Error {
    if stls_possible(s) {
        Pop3Error::PlaintextRefused
    } else {
        Pop3Error::PlaintextRefusedNoStls
    }
}

/// USER name.
pub fn user(s: &mut Session, name: String) -> Result<Next, Pop3Error> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(plaintext_refused(s));
    }
    s.state = State::Authorization { user: Some(name) };
    s.conn.queue(b"+OK\r\n");
    Ok(Next::Continue)
}

/// PASS password: the name from USER is used once, whatever the outcome (RFC 1939 section 7).
pub async fn pass(s: &mut Session, password: Vec<u8>) -> Result<Next, Pop3Error> {
    let password = zeroize::Zeroizing::new(password);
    let State::Authorization { user } = &mut s.state else {
        return Err(Pop3Error::WrongState("already logged in"));
    };
    let Some(name) = user.take() else {
        return Err(Pop3Error::PassWithoutUser);
    };
    finish_login(s, &name, &password, "USER").await
}

/// AUTH (RFC 5034), through the shared SASL codec.
pub async fn auth(
    s: &mut Session,
    mech: Option<String>,
    initial: Option<String>,
) -> Result<Next, Pop3Error> {
    let allowed = plaintext_allowed(&s.shared, &s.conn);
    let Some(mech) = mech else {
        // Bare AUTH lists the usable mechanisms, as RFC 1734 clients (Outlook) expect.
        let mut list = String::from("+OK\r\n");
        if allowed {
            list.push_str("PLAIN\r\nLOGIN\r\n");
            if s.shared.config().auth.oauth2.enabled {
                list.push_str("OAUTHBEARER\r\nXOAUTH2\r\n");
            }
        }
        for m in scram::mechanisms(&s.shared, &s.conn) {
            list.push_str(m.name());
            list.push_str("\r\n");
        }
        list.push_str(".\r\n");
        s.conn.queue(list.as_bytes());
        return Ok(Next::Continue);
    };
    if let State::Authorization { user } = &mut s.state {
        // A USER without PASS is abandoned by AUTH.
        *user = None;
    }
    // SCRAM does not expose the password: allowed without TLS (server::scram explains).
    if let Some(m) = Mechanism::from_name(&mech).filter(|m| m.scram().is_some()) {
        return auth_scram(s, m, initial).await;
    }
    if !allowed {
        return Err(plaintext_refused(s));
    }
    // OAUTHBEARER and XOAUTH2 exist only with `[auth.oauth2] enabled`.
    if Mechanism::from_name(&mech).is_some_and(Mechanism::is_bearer)
        && !s.shared.config().auth.oauth2.enabled
    {
        return Err(Pop3Error::UnknownMechanism);
    }
    let (mut exchange, mut step) = match SaslExchange::start(&mech, initial.as_deref()) {
        Ok(x) => x,
        Err(SaslError::UnknownMechanism) => return Err(Pop3Error::UnknownMechanism),
        Err(_) => return Err(Pop3Error::BadSasl),
    };
    loop {
        match step {
            Step::Done(creds) => {
                let user = creds.authcid.clone();
                return finish_login(s, &user, &creds.password, "AUTH").await;
            }
            Step::Bearer(creds) => return finish_bearer(s, creds).await,
            Step::Challenge(data) => {
                let mut line = b"+ ".to_vec();
                line.extend_from_slice(encode_challenge(&data).as_bytes());
                line.extend_from_slice(b"\r\n");
                s.conn.send(&line).await?;
                // RFC 5034: continuation lines are not bound by the 255-octet command limit.
                let reply = match s.read(limits::MAX_SASL_LINE).await {
                    Input::Line(l) => zeroize::Zeroizing::new(l),
                    Input::TooLong => return Err(Pop3Error::BadSasl),
                    Input::Closed => return Ok(Next::Close),
                    Input::Idle => return Err(Pop3Error::Autologout),
                    Input::Shutdown => return Err(Pop3Error::ShuttingDown),
                    Input::Kicked => return Err(Pop3Error::Kicked),
                };
                let reply = std::str::from_utf8(&reply).map_err(|_| Pop3Error::BadSasl)?;
                step = match exchange.step(reply) {
                    Ok(st) => st,
                    Err(SaslError::Cancelled) => return Err(Pop3Error::AuthCancelled),
                    Err(_) => return Err(Pop3Error::BadSasl),
                };
            }
        }
    }
}

/// The POP3 side of a SASL exchange run by `server::scram`.
struct Pop3Sasl<'a>(&'a mut Session);

impl SaslChannel for Pop3Sasl<'_> {
    /// What AUTH answers when the connection fails mid-exchange.
    type End = Result<Next, Pop3Error>;

    fn shared(&self) -> &Arc<Shared> {
        &self.0.shared
    }

    fn conn(&self) -> &Conn {
        &self.0.conn
    }

    async fn challenge(&mut self, data: &[u8]) -> Result<String, Self::End> {
        let mut line = b"+ ".to_vec();
        line.extend_from_slice(encode_challenge(data).as_bytes());
        line.extend_from_slice(b"\r\n");
        if let Err(e) = self.0.conn.send(&line).await {
            return Err(Err(e.into()));
        }
        // RFC 5034: continuation lines are not bound by the 255-octet command limit.
        let reply = match self.0.read(limits::MAX_SASL_LINE).await {
            Input::Line(l) => zeroize::Zeroizing::new(l),
            Input::TooLong => return Err(Err(Pop3Error::BadSasl)),
            Input::Closed => return Err(Ok(Next::Close)),
            Input::Idle => return Err(Err(Pop3Error::Autologout)),
            Input::Shutdown => return Err(Err(Pop3Error::ShuttingDown)),
            Input::Kicked => return Err(Err(Pop3Error::Kicked)),
        };
        String::from_utf8(reply.to_vec()).map_err(|_| Err(Pop3Error::BadSasl))
    }
}

/// AUTH SCRAM-* (RFC 5034 with RFC 5802/7677).
async fn auth_scram(
    s: &mut Session,
    mechanism: Mechanism,
    initial: Option<String>,
) -> Result<Next, Pop3Error> {
    let result = scram_login(&mut Pop3Sasl(s), mechanism, initial.as_deref()).await;
    match result {
        Ok(logged_in) => complete_login(s, Ok(logged_in)).await,
        Err(ScramFailure::End(end)) => end,
        Err(ScramFailure::Sasl(SaslError::Cancelled)) => Err(Pop3Error::AuthCancelled),
        Err(ScramFailure::Sasl(SaslError::UnknownMechanism)) => Err(Pop3Error::UnknownMechanism),
        // As AUTH PLAIN with another authzid: a failed authentication.
        Err(ScramFailure::Sasl(SaslError::AuthzidNotPermitted)) => {
            complete_login(s, Err(LoginError::Invalid)).await
        }
        Err(ScramFailure::Sasl(_) | ScramFailure::Malformed(_)) => Err(Pop3Error::BadSasl),
        Err(ScramFailure::Login(e)) => complete_login(s, Err(e)).await,
    }
}

async fn finish_login(
    s: &mut Session,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
) -> Result<Next, Pop3Error> {
    let result = login::login_for(&s.shared, &s.conn, user, password, mechanism, "pop3").await;
    complete_login(s, result).await
}

/// The session's side of a checked login: LOGIN-DELAY, the maildrop, or the failure's answer.
async fn complete_login(
    s: &mut Session,
    result: Result<login::LoggedIn, LoginError>,
) -> Result<Next, Pop3Error> {
    let logged_in = match result {
        Ok(l) => l,
        Err(LoginError::PlaintextRefused) => return Err(plaintext_refused(s)),
        Err(LoginError::TempFail) => return Err(Pop3Error::AuthTemp),
        Err(LoginError::UserIpLimit(n)) => return Err(Pop3Error::UserIpLimit(n)),
        Err(LoginError::Invalid) => {
            s.auth_failures += 1;
            if s.auth_failures >= limits::MAX_AUTH_FAILURES_PER_CONNECTION {
                return Err(Pop3Error::TooManyFailures);
            }
            return Err(Pop3Error::AuthFailed);
        }
    };
    s.authenticated_as = Some(logged_in.user.name.clone());
    // LOGIN-DELAY is checked only after the password, so it reveals nothing about who exists
    // (RFC 2449 section 8.1.1), and before the maildrop is opened, which is the expensive part.
    let delay = Duration::from_secs(s.shared.config().pop3.login_delay_secs);
    let name = logged_in.user.name.clone();
    if let Some(wait) = RECENT_LOGINS.lock().must_wait(&name, delay, Instant::now()) {
        info!(user = %name, wait_secs = wait.as_secs(), "POP3 login refused by LOGIN-DELAY");
        return Err(Pop3Error::LoginDelay(wait.as_secs().max(1)));
    }
    let drop = Maildrop::open(&s.shared, &logged_in.user).await?;
    RECENT_LOGINS.lock().record(&name, delay, Instant::now());
    let (count, size) = drop.stat();
    info!(messages = count, octets = size, "maildrop opened");
    s.conn
        .queue(format!("+OK Logged in, {count} messages.\r\n").as_bytes());
    s.state = State::Transaction {
        drop: Box::new(drop),
        login: Box::new(logged_in),
    };
    Ok(Next::Continue)
}

/// The end of AUTH OAUTHBEARER / XOAUTH2: a valid token logs in as [`finish_login`] does; a
/// refused one gets the JSON error challenge (RFC 7628 3.2.2, Google's format for XOAUTH2) as a
/// `+ ` line, the client's dummy response is read, then `-ERR [AUTH]`.
async fn finish_bearer(s: &mut Session, creds: BearerCredentials) -> Result<Next, Pop3Error> {
    let result = login::login_bearer(&s.shared, &s.conn, &creds, "AUTH").await;
    if matches!(result, Err(LoginError::Invalid)) {
        let challenge = error_challenge(creds.mechanism, &s.shared.config().auth.oauth2);
        let mut line = b"+ ".to_vec();
        line.extend_from_slice(encode_challenge(&challenge).as_bytes());
        line.extend_from_slice(b"\r\n");
        s.conn.send(&line).await?;
        // RFC 7628 3.2.3: the dummy response's content does not matter; the exchange fails.
        match s.read(limits::MAX_SASL_LINE).await {
            Input::Line(_) | Input::TooLong => {}
            Input::Closed => return Ok(Next::Close),
            Input::Idle => return Err(Pop3Error::Autologout),
            Input::Shutdown => return Err(Pop3Error::ShuttingDown),
            Input::Kicked => return Err(Pop3Error::Kicked),
        }
    }
    complete_login(s, result).await
}

/// Successful POP3 logins of this daemon, for LOGIN-DELAY. Kept in memory only: after a restart
/// the first login of everyone is allowed, which errs on the side of delivering mail.
static RECENT_LOGINS: LazyLock<Mutex<RecentLogins>> =
    LazyLock::new(|| Mutex::new(RecentLogins::default()));

/// Last login time per user, bounded by [`limits::MAX_LOGIN_DELAY_ENTRIES`].
#[derive(Default)]
pub struct RecentLogins {
    last: HashMap<String, Instant>,
}

impl RecentLogins {
    /// How long `user` must still wait at `now` under `delay`, or None when a login is allowed.
    pub fn must_wait(&self, user: &str, delay: Duration, now: Instant) -> Option<Duration> {
        if delay.is_zero() {
            return None;
        }
        let since = now.checked_duration_since(*self.last.get(user)?)?;
        delay.checked_sub(since).filter(|w| !w.is_zero())
    }

    /// Records a login of `user` at `now`. Entries older than `delay` are dropped when the table
    /// is full; if it is still full, the login is not recorded (the delay is advisory, memory is not).
    pub fn record(&mut self, user: &str, delay: Duration, now: Instant) {
        if delay.is_zero() {
            self.last.clear();
            return;
        }
        if self.last.len() >= limits::MAX_LOGIN_DELAY_ENTRIES && !self.last.contains_key(user) {
            self.last
                .retain(|_, t| now.checked_duration_since(*t).is_none_or(|d| d < delay));
            if self.last.len() >= limits::MAX_LOGIN_DELAY_ENTRIES {
                return;
            }
        }
        self.last.insert(user.to_owned(), now);
    }

    /// Users remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// True when nobody is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_delay_counts_from_the_last_login_of_that_user() {
        let mut r = RecentLogins::default();
        let t0 = Instant::now();
        let delay = Duration::from_secs(300);
        assert_eq!(r.must_wait("a", delay, t0), None);
        r.record("a", delay, t0);
        assert_eq!(
            r.must_wait("a", delay, t0 + Duration::from_secs(100)),
            Some(Duration::from_secs(200))
        );
        assert_eq!(r.must_wait("b", delay, t0 + Duration::from_secs(100)), None);
        assert_eq!(r.must_wait("a", delay, t0 + delay), None);
        assert_eq!(r.must_wait("a", Duration::ZERO, t0), None);
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_expired_entries_first() {
        let mut r = RecentLogins::default();
        let t0 = Instant::now();
        let delay = Duration::from_secs(10);
        for i in 0..limits::MAX_LOGIN_DELAY_ENTRIES {
            r.record(&format!("u{i}"), delay, t0);
        }
        // Full and nothing expired: a new user is not remembered.
        r.record("late", delay, t0 + Duration::from_secs(1));
        assert_eq!(r.len(), limits::MAX_LOGIN_DELAY_ENTRIES);
        assert_eq!(
            r.must_wait("late", delay, t0 + Duration::from_secs(2)),
            None
        );
        // Once the old entries expired they make room.
        r.record("late", delay, t0 + Duration::from_secs(20));
        assert_eq!(r.len(), 1);
        assert!(
            r.must_wait("late", delay, t0 + Duration::from_secs(21))
                .is_some()
        );
    }
}
