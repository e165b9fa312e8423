//! The daemon: listeners, connection admission, TLS, and handing each connection to its protocol
//! session. Shutdown is a token passed in, so tests and the signal handler stop it the same way.

pub mod alloc;
pub mod conn;
pub mod control;
pub mod daemon;
pub mod deflate;
pub mod login;
pub mod privdrop;
pub mod proxy;
pub mod scram;
pub mod sessions;
pub mod tls;
pub mod tracker;
pub mod unix;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::auth::Authenticator;
use crate::config::{Config, ListenerConfig, Protocol, TlsMode};
use crate::storage::Storage;
use conn::{Conn, ConnInfo, Stream};
use tls::TlsHolder;
use tracker::{Refusal, Tracker};

/// State every session shares.
pub struct Shared {
    config: RwLock<Arc<Config>>,
    /// The file the config came from, re-read on SIGHUP.
    pub config_path: PathBuf,
    /// The TLS acceptor in force.
    pub tls: TlsHolder,
    /// Users and passwords.
    pub auth: Arc<Authenticator>,
    /// Mail storage.
    pub storage: Arc<dyn Storage>,
    /// Connection counts.
    pub tracker: Tracker,
    /// Cancelled when the daemon stops; sessions say BYE.
    pub shutdown: CancellationToken,
    next_id: AtomicU64,
    /// Live IMAP and POP3 sessions, for `mailcove who` and `kick`.
    pub sessions: sessions::Sessions,
    /// OAUTHBEARER/XOAUTH2 token validation for the `[auth.oauth2]` in force (its cached JWKS).
    pub oauth: crate::auth::oauth::OauthService,
}

impl Shared {
    /// Bundles the daemon's shared state.
    pub fn new(
        config: Config,
        config_path: PathBuf,
        tls: TlsHolder,
        auth: Arc<Authenticator>,
        storage: Arc<dyn Storage>,
    ) -> Self {
        Shared {
            config: RwLock::new(Arc::new(config)),
            config_path,
            tls,
            auth,
            storage,
            tracker: Tracker::default(),
            shutdown: CancellationToken::new(),
            next_id: AtomicU64::new(1),
            sessions: sessions::Sessions::default(),
            oauth: crate::auth::oauth::OauthService::default(),
        }
    }

    /// The configuration in force now (a reload swaps it for new connections and commands).
    pub fn config(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts a reloaded configuration in force.
    pub fn set_config(&self, config: Config) {
        match self.config.write() {
            Ok(mut g) => *g = Arc::new(config),
            Err(p) => *p.into_inner() = Arc::new(config),
        }
    }
}

/// A bound socket.
pub enum Socket {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix domain socket listener (LMTP) and its path.
    Unix(UnixListener, PathBuf),
}

/// A bound listener and what it serves.
pub struct BoundListener {
    /// The socket.
    pub listener: Socket,
    /// Its configuration.
    pub config: ListenerConfig,
}

/// Binds every configured listener. IPv6 wildcard addresses also accept IPv4 where the OS allows.
/// Unix sockets get the configured owner, group and mode before anyone can connect; `id` is the
/// identity the daemon will drop to (their default owner and group).
pub async fn bind_all(
    config: &Config,
    id: Option<privdrop::Identity>,
) -> std::io::Result<Vec<BoundListener>> {
    let mut out = Vec::new();
    for l in &config.listeners {
        if let Some(path) = &l.path {
            let listener = unix::bind(l, path, id).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen on {} ({}): {e}", path.display(), l.protocol),
                )
            })?;
            out.push(BoundListener {
                listener: Socket::Unix(listener, path.clone()),
                config: l.clone(),
            });
            continue;
        }
        let addr: SocketAddr = l.address.parse().map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, l.address.clone())
        })?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} ({}): {e}", l.protocol),
            )
        })?;
        out.push(BoundListener {
            listener: Socket::Tcp(listener),
            config: l.clone(),
        });
    }
    Ok(out)
}

/// Accepts on every listener until `shared.shutdown` is cancelled.
pub async fn serve(listeners: Vec<BoundListener>, shared: Arc<Shared>) {
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        match &l.listener {
            Socket::Tcp(t) => {
                if let Ok(addr) = t.local_addr() {
                    info!(protocol = %l.config.protocol, address = %addr, tls = ?l.config.tls, "listening");
                }
            }
            Socket::Unix(_, path) => {
                info!(protocol = %l.config.protocol, path = %path.display(), "listening");
            }
        }
        tasks.spawn(accept_loop(l, shared.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// What a Unix-socket peer is counted as: not a real address, and not loopback, so Unix clients
/// neither share the per-IP cap with loopback TCP clients nor get its plaintext allowance.
const UNIX_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

async fn accept_loop(l: BoundListener, shared: Arc<Shared>) {
    // Back off on accept errors (EMFILE under load) instead of spinning.
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            r = accept(&l.listener) => r,
        };
        match accepted {
            Ok((stream, peer, local)) => {
                backoff = Duration::from_millis(10);
                let shared = shared.clone();
                let lcfg = l.config.clone();
                let (protocol, tls) = (lcfg.protocol, lcfg.tls);
                tokio::spawn(crate::metrics::connection(
                    protocol,
                    tls,
                    handle_connection(stream, peer, local, lcfg, shared),
                ));
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn accept(socket: &Socket) -> std::io::Result<(Accepted, SocketAddr, SocketAddr)> {
    match socket {
        Socket::Tcp(t) => {
            let (tcp, peer) = t.accept().await?;
            let _ = tcp.set_nodelay(true);
            let local = tcp.local_addr().unwrap_or(peer);
            Ok((Accepted::Tcp(tcp), peer, local))
        }
        Socket::Unix(u, _) => {
            let (unix, _) = u.accept().await?;
            Ok((Accepted::Unix(unix), UNIX_PEER, UNIX_PEER))
        }
    }
}

enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

async fn handle_connection(
    mut accepted: Accepted,
    peer: SocketAddr,
    local: SocketAddr,
    lcfg: ListenerConfig,
    shared: Arc<Shared>,
) {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    // On a PROXY listener the header's client stands for the peer from here on.
    let real_peer = peer;
    let (peer, local, tls_by_proxy) = if lcfg.proxy_protocol {
        match read_proxy(&mut accepted, peer, local, &shared.config(), id, &lcfg).await {
            Some(proxied) => proxied,
            None => return,
        }
    } else {
        (peer, local, false)
    };
    let span = info_span!("conn", id, proto = %lcfg.protocol, remote = %peer, user = tracing::field::Empty, proxy = tracing::field::Empty);
    if lcfg.proxy_protocol {
        span.record("proxy", tracing::field::display(real_peer));
    }
    async move {
        let cfg = shared.config();
        let per_ip = match accepted {
            Accepted::Tcp(_) => cfg.limits.max_connections_per_ip,
            // All local MTA connections share one "address"; only the total cap applies.
            Accepted::Unix(_) => usize::MAX,
        };
        let admitted = shared
            .tracker
            .connect(peer.ip(), cfg.limits.max_connections, per_ip);
        let stream = match accepted {
            Accepted::Unix(u) => Stream::Unix(u),
            Accepted::Tcp(tcp) if lcfg.tls == TlsMode::Implicit => {
                let Some(acceptor) = shared.tls.current() else {
                    warn!("implicit TLS listener without a certificate");
                    return;
                };
                match conn::accept_tls(tcp, &acceptor).await {
                    Ok(s) => s,
                    Err(e) => {
                        debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                }
            }
            Accepted::Tcp(tcp) => Stream::Plain(tcp),
        };
        let info = ConnInfo {
            id,
            peer,
            local,
            // A "[::]" listener sees IPv4 clients as ::ffff:127.0.0.1, which is_loopback() denies.
            loopback: peer.ip().to_canonical().is_loopback() && !lcfg.assume_remote,
            tls_by_proxy,
        };
        let mut conn = Conn::new(stream, info);
        let guard = match admitted {
            Ok(g) => g,
            Err(refusal) => {
                refuse(&mut conn, lcfg.protocol, refusal).await;
                return;
            }
        };
        debug!("connected");
        let registration = register_session(&shared, &mut conn, lcfg.protocol);
        match lcfg.protocol {
            Protocol::Imap => crate::imap::session::run(conn, shared.clone(), lcfg).await,
            Protocol::Pop3 => crate::pop3::session::run(conn, shared.clone(), lcfg).await,
            Protocol::Lmtp => crate::lmtp::session::run(conn, shared.clone(), lcfg).await,
            Protocol::ManageSieve => {
                crate::managesieve::session::run(conn, shared.clone(), lcfg).await
            }
        }
        if let Some(r) = registration {
            r.live().log_end();
        }
        drop(guard);
        debug!("disconnected");
    }
    .instrument(span)
    .await
}

/// Lists an IMAP or POP3 session in the live-session registry and hands its entry to the
/// connection (LMTP deliveries are not sessions of a user and are not listed).
fn register_session(
    shared: &Shared,
    conn: &mut Conn,
    protocol: Protocol,
) -> Option<sessions::Registration> {
    if protocol == Protocol::Lmtp {
        return None;
    }
    let info = &conn.info;
    let live = sessions::Live::new(info.id, protocol, info.peer, info.local);
    if conn.is_tls() {
        live.set_tls();
    }
    let registration = shared.sessions.register(live);
    conn.live = Some(registration.live().clone());
    Some(registration)
}

/// Reads the PROXY header on a `proxy_protocol` listener and returns the client and destination
/// addresses it gives (the socket's own for LOCAL/UNKNOWN) and whether the proxy terminated TLS.
/// None closes the connection without a greeting, as Dovecot does: the peer is not a trusted proxy,
/// or the header is missing, malformed, too long or too slow. Nothing is sent, because the peer is
/// a proxy, not a mail client that could act on an answer.
async fn read_proxy(
    accepted: &mut Accepted,
    peer: SocketAddr,
    local: SocketAddr,
    cfg: &Config,
    id: u64,
    lcfg: &ListenerConfig,
) -> Option<(SocketAddr, SocketAddr, bool)> {
    let Accepted::Tcp(tcp) = accepted else {
        // Refused by config validation; a Unix socket has no client address to replace.
        return Some((peer, local, false));
    };
    let span = info_span!("conn", id, proto = %lcfg.protocol, proxy = %peer);
    if !proxy::trusted(peer.ip(), &cfg.server.trusted_proxies()) {
        warn!(parent: &span, "connection refused: PROXY protocol listener, but the peer is not in server.proxy_trusted_networks");
        return None;
    }
    match proxy::read_header(tcp).await {
        Ok(h) => {
            let (src, dst) = h
                .addresses
                .map(|(s, d)| (canonical(s), canonical(d)))
                .unwrap_or((peer, local));
            debug!(parent: &span, version = h.version, client = %src, destination = %dst, client_tls = h.client_tls, "PROXY header");
            Some((src, dst, h.client_tls))
        }
        Err(e) => {
            warn!(parent: &span, error = %e, "connection closed: no valid PROXY header");
            None
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is, so per-IP limits count one client once.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

async fn refuse(conn: &mut Conn, protocol: Protocol, refusal: Refusal) {
    let why = match refusal {
        Refusal::Total => "Too many connections to this server, try again later",
        Refusal::PerIp => "Too many connections from your IP address, try again later",
    };
    info!(reason = why, "connection refused");
    let line = match protocol {
        Protocol::Imap => format!("* BYE [UNAVAILABLE] {why}\r\n"),
        Protocol::Pop3 => format!("-ERR [SYS/TEMP] {why}\r\n"),
        Protocol::Lmtp => format!("421 4.3.2 {why}\r\n"),
        Protocol::ManageSieve => format!("BYE (TRYLATER) \"{why}\"\r\n"),
    };
    let _ = conn.send(line.as_bytes()).await;
    conn.close().await;
}
