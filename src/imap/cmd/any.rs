//! Commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971); and the authenticated
//! housekeeping commands ENABLE (RFC 5161) and NAMESPACE (RFC 2342).

use super::Reply;
use crate::imap::capability;
use crate::imap::proto::encode::{self, Namespace};
use crate::imap::proto::types::{Atom, Tag};
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// One field/value pair a client sent in ID.
type IdPair = (Vec<u8>, Option<Vec<u8>>);

/// CAPABILITY.
pub fn capability(s: &mut Session) -> Result<Reply, ImapError> {
    let caps = match s.state {
        State::NotAuthenticated => {
            capability::before_login(&s.shared, &s.conn, s.starttls_possible())
        }
        _ => capability::after_login(&s.shared),
    };
    s.untagged(&format!("CAPABILITY {caps}"));
    Reply::ok("Capability completed.")
}

/// NOOP: the command loop reports the selected mailbox's changes before the OK.
pub fn noop(_s: &mut Session) -> Result<Reply, ImapError> {
    Reply::ok("NOOP completed.")
}

/// LOGOUT (RFC 3501 6.1.3): untagged BYE, then the tagged OK, then close.
pub fn logout(s: &mut Session, tag: &Tag) -> Result<Reply, ImapError> {
    s.untagged("BYE Logging out.");
    s.ok(tag, None, "Logout completed.");
    s.state = State::Logout;
    Ok(Reply::Close)
}

/// ID (RFC 2971): names this server; the client's fields are only logged (sanitised).
pub fn id(s: &mut Session, params: Option<Vec<IdPair>>) -> Result<Reply, ImapError> {
    if let Some(params) = params {
        let shown: Vec<String> = params
            .iter()
            .map(|(k, v)| {
                let v = v
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k).escape_default(),
                    v.escape_default()
                )
            })
            .collect();
        tracing::info!(client = %shown.join(" "), "client ID");
    }
    let version = env!("CARGO_PKG_VERSION");
    encode::id(
        s.conn.out(),
        Some(&[
            ("name", Some(b"mailcove".as_slice())),
            ("version", Some(version.as_bytes())),
        ]),
    );
    Reply::ok("ID completed.")
}

/// ENABLE (RFC 5161): no extension that needs enabling is implemented yet, so the ENABLED list is
/// empty, which RFC 5161 3.1 allows for capabilities the server does not support.
pub fn enable(s: &mut Session, _caps: &[Atom]) -> Result<Reply, ImapError> {
    encode::enabled(s.conn.out(), &[]);
    Reply::ok("Enabled.")
}

/// NAMESPACE (RFC 2342): one personal namespace with an empty prefix, as Dovecot's default.
pub fn namespace(s: &mut Session) -> Result<Reply, ImapError> {
    let sep = s.shared.config().mail.separator as u8;
    let personal = [Namespace {
        prefix: b"",
        delimiter: Some(sep),
    }];
    encode::namespace(s.conn.out(), Some(&personal), None, None);
    Reply::ok("Namespace completed.")
}
