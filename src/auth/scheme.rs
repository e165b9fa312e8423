//! Password schemes: classifying a stored hash once when the users file is
//! loaded, and verifying a password against it (blocking; callers run it on
//! the hashing pool).
//!
//! Costs a stored hash asks for (Argon2 memory, SHA-crypt rounds, bcrypt
//! cost) are checked against `limits::MAX_*` when the file is loaded, so a
//! hand-edited hash cannot make one login allocate gigabytes or burn a core
//! for minutes.

use std::fmt;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

use super::scram::{ScramHash, ScramKeys};
use super::{Argon2Params, AuthError};
use crate::limits::{
    MAX_ARGON2_M_COST_KIB, MAX_ARGON2_P_COST, MAX_ARGON2_T_COST, MAX_BCRYPT_COST,
    MAX_SHA_CRYPT_ROUNDS,
};

/// A password field of the users file, classified by scheme.
pub(crate) enum StoredHash {
    /// `$argon2id$` or `$argon2i$` PHC string with acceptable costs.
    Argon2(String),
    /// `$5$` or `$6$` SHA-crypt string with acceptable rounds.
    ShaCrypt(String),
    /// `$2y$`, `$2b$` or `$2a$` bcrypt string with acceptable cost.
    Bcrypt(String),
    /// `{PLAIN}` / `{CLEARTEXT}` password, usable only when the options allow it.
    Plain(Zeroizing<Vec<u8>>),
    /// LDAP's digest schemes (RFC 2307 / OpenLDAP): `{SHA}`, `{SHA256}`, `{SHA512}` are
    /// base64(digest(password)), `{SSHA}`, `{SSHA256}`, `{SSHA512}` base64(digest(password +
    /// salt) + salt). Fast hashes: kept for directories that store them, never written.
    Digest {
        /// The digest.
        alg: &'static ring::digest::Algorithm,
        /// The stored digest.
        hash: Vec<u8>,
        /// The salt (empty for the unsalted schemes).
        salt: Vec<u8>,
    },
    /// `{SCRAM-SHA-1}` / `{SCRAM-SHA-256}` keys (Dovecot's format) with an acceptable iteration
    /// count: SCRAM logins of that hash, and plain logins by deriving the keys again.
    Scram(ScramKeys),
    /// Empty field, `*`, `!...`: the account has no usable password (locked).
    Locked,
    /// A scheme mailcove does not verify, or a hash it refuses; the user cannot
    /// log in and a warning names the user and `scheme` once.
    Unsupported {
        /// Scheme name as the file gives it (or `CRYPT` for bare hashes).
        scheme: String,
        /// Why it is refused, for the warning.
        reason: &'static str,
    },
}

impl fmt::Debug for StoredHash {
    // Never print the hash or a plaintext password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Argon2(_) => f.write_str("Argon2(..)"),
            Self::ShaCrypt(_) => f.write_str("ShaCrypt(..)"),
            Self::Bcrypt(_) => f.write_str("Bcrypt(..)"),
            Self::Plain(_) => f.write_str("Plain(..)"),
            Self::Digest { .. } => f.write_str("Digest(..)"),
            Self::Scram(k) => write!(f, "Scram({})", k.hash.name()),
            Self::Locked => f.write_str("Locked"),
            Self::Unsupported { scheme, reason } => f
                .debug_struct("Unsupported")
                .field("scheme", scheme)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// Result of verifying a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The password is right.
    Match,
    /// The password is wrong.
    Mismatch,
    /// The account cannot log in whatever the password (reason for the log).
    Refused(&'static str),
}

impl StoredHash {
    /// Classifies the password field of a passwd-file line, as Dovecot reads
    /// it: `{SCHEME}hash`, bare hash (CRYPT), or libpam-pwdfile's
    /// `hash[13]` (CRYPT) / `hash[34]` (MD5).
    pub(crate) fn parse(field: &str) -> Self {
        if let Some(rest) = field.strip_prefix('{')
            && let Some((scheme, hash)) = rest.split_once('}')
        {
            let upper = scheme.to_ascii_uppercase();
            return match upper.as_str() {
                "ARGON2ID" => classify_prefixed(&upper, hash, &["$argon2id$"]),
                "ARGON2I" => classify_prefixed(&upper, hash, &["$argon2i$"]),
                "SHA512-CRYPT" => classify_prefixed(&upper, hash, &["$6$"]),
                "SHA256-CRYPT" => classify_prefixed(&upper, hash, &["$5$"]),
                "BLF-CRYPT" => classify_prefixed(&upper, hash, &["$2y$", "$2b$", "$2a$"]),
                "CRYPT" => classify_crypt(&upper, hash),
                "PLAIN" | "CLEARTEXT" => Self::Plain(Zeroizing::new(hash.as_bytes().to_vec())),
                "SHA" | "SHA1" => {
                    classify_digest(&upper, hash, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY, false)
                }
                "SHA256" => classify_digest(&upper, hash, &ring::digest::SHA256, false),
                "SHA512" => classify_digest(&upper, hash, &ring::digest::SHA512, false),
                "SSHA" => {
                    classify_digest(&upper, hash, &ring::digest::SHA1_FOR_LEGACY_USE_ONLY, true)
                }
                "SSHA256" => classify_digest(&upper, hash, &ring::digest::SHA256, true),
                "SSHA512" => classify_digest(&upper, hash, &ring::digest::SHA512, true),
                "SCRAM-SHA-1" | "SCRAM-SHA-256" => classify_scram(&upper, hash),
                _ => Self::Unsupported {
                    scheme: scheme.to_owned(),
                    reason: "unsupported password scheme",
                },
            };
        }
        if let Some(hash) = field.strip_suffix("[13]") {
            return classify_crypt("CRYPT", hash);
        }
        if field.ends_with("[34]") {
            return Self::Unsupported {
                scheme: "MD5".to_owned(),
                reason: "unsupported password scheme",
            };
        }
        classify_crypt("CRYPT", field)
    }
}

/// `{SHA*}` / `{SSHA*}`: base64 of the digest, followed by the salt for the salted ones.
fn classify_digest(
    scheme: &str,
    b64: &str,
    alg: &'static ring::digest::Algorithm,
    salted: bool,
) -> StoredHash {
    use base64::Engine as _;
    let refuse = |reason| StoredHash::Unsupported {
        scheme: scheme.to_owned(),
        reason,
    };
    let Ok(mut bytes) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return refuse("malformed base64 digest");
    };
    let len = alg.output_len();
    // Unsalted: exactly the digest. Salted: the digest and a salt of at least one byte
    // (OpenLDAP writes 4, Dovecot 8 or more).
    if bytes.len() < len || (salted && bytes.len() == len) || (!salted && bytes.len() != len) {
        return refuse("digest of the wrong length for its scheme");
    }
    let salt = bytes.split_off(len);
    StoredHash::Digest {
        alg,
        hash: bytes,
        salt,
    }
}

fn classify_scram(scheme: &str, hash: &str) -> StoredHash {
    let Some(h) = ScramHash::from_scheme(scheme) else {
        return StoredHash::Unsupported {
            scheme: scheme.to_owned(),
            reason: "unsupported password scheme",
        };
    };
    match ScramKeys::parse(h, hash) {
        Ok(keys) => StoredHash::Scram(keys),
        Err(reason) => StoredHash::Unsupported {
            scheme: scheme.to_owned(),
            reason,
        },
    }
}

fn classify_prefixed(scheme: &str, hash: &str, prefixes: &[&str]) -> StoredHash {
    if prefixes.iter().any(|p| hash.starts_with(p)) {
        classify_crypt(scheme, hash)
    } else {
        StoredHash::Unsupported {
            scheme: scheme.to_owned(),
            reason: "hash does not match its scheme",
        }
    }
}

/// Detects the algorithm of a modular-crypt / PHC string by its prefix.
fn classify_crypt(scheme: &str, hash: &str) -> StoredHash {
    if hash.is_empty() || hash == "*" || hash == "x" || hash.starts_with('!') {
        return StoredHash::Locked;
    }
    let checked = if hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$") {
        check_argon2(hash).map(|()| StoredHash::Argon2(hash.to_owned()))
    } else if hash.starts_with("$6$") || hash.starts_with("$5$") {
        check_sha_crypt(hash).map(|()| StoredHash::ShaCrypt(hash.to_owned()))
    } else if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") {
        check_bcrypt(hash).map(|()| StoredHash::Bcrypt(hash.to_owned()))
    } else {
        Err("unsupported crypt format (only $argon2id$, $argon2i$, $6$, $5$, $2y$/$2b$/$2a$)")
    };
    checked.unwrap_or_else(|reason| StoredHash::Unsupported {
        scheme: scheme.to_owned(),
        reason,
    })
}

fn check_argon2(hash: &str) -> Result<(), &'static str> {
    let parsed = PasswordHash::new(hash).map_err(|_| "malformed argon2 PHC string")?;
    let params = argon2::Params::try_from(&parsed).map_err(|_| "invalid argon2 parameters")?;
    if params.m_cost() > MAX_ARGON2_M_COST_KIB {
        return Err("argon2 memory cost above limits::MAX_ARGON2_M_COST_KIB");
    }
    if params.t_cost() > MAX_ARGON2_T_COST {
        return Err("argon2 time cost above limits::MAX_ARGON2_T_COST");
    }
    if params.p_cost() > MAX_ARGON2_P_COST {
        return Err("argon2 parallelism above limits::MAX_ARGON2_P_COST");
    }
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err("argon2 PHC string without salt or hash");
    }
    Ok(())
}

fn check_sha_crypt(hash: &str) -> Result<(), &'static str> {
    // `$6$rounds=N$salt$hash` or `$6$salt$hash`.
    let mut fields = hash.split('$').skip(2);
    if let Some(rounds) = fields.next().and_then(|f| f.strip_prefix("rounds=")) {
        let rounds: u32 = rounds.parse().map_err(|_| "malformed SHA-crypt rounds")?;
        // glibc silently raises rounds below 1000 to 1000; the sha-crypt
        // crate would instead read the field as salt and never match.
        if rounds < sha_crypt::Params::ROUNDS_MIN {
            return Err("SHA-crypt rounds below 1000 not supported");
        }
        if rounds > MAX_SHA_CRYPT_ROUNDS {
            return Err("SHA-crypt rounds above limits::MAX_SHA_CRYPT_ROUNDS");
        }
    }
    Ok(())
}

fn check_bcrypt(hash: &str) -> Result<(), &'static str> {
    // `$2y$NN$<53 chars>`.
    let cost = hash
        .get(4..6)
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or("malformed bcrypt cost")?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err("bcrypt cost outside 4..=limits::MAX_BCRYPT_COST");
    }
    if hash.len() != 60 {
        return Err("malformed bcrypt hash length");
    }
    Ok(())
}

/// Verifies `password` against `stored`. Blocking and CPU-heavy by design.
pub(crate) fn verify(stored: &StoredHash, password: &[u8], allow_plaintext: bool) -> Verdict {
    match stored {
        StoredHash::Argon2(phc) => match PasswordHash::new(phc) {
            // The algorithm, version and costs come from the PHC string.
            Ok(parsed) => match Argon2::default().verify_password(password, &parsed) {
                Ok(()) => Verdict::Match,
                Err(argon2::password_hash::Error::PasswordInvalid) => Verdict::Mismatch,
                Err(_) => Verdict::Refused("argon2 hash could not be verified"),
            },
            Err(_) => Verdict::Refused("malformed argon2 PHC string"),
        },
        StoredHash::ShaCrypt(mcf) => {
            match sha_crypt::PasswordVerifier::<str>::verify_password(
                &sha_crypt::ShaCrypt::default(),
                password,
                mcf.as_str(),
            ) {
                Ok(()) => Verdict::Match,
                Err(sha_crypt::password_hash::Error::PasswordInvalid) => Verdict::Mismatch,
                Err(_) => Verdict::Refused("SHA-crypt hash could not be verified"),
            }
        }
        // `verify` (not `non_truncating_verify`): hashes made by other tools
        // silently used only the first 72 bytes, and must keep working.
        StoredHash::Bcrypt(mcf) => match bcrypt::verify(password, mcf) {
            Ok(true) => Verdict::Match,
            Ok(false) => Verdict::Mismatch,
            Err(_) => Verdict::Refused("bcrypt hash could not be verified"),
        },
        StoredHash::Plain(stored) => {
            if !allow_plaintext {
                return Verdict::Refused("plaintext password scheme not allowed");
            }
            if constant_time_eq(stored, password) {
                Verdict::Match
            } else {
                Verdict::Mismatch
            }
        }
        StoredHash::Digest { alg, hash, salt } => {
            let mut ctx = ring::digest::Context::new(alg);
            ctx.update(password);
            ctx.update(salt);
            if constant_time_eq(ctx.finish().as_ref(), hash) {
                Verdict::Match
            } else {
                Verdict::Mismatch
            }
        }
        // PBKDF2 of the entry's iteration count (checked against limits when it was loaded).
        StoredHash::Scram(keys) => {
            if keys.verify_password(password) {
                Verdict::Match
            } else {
                Verdict::Mismatch
            }
        }
        StoredHash::Locked => Verdict::Refused("account has no usable password"),
        StoredHash::Unsupported { reason, .. } => Verdict::Refused(reason),
    }
}

/// Whether `password` matches `stored`, a password in users-file syntax (`{SCHEME}hash`, a
/// bare hash read as CRYPT); plaintext schemes never match. Blocking and CPU-heavy: for tools
/// and tests, and for an external database's stored value; logins use the hashing pool.
pub fn verify_stored_password(stored: &str, password: &[u8]) -> bool {
    verify(&StoredHash::parse(stored), password, false) == Verdict::Match
}

/// Compares without an early exit, so the time taken does not reveal the
/// length of the matching prefix. Lengths are compared in the same pass.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Builds the Argon2id hasher for new hashes from the configured costs.
fn argon2id(params: &Argon2Params) -> Result<Argon2<'static>, AuthError> {
    let p = argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None)
        .map_err(|e| AuthError::Hash(e.to_string()))?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        p,
    ))
}

/// Hashes `password` with Argon2id and a fresh random salt into a PHC string
/// (`$argon2id$v=19$m=..,t=..,p=..$salt$hash`).
pub(crate) fn hash_argon2id(password: &[u8], params: &Argon2Params) -> Result<String, AuthError> {
    let hasher = argon2id(params)?;
    hasher
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_schemes_like_dovecot() {
        assert!(matches!(
            StoredHash::parse("{PLAIN}secret"),
            StoredHash::Plain(_)
        ));
        assert!(matches!(
            StoredHash::parse("{cleartext}secret"),
            StoredHash::Plain(_)
        ));
        assert!(matches!(StoredHash::parse(""), StoredHash::Locked));
        assert!(matches!(StoredHash::parse("!$6$x$y"), StoredHash::Locked));
        assert!(matches!(
            StoredHash::parse("{MD5-CRYPT}$1$abc$def"),
            StoredHash::Unsupported { ref scheme, .. } if scheme == "MD5-CRYPT"
        ));
        assert!(matches!(
            StoredHash::parse("$1$abc$def"),
            StoredHash::Unsupported { ref scheme, .. } if scheme == "CRYPT"
        ));
        assert!(matches!(
            StoredHash::parse("abc[34]"),
            StoredHash::Unsupported { ref scheme, .. } if scheme == "MD5"
        ));
        assert!(matches!(
            StoredHash::parse("$6$salt$abc[13]"),
            StoredHash::ShaCrypt(_)
        ));
        assert!(matches!(
            StoredHash::parse("{SHA512-CRYPT}$5$salt$abc"),
            StoredHash::Unsupported { .. }
        ));
    }

    #[test]
    fn refuses_excessive_costs() {
        let big_m = "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
        assert!(matches!(
            StoredHash::parse(big_m),
            StoredHash::Unsupported { .. }
        ));
        assert!(matches!(
            StoredHash::parse("$6$rounds=999$salt$abc"),
            StoredHash::Unsupported { .. }
        ));
        let rounds = "$6$rounds=999999999$salt$abc";
        assert!(matches!(
            StoredHash::parse(rounds),
            StoredHash::Unsupported { .. }
        ));
        let cost = "$2y$31$L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u";
        assert!(matches!(
            StoredHash::parse(cost),
            StoredHash::Unsupported { .. }
        ));
    }

    #[test]
    fn ldap_digest_schemes() {
        // RFC 2307 / OpenLDAP: `slappasswd -h {SSHA} -s secret` with the salt "abcd" gives
        // base64(sha1("secret" + "abcd") + "abcd"); computed here by hand from FIPS 180 SHA-1.
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let digest = |alg, data: &[u8]| ring::digest::digest(alg, data).as_ref().to_vec();
        let sha1 = &ring::digest::SHA1_FOR_LEGACY_USE_ONLY;
        let mut ssha = digest(sha1, b"secretabcd");
        ssha.extend_from_slice(b"abcd");
        let stored = StoredHash::parse(&format!("{{SSHA}}{}", b64(&ssha)));
        assert_eq!(verify(&stored, b"secret", false), Verdict::Match);
        assert_eq!(verify(&stored, b"Secret", false), Verdict::Mismatch);
        assert_eq!(verify(&stored, b"secretabcd", false), Verdict::Mismatch);
        // {SHA}: the classic "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=" is SHA-1 of "secret".
        let stored = StoredHash::parse("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=");
        assert_eq!(verify(&stored, b"secret", false), Verdict::Match);
        assert_eq!(verify(&stored, b"secre", false), Verdict::Mismatch);
        for (scheme, alg) in [
            ("SSHA256", &ring::digest::SHA256),
            ("SSHA512", &ring::digest::SHA512),
        ] {
            let mut d = digest(alg, b"pw\xffsalty");
            d.extend_from_slice(b"salty");
            let stored = StoredHash::parse(&format!("{{{scheme}}}{}", b64(&d)));
            assert_eq!(
                verify(&stored, b"pw\xff", false),
                Verdict::Match,
                "{scheme}"
            );
            assert_eq!(verify(&stored, b"pw", false), Verdict::Mismatch, "{scheme}");
        }
        let stored = StoredHash::parse(&format!(
            "{{sha256}}{}",
            b64(&digest(&ring::digest::SHA256, b"x"))
        ));
        assert_eq!(verify(&stored, b"x", false), Verdict::Match);
        // Wrong lengths and bad base64 are refused, never matched.
        for bad in ["{SSHA}!!!", "{SSHA}", "{SHA}YWJj", "{SSHA256}YWJj"] {
            assert!(
                matches!(StoredHash::parse(bad), StoredHash::Unsupported { .. }),
                "{bad}"
            );
        }
        let unsalted = b64(&digest(sha1, b"secret"));
        assert!(matches!(
            StoredHash::parse(&format!("{{SSHA}}{unsalted}")),
            StoredHash::Unsupported { .. }
        ));
    }

    #[test]
    fn reads_dovecot_scram_entries_and_verifies_plain_logins() {
        // `doveadm pw -s SCRAM-SHA-256 -p pencil` style entry, made from RFC 7677's values.
        let keys = ScramKeys::derive(ScramHash::Sha256, b"pencil", b"0123456789abcdef", 4096);
        let stored = keys.to_stored();
        assert!(stored.starts_with("{SCRAM-SHA-256}4096,MDEyMzQ1Njc4OWFiY2RlZg==,"));
        let parsed = StoredHash::parse(&stored);
        assert!(matches!(&parsed, StoredHash::Scram(k) if *k == keys));
        assert_eq!(verify(&parsed, b"pencil", false), Verdict::Match);
        assert_eq!(verify(&parsed, b"pencil2", false), Verdict::Mismatch);
        let lower = stored.replace("{SCRAM-SHA-256}", "{scram-sha-256}");
        assert!(matches!(StoredHash::parse(&lower), StoredHash::Scram(_)));
        let sha1 = ScramKeys::derive(ScramHash::Sha1, b"pw", b"salt", 4096).to_stored();
        assert!(matches!(
            StoredHash::parse(&sha1),
            StoredHash::Scram(ScramKeys {
                hash: ScramHash::Sha1,
                ..
            })
        ));
        // SHA-1 keys under a SHA-256 label have the wrong length: refused, not misread.
        let mislabelled = sha1.replace("SCRAM-SHA-1", "SCRAM-SHA-256");
        assert!(matches!(
            StoredHash::parse(&mislabelled),
            StoredHash::Unsupported { .. }
        ));
        assert!(matches!(
            StoredHash::parse("{SCRAM-SHA-256}99999999999,c2FsdA==,AA==,AA=="),
            StoredHash::Unsupported { .. }
        ));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
