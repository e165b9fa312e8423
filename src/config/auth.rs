//! `[auth]`: the users file, the plaintext rules, login failure delays and password hashing.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Problems;
use super::ldap::LdapConfig;
use super::oauth2::Oauth2Config;
use crate::limits::{
    DEFAULT_CREDENTIAL_CACHE_SIZE, MAX_CREDENTIAL_CACHE_SECS, MAX_CREDENTIAL_CACHE_SIZE,
};

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct AuthConfig {
    /// Users in Dovecot's passwd-file format.
    pub users_file: PathBuf,
    /// Allow LOGIN, USER/PASS and AUTH PLAIN on connections that are neither TLS nor loopback.
    /// Off by default, as Dovecot's `disable_plaintext_auth = yes`.
    pub allow_plaintext_without_tls: bool,
    /// Accept `{PLAIN}`/`{CLEARTEXT}` password entries.
    pub allow_plaintext_schemes: bool,
    /// First delay after a failed login from an address, in milliseconds; doubles per failure.
    pub failure_delay_ms: u64,
    /// Cap of that delay, in milliseconds.
    pub failure_delay_max_ms: u64,
    /// Password hashes verified at once; 0 means the number of CPUs.
    pub hash_threads: usize,
    /// Logins allowed to wait for a hashing thread before new ones fail temporarily.
    pub hash_queue: usize,
    /// Argon2id memory cost in KiB for new hashes.
    pub argon2_m_cost_kib: u32,
    /// Argon2id iterations for new hashes.
    pub argon2_t_cost: u32,
    /// Argon2id parallelism for new hashes.
    pub argon2_p_cost: u32,
    /// Seconds a successful login lets the same user and password in again without verifying
    /// the hash (the verified-credential cache); 0, the default, turns it off.
    pub credential_cache_secs: u64,
    /// Most verified credentials the cache remembers.
    pub credential_cache_size: usize,
    /// `[auth.oauth2]`: OAUTHBEARER and XOAUTH2 with OAuth 2 bearer tokens.
    pub oauth2: Oauth2Config,
    /// `[auth.ldap]`: the LDAP user database (dovecot-ldap.conf.ext's keys).
    pub ldap: LdapConfig,
    /// SCRAM mechanisms offered (`"SCRAM-SHA-256"`, `"SCRAM-SHA-1"`; their -PLUS variants come
    /// with them on TLS 1.3). Empty, the default, as Dovecot's `auth_mechanisms = plain`: a
    /// client that prefers SCRAM would otherwise pick it for users whose stored hash SCRAM
    /// cannot use, and fail (docs/sasl.md).
    pub scram_mechanisms: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users_file: PathBuf::from("/etc/mailcove/users"),
            allow_plaintext_without_tls: false,
            allow_plaintext_schemes: false,
            failure_delay_ms: 2000,
            failure_delay_max_ms: 15000,
            hash_threads: 0,
            hash_queue: 256,
            argon2_m_cost_kib: 19456,
            argon2_t_cost: 2,
            argon2_p_cost: 1,
            credential_cache_secs: 0,
            credential_cache_size: DEFAULT_CREDENTIAL_CACHE_SIZE,
            oauth2: Oauth2Config::default(),
            ldap: LdapConfig::default(),
            scram_mechanisms: Vec::new(),
        }
    }
}

impl AuthConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        // Checked once the section is written; at the merge with `[auth] backend` this becomes
        // "when backend = ldap".
        if self.ldap != LdapConfig::default() {
            self.ldap.validate(out);
        }
        if self.users_file.as_os_str().is_empty() {
            out.add("auth.users_file", "must be set");
        }
        if self.failure_delay_max_ms < self.failure_delay_ms {
            out.add(
                "auth.failure_delay_max_ms",
                "must not be smaller than auth.failure_delay_ms",
            );
        }
        self.oauth2.validate(out);
        if self.hash_queue == 0 {
            out.add("auth.hash_queue", "must be at least 1");
        }
        if self.credential_cache_secs > MAX_CREDENTIAL_CACHE_SECS {
            out.add(
                "auth.credential_cache_secs",
                format!("must be at most {MAX_CREDENTIAL_CACHE_SECS} (a day)"),
            );
        }
        if self.credential_cache_size == 0 || self.credential_cache_size > MAX_CREDENTIAL_CACHE_SIZE
        {
            out.add(
                "auth.credential_cache_size",
                format!("must be between 1 and {MAX_CREDENTIAL_CACHE_SIZE}"),
            );
        }
        for m in &self.scram_mechanisms {
            if crate::auth::scram::ScramHash::from_scheme(m).is_none() {
                out.add(
                    "auth.scram_mechanisms",
                    format!(
                        "unknown mechanism {m:?}: use \"SCRAM-SHA-256\" and/or \"SCRAM-SHA-1\" (-PLUS follows on TLS 1.3)"
                    ),
                );
            }
        }
        if self.argon2_m_cost_kib < 8 * self.argon2_p_cost.max(1)
            || self.argon2_t_cost == 0
            || self.argon2_p_cost == 0
        {
            out.add(
                "auth.argon2_m_cost_kib",
                "argon2 costs must be t >= 1, p >= 1, m >= 8*p KiB",
            );
        }
    }
}
