//! COPY / UID COPY (RFC 3501 6.4.7, COPYUID of RFC 4315) and MOVE / UID MOVE (RFC 6851).

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode::{self, Code, Status};
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// COPY or MOVE `set` into `mb`. Flags and internal dates travel with the messages.
pub async fn copy(
    s: &mut Session,
    uid: bool,
    set: &SequenceSet,
    mb: &Mailbox,
    move_: bool,
) -> Result<Reply, ImapError> {
    let dest = names::from_wire(mb, s.name_form())?;
    let enabled = s.enabled;
    let (sel, conn) = s.selected_and_conn()?;
    let uids = sel.uids(set, uid)?;
    let done = if move_ {
        "Move completed."
    } else {
        "Copy completed."
    };
    if uids.is_empty() {
        // UID COPY/MOVE of UIDs that no longer exist is not an error (RFC 4315 3).
        return Reply::ok(done);
    }
    if move_ {
        let (res, delta) = crate::metrics::storage(
            crate::metrics::StorageOp::Copy,
            sel.view.move_to(&uids, &dest),
        )
        .await
        .map_err(ImapError::destination)?;
        let (src, dst): (Vec<u32>, Vec<u32>) = res.mapping.into_iter().unzip();
        // RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGEs. When another session
        // expunged every message first, nothing moved: an empty uid-set is not valid syntax
        // (RFC 4315 section 4), so there is no COPYUID at all, as for COPY.
        if !src.is_empty() {
            encode::untagged(
                conn.out(),
                Status::Ok,
                Some(&Code::CopyUid(res.uidvalidity, src, dst)),
                "Moved UIDs.",
            );
        }
        sel.write_changes(conn.out(), &delta, enabled).await;
        Reply::ok(done)
    } else {
        let res =
            crate::metrics::storage(crate::metrics::StorageOp::Copy, sel.view.copy(&uids, &dest))
                .await
                .map_err(ImapError::destination)?;
        let (src, dst): (Vec<u32>, Vec<u32>) = res.mapping.into_iter().unzip();
        if src.is_empty() {
            return Reply::ok(done);
        }
        Ok(Reply::Ok(
            Some(Code::CopyUid(res.uidvalidity, src, dst)),
            done.into(),
        ))
    }
}
