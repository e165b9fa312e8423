//! The client messages of OAUTHBEARER (RFC 7628 3.1, with RFC 5801's gs2-header) and XOAUTH2
//! (Google's format), and the error challenges the server answers a refused token with.
//!
//! ```text
//! OAUTHBEARER: n,a=user@example.com,^Ahost=imap.example.com^Aport=993^Aauth=Bearer TOKEN^A^A
//! XOAUTH2:     user=user@example.com^Aauth=Bearer TOKEN^A^A
//! ```

use std::fmt;

use zeroize::Zeroizing;

use crate::auth::sasl::{Mechanism, SaslError};
use crate::config::Oauth2Config;
use crate::limits::{MAX_OAUTH_TOKEN_LEN, MAX_SASL_FIELD};

const KVSEP: u8 = 0x01;

/// One `key=value` of a client response.
type KvPair<'a> = (&'a [u8], &'a [u8]);

/// What a bearer-token client sent.
pub struct BearerCredentials {
    /// OAUTHBEARER or XOAUTH2.
    pub mechanism: Mechanism,
    /// The user the client names (OAUTHBEARER's `a=` authzid, optional; XOAUTH2's `user=`);
    /// when present it must be the token's user.
    pub user: Option<String>,
    /// The bearer token, zeroized on drop.
    pub token: Zeroizing<String>,
}

impl fmt::Debug for BearerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerCredentials")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `*kvpair kvsep` (the part after the gs2-header and its kvsep): every `key=value`, which must
/// be followed by the closing kvsep and nothing else.
fn kvpairs(mut rest: &[u8]) -> Result<Vec<KvPair<'_>>, SaslError> {
    let mut pairs = Vec::new();
    loop {
        match rest {
            [KVSEP] => return Ok(pairs),
            [] => return Err(SaslError::Malformed("missing final kvsep")),
            _ => {}
        }
        let end = rest
            .iter()
            .position(|&b| b == KVSEP)
            .ok_or(SaslError::Malformed("kvpair without kvsep"))?;
        let pair = &rest[..end];
        let eq = pair
            .iter()
            .position(|&b| b == b'=')
            .ok_or(SaslError::Malformed("kvpair without ="))?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key.is_empty() || !key.iter().all(u8::is_ascii_alphabetic) {
            return Err(SaslError::Malformed("bad kvpair key"));
        }
        pairs.push((key, value));
        rest = &rest[end + 1..];
    }
}

/// The token of `auth=Bearer <token>` among `pairs` (the scheme is case-insensitive, as
/// RFC 7235 2.1 says of HTTP authentication schemes).
fn bearer_token(pairs: &[KvPair<'_>]) -> Result<Zeroizing<String>, SaslError> {
    let value = pairs
        .iter()
        .find(|(k, _)| *k == b"auth")
        .map(|(_, v)| *v)
        .ok_or(SaslError::Malformed("no auth= value"))?;
    let value =
        std::str::from_utf8(value).map_err(|_| SaslError::Malformed("auth is not UTF-8"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(SaslError::Malformed("auth is not a Bearer credential"))?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(SaslError::Malformed("auth is not a Bearer credential"));
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(SaslError::Malformed("empty bearer token"));
    }
    if token.len() > MAX_OAUTH_TOKEN_LEN {
        return Err(SaslError::TooLong);
    }
    Ok(Zeroizing::new(token.to_owned()))
}

fn user_name(bytes: &[u8]) -> Result<String, SaslError> {
    if bytes.is_empty() {
        return Err(SaslError::Malformed("empty user name"));
    }
    if bytes.len() > MAX_SASL_FIELD {
        return Err(SaslError::TooLong);
    }
    let s = std::str::from_utf8(bytes).map_err(|_| SaslError::Malformed("user is not UTF-8"))?;
    if s.contains('\0') {
        return Err(SaslError::Malformed("NUL in user name"));
    }
    Ok(s.to_owned())
}

/// RFC 5801 `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
fn saslname(bytes: &[u8]) -> Result<String, SaslError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                match bytes.get(i + 1..i + 3) {
                    Some(b"2C") => out.push(b','),
                    Some(b"3D") => out.push(b'='),
                    _ => return Err(SaslError::Malformed("bad escape in authzid")),
                }
                i += 3;
            }
            b',' => return Err(SaslError::Malformed("unescaped , in authzid")),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    user_name(&out)
}

/// `client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep` (RFC 7628 3.1). Channel binding
/// (`p=`) is refused: the mechanism defines none. A lone kvsep is only valid as the answer to an
/// error challenge, so here it is malformed.
pub fn parse_oauthbearer(msg: &[u8]) -> Result<BearerCredentials, SaslError> {
    let split = msg
        .iter()
        .position(|&b| b == KVSEP)
        .ok_or(SaslError::Malformed("no kvsep after gs2-header"))?;
    let (gs2, rest) = (&msg[..split], &msg[split + 1..]);
    if gs2.is_empty() {
        return Err(SaslError::Malformed("empty OAUTHBEARER response"));
    }
    // gs2-header = [gs2-nonstd-flag ","] gs2-cb-flag "," [gs2-authzid] ","
    let gs2 = gs2.strip_prefix(b"F,").unwrap_or(gs2);
    let after_flag = match gs2 {
        [b'n' | b'y', b',', rest @ ..] => rest,
        [b'p', b'=', ..] => return Err(SaslError::Malformed("channel binding not supported")),
        _ => return Err(SaslError::Malformed("bad gs2-header")),
    };
    let authzid = after_flag
        .strip_suffix(b",")
        .ok_or(SaslError::Malformed("bad gs2-header"))?;
    let user = match authzid {
        [] => None,
        [b'a', b'=', name @ ..] => Some(saslname(name)?),
        _ => return Err(SaslError::Malformed("bad gs2-authzid")),
    };
    // `host` and `port` are not compared with the server's names (RFC 7628 3.2 asks for it
    // where the value is known): Dovecot ignores them too, and a client that connected through a
    // proxy, a load balancer or an alias name would otherwise be refused with a valid token.
    let pairs = kvpairs(rest)?;
    Ok(BearerCredentials {
        mechanism: Mechanism::OAuthBearer,
        user,
        token: bearer_token(&pairs)?,
    })
}

/// XOAUTH2: `user=<name>^Aauth=Bearer <token>^A^A`; the user is required.
pub fn parse_xoauth2(msg: &[u8]) -> Result<BearerCredentials, SaslError> {
    let pairs = kvpairs(msg)?;
    let user = pairs
        .iter()
        .find(|(k, _)| *k == b"user")
        .map(|(_, v)| user_name(v))
        .ok_or(SaslError::Malformed("no user= value"))??;
    Ok(BearerCredentials {
        mechanism: Mechanism::XOAuth2,
        user: Some(user),
        token: bearer_token(&pairs)?,
    })
}

/// The challenge that answers a refused token, before the final failure (sent base64 in a
/// `+ ` continuation; the client answers with a dummy response). OAUTHBEARER: RFC 7628 3.2.2's
/// `{"status":"invalid_token", "scope":…, "openid-configuration":…}`. XOAUTH2: Google's
/// `{"status":"401","schemes":"bearer","scope":…}`. `scope` and the discovery URL are left out
/// when not configured.
pub fn error_challenge(mechanism: Mechanism, cfg: &Oauth2Config) -> Vec<u8> {
    let mut members: Vec<(&str, &str)> = match mechanism {
        Mechanism::XOAuth2 => vec![("status", "401"), ("schemes", "bearer")],
        _ => vec![("status", "invalid_token")],
    };
    if !cfg.scope.is_empty() {
        members.push(("scope", &cfg.scope));
    }
    if mechanism != Mechanism::XOAuth2 && !cfg.openid_configuration_url.is_empty() {
        members.push(("openid-configuration", &cfg.openid_configuration_url));
    }
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::Value::from(*k),
                serde_json::Value::from(*v)
            )
        })
        .collect();
    format!("{{{}}}", body.join(",")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_messages() {
        let c = parse_oauthbearer(
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("user@example.com"));
        assert_eq!(
            c.token.as_str(),
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
        );
        let c = parse_oauthbearer(b"n,,\x01auth=bearer tok\x01\x01").unwrap();
        assert_eq!(c.user, None);
        assert_eq!(c.token.as_str(), "tok");
        let c = parse_oauthbearer(b"y,a=a=2Cb=3Dc,\x01auth=Bearer t\x01\x01").unwrap();
        assert_eq!(c.user.as_deref(), Some("a,b=c"));
        for bad in [
            &b"\x01"[..],
            b"n,,\x01\x01",
            b"n,,\x01auth=Basic dXNlcjpwYXNz\x01\x01",
            b"n,,\x01auth=Bearer t\x01",
            b"n,,\x01auth=Bearer t",
            b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
            b"n,a=x=41,\x01auth=Bearer t\x01\x01",
            b"n,b=x,\x01auth=Bearer t\x01\x01",
            b"n,a=x\x01auth=Bearer t\x01\x01",
            b"n,,\x01=v\x01auth=Bearer t\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
        ] {
            assert!(
                matches!(parse_oauthbearer(bad), Err(SaslError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn xoauth2_messages() {
        let c = parse_xoauth2(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01").unwrap();
        assert_eq!(c.user.as_deref(), Some("someuser@example.com"));
        assert_eq!(
            c.token.as_str(),
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        );
        assert!(parse_xoauth2(b"auth=Bearer t\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=u\x01\x01").is_err());
        assert!(parse_xoauth2(b"user=\x01auth=Bearer t\x01\x01").is_err());
    }

    #[test]
    fn error_challenges() {
        let mut cfg = Oauth2Config::default();
        assert_eq!(
            error_challenge(Mechanism::OAuthBearer, &cfg),
            br#"{"status":"invalid_token"}"#
        );
        cfg.scope = "mail \"x\"".into();
        cfg.openid_configuration_url = "https://idp/.well-known/openid-configuration".into();
        assert_eq!(
            String::from_utf8(error_challenge(Mechanism::OAuthBearer, &cfg)).unwrap(),
            r#"{"status":"invalid_token","scope":"mail \"x\"","openid-configuration":"https://idp/.well-known/openid-configuration"}"#
        );
        assert_eq!(
            String::from_utf8(error_challenge(Mechanism::XOAuth2, &cfg)).unwrap(),
            r#"{"status":"401","schemes":"bearer","scope":"mail \"x\""}"#
        );
    }
}
