//! CREATE (RFC 3501 6.3.3) with the USE parameter of RFC 6154 CREATE-SPECIAL-USE.

use super::Reply;
use super::helpers::new_mailbox_name;
use crate::imap::proto::types::{Mailbox, MailboxAttr};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::SpecialUse;

/// CREATE name [(USE (\Attr))]. A trailing separator is allowed (RFC 3501 6.3.3).
pub async fn create(
    s: &mut Session,
    mb: &Mailbox,
    uses: &[MailboxAttr],
) -> Result<Reply, ImapError> {
    let store = s.store()?;
    let name = new_mailbox_name(mb, store.separator(), s.name_form())?;
    let use_attr = match uses {
        [] => None,
        [one] => Some(
            SpecialUse::from_attribute(one.as_str())
                .ok_or(ImapError::Cannot("not a special-use attribute"))?,
        ),
        _ => {
            return Err(ImapError::Cannot(
                "only one special-use attribute per mailbox is supported",
            ));
        }
    };
    store.create(&name, use_attr).await?;
    Reply::ok("Create completed.")
}
