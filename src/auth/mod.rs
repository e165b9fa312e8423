//! Authentication: the users file, password schemes, the hashing pool, the
//! failed-login penalty and the SASL codec.
//!
//! # Design
//!
//! * **User database**: a Dovecot passwd-file ([`passwd`]), so an existing
//!   Dovecot deployment points mailcove at its file unchanged. It is parsed
//!   completely into an immutable user table held in an `Arc`
//!   snapshot; a lookup clones the `Arc` and never blocks on a reload. A
//!   reload (on change, or [`Authenticator::reload`] on SIGHUP) parses the new
//!   file aside and swaps it in only if the whole file is valid, so a broken
//!   edit never locks users out.
//! * **Change detection**: at most once per `USERS_FILE_CHECK_INTERVAL_MS`, a
//!   lookup `stat`s the file and compares device, inode, size, mtime and
//!   ctime with the loaded version. This is cheap, works for editors that
//!   rename over the file as well as those that rewrite it in place, and
//!   needs no watcher thread. During `authenticate` this runs on the blocking
//!   pool, never on a tokio worker.
//! * **Schemes** ([`scheme`]): each stored hash is classified once at load
//!   (ARGON2ID/ARGON2I, SHA512/SHA256-CRYPT, BLF-CRYPT, plaintext, locked,
//!   unsupported) and its costs checked against `limits`.
//! * **Pool** ([`pool`]): verifications run on `spawn_blocking`, at most
//!   `hash_threads` at once and `max_queued` waiting; more fail at once with
//!   a temporary error. Memory is thus bounded by `hash_threads` times the
//!   largest Argon2 memory cost.
//! * **Uniform failures**: an unknown user, a locked or unsupported account
//!   and a plaintext entry all run a verification against a dummy Argon2id
//!   hash of the configured cost, so they cost the same work (and time) as a
//!   wrong password and answer the same [`AuthFailure::Invalid`].
//! * **Penalty** ([`penalty`]): each failure answers after a delay that
//!   doubles per consecutive failure from that address, capped. The delay is
//!   a tokio sleep after the hashing slot is released, so waiting clients
//!   hold no thread.
//! * **Fairness**: one address (IPv6 /64) has at most `hash_threads`
//!   verifications queued or running, and an address with failures on record
//!   at most `MAX_AUTH_HASHES_PER_FAILING_ADDRESS`; its other logins wait
//!   (asynchronously) for their turn. Without this, a guessing storm over
//!   many connections filled the FIFO hashing queue and every other
//!   address's login waited behind it; now it occupies one slot. An address
//!   without failures (a webmail front end, an office behind NAT) may use
//!   every hashing thread, so its users' logins are verified in parallel.
//! * **SASL** ([`sasl`]): PLAIN and LOGIN without I/O, shared by IMAP and POP3.
//! * **SCRAM** ([`scram`]): SCRAM-SHA-1/-256 (and -PLUS) keys and exchange, without I/O; the
//!   keys of a login come from `Authenticator::scram_credentials` (fake ones for users without).
//! * **Admin** ([`admin`]): the `user` CLI: edits the file atomically,
//!   leaving every other byte in place.
//!
//! Inside this module, `options` holds [`AuthOptions`], `error` the error
//! types, `user` [`UserInfo`] and the passdb fields that restrict a login,
//! `userdb` the loaded snapshot and its reload on change, and `login` the
//! verification path of [`Authenticator::authenticate`].
//!
//! Passwords and SASL payloads are never logged; logs carry the user name
//! (Debug-escaped, as it comes from the client), remote address and reason.

pub mod admin;
mod cache;
pub mod db;
mod error;
pub mod external;
pub mod ldap;
mod login;
pub mod lookup_cache;
pub mod oauth;
mod options;
pub mod passwd;
pub mod penalty;
pub mod pool;
pub mod quota_rule;
pub mod sasl;
pub mod scheme;
pub mod scram;
mod scram_auth;
pub mod sql;
mod user;
mod userdb;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use error::{AuthError, AuthFailure, TempFailReason};
pub use login::LoginContext;
pub use options::{Argon2Params, AuthOptions, default_hash_threads};
pub use scram_auth::ScramCredentials;
pub use user::UserInfo;

use crate::limits::MAX_USERNAME_LEN;
use cache::CredentialCache;
use db::{DbError, LookupRequest, UserDatabase};
use login::{Turns, make_dummy};
use penalty::PenaltyTable;
use pool::HashPool;
use userdb::{CheckState, FileStamp, Snapshot, load_db};

/// The state every clone of an [`Authenticator`] shares: the loaded users ([`userdb`]), the
/// penalty table and the hashing turns of each address ([`login`]).
struct Inner {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes reloads and throttles change checks.
    check: Mutex<CheckState>,
    penalty: PenaltyTable,
    /// Per-address turns for the hashing pool. An entry lives only while some login of that
    /// address holds or waits for it, so the map is bounded by the connections in login.
    turns: Mutex<HashMap<IpAddr, Arc<Turns>>>,
}

/// The authentication service: `Send + Sync`, share it as `Arc`.
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snap = self.inner.snapshot();
        f.debug_struct("Authenticator")
            .field("users_file", &snap.opts.users_file)
            .field("users", &snap.db.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Validates `opts`, reads the users file and prepares the dummy hash
    /// (one Argon2id hash: call it at startup, not on a tokio worker).
    pub fn new(opts: AuthOptions) -> Result<Self, AuthError> {
        Self::with_database(opts, None)
    }

    /// As [`new`](Self::new), with users in `external` (an SQL or LDAP database, from
    /// [`external::open_database`]) instead of the users file, which is then not read.
    pub fn with_database(
        opts: AuthOptions,
        external: Option<Arc<dyn UserDatabase>>,
    ) -> Result<Self, AuthError> {
        opts.validate()?;
        let (db, stamp) = load_users(&opts, external.as_ref())?;
        let dummy = make_dummy(&opts.argon2)?;
        let pool = HashPool::new(opts.hash_threads, opts.max_queued);
        let creds = CredentialCache::for_options(&opts);
        match &external {
            Some(ext) => tracing::info!(database = ext.kind(), "users in an external database"),
            None => {
                tracing::info!(users_file = %opts.users_file.display(), users = db.len(), "users loaded")
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                snapshot: RwLock::new(Arc::new(Snapshot {
                    opts,
                    db: Arc::new(db),
                    stamp,
                    dummy: Arc::new(dummy),
                    pool: Arc::new(pool),
                    creds,
                    external,
                })),
                check: Mutex::new(CheckState::default()),
                penalty: PenaltyTable::default(),
                turns: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Re-reads the users file with (possibly changed) options, e.g. on
    /// SIGHUP. On any error the previous options and users stay in force.
    /// Blocking (file I/O, maybe one hash): call it from `spawn_blocking`.
    /// Password checks waiting for a hashing thread now (`mailcove_auth_queue_depth`).
    pub fn hash_queue_depth(&self) -> usize {
        self.inner.snapshot().pool.queued()
    }

    /// New pool sizes apply to logins started after the reload. Keeps the external database
    /// (if any) as it is; [`reload_with_database`](Self::reload_with_database) replaces it.
    pub fn reload(&self, opts: AuthOptions) -> Result<(), AuthError> {
        let external = self.inner.snapshot().external.clone();
        self.reload_with_database(opts, external)
    }

    /// As [`reload`](Self::reload), with users in `external` from now on (a newly opened
    /// database: its lookup cache starts empty) or in the users file when `None`.
    pub fn reload_with_database(
        &self,
        opts: AuthOptions,
        external: Option<Arc<dyn UserDatabase>>,
    ) -> Result<(), AuthError> {
        opts.validate()?;
        let mut check = self.inner.check.lock().unwrap_or_else(|e| e.into_inner());
        let (db, stamp) = load_users(&opts, external.as_ref())?;
        let old = self.inner.snapshot();
        let dummy = if old.opts.argon2 == opts.argon2 {
            Arc::clone(&old.dummy)
        } else {
            Arc::new(make_dummy(&opts.argon2)?)
        };
        let pool = if old.pool.threads() == opts.hash_threads.max(1)
            && old.pool.max_queued() == opts.max_queued
        {
            Arc::clone(&old.pool)
        } else {
            Arc::new(HashPool::new(opts.hash_threads, opts.max_queued))
        };
        match &external {
            Some(ext) => tracing::info!(database = ext.kind(), "external user database reopened"),
            None => {
                tracing::info!(users_file = %opts.users_file.display(), users = db.len(), "users reloaded")
            }
        }
        let creds = CredentialCache::for_options(&opts);
        self.inner.replace(Snapshot {
            opts,
            db: Arc::new(db),
            stamp,
            dummy,
            pool,
            creds,
            external,
        });
        check.bad = None;
        check.last_check = Some(Instant::now());
        Ok(())
    }

    /// Checks now (not throttled) whether the users file changed on disk and
    /// loads it if so; `Ok(true)` if a new version was loaded. An invalid new
    /// version returns the error and keeps the previous users. Blocking.
    pub fn check_for_changes(&self) -> Result<bool, AuthError> {
        self.inner.refresh(true)
    }

    /// Finds a user without a password (LMTP, `deliver`): `user` or
    /// `user@domain`, case-insensitively; a bare `user` does not match a
    /// `user@domain` entry. May re-read a changed file (blocking, cheap).
    /// The users file only: with an external database this finds nobody; use
    /// [`lookup_user`](Self::lookup_user), which can also say "the database is down".
    pub fn lookup(&self, user: &str) -> Option<UserInfo> {
        if user.len() > MAX_USERNAME_LEN {
            return None;
        }
        self.inner.refresh_quietly();
        self.inner.snapshot().db.get(user).map(|e| e.info.clone())
    }

    /// Number of users loaded.
    pub fn user_count(&self) -> usize {
        self.inner.snapshot().db.len()
    }

    /// Whether users live in an external (SQL or LDAP) database.
    pub fn has_database(&self) -> bool {
        self.inner.snapshot().external.is_some()
    }

    /// Finds a user without a password (LMTP, `deliver`, admin) in whichever database is
    /// configured: `Ok(None)` for no such user, `Err` when the database cannot answer now (a
    /// temporary failure: LMTP 451 4.3.0, `deliver` exit 75). `service` is the query's `%s`.
    pub async fn lookup_user(
        &self,
        user: &str,
        service: &str,
    ) -> Result<Option<UserInfo>, DbError> {
        if user.len() > MAX_USERNAME_LEN {
            return Ok(None);
        }
        let external = self.inner.snapshot().external.clone();
        match external {
            Some(db) => {
                db.user_lookup(LookupRequest {
                    user,
                    remote: None,
                    local: None,
                    service,
                })
                .await
            }
            None => {
                let inner = Arc::clone(&self.inner);
                let user = user.to_owned();
                tokio::task::spawn_blocking(move || {
                    inner.refresh_quietly();
                    inner.snapshot().db.get(&user).map(|e| e.info.clone())
                })
                .await
                .map_err(|e| DbError::Unavailable(format!("lookup task: {e}")))
            }
        }
    }

    /// [`lookup_user`](Self::lookup_user) for a command without a runtime (the admin CLI).
    /// Must not be called inside a tokio runtime.
    pub fn lookup_user_blocking(
        &self,
        user: &str,
        service: &str,
    ) -> Result<Option<UserInfo>, DbError> {
        if !self.has_database() {
            return Ok(self.lookup(user));
        }
        block_on(self.lookup_user(user, service))?
    }

    /// Every user of the external database (`iterate_query`), each looked up (`-A` of the
    /// admin commands); `Ok(None)` with the users file, whose users the caller lists itself.
    /// Must not be called inside a tokio runtime.
    pub fn all_users_blocking(&self) -> Result<Option<Vec<UserInfo>>, DbError> {
        let Some(db) = self.inner.snapshot().external.clone() else {
            return Ok(None);
        };
        block_on(async {
            let names = db.iterate().await?;
            let mut users = Vec::with_capacity(names.len());
            for name in names {
                // A user that vanished between the two queries is skipped.
                if let Some(u) = self.lookup_user(&name, "admin").await? {
                    users.push(u);
                }
            }
            Ok(Some(users))
        })?
    }
}

/// Runs `f` on a short-lived current-thread runtime.
fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, DbError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DbError::Unavailable(format!("runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// The users file's users, or none (and no file read) when users live in `external`.
fn load_users(
    opts: &AuthOptions,
    external: Option<&Arc<dyn UserDatabase>>,
) -> Result<(passwd::UserDb, FileStamp), AuthError> {
    match external {
        Some(_) => Ok((passwd::UserDb::default(), FileStamp::NONE)),
        None => load_db(&opts.users_file),
    }
}
