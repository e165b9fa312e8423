//! Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971).

use super::Outcome;
use crate::imap::capability;
use crate::imap::proto::encode::write_nstring;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// CAPABILITY.
pub fn capability(s: &mut Session, tag: &str) -> Result<Outcome, ImapError> {
    let caps = match s.state {
        State::NotAuthenticated => {
            capability::before_login(&s.shared, &s.conn, s.starttls_possible())
        }
        _ => capability::after_login(),
    };
    s.untagged(&format!("CAPABILITY {caps}"));
    s.ok(tag, None, "Capability completed.");
    Ok(Outcome::Continue)
}

/// NOOP.
pub fn noop(s: &mut Session, tag: &str) -> Result<Outcome, ImapError> {
    s.ok(tag, None, "NOOP completed.");
    Ok(Outcome::Continue)
}

/// LOGOUT (RFC 3501 6.1.3): untagged BYE, then the tagged OK, then close.
pub fn logout(s: &mut Session, tag: &str) -> Result<Outcome, ImapError> {
    s.untagged("BYE Logging out.");
    s.ok(tag, None, "Logout completed.");
    s.state = State::Logout;
    Ok(Outcome::Close)
}

/// ID (RFC 2971): names this server; the client's fields are only logged (sanitised).
pub fn id(
    s: &mut Session,
    tag: &str,
    params: Option<Vec<(Vec<u8>, Option<Vec<u8>>)>>,
) -> Result<Outcome, ImapError> {
    if let Some(params) = params {
        let shown: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k).escape_default(),
                    v.as_deref()
                        .map(|v| String::from_utf8_lossy(v).escape_default().to_string())
                        .unwrap_or_default()
                )
            })
            .collect();
        tracing::info!(client = %shown.join(" "), "client ID");
    }
    let mut line = b"* ID (".to_vec();
    for (i, (k, v)) in [
        ("name", "mailcove"),
        ("version", env!("CARGO_PKG_VERSION")),
        ("vendor", "mailcove"),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            line.push(b' ');
        }
        write_nstring(&mut line, Some(k.as_bytes()));
        line.push(b' ');
        write_nstring(&mut line, Some(v.as_bytes()));
    }
    line.extend_from_slice(b")\r\n");
    s.conn.queue(&line);
    s.ok(tag, None, "ID completed.");
    Ok(Outcome::Continue)
}
