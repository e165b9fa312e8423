//! RFC 7662 token introspection, in Dovecot's three modes (`introspection_mode`): `post` (the
//! RFC's form POST with the client's credentials as HTTP Basic authentication), `get` (the token
//! appended to the configured URL) and `auth` (a GET with the token as `Authorization: Bearer`,
//! for userinfo endpoints). Blocking.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use super::TokenError;
use super::http::{self, HttpError};
use crate::config::{IntrospectionMode, Oauth2Config};
use crate::limits::MAX_INTROSPECTION_RESPONSE;

/// `s` percent-encoded for a URL query (RFC 3986 unreserved characters kept).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Asks `url` about `token`; the answer's members. A 4xx answer (a userinfo endpoint refusing
/// the token) is an inactive token; no answer or a 5xx is a temporary failure. With `post`
/// (RFC 7662 2.2) `active` must be `true`; in the other modes it must be `true` when present.
pub fn introspect(
    cfg: &Oauth2Config,
    url: &str,
    token: &str,
) -> Result<Map<String, Value>, TokenError> {
    let basic;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if !cfg.client_id.is_empty() {
        basic = format!(
            "Basic {}",
            B64.encode(format!("{}:{}", cfg.client_id, cfg.client_secret))
        );
        headers.push(("Authorization", &basic));
    }
    let bearer;
    let answer = match cfg.introspection_mode {
        IntrospectionMode::Post => http::post_form(
            url,
            &headers,
            &[("token", token), ("token_type_hint", "access_token")],
            MAX_INTROSPECTION_RESPONSE,
        ),
        IntrospectionMode::Get => http::get_with(
            &format!("{url}{}", percent_encode(token)),
            &headers,
            MAX_INTROSPECTION_RESPONSE,
        ),
        IntrospectionMode::Auth => {
            bearer = format!("Bearer {token}");
            http::get_with(
                url,
                &[("Authorization", &bearer)],
                MAX_INTROSPECTION_RESPONSE,
            )
        }
    };
    let body = match answer {
        Ok(body) => body,
        Err(HttpError::Status(code)) if (400..500).contains(&code) => {
            tracing::info!(url, code, "OAuth2 introspection refused the token");
            return Err(TokenError::Inactive);
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "OAuth2 introspection failed");
            return Err(TokenError::Unavailable);
        }
    };
    let claims: Map<String, Value> = serde_json::from_slice(&body).map_err(|_| {
        tracing::warn!(url, "OAuth2 introspection answer is not a JSON object");
        TokenError::Unavailable
    })?;
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        None if cfg.introspection_mode != IntrospectionMode::Post => {}
        _ => return Err(TokenError::Inactive),
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("aZ0-._~"), "aZ0-._~");
        assert_eq!(percent_encode("a+b/c= &"), "a%2Bb%2Fc%3D%20%26");
    }
}
