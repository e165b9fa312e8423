//! ID (RFC 2971): valid in any state.

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::IdParam;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// ID: names this server; the client's fields are only logged (sanitised).
pub fn id(s: &mut Session, params: Option<Vec<IdParam>>) -> Result<Reply, ImapError> {
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
