//! The authenticator's side of a SCRAM login: finding the keys a user's exchange answers with
//! (fake ones for a user without usable keys, so the exchange looks the same), and the outcome
//! with the same penalty, per-address turns and log lines as a password login.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ring::rand::{SecureRandom, SystemRandom};

use super::login::{log_name, pool_refused};
use super::penalty::penalty_delay;
use super::scheme::StoredHash;
use super::scram::{ScramHash, ScramKeys};
use super::user::check_passdb_fields;
use super::{AuthFailure, Authenticator, Inner, UserInfo};
use crate::limits::MAX_USERNAME_LEN;

/// The keys one SCRAM exchange answers with, and whether they are a real user's.
#[derive(Debug)]
pub struct ScramCredentials {
    keys: ScramKeys,
    /// The user whose keys these are, or why the exchange must fail whatever the client proves.
    user: Result<UserInfo, &'static str>,
}

impl ScramCredentials {
    /// The keys for `server-first` and the proof check.
    pub fn keys(&self) -> &ScramKeys {
        &self.keys
    }
}

/// The secret the fake salts of unknown users are derived from: random per process. Within one
/// run an unknown user's salt is as stable as a real user's; across a restart it changes (a real
/// user's does not), which is documented in docs/sasl.md.
fn fake_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut key = [0u8; 32];
        if SystemRandom::new().fill(&mut key).is_err() {
            // Without randomness the fake keys are still fake (nothing verifies against them);
            // only their salts become predictable. Say so once.
            tracing::warn!("no random numbers for the SCRAM fake-salt secret");
        }
        key
    })
}

impl Inner {
    /// The blocking lookup of `user`'s keys of `hash`. Every path does one PBKDF2 of the default
    /// count (a `{PLAIN}` user's keys are derived, every other path derives and drops keys), so
    /// the time taken does not tell users with keys from others.
    fn scram_lookup(&self, hash: ScramHash, user: &str) -> ScramCredentials {
        self.refresh_quietly();
        let snap = self.snapshot();
        let fake = ScramKeys::fake(hash, fake_secret(), user);
        let dummy_work = |fake: &ScramKeys| {
            std::hint::black_box(ScramKeys::derive(
                hash,
                b"mailcove scram dummy",
                &fake.salt,
                fake.iterations,
            ));
        };
        let refuse = |reason: &'static str| {
            dummy_work(&fake);
            ScramCredentials {
                keys: fake.clone(),
                user: Err(reason),
            }
        };
        if user.len() > MAX_USERNAME_LEN {
            return refuse("user name too long");
        }
        let Some(entry) = snap.db.get(user) else {
            return refuse("unknown user");
        };
        match &entry.hash {
            StoredHash::Scram(keys) if keys.hash == hash => {
                dummy_work(&fake);
                ScramCredentials {
                    keys: keys.clone(),
                    user: Ok(entry.info.clone()),
                }
            }
            StoredHash::Scram(_) => refuse("no SCRAM keys of this hash for the user"),
            // Dovecot derives SCRAM keys from a plaintext entry too; the salt is the user's
            // stable fake one, so a repeated exchange shows the same salt.
            StoredHash::Plain(pw) if snap.opts.allow_plaintext_schemes => ScramCredentials {
                keys: ScramKeys::derive(hash, pw, &fake.salt, fake.iterations),
                user: Ok(entry.info.clone()),
            },
            StoredHash::Plain(_) => refuse("plaintext password scheme not allowed"),
            StoredHash::Locked => refuse("account has no usable password"),
            StoredHash::Unsupported { reason, .. } => refuse(reason),
            StoredHash::Argon2(_)
            | StoredHash::ShaCrypt(_)
            | StoredHash::Bcrypt(_)
            | StoredHash::Digest { .. } => refuse("stored hash cannot be used for SCRAM"),
        }
    }
}

impl Authenticator {
    /// The keys `user`'s SCRAM exchange of `hash` answers with: the user's, or fake ones (a
    /// salt derived from a server secret and the name) for an unknown user or one whose stored
    /// hash SCRAM cannot use, so the exchange does not tell which users exist or have keys.
    /// Runs on the hashing pool in `remote`'s turn; a full pool is a temporary failure.
    pub async fn scram_credentials(
        &self,
        hash: ScramHash,
        user: &str,
        remote: IpAddr,
    ) -> Result<ScramCredentials, AuthFailure> {
        let snap = self.inner.snapshot();
        let pool = Arc::clone(&snap.pool);
        let threads = snap.opts.hash_threads;
        drop(snap);
        let inner = Arc::clone(&self.inner);
        let user_owned = user.to_owned();
        self.in_turn(remote, pool, threads, move || {
            inner.scram_lookup(hash, &user_owned)
        })
        .await
        .map_err(|e| pool_refused(user, remote, e))
    }

    /// The end of a SCRAM exchange for `user` (as the client named it): `proof` is the
    /// mechanism's verdict (`Err(reason)`: wrong proof, replayed nonce, channel binding...). On
    /// success the passdb fields are checked as for every login; a failure is logged, counted
    /// against `remote` and answered after the penalty delay, as a wrong password.
    pub async fn scram_outcome(
        &self,
        user: &str,
        creds: ScramCredentials,
        proof: Result<(), &'static str>,
        remote: IpAddr,
    ) -> Result<UserInfo, AuthFailure> {
        let outcome = match (creds.user, proof) {
            // The proof was checked against fake keys: it cannot have matched, but never let
            // such an exchange in.
            (Err(reason), _) => Err(reason),
            (Ok(_), Err(reason)) => Err(reason),
            (Ok(info), Ok(())) => check_passdb_fields(&info, remote).map(|()| info),
        };
        match outcome {
            Ok(info) => {
                self.inner.penalty.record_success(remote);
                tracing::debug!(user = ?info.name, %remote, mechanism = "SCRAM", "authenticated");
                Ok(info)
            }
            Err(reason) => Err(self.scram_refused(user, reason, remote).await),
        }
    }

    /// A SCRAM exchange refused for `reason` (before or after the keys were looked up): logged,
    /// counted against `remote` and answered after the penalty delay, as a wrong password.
    pub async fn scram_refused(
        &self,
        user: &str,
        reason: &'static str,
        remote: IpAddr,
    ) -> AuthFailure {
        let snap = self.inner.snapshot();
        let (base, max) = (snap.opts.failure_delay, snap.opts.failure_delay_max);
        drop(snap);
        let failures = self.inner.penalty.record_failure(remote, Instant::now());
        let delay = penalty_delay(base, max, failures);
        tracing::info!(user = ?log_name(user), %remote, reason, failures, delay_ms = delay.as_millis() as u64, mechanism = "SCRAM", "authentication failed");
        tokio::time::sleep(delay).await;
        AuthFailure::Invalid
    }
}
