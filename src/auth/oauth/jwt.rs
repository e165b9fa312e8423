//! Local validation of a JWT bearer token (RFC 7519) signed as a JWS (RFC 7515, compact form)
//! against the issuer's public keys (a JWKS, RFC 7517), with ring, the crypto library rustls
//! already uses.
//!
//! Only asymmetric algorithms are accepted (RS256/384/512, PS256/384/512, ES256/384, EdDSA with
//! Ed25519): `none` and every HS* algorithm are refused before any key is looked at, so a token
//! "signed" with a public key as an HMAC secret (algorithm confusion) or not signed at all can
//! never pass. A key is used only for the algorithm family of its `kty`/`crv`, and only for the
//! header's `alg` when the key names one.
//!
//! Claims are checked strictly: `exp` is required and, like `nbf` and `iat`, must be a JSON
//! number (a string `nbf` is an error, not an absent claim); `iss` must be one of the configured
//! issuers, `aud` (a string or an array) must contain the configured audience.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::TokenError;
use super::jwks::{JwkKey, KeyMaterial};
use crate::limits::OAUTH_CLOCK_LEEWAY_SECS;

/// A JWS algorithm mailcove verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// EdDSA (RFC 8037) with Ed25519.
    EdDsa,
}

impl Alg {
    /// The algorithm named by a JWS header's `alg`; `None` for `none`, HS*, and anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }

    /// Whether `key` may verify this algorithm: its type (and curve) fit, and the key's own `alg`,
    /// when it names one, is this one.
    fn fits(self, key: &JwkKey) -> bool {
        if key.alg.as_deref().is_some_and(|a| a != self.name()) {
            return false;
        }
        matches!(
            (&key.material, self),
            (
                KeyMaterial::Rsa { .. },
                Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 | Self::Ps384 | Self::Ps512
            ) | (KeyMaterial::P256 { .. }, Self::Es256)
                | (KeyMaterial::P384 { .. }, Self::Es384)
                | (KeyMaterial::Ed25519 { .. }, Self::EdDsa)
        )
    }

    fn verify(self, key: &KeyMaterial, message: &[u8], sig: &[u8]) -> bool {
        match key {
            KeyMaterial::Rsa { n, e } => {
                let params = match self {
                    Self::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Self::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Self::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Self::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Self::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Self::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            KeyMaterial::P256 { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            KeyMaterial::P384 { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            KeyMaterial::Ed25519 { x } => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// True when `token` has the shape of a JWS compact serialization (three base64url parts); other
/// tokens (opaque ones) can only be checked by introspection.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A JWS whose header has been read but whose signature is not yet checked.
pub struct Unverified<'a> {
    /// The header's algorithm (already one of the accepted ones).
    pub alg: Alg,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    signing_input: &'a str,
    signature: Vec<u8>,
    payload: Vec<u8>,
}

/// Splits and decodes `token` and reads its header; refuses `none`, HS* and `crit`.
pub fn parse(token: &str) -> Result<Unverified<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not a JWS compact serialization"));
    };
    let header = B64URL
        .decode(h)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header)
        .map_err(|_| TokenError::Malformed("header is not a JSON object"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::Malformed("header has no alg"))?;
    let alg = Alg::from_name(alg).ok_or(TokenError::UnsupportedAlgorithm)?;
    // RFC 7515 4.1.11: a recipient that does not understand a critical extension must refuse.
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("critical header extension"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    let signature = B64URL
        .decode(s)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;
    let payload = B64URL
        .decode(p)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    Ok(Unverified {
        alg,
        kid,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
        payload,
    })
}

impl Unverified<'_> {
    /// Checks the signature with the keys of `keys` that may verify it: the one with the token's
    /// `kid`, or (no `kid`) every key that fits the algorithm. `UnknownKey` when no key fits.
    pub fn verify(&self, keys: &[JwkKey]) -> Result<Map<String, Value>, TokenError> {
        let mut candidates = keys
            .iter()
            .filter(|k| match &self.kid {
                Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
                None => true,
            })
            .filter(|k| self.alg.fits(k))
            .peekable();
        if candidates.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        let input = self.signing_input.as_bytes();
        if !candidates.any(|k| self.alg.verify(&k.material, input, &self.signature)) {
            return Err(TokenError::BadSignature);
        }
        serde_json::from_slice(&self.payload)
            .map_err(|_| TokenError::Malformed("claims are not a JSON object"))
    }
}

/// What the claims of a verified token must satisfy.
pub struct ClaimRules<'a> {
    /// Accepted `iss` values (empty: any).
    pub issuers: &'a [String],
    /// Required `aud` value (empty: not checked).
    pub audience: &'a str,
    /// Require `exp` (JWTs); introspection answers need not carry it.
    pub require_exp: bool,
}

fn numeric(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or(TokenError::Malformed("time claim is not a number")),
    }
}

/// Checks the time claims against `now` (seconds since the epoch) with
/// `OAUTH_CLOCK_LEEWAY_SECS`, then issuer and audience.
pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), TokenError> {
    let leeway = OAUTH_CLOCK_LEEWAY_SECS as f64;
    let now = now as f64;
    match numeric(claims, "exp")? {
        Some(exp) if now > exp + leeway => return Err(TokenError::Expired),
        Some(_) => {}
        None if rules.require_exp => return Err(TokenError::Malformed("no exp claim")),
        None => {}
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| now + leeway < nbf) {
        return Err(TokenError::NotYetValid);
    }
    if numeric(claims, "iat")?.is_some_and(|iat| now + leeway < iat) {
        return Err(TokenError::NotYetValid);
    }
    if !rules.issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|iss| rules.issuers.iter().any(|i| i == iss)) {
            return Err(TokenError::WrongIssuer);
        }
    }
    if !rules.audience.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == rules.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(rules.audience)),
            _ => false,
        };
        if !ok {
            return Err(TokenError::WrongAudience);
        }
    }
    Ok(())
}

/// A claim as text for comparison with a configured value: strings as they are, booleans and
/// numbers as JSON writes them (`true`, `1`).
pub fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        v @ (Value::Bool(_) | Value::Number(_)) => Some(v.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules<'a>(issuers: &'a [String], audience: &'a str) -> ClaimRules<'a> {
        ClaimRules {
            issuers,
            audience,
            require_exp: true,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key() {
        for alg in ["none", "HS256", "HS512", "None", "rs256"] {
            let h = B64URL.encode(format!(r#"{{"alg":"{alg}"}}"#));
            let token = format!("{h}.e30.");
            assert_eq!(
                parse(&token).err(),
                Some(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        let h = B64URL.encode(r#"{"alg":"RS256","crit":["x"]}"#);
        assert!(matches!(
            parse(&format!("{h}.e30.AA")),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(parse("a.b"), Err(TokenError::Malformed(_))));
        assert!(matches!(parse("a.b.c.d"), Err(TokenError::Malformed(_))));
    }

    #[test]
    fn time_claims_must_be_numbers_and_within_leeway() {
        let r = rules(&[], "");
        let now = 1_000_000;
        assert_eq!(
            check_claims(&claims(serde_json::json!({"exp": now + 10})), &r, now),
            Ok(())
        );
        // Within the leeway after expiry, then not.
        assert_eq!(
            check_claims(&claims(serde_json::json!({"exp": now - 30})), &r, now),
            Ok(())
        );
        assert_eq!(
            check_claims(&claims(serde_json::json!({"exp": now - 61})), &r, now),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check_claims(
                &claims(serde_json::json!({"exp": now + 600, "nbf": now + 120})),
                &r,
                now
            ),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            check_claims(
                &claims(serde_json::json!({"exp": now + 600, "iat": now + 120})),
                &r,
                now
            ),
            Err(TokenError::NotYetValid)
        );
        // A string nbf is an error, never an absent claim (CVE-2026-25537 in jsonwebtoken < 10.3).
        assert!(matches!(
            check_claims(
                &claims(serde_json::json!({"exp": now + 600, "nbf": "99999999999"})),
                &r,
                now
            ),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            check_claims(&claims(serde_json::json!({"exp": "99999999999"})), &r, now),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            check_claims(&claims(serde_json::json!({})), &r, now),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn issuer_and_audience() {
        let issuers = vec!["https://idp".to_owned()];
        let r = rules(&issuers, "mail");
        let now = 10;
        let ok = serde_json::json!({"exp": 100, "iss": "https://idp", "aud": ["x", "mail"]});
        assert_eq!(check_claims(&claims(ok), &r, now), Ok(()));
        let ok = serde_json::json!({"exp": 100, "iss": "https://idp", "aud": "mail"});
        assert_eq!(check_claims(&claims(ok), &r, now), Ok(()));
        let bad = serde_json::json!({"exp": 100, "iss": "https://evil", "aud": "mail"});
        assert_eq!(
            check_claims(&claims(bad), &r, now),
            Err(TokenError::WrongIssuer)
        );
        let bad = serde_json::json!({"exp": 100, "aud": "mail"});
        assert_eq!(
            check_claims(&claims(bad), &r, now),
            Err(TokenError::WrongIssuer)
        );
        let bad = serde_json::json!({"exp": 100, "iss": "https://idp", "aud": "web"});
        assert_eq!(
            check_claims(&claims(bad), &r, now),
            Err(TokenError::WrongAudience)
        );
        let bad = serde_json::json!({"exp": 100, "iss": "https://idp"});
        assert_eq!(
            check_claims(&claims(bad), &r, now),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("ya29.opaque"));
        assert!(!looks_like_jwt("a.b.c d"));
    }
}
