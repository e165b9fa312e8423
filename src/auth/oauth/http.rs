//! The two HTTP requests OAuth 2 login needs (fetch the JWKS, ask the introspection endpoint),
//! with ureq: blocking, so callers run them on the blocking pool. Every request has the
//! `OAUTH_HTTP_TIMEOUT_SECS` timeout and a body limit; redirects are not followed, so a key
//! set or a token never goes to a place the configuration did not name (the URL was checked to
//! be https, or http to loopback, when the configuration was loaded).

use std::time::Duration;

use crate::limits::OAUTH_HTTP_TIMEOUT_SECS;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(OAUTH_HTTP_TIMEOUT_SECS)))
        .max_redirects(0)
        .user_agent(concat!("mailcove/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server answered with this non-2xx status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// No usable answer: connection, TLS, timeout, a body over the limit.
    #[error("{0}")]
    Transport(String),
}

fn read(
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    limit: u64,
) -> Result<Vec<u8>, HttpError> {
    let mut resp = resp.map_err(|e| match e {
        ureq::Error::StatusCode(code) => HttpError::Status(code),
        e => HttpError::Transport(e.to_string()),
    })?;
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| HttpError::Transport(e.to_string()))
}

/// `GET url` with optional extra headers; the body (at most `limit` bytes) of a 2xx answer.
pub fn get_with(url: &str, headers: &[(&str, &str)], limit: u64) -> Result<Vec<u8>, HttpError> {
    let mut req = agent().get(url).header("Accept", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    read(req.call(), limit)
}

/// `GET url`; the body (at most `limit` bytes) of a 2xx answer.
pub fn get(url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
    get_with(url, &[], limit)
}

/// `POST url` with `form` as `application/x-www-form-urlencoded`.
pub fn post_form(
    url: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
    limit: u64,
) -> Result<Vec<u8>, HttpError> {
    let mut req = agent().post(url).header("Accept", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    read(req.send_form(form.iter().copied()), limit)
}
