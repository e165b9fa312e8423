//! DELETE (RFC 3501 6.3.4).

use super::Reply;
use crate::imap::names;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::{HAS_CHILDREN_NOT_SELECTABLE, StorageError};

/// DELETE: INBOX cannot be deleted; a mailbox with children becomes `\Noselect`.
pub async fn delete(s: &mut Session, mb: &Mailbox) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb, s.name_form())?;
    if name == "INBOX" {
        return Err(ImapError::Cannot("INBOX can't be deleted"));
    }
    if let Ok(sel) = s.selected()
        && sel.name == name
    {
        // As Dovecot: deleting the selected mailbox unselects it first.
        s.unselect();
    }
    match s.store()?.delete(&name).await {
        // RFC 9051 7.1 gives this failure its own code; a rev1 session keeps `[CANNOT]`.
        // (Dovecot answers a plain NO; it has no IMAP4rev2 mode to follow here.)
        Err(StorageError::Cannot(why))
            if s.enabled.imap4rev2 && why == HAS_CHILDREN_NOT_SELECTABLE =>
        {
            Err(ImapError::HasChildren(why))
        }
        r => {
            r?;
            Reply::ok("Delete completed.")
        }
    }
}
