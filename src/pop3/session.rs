//! A POP3 session: the AUTHORIZATION, TRANSACTION and UPDATE states of RFC 1939, reading pipelined
//! commands (RFC 2449 PIPELINING) and answering them in order.
//!
//! - Responses are queued and flushed only when no further complete command is already buffered,
//!   so a pipelining client gets its answers in few packets and a plain client gets each at once.
//! - Every read (commands and AUTH continuation lines alike) goes through [`next_input`], which
//!   applies the state's inactivity timeout and watches for daemon shutdown, so no read can wait
//!   forever.
//! - The UPDATE state is entered only by QUIT in TRANSACTION. Any other end (autologout, shutdown,
//!   a dropped connection) drops the [`Maildrop`] unapplied, which releases the maildrop lock and
//!   deletes nothing (RFC 1939 section 6).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use super::command::{self, Command, ParseError};
use super::maildrop::Maildrop;
use super::response::Pop3Error;
use super::{authorization, transaction};
use crate::config::{Config, ListenerConfig};
use crate::limits;
use crate::server::Shared;
use crate::server::conn::{Conn, Line};
use crate::server::login::LoggedIn;
use crate::server::sessions::EndReason;
use crate::storage::StorageError;

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
    /// When a client still in the AUTHORIZATION state is disconnected: fixed at connect time, so
    /// a slow-loris client sending a line (or a byte) just inside each timeout cannot hold a
    /// pre-login slot indefinitely.
    pub login_deadline: tokio::time::Instant,
    /// Who the client proved to be, from the moment the password checked out (also when opening
    /// the maildrop then fails), for the log lines of [`answer_error`].
    pub authenticated_as: Option<String>,
}

/// What a handler wants to happen next.
pub enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection (after flushing).
    Close,
}

/// What one read from the client produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// A complete line, without its line end.
    Line(Vec<u8>),
    /// A line over the limit; it has been skipped to its end.
    TooLong,
    /// The client closed the connection or the read failed.
    Closed,
    /// No line within the timeout.
    Idle,
    /// The daemon is shutting down.
    Shutdown,
    /// `mailcove kick` ended the session.
    Kicked,
}

/// Reads one line of at most `max` octets (line end excluded), giving up after `idle` or when
/// `shutdown` fires.
pub async fn next_input(
    conn: &mut Conn,
    max: usize,
    idle: Duration,
    shutdown: &CancellationToken,
) -> Input {
    tokio::select! {
        _ = shutdown.cancelled() => Input::Shutdown,
        r = tokio::time::timeout(idle, conn.read_line(max)) => match r {
            Err(_) => Input::Idle,
            Ok(Err(e)) => {
                debug!(error = %e, "read failed");
                Input::Closed
            }
            Ok(Ok(Line::Eof)) => Input::Closed,
            Ok(Ok(Line::TooLong)) => Input::TooLong,
            Ok(Ok(Line::Complete(l))) => Input::Line(l),
        },
    }
}

/// The inactivity timeout of a state: the login timeout before authentication, the configured
/// autologout timer (at least 10 minutes, RFC 1939 section 3) after.
pub fn idle_timeout(cfg: &Config, logged_in: bool) -> Duration {
    Duration::from_secs(if logged_in {
        cfg.timeouts.pop3_idle_secs.max(limits::MIN_POP3_IDLE_SECS)
    } else {
        cfg.timeouts.preauth_secs
    })
}

impl Session {
    /// The inactivity timeout that applies now.
    pub fn idle_timeout(&self) -> Duration {
        idle_timeout(
            &self.shared.config(),
            matches!(self.state, State::Transaction { .. }),
        )
    }

    /// Reads the next line under the current state's timeout; before login, never past the
    /// login deadline.
    pub async fn read(&mut self, max: usize) -> Input {
        let mut idle = self.idle_timeout();
        if !matches!(self.state, State::Transaction { .. }) {
            idle = idle.min(
                self.login_deadline
                    .saturating_duration_since(tokio::time::Instant::now()),
            );
        }
        let shutdown = self.shared.shutdown.clone();
        let kick = self.conn.kick_token();
        tokio::select! {
            _ = kick.cancelled() => Input::Kicked,
            i = next_input(&mut self.conn, max, idle, &shutdown) => i,
        }
    }
}

/// Serves one POP3 connection to its end.
pub async fn run(conn: Conn, shared: Arc<Shared>, listener: ListenerConfig) {
    let shared_cfg = shared.config();
    let mut s = Session {
        conn,
        shared,
        listener,
        state: State::Authorization { user: None },
        auth_failures: 0,
        login_deadline: tokio::time::Instant::now() + idle_timeout(&shared_cfg, false),
        authenticated_as: None,
    };
    let cfg = s.shared.config();
    s.conn
        .set_write_timeout(Duration::from_secs(cfg.timeouts.pop3_idle_secs));
    s.conn.queue(b"+OK mailcove ready.\r\n");
    let mut bad = 0u32;
    loop {
        if !s.conn.buffered().contains(&b'\n') && s.conn.flush().await.is_err() {
            break;
        }
        // RFC 2449 section 4: 255 octets including the CRLF.
        let next = match s.read(limits::POP3_MAX_COMMAND_LINE - 2).await {
            Input::Line(line) => match crate::metrics::pop3_parsed(command::parse(&line)) {
                Ok(cmd) => {
                    s.conn.count_command();
                    if matches!(cmd, Command::Quit) {
                        s.conn.set_end(EndReason::Logout);
                    }
                    crate::metrics::pop3_command(cmd.name(), dispatch(&mut s, cmd)).await
                }
                Err(ParseError::Unknown) => Err(Pop3Error::UnknownCommand),
                Err(ParseError::BadArguments(why)) => Err(Pop3Error::BadArguments(why)),
            },
            Input::TooLong => Err(Pop3Error::LineTooLong),
            Input::Closed => break,
            Input::Idle => Err(Pop3Error::Autologout),
            Input::Shutdown => Err(Pop3Error::ShuttingDown),
            Input::Kicked => Err(Pop3Error::Kicked),
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => break,
            Err(mut e) => {
                if e.counts_as_bad() {
                    bad += 1;
                    if bad >= limits::MAX_BAD_COMMANDS {
                        e = Pop3Error::TooManyBadCommands;
                    }
                }
                answer_error(&mut s, &e);
                if e.closes() {
                    s.conn.set_end(match e {
                        Pop3Error::Autologout => EndReason::Timeout,
                        Pop3Error::ShuttingDown => EndReason::Shutdown,
                        Pop3Error::Kicked => EndReason::Kicked,
                        Pop3Error::Io => EndReason::Disconnect,
                        _ => EndReason::Closed,
                    });
                    break;
                }
            }
        }
    }
    // Without QUIT nothing is committed: dropping the maildrop releases its lock, which happens
    // before the final flush so a client reconnecting at once finds the mailbox free.
    s.state = State::Authorization { user: None };
    s.conn.close().await;
}

/// The one place a POP3 failure becomes its `-ERR` line (see [`Pop3Error`] for the wording).
/// Storage failures are answered with a fixed sentence that points at the server log, so this is
/// where their details are logged, with the user.
pub(super) fn answer_error(s: &mut Session, e: &Pop3Error) {
    match e {
        Pop3Error::Autologout => info!("autologout after inactivity"),
        Pop3Error::TooManyBadCommands => info!("too many invalid commands"),
        // Nothing is committed: the maildrop is dropped unapplied, as when the connection drops
        // (RFC 1939 section 6: only QUIT in TRANSACTION enters the UPDATE state).
        Pop3Error::Kicked => info!("disconnected by administrator"),
        Pop3Error::Storage(err) => {
            let user = s.authenticated_as.as_deref().unwrap_or("-");
            if matches!(err, StorageError::InUse) {
                info!(user, error = %err, "POP3 maildrop in use");
            } else {
                error!(user, error = %err, "POP3 storage failure");
            }
        }
        _ => {}
    }
    if !matches!(e, Pop3Error::Io) {
        s.conn.queue(e.line().as_bytes());
    }
}

async fn dispatch(s: &mut Session, cmd: Command) -> Result<Next, Pop3Error> {
    let logged_in = matches!(s.state, State::Transaction { .. });
    match cmd {
        Command::Capa => authorization::capa(s),
        Command::Apop => Err(Pop3Error::ApopNotSupported),
        Command::Quit if logged_in => transaction::quit(s).await,
        Command::Quit => {
            s.conn.queue(b"+OK Logging out.\r\n");
            Ok(Next::Close)
        }
        Command::Noop if logged_in => {
            s.conn.queue(b"+OK\r\n");
            Ok(Next::Continue)
        }
        Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth(..) if logged_in => {
            Err(Pop3Error::WrongState("already logged in"))
        }
        Command::Stls => authorization::stls(s).await,
        Command::User(name) => authorization::user(s, name),
        Command::Pass(pw) => authorization::pass(s, pw).await,
        Command::Auth(mech, ir) => authorization::auth(s, mech, ir).await,
        Command::Noop
        | Command::Stat
        | Command::List(_)
        | Command::Retr(_)
        | Command::Top(..)
        | Command::Uidl(_)
        | Command::Dele(_)
        | Command::Rset => {
            if logged_in {
                transaction::run(s, cmd).await
            } else {
                Err(Pop3Error::WrongState("not logged in yet"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conn::{ConnInfo, Stream};
    use tokio::io::AsyncWriteExt;

    async fn pair() -> (Conn, tokio::net::TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, peer) = l.accept().await.unwrap();
        let info = ConnInfo {
            id: 1,
            peer,
            local: addr,
            loopback: true,
            tls_by_proxy: false,
        };
        (Conn::new(Stream::Plain(server), info), client)
    }

    #[test]
    fn the_autologout_timer_is_never_below_ten_minutes() {
        let mut cfg = Config::default();
        cfg.timeouts.pop3_idle_secs = 5;
        cfg.timeouts.preauth_secs = 7;
        assert_eq!(idle_timeout(&cfg, true), Duration::from_secs(600));
        assert_eq!(idle_timeout(&cfg, false), Duration::from_secs(7));
        cfg.timeouts.pop3_idle_secs = 900;
        assert_eq!(idle_timeout(&cfg, true), Duration::from_secs(900));
    }

    // Virtual time: the runtime jumps its clock forward whenever every task waits, so ten idle
    // minutes pass instantly and the assertions are about the clock, not about scheduling.
    #[tokio::test(start_paused = true)]
    async fn an_idle_client_is_logged_out_after_the_timer_and_not_before() {
        let (mut conn, mut client) = pair().await;
        let shutdown = CancellationToken::new();
        let idle = Duration::from_secs(600);
        client.write_all(b"NOOP\r\n").await.unwrap();
        assert_eq!(
            next_input(&mut conn, 253, idle, &shutdown).await,
            Input::Line(b"NOOP".to_vec())
        );
        let start = tokio::time::Instant::now();
        assert_eq!(
            next_input(&mut conn, 253, idle, &shutdown).await,
            Input::Idle
        );
        let waited = start.elapsed();
        assert!(waited >= idle, "logged out after {waited:?}");
        assert!(waited < idle + Duration::from_secs(1), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_talking_is_not_logged_out() {
        let (mut conn, mut client) = pair().await;
        let shutdown = CancellationToken::new();
        let idle = Duration::from_secs(600);
        for _ in 0..5 {
            // Nine idle minutes, then a command: each read gets its own full timer.
            tokio::time::sleep(Duration::from_secs(540)).await;
            client.write_all(b"STAT\r\n").await.unwrap();
            assert_eq!(
                next_input(&mut conn, 253, idle, &shutdown).await,
                Input::Line(b"STAT".to_vec())
            );
        }
    }

    #[tokio::test]
    async fn shutdown_interrupts_a_waiting_read_and_long_lines_are_typed() {
        let (mut conn, mut client) = pair().await;
        let shutdown = CancellationToken::new();
        client
            .write_all(format!("{}\r\nNOOP\r\n", "x".repeat(254)).as_bytes())
            .await
            .unwrap();
        let idle = Duration::from_secs(600);
        assert_eq!(
            next_input(&mut conn, 253, idle, &shutdown).await,
            Input::TooLong
        );
        assert_eq!(
            next_input(&mut conn, 253, idle, &shutdown).await,
            Input::Line(b"NOOP".to_vec())
        );
        shutdown.cancel();
        assert_eq!(
            next_input(&mut conn, 253, idle, &shutdown).await,
            Input::Shutdown
        );
        drop(client);
    }
}
