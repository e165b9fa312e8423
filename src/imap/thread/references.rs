//! REFERENCES (RFC 5256 section 3) and REFS (Dovecot's variant, see the module above).
//!
//! Nodes are messages and dummies (Message-IDs that were referenced but are not among the
//! searched messages), kept in arrays indexed by node number; a hash map finds the node of a
//! Message-ID. Step 1 keeps only parent pointers and child counts; the child lists are built once
//! the links are final.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::limits::MAX_THREAD_LINK_WALK;

use super::{ThreadMessage, ThreadNode, ThreadTree, date_key, index_u32};

/// "No node" / "a dummy" in the `u32` arrays.
const NONE: u32 = u32::MAX;

/// Threads `msgs` (in mailbox order) with RFC 5256 REFERENCES.
pub fn references<R: AsRef<str>>(msgs: &[ThreadMessage<'_, R>]) -> ThreadTree {
    let mut f = Forest::build(msgs);
    // (4) Sort the top level by sent date, a dummy by its first child's. Every other set of
    // siblings is sorted now too (step 6's work): step 5 reads a dummy's first child, and below
    // the top level nothing changes afterwards.
    f.sort_all_children();
    f.sort_roots_by_first();
    // (5) Merge threads with the same base subject.
    f.merge_subjects();
    // (6) Sort every set of siblings; only the top level and the lists step 5 extended changed.
    let roots = f.roots.clone();
    for r in roots {
        f.sort_children(r);
    }
    f.sort_roots_by_first();
    f.into_tree()
}

/// Threads `msgs` (in mailbox order) with Dovecot's REFS: REFERENCES without the subject merge,
/// the threads ordered by the sent date of their latest message.
pub fn refs<R: AsRef<str>>(msgs: &[ThreadMessage<'_, R>]) -> ThreadTree {
    let mut f = Forest::build(msgs);
    f.sort_all_children();
    f.sort_roots_by_latest();
    f.into_tree()
}

/// Step 1's links: parent pointers, child counts (to skip the loop walk for childless nodes) and
/// the message of each node.
struct Links {
    /// Index into the messages, or [`NONE`] for a dummy.
    msg: Vec<u32>,
    parent: Vec<u32>,
    child_count: Vec<u32>,
}

impl Links {
    fn with_capacity(n: usize) -> Links {
        Links {
            msg: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
            child_count: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, msg: u32) -> u32 {
        let n = index_u32(self.msg.len());
        self.msg.push(msg);
        self.parent.push(NONE);
        self.child_count.push(0);
        n
    }

    fn parent(&self, n: u32) -> u32 {
        self.parent.get(slot(n)).copied().unwrap_or(NONE)
    }

    /// True when `a` is `x` or one of `x`'s ancestors, i.e. making `a` a child of `x` would close
    /// a loop.
    ///
    /// The walk up from `x` stops after [`MAX_THREAD_LINK_WALK`] ancestors and then answers
    /// true, so the link is not made: a mailbox crafted with long chains and many late links
    /// would otherwise cost a walk of the whole chain per message (quadratic). A real thread is
    /// never that deep; a message below such a chain starts a thread of its own.
    fn is_ancestor_or_self(&self, a: u32, mut x: u32) -> bool {
        if a != x && self.child_count.get(slot(a)).is_none_or(|&c| c == 0) {
            return false;
        }
        for _ in 0..MAX_THREAD_LINK_WALK {
            if x == NONE {
                return false;
            }
            if x == a {
                return true;
            }
            x = self.parent(x);
        }
        true
    }

    /// Makes `child` a child of `parent` unless that closes a loop. `child` must have no parent.
    fn link(&mut self, parent: u32, child: u32) {
        if self.is_ancestor_or_self(child, parent) {
            return;
        }
        if let Some(p) = self.parent.get_mut(slot(child)) {
            *p = parent;
        }
        if let Some(c) = self.child_count.get_mut(slot(parent)) {
            *c += 1;
        }
    }

    fn unlink(&mut self, child: u32) {
        let parent = self.parent(child);
        if let Some(c) = self.child_count.get_mut(slot(parent)) {
            *c = c.saturating_sub(1);
        }
        if let Some(p) = self.parent.get_mut(slot(child)) {
            *p = NONE;
        }
    }

    /// Step 1: links every message to its references.
    fn build<R: AsRef<str>>(msgs: &[ThreadMessage<'_, R>]) -> Links {
        let mut l = Links::with_capacity(msgs.len() + msgs.len() / 2);
        // Message-IDs are chosen by whoever sends mail, so the map keeps std's keyed SipHash
        // rather than a faster unkeyed hash a sender could collide on purpose.
        let mut by_id: HashMap<&str, u32> = HashMap::with_capacity(msgs.len() + msgs.len() / 2);
        for (i, m) in msgs.iter().enumerate() {
            let i = index_u32(i);
            // "If two or more messages have the same Message ID, then only use that Message ID in
            // the first (lowest sequence number) message, and assign a unique Message ID to each
            // of the subsequent messages": a node of its own that nothing can reference. A dummy
            // created by an earlier reference becomes this message.
            let me = match m.message_id.filter(|id| !id.is_empty()) {
                Some(id) => match by_id.entry(id) {
                    Entry::Occupied(e) => {
                        let n = *e.get();
                        match l.msg.get_mut(slot(n)) {
                            Some(slot_msg) if *slot_msg == NONE => {
                                *slot_msg = i;
                                n
                            }
                            _ => l.push(i),
                        }
                    }
                    Entry::Vacant(e) => *e.insert(l.push(i)),
                },
                None => l.push(i),
            };
            // References, or else the first In-Reply-To msg-id.
            let refs: &[R] = if m.references.is_empty() {
                m.in_reply_to.get(..1).unwrap_or(&[])
            } else {
                m.references
            };
            // (1.A) Link adjacent references as parent and child, never changing an existing
            // parent and never closing a loop; unknown ids become dummies.
            let mut last = NONE;
            for r in refs {
                let r = r.as_ref();
                if r.is_empty() {
                    continue;
                }
                let n = match by_id.entry(r) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => *e.insert(l.push(NONE)),
                };
                if last != NONE && l.parent(n) == NONE {
                    l.link(last, n);
                }
                last = n;
            }
            // (1.B) The last reference is the parent: replace a parent an earlier (truncated)
            // References gave this message, again without closing a loop. No references, no
            // parent.
            if l.parent(me) != last {
                if l.parent(me) != NONE {
                    l.unlink(me);
                }
                if last != NONE {
                    l.link(last, me);
                }
            }
        }
        l
    }
}

/// The thread forest after steps 2 and 3: child lists without non-top dummies.
struct Forest<'m, 'a, R: AsRef<str>> {
    msgs: &'m [ThreadMessage<'a, R>],
    /// Index into `msgs`, or [`NONE`] for a dummy.
    msg: Vec<u32>,
    children: Vec<Vec<u32>>,
    roots: Vec<u32>,
}

impl<'m, 'a, R: AsRef<str>> Forest<'m, 'a, R> {
    /// Steps 1 to 3.
    fn build(msgs: &'m [ThreadMessage<'a, R>]) -> Self {
        let l = Links::build(msgs);
        let n = l.msg.len();
        let is_dummy = |x: u32| l.msg.get(slot(x)).is_none_or(|&m| m == NONE);
        // (3) A dummy below the top is deleted and its children promoted to its level, repeatedly:
        // each message hangs below its nearest message ancestor, or, when every ancestor is a
        // dummy, below the topmost one. `target` memoises that answer per dummy so long dummy
        // chains are walked once.
        let mut target = vec![NONE; n];
        let mut path = Vec::new();
        for d in 0..n {
            let d = index_u32(d);
            if !is_dummy(d) || target[slot(d)] != NONE {
                continue;
            }
            let mut x = d;
            let t = loop {
                let known = target[slot(x)];
                if known != NONE {
                    break known;
                }
                path.push(x);
                let p = l.parent(x);
                if p == NONE {
                    break x;
                }
                if !is_dummy(p) {
                    break p;
                }
                x = p;
            };
            for y in path.drain(..) {
                target[slot(y)] = t;
            }
        }
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        let mut tops = Vec::new();
        for x in 0..n {
            let x = index_u32(x);
            let p = l.parent(x);
            if p == NONE {
                // (2) Parentless nodes are the top level.
                tops.push(x);
            } else if !is_dummy(x) {
                let to = if is_dummy(p) { target[slot(p)] } else { p };
                children[slot(to)].push(x);
            }
        }
        // (3) at the top: a dummy without children goes, a dummy with one child is replaced by
        // it, a dummy with more stays (its children would otherwise become top-level threads).
        let mut roots = Vec::with_capacity(tops.len());
        for t in tops {
            if !is_dummy(t) {
                roots.push(t);
                continue;
            }
            match children[slot(t)].as_slice() {
                [] => {}
                [only] => roots.push(*only),
                _ => roots.push(t),
            }
        }
        Forest {
            msgs,
            msg: l.msg,
            children,
            roots,
        }
    }

    fn is_dummy(&self, x: u32) -> bool {
        self.msg.get(slot(x)).is_none_or(|&m| m == NONE)
    }

    /// The sent-date sort key of node `x`: its message's, or for a dummy its first child's.
    fn key(&self, x: u32) -> (i64, u32) {
        let m = if self.is_dummy(x) {
            self.children
                .get(slot(x))
                .and_then(|c| c.first())
                .map_or(NONE, |&c| self.msg.get(slot(c)).copied().unwrap_or(NONE))
        } else {
            self.msg.get(slot(x)).copied().unwrap_or(NONE)
        };
        date_key(self.msgs, m)
    }

    fn message(&self, x: u32) -> Option<&ThreadMessage<'a, R>> {
        let m = *self.msg.get(slot(x))?;
        self.msgs.get(slot(m))
    }

    /// Sorts the children of `x` by sent date. Children are never dummies.
    fn sort_children(&mut self, x: u32) {
        let Some(mut kids) = self.children.get_mut(slot(x)).map(std::mem::take) else {
            return;
        };
        kids.sort_unstable_by_key(|&c| self.key(c));
        self.children[slot(x)] = kids;
    }

    fn sort_all_children(&mut self) {
        for x in 0..self.children.len() {
            if self.children[x].len() > 1 {
                self.sort_children(index_u32(x));
            }
        }
    }

    fn sort_roots_by_first(&mut self) {
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_unstable_by_key(|&r| self.key(r));
        self.roots = roots;
    }

    /// REFS: the threads by the sent date of their latest message, then by their first message.
    fn sort_roots_by_latest(&mut self) {
        let mut keyed: Vec<(i64, (i64, u32), u32)> = Vec::with_capacity(self.roots.len());
        let mut stack = Vec::new();
        for &r in &self.roots {
            let mut latest = i64::MIN;
            stack.push(r);
            while let Some(x) = stack.pop() {
                if let Some(m) = self.message(x) {
                    latest = latest.max(m.date);
                }
                if let Some(kids) = self.children.get(slot(x)) {
                    stack.extend_from_slice(kids);
                }
            }
            keyed.push((latest, self.key(r), r));
        }
        keyed.sort_unstable();
        self.roots = keyed.into_iter().map(|(_, _, r)| r).collect();
    }

    /// The thread subject of a top-level node (step 5.B.i): its base subject, or its first
    /// child's for a dummy.
    fn thread_subject(&self, x: u32) -> &'a str {
        let m = if self.is_dummy(x) {
            self.children
                .get(slot(x))
                .and_then(|c| c.first())
                .and_then(|&c| self.message(c))
        } else {
            self.message(x)
        };
        m.map_or("", |m| m.base_subject)
    }

    fn is_reply(&self, x: u32) -> bool {
        self.message(x).is_some_and(|m| m.is_reply)
    }

    fn new_dummy(&mut self, children: Vec<u32>) -> u32 {
        let d = index_u32(self.msg.len());
        self.msg.push(NONE);
        self.children.push(children);
        d
    }

    /// Step 5: gather the top-level threads that share a base subject.
    fn merge_subjects(&mut self) {
        // (5.B) One message per subject: a dummy wins over a message, a non-reply over a reply,
        // otherwise the first.
        let mut table: HashMap<&'a str, u32> = HashMap::with_capacity(self.roots.len());
        for &r in &self.roots {
            let subject = self.thread_subject(r);
            if subject.is_empty() {
                continue;
            }
            match table.entry(subject) {
                Entry::Vacant(e) => {
                    e.insert(r);
                }
                Entry::Occupied(mut e) => {
                    let t = *e.get();
                    if !self.is_dummy(t)
                        && (self.is_dummy(r) || (self.is_reply(t) && !self.is_reply(r)))
                    {
                        e.insert(r);
                    }
                }
            }
        }
        // (5.C) Merge every other thread with that subject into the table's.
        let mut gone = vec![false; self.msg.len()];
        let roots = std::mem::take(&mut self.roots);
        let mut added = Vec::new();
        for &r in &roots {
            if gone.get(slot(r)).copied().unwrap_or(true) {
                continue;
            }
            let subject = self.thread_subject(r);
            if subject.is_empty() {
                continue;
            }
            let Some(&t) = table.get(subject) else {
                continue;
            };
            if t == r {
                continue;
            }
            let (r_dummy, t_dummy) = (self.is_dummy(r), self.is_dummy(t));
            if r_dummy && t_dummy {
                // Both dummies: the children of both become siblings.
                let kids = std::mem::take(&mut self.children[slot(r)]);
                self.children[slot(t)].extend(kids);
                gone[slot(r)] = true;
            } else if t_dummy || (self.is_reply(r) && !self.is_reply(t)) {
                // Into the dummy, or a reply below the original.
                self.children[slot(t)].push(r);
                gone[slot(r)] = true;
            } else {
                // Otherwise a new dummy holds both and takes the table's place. (5.B made any
                // dummy of this subject the table's entry, so `r` is a message here.)
                let d = self.new_dummy(vec![t, r]);
                gone.push(false);
                if let Some(g) = gone.get_mut(slot(t)) {
                    *g = true;
                }
                gone[slot(r)] = true;
                table.insert(subject, d);
                added.push(d);
            }
        }
        self.roots = roots
            .into_iter()
            .chain(added)
            .filter(|&r| !gone.get(slot(r)).copied().unwrap_or(true))
            .collect();
        // A dummy's children must be in date order before it is sorted by its first child.
        for d in self.roots.clone() {
            if self.is_dummy(d) {
                self.sort_children(d);
            }
        }
    }

    fn into_tree(self) -> ThreadTree {
        let nodes = self
            .msg
            .iter()
            .zip(self.children)
            .map(|(&m, children)| ThreadNode {
                number: self.msgs.get(slot(m)).map(|m| m.number),
                children,
            })
            .collect();
        ThreadTree {
            nodes,
            roots: self.roots,
        }
    }
}

/// A node number as an index.
fn slot(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
