//! The full-text index in a search ([`crate::fts`]): before the metadata stage, the index names
//! the covered messages that may contain each string key; a covered message outside a key's
//! candidates cannot match it, so the metadata stage already answers false for it and the
//! message is never read. Everything else (uncovered messages, short keys, candidates) is decided
//! by the scan as without the index, so results are the same.

use std::collections::HashMap;

use super::program::{Node, Program};
use crate::fts::{FtsIndex, indexer, mailbox_key, trigrams};
use crate::imap::selected::Selected;

/// What the index said about the keys of one search.
pub(crate) struct FtsFilter {
    /// UIDs the index covers, ascending.
    covered: Vec<u32>,
    /// Per casemapped needle: the covered UIDs that may contain it, ascending.
    candidates: HashMap<String, Vec<u32>>,
}

impl FtsFilter {
    /// True when the index shows that message `uid` cannot contain `needle`.
    pub(crate) fn excludes(&self, needle: &str, uid: u32) -> bool {
        self.candidates.get(needle).is_some_and(|c| {
            c.binary_search(&uid).is_err() && self.covered.binary_search(&uid).is_ok()
        })
    }
}

/// The string keys of a program the index can answer (three characters or more).
fn needles<'a>(n: &'a Node, out: &mut Vec<&'a str>) {
    match n {
        Node::And(list) => list.iter().for_each(|c| needles(c, out)),
        Node::Or(a, b) => {
            needles(a, out);
            needles(b, out);
        }
        Node::Not(a) => needles(a, out),
        Node::Body(s) | Node::Text(s) | Node::Header { needle: s, .. }
            if !trigrams(s).is_empty() =>
        {
            out.push(s);
        }
        _ => {}
    }
}

/// Asks the index about `prog`'s string keys and starts the background indexer for the
/// messages it does not cover. `None` (a plain scan) when the program has no such key, the
/// backend keeps no index or the index cannot answer (logged).
pub(crate) async fn prepare(sel: &Selected, prog: &Program) -> Option<FtsFilter> {
    let mut asked = Vec::new();
    needles(&prog.root, &mut asked);
    if asked.is_empty() {
        return None;
    }
    let fts = match sel.view.fts().await {
        Ok(f) => f?,
        Err(e) => {
            tracing::warn!(error = %e, "full-text index unavailable; scanning");
            return None;
        }
    };
    let key = mailbox_key(&sel.view.identity()?, sel.view.uidvalidity());
    let asked: Vec<String> = asked.into_iter().map(str::to_owned).collect();
    let (f, k) = (fts.clone(), key.clone());
    let answer = crate::compute::run(move || lookup(f.as_ref(), &k, asked)).await;
    let filter = match answer {
        Ok(Ok(filter)) => filter,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "full-text index unreadable; scanning");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "full-text lookup failed; scanning");
            return None;
        }
    };
    tracing::debug!(
        covered = filter.covered.len(),
        messages = sel.view.len(),
        "full-text index consulted"
    );
    let todo: Vec<(u32, u64)> = sel
        .view
        .messages()
        .iter()
        .filter(|m| filter.covered.binary_search(&m.uid).is_err())
        .map(|m| (m.uid, m.phys_size))
        .collect();
    // Covered UIDs the view does not have although they are older than it: expunged. (Newer
    // ones were delivered after this view was taken and indexed by another session's search.)
    let uidnext = sel.view.uidnext();
    let gone: Vec<u32> = filter
        .covered
        .iter()
        .copied()
        .filter(|&u| u < uidnext && sel.view.seq_of(u).is_none())
        .collect();
    if !todo.is_empty() || !gone.is_empty() {
        indexer::spawn(indexer::Job {
            handle: sel.view.handle(),
            fts,
            key,
            todo,
            gone,
        });
    }
    Some(filter)
}

fn lookup(fts: &dyn FtsIndex, key: &str, asked: Vec<String>) -> crate::storage::Result<FtsFilter> {
    let covered = fts.covered(key)?;
    let mut candidates = HashMap::new();
    for n in asked {
        if candidates.contains_key(&n) {
            continue;
        }
        if let Some(c) = fts.candidates(key, &n)? {
            candidates.insert(n, c);
        }
    }
    Ok(FtsFilter {
        covered,
        candidates,
    })
}
