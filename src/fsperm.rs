//! Why a path is not usable by the user the daemon runs as, in words an administrator can act on.
//!
//! Two users: `check-config` and start-up check that the mail root is writable by `server.user`
//! ([`check_dir_writable`]), and the Maildir backend explains an `EACCES` it meets
//! ([`explain`], through [`crate::storage::StorageError::io_at`]). Modelled on Dovecot's
//! `eacces_error_get()`: the path, the user and group we run as, which permission is missing on
//! which directory, and that directory's owner and mode.
//!
//! The check reads owner, group and mode bits only; POSIX ACLs and read-only mounts are not
//! looked at (the runtime error still names the path when one of those is the cause).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};

/// An identity whose access is checked: a user id and the group ids it holds.
#[derive(Debug, Clone)]
pub struct Who {
    uid: u32,
    gids: Vec<u32>,
    /// User name (or the number when it has none).
    pub user: String,
    /// Primary group name (or the number).
    pub group: String,
}

impl Who {
    /// The process as it runs now (effective ids and supplementary groups).
    pub fn current() -> Who {
        let uid = Uid::effective();
        let gid = Gid::effective();
        let mut gids: Vec<u32> = nix::unistd::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        gids.push(gid.as_raw());
        Who {
            uid: uid.as_raw(),
            gids,
            user: user_name(uid.as_raw()),
            group: group_name(gid.as_raw()),
        }
    }

    /// `server.user`/`server.group` as the daemon will run after dropping root: that uid and
    /// exactly one group (privdrop sets no supplementary groups). None when the user or group does
    /// not exist on this machine.
    pub fn named(user: &str, group: Option<&str>) -> Option<Who> {
        let u = User::from_name(user).ok().flatten()?;
        let gid = match group {
            Some(g) => Group::from_name(g).ok().flatten()?.gid,
            None => u.gid,
        };
        Some(Who {
            uid: u.uid.as_raw(),
            gids: vec![gid.as_raw()],
            user: u.name,
            group: group_name(gid.as_raw()),
        })
    }

    fn may(&self, meta: &std::fs::Metadata, bits: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let class = if meta.uid() == self.uid {
            mode >> 6
        } else if self.gids.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        class & bits == bits
    }
}

fn user_name(uid: u32) -> String {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

const R: u32 = 4;
const W: u32 = 2;
const X: u32 = 1;

/// The permission `who` lacks, found on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The user the check was for.
    pub user: String,
    /// That user's group.
    pub group: String,
    /// The directory or file that lacks the permission.
    pub path: PathBuf,
    /// `+x` (search a directory), `+w` (create in it), `+r`, `+rw`.
    pub missing: &'static str,
    /// Owner of `path`, as `user:group` names.
    pub owner: String,
    /// Owner uid and gid of `path`.
    pub owner_ids: (u32, u32),
    /// Permission bits of `path`.
    pub mode: u32,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "running as user {}, group {}: missing {} permission on {}, owned by {} (uid {}, gid {}) with mode {:04o}",
            self.user,
            self.group,
            self.missing,
            self.path.display(),
            self.owner,
            self.owner_ids.0,
            self.owner_ids.1,
            self.mode & 0o7777
        )
    }
}

impl Denied {
    fn at(who: &Who, path: &Path, meta: &std::fs::Metadata, missing: &'static str) -> Denied {
        Denied {
            user: who.user.clone(),
            group: who.group.clone(),
            path: path.to_path_buf(),
            missing,
            owner: format!("{}:{}", user_name(meta.uid()), group_name(meta.gid())),
            owner_ids: (meta.uid(), meta.gid()),
            mode: meta.mode(),
        }
    }
}

/// What is wanted of the last path component.
#[derive(Clone, Copy)]
enum Want {
    /// Open an existing file for reading and writing, or create it.
    OpenRw,
    /// Create entries in a directory.
    CreateIn,
    /// Reach a directory (search permission on it and every directory above).
    Search,
}

/// Walks from `/` to `path`: every directory on the way needs search (+x); the path itself (or
/// its parent when it does not exist yet) needs what `want` says.
fn walk(path: &Path, who: &Who, want: Want) -> Option<Denied> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let ancestors: Vec<&Path> = path.ancestors().collect();
    let mut parent: Option<(&Path, std::fs::Metadata)> = None;
    for (i, p) in ancestors.iter().rev().enumerate() {
        let last = i + 1 == ancestors.len();
        let Ok(meta) = std::fs::metadata(p) else {
            // Missing: whoever creates it needs to write in the directory above.
            let (dir, m) = parent?;
            return (!who.may(&m, W | X)).then(|| Denied::at(who, dir, &m, "+w"));
        };
        if last {
            return match want {
                Want::CreateIn if !who.may(&meta, W | X) => Some(Denied::at(who, p, &meta, "+wx")),
                Want::Search if !who.may(&meta, X) => Some(Denied::at(who, p, &meta, "+x")),
                Want::OpenRw if meta.is_file() && !who.may(&meta, R | W) => {
                    Some(Denied::at(who, p, &meta, "+rw"))
                }
                _ => None,
            };
        }
        if !who.may(&meta, X) {
            return Some(Denied::at(who, p, &meta, "+x"));
        }
        parent = Some((p, meta));
    }
    None
}

/// Why `who` cannot create entries in the directory `dir` (or create `dir` itself), if it cannot.
pub fn check_dir_writable(dir: &Path, who: &Who) -> Option<Denied> {
    walk(dir, who, Want::CreateIn)
}

/// Why `who` cannot reach the directory `dir` (search permission on it and above), if it cannot.
pub fn check_dir_reachable(dir: &Path, who: &Who) -> Option<Denied> {
    walk(dir, who, Want::Search)
}

/// Explains a "permission denied" met on `path` (a file opened read-write or created, or a
/// directory created) for the process as it runs now.
pub fn explain(path: &Path) -> Option<Denied> {
    walk(path, &Who::current(), Want::OpenRw)
}

/// The command that fixes `denied` for a mail root `root`: hand the tree to the mail user, or,
/// when the problem is a directory above the root, let others search it.
pub fn fix_for(root: &Path, denied: &Denied) -> String {
    let root_abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    if denied.path.starts_with(&root_abs) {
        format!(
            "chown -R {}:{} {}",
            denied.user,
            denied.group,
            root_abs.display()
        )
    } else {
        format!("chmod o+x {}", denied.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn who(uid: u32, gid: u32) -> Who {
        Who {
            uid,
            gids: vec![gid],
            user: format!("u{uid}"),
            group: format!("g{gid}"),
        }
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn mode_bits_decide_for_owner_group_and_others() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mail");
        std::fs::create_dir(&root).unwrap();
        let meta = std::fs::metadata(&root).unwrap();
        let (uid, gid) = (meta.uid(), meta.gid());
        chmod(dir.path(), 0o755);
        let stranger = who(uid.wrapping_add(4242), gid.wrapping_add(4242));
        chmod(&root, 0o700);
        let d = check_dir_writable(&root, &stranger).unwrap();
        assert_eq!((d.path.as_path(), d.missing), (root.as_path(), "+wx"));
        assert_eq!(d.mode & 0o777, 0o700);
        assert_eq!(d.owner_ids, (uid, gid));
        assert!(d.to_string().contains("missing +wx permission on"), "{d}");
        assert_eq!(
            fix_for(&root, &d),
            format!(
                "chown -R {}:{} {}",
                stranger.user,
                stranger.group,
                root.display()
            )
        );
        // The owner may; so may a member of the group when the group has rwx.
        let owner = who(uid, gid.wrapping_add(4242));
        if uid != 0 {
            assert!(check_dir_writable(&root, &owner).is_none());
        }
        chmod(&root, 0o770);
        assert!(check_dir_writable(&root, &who(uid.wrapping_add(4242), gid)).is_none());
        // A directory above that others cannot search is named, with chmod as the fix.
        chmod(&root, 0o777);
        chmod(dir.path(), 0o700);
        let d = check_dir_writable(&root.join("new"), &stranger).unwrap();
        assert_eq!((d.path.as_path(), d.missing), (dir.path(), "+x"));
        assert_eq!(
            fix_for(&root, &d),
            format!("chmod o+x {}", dir.path().display())
        );
        // A missing directory needs write permission on its parent.
        chmod(dir.path(), 0o755);
        chmod(&root, 0o755);
        let d = check_dir_writable(&root.join("new"), &stranger).unwrap();
        assert_eq!((d.path.as_path(), d.missing), (root.as_path(), "+w"));
        chmod(&root, 0o777);
        assert!(check_dir_writable(&root.join("new"), &stranger).is_none());
    }

    #[test]
    fn storage_errors_on_a_path_become_permission_errors_only_for_eacces() {
        use crate::storage::StorageError;
        let path = Path::new("/nonexistent-mailcove/x/lock");
        let e = StorageError::io_at(
            "open lock file",
            path,
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        let StorageError::Permission(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (p.context.as_str(), p.path.as_path()),
            ("open lock file", path)
        );
        assert!(
            e.to_string()
                .starts_with("open lock file /nonexistent-mailcove/x/lock: permission denied; "),
            "{e}"
        );
        let e = StorageError::io_at(
            "open lock file",
            path,
            std::io::Error::from_raw_os_error(libc::EIO),
        );
        assert!(matches!(e, StorageError::Temporary(_)), "{e:?}");
    }
}
