//! OAuth 2 bearer-token logins: OAUTHBEARER (RFC 7628) and XOAUTH2 (docs/oauth2.md).
//!
//! * [`message`]: the SASL payloads and the JSON error challenges, no I/O.
//! * [`jwt`]: local validation of a JWT (signature against the JWKS, `exp`/`nbf`/`iat`, `iss`,
//!   `aud`), with ring.
//! * [`jwks`]: the key set from `jwks_file` or `jwks_url`, cached and refreshed.
//! * `introspect`: RFC 7662 introspection for tokens that are not JWTs (or with no JWKS).
//!
//! [`OauthService::validator`] gives the [`Validator`] of the configuration in force (a new one
//! after a reload that changed `[auth.oauth2]`, which also drops the cached keys);
//! [`Authenticator::authenticate_bearer`] validates a token and turns its user into a login:
//! the user named by `username_attribute` must exist in the user database, the client's
//! authzid (OAUTHBEARER `a=`, XOAUTH2 `user=`) must be that user, and the passdb fields
//! (`nologin`, `allow_nets`) apply, with the same penalty on failure as a wrong password.

pub mod http;
mod introspect;
pub mod jwks;
pub mod jwt;
pub mod message;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::user::check_passdb_fields;
use super::{AuthFailure, Authenticator, TempFailReason, UserInfo};
use crate::config::Oauth2Config;
use crate::limits::{MAX_OAUTH_TOKEN_LEN, MAX_USERNAME_LEN};
use jwks::{JwksCache, JwksSource};
use jwt::ClaimRules;

/// Why a token was refused. Never carries the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWS / JWT, or a claim of the wrong type.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// `alg` is `none`, an HMAC, or unknown.
    #[error("token algorithm not accepted")]
    UnsupportedAlgorithm,
    /// No key of the JWKS has the token's `kid` (or fits its algorithm).
    #[error("no key for the token's kid")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// `exp` is past.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not a configured issuer.
    #[error("token issuer not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience not accepted")]
    WrongAudience,
    /// Introspection says inactive, or `active_attribute` does not have `active_value`.
    #[error("token not active")]
    Inactive,
    /// No string claim `username_attribute`.
    #[error("token names no user")]
    NoUser,
    /// The keys or the introspection endpoint cannot be reached now.
    #[error("identity provider unavailable")]
    Unavailable,
}

/// Checks tokens under one `[auth.oauth2]` configuration.
pub struct Validator {
    cfg: Oauth2Config,
    jwks: Option<JwksCache>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Validator {
    /// A validator for `cfg` (reads nothing yet).
    pub fn new(cfg: Oauth2Config) -> Self {
        let refresh = Duration::from_secs(cfg.jwks_refresh_secs);
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(path), _) => Some(JwksSource::File(path.clone())),
            (None, Some(url)) => Some(JwksSource::Url(url.clone())),
            (None, None) => None,
        };
        Validator {
            jwks: source.map(|s| JwksCache::new(s, refresh)),
            cfg,
        }
    }

    /// Validates `token` and returns the user it names. Blocking (may read the JWKS or ask the
    /// introspection endpoint): call it on the blocking pool.
    pub fn validate(&self, token: &str) -> Result<String, TokenError> {
        if token.len() > MAX_OAUTH_TOKEN_LEN {
            return Err(TokenError::Malformed("token too long"));
        }
        if let Some(jwks) = &self.jwks
            && jwt::looks_like_jwt(token)
        {
            let jws = jwt::parse(token)?;
            let claims = match jws.verify(&jwks.keys(false)?) {
                // Maybe a key rotation: read the keys again (rate-limited) and retry once.
                Err(TokenError::UnknownKey) => jws.verify(&jwks.keys(true)?)?,
                other => other?,
            };
            let rules = ClaimRules {
                issuers: &self.cfg.issuers,
                audience: &self.cfg.audience,
                require_exp: true,
            };
            jwt::check_claims(&claims, &rules, now_secs())?;
            return self.user_of(&claims);
        }
        if let Some(url) = &self.cfg.introspection_url {
            let claims = introspect::introspect(&self.cfg, url, token)?;
            let rules = ClaimRules {
                issuers: &self.cfg.issuers,
                audience: &self.cfg.audience,
                require_exp: false,
            };
            // Introspection answers carry iss/aud only optionally (RFC 7662 2.2); check those
            // present, and the time claims when given.
            let rules = ClaimRules {
                issuers: if claims.contains_key("iss") {
                    rules.issuers
                } else {
                    &[]
                },
                audience: if claims.contains_key("aud") {
                    rules.audience
                } else {
                    ""
                },
                ..rules
            };
            jwt::check_claims(&claims, &rules, now_secs())?;
            return self.user_of(&claims);
        }
        Err(TokenError::Malformed("not a JWT and no introspection_url"))
    }

    fn user_of(&self, claims: &Map<String, Value>) -> Result<String, TokenError> {
        if !self.cfg.active_attribute.is_empty()
            && jwt::claim_text(claims, &self.cfg.active_attribute).as_deref()
                != Some(self.cfg.active_value.as_str())
        {
            return Err(TokenError::Inactive);
        }
        match claims.get(&self.cfg.username_attribute) {
            Some(Value::String(u)) if !u.is_empty() && u.len() <= MAX_USERNAME_LEN => Ok(u.clone()),
            _ => Err(TokenError::NoUser),
        }
    }
}

/// The validator of the configuration in force, kept across logins (its JWKS cache with it).
#[derive(Default)]
pub struct OauthService {
    current: Mutex<Option<Arc<Validator>>>,
}

impl std::fmt::Debug for OauthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OauthService").finish_non_exhaustive()
    }
}

impl OauthService {
    /// The validator for `cfg`: the one in use if `cfg` is unchanged, else a new one.
    pub fn validator(&self, cfg: &Oauth2Config) -> Arc<Validator> {
        let mut current = self.current.lock();
        match current.as_ref() {
            Some(v) if v.cfg == *cfg => Arc::clone(v),
            _ => {
                let v = Arc::new(Validator::new(cfg.clone()));
                *current = Some(Arc::clone(&v));
                v
            }
        }
    }
}

impl Authenticator {
    /// Logs in with a bearer token: validates it (on the blocking pool), finds its user in the
    /// user database, checks that `claimed` (the client's authzid / `user=`), when given, is
    /// that user, and applies the passdb fields. A failure is logged with its reason and
    /// answered after the address's penalty delay, exactly as a wrong password.
    pub async fn authenticate_bearer(
        &self,
        validator: Arc<Validator>,
        claimed: Option<&str>,
        token: &str,
        remote: IpAddr,
    ) -> Result<UserInfo, AuthFailure> {
        let auth = Authenticator {
            inner: Arc::clone(&self.inner),
        };
        let token = Zeroizing::new(token.to_owned());
        let claimed_owned = claimed.map(str::to_owned);
        let job = tokio::task::spawn_blocking(move || -> Result<UserInfo, (&'static str, bool)> {
            let user = validator.validate(&token).map_err(|e| {
                let reason = match e {
                    TokenError::Malformed(_) => "malformed token",
                    TokenError::UnsupportedAlgorithm => "token algorithm not accepted",
                    TokenError::UnknownKey => "no key for the token's kid",
                    TokenError::BadSignature => "bad token signature",
                    TokenError::Expired => "token expired",
                    TokenError::NotYetValid => "token not yet valid",
                    TokenError::WrongIssuer => "token issuer not accepted",
                    TokenError::WrongAudience => "token audience not accepted",
                    TokenError::Inactive => "token not active",
                    TokenError::NoUser => "token names no user",
                    TokenError::Unavailable => "identity provider unavailable",
                };
                (reason, e == TokenError::Unavailable)
            })?;
            if claimed_owned
                .as_deref()
                .is_some_and(|c| !c.eq_ignore_ascii_case(&user))
            {
                return Err((
                    "authorization identity differs from the token's user",
                    false,
                ));
            }
            let info = auth.lookup(&user).ok_or(("token's user unknown", false))?;
            check_passdb_fields(&info, remote).map_err(|r| (r, false))?;
            Ok(info)
        });
        let log_user = claimed.unwrap_or("");
        match job.await {
            Ok(Ok(info)) => {
                self.inner.penalty.record_success(remote);
                tracing::debug!(user = ?info.name, %remote, "authenticated by bearer token");
                Ok(info)
            }
            Ok(Err((reason, true))) => {
                tracing::warn!(user = ?log_user, %remote, reason, "bearer authentication failed temporarily");
                Err(AuthFailure::TempFail(TempFailReason::Internal))
            }
            Ok(Err((reason, false))) => {
                let delay = self.next_failure_delay(remote);
                let failures = self.inner.penalty.record_failure(remote, Instant::now());
                tracing::info!(user = ?log_user, %remote, reason, failures, delay_ms = delay.as_millis() as u64, "authentication failed");
                tokio::time::sleep(delay).await;
                Err(AuthFailure::Invalid)
            }
            Err(_) => {
                tracing::error!(%remote, "bearer authentication job failed");
                Err(AuthFailure::TempFail(TempFailReason::Internal))
            }
        }
    }
}
