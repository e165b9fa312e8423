//! SORT and UID SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO), with the saved
//! result `$` (RFC 5182) usable in the search keys and the CONDSTORE MODSEQ answer item
//! (RFC 7162 3.1.5).
//!
//! The work is [`crate::imap::sort::run`]: the search engine finds the messages, their cached
//! sort keys are loaded and compared. This file answers `* SORT`.

use super::Reply;
use crate::imap::proto::encode;
use crate::imap::proto::types::{SearchKey, SortCriterion};
use crate::imap::response::ImapError;
use crate::imap::search::Program;
use crate::imap::session::Session;
use crate::imap::sort;

/// [UID] SORT (criteria) charset keys.
pub async fn sort(
    s: &mut Session,
    uid: bool,
    criteria: &[SortCriterion],
    charset: &[u8],
    keys: &SearchKey,
) -> Result<Reply, ImapError> {
    let outcome = {
        let sel = s.selected_mut()?;
        match Program::compile(keys, Some(charset), sel).await {
            Ok(prog) => sort::run(sel, criteria, &prog)
                .await
                .map(|hits| (prog, hits)),
            Err(e) => Err(e),
        }
    };
    let (prog, hits) = outcome?;
    if prog.uses_modseq {
        // RFC 7162 3.1: a MODSEQ search key enables CONDSTORE, in SORT as in SEARCH.
        s.enable_condstore();
    }
    let (_, conn) = s.selected_and_conn()?;
    let numbers: Vec<u32> = hits
        .iter()
        .map(|h| if uid { h.uid } else { h.seq })
        .collect();
    let modseq = prog
        .uses_modseq
        .then(|| hits.iter().map(|h| h.modseq).max())
        .flatten();
    encode::sort(conn.out(), &numbers, modseq);
    Reply::ok("Sort completed.")
}
