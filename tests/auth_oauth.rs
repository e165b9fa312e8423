//! OAUTHBEARER (RFC 7628) and XOAUTH2 through the real binary: tokens signed here (RSA from a
//! fixed test key, ECDSA and Ed25519 keys generated per run) against a JWKS file, checked over
//! IMAP AUTHENTICATE and POP3 AUTH, with curl's `--oauth2-bearer`, and through an RFC 7662
//! introspection endpoint served by a small HTTP server in the test.
//!
//! Expected results follow the RFCs: a valid token logs in; every refused token gets the JSON
//! error challenge of RFC 7628 3.2.2 (Google's for XOAUTH2) as a `+ ` continuation, and after
//! the client's dummy response (`AQ==`, i.e. %x01) the command fails with
//! `NO [AUTHENTICATIONFAILED]` / `-ERR [AUTH]`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use common::{Client, Server, cheap_argon2};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use serde_json::{Value, json};

const ISS: &str = "https://idp.example.com/realms/mail";
const AUD: &str = "mailcove";
const DISCOVERY: &str = "https://idp.example.com/realms/mail/.well-known/openid-configuration";

/// How a test token is signed.
enum Sig {
    Rs256,
    Ps256,
    Es256,
    /// ES256 with a second EC key that is not in the JWKS.
    Es256Other,
    EdDsa,
    /// HS256 with the given secret (the RSA public key, for the algorithm-confusion case).
    Hs256(Vec<u8>),
    /// `alg: none`, empty signature.
    None,
}

struct Keys {
    rng: SystemRandom,
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ec_other: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Keys {
    fn new() -> Keys {
        let rng = SystemRandom::new();
        let rsa_der = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/oauth/rsa2048.der"
        ))
        .unwrap();
        let ec = |rng: &SystemRandom| {
            let pk8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pk8.as_ref(), rng).unwrap()
        };
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        Keys {
            rsa: RsaKeyPair::from_der(&rsa_der).unwrap(),
            ec: ec(&rng),
            ec_other: ec(&rng),
            ed: Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap(),
            rng,
        }
    }

    fn rsa_public(&self) -> RsaPublicKeyComponents<Vec<u8>> {
        RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public())
    }

    /// The JWKS of the RSA, first EC and Ed25519 keys (kids `rsa1`, `ec1`, `ed1`), plus a
    /// symmetric key that must never be used.
    fn jwks(&self) -> String {
        let rsa = self.rsa_public();
        let point = self.ec.public_key().as_ref();
        assert_eq!(point.len(), 65);
        json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": B64URL.encode(b"shared secret")},
            {"kty": "RSA", "kid": "rsa1", "use": "sig",
             "n": B64URL.encode(&rsa.n), "e": B64URL.encode(&rsa.e)},
            {"kty": "EC", "kid": "ec1", "crv": "P-256", "alg": "ES256",
             "x": B64URL.encode(&point[1..33]), "y": B64URL.encode(&point[33..])},
            {"kty": "OKP", "kid": "ed1", "crv": "Ed25519",
             "x": B64URL.encode(self.ed.public_key().as_ref())},
        ]})
        .to_string()
    }

    fn sign(&self, sig: Sig, kid: Option<&str>, claims: &Value) -> String {
        let alg = match sig {
            Sig::Rs256 => "RS256",
            Sig::Ps256 => "PS256",
            Sig::Es256 | Sig::Es256Other => "ES256",
            Sig::EdDsa => "EdDSA",
            Sig::Hs256(_) => "HS256",
            Sig::None => "none",
        };
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        let input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = match sig {
            Sig::Rs256 | Sig::Ps256 => {
                let enc: &'static dyn ring::signature::RsaEncoding = match sig {
                    Sig::Rs256 => &RSA_PKCS1_SHA256,
                    _ => &RSA_PSS_SHA256,
                };
                let mut out = vec![0; self.rsa.public().modulus_len()];
                self.rsa
                    .sign(enc, &self.rng, input.as_bytes(), &mut out)
                    .unwrap();
                out
            }
            Sig::Es256 => self
                .ec
                .sign(&self.rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Sig::Es256Other => self
                .ec_other
                .sign(&self.rng, input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Sig::EdDsa => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
            Sig::Hs256(secret) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
                ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
            }
            Sig::None => Vec::new(),
        };
        format!("{input}.{}", B64URL.encode(signature))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims of a good token for `user`.
fn claims(user: &str) -> Value {
    json!({"iss": ISS, "aud": [AUD, "account"], "email": user, "sub": "f00",
           "iat": now() - 10, "nbf": now() - 10, "exp": now() + 600})
}

fn users() -> Vec<String> {
    vec![
        format!("alice@example.com:{}::::::", cheap_argon2("pw")),
        format!("bob@example.com:{}::::::", cheap_argon2("pw")),
        format!("blocked@example.com:{}:::::: nologin", cheap_argon2("pw")),
    ]
}

/// A server with [`users`], short failure delays and OAuth 2.0 on: `auth` is more keys of
/// `[auth]`, `oauth2` the keys of `[auth.oauth2]` after `enabled = true`.
fn oauth_server(auth: &str, oauth2: &str) -> Server {
    Server::builder()
        .users(&users())
        .config(&format!(
            r#"[auth]
users_file = "$DIR/users"
failure_delay_ms = 10
failure_delay_max_ms = 20
{auth}
[auth.oauth2]
enabled = true
{oauth2}"#
        ))
        .start()
}

/// A server whose `[auth.oauth2]` validates JWTs against `$DIR/jwks.json`.
fn jwks_server(keys: &Keys) -> Server {
    let server = oauth_server(
        "hash_threads = 2\n",
        &format!(
            r#"jwks_file = "$DIR/jwks.json"
issuers = ["{ISS}"]
audience = "{AUD}"
username_attribute = "email"
scope = "openid email"
openid_configuration_url = "{DISCOVERY}"
"#
        ),
    );
    // Read on first use, so it may be written after the start.
    std::fs::write(server.path().join("jwks.json"), keys.jwks()).unwrap();
    server
}

fn oauthbearer(authzid: Option<&str>, token: &str) -> String {
    let a = authzid.map(|a| format!("a={a}")).unwrap_or_default();
    B64.encode(format!(
        "n,{a},\x01host=localhost\x01port=143\x01auth=Bearer {token}\x01\x01"
    ))
}

fn xoauth2(user: &str, token: &str) -> String {
    B64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn imap(server: &Server) -> Client {
    let mut c = server.imap();
    assert!(c.line().starts_with("* OK"));
    c
}

/// AUTHENTICATE with an initial response that must succeed.
fn imap_ok(server: &Server, mech: &str, ir: &str) {
    let mut c = imap(server);
    let r = c.cmd("a", &format!("AUTHENTICATE {mech} {ir}"));
    assert!(
        r.last().unwrap().starts_with("a OK [CAPABILITY IMAP4rev1"),
        "{mech}: {r:?}"
    );
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("b OK"), "{r:?}");
}

/// AUTHENTICATE with an initial response that must be refused: returns the decoded error
/// challenge after checking that the dummy response gets `NO [AUTHENTICATIONFAILED]`.
fn imap_refused(server: &Server, mech: &str, ir: &str) -> Value {
    let mut c = imap(server);
    c.send(&format!("a AUTHENTICATE {mech} {ir}"));
    let line = c.line();
    let challenge = line
        .strip_prefix("+ ")
        .unwrap_or_else(|| panic!("expected the error challenge, got {line:?}"));
    let challenge: Value = serde_json::from_slice(&B64.decode(challenge).unwrap()).unwrap();
    // RFC 7628 3.2.3: the client's dummy response, %x01.
    c.send(if mech == "XOAUTH2" { "" } else { "AQ==" });
    assert_eq!(
        c.line(),
        "a NO [AUTHENTICATIONFAILED] Authentication failed."
    );
    // Still not logged in.
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("b BAD"), "{r:?}");
    challenge
}

fn invalid_token_challenge() -> Value {
    json!({"status": "invalid_token", "scope": "openid email", "openid-configuration": DISCOVERY})
}

#[test]
fn valid_tokens_log_in_over_imap_with_both_mechanisms() {
    let keys = Keys::new();
    let server = jwks_server(&keys);
    let alice = "alice@example.com";
    // RS256 with the authzid, ES256 without, EdDSA and PS256 through XOAUTH2.
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    imap_ok(&server, "OAUTHBEARER", &oauthbearer(Some(alice), &t));
    let t = keys.sign(Sig::Es256, Some("ec1"), &claims(alice));
    imap_ok(&server, "OAUTHBEARER", &oauthbearer(None, &t));
    let t = keys.sign(Sig::EdDsa, Some("ed1"), &claims(alice));
    imap_ok(&server, "XOAUTH2", &xoauth2(alice, &t));
    // No kid: the keys that fit the algorithm are tried.
    let t = keys.sign(Sig::Ps256, None, &claims(alice));
    imap_ok(&server, "xoauth2", &xoauth2("ALICE@example.com", &t));
    // Without SASL-IR: an empty challenge first.
    let mut c = imap(&server);
    c.send("a AUTHENTICATE OAUTHBEARER");
    assert_eq!(c.line(), "+ ");
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims("bob@example.com"));
    c.send(&oauthbearer(Some("bob@example.com"), &t));
    let r = c.until("a ");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    // The session is bob's, as the log says; the token itself is never logged.
    let log = server.wait_log(|l| l.contains("user=bob@example.com") && l.contains(" login"));
    assert!(log.contains("mechanism=\"AUTHENTICATE\"") || log.contains("AUTHENTICATE"));
    assert!(!server.log().contains(&t));
}

#[test]
fn refused_tokens_get_the_json_challenge_then_no() {
    let keys = Keys::new();
    let server = jwks_server(&keys);
    let alice = "alice@example.com";
    let refused = |token: String| imap_refused(&server, "OAUTHBEARER", &oauthbearer(None, &token));

    let mut c = claims(alice);
    c["exp"] = json!(now() - 3600);
    assert_eq!(
        refused(keys.sign(Sig::Rs256, Some("rsa1"), &c)),
        invalid_token_challenge()
    );

    let mut c = claims(alice);
    c["nbf"] = json!(now() + 3600);
    assert_eq!(
        refused(keys.sign(Sig::Rs256, Some("rsa1"), &c)),
        invalid_token_challenge()
    );
    // A string nbf is not an absent nbf.
    let mut c = claims(alice);
    c["nbf"] = json!((now() + 3600).to_string());
    refused(keys.sign(Sig::Rs256, Some("rsa1"), &c));

    let mut c = claims(alice);
    c["iss"] = json!("https://evil.example.com");
    refused(keys.sign(Sig::Es256, Some("ec1"), &c));

    let mut c = claims(alice);
    c["aud"] = json!("webmail");
    refused(keys.sign(Sig::Es256, Some("ec1"), &c));

    // Wrong signature: signed by a key the JWKS does not have, under a kid it does have...
    refused(keys.sign(Sig::Es256Other, Some("ec1"), &claims(alice)));
    // ... and a good token whose payload was changed afterwards.
    let good = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = B64URL.encode(claims("bob@example.com").to_string());
    refused(format!("{}.{forged}.{}", parts[0], parts[2]));

    // A kid the JWKS does not have.
    refused(keys.sign(Sig::Rs256, Some("rsa2"), &claims(alice)));
    // alg none.
    refused(keys.sign(Sig::None, Some("rsa1"), &claims(alice)));
    // HS256 "signed" with the RSA public key (algorithm confusion), and with the JWKS's own
    // symmetric key: neither is accepted.
    let public = keys.rsa.public().as_ref().to_vec();
    refused(keys.sign(Sig::Hs256(public), Some("rsa1"), &claims(alice)));
    refused(keys.sign(
        Sig::Hs256(b"shared secret".to_vec()),
        Some("hmac"),
        &claims(alice),
    ));

    // The authzid must be the token's user.
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    imap_refused(
        &server,
        "OAUTHBEARER",
        &oauthbearer(Some("bob@example.com"), &t),
    );
    // A user the user database does not know, and one with nologin.
    refused(keys.sign(Sig::Rs256, Some("rsa1"), &claims("ghost@example.com")));
    refused(keys.sign(Sig::Rs256, Some("rsa1"), &claims("blocked@example.com")));

    // XOAUTH2 failures use Google's challenge; the client's dummy response is an empty line.
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    assert_eq!(
        imap_refused(&server, "XOAUTH2", &xoauth2("bob@example.com", &t)),
        json!({"status": "401", "schemes": "bearer", "scope": "openid email"})
    );

    let log = server.log();
    for reason in [
        "token expired",
        "token not yet valid",
        "token issuer not accepted",
        "token audience not accepted",
        "bad token signature",
        "no key for the token's kid",
        "token algorithm not accepted",
        "authorization identity differs from the token's user",
        "token's user unknown",
        "nologin set for user",
    ] {
        assert!(log.contains(reason), "no {reason:?} in the log");
    }
    assert!(!log.contains(&t));
}

#[test]
fn malformed_messages_are_bad_and_unknown_mechanisms_when_disabled() {
    let keys = Keys::new();
    let server = jwks_server(&keys);
    let mut c = imap(&server);
    // No auth= value: a protocol error, not a refused token.
    let r = c.cmd(
        "a",
        &format!("AUTHENTICATE OAUTHBEARER {}", B64.encode("n,,\x01\x01")),
    );
    assert!(r.last().unwrap().starts_with("a BAD"), "{r:?}");
    let caps = c.cmd("c", "CAPABILITY");
    assert!(
        caps[0].contains(" AUTH=PLAIN AUTH=LOGIN AUTH=OAUTHBEARER AUTH=XOAUTH2"),
        "{caps:?}"
    );

    // Not on a remote connection without TLS, where plaintext authentication is refused.
    let mut remote = Client::plain(server.ports.imap_remote);
    assert!(remote.line().starts_with("* OK"));
    let caps = remote.cmd("c", "CAPABILITY");
    assert!(
        !caps[0].contains("OAUTHBEARER") && caps[0].contains("LOGINDISABLED"),
        "{caps:?}"
    );
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims("alice@example.com"));
    let r = remote.cmd(
        "a",
        &format!("AUTHENTICATE OAUTHBEARER {}", oauthbearer(None, &t)),
    );
    assert!(
        r.last().unwrap().starts_with("a NO [PRIVACYREQUIRED]"),
        "{r:?}"
    );

    // Without [auth.oauth2] enabled the mechanisms do not exist.
    let plain = Server::start();
    let mut c = imap(&plain);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(
        !caps[0].contains("OAUTHBEARER") && !caps[0].contains("XOAUTH2"),
        "{caps:?}"
    );
    let r = c.cmd(
        "a",
        &format!("AUTHENTICATE XOAUTH2 {}", xoauth2("demo", &t)),
    );
    assert!(r.last().unwrap().starts_with("a NO"), "{r:?}");
    assert!(
        !r.last().unwrap().starts_with("a NO [AUTHENTICATIONFAILED]"),
        "{r:?}"
    );
}

fn pop3(server: &Server) -> Client {
    let mut c = server.pop3();
    assert!(c.line().starts_with("+OK"));
    c
}

#[test]
fn pop3_auth_with_both_mechanisms() {
    let keys = Keys::new();
    let server = jwks_server(&keys);
    let alice = "alice@example.com";
    let mut c = pop3(&server);
    c.send("CAPA");
    let capa = c.until(".");
    assert!(
        capa.iter()
            .any(|l| l == "SASL PLAIN LOGIN OAUTHBEARER XOAUTH2"),
        "{capa:?}"
    );
    c.send("AUTH");
    assert_eq!(
        c.until("."),
        ["+OK", "PLAIN", "LOGIN", "OAUTHBEARER", "XOAUTH2", "."]
    );
    // RFC 5034 4: an initial response that does not fit the 255-octet command line (a JWT
    // never does) is sent after an empty challenge.
    let t = keys.sign(Sig::Es256, Some("ec1"), &claims(alice));
    c.send("AUTH OAUTHBEARER");
    assert_eq!(c.line(), "+ ");
    c.send(&oauthbearer(Some(alice), &t));
    let l = c.line();
    assert!(l.starts_with("+OK Logged in"), "{l}");
    c.send("QUIT");
    assert!(c.line().starts_with("+OK"));

    let mut c = pop3(&server);
    c.send("AUTH XOAUTH2");
    assert_eq!(c.line(), "+ ");
    c.send(&xoauth2(alice, &t));
    let l = c.line();
    assert!(l.starts_with("+OK Logged in"), "{l}");
    c.send("QUIT");
    assert!(c.line().starts_with("+OK"));

    // Refused: the challenge, the dummy response, -ERR [AUTH].
    let mut c = pop3(&server);
    let mut expired = claims(alice);
    expired["exp"] = json!(now() - 3600);
    let t = keys.sign(Sig::Es256, Some("ec1"), &expired);
    c.send("AUTH OAUTHBEARER");
    assert_eq!(c.line(), "+ ");
    c.send(&oauthbearer(None, &t));
    let line = c.line();
    let challenge: Value =
        serde_json::from_slice(&B64.decode(line.strip_prefix("+ ").unwrap()).unwrap()).unwrap();
    assert_eq!(challenge, invalid_token_challenge());
    c.send("AQ==");
    assert!(c.line().starts_with("-ERR [AUTH]"));
    c.send("STAT");
    assert!(c.line().starts_with("-ERR"));
}

/// curl, a real client, with `--oauth2-bearer`: it picks OAUTHBEARER when offered (curl 7.88
/// ignores `--login-options AUTH=XOAUTH2` then, so XOAUTH2 is covered by the wire tests above).
fn curl(server: &Server, token: &str) -> std::process::Output {
    std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--oauth2-bearer", token])
        .args(["-u", "alice@example.com:"])
        .arg(format!("imap://127.0.0.1:{}/", server.ports.imap))
        .output()
        .expect("run curl")
}

#[test]
fn curl_logs_in_with_a_bearer_token() {
    let keys = Keys::new();
    let server = jwks_server(&keys);
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims("alice@example.com"));
    let out = curl(&server, &t);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // curl lists the mailboxes of imap://host/ after logging in.
    assert!(stdout.contains("INBOX"), "{stdout}");
    let log = server.log();
    assert!(
        log.contains("user=alice@example.com mechanism=\"AUTHENTICATE\" sasl=\"OAUTHBEARER\""),
        "{log}"
    );
    // An expired token: curl reports the refused login (exit 67, "login denied").
    let mut c = claims("alice@example.com");
    c["exp"] = json!(now() - 3600);
    let out = curl(&server, &keys.sign(Sig::Rs256, Some("rsa1"), &c));
    assert_eq!(out.status.code(), Some(67), "{out:?}");
}

/// A tiny RFC 7662 endpoint: answers each POST by the `token` form field and records the
/// requests it saw.
fn introspection_endpoint() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut r = BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            r.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            record.lock().unwrap().push(format!("{head}{body}"));
            let authorized = head.to_ascii_lowercase().contains(&format!(
                "authorization: basic {}",
                B64.encode("mailcove:s3cret").to_ascii_lowercase()
            ));
            let token = body
                .split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .unwrap_or("");
            let (status, answer) = match (authorized, token) {
                (false, _) => ("401 Unauthorized", json!({"error": "invalid_client"})),
                (true, "opaque-alice") => (
                    "200 OK",
                    json!({"active": true, "email": "alice@example.com", "iss": ISS,
                           "aud": AUD, "exp": now() + 600, "client_id": "thunderbird"}),
                ),
                (true, "opaque-ghost") => (
                    "200 OK",
                    json!({"active": true, "email": "ghost@example.com"}),
                ),
                (true, "opaque-wrong-aud") => (
                    "200 OK",
                    json!({"active": true, "email": "alice@example.com", "aud": "webmail"}),
                ),
                (true, "opaque-revoked") => (
                    "200 OK",
                    json!({"active": false, "email": "alice@example.com"}),
                ),
                _ => ("200 OK", json!({"active": false})),
            };
            let answer = answer.to_string();
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn introspection_endpoint_decides_about_opaque_tokens() {
    let (port, seen) = introspection_endpoint();
    let server = oauth_server(
        "",
        &format!(
            r#"introspection_url = "http://127.0.0.1:{port}/introspect"
introspection_mode = "post"
client_id = "mailcove"
client_secret = "s3cret"
audience = "{AUD}"
"#
        ),
    );
    let alice = "alice@example.com";
    imap_ok(
        &server,
        "OAUTHBEARER",
        &oauthbearer(Some(alice), "opaque-alice"),
    );
    imap_ok(&server, "XOAUTH2", &xoauth2(alice, "opaque-alice"));
    for token in [
        "opaque-revoked",
        "opaque-unknown",
        "opaque-ghost",
        "opaque-wrong-aud",
    ] {
        assert_eq!(
            imap_refused(&server, "OAUTHBEARER", &oauthbearer(None, token)),
            json!({"status": "invalid_token"}),
            "{token}"
        );
    }
    // An opaque token is short enough for POP3's initial response.
    let mut c = pop3(&server);
    c.send(&format!("AUTH XOAUTH2 {}", xoauth2(alice, "opaque-alice")));
    assert!(c.line().starts_with("+OK Logged in"));

    // RFC 7662 2.1: a form POST with the token and the client's credentials.
    let seen = seen.lock().unwrap();
    assert!(seen.len() >= 7, "{seen:?}");
    let first = &seen[0];
    assert!(
        first.starts_with("POST /introspect HTTP/1.1\r\n"),
        "{first}"
    );
    assert!(
        first
            .to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded")
    );
    assert!(
        first.ends_with("token=opaque-alice&token_type_hint=access_token"),
        "{first}"
    );
    let log = server.log();
    assert!(log.contains("token not active"), "{log}");
    assert!(log.contains("token's user unknown"), "{log}");
    assert!(log.contains("token audience not accepted"), "{log}");
}

/// Serves `body` over HTTP on loopback to every GET and counts the requests.
fn jwks_endpoint(body: String) -> (u16, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut r = BufReader::new(stream);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            *counter.lock().unwrap() += 1;
            let mut s = r.into_inner();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, count)
}

fn jwks_url_server(url: &str) -> Server {
    oauth_server(
        "",
        &format!(
            r#"jwks_url = "{url}"
issuers = ["{ISS}"]
audience = "{AUD}"
"#
        ),
    )
}

#[test]
fn jwks_url_is_fetched_once_and_cached_and_an_unreachable_one_fails_temporarily() {
    let keys = Keys::new();
    // Only the RSA key is published at first.
    let mut jwks: Value = serde_json::from_str(&keys.jwks()).unwrap();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] == "rsa1");
    let (port, fetches) = jwks_endpoint(jwks.to_string());
    let server = jwks_url_server(&format!("http://127.0.0.1:{port}/certs"));
    let alice = "alice@example.com";
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    imap_ok(&server, "OAUTHBEARER", &oauthbearer(None, &t));
    imap_ok(&server, "XOAUTH2", &xoauth2(alice, &t));
    assert_eq!(*fetches.lock().unwrap(), 1, "the key set is cached");
    // A kid the set does not have: refused, and the set is not fetched again within
    // MIN_JWKS_REFRESH_SECS (made-up kids cannot make mailcove hammer the provider).
    let t = keys.sign(Sig::Es256, Some("ec1"), &claims(alice));
    imap_refused(&server, "OAUTHBEARER", &oauthbearer(None, &t));
    assert_eq!(*fetches.lock().unwrap(), 1);

    // Nobody listens: a temporary failure, without the token challenge.
    let dead = common::free_port();
    let server = jwks_url_server(&format!("http://127.0.0.1:{dead}/certs"));
    let mut c = imap(&server);
    let t = keys.sign(Sig::Rs256, Some("rsa1"), &claims(alice));
    let r = c.cmd(
        "a",
        &format!("AUTHENTICATE OAUTHBEARER {}", oauthbearer(None, &t)),
    );
    assert_eq!(
        r.last().unwrap(),
        "a NO [UNAVAILABLE] Temporary authentication failure, try again later."
    );
    assert!(server.log().contains("OAuth2 JWKS cannot be read"));
}
