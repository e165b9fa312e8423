//! Hostile input against the running binary (issue 7). Every case asserts the exact answer, that
//! the server still serves a fresh client afterwards, and that its resident memory stayed within a
//! fixed margin of what it was before the attack (read from /proc, never a timing assertion).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

/// Growth of the server's resident set an attack may cause. Far below what buffering the attack
/// (10 MB lines, 50 MB messages) would cost, far above allocator noise.
const RSS_MARGIN_KIB: u64 = 32 * 1024;

fn proc_status_kib(pid: i32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The server's current resident set.
fn rss_kib(s: &Server) -> u64 {
    proc_status_kib(s.pid(), "VmRSS:")
}

/// Memory before an attack; [`Baseline::check`] asserts the server still works and stayed small.
struct Baseline {
    rss: u64,
}

impl Baseline {
    fn take(s: &Server) -> Baseline {
        Baseline { rss: rss_kib(s) }
    }

    /// A fresh IMAP and a fresh POP3 client are served, and RSS (now and at its peak since the
    /// baseline: the peak is cumulative, so it is compared to the same margin) stayed bounded.
    fn check(&self, s: &Server) {
        fresh_clients_are_served(s);
        let now = rss_kib(s);
        assert!(
            now < self.rss + RSS_MARGIN_KIB,
            "server RSS grew from {} KiB to {now} KiB",
            self.rss
        );
    }
}

fn fresh_clients_are_served(s: &Server) {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK [CAPABILITY "));
    run_transcript(
        &mut c,
        "C: z1 LOGIN demo demo\nS: z1 OK [CAPABILITY {*}] Logged in\nC: z2 NOOP\nS: z2 OK NOOP completed.",
    );
    let mut p = s.pop3();
    assert!(p.line().starts_with("+OK"));
    run_transcript(
        &mut p,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, *",
    );
}

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    let r = c.cmd("L", "LOGIN demo demo");
    assert!(r.last().unwrap().starts_with("L OK"), "{r:?}");
    c
}

/// Ends a POP3 session and waits for the answer, so its maildrop lock is released.
fn pop3_quit(mut p: Client) {
    p.send("QUIT");
    let l = p.line();
    assert!(l.starts_with("+OK"), "{l}");
    assert!(p.closed());
}

fn pop3_login(s: &Server) -> Client {
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, *",
    );
    c
}

/// Puts a message into INBOX's new/ as an MTA would, without going through the server.
fn deliver(s: &Server, name: &str, msg: &[u8]) {
    let new = s.maildir("demo").join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(new.join(name), msg).unwrap();
}

/// Creates the user's Maildir by logging in once.
fn touch_maildir(s: &Server) {
    drop(login(s));
}

// ---------- framing: long lines, literals, control characters ----------

#[test]
fn ten_megabyte_command_line_is_refused_and_the_session_goes_on() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = s.imap();
    c.line();
    let mut big = b"a LOGIN demo ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    big.extend_from_slice(b"\r\nb NOOP\r\n");
    c.send_raw(&big);
    drop(big);
    assert_eq!(c.line(), "a BAD Command line too long");
    // The tail of the long line is discarded, not parsed: the next line is the next command.
    assert_eq!(c.line(), "b OK NOOP completed.");
    // Logged in state was never reached by the long LOGIN.
    assert_eq!(
        c.cmd("c", "SELECT INBOX"),
        vec!["c BAD Command not valid in this state: log in first."]
    );
    base.check(&s);
}

#[test]
fn literal_over_the_limit_is_refused_before_its_data_and_never_executed() {
    let s = Server::builder()
        .config("[limits]\nmax_message_size = 2048\n")
        .start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    // Synchronizing: refused before any "+", so the client sends no data.
    c.send("a APPEND INBOX {999999999999}");
    assert_eq!(c.line(), "a NO [TOOBIG] Literal too big");
    assert_eq!(c.cmd("b", "NOOP"), vec!["b OK NOOP completed."]);
    // Non-synchronizing: refused at once, then exactly its octets are discarded. The data is
    // made of commands; none of them may run.
    let mut data = Vec::new();
    while data.len() < 4000 {
        data.extend_from_slice(b"x DELETE INBOX\r\ny LOGOUT\r\n");
    }
    let mut cmd = format!("c APPEND INBOX {{{}+}}\r\n", data.len()).into_bytes();
    cmd.extend_from_slice(&data);
    cmd.extend_from_slice(b"\r\nd NOOP\r\n");
    c.send_raw(&cmd);
    assert_eq!(c.line(), "c BAD [TOOBIG] Literal too big");
    assert_eq!(c.line(), "d OK NOOP completed.");
    let st = c.cmd("e", "STATUS INBOX (MESSAGES)");
    assert_eq!(
        st,
        vec!["* STATUS INBOX (MESSAGES 0)", "e OK Status completed."]
    );
    // A literal header with a length past u64 is a framing error, not an overflow.
    c.send("f APPEND INBOX {99999999999999999999999}");
    let l = c.line();
    assert!(
        l.starts_with("f BAD") || l.starts_with("f NO [TOOBIG]"),
        "{l}"
    );
    assert_eq!(c.cmd("g", "NOOP"), vec!["g OK NOOP completed."]);
    base.check(&s);
}

/// A deflate bomb (issue 16, RFC 4978): a few hundred KiB of compressed input that inflates to
/// a 64 MiB command line and then to a 64 MiB literal over the message size limit. Input is
/// inflated in bounded pieces into the read buffer, so both meet the line and literal limits as
/// plain input would: the same answers, nothing executed, and memory stays within the margin
/// (buffering either would add 64 MiB).
#[test]
fn deflate_bomb_is_cut_off_by_the_line_and_literal_limits() {
    let s = Server::builder()
        .config("[limits]\nmax_message_size = 1048576\n")
        .start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    assert_eq!(c.cmd("z", "COMPRESS DEFLATE"), vec!["z OK DEFLATE active."]);
    c.compress();
    let mut bomb = b"a LOGIN demo ".to_vec();
    bomb.resize(64 << 20, b'x');
    bomb.extend_from_slice(b"\r\nb NOOP\r\n");
    let before = c.compressed_bytes_sent();
    c.send_raw(&bomb);
    assert!(c.compressed_bytes_sent() - before < 1 << 20);
    assert_eq!(c.line(), "a BAD Command line too long");
    assert_eq!(c.line(), "b OK NOOP completed.");
    // A non-synchronizing literal 64 times the limit, made of commands: refused at once, its
    // octets inflated and discarded, none run.
    let mut data = Vec::with_capacity(64 << 20);
    while data.len() < 64 << 20 {
        data.extend_from_slice(b"x DELETE INBOX\r\ny LOGOUT\r\n");
    }
    let mut cmd = format!("c APPEND INBOX {{{}+}}\r\n", data.len()).into_bytes();
    cmd.extend_from_slice(&data);
    cmd.extend_from_slice(b"\r\nd NOOP\r\n");
    drop(data);
    c.send_raw(&cmd);
    drop(cmd);
    assert_eq!(c.line(), "c BAD [TOOBIG] Literal too big");
    assert_eq!(c.line(), "d OK NOOP completed.");
    assert_eq!(
        c.cmd("e", "STATUS INBOX (MESSAGES)"),
        vec!["* STATUS INBOX (MESSAGES 0)", "e OK Status completed."]
    );
    drop(c);
    base.check(&s);
}

#[test]
fn literal_announced_and_never_sent_holds_nothing_and_times_out_before_login() {
    let s = Server::builder()
        .config("[timeouts]\npreauth_secs = 2\n")
        .start();
    let base = Baseline::take(&s);
    // After login: the APPEND waits for its data; others are served meanwhile.
    let mut c = login(&s);
    c.send("a APPEND INBOX {40000000}");
    assert_eq!(c.line(), "+ Ready for literal data");
    c.send_raw(&[b'x'; 1000]);
    fresh_clients_are_served(&s);
    // Leaving mid-literal stores nothing.
    drop(c);
    let mut c = login(&s);
    assert_eq!(
        c.cmd("b", "STATUS INBOX (MESSAGES)"),
        vec!["* STATUS INBOX (MESSAGES 0)", "b OK Status completed."]
    );
    // Before login, a stalled literal is cut off by the login timeout.
    let mut p = s.imap();
    p.line();
    p.send("a LOGIN {4}");
    assert_eq!(p.line(), "+ Ready for literal data");
    assert_eq!(p.line(), "* BYE Disconnected for inactivity.");
    assert!(p.closed());
    base.check(&s);
}

#[test]
fn nul_and_bare_cr_in_commands_are_rejected() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = s.imap();
    c.line();
    c.send_raw(b"a NO\0OP\r\n");
    assert_eq!(c.line(), "a BAD unknown command");
    c.send_raw(b"b NOOP\rc NOOP\r\n");
    assert_eq!(
        c.line(),
        "b BAD unexpected characters after the command's arguments"
    );
    c.send_raw(b"d LOGIN demo de\0mo\r\n");
    let l = c.line();
    assert!(l.starts_with("d BAD"), "{l}");
    c.send_raw(b"e LOGIN \"demo\0\" demo\r\n");
    let l = c.line();
    assert!(l.starts_with("e BAD"), "{l}");
    // None of that logged in.
    assert_eq!(
        c.cmd("f", "SELECT INBOX"),
        vec!["f BAD Command not valid in this state: log in first."]
    );
    let mut p = s.pop3();
    p.line();
    let refused = "-ERR Invalid arguments: control characters are not allowed.";
    p.send_raw(b"NO\0OP\r\n");
    assert_eq!(p.line(), refused);
    p.send_raw(b"USER de\0mo\r\n");
    assert_eq!(p.line(), refused);
    p.send_raw(b"USER demo\rPASS demo\r\n");
    assert_eq!(p.line(), refused);
    p.send("STAT");
    assert_eq!(
        p.line(),
        "-ERR Command not valid in this state: not logged in yet."
    );
    base.check(&s);
}

/// Sends `bytes` one at a time, `gap` apart, until the server closes; returns how many it took.
fn trickle(c: &mut std::net::TcpStream, bytes: &[u8], gap: Duration) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        if c.write_all(&[*b]).is_err() {
            return i;
        }
        std::thread::sleep(gap);
    }
    bytes.len()
}

#[test]
fn slow_loris_clients_are_cut_off_by_the_login_deadline_not_kept_by_each_byte() {
    let s = Server::builder()
        .config("[timeouts]\npreauth_secs = 2\n")
        .start();
    let base = Baseline::take(&s);
    // Each byte arrives well within the timeout, so only an absolute login deadline ends these.
    // 40 bytes at 250 ms is 10 s of trickling: five times the deadline.
    let script: Vec<u8> = b"a CAPABILITY\r\n"
        .iter()
        .copied()
        .cycle()
        .take(40)
        .collect();
    let mut imap = Client::connect_tcp(s.ports.imap);
    let mut pop = Client::connect_tcp(s.ports.pop3);
    let pop_script: Vec<u8> = b"CAPA\r\n".iter().copied().cycle().take(40).collect();
    let (sent_imap, sent_pop) = std::thread::scope(|t| {
        let a = t.spawn(|| trickle(&mut imap, &script, Duration::from_millis(250)));
        let b = t.spawn(|| trickle(&mut pop, &pop_script, Duration::from_millis(250)));
        (a.join().unwrap(), b.join().unwrap())
    });
    // The server hung up while the trickle was still going (later writes failed).
    assert!(
        sent_imap < script.len(),
        "IMAP slow loris was never cut off"
    );
    assert!(
        sent_pop < pop_script.len(),
        "POP3 slow loris was never cut off"
    );
    let mut got = String::new();
    imap.read_to_string(&mut got).unwrap();
    assert!(
        got.ends_with("* BYE Disconnected for inactivity.\r\n"),
        "IMAP slow loris after {sent_imap} bytes: {got:?}"
    );
    let mut got = String::new();
    pop.read_to_string(&mut got).unwrap();
    assert!(
        got.ends_with("-ERR Disconnected for inactivity.\r\n"),
        "POP3 slow loris after {sent_pop} bytes: {got:?}"
    );
    // A client that logs in is no longer under the login deadline.
    let mut c = login(&s);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(c.cmd("n", "NOOP"), vec!["n OK NOOP completed."]);
    // POP3 AUTH waiting for its SASL response is bounded by the same deadline.
    let mut p = s.pop3();
    p.line();
    p.send("AUTH PLAIN");
    assert_eq!(p.line(), "+ ");
    assert_eq!(p.line(), "-ERR Disconnected for inactivity.");
    assert!(p.closed());
    base.check(&s);
}

// ---------- parser inputs: names, nesting, sets, sections, states ----------

#[test]
fn invalid_modified_utf7_names_are_refused() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    let refused = "NO [CANNOT] Invalid mailbox name: not valid modified UTF-7.";
    // Unterminated shift, non-minimal encoding of ASCII, a lone UTF-16 high surrogate, "&-&",
    // an empty shift, and base64 with padding bits set.
    for (tag, name) in [
        ("a", "&Jjo"),
        ("b", "&AGEAYgBj-"),
        ("c", "&2D0-"),
        ("d", "&-&"),
        ("e", "x&-y&"),
        ("f", "&Jjp-"),
    ] {
        assert_eq!(
            c.cmd(tag, &format!("CREATE \"{name}\"")),
            vec![format!("{tag} {refused}")],
            "{name}"
        );
    }
    assert_eq!(c.cmd("g", "SELECT &ZeVnLIqe"), vec![format!("g {refused}")]);
    // A LIST pattern that is not modified UTF-7 is taken as sent, as Dovecot does: it
    // matches nothing here, and that is an OK.
    assert_eq!(c.cmd("h", "LIST \"\" &Jjo!"), vec!["h OK List completed."]);
    // Nothing was created.
    let list = c.cmd("i", "LIST \"\" *");
    assert_eq!(list.last().unwrap(), "i OK List completed.");
    assert!(list.iter().all(|l| !l.contains('&')), "{list:?}");
    base.check(&s);
}

#[test]
fn deeply_nested_search_is_refused_at_the_line_limit_and_at_the_depth_limit() {
    let s = Server::builder()
        .config("[limits]\nmax_command_line = 1048576\n")
        .start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    let deep = |n: usize| format!("SEARCH {}ALL{}", "(".repeat(n), ")".repeat(n));
    // 100,000 levels fit the raised line limit and reach the parser; recursion stops at the depth
    // limit instead of running off the stack.
    assert_eq!(
        c.cmd("a", &deep(100_000)),
        vec!["a BAD search keys are nested too deeply"]
    );
    assert_eq!(
        c.cmd("b", &format!("SEARCH {}ALL", "NOT ".repeat(100_000))),
        vec!["b BAD search keys are nested too deeply"]
    );
    assert_eq!(
        c.cmd("c", &format!("SEARCH {}ALL ALL", "OR ".repeat(100_000))),
        vec!["c BAD search keys are nested too deeply"]
    );
    // Unbalanced: all opening.
    let l = c.cmd("d", &format!("SEARCH {}", "(".repeat(100_000)));
    assert_eq!(l, vec!["d BAD search keys are nested too deeply"]);
    // The limit itself is generous for real clients: 60 levels work.
    assert_eq!(
        c.cmd("e", &deep(60)),
        vec!["* SEARCH", "e OK Search completed."]
    );
    base.check(&s);

    // With the default 64 KiB line, 100,000 levels never reach the parser.
    let s = Server::start();
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    assert_eq!(
        c.cmd("a", &deep(100_000)),
        vec!["a BAD Command line too long"]
    );
    fresh_clients_are_served(&s);
}

#[test]
fn huge_and_hostile_sequence_sets() {
    let s = Server::builder()
        .config("[limits]\nmax_command_line = 2097152\n")
        .start();
    let base = Baseline::take(&s);
    touch_maildir(&s);
    for i in 1..=3 {
        deliver(
            &s,
            &format!("17000000{i}.m{i}.host"),
            format!("Subject: {i}\n\nbody {i}\n").as_bytes(),
        );
    }
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    let out_of_range = "BAD Invalid messageset: message number out of range.";
    assert_eq!(
        c.cmd("a", "FETCH 1:4294967295 UID"),
        vec![format!("a {out_of_range}")]
    );
    assert_eq!(
        c.cmd("b", "STORE 4294967295 +FLAGS (\\Seen)"),
        vec![format!("b {out_of_range}")]
    );
    assert_eq!(
        c.cmd("c", "FETCH 1:4294967296 UID"),
        vec!["c BAD number does not fit in 32 bits"]
    );
    assert_eq!(
        c.cmd("d", "FETCH 0:1 UID"),
        vec!["d BAD number must not be zero"]
    );
    // UID ranges may name UIDs that do not exist; they select what does, in order, once each.
    let want = vec![
        "* 1 FETCH (UID 1)".to_string(),
        "* 2 FETCH (UID 2)".to_string(),
        "* 3 FETCH (UID 3)".to_string(),
    ];
    let mut r = c.cmd("e", "UID FETCH 4294967295:1 UID");
    assert_eq!(r.pop().unwrap(), "e OK Fetch completed.");
    assert_eq!(r, want);
    // 30,000 overlapping items in one line: each message answered once.
    let many = vec!["1:*"; 30_000].join(",");
    let mut r = c.cmd("f", &format!("FETCH {many} UID"));
    assert_eq!(r.pop().unwrap(), "f OK Fetch completed.");
    assert_eq!(r, want);
    let mut r = c.cmd(
        "g",
        &format!(
            "UID SEARCH UID {}",
            vec!["2,4294967295:3"; 20_000].join(",")
        ),
    );
    assert_eq!(r.pop().unwrap(), "g OK Search completed.");
    assert_eq!(r, vec!["* SEARCH 2 3"]);
    // Past the range limit the set is refused rather than built.
    assert_eq!(
        c.cmd(
            "h",
            &format!("UID FETCH {} UID", vec!["1"; 200_000].join(","))
        ),
        vec!["h BAD sequence set has too many ranges"]
    );
    base.check(&s);
}

const MULTIPART: &str = "From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\nContent-Type: text/plain\r\n\r\n\
one\r\n--b1\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--b1--\r\n";

#[test]
fn fetch_of_sections_that_do_not_exist_answers_empty() {
    let s = Server::start();
    let base = Baseline::take(&s);
    touch_maildir(&s);
    deliver(&s, "1700000001.mp.host", MULTIPART.as_bytes());
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    for (tag, section) in [
        ("a", "3"),
        ("b", "1.2"),
        (
            "c",
            "1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33.34.35.36.37.38.39.40.41.42.43.44.45.46.47.48.49.50.51.52.53.54.55.56.57.58.59.60.61.62.63.64.65.66.67.68.69.70.71.72.73.74.75.76.77.78.79.80.81.82.83.84.85.86.87.88.89.90.91.92.93.94.95.96.97.98.99.100.101",
        ),
        ("d", "99.MIME"),
        ("e", "2.1.TEXT"),
    ] {
        assert_eq!(
            c.cmd(tag, &format!("FETCH 1 BODY.PEEK[{section}]")),
            vec![
                format!("* 1 FETCH (BODY[{section}] \"\")"),
                format!("{tag} OK Fetch completed.")
            ]
        );
    }
    assert_eq!(
        c.cmd("f", "FETCH 1 BODY.PEEK[4294967296]"),
        vec!["f BAD number does not fit in 32 bits"]
    );
    let l = c.cmd("g", "FETCH 1 BODY.PEEK[0]");
    assert_eq!(l.len(), 1);
    assert!(l[0].starts_with("g BAD"), "{l:?}");
    // An existing part still answers, on the same connection.
    assert_eq!(
        c.cmd("h", "FETCH 1 BODY.PEEK[2]"),
        vec!["* 1 FETCH (BODY[2] {3}", "two)", "h OK Fetch completed."]
    );
    base.check(&s);
}

#[test]
fn commands_in_the_wrong_state() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = s.imap();
    c.line();
    let login_first = "BAD Command not valid in this state: log in first.";
    for (tag, cmd) in [
        ("a", "FETCH 1 FLAGS"),
        ("b", "IDLE"),
        ("c", "EXPUNGE"),
        ("d", "SELECT INBOX"),
        ("e", "APPEND INBOX {3+}\r\nabc"),
        ("f", "UID STORE 1 +FLAGS (\\Deleted)"),
    ] {
        assert_eq!(
            c.cmd(tag, cmd),
            vec![format!("{tag} {login_first}")],
            "{cmd}"
        );
    }
    let mut c = login(&s);
    let logged_in = "BAD Command not valid in this state: already logged in.";
    assert_eq!(
        c.cmd("g", "LOGIN demo demo"),
        vec![format!("g {logged_in}")]
    );
    assert_eq!(
        c.cmd("h", "AUTHENTICATE PLAIN"),
        vec![format!("h {logged_in}")]
    );
    let no_mailbox = "BAD Command not valid in this state: no mailbox is selected.";
    for (tag, cmd) in [
        ("i", "FETCH 1 FLAGS"),
        ("j", "CLOSE"),
        ("k", "UID EXPUNGE 1"),
        ("l", "MOVE 1 Trash"),
    ] {
        assert_eq!(
            c.cmd(tag, cmd),
            vec![format!("{tag} {no_mailbox}")],
            "{cmd}"
        );
    }
    let mut p = s.pop3();
    p.line();
    let not_yet = "-ERR Command not valid in this state: not logged in yet.";
    for cmd in [
        "RETR 1", "STAT", "LIST", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP",
    ] {
        p.send(cmd);
        assert_eq!(p.line(), not_yet, "{cmd}");
    }
    p.send("PASS x");
    assert_eq!(p.line(), "-ERR No user name given; send USER first.");
    let mut p = pop3_login(&s);
    for cmd in ["USER demo", "PASS demo", "AUTH PLAIN", "STLS"] {
        p.send(cmd);
        let l = p.line();
        assert!(l.starts_with("-ERR"), "{cmd}: {l}");
    }
    p.send("USER demo");
    assert_eq!(
        p.line(),
        "-ERR Command not valid in this state: already logged in."
    );
    for cmd in [
        "RETR 0",
        "RETR 99999999999999999999",
        "DELE -1",
        "LIST 4294967296",
    ] {
        p.send(cmd);
        assert_eq!(
            p.line(),
            "-ERR Invalid arguments: invalid message number.",
            "{cmd}"
        );
    }
    pop3_quit(p);
    base.check(&s);
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    let mut all = String::new();
    for i in 0..10_000 {
        match i % 4 {
            0 => all.push_str(&format!("n{i} NOOP\r\n")),
            1 => all.push_str(&format!("n{i} UID SEARCH ALL\r\n")),
            2 => all.push_str(&format!("n{i} CHECK\r\n")),
            _ => all.push_str(&format!("n{i} STATUS INBOX (MESSAGES)\r\n")),
        }
    }
    // The client writes everything before reading anything: the server must keep reading while
    // its answers queue up in the socket (or it would deadlock with a client like this).
    c.send_raw(all.as_bytes());
    for i in 0..10_000 {
        let tag = format!("n{i} ");
        let lines = c.until(&tag);
        let last = lines.last().unwrap();
        assert!(last.starts_with(&format!("n{i} OK")), "{last}");
        let want_untagged = match i % 4 {
            1 => vec!["* SEARCH"],
            3 => vec!["* STATUS INBOX (MESSAGES 0)"],
            _ => vec![],
        };
        assert_eq!(&lines[..lines.len() - 1], &want_untagged[..], "command {i}");
    }
    // POP3 PIPELINING (RFC 2449): 10,000 commands, answered in order.
    let mut p = pop3_login(&s);
    let mut all = String::new();
    for i in 0..10_000 {
        all.push_str(if i % 2 == 0 { "NOOP\r\n" } else { "STAT\r\n" });
    }
    p.send_raw(all.as_bytes());
    for i in 0..10_000 {
        let l = p.line();
        if i % 2 == 0 {
            assert_eq!(l, "+OK", "command {i}");
        } else {
            assert_eq!(l, "+OK 0 0", "command {i}");
        }
    }
    pop3_quit(p);
    base.check(&s);
}

#[test]
fn pipelined_bad_commands_end_the_session_after_the_limit() {
    let s = Server::start();
    let base = Baseline::take(&s);
    let mut c = s.imap();
    c.line();
    c.send_raw("x FROB\r\n".repeat(10_000).as_bytes());
    let mut lines = Vec::new();
    while let Some(l) = c.try_line() {
        lines.push(l);
    }
    assert_eq!(lines.len(), 21, "{lines:?}");
    assert!(
        lines[..20].iter().all(|l| l.starts_with("x BAD")),
        "{lines:?}"
    );
    assert_eq!(lines[20], "* BYE Too many invalid commands.");
    base.check(&s);
}

// ---------- big and deep messages ----------

/// A message of about `size` bytes with CRLF lines.
fn big_message(size: usize) -> Vec<u8> {
    let mut m = b"From: big@example.com\r\nSubject: big\r\n\r\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

#[test]
fn clients_reading_nothing_while_fetching_fifty_megabytes_do_not_grow_the_server() {
    let s = Server::builder().user("pop", "pop").start();
    touch_maildir(&s);
    let msg = big_message(50 * 1024 * 1024);
    let len = msg.len();
    deliver(&s, "1700000001.big.host", &msg);
    let mut p = s.imap();
    p.line();
    p.cmd("L", "LOGIN pop pop");
    drop(p);
    let pop_new = s.maildir("pop").join("new");
    std::fs::write(pop_new.join("1700000001.big.host"), &msg).unwrap();
    drop(msg);
    let base = Baseline::take(&s);
    // Two IMAP clients ask for the whole message and then read nothing at all.
    let mut stalled = Vec::new();
    for i in 0..2 {
        let mut c = login(&s);
        c.cmd("s", "SELECT INBOX");
        c.send(&format!("f{i} FETCH 1 BODY.PEEK[]"));
        stalled.push(c);
    }
    // A POP3 client does the same with RETR (another user: the maildrop lock is exclusive).
    let mut p = s.pop3();
    p.line();
    run_transcript(
        &mut p,
        "C: USER pop\nS: +OK\nC: PASS pop\nS: +OK Logged in, 1 messages.",
    );
    p.send("RETR 1\r\nRETR 1");
    stalled.push(p);
    // Give the server time to fill the socket buffers and block on the stalled writers.
    std::thread::sleep(Duration::from_secs(2));
    let during = rss_kib(&s);
    assert!(
        during < base.rss + RSS_MARGIN_KIB,
        "server RSS grew from {} KiB to {during} KiB with {} stalled readers of a {len}-byte message",
        base.rss,
        stalled.len()
    );
    // Others are served while the stalled clients sit there.
    fresh_clients_are_served(&s);
    // A stalled client that finally reads gets the whole message, byte-exact in length.
    let mut c = stalled.remove(0);
    assert_eq!(c.line(), format!("* 1 FETCH (BODY[] {{{len}}}"));
    let mut left = len;
    while left > 0 {
        let n = left.min(4 * 1024 * 1024);
        c.bytes(n);
        left -= n;
    }
    assert_eq!(c.line(), ")");
    assert_eq!(c.line(), "f0 OK Fetch completed.");
    drop(stalled);
    base.check(&s);
}

/// A message with `depth` multiparts nested inside each other.
fn nested_multipart(depth: usize) -> Vec<u8> {
    let mut m = b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n".to_vec();
    for i in 0..depth {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nleaf\r\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

/// A message with `depth` message/rfc822 parts nested inside each other.
fn nested_rfc822(depth: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for _ in 0..depth {
        m.extend_from_slice(
            b"Subject: wrap\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n",
        );
    }
    m.extend_from_slice(b"Subject: inner\r\nContent-Type: text/plain\r\n\r\nleaf\r\n");
    m
}

/// Deepest parenthesis nesting in a response.
fn paren_depth(s: &str) -> usize {
    let (mut d, mut max) = (0usize, 0usize);
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            '(' if !quoted => {
                d += 1;
                max = max.max(d);
            }
            ')' if !quoted => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[test]
fn ten_thousand_nested_multiparts_and_deep_rfc822_answer_within_the_depth_limit() {
    let s = Server::start();
    touch_maildir(&s);
    let deep_mp = nested_multipart(10_000);
    let deep_822 = nested_rfc822(10_000);
    deliver(&s, "1700000001.mp.host", &deep_mp);
    deliver(&s, "1700000002.rfc.host", &deep_822);
    // And the same within the depth limit.
    deliver(&s, "1700000003.mp.host", &nested_multipart(50));
    deliver(&s, "1700000004.rfc.host", &nested_rfc822(50));
    let base = Baseline::take(&s);
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    // Each level of BODYSTRUCTURE is one parenthesis (two for message/rfc822: body and
    // envelope); past MAX_MIME_DEPTH the container is an opaque leaf.
    let limit = mailcove::limits::MAX_MIME_DEPTH;
    for (seq, per_level) in [(1, 1), (2, 2)] {
        let r = c.cmd("b", &format!("FETCH {seq} BODYSTRUCTURE"));
        assert_eq!(
            r.len(),
            2,
            "{:?}",
            r.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert!(
            r[0].starts_with(&format!("* {seq} FETCH (BODYSTRUCTURE (")),
            "{}",
            &r[0][..200]
        );
        assert_eq!(r[1], "b OK Fetch completed.");
        let depth = paren_depth(&r[0]);
        assert!(depth > 10, "structure flattened to depth {depth}");
        assert!(
            depth <= (limit + 3) * per_level + 4,
            "depth {depth} passes the limit {limit}"
        );
        // BODY and a section deep inside answer too.
        let r = c.cmd(
            "c",
            &format!("FETCH {seq} (BODY BODY.PEEK[1.1.1.1.1.1.1.1.1.1.MIME])"),
        );
        assert_eq!(r.last().unwrap(), "c OK Fetch completed.", "{r:?}");
        // The raw message is intact.
        let want = if seq == 1 { &deep_mp } else { &deep_822 };
        let r = c.cmd("d", &format!("FETCH {seq} RFC822.SIZE"));
        assert_eq!(r[0], format!("* {seq} FETCH (RFC822.SIZE {})", want.len()));
    }
    // SEARCH walks the same tree: text within the depth limit is found; past it, the opaque
    // container is not decoded, so its text is not searched (as text past the search size limit).
    assert_eq!(
        c.cmd("e", "SEARCH BODY leaf"),
        vec!["* SEARCH 3 4", "e OK Search completed."]
    );
    // POP3 sends them as they are.
    let mut p = pop3_login(&s);
    p.send("RETR 1");
    assert_eq!(p.line(), format!("+OK {} octets", deep_mp.len()));
    let body = p.multiline();
    assert_eq!(body.len(), deep_mp.split(|&b| b == b'\n').count() - 1);
    p.send("TOP 2 0");
    assert_eq!(p.line(), "+OK");
    assert_eq!(
        p.multiline(),
        vec![
            "Subject: wrap",
            "MIME-Version: 1.0",
            "Content-Type: message/rfc822",
            ""
        ]
    );
    pop3_quit(p);
    base.check(&s);
}

#[test]
fn pop3_retr_of_a_message_expunged_by_imap_answers_err_and_goes_on() {
    let s = Server::start();
    touch_maildir(&s);
    deliver(&s, "1700000001.a.host", b"Subject: a\r\n\r\none\r\n");
    deliver(&s, "1700000002.b.host", b"Subject: b\r\n\r\ntwo\r\n");
    let mut p = pop3_login(&s);
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    assert_eq!(
        c.cmd("e", "EXPUNGE"),
        vec!["* 1 EXPUNGE", "e OK Expunge completed."]
    );
    for cmd in ["RETR 1", "TOP 1 0"] {
        p.send(cmd);
        assert_eq!(
            p.line(),
            "-ERR Message 1 was removed by another session.",
            "{cmd}"
        );
    }
    p.send("RETR 2");
    assert_eq!(p.line(), "+OK 19 octets");
    assert_eq!(p.multiline(), vec!["Subject: b", "", "two"]);
    pop3_quit(p);
}

/// RFC 3516 / issue 16: NUL travels only inside a literal8. A plain literal carrying NUL (a big
/// APPEND, a LOGIN argument) is refused with BAD, its octets never run as commands and nothing is
/// stored; the same data as `~{n+}` is stored. FETCH BINARY of a 30 MB base64 attachment streams
/// it without holding it.
#[test]
fn literal8_nuls_in_a_plain_literal_are_refused() {
    // Without the full-text index: indexing the 30 MB message leaves the server some 12 MiB more
    // anonymous memory afterwards (bounded: three more such messages add nothing), which put this
    // attack's RSS check over its margin in one loaded run of the suite. The check is about the
    // literal and BINARY paths not holding the message.
    let s = Server::builder().mail("fts = false").start();
    let base = Baseline::take(&s);
    let mut c = login(&s);
    // 8 MB of NUL-laden data in a plain non-synchronizing APPEND literal, with a line that would
    // be a command if the data were ever framed as lines.
    let mut msg = b"Subject: nul\r\n\r\n".to_vec();
    for _ in 0..(8 * 1024 * 1024 / 32) {
        msg.extend_from_slice(b"\0\0\0\r\nx DELETE INBOX\r\n\0\0\0\0\0\0\0\0\r\n");
    }
    c.send_raw(format!("a APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
    c.send_raw(&msg);
    c.send_raw(b"\r\n");
    let l = c.line();
    assert!(
        l.starts_with("a BAD NUL octets are allowed only in a literal8"),
        "{l}"
    );
    // A NUL in a literal argument of another command.
    c.send_raw(b"b SELECT {6+}\r\nIN\0BOX\r\n");
    let l = c.line();
    assert!(l.starts_with("b BAD"), "{l}");
    // literal8 where the grammar has none.
    c.send_raw(b"c SELECT ~{5+}\r\nINBOX\r\n");
    let l = c.line();
    assert!(l.starts_with("c BAD"), "{l}");
    let r = c.cmd("d", "STATUS INBOX (MESSAGES)");
    assert_eq!(r[0], "* STATUS INBOX (MESSAGES 0)", "{r:?}");
    // The same data as a literal8 is a message.
    c.send_raw(format!("e APPEND INBOX ~{{{}+}}\r\n", msg.len()).as_bytes());
    c.send_raw(&msg);
    c.send_raw(b"\r\n");
    let l = c.line();
    assert!(l.starts_with("e OK [APPENDUID "), "{l}");
    // A 30 MB base64 attachment: BINARY.SIZE and BINARY stream it in bounded chunks.
    let mut big = b"Subject: big\r\nMIME-Version: 1.0\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    // "AAEC" is 00 01 02: 19 quanta per 76-character line.
    let line = [&b"AAEC".repeat(19)[..], b"\r\n"].concat();
    let lines = 30 * 1024 * 1024 / line.len();
    for _ in 0..lines {
        big.extend_from_slice(&line);
    }
    c.send_raw(format!("f APPEND INBOX {{{}+}}\r\n", big.len()).as_bytes());
    c.send_raw(&big);
    c.send_raw(b"\r\n");
    let l = c.line();
    assert!(l.starts_with("f OK [APPENDUID "), "{l}");
    let decoded = (lines * 19 * 3) as u64;
    let r = c.cmd("g", "SELECT INBOX");
    assert!(r.iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = c.cmd("h", "FETCH 2 (BINARY.SIZE[1])");
    assert_eq!(
        r[0],
        format!("* 2 FETCH (BINARY.SIZE[1] {decoded})"),
        "{r:?}"
    );
    c.send("i FETCH 2 (BINARY.PEEK[1])");
    assert_eq!(c.line(), format!("* 2 FETCH (BINARY[1] ~{{{decoded}}}"));
    let mut left = decoded as usize;
    let mut at = 0usize;
    while left > 0 {
        let n = left.min(1 << 20);
        let got = c.bytes(n);
        for (k, b) in got.iter().enumerate() {
            assert_eq!(*b, ((at + k) % 3) as u8, "decoded octet {}", at + k);
        }
        at += n;
        left -= n;
    }
    assert_eq!(c.line(), ")");
    assert_eq!(c.line(), "i OK Fetch completed.");
    base.check(&s);
}

#[test]
fn catenate_urls_cannot_reach_another_users_mail() {
    let s = Server::builder().user("other", "otherpw").start();
    let secret: &[u8] = b"Subject: secret\r\n\r\nthe other user's mail\r\n";
    s.append_message("other", "otherpw", "INBOX", secret);
    let base = Baseline::take(&s);
    let mut c = login(&s);
    // RFC 4469 3: only relative URLs, resolved against the logged-in user's own mailboxes.
    for url in [
        "imap://other@127.0.0.1/INBOX/;UID=1",
        "imap://other;AUTH=*@127.0.0.1/INBOX/;UID=1",
        "//other@127.0.0.1/INBOX/;UID=1",
        "/../other/INBOX/;UID=1",
        "/%2E%2E/other/INBOX/;UID=1",
        "/%2E%2E%2Fother%2FINBOX/;UID=1",
        "/~other/INBOX/;UID=1",
        "/%2Fetc%2Fpasswd/;UID=1",
        "/INBOX/;UID=1/;URLAUTH=anonymous",
    ] {
        let r = c.cmd(
            "h",
            &format!("APPEND INBOX CATENATE (URL \"{url}\" TEXT {{2+}}\r\nab)"),
        );
        assert!(
            r.last().unwrap().starts_with("h NO [BADURL \""),
            "{url}: {r:?}"
        );
        assert_eq!(r.len(), 1, "{url}: {r:?}");
    }
    // Nothing was copied anywhere the attacker can read.
    let r = c.cmd("st", "STATUS INBOX (MESSAGES)");
    assert!(r[0].ends_with("(MESSAGES 0)"), "{r:?}");
    let mut o = s.imap();
    o.line();
    assert!(
        o.cmd("L", "LOGIN other otherpw")
            .last()
            .unwrap()
            .starts_with("L OK")
    );
    let r = o.cmd("st", "STATUS INBOX (MESSAGES)");
    assert!(r[0].ends_with("(MESSAGES 1)"), "{r:?}");
    base.check(&s);
}
