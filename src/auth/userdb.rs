//! The loaded users: an immutable [`Snapshot`] of the options and the parsed passwd-file, swapped
//! whole when the file changes on disk (checked by its [`FileStamp`], at most once per
//! `USERS_FILE_CHECK_INTERVAL_MS`) and only if the new version is valid.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, TryLockError};
use std::time::{Duration, Instant};

use super::cache::CredentialCache;
use super::db::UserDatabase;
use super::passwd::{self, UserDb};
use super::pool::HashPool;
use super::scheme::StoredHash;
use super::{AuthError, AuthOptions, Inner};
use crate::limits::{MAX_USERS_FILE_SIZE, USERS_FILE_CHECK_INTERVAL_MS};

/// A consistent view: options, the users, and what goes with them.
pub(super) struct Snapshot {
    pub(super) opts: AuthOptions,
    pub(super) db: Arc<UserDb>,
    pub(super) stamp: FileStamp,
    pub(super) dummy: Arc<StoredHash>,
    pub(super) pool: Arc<HashPool>,
    /// Logins verified under this version of the users ([`super::cache`]).
    pub(super) creds: CredentialCache,
    /// The SQL or LDAP database users live in instead of the users file (then `db` is empty
    /// and the file is not watched).
    pub(super) external: Option<Arc<dyn UserDatabase>>,
}

/// What identifies one version of the users file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of no file (users in an external database).
    pub(super) const NONE: FileStamp = FileStamp {
        dev: 0,
        ino: 0,
        size: 0,
        mtime: (0, 0),
        ctime: (0, 0),
    };

    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct CheckState {
    pub(super) last_check: Option<Instant>,
    /// A version that failed to load, not retried until the file changes.
    pub(super) bad: Option<FileStamp>,
    /// The file could not be stat'ed last time (logged once).
    unreadable: bool,
}

/// Reads the users file (bounded) and the stamp of the version read.
fn read_users_file(path: &Path) -> Result<(Vec<u8>, FileStamp), AuthError> {
    let io_err = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let stamp = FileStamp::of(&file.metadata().map_err(io_err)?);
    if stamp.size > MAX_USERS_FILE_SIZE {
        return Err(AuthError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let mut data = Vec::new();
    file.take(MAX_USERS_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(io_err)?;
    if data.len() as u64 > MAX_USERS_FILE_SIZE {
        return Err(AuthError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok((data, stamp))
}

pub(super) fn load_db(path: &Path) -> Result<(UserDb, FileStamp), AuthError> {
    let (data, stamp) = read_users_file(path)?;
    let db = passwd::parse(&data, path)?;
    let unusable = db
        .entries()
        .filter(|e| matches!(e.hash, StoredHash::Unsupported { .. }))
        .count();
    if unusable > 0 {
        tracing::warn!(
            users_file = %path.display(),
            users = unusable,
            "users with an unsupported password scheme cannot log in"
        );
    }
    Ok((db, stamp))
}

impl Inner {
    pub(super) fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn replace(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    /// Re-reads the users file if it changed on disk; at most once per
    /// interval unless `force`. Returns whether a new version was loaded.
    pub(super) fn refresh(&self, force: bool) -> Result<bool, AuthError> {
        let mut check = match self.check.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            // Someone else is checking or reloading: use what is loaded.
            Err(TryLockError::WouldBlock) if !force => return Ok(false),
            Err(TryLockError::WouldBlock) => self.check.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let now = Instant::now();
        let interval = Duration::from_millis(USERS_FILE_CHECK_INTERVAL_MS);
        if !force
            && check
                .last_check
                .is_some_and(|t| now.duration_since(t) < interval)
        {
            return Ok(false);
        }
        check.last_check = Some(now);
        let snap = self.snapshot();
        if snap.external.is_some() {
            return Ok(false);
        }
        let path = &snap.opts.users_file;
        let current = match fs::metadata(path) {
            Ok(meta) => {
                check.unreadable = false;
                FileStamp::of(&meta)
            }
            Err(source) => {
                if !check.unreadable {
                    tracing::error!(users_file = %path.display(), error = %source, "cannot stat users file; keeping the previous users");
                    check.unreadable = true;
                }
                return Err(AuthError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        if current == snap.stamp || Some(current) == check.bad {
            return Ok(false);
        }
        match load_db(path) {
            Ok((db, stamp)) => {
                tracing::info!(users_file = %path.display(), users = db.len(), "users file changed, reloaded");
                check.bad = None;
                self.replace(Snapshot {
                    opts: snap.opts.clone(),
                    db: Arc::new(db),
                    stamp,
                    dummy: Arc::clone(&snap.dummy),
                    pool: Arc::clone(&snap.pool),
                    creds: CredentialCache::for_options(&snap.opts),
                    external: None,
                });
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "users file changed but is invalid; keeping the previous users");
                check.bad = Some(current);
                Err(e)
            }
        }
    }

    pub(super) fn refresh_quietly(&self) {
        // Errors were logged by `refresh`; the previous users stay in force.
        let _ = self.refresh(false);
    }
}
