//! Mailbox management: CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS.

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode;
use crate::imap::proto::types::{Mailbox, MailboxAttr, StatusItem};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::SpecialUse;

fn special_use(attr: MailboxAttr) -> Option<SpecialUse> {
    SpecialUse::from_attribute(attr.as_str())
}

/// CREATE name [(USE (\Attr))]. A trailing separator is allowed (RFC 3501 6.3.3).
pub async fn create(
    s: &mut Session,
    mb: &Mailbox,
    uses: &[MailboxAttr],
) -> Result<Reply, ImapError> {
    let mut name = names::from_wire(mb)?;
    let sep = s.shared.config().mail.separator;
    while name.ends_with(sep) {
        name.pop();
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Err(crate::storage::StorageError::AlreadyExists.into());
    }
    let use_attr = match uses {
        [] => None,
        [one] => Some(special_use(*one).ok_or(ImapError::Cannot("not a special-use attribute"))?),
        _ => {
            return Err(ImapError::Cannot(
                "only one special-use attribute per mailbox is supported",
            ));
        }
    };
    s.store()?.create(&name, use_attr).await?;
    Reply::ok("Create completed.")
}

/// DELETE: INBOX cannot be deleted; a mailbox with children becomes `\Noselect` (RFC 3501 6.3.4).
pub async fn delete(s: &mut Session, mb: &Mailbox) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb)?;
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

/// RENAME: children move along; renaming INBOX moves its messages (RFC 3501 6.3.5).
pub async fn rename(s: &mut Session, from: &Mailbox, to: &Mailbox) -> Result<Reply, ImapError> {
    let from = names::from_wire(from)?;
    let mut to = names::from_wire(to)?;
    let sep = s.shared.config().mail.separator;
    while to.ends_with(sep) {
        to.pop();
    }
    if to == "INBOX" {
        return Err(crate::storage::StorageError::AlreadyExists.into());
    }
    s.store()?.rename(&from, &to).await?;
    Reply::ok("Rename completed.")
}

/// SUBSCRIBE / UNSUBSCRIBE. Subscribing to a name that does not exist is allowed (RFC 3501 6.3.6).
pub async fn subscribe(s: &mut Session, mb: &Mailbox, on: bool) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb)?;
    let store = s.store()?;
    if on {
        store.subscribe(&name).await?;
        Reply::ok("Subscribe completed.")
    } else {
        store.unsubscribe(&name).await?;
        Reply::ok("Unsubscribe completed.")
    }
}

/// The values of STATUS items for `name` (also used by LIST RETURN (STATUS)).
pub async fn status_items(
    s: &Session,
    name: &str,
    items: &[StatusItem],
) -> Result<Vec<(StatusItem, u64)>, ImapError> {
    let st = s.store()?.status(name).await?;
    items
        .iter()
        .map(|item| {
            let v = match item {
                StatusItem::Messages => u64::from(st.messages),
                StatusItem::Recent => u64::from(st.recent),
                StatusItem::UidNext => u64::from(st.uidnext),
                StatusItem::UidValidity => u64::from(st.uidvalidity),
                StatusItem::Unseen => u64::from(st.unseen),
                StatusItem::Size => st.size,
                _ => return Err(ImapError::NotSupported("this STATUS item")),
            };
            Ok((*item, v))
        })
        .collect()
}

/// STATUS name (items).
pub async fn status(
    s: &mut Session,
    mb: &Mailbox,
    items: &[StatusItem],
) -> Result<Reply, ImapError> {
    let name = names::from_wire(mb)?;
    let values = status_items(s, &name, items).await?;
    encode::status(s.conn.out(), &names::to_wire(&name), &values);
    Reply::ok("Status completed.")
}
