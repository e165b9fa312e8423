//! The selected mailbox of a session: the storage view (sequence numbers, UIDs, flags), turning
//! client sequence sets into UIDs, converting flags between the protocol and storage, and writing
//! the untagged updates a refresh produced.

use std::sync::Arc;

use super::context::{self, Contexts};
use super::proto::encode::{self, Code, FetchResponse, Status};
use super::proto::sequence::{ResolvedSet, SequenceSet};
use super::proto::types::{Atom, Flag};
use super::response::ImapError;
use super::session::Enabled;
use crate::storage::{Delta, Flags, KeywordSet, MessageMeta, SystemFlags, Vanished, View};

/// The selected mailbox.
pub struct Selected {
    /// The session's picture of the mailbox.
    pub view: View,
    /// Its name as storage knows it (UTF-8, wire separator).
    pub name: String,
    /// The result of the last `SEARCH RETURN (SAVE)`, as UIDs (RFC 5182 `$`).
    pub saved: Option<ResolvedSet>,
    /// Searches that asked for updates (RFC 5267 `RETURN (UPDATE)`); they end with the selection.
    pub contexts: Contexts,
    /// Selected by an IMAP4rev2 session (RFC 9051): `\Recent` is never shown. Fixed for the
    /// selection, since ENABLE IMAP4rev2 is refused while a mailbox is selected.
    pub imap4rev2: bool,
}

impl Selected {
    /// Wraps a freshly opened view.
    pub fn new(view: View, name: String) -> Self {
        Selected {
            view,
            name,
            saved: None,
            contexts: Contexts::default(),
            imap4rev2: false,
        }
    }

    /// True for EXAMINE.
    pub fn read_only(&self) -> bool {
        self.view.read_only()
    }

    /// Resolves a client set to the UIDs of existing messages, in ascending order.
    ///
    /// For sequence numbers, a number beyond EXISTS is a client error (RFC 3501 9, Dovecot answers
    /// BAD); `*` is the last message. For UIDs, numbers that do not exist are simply skipped, and
    /// `*` is the highest UID (RFC 3501 6.4.8: `n:*` always includes the last message).
    pub fn uids(&self, set: &SequenceSet, uid: bool) -> Result<Vec<u32>, ImapError> {
        if set.uses_saved() && set.items().len() > 1 {
            // RFC 5182 2.1: `$` stands for a whole set and cannot be combined with others.
            return Err(ImapError::Parse(
                "$ cannot be combined with other sequence set items.",
            ));
        }
        let list = self.view.messages();
        if uid {
            let star = list.last_uid().unwrap_or(0);
            let saved = self.saved.as_ref();
            let resolved = set.resolve(star, saved);
            let mut out = Vec::new();
            for r in resolved.ranges() {
                let (lo, hi) = (*r.start(), *r.end());
                let from = list.rank(lo);
                out.extend(
                    list.iter_from(from)
                        .take_while(|m| m.uid <= hi)
                        .map(|m| m.uid),
                );
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        } else {
            let exists = self.view.len();
            if set.uses_saved() {
                // `$` holds UIDs; as a sequence set it means the messages with those UIDs.
                let saved = self.saved.clone().unwrap_or_default();
                let mut out: Vec<u32> = saved
                    .iter()
                    .filter(|u| list.position(*u).is_some())
                    .collect();
                out.sort_unstable();
                return Ok(out);
            }
            if exists == 0 && set.uses_star() {
                // `1:*` on an empty mailbox names nothing; answering BAD would break clients.
                return Ok(Vec::new());
            }
            if set.max_explicit().is_some_and(|m| m > exists) {
                return Err(ImapError::BadSequence);
            }
            let resolved = set.resolve(exists, None);
            let mut out = Vec::new();
            for r in resolved.ranges() {
                let (Ok(lo), Ok(hi)) = (usize::try_from(*r.start()), usize::try_from(*r.end()))
                else {
                    continue;
                };
                let from = lo.saturating_sub(1);
                let n = hi.saturating_sub(from);
                out.extend(list.iter_from(from).take(n).map(|m| m.uid));
            }
            out.sort_unstable();
            out.dedup();
            Ok(out)
        }
    }

    /// `(sequence number, meta)` of each UID still in the view, ascending.
    pub fn metas(&self, uids: &[u32]) -> Vec<(u32, MessageMeta)> {
        let mut cursor = self.view.messages().cursor();
        uids.iter()
            .filter_map(|&u| {
                let (i, m) = cursor.find(u)?;
                Some((u32::try_from(i + 1).ok()?, m.clone()))
            })
            .collect()
    }

    /// Writes the `FLAGS (...)` item of a message, `\Recent` included when it is recent for
    /// this session (without collecting the flags: FETCH writes it for every message).
    pub fn write_flags_of(&self, f: &mut FetchResponse, out: &mut Vec<u8>, meta: &MessageMeta) {
        f.flags(
            out,
            protocol_flag_iter(&meta.flags, self.view.keywords()),
            self.shows_recent(meta.uid),
        );
    }

    /// True when `\Recent` goes into this message's FLAGS: recent for this session, and the
    /// session is IMAP4rev1 (RFC 9051 2.3.2 deprecates `\Recent`; rev2 never sees it).
    pub fn shows_recent(&self, uid: u32) -> bool {
        !self.imap4rev2 && self.view.is_recent(uid)
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS]` for the mailbox's keyword table.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let mut flags = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        flags.extend(
            self.view
                .keywords()
                .iter()
                .filter_map(|k| Atom::new(k.as_bytes()).map(Flag::Keyword)),
        );
        encode::flags(out, &flags);
        if self.read_only() {
            encode::untagged(
                out,
                Status::Ok,
                Some(&Code::PermanentFlags(Vec::new(), false)),
                "Read-only mailbox.",
            );
        } else {
            encode::untagged(
                out,
                Status::Ok,
                Some(&Code::PermanentFlags(
                    flags,
                    self.view.can_create_keywords(),
                )),
                "Flags permitted.",
            );
        }
    }

    /// Writes the untagged responses of a refresh, in the order RFC 3501 7 wants: EXPUNGE (each
    /// number valid when sent) or, once QRESYNC is enabled, one VANISHED (RFC 7162 3.2.10),
    /// EXISTS, RECENT, FLAGS if keywords appeared, FETCH FLAGS of messages others changed (with
    /// MODSEQ once CONDSTORE is enabled, RFC 7162 3.1.4.2).
    pub fn write_delta(&self, out: &mut Vec<u8>, delta: &Delta, enabled: Enabled) {
        if enabled.qresync {
            if !delta.expunged_uids.is_empty() {
                let uids: ResolvedSet = delta.expunged_uids.iter().copied().collect();
                encode::vanished(out, false, &uids);
            }
        } else {
            for seq in &delta.expunged {
                encode::expunge(out, *seq);
            }
        }
        if let Some(n) = delta.exists {
            encode::exists(out, n);
            // RECENT goes with new mail only, as Dovecot sends it: after an expunge the client
            // already knows which of its recent messages are gone.
            if let Some(n) = delta.recent
                && !enabled.imap4rev2
            {
                encode::recent(out, n);
            }
        }
        if delta.keywords_changed {
            self.write_flags(out);
        }
        for seq in &delta.flag_changes {
            if let Some(meta) = self.view.get(*seq) {
                self.write_changed(out, *seq, meta, enabled.condstore);
            }
        }
    }

    /// [`Selected::write_delta`] with the updates of the live search contexts around it (RFC 5267
    /// 4.3.2): REMOVEFROM for expunged results before the EXPUNGEs, ADDTO and REMOVEFROM for new
    /// and changed messages after the EXISTS and FETCH responses.
    pub async fn write_changes(&mut self, out: &mut Vec<u8>, delta: &Delta, enabled: Enabled) {
        self.contexts.before_expunge(&self.view, delta, out);
        self.write_delta(out, delta, enabled);
        context::update(self, out).await;
    }

    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])`: a message whose flags changed, as told
    /// unsolicited, after a QRESYNC SELECT and after STORE (RFC 7162 3.2.4: UID and MODSEQ in
    /// every such response once CONDSTORE is enabled).
    pub fn write_changed(&self, out: &mut Vec<u8>, seq: u32, meta: &MessageMeta, modseq: bool) {
        let mut f = FetchResponse::start(out, seq);
        f.uid(out, meta.uid);
        self.write_flags_of(&mut f, out, meta);
        if modseq {
            f.modseq(out, meta.modseq);
        }
        f.finish(out);
    }

    /// The UIDs in `within` that were expunged with a mod-sequence above `since` (RFC 7162
    /// 3.2.5.1, 3.2.6), limited to UIDs below UIDNEXT.
    ///
    /// Storage remembers the expunges of a bounded window ([`View::vanished_since`]); within it
    /// the answer is exact. Further back it answers as RFC 7162 3.2.5.2 allows a server that
    /// remembers nothing: every UID of `within` that is not in the mailbox. Nothing at all when
    /// nothing changed since `since` (every expunge takes a new mod-sequence, so the mailbox's
    /// HIGHESTMODSEQ would be above it).
    pub async fn vanished(
        &self,
        since: u64,
        within: &ResolvedSet,
    ) -> Result<ResolvedSet, ImapError> {
        if since >= self.view.highest_modseq() {
            return Ok(ResolvedSet::default());
        }
        let below_next = within.clamped(self.view.uidnext().saturating_sub(1));
        Ok(match self.view.vanished_since(since).await? {
            Vanished::Exact(uids) => uids
                .into_iter()
                .filter(|u| below_next.contains(*u))
                .collect(),
            Vanished::Unknown => absent_from(&below_next, self.view.messages()),
        })
    }
}

/// The numbers of `set` that are not UIDs in `list`, as ranges (no per-UID work for the gaps).
fn absent_from(set: &ResolvedSet, list: &crate::storage::MessageList) -> ResolvedSet {
    let mut gaps = Vec::new();
    for r in set.ranges() {
        let (lo, hi) = (*r.start(), *r.end());
        let mut next = u64::from(lo);
        for m in list.iter_from(list.rank(lo)).take_while(|m| m.uid <= hi) {
            if u64::from(m.uid) > next
                && let Ok(from) = u32::try_from(next)
            {
                gaps.push(from..=m.uid - 1);
            }
            next = u64::from(m.uid) + 1;
        }
        if next <= u64::from(hi)
            && let Ok(from) = u32::try_from(next)
        {
            gaps.push(from..=hi);
        }
    }
    ResolvedSet::from_ranges(gaps)
}

/// Storage flags to protocol flags (system flags first, then keywords by table index).
pub fn protocol_flags(flags: &Flags, keywords: &Arc<[String]>) -> Vec<Flag> {
    protocol_flag_iter(flags, keywords).collect()
}

/// [`protocol_flags`] one at a time.
fn protocol_flag_iter<'a>(
    flags: &'a Flags,
    keywords: &'a Arc<[String]>,
) -> impl Iterator<Item = Flag> + 'a {
    let s = flags.system;
    let system = [
        (SystemFlags::ANSWERED, Flag::Answered),
        (SystemFlags::FLAGGED, Flag::Flagged),
        (SystemFlags::DELETED, Flag::Deleted),
        (SystemFlags::SEEN, Flag::Seen),
        (SystemFlags::DRAFT, Flag::Draft),
    ]
    .into_iter()
    .filter_map(move |(bit, f)| s.contains(bit).then_some(f));
    system.chain(keyword_flags(&flags.keywords, keywords))
}

fn keyword_flags<'a>(
    set: &'a KeywordSet,
    table: &'a Arc<[String]>,
) -> impl Iterator<Item = Flag> + 'a {
    set.iter()
        .filter_map(|i| table.get(i))
        .filter_map(|k| Atom::new(k.as_bytes()).map(Flag::Keyword))
}

/// Protocol flags to storage system flags and keyword names. `\Recent` and unknown `\Flags`
/// cannot be stored (RFC 3501 2.3.2).
pub fn storage_flags(flags: &[Flag]) -> Result<(SystemFlags, Vec<String>), ImapError> {
    let mut system = SystemFlags::EMPTY;
    let mut keywords = Vec::new();
    for f in flags {
        match f {
            Flag::Answered => system = system.union(SystemFlags::ANSWERED),
            Flag::Flagged => system = system.union(SystemFlags::FLAGGED),
            Flag::Deleted => system = system.union(SystemFlags::DELETED),
            Flag::Seen => system = system.union(SystemFlags::SEEN),
            Flag::Draft => system = system.union(SystemFlags::DRAFT),
            Flag::Recent => return Err(ImapError::BadFlag("\\Recent cannot be set")),
            Flag::Extension(_) => return Err(ImapError::BadFlag("unknown system flag")),
            Flag::Keyword(k) => {
                if !keywords
                    .iter()
                    .any(|x: &String| x.eq_ignore_ascii_case(k.as_str()))
                {
                    keywords.push(k.as_str().to_string());
                }
            }
        }
    }
    Ok((system, keywords))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{InternalDate, MessageList};

    fn list(uids: &[u32]) -> MessageList {
        MessageList::from_sorted(uids.iter().map(|&uid| MessageMeta {
            uid,
            flags: Flags::default(),
            modseq: 1,
            phys_size: 1,
            virt_size: 1,
            internal_date: InternalDate::NOT_READ,
        }))
    }

    fn ranges(set: &ResolvedSet) -> Vec<(u32, u32)> {
        set.ranges()
            .iter()
            .map(|r| (*r.start(), *r.end()))
            .collect()
    }

    #[test]
    fn absent_uids_are_the_gaps_of_each_range() {
        let l = list(&[3, 6, 9, 10]);
        let all = ResolvedSet::from_ranges(vec![1..=12]);
        assert_eq!(
            ranges(&absent_from(&all, &l)),
            [(1, 2), (4, 5), (7, 8), (11, 12)]
        );
        // Ranges that start or end on a present UID, and one with nothing present.
        let some = ResolvedSet::from_ranges(vec![3..=6, 9..=10, 20..=21]);
        assert_eq!(ranges(&absent_from(&some, &l)), [(4, 5), (20, 21)]);
        // The empty mailbox: everything asked about is absent.
        assert_eq!(ranges(&absent_from(&all, &list(&[]))), [(1, 12)]);
        // The top of the UID space does not overflow.
        let top = ResolvedSet::from_ranges(vec![u32::MAX - 2..=u32::MAX]);
        assert_eq!(
            ranges(&absent_from(&top, &list(&[u32::MAX]))),
            [(u32::MAX - 2, u32::MAX - 1)]
        );
        assert!(absent_from(&top, &list(&[u32::MAX - 2, u32::MAX - 1, u32::MAX])).is_empty());
    }
}
