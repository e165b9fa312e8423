//! SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7).

use super::Reply;
use crate::imap::names;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// SUBSCRIBE: subscribing to a name that does not exist is allowed (RFC 3501 6.3.6).
pub async fn subscribe(s: &mut Session, mb: &Mailbox) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb, s.name_form())?;
    s.store()?.subscribe(&name).await?;
    Reply::ok("Subscribe completed.")
}

/// UNSUBSCRIBE.
pub async fn unsubscribe(s: &mut Session, mb: &Mailbox) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb, s.name_form())?;
    s.store()?.unsubscribe(&name).await?;
    Reply::ok("Unsubscribe completed.")
}
