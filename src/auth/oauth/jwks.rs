//! The issuer's public keys (a JWKS, RFC 7517): parsed from `jwks_file` or fetched from
//! `jwks_url`, cached, read again after `jwks_refresh_secs` and, at most once per
//! `MIN_JWKS_REFRESH_SECS`, when a token names a key id the cached set does not have (a key
//! rotation at the provider).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use parking_lot::Mutex;
use serde_json::Value;

use super::TokenError;
use super::http;
use crate::limits::{MAX_JWKS_KEYS, MAX_JWKS_SIZE, MIN_JWKS_REFRESH_SECS};

/// The public part of one key, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// `kty: RSA`: modulus and exponent, big-endian.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// `kty: EC, crv: P-256`: the uncompressed point `04 || x || y`.
    P256 {
        /// The point.
        point: Vec<u8>,
    },
    /// `kty: EC, crv: P-384`.
    P384 {
        /// The point.
        point: Vec<u8>,
    },
    /// `kty: OKP, crv: Ed25519` (RFC 8037).
    Ed25519 {
        /// The public key.
        x: Vec<u8>,
    },
}

/// One usable key of a JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwkKey {
    /// `kid`.
    pub kid: Option<String>,
    /// `alg`, when the key is restricted to one algorithm.
    pub alg: Option<String>,
    /// The key.
    pub material: KeyMaterial,
}

fn field(key: &serde_json::Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    B64URL.decode(key.get(name)?.as_str()?).ok()
}

fn coordinate(key: &serde_json::Map<String, Value>, name: &str, len: usize) -> Option<Vec<u8>> {
    field(key, name).filter(|c| c.len() == len)
}

/// Parses a JWKS document. Keys that cannot verify signatures here (symmetric `oct` keys,
/// encryption keys, unknown types or curves, broken fields) are skipped; a document that is not
/// `{"keys":[...]}` is an error. At most `MAX_JWKS_KEYS` keys are kept.
pub fn parse_jwks(doc: &[u8]) -> Result<Vec<JwkKey>, String> {
    let doc: Value = serde_json::from_slice(doc).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    let mut out = Vec::new();
    for key in keys {
        let Some(key) = key.as_object() else { continue };
        if key
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let crv = key.get("crv").and_then(Value::as_str);
        let material = match (key.get("kty").and_then(Value::as_str), crv) {
            (Some("RSA"), _) => match (field(key, "n"), field(key, "e")) {
                (Some(n), Some(e)) if !n.is_empty() && !e.is_empty() => KeyMaterial::Rsa { n, e },
                _ => continue,
            },
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let len = if crv == "P-256" { 32 } else { 48 };
                let (Some(x), Some(y)) = (coordinate(key, "x", len), coordinate(key, "y", len))
                else {
                    continue;
                };
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                if crv == "P-256" {
                    KeyMaterial::P256 { point }
                } else {
                    KeyMaterial::P384 { point }
                }
            }
            (Some("OKP"), Some("Ed25519")) => match coordinate(key, "x", 32) {
                Some(x) => KeyMaterial::Ed25519 { x },
                None => continue,
            },
            _ => continue,
        };
        out.push(JwkKey {
            kid: key.get("kid").and_then(Value::as_str).map(str::to_owned),
            alg: key.get("alg").and_then(Value::as_str).map(str::to_owned),
            material,
        });
        if out.len() == MAX_JWKS_KEYS {
            break;
        }
    }
    Ok(out)
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_file`.
    File(PathBuf),
    /// `jwks_url`.
    Url(String),
}

impl JwksSource {
    /// Reads the document (blocking), bounded by `MAX_JWKS_SIZE`.
    fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Self::File(path) => {
                let file =
                    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut doc = Vec::new();
                file.take(MAX_JWKS_SIZE + 1)
                    .read_to_end(&mut doc)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if doc.len() as u64 > MAX_JWKS_SIZE {
                    return Err(format!(
                        "{}: larger than {MAX_JWKS_SIZE} bytes",
                        path.display()
                    ));
                }
                Ok(doc)
            }
            Self::Url(url) => http::get(url, MAX_JWKS_SIZE).map_err(|e| format!("{url}: {e}")),
        }
    }
}

struct Loaded {
    keys: Arc<Vec<JwkKey>>,
    at: Instant,
}

/// The cached key set of one source.
pub struct JwksCache {
    source: JwksSource,
    refresh: Duration,
    loaded: Mutex<Option<Loaded>>,
    /// Held while reading, so concurrent logins wait for one fetch instead of each fetching.
    reading: Mutex<()>,
}

impl JwksCache {
    /// A cache that reads `source` on first use.
    pub fn new(source: JwksSource, refresh: Duration) -> Self {
        JwksCache {
            source,
            refresh,
            loaded: Mutex::new(None),
            reading: Mutex::new(()),
        }
    }

    /// The keys to check a token with (blocking: may read the file or fetch the URL). With
    /// `unknown_kid`, a set older than `MIN_JWKS_REFRESH_SECS` is read again first, since the
    /// provider may have rotated its keys. When a read fails, the keys read before stay in use;
    /// without any, the login fails temporarily.
    pub fn keys(&self, unknown_kid: bool) -> Result<Arc<Vec<JwkKey>>, TokenError> {
        let min_age = Duration::from_secs(MIN_JWKS_REFRESH_SECS);
        let fresh = |l: &Option<Loaded>| {
            l.as_ref().and_then(|l| {
                let age = l.at.elapsed();
                (age < self.refresh && !(unknown_kid && age >= min_age))
                    .then(|| Arc::clone(&l.keys))
            })
        };
        if let Some(keys) = fresh(&self.loaded.lock()) {
            return Ok(keys);
        }
        let _reading = self.reading.lock();
        // Another login may have read it while this one waited.
        if let Some(keys) = fresh(&self.loaded.lock()) {
            return Ok(keys);
        }
        match self.source.read().and_then(|doc| parse_jwks(&doc)) {
            Ok(keys) => {
                tracing::info!(source = ?self.source, keys = keys.len(), "OAuth2 JWKS loaded");
                let keys = Arc::new(keys);
                *self.loaded.lock() = Some(Loaded {
                    keys: Arc::clone(&keys),
                    at: Instant::now(),
                });
                Ok(keys)
            }
            Err(e) => {
                let mut loaded = self.loaded.lock();
                match loaded.as_mut() {
                    Some(l) => {
                        tracing::warn!(source = ?self.source, error = %e, "OAuth2 JWKS refresh failed; keeping the keys read before");
                        // Try again after the minimum interval, not on every login.
                        let now = Instant::now();
                        l.at = now
                            .checked_sub(self.refresh.saturating_sub(min_age))
                            .unwrap_or(now);
                        Ok(Arc::clone(&l.keys))
                    }
                    None => {
                        tracing::error!(source = ?self.source, error = %e, "OAuth2 JWKS cannot be read");
                        Err(TokenError::Unavailable)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_keys_are_skipped() {
        let x = B64URL.encode([1u8; 32]);
        let y = B64URL.encode([2u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r", "use": "enc"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r2", "alg": "RS256"},
            {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "e"},
            {"kty": "EC", "crv": "P-256", "x": x, "kid": "no-y"},
            {"kty": "EC", "crv": "secp256k1", "x": x, "y": y},
            {"kty": "OKP", "crv": "Ed25519", "x": x},
            "junk"
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, [Some("r2"), Some("e"), None]);
        assert_eq!(keys[0].alg.as_deref(), Some("RS256"));
        assert!(matches!(&keys[1].material, KeyMaterial::P256 { point } if point.len() == 65));
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"[").is_err());
    }

    #[test]
    fn a_failed_reread_keeps_the_keys_read_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let x = B64URL.encode([7u8; 32]);
        let doc =
            serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "a"}]});
        // Missing file, nothing read before: a temporary failure.
        let cache = JwksCache::new(JwksSource::File(path.clone()), Duration::ZERO);
        assert_eq!(cache.keys(false).err(), Some(TokenError::Unavailable));
        std::fs::write(&path, doc.to_string()).unwrap();
        assert_eq!(cache.keys(false).unwrap()[0].kid.as_deref(), Some("a"));
        // Broken now: the old keys stay in use.
        std::fs::write(&path, "{").unwrap();
        assert_eq!(cache.keys(false).unwrap()[0].kid.as_deref(), Some("a"));
        // Over the size limit is an error too.
        let big = vec![b' '; MAX_JWKS_SIZE as usize + 1];
        std::fs::write(&path, big).unwrap();
        assert!(JwksSource::File(path).read().is_err());
    }
}
