//! STATUS (RFC 3501 6.3.10, with SIZE of RFC 8438, HIGHESTMODSEQ of RFC 7162 3.1.2.3 and
//! DELETED / DELETED-STORAGE of RFC 9208 4.1.4).

use super::Reply;
use super::helpers::status_items;
use crate::imap::names;
use crate::imap::proto::encode;
use crate::imap::proto::types::{Mailbox, StatusItem};
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// STATUS name (items).
pub async fn status(
    s: &mut Session,
    mb: &Mailbox,
    items: &[StatusItem],
) -> Result<Reply, ImapError> {
    if items.contains(&StatusItem::HighestModSeq) {
        // RFC 7162 3.1: STATUS (HIGHESTMODSEQ) is a CONDSTORE enabling command.
        s.enable_condstore();
    }
    let name = names::from_wire(mb, s.name_form())?;
    let values = status_items(s, &name, items).await?;
    let wire = names::to_wire(&name, s.name_form());
    encode::status(s.conn.out(), &wire, &values);
    Reply::ok("Status completed.")
}
