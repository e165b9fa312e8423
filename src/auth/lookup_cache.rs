//! The per-database lookup cache, Dovecot's `auth_cache_ttl` / `auth_cache_negative_ttl` /
//! `auth_cache_size`: an SQL or LDAP database is asked once per user (and client address and
//! service, which its queries may use) per TTL instead of on every login and delivery.
//!
//! * Found users are kept `cache_ttl_secs`, "no such user" answers `cache_negative_ttl_secs`
//!   (zero: not kept). A changed password in the database is thus seen after at most the TTL,
//!   as in Dovecot.
//! * A temporary failure ([`super::db::DbError`]) is never cached: the next lookup asks the database.
//! * At most `cache_size` entries per kind of lookup; when full, expired entries go first, then
//!   the older half. A reload opens the database anew, with an empty cache.
//! * `verify_password` (LDAP auth bind) is passed through: its answer depends on the password.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::UserInfo;
use super::db::{DbError, DbFuture, LookupRequest, PassRecord, UserDatabase};

/// What a lookup is keyed by: every variable a query may use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    remote: Option<IpAddr>,
    local: Option<IpAddr>,
    service: String,
}

impl Key {
    fn of(req: &LookupRequest<'_>) -> Self {
        Key {
            user: req.user.to_owned(),
            remote: req.remote,
            local: req.local,
            service: req.service.to_owned(),
        }
    }
}

/// One kind of lookup's entries.
struct Table<V> {
    entries: Mutex<HashMap<Key, (Option<V>, Instant)>>,
}

impl<V: Clone> Table<V> {
    fn new() -> Self {
        Table {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &Key) -> Option<Option<V>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: Key, value: Option<V>, ttl: Duration, capacity: usize) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= capacity {
                let mut ends: Vec<Instant> = entries.values().map(|(_, u)| *u).collect();
                let mid = ends.len() / 2;
                let (_, cut, _) = ends.select_nth_unstable(mid);
                let cut = *cut;
                entries.retain(|_, (_, until)| *until > cut);
            }
        }
        entries.insert(key, (value, now + ttl));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A [`UserDatabase`] with its lookups cached.
pub struct CachedDatabase {
    inner: Arc<dyn UserDatabase>,
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    pass: Table<PassRecord>,
    user: Table<UserInfo>,
}

impl CachedDatabase {
    /// `inner` with found users kept `ttl`, unknown ones `negative_ttl`, at most `capacity`
    /// entries per kind of lookup.
    pub fn new(
        inner: Arc<dyn UserDatabase>,
        ttl: Duration,
        negative_ttl: Duration,
        capacity: usize,
    ) -> Self {
        CachedDatabase {
            inner,
            ttl,
            negative_ttl,
            capacity: capacity.max(1),
            pass: Table::new(),
            user: Table::new(),
        }
    }

    /// `table`'s unexpired answer for `key`, or else `lookup`'s (asked only then), which is
    /// then kept for its TTL (a database error is not kept).
    async fn through<'a, V: Clone>(
        &self,
        table: &Table<V>,
        key: Key,
        lookup: impl FnOnce() -> DbFuture<'a, Option<V>>,
    ) -> Result<Option<V>, DbError> {
        if let Some(hit) = table.get(&key) {
            return Ok(hit);
        }
        let found = lookup().await?;
        table.put(key, found.clone(), self.ttl_for(&found), self.capacity);
        Ok(found)
    }

    fn ttl_for<V>(&self, value: &Option<V>) -> Duration {
        if value.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        }
    }
}

impl UserDatabase for CachedDatabase {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn password_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<PassRecord>> {
        let key = Key::of(&req);
        Box::pin(self.through(&self.pass, key, move || self.inner.password_lookup(req)))
    }

    fn verify_password<'a>(
        &'a self,
        req: LookupRequest<'a>,
        password: &'a [u8],
    ) -> Option<DbFuture<'a, Option<PassRecord>>> {
        self.inner.verify_password(req, password)
    }

    fn user_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<UserInfo>> {
        let key = Key::of(&req);
        Box::pin(self.through(&self.user, key, move || self.inner.user_lookup(req)))
    }

    fn iterate(&self) -> DbFuture<'_, Vec<String>> {
        self.inner.iterate()
    }
}

/// Used by tests: a database answering from a table, counting its calls, failing on demand.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::super::db::DbError;
    use super::*;

    #[derive(Default)]
    pub(crate) struct FakeDb {
        pub(crate) users: Mutex<HashMap<String, String>>,
        pub(crate) calls: AtomicUsize,
        pub(crate) down: AtomicBool,
    }

    fn info(name: &str) -> UserInfo {
        UserInfo {
            name: name.to_owned(),
            uid: None,
            gid: None,
            home: None,
            extra: Vec::new(),
        }
    }

    impl UserDatabase for FakeDb {
        fn kind(&self) -> &'static str {
            "fake"
        }

        fn password_lookup<'a>(
            &'a self,
            req: LookupRequest<'a>,
        ) -> DbFuture<'a, Option<PassRecord>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    return Err(DbError::Unavailable("down".into()));
                }
                let users = self.users.lock().unwrap();
                Ok(users.get(req.user).map(|pw| PassRecord {
                    info: info(req.user),
                    password: Some(pw.clone()),
                }))
            })
        }

        fn user_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<UserInfo>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    return Err(DbError::Unavailable("down".into()));
                }
                let users = self.users.lock().unwrap();
                Ok(users.contains_key(req.user).then(|| info(req.user)))
            })
        }

        fn iterate(&self) -> DbFuture<'_, Vec<String>> {
            Box::pin(async move {
                let mut names: Vec<String> = self.users.lock().unwrap().keys().cloned().collect();
                names.sort();
                Ok(names)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::fake::FakeDb;
    use super::*;

    fn req(user: &str) -> LookupRequest<'_> {
        LookupRequest {
            user,
            remote: None,
            local: None,
            service: "lmtp",
        }
    }

    #[tokio::test]
    async fn positive_negative_and_never_failures() {
        let db = Arc::new(FakeDb::default());
        db.users
            .lock()
            .unwrap()
            .insert("a".into(), "{PLAIN}1".into());
        let cached = CachedDatabase::new(
            db.clone(),
            Duration::from_millis(200),
            Duration::from_millis(100),
            100,
        );
        let pw = |r: Option<PassRecord>| r.and_then(|r| r.password);
        assert_eq!(
            pw(cached.password_lookup(req("a")).await.unwrap()).as_deref(),
            Some("{PLAIN}1")
        );
        db.users
            .lock()
            .unwrap()
            .insert("a".into(), "{PLAIN}2".into());
        // Within the TTL the old answer stands, after it the new one.
        assert_eq!(
            pw(cached.password_lookup(req("a")).await.unwrap()).as_deref(),
            Some("{PLAIN}1")
        );
        assert_eq!(db.calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(
            pw(cached.password_lookup(req("a")).await.unwrap()).as_deref(),
            Some("{PLAIN}2")
        );

        // Negative answers are kept the negative TTL.
        assert!(cached.user_lookup(req("b")).await.unwrap().is_none());
        db.users
            .lock()
            .unwrap()
            .insert("b".into(), "{PLAIN}3".into());
        assert!(cached.user_lookup(req("b")).await.unwrap().is_none());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(cached.user_lookup(req("b")).await.unwrap().is_some());

        // Failures are not kept.
        db.down.store(true, Ordering::SeqCst);
        assert!(cached.user_lookup(req("c")).await.is_err());
        db.down.store(false, Ordering::SeqCst);
        assert!(cached.user_lookup(req("c")).await.unwrap().is_none());
    }

    #[test]
    fn bounded() {
        let t: Table<u32> = Table::new();
        for i in 0..100u32 {
            let key = Key {
                user: format!("u{i}"),
                remote: None,
                local: None,
                service: "imap".into(),
            };
            t.put(key.clone(), Some(i), Duration::from_secs(60), 8);
            assert!(t.len() <= 8);
            assert_eq!(t.get(&key), Some(Some(i)));
        }
    }
}
