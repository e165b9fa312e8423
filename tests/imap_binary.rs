//! FETCH BINARY / BINARY.PEEK / BINARY.SIZE (RFC 3516, RFC 9051 6.4.5), APPEND with a literal8,
//! and the LITERAL+ / LITERAL- choice (RFC 7888), against the real binary.
//!
//! Every expected result is worked out by hand from the RFC rules on the small corpus below
//! (RFC 2045 6.7 for quoted-printable, 6.8 for base64) and compared byte for byte, literal
//! headers included, so a wrong size, a `{n}` where `~{n}` is due or one stray byte fails.

mod common;

use common::*;

// ---------- helpers ----------

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    run_transcript(&mut c, "C: L LOGIN demo demo\nS: L OK *");
    c
}

/// APPENDs `msg` with a non-synchronizing literal (`literal8`: as `~{n+}`); returns the tagged line.
fn append(c: &mut Client, msg: &[u8], literal8: bool) -> String {
    let tilde = if literal8 { "~" } else { "" };
    c.send_raw(format!("A APPEND INBOX {tilde}{{{}+}}\r\n", msg.len()).as_bytes());
    c.send_raw(msg);
    c.send_raw(b"\r\n");
    c.until("A ").last().cloned().unwrap_or_default()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fetch_ok(c: &mut Client, cmd: &str) -> Vec<u8> {
    let (out, tagged) = c.raw_exchange("F", cmd);
    assert!(
        tagged.starts_with("F OK"),
        "{cmd}: {tagged}\n{}",
        show(&out)
    );
    out
}

/// `* seq FETCH (name {n}\r\ndata)\r\n`, `~{n}` when `literal8`, `""` when empty.
fn item(seq: u32, name: &str, data: &[u8], literal8: bool) -> Vec<u8> {
    let mut v = format!("* {seq} FETCH ({name} ").into_bytes();
    if data.is_empty() {
        v.extend_from_slice(b"\"\"");
    } else {
        let tilde = if literal8 { "~" } else { "" };
        v.extend_from_slice(format!("{tilde}{{{}}}\r\n", data.len()).as_bytes());
        v.extend_from_slice(data);
    }
    v.extend_from_slice(b")\r\n");
    v
}

fn selected_with(s: &Server, msgs: &[&[u8]]) -> Client {
    let mut c = login(s);
    for m in msgs {
        let t = append(&mut c, m, false);
        assert!(t.starts_with("A OK"), "{t}");
    }
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    c.until("S OK");
    c
}

// ---------- corpus ----------

/// Five leaf parts: quoted-printable, base64 holding NUL, 8bit, an unknown encoding, base64.
const MIXED: &[u8] = b"From: a@example.com\r\n\
Subject: binary parts\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 =3D ok=\r\n\
\x20soft\r\n\
line two  \r\n\
--B\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwBn\r\n\
aGk=\r\n\
--B\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
8bit \xe9 text\r\n\
--B\r\n\
Content-Type: application/x-thing\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: BASE64\r\n\
\r\n\
aGVsbG8gd29ybGQ=\r\n\
--B--\r\n";

/// Part 1 decoded: `=C3=A9` is é, `=3D` is `=`, `=` CRLF is a soft break (rule 5), the trailing
/// blanks of "line two  " go (rule 3), and the CRLF before `--B` belongs to the boundary.
const P1: &[u8] = b"caf\xc3\xa9 = ok soft\r\nline two";
/// Part 2 decoded: AAEC = 00 01 02, AwBn = 03 00 67, aGk= = "hi".
const P2: &[u8] = b"\x00\x01\x02\x03\x00ghi";
const P3: &[u8] = b"8bit \xe9 text";
const P5: &[u8] = b"hello world";

// ---------- tests ----------

#[test]
fn each_encoding_is_decoded_exactly() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MIXED]);
    assert_eq!(
        show(&fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[1])")),
        show(&item(1, "BINARY[1]", P1, false))
    );
    // NUL in the decoded data: literal8 (RFC 3516 4.3).
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2])"),
        item(1, "BINARY[2]", P2, true)
    );
    // 8bit without NUL: a plain literal.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[3])"),
        item(1, "BINARY[3]", P3, false)
    );
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[5])"),
        item(1, "BINARY[5]", P5, false)
    );
    // BINARY.SIZE is the size BINARY sends.
    let sizes = fetch_ok(
        &mut c,
        "FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3] BINARY.SIZE[5])",
    );
    assert_eq!(
        show(&sizes),
        format!(
            "* 1 FETCH (BINARY.SIZE[1] {} BINARY.SIZE[2] {} BINARY.SIZE[3] {} BINARY.SIZE[5] {})\r\n",
            P1.len(),
            P2.len(),
            P3.len(),
            P5.len()
        )
    );
    // BODY[2] still gives the encoded text.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BODY.PEEK[2])"),
        item(1, "BODY[2]", b"AAECAwBn\r\naGk=", false)
    );
}

#[test]
fn partial_applies_to_decoded_data() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MIXED]);
    // Octets 2..5 of P2 hold 02 03 00; the section holds NUL, so literal8.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2]<2.3>)"),
        item(1, "BINARY[2]<2>", &P2[2..5], true)
    );
    // Octets 3..5 of P1 are the two of é.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[1]<3.2>)"),
        item(1, "BINARY[1]<3>", b"\xc3\xa9", false)
    );
    // A count past the end gives the rest; an origin past the end an empty string.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[5]<6.100>)"),
        item(1, "BINARY[5]<6>", b"world", false)
    );
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[5]<11.5>)"),
        item(1, "BINARY[5]<11>", b"", false)
    );
}

#[test]
fn unknown_encoding_answers_unknown_cte() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MIXED]);
    for cmd in [
        "FETCH 1 (BINARY.PEEK[4])",
        "FETCH 1 (BINARY.SIZE[4])",
        // The whole message holds the part too.
        "FETCH 1 (BINARY.PEEK[])",
    ] {
        let (out, tagged) = c.raw_exchange("F", cmd);
        assert!(tagged.starts_with("F NO [UNKNOWN-CTE]"), "{cmd}: {tagged}");
        assert!(out.is_empty(), "{cmd}: {}", show(&out));
    }
    // The session goes on.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.SIZE[5])"),
        b"* 1 FETCH (BINARY.SIZE[5] 11)\r\n"
    );
}

#[test]
fn peek_keeps_and_binary_sets_seen() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MIXED]);
    fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[5] BINARY.SIZE[1])");
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (FLAGS)"),
        b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    );
    // BINARY sets \Seen like BODY[] and reports it in the same response (RFC 3501 6.4.5).
    let mut want =
        b"* 1 FETCH (BINARY[5] {11}\r\nhello world FLAGS (\\Seen \\Recent))\r\n".to_vec();
    assert_eq!(show(&fetch_ok(&mut c, "FETCH 1 (BINARY[5])")), show(&want));
    want = b"* 1 FETCH (FLAGS (\\Seen \\Recent))\r\n".to_vec();
    assert_eq!(fetch_ok(&mut c, "FETCH 1 (FLAGS)"), want);
}

#[test]
fn bad_and_missing_sections() {
    let s = Server::start();
    let mut c = selected_with(&s, &[MIXED]);
    // section-binary is part numbers only (RFC 3516 7); BINARY.SIZE takes no partial.
    for cmd in [
        "FETCH 1 (BINARY[1.HEADER])",
        "FETCH 1 (BINARY[TEXT])",
        "FETCH 1 (BINARY[0])",
        "FETCH 1 (BINARY.SIZE[1]<0.5>)",
        "FETCH 1 (BINARY.PEEK[1]<5>)",
        "FETCH 1 (BINARY.SIZE)",
    ] {
        let (out, tagged) = c.raw_exchange("F", cmd);
        assert!(tagged.starts_with("F BAD"), "{cmd}: {tagged}");
        assert!(out.is_empty(), "{cmd}: {}", show(&out));
    }
    // A part that does not exist: an empty string and size 0, as BODY[9] is empty.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[9] BINARY.SIZE[9])"),
        b"* 1 FETCH (BINARY[9] \"\" BINARY.SIZE[9] 0)\r\n"
    );
}

#[test]
fn whole_message_and_containers() {
    // A message/rfc822 part holding a base64 part, next to a quoted-printable one.
    let msg: &[u8] = b"Subject: outer\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\
\r\n\
--o\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
a=3Db\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
Content-Transfer-Encoding: base64\r\n\
MIME-Version: 1.0\r\n\
\r\n\
aW5uZXI=\r\n\
--o--\r\n";
    let plain: &[u8] = b"Subject: plain\nX: y\n\nline\n";
    let s = Server::start();
    let mut c = selected_with(&s, &[msg, plain]);
    // BINARY[]: every encoded leaf decoded, its header saying so (Dovecot's form).
    let whole: &[u8] = b"Subject: outer\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\
\r\n\
--o\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
a=b\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
MIME-Version: 1.0\r\n\
Content-Transfer-Encoding: binary\r\n\
\r\n\
inner\r\n\
--o--\r\n";
    assert_eq!(
        show(&fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[] BINARY.SIZE[])")),
        show(
            &[
                format!("* 1 FETCH (BINARY[] {{{}}}\r\n", whole.len()).as_bytes(),
                whole,
                format!(" BINARY.SIZE[] {})\r\n", whole.len()).as_bytes(),
            ]
            .concat()
        )
    );
    // The message/rfc822 part: the encapsulated message, decoded.
    let inner: &[u8] = b"Subject: inner\r\nMIME-Version: 1.0\r\n\
Content-Transfer-Encoding: binary\r\n\r\ninner";
    assert_eq!(
        show(&fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2])")),
        show(&item(1, "BINARY[2]", inner, false))
    );
    // Its body part 1 (RFC 3501 part numbering inside message/rfc822).
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2.1])"),
        item(1, "BINARY[2.1]", b"inner", false)
    );
    // Nothing encoded: BINARY[] is BODY[] (bare LFs sent as CRLF, RFC 3516 6).
    let crlf: &[u8] = b"Subject: plain\r\nX: y\r\n\r\nline\r\n";
    assert_eq!(
        fetch_ok(&mut c, "FETCH 2 (BINARY.PEEK[])"),
        item(2, "BINARY[]", crlf, false)
    );
    assert_eq!(
        fetch_ok(&mut c, "FETCH 2 (BODY.PEEK[])"),
        item(2, "BODY[]", crlf, false)
    );
}

#[test]
fn bare_lf_quoted_printable_gives_crlf() {
    let msg: &[u8] = b"Subject: lf\nContent-Transfer-Encoding: quoted-printable\n\
MIME-Version: 1.0\n\nline1=\nstill1\nline2\n";
    let s = Server::start();
    let mut c = selected_with(&s, &[msg]);
    let body: &[u8] = b"line1still1\r\nline2\r\n";
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[1])"),
        item(1, "BINARY[1]", body, false)
    );
    let whole = [
        &b"Subject: lf\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n"[..],
        body,
    ]
    .concat();
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[])"),
        item(1, "BINARY[]", &whole, false)
    );
}

#[test]
fn invalid_encoded_data_answers_parse() {
    let bad64: &[u8] = b"Subject: x\r\nMIME-Version: 1.0\r\n\
Content-Transfer-Encoding: base64\r\n\r\nZm9v!\r\n";
    let badqp: &[u8] = b"Subject: x\r\nMIME-Version: 1.0\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nbad =G0 hex\r\n";
    let s = Server::start();
    let mut c = selected_with(&s, &[bad64, badqp]);
    for cmd in [
        "FETCH 1 (BINARY.PEEK[1])",
        "FETCH 1 (BINARY.SIZE[1])",
        "FETCH 2 (BINARY[1])",
    ] {
        let (out, tagged) = c.raw_exchange("F", cmd);
        assert!(tagged.starts_with("F NO [PARSE]"), "{cmd}: {tagged}");
        assert!(out.is_empty(), "{cmd}: {}", show(&out));
    }
    // \Seen is stored when the FETCH starts, before the part is read (as for BODY[], and as
    // Dovecot does), so the failed BINARY[1] (not .PEEK) has set it; the .PEEK ones have not.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1:2 (FLAGS)"),
        b"* 1 FETCH (FLAGS (\\Recent))\r\n* 2 FETCH (FLAGS (\\Seen \\Recent))\r\n"
    );
    // BODY still serves the raw part.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BODY.PEEK[1])"),
        item(1, "BODY[1]", b"Zm9v!\r\n", false)
    );
}

#[test]
fn append_literal8_stores_nul_and_binary_returns_it() {
    let msg: &[u8] = b"Subject: nul\r\nMIME-Version: 1.0\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\nA\0B\r\n";
    let s = Server::start();
    let mut c = login(&s);
    let t = append(&mut c, msg, true);
    assert!(t.starts_with("A OK [APPENDUID "), "{t}");
    // A NUL in a plain literal is refused (RFC 3501 CHAR8).
    let t = append(&mut c, msg, false);
    assert!(t.starts_with("A BAD"), "{t}");
    run_transcript(&mut c, "C: S SELECT INBOX\nS: * FLAGS *");
    let sel = c.until("S OK");
    assert!(sel.iter().any(|l| l == "* 1 EXISTS"), "{sel:?}");
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])"),
        b"* 1 FETCH (BINARY[1] ~{5}\r\nA\0B\r\n BINARY.SIZE[1] 5)\r\n"
    );
    // BODY never carries NUL: Dovecot's 0x80 in its place, same size.
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BODY.PEEK[1])"),
        item(1, "BODY[1]", b"A\x80B\r\n", false)
    );
}

/// A base64 attachment far larger than one read chunk: decoded exactly across chunk borders,
/// partial windows inside it, and BINARY.SIZE equal to what is sent.
#[test]
fn large_base64_attachment_streams_exactly() {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut data = Vec::with_capacity(600_000);
    let mut x: u32 = 12345;
    for _ in 0..600_001 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        data.push((x >> 16) as u8);
    }
    // RFC 2045 6.8, lines of 76 characters.
    let mut enc = Vec::new();
    for (i, q) in data.chunks(3).enumerate() {
        let n = q.len();
        let v = (u32::from(q[0]) << 16)
            | (u32::from(*q.get(1).unwrap_or(&0)) << 8)
            | u32::from(*q.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                enc.push(TABLE[((v >> (18 - 6 * k)) & 63) as usize]);
            } else {
                enc.push(b'=');
            }
        }
        if (i + 1) % 19 == 0 {
            enc.extend_from_slice(b"\r\n");
        }
    }
    let mut msg = b"Subject: big\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nsee attached\r\n--z\r\n\
Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    msg.extend_from_slice(&enc);
    msg.extend_from_slice(b"\r\n--z--\r\n");
    let s = Server::start();
    let mut c = selected_with(&s, &[&msg]);
    assert_eq!(
        fetch_ok(&mut c, "FETCH 1 (BINARY.SIZE[2])"),
        format!("* 1 FETCH (BINARY.SIZE[2] {})\r\n", data.len()).into_bytes()
    );
    let nul = data.contains(&0);
    let got = fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2])");
    assert!(
        got == item(1, "BINARY[2]", &data, nul),
        "whole attachment differs"
    );
    let got = fetch_ok(&mut c, "FETCH 1 (BINARY.PEEK[2]<131000.70000>)");
    assert!(
        got == item(1, "BINARY[2]<131000>", &data[131_000..201_000], nul),
        "window across a chunk border differs"
    );
}

#[test]
fn capability_names_binary_and_literal_plus_only() {
    let s = Server::start();
    let mut c = login(&s);
    let caps = c.cmd("C", "CAPABILITY");
    let line = caps
        .iter()
        .find(|l| l.starts_with("* CAPABILITY "))
        .cloned();
    let line = line.unwrap_or_else(|| panic!("{caps:?}"));
    let names: Vec<&str> = line.split(' ').collect();
    assert!(names.contains(&"BINARY"), "{line}");
    // RFC 7888 5: LITERAL+ and LITERAL- MUST NOT both be advertised; LITERAL+ is the wider one.
    assert!(names.contains(&"LITERAL+"), "{line}");
    assert!(!names.contains(&"LITERAL-"), "{line}");
}

/// What a LITERAL- client sends (non-synchronizing literals of at most 4096 octets, larger ones
/// synchronizing) works, and so does a larger non-synchronizing one, since LITERAL+ is offered.
#[test]
fn literal_minus_clients_work_under_literal_plus() {
    let s = Server::start();
    let mut c = selected_with(&s, &[b"Subject: x\r\n\r\nbody\r\n"]);
    for n in [4096usize, 5000] {
        let text = "q".repeat(n);
        c.send_raw(format!("T SEARCH TEXT {{{n}+}}\r\n{text}\r\n").as_bytes());
        let r = c.until("T ");
        assert_eq!(
            r,
            vec!["* SEARCH".to_string(), "T OK Search completed.".to_string()],
            "{n}"
        );
    }
    // A synchronizing literal gets its `+` first.
    c.send_raw(b"T SEARCH TEXT {4}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send_raw(b"body\r\n");
    let r = c.until("T ");
    assert_eq!(r.first().map(String::as_str), Some("* SEARCH 1"), "{r:?}");
    // literal8 framing with `~{n+}` (RFC 4466 / RFC 7888 6) in APPEND.
    let msg = b"Subject: y\r\n\r\nx\0y\r\n";
    c.send_raw(format!("A APPEND INBOX ~{{{}+}}\r\n", msg.len()).as_bytes());
    c.send_raw(msg);
    c.send_raw(b"\r\nN NOOP\r\n");
    let r = c.until("N ");
    assert!(r.iter().any(|l| l.starts_with("A OK [APPENDUID ")), "{r:?}");
}

/// Decoded sizes are remembered per message and section (more sections than one cache entry
/// keeps, too): a later session, BINARY.SIZE and BINARY all still agree with the hand-decoded
/// data.
#[test]
fn remembered_sizes_match_the_data() {
    // Part n holds "part n" base64-encoded, and part 3 NUL too.
    let b64 = |s: &[u8]| -> String {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut o = String::new();
        for q in s.chunks(3) {
            let v = (u32::from(q[0]) << 16)
                | (u32::from(*q.get(1).unwrap_or(&0)) << 8)
                | u32::from(*q.get(2).unwrap_or(&0));
            for k in 0..4 {
                o.push(if k <= q.len() {
                    T[((v >> (18 - 6 * k)) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        o
    };
    let decoded = |n: usize| -> Vec<u8> {
        let mut d = format!("part {n}").into_bytes();
        if n == 3 {
            d.push(0);
        }
        d
    };
    let mut msg = String::from(
        "Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n",
    );
    for n in 1..=20 {
        msg.push_str(&format!(
            "--m\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(&decoded(n))
        ));
    }
    msg.push_str("--m--\r\n");
    let s = Server::start();
    let mut c = selected_with(&s, &[msg.as_bytes()]);
    let all: Vec<String> = (1..=20).map(|n| format!("BINARY.SIZE[{n}]")).collect();
    let want: Vec<String> = (1..=20)
        .map(|n| format!("BINARY.SIZE[{n}] {}", decoded(n).len()))
        .collect();
    let want = format!("* 1 FETCH ({})\r\n", want.join(" "));
    for round in 0..2 {
        let got = fetch_ok(&mut c, &format!("FETCH 1 ({})", all.join(" ")));
        assert_eq!(show(&got), want, "round {round}");
    }
    // A new session: sizes and data (literal8 only for the part with NUL) still agree.
    let mut c = selected_with(&s, &[]);
    for n in [1usize, 3, 20] {
        let got = fetch_ok(
            &mut c,
            &format!("FETCH 1 (BINARY.SIZE[{n}] BINARY.PEEK[{n}])"),
        );
        let mut want = format!("* 1 FETCH (BINARY.SIZE[{n}] {} ", decoded(n).len()).into_bytes();
        let tilde = if n == 3 { "~" } else { "" };
        want.extend_from_slice(
            format!("BINARY[{n}] {tilde}{{{}}}\r\n", decoded(n).len()).as_bytes(),
        );
        want.extend_from_slice(&decoded(n));
        want.extend_from_slice(b")\r\n");
        assert_eq!(show(&got), show(&want), "part {n}");
    }
}
