//! THREAD and UID THREAD (RFC 5256) against the real binary, as wire transcripts on a
//! hand-written mailbox. Every expected answer is derived by hand from RFC 5256 section 3's
//! rules (REFERENCES steps 1-6, ORDEREDSUBJECT) and Dovecot's REFS, in the comments below.
//!
//! The mailbox (sequence numbers after the first, throw-away message is expunged, so UID = seq+1;
//! all dates +0000, January 2024):
//!
//! | seq | Message-ID | Subject             | links                     | Date          |
//! |-----|------------|---------------------|---------------------------|---------------|
//! | 1   | a1         | Project plan        |                           | 1 Jan 10:00   |
//! | 2   | a2         | Re: Project plan    | References a1             | 2 Jan 10:00   |
//! | 3   | a3         | Re: Project plan    | References a1 a2          | 3 Jan 10:00   |
//! | 4   | a4         | Re: Project plan    | In-Reply-To a1 (no Refs)  | 2 Jan 12:00   |
//! | 5   | b1         | Lunch?              | References b0 (missing)   | 5 Jan 09:00   |
//! | 6   | b2         | Re: Lunch?          | References b0 (missing)   | 4 Jan 09:00   |
//! | 7   | c1         | Budget              |                           | 6 Jan 09:00   |
//! | 8   | c1 (dup)   | Budget draft        |                           | 7 Jan 09:00   |
//! | 9   | c2         | Re: Budget          | References c1             | 8 Jan 09:00   |
//! | 10  | d1         | Loop one            | References d2             | 9 Jan 09:00   |
//! | 11  | d2         | Loop two            | References d1 (a loop)    | 10 Jan 09:00  |
//! | 12  | e1         | Minutes             |                           | 11 Jan 09:00  |
//! | 13  | e2         | Re: Minutes         | none                      | 12 Jan 09:00  |
//! | 14  | e3         | Minutes             | none                      | 13 Jan 09:00  |
//! | 15  | (none)     | Fwd: Project plan   | none, no Date:            | INTERNALDATE 14 Jan 00:00 |

mod common;

use common::*;

struct Msg {
    id: Option<&'static str>,
    subject: &'static str,
    links: &'static str,
    date: Option<&'static str>,
    internal: &'static str,
}

const fn msg(
    id: Option<&'static str>,
    subject: &'static str,
    links: &'static str,
    date: Option<&'static str>,
) -> Msg {
    Msg {
        id,
        subject,
        links,
        date,
        internal: "20-Jan-2024 00:00:00 +0000",
    }
}

const CORPUS: &[Msg] = &[
    msg(
        Some("a1@x"),
        "Project plan",
        "",
        Some("Mon, 1 Jan 2024 10:00:00 +0000"),
    ),
    msg(
        Some("a2@x"),
        "Re: Project plan",
        "References: <a1@x>\r\n",
        Some("Tue, 2 Jan 2024 10:00:00 +0000"),
    ),
    msg(
        Some("a3@x"),
        "Re: Project plan",
        "References: <a1@x>\r\n <a2@x>\r\n",
        Some("Wed, 3 Jan 2024 10:00:00 +0000"),
    ),
    msg(
        Some("a4@x"),
        "Re: Project plan",
        "In-Reply-To: <a1@x>\r\n",
        Some("Tue, 2 Jan 2024 12:00:00 +0000"),
    ),
    msg(
        Some("b1@x"),
        "Lunch?",
        "References: <b0@x>\r\n",
        Some("Fri, 5 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("b2@x"),
        "Re: Lunch?",
        "References: <b0@x>\r\n",
        Some("Thu, 4 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("c1@x"),
        "Budget",
        "",
        Some("Sat, 6 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("c1@x"),
        "Budget draft",
        "",
        Some("Sun, 7 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("c2@x"),
        "Re: Budget",
        "References: <c1@x>\r\n",
        Some("Mon, 8 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("d1@x"),
        "Loop one",
        "References: <d2@x>\r\n",
        Some("Tue, 9 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("d2@x"),
        "Loop two",
        "References: <d1@x>\r\n",
        Some("Wed, 10 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("e1@x"),
        "Minutes",
        "",
        Some("Thu, 11 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("e2@x"),
        "Re: Minutes",
        "",
        Some("Fri, 12 Jan 2024 09:00:00 +0000"),
    ),
    msg(
        Some("e3@x"),
        "Minutes",
        "",
        Some("Sat, 13 Jan 2024 09:00:00 +0000"),
    ),
    Msg {
        id: None,
        subject: "Fwd: Project plan",
        links: "",
        date: None,
        internal: "14-Jan-2024 00:00:00 +0000",
    },
];

fn text(m: &Msg) -> String {
    let mut t = String::from("From: someone@example.com\r\n");
    if let Some(d) = m.date {
        t.push_str(&format!("Date: {d}\r\n"));
    }
    if let Some(id) = m.id {
        t.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    t.push_str(&format!("Subject: {}\r\n", m.subject));
    t.push_str(m.links);
    t.push_str("\r\nBody.\r\n");
    t
}

fn append(c: &mut Client, date: &str, msg: &str) {
    c.send_raw(format!("ap APPEND INBOX \"{date}\" {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    assert_tagged_ok(&c.until("ap "));
}

/// The corpus in INBOX, selected, after a first message was expunged (so UIDs are seq + 1).
fn fixture(s: &Server) -> Client {
    let mut c = login_demo(s);
    append(
        &mut c,
        "01-Jan-2024 00:00:00 +0000",
        "Subject: throw-away\r\n\r\nx\r\n",
    );
    for m in CORPUS {
        append(&mut c, m.internal, &text(m));
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)"));
    let gone = c.cmd("e", "EXPUNGE");
    assert_tagged_ok(&gone);
    assert!(gone.contains(&"* 1 EXPUNGE".to_string()), "{gone:?}");
    c
}

/// REFERENCES, derived step by step:
/// (1) links: 1 -> 2 -> 3, 1 -> 4 (In-Reply-To, as there are no References); dummy b0 -> 5, 6;
///     8 repeats 7's Message-ID and so gets a unique one: 9 hangs below 7, 8 is alone; 10 gets
///     parent d2 (a dummy that 11 then becomes), 11's reference to d1 would close a loop and is
///     not made, so 11 -> 10; 12, 13, 14, 15 have no links.
/// (3) dummy b0 keeps both children (it cannot promote two to the root).
/// (4) top level by date: 1, b0 (by its first child 6), 7, 8, 11, 12, 13, 14, 15.
/// (5) subjects: "project plan" -> 1 (15 is a forward, 1 is not); "minutes" -> 12. 15 becomes
///     1's child (a forward below the original), 13 12's child (a reply), and 14, a second
///     non-reply "Minutes", makes a new dummy holding 12 and 14.
/// (6) 1's children by date: 2 (2 Jan 10:00), 4 (2 Jan 12:00), 15 (14 Jan).
const REFERENCES: &str = "(1 (2 3)(4)(15))((6)(5))(7 9)(8)(11 10)((12 13)(14))";

/// REFS: the same links without step 5, threads ordered by their latest message: 1's thread
/// (3 Jan), b0 (5 Jan), 8 (7 Jan), 7's (9 on 8 Jan), 11's (10 Jan), then 12 .. 15.
const REFS: &str = "(1 (2 3)(4))((6)(5))(8)(7 9)(11 10)(12)(13)(14)(15)";

/// ORDEREDSUBJECT: groups by base subject, each sorted by date, the groups by their first date:
/// PROJECT PLAN 1 2 4 3 15 (1 Jan), LUNCH? 6 5 (4 Jan), BUDGET 7 9, BUDGET DRAFT 8, LOOP ONE 10,
/// LOOP TWO 11, MINUTES 12 13 14. Two messages are "parent child", more "parent (child)(child)".
const ORDERED: &str = "(1 (2)(4)(3)(15))(6 5)(7 9)(8)(10)(11)(12 (13)(14))";

/// The same answers with every number the UID (seq + 1).
fn as_uids(threads: &str) -> String {
    let mut out = String::new();
    let mut num = String::new();
    for ch in threads.chars().chain(std::iter::once(' ')) {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        if !num.is_empty() {
            let n: u32 = num.parse().unwrap_or(0);
            out.push_str(&(n + 1).to_string());
            num.clear();
        }
        out.push(ch);
    }
    out.pop();
    out
}

#[test]
fn the_three_algorithms_and_their_uid_forms() {
    let s = Server::start();
    let mut c = fixture(&s);
    let uid_refs = as_uids(REFERENCES);
    let uid_refs2 = as_uids(REFS);
    let uid_ordered = as_uids(ORDERED);
    run_transcript(
        &mut c,
        &format!(
            "C: t1 THREAD REFERENCES UTF-8 ALL
             S: * THREAD {REFERENCES}
             S: t1 OK Thread completed.
             C: t2 THREAD REFS UTF-8 ALL
             S: * THREAD {REFS}
             S: t2 OK Thread completed.
             C: t3 THREAD ORDEREDSUBJECT UTF-8 ALL
             S: * THREAD {ORDERED}
             S: t3 OK Thread completed.
             C: t4 UID THREAD REFERENCES UTF-8 ALL
             S: * THREAD {uid_refs}
             S: t4 OK Thread completed.
             C: t5 UID THREAD REFS US-ASCII ALL
             S: * THREAD {uid_refs2}
             S: t5 OK Thread completed.
             C: t6 UID THREAD ORDEREDSUBJECT \"UTF-8\" ALL
             S: * THREAD {uid_ordered}
             S: t6 OK Thread completed.
             # Algorithm and charset names are case-insensitive.
             C: t7 thread references utf-8 ALL
             S: * THREAD {REFERENCES}
             S: t7 OK Thread completed.
"
        ),
    );
}

#[test]
fn criteria_filter_before_threading() {
    let s = Server::start();
    let mut c = fixture(&s);
    run_transcript(
        &mut c,
        // Without 1, a1 is a dummy parent of 2 (-> 3) and 4; in step 5 the dummy wins the
        // "project plan" subject and 15 joins its children (RFC 5256 section 4's `((3)(5))` case).
        "C: f1 THREAD REFERENCES UTF-8 NOT 1
         S: * THREAD ((2 3)(4)(15))((6)(5))(7 9)(8)(11 10)((12 13)(14))
         S: f1 OK Thread completed.
         # The same with UIDs: message 1 is UID 2.
         C: f2 UID THREAD REFERENCES UTF-8 NOT UID 2
         S: * THREAD ((3 4)(5)(16))((7)(6))(8 10)(9)(12 11)((13 14)(15))
         S: f2 OK Thread completed.
         # Only the Budget messages: the duplicate Message-ID still goes alone.
         C: f3 THREAD REFERENCES UTF-8 SUBJECT budget
         S: * THREAD (7 9)(8)
         S: f3 OK Thread completed.
         # Without 10 the loop is gone: 11 references d1, which is now a dummy with one child.
         C: f4 THREAD REFS UTF-8 SUBJECT loop NOT 10
         S: * THREAD (11)
         S: f4 OK Thread completed.
         C: f5 THREAD ORDEREDSUBJECT UTF-8 SUBJECT minutes
         S: * THREAD (12 (13)(14))
         S: f5 OK Thread completed.
         C: f6 THREAD REFERENCES UTF-8 SUBJECT nothing-has-this
         S: * THREAD
         S: f6 OK Thread completed.
",
    );
}

#[test]
fn expunge_by_another_session_waits_for_uid_thread() {
    let s = Server::start();
    let mut c = fixture(&s);
    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("e", "UID EXPUNGE 2"));
    // RFC 5256 3: no EXPUNGE while answering THREAD, so our sequence numbers stay; UID THREAD
    // may report it (after its THREAD line, before the tagged OK), and the next THREAD counts
    // without message 1.
    run_transcript(
        &mut c,
        "C: x1 THREAD REFERENCES UTF-8 SUBJECT loop
         S: * THREAD (11 10)
         S: x1 OK Thread completed.
         C: x2 UID THREAD REFERENCES UTF-8 SUBJECT loop
         S: * THREAD (12 11)
         S: * 1 EXPUNGE
         S: x2 OK Thread completed.
         C: x3 THREAD REFERENCES UTF-8 SUBJECT loop
         S: * THREAD (10 9)
         S: x3 OK Thread completed.
",
    );
}

#[test]
fn quoted_message_ids_are_the_same_id() {
    // RFC 5256 3: <"01KF8JCEOCBS0045PS"@xxx.yyy.com> and <01KF8JCEOCBS0045PS@xxx.yyy.com> "MUST
    // be interpreted as being the same Message ID"; case still matters.
    let s = Server::start();
    let mut c = login_demo(&s);
    let date = "01-Jan-2024 00:00:00 +0000";
    append(
        &mut c,
        date,
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>\r\n\
Subject: one\r\n\r\nx\r\n",
    );
    append(
        &mut c,
        date,
        "Date: Tue, 2 Jan 2024 10:00:00 +0000\r\nMessage-ID: <r@x>\r\n\
References: <01KF8JCEOCBS0045PS@xxx.yyy.com>\r\nSubject: two\r\n\r\nx\r\n",
    );
    append(
        &mut c,
        date,
        "Date: Wed, 3 Jan 2024 10:00:00 +0000\r\nMessage-ID: <s@x>\r\n\
In-Reply-To: <01kf8jceocbs0045ps@xxx.yyy.com>\r\nSubject: three\r\n\r\nx\r\n",
    );
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "C: q1 THREAD REFERENCES UTF-8 ALL
         S: * THREAD (1 2)(3)
         S: q1 OK Thread completed.
",
    );
}

#[test]
fn bad_arguments_get_bad_or_no() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // THREAD needs a selected mailbox.
    let early = c.cmd("n1", "THREAD REFERENCES UTF-8 ALL");
    assert!(
        early.last().is_some_and(|l| l.starts_with("n1 BAD ")),
        "{early:?}"
    );
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut c,
        "         # RFC 5256: CHARSET as in SEARCH, so an unknown one is NO [BADCHARSET].
         C: b1 THREAD REFERENCES ISO-8859-1 ALL
         S: b1 NO [BADCHARSET (UTF-8 US-ASCII)] *
         C: b2 UID THREAD ORDEREDSUBJECT KOI8-R ALL
         S: b2 NO [BADCHARSET (UTF-8 US-ASCII)] *
         # An algorithm we do not know, a missing charset, missing criteria: BAD.
         C: b3 THREAD XYZZY UTF-8 ALL
         S: b3 BAD *
         C: b4 THREAD REFERENCES ALL
         S: b4 BAD *
         C: b5 THREAD REFERENCES UTF-8
         S: b5 BAD *
         C: b6 THREAD
         S: b6 BAD *
         C: b7 UID THREAD REFS UTF-8 FOO
         S: b7 BAD *
         C: b8 THREAD REFERENCES UTF-8 ALL
         S: * THREAD
         S: b8 OK Thread completed.
",
    );
}

#[test]
fn capability_announces_the_algorithms() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert_tagged_ok(&caps);
    let line = caps.first().cloned().unwrap_or_default();
    for alg in ["THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "THREAD=REFS"] {
        assert!(line.split(' ').any(|w| w == alg), "{alg} missing: {line}");
    }
}
