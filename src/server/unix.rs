//! Unix domain socket listeners (LMTP from a local MTA).
//!
//! The socket is bound while the daemon is still root, so it can live in a directory only root
//! may write (`/run/mailcove`, Postfix's `private/`) and be handed to the MTA's user. It is created
//! under a umask that lets nobody connect, then chowned and chmodded as configured, and only then
//! accepted on: no client can slip into the backlog while the permissions are still wrong.
//!
//! A socket file left by a crashed daemon is removed, but only when nothing answers on it; a
//! path that is not a socket is never removed.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Group, Uid, User};
use tokio::net::UnixListener;

use super::privdrop::{self, Identity};
use crate::config::ListenerConfig;

/// Binds `path` for listener `l` with its owner, group and mode; `id` is the identity the daemon
/// drops to, the default owner and group.
pub fn bind(l: &ListenerConfig, path: &Path, id: Option<Identity>) -> io::Result<UnixListener> {
    let mode = l.socket_mode().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "mode is not octal permissions")
    })?;
    let uid = match &l.owner {
        Some(name) => Some(user_id(name)?),
        None => id.map(|i| i.uid),
    };
    let gid = match &l.group {
        Some(name) => Some(group_id(name)?),
        None => id.map(|i| i.gid),
    };
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        privdrop::prepare_dir(parent, id)?;
    }
    remove_stale(path)?;
    // umask is process-wide, but start-up binds before any session or other thread exists.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(old);
    let std_listener = bound?;
    if uid.is_some() || gid.is_some() {
        nix::unistd::chown(path, uid, gid).map_err(io::Error::from)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    std_listener.set_nonblocking(true)?;
    UnixListener::from_std(std_listener)
}

/// Removes a socket file nobody listens on; errors when the path is a live socket or no socket.
pub fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the path exists and is not a socket; refusing to replace it",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process is listening on this socket",
        )),
        Err(_) => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        },
    }
}

fn user_id(name: &str) -> io::Result<Uid> {
    User::from_name(name)
        .map_err(io::Error::from)?
        .map(|u| u.uid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown user `{name}`")))
}

fn group_id(name: &str) -> io::Result<Gid> {
    Group::from_name(name)
        .map_err(io::Error::from)?
        .map(|g| g.gid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown group `{name}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_is_replaced_live_one_and_files_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sock");
        let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let err = remove_stale(&path).expect_err("live socket");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        drop(live);
        remove_stale(&path).expect("stale socket removed");
        assert!(!path.exists());
        std::fs::write(&path, b"data").expect("write");
        let err = remove_stale(&path).expect_err("regular file");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(path.exists(), "a regular file must never be removed");
    }

    #[test]
    fn socket_gets_the_configured_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("lmtp");
        let l = ListenerConfig {
            protocol: crate::config::Protocol::Lmtp,
            path: Some(path.clone()),
            mode: Some("0600".into()),
            ..ListenerConfig::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let listener = bind(&l, &path, None).expect("bind");
        let meta = std::fs::metadata(&path).expect("stat");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(listener);
        // A second bind over the stale file of the first works.
        let again = bind(&l, &path, None).expect("rebind over a stale socket");
        drop(again);
    }
}
