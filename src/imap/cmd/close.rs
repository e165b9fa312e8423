//! CLOSE (RFC 3501 6.4.2).

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// CLOSE: silently expunges `\Deleted` messages (unless read-only), then unselects.
pub async fn close(s: &mut Session) -> Result<Reply, ImapError> {
    let sel = s.selected_mut()?;
    if !sel.read_only() {
        // No untagged EXPUNGE: RFC 3501 6.4.2.
        crate::metrics::storage(crate::metrics::StorageOp::Expunge, sel.view.expunge(None)).await?;
    }
    s.unselect();
    Reply::ok("Close completed.")
}
