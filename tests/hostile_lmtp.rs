//! Hostile input and a full disk over LMTP (issue 7), against the running binary: each case
//! asserts the exact reply, that the session or a fresh one is served afterwards, and that the
//! server's RSS stayed within a fixed margin.

mod common;
mod lmtp_support;

use common::*;
use lmtp_support::{start, users};

const RSS_MARGIN_KIB: u64 = 32 * 1024;

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn connect(port: u16) -> Client {
    let mut c = Client::plain(port);
    assert!(c.line().starts_with("220 localhost LMTP"));
    c
}

/// LHLO, skipping its capability lines.
fn lhlo(c: &mut Client) {
    c.send("LHLO mx");
    while c.line().starts_with("250-") {}
}

/// One delivery to `rcpt`; returns the per-recipient reply.
fn deliver(port: u16, rcpt: &str, msg: &[u8]) -> String {
    let mut c = connect(port);
    lhlo(&mut c);
    c.send("MAIL FROM:<>");
    assert_eq!(c.line(), "250 2.1.0 OK");
    c.send(&format!("RCPT TO:<{rcpt}>"));
    assert_eq!(c.line(), "250 2.1.5 OK");
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    let mut data = msg.to_vec();
    data.extend_from_slice(b".\r\n");
    c.send_raw(&data);
    c.line()
}

#[test]
fn hostile_lmtp_commands_are_answered_and_the_session_goes_on() {
    let (s, port) = start(Server::builder().users(&users()));
    let before = rss_kib(s.pid());
    let mut c = connect(port);
    // A 10 MB line is refused once, without being buffered; the next command runs.
    let big = format!("LHLO {}\r\nNOOP\r\n", "x".repeat(10 * 1024 * 1024));
    c.send_raw(big.as_bytes());
    assert_eq!(c.line(), "500 5.5.2 Line too long");
    assert_eq!(c.line(), "250 2.0.0 OK");
    // NUL and bare CR.
    c.send_raw(b"NO\0OP\r\n");
    assert_eq!(c.line(), "500 5.5.2 Unknown command");
    c.send_raw(b"NOOP\rRSET\r\n");
    assert_eq!(c.line(), "500 5.5.2 Unknown command");
    // Wrong order.
    c.send("DATA");
    assert_eq!(c.line(), "503 5.5.1 MAIL needed first");
    c.send("RCPT TO:<demo>");
    assert_eq!(c.line(), "503 5.5.1 MAIL needed first");
    // 10,000 pipelined commands in one write, answered in order.
    c.send_raw("NOOP\r\n".repeat(10_000).as_bytes());
    for i in 0..10_000 {
        assert_eq!(c.line(), "250 2.0.0 OK", "NOOP {i}");
    }
    drop(c);
    // Still delivering.
    assert_eq!(
        deliver(port, "demo", b"Subject: after\r\n\r\nbody\r\n"),
        "250 2.0.0 <demo> Saved"
    );
    let after = rss_kib(s.pid());
    assert!(
        after < before + RSS_MARGIN_KIB,
        "RSS {before} -> {after} KiB"
    );
}

#[test]
fn a_mime_bomb_delivered_by_lmtp_is_stored_and_answers_bodystructure_within_the_depth_limit() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut m = b"Subject: deep\r\nMIME-Version: 1.0\r\n".to_vec();
    for i in 0..10_000 {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
    for i in (0..10_000).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    assert_eq!(deliver(port, "demo", &m), "250 2.0.0 <demo> Saved");
    let mut c = s.imap();
    c.line();
    c.cmd("l", "LOGIN demo pw");
    c.cmd("s", "SELECT INBOX");
    let r = c.cmd("f", "FETCH 1 BODYSTRUCTURE");
    assert_eq!(r.len(), 2);
    assert_eq!(r[1], "f OK Fetch completed.");
    let depth = r[0]
        .chars()
        .scan(0i64, |d, ch| {
            match ch {
                '(' => *d += 1,
                ')' => *d -= 1,
                _ => {}
            }
            Some(*d)
        })
        .max()
        .unwrap();
    let limit = mailcove::limits::MAX_MIME_DEPTH as i64;
    assert!(depth > 10 && depth <= limit + 8, "depth {depth}");
}

#[test]
fn full_disk_makes_lmtp_fail_temporarily_and_corrupts_nothing() {
    let (s, port) = start(Server::builder().users(&users()));
    if !is_root() {
        eprintln!("SKIPPED: mounting a tmpfs needs root; the LMTP full-disk case did not run");
        return;
    }
    let mail = s.path().join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs"])
        .arg(&mail)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount failed although root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _guard = Unmount(mail);
    let mut saved = 0;
    let mut refused = None;
    for i in 0..100 {
        let mut msg = format!("Subject: m{i}\r\n\r\n").into_bytes();
        while msg.len() < 50 * 1024 {
            msg.extend_from_slice(b"filler filler filler filler filler filler\r\n");
        }
        let r = deliver(port, "demo", &msg);
        if r == "250 2.0.0 <demo> Saved" {
            saved += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let refused = refused.expect("1 MiB never filled");
    // Temporary, so the MTA keeps the mail queued instead of bouncing it.
    assert_eq!(refused, "451 4.3.0 <demo> Temporary internal error");
    assert!(saved >= 3, "{saved}");
    // Everything acknowledged is readable, whole, over IMAP.
    let mut c = s.imap();
    c.line();
    c.cmd("l", "LOGIN demo pw");
    let r = c.cmd("s", "SELECT INBOX");
    assert!(r.contains(&format!("* {saved} EXISTS")), "{r:?}");
    let r = c.cmd("f", "FETCH 1:* RFC822.SIZE");
    assert_eq!(r.len(), saved + 1);
    assert_eq!(r[saved], "f OK Fetch completed.");
}
