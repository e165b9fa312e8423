//! SEARCH and UID SEARCH (RFC 3501 6.4.4) with ESEARCH result options (RFC 4731), the saved
//! result `$` (RFC 5182 SEARCHRES), the CONDSTORE MODSEQ answer item (RFC 7162 3.1.5) and the
//! CONTEXT=SEARCH options (RFC 5267): PARTIAL, UPDATE and the CONTEXT hint.
//!
//! The engine is [`crate::imap::search`]; this file turns its hits into `* SEARCH` or
//! `* ESEARCH`, keeps the saved result and starts update contexts ([`crate::imap::context`]).

use super::Reply;
use crate::imap::context::{Contexts, Refused};
use crate::imap::proto::encode::{self, Code, EsearchData, Status};
use crate::imap::proto::sequence::ResolvedSet;
use crate::imap::proto::types::{PartialRange, SearchKey, SearchReturn, SortCriterion, Tag};
use crate::imap::response::ImapError;
use crate::imap::search::{self, Hit, Program};
use crate::imap::session::Session;
use crate::imap::sort;

/// What the client asked to get back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Returns {
    /// `RETURN (...)` was given: answer with ESEARCH (unless only SAVE was asked).
    extended: bool,
    min: bool,
    max: bool,
    all: bool,
    count: bool,
    save: bool,
    /// `PARTIAL lo:hi` (RFC 5267 4.4).
    partial: Option<PartialRange>,
    /// `UPDATE` (RFC 5267 4.3).
    update: bool,
    /// `RELEVANCY` (RFC 6203 4).
    relevancy: bool,
}

impl Returns {
    /// The options of `RETURN (...)`; a combination RFC 5267 forbids is a BAD.
    fn new(returns: Option<&[SearchReturn]>) -> Result<Returns, ImapError> {
        let Some(list) = returns else {
            return Ok(Returns::default());
        };
        let mut r = Returns {
            extended: true,
            ..Returns::default()
        };
        for o in list {
            match o {
                SearchReturn::Min => r.min = true,
                SearchReturn::Max => r.max = true,
                SearchReturn::All => r.all = true,
                SearchReturn::Count => r.count = true,
                SearchReturn::Save => r.save = true,
                SearchReturn::Partial(range) => {
                    if r.partial.is_some() {
                        return Err(ImapError::Parse("PARTIAL can be used only once."));
                    }
                    r.partial = Some(*range);
                }
                SearchReturn::Update => {
                    if r.update {
                        // As Dovecot: a repeated UPDATE is a client bug.
                        return Err(ImapError::Parse("UPDATE can be used only once."));
                    }
                    r.update = true;
                }
                // RFC 5267 4.2: a hint the server may ignore; mailcove keeps no result cache.
                SearchReturn::Context => {}
                SearchReturn::Relevancy => r.relevancy = true,
            }
        }
        if r.all && r.partial.is_some() {
            // RFC 5267 4.4: "either one PARTIAL, one ALL, or neither PARTIAL nor ALL".
            return Err(ImapError::Parse("PARTIAL and ALL cannot be used together."));
        }
        if !(r.min || r.max || r.all || r.count || r.save || r.partial.is_some() || r.update) {
            // RFC 4731 3.1: `RETURN ()` is `RETURN (ALL)`; so is `RETURN (CONTEXT)` (the hint
            // asks for nothing, as in Dovecot).
            r.all = true;
        }
        Ok(r)
    }

    /// RFC 5182 2.1: SAVE alone answers with the tagged OK only. UPDATE alone still answers
    /// with an ESEARCH that carries only the tag, as Dovecot does: RFC 5267 4.3 gives UPDATE no
    /// interaction with the other options, so nothing else is returned.
    fn sends_esearch(self) -> bool {
        self.min || self.max || self.all || self.count || self.partial.is_some() || self.update
    }

    /// The messages `$` holds afterwards (RFC 5182 2.4): only MIN and/or MAX when those are the
    /// only other options, else everything found.
    fn saved(self, hits: &[Hit]) -> ResolvedSet {
        if (self.min || self.max) && !(self.all || self.count || self.partial.is_some()) {
            let mut uids = Vec::with_capacity(2);
            if let (true, Some(h)) = (self.min, hits.first()) {
                uids.push(h.uid);
            }
            if let (true, Some(h)) = (self.max, hits.last()) {
                uids.push(h.uid);
            }
            return uids.into_iter().collect();
        }
        hits.iter().map(|h| h.uid).collect()
    }
}

/// [UID] SEARCH [RETURN (...)] [CHARSET x] keys.
///
/// After `ENABLE UTF8=ACCEPT` search strings are UTF-8 by definition, and RFC 6855 3 says a
/// SEARCH with a CHARSET SHOULD get `BAD` "due to the conflicting charset labels"; mailcove does
/// that for every CHARSET, UTF-8 included. SORT and THREAD keep their charset argument, which
/// their grammar requires (RFC 5256), and RFC 6855 names only SEARCH.
pub async fn search(
    s: &mut Session,
    tag: &Tag,
    uid: bool,
    returns: Option<&[SearchReturn]>,
    charset: Option<&[u8]>,
    criteria: &SearchKey,
) -> Result<Reply, ImapError> {
    if charset.is_some() && s.enabled.utf8_accept {
        return Err(ImapError::Parse(
            "SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT (RFC 6855 3).",
        ));
    }
    // RFC 9051 6.4.4: an IMAP4rev2 server answers every SEARCH with ESEARCH, and a SEARCH
    // without RETURN is `RETURN (ALL)` (RFC 4731 3.1's `RETURN ()`). A rev1 session keeps the
    // `* SEARCH` response of RFC 3501.
    let rev2_all: &[SearchReturn] = &[];
    let returns = match returns {
        None if s.enabled.imap4rev2 => Some(rev2_all),
        other => other,
    };
    searching(s, tag, uid, returns, charset, criteria, None).await
}

/// [UID] SORT RETURN (...) (criteria) charset keys (RFC 5267 3, ESORT and CONTEXT=SORT): the
/// extended SORT answers like the extended SEARCH, with its results in the sort order (MIN and
/// MAX are the first and last of that order, RFC 5267 3.1). A plain SORT is
/// [`super::sort::sort`].
pub async fn esort(
    s: &mut Session,
    tag: &Tag,
    uid: bool,
    returns: &[SearchReturn],
    order: &[SortCriterion],
    charset: &[u8],
    criteria: &SearchKey,
) -> Result<Reply, ImapError> {
    searching(
        s,
        tag,
        uid,
        Some(returns),
        Some(charset),
        criteria,
        Some(order),
    )
    .await
}

/// The searching commands (RFC 5267 4.1): SEARCH when `order` is `None`, else SORT.
async fn searching(
    s: &mut Session,
    tag: &Tag,
    uid: bool,
    returns: Option<&[SearchReturn]>,
    charset: Option<&[u8]>,
    criteria: &SearchKey,
    order: Option<&[SortCriterion]>,
) -> Result<Reply, ImapError> {
    let want = Returns::new(returns)?;
    if want.relevancy && !has_fuzzy(criteria) {
        // RFC 6203 4: "The RELEVANCY return option MUST NOT be used unless a FUZZY search key
        // is also given." A client breaking a MUST gets BAD, as for the other RETURN rules.
        return Err(ImapError::Parse(
            "RELEVANCY can be used only with a FUZZY search key.",
        ));
    }
    let outcome = {
        let sel = s.selected_mut()?;
        if want.update && sel.contexts.has(tag.as_str()) {
            // RFC 5267 4.3: a tag in use by an updating search may not be reused with UPDATE.
            return Err(ImapError::Parse(
                "Tag reuse: a search with this tag already gets updates.",
            ));
        }
        match Program::compile(criteria, charset, sel).await {
            Ok(prog) => match order {
                None => search::run(sel, &prog).await,
                Some(o) => sort::run(sel, o, &prog).await,
            }
            .map(|hits| (prog, hits)),
            Err(e) => Err(e),
        }
    };
    let outcome = match outcome {
        Ok((prog, hits)) if want.relevancy && want.sends_esearch() => {
            let sel = s.selected_mut()?;
            match search::relevancy(sel, &prog, &hits).await {
                Ok(scores) => Ok((prog, hits, scores)),
                Err(e) => Err(e),
            }
        }
        Ok((prog, hits)) => Ok((prog, hits, Vec::new())),
        Err(e) => Err(e),
    };
    if matches!(&outcome, Ok((prog, ..)) if prog.uses_modseq) {
        // RFC 7162 3.1: SEARCH MODSEQ is a CONDSTORE enabling command.
        s.enable_condstore();
    }
    let (sel, conn) = s.selected_and_conn()?;
    let (prog, hits, scores) = match outcome {
        Ok(done) => done,
        Err(e) => {
            let answer = ImapError::from(e);
            if want.save && !matches!(answer, ImapError::Parse(_)) {
                // RFC 5182 2.1: a SEARCH with SAVE that answers NO empties `$`; BAD keeps it.
                sel.saved = Some(ResolvedSet::default());
            }
            return Err(answer);
        }
    };
    let number = |h: &Hit| if uid { h.uid } else { h.seq };
    let modseq = prog
        .uses_modseq
        .then(|| hits.iter().map(|h| h.modseq).max())
        .flatten();
    let out = conn.out();
    if !want.extended {
        let numbers: Vec<u32> = hits.iter().map(number).collect();
        encode::search(out, &numbers, modseq);
    } else if want.sends_esearch() {
        let mut data = Vec::with_capacity(5);
        if let (true, Some(h)) = (want.min, hits.first()) {
            data.push(EsearchData::Min(number(h)));
        }
        if let (true, Some(h)) = (want.max, hits.last()) {
            data.push(EsearchData::Max(number(h)));
        }
        if want.all && !hits.is_empty() {
            data.push(match order {
                None => EsearchData::All(hits.iter().map(number).collect()),
                Some(_) => EsearchData::AllInOrder(hits.iter().map(number).collect()),
            });
        }
        if let Some(range) = want.partial {
            data.push(EsearchData::Partial(range, partial(&hits, range, number)));
        }
        if want.count {
            data.push(EsearchData::Count(
                u32::try_from(hits.len()).unwrap_or(u32::MAX),
            ));
        }
        if want.relevancy && !hits.is_empty() {
            data.push(EsearchData::Relevancy(scores));
        }
        if let Some(m) = esearch_modseq(want, &hits, modseq) {
            data.push(EsearchData::ModSeq(m));
        }
        encode::esearch(out, Some(tag), uid, &data);
    }
    if want.save {
        sel.saved = Some(want.saved(&hits));
    }
    if want.update {
        let uids = hits.iter().map(|h| h.uid).collect();
        if let Err(why) = Contexts::insert(sel, tag, uid, criteria, charset, order, uids) {
            // RFC 5267 4.3.1: the other options were honoured; say there will be no updates.
            let text = match why {
                Refused::TooMany => "Too many update contexts.",
                Refused::TooComplex => "Search too complex to update.",
            };
            encode::untagged(
                conn.out(),
                Status::No,
                Some(&Code::NoUpdate(tag.as_str().to_string())),
                text,
            );
        }
    }
    Reply::ok(if order.is_some() {
        "Sort completed."
    } else {
        "Search completed."
    })
}

/// True when `key` holds a FUZZY key anywhere (RFC 6203 4's condition for RELEVANCY).
fn has_fuzzy(key: &SearchKey) -> bool {
    match key {
        SearchKey::Fuzzy(_) => true,
        SearchKey::And(keys) => keys.iter().any(has_fuzzy),
        SearchKey::Or(a, b) => has_fuzzy(a) || has_fuzzy(b),
        SearchKey::Not(a) => has_fuzzy(a),
        _ => false,
    }
}

/// The numbers at positions `range` (1-based, inclusive) of `hits`; fewer or none when the
/// range reaches past the end (RFC 5267 4.4).
fn partial(hits: &[Hit], range: PartialRange, number: impl Fn(&Hit) -> u32) -> Vec<u32> {
    let from = usize::try_from(range.lo - 1).unwrap_or(usize::MAX);
    let len = usize::try_from(range.hi - range.lo + 1).unwrap_or(usize::MAX);
    hits.iter().skip(from).take(len).map(number).collect()
}

/// RFC 4731 3.2: the MODSEQ item is the modseq of the single MIN or MAX message, the higher of
/// the two for MIN and MAX, else the highest of all found messages.
fn esearch_modseq(want: Returns, hits: &[Hit], all_max: Option<u64>) -> Option<u64> {
    all_max?;
    if want.all || want.count || want.partial.is_some() {
        return all_max;
    }
    let min = want.min.then(|| hits.first().map(|h| h.modseq)).flatten();
    let max = want.max.then(|| hits.last().map(|h| h.modseq)).flatten();
    min.max(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(uids: &[u32]) -> Vec<Hit> {
        uids.iter()
            .enumerate()
            .map(|(i, &uid)| Hit {
                seq: u32::try_from(i + 1).unwrap_or(0),
                uid,
                modseq: u64::from(uid) * 10,
            })
            .collect()
    }

    #[test]
    fn saved_value_follows_rfc5182_table() {
        use SearchReturn as R;
        let h = hits(&[2, 10, 11, 12, 21]);
        let saved = |opts: &[R]| {
            Returns::new(Some(opts))
                .expect("valid options")
                .saved(&h)
                .iter()
                .collect::<Vec<u32>>()
        };
        assert_eq!(saved(&[R::Save, R::Min]), vec![2]);
        assert_eq!(saved(&[R::Max, R::Save]), vec![21]);
        assert_eq!(saved(&[R::Max, R::Save, R::Min]), vec![2, 21]);
        assert_eq!(
            saved(&[R::Max, R::Save, R::Min, R::Count]),
            vec![2, 10, 11, 12, 21]
        );
        assert_eq!(saved(&[R::All, R::Save, R::Min]), vec![2, 10, 11, 12, 21]);
        assert_eq!(saved(&[R::Save]), vec![2, 10, 11, 12, 21]);
        assert!(Returns::new(Some(&[])).expect("empty").all);
        assert!(
            !Returns::new(Some(&[R::Save]))
                .expect("save")
                .sends_esearch()
        );
        assert!(!Returns::new(None).expect("none").extended);
    }

    #[test]
    fn esearch_modseq_picks_per_rfc4731() {
        use SearchReturn as R;
        let h = hits(&[2, 10, 5]);
        let m = |opts: &[R]| esearch_modseq(Returns::new(Some(opts)).expect("opts"), &h, Some(100));
        assert_eq!(m(&[R::Min]), Some(20));
        assert_eq!(m(&[R::Max]), Some(50));
        assert_eq!(m(&[R::Min, R::Max]), Some(50));
        assert_eq!(m(&[R::Min, R::Count]), Some(100));
        assert_eq!(
            esearch_modseq(Returns::new(Some(&[R::Min])).expect("min"), &h, None),
            None
        );
    }
}
