//! APPEND extensions on the wire, against the real binary: MULTIAPPEND (RFC 3502: several
//! messages, one APPENDUID with a UID set, all or none), CATENATE (RFC 4469) TEXT parts,
//! literal8 messages with NUL octets (RFC 3516 4.4), `UTF8 (literal8)` (RFC 6855 4), and the
//! answers to bad input in the middle of a multi-message command (the stream stays in step and
//! nothing is stored).
//!
//! Expected UIDs and bytes follow from the RFC rules applied to the hand-written messages here:
//! a new mailbox's first UID is 1 and MULTIAPPEND gives consecutive UIDs in command order.

mod common;

use common::*;

const M1: &[u8] = b"Subject: one\r\n\r\nfirst\r\n";
const M2: &[u8] = b"Subject: two\r\n\r\nsecond\r\n";
const M3: &[u8] = b"Subject: three\r\n\r\nthird\r\n";

/// Sends `parts[0]`, then each further part after the server's `+` continuation (a synchronizing
/// literal's data); returns the answer through the tagged line of `tag`.
fn send_sync(c: &mut Client, tag: &str, parts: &[&[u8]]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            let l = c.line();
            if !l.starts_with("+ ") {
                // Refused before the data: the tagged answer came instead.
                out.push(l);
                return out;
            }
        }
        c.send_raw(p);
    }
    out.extend(c.until(&format!("{tag} ")));
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The UIDs of `[APPENDUID v set]` in the tagged line, with UIDVALIDITY.
fn appenduid(lines: &[String]) -> (u32, Vec<u32>) {
    let last = lines.last().expect("an answer");
    let rest = &last[last
        .find("[APPENDUID ")
        .unwrap_or_else(|| panic!("no APPENDUID in {last:?}"))
        + 11..];
    let rest = &rest[..rest.find(']').expect("]")];
    let (v, set) = rest.split_once(' ').expect("uid set");
    let mut uids = Vec::new();
    for r in set.split(',') {
        match r.split_once(':') {
            Some((a, b)) => uids.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
            None => uids.push(r.parse().unwrap()),
        }
    }
    (v.parse().unwrap(), uids)
}

/// MESSAGES of a mailbox, by STATUS.
fn count(c: &mut Client, mailbox: &str) -> u32 {
    let r = c.cmd("st", &format!("STATUS {mailbox} (MESSAGES)"));
    assert_tagged_ok(&r);
    let l = r
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .expect("STATUS");
    l.rsplit("MESSAGES ")
        .next()
        .and_then(|n| n.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("{l:?}"))
}

fn tagged_no(lines: &[String], tag: &str, code: &str) {
    let last = lines.last().expect("an answer");
    assert!(
        last.starts_with(&format!("{tag} NO {code}")),
        "expected {tag} NO {code}, got {lines:?}"
    );
}

fn tagged_bad(lines: &[String], tag: &str) {
    let last = lines.last().expect("an answer");
    assert!(
        last.starts_with(&format!("{tag} BAD")),
        "expected {tag} BAD, got {lines:?}"
    );
}

/// True when the CAPABILITY answer after login lists `cap`.
fn announces(c: &mut Client, cap: &str) -> bool {
    let r = c.cmd("cap", "CAPABILITY");
    assert_tagged_ok(&r);
    r.iter()
        .any(|l| l.starts_with("* CAPABILITY ") && l.split(' ').any(|w| w == cap))
}

#[test]
fn multiappend_stores_three_messages_with_one_appenduid_set() {
    let s = Server::start();
    let mut c = login_demo(&s);
    assert!(announces(&mut c, "MULTIAPPEND"));
    // RFC 3502 6 example shape: a synchronizing, a non-synchronizing and a synchronizing literal.
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!("a1 APPEND INBOX (\\Seen) {{{}}}\r\n", M1.len()).as_bytes(),
            &cat(&[
                M1,
                format!(
                    " (\\Flagged $Work) \"05-Dec-2026 10:00:00 +0000\" {{{}+}}\r\n",
                    M2.len()
                )
                .as_bytes(),
                M2,
                format!(" {{{}}}\r\n", M3.len()).as_bytes(),
            ]),
            &cat(&[M3, b"\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    let (_, uids) = appenduid(&r);
    assert_eq!(uids, vec![1, 2, 3]);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let bodies = c.fetch_all_bodies("f");
    assert_eq!(
        bodies,
        vec![(1, M1.to_vec()), (2, M2.to_vec()), (3, M3.to_vec())]
    );
    let r = c.cmd("g", "UID FETCH 1:3 (FLAGS INTERNALDATE)");
    assert_tagged_ok(&r);
    assert!(r[0].contains("FLAGS (\\Seen"), "{r:?}");
    assert!(
        r[1].contains("\\Flagged") && r[1].contains("$Work"),
        "{r:?}"
    );
    assert!(r[1].contains("\"05-Dec-2026 10:00:00 +0000\""), "{r:?}");
    assert!(
        !r[2].contains("\\Seen") && !r[2].contains("\\Flagged"),
        "{r:?}"
    );
    // The connection is in step after it.
    assert_tagged_ok(&c.cmd("n", "NOOP"));
}

#[test]
fn multiappend_over_message_quota_stores_none() {
    let s = Server::builder()
        .users(&[format!(
            "demo:{}::::::userdb_quota_rule=*:messages=2",
            cheap_argon2("demo")
        )])
        .start();
    let mut c = login_demo(&s);
    // Two would fit; the third passes the quota, so none is stored (RFC 3502 6: all or none).
    let mut cmd = format!("a1 APPEND INBOX {{{}+}}\r\n", M1.len()).into_bytes();
    cmd.extend_from_slice(M1);
    cmd.extend_from_slice(format!(" {{{}+}}\r\n", M2.len()).as_bytes());
    cmd.extend_from_slice(M2);
    cmd.extend_from_slice(format!(" {{{}+}}\r\n", M3.len()).as_bytes());
    cmd.extend_from_slice(M3);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a1 ");
    tagged_no(&r, "a1", "[OVERQUOTA]");
    assert_eq!(count(&mut c, "INBOX"), 0);
    // Two alone are fine.
    let mut cmd = format!("a2 APPEND INBOX {{{}+}}\r\n", M1.len()).into_bytes();
    cmd.extend_from_slice(M1);
    cmd.extend_from_slice(format!(" {{{}+}}\r\n", M2.len()).as_bytes());
    cmd.extend_from_slice(M2);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![1, 2]);
    assert_eq!(count(&mut c, "INBOX"), 2);
}

#[test]
fn multiappend_over_byte_quota_is_refused_before_the_third_literal() {
    let s = Server::builder()
        .users(&[format!(
            "demo:{}::::::userdb_quota_rule=*:storage=20K",
            cheap_argon2("demo")
        )])
        .start();
    let mut c = login_demo(&s);
    let big = |n: u8| {
        let mut m = b"Subject: big\r\n\r\n".to_vec();
        m.resize(8 * 1024, b'a' + n);
        m.extend_from_slice(b"\r\n");
        m
    };
    let (b1, b2, b3) = (big(0), big(1), big(2));
    // Each alone fits 20 KiB; the third makes the batch 24 KiB: refused before its `+`.
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!("a1 APPEND INBOX {{{}}}\r\n", b1.len()).as_bytes(),
            &cat(&[&b1, format!(" {{{}}}\r\n", b2.len()).as_bytes()]),
            &cat(&[&b2, format!(" {{{}}}\r\n", b3.len()).as_bytes()]),
            &cat(&[&b3, b"\r\n"]),
        ],
    );
    tagged_no(&r, "a1", "[OVERQUOTA]");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 0);
}

#[test]
fn multiappend_too_big_in_the_middle_stores_none_and_stays_in_step() {
    let s = Server::builder()
        .config("[limits]\nmax_message_size = 1024\n")
        .start();
    let mut c = login_demo(&s);
    let big = vec![b'x'; 2000];
    // A synchronizing literal over the limit: NO [TOOBIG] before `+` (RFC 4469 / RFC 7888 4),
    // the client sends no data.
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!("a1 APPEND INBOX {{{}}}\r\n", M1.len()).as_bytes(),
            &cat(&[M1, format!(" {{{}}}\r\n", big.len()).as_bytes()]),
            &big,
        ],
    );
    tagged_no(&r, "a1", "[TOOBIG]");
    assert_tagged_ok(&c.cmd("n1", "NOOP"));
    // A non-synchronizing one: BAD [TOOBIG], its data and the rest of the command discarded,
    // never run as commands.
    let mut cmd = format!("a2 APPEND INBOX {{{}+}}\r\n", M1.len()).into_bytes();
    cmd.extend_from_slice(M1);
    cmd.extend_from_slice(b" {2000+}\r\n");
    let mut evil = b"x NOOP\r\n".repeat(250);
    evil.truncate(2000);
    cmd.extend_from_slice(&evil);
    cmd.extend_from_slice(format!(" {{{}+}}\r\n", M3.len()).as_bytes());
    cmd.extend_from_slice(M3);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    assert!(r.last().unwrap().starts_with("a2 BAD [TOOBIG]"), "{r:?}");
    assert_eq!(r.len(), 1, "literal data ran as commands: {r:?}");
    assert_tagged_ok(&c.cmd("n2", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 0);
}

#[test]
fn multiappend_bad_flag_in_the_middle_stores_none() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let mut cmd = format!("a1 APPEND INBOX (\\Seen) {{{}+}}\r\n", M1.len()).into_bytes();
    cmd.extend_from_slice(M1);
    // RFC 3501 6.3.11: \Recent cannot be set by the client.
    cmd.extend_from_slice(format!(" (\\Recent) {{{}+}}\r\n", M2.len()).as_bytes());
    cmd.extend_from_slice(M2);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a1 ");
    tagged_bad(&r, "a1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    // Syntax error in the middle (a date that is no date).
    let mut cmd = format!("a2 APPEND INBOX {{{}+}}\r\n", M1.len()).into_bytes();
    cmd.extend_from_slice(M1);
    cmd.extend_from_slice(format!(" \"yesterday\" {{{}+}}\r\n", M2.len()).as_bytes());
    cmd.extend_from_slice(M2);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    tagged_bad(&r, "a2");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_tagged_ok(&c.cmd("n2", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 0);
}

#[test]
fn multiappend_to_a_missing_mailbox_asks_to_create_it() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let r = send_sync(
        &mut c,
        "a1",
        &[format!("a1 APPEND Nowhere {{{}}}\r\n", M1.len()).as_bytes()],
    );
    tagged_no(&r, "a1", "[TRYCREATE]");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
}

#[test]
fn literal8_messages_keep_their_nul_octets() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let m1: &[u8] = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\na\0b\0c\r\n";
    let m2: &[u8] = b"Subject: bin2\r\n\r\n\0\0\0\r\n";
    // RFC 3516 4.4: literal8 in APPEND, one message and two (MULTIAPPEND).
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!("a1 APPEND INBOX ~{{{}}}\r\n", m1.len()).as_bytes(),
            &cat(&[m1, b"\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    let mut cmd = format!("a2 APPEND INBOX ~{{{}+}}\r\n", m1.len()).into_bytes();
    cmd.extend_from_slice(m1);
    cmd.extend_from_slice(format!(" (\\Seen) ~{{{}+}}\r\n", m2.len()).as_bytes());
    cmd.extend_from_slice(m2);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![2, 3]);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let r = c.cmd("z", "UID FETCH 1:3 RFC822.SIZE");
    assert_tagged_ok(&r);
    for (l, m) in r.iter().zip([m1, m1, m2]) {
        assert!(l.contains(&format!("RFC822.SIZE {}", m.len())), "{l:?}");
    }
    // A plain literal may not carry NUL (RFC 3501 4.3): BAD, nothing stored.
    let mut cmd = format!("a3 APPEND INBOX {{{}+}}\r\n", m2.len()).into_bytes();
    cmd.extend_from_slice(m2);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a3 ");
    tagged_bad(&r, "a3");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 3);
}

#[test]
fn catenate_text_parts_are_joined() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let head: &[u8] = b"Subject: joined\r\n\r\n";
    let body: &[u8] = b"part two\r\n";
    // RFC 4469 5: CATENATE with TEXT parts only (synchronizing and not).
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!(
                "a1 APPEND INBOX (\\Seen) CATENATE (TEXT {{{}}}\r\n",
                head.len()
            )
            .as_bytes(),
            &cat(&[
                head,
                format!(" TEXT {{{}+}}\r\n", body.len()).as_bytes(),
                body,
                b")\r\n",
            ]),
        ],
    );
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![1]);
    // With MULTIAPPEND: a CATENATE message, then a plain one.
    let mut cmd = format!("a2 APPEND INBOX CATENATE (TEXT {{{}+}}\r\n", head.len()).into_bytes();
    cmd.extend_from_slice(head);
    cmd.extend_from_slice(format!(" TEXT ~{{{}+}}\r\n", body.len()).as_bytes());
    cmd.extend_from_slice(body);
    cmd.extend_from_slice(format!(") {{{}+}}\r\n", M1.len()).as_bytes());
    cmd.extend_from_slice(M1);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![2, 3]);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let joined = cat(&[head, body]);
    assert_eq!(
        c.fetch_all_bodies("f"),
        vec![(1, joined.clone()), (2, joined), (3, M1.to_vec())]
    );
    // A CATENATE that is never closed is a syntax error; nothing is stored.
    let mut cmd = format!("a3 APPEND INBOX CATENATE (TEXT {{{}+}}\r\n", head.len()).into_bytes();
    cmd.extend_from_slice(head);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a3 ");
    tagged_bad(&r, "a3");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 3);
}

#[test]
fn utf8_append_without_enable_is_bad() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let m: &[u8] = "Subject: caf\u{e9}\r\n\r\nbody\r\n".as_bytes();
    // RFC 6855 4: the UTF8 form is valid only after ENABLE UTF8=ACCEPT.
    let mut cmd = format!("a1 APPEND INBOX UTF8 (~{{{}+}}\r\n", m.len()).into_bytes();
    cmd.extend_from_slice(m);
    cmd.extend_from_slice(b")\r\n");
    c.send_raw(&cmd);
    let r = c.until("a1 ");
    tagged_bad(&r, "a1");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 0);
}

/// Needs ENABLE UTF8=ACCEPT to set the session's flag (the utf8 branch's work).
#[test]
fn utf8_append_after_enable() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let r = c.cmd("e", "ENABLE UTF8=ACCEPT");
    assert_tagged_ok(&r);
    assert!(r.iter().any(|l| l == "* ENABLED UTF8=ACCEPT"), "{r:?}");
    let m: &[u8] = "Subject: caf\u{e9}\r\n\r\nbody\r\n".as_bytes();
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!("a1 APPEND INBOX UTF8 (~{{{}}}\r\n", m.len()).as_bytes(),
            &cat(&[m, b")\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![1]);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_eq!(c.fetch_all_bodies("f"), vec![(1, m.to_vec())]);
}

/// A two-part message: BODY[1] is `hello part one`, BODY[2] is `part two`.
const SRC: &[u8] = b"From: a@example.org\r\nSubject: src\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello part one\r\n--xx\r\nContent-Type: text/plain\r\n\r\npart two\r\n--xx--\r\n";

fn src_header() -> &'static [u8] {
    let end = SRC.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    &SRC[..end]
}

/// UIDVALIDITY of a mailbox, by STATUS.
fn uidvalidity(c: &mut Client, mailbox: &str) -> u32 {
    let r = c.cmd("uv", &format!("STATUS {mailbox} (UIDVALIDITY)"));
    assert_tagged_ok(&r);
    let l = r
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .expect("STATUS");
    l.rsplit("UIDVALIDITY ")
        .next()
        .and_then(|n| n.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("{l:?}"))
}

/// The body of the message with `uid` in the selected mailbox.
fn body_of(c: &mut Client, uid: u32) -> Vec<u8> {
    c.fetch_all_bodies("fb")
        .into_iter()
        .find(|(u, _)| *u == uid)
        .unwrap_or_else(|| panic!("no UID {uid}"))
        .1
}

#[test]
fn catenate_url_parts_copy_sections_and_partials() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", SRC);
    let mut c = login_demo(&s);
    assert!(announces(&mut c, "CATENATE"));
    assert!(announces(&mut c, "URL-PARTIAL"));
    let v = uidvalidity(&mut c, "INBOX");
    let text: &[u8] = b"--between--\r\n";
    // RFC 4469 6 shape: URL, TEXT literal, URL.
    let r = send_sync(
        &mut c,
        "a1",
        &[
            format!(
                "a1 APPEND INBOX CATENATE (URL \"/INBOX;UIDVALIDITY={v}/;UID=1/;SECTION=HEADER\" TEXT {{{}}}\r\n",
                text.len()
            )
            .as_bytes(),
            &cat(&[text, b" URL \"/inbox/;UID=1/;section=2\")\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![2]);
    // URL-PARTIAL (RFC 5092 partial-range): offset.length, offset alone (to the end), and
    // relative `;UID=` URLs of the selected mailbox; a URL may come as a literal.
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let lit = b"/INBOX/;UID=1/;PARTIAL=0.4";
    let r = send_sync(
        &mut c,
        "a2",
        &[
            b"a2 APPEND INBOX CATENATE (URL \";UID=1/;SECTION=1/;PARTIAL=6.4\" URL \";UID=1/;SECTION=1/;PARTIAL=10\" URL {26}\r\n",
            &cat(&[lit, b" URL \";UID=1/;SECTION=1.MIME\")\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![3]);
    assert_eq!(body_of(&mut c, 2), cat(&[src_header(), text, b"part two"]));
    assert_eq!(
        body_of(&mut c, 3),
        cat(&[
            b"part",
            b" one",
            b"From",
            b"Content-Type: text/plain\r\n\r\n"
        ])
    );
    // A CATENATE together with a plain message (RFC 4469 5 with RFC 3502).
    let r = send_sync(
        &mut c,
        "a3",
        &[
            format!(
                "a3 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\") {{{}}}\r\n",
                M1.len()
            )
            .as_bytes(),
            &cat(&[M1, b"\r\n"]),
        ],
    );
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![4, 5]);
    assert_eq!(body_of(&mut c, 4), SRC.to_vec());
    // CATENATE of URLs only: the whole command is one line.
    let r = c.cmd("a4", "APPEND INBOX CATENATE (URL \";UID=1/;SECTION=2\")");
    assert_tagged_ok(&r);
    assert_eq!(body_of(&mut c, 6), b"part two".to_vec());
}

#[test]
fn catenate_bad_urls_answer_badurl_and_store_nothing() {
    let s = Server::start();
    s.append_message("demo", "demo", "INBOX", SRC);
    let mut c = login_demo(&s);
    let v = uidvalidity(&mut c, "INBOX");
    let wrong_v = format!("/INBOX;UIDVALIDITY={}/;UID=1", v.wrapping_add(1).max(1));
    for url in [
        "/INBOX/;UID=99",
        wrong_v.as_str(),
        "/Nowhere/;UID=1",
        // Relative to the selected mailbox, but none is selected.
        ";UID=1",
        "/INBOX/;UID=1/;SECTION=1]%20BODY[2",
        "/INBOX/;UID=1/;SECTION=BOGUS",
        // RFC 4469 6: a part the message does not have.
        "/INBOX/;UID=1/;section=1.5.9",
        "/INBOX/;UID=1/;SECTION=3",
        "/INBOX/;UID=1/;URLAUTH=anonymous",
        "/INBOX?ALL",
    ] {
        let r = c.cmd(
            "b",
            &format!("APPEND INBOX CATENATE (TEXT {{2+}}\r\nab URL \"{url}\")"),
        );
        // RFC 4469 4.1: the URL is named in the response code (`]` cannot be in
        // url-resp-text: it is sent as `?`).
        let shown = url.replace(']', "?");
        assert_eq!(
            r.last().unwrap(),
            &format!("b NO [BADURL \"{shown}\"] CATENATE URL could not be used."),
            "{url}"
        );
    }
    // A bad URL before a literal: refused before `+`, the literal never comes.
    let r = send_sync(
        &mut c,
        "b2",
        &[
            b"b2 APPEND INBOX CATENATE (URL \"/INBOX/;UID=7\" TEXT {3}\r\n",
            b"xyz)\r\n",
        ],
    );
    assert!(r.last().unwrap().starts_with("b2 NO [BADURL "), "{r:?}");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 1);
}

#[test]
fn catenate_over_the_size_limit_is_toobig() {
    let s = Server::builder()
        .config("[limits]\nmax_message_size = 1024\n")
        .start();
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.resize(700, b'z');
    s.append_message("demo", "demo", "INBOX", &big);
    let mut c = login_demo(&s);
    let one = c.cmd("t1", "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")");
    assert_tagged_ok(&one);
    // Two copies make 1400 octets, over 1024: RFC 4469 4.2 TOOBIG.
    let r = c.cmd(
        "t2",
        "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")",
    );
    tagged_no(&r, "t2", "[TOOBIG]");
    // Text and URL together too.
    let r = send_sync(
        &mut c,
        "t3",
        &[
            b"t3 APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" TEXT {400}\r\n",
            &[b'q'; 400],
        ],
    );
    tagged_no(&r, "t3", "[TOOBIG]");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 2);
}

fn proc_kib(s: &Server, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field}"))
}

#[test]
fn multiappend_of_three_20_mb_messages_is_streamed_not_held() {
    if skip_unless_maildir("multiappend_of_three_20_mb_messages_is_streamed_not_held") {
        // The memory backend keeps every message in memory by design.
        return;
    }
    let s = Server::start();
    let mut c = login_demo(&s);
    const SIZE: usize = 20 * 1024 * 1024;
    let line =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef\r\n";
    let message = |n: u8| {
        let mut m = format!("Subject: big {n}\r\n\r\n").into_bytes();
        while m.len() + line.len() <= SIZE {
            m.extend_from_slice(line);
        }
        m.resize(SIZE, b'.');
        m
    };
    let peak_before = proc_kib(&s, "VmHWM:");
    c.send_raw(format!("a1 APPEND INBOX {{{SIZE}+}}\r\n").as_bytes());
    for n in 0..3u8 {
        let m = message(n);
        for chunk in m.chunks(1024 * 1024) {
            c.send_raw(chunk);
        }
        c.send_raw(
            if n < 2 {
                format!(" {{{SIZE}+}}\r\n").into_bytes()
            } else {
                b"\r\n".to_vec()
            }
            .as_slice(),
        );
    }
    let r = c.until("a1 ");
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, vec![1, 2, 3]);
    // 60 MB went through; the server's peak grew by far less than one message.
    let grown = proc_kib(&s, "VmHWM:").saturating_sub(peak_before);
    assert!(grown < 16 * 1024, "peak RSS grew by {grown} KiB");
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let r = c.cmd("f", "FETCH 1:3 RFC822.SIZE");
    assert_tagged_ok(&r);
    assert_eq!(r.len(), 4);
    assert!(
        r.iter()
            .take(3)
            .all(|l| l.contains(&format!("RFC822.SIZE {SIZE}"))),
        "{r:?}"
    );
}

#[test]
fn multiappend_past_the_message_limit_is_no_limit_and_stores_none() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // MAX_MULTIAPPEND_MESSAGES is 100: the 101st message is refused (RFC 5530 LIMIT).
    let mut cmd = b"a1 APPEND INBOX".to_vec();
    for _ in 0..101 {
        cmd.extend_from_slice(format!(" {{{}+}}\r\n", M1.len()).as_bytes());
        cmd.extend_from_slice(M1);
    }
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a1 ");
    tagged_no(&r, "a1", "[LIMIT]");
    assert_eq!(r.len(), 1, "{r:?}");
    assert_tagged_ok(&c.cmd("n", "NOOP"));
    assert_eq!(count(&mut c, "INBOX"), 0);
    // 100 are fine.
    let mut cmd = b"a2 APPEND INBOX".to_vec();
    for _ in 0..100 {
        cmd.extend_from_slice(format!(" {{{}+}}\r\n", M1.len()).as_bytes());
        cmd.extend_from_slice(M1);
    }
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("a2 ");
    assert_tagged_ok(&r);
    assert_eq!(appenduid(&r).1, (1..=100).collect::<Vec<u32>>());
    assert_eq!(count(&mut c, "INBOX"), 100);
}
