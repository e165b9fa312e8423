//! RENAME (RFC 3501 6.3.5).

use super::Reply;
use super::helpers::new_mailbox_name;
use crate::imap::names;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// RENAME: children move along; renaming INBOX moves its messages.
pub async fn rename(s: &mut Session, from: &Mailbox, to: &Mailbox) -> Result<Reply, ImapError> {
    let store = s.store()?;
    let from = names::from_wire(from, s.name_form())?;
    let to = new_mailbox_name(to, store.separator(), s.name_form())?;
    store.rename(&from, &to).await?;
    Reply::ok("Rename completed.")
}
