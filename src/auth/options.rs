//! What the auth module is configured with: the passwd-file, the penalty delays, the hashing
//! pool's size and the Argon2id costs of new hashes.

use std::path::PathBuf;
use std::time::Duration;

use super::AuthError;
use crate::limits::{
    DEFAULT_ARGON2_M_COST_KIB, DEFAULT_ARGON2_P_COST, DEFAULT_ARGON2_T_COST,
    DEFAULT_AUTH_FAILURE_DELAY_MAX_MS, DEFAULT_AUTH_FAILURE_DELAY_MS, DEFAULT_AUTH_MAX_QUEUED,
    DEFAULT_CREDENTIAL_CACHE_SIZE,
};

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
    /// How long a successful verification lets the same user and password in without hashing
    /// again; zero turns the verified-credential cache off.
    pub credential_cache_ttl: Duration,
    /// Most verified credentials remembered at once.
    pub credential_cache_size: usize,
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
            credential_cache_ttl: Duration::ZERO,
            credential_cache_size: DEFAULT_CREDENTIAL_CACHE_SIZE,
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
