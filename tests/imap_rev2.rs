//! IMAP4rev2 (RFC 9051) on the wire, against the real binary, beside IMAP4rev1 (RFC 3501).
//!
//! The server announces both (RFC 9051 Appendix A); a session is rev2 only after
//! `ENABLE IMAP4rev2`, and a session that does not enable is served exactly as before. The tests
//! put a rev1 client and a rev2 client side by side on the same mailbox and check that each is
//! told what its version says (docs/imap4rev2.md has the table of RFC 9051 Appendix E):
//!
//! - no `* n RECENT` and no `\Recent` in FLAGS for rev2 (Appendix E item 12), while the rev1
//!   client on the same mailbox keeps both, also for mail that arrives while both are selected
//!   and during IDLE; a rev2 SELECT does not take `\Recent` away from the rev1 session;
//! - SELECT/EXAMINE in rev2: an untagged LIST of the mailbox with its attributes (item 10), no
//!   RECENT and no `[UNSEEN n]` (items 11, 12), `[CLOSED]` when a mailbox was selected (item 9);
//! - SEARCH answered with ESEARCH, `ALL` when there is no RETURN (item 4, RFC 9051 6.4.4);
//! - STATUS SIZE and DELETED (item 3); `UID EXPUNGE` (item 2, UIDPLUS folded in);
//! - unsolicited FETCH carries UID (item 21);
//! - UTF-8 mailbox names and header data (item 16, RFC 9051 5.1) for rev2, modified UTF-7 and
//!   7-bit ENVELOPE for rev1; SEARCH CHARSET stays valid in rev2;
//! - `ENABLE IMAP4rev2` once a mailbox is selected is `BAD`;
//! - DELETE of a `\Noselect` parent with children: `[HASCHILDREN]` for rev2 (RFC 9051 7.1),
//!   `[CANNOT]` as before for rev1;
//! - SEARCH LARGER/SMALLER take a 64-bit number (item 1).
//!
//! Every expected value is worked out by hand from the messages below: their sizes are counted
//! line by line in the comments, and both backends store the bytes as sent.

mod common;

use common::*;

/// 21 + 16 + 2 + 7 = 46 octets: "From: a@example.com\r\n" (19 + 2), "Subject: first\r\n"
/// (14 + 2), the empty line, "hello\r\n".
const MSG_A: &str = "From: a@example.com\r\nSubject: first\r\n\r\nhello\r\n";
/// 21 + 17 + 2 + 8 = 48 octets.
const MSG_B: &str = "From: b@example.com\r\nSubject: second\r\n\r\nworld!\r\n";
/// 21 + 16 + 2 + 7 = 46 octets.
const MSG_C: &str = "From: c@example.com\r\nSubject: third\r\n\r\nagain\r\n";

/// A logged-in client that enabled IMAP4rev2.
fn rev2_client(s: &Server) -> Client {
    let mut c = login_demo(s);
    assert_eq!(
        c.cmd("e", "ENABLE IMAP4rev2"),
        ["* ENABLED IMAP4rev2", "e OK Enabled."]
    );
    c
}

#[test]
fn the_hand_counted_sizes_are_right() {
    assert_eq!(MSG_A.len(), 46);
    assert_eq!(MSG_B.len(), 48);
    assert_eq!(MSG_C.len(), 46);
}

#[test]
fn both_versions_are_announced_and_rev2_is_enabled() {
    let s = Server::start();
    let mut c = s.imap();
    let greeting = c.line();
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{greeting}"
    );
    let login = c.cmd("l", "LOGIN demo demo");
    assert!(
        login[0].starts_with("l OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{login:?}"
    );
    let caps = c.cmd("c", "CAPABILITY");
    let words: Vec<&str> = caps[0].split(' ').collect();
    // RFC 9051 Appendix E item 2: the folded-in extensions stay announced for rev1 clients.
    for w in [
        "IMAP4rev1",
        "IMAP4rev2",
        "ENABLE",
        "NAMESPACE",
        "UNSELECT",
        "UIDPLUS",
        "ESEARCH",
        "SEARCHRES",
        "IDLE",
        "SASL-IR",
        "LIST-EXTENDED",
        "LIST-STATUS",
        "MOVE",
        "LITERAL+",
        "BINARY",
        "SPECIAL-USE",
        "STATUS=SIZE",
    ] {
        assert!(words.contains(&w), "{w} missing: {caps:?}");
    }
    // RFC 5161 3.1: ENABLED lists only what this command turned on.
    run_transcript(
        &mut c,
        "C: e1 ENABLE IMAP4rev2 CONDSTORE
         S: * ENABLED IMAP4rev2 CONDSTORE
         S: e1 OK Enabled.
         C: e2 ENABLE imap4rev2
         S: * ENABLED
         S: e2 OK Enabled.
         C: n NAMESPACE
         S: * NAMESPACE ((\"\" \"/\")) NIL NIL
         S: n OK Namespace completed.",
    );

    // RFC 9051 6.3.1: not after SELECT. Refused, and the session stays rev1 (RECENT still sent).
    let mut v1 = login_demo(&s);
    assert_tagged_ok(&v1.cmd("s", "SELECT INBOX"));
    run_transcript(
        &mut v1,
        "C: e ENABLE IMAP4rev2
         S: e BAD ENABLE IMAP4rev2 is only valid before a mailbox is selected (RFC 9051 6.3.1).
         C: u UNSELECT
         S: u OK Unselect completed.
         C: s EXAMINE INBOX
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
         S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
         S: * 0 EXISTS
         S: * 0 RECENT
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 1] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: s OK [READ-ONLY] Examine completed.",
    );
}

#[test]
fn rev1_and_rev2_side_by_side_on_one_mailbox() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", MSG_A.as_bytes());
    let mut v2 = rev2_client(&s);
    let mut v1 = login_demo(&s);

    // The rev2 client selects first. RFC 9051 6.3.2: FLAGS, EXISTS, LIST, PERMANENTFLAGS,
    // UIDNEXT, UIDVALIDITY; no RECENT, no UNSEEN. INBOX has no children and no special use.
    run_transcript(
        &mut v2,
        "C: a SELECT INBOX
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
         S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.
         S: * 1 EXISTS
         S: * LIST (\\HasNoChildren) \"/\" INBOX
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 2] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: a OK [READ-WRITE] Select completed.",
    );
    // The rev1 client selecting second still sees message 1 as recent: the rev2 session, which
    // is never told about \Recent, did not take it (RFC 3501 2.3.2: the first session to be
    // notified sees it).
    run_transcript(
        &mut v1,
        "C: a SELECT INBOX
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
         S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.
         S: * 1 EXISTS
         S: * 1 RECENT
         S: * OK [UNSEEN 1] First unseen.
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 2] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: a OK [READ-WRITE] Select completed.",
    );

    // New mail from a third session. The rev2 client hears of it first: EXISTS only.
    s.append_message("demo", "demo", "INBOX", MSG_B.as_bytes());
    run_transcript(
        &mut v2,
        "C: b NOOP
         S: * 2 EXISTS
         S: b OK NOOP completed.
         C: c FETCH 1:2 FLAGS
         S: * 1 FETCH (FLAGS ())
         S: * 2 FETCH (FLAGS ())
         S: c OK Fetch completed.",
    );
    // The rev1 client: EXISTS and RECENT, which counts every message \Recent for it (RFC 3501
    // 7.3.2), so 2; and \Recent on both messages.
    run_transcript(
        &mut v1,
        "C: b NOOP
         S: * 2 EXISTS
         S: * 2 RECENT
         S: b OK NOOP completed.
         C: c FETCH 1:2 FLAGS
         S: * 1 FETCH (FLAGS (\\Recent))
         S: * 2 FETCH (FLAGS (\\Recent))
         S: c OK Fetch completed.",
    );

    // STORE answers: \Recent for rev1 only. The other session hears of the change through an
    // unsolicited FETCH that carries the UID (RFC 9051 Appendix E item 21).
    run_transcript(
        &mut v2,
        "C: d STORE 2 +FLAGS (\\Seen)
         S: * 2 FETCH (FLAGS (\\Seen))
         S: d OK Store completed.",
    );
    run_transcript(
        &mut v1,
        "C: d STORE 1 +FLAGS (\\Flagged)
         S: * 1 FETCH (FLAGS (\\Flagged \\Recent))
         S: d OK Store completed.
         C: d2 NOOP
         S: * 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))
         S: d2 OK NOOP completed.",
    );
    run_transcript(
        &mut v2,
        "C: e NOOP
         S: * 1 FETCH (UID 1 FLAGS (\\Flagged))
         S: e OK NOOP completed.",
    );

    // SEARCH: `* SEARCH` for rev1; ESEARCH for rev2, with ALL when no RETURN was given and just
    // the correlator when nothing matched (RFC 9051 6.4.4). RECENT matches nothing in rev2,
    // where no message is ever \Recent.
    run_transcript(
        &mut v1,
        "C: f SEARCH UNSEEN
         S: * SEARCH 1
         S: f OK Search completed.
         C: g SEARCH RECENT
         S: * SEARCH 1 2
         S: g OK Search completed.
         C: h UID SEARCH ALL
         S: * SEARCH 1 2
         S: h OK Search completed.",
    );
    run_transcript(
        &mut v2,
        "C: f SEARCH UNSEEN
         S: * ESEARCH (TAG \"f\") ALL 1
         S: f OK Search completed.
         C: g SEARCH RECENT
         S: * ESEARCH (TAG \"g\")
         S: g OK Search completed.
         C: h UID SEARCH ALL
         S: * ESEARCH (TAG \"h\") UID ALL 1:2
         S: h OK Search completed.
         C: i SEARCH RETURN (MIN COUNT) FLAGGED
         S: * ESEARCH (TAG \"i\") MIN 1 COUNT 1
         S: i OK Search completed.
         C: j UID SEARCH DELETED
         S: * ESEARCH (TAG \"j\") UID
         S: j OK Search completed.",
    );

    // STATUS SIZE and DELETED (RFC 9051 6.3.11): 46 + 48 octets, one message \Deleted.
    run_transcript(
        &mut v1,
        "C: k STORE 1 +FLAGS.SILENT (\\Deleted)
         S: k OK Store completed.",
    );
    run_transcript(
        &mut v2,
        "C: k NOOP
         S: * 1 FETCH (UID 1 FLAGS (\\Flagged \\Deleted))
         S: k OK NOOP completed.
         C: l STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE DELETED)
         S: * STATUS INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 1 SIZE 94 DELETED 1)
         S: l OK Status completed.",
    );

    // IDLE: new mail reaches the idling rev2 client as EXISTS alone.
    v2.send("m IDLE");
    assert_eq!(v2.line(), "+ idling");
    s.append_message("demo", "demo", "INBOX", MSG_C.as_bytes());
    assert_eq!(v2.line(), "* 3 EXISTS");
    run_transcript(
        &mut v2,
        "C: DONE
         S: m OK Idle completed.",
    );
    run_transcript(
        &mut v1,
        "C: m NOOP
         S: * 3 EXISTS
         S: * 3 RECENT
         S: m OK NOOP completed.",
    );

    // UID EXPUNGE (folded in by rev2) removes only the named message; both get EXPUNGE.
    run_transcript(
        &mut v2,
        "C: n UID EXPUNGE 1
         S: * 1 EXPUNGE
         S: n OK Expunge completed.
         C: o STATUS INBOX (MESSAGES SIZE DELETED)
         S: * STATUS INBOX (MESSAGES 2 SIZE 94 DELETED 0)
         S: o OK Status completed.",
    );
    run_transcript(
        &mut v1,
        "C: o NOOP
         S: * 1 EXPUNGE
         S: o OK NOOP completed.
         C: p FETCH 1:* (UID FLAGS)
         S: * 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))
         S: * 2 FETCH (UID 3 FLAGS (\\Recent))
         S: p OK Fetch completed.",
    );
}

#[test]
fn rev2_select_lists_the_mailbox_and_closes_the_previous_one() {
    let s = Server::start();
    let mut c = rev2_client(&s);
    // RFC 9051 6.3.2: "The list of mailbox attributes MUST be accurate": the special use and
    // the children are those a LIST gives.
    run_transcript(
        &mut c,
        "C: a CREATE Notes (USE (\\Flagged))
         S: a OK [MAILBOXID {*}] Create completed.
         C: b CREATE Notes/2026
         S: b OK [MAILBOXID {*}] Create completed.
         C: c LIST \"\" Notes
         S: * LIST (\\HasChildren \\Flagged) \"/\" Notes
         S: c OK List completed.
         C: d EXAMINE Notes
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
         S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
         S: * 0 EXISTS
         S: * LIST (\\HasChildren \\Flagged) \"/\" Notes
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 1] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: d OK [READ-ONLY] Examine completed.
         C: e SELECT Notes/2026
         S: * OK [CLOSED] Previous mailbox closed.
         S: * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)
         S: * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.
         S: * 0 EXISTS
         S: * LIST (\\HasNoChildren) \"/\" Notes/2026
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 1] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: e OK [READ-WRITE] Select completed.
         C: f SELECT Nosuch
         S: * OK [CLOSED] Previous mailbox closed.
         S: f NO [NONEXISTENT] *",
    );
}

const UTF8_MESSAGE: &str = "From: plain@example.com\r\n\
Subject: Grüße aus Köln\r\n\
\r\n\
Hallo\r\n";

#[test]
fn rev2_names_and_headers_are_utf8() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", UTF8_MESSAGE.as_bytes());
    let mut v2 = rev2_client(&s);
    let mut v1 = login_demo(&s);
    // RFC 9051 5.1: rev2 mailbox names are UTF-8; rev1 keeps modified UTF-7 ("ü" is &APw-).
    run_transcript(
        &mut v2,
        "C: a CREATE \"Entwürfe\"
         S: a OK [MAILBOXID {*}] Create completed.
         C: b LIST \"\" \"Entw*\"
         S: * LIST (\\HasNoChildren) \"/\" \"Entwürfe\"
         S: b OK List completed.
         C: c STATUS \"Entwürfe\" (MESSAGES SIZE)
         S: * STATUS \"Entwürfe\" (MESSAGES 0 SIZE 0)
         S: c OK Status completed.
         C: d SELECT \"Entwürfe\"
         S: * FLAGS {*}
         S: * OK [PERMANENTFLAGS {*}
         S: * 0 EXISTS
         S: * LIST (\\HasNoChildren) \"/\" \"Entwürfe\"
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 1] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: d OK [READ-WRITE] Select completed.",
    );
    run_transcript(
        &mut v1,
        "C: b LIST \"\" \"Entw*\"
         S: * LIST (\\HasNoChildren) \"/\" Entw&APw-rfe
         S: b OK List completed.",
    );

    // Header data: as stored for rev2 (a literal, since a quoted string here holds 7-bit text
    // only), 7-bit for rev1 (RFC 9051 Appendix A; the RFC 2047 word is the base64 of the UTF-8
    // bytes of "Grüße aus Köln").
    assert_tagged_ok(&v2.cmd("x", "EXAMINE INBOX"));
    let (got, tagged) = v2.raw_exchange("f", "FETCH 1 (ENVELOPE)");
    assert_eq!(tagged, "f OK Fetch completed.");
    let subject = "Grüße aus Köln";
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!(
            "* 1 FETCH (ENVELOPE (NIL {{{}}}\r\n{subject} ((NIL NIL \"plain\" \"example.com\")) \
             ((NIL NIL \"plain\" \"example.com\")) ((NIL NIL \"plain\" \"example.com\")) NIL NIL \
             NIL NIL NIL))\r\n",
            subject.len()
        )
    );
    assert_tagged_ok(&v1.cmd("x", "EXAMINE INBOX"));
    let r = v1.cmd("f", "FETCH 1 (ENVELOPE)");
    assert_eq!(
        r,
        [
            "* 1 FETCH (ENVELOPE (NIL \"=?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4=?=\" \
             ((NIL NIL \"plain\" \"example.com\")) ((NIL NIL \"plain\" \"example.com\")) \
             ((NIL NIL \"plain\" \"example.com\")) NIL NIL NIL NIL NIL))",
            "f OK Fetch completed."
        ]
    );
    // Unlike after ENABLE UTF8=ACCEPT (RFC 6855 3), SEARCH CHARSET stays valid in rev2: RFC
    // 9051 6.4.4 keeps it and requires UTF-8 among the charsets.
    v2.send_raw("g SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nKöln\r\n".as_bytes());
    assert_eq!(
        v2.until("g "),
        ["* ESEARCH (TAG \"g\") ALL 1", "g OK Search completed."]
    );
}

#[test]
fn delete_of_a_parent_kept_by_its_children() {
    let s = Server::start();
    let mut v2 = rev2_client(&s);
    let mut v1 = login_demo(&s);
    // Deleting P leaves it as a \Noselect parent of P/c (RFC 9051 6.3.4 allows either); a second
    // DELETE of it fails because of the child.
    run_transcript(
        &mut v2,
        "C: a CREATE P/c
         S: a OK [MAILBOXID {*}] Create completed.
         C: b DELETE P
         S: b NO [HASCHILDREN] mailbox has children and is not selectable.
         C: c LIST \"\" P*
         S: * LIST (\\Noselect \\HasChildren) \"/\" P
         S: * LIST (\\HasNoChildren) \"/\" P/c
         S: c OK List completed.",
    );
    run_transcript(
        &mut v1,
        "C: b DELETE P
         S: b NO [CANNOT] mailbox has children and is not selectable.",
    );
}

#[test]
fn sizes_in_search_are_64_bit_and_rev2_has_no_recent_keys() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", MSG_A.as_bytes());
    let mut v2 = rev2_client(&s);
    assert_tagged_ok(&v2.cmd("s", "EXAMINE INBOX"));
    // RFC 9051: `"LARGER" SP number64`. The message has 46 octets.
    run_transcript(
        &mut v2,
        "C: a SEARCH LARGER 5000000000
         S: * ESEARCH (TAG \"a\")
         S: a OK Search completed.
         C: b SEARCH SMALLER 5000000000
         S: * ESEARCH (TAG \"b\") ALL 1
         S: b OK Search completed.
         C: c SEARCH LARGER 45 SMALLER 47
         S: * ESEARCH (TAG \"c\") ALL 1
         S: c OK Search completed.
         C: d SEARCH LARGER 9223372036854775808
         S: d BAD *",
    );
    // Nobody selected INBOX, so the message is recent for whoever does; a rev1 EXAMINE shows it
    // (RFC 3501 2.3.2). In a rev2 session no message is ever \Recent, in FETCH or in SEARCH:
    // RECENT and NEW match nothing, OLD everything.
    run_transcript(
        &mut v2,
        "C: e SEARCH RECENT
         S: * ESEARCH (TAG \"e\")
         S: e OK Search completed.
         C: f SEARCH NEW
         S: * ESEARCH (TAG \"f\")
         S: f OK Search completed.
         C: g SEARCH OLD
         S: * ESEARCH (TAG \"g\") ALL 1
         S: g OK Search completed.
         C: h FETCH 1 FLAGS
         S: * 1 FETCH (FLAGS ())
         S: h OK Fetch completed.",
    );
    let mut v1 = login_demo(&s);
    assert_tagged_ok(&v1.cmd("s", "EXAMINE INBOX"));
    run_transcript(
        &mut v1,
        "C: e SEARCH RECENT
         S: * SEARCH 1
         S: e OK Search completed.
         C: h FETCH 1 FLAGS
         S: * 1 FETCH (FLAGS (\\Recent))
         S: h OK Fetch completed.",
    );
}

#[test]
fn rev2_list_options_and_the_deprecated_commands() {
    let s = Server::start();
    let mut c = rev2_client(&s);
    // RFC 9051 6.3.9: a subscribed name that does not exist is \NonExistent; REMOTE may be
    // ignored by a server without remote mailboxes, so no \Remote is ever sent; \HasChildren or
    // \HasNoChildren comes with CHILDREN (and always, here). LSUB and CHECK are deprecated
    // (Appendix E items 17, 19) but still answered, as Dovecot does.
    run_transcript(
        &mut c,
        "C: a SUBSCRIBE Gone
         S: a OK Subscribe completed.
         C: b LIST (SUBSCRIBED REMOTE) \"\" Gone
         S: * LIST (\\NonExistent \\Subscribed) \"/\" Gone
         S: b OK List completed.
         C: c LIST (REMOTE) \"\" INBOX RETURN (CHILDREN)
         S: * LIST (\\HasNoChildren) \"/\" INBOX
         S: c OK List completed.
         C: d LIST \"\" (INBOX Gone)
         S: * LIST (\\HasNoChildren) \"/\" INBOX
         S: d OK List completed.
         C: e LSUB \"\" Gone
         S: * LSUB () \"/\" Gone
         S: e OK Lsub completed.
         C: f SELECT INBOX
         S: * FLAGS {*}
         S: * OK [PERMANENTFLAGS {*}
         S: * 0 EXISTS
         S: * LIST (\\HasNoChildren) \"/\" INBOX
         S: * OK [UIDVALIDITY {*}] UIDs valid
         S: * OK [UIDNEXT 1] Predicted next UID
         S: * OK [MAILBOXID {*}] Ok
         S: f OK [READ-WRITE] Select completed.
         C: g CHECK
         S: g OK Check completed.
         C: h CLOSE
         S: h OK Close completed.",
    );
}
