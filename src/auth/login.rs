//! The login path: per-address turns for the hashing pool, the blocking lookup and verification
//! (which costs the same for an unknown user as for a wrong password), and the penalty delay
//! after a failure.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::db::{DbError, LookupRequest, UserDatabase};
use super::penalty::{self, penalty_delay};
use super::pool::{HashPool, PoolError};
use super::scheme::{self, StoredHash, Verdict};
use super::user::check_passdb_fields;
use super::userdb::Snapshot;
use super::{Argon2Params, AuthError, AuthFailure, Authenticator, Inner, TempFailReason, UserInfo};
use crate::limits::{MAX_AUTH_HASHES_PER_FAILING_ADDRESS, MAX_PASSWORD_LEN, MAX_USERNAME_LEN};

/// One address's share of the hashing pool: `size` permits (the pool's thread count when the
/// entry was made). A login takes one; a login from an address with failures on record takes
/// `size / MAX_AUTH_HASHES_PER_FAILING_ADDRESS`, so at most that many of its verifications run
/// or queue at once.
pub(super) struct Turns {
    pub(super) permits: tokio::sync::Semaphore,
    pub(super) size: u32,
}

/// A client-supplied user name as it may appear in a log: cut to
/// `MAX_USERNAME_LEN` bytes (on a character boundary) so a 64 KiB LOGIN
/// argument cannot flood the log; callers log it with `?` so control
/// characters are escaped.
pub(super) fn log_name(user: &str) -> &str {
    let mut end = user.len().min(MAX_USERNAME_LEN);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user.get(..end).unwrap_or_default()
}

/// A job the hashing pool did not run (full queue or a failed job): logged and answered as a
/// temporary failure, without penalty, whatever the mechanism.
pub(super) fn pool_refused(user: &str, remote: IpAddr, e: PoolError) -> AuthFailure {
    match e {
        PoolError::Overloaded => {
            tracing::warn!(user = ?log_name(user), %remote, "authentication refused: hashing pool full");
            AuthFailure::TempFail(TempFailReason::Overloaded)
        }
        PoolError::Failed => {
            tracing::error!(user = ?log_name(user), %remote, "authentication job failed");
            AuthFailure::TempFail(TempFailReason::Internal)
        }
    }
}

/// Where a login comes from and for which service, for the `%r %l %s` variables of an SQL or
/// LDAP database's queries.
#[derive(Debug, Clone, Copy)]
pub struct LoginContext<'a> {
    /// The client's address (penalty, `allow_nets`, `%r`).
    pub remote: IpAddr,
    /// The address the client connected to (`%l`).
    pub local: Option<IpAddr>,
    /// `"imap"`, `"pop3"`, ... (`%s`).
    pub service: &'a str,
}

const DUMMY_PASSWORD: &[u8] = b"mailcove dummy password for unknown users";

pub(super) fn make_dummy(params: &Argon2Params) -> Result<StoredHash, AuthError> {
    let phc = scheme::hash_argon2id(DUMMY_PASSWORD, params)?;
    Ok(StoredHash::Argon2(phc))
}

impl Inner {
    /// The fast path of a login with the verified-credential cache on: `None` when `user` and
    /// `password` were not verified under the users loaded now (the caller then verifies), else
    /// the outcome, the passdb fields checked as on every login. Blocking (it may notice and
    /// load a changed users file, which empties the cache).
    fn check_cached(
        &self,
        user: &str,
        password: &[u8],
        remote: IpAddr,
    ) -> Option<Result<UserInfo, &'static str>> {
        self.refresh_quietly();
        let snap = self.snapshot();
        if user.len() > MAX_USERNAME_LEN || password.len() > MAX_PASSWORD_LEN {
            return None;
        }
        let entry = snap.db.get(user)?;
        if !snap.creds.hit(&entry.info.name, password) {
            return None;
        }
        Some(check_passdb_fields(&entry.info, remote).map(|()| entry.info.clone()))
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
                snap.creds.insert(&entry.info.name, password);
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

impl Authenticator {
    /// Checks `user`'s password; on success returns the user (name as in the
    /// file). Runs on the bounded hashing pool; a failure answers after the
    /// penalty delay of `remote`. Never reveals whether the user exists.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &[u8],
        remote: IpAddr,
    ) -> Result<UserInfo, AuthFailure> {
        let ctx = LoginContext {
            remote,
            local: None,
            service: "imap",
        };
        self.authenticate_with(user, password, ctx).await
    }

    /// [`authenticate`](Self::authenticate) with where the client connected and for which
    /// service: an SQL or LDAP database's queries may use them (`%r %l %s`).
    pub async fn authenticate_with(
        &self,
        user: &str,
        password: &[u8],
        ctx: LoginContext<'_>,
    ) -> Result<UserInfo, AuthFailure> {
        let remote = ctx.remote;
        let snap = self.inner.snapshot();
        let pool = Arc::clone(&snap.pool);
        let (base, max) = (snap.opts.failure_delay, snap.opts.failure_delay_max);
        let threads = snap.opts.hash_threads;
        let caches = snap.creds.enabled();
        if snap.external.is_some() {
            return self.authenticate_external(snap, user, password, ctx).await;
        }
        drop(snap);

        let cached = if caches {
            let inner = Arc::clone(&self.inner);
            let user_owned = user.to_owned();
            let password = Zeroizing::new(password.to_vec());
            tokio::task::spawn_blocking(move || inner.check_cached(&user_owned, &password, remote))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let from_cache = cached.is_some();
        let outcome = match cached {
            Some(result) => Ok(result),
            None => {
                let inner = Arc::clone(&self.inner);
                let user_owned = user.to_owned();
                let password = Zeroizing::new(password.to_vec());
                self.in_turn(remote, pool, threads, move || {
                    inner.check_blocking(&user_owned, &password, remote)
                })
                .await
            }
        };
        self.finish(user, remote, from_cache, outcome, base, max)
            .await
    }

    /// Records the outcome of a verification: success, or failure with the penalty delay, or
    /// a temporary failure.
    async fn finish(
        &self,
        user: &str,
        remote: IpAddr,
        from_cache: bool,
        outcome: Result<Result<UserInfo, &'static str>, PoolError>,
        base: Duration,
        max: Duration,
    ) -> Result<UserInfo, AuthFailure> {
        match outcome {
            Ok(Ok(info)) => {
                self.inner.penalty.record_success(remote);
                tracing::debug!(user = ?info.name, %remote, cached = from_cache, "authenticated");
                Ok(info)
            }
            Ok(Err(reason)) => {
                let failures = self.inner.penalty.record_failure(remote, Instant::now());
                let delay = penalty_delay(base, max, failures);
                tracing::info!(user = ?log_name(user), %remote, reason, failures, delay_ms = delay.as_millis() as u64, "authentication failed");
                tokio::time::sleep(delay).await;
                Err(AuthFailure::Invalid)
            }
            Err(e) => Err(pool_refused(user, remote, e)),
        }
    }

    /// Runs `job` on the hashing pool once `remote` has its turn: a password verification or
    /// a SCRAM key lookup, with the same per-address fairness (one slot for an address with
    /// failures on record).
    pub(super) async fn in_turn<T, F>(
        &self,
        remote: IpAddr,
        pool: Arc<HashPool>,
        threads: usize,
        job: F,
    ) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
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
        let outcome = pool.run(job).await;
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
        outcome
    }

    /// The login path of an SQL or LDAP database: the lookup is async (a down database is a
    /// temporary failure, without penalty), the hash is verified on the pool as for the users
    /// file (the same turns, dummy work for unknown users and cheap schemes, penalty), and the
    /// userdb is asked for home, quota and the rest once the password is right.
    async fn authenticate_external(
        &self,
        snap: Arc<Snapshot>,
        user: &str,
        password: &[u8],
        ctx: LoginContext<'_>,
    ) -> Result<UserInfo, AuthFailure> {
        let remote = ctx.remote;
        let pool = Arc::clone(&snap.pool);
        let (base, max) = (snap.opts.failure_delay, snap.opts.failure_delay_max);
        let threads = snap.opts.hash_threads;
        let Some(db) = snap.external.clone() else {
            return Err(AuthFailure::TempFail(TempFailReason::Internal));
        };
        let temp = |e: DbError| {
            tracing::warn!(user = ?log_name(user), %remote, database = db.kind(), error = %e, "authentication failed temporarily");
            Err(AuthFailure::TempFail(TempFailReason::Unavailable))
        };
        let pw = Zeroizing::new(password.to_vec());
        let dummy_job = |reason: &'static str| {
            let snap = Arc::clone(&snap);
            let pw = pw.clone();
            move || {
                scheme::verify(&snap.dummy, &pw, false);
                Err(reason)
            }
        };
        if user.len() > MAX_USERNAME_LEN || password.len() > MAX_PASSWORD_LEN {
            let outcome = self
                .in_turn(
                    remote,
                    pool,
                    threads,
                    dummy_job("user name or password too long"),
                )
                .await;
            return self.finish(user, remote, false, outcome, base, max).await;
        }
        let req = LookupRequest {
            user,
            remote: Some(remote),
            local: ctx.local,
            service: ctx.service,
        };
        let mut from_cache = false;
        let outcome = if let Some(verify) = db.verify_password(req, password) {
            // The database checks the password itself (LDAP auth bind).
            match verify.await {
                Ok(Some(rec)) => Ok(check_passdb_fields(&rec.info, remote).map(|()| rec.info)),
                Ok(None) => Ok(Err("unknown user or wrong password")),
                Err(e) => return temp(e),
            }
        } else {
            match db.password_lookup(req).await {
                Err(e) => return temp(e),
                Ok(None) => {
                    self.in_turn(remote, pool, threads, dummy_job("unknown user"))
                        .await
                }
                Ok(Some(rec)) => {
                    let stored = Zeroizing::new(rec.password.unwrap_or_else(|| "*".into()));
                    // The credential cache's name binds the stored hash: a password changed in
                    // the database is a different entry, never let in by an old one.
                    let cache_name = Zeroizing::new(format!("{}\0{}", rec.info.name, *stored));
                    if snap.creds.hit(&cache_name, password) {
                        from_cache = true;
                        Ok(check_passdb_fields(&rec.info, remote).map(|()| rec.info))
                    } else {
                        let snap = Arc::clone(&snap);
                        let info = rec.info;
                        let pw = pw.clone();
                        self.in_turn(remote, pool, threads, move || {
                            let allow_plain = snap.opts.allow_plaintext_schemes;
                            let hash = StoredHash::parse(&stored);
                            let verdict = scheme::verify(&hash, &pw, allow_plain);
                            if !matches!(
                                hash,
                                StoredHash::Argon2(_) | StoredHash::ShaCrypt(_) | StoredHash::Bcrypt(_)
                            ) {
                                scheme::verify(&snap.dummy, &pw, false);
                            }
                            match verdict {
                                Verdict::Match => {
                                    check_passdb_fields(&info, remote)?;
                                    snap.creds.insert(&cache_name, &pw);
                                    Ok(info)
                                }
                                Verdict::Mismatch => Err("wrong password"),
                                Verdict::Refused(reason) => {
                                    if let StoredHash::Unsupported { scheme, .. } = &hash {
                                        tracing::warn!(user = ?info.name, scheme, reason, "user cannot log in");
                                    }
                                    Err(reason)
                                }
                            }
                        })
                        .await
                    }
                }
            }
        };
        let outcome = match outcome {
            Ok(Ok(info)) => match self.with_userdb(&db, info, ctx).await {
                Ok(info) => Ok(Ok(info)),
                Err(e) => return temp(e),
            },
            other => other,
        };
        self.finish(user, remote, from_cache, outcome, base, max)
            .await
    }

    /// `info` from the passdb completed by the userdb (home, uid, gid, mail, quota rule, ...),
    /// as Dovecot looks the user up in its userdb after every login. The userdb's fields come
    /// first (a userdb `quota_rule` wins over a passdb one); a user the userdb does not know
    /// keeps what the passdb returned.
    async fn with_userdb(
        &self,
        db: &Arc<dyn UserDatabase>,
        info: UserInfo,
        ctx: LoginContext<'_>,
    ) -> Result<UserInfo, DbError> {
        let req = LookupRequest {
            user: &info.name,
            remote: Some(ctx.remote),
            local: ctx.local,
            service: ctx.service,
        };
        let Some(mut user) = db.user_lookup(req).await? else {
            return Ok(info);
        };
        user.name = info.name;
        user.home = user.home.or(info.home);
        user.uid = user.uid.or(info.uid);
        user.gid = user.gid.or(info.gid);
        user.extra.extend(info.extra);
        Ok(user)
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
    use std::path::Path;
    use std::sync::Mutex;

    use super::*;
    use crate::auth::AuthOptions;

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

    /// Logins against an external database: the hash is verified here, a down database is a
    /// temporary failure without penalty, and the credential cache is keyed by the stored hash.
    #[tokio::test]
    async fn external_database_logins() {
        use crate::auth::lookup_cache::fake::FakeDb;
        use std::sync::atomic::Ordering as O;

        let dir = tempfile::tempdir().unwrap();
        let mut o = one_slot_pool_options(&dir.path().join("no-such-users-file"));
        o.max_queued = 8;
        o.failure_delay = Duration::from_millis(1);
        o.failure_delay_max = Duration::from_millis(1);
        o.credential_cache_ttl = Duration::from_secs(60);
        let params = o.argon2;
        let db = Arc::new(FakeDb::default());
        let hash = |pw: &[u8]| {
            format!(
                "{{ARGON2ID}}{}",
                scheme::hash_argon2id(pw, &params).unwrap()
            )
        };
        db.users.lock().unwrap().insert("ann".into(), hash(b"one"));
        // The users file is not read: it does not exist.
        let auth = Authenticator::with_database(o, Some(db.clone())).unwrap();
        assert!(auth.has_database());
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let name = |r: Result<UserInfo, AuthFailure>| r.map(|u| u.name);

        assert_eq!(
            name(auth.authenticate("ann", b"one", ip).await),
            Ok("ann".into())
        );
        assert_eq!(
            auth.authenticate("ann", b"two", ip).await,
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            auth.authenticate("bob", b"one", ip).await,
            Err(AuthFailure::Invalid)
        );
        assert_eq!(auth.failures(ip), 2);

        // A changed password: the cached success for the old hash no longer lets "one" in.
        db.users.lock().unwrap().insert("ann".into(), hash(b"two"));
        assert_eq!(
            auth.authenticate("ann", b"one", ip).await,
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            name(auth.authenticate("ann", b"two", ip).await),
            Ok("ann".into())
        );

        // Down: a temporary failure, and no failure counted against the client.
        db.down.store(true, O::SeqCst);
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            auth.authenticate("ann", b"two", other).await,
            Err(AuthFailure::TempFail(TempFailReason::Unavailable))
        );
        assert_eq!(auth.failures(other), 0);
        assert!(auth.lookup_user("ann", "lmtp").await.is_err());
        db.down.store(false, O::SeqCst);
        assert_eq!(
            auth.lookup_user("ann", "lmtp")
                .await
                .map(|u| u.map(|u| u.name)),
            Ok(Some("ann".into()))
        );
        assert_eq!(auth.lookup_user("zed", "lmtp").await, Ok(None));
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
}
