//! Byte-exact POP3 round trip: messages stored with bare LF, CRLF, lines starting with `.`, 8-bit
//! text, a binary MIME part and a 20 MB attachment are retrieved exactly as stored, with LF to CRLF
//! the only change, and STAT/LIST announce exactly the octets received after un-stuffing.
//!
//! The client here is a raw socket reader, independent of the server's code: it splits on CRLF,
//! removes one leading `.` per line (RFC 1939 section 3) and counts.

mod common;
mod pop3_common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::*;
use pop3_common::*;

struct Raw {
    r: BufReader<TcpStream>,
}

impl Raw {
    fn login(port: u16) -> Raw {
        let mut r = Raw {
            r: BufReader::new(Client::connect_tcp(port)),
        };
        assert!(r.line().starts_with(b"+OK"));
        r.cmd("USER demo");
        let l = r.cmd("PASS demo");
        assert!(
            l.starts_with(b"+OK Logged in"),
            "{}",
            String::from_utf8_lossy(&l)
        );
        r
    }

    /// One line including its CRLF; every line the server sends must end in CRLF.
    fn line(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.r.read_until(b'\n', &mut buf).expect("read");
        assert!(
            buf.ends_with(b"\r\n"),
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf
    }

    fn cmd(&mut self, c: &str) -> Vec<u8> {
        self.r
            .get_mut()
            .write_all(format!("{c}\r\n").as_bytes())
            .unwrap();
        let mut l = self.line();
        l.truncate(l.len() - 2);
        l
    }

    /// A multi-line body up to the `.` line, un-stuffed, line ends kept.
    fn body(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == b".\r\n" {
                return out;
            }
            out.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
        }
    }

    fn number_after(line: &[u8], prefix: &str, idx: usize) -> u64 {
        let text = String::from_utf8_lossy(line);
        let rest = text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{text}"));
        rest.split(' ').nth(idx).unwrap().parse().unwrap()
    }
}

/// A 20 MB message: a text part and a base64 attachment with 76-column LF lines.
fn big_attachment() -> Vec<u8> {
    let mut m = b"From: alice@example.org\nTo: demo@example.org\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nsee attached\n.\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n".to_vec();
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u32 = 12345;
    while m.len() < 20 * 1024 * 1024 {
        for _ in 0..76 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            m.push(B64[(x >> 16) as usize % 64]);
        }
        m.push(b'\n');
    }
    m.extend_from_slice(b"--b1--\n");
    m
}

/// ~1 MB of lines that start with dots, end in LF or CRLF in turn, and cross every 64 KiB
/// streaming boundary the server reads in.
fn dotty() -> Vec<u8> {
    let mut m = b"Subject: dots everywhere\r\n\r\n".to_vec();
    let mut i = 0u32;
    while m.len() < 1024 * 1024 {
        let dots = ".".repeat((i % 4) as usize);
        let end: &[u8] = if i.is_multiple_of(3) { b"\n" } else { b"\r\n" };
        m.extend_from_slice(format!("{dots}line {i}").as_bytes());
        m.extend_from_slice(end);
        i += 1;
    }
    m
}

#[test]
fn every_kind_of_message_comes_back_exactly_as_stored() {
    let s = Server::start();
    create_maildir(&s);
    let mut binary = b"From: a@example.org\nSubject: binary part\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"xx\"\n\n--xx\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n".to_vec();
    for round in 0..4u8 {
        binary.extend((0u8..=255).map(|b| b.wrapping_add(round)));
        binary.extend_from_slice(b"\r\r\n\0\n.\n");
    }
    binary.extend_from_slice(b"\n--xx--\n");
    let messages: Vec<(&str, Vec<u8>)> = vec![
        (
            "bare LF",
            b"From: a@example.org\nSubject: lf\n\nline one\nline two\n".to_vec(),
        ),
        (
            "CRLF",
            b"From: a@example.org\r\nSubject: crlf\r\n\r\nline one\r\n\r\nline three\r\n".to_vec(),
        ),
        (
            "dots",
            b"From: a@example.org\nSubject: dots\n\n.\n..\n.leading\n. space\r\n...\r\nend.\n".to_vec(),
        ),
        (
            "8-bit",
            "From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\nSubject: Grüße\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße aus Köln, 日本語のテキスト\n"
                .bytes()
                .chain(b"latin-1: \xe4\xf6\xfc\xff\n".iter().copied())
                .collect(),
        ),
        ("binary MIME part", binary),
        ("dots at every chunk boundary", dotty()),
        ("20 MB attachment", big_attachment()),
    ];
    // A NUL can only be delivered as a file (IMAP APPEND would need a literal8).
    let messages: Vec<(&str, Vec<u8>)> = messages
        .into_iter()
        .filter(|(what, m)| {
            !m.contains(&0) || on_maildir(&format!("every_kind_of_message_...: the {what} (NUL)"))
        })
        .collect();
    for (_, m) in &messages {
        deliver(&s, m);
    }
    let mut c = Raw::login(s.ports.pop3);
    let stat = c.cmd("STAT");
    assert_eq!(Raw::number_after(&stat, "+OK ", 0), messages.len() as u64);
    let total = Raw::number_after(&stat, "+OK ", 1);
    let mut sum = 0;
    for (i, (what, stored)) in messages.iter().enumerate() {
        let n = i + 1;
        let size = Raw::number_after(&c.cmd(&format!("LIST {n}")), "+OK ", 1);
        let status = c.cmd(&format!("RETR {n}"));
        assert_eq!(
            Raw::number_after(&status, "+OK ", 0),
            size,
            "{what}: RETR and LIST disagree"
        );
        let got = c.body();
        let want = crlf(stored);
        assert_eq!(
            got.len() as u64,
            size,
            "{what}: LIST size != octets received"
        );
        assert!(
            got == want,
            "{what}: content differs from the stored message"
        );
        // TOP 0 gives exactly the header block of the same bytes.
        assert!(c.cmd(&format!("TOP {n} 0")).starts_with(b"+OK"));
        let head = c.body();
        let end = want
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .unwrap();
        assert_eq!(head, want[..end], "{what}: TOP 0");
        sum += size;
    }
    assert_eq!(sum, total, "STAT total != sum of LIST sizes");
    assert_eq!(c.cmd("QUIT"), b"+OK Logging out.");
}

#[test]
fn a_last_line_without_line_end_is_ended_with_crlf_before_the_terminator() {
    let s = Server::start();
    create_maildir(&s);
    let stored = b"Subject: no newline\n\n.last line without end";
    deliver(&s, stored);
    let mut c = Raw::login(s.ports.pop3);
    let size = Raw::number_after(&c.cmd("LIST 1"), "+OK ", 1);
    assert!(c.cmd("RETR 1").starts_with(b"+OK"));
    let got = c.body();
    let mut want = crlf(stored);
    assert_eq!(size, want.len() as u64);
    // RFC 1939 needs every line, the last included, to end in CRLF before the "." line; those
    // two octets are not part of the stored message and so not of its size (as in Dovecot).
    want.extend_from_slice(b"\r\n");
    assert_eq!(got, want);
}

#[test]
fn chunk_boundaries_between_cr_and_lf_and_before_dots_are_sent_exactly() {
    let s = Server::start();
    create_maildir(&s);
    let (stored, _) = chunk_boundary_message();
    deliver(&s, &stored);
    let mut c = Raw::login(s.ports.pop3);
    let size = Raw::number_after(&c.cmd("LIST 1"), "+OK ", 1);
    let want = crlf(&stored);
    assert_eq!(size, want.len() as u64);
    assert!(c.cmd("RETR 1").starts_with(b"+OK"));
    let got = c.body();
    assert!(
        got == want,
        "RETR differs: got {} bytes, want {}; first difference at {:?}",
        got.len(),
        want.len(),
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    // TOP with more lines than the header: the header and exactly that many body lines.
    assert!(c.cmd("TOP 1 3").starts_with(b"+OK"));
    let head = c.body();
    let end = want.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut lines_end = end;
    for _ in 0..3 {
        lines_end += want[lines_end..].iter().position(|&b| b == b'\n').unwrap() + 1;
    }
    assert_eq!(head, want[..lines_end]);
    assert_eq!(c.cmd("QUIT"), b"+OK Logging out.");
}

/// A message of exactly `len` (at least 30) bytes: a header, then lines of varying length, some starting with
/// `.`, some with bare LF.
fn sized_message(len: usize) -> Vec<u8> {
    let mut m = format!("Subject: {len} octets\n\n").into_bytes();
    let mut i = 0usize;
    while m.len() < len {
        let dots = ".".repeat(i % 3);
        let end = if i.is_multiple_of(2) { "\n" } else { "\r\n" };
        m.extend_from_slice(format!("{dots}{}{end}", "y".repeat(i % 97)).as_bytes());
        i += 1;
    }
    // The last line ends with a line end, so the octets received are exactly the stored ones.
    m.truncate(len - 1);
    m.push(b'\n');
    m
}

#[test]
fn messages_at_page_and_chunk_sizes_and_larger_than_recorded_come_back_whole() {
    let s = Server::start();
    create_maildir(&s);
    let sizes = [
        30, 4095, 4096, 4097, 8191, 8192, 12289, 131071, 131072, 131073, 300000,
    ];
    let mut messages: Vec<Vec<u8>> = sizes.iter().map(|&n| sized_message(n)).collect();
    for m in &messages {
        deliver(&s, m);
    }
    // A file larger than the size its name records (S=): it is still read to its end.
    if on_maildir("messages_at_page_and_chunk_sizes_...: a file larger than its recorded size") {
        let grown = sized_message(10000);
        let path = deliver(&s, &grown);
        let mut renamed = path.clone().into_os_string();
        renamed.push(",S=5000");
        std::fs::rename(&path, &renamed).unwrap();
        messages.push(grown);
    }
    let mut c = Raw::login(s.ports.pop3);
    for (i, stored) in messages.iter().enumerate() {
        assert!(c.cmd(&format!("RETR {}", i + 1)).starts_with(b"+OK"));
        let got = c.body();
        let want = crlf(stored);
        assert!(
            got == want,
            "message of {} octets: got {} bytes, want {}",
            stored.len(),
            got.len(),
            want.len()
        );
    }
    assert_eq!(c.cmd("QUIT"), b"+OK Logging out.");
}
