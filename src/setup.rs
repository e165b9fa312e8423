//! Maps the configuration onto the options each module is built from, so modules stay independent
//! of the config file's shape.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{
    Argon2Params, AuthError, AuthOptions, Authenticator, UserInfo, default_hash_threads,
};
use crate::config::{AuthConfig, Config};
use crate::storage::maildir::{MaildirOptions, MaildirStorage, maildir_template};
use crate::storage::memory::{MemoryOptions, MemoryStorage};
use crate::storage::{SpecialUse, Storage, StorageError, StorageUser};

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
        credential_cache_ttl: Duration::from_secs(a.credential_cache_secs),
        credential_cache_size: a.credential_cache_size,
    }
}

/// The auth module for a one-shot command that only looks users up (`deliver`, `quota
/// recalc`): no password is ever checked there, so neither the costly dummy hash nor the hashing
/// threads are set up.
pub fn lookup_authenticator(config: &Config) -> Result<Authenticator, AuthError> {
    let mut opts = auth_options(config);
    opts.argon2 = Argon2Params {
        m_cost_kib: 8,
        t_cost: 1,
        p_cost: 1,
    };
    opts.hash_threads = 1;
    let external = crate::auth::external::open_database(&config.auth)?;
    Authenticator::with_database(opts, external)
}

/// True when the configured location is the in-memory backend ([`crate::storage::memory`]).
pub fn is_memory_location(location: &str) -> bool {
    location.trim() == crate::storage::memory::LOCATION
}

/// Why `mailcove deliver` refuses the memory backend: it is a separate process, whose memory
/// nobody else reads.
pub const MEMORY_DELIVER_REFUSED: &str = "configuration: mail.location = \"memory:\" keeps mail in \
the daemon's memory; a separate deliver process cannot reach it (deliver over LMTP instead)";

/// The storage backend: Maildir, the in-memory one for `location = "memory:"`, or PostgreSQL for
/// a `postgresql://` location (connected at first use).
pub fn storage_backend(config: &Config) -> Result<Arc<dyn Storage>, StorageError> {
    let m = &config.mail;
    let autocreate: Vec<(String, Option<SpecialUse>)> = m
        .autocreate
        .iter()
        .map(|a| (a.name.clone(), SpecialUse::from_attribute(&a.special_use)))
        .collect();
    if is_memory_location(&m.location) {
        tracing::warn!(
            "mail is kept in memory only (location = \"memory:\"): it is lost when mailcove stops"
        );
        return Ok(Arc::new(MemoryStorage::new(MemoryOptions {
            separator: m.separator,
            quota_bytes: m.quota_bytes,
            quota_messages: m.quota_messages,
            autocreate,
            max_message_size: config.limits.max_message_size,
            fts: m.fts,
        })?));
    }
    if crate::storage::postgres::is_location(&m.location) {
        let mut opts = crate::storage::postgres::PgOptions::new(m.location.trim());
        opts.password_file = (!m.postgresql_password_file.is_empty())
            .then(|| std::path::PathBuf::from(&m.postgresql_password_file));
        opts.separator = m.separator;
        opts.quota_bytes = m.quota_bytes;
        opts.quota_messages = m.quota_messages;
        opts.autocreate = autocreate;
        opts.max_message_size = config.limits.max_message_size;
        opts.fts = m.fts;
        opts.pop3_lease_secs = m.postgresql_pop3_lease_secs;
        opts.notify = m.postgresql_notify;
        return Ok(Arc::new(crate::storage::postgres::PgStorage::new(opts)?));
    }
    let mut opts = MaildirOptions::new(absolute_location(maildir_template(&m.location)?));
    opts.separator = m.separator;
    opts.fsync = m.fsync;
    opts.quota_bytes = m.quota_bytes;
    opts.quota_messages = m.quota_messages;
    opts.autocreate = autocreate;
    opts.fts = m.fts;
    Ok(Arc::new(MaildirStorage::new(opts)?))
}

/// A location relative to the directory mailcove was started from (the dev config's
/// `var/mail/%n`) made absolute, so it keeps meaning the same place; `~` and `/` forms stay.
pub fn absolute_location(location: &str) -> String {
    if location.starts_with('/') || location.starts_with('~') {
        return location.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{}/{}", cwd.display(), location.trim_start_matches("./")),
        Err(_) => location.to_string(),
    }
}

/// The storage's view of a logged-in or looked-up user: name, home and the per-user quota from
/// Dovecot-style `quota_rule` extra fields.
pub fn storage_user(user: &UserInfo) -> StorageUser {
    let mut quota = QuotaRule::default();
    for key in ["quota_rule", "quota_rule2", "quota_rule3"] {
        if let Some(rule) = user.field(key) {
            quota.apply(rule);
        }
    }
    StorageUser {
        name: user.name.clone(),
        home: user.home.clone(),
        quota_bytes: quota.bytes,
        quota_messages: quota.messages,
        // An empty `mail` (SQL NULL, `userdb_mail=`) means the configured default, as in Dovecot.
        location: user
            .field("mail")
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    }
}

/// Limits from Dovecot `quota_rule` values such as `*:storage=1G` or `*:messages=1000`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuotaRule {
    /// Byte limit; `Some(0)` unlimited.
    pub bytes: Option<u64>,
    /// Message limit; `Some(0)` unlimited.
    pub messages: Option<u64>,
}

impl QuotaRule {
    /// Applies one rule ([`crate::auth::quota_rule`]). Only rules for every mailbox (`*`) are
    /// kept; mailbox-specific rules (`Trash:storage=+100M`) are not supported and are ignored
    /// with a warning. The users file was checked when loaded, so an invalid rule cannot reach
    /// here; if one does, it is logged and changes nothing.
    pub fn apply(&mut self, rule: &str) {
        match crate::auth::quota_rule::parse(rule) {
            Ok(Some(limits)) => {
                if limits.bytes.is_some() {
                    self.bytes = limits.bytes;
                }
                if limits.messages.is_some() {
                    self.messages = limits.messages;
                }
            }
            Ok(None) => tracing::warn!(
                rule,
                "quota_rule for a single mailbox is not supported; ignored"
            ),
            Err(e) => tracing::error!(error = %e, "invalid quota_rule; ignored"),
        }
    }
}

/// Dovecot quota sizes: a number with an optional b/k/M/G/T suffix; no suffix means kilobytes,
/// as Dovecot reads it. 0 means unlimited.
pub fn parse_quota_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'b' | 'B') => (&v[..i], 1u64),
        (i, 'k' | 'K') => (&v[..i], 1 << 10),
        (i, 'm' | 'M') => (&v[..i], 1 << 20),
        (i, 'g' | 'G') => (&v[..i], 1 << 30),
        (i, 't' | 'T') => (&v[..i], 1 << 40),
        _ => (v, 1 << 10),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_rules_as_dovecot_reads_them() {
        assert_eq!(parse_quota_size("1G"), Some(1 << 30));
        assert_eq!(parse_quota_size("100M"), Some(100 << 20));
        assert_eq!(parse_quota_size("2048"), Some(2048 << 10));
        assert_eq!(parse_quota_size("512b"), Some(512));
        assert_eq!(parse_quota_size("x"), None);
        let mut q = QuotaRule::default();
        q.apply("*:storage=1M");
        q.apply("*:messages=10");
        q.apply("Trash:storage=+100M");
        assert_eq!(
            q,
            QuotaRule {
                bytes: Some(1 << 20),
                messages: Some(10)
            }
        );
    }

    #[test]
    fn the_userdb_mail_field_is_the_users_location() {
        let info = |extra: &[(&str, Option<&str>)]| UserInfo {
            name: "ann".into(),
            uid: None,
            gid: None,
            home: None,
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        };
        let loc = |extra: &[(&str, Option<&str>)]| storage_user(&info(extra)).location;
        assert_eq!(loc(&[]), None);
        assert_eq!(
            loc(&[("userdb_mail", Some("maildir:~/Mail"))]),
            Some("maildir:~/Mail".into())
        );
        assert_eq!(loc(&[("mail", Some(" /v/%n "))]), Some("/v/%n".into()));
        // SQL NULL or `userdb_mail=`: the configured default, as in Dovecot.
        assert_eq!(loc(&[("mail", None)]), None);
        assert_eq!(loc(&[("userdb_mail", Some(""))]), None);
    }
}
