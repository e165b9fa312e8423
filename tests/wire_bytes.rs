//! Large message bodies go out byte-exactly whatever path the server takes (issue 23): FETCH
//! `BODY.PEEK[]`, `BODY.PEEK[]<partial>`, `BODY.PEEK[1]` and POP3 RETR of multi-megabyte
//! messages stored with CRLF line ends (on Maildir, sent by `sendfile` straight from the file
//! when the bytes are wire-ready), with bare LF (converted), with a NUL (IMAP sends 0x80), with
//! lines starting with `.` (POP3 stuffs them) and without a final line end, over plain TCP and
//! over TLS. The expected bytes are computed here from the stored ones by the protocols' rules,
//! independently of the server's code, and every response is compared whole, framing included,
//! followed by a command on the same connection to prove the stream stayed in step.

mod common;

use common::{Client, Server};

/// `lines` lines of varied text ending with `eol`; every `dot_every`-th line (0: none) starts
/// with a `.`.
fn body(lines: usize, eol: &[u8], dot_every: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..lines {
        if dot_every > 0 && i % dot_every == 3 {
            b.push(b'.');
        }
        let width = 20 + (i * 37) % 57;
        b.extend((0..width).map(|k| b'a' + ((i * 7 + k) % 26) as u8));
        b.extend_from_slice(eol);
    }
    b
}

/// A two-part MIME message of about `lines` lines, with `eol` line ends.
fn message(subject: &str, lines: usize, eol: &[u8], dot_every: usize) -> Vec<u8> {
    let e = |s: &str| s.replace('\n', std::str::from_utf8(eol).unwrap());
    let mut m = e(&format!(
        "From: a@example.org\nTo: b@example.org\nSubject: {subject}\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n"
    ))
    .into_bytes();
    m.extend(body(lines, eol, dot_every));
    m.extend(e("--b1\nContent-Type: text/plain\n\nsecond part\n--b1--\n").into_bytes());
    m
}

/// The stored messages, in delivery (and so message number) order. The one holding a NUL only
/// on Maildir: the other backends get mail by IMAP APPEND, which takes a NUL only in a literal8.
fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut nul = message("crlf with nul", 20_000, b"\r\n", 0);
    let at = nul.len() / 2;
    nul[at] = 0;
    let mut unterminated = message("no final line end", 30_000, b"\r\n", 0);
    unterminated.truncate(unterminated.len() - 2);
    let mut all = vec![
        // Wire-ready for both protocols: CRLF, no NUL, no line starting with ".".
        ("crlf", message("crlf", 60_000, b"\r\n", 0)),
        // Wire-ready for IMAP only.
        (
            "crlf-dots",
            message("crlf with dots", 60_000, b"\r\n", 1000),
        ),
        ("lf", message("lf", 60_000, b"\n", 0)),
        ("lf-dots", message("lf with dots", 40_000, b"\n", 777)),
        ("unterminated", unterminated),
        ("small", b"Subject: small\r\n\r\nhello\r\n".to_vec()),
    ];
    if common::on_maildir("the message holding a NUL") {
        all.push(("nul", nul));
    }
    all
}

/// Stored bytes as IMAP sends them: bare LF to CRLF, NUL to 0x80.
fn imap_wire(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 16);
    for (i, &b) in stored.iter().enumerate() {
        if b == b'\n' && (i == 0 || stored[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(if b == 0 { 0x80 } else { b });
    }
    out
}

/// Stored bytes as POP3 RETR sends them: bare LF to CRLF, a line starting with `.` gets another,
/// a missing final line end is added, then the `.` line.
fn pop3_wire(stored: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stored.len() + stored.len() / 16);
    let mut at_line_start = true;
    for (i, &b) in stored.iter().enumerate() {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && (i == 0 || stored[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !stored.is_empty() && !stored.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The part-1 body of a [`message`]: from after its header's blank line to the line end before
/// the next boundary, as stored.
fn part1(stored: &[u8]) -> &[u8] {
    let find = |from: usize, needle: &[u8]| {
        from + stored[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("part boundary")
    };
    let first = find(0, b"--b1");
    let header = find(first, b"Content-Type: text/plain");
    // The part header is one line: its body starts after the empty line that follows it.
    let header_end = find(header, b"\n");
    let eol = if stored[header_end - 1] == b'\r' {
        2
    } else {
        1
    };
    let start = header_end + 1 + eol;
    let next = find(start, b"--b1");
    &stored[start..next - eol]
}

fn deliver(s: &Server) -> Vec<(&'static str, Vec<u8>)> {
    let msgs = messages();
    let files: Vec<(String, Vec<u8>)> = msgs
        .iter()
        .enumerate()
        .map(|(i, (_, data))| (format!("{}.M{i}P1.wire", 1_700_000_000 + i), data.clone()))
        .collect();
    s.deliver_raw_many("demo", "demo", &files);
    msgs
}

/// A logged-in IMAP client (the login makes the user's Maildir, so mail can be put in it).
fn imap_login(mut c: Client) -> Client {
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", "LOGIN demo demo");
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

/// FETCHes `item` of message `n` and checks the whole response against `want`'s literal.
fn check_fetch(c: &mut Client, n: usize, item: &str, answered: &str, want: &[u8], what: &str) {
    let (raw, tagged) = c.raw_exchange("f", &format!("FETCH {n} {item}"));
    assert_eq!(tagged, "f OK Fetch completed.", "{what}");
    let mut expect = format!("* {n} FETCH ({answered} {{{}}}\r\n", want.len()).into_bytes();
    expect.extend_from_slice(want);
    expect.extend_from_slice(b")\r\n");
    assert_eq!(raw.len(), expect.len(), "{what}: response length");
    assert!(raw == expect, "{what}: response bytes differ");
}

fn check_imap(mut c: Client, msgs: &[(&str, Vec<u8>)]) {
    let r = c.cmd("s", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    assert!(r.contains(&format!("* {} EXISTS", msgs.len())), "{r:?}");
    for (i, (name, stored)) in msgs.iter().enumerate() {
        let n = i + 1;
        let wire = imap_wire(stored);
        check_fetch(&mut c, n, "BODY.PEEK[]", "BODY[]", &wire, name);
        // A window inside the body, starting in one chunk and ending in another.
        let (from, len) = (wire.len() / 3 + 1, wire.len() / 2);
        check_fetch(
            &mut c,
            n,
            &format!("BODY.PEEK[]<{from}.{len}>"),
            &format!("BODY[]<{from}>"),
            &wire[from..from + len],
            &format!("{name} partial"),
        );
        if *name != "small" {
            let part = imap_wire(part1(stored));
            check_fetch(
                &mut c,
                n,
                "BODY.PEEK[1]",
                "BODY[1]",
                &part,
                &format!("{name} part 1"),
            );
        }
    }
    let r = c.cmd("z", "NOOP");
    assert_eq!(r.last().unwrap(), "z OK NOOP completed.");
}

fn check_pop3(mut c: Client, msgs: &[(&str, Vec<u8>)]) {
    assert!(c.line().starts_with("+OK"));
    c.send("USER demo");
    assert!(c.line().starts_with("+OK"));
    c.send("PASS demo");
    assert!(c.line().starts_with("+OK"));
    // Twice over, so the second RETR of each message follows a first on the same connection.
    for round in 0..2 {
        for (i, (name, stored)) in msgs.iter().enumerate() {
            let n = i + 1;
            let wire = pop3_wire(stored);
            c.send(&format!("RETR {n}"));
            let status = c.line();
            // The CRLF size, which does not count stuffing nor an added final line end.
            let size = imap_wire(stored).len();
            assert_eq!(status, format!("+OK {size} octets"), "{name}");
            let got = c.bytes(wire.len());
            assert!(got == wire, "{name} round {round}: RETR bytes differ");
        }
    }
    c.send("NOOP");
    assert_eq!(c.line(), "+OK");
}

#[test]
fn large_bodies_are_sent_byte_exactly_on_plain_connections() {
    let s = Server::start();
    let c = imap_login(s.imap());
    let msgs = deliver(&s);
    check_imap(c, &msgs);
    check_pop3(s.pop3(), &msgs);
}

#[test]
fn large_bodies_are_sent_byte_exactly_over_tls() {
    let s = Server::start();
    let c = imap_login(s.imaps());
    let msgs = deliver(&s);
    check_imap(c, &msgs);
    check_pop3(s.pop3s(), &msgs);
}
