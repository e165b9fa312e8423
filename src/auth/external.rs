//! Opening the configured external user database (`[auth] backend`): the one place that knows
//! every kind. The users file (`backend = "users_file"`) is not one: it is the authenticator's
//! own snapshot, so this answers `None` for it.

use std::sync::Arc;
use std::time::Duration;

use super::AuthError;
use super::db::UserDatabase;
use super::lookup_cache::CachedDatabase;
use crate::config::{AuthBackend, AuthConfig};

/// The database `cfg` configures, wrapped in the lookup cache when `cache_ttl_secs` or
/// `cache_negative_ttl_secs` is set; `None` for the users file. Nothing is connected yet (a
/// database that is down at startup is retried on the first lookup), so only configuration
/// errors fail here. Call it inside a tokio runtime where one runs, so the SQL pool can reap
/// idle connections.
pub fn open_database(cfg: &AuthConfig) -> Result<Option<Arc<dyn UserDatabase>>, AuthError> {
    let db: Arc<dyn UserDatabase> = match cfg.backend {
        AuthBackend::UsersFile => return Ok(None),
        AuthBackend::Sql => {
            Arc::new(super::sql::SqlDatabase::open(&cfg.sql).map_err(AuthError::InvalidOptions)?)
        }
        AuthBackend::Ldap => super::ldap::open(&cfg.ldap)?,
    };
    Ok(Some(with_cache(db, cfg)))
}

/// `db` behind the lookup cache if one is configured.
pub fn with_cache(db: Arc<dyn UserDatabase>, cfg: &AuthConfig) -> Arc<dyn UserDatabase> {
    if cfg.cache_ttl_secs == 0 && cfg.cache_negative_ttl_secs == 0 {
        return db;
    }
    Arc::new(CachedDatabase::new(
        db,
        Duration::from_secs(cfg.cache_ttl_secs),
        Duration::from_secs(cfg.cache_negative_ttl_secs),
        cfg.cache_size,
    ))
}
