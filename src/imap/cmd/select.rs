//! SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2): one handler, EXAMINE opens read-only. With
//! CONDSTORE enabled (or the CONDSTORE parameter) it adds HIGHESTMODSEQ (RFC 7162 3.1.2.1); the
//! QRESYNC parameter (RFC 7162 3.2.5) adds `VANISHED (EARLIER)` and the changed messages.

use super::Reply;
use crate::imap::names;
use crate::imap::proto::encode::{self, Code, Status};
use crate::imap::proto::sequence::ResolvedSet;
use crate::imap::proto::types::{Mailbox, QresyncParams};
use crate::imap::response::ImapError;
use crate::imap::selected::Selected;
use crate::imap::session::Session;
use crate::limits::FETCH_FLUSH_BYTES;
use crate::server::conn::Conn;
use crate::storage::OpenOptions;

/// SELECT by an IMAP4rev2 session: read-write, watched, but without taking `\Recent`. A rev2
/// client is never told about `\Recent` (RFC 9051 2.3.2), so taking it would only hide new mail
/// from an IMAP4rev1 session on the same mailbox, which RFC 3501 2.3.2 says should see it as
/// recent. (RFC 9051 does not say; this is mailcove's choice, docs/imap4rev2.md.)
const SELECT_REV2: OpenOptions = OpenOptions {
    read_only: false,
    claim_recent: false,
    watch: true,
};

/// SELECT, or EXAMINE when `read_only`. A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
pub async fn select(
    s: &mut Session,
    mb: &Mailbox,
    read_only: bool,
    condstore: bool,
    qresync: Option<&QresyncParams>,
) -> Result<Reply, ImapError> {
    if qresync.is_some() && !s.enabled.qresync {
        // RFC 7162 3.2.5: checked before the old mailbox is closed, as any syntax error.
        return Err(ImapError::NotEnabled("QRESYNC"));
    }
    if condstore {
        // The parameter is a CONDSTORE enabling command (RFC 7162 3.1.8); its HIGHESTMODSEQ is
        // the one of the mailbox being selected, sent below.
        s.enabled.condstore = true;
    }
    let enabled = s.enabled;
    let had_selection = s.unselect().is_some();
    if had_selection {
        // RFC 7162 3.2.11 wording, which Dovecot sends too: the old mailbox's responses end here.
        encode::untagged(
            s.conn.out(),
            Status::Ok,
            Some(&Code::Closed),
            "Previous mailbox closed.",
        );
    }
    let name = names::from_wire(mb, s.name_form())?;
    let store = s.store()?;
    let options = if read_only {
        OpenOptions::EXAMINE
    } else if enabled.imap4rev2 {
        SELECT_REV2
    } else {
        OpenOptions::SELECT
    };
    let view = crate::metrics::storage(crate::metrics::StorageOp::Open, store.open(&name, options))
        .await?;
    // RFC 8474 4.2. A mailbox whose id cannot be stored (a read-only Maildir) is still
    // selected, without the id: refusing the SELECT would cost the client more.
    let mailbox_id = match store.mailbox_id(&name).await {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, "MAILBOXID not available");
            None
        }
    };
    // RFC 9051 6.3.2: an IMAP4rev2 SELECT returns an untagged LIST of the mailbox.
    let list_line = if enabled.imap4rev2 {
        Some(super::list::selected_list_line(s, &name).await?)
    } else {
        None
    };
    let mut sel = Selected::new(view, name);
    sel.imap4rev2 = enabled.imap4rev2;
    let out = s.conn.out();
    sel.write_flags(out);
    let v = &sel.view;
    encode::exists(out, v.len());
    if let Some(line) = list_line {
        out.extend_from_slice(&line);
    }
    // RFC 9051 Appendix E items 11 and 12: RECENT and the UNSEEN code are deprecated in rev2,
    // so a rev2 session gets neither (RFC 9051 6.3.2 lists the responses without them).
    if !enabled.imap4rev2 {
        encode::recent(out, v.recent_count());
    }
    if let Some(unseen) = v.first_unseen().filter(|_| !enabled.imap4rev2) {
        encode::untagged(
            out,
            Status::Ok,
            Some(&Code::Unseen(unseen)),
            "First unseen.",
        );
    }
    encode::untagged(
        out,
        Status::Ok,
        Some(&Code::UidValidity(v.uidvalidity())),
        "UIDs valid",
    );
    encode::untagged(
        out,
        Status::Ok,
        Some(&Code::UidNext(v.uidnext())),
        "Predicted next UID",
    );
    if enabled.condstore {
        encode::untagged(
            out,
            Status::Ok,
            Some(&Code::HighestModSeq(v.highest_modseq())),
            "Highest",
        );
    }
    if let Some(id) = mailbox_id {
        encode::untagged(out, Status::Ok, Some(&Code::MailboxId(id)), "Ok");
    }
    if let Some(q) = qresync.filter(|q| q.uidvalidity == v.uidvalidity()) {
        // RFC 7162 3.2.5.1: a different UIDVALIDITY means the client's cache is gone and the
        // remaining parameters are ignored.
        resync(&sel, &mut s.conn, q).await?;
    }
    let code = if read_only {
        Code::ReadOnly
    } else {
        Code::ReadWrite
    };
    let text = if read_only {
        "Examine completed."
    } else {
        "Select completed."
    };
    s.select(sel);
    Ok(Reply::Ok(Some(code), text.to_string()))
}

/// The QRESYNC part of a SELECT whose UIDVALIDITY matched (RFC 7162 3.2.5.1): what
/// `UID FETCH known-uids (FLAGS) (CHANGEDSINCE modseq VANISHED)` would answer, the expunges
/// limited further by the sequence match data (3.2.5.2).
async fn resync(sel: &Selected, conn: &mut Conn, q: &QresyncParams) -> Result<(), ImapError> {
    let max_uid = sel.view.uidnext().saturating_sub(1);
    let known = match &q.known_uids {
        Some(set) => set.resolve(max_uid, None).clamped(max_uid),
        // "as if the client has specified 1:<maxuid>"; empty for a mailbox that never had mail.
        None if max_uid == 0 => ResolvedSet::default(),
        None => ResolvedSet::from_ranges(vec![1..=max_uid]),
    };
    let floor = q
        .seq_match
        .as_ref()
        .map_or(0, |(seqs, uids)| matched_floor(sel, seqs, uids));
    let mut vanished = sel.vanished(q.modseq, &known).await?;
    if floor > 0 {
        vanished = ResolvedSet::from_ranges(
            vanished
                .ranges()
                .iter()
                .filter(|r| *r.end() > floor)
                .map(|r| (*r.start()).max(floor + 1)..=*r.end())
                .collect(),
        );
    }
    if !vanished.is_empty() {
        encode::vanished(conn.out(), true, &vanished);
    }
    for (i, meta) in sel.view.messages().iter().enumerate() {
        if meta.modseq > q.modseq && known.contains(meta.uid) {
            let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
            sel.write_changed(conn.out(), seq, meta, true);
            // A client away for long may have most of a big mailbox to catch up on: the
            // answers go out as FETCH's do, never piling up in memory.
            if conn.out().len() >= FETCH_FLUSH_BYTES {
                conn.flush()
                    .await
                    .map_err(|_| ImapError::Cannot("connection lost"))?;
            }
        }
    }
    Ok(())
}

/// The highest UID of the client's `(sequence-set uid-set)` pairs that still has the same
/// sequence number here (RFC 7162 3.2.5.2): no UID at or below it needs to be reported as
/// vanished, since the client already counts exactly the messages below it. 0 when no pair
/// matches or the two sets do not pair up.
fn matched_floor(
    sel: &Selected,
    seqs: &crate::imap::proto::sequence::SequenceSet,
    uids: &crate::imap::proto::sequence::SequenceSet,
) -> u32 {
    let (seqs, uids) = (seqs.resolve(0, None), uids.resolve(0, None));
    if seqs.count() != uids.count() {
        return 0;
    }
    // Both ascend, so numbers beyond EXISTS (which match nothing) are only ever a tail: cutting
    // it keeps the pairs aligned and bounds the work by the mailbox size, whatever was sent.
    seqs.clamped(sel.view.len())
        .iter()
        .zip(uids.iter())
        .filter(|(seq, uid)| sel.view.get(*seq).is_some_and(|m| m.uid == *uid))
        .map(|(_, uid)| uid)
        .max()
        .unwrap_or(0)
}
