//! FETCH and UID FETCH against the real binary: every attribute and macro, every section form,
//! partial fetches, the `\Seen` side effect, bad sets, bare-LF messages, a 20 MB body, messages
//! expunged by another session, and ENVELOPE/BODYSTRUCTURE of the mime fixture set.
//!
//! Responses are compared byte for byte (literals included), so a wrong size or one stray byte
//! fails the test.

mod common;

use std::path::Path;

use common::*;

// ---------- helpers ----------

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    run_transcript(&mut c, "C: L LOGIN demo demo\nS: L OK *");
    c
}

/// APPENDs with a non-synchronizing literal; returns the new UID.
fn append(c: &mut Client, flags: &str, date: Option<&str>, msg: &[u8]) -> u32 {
    let mut cmd = String::from("A APPEND INBOX");
    if !flags.is_empty() {
        cmd.push_str(&format!(" ({flags})"));
    }
    if let Some(d) = date {
        cmd.push_str(&format!(" \"{d}\""));
    }
    cmd.push_str(&format!(" {{{}+}}\r\n", msg.len()));
    c.send_raw(cmd.as_bytes());
    c.send_raw(msg);
    c.send_raw(b"\r\n");
    let lines = c.until("A ");
    let last = lines.last().cloned().unwrap_or_default();
    assert!(last.starts_with("A OK [APPENDUID "), "{lines:?}");
    last.split(' ')
        .nth(4)
        .and_then(|u| u.trim_end_matches(']').parse().ok())
        .unwrap_or_else(|| panic!("no UID in {last}"))
}

/// `FETCH` expecting OK; returns the untagged bytes.
fn fetch_ok(c: &mut Client, cmd: &str) -> Vec<u8> {
    let (out, tagged) = c.raw_exchange("F", cmd);
    assert!(
        tagged.starts_with("F OK"),
        "{cmd}: {tagged}\n{}",
        String::from_utf8_lossy(&out)
    );
    out
}

/// The exact response to a FETCH of one section: a literal, or `""` when empty.
fn section_response(seq: u32, name: &str, content: &[u8]) -> Vec<u8> {
    let mut v = format!("* {seq} FETCH ({name} ").into_bytes();
    if content.is_empty() {
        v.extend_from_slice(b"\"\"");
    } else {
        v.extend_from_slice(format!("{{{}}}\r\n", content.len()).as_bytes());
        v.extend_from_slice(content);
    }
    v.extend_from_slice(b")\r\n");
    v
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// LF → CRLF where the LF is bare: what a client must receive for a stored message.
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

const MULTI: &[u8] = b"From: Ann <ann@example.com>\r\n\
To: bob@example.com\r\n\
Subject: Sections\r\n\
Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <m1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Hello part one.\r\n\
--XX\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Inner <in@example.org>\r\n\
Subject: Inner\r\n\
\r\n\
Inner body.\r\n\
--XX--\r\n";

/// Length of MULTI's header block, blank line included.
fn header_len() -> usize {
    MULTI
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4)
}

fn selected_with(s: &Server, msgs: &[&[u8]]) -> Client {
    let mut c = login(s);
    for m in msgs {
        append(&mut c, "", None, m);
    }
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    c
}

// ---------- metadata, macros, UID FETCH ----------

#[test]
fn metadata_items_and_macros() {
    let s = Server::start();
    let mut c = login(&s);
    let msg = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
    append(
        &mut c,
        "\\Flagged $Work",
        Some("17-Jul-1996 02:44:25 -0700"),
        msg,
    );
    append(&mut c, "", Some(" 5-Mar-2021 23:01:02 +0000"), msg);
    run_transcript(
        &mut c,
        "C: S SELECT INBOX\nS: * FLAGS *\nS: * OK [PERMANENTFLAGS *\nS: * 2 EXISTS\nS: * 2 RECENT\n\
         S: * OK [UNSEEN 1] *\nS: * OK [UIDVALIDITY *\nS: * OK [UIDNEXT 3] *\nS: * OK [MAILBOXID {*}] Ok\nS: S OK [READ-WRITE] *\n\
         # The instant is stored; it is shown in UTC with a two-digit day.\n\
         C: a FETCH 1:2 (INTERNALDATE RFC822.SIZE)\n\
         S: * 1 FETCH (INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE 42)\n\
         S: * 2 FETCH (INTERNALDATE \"05-Mar-2021 23:01:02 +0000\" RFC822.SIZE 42)\n\
         S: a OK Fetch completed.\n\
         C: b FETCH 1 FAST\n\
         S: * 1 FETCH (FLAGS (\\Flagged $Work \\Recent) INTERNALDATE \"17-Jul-1996 09:44:25 +0000\" RFC822.SIZE 42)\n\
         S: b OK Fetch completed.\n\
         C: c FETCH 2 ALL\n\
         S: * 2 FETCH (FLAGS (\\Recent) INTERNALDATE \"05-Mar-2021 23:01:02 +0000\" RFC822.SIZE 42 ENVELOPE (NIL \"hi\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL))\n\
         S: c OK Fetch completed.\n\
         C: d FETCH 2 FULL\n\
         S: * 2 FETCH (FLAGS (\\Recent) INTERNALDATE \"05-Mar-2021 23:01:02 +0000\" RFC822.SIZE 42 ENVELOPE (NIL \"hi\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL) BODY (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1))\n\
         S: d OK Fetch completed.\n\
         C: e FETCH 2 (BODYSTRUCTURE UID FLAGS FLAGS)\n\
         S: * 2 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL) UID 2 FLAGS (\\Recent))\n\
         S: e OK Fetch completed.\n\
         C: f FETCH * (UID MODSEQ)\n\
         S: * OK [HIGHESTMODSEQ {*}] Highest\n\
         S: * 2 FETCH (UID 2 MODSEQ ({*}))\n\
         S: f OK Fetch completed.",
    );
}

#[test]
fn uid_fetch_always_carries_the_uid_and_skips_missing_uids() {
    let s = Server::start();
    let mut c = login(&s);
    let msg = b"Subject: x\r\n\r\ny\r\n";
    for _ in 0..3 {
        append(&mut c, "\\Seen", None, msg);
    }
    run_transcript(
        &mut c,
        "C: S EXAMINE INBOX\nS: * FLAGS *\nS: * OK [PERMANENTFLAGS *\nS: * 3 EXISTS\nS: * 3 RECENT\n\
         S: * OK [UIDVALIDITY *\nS: * OK [UIDNEXT 4] *\nS: * OK [MAILBOXID {*}] Ok\nS: S OK [READ-ONLY] *\n\
         C: a UID FETCH 2:* FLAGS\n\
         S: * 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\n\
         S: * 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\n\
         S: a OK Fetch completed.\n\
         C: b UID FETCH 2,9:20 (FLAGS UID)\n\
         S: * 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))\n\
         S: b OK Fetch completed.\n\
         C: c UID FETCH 50:* FLAGS\n\
         S: * 3 FETCH (UID 3 FLAGS (\\Seen \\Recent))\n\
         S: c OK Fetch completed.\n\
         C: d UID FETCH 50 FLAGS\n\
         S: d OK Fetch completed.\n\
         C: e FETCH 3,1 RFC822.SIZE\n\
         S: * 1 FETCH (RFC822.SIZE 17)\n\
         S: * 3 FETCH (RFC822.SIZE 17)\n\
         S: e OK Fetch completed.",
    );
}

#[test]
fn bad_sets_and_unsupported_items() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        "C: a FETCH 1 FLAGS\nS: a BAD Command not valid in this state: no mailbox is selected.\n\
         C: S SELECT INBOX\nS: * FLAGS *\nS: * OK [PERMANENTFLAGS *\nS: * 0 EXISTS\nS: * 0 RECENT\n\
         S: * OK [UIDVALIDITY *\nS: * OK [UIDNEXT 1] *\nS: * OK [MAILBOXID {*}] Ok\nS: S OK [READ-WRITE] *\n\
         # 1:* on an empty mailbox names nothing; a number beyond EXISTS is a client error.\n\
         C: b FETCH 1:* FLAGS\nS: b OK Fetch completed.\n\
         C: c FETCH 1 FLAGS\nS: c BAD Invalid messageset: message number out of range.\n\
         C: d UID FETCH 1:* FLAGS\nS: d OK Fetch completed.",
    );
    append(&mut c, "", None, b"Subject: x\r\n\r\ny\r\n");
    run_transcript(
        &mut c,
        "C: n NOOP\nS: n OK *\n\
         C: e FETCH 2 FLAGS\nS: e BAD Invalid messageset: message number out of range.\n\
         C: f FETCH 1:3 FLAGS\nS: f BAD Invalid messageset: message number out of range.\n\
         C: g FETCH 0 FLAGS\nS: g BAD *\n\
         C: h FETCH 1 (FLAGS\nS: h BAD *\n\
         C: i FETCH 1 BODY[1.HEADER.FIELDS]\nS: i BAD *\n\
         C: j FETCH 1 BODY[]<5.0>\nS: j BAD *\n\
         C: k FETCH 1 BINARY[1.TEXT]\nS: k BAD *\n\
         C: l FETCH 1 BINARY.SIZE[1]\nS: * 1 FETCH (BINARY.SIZE[1] 3)\nS: l OK Fetch completed.\n\
         C: m FETCH 1 FROB\nS: m BAD *\n\
         C: o FETCH 1 FLAGS\nS: * 1 FETCH (FLAGS (\\Recent))\nS: o OK Fetch completed.",
    );
}

// ---------- sections ----------

#[test]
fn every_section_form_of_a_multipart_message() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MULTI]);
    let (header, text) = MULTI.split_at(header_len());
    assert!(header.ends_with(b"\r\n\r\n") && text.starts_with(b"preamble"));
    let cases: &[(&str, &str, &[u8])] = &[
        ("BODY.PEEK[]", "BODY[]", MULTI),
        ("BODY.PEEK[HEADER]", "BODY[HEADER]", header),
        ("BODY.PEEK[TEXT]", "BODY[TEXT]", text),
        ("RFC822.HEADER", "RFC822.HEADER", header),
        (
            "BODY.PEEK[HEADER.FIELDS (Subject From)]",
            "BODY[HEADER.FIELDS (Subject From)]",
            b"From: Ann <ann@example.com>\r\nSubject: Sections\r\n\r\n",
        ),
        (
            "BODY.PEEK[HEADER.FIELDS (X-None)]",
            "BODY[HEADER.FIELDS (X-None)]",
            b"\r\n",
        ),
        (
            "BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date Message-ID MIME-Version)]",
            "BODY[HEADER.FIELDS.NOT (Subject From To Date Message-ID MIME-Version)]",
            b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n",
        ),
        ("BODY.PEEK[1]", "BODY[1]", b"Hello part one."),
        (
            "BODY.PEEK[1.MIME]",
            "BODY[1.MIME]",
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n",
        ),
        (
            "BODY.PEEK[2]",
            "BODY[2]",
            b"From: Inner <in@example.org>\r\nSubject: Inner\r\n\r\nInner body.",
        ),
        (
            "BODY.PEEK[2.MIME]",
            "BODY[2.MIME]",
            b"Content-Type: message/rfc822\r\n\r\n",
        ),
        (
            "BODY.PEEK[2.HEADER]",
            "BODY[2.HEADER]",
            b"From: Inner <in@example.org>\r\nSubject: Inner\r\n\r\n",
        ),
        (
            "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]",
            "BODY[2.HEADER.FIELDS (SUBJECT)]",
            b"Subject: Inner\r\n\r\n",
        ),
        ("BODY.PEEK[2.TEXT]", "BODY[2.TEXT]", b"Inner body."),
        ("BODY.PEEK[2.1]", "BODY[2.1]", b"Inner body."),
        // Sections that do not exist are empty strings, as Dovecot answers.
        ("BODY.PEEK[3]", "BODY[3]", b""),
        ("BODY.PEEK[1.HEADER]", "BODY[1.HEADER]", b""),
        ("BODY.PEEK[1.TEXT]", "BODY[1.TEXT]", b""),
        ("BODY.PEEK[2.1.1]", "BODY[2.1.1]", b""),
        ("BODY.PEEK[2.2]", "BODY[2.2]", b""),
    ];
    for (ask, name, want) in cases {
        let got = fetch_ok(&mut c, &format!("FETCH 1 {ask}"));
        let want = section_response(1, name, want);
        assert_eq!(show(&got), show(&want), "{ask}");
    }
    // Several sections in one response, in the order asked; PEEK kept \Seen off throughout.
    let got = fetch_ok(&mut c, "FETCH 1 (BODY.PEEK[1] UID BODY.PEEK[2.TEXT] FLAGS)");
    assert_eq!(
        show(&got),
        "* 1 FETCH (BODY[1] {15}\r\nHello part one. UID 1 BODY[2.TEXT] {11}\r\nInner body. FLAGS (\\Recent))\r\n"
    );
}

#[test]
fn partial_fetches() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MULTI]);
    let total = MULTI.len();
    let text = &MULTI[header_len()..];
    let cases: Vec<(String, String, Vec<u8>)> = vec![
        (
            "BODY.PEEK[]<0.10>".into(),
            "BODY[]<0>".into(),
            MULTI[..10].to_vec(),
        ),
        // A count past the end gives the rest.
        (
            format!("BODY.PEEK[]<{}.1000>", total - 7),
            format!("BODY[]<{}>", total - 7),
            MULTI[total - 7..].to_vec(),
        ),
        // An origin at or past the end gives an empty string.
        (
            format!("BODY.PEEK[]<{total}.5>"),
            format!("BODY[]<{total}>"),
            Vec::new(),
        ),
        (
            "BODY.PEEK[]<99999.5>".into(),
            "BODY[]<99999>".into(),
            Vec::new(),
        ),
        (
            "BODY.PEEK[TEXT]<2.3>".into(),
            "BODY[TEXT]<2>".into(),
            text[2..5].to_vec(),
        ),
        (
            "BODY.PEEK[1]<6.4>".into(),
            "BODY[1]<6>".into(),
            b"part".to_vec(),
        ),
        (
            "BODY.PEEK[HEADER.FIELDS (Subject)]<9.100>".into(),
            "BODY[HEADER.FIELDS (Subject)]<9>".into(),
            b"Sections\r\n\r\n".to_vec(),
        ),
        ("BODY.PEEK[3]<0.10>".into(), "BODY[3]<0>".into(), Vec::new()),
    ];
    for (ask, name, want) in &cases {
        let got = fetch_ok(&mut c, &format!("FETCH 1 {ask}"));
        assert_eq!(show(&got), show(&section_response(1, name, want)), "{ask}");
    }
}

#[test]
fn bare_lf_message_is_sent_with_crlf_and_exact_sizes() {
    // Maildir-only: the message holds a NUL, which only a file can deliver (APPEND needs literal8).
    if skip_unless_maildir("bare_lf_message_is_sent_with_crlf_and_exact_sizes") {
        return;
    }
    let s = Server::start();
    let stored: &[u8] =
        b"From: lf@example.com\nSubject: bare\n\nline one\nline two\r\nnul:\0:end\n\nlast";
    // Delivered by "an MTA" into new/: APPEND cannot carry NUL (it needs a literal8).
    let mut c = login(&s);
    std::fs::write(s.maildir("demo").join("new/1700000000.lf.host"), stored).unwrap();
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    let wire = crlf(stored);
    // NUL may not appear in a literal; 0x80 takes its place and sizes stay the same.
    let wire: Vec<u8> = wire
        .iter()
        .map(|&b| if b == 0 { 0x80 } else { b })
        .collect();
    let hdr_end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    let hdr_end = hdr_end.unwrap_or_else(|| panic!("no header end"));
    let got = fetch_ok(&mut c, "FETCH 1 RFC822.SIZE");
    assert_eq!(
        show(&got),
        format!("* 1 FETCH (RFC822.SIZE {})\r\n", wire.len())
    );
    for (ask, name, want) in [
        ("BODY.PEEK[]", "BODY[]", &wire[..]),
        ("BODY.PEEK[HEADER]", "BODY[HEADER]", &wire[..hdr_end]),
        ("BODY.PEEK[TEXT]", "BODY[TEXT]", &wire[hdr_end..]),
        ("BODY.PEEK[1]", "BODY[1]", &wire[hdr_end..]),
        ("BODY.PEEK[]<30.20>", "BODY[]<30>", &wire[30..50]),
        (
            "BODY.PEEK[HEADER.FIELDS (subject)]",
            "BODY[HEADER.FIELDS (subject)]",
            b"Subject: bare\r\n\r\n",
        ),
    ] {
        let got = fetch_ok(&mut c, &format!("FETCH 1 {ask}"));
        assert_eq!(
            got,
            section_response(1, name, want),
            "{ask}: {}",
            show(&got)
        );
    }
    // RFC822 is BODY[] under its own name (and sets \Seen).
    let got = fetch_ok(&mut c, "FETCH 1 RFC822");
    let mut want = format!("* 1 FETCH (RFC822 {{{}}}\r\n", wire.len()).into_bytes();
    want.extend_from_slice(&wire);
    want.extend_from_slice(b" FLAGS (\\Seen \\Recent))\r\n");
    assert_eq!(show(&got), show(&want));
}

// ---------- \Seen ----------

#[test]
fn seen_is_set_by_non_peek_fetches_with_an_implicit_flags_response() {
    let s = Server::start();
    let msg: &[u8] = b"Subject: s\r\n\r\nbody\r\n";
    let mut c = selected_with(&s, &[msg, msg, msg, msg, msg]);
    // PEEK and RFC822.HEADER leave \Seen alone.
    let got = fetch_ok(&mut c, "FETCH 1 (BODY.PEEK[TEXT] RFC822.HEADER)");
    assert_eq!(
        show(&got),
        "* 1 FETCH (BODY[TEXT] {6}\r\nbody\r\n RFC822.HEADER {14}\r\nSubject: s\r\n\r\n)\r\n"
    );
    run_transcript(
        &mut c,
        "C: a FETCH 1:5 FLAGS\n\
         S: * 1 FETCH (FLAGS (\\Recent))\nS: * 2 FETCH (FLAGS (\\Recent))\nS: * 3 FETCH (FLAGS (\\Recent))\n\
         S: * 4 FETCH (FLAGS (\\Recent))\nS: * 5 FETCH (FLAGS (\\Recent))\nS: a OK Fetch completed.",
    );
    // BODY[...] without PEEK sets \Seen and reports it in the same response.
    let got = fetch_ok(&mut c, "FETCH 1 BODY[TEXT]");
    assert_eq!(
        show(&got),
        "* 1 FETCH (BODY[TEXT] {6}\r\nbody\r\n FLAGS (\\Seen \\Recent))\r\n"
    );
    // Already \Seen: no implicit FLAGS.
    let got = fetch_ok(&mut c, "FETCH 1 BODY[TEXT]");
    assert_eq!(show(&got), "* 1 FETCH (BODY[TEXT] {6}\r\nbody\r\n)\r\n");
    // RFC822.TEXT sets it; FLAGS asked for in the same command shows it once.
    let got = fetch_ok(&mut c, "FETCH 2 (FLAGS RFC822.TEXT)");
    assert_eq!(
        show(&got),
        "* 2 FETCH (FLAGS (\\Seen \\Recent) RFC822.TEXT {6}\r\nbody\r\n)\r\n"
    );
    // A partial fetch and a nonexistent part count as reading the message.
    let got = fetch_ok(&mut c, "FETCH 3 BODY[]<0.4>");
    assert_eq!(
        show(&got),
        "* 3 FETCH (BODY[]<0> {4}\r\nSubj FLAGS (\\Seen \\Recent))\r\n"
    );
    let got = fetch_ok(&mut c, "UID FETCH 4 BODY[9]");
    assert_eq!(
        show(&got),
        "* 4 FETCH (UID 4 BODY[9] \"\" FLAGS (\\Seen \\Recent))\r\n"
    );
    // Another session sees the stored flags.
    let mut d = login(&s);
    run_transcript(
        &mut d,
        "C: x EXAMINE INBOX\nS: * FLAGS *\nS: * OK [PERMANENTFLAGS *\nS: * 5 EXISTS\nS: * 0 RECENT\n\
         S: * OK [UNSEEN 5] *\nS: * OK [UIDVALIDITY *\nS: * OK [UIDNEXT 6] *\nS: * OK [MAILBOXID {*}] Ok\nS: x OK [READ-ONLY] *\n\
         C: y FETCH 1:5 FLAGS\n\
         S: * 1 FETCH (FLAGS (\\Seen))\nS: * 2 FETCH (FLAGS (\\Seen))\nS: * 3 FETCH (FLAGS (\\Seen))\n\
         S: * 4 FETCH (FLAGS (\\Seen))\nS: * 5 FETCH (FLAGS ())\nS: y OK Fetch completed.\n\
         # EXAMINE never changes flags.\n\
         C: z FETCH 5 BODY[TEXT]\nS: * 5 FETCH (BODY[TEXT] {6}\nS: body\nS: )\nS: z OK Fetch completed.\n\
         C: w FETCH 5 (RFC822.TEXT FLAGS)\nS: * 5 FETCH (RFC822.TEXT {6}\nS: body\nS:  FLAGS ())\nS: w OK Fetch completed.",
    );
    // The first session is told about nothing new: the \Seen changes were its own.
    run_transcript(
        &mut c,
        "C: n NOOP\nS: n OK NOOP completed.\n\
         C: o FETCH 5 FLAGS\nS: * 5 FETCH (FLAGS (\\Recent))\nS: o OK Fetch completed.",
    );
}

// ---------- messages expunged by another session ----------

#[test]
fn messages_expunged_elsewhere_answer_what_exists_then_no_expungeissued() {
    let s = Server::start();
    let mut a = login(&s);
    for i in 1..=4 {
        append(
            &mut a,
            "",
            None,
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        );
    }
    run_transcript(&mut a, "C: S SELECT INBOX\nS: * FLAGS *");
    a.until("S OK");
    let mut b = login(&s);
    run_transcript(&mut b, "C: S SELECT INBOX\nS: * FLAGS *");
    b.until("S OK");
    run_transcript(
        &mut b,
        "C: x STORE 2:3 +FLAGS.SILENT (\\Deleted)\nS: x OK *\n\
         C: y EXPUNGE\nS: * 3 EXPUNGE\nS: * 2 EXPUNGE\nS: y OK *",
    );
    // Sequence numbers do not move during FETCH: 4 is still message 4 for session A.
    let (got, tagged) = a.raw_exchange("f", "FETCH 1:4 BODY.PEEK[HEADER.FIELDS (Subject)]");
    assert_eq!(
        show(&got),
        "* 1 FETCH (BODY[HEADER.FIELDS (Subject)] {15}\r\nSubject: m1\r\n\r\n)\r\n\
         * 4 FETCH (BODY[HEADER.FIELDS (Subject)] {15}\r\nSubject: m4\r\n\r\n)\r\n"
    );
    assert_eq!(
        tagged,
        "f NO [EXPUNGEISSUED] Some of the requested messages no longer exist."
    );
    // Metadata still comes from the session's picture.
    run_transcript(
        &mut a,
        "C: g FETCH 2 (UID RFC822.SIZE)\nS: * 2 FETCH (UID 2 RFC822.SIZE 23)\nS: g OK Fetch completed.\n\
         C: h FETCH 2 BODY[]\nS: h NO [EXPUNGEISSUED] Some of the requested messages no longer exist.\n\
         C: i FETCH 2 ENVELOPE\nS: i NO [EXPUNGEISSUED] Some of the requested messages no longer exist.",
    );
    // UID FETCH may report expunges, before its tagged answer.
    let (got, tagged) = a.raw_exchange("u", "UID FETCH 1:* BODY.PEEK[TEXT]");
    assert_eq!(
        show(&got),
        "* 1 FETCH (UID 1 BODY[TEXT] {8}\r\nbody 1\r\n)\r\n\
         * 4 FETCH (UID 4 BODY[TEXT] {8}\r\nbody 4\r\n)\r\n\
         * 3 EXPUNGE\r\n* 2 EXPUNGE\r\n"
    );
    assert_eq!(
        tagged,
        "u NO [EXPUNGEISSUED] Some of the requested messages no longer exist."
    );
    run_transcript(
        &mut a,
        "C: v FETCH 1:* UID\nS: * 1 FETCH (UID 1)\nS: * 2 FETCH (UID 4)\nS: v OK Fetch completed.",
    );
}

// ---------- large bodies ----------

/// A deterministic message of about `size` bytes with bare-LF lines of varying length.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.com\nSubject: big\n\n".to_vec();
    let mut i = 0u32;
    while m.len() < size {
        let n = (i % 97) as usize;
        m.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, n));
        m.push(b'\n');
        i += 1;
    }
    m
}

#[test]
fn twenty_megabyte_body_is_fetched_byte_exact() {
    let s = Server::start();
    let stored = big_message(20 * 1024 * 1024);
    let wire = crlf(&stored);
    let mut c = selected_with(&s, &[&stored]);
    let got = fetch_ok(&mut c, "FETCH 1 RFC822.SIZE");
    assert_eq!(
        show(&got),
        format!("* 1 FETCH (RFC822.SIZE {})\r\n", wire.len())
    );
    let got = fetch_ok(&mut c, "FETCH 1 BODY.PEEK[]");
    let want = section_response(1, "BODY[]", &wire);
    assert!(
        got == want,
        "BODY[] differs (got {} bytes, want {})",
        got.len(),
        want.len()
    );
    // A window crossing the server's read chunks in the middle of the file.
    let (o, n) = (10_000_003usize, 200_001usize);
    let got = fetch_ok(&mut c, &format!("FETCH 1 BODY.PEEK[TEXT]<{o}.{n}>"));
    let text_start = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4);
    let t = text_start.unwrap_or_else(|| panic!("no header end"));
    let want = section_response(1, &format!("BODY[TEXT]<{o}>"), &wire[t + o..t + o + n]);
    assert!(got == want, "partial TEXT differs");
    // BODYSTRUCTURE of the big message goes through the parser (and then the cache).
    let lines = wire[t..].iter().filter(|&&b| b == b'\n').count();
    let got = fetch_ok(&mut c, "FETCH 1 BODYSTRUCTURE");
    assert_eq!(
        show(&got),
        format!(
            "* 1 FETCH (BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {lines} NIL NIL NIL NIL))\r\n",
            wire.len() - t
        )
    );
}

#[test]
fn chunk_boundaries_in_bodies_parts_and_partials_are_byte_exact() {
    let s = Server::start();
    let chunk = mailcove::limits::MESSAGE_STREAM_CHUNK;
    let (stored, part2) = chunk_boundary_message();
    let mut c = login(&s);
    // Written by "an MTA": the bytes on disk are exactly these (LF, CRLF and bare CR mixed).
    s.deliver_raw("demo", "demo", "1700000000.edge.host", &stored);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    let wire = crlf(&stored);
    // The byte before part 2 is an LF, so the part converts on its own.
    let part = crlf(&stored[part2]);
    let got = fetch_ok(&mut c, "FETCH 1 RFC822.SIZE");
    assert_eq!(
        show(&got),
        format!("* 1 FETCH (RFC822.SIZE {})\r\n", wire.len())
    );
    let (o, n) = (chunk - 7, 2 * chunk + 13);
    let (po, pn) = (3, chunk + 1);
    for (ask, name, want) in [
        ("BODY.PEEK[]".to_string(), "BODY[]".to_string(), &wire[..]),
        ("BODY.PEEK[2]".into(), "BODY[2]".into(), &part[..]),
        (
            format!("BODY.PEEK[]<{o}.{n}>"),
            format!("BODY[]<{o}>"),
            &wire[o..o + n],
        ),
        (
            format!("BODY.PEEK[2]<{po}.{pn}>"),
            format!("BODY[2]<{po}>"),
            &part[po..po + pn],
        ),
    ] {
        let got = fetch_ok(&mut c, &format!("FETCH 1 {ask}"));
        let want = section_response(1, &name, want);
        assert!(
            got == want,
            "{ask} differs: got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            got.iter().zip(&want).position(|(a, b)| a != b)
        );
    }
}

fn vm_hwm_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status"))
}

#[test]
fn streaming_a_large_body_to_a_slow_reader_keeps_server_memory_flat() {
    // Without the full-text index: on the memory backend the message is APPENDed, which queues
    // it for the background indexer, whose writer may use up to FTS_WRITER_MEMORY_BYTES while
    // this FETCH runs. That is bounded, but it is not what this test measures.
    let s = Server::builder().mail("fts = false").start();
    let mut c = login(&s);
    // Delivered by "an MTA" straight into new/, so the server never held it in memory (on the
    // memory backend it is APPENDed and held there; the peak is measured after that).
    let stored = big_message(48 * 1024 * 1024);
    let wire_len = crlf(&stored).len();
    s.deliver_raw("demo", "demo", "1700000000.big.host", &stored);
    drop(stored);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    let before = vm_hwm_kib(s.pid());
    c.send("F FETCH 1 BODY.PEEK[]");
    // Read the response slowly, a small piece at a time, as a client on a slow link would; the
    // server must wait for us rather than buffer the rest.
    let head = c.raw_line();
    assert_eq!(show(&head), format!("* 1 FETCH (BODY[] {{{wire_len}}}\r\n"));
    let mut left = wire_len;
    let mut crlf_count = 0usize;
    let mut last = 0u8;
    while left > 0 {
        let n = left.min(1024 * 1024);
        let chunk = c.bytes(n);
        for &b in &chunk {
            if b == b'\n' {
                assert_eq!(last, b'\r', "bare LF sent");
                crlf_count += 1;
            }
            last = b;
        }
        left -= n;
    }
    assert!(crlf_count > 1_000_000);
    assert_eq!(show(&c.raw_line()), ")\r\n");
    assert!(c.line().starts_with("F OK"));
    let after = vm_hwm_kib(s.pid());
    // A buffered 48 MiB body would raise the peak by ~50 MiB; streaming needs a few chunks.
    assert!(
        after < before + 16 * 1024,
        "server peak memory grew from {before} KiB to {after} KiB"
    );
}

#[test]
fn fetch_of_many_messages_answers_each_once_in_order() {
    let s = Server::start();
    let mut c = login(&s);
    let messages: Vec<(String, Vec<u8>)> = (0..600u32)
        .map(|i| {
            let body = format!(
                "Subject: n{i}\nMessage-ID: <{i}@x>\n\n{}\n",
                "z".repeat(i as usize)
            );
            (format!("1700000000.m{i:04}.host"), body.into_bytes())
        })
        .collect();
    s.deliver_raw_many("demo", "demo", &messages);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    for round in 0..2 {
        // The second round is served from the structure cache; the answers must not change.
        let got = fetch_ok(&mut c, "FETCH 1:* (UID ENVELOPE BODY[TEXT])");
        let text = show(&got);
        let responses: Vec<&str> = text.split("* ").filter(|l| !l.is_empty()).collect();
        assert_eq!(responses.len(), 600, "round {round}");
        for (i, r) in responses.iter().enumerate() {
            let seq = i + 1;
            assert!(
                r.starts_with(&format!("{seq} FETCH (UID {seq} ENVELOPE ")),
                "{r}"
            );
            assert!(r.contains(&format!("\"<{i}@x>\")")), "{r}");
            let body = format!("{}\r\n", "z".repeat(i));
            // The first round sets \Seen and says so; the second finds it set.
            let flags = if round == 0 {
                " FLAGS (\\Seen \\Recent)"
            } else {
                ""
            };
            let tail = format!("BODY[TEXT] {{{}}}\r\n{body}{flags})\r\n", body.len());
            assert!(r.ends_with(&tail), "{r}");
        }
        if round == 0 && on_maildir("fetch_of_many_messages_answers_each_once_in_order: cache file")
        {
            let cache = s.maildir("demo").join("mailcove-cache");
            let len = std::fs::metadata(&cache).map(|m| m.len()).unwrap_or(0);
            assert!(len > 600 * 50, "structures not cached ({len} bytes)");
        }
    }
}

#[test]
fn sets_over_thousands_of_messages_with_expunged_gaps_name_the_right_messages() {
    // More messages than one chunk of the server's message list (1024), with gaps left by an
    // expunge, so sequence numbers, UIDs and chunk boundaries all disagree.
    let s = Server::start();
    let mut c = login(&s);
    let total = 2600u32;
    let messages: Vec<(String, Vec<u8>)> = (0..total)
        .map(|i| {
            let body = format!("Subject: n{i}\nMessage-ID: <{i}@x>\n\nbody {i}\n");
            (format!("1700000000.m{i:05}.host"), body.into_bytes())
        })
        .collect();
    s.deliver_raw_many("demo", "demo", &messages);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    // Delivered in name order: message i has UID i + 1.
    let gone: Vec<u32> = (1..=total)
        .filter(|u| u % 7 == 4 || (1100..1900).contains(u))
        .collect();
    let list: Vec<String> = gone.iter().map(u32::to_string).collect();
    let (_, t) = c.raw_exchange(
        "D",
        &format!("UID STORE {} +FLAGS.SILENT (\\Deleted)", list.join(",")),
    );
    assert!(t.starts_with("D OK"), "{t}");
    let (_, t) = c.raw_exchange("E", "EXPUNGE");
    assert!(t.starts_with("E OK"), "{t}");
    let (_, t) = c.raw_exchange(
        "K",
        "UID STORE 2,1030,2600 +FLAGS.SILENT (\\Answered $Work)",
    );
    assert!(t.starts_with("K OK"), "{t}");
    let left: Vec<u32> = (1..=total).filter(|u| !gone.contains(u)).collect();
    let response = |seq: usize, uid: u32| {
        let flags = if [2, 1030, 2600].contains(&uid) {
            "\\Answered $Work \\Recent"
        } else {
            "\\Recent"
        };
        format!(
            "* {seq} FETCH (UID {uid} FLAGS ({flags}) BODYSTRUCTURE (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} 1 NIL NIL NIL NIL))\r\n",
            format!("body {}\r\n", uid - 1).len()
        )
    };
    let n = left.len();
    let seq_sets: [(&str, Vec<usize>); 3] = [
        ("1:*", (1..=n).collect()),
        (
            "*,1,3:5,900:1100,1020:1030,1500:1400",
            [1, 3, 4, 5]
                .into_iter()
                .chain(900..=1100)
                .chain(1400..=1500)
                .chain([n])
                .collect(),
        ),
        (&format!("{}:{}", n - 1, n - 3), vec![n - 3, n - 2, n - 1]),
    ];
    for round in 0..2 {
        // The first round parses and caches the structures, the second reads the cache.
        for (set, seqs) in &seq_sets {
            let got = fetch_ok(&mut c, &format!("FETCH {set} (UID FLAGS BODYSTRUCTURE)"));
            let want: String = seqs.iter().map(|&q| response(q, left[q - 1])).collect();
            assert!(
                show(&got) == want,
                "round {round}, FETCH {set}: got\n{}",
                show(&got)
            );
        }
        for set in [
            "1:10,1000:1100,1890:1920,2590:*",
            "2600,5:3,1099:1901",
            "*:2595",
        ] {
            let ranges: Vec<(u32, u32)> = set
                .split(',')
                .map(|r| {
                    let mut ends = r.split(':').map(|x| x.parse().unwrap_or(total));
                    let a = ends.next().unwrap_or(0);
                    let b = ends.next().unwrap_or(a);
                    (a.min(b), a.max(b))
                })
                .collect();
            let want: String = left
                .iter()
                .enumerate()
                .filter(|(_, u)| ranges.iter().any(|(a, b)| (*a..=*b).contains(*u)))
                .map(|(i, u)| response(i + 1, *u))
                .collect();
            let got = fetch_ok(&mut c, &format!("UID FETCH {set} (FLAGS BODYSTRUCTURE)"));
            assert!(
                show(&got) == want,
                "round {round}, UID FETCH {set}: got\n{}",
                show(&got)
            );
        }
    }
}

// ---------- ENVELOPE / BODY / BODYSTRUCTURE of the mime fixtures ----------

fn expected(path: &Path) -> Option<Vec<u8>> {
    let mut v = std::fs::read(path).ok()?;
    if v.last() == Some(&b'\n') {
        v.pop();
    }
    Some(v)
}

/// The paths of the mime fixtures, in name order.
fn mime_fixture_paths() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let mut emls: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    emls.sort();
    emls
}

#[test]
fn mime_fixtures_through_the_server() {
    let emls = mime_fixture_paths();
    let s = Server::start();
    let mut c = login(&s);
    // The golden files are the items as stored, which a client gets once it enabled UTF8=ACCEPT
    // (eightbit_headers has raw UTF-8 headers); the 7-bit form every other client gets is
    // tested in imap_utf8.rs.
    run_transcript(
        &mut c,
        "C: U ENABLE UTF8=ACCEPT\nS: * ENABLED UTF8=ACCEPT\nS: U OK *",
    );
    let mut loaded = Vec::new();
    for eml in emls {
        let raw = std::fs::read(&eml).unwrap();
        if raw.is_empty() {
            // APPEND refuses zero-byte messages (as Dovecot); the mime tests cover this file.
            continue;
        }
        append(&mut c, "", None, &raw);
        loaded.push((eml, raw));
    }
    assert!(loaded.len() >= 14, "fixtures missing");
    run_transcript(&mut c, "C: S EXAMINE INBOX\nS: * FLAGS *");
    c.until("S OK");
    let mut checks = 0;
    let mut failures = Vec::new();
    for round in ["parsed", "cached"] {
        for (i, (eml, raw)) in loaded.iter().enumerate() {
            let seq = i + 1;
            for (ext, item) in [
                ("envelope", "ENVELOPE"),
                ("body", "BODY"),
                ("bodystructure", "BODYSTRUCTURE"),
            ] {
                let Some(want) = expected(&eml.with_extension(ext)) else {
                    continue;
                };
                checks += 1;
                let got = fetch_ok(&mut c, &format!("FETCH {seq} {item}"));
                let mut w = format!("* {seq} FETCH ({item} ").into_bytes();
                w.extend_from_slice(&want);
                w.extend_from_slice(b")\r\n");
                if got != w {
                    failures.push(format!(
                        "{round} {} {item}:\n  want {}\n  got  {}",
                        eml.display(),
                        show(&w),
                        show(&got)
                    ));
                }
            }
            // RFC822.SIZE is exactly the length of BODY[].
            let got = fetch_ok(&mut c, &format!("FETCH {seq} (RFC822.SIZE BODY.PEEK[])"));
            let wire = crlf(raw);
            let mut w = format!(
                "* {seq} FETCH (RFC822.SIZE {} BODY[] {{{}}}\r\n",
                wire.len(),
                wire.len()
            )
            .into_bytes();
            w.extend_from_slice(&wire);
            w.extend_from_slice(b")\r\n");
            assert_eq!(show(&got), show(&w), "{}", eml.display());
        }
    }
    assert!(checks >= 40, "only {checks} expectations");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sections_of_the_mime_fixtures_match_the_mime_module() {
    use mailcove::mime::{MessageInfo, SectionSpec, SectionText};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mime");
    let names = [
        "nested_multipart",
        "rfc2231_attachment",
        "digest_default_rfc822",
        "missing_close_boundary",
        "header_cut_by_boundary",
        "preamble_epilogue",
    ];
    let s = Server::start();
    let mut c = login(&s);
    let mut raws = Vec::new();
    for n in names {
        let raw = std::fs::read(dir.join(format!("{n}.eml"))).unwrap();
        append(&mut c, "", None, &raw);
        raws.push(raw);
    }
    run_transcript(&mut c, "C: S EXAMINE INBOX\nS: * FLAGS *");
    c.until("S OK");
    let paths: &[&[u32]] = &[
        &[],
        &[1],
        &[2],
        &[3],
        &[1, 1],
        &[1, 2],
        &[2, 1],
        &[1, 1, 1],
        &[2, 2],
    ];
    let mut compared = 0;
    for (i, raw) in raws.iter().enumerate() {
        let seq = i + 1;
        let info = MessageInfo::parse(raw);
        for path in paths {
            let p: Vec<String> = path.iter().map(u32::to_string).collect();
            let p = p.join(".");
            let texts: Vec<(&str, SectionText<'_>)> = if path.is_empty() {
                vec![("HEADER", SectionText::Header), ("TEXT", SectionText::Text)]
            } else {
                vec![
                    ("", SectionText::Full),
                    ("MIME", SectionText::Mime),
                    ("HEADER", SectionText::Header),
                    ("TEXT", SectionText::Text),
                ]
            };
            for (tname, text) in texts {
                let sec = match (p.is_empty(), tname.is_empty()) {
                    (true, _) => tname.to_string(),
                    (false, true) => p.clone(),
                    (false, false) => format!("{p}.{tname}"),
                };
                let want = info.section_bytes(raw, &SectionSpec { path, text });
                let got = fetch_ok(&mut c, &format!("FETCH {seq} BODY.PEEK[{sec}]"));
                assert_eq!(
                    show(&got),
                    show(&section_response(
                        seq as u32,
                        &format!("BODY[{sec}]"),
                        &want
                    )),
                    "{} BODY[{sec}]",
                    names[i]
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 100);
}

#[test]
fn warm_structure_cache_answers_without_parsing_again() {
    // Maildir-only: inspects the cache file.
    if skip_unless_maildir("warm_structure_cache_answers_without_parsing_again") {
        return;
    }
    let s = Server::start();
    let mut c = login(&s);
    let original: &[u8] = b"Subject: aaaa\r\nFrom: x@example.com\r\n\r\nbody\r\n";
    append(&mut c, "", None, original);
    run_transcript(
        &mut c,
        "C: S EXAMINE INBOX\nS: * FLAGS *\nS: * OK [PERMANENTFLAGS *\nS: * 1 EXISTS\nS: * 1 RECENT\n\
         S: * OK [UNSEEN 1] *\nS: * OK [UIDVALIDITY *\nS: * OK [UIDNEXT 2] *\nS: * OK [MAILBOXID {*}] Ok\nS: S OK [READ-ONLY] *\n\
         C: a FETCH 1 (ENVELOPE)\n\
         S: * 1 FETCH (ENVELOPE (NIL \"aaaa\" ((NIL NIL \"x\" \"example.com\")) ((NIL NIL \"x\" \"example.com\")) ((NIL NIL \"x\" \"example.com\")) NIL NIL NIL NIL NIL))\n\
         S: a OK Fetch completed.",
    );
    // Rewrite the stored file in place with a different subject of the same size. Maildir files
    // never change, so this is only a probe: a FETCH that parsed again would show "bbbb".
    let root = s.maildir("demo");
    let file = ["cur", "new"]
        .iter()
        .filter_map(|d| std::fs::read_dir(root.join(d)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| std::fs::read(p).is_ok_and(|b| b == original))
        .unwrap_or_else(|| panic!("stored message not found under {}", root.display()));
    let changed = String::from_utf8_lossy(original).replace("aaaa", "bbbb");
    std::fs::write(&file, changed.as_bytes()).unwrap();
    run_transcript(
        &mut c,
        "C: b FETCH 1 (ENVELOPE BODY[HEADER.FIELDS (SUBJECT)])\n\
         S: * 1 FETCH (ENVELOPE (NIL \"aaaa\" ((NIL NIL \"x\" \"example.com\")) ((NIL NIL \"x\" \"example.com\")) ((NIL NIL \"x\" \"example.com\")) NIL NIL NIL NIL NIL) BODY[HEADER.FIELDS (SUBJECT)] {17}\n\
         S: Subject: bbbb\n\
         S: \n\
         S: )\n\
         S: b OK Fetch completed.",
    );
}

#[test]
fn changedsince_returns_only_changed_messages_with_modseq() {
    let s = Server::start();
    let msg: &[u8] = b"Subject: c\r\n\r\nc\r\n";
    let mut c = selected_with(&s, &[msg, msg, msg]);
    let (got, tagged) = c.raw_exchange("m", "FETCH 3 MODSEQ");
    assert!(tagged.starts_with("m OK"), "{tagged}");
    let text = show(&got);
    // RFC 7162 3.1: the first CONDSTORE enabling command tells the HIGHESTMODSEQ first.
    let text = text
        .strip_prefix("* OK [HIGHESTMODSEQ ")
        .and_then(|r| r.split_once("\r\n"))
        .map_or(text.clone(), |(_, r)| r.to_string());
    let modseq: u64 = text
        .strip_prefix("* 3 FETCH (MODSEQ (")
        .and_then(|r| r.strip_suffix("))\r\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // Pipelined: the STORE's answer comes first, then the FETCH sees its effect.
    c.send_raw(b"x STORE 2 +FLAGS.SILENT (\\Flagged)\r\ny FETCH 1:* (UID FLAGS) (CHANGEDSINCE ");
    c.send_raw(format!("{modseq})\r\n").as_bytes());
    let lines = c.until("y ");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("x OK"), "{lines:?}");
    assert!(
        line_matches(
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent) MODSEQ ({*}))",
            &lines[1]
        ),
        "{lines:?}"
    );
    assert_eq!(lines[2], "y OK Fetch completed.");
}

#[test]
fn messages_over_the_size_limit_stream_but_are_not_parsed() {
    // Maildir-only: stores messages over the size limit, which APPEND refuses.
    if skip_unless_maildir("messages_over_the_size_limit_stream_but_are_not_parsed") {
        return;
    }
    let s = Server::builder()
        .config("[limits]\nmax_message_size = 1024\n")
        .start();
    let mut c = login(&s);
    let big = big_message(5000);
    let new = s.maildir("demo").join("new");
    std::fs::write(new.join("1700000000.a.host"), &big).unwrap();
    std::fs::write(new.join("1700000001.b.host"), b"Subject: small\n\nhi\n").unwrap();
    run_transcript(&mut c, "C: S EXAMINE INBOX\nS: * FLAGS *");
    c.until("S OK");
    let got = fetch_ok(&mut c, "FETCH 1 BODY.PEEK[]");
    assert_eq!(got, section_response(1, "BODY[]", &crlf(&big)));
    let (got, tagged) = c.raw_exchange("e", "FETCH 1:2 (UID ENVELOPE)");
    assert_eq!(
        show(&got),
        "* 2 FETCH (UID 2 ENVELOPE (NIL \"small\" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
    );
    assert_eq!(
        tagged,
        "e NO [CANNOT] Some messages are too large to parse for the requested items."
    );
}

#[test]
fn a_client_leaving_in_the_middle_of_a_body_leaves_the_server_serving() {
    let s = Server::start();
    let mut c = login(&s);
    let stored = big_message(8 * 1024 * 1024);
    s.deliver_raw("demo", "demo", "1700000000.x.host", &stored);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    c.send("F FETCH 1 BODY[]");
    let head = c.raw_line();
    assert!(
        show(&head).starts_with("* 1 FETCH (BODY[] {"),
        "{}",
        show(&head)
    );
    c.bytes(1000);
    drop(c);
    // The server goes on serving the mailbox to another session.
    let mut d = login(&s);
    run_transcript(&mut d, "C: S SELECT INBOX\nS: * FLAGS *");
    d.until("S OK");
    let got = fetch_ok(&mut d, "FETCH 1 BODY.PEEK[]<0.5>");
    assert_eq!(show(&got), "* 1 FETCH (BODY[]<0> {5}\r\nFrom:)\r\n");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

// ---------- structure cache: cold, warm, damaged ----------

/// The non-empty mime fixtures, in name order.
fn mime_fixtures() -> Vec<Vec<u8>> {
    mime_fixture_paths()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|raw| !raw.is_empty())
        .collect()
}

const STRUCTURE_COMMANDS: [&str; 5] = [
    "FETCH 1:* ENVELOPE",
    "FETCH 1:* BODYSTRUCTURE",
    "FETCH 1:* BODY",
    "FETCH 1:* (FLAGS BODYSTRUCTURE ENVELOPE BODY BODY.PEEK[1.MIME])",
    "UID FETCH 1:* (ENVELOPE RFC822.SIZE)",
];

/// The answers to [`STRUCTURE_COMMANDS`] in a new session with INBOX examined.
fn structure_answers(s: &Server) -> Vec<Vec<u8>> {
    let mut c = login(s);
    run_transcript(&mut c, "C: S EXAMINE INBOX\nS: * FLAGS *");
    c.until("S OK");
    let answers = STRUCTURE_COMMANDS
        .iter()
        .map(|cmd| fetch_ok(&mut c, cmd))
        .collect();
    c.cmd("Z", "LOGOUT");
    answers
}

fn assert_same_answers(what: &str, want: &[Vec<u8>], got: &[Vec<u8>]) {
    for ((cmd, w), g) in STRUCTURE_COMMANDS.iter().zip(want).zip(got) {
        assert_eq!(show(g), show(w), "{what}: {cmd}");
    }
}

#[test]
fn structure_answers_are_the_same_cold_warm_and_after_cache_damage() {
    // Maildir-only: damages the cache file and restarts.
    if skip_unless_maildir("structure_answers_are_the_same_cold_warm_and_after_cache_damage") {
        return;
    }
    let mut s = Server::start();
    let fixtures = mime_fixtures();
    assert!(fixtures.len() >= 14, "fixtures missing");
    let mut c = login(&s);
    for raw in &fixtures {
        append(&mut c, "", None, raw);
    }
    c.cmd("Z", "LOGOUT");
    let n = fixtures.len();
    let cache = s.maildir("demo").join("mailcove-cache");

    // Cold: nothing is cached yet, every structure is parsed (the first command parses all).
    let cold = structure_answers(&s);
    for (cmd, a) in STRUCTURE_COMMANDS.iter().zip(&cold) {
        let text = String::from_utf8_lossy(a);
        assert_eq!(text.matches(" FETCH (").count(), n, "{cmd}: {text}");
    }
    let len = std::fs::metadata(&cache)
        .unwrap_or_else(|e| panic!("no structure cache at {}: {e}", cache.display()))
        .len();
    assert!(len > 16 + 100 * n as u64, "cache holds only {len} bytes");

    // Warm, from a new session.
    assert_same_answers("warm", &cold, &structure_answers(&s));
    // Warm after a restart: the cache file is loaded again.
    s.restart();
    assert_same_answers("warm after restart", &cold, &structure_answers(&s));

    // Damage, seen by the running server and by a restarted one.
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 3] = [
        ("flipped bytes", |p| {
            let mut b = std::fs::read(p).unwrap();
            for i in (20..b.len()).step_by(61) {
                b[i] ^= 0x5a;
            }
            std::fs::write(p, b).unwrap();
        }),
        ("truncated", |p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len * 6 / 10).unwrap();
        }),
        ("foreign header", |p| {
            let mut b = std::fs::read(p).unwrap();
            b[..8].copy_from_slice(b"NOTCACHE");
            std::fs::write(p, b).unwrap();
        }),
    ];
    for (what, damage) in damages {
        damage(&cache);
        assert_same_answers(what, &cold, &structure_answers(&s));
        damage(&cache);
        s.restart();
        assert_same_answers(&format!("{what}, restarted"), &cold, &structure_answers(&s));
        assert_same_answers(&format!("{what}, repaired"), &cold, &structure_answers(&s));
    }
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

/// A multipart message of `parts` one-line text parts: its BODYSTRUCTURE is about 75 bytes per
/// part, so a few such messages fill FETCH's per-lookup and per-parse-group byte budgets.
fn many_parts(i: usize, parts: usize) -> Vec<u8> {
    let mut m = format!(
        "Subject: parts {i}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
    );
    for p in 0..parts {
        m.push_str(&format!("--b\n\n{i}.{p}\n"));
    }
    m.push_str("--b--\n");
    m.into_bytes()
}

#[test]
fn messages_with_huge_structures_are_answered_across_budget_groups() {
    let s = Server::start();
    let mut c = login(&s);
    let n = 30;
    for i in 0..n {
        s.deliver_raw(
            "demo",
            "demo",
            &format!("1700000000.p{i:03}.host"),
            &many_parts(i, 3000),
        );
    }
    run_transcript(&mut c, "C: S EXAMINE INBOX\nS: * FLAGS *");
    c.until("S OK");
    let cmd = "FETCH 1:* (BODYSTRUCTURE BODY.PEEK[2999])";
    let cold = fetch_ok(&mut c, cmd);
    let text = show(&cold);
    assert_eq!(text.matches(" FETCH (BODYSTRUCTURE (").count(), n, "{text}");
    for i in 0..n {
        // The last-but-one part of each message, in order.
        let part = format!("{i}.2998");
        assert!(
            text.contains(&format!("BODY[2999] {{{}}}\r\n{part})", part.len())),
            "message {i}"
        );
    }
    // Warm (lookups split by size) answers the same, in this session and in a new one.
    assert_eq!(show(&fetch_ok(&mut c, cmd)), text);
    let mut d = login(&s);
    run_transcript(&mut d, "C: S EXAMINE INBOX\nS: * FLAGS *");
    d.until("S OK");
    assert_eq!(show(&fetch_ok(&mut d, cmd)), text);
    let env = show(&fetch_ok(&mut d, "FETCH 1:* ENVELOPE"));
    assert_eq!(env.matches("\"parts ").count(), n, "{env}");
}

// ---------- structures loaded ahead of the responses ----------

/// Delivers `n` small messages (files in the Maildir, APPEND on memory), message `i` (0-based) with Message-ID
/// `<i@x>`, and selects INBOX.
fn many_selected(s: &Server, n: usize) -> Client {
    let mut c = login(s);
    let messages: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let body = format!("Subject: n{i}\nMessage-ID: <{i}@x>\n\nbody {i}\n");
            (format!("1700000000.m{i:05}.host"), body.into_bytes())
        })
        .collect();
    s.deliver_raw_many("demo", "demo", &messages);
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    c
}

/// The sequence numbers and Message-IDs of `FETCH ... (UID ENVELOPE)` responses, checking
/// that each response is for the UID its sequence number had.
fn envelope_ids(got: &[u8]) -> Vec<(usize, usize)> {
    let text = show(got);
    text.split("* ")
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (seq, rest) = r
                .split_once(" FETCH (UID ")
                .unwrap_or_else(|| panic!("{r}"));
            let (uid, _) = rest.split_once(' ').unwrap_or_else(|| panic!("{r}"));
            assert_eq!(seq, uid, "{r}");
            let id = r
                .split("\"<")
                .nth(1)
                .and_then(|x| x.split_once("@x>\""))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("no Message-ID: {r}"));
            (seq.parse().unwrap_or_else(|_| panic!("{r}")), id)
        })
        .collect()
}

#[test]
fn messages_expunged_elsewhere_are_skipped_in_groups_loaded_ahead() {
    // Over two FETCH batches and several structure groups: the expunged messages fall in the
    // first group, in groups loaded while earlier ones were written, and just after a batch
    // boundary (the next batch's first group is loaded ahead too).
    let s = Server::start();
    let n = 1200;
    let mut a = many_selected(&s, n);
    let mut b = login(&s);
    run_transcript(&mut b, "C: S SELECT INBOX\nS: * FLAGS *");
    b.until("S OK");
    let gone = [5usize, 300, 513, 514, 1100];
    let set: Vec<String> = gone.iter().map(|g| g.to_string()).collect();
    run_transcript(
        &mut b,
        &format!(
            "C: x STORE {} +FLAGS.SILENT (\\Deleted)\nS: x OK *\nC: y EXPUNGE",
            set.join(",")
        ),
    );
    b.until("y OK");
    for round in 0..2 {
        // Round 0 parses every message; round 1 answers from the cache.
        let (got, tagged) = a.raw_exchange("f", "FETCH 1:* (UID ENVELOPE)");
        assert_eq!(
            tagged, "f NO [EXPUNGEISSUED] Some of the requested messages no longer exist.",
            "round {round}"
        );
        let want: Vec<(usize, usize)> = (1..=n)
            .filter(|seq| !gone.contains(seq))
            .map(|seq| (seq, seq - 1))
            .collect();
        assert_eq!(envelope_ids(&got), want, "round {round}");
    }
}

#[test]
fn changedsince_with_whole_batches_left_out_answers_the_changed_structures() {
    // Messages 3 and 1050 changed: the FETCH batch between them has nothing to answer, and the
    // structures loaded ahead must still land on the right messages.
    let s = Server::start();
    let mut c = many_selected(&s, 1100);
    let (got, tagged) = c.raw_exchange("m", "FETCH 1100 MODSEQ");
    assert!(tagged.starts_with("m OK"), "{tagged}");
    let text = show(&got);
    // RFC 7162 3.1: the first CONDSTORE enabling command tells the HIGHESTMODSEQ first.
    let text = text
        .strip_prefix("* OK [HIGHESTMODSEQ ")
        .and_then(|r| r.split_once("\r\n"))
        .map_or(text.clone(), |(_, r)| r.to_string());
    let modseq: u64 = text
        .strip_prefix("* 1100 FETCH (MODSEQ (")
        .and_then(|r| r.strip_suffix("))\r\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    run_transcript(
        &mut c,
        "C: x STORE 3,1050 +FLAGS.SILENT (\\Flagged)\nS: x OK *",
    );
    let got = fetch_ok(
        &mut c,
        &format!("FETCH 1:* (UID ENVELOPE) (CHANGEDSINCE {modseq})"),
    );
    assert_eq!(envelope_ids(&got), vec![(3, 2), (1050, 1049)]);
}

// ---------- files renamed by another process ----------

/// The ENVELOPEs of `FETCH 1:* (UID ENVELOPE)`, checked to be one per message, in order, each
/// naming message `ids[seq - 1]`.
fn envelopes_name(c: &mut Client, ids: &[u32]) {
    let got = fetch_ok(c, "FETCH 1:* (UID ENVELOPE)");
    let text = show(&got);
    let responses: Vec<&str> = text.split("* ").filter(|l| !l.is_empty()).collect();
    assert_eq!(responses.len(), ids.len(), "{text}");
    for (i, (r, id)) in responses.iter().zip(ids).enumerate() {
        assert!(r.starts_with(&format!("{} FETCH (UID ", i + 1)), "{r}");
        assert!(r.contains(&format!("\"n{id}\"")), "{r}");
        assert!(r.contains(&format!("\"<{id}@x>\")")), "{r}");
    }
}

/// Renames every `step`th file of `cur` (from `skip` on) as another process does to add a flag.
fn flag_renames(cur: &Path, skip: usize, step: usize, flag: char) -> usize {
    let mut names: Vec<String> = std::fs::read_dir(cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut n = 0;
    for name in names.iter().skip(skip).step_by(step) {
        let flagged = if name.contains(":2,") {
            format!("{name}{flag}")
        } else {
            format!("{name}:2,{flag}")
        };
        std::fs::rename(cur.join(name), cur.join(flagged)).unwrap();
        n += 1;
    }
    n
}

#[test]
fn messages_renamed_by_another_process_are_still_parsed() {
    // Maildir-only: renames message files behind the server.
    if skip_unless_maildir("messages_renamed_by_another_process_are_still_parsed") {
        return;
    }
    // Parse workers open messages by name from their directory; a file another process renamed
    // for a flag change since the server last looked is found again by a rescan.
    let s = Server::start();
    let mut c = login(&s);
    let dir = s.maildir("demo");
    let cur = dir.join("cur");
    let ids: Vec<u32> = (0..300).collect();
    for i in &ids {
        let body = format!("Subject: n{i}\nMessage-ID: <{i}@x>\n\nbody {i}\n");
        std::fs::write(
            dir.join("new").join(format!("1700000000.m{i:04}.host")),
            body,
        )
        .unwrap();
    }
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    assert_eq!(flag_renames(&cur, 0, 3, 'F'), 100);
    envelopes_name(&mut c, &ids);
    // Again with the structures dropped, so every message is opened and parsed again.
    assert_eq!(flag_renames(&cur, 1, 2, 'S'), 150);
    let _ = std::fs::remove_file(dir.join("mailcove-cache"));
    envelopes_name(&mut c, &ids);
}
