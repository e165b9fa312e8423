//! FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8): resolves the set, then hands over to
//! [`crate::imap::fetch`], which writes the responses.

use super::Reply;
use crate::imap::fetch::{self, Abort, FetchPlan, Item};
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::types::FetchAttr;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};
use crate::storage::StorageError;

/// [UID] FETCH set attributes [(CHANGEDSINCE n)].
pub async fn fetch(
    s: &mut Session,
    uid: bool,
    set: &SequenceSet,
    attrs: &[FetchAttr],
    changed_since: Option<u64>,
) -> Result<Reply, ImapError> {
    let max_parse = s.shared.config().limits.max_message_size;
    let (sel, conn) = s.selected_and_conn()?;
    let uids = sel.uids(set, uid)?;
    let mut plan = FetchPlan::new(attrs, uid, changed_since)?;
    if plan.items.iter().any(|i| matches!(i, Item::InternalDate)) {
        // Dates not read at the first look at the files are read now; a message without one
        // (its file vanished meanwhile) is answered as expunged.
        plan.internal_dates = Some(sel.view.internal_dates(&uids).await?);
    }
    match fetch::run(sel, conn, &uids, &plan, max_parse).await {
        Ok(done) if done.expunged => Err(StorageError::Expunged.into()),
        Ok(done) if done.too_large => Err(ImapError::Cannot(
            "Some messages are too large to parse for the requested items",
        )),
        Ok(_) => Reply::ok("Fetch completed."),
        Err(Abort::Imap(e)) => Err(e),
        Err(Abort::Disconnect) => {
            s.state = State::Logout;
            Ok(Reply::Close)
        }
    }
}
