//! ORDEREDSUBJECT (RFC 5256 section 3): "The searched messages are sorted by base subject and
//! then by the sent date. The messages are then split into separate threads, with each thread
//! containing messages with the same base subject text. Finally, the threads are sorted by the
//! sent date of the first message in the thread." The first message is the root, every later one
//! its child; there are no grandchildren.

use super::{ThreadMessage, ThreadNode, ThreadTree, date_key, index_u32};

/// Threads `msgs` (in mailbox order) by base subject.
pub fn ordered_subject<R: AsRef<str>>(msgs: &[ThreadMessage<'_, R>]) -> ThreadTree {
    let mut order: Vec<u32> = (0..msgs.len()).map(index_u32).collect();
    let subject = |i: u32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| msgs.get(i))
            .map_or("", |m| m.base_subject)
    };
    order.sort_unstable_by(|&a, &b| {
        subject(a)
            .cmp(subject(b))
            .then_with(|| date_key(msgs, a).cmp(&date_key(msgs, b)))
    });
    let mut nodes: Vec<ThreadNode> = msgs
        .iter()
        .map(|m| ThreadNode {
            number: Some(m.number),
            children: Vec::new(),
        })
        .collect();
    let mut roots: Vec<u32> = Vec::new();
    for run in order.chunk_by(|&a, &b| subject(a) == subject(b)) {
        let Some((&first, rest)) = run.split_first() else {
            continue;
        };
        if let Some(node) = usize::try_from(first).ok().and_then(|i| nodes.get_mut(i)) {
            node.children = rest.to_vec();
        }
        roots.push(first);
    }
    roots.sort_unstable_by_key(|&r| date_key(msgs, r));
    ThreadTree { nodes, roots }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::proto::encode;

    fn msg(number: u32, date: i64, subject: &'static str) -> ThreadMessage<'static> {
        ThreadMessage {
            number,
            date,
            base_subject: subject,
            is_reply: false,
            message_id: None,
            references: &[],
            in_reply_to: &[],
        }
    }

    fn written(tree: &ThreadTree) -> String {
        let mut out = Vec::new();
        encode::thread(&mut out, tree);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn groups_by_subject_sorts_by_date_no_grandchildren() {
        let msgs = [
            msg(1, 300, "B"),
            msg(2, 100, "A"),
            msg(3, 200, "B"),
            msg(4, 50, "C"),
            msg(5, 400, "A"),
            msg(6, 250, "B"),
        ];
        // Threads: A = 2(100) 5; B = 3(200) 6 1; C = 4(50). By first date: C, A, B.
        assert_eq!(
            written(&ordered_subject(&msgs)),
            "* THREAD (4)(2 5)(3 (6)(1))\r\n"
        );
    }

    #[test]
    fn equal_dates_fall_back_to_sequence_order() {
        let msgs = [msg(1, 10, "X"), msg(2, 10, "Y"), msg(3, 10, "X")];
        assert_eq!(written(&ordered_subject(&msgs)), "* THREAD (1 3)(2)\r\n");
    }

    #[test]
    fn empty_subjects_form_one_thread_and_nothing_is_empty() {
        let msgs = [msg(7, 2, ""), msg(8, 1, "")];
        assert_eq!(written(&ordered_subject(&msgs)), "* THREAD (8 7)\r\n");
        let none: [ThreadMessage<'static>; 0] = [];
        assert_eq!(written(&ordered_subject(&none)), "* THREAD\r\n");
    }
}
