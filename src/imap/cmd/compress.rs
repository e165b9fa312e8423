//! COMPRESS (RFC 4978): raw DEFLATE both ways from right after the CRLF of the tagged OK. The
//! compression itself is a layer of the connection (`server::deflate`), so every command after
//! this one runs unchanged.

use tracing::debug;

use super::Reply;
use crate::imap::proto::types::Tag;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// COMPRESS: checks in Dovecot's order (already active, then the algorithm), answers OK
/// uncompressed, then turns DEFLATE on.
pub async fn compress(s: &mut Session, tag: &Tag, algorithm: &str) -> Result<Reply, ImapError> {
    if s.conn.is_compressed() {
        return Err(ImapError::CompressionActive);
    }
    // The parser upper-cases the atom (RFC 4978 section 5: case-insensitive).
    if algorithm != "DEFLATE" {
        return Err(ImapError::UnknownCompression);
    }
    s.ok(tag, None, "DEFLATE active.");
    // RFC 4978 section 3: "the server MUST compress starting immediately after the CRLF which
    // ends the tagged OK response", so the OK (and anything queued before it) goes out plain.
    if let Err(e) = s.conn.flush().await {
        debug!(error = %e, "write failed before COMPRESS");
        return Ok(Reply::Close);
    }
    s.conn.start_deflate();
    // Bytes already buffered moved into the inflater: the receiver starts over on the
    // decompressed stream.
    s.reset_receiver();
    debug!("COMPRESS DEFLATE active");
    Ok(Reply::Written)
}
