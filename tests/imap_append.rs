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
