//! Maps the configuration onto the options each module is built from, so modules stay independent
//! of the config file's shape.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Argon2Params, AuthOptions, default_hash_threads};
use crate::config::{AuthConfig, Config};
use crate::storage::Storage;

/// Argon2id costs for new hashes.
pub fn argon2_params(auth: &AuthConfig) -> Argon2Params {
    Argon2Params {
        m_cost_kib: auth.argon2_m_cost_kib,
        t_cost: auth.argon2_t_cost,
        p_cost: auth.argon2_p_cost,
    }
}

/// The auth module's options.
pub fn auth_options(config: &Config) -> AuthOptions {
    let a = &config.auth;
    AuthOptions {
        users_file: a.users_file.clone(),
        allow_plaintext_schemes: a.allow_plaintext_schemes,
        failure_delay: Duration::from_millis(a.failure_delay_ms),
        failure_delay_max: Duration::from_millis(a.failure_delay_max_ms),
        hash_threads: if a.hash_threads == 0 {
            default_hash_threads()
        } else {
            a.hash_threads
        },
        max_queued: a.hash_queue,
        argon2: argon2_params(a),
    }
}

/// The storage backend.
pub fn storage_backend(config: &Config) -> Arc<dyn Storage> {
    crate::storage::placeholder(config)
}
