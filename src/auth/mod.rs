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
//! * **Admin** ([`admin`]): the `user` CLI: edits the file atomically,
//!   leaving every other byte in place.
//!
//! Passwords and SASL payloads are never logged; logs carry the user name
//! (Debug-escaped, as it comes from the client), remote address and reason.

pub mod admin;
pub mod passwd;
pub mod penalty;
pub mod pool;
pub mod sasl;
pub mod scheme;

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, TryLockError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::limits::{
    DEFAULT_ARGON2_M_COST_KIB, DEFAULT_ARGON2_P_COST, DEFAULT_ARGON2_T_COST,
    DEFAULT_AUTH_FAILURE_DELAY_MAX_MS, DEFAULT_AUTH_FAILURE_DELAY_MS, DEFAULT_AUTH_MAX_QUEUED,
    MAX_AUTH_HASHES_PER_FAILING_ADDRESS, MAX_PASSWORD_LEN, MAX_USERNAME_LEN, MAX_USERS_FILE_SIZE,
    USERS_FILE_CHECK_INTERVAL_MS,
};
use passwd::UserDb;
use penalty::{PenaltyTable, penalty_delay};
use pool::{HashPool, PoolError};
use scheme::{StoredHash, Verdict};

/// Argon2id costs for newly created hashes (and the dummy hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB (`m=`).
    pub m_cost_kib: u32,
    /// Iterations (`t=`).
    pub t_cost: u32,
    /// Lanes (`p=`).
    pub p_cost: u32,
}

impl Default for Argon2Params {
    /// OWASP's recommendation: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self {
            m_cost_kib: DEFAULT_ARGON2_M_COST_KIB,
            t_cost: DEFAULT_ARGON2_T_COST,
            p_cost: DEFAULT_ARGON2_P_COST,
        }
    }
}

impl Argon2Params {
    /// Checks the costs are accepted by Argon2 and within the limits a stored
    /// hash may have (so mailcove can verify the hashes it makes).
    pub fn validate(&self) -> Result<(), AuthError> {
        argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, None)
            .map_err(|e| AuthError::InvalidOptions(format!("argon2 parameters: {e}")))?;
        if self.m_cost_kib > crate::limits::MAX_ARGON2_M_COST_KIB
            || self.t_cost > crate::limits::MAX_ARGON2_T_COST
            || self.p_cost > crate::limits::MAX_ARGON2_P_COST
        {
            return Err(AuthError::InvalidOptions(
                "argon2 parameters above limits::MAX_ARGON2_*".into(),
            ));
        }
        Ok(())
    }
}

/// Everything the auth module is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOptions {
    /// The passwd-file.
    pub users_file: PathBuf,
    /// Let `{PLAIN}`/`{CLEARTEXT}` entries log in (off: they cannot).
    pub allow_plaintext_schemes: bool,
    /// Delay after the first consecutive failure from an address.
    pub failure_delay: Duration,
    /// Cap of the doubling delay.
    pub failure_delay_max: Duration,
    /// Verifications running at once (at least 1).
    pub hash_threads: usize,
    /// Verifications allowed to wait for a thread; beyond, TempFail.
    pub max_queued: usize,
    /// Costs for new hashes and the dummy hash.
    pub argon2: Argon2Params,
}

impl AuthOptions {
    /// Defaults for `users_file`: plaintext refused, Dovecot's 2 s / 15 s
    /// penalty, one hashing thread per CPU, `DEFAULT_AUTH_MAX_QUEUED` queue,
    /// OWASP Argon2id costs.
    pub fn new(users_file: impl Into<PathBuf>) -> Self {
        Self {
            users_file: users_file.into(),
            allow_plaintext_schemes: false,
            failure_delay: Duration::from_millis(DEFAULT_AUTH_FAILURE_DELAY_MS),
            failure_delay_max: Duration::from_millis(DEFAULT_AUTH_FAILURE_DELAY_MAX_MS),
            hash_threads: default_hash_threads(),
            max_queued: DEFAULT_AUTH_MAX_QUEUED,
            argon2: Argon2Params::default(),
        }
    }

    /// Checks the options are usable.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.hash_threads == 0 {
            return Err(AuthError::InvalidOptions(
                "hash_threads must be at least 1".into(),
            ));
        }
        if self.failure_delay > self.failure_delay_max {
            return Err(AuthError::InvalidOptions(
                "failure_delay must not exceed failure_delay_max".into(),
            ));
        }
        self.argon2.validate()
    }
}

/// One hashing thread per available CPU (at least one).
pub fn default_hash_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A user as the users file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The name as written in the file (use it, not what the client typed).
    pub name: String,
    /// uid field, if set.
    pub uid: Option<u32>,
    /// gid field, if set.
    pub gid: Option<u32>,
    /// home field, if set.
    pub home: Option<PathBuf>,
    /// Extra fields in file order: `key=value` as `(key, Some(value))`, bare
    /// `key` as `(key, None)`; keys keep their `userdb_` prefix.
    pub extra: Vec<(String, Option<String>)>,
}

impl UserInfo {
    /// The value of extra field `key`, preferring `userdb_<key>` over `key`
    /// (Dovecot's userdb fields); a bare key yields `Some("")`.
    pub fn field(&self, key: &str) -> Option<&str> {
        let userdb_key = format!("userdb_{key}");
        let find = |k: &str| {
            self.extra
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_deref().unwrap_or(""))
        };
        find(&userdb_key).or_else(|| find(key))
    }
}

/// Errors of loading, reloading and editing the users file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than `limits::MAX_USERS_FILE_SIZE`.
    #[error("{}: larger than limits::MAX_USERS_FILE_SIZE", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A line of the file is invalid; nothing of the file was used.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The options are unusable.
    #[error("invalid auth options: {0}")]
    InvalidOptions(String),
    /// Hashing a password failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A user name given to an admin function is invalid.
    #[error("invalid user name: {0}")]
    InvalidUsername(&'static str),
    /// An extra field given to an admin function is invalid.
    #[error("invalid extra field {0:?}: must be key or key=value without whitespace")]
    InvalidExtraField(String),
    /// `user_add` for a user already in the file.
    #[error("user {0:?} already exists")]
    UserExists(String),
    /// `user_passwd` / `user_del` for a user not in the file.
    #[error("no such user {0:?}")]
    UnknownUser(String),
}

/// Why a login did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Wrong user or password (deliberately indistinguishable); answer
    /// `NO [AUTHENTICATIONFAILED]` / `-ERR [AUTH]`.
    #[error("invalid credentials")]
    Invalid,
    /// The server could not check now; answer `NO [UNAVAILABLE]` /
    /// `-ERR [SYS/TEMP]` so the client retries later.
    #[error("authentication temporarily unavailable: {0}")]
    TempFail(TempFailReason),
}

/// Why a login failed temporarily.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TempFailReason {
    /// All hashing threads busy and the queue full.
    #[error("too many logins in progress")]
    Overloaded,
    /// An internal failure (a hashing job failed, runtime shutting down).
    #[error("internal error")]
    Internal,
}

/// A consistent view: options, the users, and what goes with them.
struct Snapshot {
    opts: AuthOptions,
    db: Arc<UserDb>,
    stamp: FileStamp,
    dummy: Arc<StoredHash>,
    pool: Arc<HashPool>,
}

/// What identifies one version of the users file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
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
struct CheckState {
    last_check: Option<Instant>,
    /// A version that failed to load, not retried until the file changes.
    bad: Option<FileStamp>,
    /// The file could not be stat'ed last time (logged once).
    unreadable: bool,
}

struct Inner {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes reloads and throttles change checks.
    check: Mutex<CheckState>,
    penalty: PenaltyTable,
    /// Per-address turns for the hashing pool. An entry lives only while some login of that
    /// address holds or waits for it, so the map is bounded by the connections in login.
    turns: Mutex<HashMap<IpAddr, Arc<Turns>>>,
}

/// One address's share of the hashing pool: `size` permits (the pool's thread count when the
/// entry was made). A login takes one; a login from an address with failures on record takes
/// `size / MAX_AUTH_HASHES_PER_FAILING_ADDRESS`, so at most that many of its verifications run
/// or queue at once.
struct Turns {
    permits: tokio::sync::Semaphore,
    size: u32,
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

fn load_db(path: &Path) -> Result<(UserDb, FileStamp), AuthError> {
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

/// A client-supplied user name as it may appear in a log: cut to
/// `MAX_USERNAME_LEN` bytes (on a character boundary) so a 64 KiB LOGIN
/// argument cannot flood the log; callers log it with `?` so control
/// characters are escaped.
fn log_name(user: &str) -> &str {
    let mut end = user.len().min(MAX_USERNAME_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user.get(..end).unwrap_or_default()
}

const DUMMY_PASSWORD: &[u8] = b"mailcove dummy password for unknown users";

fn make_dummy(params: &Argon2Params) -> Result<StoredHash, AuthError> {
    let phc = scheme::hash_argon2id(DUMMY_PASSWORD, params)?;
    Ok(StoredHash::Argon2(phc))
}

impl Inner {
    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn replace(&self, snap: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    /// Re-reads the users file if it changed on disk; at most once per
    /// interval unless `force`. Returns whether a new version was loaded.
    fn refresh(&self, force: bool) -> Result<bool, AuthError> {
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

    fn refresh_quietly(&self) {
        // Errors were logged by `refresh`; the previous users stay in force.
        let _ = self.refresh(false);
    }

    /// The blocking part of a login: lookup and verification.
    fn check_blocking(
        &self,
        user: &str,
        password: &[u8],
        remote: IpAddr,
    ) -> Result<UserInfo, &'static str> {
        self.refresh_quietly();
        let snap = self.snapshot();
        let allow_plain = snap.opts.allow_plaintext_schemes;
        let dummy_work = || scheme::verify(&snap.dummy, password, false);
        if user.len() > MAX_USERNAME_LEN || password.len() > MAX_PASSWORD_LEN {
            dummy_work();
            return Err("user name or password too long");
        }
        let Some(entry) = snap.db.get(user) else {
            dummy_work();
            return Err("unknown user");
        };
        let verdict = scheme::verify(&entry.hash, password, allow_plain);
        if !matches!(
            entry.hash,
            StoredHash::Argon2(_) | StoredHash::ShaCrypt(_) | StoredHash::Bcrypt(_)
        ) {
            dummy_work();
        }
        match verdict {
            Verdict::Match => {
                check_passdb_fields(&entry.info, remote)?;
                Ok(entry.info.clone())
            }
            Verdict::Mismatch => Err("wrong password"),
            Verdict::Refused(reason) => {
                let scheme = match &entry.hash {
                    StoredHash::Unsupported { scheme, .. } => Some(scheme.as_str()),
                    StoredHash::Plain(_) => Some("PLAIN"),
                    _ => None,
                };
                if let Some(scheme) = scheme
                    && !entry.warned.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(user = ?entry.info.name, scheme, reason, "user cannot log in");
                }
                Err(reason)
            }
        }
    }
}

/// Dovecot passdb extra fields that restrict a correct login: `nologin`
/// and `allow_nets`. Unparsable nets deny (fail closed).
fn check_passdb_fields(info: &UserInfo, remote: IpAddr) -> Result<(), &'static str> {
    if info.extra.iter().any(|(k, _)| k == "nologin") {
        return Err("nologin set for user");
    }
    if let Some((_, nets)) = info.extra.iter().find(|(k, _)| k == "allow_nets") {
        let remote = remote.to_canonical();
        let nets = nets.as_deref().unwrap_or("");
        if !nets
            .split(',')
            .any(|net| ip_in_net(remote, net.trim()).unwrap_or(false))
        {
            return Err("remote address not in allow_nets");
        }
    }
    Ok(())
}

/// Whether `ip` is in `net` (`addr` or `addr/prefix`); `None` if unparsable.
fn ip_in_net(ip: IpAddr, net: &str) -> Option<bool> {
    let (addr, prefix) = match net.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u32>().ok()?)),
        None => (net, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    match (ip, addr.to_canonical()) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = prefix.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            Some(u32::from(ip) & mask == u32::from(net) & mask)
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = prefix.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            Some(u128::from(ip) & mask == u128::from(net) & mask)
        }
        _ => Some(false),
    }
}

impl Authenticator {
    /// Validates `opts`, reads the users file and prepares the dummy hash
    /// (one Argon2id hash: call it at startup, not on a tokio worker).
    pub fn new(opts: AuthOptions) -> Result<Self, AuthError> {
        opts.validate()?;
        let (db, stamp) = load_db(&opts.users_file)?;
        let dummy = make_dummy(&opts.argon2)?;
        let pool = HashPool::new(opts.hash_threads, opts.max_queued);
        tracing::info!(users_file = %opts.users_file.display(), users = db.len(), "users loaded");
        Ok(Self {
            inner: Arc::new(Inner {
                snapshot: RwLock::new(Arc::new(Snapshot {
                    opts,
                    db: Arc::new(db),
                    stamp,
                    dummy: Arc::new(dummy),
                    pool: Arc::new(pool),
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
    /// New pool sizes apply to logins started after the reload.
    pub fn reload(&self, opts: AuthOptions) -> Result<(), AuthError> {
        opts.validate()?;
        let mut check = self.inner.check.lock().unwrap_or_else(|e| e.into_inner());
        let (db, stamp) = load_db(&opts.users_file)?;
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
        tracing::info!(users_file = %opts.users_file.display(), users = db.len(), "users reloaded");
        self.inner.replace(Snapshot {
            opts,
            db: Arc::new(db),
            stamp,
            dummy,
            pool,
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

    /// Checks `user`'s password; on success returns the user (name as in the
    /// file). Runs on the bounded hashing pool; a failure answers after the
    /// penalty delay of `remote`. Never reveals whether the user exists.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &[u8],
        remote: IpAddr,
    ) -> Result<UserInfo, AuthFailure> {
        let snap = self.inner.snapshot();
        let pool = Arc::clone(&snap.pool);
        let (base, max) = (snap.opts.failure_delay, snap.opts.failure_delay_max);
        let threads = snap.opts.hash_threads;
        drop(snap);

        let key = penalty::penalty_key(remote);
        let turn = Arc::clone(
            self.inner
                .turns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert_with(|| {
                    let size = u32::try_from(threads.max(1)).unwrap_or(u32::MAX);
                    Arc::new(Turns {
                        permits: tokio::sync::Semaphore::new(size as usize),
                        size,
                    })
                }),
        );
        let take = if self.inner.penalty.failures(remote, Instant::now()) > 0 {
            (turn.size / MAX_AUTH_HASHES_PER_FAILING_ADDRESS).max(1)
        } else {
            1
        };
        // The semaphore is never closed and `take` never exceeds its size, so this only waits.
        let permit = turn.permits.acquire_many(take).await.ok();
        let inner = Arc::clone(&self.inner);
        let user_owned = user.to_owned();
        let password = Zeroizing::new(password.to_vec());
        let outcome = pool
            .run(move || inner.check_blocking(&user_owned, &password, remote))
            .await;
        drop(permit);
        {
            let mut turns = self.inner.turns.lock().unwrap_or_else(|e| e.into_inner());
            // Clones are only made under this lock: two references (map and ours) mean
            // nobody else holds or awaits this address's turn.
            if Arc::strong_count(&turn) == 2 {
                turns.remove(&key);
            }
        }
        drop(turn);
        match outcome {
            Ok(Ok(info)) => {
                self.inner.penalty.record_success(remote);
                tracing::debug!(user = ?info.name, %remote, "authenticated");
                Ok(info)
            }
            Ok(Err(reason)) => {
                let failures = self.inner.penalty.record_failure(remote, Instant::now());
                let delay = penalty_delay(base, max, failures);
                tracing::info!(user = ?log_name(user), %remote, reason, failures, delay_ms = delay.as_millis() as u64, "authentication failed");
                tokio::time::sleep(delay).await;
                Err(AuthFailure::Invalid)
            }
            Err(PoolError::Overloaded) => {
                tracing::warn!(user = ?log_name(user), %remote, "authentication refused: hashing pool full");
                Err(AuthFailure::TempFail(TempFailReason::Overloaded))
            }
            Err(PoolError::Failed) => {
                tracing::error!(user = ?log_name(user), %remote, "authentication job failed");
                Err(AuthFailure::TempFail(TempFailReason::Internal))
            }
        }
    }

    /// Finds a user without a password (LMTP, `deliver`): `user` or
    /// `user@domain`, case-insensitively; a bare `user` does not match a
    /// `user@domain` entry. May re-read a changed file (blocking, cheap).
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

    /// Consecutive failures currently counted against `remote`.
    pub fn failures(&self, remote: IpAddr) -> u32 {
        self.inner.penalty.failures(remote, Instant::now())
    }

    /// The penalty delay a failure from `remote` would cost now.
    pub fn next_failure_delay(&self, remote: IpAddr) -> Duration {
        let snap = self.inner.snapshot();
        penalty_delay(
            snap.opts.failure_delay,
            snap.opts.failure_delay_max,
            self.failures(remote).saturating_add(1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_for(cond: impl Fn() -> bool) {
        for _ in 0..2000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Options with a cheap hash and a pool of one thread and one queue place, so a test can
    /// fill the pool deterministically.
    fn one_slot_pool_options(path: &Path) -> AuthOptions {
        let mut o = AuthOptions::new(path);
        o.argon2 = Argon2Params {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        };
        o.hash_threads = 1;
        o.max_queued = 1;
        o
    }

    #[tokio::test]
    async fn full_pool_gives_tempfail_without_penalty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "p:{PLAIN}pw\n").unwrap();
        let mut o = one_slot_pool_options(&path);
        o.allow_plaintext_schemes = true;
        let auth = Arc::new(Authenticator::new(o).unwrap());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();

        // Occupy the only hashing thread with a job we release later.
        let pool = Arc::clone(&auth.inner.snapshot().pool);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || rx.recv_timeout(Duration::from_secs(30)).is_ok())
                    .await
            })
        };
        wait_for(|| pool.running() == 1).await;
        let queued = {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.authenticate("p", b"pw", ip).await })
        };
        wait_for(|| pool.queued() == 1).await;
        assert_eq!(pool.queued(), 1);

        // Other addresses find the queue full (the same address would wait for its turn).
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(
            auth.authenticate("p", b"pw", other).await,
            Err(AuthFailure::TempFail(TempFailReason::Overloaded))
        );
        assert_eq!(
            auth.authenticate("p", b"wrong", other).await,
            Err(AuthFailure::TempFail(TempFailReason::Overloaded))
        );
        assert_eq!(auth.failures(other), 0);

        tx.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(true));
        assert_eq!(queued.await.unwrap().map(|u| u.name), Ok("p".to_owned()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_address_waits_for_its_turn_and_never_fills_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "p:{PLAIN}pw\n").unwrap();
        let mut o = one_slot_pool_options(&path);
        o.failure_delay = Duration::ZERO;
        o.failure_delay_max = Duration::ZERO;
        o.allow_plaintext_schemes = true;
        let auth = Arc::new(Authenticator::new(o).unwrap());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Twenty logins from one address at once, with a queue of one: none is refused as
        // overloaded, because the address never has more than one check queued or running.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let auth = Arc::clone(&auth);
                let pw: &'static [u8] = if i % 2 == 0 { b"pw" } else { b"wrong" };
                tokio::spawn(async move { auth.authenticate("p", pw, ip).await })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.unwrap();
            if i % 2 == 0 {
                assert_eq!(r.map(|u| u.name), Ok("p".to_owned()));
            } else {
                assert_eq!(r, Err(AuthFailure::Invalid));
            }
        }
        // Nothing is left behind for the address.
        assert!(auth.inner.turns.lock().unwrap().is_empty());
    }

    /// Starts one login per password from `ip` at once and returns the largest number of
    /// verifications seen running together.
    async fn peak_running(
        auth: &Arc<Authenticator>,
        ip: IpAddr,
        passwords: &[&'static [u8]],
    ) -> usize {
        let pool = Arc::clone(&auth.inner.snapshot().pool);
        let tasks: Vec<_> = passwords
            .iter()
            .map(|&pw| {
                let auth = Arc::clone(auth);
                tokio::spawn(async move { auth.authenticate("p", pw, ip).await })
            })
            .collect();
        let mut peak = 0;
        while !tasks.iter().all(|t| t.is_finished()) {
            peak = peak.max(pool.running());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for t in tasks {
            t.await.unwrap().ok();
        }
        peak
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_address_uses_every_hashing_thread_a_failing_one_only_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        // Costly enough (tens of milliseconds in a debug build) for the overlap to be seen.
        let params = Argon2Params {
            m_cost_kib: 8192,
            t_cost: 2,
            p_cost: 1,
        };
        let hash = scheme::hash_argon2id(b"pw", &params).unwrap();
        std::fs::write(&path, format!("p:{hash}\n")).unwrap();
        let mut o = AuthOptions::new(&path);
        o.argon2 = params;
        o.hash_threads = 2;
        o.max_queued = 8;
        o.failure_delay = Duration::ZERO;
        o.failure_delay_max = Duration::ZERO;
        let auth = Arc::new(Authenticator::new(o).unwrap());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        // A webmail front end logging two users in: both checks run at once.
        assert_eq!(peak_running(&auth, ip, &[b"pw", b"pw"]).await, 2);
        // Once the address has a failure on record, its checks run one at a time.
        assert_eq!(
            auth.authenticate("p", b"wrong", ip).await,
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            peak_running(&auth, ip, &[b"bad1", b"bad2", b"bad3"]).await,
            1
        );
        assert!(auth.inner.turns.lock().unwrap().is_empty());
    }

    #[test]
    fn log_name_is_bounded_on_a_char_boundary() {
        assert_eq!(log_name("alice"), "alice");
        let long = "é".repeat(200); // 400 bytes
        let cut = log_name(&long);
        assert!(cut.len() <= MAX_USERNAME_LEN);
        assert!(cut.len() >= MAX_USERNAME_LEN - 1);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    /// Collects formatted log output for inspection.
    #[derive(Clone, Default)]
    struct LogBuf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for LogBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
        type Writer = LogBuf;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[tokio::test]
    async fn failure_log_names_user_and_address_never_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "alice:{PLAIN}pw\n").unwrap();
        let mut o = AuthOptions::new(&path);
        o.argon2 = Argon2Params {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        };
        o.failure_delay = Duration::from_millis(1);
        o.failure_delay_max = Duration::from_millis(1);
        o.allow_plaintext_schemes = true;
        let auth = Authenticator::new(o).unwrap();

        let logs = LogBuf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(
            auth.authenticate("alice", b"Sup3rSecretGuess", ip).await,
            Err(AuthFailure::Invalid)
        );
        assert!(auth.authenticate("alice", b"pw", ip).await.is_ok());
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("authentication failed"), "{text}");
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains("203.0.113.5"), "{text}");
        assert!(text.contains("wrong password"), "{text}");
        assert!(!text.contains("Sup3rSecretGuess"), "{text}");
    }

    #[tokio::test]
    async fn unusable_scheme_is_warned_about_once_per_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(
            &path,
            "md5:{MD5-CRYPT}$1$abc$def\nplain:{PLAIN}pw\nlocked:*\n",
        )
        .unwrap();
        let mut o = AuthOptions::new(&path);
        o.argon2 = Argon2Params {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        };
        o.failure_delay = Duration::ZERO;
        o.failure_delay_max = Duration::ZERO;
        let auth = Authenticator::new(o).unwrap();
        let ip: IpAddr = "192.0.2.2".parse().unwrap();
        let warned = |user: &str| {
            auth.inner
                .snapshot()
                .db
                .get(user)
                .map(|e| e.warned.load(Ordering::Relaxed))
        };
        assert_eq!(warned("md5"), Some(false));
        for user in ["md5", "plain", "locked"] {
            for _ in 0..2 {
                assert_eq!(
                    auth.authenticate(user, b"pw", ip).await,
                    Err(AuthFailure::Invalid)
                );
            }
        }
        assert_eq!(warned("md5"), Some(true));
        assert_eq!(warned("plain"), Some(true));
        // A deliberately locked account is not an admin mistake: no warning.
        assert_eq!(warned("locked"), Some(false));
    }

    #[test]
    fn nets() {
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(ip_in_net(v4, "192.0.2.0/24"), Some(true));
        assert_eq!(ip_in_net(v4, "192.0.3.0/24"), Some(false));
        assert_eq!(ip_in_net(v4, "192.0.2.9"), Some(true));
        assert_eq!(ip_in_net(v4, "0.0.0.0/0"), Some(true));
        assert_eq!(ip_in_net(v4, "::/0"), Some(false));
        assert_eq!(ip_in_net(v4, "192.0.2.0/33"), None);
        assert_eq!(ip_in_net(v4, "nonsense"), None);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_in_net(v6, "2001:db8::/32"), Some(true));
        assert_eq!(ip_in_net(v6, "2001:db9::/32"), Some(false));
    }

    #[test]
    fn passdb_fields_restrict_correct_logins() {
        let mut info = UserInfo {
            name: "a".into(),
            uid: None,
            gid: None,
            home: None,
            extra: vec![("allow_nets".into(), Some("10.0.0.0/8,::1".into()))],
        };
        assert!(check_passdb_fields(&info, "10.1.2.3".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "::ffff:10.1.2.3".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "::1".parse().unwrap()).is_ok());
        assert!(check_passdb_fields(&info, "192.0.2.1".parse().unwrap()).is_err());
        info.extra = vec![("nologin".into(), None)];
        assert!(check_passdb_fields(&info, "10.1.2.3".parse().unwrap()).is_err());
    }

    #[test]
    fn field_prefers_userdb_prefix() {
        let info = UserInfo {
            name: "a".into(),
            uid: None,
            gid: None,
            home: None,
            extra: vec![
                ("quota_rule".into(), Some("passdb".into())),
                ("userdb_quota_rule".into(), Some("*:storage=1G".into())),
                ("flag".into(), None),
            ],
        };
        assert_eq!(info.field("quota_rule"), Some("*:storage=1G"));
        assert_eq!(info.field("flag"), Some(""));
        assert_eq!(info.field("missing"), None);
    }
}
