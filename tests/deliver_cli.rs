//! `mailcove deliver`: exit codes for each outcome, the one-line reason, the stored bytes, and
//! a delivered message read back through the running daemon's POP3 byte-exact.

mod common;
mod lmtp_support;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{BIN, Server};
use lmtp_support::{make_folder, stamped, stored, user_line, users};

/// Runs `mailcove deliver` with `args` and `input` on stdin; returns (status, stderr).
fn deliver(s: &Server, args: &[&str], input: &[u8]) -> (i32, String) {
    deliver_with(&s.config_path, args, input)
}

fn deliver_with(config: &std::path::Path, args: &[&str], input: &[u8]) -> (i32, String) {
    let mut child = Command::new(BIN)
        .arg("deliver")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MAILCOVE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that exits before reading stdin (usage errors) closes the pipe: ignore EPIPE.
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_line(stderr: &str) -> &str {
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    stderr.trim_end()
}

const MSG: &[u8] = b"From: a@example.net\r\nSubject: deliver\r\n\r\nhello\r\n.dot line\r\n";

#[test]
fn delivered_message_is_stored_and_read_back_through_pop3() {
    let s = Server::builder().users(&users()).start();
    let (code, err) = deliver(&s, &["-d", "demo", "-f", "a@example.net"], MSG);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "", "nothing on stderr on success");
    let want = stamped("a@example.net", "demo", MSG);
    assert_eq!(stored(&s.maildir("demo"), ""), vec![want.clone()]);

    // The running daemon sees it at the next POP3 login, byte-exact.
    let mut p = s.pop3();
    p.line();
    p.send("USER demo");
    p.line();
    p.send("PASS pw");
    assert!(p.line().starts_with("+OK"));
    p.send("LIST");
    assert!(p.line().starts_with("+OK"));
    assert_eq!(p.multiline(), vec![format!("1 {}", want.len())]);
    p.send("RETR 1");
    assert!(p.line().starts_with("+OK"));
    let lines = p.multiline();
    let got: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    assert_eq!(got.as_bytes(), &want[..]);
    p.send("QUIT");
    p.line();
}

#[test]
fn exit_codes_for_each_outcome() {
    let mut lines = users();
    lines.push(user_line("broken", ""));
    let s = Server::builder().users(&lines).start();
    std::fs::write(s.maildir("broken"), b"not a directory").unwrap();

    let (code, err) = deliver(&s, &["-d", "nobody@example.com"], MSG);
    assert_eq!(code, 67, "EX_NOUSER: {err}");
    assert!(
        one_line(&err).contains("user doesn't exist: nobody@example.com"),
        "{err}"
    );

    let (code, err) = deliver(&s, &["-d", "full"], MSG);
    assert_eq!(code, 73, "EX_CANTCREAT for permanent over-quota: {err}");
    assert!(one_line(&err).contains("quota exceeded"), "{err}");

    let (code, err) = deliver(&s, &["-d", "broken"], MSG);
    assert_eq!(code, 75, "EX_TEMPFAIL for storage trouble: {err}");
    assert!(one_line(&err).contains("temporary failure"), "{err}");

    let (code, err) = deliver(&s, &["-d", "demo\nX-Injected: 1"], MSG);
    assert_eq!(code, 64, "EX_USAGE: {err}");
    one_line(&err);

    let (code, _) = deliver(&s, &["-m", "INBOX"], MSG);
    assert_eq!(code, 64, "missing -d is a usage error, not clap's 2");

    let (code, err) = deliver_with(&s.path().join("missing.toml"), &["-d", "demo"], MSG);
    assert_eq!(code, 75, "an unreadable configuration is retried: {err}");
    assert!(one_line(&err).contains("configuration"), "{err}");

    assert!(stored(&s.maildir("demo"), "").is_empty());
    assert!(stored(&s.maildir("full"), "").is_empty());
}

#[test]
fn over_quota_temporary_and_too_large() {
    let s = Server::builder()
        .users(&users())
        .config("[lmtp]\nover_quota = \"temporary\"\n\n[limits]\nmax_message_size = 1024\n")
        .start();
    let (code, err) = deliver(&s, &["-d", "full"], MSG);
    assert_eq!(code, 75, "EX_TEMPFAIL for temporary over-quota: {err}");
    let big = vec![b'x'; 1025];
    let (code, err) = deliver(&s, &["-d", "demo"], &big);
    assert_eq!(code, 73, "too large is permanent: {err}");
    assert!(one_line(&err).contains("too large"), "{err}");
    let fits = vec![b'x'; 1024];
    let (code, err) = deliver(&s, &["-d", "demo"], &fits);
    assert_eq!(code, 0, "exactly the limit fits: {err}");
}

#[test]
fn folders_details_and_the_mbox_from_line() {
    let s = Server::builder().users(&users()).start();
    make_folder(&s.maildir("demo"), "Lists");
    let (code, err) = deliver(&s, &["-d", "demo", "-m", "Lists"], MSG);
    assert_eq!(code, 0, "{err}");
    let (code, err) = deliver(&s, &["-d", "demo", "-m", "Missing"], MSG);
    assert_eq!(code, 0, "a missing -m folder falls back to INBOX: {err}");
    let (code, err) = deliver(&s, &["-d", "demo+Lists@example.com"], MSG);
    assert_eq!(code, 0, "{err}");
    let mut mbox = b"From bounce@list.example Sat Jan  3 01:05:34 1996\n".to_vec();
    mbox.extend_from_slice(b"Subject: lf\n\nbody\n");
    let (code, err) = deliver(&s, &["-d", "other@example.org"], &mbox);
    assert_eq!(code, 0, "{err}");

    let mut lists = vec![
        stamped("", "demo", MSG),
        stamped("", "demo+Lists@example.com", MSG),
    ];
    lists.sort();
    assert_eq!(stored(&s.maildir("demo"), "Lists"), lists);
    assert_eq!(
        stored(&s.maildir("demo"), ""),
        vec![stamped("", "demo", MSG)]
    );
    assert_eq!(
        stored(&s.maildir("other"), ""),
        vec![
            b"Return-Path: <bounce@list.example>\nDelivered-To: other@example.org\nSubject: lf\n\nbody\n"
                .to_vec()
        ]
    );
}

#[test]
fn deliver_and_lmtp_run_concurrently_with_the_daemon() {
    let (s, port) = lmtp_support::start(Server::builder().users(&users()));
    let n = 6;
    std::thread::scope(|scope| {
        for i in 0..n {
            let s = &s;
            scope.spawn(move || {
                let msg = format!("Subject: cli {i}\r\n\r\nx\r\n");
                let (code, err) = deliver(s, &["-d", "demo"], msg.as_bytes());
                assert_eq!(code, 0, "{err}");
            });
            scope.spawn(move || {
                let mut c = common::Client::plain(port);
                c.line();
                c.send_raw(
                    format!("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\nSubject: lmtp {i}\r\n\r\nx\r\n.\r\n")
                        .as_bytes(),
                );
                let replies = c.until("250 2.0.0 <demo>");
                assert_eq!(replies.len(), 10, "{replies:?}");
            });
        }
    });
    let got = stored(&s.maildir("demo"), "");
    assert_eq!(got.len(), 2 * n);
    // The daemon's POP3 sees every message, CLI and LMTP alike.
    let mut p = s.pop3();
    p.line();
    p.send("USER demo");
    p.line();
    p.send("PASS pw");
    assert!(p.line().starts_with("+OK"));
    p.send("STAT");
    let stat = p.line();
    assert!(stat.starts_with(&format!("+OK {} ", 2 * n)), "{stat}");
}

#[test]
fn the_memory_location_is_refused_with_a_reason_and_a_retry() {
    // `location = "memory:"` keeps mail inside the daemon: a separate deliver process cannot
    // store into it, and says so rather than storing somewhere nobody reads.
    let s = Server::builder().users(&users()).start();
    let cfg = std::fs::read_to_string(&s.config_path).unwrap();
    let memory: String = cfg
        .lines()
        .map(|l| {
            if l.starts_with("location = ") {
                "location = \"memory:\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = s.path().join("memory.toml");
    std::fs::write(&path, memory).unwrap();
    let (code, err) = deliver_with(&path, &["-d", "demo"], MSG);
    assert_eq!(code, 75, "EX_TEMPFAIL: {err}");
    let line = one_line(&err);
    assert!(line.contains("memory:") && line.contains("LMTP"), "{line}");
}
