//! AUTHORIZATION-state commands: CAPA, STLS, USER, PASS, AUTH, UTF8.

use tracing::{debug, info};

use super::maildrop::Maildrop;
use super::response::Pop3Error;
use super::session::{Next, Session, State};
use crate::auth::sasl::{SaslError, SaslExchange, Step, encode_challenge};
use crate::config::{Pop3DeletePolicy, TlsMode};
use crate::limits;
use crate::server::conn::Line;
use crate::server::login::{self, LoginError, plaintext_allowed};

/// CAPA (RFC 2449): what this connection, in its current state, supports.
pub fn capa(s: &mut Session) -> Result<Next, Pop3Error> {
    let cfg = s.shared.config();
    let mut caps: Vec<String> = vec![
        "TOP".into(),
        "UIDL".into(),
        "RESP-CODES".into(),
        "AUTH-RESP-CODE".into(),
        "PIPELINING".into(),
    ];
    match &s.state {
        State::Authorization { .. } => {
            // As Dovecot: USER and SASL mechanisms are only shown where they may be used.
            if plaintext_allowed(&s.shared, &s.conn) {
                caps.push("USER".into());
                caps.push("SASL PLAIN LOGIN".into());
            }
            if stls_possible(s) {
                caps.push("STLS".into());
            }
            caps.push("UTF8".into());
        }
        State::Transaction { drop, .. } => {
            let _ = drop;
        }
    }
    caps.push(match cfg.pop3.delete_policy {
        Pop3DeletePolicy::KeepDays => format!("EXPIRE {}", cfg.pop3.keep_days),
        _ => "EXPIRE NEVER".into(),
    });
    if cfg.pop3.login_delay_secs > 0 {
        caps.push(format!("LOGIN-DELAY {}", cfg.pop3.login_delay_secs));
    }
    caps.push(format!(
        "IMPLEMENTATION mailcove {}",
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

fn stls_possible(s: &Session) -> bool {
    s.listener.tls == TlsMode::Starttls && !s.conn.is_tls() && s.shared.tls.current().is_some()
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

/// USER name.
pub fn user(s: &mut Session, name: String) -> Result<Next, Pop3Error> {
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(Pop3Error::PlaintextRefused);
    }
    s.state = State::Authorization { user: Some(name) };
    s.conn.queue(b"+OK\r\n");
    Ok(Next::Continue)
}

/// PASS password.
pub async fn pass(s: &mut Session, password: Vec<u8>) -> Result<Next, Pop3Error> {
    let State::Authorization { user } = &mut s.state else {
        return Err(Pop3Error::WrongState("already logged in"));
    };
    let Some(name) = user.take() else {
        return Err(Pop3Error::PassWithoutUser);
    };
    finish_login(s, &name, &password, "USER").await
}

/// UTF8 (RFC 6856): user names and passwords may be UTF-8; messages are sent as stored anyway.
pub fn utf8(s: &mut Session) -> Result<Next, Pop3Error> {
    s.utf8 = true;
    s.conn.queue(b"+OK UTF8 enabled\r\n");
    Ok(Next::Continue)
}

/// AUTH (RFC 5034), through the shared SASL codec.
pub async fn auth(
    s: &mut Session,
    mech: Option<String>,
    initial: Option<String>,
) -> Result<Next, Pop3Error> {
    let Some(mech) = mech else {
        // Bare AUTH lists the mechanisms, as RFC 1734 clients expect.
        s.conn.queue(b"+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
        return Ok(Next::Continue);
    };
    if !plaintext_allowed(&s.shared, &s.conn) {
        return Err(Pop3Error::PlaintextRefused);
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
            Step::Challenge(data) => {
                let mut line = b"+ ".to_vec();
                line.extend_from_slice(encode_challenge(&data).as_bytes());
                line.extend_from_slice(b"\r\n");
                s.conn.send(&line).await?;
                // The exchange happens before login, so the login deadline bounds it: without
                // it a client could stall here forever holding a connection slot.
                let read = tokio::time::timeout_at(
                    s.login_deadline,
                    s.conn.read_line(limits::MAX_SASL_LINE),
                )
                .await;
                let Ok(read) = read else {
                    s.conn.queue(b"-ERR Disconnected for inactivity.\r\n");
                    info!("autologout during AUTH");
                    return Ok(Next::Close);
                };
                let reply = match read? {
                    Line::Complete(l) => l,
                    Line::TooLong => return Err(Pop3Error::BadSasl),
                    Line::Eof => return Ok(Next::Close),
                };
                let reply = String::from_utf8(reply).map_err(|_| Pop3Error::BadSasl)?;
                step = match exchange.step(&reply) {
                    Ok(st) => st,
                    Err(SaslError::Cancelled) => return Err(Pop3Error::AuthCancelled),
                    Err(_) => return Err(Pop3Error::BadSasl),
                };
            }
        }
    }
}

async fn finish_login(
    s: &mut Session,
    user: &str,
    password: &[u8],
    mechanism: &'static str,
) -> Result<Next, Pop3Error> {
    let logged_in = match login::login(&s.shared, &s.conn, user, password, mechanism).await {
        Ok(l) => l,
        Err(LoginError::PlaintextRefused) => return Err(Pop3Error::PlaintextRefused),
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
    let drop = Maildrop::open(&s.shared, &logged_in.user).await?;
    info!(messages = drop.count(), "maildrop opened");
    s.conn
        .queue(format!("+OK Logged in, {} messages.\r\n", drop.count()).as_bytes());
    s.state = State::Transaction {
        drop: Box::new(drop),
        login: Box::new(logged_in),
    };
    Ok(Next::Continue)
}
