//! FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8): resolves the set, then hands over to
//! [`crate::imap::fetch`], which writes the responses. MODSEQ and CHANGEDSINCE are CONDSTORE
//! enabling commands (RFC 7162 3.1); `UID FETCH ... (CHANGEDSINCE n VANISHED)` first reports the
//! UIDs of the set expunged since n (RFC 7162 3.2.6).

use super::Reply;
use crate::imap::fetch::{self, Abort, FetchPlan, Item};
use crate::imap::proto::encode;
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::types::FetchAttr;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};
use crate::storage::StorageError;

/// [UID] FETCH set attributes [(CHANGEDSINCE n [VANISHED])].
pub async fn fetch(
    s: &mut Session,
    uid: bool,
    set: &SequenceSet,
    attrs: &[FetchAttr],
    changed_since: Option<u64>,
    vanished: bool,
) -> Result<Reply, ImapError> {
    if vanished && !s.enabled.qresync {
        return Err(ImapError::NotEnabled("QRESYNC"));
    }
    let max_parse = s.shared.config().limits.max_message_size;
    let mut plan = FetchPlan::new(attrs, uid, changed_since)?;
    let uids = s.selected()?.uids(set, uid)?;
    if plan.items.iter().any(|i| matches!(i, Item::ModSeq)) {
        s.enable_condstore();
    }
    if s.enabled.condstore {
        plan.report_seen_changes();
    }
    // RFC 9051 Appendix E item 16: IMAP4rev2 allows UTF-8 in message headers, so a rev2
    // session gets ENVELOPE and BODYSTRUCTURE as stored, like one that enabled UTF8=ACCEPT.
    plan.utf8_accept = s.enabled.utf8_accept || s.enabled.imap4rev2;
    let (sel, conn) = s.selected_and_conn()?;
    if let Some(since) = changed_since.filter(|_| vanished) {
        // `*` stands for UIDNEXT-1 here, so messages expunged above the last one are included.
        let max_uid = sel.view.uidnext().saturating_sub(1);
        let within = set.resolve(max_uid, sel.saved.as_ref()).clamped(max_uid);
        let gone = sel.vanished(since, &within).await?;
        if !gone.is_empty() {
            encode::vanished(conn.out(), true, &gone);
        }
    }
    if plan.items.iter().any(|i| matches!(i, Item::InternalDate)) {
        // Dates not read at the first look at the files are read now; a message without one
        // (its file vanished meanwhile) is answered as expunged.
        plan.internal_dates = Some(sel.view.internal_dates(&uids).await?);
    }
    if plan.needs_objects() {
        // SAVEDATE, EMAILID, THREADID: one storage call per batch, no message file read.
        let mut objects = std::collections::HashMap::with_capacity(uids.len());
        for batch in uids.chunks(crate::limits::OBJECT_BATCH) {
            objects.extend(
                sel.view
                    .objects(batch)
                    .await?
                    .into_iter()
                    .map(|o| (o.uid, o)),
            );
        }
        plan.objects = Some(objects);
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
