//! Concurrency stress with invariant checks, in the spirit of Dovecot's imaptest checking mode
//! (issue 7). Many IMAP and POP3 sessions of several users run random APPEND, FETCH, STORE, COPY,
//! MOVE, EXPUNGE, SEARCH, IDLE and NOOP (IMAP) and UIDL/RETR/TOP downloads (POP3) against the real
//! binary, checking after every response that:
//!
//! * a sequence number's UID never changes while selected; UIDs ascend with sequence numbers;
//! * `EXISTS` never shrinks without `EXPUNGE`; `EXPUNGE n` names an existing message;
//! * a UID, once given to a message in a mailbox, never names another one (no reuse), and a UID
//!   handed out by APPEND/COPY/MOVE is above every UID acknowledged in that mailbox before;
//! * every body read (IMAP or POP3) is exactly the message that was appended;
//!
//! and at the end that every session of a mailbox sees the same flags (they converge) and that
//! every acknowledged message is there and nothing else is (count and content hash).
//!
//! Short run in the default suite: `STRESS_SESSIONS` (50) sessions for `STRESS_SECS` (20) seconds.
//! Long run: `MAILCOVE_STRESS_SESSIONS=200 MAILCOVE_STRESS_SECS=600 cargo test --release --test
//! stress -- --nocapture` (docs/security.md).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const USERS: usize = 4;

/// What one session sees of its mailbox at the end: message count and flags per UID.
type SessionView = (u32, BTreeMap<u32, Vec<String>>);
const MAILBOXES: [&str; 2] = ["INBOX", "Box1"];
const FLAGS: [&str; 3] = ["\\Flagged", "\\Answered", "$Label1"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic PRNG (xorshift), seeded per session, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn body(token: &str) -> Vec<u8> {
    let n = token
        .bytes()
        .fold(5u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
    let mut m = format!("Message-ID: <{token}@stress>\r\nSubject: {token}\r\n\r\n").into_bytes();
    for i in 0..(3 + n % 60) {
        m.extend_from_slice(format!("{token} {i} stress body line\r\n").as_bytes());
    }
    m
}

fn token_of(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let t = text
        .strip_prefix("Message-ID: <")
        .and_then(|t| t.split('@').next())
        .unwrap_or_else(|| panic!("foreign message: {text:?}"))
        .to_string();
    assert_eq!(data, body(&t), "message {t} is not what was appended");
    t
}

/// What all sessions learned, shared.
#[derive(Default)]
struct Ledger {
    /// (user, mailbox, uid) -> token, for every message acknowledged or seen.
    uids: HashMap<(usize, String, u32), String>,
    /// (user, mailbox, uid) seen expunged by some session.
    removed: HashSet<(usize, String, u32)>,
    /// (user, mailbox) -> expunges of messages whose UID the session had not learned yet.
    blind_removals: HashMap<(usize, String), usize>,
    /// Highest UID acknowledged per (user, mailbox).
    max_uid: HashMap<(usize, String), u32>,
    ops: BTreeMap<&'static str, u64>,
}

impl Ledger {
    /// Records that `uid` in (user, mailbox) holds `token`; panics on UID reuse.
    fn bind(&mut self, user: usize, mailbox: &str, uid: u32, token: &str) {
        let key = (user, mailbox.to_string(), uid);
        if let Some(old) = self.uids.get(&key) {
            assert_eq!(old, token, "UID {uid} of u{user}/{mailbox} reused");
        } else {
            self.uids.insert(key, token.to_string());
        }
    }

    /// A UID just handed out must be above everything acknowledged there before the command.
    fn assigned(&mut self, user: usize, mailbox: &str, uid: u32, floor: u32) {
        assert!(
            uid > floor,
            "u{user}/{mailbox}: new UID {uid} not above {floor}"
        );
        let m = self.max_uid.entry((user, mailbox.to_string())).or_default();
        *m = (*m).max(uid);
    }

    fn floor(&self, user: usize, mailbox: &str) -> u32 {
        self.max_uid
            .get(&(user, mailbox.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

struct Imap {
    r: BufReader<TcpStream>,
    user: usize,
    mailbox: String,
    /// UID per sequence number (0: not learned yet).
    seq: Vec<u32>,
    /// UID -> flags as last reported.
    flags: HashMap<u32, Vec<String>>,
    ledger: Arc<Mutex<Ledger>>,
    tag: u64,
}

fn code_numbers(line: &str, code: &str) -> Option<Vec<u32>> {
    let start = line.find(&format!("[{code} "))? + code.len() + 2;
    let end = start + line[start..].find(']')?;
    Some(
        line[start..end]
            .split([' ', ',', ':'])
            .filter_map(|n| n.parse().ok())
            .collect(),
    )
}

/// Expands a UID set like `3:5,9` (as in COPYUID).
fn expand(set: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let num = |x: &str| {
                    x.parse::<u32>()
                        .unwrap_or_else(|_| panic!("bad UID set {set:?}"))
                };
                let (a, b) = (num(a), num(b));
                out.extend(a.min(b)..=a.max(b));
            }
            None => out.push(
                part.parse()
                    .unwrap_or_else(|_| panic!("bad UID set {set:?}")),
            ),
        }
    }
    out
}

impl Imap {
    fn connect(port: u16, user: usize, ledger: Arc<Mutex<Ledger>>) -> Imap {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut c = Imap {
            r: BufReader::new(s),
            user,
            mailbox: String::new(),
            seq: Vec::new(),
            flags: HashMap::new(),
            ledger,
            tag: 0,
        };
        c.read_line();
        let t = c.run(&format!("LOGIN u{user} pw"), None);
        assert!(t.contains(" OK "), "{t}");
        c
    }

    fn read_line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = self.r.read_until(b'\n', &mut buf).expect("read");
        assert!(n > 0, "server closed the connection");
        String::from_utf8_lossy(&buf).trim_end().to_string()
    }

    /// Sends a command (with an optional literal) and checks every response until the tagged
    /// one, which it returns. Untagged data is applied to the session's model.
    fn run(&mut self, cmd: &str, literal: Option<&[u8]>) -> String {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut out = format!("{tag} {cmd}").into_bytes();
        if let Some(l) = literal {
            out.extend_from_slice(format!(" {{{}+}}\r\n", l.len()).as_bytes());
            out.extend_from_slice(l);
        }
        out.extend_from_slice(b"\r\n");
        self.r.get_mut().write_all(&out).unwrap();
        self.collect(&tag)
    }

    fn collect(&mut self, tag: &str) -> String {
        loop {
            let l = self.read_line();
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                assert!(!rest.starts_with("BAD"), "{l}");
                return l;
            }
            self.untagged(&l);
        }
    }

    fn untagged(&mut self, l: &str) {
        let Some(rest) = l.strip_prefix("* ") else {
            assert!(l.starts_with('+'), "unexpected line {l}");
            return;
        };
        let mut words = rest.splitn(3, ' ');
        let (first, kind) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let Ok(n) = first.parse::<usize>() else {
            return;
        };
        match kind {
            "EXISTS" => {
                assert!(
                    n >= self.seq.len(),
                    "EXISTS {n} shrank from {} without EXPUNGE",
                    self.seq.len()
                );
                self.seq.resize(n, 0);
            }
            "RECENT" => {}
            "EXPUNGE" => {
                assert!(
                    n >= 1 && n <= self.seq.len(),
                    "EXPUNGE {n} of {}",
                    self.seq.len()
                );
                let uid = self.seq.remove(n - 1);
                let mut lg = self.ledger.lock().unwrap();
                if uid == 0 {
                    *lg.blind_removals
                        .entry((self.user, self.mailbox.clone()))
                        .or_default() += 1;
                } else {
                    lg.removed.insert((self.user, self.mailbox.clone(), uid));
                    self.flags.remove(&uid);
                }
            }
            "FETCH" => {
                assert!(
                    n >= 1 && n <= self.seq.len(),
                    "FETCH {n} of {}: {l}",
                    self.seq.len()
                );
                let uid = l
                    .split("UID ")
                    .nth(1)
                    .and_then(|r| r.split([' ', ')']).next())
                    .and_then(|u| u.parse::<u32>().ok());
                if let Some(uid) = uid {
                    let slot = self.seq[n - 1];
                    assert!(
                        slot == 0 || slot == uid,
                        "seq {n} was UID {slot}, now {uid}"
                    );
                    self.seq[n - 1] = uid;
                    let before = self.seq[..n - 1].iter().rev().find(|&&u| u != 0);
                    let after = self.seq[n..].iter().find(|&&u| u != 0);
                    assert!(
                        before.is_none_or(|&b| b < uid) && after.is_none_or(|&a| a > uid),
                        "UIDs out of order: {:?}",
                        self.seq
                    );
                }
                if let (Some(uid), Some(f)) = (
                    uid.or(Some(self.seq[n - 1])).filter(|&u| u != 0),
                    l.split("FLAGS (").nth(1),
                ) {
                    let mut flags: Vec<String> = f
                        .split(')')
                        .next()
                        .unwrap()
                        .split(' ')
                        .filter(|s| !s.is_empty() && *s != "\\Recent")
                        .map(str::to_string)
                        .collect();
                    flags.sort();
                    self.flags.insert(uid, flags);
                }
            }
            _ => {}
        }
    }

    /// Learns the UIDs of messages announced by EXISTS.
    fn learn(&mut self) {
        if let Some(first) = self.seq.iter().position(|&u| u == 0) {
            let t = self.run(&format!("FETCH {}:* (UID FLAGS)", first + 1), None);
            assert!(t.contains(" OK "), "{t}");
        }
    }

    fn select(&mut self, mailbox: &str) {
        self.seq.clear();
        self.flags.clear();
        self.mailbox = mailbox.to_string();
        let t = self.run(&format!("SELECT {mailbox}"), None);
        assert!(t.contains(" OK "), "{t}");
        self.learn();
    }

    fn random_uid(&self, rng: &mut Rng) -> Option<u32> {
        let known: Vec<u32> = self.seq.iter().copied().filter(|&u| u != 0).collect();
        (!known.is_empty()).then(|| known[rng.below(known.len())])
    }

    fn append(&mut self, mailbox: &str, token: &str) {
        let floor = self.ledger.lock().unwrap().floor(self.user, mailbox);
        let t = self.run(&format!("APPEND {mailbox}"), Some(&body(token)));
        let nums = code_numbers(&t, "APPENDUID").unwrap_or_else(|| panic!("{t}"));
        let mut lg = self.ledger.lock().unwrap();
        lg.bind(self.user, mailbox, nums[1], token);
        lg.assigned(self.user, mailbox, nums[1], floor);
    }

    /// COPY or MOVE of one UID; binds the new UIDs to the source's tokens.
    fn transfer(&mut self, verb: &str, uid: u32, to: &str) {
        let floor = self.ledger.lock().unwrap().floor(self.user, to);
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.r
            .get_mut()
            .write_all(format!("{tag} UID {verb} {uid} {to}\r\n").as_bytes())
            .unwrap();
        let mut copyuid = None;
        let t = loop {
            let l = self.read_line();
            if l.contains("[COPYUID ") {
                copyuid = Some(l.clone());
            }
            if l.starts_with(&format!("{tag} ")) {
                break l;
            }
            self.untagged(&l);
        };
        assert!(!t.contains(" BAD "), "{t}");
        let Some(line) = copyuid else { return };
        let start = line.find("[COPYUID ").unwrap() + 9;
        let parts: Vec<&str> = line[start..]
            .split(']')
            .next()
            .unwrap()
            .split(' ')
            .collect();
        assert!(
            parts.len() == 3 && !parts[1].is_empty() && !parts[2].is_empty(),
            "{line}"
        );
        let (src, dst) = (expand(parts[1]), expand(parts[2]));
        assert_eq!(src.len(), dst.len(), "{line}");
        let mut lg = self.ledger.lock().unwrap();
        for (s, d) in src.iter().zip(&dst) {
            let token = lg.uids.get(&(self.user, self.mailbox.clone(), *s)).cloned();
            let token = token.unwrap_or_else(|| panic!("{verb} of unknown UID {s}"));
            lg.bind(self.user, to, *d, &token);
            lg.assigned(self.user, to, *d, floor);
        }
    }
}

fn imap_session(port: u16, id: usize, deadline: Instant, ledger: Arc<Mutex<Ledger>>) -> Imap {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let user = id % USERS;
    let mut c = Imap::connect(port, user, Arc::clone(&ledger));
    c.select(MAILBOXES[id % 2]);
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let other = MAILBOXES
            .iter()
            .find(|&&m| m != c.mailbox)
            .unwrap()
            .to_string();
        let op = rng.below(100);
        let name = match op {
            0..=24 => {
                let mailbox = if rng.below(2) == 0 {
                    c.mailbox.clone()
                } else {
                    other.clone()
                };
                c.append(&mailbox, &format!("s{id}-{n}"));
                "APPEND"
            }
            25..=39 => {
                let t = c.run("FETCH 1:* (UID FLAGS)", None);
                assert!(t.contains(" OK ") || t.contains(" NO "), "{t}");
                "FETCH"
            }
            40..=44 => {
                if let Some(uid) = c.random_uid(&mut rng) {
                    // Read the body through the session and check it is the appended message.
                    c.tag += 1;
                    let tag = format!("t{}", c.tag);
                    c.r.get_mut()
                        .write_all(format!("{tag} UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes())
                        .unwrap();
                    loop {
                        let l = c.read_line();
                        if l.starts_with(&format!("{tag} ")) {
                            break;
                        }
                        if l.contains(" FETCH (") && l.ends_with('}') {
                            let len: usize = l
                                .rsplit('{')
                                .next()
                                .unwrap()
                                .trim_end_matches('}')
                                .parse()
                                .unwrap();
                            let mut data = vec![0; len];
                            c.r.read_exact(&mut data).unwrap();
                            let rest = c.read_line();
                            let token = token_of(&data);
                            let mut lg = c.ledger.lock().unwrap();
                            if l.contains(&format!("UID {uid}"))
                                || rest.contains(&format!("UID {uid}"))
                            {
                                lg.bind(user, &c.mailbox, uid, &token);
                            }
                            continue;
                        }
                        c.untagged(&l);
                    }
                }
                "FETCH BODY"
            }
            45..=59 => {
                if let Some(uid) = c.random_uid(&mut rng) {
                    let sign = if rng.below(2) == 0 { '+' } else { '-' };
                    let flag = FLAGS[rng.below(FLAGS.len())];
                    c.run(&format!("UID STORE {uid} {sign}FLAGS ({flag})"), None);
                }
                "STORE"
            }
            60..=67 => {
                if let Some(uid) = c.random_uid(&mut rng) {
                    c.transfer("COPY", uid, &other);
                }
                "COPY"
            }
            68..=74 => {
                if let Some(uid) = c.random_uid(&mut rng) {
                    c.transfer("MOVE", uid, &other);
                }
                "MOVE"
            }
            75..=81 => {
                if let Some(uid) = c.random_uid(&mut rng) {
                    c.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"), None);
                    c.run(&format!("UID EXPUNGE {uid}"), None);
                }
                "EXPUNGE"
            }
            82..=89 => {
                c.tag += 1;
                let tag = format!("t{}", c.tag);
                c.r.get_mut()
                    .write_all(format!("{tag} UID SEARCH ALL\r\n").as_bytes())
                    .unwrap();
                loop {
                    let l = c.read_line();
                    if l.starts_with(&format!("{tag} ")) {
                        break;
                    }
                    if let Some(list) = l.strip_prefix("* SEARCH") {
                        let uids: Vec<u32> = list
                            .split_whitespace()
                            .map(|u| u.parse().unwrap())
                            .collect();
                        assert!(uids.windows(2).all(|w| w[0] < w[1]), "{l}");
                        let known: HashSet<u32> = c.seq.iter().copied().collect();
                        for u in uids {
                            assert!(
                                known.contains(&u) || c.seq.contains(&0),
                                "SEARCH returned UID {u} not in the view {:?}",
                                c.seq
                            );
                        }
                        continue;
                    }
                    c.untagged(&l);
                }
                "SEARCH"
            }
            90..=93 => {
                c.tag += 1;
                let tag = format!("t{}", c.tag);
                c.r.get_mut()
                    .write_all(format!("{tag} IDLE\r\n").as_bytes())
                    .unwrap();
                // Changes may be reported before the continuation.
                loop {
                    let l = c.read_line();
                    if l.starts_with("+ ") {
                        break;
                    }
                    c.untagged(&l);
                }
                c.r.get_ref()
                    .set_read_timeout(Some(Duration::from_millis(150)))
                    .unwrap();
                let mut buf = Vec::new();
                while c.r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                    let l = String::from_utf8_lossy(&buf).trim_end().to_string();
                    c.untagged(&l);
                    buf.clear();
                }
                c.r.get_ref().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                c.r.get_mut().write_all(b"DONE\r\n").unwrap();
                // A line cut by the short timeout continues in what follows.
                let mut first = String::from_utf8_lossy(&buf).into_owned();
                first.push_str(&c.read_line());
                if !first.starts_with(&format!("{tag} ")) {
                    c.untagged(first.trim_end());
                    c.collect(&tag);
                }
                "IDLE"
            }
            _ => {
                c.run("NOOP", None);
                "NOOP"
            }
        };
        c.learn();
        *c.ledger.lock().unwrap().ops.entry(name).or_default() += 1;
    }
    c
}

fn pop3_session(port: u16, id: usize, deadline: Instant, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(0x1234_5678 ^ id as u64);
    while Instant::now() < deadline {
        let user = rng.below(USERS);
        let mut p = Client::plain(port);
        p.line();
        p.send(&format!("USER u{user}"));
        assert_eq!(p.line(), "+OK");
        p.send("PASS pw");
        let l = p
            .try_line()
            .unwrap_or_else(|| panic!("POP3 closed after PASS for u{user}"));
        if l.starts_with("-ERR [IN-USE]") {
            // Another POP3 session of this user holds the maildrop: the right answer.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert!(l.starts_with("+OK Logged in, "), "{l}");
        p.send("UIDL");
        assert!(p.line().starts_with("+OK"));
        let list = p.multiline();
        for _ in 0..3.min(list.len()) {
            let n = 1 + rng.below(list.len());
            p.send(&format!("RETR {n}"));
            let head = p.line();
            if head == format!("-ERR Message {n} was removed by another session.") {
                // An IMAP session expunged it after this session's snapshot: the answer comes
                // before any data and the session goes on.
                *ledger
                    .lock()
                    .unwrap()
                    .ops
                    .entry("POP3 RETR of a vanished message")
                    .or_default() += 1;
                continue;
            }
            assert!(head.starts_with("+OK"), "{head}");
            let lines = p.multiline();
            let mut data = Vec::new();
            for l in lines {
                data.extend_from_slice(l.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            token_of(&data);
        }
        p.send("QUIT");
        assert!(p.line().starts_with("+OK"));
        *ledger
            .lock()
            .unwrap()
            .ops
            .entry("POP3 download")
            .or_default() += 1;
    }
}

#[test]
fn stress_with_invariant_checks() {
    let sessions = env_or("MAILCOVE_STRESS_SESSIONS", 50) as usize;
    let secs = env_or("MAILCOVE_STRESS_SECS", 20);
    let mut b = Server::builder()
        .users(&[])
        .config("[limits]\nmax_userip_connections = 1000\n");
    for u in 0..USERS {
        b = b.user(&format!("u{u}"), "pw");
    }
    let s = b.start();
    // Box1 exists for everyone.
    for u in 0..USERS {
        let mut c = s.imap();
        c.line();
        c.cmd("l", &format!("LOGIN u{u} pw"));
        assert_eq!(c.cmd("c", "CREATE Box1"), vec!["c OK Create completed."]);
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let pop3_sessions = (sessions / 10).max(1);
    let imap: Vec<_> = (0..sessions - pop3_sessions)
        .map(|id| {
            let (port, lg) = (s.ports.imap, Arc::clone(&ledger));
            std::thread::spawn(move || imap_session(port, id, deadline, lg))
        })
        .collect();
    let pop: Vec<_> = (0..pop3_sessions)
        .map(|id| {
            let (port, lg) = (s.ports.pop3, Arc::clone(&ledger));
            std::thread::spawn(move || pop3_session(port, id, deadline, lg))
        })
        .collect();
    let mut finished: Vec<Imap> = imap.into_iter().map(|t| t.join().unwrap()).collect();
    for t in pop {
        t.join().unwrap();
    }
    // Quiet now: every session catches up, and all sessions of a mailbox agree on its flags.
    let mut views: HashMap<(usize, String), Vec<SessionView>> = HashMap::new();
    for c in &mut finished {
        c.run("NOOP", None);
        c.learn();
        let t = c.run("FETCH 1:* (UID FLAGS)", None);
        assert!(t.contains(" OK ") || c.seq.is_empty(), "{t}");
        let flags: BTreeMap<u32, Vec<String>> = c
            .seq
            .iter()
            .map(|u| (*u, c.flags.get(u).cloned().unwrap_or_default()))
            .collect();
        views
            .entry((c.user, c.mailbox.clone()))
            .or_default()
            .push((c.seq.len() as u32, flags));
    }
    for ((user, mailbox), vs) in &views {
        for v in vs {
            assert_eq!(
                v, &vs[0],
                "sessions of u{user}/{mailbox} disagree after quiescing"
            );
        }
    }
    drop(finished);
    // Nothing acknowledged is missing, nothing else is there, every body is whole.
    let lg = ledger.lock().unwrap();
    let mut total = 0;
    for user in 0..USERS {
        let mut c = s.imap();
        c.line();
        c.cmd("l", &format!("LOGIN u{user} pw"));
        for mailbox in MAILBOXES {
            c.cmd("s", &format!("SELECT {mailbox}"));
            let present: HashMap<u32, String> = c
                .fetch_all_bodies("f")
                .into_iter()
                .map(|(uid, data)| (uid, token_of(&data)))
                .collect();
            for (uid, token) in &present {
                let key = (user, mailbox.to_string(), *uid);
                assert_eq!(
                    lg.uids.get(&key),
                    Some(token),
                    "u{user}/{mailbox} UID {uid} ({token}) was never acknowledged"
                );
                assert!(
                    !lg.removed.contains(&key),
                    "u{user}/{mailbox} UID {uid} expunged but still there"
                );
            }
            let missing: Vec<_> = lg
                .uids
                .iter()
                .filter(|((u, m, uid), _)| {
                    *u == user
                        && m == mailbox
                        && !lg.removed.contains(&(*u, m.clone(), *uid))
                        && !present.contains_key(uid)
                })
                .collect();
            let blind = lg
                .blind_removals
                .get(&(user, mailbox.to_string()))
                .copied()
                .unwrap_or(0);
            assert!(
                missing.len() <= blind,
                "u{user}/{mailbox}: acknowledged messages missing: {missing:?}"
            );
            total += present.len();
        }
    }
    eprintln!(
        "stress: {sessions} sessions for {secs} s; operations {:?}; {total} messages at the end, {} UIDs bound",
        lg.ops,
        lg.uids.len()
    );
    assert!(
        lg.ops.get("APPEND").copied().unwrap_or(0) > 50,
        "too little work: {:?}",
        lg.ops
    );
    assert!(
        lg.ops.get("POP3 download").copied().unwrap_or(0) > 0,
        "no POP3 download: {:?}",
        lg.ops
    );
}
