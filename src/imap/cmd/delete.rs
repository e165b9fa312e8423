//! DELETE (RFC 3501 6.3.4).

use super::Reply;
use crate::imap::names;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

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
    s.store()?.delete(&name).await?;
    Reply::ok("Delete completed.")
}
