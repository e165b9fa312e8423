//! STORE and UID STORE (RFC 3501 6.4.6), with `.SILENT` and the CONDSTORE UNCHANGEDSINCE modifier.

use super::Reply;
use crate::imap::proto::encode::{Code, FetchResponse};
use crate::imap::proto::sequence::{ResolvedSet, SequenceSet};
use crate::imap::proto::types::{Flag, StoreOp as ProtoOp};
use crate::imap::response::ImapError;
use crate::imap::selected::{protocol_flags, storage_flags};
use crate::imap::session::Session;
use crate::storage::{StoreOp, StoreRequest};

/// [UID] STORE set [+|-]FLAGS[.SILENT] (flags).
pub async fn store(
    s: &mut Session,
    uid: bool,
    set: &SequenceSet,
    op: ProtoOp,
    silent: bool,
    flags: &[Flag],
    unchanged_since: Option<u64>,
) -> Result<Reply, ImapError> {
    if unchanged_since.is_some() {
        s.enable_condstore();
    }
    let condstore = s.enabled.condstore;
    let (sel, conn) = s.selected_and_conn()?;
    let uids = sel.uids(set, uid)?;
    let (system, keywords) = storage_flags(flags)?;
    if sel.read_only() {
        return Err(crate::storage::StorageError::ReadOnly.into());
    }
    if uids.is_empty() {
        return Reply::ok("Store completed.");
    }
    let request = StoreRequest {
        op: match op {
            ProtoOp::Replace => StoreOp::Replace,
            ProtoOp::Add => StoreOp::Add,
            ProtoOp::Remove => StoreOp::Remove,
        },
        flags: system,
        keywords,
        unchanged_since,
    };
    let outcome = crate::metrics::storage(
        crate::metrics::StorageOp::Store,
        sel.view.store(&uids, request),
    )
    .await?;
    let out = conn.out();
    if outcome.keywords_changed {
        sel.write_flags(out);
    }
    // RFC 7162 3.1.3: a conditional STORE reports the new MODSEQ even when .SILENT; once
    // CONDSTORE is enabled every FETCH response carries UID and MODSEQ (3.2.4).
    if !silent || unchanged_since.is_some() {
        for (seq, updated) in &outcome.updated {
            let recent = sel.shows_recent(updated.uid);
            let mut f = FetchResponse::start(out, *seq);
            if uid || condstore {
                f.uid(out, updated.uid);
            }
            f.flags(
                out,
                protocol_flags(&updated.flags, sel.view.keywords()),
                recent,
            );
            if condstore {
                f.modseq(out, updated.modseq);
            }
            f.finish(out);
        }
    }
    if !outcome.failed.is_empty() {
        // RFC 7162 3.1.3: MODIFIED lists the messages not changed, as UIDs for UID STORE.
        let numbers: Vec<u32> = if uid {
            outcome.failed.clone()
        } else {
            outcome
                .failed
                .iter()
                .filter_map(|u| sel.view.seq_of(*u))
                .collect()
        };
        let set: ResolvedSet = numbers.into_iter().collect();
        return Ok(Reply::Ok(
            Some(Code::Modified(set)),
            "Conditional store failed.".into(),
        ));
    }
    Reply::ok("Store completed.")
}
