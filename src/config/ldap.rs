//! `[auth.ldap]`: the keys of Dovecot's dovecot-ldap.conf.ext, so values copy across. Checked
//! by `crate::auth::ldap::config_problems`, which parses the filters, DN templates and
//! attribute maps exactly as the lookups use them.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Problems;

/// `[auth.ldap]`
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct LdapConfig {
    /// Space-separated `ldap://host[:port]` / `ldaps://host[:port]` URIs, tried in order.
    pub uris: String,
    /// The service account searches bind as; empty searches anonymously.
    pub dn: String,
    /// Its password.
    pub dnpass: String,
    /// Search base; may use `%u %n %d` (escaped as DN values).
    pub base: String,
    /// `base`, `onelevel` or `subtree` (Dovecot's default).
    pub scope: LdapScope,
    /// Check passwords by binding as the user instead of comparing `userPassword`.
    pub auth_bind: bool,
    /// With `auth_bind`: the user's DN as a template (`uid=%n,ou=people,dc=example,dc=org`),
    /// bound to directly without a search. Empty: search with `pass_filter` for the DN.
    pub auth_bind_userdn: String,
    /// Filter finding the user for a password lookup.
    pub pass_filter: String,
    /// Attributes of that entry as passdb fields (`ldapAttr=field[=template]`, comma-separated).
    pub pass_attrs: String,
    /// Filter finding the user for a user lookup (LMTP, deliver, admin).
    pub user_filter: String,
    /// Attributes of that entry as userdb fields.
    pub user_attrs: String,
    /// Attributes naming each user for iteration (must set `user`).
    pub iterate_attrs: String,
    /// Filter listing every user.
    pub iterate_filter: String,
    /// StartTLS on `ldap://` URIs (Dovecot's `tls = yes`).
    pub tls: bool,
    /// CA certificates (PEM) the server's certificate must chain to; unset: the system's.
    pub tls_ca_cert_file: Option<PathBuf>,
    /// `never`, `allow`, `try` (the certificate is not checked), `demand` or `hard` (checked;
    /// the default, as OpenLDAP's `TLS_REQCERT`).
    pub tls_require_cert: LdapTlsRequireCert,
    /// Scheme of a `userPassword` value without a `{SCHEME}` prefix.
    pub default_pass_scheme: String,
}

/// Search scope.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LdapScope {
    /// The base entry only.
    Base,
    /// Entries directly under the base.
    Onelevel,
    /// The base and everything under it.
    #[default]
    Subtree,
}

/// Dovecot's `tls_require_cert` (OpenLDAP's `TLS_REQCERT` values).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LdapTlsRequireCert {
    /// No check.
    Never,
    /// No check (OpenLDAP would go on with a bad certificate).
    Allow,
    /// No check (OpenLDAP would go on with a bad certificate).
    Try,
    /// The certificate must be valid for the host.
    #[default]
    Demand,
    /// Same as `demand`.
    Hard,
}

impl Default for LdapConfig {
    fn default() -> Self {
        // Dovecot's defaults (doc/dovecot-ldap-example.conf, db-ldap.c).
        LdapConfig {
            uris: String::new(),
            dn: String::new(),
            dnpass: String::new(),
            base: String::new(),
            scope: LdapScope::Subtree,
            auth_bind: false,
            auth_bind_userdn: String::new(),
            pass_filter: "(&(objectClass=posixAccount)(uid=%u))".into(),
            pass_attrs: "uid=user,userPassword=password".into(),
            user_filter: "(&(objectClass=posixAccount)(uid=%u))".into(),
            user_attrs: "homeDirectory=home,uidNumber=uid,gidNumber=gid".into(),
            iterate_attrs: "uid=user".into(),
            iterate_filter: "(objectClass=posixAccount)".into(),
            tls: false,
            tls_ca_cert_file: None,
            tls_require_cert: LdapTlsRequireCert::Demand,
            default_pass_scheme: "CRYPT".into(),
        }
    }
}

// Never print dnpass.
impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("uris", &self.uris)
            .field("dn", &self.dn)
            .field(
                "dnpass",
                &if self.dnpass.is_empty() {
                    ""
                } else {
                    "<hidden>"
                },
            )
            .field("base", &self.base)
            .field("scope", &self.scope)
            .field("auth_bind", &self.auth_bind)
            .field("auth_bind_userdn", &self.auth_bind_userdn)
            .field("pass_filter", &self.pass_filter)
            .field("pass_attrs", &self.pass_attrs)
            .field("user_filter", &self.user_filter)
            .field("user_attrs", &self.user_attrs)
            .field("iterate_attrs", &self.iterate_attrs)
            .field("iterate_filter", &self.iterate_filter)
            .field("tls", &self.tls)
            .field("tls_ca_cert_file", &self.tls_ca_cert_file)
            .field("tls_require_cert", &self.tls_require_cert)
            .field("default_pass_scheme", &self.default_pass_scheme)
            .finish()
    }
}

impl LdapConfig {
    /// Adds every problem of this section, keys as `auth.ldap.<key>`.
    pub(super) fn validate(&self, out: &mut Problems) {
        for (key, message) in crate::auth::ldap::config_problems(self) {
            out.add(format!("auth.ldap.{key}"), message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    /// `text` after one listener (a file needs one).
    fn parse(text: &str) -> Result<Config, String> {
        let text = format!(
            "[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:143\"\ntls = \"none\"\n{text}"
        );
        Config::parse(&text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    fn parse_raw(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_dovecot_keys() {
        let c = parse(
            "[auth.ldap]\nuris = \"ldaps://dc1.example.org ldaps://dc2.example.org\"\n\
             dn = \"CN=svc,DC=example,DC=org\"\ndnpass = \"pw\"\nbase = \"DC=example,DC=org\"\n\
             scope = \"onelevel\"\nauth_bind = true\ntls_require_cert = \"never\"\n\
             pass_filter = \"(&(objectClass=user)(sAMAccountName=%n)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))\"\n\
             pass_attrs = \"sAMAccountName=user\"\nuser_attrs = \"=home=/srv/mail/%Ln,=uid=5000,=gid=5000\"\n",
        )
        .unwrap();
        let l = &c.auth.ldap;
        assert_eq!(l.scope, LdapScope::Onelevel);
        assert!(l.auth_bind);
        assert_eq!(l.tls_require_cert, LdapTlsRequireCert::Never);
        assert_eq!(l.default_pass_scheme, "CRYPT");
        assert!(
            !format!("{l:?}").contains("\"pw\""),
            "dnpass is never printed"
        );
        // The effective config (mailcove check-config) renders and reads back the same.
        assert_eq!(parse_raw(&c.to_toml()).unwrap(), c);
        // Not configured: nothing to check.
        assert!(parse("[auth]\n").is_ok());
    }

    #[test]
    fn reports_bad_keys_by_name() {
        // The section is checked when it is the database in use.
        let ldap = "[auth]\nbackend = \"ldap\"\n[auth.ldap]\n";
        let err = parse(&format!("{ldap}uris = \"http://x\"\nbase = \"dc=x\"\n")).unwrap_err();
        assert!(err.contains("auth.ldap.uris"), "{err}");
        let err = parse(&format!("{ldap}uris = \"ldap://x\"\n")).unwrap_err();
        assert!(err.contains("auth.ldap.base"), "{err}");
        assert!(parse("[auth.ldap]\nuris = \"ldap://x\"\n").is_ok());
        let err = parse("[auth.ldap]\nuris = \"ldap://x\"\nbase = \"dc=x\"\nscope = \"sub\"\n")
            .unwrap_err();
        assert!(
            err.contains("test.toml:8") && err.contains("`sub`"),
            "{err}"
        );
        let err =
            parse("[auth.ldap]\nuris = \"ldap://x\"\nbase = \"dc=x\"\nbogus = 1\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }
}
