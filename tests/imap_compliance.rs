//! Four compliance defects of issue 24, as wire transcripts against the real binary (Dovecot
//! answers all four the way these tests expect):
//! 1. `LIST` with a pattern holding `&` that is not modified UTF-7 answers OK;
//! 2. `LIST (SUBSCRIBED RECURSIVEMATCH)` does not add a parent with CHILDINFO when its
//!    subscribed child is itself matched (RFC 5258 section 3.5);
//! 3. `SEARCH FROM/TO/CC/BCC` match addresses with comments and folding whitespace inside the
//!    addr-spec (RFC 5322 CFWS) removed;
//! 4. the first session to open a mailbox after APPENDs sees them `\Recent`, EXAMINE does not
//!    take \Recent away (RFC 3501 section 2.3.2).

mod common;

use common::*;

/// APPEND with a non-synchronizing literal (LITERAL+) and no flags.
fn append(c: &mut Client, mailbox: &str, msg: &str) {
    c.send_raw(format!("ap APPEND {mailbox} {{{}+}}\r\n{msg}\r\n", msg.len()).as_bytes());
    assert_tagged_ok(&c.until("ap "));
}

/// Message 1 has comments and folding inside each addr-spec; message 2 has the same addresses
/// written plainly; message 3 none of them.
const CFWS: &str = "From: <user-from (comment)@ (comment) domain.org>\r\n\
To: Ann (the boss) <ann (x)\r\n . (y) lee @ (z) example.org>\r\n\
Cc: cc-user (c1) @ (c2) example.net (Carl)\r\n\
Bcc: \"quoted (not a comment)\" @ example.com\r\n\
Subject: cfws\r\n\
\r\n\
body\r\n";
const PLAIN: &str = "From: user-from@domain.org\r\n\
To: ann.lee@example.org\r\n\
Subject: plain\r\n\
\r\n\
body\r\n";
const OTHER: &str = "From: someone@else.org\r\n\
To: nobody@example.org\r\n\
Subject: other (comment)@ x\r\n\
\r\n\
body\r\n";

#[test]
fn search_address_keys_ignore_comments_inside_addr_spec() {
    let s = Server::start();
    let mut c = login_demo(&s);
    for m in [CFWS, PLAIN, OTHER] {
        append(&mut c, "INBOX", m);
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // Twice: the first run reads the headers (and fills the search cache), the second may be
    // answered from the cache; both must agree.
    for round in 0..2 {
        run_transcript(
            &mut c,
            &format!(
                "C: a{round} SEARCH FROM user-from@domain.org\n\
                 S: * SEARCH 1 2\n\
                 S: a{round} OK Search completed.\n\
                 C: b{round} SEARCH FROM \"user-from@domain.org\" TO ann.lee@example.org\n\
                 S: * SEARCH 1 2\n\
                 S: b{round} OK Search completed.\n\
                 C: c{round} SEARCH TO \"Ann <ann.lee@example.org>\"\n\
                 S: * SEARCH 1\n\
                 S: c{round} OK Search completed.\n\
                 C: d{round} SEARCH CC cc-user@example.net\n\
                 S: * SEARCH 1\n\
                 S: d{round} OK Search completed.\n\
                 C: e{round} SEARCH BCC \"quoted (not a comment)@example.com\"\n\
                 S: * SEARCH 1\n\
                 S: e{round} OK Search completed.\n\
                 C: f{round} SEARCH FROM \"(comment)\"\n\
                 S: * SEARCH 1\n\
                 S: f{round} OK Search completed.\n\
                 C: g{round} SEARCH OR FROM else.org SUBJECT \"(comment)@\"\n\
                 S: * SEARCH 3\n\
                 S: g{round} OK Search completed.\n\
                 C: h{round} UID SEARCH NOT FROM user-from@domain.org\n\
                 S: * SEARCH 3\n\
                 S: h{round} OK Search completed.\n"
            ),
        );
    }
}

/// RFC 3501 2.3.2: "\Recent ... This session is the first session to have been notified about
/// this message; if the session is read-write, subsequent sessions will not see \Recent set for
/// this message." So the first EXAMINE after two APPENDs reports them, without taking them, and
/// the SELECT after it still gets them; later sessions do not.
#[test]
fn examine_reports_recent_without_taking_it() {
    let s = Server::start();
    let mut a = login_demo(&s);
    append(&mut a, "INBOX", PLAIN);
    append(&mut a, "INBOX", OTHER);
    run_transcript(
        &mut a,
        "C: e1 EXAMINE INBOX\n\
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n\
         S: * OK [PERMANENTFLAGS ()] *\n\
         S: * 2 EXISTS\n\
         S: * 2 RECENT\n\
         S: * OK [UNSEEN 1] *\n\
         S: * OK [UIDVALIDITY {*}\n\
         S: * OK [UIDNEXT 3] *\n\
         S: * OK [MAILBOXID {*}] Ok\n\
         S: e1 OK [READ-ONLY] Examine completed.\n\
         C: r1 SEARCH RECENT\n\
         S: * SEARCH 1 2\n\
         S: r1 OK Search completed.\n\
         C: f1 FETCH 1:2 FLAGS\n\
         S: * 1 FETCH (FLAGS (\\Recent))\n\
         S: * 2 FETCH (FLAGS (\\Recent))\n\
         S: f1 OK Fetch completed.\n",
    );
    // Another session's EXAMINE and STATUS: still nobody took them.
    let mut b = login_demo(&s);
    run_transcript(
        &mut b,
        "C: st STATUS INBOX (MESSAGES RECENT)\n\
         S: * STATUS INBOX (MESSAGES 2 RECENT 2)\n\
         S: st OK Status completed.\n\
         C: e2 EXAMINE INBOX\n\
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n\
         S: * OK [PERMANENTFLAGS ()] *\n\
         S: * 2 EXISTS\n\
         S: * 2 RECENT\n\
         S: * OK [UNSEEN 1] *\n\
         S: * OK [UIDVALIDITY {*}\n\
         S: * OK [UIDNEXT 3] *\n\
         S: * OK [MAILBOXID {*}] Ok\n\
         S: e2 OK [READ-ONLY] Examine completed.\n",
    );
    // The first SELECT takes them.
    run_transcript(
        &mut a,
        "C: s1 SELECT INBOX\n\
         S: * OK [CLOSED] Previous mailbox closed.\n\
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n\
         S: * OK [PERMANENTFLAGS ({*}\n\
         S: * 2 EXISTS\n\
         S: * 2 RECENT\n\
         S: * OK [UNSEEN 1] *\n\
         S: * OK [UIDVALIDITY {*}\n\
         S: * OK [UIDNEXT 3] *\n\
         S: * OK [MAILBOXID {*}] Ok\n\
         S: s1 OK [READ-WRITE] Select completed.\n",
    );
    // The read-only session keeps what it was told; a new session sees no \Recent any more.
    run_transcript(
        &mut b,
        "C: r2 SEARCH RECENT\n\
         S: * SEARCH 1 2\n\
         S: r2 OK Search completed.\n",
    );
    let mut c = login_demo(&s);
    run_transcript(
        &mut c,
        "C: st STATUS INBOX (RECENT)\n\
         S: * STATUS INBOX (RECENT 0)\n\
         S: st OK Status completed.\n\
         C: s2 SELECT INBOX\n\
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n\
         S: * OK [PERMANENTFLAGS ({*}\n\
         S: * 2 EXISTS\n\
         S: * 0 RECENT\n\
         S: * OK [UNSEEN 1] *\n\
         S: * OK [UIDVALIDITY {*}\n\
         S: * OK [UIDNEXT 3] *\n\
         S: * OK [MAILBOXID {*}] Ok\n\
         S: s2 OK [READ-WRITE] Select completed.\n",
    );
}

/// The pattern of Dovecot's compliance run: its `&` starts no valid modified UTF-7 shift. Like
/// Dovecot, the pattern is then taken as sent, so its `&` is a plain one, as in the mailbox the
/// client writes with `&-`; a broken reference is no error either. (Maildir++ names cannot hold
/// `.`, so the mailboxes created are the pattern's text without it.)
#[test]
fn list_pattern_that_is_not_modified_utf7_answers_ok() {
    let s = Server::start();
    let mut c = login_demo(&s);
    run_transcript(
        &mut c,
        "C: l0 LIST \"\" \"!#$$&'+,-.0123456789:;<=>?@^_`|[}%*\"\n\
         S: l0 OK List completed.\n\
         C: c1 CREATE \"!#$$&-'+,-0123456789:;<=>?@^_`|[}\"\n\
         S: c1 OK [MAILBOXID {*}] Create completed.\n\
         C: c2 CREATE \"!#$$&-'+,-0123456789:;<=>?@^_`|[}/sub\"\n\
         S: c2 OK [MAILBOXID {*}] Create completed.\n\
         C: l1 LIST \"\" \"!#$$&'+,-0123456789:;<=>?@^_`|[}%*\"\n\
         S: * LIST (\\HasChildren) \"/\" !#$$&-'+,-0123456789:;<=>?@^_`|[}\n\
         S: * LIST (\\HasNoChildren) \"/\" !#$$&-'+,-0123456789:;<=>?@^_`|[}/sub\n\
         S: l1 OK List completed.\n\
         C: l2 LIST \"\" \"!#$$&'+,-0123456789:;<=>?@^_`|[}%\"\n\
         S: * LIST (\\HasChildren) \"/\" !#$$&-'+,-0123456789:;<=>?@^_`|[}\n\
         S: l2 OK List completed.\n\
         C: l3 LIST \"!#$$&'+,-0123456789:;<=>?@^_`|[}/\" %\n\
         S: * LIST (\\HasNoChildren) \"/\" !#$$&-'+,-0123456789:;<=>?@^_`|[}/sub\n\
         S: l3 OK List completed.\n\
         C: l4 LIST \"\" (\"&Jjo*\" \"&\" INBOX)\n\
         S: * LIST (\\HasNoChildren) \"/\" INBOX\n\
         S: l4 OK List completed.\n\
         # LSUB takes such patterns the same way.\n\
         C: s1 SUBSCRIBE \"!#$$&-'+,-0123456789:;<=>?@^_`|[}/sub\"\n\
         S: s1 OK Subscribe completed.\n\
         C: l5 LSUB \"\" \"!#$$&'+,-0123456789:;<=>?@^_`|[}*\"\n\
         S: * LSUB () \"/\" !#$$&-'+,-0123456789:;<=>?@^_`|[}/sub\n\
         S: l5 OK Lsub completed.\n\
         C: l6 LSUB \"&'\" \"*\"\n\
         S: l6 OK Lsub completed.\n",
    );
}

/// RFC 5258 RECURSIVEMATCH as Dovecot answers it: a parent gets listed with CHILDINFO for a
/// subscribed descendant that does not match itself; a subscribed child that matches is listed
/// on its own, and its parent is not added.
#[test]
fn recursivematch_lists_a_parent_only_for_children_that_do_not_match() {
    let s = Server::start();
    let mut c = login_demo(&s);
    for (i, name) in ["a", "a/test2", "a/test2/test1", "b", "b/c"]
        .iter()
        .enumerate()
    {
        assert_tagged_ok(&c.cmd(&format!("c{i}"), &format!("CREATE {name}")));
    }
    assert_tagged_ok(&c.cmd("s1", "SUBSCRIBE a/test2/test1"));
    assert_tagged_ok(&c.cmd("s2", "SUBSCRIBE b"));
    assert_tagged_ok(&c.cmd("s3", "SUBSCRIBE b/c"));
    run_transcript(
        &mut c,
        "C: l1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a/test2 a/test2/test1)\n\
         S: * LIST (\\HasNoChildren \\Subscribed) \"/\" a/test2/test1\n\
         S: l1 OK List completed.\n\
         # The child does not match a/%: its nearest matching ancestor is listed for it.\n\
         C: l2 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" a/%\n\
         S: * LIST (\\HasChildren) \"/\" a/test2 (\"CHILDINFO\" (\"SUBSCRIBED\"))\n\
         S: l2 OK List completed.\n\
         # Only the nearest one: a is not listed for it as well.\n\
         C: l3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a a/%)\n\
         S: * LIST (\\HasChildren) \"/\" a/test2 (\"CHILDINFO\" (\"SUBSCRIBED\"))\n\
         S: l3 OK List completed.\n\
         C: l4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a b)\n\
         S: * LIST (\\HasChildren) \"/\" a (\"CHILDINFO\" (\"SUBSCRIBED\"))\n\
         S: * LIST (\\HasChildren \\Subscribed) \"/\" b (\"CHILDINFO\" (\"SUBSCRIBED\"))\n\
         S: l4 OK List completed.\n\
         # Everything matches: subscribed names only; b, listed anyway, has a subscribed child.\n\
         C: l5 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a* b*)\n\
         S: * LIST (\\HasNoChildren \\Subscribed) \"/\" a/test2/test1\n\
         S: * LIST (\\HasChildren \\Subscribed) \"/\" b (\"CHILDINFO\" (\"SUBSCRIBED\"))\n\
         S: * LIST (\\HasNoChildren \\Subscribed) \"/\" b/c\n\
         S: l5 OK List completed.\n\
         # Without RECURSIVEMATCH there is no CHILDINFO and no parent.\n\
         C: l6 LIST (SUBSCRIBED) \"\" (a b)\n\
         S: * LIST (\\HasChildren \\Subscribed) \"/\" b\n\
         S: l6 OK List completed.\n",
    );
}
