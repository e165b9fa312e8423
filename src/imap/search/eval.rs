//! Running a compiled program over the view: three-valued evaluation in metadata, header and
//! body stages (see the module docs of [`super`]).

use std::sync::Arc;

use bytes::Bytes;

use super::fts::FtsFilter;
use super::program::{FuzzyField, Node, Program, SearchError};
use super::source::{Loaded, SEARCH_HEADER_CACHE, cache_blob};
use crate::imap::selected::Selected;
use crate::imap::workers::{by_bytes, join_all, read_and_compute, shares};
use crate::limits::{
    MAX_HEADER_BYTES, MAX_SEARCH_MESSAGE_BYTES, READ_PIECE_BYTES, SEARCH_BATCH, SEARCH_WORKERS,
};
use crate::storage::{MessageMeta, ReadPart};

/// One matching message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Sequence number in the view.
    pub seq: u32,
    /// UID.
    pub uid: u32,
    /// Modseq (for the RFC 7162 MODSEQ answer item).
    pub modseq: u64,
}

/// What one evaluation may look at.
struct Msg<'a> {
    seq: u32,
    meta: &'a MessageMeta,
    recent: bool,
    data: Option<&'a Loaded>,
    /// What the full-text index said ([`super::fts`]), in the metadata stage.
    fts: Option<&'a FtsFilter>,
}

const SECS_PER_DAY: i64 = 86_400;

/// `Some(answer)`, or `None` when the data this stage has cannot decide.
fn eval(n: &Node, m: &Msg<'_>) -> Option<bool> {
    match n {
        Node::Const(b) => Some(*b),
        Node::And(list) => {
            let mut unknown = false;
            for c in list {
                match eval(c, m) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => unknown = true,
                }
            }
            (!unknown).then_some(true)
        }
        Node::Or(a, b) => match (eval(a, m), eval(b, m)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
        Node::Not(a) => eval(a, m).map(|b| !b),
        Node::System { flag, set } => Some(m.meta.flags.system.contains(*flag) == *set),
        Node::Keyword { mask, set } => Some(m.meta.flags.keywords.intersects(mask) == *set),
        Node::Recent(want) => Some(m.recent == *want),
        Node::Seq(set) => Some(set.contains(m.seq)),
        Node::Uid(set) => Some(set.contains(m.meta.uid)),
        // No date read: the message is gone.
        Node::Internal { cmp, day, dates } | Node::Saved { cmp, day, dates } => Some(
            (dates.get(m.meta.uid)).is_some_and(|d| cmp.test(d.div_euclid(SECS_PER_DAY), *day)),
        ),
        // RFC 5032: OLDER matches at or before the target second, YOUNGER at or after it.
        Node::Within {
            older,
            target,
            dates,
        } => Some(
            dates
                .get(m.meta.uid)
                .is_some_and(|d| if *older { d <= *target } else { d >= *target }),
        ),
        Node::Larger(n) => Some(m.meta.virt_size > *n),
        Node::Smaller(n) => Some(m.meta.virt_size < *n),
        Node::ModSeq(n) => Some(m.meta.modseq >= *n),
        Node::ObjectId { uids, .. } => Some(uids.binary_search(&m.meta.uid).is_ok()),
        Node::Sent(cmp, day) => {
            let sent = m.data?.sent_day()?;
            Some(sent.is_some_and(|s| cmp.test(s, *day)))
        }
        Node::Header { needle, .. } | Node::Body(needle) | Node::Text(needle)
            if m.fts.is_some_and(|f| f.excludes(needle, m.meta.uid)) =>
        {
            Some(false)
        }
        Node::Header { name, needle } => m.data?.header_matches(name, needle),
        Node::Body(needle) => {
            let body = m.data?.body()?;
            Some(body.contains(needle.as_str()))
        }
        Node::Text(needle) => {
            let d = m.data?;
            if d.header_text()?.contains(needle.as_str()) {
                return Some(true);
            }
            if d.body()?.contains(needle.as_str()) {
                return Some(true);
            }
            d.part_headers().map(|h| h.contains(needle.as_str()))
        }
        Node::Fuzzy { field, key } => Some(fuzzy_score(field, key, m.data?)?.is_some()),
    }
}

/// A fuzzy key's score on `d` (`Some(None)`: no match), `None` when `d` cannot tell. TEXT waits
/// for the whole message so that its score always counts header and body alike.
fn fuzzy_score(field: &FuzzyField, key: &super::fuzzy::Fuzzy, d: &Loaded) -> Option<Option<u8>> {
    match field {
        FuzzyField::Header(name) => {
            let values = d.header_values(name)?;
            Some(key.score(values.iter().map(String::as_str)))
        }
        FuzzyField::Body => Some(key.score([d.body()?])),
        FuzzyField::Text => {
            let body = d.body()?;
            Some(key.score([d.header_text()?, body, d.part_headers()?]))
        }
    }
}

/// The relevancy of a message that matched (RFC 6203 4): the lowest score of the FUZZY string
/// keys it matches (outside NOT); 100 when it matched none (FUZZY only on non-string keys).
fn relevancy_of(n: &Node, d: &Loaded) -> u8 {
    match n {
        Node::And(list) => list.iter().map(|c| relevancy_of(c, d)).min().unwrap_or(100),
        Node::Or(a, b) => relevancy_of(a, d).min(relevancy_of(b, d)),
        Node::Fuzzy { field, key } => fuzzy_score(field, key, d).flatten().unwrap_or(100),
        _ => 100,
    }
}

/// RELEVANCY scores (1..=100) of `hits` of `prog`, in their order: each message is read again
/// (whole, up to [`MAX_SEARCH_MESSAGE_BYTES`]) in pieces of [`READ_PIECE_BYTES`]. A message
/// expunged meanwhile scores 1.
pub async fn relevancy(
    sel: &Selected,
    prog: &Program,
    hits: &[Hit],
) -> Result<Vec<u8>, SearchError> {
    let sizes: std::collections::HashMap<u32, u64> = (sel.view.messages().iter())
        .map(|m| (m.uid, m.phys_size.min(MAX_SEARCH_MESSAGE_BYTES as u64)))
        .collect();
    let uids: Vec<u32> = hits.iter().map(|h| h.uid).collect();
    let part = ReadPart::Whole {
        cap: MAX_SEARCH_MESSAGE_BYTES,
    };
    let pieces = by_bytes(uids, READ_PIECE_BYTES, |u| {
        sizes.get(u).copied().unwrap_or(0)
    });
    let root = Arc::new(prog.root.clone());
    // Scoring tokenizes whole messages: off the async threads, one piece while the next is read.
    let stage = move |_: Vec<u32>, raws: Vec<Option<Bytes>>| {
        raws.into_iter()
            .map(|raw| match raw {
                Some(raw) => relevancy_of(&root, &Loaded::message(Vec::from(raw))).max(1),
                None => 1,
            })
            .collect::<Vec<u8>>()
    };
    let mut out = Vec::with_capacity(hits.len());
    for scores in read_and_compute(&sel.view, pieces, |u: &u32| *u, part, stage).await? {
        out.extend(scores);
    }
    Ok(out)
}

fn hit(seq: u32, meta: &MessageMeta) -> Hit {
    Hit {
        seq,
        uid: meta.uid,
        modseq: meta.modseq,
    }
}

/// Runs `prog` over every message of the view `sel` it was compiled against; hits come in
/// ascending sequence (and so UID) order.
pub async fn run(sel: &Selected, prog: &Program) -> Result<Vec<Hit>, SearchError> {
    let mut hits = Vec::new();
    let mut undecided: Vec<Pending> = Vec::new();
    let mut shared: Option<Arc<Program>> = None;
    let index = super::fts::prepare(sel, prog).await;
    for (i, meta) in sel.view.messages().iter().enumerate() {
        let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        // As FETCH FLAGS shows it: never for an IMAP4rev2 session (RFC 9051 2.3.2).
        let recent = sel.shows_recent(meta.uid);
        let m = Msg {
            seq,
            meta,
            recent,
            data: None,
            fts: index.as_ref(),
        };
        match eval(&prog.root, &m) {
            Some(true) => hits.push(hit(seq, meta)),
            Some(false) => {}
            None => {
                undecided.push(Pending {
                    seq,
                    meta: meta.clone(),
                    recent,
                });
                if undecided.len() >= SEARCH_BATCH {
                    let p = shared.get_or_insert_with(|| Arc::new(prog.clone()));
                    deep(sel, p, std::mem::take(&mut undecided), &mut hits).await?;
                }
            }
        }
    }
    if !undecided.is_empty() {
        let p = shared.get_or_insert_with(|| Arc::new(prog.clone()));
        deep(sel, p, undecided, &mut hits).await?;
    }
    hits.sort_unstable_by_key(|h| h.seq);
    Ok(hits)
}

/// A message the metadata stage left undecided.
#[derive(Clone)]
struct Pending {
    seq: u32,
    meta: MessageMeta,
    recent: bool,
}

impl Pending {
    fn eval(&self, prog: &Program, data: &Loaded) -> Option<bool> {
        eval(
            &prog.root,
            &Msg {
                seq: self.seq,
                meta: &self.meta,
                recent: self.recent,
                data: Some(data),
                fts: None,
            },
        )
    }
}

/// What a worker found for one message it read.
enum Found {
    Hit(Hit),
    /// The message does not match, but its header was read: this is its cache entry.
    Cache(u32, Bytes),
    /// A hit whose header was read: its cache entry too.
    HitCache(Hit, Bytes),
}

/// The header and body stages for a batch of messages the metadata could not decide: cached
/// headers first, then the rest read from storage and evaluated in [`SEARCH_WORKERS`] lanes
/// side by side.
async fn deep(
    sel: &Selected,
    prog: &Arc<Program>,
    batch: Vec<Pending>,
    hits: &mut Vec<Hit>,
) -> Result<(), SearchError> {
    let cached = if prog.needs.cacheable {
        let uids: Vec<u32> = batch.iter().map(|p| p.meta.uid).collect();
        match sel.view.cache_get(&uids, SEARCH_HEADER_CACHE).await {
            Ok(c) => c,
            Err(e) => {
                // The cache only saves work; without it the files are read.
                tracing::warn!(error = %e, "search header cache unreadable");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    // (message, header already evaluated from the cache)
    let mut to_read: Vec<(Pending, bool)> = Vec::new();
    for (k, p) in batch.into_iter().enumerate() {
        let from_cache = cached
            .get(k)
            .and_then(Option::clone)
            .and_then(Loaded::from_cache);
        match from_cache {
            Some(header) => match p.eval(prog, &header) {
                Some(true) => hits.push(hit(p.seq, &p.meta)),
                Some(false) => {}
                None => to_read.push((p, true)),
            },
            None => to_read.push((p, false)),
        }
    }
    if to_read.is_empty() {
        return Ok(());
    }
    let mut workers = Vec::with_capacity(SEARCH_WORKERS);
    let body = prog.needs.body;
    for share in shares(to_read, SEARCH_WORKERS, |(p, _)| search_cost(p, body)) {
        workers.push(read_share(sel, prog.clone(), share));
    }
    let mut to_cache: Vec<(u32, Bytes)> = Vec::new();
    for found in join_all(workers).await {
        for f in found? {
            match f {
                Found::Hit(h) => hits.push(h),
                Found::Cache(uid, blob) => to_cache.push((uid, blob)),
                Found::HitCache(h, blob) => {
                    to_cache.push((h.uid, blob));
                    hits.push(h);
                }
            }
        }
    }
    if !to_cache.is_empty()
        && let Err(e) = sel.view.cache_put(SEARCH_HEADER_CACHE, to_cache).await
    {
        tracing::warn!(error = %e, "search header cache not written");
    }
    Ok(())
}

/// Estimated cost of reading and evaluating one whole message, in units of
/// [`BODY_BYTES_PER_UNIT`] bytes: opening, parsing the header and decoding a small text body.
const MESSAGE_COST_UNITS: u64 = 2048;
/// Bytes of a message read for BODY/TEXT that cost about one unit (most of a large message is
/// an attachment that is read and scanned for boundaries, not decoded).
const BODY_BYTES_PER_UNIT: u64 = 4;

/// Estimated work of reading and evaluating one message, for [`shares`]: when only headers
/// are read, every message costs the same.
fn search_cost(p: &Pending, body: bool) -> u64 {
    if body {
        let read = p.meta.phys_size.min(MAX_SEARCH_MESSAGE_BYTES as u64);
        MESSAGE_COST_UNITS + read / BODY_BYTES_PER_UNIT
    } else {
        1
    }
}

/// Reads and evaluates one share of messages: where header keys are asked and the header is not
/// known yet, the headers first (a message they decide is done); then the messages still
/// undecided whole. Reads go to storage in pieces bounded by the sizes the view knows
/// ([`READ_PIECE_BYTES`] of messages, [`MAX_HEADER_BYTES`] of headers; one message at least),
/// each piece evaluated in one `compute::run` call while the next is read.
async fn read_share(
    sel: &Selected,
    prog: Arc<Program>,
    jobs: Vec<(Pending, bool)>,
) -> Result<Vec<Found>, SearchError> {
    let mut found = Vec::new();
    let header_first = prog.needs.header && prog.needs.header_keys;
    let (headers, rest): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .partition(|(_, header_done)| header_first && !header_done);
    let mut whole: Vec<(Pending, Option<Bytes>)> =
        rest.into_iter().map(|(p, _)| (p, None)).collect();
    // A header is at most MAX_HEADER_BYTES, usually a few KiB: pieces of that many bytes by the
    // messages' sizes hold one long header at worst and a hundred typical ones.
    let header_size = |p: &Pending| p.meta.phys_size.min(MAX_HEADER_BYTES as u64);
    let pieces = by_bytes(headers, MAX_HEADER_BYTES as u64, |(p, _)| header_size(p));
    let p = prog.clone();
    let stage = move |piece: Vec<(Pending, bool)>, raws: Vec<Option<Bytes>>| {
        let mut done = Vec::new();
        let mut undecided = Vec::new();
        for ((m, _), raw) in piece.into_iter().zip(raws) {
            // Expunged under the view: it cannot match.
            let Some(raw) = raw else { continue };
            match header_stage(&p, &m, Vec::from(raw)) {
                Ok(f) => done.extend(f),
                Err(blob) => undecided.push((m, blob)),
            }
        }
        (done, undecided)
    };
    let uid = |(p, _): &(Pending, bool)| p.meta.uid;
    for (done, undecided) in
        read_and_compute(&sel.view, pieces, uid, ReadPart::Header, stage).await?
    {
        found.extend(done);
        whole.extend(undecided);
    }
    let cap = MAX_SEARCH_MESSAGE_BYTES;
    let whole_size = |p: &Pending| p.meta.phys_size.min(cap as u64);
    let pieces = by_bytes(whole, READ_PIECE_BYTES, |(p, _)| whole_size(p));
    let stage = move |piece: Vec<(Pending, Option<Bytes>)>, raws: Vec<Option<Bytes>>| {
        piece
            .into_iter()
            .zip(raws)
            .filter_map(|((m, blob), raw)| body_stage(&prog, &m, blob, Vec::from(raw?)))
            .collect::<Vec<_>>()
    };
    let uid = |(p, _): &(Pending, Option<Bytes>)| p.meta.uid;
    let part = ReadPart::Whole { cap };
    for done in read_and_compute(&sel.view, pieces, uid, part, stage).await? {
        found.extend(done);
    }
    Ok(found)
}

/// What a stage found for a message, and the header cache entry made on the way.
fn found(p: &Pending, is_hit: bool, blob: Option<Bytes>) -> Option<Found> {
    match (is_hit, blob) {
        (true, Some(b)) => Some(Found::HitCache(hit(p.seq, &p.meta), b)),
        (true, None) => Some(Found::Hit(hit(p.seq, &p.meta))),
        (false, Some(b)) => Some(Found::Cache(p.meta.uid, b)),
        (false, None) => None,
    }
}

/// The header stage of one message from its header block: what it found when the header
/// decides (or nothing else is asked), else `Err` with the cache entry made, for the body stage.
fn header_stage(prog: &Program, p: &Pending, raw: Vec<u8>) -> Result<Option<Found>, Option<Bytes>> {
    let blob = if prog.needs.cacheable {
        cache_blob(&raw)
    } else {
        None
    };
    let answer = p.eval(prog, &Loaded::header(raw));
    if answer.is_some() || !prog.needs.body {
        Ok(found(p, answer == Some(true), blob))
    } else {
        Err(blob)
    }
}

/// The body stage of one message from its bytes (up to the cap).
fn body_stage(prog: &Program, p: &Pending, blob: Option<Bytes>, raw: Vec<u8>) -> Option<Found> {
    let whole = Loaded::message(raw);
    found(p, p.eval(prog, &whole) == Some(true), blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::search::program::Cmp;
    use crate::storage::{Flags, InternalDate, InternalDates, KeywordSet, SystemFlags};

    fn meta() -> MessageMeta {
        MessageMeta {
            uid: 7,
            flags: Flags {
                system: SystemFlags::SEEN,
                keywords: KeywordSet::from_iter([1]),
            },
            modseq: 5,
            phys_size: 100,
            virt_size: 104,
            internal_date: InternalDate::NOT_READ,
        }
    }

    fn ev(n: &Node, data: Option<&Loaded>) -> Option<bool> {
        let meta = meta();
        eval(
            n,
            &Msg {
                seq: 3,
                meta: &meta,
                recent: false,
                data,
                fts: None,
            },
        )
    }

    fn pending(seq: u32, phys_size: u64) -> (Pending, bool) {
        let mut m = meta();
        m.uid = seq;
        m.phys_size = phys_size;
        (
            Pending {
                seq,
                meta: m,
                recent: false,
            },
            false,
        )
    }

    #[test]
    fn shares_balance_work_and_keep_every_message_once_in_order() {
        let sizes = [5000u64, 9_000_000, 4000, 6000, 3000, 7000, 8000, 2000];
        let jobs: Vec<_> = (1u32..).zip(sizes).map(|(i, s)| pending(i, s)).collect();
        let split = shares(jobs.clone(), 2, |(p, _)| search_cost(p, true));
        assert_eq!(split.len(), 2);
        // The large message alone on one worker, all the small ones on the other.
        let seqs: Vec<Vec<u32>> = split
            .iter()
            .map(|s| s.iter().map(|(p, _)| p.seq).collect())
            .collect();
        assert!(seqs.contains(&vec![2]), "{seqs:?}");
        assert!(seqs.contains(&vec![1, 3, 4, 5, 6, 7, 8]), "{seqs:?}");
        // Header-only work: counts differ by at most one.
        let split = shares(jobs.clone(), 2, |(p, _)| search_cost(p, false));
        let lens: Vec<usize> = split.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![4, 4]);
        for share in &split {
            assert!(share.windows(2).all(|w| w[0].0.seq < w[1].0.seq));
        }
        // More workers than messages, and nothing at all.
        assert_eq!(
            shares(jobs[..1].to_vec(), 2, |(p, _)| search_cost(p, true)).len(),
            1
        );
        assert!(
            shares(Vec::<(Pending, bool)>::new(), 2, |(p, _)| search_cost(
                p, true
            ))
            .is_empty()
        );
    }

    #[test]
    fn metadata_keys_decide_without_data() {
        use Node as N;
        assert_eq!(ev(&N::Larger(103), None), Some(true));
        assert_eq!(ev(&N::Larger(104), None), Some(false));
        assert_eq!(ev(&N::Smaller(105), None), Some(true));
        assert_eq!(ev(&N::Smaller(104), None), Some(false));
        let day = crate::imap::proto::types::Date::new(1994, 2, 8)
            .map(|d| d.days_since_epoch())
            .unwrap_or_default();
        // 1994-02-08 05:52:25 UTC, as View::internal_dates read it for UID 7.
        let dates = std::sync::Arc::new(InternalDates::from_iter([(7, 760_686_745)]));
        let internal = |cmp, day| N::Internal {
            cmp,
            day,
            dates: dates.clone(),
        };
        assert_eq!(ev(&internal(Cmp::On, day), None), Some(true));
        assert_eq!(ev(&internal(Cmp::Before, day), None), Some(false));
        assert_eq!(ev(&internal(Cmp::Since, day), None), Some(true));
        assert_eq!(ev(&internal(Cmp::Before, day + 1), None), Some(true));
        // A message whose date could not be read (gone) matches no date key.
        let none = |cmp| N::Internal {
            cmp,
            day,
            dates: std::sync::Arc::default(),
        };
        assert_eq!(ev(&none(Cmp::Since), None), Some(false));
        assert_eq!(ev(&N::Not(Box::new(none(Cmp::Before))), None), Some(true));
        // WITHIN: exact to the second, both ends inclusive (RFC 5032 section 2).
        let within = |older, target| N::Within {
            older,
            target,
            dates: dates.clone(),
        };
        for (older, target, want) in [
            (true, 760_686_745, true),
            (true, 760_686_744, false),
            (true, 760_686_746, true),
            (false, 760_686_745, true),
            (false, 760_686_746, false),
            (false, 760_686_744, true),
        ] {
            assert_eq!(
                ev(&within(older, target), None),
                Some(want),
                "{older} {target}"
            );
        }
        let gone = N::Within {
            older: true,
            target: i64::MAX,
            dates: std::sync::Arc::default(),
        };
        assert_eq!(ev(&gone, None), Some(false));
        assert_eq!(
            ev(
                &N::Keyword {
                    mask: KeywordSet::from_iter([1, 700]),
                    set: true
                },
                None
            ),
            Some(true)
        );
        assert_eq!(
            ev(
                &N::Keyword {
                    mask: KeywordSet::from_iter([0, 700]),
                    set: true
                },
                None
            ),
            Some(false)
        );
        assert_eq!(ev(&N::ModSeq(5), None), Some(true));
        assert_eq!(ev(&N::ModSeq(6), None), Some(false));
    }

    #[test]
    fn three_valued_logic_short_circuits() {
        use Node as N;
        let unknown = N::Body("x".into());
        assert_eq!(ev(&unknown, None), None);
        // AND with a false key is false without the body; with only true keys it stays unknown.
        let and = N::And(vec![unknown.clone(), N::Const(false)]);
        assert_eq!(ev(&and, None), Some(false));
        let and = N::And(vec![unknown.clone(), N::Const(true)]);
        assert_eq!(ev(&and, None), None);
        let or = N::Or(Box::new(unknown.clone()), Box::new(N::Const(true)));
        assert_eq!(ev(&or, None), Some(true));
        let or = N::Or(Box::new(unknown.clone()), Box::new(N::Const(false)));
        assert_eq!(ev(&or, None), None);
        assert_eq!(ev(&N::Not(Box::new(unknown)), None), None);
        // A header-only load cannot answer BODY, but TEXT found in the header is decided.
        let h = Loaded::header(b"Subject: Hello World\r\n\r\n".to_vec());
        assert_eq!(ev(&N::Body("HELLO".into()), Some(&h)), None);
        assert_eq!(ev(&N::Text("HELLO".into()), Some(&h)), Some(true));
        assert_eq!(ev(&N::Text("ABSENT".into()), Some(&h)), None);
        let whole = Loaded::message(b"Subject: Hello\r\n\r\nBody Words\r\n".to_vec());
        assert_eq!(ev(&N::Text("BODY WORDS".into()), Some(&whole)), Some(true));
        assert_eq!(ev(&N::Text("ABSENT".into()), Some(&whole)), Some(false));
    }

    #[test]
    fn header_keys_match_decoded_substrings_and_presence() {
        use Node as N;
        let h = Loaded::header(
            b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.de>\r\nX-Empty:\r\n\r\n".to_vec(),
        );
        let key = |name: &[u8], s: &str| N::Header {
            name: name.to_vec(),
            needle: crate::mime::casemap::casemap(s),
        };
        assert_eq!(ev(&key(b"FROM", "JÖRG"), Some(&h)), Some(true));
        assert_eq!(ev(&key(b"from", "=?utf-8"), Some(&h)), Some(false));
        assert_eq!(ev(&key(b"X-Empty", ""), Some(&h)), Some(true));
        assert_eq!(ev(&key(b"X-Missing", ""), Some(&h)), Some(false));
        assert_eq!(ev(&N::Sent(Cmp::On, 0), Some(&h)), Some(false));
    }
}
