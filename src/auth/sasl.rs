//! SASL PLAIN (RFC 4616) and LOGIN, one codec shared by IMAP AUTHENTICATE
//! (RFC 3501 section 6.2.2, with SASL-IR, RFC 4959) and POP3 AUTH (RFC 5034).
//!
//! The codec does no I/O and knows nothing of either protocol's framing. A
//! session calls [`SaslExchange::start`] with the mechanism name and the
//! optional initial response, sends each [`Step::Challenge`] as
//! `+ <base64>` (see [`encode_challenge`]), feeds each client line (without
//! CRLF) to [`SaslExchange::step`], and on [`Step::Done`] hands the
//! [`Credentials`] to `Authenticator::authenticate`.
//!
//! Both protocols share the same wire rules, implemented once here: a line
//! `*` cancels; an initial response `=` is an empty response; anything else
//! must be base64. Every line is bounded by `limits::MAX_SASL_LINE` before it
//! is decoded, every decoded field by `MAX_SASL_FIELD` / `MAX_PASSWORD_LEN`.
//! Decoded buffers are zeroized, and no error carries the payload.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT as B64;
use zeroize::{Zeroize, Zeroizing};

use crate::limits::{MAX_PASSWORD_LEN, MAX_SASL_FIELD, MAX_SASL_LINE};

pub use super::oauth::message::BearerCredentials;
use super::oauth::message::{parse_oauthbearer, parse_xoauth2};

/// A supported SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616: `[authzid] NUL authcid NUL passwd` in one message.
    Plain,
    /// The de-facto LOGIN mechanism (draft-murchison-sasl-login): user name
    /// and password in answer to `Username:` and `Password:` challenges.
    Login,
    /// RFC 7628 OAUTHBEARER: a gs2-header (optional authzid) and `auth=Bearer <token>`
    /// (src/auth/oauth; offered only with `[auth.oauth2] enabled`).
    OAuthBearer,
    /// Google's XOAUTH2: `user=<name>` and `auth=Bearer <token>`.
    XOAuth2,
    /// SCRAM-SHA-1 (RFC 5802). SCRAM mechanisms are run by [`super::scram::ScramServer`] (driven
    /// by `crate::server::scram`), not by [`SaslExchange`]: callers dispatch on
    /// [`Mechanism::scram`] first.
    ScramSha1,
    /// SCRAM-SHA-1-PLUS: SCRAM-SHA-1 bound to the TLS channel (`tls-exporter`, RFC 9266).
    ScramSha1Plus,
    /// SCRAM-SHA-256 (RFC 7677).
    ScramSha256,
    /// SCRAM-SHA-256-PLUS (RFC 7677, `tls-exporter` of RFC 9266).
    ScramSha256Plus,
}

impl Mechanism {
    /// Every supported mechanism, in the order to advertise them.
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    /// The mechanism registered under `name` (case-insensitive), if supported.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Self::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Self::Login)
        } else if name.eq_ignore_ascii_case("OAUTHBEARER") {
            Some(Self::OAuthBearer)
        } else if name.eq_ignore_ascii_case("XOAUTH2") {
            Some(Self::XOAuth2)
        } else {
            Self::SCRAM
                .into_iter()
                .find(|m| name.eq_ignore_ascii_case(m.name()))
        }
    }

    /// The registered (upper-case) name, for CAPABILITY / CAPA.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::OAuthBearer => "OAUTHBEARER",
            Self::XOAuth2 => "XOAUTH2",
            Self::ScramSha1 => "SCRAM-SHA-1",
            Self::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }

    /// The SCRAM mechanisms, in the order to advertise them (the -PLUS ones only where the
    /// connection has a channel binding).
    pub const SCRAM: [Mechanism; 4] = [
        Mechanism::ScramSha1,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha256Plus,
    ];

    /// For a SCRAM mechanism, its hash and whether it is the -PLUS variant.
    pub fn scram(self) -> Option<(super::scram::ScramHash, bool)> {
        use super::scram::ScramHash;
        match self {
            Self::Plain | Self::Login | Self::OAuthBearer | Self::XOAuth2 => None,
            Self::ScramSha1 => Some((ScramHash::Sha1, false)),
            Self::ScramSha1Plus => Some((ScramHash::Sha1, true)),
            Self::ScramSha256 => Some((ScramHash::Sha256, false)),
            Self::ScramSha256Plus => Some((ScramHash::Sha256, true)),
        }
    }

    /// The bearer-token mechanisms, offered only with `[auth.oauth2] enabled`, in the order to
    /// advertise them.
    pub const BEARER: [Mechanism; 2] = [Mechanism::OAuthBearer, Mechanism::XOAuth2];

    /// True for OAUTHBEARER and XOAUTH2, which end in [`Step::Bearer`].
    pub fn is_bearer(self) -> bool {
        matches!(self, Self::OAuthBearer | Self::XOAuth2)
    }
}

/// What the client sent, once the exchange is complete.
///
/// The password is zeroized when the value is dropped and never printed by
/// `Debug`.
pub struct Credentials {
    /// Authorization identity (who to act as), if the client gave one; when
    /// present it equals `authcid` (case-insensitively): others are refused.
    pub authzid: Option<String>,
    /// Authentication identity: the user name whose password is checked.
    pub authcid: String,
    /// The password as sent (bytes; usually UTF-8).
    pub password: Vec<u8>,
}

impl Drop for Credentials {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The next thing the session must do.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (raw bytes; base64-encode with
    /// [`encode_challenge`]) and feed the client's answer line to `step`.
    Challenge(Vec<u8>),
    /// The exchange is complete: authenticate these credentials.
    Done(Credentials),
    /// A bearer-token exchange is complete: validate this token
    /// (`Authenticator::authenticate_bearer`). On failure the session sends
    /// `oauth::message::error_challenge` and reads the client's dummy response before failing.
    Bearer(BearerCredentials),
}

/// Why an exchange failed. Never carries client data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client asked for a mechanism we do not offer.
    #[error("unsupported SASL mechanism")]
    UnknownMechanism,
    /// The client sent `*`.
    #[error("authentication cancelled by the client")]
    Cancelled,
    /// A line was not valid base64.
    #[error("invalid base64 in SASL response")]
    InvalidBase64,
    /// A line was longer than `limits::MAX_SASL_LINE`, or a decoded field
    /// longer than its limit.
    #[error("SASL response too long")]
    TooLong,
    /// The decoded response does not follow the mechanism's grammar.
    #[error("malformed SASL response: {0}")]
    Malformed(&'static str),
    /// The authzid differs from the authcid (no master users).
    #[error("authorization identity differs from authentication identity")]
    AuthzidNotPermitted,
    /// `step` was called after the exchange had completed or failed.
    #[error("SASL exchange already finished")]
    Finished,
}

#[derive(Debug)]
enum State {
    AwaitPlain,
    AwaitLoginUser,
    AwaitLoginPassword { user: String },
    AwaitOauthBearer,
    AwaitXoauth2,
    Finished,
}

/// One running SASL exchange (one per AUTHENTICATE / AUTH command).
#[derive(Debug)]
pub struct SaslExchange {
    mechanism: Mechanism,
    state: State,
}

/// Base64 for a challenge line (`+ <this>`); empty challenge gives `""`.
pub fn encode_challenge(challenge: &[u8]) -> String {
    B64.encode(challenge)
}

const LOGIN_USER_CHALLENGE: &[u8] = b"Username:";
const LOGIN_PASSWORD_CHALLENGE: &[u8] = b"Password:";

impl SaslExchange {
    /// Starts an exchange for the mechanism named `mechanism`, with the
    /// client's initial response if it sent one (SASL-IR / POP3 `AUTH mech
    /// resp`); `=` there means an empty response.
    pub fn start(
        mechanism: &str,
        initial_response: Option<&str>,
    ) -> Result<(Self, Step), SaslError> {
        let mechanism = Mechanism::from_name(mechanism).ok_or(SaslError::UnknownMechanism)?;
        let mut exchange = Self {
            mechanism,
            state: match mechanism {
                Mechanism::Plain => State::AwaitPlain,
                Mechanism::Login => State::AwaitLoginUser,
                Mechanism::OAuthBearer => State::AwaitOauthBearer,
                Mechanism::XOAuth2 => State::AwaitXoauth2,
                // Not this codec's: see `Mechanism::scram`.
                Mechanism::ScramSha1
                | Mechanism::ScramSha1Plus
                | Mechanism::ScramSha256
                | Mechanism::ScramSha256Plus => return Err(SaslError::UnknownMechanism),
            },
        };
        let step = match initial_response {
            Some(ir) => {
                let decoded = decode_line(ir, true);
                exchange.advance(decoded)?
            }
            None => match mechanism {
                // PLAIN's server challenge is empty (RFC 4616 section 2).
                Mechanism::Plain => Step::Challenge(Vec::new()),
                Mechanism::Login => Step::Challenge(LOGIN_USER_CHALLENGE.to_vec()),
                // RFC 7628 3: the client speaks first; without an initial response the server
                // sends an empty challenge.
                Mechanism::OAuthBearer | Mechanism::XOAuth2 => Step::Challenge(Vec::new()),
                Mechanism::ScramSha1
                | Mechanism::ScramSha1Plus
                | Mechanism::ScramSha256
                | Mechanism::ScramSha256Plus => return Err(SaslError::UnknownMechanism),
            },
        };
        Ok((exchange, step))
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds the client's answer to the last challenge (one line, without
    /// CRLF). `*` cancels.
    pub fn step(&mut self, client_line: &str) -> Result<Step, SaslError> {
        if matches!(self.state, State::Finished) {
            return Err(SaslError::Finished);
        }
        let decoded = decode_line(client_line, false);
        self.advance(decoded)
    }

    fn advance(
        &mut self,
        decoded: Result<Zeroizing<Vec<u8>>, SaslError>,
    ) -> Result<Step, SaslError> {
        // Any error or completion ends the exchange.
        let state = std::mem::replace(&mut self.state, State::Finished);
        let data = decoded?;
        match state {
            State::AwaitPlain => parse_plain(&data).map(Step::Done),
            State::AwaitLoginUser => {
                let user = identity(&data, "empty user name")?;
                self.state = State::AwaitLoginPassword { user };
                Ok(Step::Challenge(LOGIN_PASSWORD_CHALLENGE.to_vec()))
            }
            State::AwaitLoginPassword { user } => {
                let password = password(&data)?;
                Ok(Step::Done(Credentials {
                    authzid: None,
                    authcid: user,
                    password,
                }))
            }
            State::AwaitOauthBearer => parse_oauthbearer(&data).map(Step::Bearer),
            State::AwaitXoauth2 => parse_xoauth2(&data).map(Step::Bearer),
            State::Finished => Err(SaslError::Finished),
        }
    }
}

/// Decodes one client response line as [`SaslExchange`] does (for mechanisms run elsewhere,
/// such as SCRAM): `*` cancels (except as the initial response), `=` is empty, else base64,
/// bounded by `limits::MAX_SASL_LINE`.
pub fn decode_response(line: &str, initial: bool) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    decode_line(line, initial)
}

/// Decodes one client line: `*` cancels, `=` is empty (initial responses;
/// accepted on later lines too, as some clients send it), else base64.
fn decode_line(line: &str, initial: bool) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_SASL_LINE {
        return Err(SaslError::TooLong);
    }
    if line == "*" && !initial {
        return Err(SaslError::Cancelled);
    }
    if line == "=" {
        return Ok(Zeroizing::new(Vec::new()));
    }
    B64.decode(line)
        .map(Zeroizing::new)
        .map_err(|_| SaslError::InvalidBase64)
}

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` (RFC 4616 section 2).
fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed(
            "PLAIN message needs two NUL separators",
        ));
    };
    if passwd.contains(&0) {
        return Err(SaslError::Malformed("NUL in PLAIN password"));
    }
    let authcid = identity(authcid, "empty authcid")?;
    let authzid = if authzid.is_empty() {
        None
    } else {
        let authzid = identity(authzid, "empty authzid")?;
        if !authzid.eq_ignore_ascii_case(&authcid) {
            return Err(SaslError::AuthzidNotPermitted);
        }
        Some(authzid)
    };
    Ok(Credentials {
        authzid,
        authcid,
        password: password(passwd)?,
    })
}

fn identity(bytes: &[u8], empty: &'static str) -> Result<String, SaslError> {
    if bytes.is_empty() {
        return Err(SaslError::Malformed(empty));
    }
    if bytes.len() > MAX_SASL_FIELD {
        return Err(SaslError::TooLong);
    }
    let s =
        std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("identity is not UTF-8"))?;
    if s.contains('\0') {
        return Err(SaslError::Malformed("NUL in identity"));
    }
    Ok(s.to_owned())
}

fn password(bytes: &[u8]) -> Result<Vec<u8>, SaslError> {
    if bytes.is_empty() {
        return Err(SaslError::Malformed("empty password"));
    }
    if bytes.len() > MAX_PASSWORD_LEN {
        return Err(SaslError::TooLong);
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        encode_challenge(s)
    }

    fn done(step: Step) -> Credentials {
        match step {
            Step::Done(c) => c,
            Step::Challenge(c) => panic!("expected Done, got challenge {c:?}"),
            Step::Bearer(b) => panic!("expected Done, got {b:?}"),
        }
    }

    fn challenge(step: Step) -> Vec<u8> {
        match step {
            Step::Challenge(c) => c,
            Step::Done(c) => panic!("expected a challenge, got {c:?}"),
            Step::Bearer(b) => panic!("expected a challenge, got {b:?}"),
        }
    }

    #[test]
    fn plain_with_initial_response() {
        let ir = b64(b"\0alice\0secret");
        let (ex, step) = SaslExchange::start("plain", Some(&ir)).unwrap();
        assert_eq!(ex.mechanism(), Mechanism::Plain);
        let c = done(step);
        assert_eq!(c.authzid, None);
        assert_eq!(c.authcid, "alice");
        assert_eq!(c.password, b"secret");
    }

    #[test]
    fn plain_after_empty_challenge_with_same_authzid() {
        let (mut ex, step) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(challenge(step), b"");
        assert_eq!(encode_challenge(b""), "");
        let c = done(ex.step(&b64(b"Alice\0alice\0p\xc3\xa4ss")).unwrap());
        assert_eq!(c.authzid.as_deref(), Some("Alice"));
        assert_eq!(c.authcid, "alice");
        assert_eq!(c.password, "päss".as_bytes());
        assert_eq!(ex.step("Kg==").unwrap_err(), SaslError::Finished);
    }

    #[test]
    fn plain_refuses_other_authzid_and_malformed_messages() {
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(
            ex.step(&b64(b"admin\0alice\0secret")).unwrap_err(),
            SaslError::AuthzidNotPermitted
        );
        for bad in [
            &b"alice\0secret"[..],
            b"\0\0secret",
            b"\0alice\0",
            b"\0alice\0sec\0ret",
            b"\0al\xffice\0secret",
            b"",
        ] {
            let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
            assert!(
                matches!(ex.step(&b64(bad)), Err(SaslError::Malformed(_))),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn equals_is_empty_initial_response() {
        // Empty PLAIN message is malformed, but it was decoded as empty.
        assert!(matches!(
            SaslExchange::start("PLAIN", Some("=")),
            Err(SaslError::Malformed(_))
        ));
        // Empty LOGIN user name likewise.
        assert!(matches!(
            SaslExchange::start("LOGIN", Some("=")),
            Err(SaslError::Malformed(_))
        ));
    }

    #[test]
    fn scram_names_are_known_but_not_run_by_this_codec() {
        use crate::auth::scram::ScramHash;
        assert_eq!(
            Mechanism::from_name("scram-sha-256-plus"),
            Some(Mechanism::ScramSha256Plus)
        );
        assert_eq!(
            Mechanism::from_name("SCRAM-SHA-1").and_then(Mechanism::scram),
            Some((ScramHash::Sha1, false))
        );
        assert_eq!(Mechanism::Plain.scram(), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-512"), None);
        assert_eq!(
            SaslExchange::start("SCRAM-SHA-256", None).unwrap_err(),
            SaslError::UnknownMechanism
        );
    }

    #[test]
    fn star_cancels() {
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(ex.step("*").unwrap_err(), SaslError::Cancelled);
        assert_eq!(ex.step("*").unwrap_err(), SaslError::Finished);
        let (mut ex, _) = SaslExchange::start("LOGIN", None).unwrap();
        ex.step(&b64(b"alice")).unwrap();
        assert_eq!(ex.step("*\r\n").unwrap_err(), SaslError::Cancelled);
    }

    #[test]
    fn bad_base64_and_unknown_mechanism() {
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(
            ex.step("not base64!").unwrap_err(),
            SaslError::InvalidBase64
        );
        assert_eq!(
            SaslExchange::start("PLAIN", Some("*")).unwrap_err(),
            SaslError::InvalidBase64
        );
        assert_eq!(
            SaslExchange::start("CRAM-MD5", None).unwrap_err(),
            SaslError::UnknownMechanism
        );
    }

    #[test]
    fn over_long_input_is_refused_before_decoding() {
        let long = "A".repeat(MAX_SASL_LINE + 4);
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(ex.step(&long).unwrap_err(), SaslError::TooLong);
        assert_eq!(
            SaslExchange::start("LOGIN", Some(&long)).unwrap_err(),
            SaslError::TooLong
        );
        // Within the line limit but a field over its own limit.
        let mut msg = b"\0".to_vec();
        msg.extend(std::iter::repeat_n(b'u', MAX_SASL_FIELD + 1));
        msg.extend(b"\0pw");
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(ex.step(&b64(&msg)).unwrap_err(), SaslError::TooLong);
        let mut msg = b"\0alice\0".to_vec();
        msg.extend(std::iter::repeat_n(b'p', MAX_PASSWORD_LEN + 1));
        let (mut ex, _) = SaslExchange::start("PLAIN", None).unwrap();
        assert_eq!(ex.step(&b64(&msg)).unwrap_err(), SaslError::TooLong);
    }

    #[test]
    fn login_happy_paths() {
        let (mut ex, step) = SaslExchange::start("login", None).unwrap();
        assert_eq!(challenge(step), b"Username:");
        assert_eq!(challenge(ex.step(&b64(b"bob")).unwrap()), b"Password:");
        let c = done(ex.step(&b64(b"hunter2")).unwrap());
        assert_eq!(
            (c.authcid.as_str(), c.password.as_slice()),
            ("bob", &b"hunter2"[..])
        );
        assert_eq!(c.authzid, None);

        let (mut ex, step) = SaslExchange::start("LOGIN", Some(&b64(b"bob"))).unwrap();
        assert_eq!(challenge(step), b"Password:");
        let c = done(ex.step(&b64(b"pw")).unwrap());
        assert_eq!(c.authcid, "bob");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let (_, step) = SaslExchange::start("PLAIN", Some(&b64(b"\0alice\0topsecret"))).unwrap();
        let shown = format!("{step:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("topsecret"));
    }

    #[test]
    fn bearer_mechanisms_end_in_a_bearer_step() {
        let (mut ex, step) = SaslExchange::start("oauthbearer", None).unwrap();
        assert!(ex.mechanism().is_bearer());
        assert_eq!(challenge(step), b"");
        let Step::Bearer(b) = ex
            .step(&b64(b"n,a=bob,\x01auth=Bearer abc\x01\x01"))
            .unwrap()
        else {
            panic!("expected a bearer step");
        };
        assert_eq!((b.user.as_deref(), b.token.as_str()), (Some("bob"), "abc"));
        let ir = b64(b"user=bob\x01auth=Bearer abc\x01\x01");
        let (ex, step) = SaslExchange::start("XOAUTH2", Some(&ir)).unwrap();
        assert_eq!(ex.mechanism(), Mechanism::XOAuth2);
        assert!(matches!(step, Step::Bearer(b) if b.mechanism == Mechanism::XOAuth2));
        assert!(matches!(
            SaslExchange::start("OAUTHBEARER", Some(&b64(b"\x01"))),
            Err(SaslError::Malformed(_))
        ));
    }
}
