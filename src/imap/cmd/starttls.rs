//! STARTTLS (RFC 3501 6.2.1, RFC 2595).

use tracing::debug;

use super::Reply;
use crate::imap::proto::types::Tag;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// STARTTLS: answer OK, then handshake. Input pipelined behind the command is discarded, never
/// executed, and the framing state is reset with it.
pub async fn starttls(s: &mut Session, tag: &Tag) -> Result<Reply, ImapError> {
    if s.conn.is_tls() {
        return Err(ImapError::TlsUnavailable("TLS is already active"));
    }
    if !s.starttls_possible() {
        return Err(ImapError::TlsUnavailable("not offered on this port"));
    }
    let Some(acceptor) = s.shared.tls.current() else {
        return Err(ImapError::TlsUnavailable("no certificate configured"));
    };
    s.ok(tag, None, "Begin TLS negotiation now.");
    let res = s.conn.start_tls(&acceptor).await;
    s.reset_receiver();
    match res {
        Ok(()) => Ok(Reply::Written),
        Err(e) => {
            debug!(error = %e, "STARTTLS handshake failed");
            Ok(Reply::Close)
        }
    }
}
