//! REFERENCES and REFS on small hand-made mailboxes. Each expected answer is worked out from
//! RFC 5256 section 3's steps in the comment above it.

use super::*;
use crate::imap::proto::encode;

/// Message `n` (sequence number and position n-1) with a date, base subject and Message-ID.
fn m(
    n: u32,
    date: i64,
    subject: &'static str,
    id: Option<&'static str>,
    refs: &'static [&'static str],
) -> ThreadMessage<'static> {
    ThreadMessage {
        number: n,
        date,
        base_subject: subject,
        is_reply: false,
        message_id: id,
        references: refs,
        in_reply_to: &[],
    }
}

fn reply(mut msg: ThreadMessage<'static>) -> ThreadMessage<'static> {
    msg.is_reply = true;
    msg
}

fn written(tree: &ThreadTree) -> String {
    let mut out = Vec::new();
    encode::thread(&mut out, tree);
    let s = String::from_utf8(out).unwrap_or_default();
    s.trim_start_matches("* THREAD")
        .trim_end_matches("\r\n")
        .trim_start()
        .to_string()
}

fn refs_of(msgs: &[ThreadMessage<'static>]) -> String {
    written(&references(msgs))
}

fn dovecot_refs_of(msgs: &[ThreadMessage<'static>]) -> String {
    written(&refs(msgs))
}

#[test]
fn chain_and_siblings_by_date() {
    // 1 <- 2 <- 3 by References; 4 and 5 both answer 1, 5 is older than 4: siblings by date.
    let msgs = [
        m(1, 10, "a", Some("a"), &[]),
        m(2, 20, "b", Some("b"), &["a"]),
        m(3, 30, "c", Some("c"), &["a", "b"]),
        m(4, 50, "d", Some("d"), &["a"]),
        m(5, 40, "e", Some("e"), &["a"]),
    ];
    assert_eq!(refs_of(&msgs), "(1 (2 3)(5)(4))");
}

#[test]
fn missing_parent_becomes_dummy_pruned_per_step_3() {
    // x is not in the mailbox: dummy x with children 1 and 2 stays a dummy at the top (promoting
    // two children to the root is not allowed); 2 is older, so it comes first.
    let two = [
        m(1, 5, "one", Some("b"), &["x"]),
        m(2, 3, "two", Some("c"), &["x"]),
    ];
    assert_eq!(refs_of(&two), "((2)(1))");
    // A dummy with only one child is replaced by that child.
    let one = [m(1, 5, "one", Some("b"), &["x"])];
    assert_eq!(refs_of(&one), "(1)");
    // A dummy in the middle (b) is deleted and its children promoted to a's children.
    let middle = [
        m(1, 1, "a", Some("a"), &[]),
        m(2, 3, "c", Some("c"), &["a", "b"]),
        m(3, 2, "d", Some("d"), &["a", "b"]),
    ];
    assert_eq!(refs_of(&middle), "(1 (3)(2))");
    // A chain of dummies above two messages collapses into one dummy at the top.
    let chain = [
        m(1, 1, "p", Some("p"), &["x", "y", "z"]),
        m(2, 2, "q", Some("q"), &["x", "y"]),
    ];
    assert_eq!(refs_of(&chain), "((1)(2))");
}

#[test]
fn duplicate_message_id_gets_a_unique_one() {
    // 2 repeats 1's Message-ID: only 1 keeps it, so 3's reference to "a" is to 1, and 2 is
    // alone.
    let msgs = [
        m(1, 1, "s1", Some("a"), &[]),
        m(2, 2, "s2", Some("a"), &[]),
        m(3, 3, "s3", Some("r"), &["a"]),
    ];
    assert_eq!(refs_of(&msgs), "(1 3)(2)");
    // A dummy made by an earlier reference is taken over by the message with that id, not
    // treated as a duplicate.
    let later = [
        m(1, 2, "s1", Some("r"), &["a"]),
        m(2, 1, "s2", Some("a"), &[]),
    ];
    assert_eq!(refs_of(&later), "(2 1)");
}

#[test]
fn missing_message_ids_are_unique() {
    // Neither has a Message-ID, so each gets a unique one and no links are made; equal non-reply
    // subjects are still gathered under a dummy by step 5 (its "otherwise" rule).
    let msgs = [m(1, 1, "same", None, &[]), m(2, 2, "same", None, &[])];
    assert_eq!(refs_of(&msgs), "((1)(2))");
    let distinct = [m(1, 1, "one", None, &[]), m(2, 2, "two", None, &[])];
    assert_eq!(refs_of(&distinct), "(1)(2)");
}

#[test]
fn reference_loop_is_not_created() {
    // 1 (a) says its parent is b; 2 (b) says its parent is a. 1.B for 1 makes b -> a; 1.B for 2
    // would make a -> b, a loop, so it is not made: 2 is the top, 1 its child.
    let msgs = [
        m(1, 10, "x", Some("a"), &["b"]),
        m(2, 20, "y", Some("b"), &["a"]),
    ];
    assert_eq!(refs_of(&msgs), "(2 1)");
    // A message referencing itself gets no parent from it.
    let own = [m(1, 1, "x", Some("a"), &["a"])];
    assert_eq!(refs_of(&own), "(1)");
    // A References list that loops within itself.
    let circular = [
        m(1, 1, "x", Some("a"), &[]),
        m(2, 2, "y", Some("b"), &["a", "b", "a"]),
    ];
    // Links a -> b (1.A), then b -> a would loop (skipped); 1.B: the last reference is a, and b
    // already has a as its parent.
    assert_eq!(refs_of(&circular), "(1 2)");
}

#[test]
fn last_reference_replaces_a_truncated_parent() {
    // 1's References make r1 the parent of m2 (1.A). 2 is m2 and says its parent is r2: 1.B
    // breaks r1 -> m2 and links r2 -> m2. So r1 keeps only 3, r2 only 2: both dummies go.
    let msgs = [
        m(1, 30, "one", Some("m1"), &["r1", "m2"]),
        m(2, 10, "two", Some("m2"), &["r2"]),
        m(3, 20, "three", Some("m3"), &["r1"]),
    ];
    assert_eq!(refs_of(&msgs), "(2 1)(3)");
}

#[test]
fn in_reply_to_used_only_without_references() {
    let mut two = m(2, 2, "b", Some("b"), &[]);
    two.in_reply_to = &["a", "zz"];
    let mut three = m(3, 3, "c", Some("c"), &["b"]);
    three.in_reply_to = &["a"];
    let msgs = [m(1, 1, "a", Some("a"), &[]), two, three];
    assert_eq!(refs_of(&msgs), "(1 2 3)");
}

#[test]
fn subject_merge_rules_of_step_5() {
    // A reply joins the non-reply thread with its subject as a child.
    let reply_under = [
        m(1, 10, "foo", Some("a"), &[]),
        reply(m(2, 20, "foo", Some("b"), &[])),
    ];
    assert_eq!(refs_of(&reply_under), "(1 2)");
    // Two non-replies: a new dummy holds both.
    let both = [
        m(1, 10, "foo", Some("a"), &[]),
        m(2, 20, "foo", Some("b"), &[]),
    ];
    assert_eq!(refs_of(&both), "((1)(2))");
    // The reply is older: the non-reply wins the subject table (5.B) and the reply goes below it.
    let reply_first = [
        reply(m(1, 10, "foo", Some("a"), &[])),
        m(2, 20, "foo", Some("b"), &[]),
    ];
    assert_eq!(refs_of(&reply_first), "(2 1)");
    // A dummy wins the table; the loose message with its subject joins the dummy's children, all
    // sorted by date.
    let into_dummy = [
        m(1, 5, "bar", Some("b"), &["x"]),
        reply(m(2, 7, "bar", Some("c"), &["x"])),
        m(3, 1, "bar", Some("d"), &[]),
    ];
    assert_eq!(refs_of(&into_dummy), "((3)(1)(2))");
    // Two dummies with one subject: their children become siblings.
    let two_dummies = [
        m(1, 1, "z", Some("p"), &["x"]),
        m(2, 4, "z", Some("q"), &["x"]),
        m(3, 2, "z", Some("r"), &["y"]),
        m(4, 3, "z", Some("s"), &["y"]),
    ];
    assert_eq!(refs_of(&two_dummies), "((1)(3)(4)(2))");
    // Empty subjects are never merged.
    let empty = [m(1, 1, "", Some("a"), &[]), m(2, 2, "", Some("b"), &[])];
    assert_eq!(refs_of(&empty), "(1)(2)");
    // A third message with the subject joins the dummy step 5.C made for the first two.
    let three = [
        m(1, 10, "foo", Some("a"), &[]),
        m(2, 20, "foo", Some("b"), &[]),
        m(3, 30, "foo", Some("c"), &[]),
    ];
    assert_eq!(refs_of(&three), "((1)(2)(3))");
}

#[test]
fn threads_ordered_by_first_message_and_equal_dates_by_sequence() {
    let msgs = [
        m(1, 50, "late", Some("a"), &[]),
        m(2, 10, "early", Some("b"), &[]),
        m(3, 10, "tie", Some("c"), &[]),
        m(4, 60, "reply", Some("d"), &["b"]),
    ];
    assert_eq!(refs_of(&msgs), "(2 4)(3)(1)");
}

#[test]
fn refs_skips_subject_merge_and_orders_by_latest_message() {
    let msgs = [
        m(1, 10, "foo", Some("a"), &[]),
        m(2, 20, "other", Some("b"), &[]),
        reply(m(3, 15, "foo", Some("c"), &[])),
        m(4, 50, "x", Some("d"), &["a"]),
    ];
    // REFERENCES: 3 joins 1's thread by subject; threads by first date: 1 (10), 2 (20).
    assert_eq!(refs_of(&msgs), "(1 (3)(4))(2)");
    // REFS: no subject merge; latest dates: thread 1 -> 50, 2 -> 20, 3 -> 15.
    assert_eq!(dovecot_refs_of(&msgs), "(3)(2)(1 4)");
}

#[test]
fn refs_keeps_dummies_like_references() {
    let msgs = [
        m(1, 5, "one", Some("b"), &["x"]),
        m(2, 3, "two", Some("c"), &["x"]),
        m(3, 4, "three", Some("d"), &[]),
    ];
    // Latest: dummy thread 5, message 3 at 4.
    assert_eq!(dovecot_refs_of(&msgs), "(3)((2)(1))");
}

#[test]
fn large_mailbox_is_linear_enough() {
    // 100,000 messages: chains of 10 replies, plus one forward chain 10,000 deep, plus the same
    // chain delivered newest first. Must finish (and not overflow the stack when written).
    let n = 100_000usize;
    let ids: Vec<String> = (0..n).map(|i| format!("m{i}@x")).collect();
    let parents: Vec<Vec<&str>> = (0..n)
        .map(|i| {
            if i < 10_000 {
                // one long chain: each answers the previous
                if i == 0 {
                    vec![]
                } else {
                    vec![ids[i - 1].as_str()]
                }
            } else if i < 20_000 {
                // newest first: each answers the next
                if i + 1 < 20_000 {
                    vec![ids[i + 1].as_str()]
                } else {
                    vec![]
                }
            } else if i % 10 == 0 {
                vec![]
            } else {
                vec![ids[i - i % 10].as_str(), ids[i - 1].as_str()]
            }
        })
        .collect();
    let msgs: Vec<ThreadMessage<'_, &str>> = (0..n)
        .map(|i| ThreadMessage {
            number: index_u32(i + 1),
            date: i64::try_from(i).unwrap_or(0),
            base_subject: "s",
            is_reply: i % 10 != 0,
            message_id: Some(ids[i].as_str()),
            references: parents[i].as_slice(),
            in_reply_to: &[],
        })
        .collect();
    let tree = references(&msgs);
    let mut out = Vec::new();
    encode::thread(&mut out, &tree);
    assert!(out.starts_with(b"* THREAD ("));
    let tree = refs(&msgs);
    // Two chains plus 8,000 threads of ten.
    assert_eq!(tree.roots.len(), 2 + 8_000);
}

/// A chain of `depth` messages (each answering the previous), then C answering an unknown `b`,
/// then D whose References are the chain's last message and `b`: RFC 5256 step 1.A links `b`
/// below the chain's end. C and D have a base subject of their own, so step 5 merges nothing.
fn late_link(depth: u32) -> Vec<ThreadMessage<'static, String>> {
    let id = |i: u32| format!("a{i}@x");
    let mut msgs: Vec<ThreadMessage<'static, String>> = Vec::new();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let leak_refs = |v: Vec<String>| -> &'static [String] { Box::leak(v.into_boxed_slice()) };
    for i in 1..=depth {
        let refs = if i == 1 { vec![] } else { vec![id(i - 1)] };
        msgs.push(ThreadMessage {
            number: i,
            date: i64::from(i),
            base_subject: "s",
            is_reply: i > 1,
            message_id: Some(leak(id(i))),
            references: leak_refs(refs),
            in_reply_to: &[],
        });
    }
    let tail = [
        (depth + 1, vec!["b@x".to_string()]),
        (depth + 2, vec![id(depth), "b@x".to_string()]),
    ];
    for (n, refs) in tail {
        msgs.push(ThreadMessage {
            number: n,
            date: i64::from(n),
            base_subject: "t",
            is_reply: true,
            message_id: Some(leak(format!("t{n}@x"))),
            references: leak_refs(refs),
            in_reply_to: &[],
        });
    }
    msgs
}

#[test]
fn late_link_below_a_short_chain_is_made() {
    // `b` (a dummy with children 4 and 5) goes below 3, and being a dummy its children take its
    // place (step 4).
    let tree = references(&late_link(3));
    let mut out = Vec::new();
    encode::thread(&mut out, &tree);
    assert_eq!(out, b"* THREAD (1 2 3 (4)(5))\r\n");
}

#[test]
fn late_link_below_a_chain_deeper_than_the_walk_limit_is_not_made() {
    // Checking for a loop would walk more than MAX_THREAD_LINK_WALK ancestors: the link is left
    // out, so `b` stays a root dummy holding 4+ and 5+ (dated after the chain's root).
    let depth = u32::try_from(crate::limits::MAX_THREAD_LINK_WALK).unwrap_or(1000) + 10;
    let tree = references(&late_link(depth));
    let mut out = Vec::new();
    encode::thread(&mut out, &tree);
    let chain: Vec<String> = (1..=depth).map(|i| i.to_string()).collect();
    let want = format!(
        "* THREAD ({})(({})({}))\r\n",
        chain.join(" "),
        depth + 1,
        depth + 2
    );
    assert_eq!(String::from_utf8_lossy(&out), want);
}
