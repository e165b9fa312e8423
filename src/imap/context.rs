//! Live search contexts (RFC 5267 4.3, CONTEXT=SEARCH): the searches a client ran with
//! `RETURN (UPDATE)`, kept while the mailbox stays selected, and the `ADDTO`/`REMOVEFROM`
//! updates they produce as the mailbox changes.
//!
//! # How updates are found
//!
//! A context keeps its search key, with every message sequence number and `$` turned into the
//! UIDs they meant when the command ran (RFC 5267 4.3: "any message sequence numbers used in the
//! search program are evaluated at the time the command is received"), and its current result as
//! UIDs. The contexts of a session share one watermark: the highest UID and highest modseq they
//! have looked at. Every flag change raises a message's modseq, whoever made it (this session's
//! STORE or FETCH of `BODY[]`, or another session), and every new message has a higher UID, so
//! the messages above the watermark are exactly the ones whose match may have changed. Only those
//! are searched again (the key is ANDed with `UID <them>`: the metadata stage rejects the rest
//! without reading anything), as RFC 5267 Appendix B suggests. Expunged messages leave the
//! results through [`Contexts::before_expunge`], which must run before the EXPUNGE (or
//! VANISHED) responses so that sequence numbers are still valid (RFC 5267 4.3.4).
//!
//! Like Dovecot, updates use context position 0 (allowed for SEARCH, RFC 5267 4.3.3) and one
//! `* ESEARCH` line per context with `REMOVEFROM` before `ADDTO`.
//!
//! Memory: at most [`MAX_UPDATE_CONTEXTS`] contexts, each holding a key that was already accepted
//! by the parser's limits and one UID per matching message; all are dropped when the mailbox is
//! closed or another one is selected (they live in [`Selected`]).

use crate::imap::proto::encode::{self, EsearchData};
use crate::imap::proto::sequence::{ResolvedSet, SeqNum, SequenceSet, SequenceSetItem};
use crate::imap::proto::types::{SearchKey, SortCriterion, Tag};
use crate::imap::search::{self, Program};
use crate::imap::selected::Selected;
use crate::imap::sort;
use crate::limits::{MAX_SEQUENCE_SET_RANGES, MAX_UPDATE_CONTEXTS};
use crate::storage::{Delta, View};
use std::num::NonZeroU32;

/// One searching command that asked for updates.
#[derive(Debug)]
pub struct UpdateContext {
    /// The searching command's tag: the correlator of its ESEARCH updates.
    tag: Tag,
    /// Updates in UIDs (UID SEARCH) rather than sequence numbers.
    uid: bool,
    /// The search key, sequence numbers and `$` already turned into UIDs.
    key: SearchKey,
    /// The command's CHARSET.
    charset: Option<Vec<u8>>,
    /// The sort criteria of a SORT context (CONTEXT=SORT); `None` for SEARCH (mailbox order).
    order: Option<Vec<SortCriterion>>,
    /// The UIDs that match now, in the requested order (ascending for SEARCH).
    result: Vec<u32>,
}

/// The live contexts of the selected mailbox.
#[derive(Debug, Default)]
pub struct Contexts {
    list: Vec<UpdateContext>,
    /// Highest UID every context has looked at.
    seen_uid: u32,
    /// Highest modseq every context has looked at.
    seen_modseq: u64,
}

/// Why a context could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_UPDATE_CONTEXTS`] are live already.
    TooMany,
    /// The key's message numbers would not fit in a UID set of bounded size.
    TooComplex,
}

impl Contexts {
    /// True when no context is live (the common case: nothing to do after a change).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// True when a live context has this tag (RFC 5267 4.3: reusing it is a BAD).
    pub fn has(&self, tag: &str) -> bool {
        self.list.iter().any(|c| c.tag.as_str() == tag)
    }

    /// Adds a context for the searching command `tag` whose current result is `uids`, in the
    /// order of `order` (a SORT) or ascending (a SEARCH).
    ///
    /// `key` is pinned to UIDs against `sel`'s view here; `sel` must be the view the search ran
    /// on, with nothing refreshed in between.
    pub fn insert(
        sel: &mut Selected,
        tag: &Tag,
        uid: bool,
        key: &SearchKey,
        charset: Option<&[u8]>,
        order: Option<&[SortCriterion]>,
        uids: Vec<u32>,
    ) -> Result<(), Refused> {
        if sel.contexts.list.len() >= MAX_UPDATE_CONTEXTS {
            return Err(Refused::TooMany);
        }
        let key = pin(key, sel).ok_or(Refused::TooComplex)?;
        let (last_uid, top_modseq) = watermark(&sel.view);
        let contexts = &mut sel.contexts;
        if contexts.list.is_empty() {
            contexts.seen_uid = last_uid;
            contexts.seen_modseq = top_modseq;
        }
        contexts.list.push(UpdateContext {
            tag: tag.clone(),
            uid,
            key,
            charset: charset.map(<[u8]>::to_vec),
            order: order.map(<[SortCriterion]>::to_vec),
            result: uids,
        });
        Ok(())
    }

    /// CANCELUPDATE: drops the contexts of `tags`, in order. As Dovecot, it stops at the first
    /// tag that names no context and returns it (the ones before it are cancelled).
    pub fn cancel<'a>(&mut self, tags: &'a [Vec<u8>]) -> Result<(), &'a [u8]> {
        for t in tags {
            let before = self.list.len();
            self.list
                .retain(|c| c.tag.as_str().as_bytes() != t.as_slice());
            if self.list.len() == before {
                return Err(t);
            }
        }
        Ok(())
    }

    /// Writes `REMOVEFROM` for results that `delta` expunged and forgets them. Call after the
    /// view was refreshed and before the delta's EXPUNGE/VANISHED responses are written.
    pub fn before_expunge(&mut self, view: &View, delta: &Delta, out: &mut Vec<u8>) {
        if self.list.is_empty() || delta.expunged_uids.is_empty() {
            return;
        }
        let gone = &delta.expunged_uids;
        // The sequence number of `u` before any of the expunges: the messages that remain below
        // it plus the expunged ones below it. New messages have higher UIDs and do not count.
        let old_seq = |u: u32| {
            let below_kept = view.messages().rank(u);
            let below_gone = gone.partition_point(|g| *g < u);
            u32::try_from(below_kept + below_gone + 1).unwrap_or(u32::MAX)
        };
        for c in &mut self.list {
            let number = |u: u32| if c.uid { u } else { old_seq(u) };
            let is_gone = |u: &u32| gone.binary_search(u).is_ok();
            let pairs = if c.order.is_some() {
                removals(&c.result, is_gone, number)
            } else {
                let removed: Vec<u32> = c
                    .result
                    .iter()
                    .copied()
                    .filter(is_gone)
                    .map(number)
                    .collect();
                if removed.is_empty() {
                    Vec::new()
                } else {
                    vec![(0, removed)]
                }
            };
            if pairs.is_empty() {
                continue;
            }
            c.result.retain(|u| !is_gone(u));
            write_update(out, &c.tag, c.uid, pairs, Vec::new());
        }
    }
}

/// REMOVEFROM pairs for a sorted result (RFC 5267 4.3.4): each removed message at its context
/// position, counted after the removals before it; neighbours share one pair.
fn removals(
    result: &[u32],
    is_gone: impl Fn(&u32) -> bool,
    number: impl Fn(u32) -> u32,
) -> Vec<(u32, Vec<u32>)> {
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut kept = 0u32;
    for u in result {
        if !is_gone(u) {
            kept += 1;
            continue;
        }
        let at = kept + 1;
        match pairs.last_mut() {
            Some((p, list)) if *p == at => list.push(number(*u)),
            _ => pairs.push((at, vec![number(*u)])),
        }
    }
    pairs
}

/// ADDTO pairs for a sorted result (RFC 5267 4.3.3): walking the new order, each message not in
/// the old result (`is_new`) is inserted at its position; neighbours share one pair.
fn insertions(
    now: &[u32],
    is_new: impl Fn(&u32) -> bool,
    number: impl Fn(u32) -> Option<u32>,
) -> Vec<(u32, Vec<u32>)> {
    let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
    for (i, u) in now.iter().enumerate() {
        if !is_new(u) {
            continue;
        }
        let Some(n) = number(*u) else { continue };
        let at = u32::try_from(i + 1).unwrap_or(u32::MAX);
        match pairs.last_mut() {
            Some((p, list))
                if u32::try_from(list.len())
                    .ok()
                    .and_then(|l| p.checked_add(l))
                    == Some(at) =>
            {
                list.push(n)
            }
            _ => pairs.push((at, vec![n])),
        }
    }
    pairs
}

/// Brings every context of `sel` up to date with its view and writes the ADDTO/REMOVEFROM
/// updates. Cheap when nothing changed since the last call. Call wherever the client may be told
/// FETCH and EXISTS responses: after a refresh's responses, and after this session's own
/// changes (STORE, FETCH setting `\Seen`).
pub async fn update(sel: &mut Selected, out: &mut Vec<u8>) {
    if sel.contexts.is_empty() {
        return;
    }
    let (seen_uid, seen_modseq) = (sel.contexts.seen_uid, sel.contexts.seen_modseq);
    // The view's HIGHESTMODSEQ rises with every flag change it takes in (its own STORE and a
    // refresh alike): when it and the last UID are where they were, no message can have changed.
    if sel.view.highest_modseq() <= seen_modseq
        && sel.view.messages().last_uid().unwrap_or(0) <= seen_uid
    {
        return;
    }
    let mut candidates = Vec::new();
    let (mut top_uid, mut top_modseq) = (seen_uid, seen_modseq);
    for m in sel.view.messages().iter() {
        if m.uid > seen_uid || m.modseq > seen_modseq {
            candidates.push(m.uid);
        }
        top_uid = top_uid.max(m.uid);
        top_modseq = top_modseq.max(m.modseq);
    }
    if candidates.is_empty() {
        sel.contexts.seen_uid = top_uid;
        sel.contexts.seen_modseq = top_modseq;
        return;
    }
    let restriction = uid_key(&ResolvedSet::from_iter(candidates.iter().copied()));
    let mut contexts = std::mem::take(&mut sel.contexts);
    let mut complete = true;
    for c in &mut contexts.list {
        let key = match &restriction {
            Some(r) => SearchKey::And(vec![r.clone(), c.key.clone()]),
            // Too many scattered candidates for one UID set: search everything.
            None => c.key.clone(),
        };
        let found = match Program::compile(&key, c.charset.as_deref(), sel).await {
            Ok(prog) => search::run(sel, &prog).await,
            Err(e) => Err(e),
        };
        let hits = match found {
            Ok(hits) => hits,
            Err(e) => {
                // Try again at the next change; the watermark stays where it was.
                tracing::warn!(error = %e, tag = %c.tag, "search update failed");
                complete = false;
                continue;
            }
        };
        let now: Vec<u32> = hits.iter().map(|h| h.uid).collect();
        let (removed, added) = match &c.order {
            None => diff(&c.result, &candidates, &now),
            Some(_) => {
                let mut old = c.result.clone();
                old.sort_unstable();
                diff(&old, &candidates, &now)
            }
        };
        if removed.is_empty() && added.is_empty() {
            continue;
        }
        let uid = c.uid;
        let Some(order) = &c.order else {
            let number = |u: u32| if uid { Some(u) } else { sel.view.seq_of(u) };
            c.result.retain(|u| removed.binary_search(u).is_err());
            c.result.extend_from_slice(&added);
            c.result.sort_unstable();
            c.result.dedup();
            let removed: Vec<u32> = removed.iter().filter_map(|u| number(*u)).collect();
            let added: Vec<u32> = added.iter().filter_map(|u| number(*u)).collect();
            let pair = |list: Vec<u32>| {
                if list.is_empty() {
                    Vec::new()
                } else {
                    vec![(0, list)]
                }
            };
            write_update(out, &c.tag, c.uid, pair(removed), pair(added));
            continue;
        };
        // The membership changed: the new order comes from sorting again (sort keys never
        // change, so the messages that stay keep their order among themselves).
        let sorted = match Program::compile(&c.key, c.charset.as_deref(), sel).await {
            Ok(prog) => sort::run(sel, order, &prog).await,
            Err(e) => Err(e),
        };
        let now: Vec<u32> = match sorted {
            Ok(hits) => hits.iter().map(|h| h.uid).collect(),
            Err(e) => {
                tracing::warn!(error = %e, tag = %c.tag, "sort update failed");
                complete = false;
                continue;
            }
        };
        let number = |u: u32| if uid { Some(u) } else { sel.view.seq_of(u) };
        let mut now_sorted = now.clone();
        now_sorted.sort_unstable();
        let mut old_sorted = c.result.clone();
        old_sorted.sort_unstable();
        let removes = removals(
            &c.result,
            |u| now_sorted.binary_search(u).is_err(),
            |u| number(u).unwrap_or(u),
        );
        let adds = insertions(&now, |u| old_sorted.binary_search(u).is_err(), number);
        c.result = now;
        write_update(out, &c.tag, c.uid, removes, adds);
    }
    if complete {
        contexts.seen_uid = top_uid;
        contexts.seen_modseq = top_modseq;
    }
    // A context cancelled meanwhile cannot exist (this runs inside one command), so the list is
    // put back as it is.
    sel.contexts = contexts;
}

/// `(removed, added)`, both ascending: candidates that were in `result` and are not in `now`,
/// and those in `now` that were not in `result`. `now` holds only matches among the candidates
/// (or of the whole mailbox, when no restriction was used), ascending.
fn diff(result: &[u32], candidates: &[u32], now: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut removed = Vec::new();
    let mut added = Vec::new();
    for &u in candidates {
        let was = result.binary_search(&u).is_ok();
        let is = now.binary_search(&u).is_ok();
        match (was, is) {
            (true, false) => removed.push(u),
            (false, true) => added.push(u),
            _ => {}
        }
    }
    (removed, added)
}

/// `* ESEARCH (TAG "t") [UID] [REMOVEFROM (...)] [ADDTO (...)]`, nothing when both are empty.
fn write_update(
    out: &mut Vec<u8>,
    tag: &Tag,
    uid: bool,
    removed: Vec<(u32, Vec<u32>)>,
    added: Vec<(u32, Vec<u32>)>,
) {
    let mut data = Vec::with_capacity(2);
    if !removed.is_empty() {
        data.push(EsearchData::RemoveFrom(removed));
    }
    if !added.is_empty() {
        data.push(EsearchData::AddTo(added));
    }
    if !data.is_empty() {
        encode::esearch(out, Some(tag), uid, &data);
    }
}

/// The highest UID and the highest modseq in `view`.
fn watermark(view: &View) -> (u32, u64) {
    view.messages()
        .iter()
        .fold((0, 0), |(u, m), meta| (u.max(meta.uid), m.max(meta.modseq)))
}

/// `UID set` for a set of UIDs; `NOT ALL` for none; `None` when the set has more ranges than a
/// parsed sequence set may.
fn uid_key(set: &ResolvedSet) -> Option<SearchKey> {
    if set.is_empty() {
        return Some(SearchKey::Not(Box::new(SearchKey::All)));
    }
    if set.ranges().len() > MAX_SEQUENCE_SET_RANGES {
        return None;
    }
    let items = set
        .ranges()
        .iter()
        .filter_map(|r| {
            let a = NonZeroU32::new(*r.start())?;
            let b = NonZeroU32::new(*r.end())?;
            Some(SequenceSetItem::Range(SeqNum::Value(a), SeqNum::Value(b)))
        })
        .collect();
    SequenceSet::new(items).map(SearchKey::Uid)
}

/// `key` with every message-number set and `$` replaced by the UIDs they name in `sel` now, and
/// UID sets resolved (`*` is the highest UID now). `None` when a set gets too large.
fn pin(key: &SearchKey, sel: &Selected) -> Option<SearchKey> {
    use SearchKey as K;
    let list = sel.view.messages();
    Some(match key {
        K::SequenceSet(set) => {
            let uids: ResolvedSet = if set.uses_saved() {
                sel.saved.clone().unwrap_or_default()
            } else {
                // Messages a..b are the UIDs uid(a)..uid(b): a UID between them that is not in
                // the mailbox now never will be (new messages get higher UIDs), so each range of
                // numbers stays one range of UIDs, however sparse the UIDs are.
                let exists = sel.view.len();
                let uid_at = |seq: u32| {
                    let i = usize::try_from(seq.checked_sub(1)?).ok()?;
                    list.get(i).map(|m| m.uid)
                };
                let ranges = set
                    .resolve(exists, None)
                    .ranges()
                    .iter()
                    .filter_map(|r| Some(uid_at(*r.start())?..=uid_at((*r.end()).min(exists))?))
                    .collect();
                ResolvedSet::from_ranges(ranges)
            };
            uid_key(&uids)?
        }
        K::Uid(set) => uid_key(&set.resolve(list.last_uid().unwrap_or(0), sel.saved.as_ref()))?,
        K::And(keys) => K::And(keys.iter().map(|k| pin(k, sel)).collect::<Option<_>>()?),
        K::Not(k) => K::Not(Box::new(pin(k, sel)?)),
        K::Or(a, b) => K::Or(Box::new(pin(a, sel)?), Box::new(pin(b, sel)?)),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_looks_only_at_candidates() {
        // Result 2,5,9; candidates 5,9,12; 9 and 12 match now.
        let (removed, added) = diff(&[2, 5, 9], &[5, 9, 12], &[9, 12]);
        assert_eq!(removed, vec![5]);
        assert_eq!(added, vec![12]);
        // A full search (no restriction) matches 2 too: it is no candidate, so no change.
        let (removed, added) = diff(&[2, 5, 9], &[5, 9, 12], &[2, 9, 12]);
        assert_eq!((removed, added), (vec![5], vec![12]));
    }

    #[test]
    fn uid_keys() {
        assert_eq!(
            uid_key(&ResolvedSet::default()),
            Some(SearchKey::Not(Box::new(SearchKey::All)))
        );
        let k = uid_key(&[3u32, 4, 5, 9].into_iter().collect());
        let Some(SearchKey::Uid(set)) = k else {
            panic!("{k:?}");
        };
        assert_eq!(set.items().len(), 2);
        assert_eq!(
            set.resolve(100, None).iter().collect::<Vec<_>>(),
            [3, 4, 5, 9]
        );
    }

    #[test]
    fn sorted_removals_and_insertions_count_positions_as_they_are_applied() {
        let id = |u: u32| u;
        // 5 4 6 2 without 4 and 6: both at position 2, one pair.
        let gone = |set: &'static [u32]| move |u: &u32| set.contains(u);
        assert_eq!(
            removals(&[5, 4, 6, 2], gone(&[4, 6]), id),
            [(2, vec![4, 6])]
        );
        // Without 5 and 6: 5 at 1, then 6 at 2 of "4 6 2".
        assert_eq!(
            removals(&[5, 4, 6, 2], gone(&[5, 6]), id),
            [(1, vec![5]), (2, vec![6])]
        );
        assert!(removals(&[5, 4], gone(&[]), id).is_empty());
        // New order 7 5 6 2 9 where 7, 6 and 9 are new: inserted at 1, 3 and 5.
        let some = |u: u32| Some(u);
        assert_eq!(
            insertions(&[7, 5, 6, 2, 9], gone(&[7, 6, 9]), some),
            [(1, vec![7]), (3, vec![6]), (5, vec![9])]
        );
        assert_eq!(
            insertions(&[1, 2, 3], gone(&[1, 2]), some),
            [(1, vec![1, 2])]
        );
    }

    #[test]
    fn write_update_puts_removefrom_first() {
        let mut out = Vec::new();
        let tag = Tag::new(b"B1").expect("tag");
        write_update(
            &mut out,
            &tag,
            true,
            vec![(0, vec![4])],
            vec![(0, vec![7, 8])],
        );
        write_update(&mut out, &tag, false, Vec::new(), Vec::new());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "* ESEARCH (TAG \"B1\") UID REMOVEFROM (0 4) ADDTO (0 7:8)\r\n"
        );
    }
}
