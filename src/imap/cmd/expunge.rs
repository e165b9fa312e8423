//! EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315).

use super::Reply;
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// EXPUNGE, or UID EXPUNGE limited to `uids`: removes `\Deleted` messages and reports each
/// `* n EXPUNGE` (with other sessions' changes) before the OK.
pub async fn expunge(s: &mut Session, uids: Option<&SequenceSet>) -> Result<Reply, ImapError> {
    let enabled = s.enabled;
    let (sel, conn) = s.selected_and_conn()?;
    let limit = match uids {
        Some(set) => Some(sel.uids(set, true)?),
        None => None,
    };
    if matches!(&limit, Some(l) if l.is_empty()) {
        return Reply::ok("Expunge completed.");
    }
    let delta = crate::metrics::storage(
        crate::metrics::StorageOp::Expunge,
        sel.view.expunge(limit.as_deref()),
    )
    .await?;
    sel.write_changes(conn.out(), &delta, enabled).await;
    Reply::ok("Expunge completed.")
}
