//! UTF8=ACCEPT (RFC 6855) on the wire, against the real binary.
//!
//! - ENABLE UTF8=ACCEPT in the authenticated state, `BAD` in the selected state (RFC 6855 3).
//! - Mailbox names: modified UTF-7 (RFC 3501 5.1.3) for a client that did not enable, UTF-8
//!   quoted strings both ways for one that did, in CREATE, LIST, LIST-STATUS, LSUB, STATUS,
//!   SELECT and RENAME; after enabling `&` is an ordinary character; 8-bit octets that are not
//!   UTF-8 are `BAD`, names that are not Net-Unicode (NFC, RFC 5198) are refused.
//! - Messages with raw UTF-8 header fields (RFC 6532): ENVELOPE and BODYSTRUCTURE as stored for
//!   an enabled client; for one that did not enable, 7-bit only (RFC 6855 8), with text as
//!   RFC 2047 encoded-words and a non-ASCII address as an empty group named after it (the
//!   simplified downgrade of RFC 6858). SEARCH finds them either way; after enabling a SEARCH
//!   with CHARSET is `BAD` (RFC 6855 3).
//!
//! Expected values are worked out by hand from those rules: modified UTF-7 of "ü" (U+00FC,
//! UTF-16 00 FC) is `&APw-`, of "é" (U+00E9) `&AOk-`; an encoded-word is `=?utf-8?b?` + the
//! base64 of the UTF-8 bytes + `?=`, computed with the base64 crate below.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;

/// RFC 2047 B encoded-word of `s` in UTF-8.
fn word(s: &str) -> String {
    format!("=?utf-8?b?{}?=", B64.encode(s))
}

/// A logged-in client that enabled UTF8=ACCEPT.
fn utf8_client(s: &Server) -> Client {
    let mut c = login_demo(s);
    assert_eq!(
        c.cmd("e", "ENABLE UTF8=ACCEPT"),
        ["* ENABLED UTF8=ACCEPT", "e OK Enabled."]
    );
    c
}

/// The lines of a command's answer joined back with CRLF, so a response carrying literals
/// (whose data a line reader splits) can be compared whole.
fn answer(c: &mut Client, tag: &str, rest: &str) -> String {
    c.cmd(tag, rest).join("\r\n")
}

#[test]
fn capability_and_enable() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let caps = c.cmd("c", "CAPABILITY");
    assert!(caps[0].split(' ').any(|w| w == "UTF8=ACCEPT"), "{caps:?}");
    run_transcript(
        &mut c,
        "C: a SELECT INBOX
         S: * FLAGS *
         S: * OK [PERMANENTFLAGS *
         S: * 0 EXISTS
         S: * 0 RECENT
         S: * OK [UIDVALIDITY *
         S: * OK [UIDNEXT *
         S: * OK [MAILBOXID {*}] Ok
         S: a OK [READ-WRITE] *
         # RFC 6855 3: only valid in the authenticated state; nothing is enabled.
         C: b ENABLE CONDSTORE UTF8=ACCEPT
         S: b BAD *
         C: c UNSELECT
         S: c OK *
         C: d ENABLE UTF8=ACCEPT
         S: * ENABLED UTF8=ACCEPT
         S: d OK Enabled.
         # Already on: not listed again (RFC 5161 3.1).
         C: e ENABLE UTF8=ACCEPT
         S: * ENABLED
         S: e OK Enabled.
         C: f LOGOUT
         S: * BYE *
         S: f OK *",
    );
}

#[test]
fn mailbox_names_before_and_after_enabling() {
    let s = Server::start();
    let mut legacy = login_demo(&s);
    run_transcript(
        &mut legacy,
        "C: a CREATE Entw&APw-rfe
         S: a OK *
         C: b LIST \"\" Entw*
         S: * LIST (\\HasNoChildren) \"/\" Entw&APw-rfe
         S: b OK List completed.
         C: c STATUS Entw&APw-rfe (MESSAGES)
         S: * STATUS Entw&APw-rfe (MESSAGES 0)
         S: c OK *",
    );

    let mut c = utf8_client(&s);
    run_transcript(
        &mut c,
        "C: a LIST \"\" Entw*
         S: * LIST (\\HasNoChildren) \"/\" \"Entwürfe\"
         S: a OK List completed.
         C: b STATUS \"Entwürfe\" (MESSAGES)
         S: * STATUS \"Entwürfe\" (MESSAGES 0)
         S: b OK *
         C: c LIST \"\" \"Entw*\" RETURN (STATUS (MESSAGES))
         S: * LIST (\\HasNoChildren) \"/\" \"Entwürfe\"
         S: * STATUS \"Entwürfe\" (MESSAGES 0)
         S: c OK List completed.
         C: d SUBSCRIBE \"Entwürfe\"
         S: d OK *
         C: e LSUB \"\" \"Entw*\"
         S: * LSUB ({*}) \"/\" \"Entwürfe\"
         S: e OK *
         # After enabling, & is an ordinary character: this is a second mailbox.
         C: f CREATE Entw&APw-rfe
         S: f OK *
         C: g LIST \"\" Entw*
         S: * LIST (\\HasNoChildren) \"/\" Entw&APw-rfe
         S: * LIST (\\HasNoChildren) \"/\" \"Entwürfe\"
         S: g OK List completed.
         C: h SELECT \"Entwürfe\"
         S: * FLAGS *
         S: * OK [PERMANENTFLAGS *
         S: * 0 EXISTS
         S: * 0 RECENT
         S: * OK [UIDVALIDITY *
         S: * OK [UIDNEXT *
         S: * OK [MAILBOXID {*}] Ok
         S: h OK [READ-WRITE] *
         C: i UNSELECT
         S: i OK *
         C: j RENAME \"Entwürfe\" \"Brouillons été\"
         S: j OK *
         C: k CREATE \"Brouillons été/Année\"
         S: k OK *",
    );

    // The legacy client sees both in modified UTF-7, the `&` of the second one as `&-`.
    run_transcript(
        &mut legacy,
        "C: d LIST \"\" Brouillons*
         S: * LIST (\\HasChildren) \"/\" \"Brouillons &AOk-t&AOk-\"
         S: * LIST (\\HasNoChildren) \"/\" \"Brouillons &AOk-t&AOk-/Ann&AOk-e\"
         S: d OK List completed.
         C: d2 LIST \"\" Entw*
         S: * LIST (\\HasNoChildren) \"/\" Entw&-APw-rfe
         S: d2 OK List completed.
         C: e STATUS \"Brouillons &AOk-t&AOk-/Ann&AOk-e\" (MESSAGES)
         S: * STATUS \"Brouillons &AOk-t&AOk-/Ann&AOk-e\" (MESSAGES 0)
         S: e OK *",
    );
}

#[test]
fn bad_utf8_names() {
    let s = Server::start();
    let mut c = utf8_client(&s);
    let before = c.cmd("l", "LIST \"\" *");
    // RFC 6855 3: 8-bit octets that are not UTF-8 are a BAD.
    c.send_raw(b"a CREATE \"caf\xe9\"\r\n");
    let r = c.until("a ");
    assert!(r.last().is_some_and(|l| l.starts_with("a BAD")), "{r:?}");
    c.send_raw(b"b LIST \"\" \"\xff*\"\r\n");
    let r = c.until("b ");
    assert!(r.last().is_some_and(|l| l.starts_with("b BAD")), "{r:?}");
    // "u" + U+0308 COMBINING DIAERESIS: the NFD spelling of "ü" is no Net-Unicode name.
    let r = c.cmd("c", "CREATE \"Entwu\u{308}rfe\"");
    assert!(
        r.last().is_some_and(|l| l.starts_with("c NO [CANNOT]")),
        "{r:?}"
    );
    let r = c.cmd("d", "CREATE \"a\u{2028}b\"");
    assert!(
        r.last().is_some_and(|l| l.starts_with("d NO [CANNOT]")),
        "{r:?}"
    );
    assert_eq!(c.cmd("l", "LIST \"\" *"), before, "nothing was created");
}

const UTF8_MESSAGE: &str = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
From: Jörg Müller <jörg@bücher.example>\r\n\
To: Anna Öberg <anna@example.com>\r\n\
Subject: Grüße aus Köln\r\n\
Message-ID: <u1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8; name=\"Köln.txt\"\r\n\
\r\n\
Hallo aus Köln\r\n";

const ASCII_MESSAGE: &str = "Date: Tue, 8 Feb 1994 10:00:00 +0000\r\n\
From: plain@example.com\r\n\
Subject: plain\r\n\
\r\n\
nothing special\r\n";

fn server_with_utf8_mail() -> Server {
    let s = Server::start();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &[UTF8_MESSAGE.as_bytes(), ASCII_MESSAGE.as_bytes()],
    );
    s
}

#[test]
fn envelope_is_downgraded_for_legacy_clients() {
    let s = server_with_utf8_mail();
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("s", "EXAMINE INBOX"));
    let jorg = format!(
        "((NIL NIL \"{}\" NIL) (NIL NIL NIL NIL))",
        word("Jörg Müller <jörg@bücher.example>")
    );
    let expected = format!(
        "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"{subject}\" {jorg} {jorg} {jorg} \
         ((\"{anna}\" NIL \"anna\" \"example.com\")) NIL NIL NIL \"<u1@example.com>\"))",
        subject = word("Grüße aus Köln"),
        anna = word("Anna Öberg"),
    );
    assert_eq!(
        c.cmd("f", "FETCH 1 ENVELOPE"),
        [expected.as_str(), "f OK Fetch completed."]
    );
    // A 7-bit message is sent exactly as before.
    assert_eq!(
        c.cmd("g", "FETCH 2 ENVELOPE"),
        [
            "* 2 FETCH (ENVELOPE (\"Tue, 8 Feb 1994 10:00:00 +0000\" \"plain\" \
             ((NIL NIL \"plain\" \"example.com\")) ((NIL NIL \"plain\" \"example.com\")) \
             ((NIL NIL \"plain\" \"example.com\")) NIL NIL NIL NIL NIL))",
            "g OK Fetch completed."
        ]
    );
    let r = c.cmd("h", "FETCH 1 BODYSTRUCTURE");
    assert_eq!(
        r[0],
        format!(
            "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"utf-8\" \"name\" \"{}\") \
             NIL NIL \"7bit\" 17 1 NIL NIL NIL NIL))",
            word("Köln.txt")
        )
    );
    // The header section itself is sent as stored (as Dovecot does; docs/ext-utf8.md).
    let r = answer(&mut c, "i", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
    assert!(r.contains("Subject: Grüße aus Köln\r\n"), "{r}");
}

#[test]
fn envelope_is_sent_as_stored_after_enabling() {
    let s = server_with_utf8_mail();
    let mut c = utf8_client(&s);
    assert_tagged_ok(&c.cmd("s", "EXAMINE INBOX"));
    let lit = |s: &str| format!("{{{}}}\r\n{s}", s.len());
    let jorg = format!(
        "(({} NIL {} {}))",
        lit("Jörg Müller"),
        lit("jörg"),
        lit("bücher.example")
    );
    let expected = format!(
        "* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" {subject} {jorg} {jorg} {jorg} \
         (({anna} NIL \"anna\" \"example.com\")) NIL NIL NIL \"<u1@example.com>\"))\r\n\
         f OK Fetch completed.",
        subject = lit("Grüße aus Köln"),
        anna = lit("Anna Öberg"),
    );
    assert_eq!(answer(&mut c, "f", "FETCH 1 ENVELOPE"), expected);
    let r = answer(&mut c, "g", "FETCH 1 BODYSTRUCTURE");
    assert!(r.contains(&format!("\"name\" {}", lit("Köln.txt"))), "{r}");
}

#[test]
fn search_and_sort_on_utf8_headers() {
    let s = server_with_utf8_mail();
    let mut legacy = login_demo(&s);
    assert_tagged_ok(&legacy.cmd("s", "EXAMINE INBOX"));
    // A legacy client sends UTF-8 in a literal with CHARSET UTF-8.
    legacy.send_raw("a SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nKöln\r\n".as_bytes());
    assert_eq!(legacy.until("a "), ["* SEARCH 1", "a OK Search completed."]);
    legacy.send_raw("b SEARCH CHARSET UTF-8 FROM {7+}\r\nbücher\r\n".as_bytes());
    assert_eq!(legacy.until("b "), ["* SEARCH 1", "b OK Search completed."]);

    let mut c = utf8_client(&s);
    assert_tagged_ok(&c.cmd("s", "EXAMINE INBOX"));
    run_transcript(
        &mut c,
        "C: a SEARCH SUBJECT \"grüße\"
         S: * SEARCH 1
         S: a OK Search completed.
         C: b SEARCH FROM \"Jörg\"
         S: * SEARCH 1
         S: b OK Search completed.
         C: c SEARCH TO \"Öberg\"
         S: * SEARCH 1
         S: c OK Search completed.
         C: d SEARCH NOT SUBJECT \"Köln\"
         S: * SEARCH 2
         S: d OK Search completed.
         # RFC 6855 3: a CHARSET after ENABLE UTF8=ACCEPT is a BAD.
         C: e SEARCH CHARSET UTF-8 SUBJECT \"Köln\"
         S: e BAD *
         C: f SEARCH CHARSET US-ASCII ALL
         S: f BAD *
         # SORT's charset is part of its grammar (RFC 5256) and stays allowed.
         C: g SORT (SUBJECT) UTF-8 ALL
         S: * SORT 1 2
         S: g OK Sort completed.",
    );
}
