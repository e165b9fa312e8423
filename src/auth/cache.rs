//! The verified-credential cache: the login fast path for clients that reconnect many times an
//! hour with the same password (phones, webmail front ends).
//!
//! * It remembers only **successful** verifications. A wrong password, an unknown user or a
//!   locked account always pays the full hash and the penalty delay, so the cache gives a
//!   guesser nothing.
//! * An entry is a keyed hash, HMAC-SHA-256 under a random key made when the cache is, of the
//!   user's name as stored and the password. Neither the password nor an unkeyed hash of it is
//!   kept in memory; a memory dump yields nothing to try offline.
//! * Each cache belongs to one loaded version of the users ([`super::userdb::Snapshot`]). A
//!   changed users file is a new version with a new, empty cache (and a new key), so a changed
//!   or removed password is never let in by an old entry. The passdb fields that restrict a
//!   login (`nologin`, `allow_nets`) are checked on every login, cached or not.
//! * Entries live `ttl`; the table holds at most `capacity` of them (expired ones are dropped
//!   first, then the oldest half), so its memory is bounded.
//!
//! Dovecot's `auth_cache_size`/`auth_cache_ttl` do the same job for its passdb lookups; like it,
//! the cache is off unless configured (`[auth] credential_cache_secs`).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The cache of one users snapshot.
pub(super) struct CredentialCache {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl CredentialCache {
    /// A cache keeping entries `ttl` (none when zero), at most `capacity` of them.
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 32];
        let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
        // Without a random key the cache stays off: a guessable key would make its entries
        // plain hashes of the passwords.
        let ttl = if random.is_ok() { ttl } else { Duration::ZERO };
        Self {
            key,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache `opts` configure.
    pub(super) fn for_options(opts: &super::AuthOptions) -> Self {
        Self::new(opts.credential_cache_ttl, opts.credential_cache_size)
    }

    /// Whether the cache is on.
    pub(super) fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn tag(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            // HMAC takes a key of any length; never reached.
            return [0; 32];
        };
        // Length prefixes: ("ab", "c") and ("a", "bc") never share a tag.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(&(password.len() as u64).to_be_bytes());
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// Whether `user` (the name as stored) verified `password` within the TTL.
    pub(super) fn hit(&self, user: &str, password: &[u8]) -> bool {
        if !self.enabled() {
            return false;
        }
        let tag = self.tag(user, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&tag) {
            Some(&until) if until > now => true,
            Some(_) => {
                entries.remove(&tag);
                false
            }
            None => false,
        }
    }

    /// Records that `user` (the name as stored) just verified `password`.
    pub(super) fn insert(&self, user: &str, password: &[u8]) {
        if !self.enabled() {
            return;
        }
        let tag = self.tag(user, password);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&tag) {
            entries.retain(|_, until| *until > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop the older half (those expiring first).
                let mut ends: Vec<Instant> = entries.values().copied().collect();
                let mid = ends.len() / 2;
                let (_, cut, _) = ends.select_nth_unstable(mid);
                let cut = *cut;
                entries.retain(|_, until| *until > cut);
            }
        }
        entries.insert(tag, now + self.ttl);
    }

    /// Entries held (expired ones included until they are dropped).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_only_what_was_inserted_and_only_for_that_pair() {
        let c = CredentialCache::new(Duration::from_secs(60), 10);
        assert!(!c.hit("alice", b"secret"));
        c.insert("alice", b"secret");
        assert!(c.hit("alice", b"secret"));
        assert!(!c.hit("alice", b"secreT"));
        assert!(!c.hit("alicesecret", b""));
        assert!(!c.hit("alic", b"esecret"));
        assert!(!c.hit("bob", b"secret"));
    }

    #[test]
    fn off_when_ttl_is_zero() {
        let c = CredentialCache::new(Duration::ZERO, 10);
        c.insert("alice", b"secret");
        assert!(!c.hit("alice", b"secret"));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn entries_expire() {
        let c = CredentialCache::new(Duration::from_millis(30), 10);
        c.insert("alice", b"secret");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.hit("alice", b"secret"));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn two_caches_never_share_tags() {
        let a = CredentialCache::new(Duration::from_secs(60), 10);
        let b = CredentialCache::new(Duration::from_secs(60), 10);
        assert_ne!(a.tag("alice", b"secret"), b.tag("alice", b"secret"));
    }

    #[test]
    fn bounded_by_capacity() {
        let c = CredentialCache::new(Duration::from_secs(60), 8);
        for i in 0..100 {
            c.insert(&format!("user{i}"), b"pw");
            assert!(c.len() <= 8);
        }
        // The newest entry is always kept.
        assert!(c.hit("user99", b"pw"));
    }
}
