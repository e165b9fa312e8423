//! A ManageSieve session: the non-authenticated and authenticated states of RFC 5804, reading
//! commands (lines and the literals between them) under bounded memory and a timeout, running
//! them through the command table and answering every failure in one place.
//!
//! - A literal may hold at most `[sieve] max_script_size` (at least
//!   [`limits::MANAGESIEVE_MAX_SMALL_LITERAL`]), a command's literals together that plus one
//!   line; a larger literal is read and thrown away (so its octets are never taken for commands) and
//!   answered `NO (QUOTA/MAXSIZE)`. One over [`limits::MANAGESIEVE_MAX_DISCARD`] ends the
//!   connection with BYE instead of being read.
//! - Before authentication the login timeout applies from the moment of connecting (a client
//!   cannot hold a slot by trickling bytes); after it the IMAP autologout timer, which is at
//!   least 30 minutes as RFC 5804 section 1.2 asks.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::parse::{self, Arg, Scan};
use super::response::SieveError;
use super::store::{ScriptStore, StoreError, validate_name};
use super::table::{self, Allowed};
use crate::config::ListenerConfig;
use crate::limits;
use crate::server::Shared;
use crate::server::conn::{Conn, Line};
use crate::server::login::{LoggedIn, printable};
use crate::server::sessions::EndReason;

/// Where the session is.
pub enum State {
    /// Before AUTHENTICATE (or after UNAUTHENTICATE).
    NonAuth,
    /// Logged in, with the user's scripts.
    Auth {
        /// Who, and their connection slot.
        login: Box<LoggedIn>,
        /// Their scripts.
        store: ScriptStore,
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
    /// When a client that has not logged in is disconnected (fixed at connect time).
    pub login_deadline: tokio::time::Instant,
}

/// What a handler wants to happen next.
pub enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection (after flushing).
    Close,
}

/// A command's arguments after its name, taken in order by the handler.
pub struct Args(std::vec::IntoIter<Arg>);

impl Args {
    /// Wraps parsed arguments.
    pub fn new(args: Vec<Arg>) -> Self {
        Args(args.into_iter())
    }

    /// The next argument, which must be a string (quoted or literal).
    pub fn string(&mut self, what: &'static str) -> Result<Vec<u8>, SieveError> {
        match self.0.next() {
            Some(Arg::String(s)) => Ok(s),
            _ => Err(SieveError::BadArguments(what)),
        }
    }

    /// The next argument if there is one, which must then be a string.
    pub fn opt_string(&mut self, what: &'static str) -> Result<Option<Vec<u8>>, SieveError> {
        match self.0.next() {
            None => Ok(None),
            Some(Arg::String(s)) => Ok(Some(s)),
            Some(_) => Err(SieveError::BadArguments(what)),
        }
    }

    /// The next argument as a UTF-8 string.
    pub fn text(&mut self, what: &'static str) -> Result<String, SieveError> {
        String::from_utf8(self.string(what)?).map_err(|_| SieveError::BadArguments(what))
    }

    /// The next argument as a valid script name (RFC 5804 section 1.6).
    pub fn name(&mut self) -> Result<String, SieveError> {
        let name = String::from_utf8(self.string("expected a script name")?)
            .map_err(|_| SieveError::BadName("not UTF-8"))?;
        validate_name(&name).map_err(SieveError::BadName)?;
        Ok(name)
    }

    /// The next argument, a number.
    pub fn number(&mut self, what: &'static str) -> Result<u32, SieveError> {
        match self.0.next() {
            Some(Arg::Number(n)) => Ok(n),
            _ => Err(SieveError::BadArguments(what)),
        }
    }

    /// No arguments may be left.
    pub fn finish(mut self) -> Result<(), SieveError> {
        match self.0.next() {
            None => Ok(()),
            Some(_) => Err(SieveError::BadArguments("too many arguments")),
        }
    }
}

/// What one read produced.
enum Input {
    /// A complete command (or SASL response) with its arguments.
    Command(Vec<Arg>),
    /// A command that was read to its end but is not valid.
    Bad(SieveError),
    /// The client closed the connection or the read failed.
    Closed,
    /// No complete command within the timeout.
    Idle,
    /// The daemon is shutting down.
    Shutdown,
    /// `mailcove kick`.
    Kicked,
}

/// Reads one command: its lines and the literals they announce.
async fn read_args(conn: &mut Conn, max_literal: usize) -> Result<Vec<Arg>, ReadEnd> {
    // All of a command's literals together: one script and the small strings around it.
    let budget = max_literal + limits::MANAGESIEVE_MAX_LINE;
    let mut args = Vec::new();
    let mut first = true;
    let mut spent = 0usize;
    // After an error the rest of the command (its literals) is still read, then thrown away.
    let mut failed: Option<SieveError> = None;
    loop {
        let line = match conn.read_line(limits::MANAGESIEVE_MAX_LINE).await? {
            Line::Eof => return Err(ReadEnd::Closed),
            // The line's end (and any literal it announced) is lost; answer and go on.
            Line::TooLong => return Err(ReadEnd::Bad(failed.unwrap_or(SieveError::LineTooLong))),
            Line::Complete(l) => l,
        };
        spent += line.len();
        let scan = if failed.is_some() {
            parse::trailing_literal(&line)
        } else {
            match parse::scan_line(&line, &mut args, !first) {
                Ok(scan) => scan,
                Err(e) => {
                    failed = Some(SieveError::Syntax(e));
                    parse::trailing_literal(&line)
                }
            }
        };
        first = false;
        let len = match scan {
            Scan::Done => {
                return match failed {
                    Some(e) => Err(ReadEnd::Bad(e)),
                    None => Ok(args),
                };
            }
            Scan::Literal(len) => len,
        };
        if len > limits::MANAGESIEVE_MAX_DISCARD {
            return Err(ReadEnd::Bad(SieveError::LiteralFatal));
        }
        let len = len as usize;
        if failed.is_some() || len > max_literal || spent.saturating_add(len) > budget {
            discard(conn, len).await?;
            failed.get_or_insert(SieveError::LiteralTooLarge);
            continue;
        }
        spent += len;
        args.push(Arg::String(read_exact(conn, len).await?));
    }
}

/// How [`read_args`] ended without a command.
enum ReadEnd {
    Closed,
    Bad(SieveError),
}

impl From<std::io::Error> for ReadEnd {
    fn from(_: std::io::Error) -> Self {
        ReadEnd::Closed
    }
}

/// Reads exactly `n` octets.
async fn read_exact(conn: &mut Conn, n: usize) -> Result<Vec<u8>, ReadEnd> {
    let mut out = Vec::with_capacity(n.min(64 * 1024));
    while out.len() < n {
        if conn.buffered().is_empty() && conn.fill(n - out.len()).await? == 0 {
            return Err(ReadEnd::Closed);
        }
        let take = conn.buffered().len().min(n - out.len());
        out.extend_from_slice(&conn.buffered()[..take]);
        conn.consume(take);
    }
    Ok(out)
}

/// Reads and drops `n` octets.
async fn discard(conn: &mut Conn, mut n: usize) -> Result<(), ReadEnd> {
    while n > 0 {
        if conn.buffered().is_empty() && conn.fill(n.min(64 * 1024)).await? == 0 {
            return Err(ReadEnd::Closed);
        }
        let take = conn.buffered().len().min(n);
        conn.consume(take);
        n -= take;
    }
    Ok(())
}

impl Session {
    /// True once logged in.
    pub fn authenticated(&self) -> bool {
        matches!(self.state, State::Auth { .. })
    }

    /// The logged-in user's scripts.
    pub fn store(&self) -> Result<ScriptStore, SieveError> {
        match &self.state {
            State::Auth { store, .. } => Ok(store.clone()),
            State::NonAuth => Err(SieveError::WrongState("Authenticate first.")),
        }
    }

    /// The logged-in user's name (`-` before login), for logs.
    pub fn user(&self) -> &str {
        match &self.state {
            State::Auth { login, .. } => &login.user.name,
            State::NonAuth => "-",
        }
    }

    fn idle_timeout(&self) -> Duration {
        let cfg = self.shared.config();
        if self.authenticated() {
            Duration::from_secs(cfg.timeouts.imap_idle_secs)
        } else {
            Duration::from_secs(cfg.timeouts.preauth_secs).min(
                self.login_deadline
                    .saturating_duration_since(tokio::time::Instant::now()),
            )
        }
    }

    /// Reads one command (or one SASL response) under the state's timeout.
    async fn read(&mut self) -> Input {
        let idle = self.idle_timeout();
        let max_literal = self
            .shared
            .config()
            .sieve
            .max_script_size
            .max(limits::MANAGESIEVE_MAX_SMALL_LITERAL);
        let shutdown = self.shared.shutdown.clone();
        let kick = self.conn.kick_token();
        tokio::select! {
            _ = shutdown.cancelled() => Input::Shutdown,
            _ = kick.cancelled() => Input::Kicked,
            r = tokio::time::timeout(idle, read_args(&mut self.conn, max_literal)) => match r {
                Err(_) => Input::Idle,
                Ok(Ok(args)) => Input::Command(args),
                Ok(Err(ReadEnd::Closed)) => Input::Closed,
                Ok(Err(ReadEnd::Bad(e))) => Input::Bad(e),
            },
        }
    }

    /// Reads a SASL client response (RFC 5804 section 2.1): one string on its own line. A bare
    /// base64 word is taken too, as Dovecot does.
    pub async fn read_sasl_response(&mut self) -> Result<Vec<u8>, SieveError> {
        match self.read().await {
            Input::Command(args) => match <[Arg; 1]>::try_from(args) {
                Ok([Arg::String(s)]) => Ok(s),
                Ok([Arg::Atom(a)]) => Ok(a.into_bytes()),
                _ => Err(SieveError::BadSasl),
            },
            Input::Bad(SieveError::LiteralFatal) => Err(SieveError::LiteralFatal),
            Input::Bad(_) => Err(SieveError::BadSasl),
            Input::Closed => Err(SieveError::Io),
            Input::Idle => Err(SieveError::Autologout),
            Input::Shutdown => Err(SieveError::ShuttingDown),
            Input::Kicked => Err(SieveError::Kicked),
        }
    }

    /// Runs a blocking storage operation on the user's scripts off the async threads.
    pub async fn with_store<T: Send + 'static>(
        &self,
        what: &'static str,
        op: impl FnOnce(&ScriptStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SieveError> {
        let store = self.store()?;
        let res = tokio::task::spawn_blocking(move || op(&store))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Io(
                    "storage task",
                    std::io::Error::other(e.to_string()),
                ))
            });
        res.map_err(|e| match e {
            StoreError::NonExistent => SieveError::NonExistent,
            StoreError::AlreadyExists => SieveError::AlreadyExists,
            StoreError::Active => SieveError::Active,
            StoreError::QuotaMaxSize(n) => SieveError::QuotaMaxSize(n),
            StoreError::QuotaMaxScripts(n) => SieveError::QuotaMaxScripts(n),
            StoreError::ActiveNotLink => {
                info!(user = %self.user(), what, "the active script path is not a symlink; left alone");
                SieveError::ActiveNotLink
            }
            StoreError::Io(..) => {
                error!(user = %self.user(), what, error = %e, "ManageSieve storage failure");
                SieveError::Internal
            }
        })
    }
}

/// Serves one ManageSieve connection to its end.
pub async fn run(conn: Conn, shared: Arc<Shared>, listener: ListenerConfig) {
    let cfg = shared.config();
    let mut s = Session {
        conn,
        shared,
        listener,
        state: State::NonAuth,
        auth_failures: 0,
        login_deadline: tokio::time::Instant::now()
            + Duration::from_secs(cfg.timeouts.preauth_secs),
    };
    s.conn
        .set_write_timeout(Duration::from_secs(cfg.timeouts.imap_idle_secs));
    // RFC 5804 section 1.7: the greeting is the capability listing and OK.
    super::cmd::capability::write(&mut s);
    super::response::push_response(
        s.conn.out(),
        super::response::Status::Ok,
        None,
        "mailcove ManageSieve ready.",
    );
    let mut bad = 0u32;
    loop {
        if !s.conn.buffered().contains(&b'\n') && s.conn.flush().await.is_err() {
            break;
        }
        let next = match s.read().await {
            Input::Command(args) => dispatch(&mut s, args).await,
            Input::Bad(e) => Err(e),
            Input::Closed => break,
            Input::Idle => Err(SieveError::Autologout),
            Input::Shutdown => Err(SieveError::ShuttingDown),
            Input::Kicked => Err(SieveError::Kicked),
        };
        match next {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => break,
            Err(mut e) => {
                if e.counts_as_bad() {
                    bad += 1;
                    if bad >= limits::MAX_BAD_COMMANDS {
                        e = SieveError::TooManyBadCommands;
                    }
                }
                match &e {
                    SieveError::Autologout => info!("autologout after inactivity"),
                    SieveError::TooManyBadCommands => info!("too many invalid commands"),
                    SieveError::Kicked => info!("disconnected by administrator"),
                    _ => {}
                }
                e.write(s.conn.out());
                if e.closes() {
                    s.conn.set_end(match e {
                        SieveError::Autologout => EndReason::Timeout,
                        SieveError::ShuttingDown => EndReason::Shutdown,
                        SieveError::Kicked => EndReason::Kicked,
                        SieveError::Io => EndReason::Disconnect,
                        _ => EndReason::Closed,
                    });
                    break;
                }
            }
        }
    }
    s.state = State::NonAuth;
    s.conn.close().await;
}

/// Looks the command up in the table, checks its state and runs it.
async fn dispatch(s: &mut Session, args: Vec<Arg>) -> Result<Next, SieveError> {
    let mut it = args.into_iter();
    let Some(Arg::Atom(name)) = it.next() else {
        return Err(SieveError::UnknownCommand);
    };
    let Some(row) = table::lookup(&name) else {
        info!(command = %printable(&name), "unknown ManageSieve command");
        return Err(SieveError::UnknownCommand);
    };
    match (row.allowed, s.authenticated()) {
        (Allowed::Auth, false) => return Err(SieveError::WrongState("Authenticate first.")),
        (Allowed::NonAuth, true) => return Err(SieveError::WrongState("Already authenticated.")),
        _ => {}
    }
    s.conn.count_command();
    if row.name == "LOGOUT" {
        s.conn.set_end(EndReason::Logout);
    }
    let args = Args::new(it.collect());
    crate::metrics::managesieve_command(row.name, super::cmd::run(s, row.cmd, args)).await
}
