//! FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8, 7.4.2) over the storage view.
//!
//! # Design
//!
//! [`FetchPlan`] decides once per command what each message needs: metadata only (FLAGS, UID,
//! INTERNALDATE, RFC822.SIZE, MODSEQ come from the view, no I/O), the MIME structure (ENVELOPE,
//! BODY, BODYSTRUCTURE and sections other than the whole message), the file (any section), and
//! whether `\Seen` is set.
//!
//! Messages are handled in batches of [`FETCH_BATCH_MESSAGES`]: one `\Seen` store per batch,
//! structures looked up and parsed in bounded groups (see `structure::load`), each with one cache
//! write, then one response per message. The next group's structures are loaded (across a batch
//! boundary too) while a group's responses are written and its cache entries stored, so the
//! blocking threads parsing cache misses do not wait for the socket or the cache write. Responses are flushed whenever the output passes
//! [`FETCH_FLUSH_BYTES`] and bodies are streamed (see `body`), so neither `FETCH 1:* FLAGS` on
//! 100,000 messages nor `BODY[]` of a 50 MiB message builds up in memory, and a client that reads
//! nothing blocks the command instead of growing buffers.
//!
//! `\Seen` is set before the batch's responses are written, so FLAGS in the same response already
//! shows it, and the implicit FLAGS RFC 3501 6.4.5 asks for is appended to the response of every
//! message whose flags changed (as Dovecot does). EXAMINE never changes flags.
//!
//! The view is never refreshed here, so sequence numbers do not move during a FETCH. A message
//! another session expunged after our view was taken still answers metadata from the view; when
//! its file is needed and gone, it gets no response and the command ends with
//! `NO [EXPUNGEISSUED]` (RFC 2180 4.1.2, Dovecot's choice). Messages larger than the configured
//! maximum message size are streamed but not parsed; asking for their structure fails the command
//! with `NO [CANNOT]` after the other messages were answered.

mod binary;
mod body;
pub mod downgrade;
pub mod plan;
pub mod preview;
pub mod structure;

use std::collections::HashSet;

pub use body::Scratch;
pub use body::SectionCopy;
pub use plan::{FetchPlan, Item};

use crate::imap::proto::date::DateTime;
use crate::imap::proto::encode::FetchResponse;
use crate::imap::response::ImapError;
use crate::imap::selected::Selected;
use crate::limits::{FETCH_BATCH_MESSAGES, FETCH_FLUSH_BYTES};
use crate::mime::{write_body, write_envelope};
use crate::server::conn::Conn;
use crate::storage::{MessageMeta, StorageError, StoreOp, StoreRequest, SystemFlags};

/// How a FETCH run ended, when it did not fail outright.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Some message was gone when its file was needed: answer `NO [EXPUNGEISSUED]`.
    pub expunged: bool,
    /// Some message was too large to parse for its structure.
    pub too_large: bool,
}

/// Why a FETCH run stopped early.
#[derive(Debug)]
pub enum Abort {
    /// A failure the tagged answer reports; every response written so far is complete.
    Imap(ImapError),
    /// The connection is unusable (client gone, write timeout, or a literal that could not be
    /// completed): close it without another word.
    Disconnect,
}

impl From<StorageError> for Abort {
    fn from(e: StorageError) -> Self {
        Abort::Imap(e.into())
    }
}

/// Writes the FETCH responses for `uids` (ascending UIDs of messages in the view).
///
/// When the plan needs structures, the next group's are loaded while this group's responses
/// are written and its new cache entries stored: parsing cache misses keeps the blocking
/// threads busy instead of waiting for the socket and the cache write. At most two groups are
/// held (the one written and the one loaded), each bounded by `structure::load`.
pub async fn run(
    sel: &mut Selected,
    conn: &mut Conn,
    uids: &[u32],
    plan: &FetchPlan,
    max_parse: u64,
) -> Result<Finished, Abort> {
    let mut done = Finished::default();
    let mut scratch = Scratch::new();
    // Structures loaded ahead for the first messages not yet written (or why loading failed).
    let mut ahead: Option<Result<structure::Group, StorageError>> = None;
    // Metadata of the next batch, taken early to load its first structures ahead.
    let mut next_metas: Option<Vec<(u32, MessageMeta)>> = None;
    let mut batches = uids.chunks(FETCH_BATCH_MESSAGES).peekable();
    while let Some(batch) = batches.next() {
        let mut metas = next_metas
            .take()
            .unwrap_or_else(|| batch_metas(sel, batch, plan));
        if metas.is_empty() {
            continue;
        }
        let newly_seen = if plan.sets_seen && !sel.read_only() {
            let seen = set_seen(sel, conn, &metas).await?;
            if !seen.is_empty() {
                let batch_uids: Vec<u32> = metas.iter().map(|(_, m)| m.uid).collect();
                metas = sel.metas(&batch_uids);
            }
            seen
        } else {
            HashSet::new()
        };
        // PREVIEW alone needs structures only to make the previews not cached yet: a batch
        // whose previews are all cached is written without loading one.
        if plan.structure_only_for_preview() {
            let previews = preview::cached(&sel.view, &metas).await;
            if previews.iter().all(Option::is_some) {
                ahead = None;
                write_part(
                    sel,
                    conn,
                    plan,
                    &metas,
                    Vec::new(),
                    Some(previews),
                    &newly_seen,
                    &mut scratch,
                )
                .await?
                .merge_into(&mut done);
                continue;
            }
        }
        let mut rest = metas.as_slice();
        while !rest.is_empty() {
            let (part, group) = if plan.needs_structure {
                let group = match ahead.take() {
                    Some(Ok(g)) if answers_head(&g, rest) => g,
                    Some(Err(e)) => return Err(e.into()),
                    _ => structure::load(&sel.view, rest, plan.wanted, max_parse).await?,
                };
                let Some(part) = rest.get(..group.uids.len()).filter(|p| !p.is_empty()) else {
                    return Err(
                        StorageError::Corrupt("structure lookup answered nothing".into()).into(),
                    );
                };
                (part, Some(group))
            } else {
                (rest, None)
            };
            rest = rest.get(part.len()..).unwrap_or_default();
            let Some(group) = group else {
                write_part(
                    sel,
                    conn,
                    plan,
                    part,
                    Vec::new(),
                    None,
                    &newly_seen,
                    &mut scratch,
                )
                .await?
                .merge_into(&mut done);
                continue;
            };
            if rest.is_empty() && next_metas.is_none() {
                next_metas = batches.peek().map(|b| batch_metas(sel, b, plan));
            }
            let upcoming = if rest.is_empty() {
                next_metas.as_deref().unwrap_or_default()
            } else {
                rest
            };
            let load_next = async {
                if upcoming.is_empty() {
                    None
                } else {
                    Some(structure::load(&sel.view, upcoming, plan.wanted, max_parse).await)
                }
            };
            let structure::Group {
                structures, fresh, ..
            } = group;
            let (loaded, (), written) = tokio::join!(
                load_next,
                structure::store(&sel.view, fresh),
                write_part(
                    sel,
                    conn,
                    plan,
                    part,
                    structures,
                    None,
                    &newly_seen,
                    &mut scratch
                ),
            );
            written?.merge_into(&mut done);
            ahead = loaded;
        }
    }
    Ok(done)
}

/// The metadata of a batch of UIDs, less the messages CHANGEDSINCE leaves out.
fn batch_metas(sel: &Selected, batch: &[u32], plan: &FetchPlan) -> Vec<(u32, MessageMeta)> {
    let mut metas = sel.metas(batch);
    if let Some(since) = plan.changed_since {
        metas.retain(|(_, m)| m.modseq > since);
    }
    metas
}

/// True when a group loaded ahead answers the first messages of `rest` (it always should: the
/// view does not change during a FETCH).
fn answers_head(group: &structure::Group, rest: &[(u32, MessageMeta)]) -> bool {
    !group.uids.is_empty()
        && group.uids.len() <= rest.len()
        && group.uids.iter().zip(rest).all(|(u, (_, m))| *u == m.uid)
}

impl Finished {
    fn merge_into(self, done: &mut Finished) {
        done.expunged |= self.expunged;
        done.too_large |= self.too_large;
    }
}

/// Writes the responses of `part` (with their structures, in order, when the plan needs them),
/// flushing whenever the output passes [`FETCH_FLUSH_BYTES`]. `previews`: the part's cached
/// previews when the caller looked them up already.
#[allow(clippy::too_many_arguments)]
async fn write_part(
    sel: &Selected,
    conn: &mut Conn,
    plan: &FetchPlan,
    part: &[(u32, MessageMeta)],
    structures: Vec<Result<structure::Structure, structure::ParseError>>,
    previews: Option<Vec<Option<String>>>,
    newly_seen: &HashSet<u32>,
    scratch: &mut Scratch,
) -> Result<Finished, Abort> {
    let mut done = Finished::default();
    let mut structures = structures.into_iter();
    // PREVIEW: the cached previews of the whole part, looked up at once; new ones are stored
    // together after it.
    let mut previews = match (previews, plan.preview()) {
        (Some(known), _) => known.into_iter(),
        (None, Some(_)) => preview::cached(&sel.view, part).await.into_iter(),
        (None, None) => Vec::new().into_iter(),
    };
    let mut new_previews = Vec::new();
    for (seq, meta) in part {
        let msg = Message {
            seq: *seq,
            meta,
            structure: structures.next(),
            newly_seen: newly_seen.contains(&meta.uid),
            preview: previews.next().flatten(),
        };
        match write_message(sel, conn, plan, msg, scratch, &mut new_previews).await? {
            Written::Yes => {}
            Written::Expunged => done.expunged = true,
            Written::TooLarge => done.too_large = true,
        }
        if conn.out().len() >= FETCH_FLUSH_BYTES && conn.flush().await.is_err() {
            return Err(Abort::Disconnect);
        }
    }
    if !new_previews.is_empty() {
        // RFC 8970 8: making previews costs; log it (the connection span carries the user) so
        // an abusive client can be found.
        tracing::info!(made = new_previews.len(), "FETCH PREVIEW made previews");
    }
    preview::store(&sel.view, new_previews).await;
    Ok(done)
}

/// Sets `\Seen` on the messages of the batch that lack it; returns the UIDs it was set on.
async fn set_seen(
    sel: &mut Selected,
    conn: &mut Conn,
    metas: &[(u32, MessageMeta)],
) -> Result<HashSet<u32>, Abort> {
    let unseen: Vec<u32> = metas
        .iter()
        .filter(|(_, m)| !m.flags.system.contains(SystemFlags::SEEN))
        .map(|(_, m)| m.uid)
        .collect();
    if unseen.is_empty() {
        return Ok(HashSet::new());
    }
    let request = StoreRequest {
        op: StoreOp::Add,
        flags: SystemFlags::SEEN,
        keywords: Vec::new(),
        unchanged_since: None,
    };
    let outcome = sel.view.store(&unseen, request).await?;
    if outcome.keywords_changed {
        sel.write_flags(conn.out());
    }
    Ok(outcome.updated.iter().map(|(_, u)| u.uid).collect())
}

struct Message<'a> {
    seq: u32,
    meta: &'a MessageMeta,
    /// The MIME structure, or why there is none; `None` when the plan does not need it.
    structure: Option<Result<structure::Structure, structure::ParseError>>,
    newly_seen: bool,
    /// The cached PREVIEW text, when the plan has PREVIEW and the cache has it.
    preview: Option<String>,
}

enum Written {
    Yes,
    Expunged,
    TooLarge,
}

/// Writes one message's response, opening the message only when the plan needs its file (or
/// a preview has to be made); a preview made here is added to `new_previews` for the cache.
async fn write_message(
    sel: &Selected,
    conn: &mut Conn,
    plan: &FetchPlan,
    msg: Message<'_>,
    scratch: &mut Scratch,
    new_previews: &mut Vec<(u32, bytes::Bytes)>,
) -> Result<Written, Abort> {
    let Message {
        seq,
        meta,
        structure,
        newly_seen,
        preview: cached_preview,
    } = msg;
    let st = match structure {
        None => structure::Structure::default(),
        Some(Ok(s)) => s,
        Some(Err(structure::ParseError::TooLarge)) => {
            tracing::warn!(
                uid = meta.uid,
                size = meta.virt_size,
                "message too large to parse its structure"
            );
            return Ok(Written::TooLarge);
        }
        Some(Err(structure::ParseError::Storage(StorageError::Expunged))) => {
            return Ok(Written::Expunged);
        }
        Some(Err(structure::ParseError::Storage(e))) => return Err(e.into()),
    };
    // Read by the FETCH command before the run (`plan.internal_dates`); none for a message
    // means its file is gone.
    let internal_date = match &plan.internal_dates {
        Some(dates) => match dates.get(meta.uid) {
            Some(d) => Some(d),
            None => return Ok(Written::Expunged),
        },
        None if plan.items.iter().any(|i| matches!(i, Item::InternalDate)) => {
            return Err(StorageError::Corrupt("INTERNALDATE not read before FETCH".into()).into());
        }
        None => None,
    };
    // Read by the FETCH command before the run (`plan.objects`), as the dates.
    let object = match &plan.objects {
        Some(objects) => match objects.get(&meta.uid) {
            Some(o) => Some(o),
            None => return Ok(Written::Expunged),
        },
        None if plan.needs_objects() => {
            return Err(
                StorageError::Corrupt("SAVEDATE/EMAILID not read before FETCH".into()).into(),
            );
        }
        None => None,
    };
    let mut file = if plan.needs_file {
        match crate::metrics::storage(
            crate::metrics::StorageOp::Fetch,
            sel.view.open_message(meta.uid, 0),
        )
        .await
        {
            Ok(f) => Some(f),
            Err(StorageError::Expunged) => return Ok(Written::Expunged),
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    // Made before anything of the response is written, so a failure leaves no half response.
    let preview_text = match plan.preview() {
        None => None,
        Some(_) if cached_preview.is_some() => cached_preview,
        // RFC 8970 4.1: LAZY answers NIL rather than read the message now.
        Some(true) => None,
        Some(false) => {
            let Some(info) = st.info.as_ref() else {
                return Err(StorageError::Corrupt("structure missing for PREVIEW".into()).into());
            };
            if file.is_none() {
                file = match crate::metrics::storage(
                    crate::metrics::StorageOp::Fetch,
                    sel.view.open_message(meta.uid, 0),
                )
                .await
                {
                    Ok(f) => Some(f),
                    Err(StorageError::Expunged) => return Ok(Written::Expunged),
                    Err(e) => return Err(e.into()),
                };
            }
            let Some(m) = file.as_ref() else {
                return Err(StorageError::Corrupt("message file not opened".into()).into());
            };
            match preview::compute(m, info).await {
                Ok(text) => {
                    new_previews.push((meta.uid, preview::entry(meta.virt_size, &text)));
                    Some(text)
                }
                Err(StorageError::Expunged) => return Ok(Written::Expunged),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let start = conn.out().len();
    let mut committed = false;
    let mut f = FetchResponse::start(conn.out(), seq);
    for item in &plan.items {
        match item {
            Item::Uid => f.uid(conn.out(), meta.uid),
            Item::Flags => sel.write_flags_of(&mut f, conn.out(), meta),
            Item::InternalDate => {
                f.item(conn.out(), "INTERNALDATE");
                write_internal_date(conn.out(), internal_date.unwrap_or_default());
            }
            Item::Rfc822Size => f.rfc822_size(conn.out(), meta.virt_size),
            Item::ModSeq => f.modseq(conn.out(), meta.modseq),
            Item::Preview { .. } => f.preview(conn.out(), preview_text.as_deref()),
            Item::SaveDate => {
                // RFC 8514 4.2: NIL when the storage has no save date.
                f.item(conn.out(), "SAVEDATE");
                match object.and_then(|o| o.save_date) {
                    Some(d) => write_internal_date(conn.out(), d),
                    None => conn.out().extend_from_slice(b"NIL"),
                }
            }
            Item::EmailId | Item::ThreadId => {
                let (name, id) = match item {
                    Item::EmailId => ("EMAILID", object.map(|o| o.email_id.as_str())),
                    _ => ("THREADID", object.and_then(|o| o.thread_id.as_deref())),
                };
                f.item(conn.out(), name);
                // RFC 8474 5.3: `"(" objectid ")"`, or NIL for a THREADID not tracked. The
                // storage hands out only valid ids; anything else is not sent as one.
                match id.filter(|id| crate::storage::is_object_id(id)) {
                    Some(id) => {
                        conn.out().push(b'(');
                        conn.out().extend_from_slice(id.as_bytes());
                        conn.out().push(b')');
                    }
                    None => conn.out().extend_from_slice(b"NIL"),
                }
            }
            Item::Envelope | Item::Body | Item::BodyStructure => {
                let (name, text, extended) = match item {
                    Item::Envelope => ("ENVELOPE", &st.envelope, None),
                    Item::Body => ("BODY", &st.body, Some(false)),
                    _ => ("BODYSTRUCTURE", &st.bodystructure, Some(true)),
                };
                f.item(conn.out(), name);
                let item_start = conn.out().len();
                match (text, st.info.as_ref(), extended) {
                    (Some(t), _, _) => conn.out().extend_from_slice(t),
                    (None, Some(info), None) => write_envelope(conn.out(), info.envelope()),
                    (None, Some(info), Some(ext)) => write_body(conn.out(), info, ext),
                    (None, None, _) => {
                        conn.out().truncate(start);
                        return Err(StorageError::Corrupt("structure missing".into()).into());
                    }
                }
                if !plan.utf8_accept {
                    // RFC 6855 8: raw UTF-8 header data reaches only clients that enabled it.
                    let kind = match extended {
                        None => downgrade::Kind::Envelope,
                        Some(_) => downgrade::Kind::Body,
                    };
                    downgrade::in_place(conn.out(), item_start, kind);
                }
            }
            Item::Section(section) => {
                let Some(file) = file.as_mut() else {
                    conn.out().truncate(start);
                    return Err(StorageError::Corrupt("message file not opened".into()).into());
                };
                let res = body::write_section(
                    conn,
                    &mut f,
                    section,
                    st.info.as_ref(),
                    file,
                    scratch,
                    &mut committed,
                )
                .await;
                match res {
                    Ok(()) => {}
                    Err(body::SectionError::Before(e)) if !committed => {
                        conn.out().truncate(start);
                        return Err(e.into());
                    }
                    Err(body::SectionError::Before(e)) => {
                        tracing::error!(error = %e, "FETCH failed inside a response");
                        conn.out().clear();
                        return Err(Abort::Disconnect);
                    }
                    Err(body::SectionError::Broken(why)) => {
                        tracing::error!(error = %why, "FETCH body could not be completed");
                        if committed {
                            conn.out().clear();
                        } else {
                            conn.out().truncate(start);
                        }
                        return Err(Abort::Disconnect);
                    }
                }
            }
            Item::Binary(b) | Item::BinarySize(b) => {
                let Some(file) = file.as_ref() else {
                    conn.out().truncate(start);
                    return Err(StorageError::Corrupt("message file not opened".into()).into());
                };
                let res = if matches!(item, Item::Binary(_)) {
                    binary::write_data(
                        &sel.view,
                        conn,
                        &mut f,
                        b,
                        st.info.as_ref(),
                        file,
                        &mut committed,
                    )
                    .await
                } else {
                    binary::write_size(&sel.view, conn, &mut f, b, st.info.as_ref(), file).await
                };
                match res {
                    Ok(()) => {}
                    Err(binary::BinaryError::Before(e)) if !committed => {
                        conn.out().truncate(start);
                        return Err(Abort::Imap(e));
                    }
                    Err(binary::BinaryError::Before(e)) => {
                        tracing::error!(error = ?e, "FETCH BINARY failed inside a response");
                        conn.out().clear();
                        return Err(Abort::Disconnect);
                    }
                    Err(binary::BinaryError::Broken(why)) => {
                        tracing::error!(error = %why, "FETCH BINARY could not be completed");
                        if committed {
                            conn.out().clear();
                        } else {
                            conn.out().truncate(start);
                        }
                        return Err(Abort::Disconnect);
                    }
                }
            }
        }
    }
    if newly_seen && !plan.has_flags {
        // RFC 3501 6.4.5: the \Seen change is reported as part of this response.
        sel.write_flags_of(&mut f, conn.out(), meta);
    }
    f.finish(conn.out());
    Ok(Written::Yes)
}

/// `"dd-Mon-yyyy hh:mm:ss +0000"`: INTERNALDATE is stored as an instant, so it is shown in UTC,
/// with a two-digit day as Dovecot writes it (RFC 3501 allows a space instead; some clients'
/// parsers only accept digits).
pub fn write_internal_date(out: &mut Vec<u8>, ts: i64) {
    let Some(dt) =
        DateTime::from_unix_timestamp(ts, 0).or_else(|| DateTime::from_unix_timestamp(0, 0))
    else {
        out.extend_from_slice(b"\"01-Jan-1970 00:00:00 +0000\"");
        return;
    };
    dt.write_quoted(out, b'0');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_date_has_two_digit_day_in_utc() {
        let mut out = Vec::new();
        write_internal_date(&mut out, 0);
        assert_eq!(out, b"\"01-Jan-1970 00:00:00 +0000\"");
        out.clear();
        // 1996-07-17 09:44:25 UTC (RFC 3501's example instant).
        write_internal_date(&mut out, 837_596_665);
        assert_eq!(out, b"\"17-Jul-1996 09:44:25 +0000\"");
    }
}
