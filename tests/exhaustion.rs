//! Resource exhaustion (issue 7): connection limits, thousands of idle connections, a full disk
//! and over-quota, each asserting the exact answer, that existing sessions keep working and that
//! nothing on disk is corrupted.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    let r = c.cmd("L", "LOGIN demo demo");
    assert!(r.last().unwrap().starts_with("L OK"), "{r:?}");
    c
}

/// Raises this process's open-file limit (the server inherits it) to `n`, or as far as allowed.
fn raise_nofile(n: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    lim.rlim_cur
}

#[test]
fn global_connection_limit_refuses_cleanly_and_admitted_sessions_keep_working() {
    let s = Server::builder()
        .config("[limits]\nmax_connections = 3\n")
        .start();
    let mut a = login(&s);
    let mut b = s.pop3();
    assert!(b.line().starts_with("+OK"));
    let mut c = s.imaps();
    assert!(c.line().starts_with("* OK"));
    // Every listener refuses the fourth, with its protocol's answer, and closes.
    let mut d = s.imap();
    let l = d.line();
    assert!(l.starts_with("* BYE [UNAVAILABLE] "), "{l}");
    assert!(d.closed());
    let mut e = s.pop3();
    let l = e.line();
    assert!(l.starts_with("-ERR [SYS/TEMP] "), "{l}");
    assert!(e.closed());
    // The admitted ones are unaffected.
    assert_eq!(a.cmd("n", "NOOP"), vec!["n OK NOOP completed."]);
    run_transcript(
        &mut b,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, *",
    );
    run_transcript(&mut c, "C: x LOGIN demo demo\nS: x OK *");
    drop(a);
    // A freed slot is given back.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let mut f = s.imap();
        if f.line().starts_with("* OK") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Idle connections held in the default suite; `MAILCOVE_IDLE_CONNECTIONS=10000` is the long run
/// (docs/security.md).
fn idle_connections() -> usize {
    std::env::var("MAILCOVE_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

#[test]
fn thousands_of_idle_connections_are_held_without_hurting_others() {
    let n = idle_connections();
    // The test and the server are separate processes: each needs n descriptors and some slack.
    let limit = raise_nofile(n as u64 + 1000);
    assert!(
        limit >= n as u64 + 200,
        "open-file limit {limit} too low for {n} connections"
    );
    let s = Server::builder()
        .config(&format!(
            "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\n",
            n + 10,
            n + 10
        ))
        .start();
    let mut busy = login(&s);
    busy.cmd("s", "SELECT INBOX");
    let before = rss_kib(s.pid());
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        let port = if i % 2 == 0 {
            s.ports.imap
        } else {
            s.ports.pop3
        };
        let mut c = Client::connect_tcp(port);
        idle.push({
            let mut first = [0u8; 1];
            // Each one was really admitted: its greeting starts like a greeting, not a refusal.
            c.read_exact(&mut first).unwrap();
            assert!(first[0] == b'*' || first[0] == b'+', "connection {i}");
            c
        });
    }
    // All n are still open: a fresh connection is served, and a working session goes on.
    assert_eq!(busy.cmd("n", "NOOP"), vec!["n OK NOOP completed."]);
    let r = busy.cmd(
        "a",
        "APPEND INBOX {30+}\r\nSubject: while idle\r\n\r\nhello\r\n\r\n",
    );
    assert!(r.last().unwrap().starts_with("a OK [APPENDUID"), "{r:?}");
    let mut fresh = login(&s);
    assert_eq!(
        fresh.cmd("t", "STATUS INBOX (MESSAGES)"),
        vec!["* STATUS INBOX (MESSAGES 1)", "t OK Status completed."]
    );
    let after = rss_kib(s.pid());
    let per_conn = after.saturating_sub(before) * 1024 / n as u64;
    eprintln!("{n} idle connections: RSS {before} KiB -> {after} KiB, {per_conn} bytes each");
    // Greeting sent, buffers empty: an idle connection must not hold a read buffer's worth of
    // memory, let alone a command line's.
    assert!(per_conn < 64 * 1024, "{per_conn} bytes per idle connection");
    // Every idle one is still open (none was dropped to make room).
    let mut probe = [0u8; 256];
    for c in idle.iter_mut().step_by(97) {
        c.set_nonblocking(true).unwrap();
        match c.read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(n) if n > 0 => {}
            other => panic!("idle connection closed: {other:?}"),
        }
    }
}

/// A small tmpfs mounted over the test server's mail directory; unmounted on drop.
struct SmallFs {
    at: PathBuf,
}

impl SmallFs {
    fn mount(at: &Path, size: &str) -> Option<SmallFs> {
        if !is_root() {
            return None;
        }
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=1777"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallFs {
            at: at.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn append(c: &mut Client, tag: &str, mailbox: &str, msg: &[u8]) -> String {
    let mut cmd = format!("{tag} APPEND {mailbox} {{{}+}}\r\n", msg.len()).into_bytes();
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    c.until(&format!("{tag} ")).pop().unwrap()
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: m{i}\r\nMessage-ID: <{i}@full>\r\n\r\n").into_bytes();
    while m.len() < size {
        m.extend_from_slice(format!("message {i} filler line\r\n").as_bytes());
    }
    m
}

/// Every message of the selected mailbox, whole.
fn fetch_all(c: &mut Client) -> Vec<Vec<u8>> {
    c.send("f FETCH 1:* BODY.PEEK[]");
    let mut out = Vec::new();
    loop {
        let l = c.line();
        if l.starts_with("f ") {
            assert_eq!(l, "f OK Fetch completed.");
            return out;
        }
        let len: usize = l
            .rsplit('{')
            .next()
            .unwrap()
            .trim_end_matches('}')
            .parse()
            .unwrap();
        out.push(c.bytes(len));
        assert_eq!(c.line(), ")");
    }
}

#[test]
fn full_disk_fails_append_cleanly_and_corrupts_nothing() {
    let s = Server::start();
    let Some(_fs) = SmallFs::mount(&s.path().join("mail"), "2m") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root; the full-disk case did not run");
        return;
    };
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    let mut stored = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let msg = message(i, 60 * 1024);
        let t = append(&mut c, "a", "INBOX", &msg);
        if t.starts_with("a OK") {
            stored.push(msg);
        } else {
            refused = Some(t);
            break;
        }
    }
    let refused = refused.expect("a 2 MiB file system never filled up");
    assert!(stored.len() >= 5, "only {} messages fit", stored.len());
    eprintln!("disk full after {} messages: {refused}", stored.len());
    assert_eq!(refused, "a NO [OVERQUOTA] Not enough disk space.");
    // Flag changes on a full disk fail or succeed, but never damage the mailbox.
    let r = c.cmd("st", "STORE 1:* +FLAGS (\\Flagged)");
    eprintln!("STORE on a full disk: {:?}", r.last());
    assert!(r.last().unwrap().starts_with("st OK") || r.last().unwrap().starts_with("st NO"));
    // COPY hard-links in Maildir, so it may still succeed on a full disk; either way the result
    // is whole.
    let r = c.cmd("cp", "COPY 1:* INBOX");
    let copied = r.last().unwrap().starts_with("cp OK");
    assert!(
        copied || r.last().unwrap().starts_with("cp NO [OVERQUOTA]"),
        "{r:?}"
    );
    let n = stored.len();
    let mut want = stored.clone();
    if copied {
        want.extend(stored.iter().cloned());
    }
    // What was acknowledged is there and whole, in this session and a new one.
    c.cmd("n", "NOOP");
    assert_eq!(fetch_all(&mut c), want);
    let mut d = login(&s);
    d.cmd("s", "SELECT INBOX");
    assert_eq!(fetch_all(&mut d), want);
    // No half-written file is visible in new/ or cur/ (tmp/ leftovers are fine: never listed).
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(s.maildir("demo").join(sub))
            .unwrap()
            .flatten()
        {
            let body = std::fs::read(e.path()).unwrap();
            assert!(stored.contains(&body), "stray file {}", e.path().display());
        }
    }
    // Freeing space (the first three messages and their copies) makes APPEND work again.
    let set = if copied {
        format!("1:3,{}:{}", n + 1, n + 3)
    } else {
        "1:3".to_string()
    };
    c.cmd("d", &format!("STORE {set} +FLAGS.SILENT (\\Deleted)"));
    assert_eq!(
        c.cmd("e", "EXPUNGE").last().unwrap(),
        "e OK Expunge completed."
    );
    let t = append(&mut c, "b", "INBOX", &message(999, 1000));
    assert!(t.starts_with("b OK [APPENDUID"), "{t}");
    drop(c);
    drop(d);
    let mut want: Vec<Vec<u8>> = stored[3..].to_vec();
    if copied {
        want.extend(stored[3..].iter().cloned());
    }
    want.push(message(999, 1000));
    // And a restart finds a consistent mailbox.
    let mut s = s;
    s.restart();
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    assert_eq!(fetch_all(&mut c), want);
}

#[test]
fn over_quota_append_and_copy_fail_with_overquota_and_leave_the_mailbox_intact() {
    let s = Server::builder()
        .users(&[format!(
            "demo:{}::::::userdb_quota_rule=*:storage=20K",
            cheap_argon2("demo")
        )])
        .start();
    let mut c = login(&s);
    c.cmd("s", "SELECT INBOX");
    let mut stored = Vec::new();
    let mut refused = None;
    for i in 0..100 {
        let msg = message(i, 3000);
        let t = append(&mut c, "a", "INBOX", &msg);
        if t.starts_with("a OK") {
            stored.push(msg);
        } else {
            refused = Some(t);
            break;
        }
    }
    let refused = refused.expect("quota never reached");
    assert!(
        (5..=7).contains(&stored.len()),
        "{} messages of 3000 bytes fit in 20K",
        stored.len()
    );
    assert_eq!(
        refused,
        "a NO [OVERQUOTA] Quota exceeded (mailbox for user is full)."
    );
    let r = c.cmd("cp", "COPY 1:* INBOX");
    assert_eq!(
        r.last().unwrap(),
        "cp NO [OVERQUOTA] Quota exceeded (mailbox for user is full)."
    );
    c.cmd("n", "NOOP");
    assert_eq!(fetch_all(&mut c), stored);
    // Expunging brings the user under quota again.
    c.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    c.cmd("e", "EXPUNGE");
    let t = append(&mut c, "b", "INBOX", &message(999, 1000));
    assert!(t.starts_with("b OK [APPENDUID"), "{t}");
}
