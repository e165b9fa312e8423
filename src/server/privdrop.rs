//! Dropping root: after the ports are bound and the files only root may read are loaded, the daemon
//! becomes the configured unprivileged user for good, before it reads a byte from any client.

use std::path::Path;

use nix::unistd::{Gid, Group, Uid, User};

/// Why the process could not take the configured identity.
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    /// Started as root without `server.user`.
    #[error("started as root but server.user is not set; refusing to serve sessions as root")]
    NoUser,
    /// `server.user` names root.
    #[error("server.user must not be root")]
    UserIsRoot,
    /// The user or group does not exist.
    #[error("unknown {0} `{1}`")]
    Unknown(&'static str, String),
    /// A system call failed.
    #[error("cannot switch to {0}: {1}")]
    Sys(String, nix::Error),
}

/// The identity to become.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// Target user id.
    pub uid: Uid,
    /// Target group id.
    pub gid: Gid,
}

/// Resolves `server.user`/`server.group`. Returns None when not running as root (nothing to drop);
/// errors when running as root without a usable unprivileged user.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>, PrivError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let name = user.ok_or(PrivError::NoUser)?;
    let u = User::from_name(name)
        .map_err(|e| PrivError::Sys(name.to_string(), e))?
        .ok_or_else(|| PrivError::Unknown("user", name.to_string()))?;
    if u.uid.is_root() {
        return Err(PrivError::UserIsRoot);
    }
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| PrivError::Sys(g.to_string(), e))?
                .ok_or_else(|| PrivError::Unknown("group", g.to_string()))?
                .gid
        }
        None => u.gid,
    };
    if gid.as_raw() == 0 {
        return Err(PrivError::UserIsRoot);
    }
    Ok(Some(Identity { uid: u.uid, gid }))
}

/// Creates `dir` (and its parents) when missing and hands the newly created ones to `id`, so a
/// fresh install or the dev config works without manual chown. Existing directories are left alone.
pub fn prepare_dir(dir: &Path, id: Option<Identity>) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    std::fs::create_dir_all(dir)?;
    if let Some(id) = id {
        for d in missing {
            nix::unistd::chown(&d, Some(id.uid), Some(id.gid)).map_err(std::io::Error::from)?;
        }
    }
    Ok(())
}

/// Hands a file the daemon must read after dropping root (a generated key) to `id`.
pub fn give(path: &Path, id: Option<Identity>) -> std::io::Result<()> {
    if let Some(id) = id {
        nix::unistd::chown(path, Some(id.uid), Some(id.gid)).map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Becomes `id` for good: supplementary groups, then gid, then uid; then checks root cannot be regained.
pub fn drop_to(id: Identity) -> Result<(), PrivError> {
    let who = format!("uid {} gid {}", id.uid, id.gid);
    nix::unistd::setgroups(&[id.gid]).map_err(|e| PrivError::Sys(who.clone(), e))?;
    nix::unistd::setresgid(id.gid, id.gid, id.gid).map_err(|e| PrivError::Sys(who.clone(), e))?;
    nix::unistd::setresuid(id.uid, id.uid, id.uid).map_err(|e| PrivError::Sys(who.clone(), e))?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() || Uid::effective().is_root() {
        return Err(PrivError::UserIsRoot);
    }
    Ok(())
}
