//! One IMAP connection: framing commands out of the byte stream with the protocol receiver,
//! checking each against the session state, running it, and writing its responses.
//!
//! Responses are queued and flushed only when no further complete command is buffered, so
//! pipelined commands are answered in order and in few packets.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info};

use super::cmd;
use super::names::NameForm;
use super::proto::encode::{self, Code, Status};
use super::proto::receive::{Framed, Receiver, ReceiverLimits};
use super::proto::types::Tag;
use super::response::ImapError;
use super::selected::Selected;
use crate::config::{ListenerConfig, TlsMode};
use crate::limits;
use crate::server::Shared;
use crate::server::conn::Conn;
use crate::server::login::LoggedIn;
use crate::server::sessions::EndReason;
use crate::storage::UserStore;

/// What a session ended by `mailcove kick` reads before the connection closes. Dovecot 2.3's
/// `doveadm kick` signals the process, so its clients read `* BYE Server shutting down.`; the
/// server is not shutting down here, and saying so would make a client developer look for the
/// wrong cause.
pub const KICKED_BYE: &str = "BYE Disconnected by administrator.";

/// A logged-in user: the login slot and the user's mail.
pub struct UserCtx {
    /// Who, and the connection slot they hold.
    pub login: LoggedIn,
    /// The user's mailboxes.
    pub store: Arc<dyn UserStore>,
}

/// The session's state (RFC 3501 section 3).
pub enum State {
    /// Before LOGIN/AUTHENTICATE.
    NotAuthenticated,
    /// Logged in, no mailbox selected.
    Authenticated(Box<UserCtx>),
    /// Logged in with a mailbox selected.
    Selected(Box<UserCtx>, Box<Selected>),
    /// LOGOUT done; the connection closes.
    Logout,
}

/// Everything a command handler may touch.
pub struct Session {
    /// The client.
    pub conn: Conn,
    /// Daemon state.
    pub shared: Arc<Shared>,
    /// The listener the client came in on.
    pub listener: ListenerConfig,
    /// Current state.
    pub state: State,
    /// Frames commands out of the input.
    pub receiver: Receiver,
    /// Failed logins on this connection.
    pub auth_failures: u32,
    /// When a client that has not logged in yet is disconnected. Fixed at connect time rather
    /// than renewed by every read, so a slow-loris client trickling a byte at a time cannot hold
    /// a pre-login slot (and its buffer) longer than `timeouts.preauth_secs`.
    pub login_deadline: tokio::time::Instant,
    /// The APPEND message literal announced with the command being run (set only while
    /// [`Framed::Stream`]'s command runs); the APPEND handler takes it and streams the data.
    pub literal_in: Option<LiteralIn>,
    /// Extensions the client enabled.
    pub enabled: Enabled,
    /// What NOTIFY (RFC 5465) asked to be told; `None` before NOTIFY SET and after NOTIFY NONE.
    pub notify: Option<Box<super::notify::NotifyState>>,
    limits: ReceiverLimits,
}

/// Extensions this connection turned on (RFC 5161 ENABLE and RFC 7162's CONDSTORE enabling
/// commands). Once on, they stay on until the connection closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    /// CONDSTORE: HIGHESTMODSEQ on SELECT, MODSEQ (and UID) in every unsolicited FETCH.
    pub condstore: bool,
    /// QRESYNC (implies CONDSTORE): VANISHED instead of EXPUNGE, SELECT (QRESYNC ...).
    pub qresync: bool,
    /// UTF8=ACCEPT (RFC 6855): mailbox names travel as UTF-8, `APPEND ... UTF8 (literal)` is
    /// accepted, and messages with raw UTF-8 headers are sent as stored.
    pub utf8_accept: bool,
    /// IMAP4rev2 (RFC 9051, `ENABLE IMAP4rev2`): no RECENT responses and no `\Recent`, SEARCH
    /// answered with ESEARCH, an untagged LIST on SELECT, UTF-8 mailbox names and headers
    /// (docs/imap4rev2.md). Without it the session is served as RFC 3501 says.
    pub imap4rev2: bool,
}

/// A streamed literal waiting for its handler (see [`Session::literal_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralIn {
    /// Announced size.
    pub len: u64,
    /// The client waits for `+` before it sends the data.
    pub synchronizing: bool,
}

impl Session {
    /// True when STARTTLS may be used now.
    pub fn starttls_possible(&self) -> bool {
        self.listener.tls == TlsMode::Starttls
            && !self.conn.is_tls()
            && matches!(self.state, State::NotAuthenticated)
            && self.shared.tls.current().is_some()
    }

    /// Forgets any partial command state after the byte stream changed under the receiver
    /// (STARTTLS discards buffered input).
    pub fn reset_receiver(&mut self) {
        self.receiver = Receiver::streaming(self.limits);
    }

    /// Reads one bare line (a SASL response, IDLE's DONE) of at most `max` bytes. `Ok(None)` on
    /// EOF; `Ok(Some(None))` when the line was too long (it is discarded).
    pub async fn read_line(&mut self, max: usize) -> std::io::Result<Option<Option<Vec<u8>>>> {
        use super::proto::receive::LineFramed;
        loop {
            match self.receiver.poll_line(self.conn.buffered(), max) {
                LineFramed::Line { consumed, line_len } => {
                    let line = self.conn.buffered()[..line_len].to_vec();
                    self.conn.consume(consumed);
                    return Ok(Some(Some(line)));
                }
                LineFramed::TooLong { consumed } => {
                    self.conn.consume(consumed);
                    return Ok(Some(None));
                }
                LineFramed::Incomplete => {
                    self.conn.flush().await?;
                    let deadline = match self.state {
                        State::NotAuthenticated => self.login_deadline,
                        _ => {
                            tokio::time::Instant::now()
                                + Duration::from_secs(self.shared.config().timeouts.preauth_secs)
                        }
                    };
                    match tokio::time::timeout_at(deadline, self.conn.fill(max + 2)).await {
                        Ok(Ok(0)) => return Ok(None),
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                    }
                }
            }
        }
    }

    /// The logged-in user's mail.
    pub fn store(&self) -> Result<Arc<dyn UserStore>, ImapError> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Ok(u.store.clone()),
            _ => Err(ImapError::WrongState("log in first")),
        }
    }

    /// The selected mailbox.
    pub fn selected(&self) -> Result<&Selected, ImapError> {
        match &self.state {
            State::Selected(_, sel) => Ok(sel),
            _ => Err(ImapError::WrongState("no mailbox is selected")),
        }
    }

    /// The selected mailbox, mutably.
    pub fn selected_mut(&mut self) -> Result<&mut Selected, ImapError> {
        match &mut self.state {
            State::Selected(_, sel) => Ok(sel),
            _ => Err(ImapError::WrongState("no mailbox is selected")),
        }
    }

    /// The selected mailbox and the output buffer, for handlers that stream responses.
    pub fn selected_and_conn(&mut self) -> Result<(&mut Selected, &mut Conn), ImapError> {
        match &mut self.state {
            State::Selected(_, sel) => Ok((sel, &mut self.conn)),
            _ => Err(ImapError::WrongState("no mailbox is selected")),
        }
    }

    /// Leaves the selected state (CLOSE, UNSELECT, a failed SELECT); returns the old selection.
    pub fn unselect(&mut self) -> Option<Box<Selected>> {
        match std::mem::replace(&mut self.state, State::Logout) {
            State::Selected(user, sel) => {
                self.state = State::Authenticated(user);
                if let Some(live) = &self.conn.live {
                    live.set_mailbox(None);
                }
                Some(sel)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Selects `sel` (replacing any selection).
    pub fn select(&mut self, sel: Selected) {
        match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(user) | State::Selected(user, _) => {
                if let Some(live) = &self.conn.live {
                    live.set_mailbox(Some(&sel.name));
                }
                self.state = State::Selected(user, Box::new(sel));
            }
            other => self.state = other,
        }
    }

    /// How this client writes mailbox names: UTF-8 once it enabled UTF8=ACCEPT (RFC 6855 3),
    /// modified UTF-7 until then.
    pub fn name_form(&self) -> NameForm {
        // RFC 9051 5.1: IMAP4rev2 mailbox names are UTF-8.
        if self.enabled.utf8_accept || self.enabled.imap4rev2 {
            NameForm::Utf8
        } else {
            NameForm::ModifiedUtf7
        }
    }

    /// Runs a CONDSTORE enabling command's side effect (RFC 7162 3.1): the first one tells the
    /// HIGHESTMODSEQ of the mailbox selected now, if any.
    pub fn enable_condstore(&mut self) {
        if self.enabled.condstore {
            return;
        }
        self.enabled.condstore = true;
        if let State::Selected(_, sel) = &self.state {
            let code = Code::HighestModSeq(sel.view.highest_modseq());
            encode::untagged(self.conn.out(), Status::Ok, Some(&code), "Highest");
        }
    }

    /// Brings the selected mailbox up to date and queues what changed (EXPUNGE, EXISTS, RECENT,
    /// FETCH FLAGS). Call only where RFC 3501 7.4.1 allows EXPUNGE responses.
    pub async fn refresh(&mut self) -> Result<(), ImapError> {
        let State::Selected(_, sel) = &mut self.state else {
            return Ok(());
        };
        let delta = sel.view.refresh().await?;
        if delta.uidvalidity_changed {
            // The mailbox was replaced under us: the client's cache is invalid. As Dovecot, end the
            // session so the client resynchronises from scratch.
            self.untagged("BYE Mailbox UIDVALIDITY changed, reconnect.");
            self.conn.set_end(EndReason::Closed);
            self.state = State::Logout;
            return Ok(());
        }
        if !delta.is_empty() {
            sel.write_changes(self.conn.out(), &delta, self.enabled)
                .await;
        }
        Ok(())
    }

    /// Queues `tag OK [code] text`.
    pub fn ok(&mut self, tag: &Tag, code: Option<&Code>, text: &str) {
        encode::tagged(self.conn.out(), tag, Status::Ok, code, text);
    }

    /// Queues an untagged line `* text`.
    pub fn untagged(&mut self, text: &str) {
        let out = self.conn.out();
        out.extend_from_slice(b"* ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Serves one IMAP connection to its end.
pub async fn run(conn: Conn, shared: Arc<Shared>, listener: ListenerConfig) {
    let cfg = shared.config();
    let limits = ReceiverLimits {
        max_line: cfg.limits.max_command_line,
        max_literal: cfg.limits.max_message_size,
        literal_plus: true,
    };
    // APPEND literals stream through in chunks; other literals count against the line limit.
    let max_buffer = 2 * cfg.limits.max_command_line + limits::INCOMING_MESSAGE_CHUNK;
    let mut s = Session {
        conn,
        shared,
        listener,
        state: State::NotAuthenticated,
        receiver: Receiver::streaming(limits),
        auth_failures: 0,
        login_deadline: tokio::time::Instant::now()
            + Duration::from_secs(cfg.timeouts.preauth_secs),
        literal_in: None,
        enabled: Enabled::default(),
        notify: None,
        limits,
    };
    s.conn
        .set_write_timeout(Duration::from_secs(cfg.timeouts.imap_idle_secs));
    let caps = super::capability::before_login(&s.shared, &s.conn, s.starttls_possible());
    s.untagged(&format!("OK [CAPABILITY {caps}] mailcove ready."));
    let mut bad = 0u32;
    'session: loop {
        let framed = s.receiver.poll(s.conn.buffered());
        match framed {
            Framed::Incomplete => {
                if s.conn.flush().await.is_err() {
                    break;
                }
                let cfg = s.shared.config();
                let deadline = match s.state {
                    State::NotAuthenticated => s.login_deadline,
                    _ => {
                        tokio::time::Instant::now()
                            + Duration::from_secs(cfg.timeouts.imap_idle_secs)
                    }
                };
                let kick = s.conn.kick_token();
                let read = tokio::select! {
                    _ = s.shared.shutdown.cancelled() => {
                        s.untagged("BYE Server shutting down.");
                        s.conn.set_end(EndReason::Shutdown);
                        break 'session;
                    }
                    _ = kick.cancelled() => {
                        s.untagged(KICKED_BYE);
                        info!("disconnected by administrator");
                        break 'session;
                    }
                    // NOTIFY: events are told between commands as they happen.
                    w = super::notify::wait(&mut s.notify, &mut s.state, true) => {
                        super::notify::woke(&mut s, w).await;
                        if matches!(s.state, State::Logout) {
                            break 'session;
                        }
                        continue 'session;
                    }
                    r = tokio::time::timeout_at(deadline, s.conn.fill(max_buffer)) => r,
                };
                match read {
                    Err(_) => {
                        s.untagged("BYE Disconnected for inactivity.");
                        info!("autologout after inactivity");
                        s.conn.set_end(EndReason::Timeout);
                        break;
                    }
                    Ok(Ok(0)) => break,
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        debug!(error = %e, "read failed");
                        break;
                    }
                }
            }
            Framed::Continue { .. } => {
                // RFC 3501 7.5: the literal was accepted; ask for its data.
                if s.conn.send(b"+ Ready for literal data\r\n").await.is_err() {
                    break;
                }
            }
            Framed::Skip { consumed } => s.conn.consume(consumed),
            Framed::Error { consumed, error } => {
                s.conn.consume(consumed);
                s.conn.count_command();
                let e = ImapError::from(&error);
                crate::metrics::imap_rejected(&e);
                e.write(s.conn.out(), error.tag());
                if e.counts_as_bad() {
                    bad += 1;
                }
            }
            Framed::Stream {
                consumed,
                head,
                literal_len,
                synchronizing,
            } => {
                s.conn.consume(consumed);
                s.conn.count_command();
                match head {
                    Ok(command) => {
                        s.literal_in = Some(LiteralIn {
                            len: literal_len,
                            synchronizing,
                        });
                        let outcome = cmd::run(&mut s, command).await;
                        // Refused before the handler took it (wrong state, for one).
                        if s.literal_in.take().is_some() {
                            s.receiver.refuse_literal(synchronizing);
                        }
                        match outcome {
                            cmd::Outcome::Continue => {}
                            cmd::Outcome::Bad => bad += 1,
                            cmd::Outcome::Close => break,
                        }
                    }
                    Err(e) => {
                        s.receiver.refuse_literal(synchronizing);
                        bad += 1;
                        crate::metrics::imap_rejected(&ImapError::from(&e));
                        ImapError::from(&e).write(s.conn.out(), e.tag.as_ref());
                    }
                }
            }
            // Only the APPEND handler takes literal data; none should reach here, but if it
            // does it is dropped rather than read as commands.
            Framed::LiteralData { available, .. } => {
                s.receiver.take_literal(available);
                s.conn.consume(available);
            }
            Framed::StreamEnd { consumed, .. } => s.conn.consume(consumed),
            Framed::Command { consumed, result } => {
                s.conn.consume(consumed);
                s.conn.count_command();
                match result {
                    Ok(command) => match cmd::run(&mut s, command).await {
                        cmd::Outcome::Continue => {}
                        cmd::Outcome::Bad => bad += 1,
                        cmd::Outcome::Close => break,
                    },
                    Err(e) => {
                        let err = ImapError::from(&e);
                        crate::metrics::imap_rejected(&err);
                        err.write(s.conn.out(), e.tag.as_ref());
                        if err.counts_as_bad() {
                            bad += 1;
                        }
                    }
                }
            }
        }
        if bad >= limits::MAX_BAD_COMMANDS {
            s.untagged("BYE Too many invalid commands.");
            s.conn.set_end(EndReason::Closed);
            break;
        }
        if matches!(s.state, State::Logout) {
            break;
        }
    }
    s.conn.close().await;
}
