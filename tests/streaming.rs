//! Streaming with bounded memory (issue 14): APPEND literals and LMTP DATA go to storage as they
//! arrive; aborted transfers leave nothing behind; quota and the global in-flight budget refuse
//! with the right answer and keep the connection usable. Real binary, real sockets.

mod common;
mod lmtp_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Client, Server};
use lmtp_support::{lmtp_listener, stamped, stored, user_line};

/// The chunk the server streams in (`limits::INCOMING_MESSAGE_CHUNK`).
const CHUNK: usize = 64 * 1024;

fn login(s: &Server, user: &str, pw: &str) -> Client {
    let mut c = s.imap();
    c.line();
    let r = c.cmd("l", &format!("LOGIN {user} {pw}"));
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}");
    c
}

/// A message of `len` bytes whose every byte depends on its position (so misplaced chunks show).
fn message(len: usize) -> Vec<u8> {
    let mut m = b"Subject: streamed\r\n\r\n".to_vec();
    let mut i = 0u32;
    while m.len() < len {
        m.push(b'a' + (i % 26) as u8);
        i += 1;
        if i.is_multiple_of(77) {
            m.extend_from_slice(b"\r\n");
        }
    }
    m.truncate(len);
    m
}

/// `APPEND` with a synchronizing literal; returns the tagged answer.
fn append_sync(c: &mut Client, tag: &str, data: &[u8]) -> String {
    c.send(&format!("{tag} APPEND INBOX {{{}}}", data.len()));
    let cont = c.line();
    if !cont.starts_with('+') {
        return cont;
    }
    c.send_raw(data);
    c.send_raw(b"\r\n");
    c.until(&format!("{tag} ")).pop().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (a few seconds at most) until `dir` holds no file.
fn wait_empty(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !files_in(dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} still holds {:?}",
            dir.display(),
            files_in(dir)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inbox_bodies(c: &mut Client) -> Vec<Vec<u8>> {
    let r = c.cmd("s", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    if r.iter().any(|l| l == "* 0 EXISTS") {
        return Vec::new();
    }
    c.fetch_all_bodies("f")
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

#[test]
fn append_streams_every_size_across_chunk_boundaries() {
    let s = Server::start();
    let mut c = login(&s, "demo", "demo");
    let sizes = [
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK + 17,
        5 * 1024 * 1024 + 3,
    ];
    let mut want = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let m = message(n);
        let tag = format!("a{i}");
        let ok = append_sync(&mut c, &tag, &m);
        assert!(
            ok.starts_with(&format!("{tag} OK [APPENDUID ")),
            "{n} bytes: {ok}"
        );
        want.push(m);
    }
    // LITERAL+: the data follows the header without waiting for `+`.
    let m = message(2 * CHUNK + 5);
    let mut cmd = format!("p APPEND INBOX (\\Seen) {{{}+}}\r\n", m.len()).into_bytes();
    cmd.extend_from_slice(&m);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let ok = c.until("p ").pop().unwrap();
    assert!(ok.starts_with("p OK [APPENDUID "), "{ok}");
    want.push(m);
    // The mailbox name may itself be a literal; the message literal after it still streams.
    let m = message(CHUNK + 9);
    c.send("n APPEND {5}");
    assert!(c.line().starts_with('+'));
    c.send(&format!("INBOX {{{}}}", m.len()));
    assert!(c.line().starts_with('+'));
    c.send_raw(&m);
    c.send_raw(b"\r\n");
    let ok = c.until("n ").pop().unwrap();
    assert!(ok.starts_with("n OK [APPENDUID "), "{ok}");
    want.push(m);

    let got = inbox_bodies(&mut c);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g == w, "a {}-byte message came back different", w.len());
    }
    assert!(files_in(&s.maildir("demo").join("tmp")).is_empty());
}

#[test]
fn empty_literals_are_refused_and_multiple_literals_are_messages_not_commands() {
    let s = Server::start();
    let mut c = login(&s, "demo", "demo");
    // A synchronizing zero-byte literal is refused before `+`: no data follows.
    c.send("z APPEND INBOX {0}");
    let r = c.line();
    assert!(r.starts_with("z NO "), "{r}");
    // Non-synchronizing: its (empty) data and line are skipped.
    c.send_raw(b"z2 APPEND INBOX {0+}\r\n\r\n");
    let r = c.line();
    assert!(r.starts_with("z2 NO "), "{r}");
    // MULTIAPPEND (RFC 3502): the second literal is a message too, never run as commands.
    c.send_raw(b"m APPEND INBOX {6+}\r\nhello\n {14+}\r\nm2 LOGOUT\r\nx\r\n\r\n");
    let r = c.line();
    assert!(
        r.starts_with("m OK [APPENDUID ") && r.contains(" 1:2]"),
        "{r}"
    );
    let r = c.cmd("n", "NOOP");
    assert_eq!(r.last().unwrap(), "n OK NOOP completed.");
    assert_eq!(
        inbox_bodies(&mut c),
        // (FETCH sends the bare LF as CRLF.)
        vec![b"hello\r\n".to_vec(), b"m2 LOGOUT\r\nx\r\n".to_vec()]
    );
    assert!(files_in(&s.maildir("demo").join("tmp")).is_empty());
}

#[test]
fn a_client_gone_mid_literal_leaves_no_file_and_no_message() {
    let s = Server::start();
    let tmp = s.maildir("demo").join("tmp");
    {
        let mut c = login(&s, "demo", "demo");
        c.send("a APPEND INBOX {1048576}");
        assert!(c.line().starts_with('+'));
        c.send_raw(&message(300_000));
        // The partial message sits in tmp/ while the transfer lasts.
        let deadline = Instant::now() + Duration::from_secs(10);
        while files_in(&tmp).is_empty() {
            assert!(
                Instant::now() < deadline,
                "no temporary file while streaming"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    wait_empty(&tmp);
    let mut c = login(&s, "demo", "demo");
    assert!(inbox_bodies(&mut c).is_empty());
}

#[test]
fn over_quota_is_refused_with_nothing_stored_and_the_connection_usable() {
    let s = Server::builder()
        .users(&[user_line("q", "userdb_quota_rule=*:storage=100K")])
        .start();
    let mut c = login(&s, "q", "pw");
    // Synchronizing: refused before `+`, so the client never sends the 200 kB.
    c.send("a APPEND INBOX {200000}");
    let r = c.line();
    assert!(r.starts_with("a NO [OVERQUOTA]"), "{r}");
    // Non-synchronizing: the data is already on its way; it is read and dropped.
    let mut cmd = b"b APPEND INBOX {200000+}\r\n".to_vec();
    cmd.extend_from_slice(&message(200_000));
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    let r = c.until("b ").pop().unwrap();
    assert!(r.starts_with("b NO [OVERQUOTA]"), "{r}");
    let r = c.cmd("n", "NOOP");
    assert_eq!(r.last().unwrap(), "n OK NOOP completed.");
    // What fits is still stored.
    let small = message(1000);
    let ok = append_sync(&mut c, "c", &small);
    assert!(ok.starts_with("c OK [APPENDUID "), "{ok}");
    assert_eq!(inbox_bodies(&mut c), vec![small]);
    assert!(files_in(&s.maildir("q").join("tmp")).is_empty());
}

#[test]
fn a_spent_in_flight_budget_answers_no_limit() {
    // One chunk of budget: a single transfer may stream at a time.
    let s = Server::builder()
        .config(&format!("[limits]\nmax_inflight_message_bytes = {CHUNK}\n"))
        .start();
    let mut a = login(&s, "demo", "demo");
    let big = message(1_000_000);
    a.send(&format!("a APPEND INBOX {{{}}}", big.len()));
    assert!(a.line().starts_with('+'));
    a.send_raw(&big[..1000]);

    let mut b = login(&s, "demo", "demo");
    let started = Instant::now();
    b.send("b APPEND INBOX {100}");
    let r = b.line();
    assert!(r.starts_with("b NO [LIMIT]"), "{r}\n{}", s.log());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the refusal came without the short wait"
    );
    let mut cmd = b"c APPEND INBOX {5+}\r\n".to_vec();
    cmd.extend_from_slice(b"hello\r\n");
    b.send_raw(&cmd);
    let r = b.line();
    assert!(r.starts_with("c NO [LIMIT]"), "{r}");
    assert_eq!(b.cmd("n", "NOOP").pop().unwrap(), "n OK NOOP completed.");

    // The first transfer finishes; its budget is given back.
    a.send_raw(&big[1000..]);
    a.send_raw(b"\r\n");
    let ok = a.until("a ").pop().unwrap();
    assert!(ok.starts_with("a OK [APPENDUID "), "{ok}");
    let small = message(100);
    let ok = append_sync(&mut b, "d", &small);
    assert!(ok.starts_with("d OK [APPENDUID "), "{ok}");
    assert_eq!(inbox_bodies(&mut b).len(), 2);
}

/// Starts a server with an LMTP listener and the users `demo` (password `demo`), `other`, `third`.
fn lmtp_server(extra: &str) -> (Server, u16) {
    let port = common::free_port();
    let s = Server::builder()
        .user("other", "pw")
        .user("third", "pw")
        .config(extra)
        .config(&lmtp_listener(port))
        .start();
    (s, port)
}

fn lmtp(port: u16) -> Client {
    let mut c = Client::plain(port);
    assert!(c.line().starts_with("220 "));
    c.send("LHLO test");
    c.until("250 ");
    c
}

/// `message` dot-stuffed and terminated for DATA.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 1024);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A CRLF message of about `len` bytes where some lines start with dots.
fn lmtp_message(len: usize) -> Vec<u8> {
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    while m.len() < len {
        if i.is_multiple_of(5) {
            m.extend_from_slice(b"..dots ");
        }
        m.extend_from_slice(format!("line {i} of the message\r\n").as_bytes());
        i += 1;
    }
    m
}

#[test]
fn lmtp_multi_recipient_delivery_is_byte_identical_for_each() {
    let (s, port) = lmtp_server("");
    let rcpts = ["demo", "other", "third"];
    let mut c = lmtp(port);
    // DATA: dot-stuffed, spilled to a temporary file (well over the in-memory part).
    let m = lmtp_message(3 * 1024 * 1024);
    c.send("MAIL FROM:<sender@example.org>");
    assert!(c.line().starts_with("250"));
    for r in rcpts {
        c.send(&format!("RCPT TO:<{r}>"));
        assert!(c.line().starts_with("250"));
    }
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    c.send_raw(&dot_stuffed(&m));
    for r in rcpts {
        assert_eq!(c.line(), format!("250 2.0.0 <{r}> Saved"));
    }
    // BDAT: two chunks of a smaller message that stays in memory.
    let small = lmtp_message(100 * 1024);
    c.send("MAIL FROM:<sender@example.org>");
    assert!(c.line().starts_with("250"));
    for r in rcpts {
        c.send(&format!("RCPT TO:<{r}>"));
        assert!(c.line().starts_with("250"));
    }
    let (a, b) = small.split_at(70_001);
    c.send_raw(format!("BDAT {}\r\n", a.len()).as_bytes());
    c.send_raw(a);
    assert!(c.line().starts_with("250 2.0.0 70001 octets"));
    c.send_raw(format!("BDAT {} LAST\r\n", b.len()).as_bytes());
    c.send_raw(b);
    for r in rcpts {
        assert_eq!(c.line(), format!("250 2.0.0 <{r}> Saved"));
    }
    for r in rcpts {
        let mut want = vec![
            stamped("sender@example.org", r, &m),
            stamped("sender@example.org", r, &small),
        ];
        want.sort();
        let got = stored(&s.maildir(r), "");
        assert_eq!(got.len(), 2, "{r}");
        assert!(got == want, "{r}'s copies differ from what was sent");
    }
}

#[test]
fn lmtp_aborted_mid_data_stores_nothing() {
    let (s, port) = lmtp_server("");
    {
        let mut c = lmtp(port);
        c.send("MAIL FROM:<a@b>");
        assert!(c.line().starts_with("250"));
        c.send("RCPT TO:<demo>");
        assert!(c.line().starts_with("250"));
        c.send("DATA");
        assert!(c.line().starts_with("354"));
        let m = dot_stuffed(&lmtp_message(2 * 1024 * 1024));
        c.send_raw(&m[..1024 * 1024]);
    }
    s.wait_log(|l| l.contains("connection closed inside a message"));
    assert!(stored(&s.maildir("demo"), "").is_empty());
    assert!(files_in(&s.maildir("demo").join("tmp")).is_empty());
    // The server is fine: the next delivery goes through.
    let mut c = lmtp(port);
    c.send("MAIL FROM:<a@b>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<demo>");
    assert!(c.line().starts_with("250"));
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    c.send_raw(b"Subject: after\r\n\r\nok\r\n.\r\n");
    assert_eq!(c.line(), "250 2.0.0 <demo> Saved");
    assert_eq!(stored(&s.maildir("demo"), "").len(), 1);
}

#[test]
fn lmtp_spent_in_flight_budget_answers_452() {
    let (s, port) = lmtp_server(&format!("[limits]\nmax_inflight_message_bytes = {CHUNK}\n"));
    // An IMAP client holds the only chunk of budget mid-literal.
    let mut a = login(&s, "demo", "demo");
    a.send("a APPEND INBOX {100000}");
    assert!(a.line().starts_with('+'));
    a.send_raw(&message(10));

    let mut c = lmtp(port);
    c.send("MAIL FROM:<a@b>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<other>");
    assert!(c.line().starts_with("250"));
    c.send("DATA");
    assert_eq!(
        c.line(),
        "452 4.3.1 Insufficient system resources, try again later"
    );
    // BDAT's data is already on its way: it is read and dropped, the transaction ends.
    c.send_raw(b"BDAT 5 LAST\r\nhello");
    assert_eq!(
        c.line(),
        "452 4.3.1 Insufficient system resources, try again later"
    );
    c.send("NOOP");
    assert_eq!(c.line(), "250 2.0.0 OK");
    // After BDAT LAST the client waits for one reply per recipient (RFC 2033 4.3): two here.
    c.send("MAIL FROM:<a@b>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<other>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<demo>");
    assert!(c.line().starts_with("250"));
    c.send_raw(b"BDAT 5 LAST\r\nhello");
    for _ in 0..2 {
        assert_eq!(
            c.line(),
            "452 4.3.1 Insufficient system resources, try again later"
        );
    }
    c.send("NOOP");
    assert_eq!(c.line(), "250 2.0.0 OK");
    assert!(stored(&s.maildir("other"), "").is_empty());

    // Once the budget is back, delivery works again.
    a.send_raw(&message(100_000 - 10));
    a.send_raw(b"\r\n");
    assert!(a.until("a ").pop().unwrap().starts_with("a OK"));
    c.send("MAIL FROM:<a@b>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<other>");
    assert!(c.line().starts_with("250"));
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    c.send_raw(b"Subject: x\r\n\r\nok\r\n.\r\n");
    assert_eq!(c.line(), "250 2.0.0 <other> Saved");
}

#[test]
fn imap_clients_cannot_take_the_budget_kept_for_delivery() {
    // Four chunks: IMAP may hold three, the fourth is kept for LMTP.
    let (s, port) = lmtp_server(&format!(
        "[limits]\nmax_inflight_message_bytes = {}\n",
        4 * CHUNK
    ));
    let mut holders: Vec<Client> = ["demo", "other", "third"]
        .iter()
        .map(|u| {
            let mut c = login(&s, u, if *u == "demo" { "demo" } else { "pw" });
            c.send("a APPEND INBOX {100000}");
            assert!(c.line().starts_with('+'));
            c.send_raw(&message(10));
            c
        })
        .collect();
    let mut d = login(&s, "demo", "demo");
    d.send("d APPEND INBOX {100}");
    let r = d.line();
    assert!(r.starts_with("d NO [LIMIT]"), "{r}");
    // The MTA still delivers.
    let mut c = lmtp(port);
    c.send("MAIL FROM:<a@b>");
    assert!(c.line().starts_with("250"));
    c.send("RCPT TO:<other>");
    assert!(c.line().starts_with("250"));
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    c.send_raw(b"Subject: x\r\n\r\nok\r\n.\r\n");
    assert_eq!(c.line(), "250 2.0.0 <other> Saved");
    for h in &mut holders {
        h.send_raw(&message(100_000 - 10));
        h.send_raw(b"\r\n");
        let ok = h.until("a ").pop().unwrap();
        assert!(ok.starts_with("a OK [APPENDUID "), "{ok}");
    }
}

/// Runs `mailcove deliver -d user` with `input` on stdin; returns the exit status.
fn deliver(s: &Server, user: &str, input: &[u8]) -> i32 {
    use std::io::Write;
    let mut child = std::process::Command::new(common::BIN)
        .args(["deliver", "--config"])
        .arg(&s.config_path)
        .args(["-d", user])
        .env_remove("MAILCOVE_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A child that stops reading early (message too big) closes the pipe: ignore EPIPE.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait().unwrap().code().unwrap_or(-1)
}

#[test]
fn deliver_streams_stdin_and_refuses_what_is_too_big() {
    let (s, _) = lmtp_server("[limits]\nmax_message_size = 4194304\n");
    // An mbox `From ` line names the sender and is not stored.
    let m = lmtp_message(3 * 1024 * 1024);
    let mut input = b"From alice@example.org Mon Jan  1 00:00:00 2024\n".to_vec();
    input.extend_from_slice(&m);
    assert_eq!(deliver(&s, "other", &input), 0);
    let got = stored(&s.maildir("other"), "");
    assert!(got == vec![stamped("alice@example.org", "other", &m)]);
    // Over limits.max_message_size: EX_CANTCREAT, nothing stored.
    let big = lmtp_message(5 * 1024 * 1024);
    assert_eq!(deliver(&s, "third", &big), 73);
    assert!(stored(&s.maildir("third"), "").is_empty());
}

#[test]
fn quota_used_up_while_a_literal_streams_answers_overquota_after_the_data() {
    let s = Server::builder()
        .users(&[user_line("q", "userdb_quota_rule=*:storage=100K")])
        .start();
    let (mut a, mut b) = (login(&s, "q", "pw"), login(&s, "q", "pw"));
    let (ma, mb) = (message(60_000), message(60_000));
    // Both fit the quota when announced, so both are told to send.
    a.send(&format!("a APPEND INBOX {{{}}}", ma.len()));
    assert!(a.line().starts_with('+'));
    b.send(&format!("b APPEND INBOX {{{}}}", mb.len()));
    assert!(b.line().starts_with('+'));
    b.send_raw(&mb[..30_000]);
    a.send_raw(&ma);
    a.send_raw(b"\r\n");
    assert!(a.until("a ").pop().unwrap().starts_with("a OK [APPENDUID "));
    // The rest of b's literal is read; the message no longer fits.
    b.send_raw(&mb[30_000..]);
    b.send_raw(b"\r\n");
    let r = b.until("b ").pop().unwrap();
    assert!(r.starts_with("b NO [OVERQUOTA]"), "{r}");
    assert_eq!(b.cmd("n", "NOOP").pop().unwrap(), "n OK NOOP completed.");
    assert_eq!(inbox_bodies(&mut b), vec![ma]);
    assert!(files_in(&s.maildir("q").join("tmp")).is_empty());
}
