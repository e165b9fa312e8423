//! The live-session registry: one entry per IMAP or POP3 connection, for `mailcove who` and
//! `mailcove kick` over the control socket, and the one log line written when a session ends.
//!
//! - An entry is created when the connection is admitted and removed by the [`Registration`]
//!   guard when it ends, so no path can leak one. Its size is bounded by the connection limits
//!   (`limits.max_connections`): nothing here grows per command.
//! - The connection ([`crate::server::conn::Conn`]) holds the same [`Live`] and updates it: bytes
//!   in and out, commands, TLS, the user after login and the selected mailbox (IMAP). Counters are
//!   plain atomics, written without a lock.
//! - Kicking cancels the entry's token. Sessions select on it wherever they wait for the client
//!   (between commands, in IDLE, in a SASL exchange), so a kick takes effect while the session is
//!   idle, and for a session busy with a command at the next point it reads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Protocol;

/// Why a session ended, for the session-end log line. The first reason set wins, so a kicked
/// session whose socket then fails still reads `kicked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndReason {
    /// LOGOUT (IMAP) or QUIT (POP3).
    Logout,
    /// `mailcove kick`.
    Kicked,
    /// The inactivity or login timeout.
    Timeout,
    /// The client closed the connection or it broke.
    Disconnect,
    /// The daemon is stopping.
    Shutdown,
    /// The server closed it for a protocol reason (too many bad commands or failed logins, a
    /// mailbox replaced under the session).
    Closed,
}

impl EndReason {
    /// The word in the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Kicked => "kicked",
            EndReason::Timeout => "timeout",
            EndReason::Disconnect => "disconnect",
            EndReason::Shutdown => "shutdown",
            EndReason::Closed => "closed",
        }
    }
}

/// One live session, shared by its connection and the registry.
#[derive(Debug)]
pub struct Live {
    /// The connection number (the `id` of the log span).
    pub id: u64,
    /// IMAP or POP3.
    pub protocol: Protocol,
    /// The client's address.
    pub remote: SocketAddr,
    /// Our address (the listener it came in on).
    pub local: SocketAddr,
    connected_at: SystemTime,
    started: Instant,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    commands: AtomicU64,
    tls: AtomicBool,
    user: Mutex<Option<String>>,
    mailbox: Mutex<Option<String>>,
    end: OnceLock<EndReason>,
    kick: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// A session just accepted.
    pub fn new(id: u64, protocol: Protocol, remote: SocketAddr, local: SocketAddr) -> Self {
        Live {
            id,
            protocol,
            remote,
            local,
            connected_at: SystemTime::now(),
            started: Instant::now(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            tls: AtomicBool::new(false),
            user: Mutex::new(None),
            mailbox: Mutex::new(None),
            end: OnceLock::new(),
            kick: CancellationToken::new(),
        }
    }

    /// Counts bytes received from the client.
    pub fn add_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes sent to the client.
    pub fn add_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts one client command.
    pub fn add_command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that TLS is active.
    pub fn set_tls(&self) {
        self.tls.store(true, Ordering::Relaxed);
    }

    /// Records the logged-in user.
    pub fn set_user(&self, user: &str) {
        *lock(&self.user) = Some(user.to_string());
    }

    /// Records the selected mailbox (None after CLOSE/UNSELECT).
    pub fn set_mailbox(&self, mailbox: Option<&str>) {
        *lock(&self.mailbox) = mailbox.map(str::to_string);
    }

    /// Records why the session ends, unless a reason was already recorded.
    pub fn set_end(&self, reason: EndReason) {
        let _ = self.end.set(reason);
    }

    /// The token cancelled by `mailcove kick`; sessions select on it while they wait for input.
    pub fn kick_token(&self) -> CancellationToken {
        self.kick.clone()
    }

    /// Asks the session to end.
    pub fn kick(&self) {
        self.set_end(EndReason::Kicked);
        self.kick.cancel();
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<String> {
        lock(&self.user).clone()
    }

    /// What `who` shows of this session.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id,
            protocol: self.protocol.to_string(),
            user: self.user(),
            remote: self.remote.to_string(),
            local: self.local.to_string(),
            tls: self.tls.load(Ordering::Relaxed),
            connected_at: self
                .connected_at
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            duration_secs: self.started.elapsed().as_secs(),
            mailbox: lock(&self.mailbox).clone(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
        }
    }

    /// Writes the session-end line: who, from where, how long, how much, and why it ended. The
    /// fields are tracing fields, so the text and the JSON log formats both carry them.
    pub fn log_end(&self) {
        let i = self.info();
        let reason = self.end.get().copied().unwrap_or(EndReason::Disconnect);
        let duration = self.started.elapsed();
        info!(
            user = %i.user.as_deref().unwrap_or("-"),
            remote = %i.remote,
            protocol = %i.protocol,
            duration_ms = duration.as_millis() as u64,
            bytes_in = i.bytes_in,
            bytes_out = i.bytes_out,
            commands = i.commands,
            reason = %reason.as_str(),
            "session ended"
        );
    }
}

/// One row of `mailcove who` (also its JSON form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Connection number, as in the log lines.
    pub id: u64,
    /// `imap` or `pop3`.
    pub protocol: String,
    /// The logged-in user; None before login.
    pub user: Option<String>,
    /// Client address and port.
    pub remote: String,
    /// Our address and port.
    pub local: String,
    /// TLS active (implicit, STARTTLS or STLS).
    pub tls: bool,
    /// When the client connected, seconds since the Unix epoch.
    pub connected_at: u64,
    /// Seconds since the client connected.
    pub duration_secs: u64,
    /// The selected mailbox (IMAP).
    pub mailbox: Option<String>,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Commands received.
    pub commands: u64,
}

/// All live sessions.
#[derive(Default, Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<u64, Arc<Live>>>>,
}

/// Keeps a session in the registry; dropping it removes the session.
pub struct Registration {
    sessions: Sessions,
    live: Arc<Live>,
}

impl Registration {
    /// The registered session.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.sessions.inner).remove(&self.live.id);
    }
}

impl Sessions {
    /// Adds a session; it stays listed until the returned guard is dropped.
    pub fn register(&self, live: Live) -> Registration {
        let live = Arc::new(live);
        lock(&self.inner).insert(live.id, live.clone());
        Registration {
            sessions: self.clone(),
            live,
        }
    }

    /// Every live session, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let all: Vec<Arc<Live>> = lock(&self.inner).values().cloned().collect();
        let mut out: Vec<SessionInfo> = all.iter().map(|l| l.info()).collect();
        out.sort_by_key(|s| s.id);
        out
    }

    /// Kicks every session of `user` (exact name as logged in, ASCII case-insensitive as the
    /// login slot tracker counts users), of `protocol` only when given. Returns how many.
    pub fn kick(&self, user: &str, protocol: Option<Protocol>) -> usize {
        let all: Vec<Arc<Live>> = lock(&self.inner).values().cloned().collect();
        let mut n = 0;
        for l in all {
            let matches_user = l.user().is_some_and(|u| u.eq_ignore_ascii_case(user));
            let matches_proto = protocol.is_none_or(|p| p == l.protocol);
            if matches_user && matches_proto {
                l.kick();
                n += 1;
            }
        }
        n
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        lock(&self.inner).len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(id: u64, protocol: Protocol, user: Option<&str>) -> Live {
        let l = Live::new(
            id,
            protocol,
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.9:143".parse().unwrap(),
        );
        if let Some(u) = user {
            l.set_user(u);
        }
        l
    }

    #[test]
    fn registration_lists_and_removes_on_drop() {
        let s = Sessions::default();
        let a = s.register(live(2, Protocol::Imap, Some("demo")));
        let b = s.register(live(1, Protocol::Pop3, None));
        a.live().add_in(10);
        a.live().add_out(20);
        a.live().add_command();
        a.live().set_mailbox(Some("INBOX"));
        let list = s.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, 1);
        assert_eq!(list[0].user, None);
        assert_eq!(list[1].user.as_deref(), Some("demo"));
        assert_eq!(list[1].protocol, "imap");
        assert_eq!(
            (list[1].bytes_in, list[1].bytes_out, list[1].commands),
            (10, 20, 1)
        );
        assert_eq!(list[1].mailbox.as_deref(), Some("INBOX"));
        drop(a);
        assert_eq!(s.len(), 1);
        drop(b);
        assert!(s.is_empty());
    }

    #[test]
    fn kick_matches_user_and_protocol() {
        let s = Sessions::default();
        let imap = s.register(live(1, Protocol::Imap, Some("Demo")));
        let pop = s.register(live(2, Protocol::Pop3, Some("demo")));
        let other = s.register(live(3, Protocol::Imap, Some("alice")));
        let anon = s.register(live(4, Protocol::Imap, None));
        assert_eq!(s.kick("nobody", None), 0);
        assert_eq!(s.kick("demo", Some(Protocol::Pop3)), 1);
        assert!(pop.live().kick_token().is_cancelled());
        assert!(!imap.live().kick_token().is_cancelled());
        assert_eq!(s.kick("DEMO", None), 2);
        assert!(imap.live().kick_token().is_cancelled());
        assert!(!other.live().kick_token().is_cancelled());
        assert!(!anon.live().kick_token().is_cancelled());
    }

    #[test]
    fn the_first_end_reason_wins() {
        let l = live(1, Protocol::Imap, None);
        l.kick();
        l.set_end(EndReason::Disconnect);
        assert_eq!(l.end.get(), Some(&EndReason::Kicked));
    }
}
