//! Running a compiled program over the view: three-valued evaluation in metadata, header and
//! body stages (see the module docs of [`super`]).

use bytes::Bytes;

use super::program::{Node, Program, SearchError};
use super::source::{Loaded, SEARCH_HEADER_CACHE, cache_blob, open, read_message};
use crate::imap::selected::Selected;
use crate::limits::SEARCH_BATCH;
use crate::storage::{MessageFile, MessageMeta, StorageError};

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
        Node::Keyword { mask, set } => Some((m.meta.flags.keywords.0 & mask != 0) == *set),
        Node::Recent(want) => Some(m.recent == *want),
        Node::Seq(set) => Some(set.contains(m.seq)),
        Node::Uid(set) => Some(set.contains(m.meta.uid)),
        // A date still unknown after resolving: the message is gone.
        Node::Internal(cmp, day) => Some(
            m.meta.date_known() && cmp.test(m.meta.internal_date.div_euclid(SECS_PER_DAY), *day),
        ),
        Node::Larger(n) => Some(m.meta.virt_size > *n),
        Node::Smaller(n) => Some(m.meta.virt_size < *n),
        Node::ModSeq(n) => Some(m.meta.modseq >= *n),
        Node::Sent(cmp, day) => {
            let d = m.data?;
            Some(d.sent_day().is_some_and(|s| cmp.test(s, *day)))
        }
        Node::Header { name, needle } => {
            let d = m.data?;
            Some(
                d.values(name)
                    .iter()
                    .any(|v| needle.is_empty() || v.to_lowercase().contains(needle.as_str())),
            )
        }
        Node::Body(needle) => {
            let body = m.data?.body()?;
            Some(body.contains(needle.as_str()))
        }
        Node::Text(needle) => {
            let d = m.data?;
            if d.header_text().contains(needle.as_str()) {
                return Some(true);
            }
            d.body().map(|b| b.contains(needle.as_str()))
        }
    }
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
    let mut undecided: Vec<(u32, MessageMeta)> = Vec::new();
    for (i, meta) in sel.view.messages().iter().enumerate() {
        let seq = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let m = Msg {
            seq,
            meta,
            recent: sel.view.is_recent(meta.uid),
            data: None,
        };
        match eval(&prog.root, &m) {
            Some(true) => hits.push(hit(seq, meta)),
            Some(false) => {}
            None => {
                undecided.push((seq, *meta));
                if undecided.len() >= SEARCH_BATCH {
                    deep(sel, prog, &undecided, &mut hits).await?;
                    undecided.clear();
                }
            }
        }
    }
    if !undecided.is_empty() {
        deep(sel, prog, &undecided, &mut hits).await?;
    }
    hits.sort_unstable_by_key(|h| h.seq);
    Ok(hits)
}

/// The header and body stages for a batch of messages the metadata could not decide.
async fn deep(
    sel: &Selected,
    prog: &Program,
    batch: &[(u32, MessageMeta)],
    hits: &mut Vec<Hit>,
) -> Result<(), SearchError> {
    let cached = if prog.needs.cacheable {
        let uids: Vec<u32> = batch.iter().map(|(_, m)| m.uid).collect();
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
    let mut to_cache: Vec<(u32, Bytes)> = Vec::new();
    for (k, (seq, meta)) in batch.iter().enumerate() {
        let recent = sel.view.is_recent(meta.uid);
        let mut file: Option<MessageFile> = None;
        if prog.needs.header {
            let from_cache = cached
                .get(k)
                .and_then(Option::as_deref)
                .and_then(Loaded::from_cache);
            let header = match from_cache {
                Some(h) => h,
                None => {
                    let Some(mut f) = open(sel, meta.uid).await? else {
                        continue;
                    };
                    let raw = f.header().await?;
                    if prog.needs.cacheable
                        && let Some(blob) = cache_blob(&raw)
                    {
                        to_cache.push((meta.uid, blob));
                    }
                    file = Some(f);
                    Loaded::header(raw)
                }
            };
            let m = Msg {
                seq: *seq,
                meta,
                recent,
                data: Some(&header),
            };
            match eval(&prog.root, &m) {
                Some(true) => {
                    hits.push(hit(*seq, meta));
                    continue;
                }
                Some(false) => continue,
                None => {}
            }
        }
        if !prog.needs.body {
            // Unreachable for a well-formed program: without body keys the header decides.
            continue;
        }
        let mut f = match file {
            Some(f) => f,
            None => match open(sel, meta.uid).await? {
                Some(f) => f,
                None => continue,
            },
        };
        let raw = read_message(&mut f).await?;
        drop(f);
        // Parsing and decoding up to MAX_SEARCH_MESSAGE_BYTES is CPU work of milliseconds; it
        // runs off the async workers so other sessions on the same thread are not held up.
        let whole = tokio::task::spawn_blocking(move || Loaded::message(raw))
            .await
            .map_err(|e| StorageError::Temporary(format!("search worker failed: {e}")))?;
        let m = Msg {
            seq: *seq,
            meta,
            recent,
            data: Some(&whole),
        };
        if eval(&prog.root, &m) == Some(true) {
            hits.push(hit(*seq, meta));
        }
    }
    if !to_cache.is_empty()
        && let Err(e) = sel.view.cache_put(SEARCH_HEADER_CACHE, to_cache).await
    {
        tracing::warn!(error = %e, "search header cache not written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::search::program::Cmp;
    use crate::storage::{Flags, KeywordSet, SystemFlags};

    fn meta() -> MessageMeta {
        MessageMeta {
            uid: 7,
            flags: Flags {
                system: SystemFlags::SEEN,
                keywords: KeywordSet(0b10),
            },
            modseq: 5,
            phys_size: 100,
            virt_size: 104,
            // 1994-02-08 05:52:25 UTC
            internal_date: 760_686_745,
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
            },
        )
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
        assert_eq!(ev(&N::Internal(Cmp::On, day), None), Some(true));
        assert_eq!(ev(&N::Internal(Cmp::Before, day), None), Some(false));
        assert_eq!(ev(&N::Internal(Cmp::Since, day), None), Some(true));
        assert_eq!(ev(&N::Internal(Cmp::Before, day + 1), None), Some(true));
        assert_eq!(
            ev(
                &N::Keyword {
                    mask: 0b10,
                    set: true
                },
                None
            ),
            Some(true)
        );
        assert_eq!(
            ev(
                &N::Keyword {
                    mask: 0b01,
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
        assert_eq!(ev(&N::Body("hello".into()), Some(&h)), None);
        assert_eq!(ev(&N::Text("hello".into()), Some(&h)), Some(true));
        assert_eq!(ev(&N::Text("absent".into()), Some(&h)), None);
        let whole = Loaded::message(b"Subject: Hello\r\n\r\nBody Words\r\n".to_vec());
        assert_eq!(ev(&N::Text("body words".into()), Some(&whole)), Some(true));
        assert_eq!(ev(&N::Text("absent".into()), Some(&whole)), Some(false));
    }

    #[test]
    fn header_keys_match_decoded_substrings_and_presence() {
        use Node as N;
        let h = Loaded::header(
            b"From: =?UTF-8?Q?J=C3=B6rg?= <j@example.de>\r\nX-Empty:\r\n\r\n".to_vec(),
        );
        let key = |name: &[u8], s: &str| N::Header {
            name: name.to_vec(),
            needle: s.to_lowercase(),
        };
        assert_eq!(ev(&key(b"FROM", "JÖRG"), Some(&h)), Some(true));
        assert_eq!(ev(&key(b"from", "=?utf-8"), Some(&h)), Some(false));
        assert_eq!(ev(&key(b"X-Empty", ""), Some(&h)), Some(true));
        assert_eq!(ev(&key(b"X-Missing", ""), Some(&h)), Some(false));
        assert_eq!(ev(&N::Sent(Cmp::On, 0), Some(&h)), Some(false));
    }
}
