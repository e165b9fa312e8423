//! The THREAD response (RFC 5256 sections 4 and 5).
//!
//! ```text
//! thread-data    = "THREAD" [SP 1*thread-list]
//! thread-list    = "(" (thread-members / thread-nested) ")"
//! thread-members = nz-number *(SP nz-number) [SP thread-nested]
//! thread-nested  = 2*thread-list
//! ```
//!
//! So a message with one child is followed by that child inline (`3 6`), a message with two or
//! more children by one parenthesised list per child (`6 (4 23)(44 7 96)`), and a dummy parent
//! (RFC 5256 `((3)(5))`) is only the nesting of its children, without a number of its own.
//!
//! The writer walks the tree with an explicit stack, not recursion: a reply chain as deep as the
//! mailbox is large must not overflow the task's stack.

use super::number::write_num;

/// A forest of threads, as the threading algorithms build it: an arena of nodes and the
/// top-level threads in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadTree {
    /// Every node; children refer to nodes by index. Nodes no root reaches are not written.
    pub nodes: Vec<ThreadNode>,
    /// The top-level threads, in the order they are written.
    pub roots: Vec<u32>,
}

/// One node of a [`ThreadTree`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadNode {
    /// The message's number (sequence number or UID), or `None` for a dummy parent.
    pub number: Option<u32>,
    /// The children, in order (indices into [`ThreadTree::nodes`]).
    pub children: Vec<u32>,
}

impl ThreadTree {
    fn node(&self, i: u32) -> Option<&ThreadNode> {
        self.nodes.get(usize::try_from(i).ok()?)
    }

    /// True when the node would write nothing: a dummy without children (or a bad index).
    fn is_empty(&self, i: u32) -> bool {
        self.node(i)
            .is_none_or(|n| n.number.is_none() && n.children.is_empty())
    }
}

/// A step of the writer: write a node's members, or a fixed piece of text.
enum Step {
    Members(u32),
    Text(&'static [u8]),
}

/// `* THREAD (..)(..)\r\n` (RFC 5256 section 4); `* THREAD\r\n` when nothing matched.
pub fn thread(out: &mut Vec<u8>, tree: &ThreadTree) {
    out.extend_from_slice(b"* THREAD");
    let mut first = true;
    let mut stack: Vec<Step> = Vec::new();
    for &root in &tree.roots {
        if tree.is_empty(root) {
            continue;
        }
        if first {
            out.push(b' ');
            first = false;
        }
        out.push(b'(');
        stack.push(Step::Text(b")"));
        stack.push(Step::Members(root));
        while let Some(step) = stack.pop() {
            match step {
                Step::Text(t) => out.extend_from_slice(t),
                Step::Members(i) => members(out, tree, i, &mut stack),
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes node `i`'s number (if not a dummy) and schedules its children: one child inline, two or
/// more each in its own parentheses.
fn members(out: &mut Vec<u8>, tree: &ThreadTree, i: u32, stack: &mut Vec<Step>) {
    let Some(node) = tree.node(i) else {
        return;
    };
    let live = |c: &&u32| !tree.is_empty(**c);
    let count = node.children.iter().filter(live).take(2).count();
    if let Some(n) = node.number {
        write_num(out, n);
        if count > 0 {
            out.push(b' ');
        }
    }
    if count == 1 {
        if let Some(&only) = node.children.iter().find(live) {
            stack.push(Step::Members(only));
        }
    } else {
        for &c in node.children.iter().rev().filter(live) {
            stack.push(Step::Text(b")"));
            stack.push(Step::Members(c));
            stack.push(Step::Text(b"("));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(number: Option<u32>, children: &[u32]) -> ThreadNode {
        ThreadNode {
            number,
            children: children.to_vec(),
        }
    }

    fn written(tree: &ThreadTree) -> String {
        let mut out = Vec::new();
        thread(&mut out, tree);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn rfc5256_section4_first_example() {
        // -- 2 ; -- 3 \-- 6 (|-- 4 \-- 23 ; \-- 44 \-- 7 \-- 96)
        let tree = ThreadTree {
            nodes: vec![
                n(Some(2), &[]),     // 0
                n(Some(3), &[2]),    // 1
                n(Some(6), &[3, 5]), // 2
                n(Some(4), &[4]),    // 3
                n(Some(23), &[]),    // 4
                n(Some(44), &[6]),   // 5
                n(Some(7), &[7]),    // 6
                n(Some(96), &[]),    // 7
            ],
            roots: vec![0, 1],
        };
        assert_eq!(written(&tree), "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n");
    }

    #[test]
    fn rfc5256_section4_dummy_parent_example() {
        let tree = ThreadTree {
            nodes: vec![n(None, &[1, 2]), n(Some(3), &[]), n(Some(5), &[])],
            roots: vec![0],
        };
        assert_eq!(written(&tree), "* THREAD ((3)(5))\r\n");
    }

    #[test]
    fn empty_result_and_childless_dummies() {
        assert_eq!(written(&ThreadTree::default()), "* THREAD\r\n");
        let tree = ThreadTree {
            nodes: vec![n(None, &[]), n(Some(9), &[0])],
            roots: vec![0, 1],
        };
        assert_eq!(written(&tree), "* THREAD (9)\r\n");
    }

    #[test]
    fn deep_chain_does_not_recurse() {
        let depth: u32 = 200_000;
        let nodes = (1..=depth)
            .map(|i| ThreadNode {
                number: Some(i),
                children: if i < depth { vec![i] } else { Vec::new() },
            })
            .collect();
        let tree = ThreadTree {
            nodes,
            roots: vec![0],
        };
        let s = written(&tree);
        assert!(s.starts_with("* THREAD (1 2 3 "));
        assert!(s.ends_with(" 199999 200000)\r\n"));
    }
}
