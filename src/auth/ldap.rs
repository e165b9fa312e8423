//! The LDAP user database (`[auth.ldap]`, Dovecot's passdb/userdb ldap): a [`UserDatabase`]
//! over ldap3.
//!
//! * **Password lookup**: search `base` with `pass_filter` as the service account (`dn`,
//!   `dnpass`), map the entry with `pass_attrs`; `userPassword` is returned as stored
//!   (`{SSHA}...`), a bare value with `{default_pass_scheme}` in front, and verified by the
//!   authenticator like a users-file hash.
//! * **Auth bind** (`auth_bind = true`): [`UserDatabase::verify_password`] binds as the user,
//!   the DN from `auth_bind_userdn` or from a `pass_filter` search. An empty password is never
//!   sent: RFC 4513 section 5.1.2 makes it an unauthenticated bind, which succeeds.
//! * **User lookup** (`user_filter`, `user_attrs`) and **iterate** (`iterate_filter`,
//!   `iterate_attrs`' `user` field).
//! * Every value put into a filter is escaped as RFC 4515 says, every value put into a DN as
//!   RFC 4514 says ([`template`]), so a user name such as `*` or `)(uid=*` is only a name.
//! * Each call is bounded by `limits::LDAP_REQUEST_TIMEOUT_MS` ([`DbError::Timeout`]); a server
//!   that is down answers [`DbError::Unavailable`] ([`conn`] has the reconnect and backoff).

mod attrs;
mod conn;
mod template;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Scope, SearchEntry};

use super::AuthError;
use super::UserInfo;
use super::db::{DbError, DbFuture, LookupRequest, PassRecord, UserDatabase};
use crate::config::{LdapConfig, LdapScope};
use crate::limits::{LDAP_MAX_ITERATE_ENTRIES, LDAP_REQUEST_TIMEOUT_MS};
use attrs::{AttrMap, build_user};
use conn::{Pool, TlsMode};
use template::{Escape, Template, Vars};

pub use template::{escape_dn_value, escape_filter_value};

/// The configuration, parsed.
struct Settings {
    base: Template,
    scope: Scope,
    auth_bind: bool,
    auth_bind_userdn: Option<Template>,
    pass_filter: Template,
    pass_attrs: AttrMap,
    user_filter: Template,
    user_attrs: AttrMap,
    iterate_filter: Template,
    iterate_attrs: AttrMap,
    default_pass_scheme: String,
}

/// Configuration problems as `(key, message)`.
type Problems = Vec<(String, String)>;

/// An entry's attributes by name.
type Attrs = HashMap<String, Vec<String>>;

/// The value of a setting `key` that parsed, or `None` with its problem noted.
fn noted<T>(problems: &mut Problems, key: &str, parsed: Result<T, String>) -> Option<T> {
    parsed.map_err(|e| problems.push((key.to_owned(), e))).ok()
}

/// Parses and checks `cfg`: the settings and URIs, or every problem.
fn parse(cfg: &LdapConfig) -> Result<(Settings, Vec<String>), Problems> {
    let mut problems: Problems = Vec::new();
    let mut add = |key: &str, msg: String| problems.push((key.to_owned(), msg));

    let uris: Vec<String> = cfg.uris.split_whitespace().map(str::to_owned).collect();
    if uris.is_empty() {
        add("uris", "must be set (ldap://host or ldaps://host)".into());
    }
    for uri in &uris {
        let rest = uri
            .strip_prefix("ldap://")
            .or_else(|| uri.strip_prefix("ldaps://"));
        match rest {
            None => add(
                "uris",
                format!("{uri:?}: only ldap:// and ldaps:// are supported"),
            ),
            Some(r) if r.trim_end_matches('/').is_empty() => {
                add("uris", format!("{uri:?}: no host"))
            }
            Some(_) if cfg.tls && uri.starts_with("ldaps://") => add(
                "tls",
                format!("StartTLS is for ldap:// URIs; {uri:?} is TLS from the start"),
            ),
            Some(_) => {}
        }
    }
    if !cfg.dn.is_empty() && cfg.dnpass.is_empty() {
        add(
            "dnpass",
            "must be set with dn (a bind with an empty password is an unauthenticated bind)".into(),
        );
    }
    if cfg.base.is_empty() {
        add("base", "must be set (e.g. dc=example,dc=org)".into());
    }
    let mut template =
        |key: &str, text: &str| noted(&mut problems, key, Template::parse(text, false));
    let base = template("base", &cfg.base);
    let userdn = template("auth_bind_userdn", &cfg.auth_bind_userdn);
    let pass_filter = template("pass_filter", &cfg.pass_filter);
    let user_filter = template("user_filter", &cfg.user_filter);
    let iterate_filter = template("iterate_filter", &cfg.iterate_filter);
    let mut attr_map = |key: &str, text: &str| noted(&mut problems, key, AttrMap::parse(text));
    let pass_attrs = attr_map("pass_attrs", &cfg.pass_attrs);
    let user_attrs = attr_map("user_attrs", &cfg.user_attrs);
    let iterate_attrs = attr_map("iterate_attrs", &cfg.iterate_attrs);

    // A filter must parse once a user name is put in.
    let sample = Vars {
        user: "user@example.org",
        remote: None,
        local: None,
        service: "imap",
    };
    for (key, filter) in [
        ("pass_filter", &pass_filter),
        ("user_filter", &user_filter),
        ("iterate_filter", &iterate_filter),
    ] {
        if let Some(t) = filter {
            let text = t.expand(&sample, None, Escape::Filter).unwrap_or_default();
            if t.is_empty() || ldap3::parse_filter(&text).is_err() {
                problems.push((key.to_owned(), format!("{text:?} is not an LDAP filter")));
            }
        }
    }
    if !cfg.auth_bind {
        if !cfg.auth_bind_userdn.is_empty() {
            problems.push((
                "auth_bind_userdn".into(),
                "is used only with auth_bind = true".into(),
            ));
        }
        if let Some(m) = &pass_attrs
            && !m.has_field("password")
        {
            problems.push((
                "pass_attrs".into(),
                "must map an attribute to password (userPassword=password) unless auth_bind = true"
                    .into(),
            ));
        }
    }
    if let Some(m) = &iterate_attrs
        && !m.has_field("user")
    {
        problems.push((
            "iterate_attrs".into(),
            "must map an attribute to user (uid=user)".into(),
        ));
    }
    let scheme = &cfg.default_pass_scheme;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        problems.push((
            "default_pass_scheme".into(),
            format!("{scheme:?} is not a scheme name (e.g. CRYPT, SSHA, ARGON2ID)"),
        ));
    }
    if let Some(path) = &cfg.tls_ca_cert_file
        && path.as_os_str().is_empty()
    {
        problems.push(("tls_ca_cert_file".into(), "must not be empty".into()));
    }

    match (
        problems.is_empty(),
        base,
        userdn,
        pass_filter,
        pass_attrs,
        user_filter,
        user_attrs,
        iterate_filter,
        iterate_attrs,
    ) {
        (
            true,
            Some(base),
            Some(userdn),
            Some(pass_filter),
            Some(pass_attrs),
            Some(user_filter),
            Some(user_attrs),
            Some(iterate_filter),
            Some(iterate_attrs),
        ) => Ok((
            Settings {
                base,
                scope: match cfg.scope {
                    LdapScope::Base => Scope::Base,
                    LdapScope::Onelevel => Scope::OneLevel,
                    LdapScope::Subtree => Scope::Subtree,
                },
                auth_bind: cfg.auth_bind,
                auth_bind_userdn: (!userdn.is_empty()).then_some(userdn),
                pass_filter,
                pass_attrs,
                user_filter,
                user_attrs,
                iterate_filter,
                iterate_attrs,
                default_pass_scheme: scheme.to_ascii_uppercase(),
            },
            uris,
        )),
        _ => Err(problems),
    }
}

/// Every problem of `cfg` as `(key, message)`; empty when it can be used.
pub fn config_problems(cfg: &LdapConfig) -> Problems {
    parse(cfg).err().unwrap_or_default()
}

/// Opens the LDAP user database of `cfg`. Nothing is connected yet (the first lookup
/// connects); an unusable configuration or unreadable `tls_ca_cert_file` is an error.
pub fn open(cfg: &LdapConfig) -> Result<Arc<dyn UserDatabase>, AuthError> {
    let (settings, uris) = parse(cfg).map_err(|problems| {
        let text: Vec<String> = problems
            .into_iter()
            .map(|(k, m)| format!("auth.ldap.{k}: {m}"))
            .collect();
        AuthError::InvalidOptions(text.join("; "))
    })?;
    let tls = TlsMode::from_config(cfg)
        .map_err(|e| AuthError::InvalidOptions(format!("auth.ldap.tls_ca_cert_file: {e}")))?;
    let pool = Pool::new(uris, cfg, tls);
    Ok(Arc::new(LdapDb { settings, pool }))
}

/// The database.
struct LdapDb {
    settings: Settings,
    pool: Pool,
}

fn vars<'a>(req: &LookupRequest<'a>) -> Vars<'a> {
    Vars {
        user: req.user,
        remote: req.remote,
        local: req.local,
        service: req.service,
    }
}

/// An entry's attributes as text (binary values, which a hash never is, read lossily).
fn entry_attrs(entry: SearchEntry) -> Attrs {
    let mut attrs = entry.attrs;
    for (name, values) in entry.bin_attrs {
        attrs.entry(name).or_default().extend(
            values
                .into_iter()
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
        );
    }
    attrs
}

impl LdapDb {
    /// Runs `fut` within the request limit; on timeout the shared connection is dropped (a
    /// hung server keeps it hung) and the backoff started.
    async fn bounded<T>(
        &self,
        fut: impl Future<Output = Result<T, DbError>>,
    ) -> Result<T, DbError> {
        match tokio::time::timeout(Duration::from_millis(LDAP_REQUEST_TIMEOUT_MS), fut).await {
            Ok(r) => r,
            Err(_) => {
                self.pool.invalidate();
                self.pool.failed("request timed out");
                Err(DbError::Timeout)
            }
        }
    }

    fn expand(&self, t: &Template, vars: &Vars<'_>, escape: Escape) -> Result<String, DbError> {
        t.expand(vars, None, escape)
            .ok_or_else(|| DbError::Config("a filter or DN longer than the limit".into()))
    }

    /// The one entry `filter` finds for this user (DN and attributes), `None` if none; more
    /// than one is a directory problem, as in Dovecot ("multiple replies").
    async fn find_one(
        &self,
        filter: &Template,
        attrs: &AttrMap,
        vars: &Vars<'_>,
    ) -> Result<Option<(String, Attrs)>, DbError> {
        let base = self.expand(&self.settings.base, vars, Escape::Dn)?;
        let filter = self.expand(filter, vars, Escape::Filter)?;
        let found = self
            .pool
            .search(&base, self.settings.scope, &filter, &attrs.attributes(), 2)
            .await?;
        if found.entries.len() > 1 || found.truncated {
            return Err(DbError::Config(format!(
                "filter {filter:?} matches more than one entry"
            )));
        }
        Ok(found
            .entries
            .into_iter()
            .next()
            .map(|e| (e.dn.clone(), entry_attrs(e))))
    }

    /// A `userPassword` value in users-file syntax.
    fn with_scheme(&self, stored: String) -> String {
        if stored.starts_with('{') && stored.contains('}') {
            stored
        } else {
            format!("{{{}}}{stored}", self.settings.default_pass_scheme)
        }
    }

    async fn password_lookup_inner(
        &self,
        req: LookupRequest<'_>,
    ) -> Result<Option<PassRecord>, DbError> {
        let vars = vars(&req);
        let s = &self.settings;
        let Some((dn, attrs)) = self.find_one(&s.pass_filter, &s.pass_attrs, &vars).await? else {
            return Ok(None);
        };
        let (info, password) = build_user(req.user, s.pass_attrs.apply(&attrs, &vars)?)?;
        let password = if s.auth_bind {
            None
        } else {
            Some(match password {
                Some(p) if !p.is_empty() => self.with_scheme(p),
                // No readable userPassword (missing, or hidden from the service account by an
                // ACL): the account cannot log in, which "!" (locked) says in users-file syntax.
                _ => {
                    tracing::warn!(user = ?req.user, %dn, "ldap entry has no password value");
                    "!".to_owned()
                }
            })
        };
        Ok(Some(PassRecord { info, password }))
    }

    async fn verify_inner(
        &self,
        req: LookupRequest<'_>,
        password: &[u8],
    ) -> Result<Option<PassRecord>, DbError> {
        // Never an empty password (an unauthenticated bind succeeds). A password that is not
        // UTF-8 cannot be sent by ldap3's simple_bind; it is treated as wrong.
        let Ok(password) = std::str::from_utf8(password) else {
            return Ok(None);
        };
        if password.is_empty() {
            return Ok(None);
        }
        let vars = vars(&req);
        let s = &self.settings;
        let (dn, record) = match &s.auth_bind_userdn {
            // Dovecot's auth_bind_userdn: bind to the DN built from the name, no search.
            Some(t) => {
                let info = UserInfo {
                    name: req.user.to_owned(),
                    uid: None,
                    gid: None,
                    home: None,
                    extra: Vec::new(),
                };
                let dn = self.expand(t, &vars, Escape::Dn)?;
                (
                    dn,
                    PassRecord {
                        info,
                        password: None,
                    },
                )
            }
            None => {
                let Some((dn, attrs)) = self.find_one(&s.pass_filter, &s.pass_attrs, &vars).await?
                else {
                    return Ok(None);
                };
                let (info, _) = build_user(req.user, s.pass_attrs.apply(&attrs, &vars)?)?;
                (
                    dn,
                    PassRecord {
                        info,
                        password: None,
                    },
                )
            }
        };
        if self.pool.auth_bind(&dn, password).await? {
            Ok(Some(record))
        } else {
            Ok(None)
        }
    }

    async fn user_lookup_inner(&self, req: LookupRequest<'_>) -> Result<Option<UserInfo>, DbError> {
        let vars = vars(&req);
        let s = &self.settings;
        let Some((_, attrs)) = self.find_one(&s.user_filter, &s.user_attrs, &vars).await? else {
            return Ok(None);
        };
        let (info, _) = build_user(req.user, s.user_attrs.apply(&attrs, &vars)?)?;
        Ok(Some(info))
    }

    async fn iterate_inner(&self) -> Result<Vec<String>, DbError> {
        let s = &self.settings;
        let vars = Vars {
            user: "",
            remote: None,
            local: None,
            service: "admin",
        };
        let base = self.expand(&s.base, &vars, Escape::Dn)?;
        let filter = self.expand(&s.iterate_filter, &vars, Escape::Filter)?;
        let found = self
            .pool
            .search(
                &base,
                s.scope,
                &filter,
                &s.iterate_attrs.attributes(),
                LDAP_MAX_ITERATE_ENTRIES,
            )
            .await?;
        if found.truncated {
            return Err(DbError::Config(format!(
                "iterate_filter matches more than limits::LDAP_MAX_ITERATE_ENTRIES ({LDAP_MAX_ITERATE_ENTRIES}) entries or the server's size limit"
            )));
        }
        let mut users = Vec::with_capacity(found.entries.len());
        for entry in found.entries {
            let fields = s.iterate_attrs.apply(&entry_attrs(entry), &vars)?;
            if let Some((_, user)) = fields
                .into_iter()
                .find(|(f, v)| f == "user" && !v.is_empty())
            {
                users.push(user);
            }
        }
        Ok(users)
    }
}

impl UserDatabase for LdapDb {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn password_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<PassRecord>> {
        Box::pin(self.bounded(self.password_lookup_inner(req)))
    }

    fn verify_password<'a>(
        &'a self,
        req: LookupRequest<'a>,
        password: &'a [u8],
    ) -> Option<DbFuture<'a, Option<PassRecord>>> {
        if !self.settings.auth_bind {
            return None;
        }
        Some(Box::pin(self.bounded(self.verify_inner(req, password))))
    }

    fn user_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<UserInfo>> {
        Box::pin(self.bounded(self.user_lookup_inner(req)))
    }

    fn iterate(&self) -> DbFuture<'_, Vec<String>> {
        Box::pin(self.bounded(self.iterate_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> LdapConfig {
        LdapConfig {
            uris: "ldap://127.0.0.1:389 ldaps://ldap.example.org".into(),
            dn: "cn=mailcove,dc=example,dc=org".into(),
            dnpass: "secret".into(),
            base: "ou=people,dc=example,dc=org".into(),
            ..LdapConfig::default()
        }
    }

    fn keys(cfg: &LdapConfig) -> Vec<String> {
        config_problems(cfg).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn accepts_a_dovecot_style_config() {
        assert!(config_problems(&good()).is_empty());
        let ad = LdapConfig {
            uris: "ldaps://dc1.example.org ldaps://dc2.example.org".into(),
            base: "dc=example,dc=org".into(),
            auth_bind: true,
            pass_filter: "(&(objectClass=user)(sAMAccountName=%n))".into(),
            pass_attrs: "sAMAccountName=user".into(),
            user_filter: "(&(objectClass=user)(sAMAccountName=%n))".into(),
            user_attrs: "=home=/srv/mail/%n,=uid=5000,=gid=5000".into(),
            iterate_attrs: "sAMAccountName=user".into(),
            iterate_filter: "(objectClass=user)".into(),
            ..good()
        };
        assert!(
            config_problems(&ad).is_empty(),
            "{:?}",
            config_problems(&ad)
        );
        assert!(open(&ad).is_ok());
    }

    #[test]
    fn reports_each_bad_key() {
        let empty = LdapConfig::default();
        assert_eq!(keys(&empty), ["uris", "base"]);
        let bad = LdapConfig {
            uris: "http://x ldap://".into(),
            dnpass: String::new(),
            pass_filter: "(uid=%u".into(),
            user_filter: "(uid=%q)".into(),
            pass_attrs: "uid=user".into(),
            iterate_attrs: "uid=name".into(),
            auth_bind_userdn: "uid=%n".into(),
            default_pass_scheme: "{SSHA}".into(),
            ..good()
        };
        assert_eq!(
            keys(&bad),
            [
                "uris",
                "uris",
                "dnpass",
                "user_filter",
                "pass_filter",
                "auth_bind_userdn",
                "pass_attrs",
                "iterate_attrs",
                "default_pass_scheme"
            ]
        );
        let starttls_on_ldaps = LdapConfig {
            tls: true,
            ..good()
        };
        assert_eq!(keys(&starttls_on_ldaps), ["tls"]);
        let err = open(&LdapConfig::default()).err().unwrap().to_string();
        assert!(err.contains("auth.ldap.uris"), "{err}");
    }

    #[test]
    fn bare_passwords_get_the_default_scheme() {
        let Ok((settings, uris)) = parse(&good()) else {
            panic!("config")
        };
        let db = LdapDb {
            settings,
            pool: Pool::new(uris, &good(), TlsMode::NoVerify),
        };
        assert_eq!(db.with_scheme("{SSHA}abc".into()), "{SSHA}abc");
        assert_eq!(db.with_scheme("$6$s$h".into()), "{CRYPT}$6$s$h");
    }
}
