//! `[auth]`: the users file, the plaintext rules, login failure delays and password hashing.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Problems;
use super::ldap::LdapConfig;
use super::oauth2::Oauth2Config;
use crate::limits::{
    DEFAULT_CREDENTIAL_CACHE_SIZE, MAX_CREDENTIAL_CACHE_SECS, MAX_CREDENTIAL_CACHE_SIZE,
};
use crate::limits::{
    DEFAULT_DB_CACHE_SIZE, DEFAULT_SQL_QUERY_TIMEOUT_MS, MAX_DB_CACHE_SECS, MAX_DB_CACHE_SIZE,
    MAX_SQL_QUERY_TIMEOUT_MS,
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
    /// Where users live: the users file (default), an SQL database (`[auth.sql]`) or LDAP
    /// (`[auth.ldap]`).
    pub backend: AuthBackend,
    /// Seconds a lookup of an SQL/LDAP database is cached (Dovecot's `auth_cache_ttl`);
    /// 0, the default, turns the lookup cache off.
    pub cache_ttl_secs: u64,
    /// Seconds a "no such user" answer is cached (`auth_cache_negative_ttl`); 0: not cached.
    pub cache_negative_ttl_secs: u64,
    /// Most lookups the cache holds (`auth_cache_size`, counted in entries, not bytes).
    pub cache_size: usize,
    /// `[auth.sql]`: the SQL database when `backend = "sql"`.
    pub sql: SqlConfig,
}

/// `[auth] backend`
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthBackend {
    /// Dovecot's passwd-file (`users_file`).
    #[default]
    UsersFile,
    /// An SQL database (`[auth.sql]`).
    Sql,
    /// An LDAP directory (`[auth.ldap]`).
    Ldap,
}

/// `[auth.sql] driver`
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SqlDriver {
    /// An SQLite file; `connect` is its path.
    #[default]
    Sqlite,
    /// PostgreSQL; `connect` is `host=... port=... dbname=... user=... password=...`.
    Postgresql,
    /// MySQL or MariaDB; `connect` as for PostgreSQL.
    Mysql,
}

/// `[auth.sql]`: the keys of Dovecot's dovecot-sql.conf.ext.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct SqlConfig {
    /// `sqlite`, `postgresql` or `mysql`.
    pub driver: SqlDriver,
    /// The connection: a file path for SQLite, Dovecot's `key=value` list for the others.
    pub connect: String,
    /// The passdb query: returns `password` and passdb extra fields for `%u`.
    pub password_query: String,
    /// The userdb query: returns `home`, `uid`, `gid`, `mail`, `quota_rule`, ... for `%u`.
    pub user_query: String,
    /// Returns every user name (`user`, or `username` and `domain`), for `-A`.
    pub iterate_query: String,
    /// The scheme of a password stored without a `{SCHEME}` prefix.
    pub default_pass_scheme: String,
    /// Milliseconds one lookup may take before it fails temporarily.
    pub query_timeout_ms: u64,
}

impl Default for SqlConfig {
    /// Dovecot's own defaults of dovecot-sql.conf.ext (a `users` table with `username`,
    /// `domain`, `password`, `home`, `uid`, `gid`), except `default_pass_scheme`: Dovecot's
    /// MD5-CRYPT is not supported, CRYPT classifies `$6$`/`$5$`/`$2y$` hashes by their prefix.
    fn default() -> Self {
        SqlConfig {
            driver: SqlDriver::Sqlite,
            connect: String::new(),
            password_query: "SELECT username, domain, password FROM users \
                             WHERE username = '%n' AND domain = '%d'"
                .into(),
            user_query: "SELECT home, uid, gid FROM users WHERE username = '%n' AND domain = '%d'"
                .into(),
            iterate_query: "SELECT username AS user FROM users".into(),
            default_pass_scheme: "CRYPT".into(),
            query_timeout_ms: DEFAULT_SQL_QUERY_TIMEOUT_MS,
        }
    }
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
            backend: AuthBackend::UsersFile,
            cache_ttl_secs: 0,
            cache_negative_ttl_secs: 0,
            cache_size: DEFAULT_DB_CACHE_SIZE,
            sql: SqlConfig::default(),
        }
    }
}

impl AuthConfig {
    pub(super) fn validate(&self, out: &mut Problems) {
        if self.backend == AuthBackend::Ldap {
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
        self.validate_databases(out);
    }
}

impl AuthConfig {
    /// The keys of `backend = "sql"` and the lookup cache.
    fn validate_databases(&self, out: &mut Problems) {
        for (key, secs) in [
            ("auth.cache_ttl_secs", self.cache_ttl_secs),
            ("auth.cache_negative_ttl_secs", self.cache_negative_ttl_secs),
        ] {
            if secs > MAX_DB_CACHE_SECS {
                out.add(key, format!("must be at most {MAX_DB_CACHE_SECS} (a day)"));
            }
        }
        if self.cache_size == 0 || self.cache_size > MAX_DB_CACHE_SIZE {
            out.add(
                "auth.cache_size",
                format!("must be between 1 and {MAX_DB_CACHE_SIZE}"),
            );
        }
        if self.backend != AuthBackend::Sql {
            return;
        }
        let sql = &self.sql;
        if sql.connect.trim().is_empty() {
            out.add(
                "auth.sql.connect",
                "must be set when auth.backend = \"sql\"",
            );
        }
        for (key, query) in [
            ("auth.sql.password_query", &sql.password_query),
            ("auth.sql.user_query", &sql.user_query),
            ("auth.sql.iterate_query", &sql.iterate_query),
        ] {
            if let Err(e) = crate::auth::sql::Template::parse(query) {
                out.add(key, e);
            }
        }
        if sql.query_timeout_ms == 0 || sql.query_timeout_ms > MAX_SQL_QUERY_TIMEOUT_MS {
            out.add(
                "auth.sql.query_timeout_ms",
                format!("must be between 1 and {MAX_SQL_QUERY_TIMEOUT_MS}"),
            );
        }
        if !crate::auth::sql::default_scheme_supported(&sql.default_pass_scheme) {
            out.add(
                "auth.sql.default_pass_scheme",
                "must be a scheme mailcove verifies: ARGON2ID, ARGON2I, SHA512-CRYPT, \
                 SHA256-CRYPT, BLF-CRYPT, CRYPT or PLAIN",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &AuthConfig) -> Vec<String> {
        let mut out = Problems::default();
        c.validate(&mut out);
        out.0.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn sql_keys_are_checked_only_for_the_sql_backend() {
        let mut c = AuthConfig::default();
        c.sql.password_query = "SELECT password FROM u WHERE name = '%x'".into();
        assert!(problems(&c).is_empty());
        c.backend = AuthBackend::Sql;
        c.sql.default_pass_scheme = "MD5-CRYPT".into();
        c.sql.query_timeout_ms = 0;
        c.cache_size = 0;
        assert_eq!(
            problems(&c),
            vec![
                "auth.cache_size",
                "auth.sql.connect",
                "auth.sql.password_query",
                "auth.sql.query_timeout_ms",
                "auth.sql.default_pass_scheme",
            ]
        );
        c.sql.connect = "/var/lib/mailcove/users.sqlite".into();
        c.sql.password_query = "SELECT password FROM u WHERE name = '%u'".into();
        c.sql.default_pass_scheme = "sha512-crypt".into();
        c.sql.query_timeout_ms = 100;
        c.cache_size = 10;
        assert!(problems(&c).is_empty());
    }

    #[test]
    fn backend_names_as_documented() {
        let c: AuthConfig =
            toml::from_str("backend = \"sql\"\n[sql]\ndriver = \"postgresql\"\n").unwrap();
        assert_eq!(c.backend, AuthBackend::Sql);
        assert_eq!(c.sql.driver, SqlDriver::Postgresql);
        let c: AuthConfig = toml::from_str("backend = \"users_file\"").unwrap();
        assert_eq!(c.backend, AuthBackend::UsersFile);
        assert!(toml::from_str::<AuthConfig>("backend = \"nis\"").is_err());
    }
}
