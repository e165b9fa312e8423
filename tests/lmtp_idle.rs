//! A delivery reaches IMAP sessions in IDLE: over LMTP (inside the daemon) and by
//! `mailcove deliver` (another process, seen through the storage's change watch).

mod common;
mod lmtp_support;

use common::{Client, Server};
use lmtp_support::{start, users};

fn idle_in_inbox(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    let r = c.cmd("a", "LOGIN demo pw");
    assert!(r.last().unwrap().starts_with("a OK"), "{r:?}");
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.contains(&"* 0 EXISTS".to_string()), "{r:?}");
    c.send("c IDLE");
    assert!(c.line().starts_with("+ "));
    c
}

fn lmtp_deliver(port: u16, subject: &str) {
    let mut l = Client::plain(port);
    l.line();
    l.send_raw(
        format!("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\nSubject: {subject}\r\n\r\nx\r\n.\r\nQUIT\r\n")
            .as_bytes(),
    );
    let replies = l.until("221 ");
    assert!(
        replies.contains(&"250 2.0.0 <demo> Saved".to_string()),
        "{replies:?}"
    );
}

#[test]
fn idle_session_sees_lmtp_and_deliver_cli_messages() {
    let (s, port) = start(Server::builder().users(&users()));
    // Create the Maildir first so SELECT has an INBOX.
    lmtp_deliver(port, "zero");
    let mut c = s.imap();
    c.line();
    c.cmd("a", "LOGIN demo pw");
    let r = c.cmd("b", "SELECT INBOX");
    assert!(r.contains(&"* 1 EXISTS".to_string()), "{r:?}");
    c.send("c IDLE");
    assert!(c.line().starts_with("+ "));

    lmtp_deliver(port, "one");
    let got = c.until("* 2 EXISTS");
    assert_eq!(got.last().map(String::as_str), Some("* 2 EXISTS"));

    let status = std::process::Command::new(common::BIN)
        .args(["deliver", "--config"])
        .arg(&s.config_path)
        .args(["-d", "demo"])
        .stdin(std::fs::File::open(file_with(&s, b"Subject: two\r\n\r\ny\r\n")).unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let got = c.until("* 3 EXISTS");
    assert_eq!(got.last().map(String::as_str), Some("* 3 EXISTS"));

    c.send("DONE");
    let done = c.until("c ");
    assert!(done.last().unwrap().starts_with("c OK"), "{done:?}");
}

#[test]
fn idle_on_a_fresh_user_sees_the_first_lmtp_delivery() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut c = idle_in_inbox(&s);
    lmtp_deliver(port, "first");
    let got = c.until("* 1 EXISTS");
    assert_eq!(got.last().map(String::as_str), Some("* 1 EXISTS"));
}

fn file_with(s: &Server, bytes: &[u8]) -> std::path::PathBuf {
    let p = s.path().join("stdin.eml");
    std::fs::write(&p, bytes).unwrap();
    p
}
