//! A POP3 session: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939, reading pipelined
//! commands (RFC 2449 PIPELINING) and answering them in order.
//!
//! Responses are queued and flushed when no further command is already buffered, so a pipelining
//! client gets its answers in few packets and a plain client gets each answer at once.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use super::command::{self, Command, ParseError};
use super::maildrop::Maildrop;
use super::response::Pop3Error;
use super::{authorization, transaction};
use crate::config::ListenerConfig;
use crate::limits;
use crate::server::Shared;
use crate::server::conn::{Conn, Line};
use crate::server::login::LoggedIn;

/// Where the session is.
pub enum State {
    /// Before login; `user` holds a name given by USER.
    Authorization {
        /// Name from USER, waiting for PASS.
        user: Option<String>,
    },
    /// Logged in with the maildrop locked.
    Transaction {
        /// The snapshot being worked on.
        drop: Box<Maildrop>,
        /// Who, and their connection slot.
        login: Box<LoggedIn>,
    },
}

/// Everything a command handler may touch.
pub struct Session {
    /// The client.
    pub conn: Conn,
    /// Daemon state.
    pub shared: Arc<Shared>,
    /// The listener this came in on.
    pub listener: ListenerConfig,
    /// Current state.
    pub state: State,
    /// Failed logins on this connection.
    pub auth_failures: u32,
    /// The client asked for UTF8 (RFC 6856).
    pub utf8: bool,
    /// When a client still in the AUTHORIZATION state is disconnected: fixed at connect time so
    /// a client sending a byte at a time cannot hold a pre-login slot indefinitely.
    pub login_deadline: tokio::time::Instant,
}

/// What a handler wants to happen next.
pub enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection (after flushing).
    Close,
}

/// Serves one POP3 connection to its end.
pub async fn run(conn: Conn, shared: Arc<Shared>, listener: ListenerConfig) {
    let shared_preauth_secs = shared.config().timeouts.preauth_secs;
    let mut s = Session {
        conn,
        shared,
        listener,
        state: State::Authorization { user: None },
        auth_failures: 0,
        utf8: false,
        login_deadline: tokio::time::Instant::now() + Duration::from_secs(shared_preauth_secs),
    };
    let cfg = s.shared.config();
    s.conn
        .set_write_timeout(Duration::from_secs(cfg.timeouts.pop3_idle_secs));
    s.conn.queue(b"+OK mailcove ready.\r\n");
    let mut bad = 0u32;
    loop {
        if s.conn.buffered().iter().all(|&b| b != b'\n') && s.conn.flush().await.is_err() {
            break;
        }
        let cfg = s.shared.config();
        let deadline = match s.state {
            State::Authorization { .. } => s.login_deadline,
            State::Transaction { .. } => {
                tokio::time::Instant::now() + Duration::from_secs(cfg.timeouts.pop3_idle_secs)
            }
        };
        let line = tokio::select! {
            _ = s.shared.shutdown.cancelled() => {
                s.conn.queue(b"-ERR [SYS/TEMP] Server shutting down.\r\n");
                break;
            }
            r = tokio::time::timeout_at(deadline, s.conn.read_line(limits::POP3_MAX_COMMAND_LINE)) => r,
        };
        let line = match line {
            Err(_) => {
                s.conn.queue(b"-ERR Disconnected for inactivity.\r\n");
                info!("autologout after inactivity");
                break;
            }
            Ok(Err(e)) => {
                debug!(error = %e, "read failed");
                break;
            }
            Ok(Ok(Line::Eof)) => break,
            Ok(Ok(Line::TooLong)) => {
                s.conn
                    .queue(b"-ERR Line too long (RFC 2449: at most 255 octets).\r\n");
                bad += 1;
                if bad >= limits::MAX_BAD_COMMANDS {
                    break;
                }
                continue;
            }
            Ok(Ok(Line::Complete(l))) => l,
        };
        let next = match command::parse(&line) {
            Ok(cmd) => dispatch(&mut s, cmd).await,
            Err(ParseError::Unknown) => Err(Pop3Error::UnknownCommand),
            Err(ParseError::BadArguments(why)) => Err(Pop3Error::BadArguments(why)),
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => break,
            Err(e) => {
                if e.counts_as_bad() {
                    bad += 1;
                }
                s.conn.queue(e.line().as_bytes());
                if e.closes() || bad >= limits::MAX_BAD_COMMANDS {
                    break;
                }
            }
        }
    }
    // A session that ends without QUIT commits nothing: dropping the maildrop releases its lock.
    s.conn.close().await;
}

async fn dispatch(s: &mut Session, cmd: Command) -> Result<Next, Pop3Error> {
    match (&s.state, cmd) {
        (_, Command::Capa) => authorization::capa(s),
        (_, Command::Noop) if matches!(s.state, State::Transaction { .. }) => {
            s.conn.queue(b"+OK\r\n");
            Ok(Next::Continue)
        }
        (State::Authorization { .. }, Command::Quit) => {
            s.conn.queue(b"+OK Logging out.\r\n");
            Ok(Next::Close)
        }
        (State::Authorization { .. }, Command::Stls) => authorization::stls(s).await,
        (State::Authorization { .. }, Command::User(name)) => authorization::user(s, name),
        (State::Authorization { .. }, Command::Pass(pw)) => authorization::pass(s, pw).await,
        (State::Authorization { .. }, Command::Auth(mech, ir)) => {
            authorization::auth(s, mech, ir).await
        }
        (State::Authorization { .. }, Command::Utf8) => authorization::utf8(s),
        (_, Command::Apop) => Err(Pop3Error::ApopNotSupported),
        (State::Transaction { .. }, Command::Quit) => transaction::quit(s).await,
        (
            State::Transaction { .. },
            cmd @ (Command::Stat
            | Command::List(_)
            | Command::Retr(_)
            | Command::Top(..)
            | Command::Uidl(_)
            | Command::Dele(_)
            | Command::Rset),
        ) => transaction::run(s, cmd).await,
        (State::Authorization { .. }, _) => Err(Pop3Error::WrongState("not logged in yet")),
        (State::Transaction { .. }, _) => Err(Pop3Error::WrongState("already logged in")),
    }
}
