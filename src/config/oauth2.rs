//! `[auth.oauth2]`: OAUTHBEARER (RFC 7628) and XOAUTH2 logins with OAuth 2 bearer tokens, modelled
//! on Dovecot's dovecot-oauth2.conf.ext (docs/oauth2.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Problems;
use crate::limits::{DEFAULT_JWKS_REFRESH_SECS, MAX_JWKS_REFRESH_SECS, MIN_JWKS_REFRESH_SECS};

/// How the token is sent to `introspection_url`, as Dovecot's `introspection_mode`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntrospectionMode {
    /// RFC 7662: `POST` with `token=<token>` as a form, client credentials as HTTP Basic auth.
    #[default]
    Post,
    /// `GET` of `introspection_url` with the token appended (the URL ends in e.g. `?token=`).
    Get,
    /// `GET` of `introspection_url` with `Authorization: Bearer <token>` (a userinfo endpoint).
    Auth,
}

/// `[auth.oauth2]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Oauth2Config {
    /// Offer AUTH=OAUTHBEARER and AUTH=XOAUTH2 (where plaintext authentication is allowed).
    pub enabled: bool,
    /// A local JWKS (RFC 7517) JSON file with the issuer's public keys; tokens are then
    /// validated locally as JWTs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The issuer's JWKS URL (https), fetched and cached; instead of `jwks_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Seconds a fetched JWKS (or read file) is used before it is read again.
    pub jwks_refresh_secs: u64,
    /// An RFC 7662 token introspection endpoint, asked about tokens that are not JWTs or when
    /// no JWKS is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// How the token is sent to `introspection_url`.
    pub introspection_mode: IntrospectionMode,
    /// Client id for HTTP Basic authentication at the introspection endpoint (empty: none).
    pub client_id: String,
    /// Client secret for HTTP Basic authentication at the introspection endpoint.
    pub client_secret: String,
    /// Accepted `iss` values; empty accepts any issuer (not recommended with a JWKS URL shared by
    /// many tenants).
    pub issuers: Vec<String>,
    /// The `aud` value a token must carry (empty: not checked).
    pub audience: String,
    /// The claim naming the user, who must exist in the user database (Dovecot's
    /// `username_attribute`).
    pub username_attribute: String,
    /// A claim that must equal `active_value` (empty: not checked), as Dovecot's
    /// `active_attribute`.
    pub active_attribute: String,
    /// The value `active_attribute` must have.
    pub active_value: String,
    /// The `scope` named in the error challenge (RFC 7628 3.2.2), e.g. the scope clients must ask
    /// for (empty: left out).
    pub scope: String,
    /// The `openid-configuration` URL named in the error challenge (empty: left out).
    pub openid_configuration_url: String,
}

impl Default for Oauth2Config {
    fn default() -> Self {
        Oauth2Config {
            enabled: false,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh_secs: DEFAULT_JWKS_REFRESH_SECS,
            introspection_url: None,
            introspection_mode: IntrospectionMode::Post,
            client_id: String::new(),
            client_secret: String::new(),
            issuers: Vec::new(),
            audience: String::new(),
            username_attribute: "email".to_owned(),
            active_attribute: String::new(),
            active_value: String::new(),
            scope: String::new(),
            openid_configuration_url: String::new(),
        }
    }
}

/// True for `https://…`, and for `http://` to a loopback address (a local test or sidecar):
/// a bearer token or a key set must not cross a network in the clear.
pub fn url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Oauth2Config {
    pub(super) fn validate(&self, out: &mut Problems) {
        if !self.enabled {
            return;
        }
        if self.jwks_file.is_none() && self.jwks_url.is_none() && self.introspection_url.is_none() {
            out.add(
                "auth.oauth2.enabled",
                "needs jwks_file, jwks_url or introspection_url",
            );
        }
        if self.jwks_file.is_some() && self.jwks_url.is_some() {
            out.add(
                "auth.oauth2.jwks_url",
                "set either jwks_file or jwks_url, not both",
            );
        }
        for (key, url) in [
            ("auth.oauth2.jwks_url", &self.jwks_url),
            ("auth.oauth2.introspection_url", &self.introspection_url),
        ] {
            if let Some(url) = url
                && !url_allowed(url)
            {
                out.add(
                    key,
                    "must be an https:// URL (http:// only to a loopback address)",
                );
            }
        }
        if !(MIN_JWKS_REFRESH_SECS..=MAX_JWKS_REFRESH_SECS).contains(&self.jwks_refresh_secs) {
            out.add(
                "auth.oauth2.jwks_refresh_secs",
                format!("must be between {MIN_JWKS_REFRESH_SECS} and {MAX_JWKS_REFRESH_SECS}"),
            );
        }
        if self.username_attribute.is_empty() {
            out.add("auth.oauth2.username_attribute", "must be set");
        }
        if self.active_attribute.is_empty() && !self.active_value.is_empty() {
            out.add(
                "auth.oauth2.active_value",
                "needs auth.oauth2.active_attribute",
            );
        }
        if self.client_id.is_empty() && !self.client_secret.is_empty() {
            out.add("auth.oauth2.client_secret", "needs auth.oauth2.client_id");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(url_allowed("https://login.example.com/keys"));
        assert!(url_allowed("http://127.0.0.1:8080/introspect"));
        assert!(url_allowed("http://[::1]:80/x"));
        assert!(url_allowed("http://localhost/x"));
        assert!(!url_allowed("http://idp.example.com/keys"));
        assert!(!url_allowed("http://127.0.0.1.example.com/keys"));
        assert!(!url_allowed("ftp://127.0.0.1/keys"));
    }

    fn problems(cfg: &Oauth2Config) -> Vec<String> {
        let mut out = Problems::default();
        cfg.validate(&mut out);
        out.0.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn enabled_needs_a_key_source_and_sane_values() {
        let mut cfg = Oauth2Config::default();
        assert!(problems(&cfg).is_empty(), "disabled: nothing checked");
        cfg.enabled = true;
        assert_eq!(problems(&cfg), ["auth.oauth2.enabled"]);
        cfg.jwks_file = Some("/etc/mailcove/jwks.json".into());
        assert!(problems(&cfg).is_empty());
        cfg.jwks_url = Some("http://idp.example.com/keys".into());
        cfg.introspection_url = Some("https://idp.example.com/introspect".into());
        cfg.jwks_refresh_secs = 1;
        cfg.username_attribute.clear();
        cfg.active_value = "true".into();
        cfg.client_secret = "s".into();
        assert_eq!(
            problems(&cfg),
            [
                "auth.oauth2.jwks_url",
                "auth.oauth2.jwks_url",
                "auth.oauth2.jwks_refresh_secs",
                "auth.oauth2.username_attribute",
                "auth.oauth2.active_value",
                "auth.oauth2.client_secret",
            ]
        );
    }
}
