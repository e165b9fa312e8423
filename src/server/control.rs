//! The control socket: how `mailcove who`, `mailcove kick` and `mailcove reload` reach the
//! running daemon.
//!
//! - A Unix socket at `server.control_socket`, bound while the daemon is still root (so it can
//!   live in `/run/mailcove`), created under a umask that lets nobody connect, then given to the
//!   daemon's user with mode 0600 before the first accept. Only root and that user can use it.
//! - One request per connection: one JSON object on one line (at most
//!   [`limits::CONTROL_MAX_REQUEST`] bytes), answered with one JSON line, then the daemon closes.
//!   Connections are served one at a time, each within [`limits::CONTROL_IO_SECS`], so a client
//!   that says nothing cannot hold the socket or make the daemon buffer anything.
//! - A socket file left by a crashed daemon is removed at start when nothing answers on it
//!   ([`super::unix::remove_stale`]).
//! - The socket is for the administrator, not for mail: when it cannot be bound the daemon logs
//!   an error and serves mail without it.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::stat::{Mode, umask};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::Shared;
use super::privdrop::{self, Identity};
use super::sessions::SessionInfo;
use crate::config::Protocol;
use crate::limits;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// List the live IMAP and POP3 sessions. (Braces, as `Reload`: serde rejects unknown fields
    /// of an internally tagged enum only in struct variants.)
    Who {},
    /// End every session of `user` (of one protocol when given).
    Kick {
        /// User name as logged in (ASCII case-insensitive).
        user: String,
        /// `imap` or `pop3`; every protocol when absent.
        #[serde(default)]
        protocol: Option<Protocol>,
    },
    /// Re-read the configuration, the users file and the certificate (as SIGHUP does).
    Reload {},
}

/// The daemon's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request was carried out.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `who`: the sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<SessionInfo>>,
    /// `kick`: how many sessions were told to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kicked: Option<usize>,
}

impl Response {
    fn failed(why: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(why.into()),
            ..Response::default()
        }
    }
}

/// How the control server asks the daemon's main loop to reload: the reply carries the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Binds the configured control socket; None (after logging why) when it is turned off or cannot
/// be bound. Call while still root, before dropping privileges.
pub fn bind_configured(path: &Path, id: Option<Identity>) -> Option<UnixListener> {
    if path.as_os_str().is_empty() {
        info!("control socket turned off (server.control_socket is empty)");
        return None;
    }
    match bind(path, id) {
        Ok(l) => Some(l),
        Err(e) => {
            error!(
                path = %path.display(),
                error = %e,
                "cannot create the control socket; mailcove who/kick/reload will not work"
            );
            None
        }
    }
}

/// Binds `path` with mode 0600, owned by `id` when given.
pub fn bind(path: &Path, id: Option<Identity>) -> io::Result<UnixListener> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        privdrop::prepare_dir(parent, id)?;
    }
    super::unix::remove_stale(path)?;
    // umask is process-wide, but start-up binds before any session or other thread exists.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    let listener = bound?;
    if let Some(id) = id {
        nix::unistd::chown(path, Some(id.uid), Some(id.gid)).map_err(io::Error::from)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Serves control requests until the daemon stops, then removes the socket file.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
    reload: mpsc::Sender<ReloadRequest>,
) {
    info!(path = %path.display(), "control socket listening");
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _)) => {
                let io = Duration::from_secs(limits::CONTROL_IO_SECS);
                if tokio::time::timeout(io, handle(stream, &shared, &reload))
                    .await
                    .is_err()
                {
                    debug!("control client too slow, dropped");
                }
            }
            Err(e) => {
                warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    if let Err(e) = std::fs::remove_file(&path) {
        debug!(path = %path.display(), error = %e, "control socket not removed");
    }
}

async fn handle(stream: UnixStream, shared: &Shared, reload: &mpsc::Sender<ReloadRequest>) {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    // One byte over the limit tells a request that is too long from one that fits exactly.
    let mut limited = BufReader::new(read).take(limits::CONTROL_MAX_REQUEST as u64 + 1);
    let response = match limited.read_until(b'\n', &mut line).await {
        Err(e) => {
            debug!(error = %e, "control request unreadable");
            return;
        }
        Ok(_) if line.len() > limits::CONTROL_MAX_REQUEST => Response::failed(format!(
            "request longer than {} bytes",
            limits::CONTROL_MAX_REQUEST
        )),
        Ok(_) => match serde_json::from_slice::<Request>(&line) {
            Ok(req) => run(req, shared, reload).await,
            Err(e) => Response::failed(format!("bad request: {e}")),
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    let _ = write.write_all(&out).await;
    let _ = write.shutdown().await;
}

async fn run(req: Request, shared: &Shared, reload: &mpsc::Sender<ReloadRequest>) -> Response {
    match req {
        Request::Who {} => Response {
            ok: true,
            sessions: Some(shared.sessions.list()),
            ..Response::default()
        },
        Request::Kick { user, protocol } => {
            let kicked = shared.sessions.kick(&user, protocol);
            info!(
                user = %super::login::printable(&user),
                protocol = protocol.map(|p| p.to_string()).as_deref().unwrap_or("any"),
                kicked,
                "kick requested on the control socket"
            );
            Response {
                ok: true,
                kicked: Some(kicked),
                ..Response::default()
            }
        }
        Request::Reload {} => {
            let (tx, rx) = oneshot::channel();
            if reload.send(tx).await.is_err() {
                return Response::failed("the daemon is stopping");
            }
            match rx.await {
                Ok(Ok(())) => Response {
                    ok: true,
                    ..Response::default()
                },
                Ok(Err(e)) => Response::failed(e),
                Err(_) => Response::failed("the daemon is stopping"),
            }
        }
    }
}

/// Why the CLI could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket file: the daemon is not running, or uses another config.
    #[error(
        "no control socket at {0}: the daemon is not running, or its config sets another server.control_socket"
    )]
    NotRunning(PathBuf),
    /// A socket file, but nobody listens: the daemon died.
    #[error(
        "nobody answers on {0}: the daemon is not running (the socket was left by a previous run)"
    )]
    Stale(PathBuf),
    /// Not root and not the daemon's user.
    #[error("permission denied on {0}: run this as root or as the daemon's user (server.user)")]
    Permission(PathBuf),
    /// The control socket is turned off in the config.
    #[error("server.control_socket is empty in the config: the control socket is turned off")]
    Disabled,
    /// Anything else.
    #[error("control socket {0}: {1}")]
    Io(PathBuf, io::Error),
    /// The daemon answered something that is not a response.
    #[error("control socket {0}: unreadable answer: {1}")]
    Protocol(PathBuf, String),
}

/// Sends one request to the daemon at `path` and returns its answer (blocking; for the CLI).
pub fn request(path: &Path, req: &Request) -> Result<Response, ClientError> {
    if path.as_os_str().is_empty() {
        return Err(ClientError::Disabled);
    }
    let p = || path.to_path_buf();
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ClientError::NotRunning(p()),
        io::ErrorKind::ConnectionRefused => ClientError::Stale(p()),
        io::ErrorKind::PermissionDenied => ClientError::Permission(p()),
        _ => ClientError::Io(p(), e),
    })?;
    let io = Some(Duration::from_secs(limits::CONTROL_IO_SECS + 5));
    stream
        .set_read_timeout(io)
        .and_then(|_| stream.set_write_timeout(io))
        .map_err(|e| ClientError::Io(p(), e))?;
    let mut line =
        serde_json::to_vec(req).map_err(|e| ClientError::Protocol(p(), e.to_string()))?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .map_err(|e| ClientError::Io(p(), e))?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(limits::CONTROL_MAX_RESPONSE)
        .read_to_end(&mut answer)
        .map_err(|e| ClientError::Io(p(), e))?;
    serde_json::from_slice(&answer).map_err(|e| ClientError::Protocol(p(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let kick = Request::Kick {
            user: "demo".into(),
            protocol: Some(Protocol::Pop3),
        };
        let s = serde_json::to_string(&kick).unwrap();
        assert_eq!(s, r#"{"command":"kick","user":"demo","protocol":"pop3"}"#);
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), kick);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"kick","user":"x"}"#).unwrap(),
            Request::Kick {
                user: "x".into(),
                protocol: None
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"command":"who"}"#).unwrap(),
            Request::Who {}
        );
        assert!(serde_json::from_str::<Request>(r#"{"command":"rm","path":"/"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"command":"who","x":1}"#).is_err());
    }

    #[test]
    fn socket_is_private_and_a_stale_one_is_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run").join("control.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let first = bind(&path, None).expect("bind");
        let meta = std::fs::metadata(&path).expect("stat");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            bind(&path, None).expect_err("live socket").kind(),
            io::ErrorKind::AddrInUse
        );
        drop(first);
        let again = bind(&path, None).expect("rebind over a stale socket");
        drop(again);
        assert!(matches!(
            request(&path, &Request::Who {}),
            Err(ClientError::Stale(_))
        ));
        std::fs::remove_file(&path).expect("rm");
        assert!(matches!(
            request(&path, &Request::Who {}),
            Err(ClientError::NotRunning(_))
        ));
    }
}
