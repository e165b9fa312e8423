//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), with the -PLUS variants bound to the TLS
//! channel by `tls-exporter` (RFC 9266): the stored keys ([`ScramKeys`], Dovecot's
//! `{SCRAM-SHA-256}iter,salt,StoredKey,ServerKey` format) and the server side of the exchange
//! ([`ScramServer`]). No I/O: a session feeds the client's messages in and sends what comes out;
//! `crate::server::scram` drives it for IMAP and POP3 and `Authenticator::scram_credentials`
//! finds the keys.
//!
//! # Deviations, following Dovecot
//!
//! * Passwords are not SASLprep'ed (RFC 5802 section 2.2 `Normalize`): Dovecot hashes the bytes
//!   as given, and its stored keys must keep working here. For ASCII passwords both agree.
//! * Stored iteration counts below [`MIN_SCRAM_ITERATIONS`] (4096, the RFC's SHOULD and Dovecot's
//!   minimum) are refused, as are counts above `limits::MAX_SCRAM_ITERATIONS`.

use std::fmt;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use zeroize::Zeroizing;

use crate::limits::{DEFAULT_SCRAM_ITERATIONS, MAX_SASL_FIELD, MAX_SCRAM_ITERATIONS};

/// Smallest iteration count a stored key may have (RFC 5802 section 5.1: "at least 4096"; Dovecot
/// refuses fewer too).
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;

/// Length of the salt of newly made keys, as Dovecot (16 bytes).
pub const SCRAM_SALT_LEN: usize = 16;

/// Random bytes in the server's part of the nonce (base64: 24 printable characters).
const SERVER_NONCE_LEN: usize = 18;

/// The `tls-exporter` channel binding of RFC 9266 section 2: this label, an empty context, 32
/// bytes.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// Length of the `tls-exporter` channel binding data.
pub const TLS_EXPORTER_LEN: usize = 32;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    /// The scheme and (without `-PLUS`) mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The scheme named `name` (case-insensitive), e.g. for `--scheme`.
    pub fn from_scheme(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("SCRAM-SHA-1") {
            Some(Self::Sha1)
        } else if name.eq_ignore_ascii_case("SCRAM-SHA-256") {
            Some(Self::Sha256)
        } else {
            None
        }
    }

    /// Output length of the hash (and of StoredKey, ServerKey, proofs).
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hmac_alg(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
        }
    }

    fn pbkdf2_alg(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    /// `HMAC(key, data)`.
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let key = hmac::Key::new(self.hmac_alg(), key);
        hmac::sign(&key, data).as_ref().to_vec()
    }

    /// `H(data)`.
    fn h(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    /// `SaltedPassword := Hi(password, salt, i)`, which is PBKDF2 with this HMAC (RFC 5802 section
    /// 2.2). `iterations` of 0 is taken as 1 (never reached: stored counts are checked).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; self.output_len()]);
        let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2_alg(), n, salt, password, &mut out);
        out
    }
}

/// What the server stores for one user and hash (RFC 5802 section 3): never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// The hash these keys are for.
    pub hash: ScramHash,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramKeys {
    // The keys let anyone who has them pose as the server (ServerKey) or check guesses offline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramKeys {
    /// The keys of `password` with `salt` and `iterations` (RFC 5802 section 3).
    pub fn derive(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Self {
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = Zeroizing::new(hash.hmac(&salted, b"Client Key"));
        Self {
            hash,
            iterations,
            salt: salt.to_vec(),
            stored_key: hash.h(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        }
    }

    /// New keys for `password` with a random salt and `iterations` (`None`:
    /// `limits::DEFAULT_SCRAM_ITERATIONS`).
    pub fn generate(
        hash: ScramHash,
        password: &[u8],
        iterations: Option<u32>,
    ) -> Result<Self, &'static str> {
        let iterations = iterations.unwrap_or(DEFAULT_SCRAM_ITERATIONS);
        check_iterations(iterations)?;
        let mut salt = [0u8; SCRAM_SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| "no random numbers for the salt")?;
        Ok(Self::derive(hash, password, &salt, iterations))
    }

    /// Parses Dovecot's stored form (after the `{SCRAM-SHA-…}` prefix):
    /// `iterations,base64(salt),base64(StoredKey),base64(ServerKey)`.
    pub fn parse(hash: ScramHash, field: &str) -> Result<Self, &'static str> {
        let mut parts = field.split(',');
        let (Some(iter), Some(salt), Some(stored), Some(server), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err("SCRAM entry is not iterations,salt,StoredKey,ServerKey");
        };
        let iterations: u32 = iter
            .parse()
            .map_err(|_| "malformed SCRAM iteration count")?;
        check_iterations(iterations)?;
        let decode = |s: &str| {
            B64.decode(s.trim())
                .map_err(|_| "malformed base64 in SCRAM entry")
        };
        let salt = decode(salt)?;
        let stored_key = decode(stored)?;
        let server_key = decode(server)?;
        if salt.is_empty() {
            return Err("SCRAM entry with an empty salt");
        }
        if stored_key.len() != hash.output_len() || server_key.len() != hash.output_len() {
            return Err("SCRAM keys of the wrong length for their hash");
        }
        Ok(Self {
            hash,
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// The users-file form, `{SCRAM-SHA-256}4096,salt,StoredKey,ServerKey`, as Dovecot's
    /// `doveadm pw -s SCRAM-SHA-256` writes it.
    pub fn to_stored(&self) -> String {
        format!(
            "{{{}}}{},{},{},{}",
            self.hash.name(),
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Whether `password` gives these keys (a plain LOGIN / AUTH PLAIN against a SCRAM entry).
    /// Costs `iterations` HMACs; the comparison takes the same time wherever it differs.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let salted = self
            .hash
            .salted_password(password, &self.salt, self.iterations);
        let client_key = Zeroizing::new(self.hash.hmac(&salted, b"Client Key"));
        constant_time_eq(&self.hash.h(&client_key), &self.stored_key)
    }

    /// Keys for a user who has none of this hash (unknown, or a scheme SCRAM cannot use): salt
    /// and keys are HMACs of the name under `secret`, so asking twice gives the same salt (as for
    /// a real user) and nothing shows the user is not real. No password matches them in practice;
    /// the caller fails the exchange anyway.
    pub fn fake(hash: ScramHash, secret: &[u8], user: &str) -> Self {
        let mac = |what: &str| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(what.as_bytes());
            ctx.update(b"\0");
            ctx.update(hash.name().as_bytes());
            ctx.update(b"\0");
            ctx.update(user.to_lowercase().as_bytes());
            ctx.sign().as_ref().to_vec()
        };
        let n = hash.output_len();
        Self {
            hash,
            iterations: DEFAULT_SCRAM_ITERATIONS,
            salt: mac("salt")[..SCRAM_SALT_LEN].to_vec(),
            stored_key: mac("stored")[..n].to_vec(),
            server_key: mac("server")[..n].to_vec(),
        }
    }
}

fn check_iterations(iterations: u32) -> Result<(), &'static str> {
    if iterations < MIN_SCRAM_ITERATIONS {
        return Err("SCRAM iteration count below 4096");
    }
    if iterations > MAX_SCRAM_ITERATIONS {
        return Err("SCRAM iteration count above limits::MAX_SCRAM_ITERATIONS");
    }
    Ok(())
}

/// Compares without an early exit; lengths are compared in the same pass.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

/// Why a SCRAM exchange failed. Never carries client data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The message does not follow RFC 5802 section 7 (a protocol error: BAD / -ERR).
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// A field longer than `limits::MAX_SASL_FIELD`.
    #[error("SCRAM field too long")]
    TooLong,
    /// The authzid names someone else (no master users).
    #[error("authorization identity differs from authentication identity")]
    AuthzidNotPermitted,
    /// The client wants channel binding on a mechanism or connection that has none, or one of a
    /// type other than `tls-exporter`.
    #[error("channel binding not supported")]
    ChannelBindingUnsupported,
    /// `y` while this server offers -PLUS here: a man in the middle may have removed it from the
    /// capability list (RFC 5802 section 6).
    #[error("channel binding downgrade: client thinks the server does not support it")]
    Downgrade,
    /// The `c=` of the client's final message is not its gs2 header and this channel's binding.
    #[error("channel binding does not match")]
    ChannelBindingMismatch,
    /// The `r=` of the client's final message is not this exchange's nonce (a replayed message).
    #[error("nonce does not match this exchange")]
    NonceMismatch,
    /// The proof is wrong: wrong password, or unknown user.
    #[error("invalid proof")]
    InvalidProof,
    /// A step was called out of order.
    #[error("SCRAM exchange not in the state for this message")]
    OutOfOrder,
}

impl ScramError {
    /// True for errors that are a failed authentication (answered NO after the penalty), false
    /// for protocol errors (BAD).
    pub fn is_auth_failure(self) -> bool {
        !matches!(self, Self::Malformed(_) | Self::TooLong | Self::OutOfOrder)
    }
}

/// What the client's first message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The user name (`n=`, unescaped).
    pub user: String,
    /// The authzid (`a=`), if given; it equals `user` (case-insensitively).
    pub authzid: Option<String>,
}

#[derive(Debug)]
enum State {
    AwaitClientFirst,
    AwaitKeys {
        gs2_header: String,
        bare: String,
        client_nonce: String,
    },
    AwaitClientFinal {
        gs2_header: String,
        bare: String,
        server_first: String,
        nonce: String,
        keys: ScramKeys,
    },
    Finished,
}

/// One server-side SCRAM exchange.
#[derive(Debug)]
pub struct ScramServer {
    hash: ScramHash,
    plus: bool,
    /// This connection's `tls-exporter` data when -PLUS is offered on it.
    binding: Option<[u8; TLS_EXPORTER_LEN]>,
    /// The user named by the client-first message, once parsed.
    claimed_user: Option<String>,
    state: State,
}

impl ScramServer {
    /// Starts an exchange of `hash` (`plus`: the -PLUS mechanism). `binding` is the connection's
    /// `tls-exporter` data when the server offers -PLUS on it, `None` otherwise; a -PLUS
    /// mechanism without it is refused.
    pub fn new(
        hash: ScramHash,
        plus: bool,
        binding: Option<[u8; TLS_EXPORTER_LEN]>,
    ) -> Result<Self, ScramError> {
        if plus && binding.is_none() {
            return Err(ScramError::ChannelBindingUnsupported);
        }
        Ok(Self {
            hash,
            plus,
            binding,
            claimed_user: None,
            state: State::AwaitClientFirst,
        })
    }

    /// The hash of this exchange.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// The user the client named, once its first message was parsed (also when the exchange was
    /// then refused), for the log.
    pub fn claimed_user(&self) -> Option<&str> {
        self.claimed_user.as_deref()
    }

    /// Parses `client-first-message` (RFC 5802 section 7).
    pub fn client_first(&mut self, msg: &[u8]) -> Result<ClientFirst, ScramError> {
        if !matches!(self.state, State::AwaitClientFirst) {
            return Err(ScramError::OutOfOrder);
        }
        self.state = State::Finished;
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let (flag, rest) = msg
            .split_once(',')
            .ok_or(ScramError::Malformed("no gs2 header"))?;
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header without its second comma"))?;
        let gs2_header = &msg[..flag.len() + authzid.len() + 2];
        // Checked once the user name is known, so a refusal can name the user in the log.
        let binding_check = match flag {
            // A -PLUS mechanism means the client binds (RFC 5802 section 6).
            "n" if self.plus => Err(ScramError::ChannelBindingUnsupported),
            "n" => Ok(()),
            "y" if self.plus => Err(ScramError::ChannelBindingUnsupported),
            "y" if self.binding.is_some() => Err(ScramError::Downgrade),
            "y" => Ok(()),
            _ => {
                let name = flag
                    .strip_prefix("p=")
                    .ok_or(ScramError::Malformed("unknown gs2-cbind-flag"))?;
                if self.plus && name == "tls-exporter" {
                    Ok(())
                } else {
                    Err(ScramError::ChannelBindingUnsupported)
                }
            }
        };
        let authzid = if authzid.is_empty() {
            None
        } else {
            let a = authzid
                .strip_prefix("a=")
                .ok_or(ScramError::Malformed("authzid without a="))?;
            Some(saslname(a)?)
        };
        let mut attrs = bare.split(',');
        let mut first = attrs.next().unwrap_or_default();
        if first.starts_with("m=") {
            // reserved-mext: a mandatory extension we do not know (section 5.1: MUST fail).
            return Err(ScramError::Malformed(
                "mandatory extension m= not supported",
            ));
        }
        let user = first
            .strip_prefix("n=")
            .ok_or(ScramError::Malformed("no n= user name"))?;
        let user = saslname(user)?;
        if user.is_empty() {
            return Err(ScramError::Malformed("empty user name"));
        }
        first = attrs.next().unwrap_or_default();
        let nonce = first
            .strip_prefix("r=")
            .ok_or(ScramError::Malformed("no r= nonce"))?;
        if nonce.is_empty() || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(ScramError::Malformed("nonce not printable"));
        }
        check_extensions(attrs)?;
        self.claimed_user = Some(user.clone());
        binding_check?;
        if let Some(a) = &authzid
            && !a.eq_ignore_ascii_case(&user)
        {
            return Err(ScramError::AuthzidNotPermitted);
        }
        self.state = State::AwaitKeys {
            gs2_header: gs2_header.to_owned(),
            bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
        };
        Ok(ClientFirst { user, authzid })
    }

    /// `server-first-message` for `keys` (the user's, or fake ones): the client's nonce with a
    /// fresh random part, the salt and the iteration count.
    pub fn server_first(&mut self, keys: ScramKeys) -> Result<Vec<u8>, ScramError> {
        let State::AwaitKeys {
            gs2_header,
            bare,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(ScramError::OutOfOrder);
        };
        if keys.hash != self.hash {
            return Err(ScramError::OutOfOrder);
        }
        let mut random = [0u8; SERVER_NONCE_LEN];
        // A CSPRNG failure must not give a predictable nonce: refuse the exchange.
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| ScramError::OutOfOrder)?;
        let nonce = format!("{client_nonce}{}", B64.encode(random));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&keys.salt),
            keys.iterations
        );
        let out = server_first.clone().into_bytes();
        self.state = State::AwaitClientFinal {
            gs2_header,
            bare,
            server_first,
            nonce,
            keys,
        };
        Ok(out)
    }

    /// Checks `client-final-message`; on success returns `server-final-message` (`v=…`). The
    /// exchange is over either way: a second final message is refused.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::AwaitClientFinal {
            gs2_header,
            bare,
            server_first,
            nonce,
            keys,
        } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return Err(ScramError::OutOfOrder);
        };
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // client-final-message-without-proof "," proof, the proof last.
        let (without_proof, proof) = msg
            .rsplit_once(',')
            .ok_or(ScramError::Malformed("no proof"))?;
        let proof = proof
            .strip_prefix("p=")
            .ok_or(ScramError::Malformed("last attribute is not p= proof"))?;
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let mut attrs = without_proof.split(',');
        let cbind = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no c= channel binding"))?;
        let cbind = B64
            .decode(cbind)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no r= nonce"))?;
        check_extensions(attrs)?;

        let mut expected = gs2_header.clone().into_bytes();
        if gs2_header.starts_with("p=")
            && let Some(b) = &self.binding
        {
            expected.extend_from_slice(b);
        }
        if !constant_time_eq(&cbind, &expected) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if !constant_time_eq(client_nonce.as_bytes(), nonce.as_bytes()) {
            return Err(ScramError::NonceMismatch);
        }
        if proof.len() != self.hash.output_len() {
            return Err(ScramError::InvalidProof);
        }
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = self.hash.hmac(&keys.stored_key, auth_message.as_bytes());
        let client_key: Zeroizing<Vec<u8>> = Zeroizing::new(
            proof
                .iter()
                .zip(&client_signature)
                .map(|(p, s)| p ^ s)
                .collect(),
        );
        if !constant_time_eq(&self.hash.h(&client_key), &keys.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = self.hash.hmac(&keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// Optional `attr=value` extensions after the nonce: unknown ones are ignored (section 7), but
/// each must still be `ALPHA "=" value`.
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for a in attrs {
        let b = a.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(ScramError::Malformed("extension is not attr=value"));
        }
    }
    Ok(())
}

/// Decodes a `saslname` (section 5.1): `=2C` is `,`, `=3D` is `=`; any other `=` fails.
fn saslname(s: &str) -> Result<String, ScramError> {
    if s.len() > MAX_SASL_FIELD {
        return Err(ScramError::TooLong);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad = escape in saslname")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    if out.contains('\0') {
        return Err(ScramError::Malformed("NUL in saslname"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the server side against a client-final computed by hand from `password`.
    fn client_final_for(
        hash: ScramHash,
        password: &[u8],
        gs2: &str,
        binding: Option<&[u8]>,
        bare: &str,
        server_first: &str,
        (salt, iterations): (&[u8], u32),
    ) -> String {
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap();
        let mut cb = gs2.as_bytes().to_vec();
        cb.extend_from_slice(binding.unwrap_or_default());
        let without_proof = format!("c={},r={nonce}", B64.encode(&cb));
        let salted = hash.salted_password(password, salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored = hash.h(&client_key);
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let sig = hash.hmac(&stored, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    /// RFC 5802 section 5 (SCRAM-SHA-1) and RFC 7677 section 3 (SCRAM-SHA-256): the server's
    /// answers to the RFC's client, with the RFC's nonce, salt and count.
    #[test]
    fn rfc_test_vectors() {
        for (hash, salt, cnonce, snonce, proof, verifier) in [
            (
                ScramHash::Sha1,
                "QSXCR+Q6sek8bf92",
                "fyko+d2lbbFgONRv9qkxdawL",
                "3rfcNHYJY1ZVvWVs7j",
                "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ),
            (
                ScramHash::Sha256,
                "W22ZaJ0SNY7soEsUEjb6gQ==",
                "rOprNGfwEbeRWgbNEkqO",
                "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ),
        ] {
            let salt = B64.decode(salt).unwrap();
            let keys = ScramKeys::derive(hash, b"pencil", &salt, 4096);
            // Every representation round-trips through Dovecot's stored form.
            let stored = keys.to_stored();
            let body = stored.split_once('}').unwrap().1;
            assert_eq!(ScramKeys::parse(hash, body).unwrap(), keys);
            assert!(keys.verify_password(b"pencil"));
            assert!(!keys.verify_password(b"pencil "));

            let mut server = ScramServer::new(hash, false, None).unwrap();
            let bare = format!("n=user,r={cnonce}");
            let first = server
                .client_first(format!("n,,{bare}").as_bytes())
                .unwrap();
            assert_eq!(first.user, "user");
            // Replace the random server nonce with the RFC's to reproduce its messages.
            let _ = server.server_first(keys.clone()).unwrap();
            let server_first = format!("r={cnonce}{snonce},s={},i=4096", B64.encode(&salt));
            if let State::AwaitClientFinal {
                server_first: sf,
                nonce,
                ..
            } = &mut server.state
            {
                *sf = server_first.clone();
                *nonce = format!("{cnonce}{snonce}");
            }
            let final_msg = format!("c=biws,r={cnonce}{snonce},p={proof}");
            assert_eq!(
                final_msg,
                client_final_for(
                    hash,
                    b"pencil",
                    "n,,",
                    None,
                    &bare,
                    &server_first,
                    (&salt, 4096)
                )
            );
            let v = server.client_final(final_msg.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(v).unwrap(), verifier);
        }
    }

    fn run(
        server: &mut ScramServer,
        gs2: &str,
        binding: Option<&[u8]>,
        password: &[u8],
        keys: &ScramKeys,
    ) -> Result<Vec<u8>, ScramError> {
        let bare = "n=alice,r=clientnonce123";
        server.client_first(format!("{gs2}{bare}").as_bytes())?;
        let sf = String::from_utf8(server.server_first(keys.clone())?).unwrap();
        let fin = client_final_for(
            keys.hash,
            password,
            gs2,
            binding,
            bare,
            &sf,
            (&keys.salt, keys.iterations),
        );
        server.client_final(fin.as_bytes())
    }

    #[test]
    fn wrong_password_and_fake_keys_fail() {
        let keys = ScramKeys::generate(ScramHash::Sha256, b"right", None).unwrap();
        assert_eq!(keys.iterations, DEFAULT_SCRAM_ITERATIONS);
        let mut s = ScramServer::new(ScramHash::Sha256, false, None).unwrap();
        assert!(run(&mut s, "n,,", None, b"right", &keys).is_ok());
        let mut s = ScramServer::new(ScramHash::Sha256, false, None).unwrap();
        assert_eq!(
            run(&mut s, "n,,", None, b"wrong", &keys),
            Err(ScramError::InvalidProof)
        );
        let fake = ScramKeys::fake(ScramHash::Sha256, b"secret", "nobody");
        assert_eq!(
            fake,
            ScramKeys::fake(ScramHash::Sha256, b"secret", "NoBody")
        );
        assert_ne!(
            fake.salt,
            ScramKeys::fake(ScramHash::Sha256, b"secret", "other").salt
        );
        let mut s = ScramServer::new(ScramHash::Sha256, false, None).unwrap();
        assert_eq!(
            run(&mut s, "n,,", None, b"", &fake),
            Err(ScramError::InvalidProof)
        );
    }

    #[test]
    fn channel_binding_rules() {
        let cb = [7u8; TLS_EXPORTER_LEN];
        let keys = ScramKeys::generate(ScramHash::Sha1, b"pw", None).unwrap();
        // -PLUS needs binding data, and p=tls-exporter with the right data.
        assert_eq!(
            ScramServer::new(ScramHash::Sha1, true, None).unwrap_err(),
            ScramError::ChannelBindingUnsupported
        );
        let plus = || ScramServer::new(ScramHash::Sha1, true, Some(cb)).unwrap();
        assert!(run(&mut plus(), "p=tls-exporter,,", Some(&cb), b"pw", &keys).is_ok());
        assert_eq!(
            run(
                &mut plus(),
                "p=tls-exporter,,",
                Some(&[8u8; 32]),
                b"pw",
                &keys
            ),
            Err(ScramError::ChannelBindingMismatch)
        );
        assert_eq!(
            run(&mut plus(), "p=tls-unique,,", Some(&cb), b"pw", &keys),
            Err(ScramError::ChannelBindingUnsupported)
        );
        assert_eq!(
            run(&mut plus(), "n,,", None, b"pw", &keys),
            Err(ScramError::ChannelBindingUnsupported)
        );
        // Without -PLUS: y is a downgrade where PLUS is offered, fine where it is not.
        let tls = || ScramServer::new(ScramHash::Sha1, false, Some(cb)).unwrap();
        assert_eq!(
            run(&mut tls(), "y,,", None, b"pw", &keys),
            Err(ScramError::Downgrade)
        );
        assert!(run(&mut tls(), "n,,", None, b"pw", &keys).is_ok());
        let clear = || ScramServer::new(ScramHash::Sha1, false, None).unwrap();
        assert!(run(&mut clear(), "y,,", None, b"pw", &keys).is_ok());
        assert_eq!(
            run(&mut clear(), "p=tls-exporter,,", Some(&cb), b"pw", &keys),
            Err(ScramError::ChannelBindingUnsupported)
        );
        // The c= must repeat the gs2 header exactly (authzid included).
        let mut s = clear();
        s.client_first(b"n,a=alice,n=alice,r=abc").unwrap();
        let sf = String::from_utf8(s.server_first(keys.clone()).unwrap()).unwrap();
        let fin = client_final_for(
            keys.hash,
            b"pw",
            "n,,",
            None,
            "n=alice,r=abc",
            &sf,
            (&keys.salt, keys.iterations),
        );
        assert_eq!(
            s.client_final(fin.as_bytes()),
            Err(ScramError::ChannelBindingMismatch)
        );
    }

    #[test]
    fn replayed_final_message_fails() {
        let keys = ScramKeys::generate(ScramHash::Sha256, b"pw", None).unwrap();
        let bare = "n=alice,r=fixed";
        let mut a = ScramServer::new(ScramHash::Sha256, false, None).unwrap();
        a.client_first(format!("n,,{bare}").as_bytes()).unwrap();
        let sf = String::from_utf8(a.server_first(keys.clone()).unwrap()).unwrap();
        let fin = client_final_for(keys.hash, b"pw", "n,,", None, bare, &sf, (&keys.salt, 4096));
        assert!(a.client_final(fin.as_bytes()).is_ok());
        // Not twice in the same exchange...
        assert_eq!(a.client_final(fin.as_bytes()), Err(ScramError::OutOfOrder));
        // ...nor in a new one with the same client nonce: the server's part differs.
        let mut b = ScramServer::new(ScramHash::Sha256, false, None).unwrap();
        b.client_first(format!("n,,{bare}").as_bytes()).unwrap();
        let sf2 = String::from_utf8(b.server_first(keys.clone()).unwrap()).unwrap();
        assert_ne!(sf, sf2);
        assert_eq!(
            b.client_final(fin.as_bytes()),
            Err(ScramError::NonceMismatch)
        );
    }

    #[test]
    fn client_first_grammar() {
        let first = |m: &[u8]| ScramServer::new(ScramHash::Sha1, false, None)?.client_first(m);
        let ok = first(b"n,a=Bob,n=bob=2Cx=3Dy,r=abc,x=ext").unwrap_err();
        assert_eq!(ok, ScramError::AuthzidNotPermitted);
        let c = first(b"n,a=b=2Cx,n=b=2Cx,r=abc,x=ext").unwrap();
        assert_eq!(c.user, "b,x");
        assert_eq!(c.authzid.as_deref(), Some("b,x"));
        assert_eq!(
            first(b"n,a=admin,n=alice,r=abc").unwrap_err(),
            ScramError::AuthzidNotPermitted
        );
        for bad in [
            &b""[..],
            b"n",
            b"n,",
            b"x,,n=a,r=b",
            b"n,,m=ext,n=a,r=b",
            b"n,,n=a",
            b"n,,n=,r=b",
            b"n,,n=a=2,r=b",
            b"n,,n=a,r=",
            b"n,,n=a,r=b c",
            b"n,,r=b,n=a",
            b"n,,n=a,r=b,1=x",
            b"n,b=x,n=a,r=b",
            b"n,,n=\xff,r=b",
        ] {
            assert!(
                matches!(first(bad), Err(ScramError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
        let long = format!("n,,n={},r=b", "u".repeat(MAX_SASL_FIELD + 1));
        assert_eq!(first(long.as_bytes()).unwrap_err(), ScramError::TooLong);
    }

    #[test]
    fn stored_entries_are_checked() {
        let h = ScramHash::Sha256;
        let k = B64.encode([1u8; 32]);
        let salt = B64.encode(b"saltsalt");
        assert!(ScramKeys::parse(h, &format!("4096,{salt},{k},{k}")).is_ok());
        for bad in [
            format!("4095,{salt},{k},{k}"),
            format!("{},{salt},{k},{k}", MAX_SCRAM_ITERATIONS + 1),
            format!("x,{salt},{k},{k}"),
            format!("4096,,{k},{k}"),
            format!("4096,{salt},{k}"),
            format!("4096,{salt},{k},{k},{k}"),
            format!("4096,{salt},{},{k}", B64.encode([1u8; 20])),
            format!("4096,{salt},!!,{k}"),
        ] {
            assert!(ScramKeys::parse(h, &bad).is_err(), "{bad}");
        }
    }
}
