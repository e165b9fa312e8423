//! Concurrency stress with invariant checks, in the spirit of Dovecot's imaptest checking mode
//! (issue 7). Many IMAP, POP3 and LMTP sessions of several users run random APPEND, FETCH, STORE,
//! COPY, MOVE, EXPUNGE, SEARCH, IDLE and NOOP (IMAP), UIDL/RETR downloads that sometimes DELE and
//! QUIT or DELE and drop the connection (POP3), and single- and multi-recipient deliveries
//! (LMTP) against the real binary, checking after every response that:
//!
//! * a sequence number's UID never changes while selected; UIDs ascend with sequence numbers;
//! * `EXISTS` never shrinks without `EXPUNGE`; `EXPUNGE n` names an existing message;
//! * a UID, once given to a message in a mailbox, never names another one (no reuse), and a UID
//!   handed out by APPEND/COPY/MOVE is above every UID seen in that mailbox before the command;
//! * an `EXPUNGE` of a known message was asked for before (UID EXPUNGE, MOVE, or a POP3 QUIT
//!   after DELE): a POP3 DELE is not applied before QUIT, nor ever when the session is dropped;
//! * every body read (IMAP or POP3) is exactly the message that was appended or delivered;
//!
//! and at the end that every session of a mailbox sees the same flags (they converge), and that
//! every acknowledged APPEND/COPY/MOVE/LMTP message not removed by an acknowledged command is
//! there, exactly once, byte for byte, and nothing else is (count and content).
//!
//! `stress_across_a_postgresql_restart` runs the same sessions on the PostgreSQL backend and
//! restarts PostgreSQL in the middle, the database gone for longer than a session waits for it
//! (issue 18). A session that is answered `NO [UNAVAILABLE]`, `-ERR [SYS/TEMP]` or 451, or whose
//! connection drops, takes it as not acknowledged (an IMAP session starts over with a new
//! connection, an LMTP session delivers the same message again later, as an MTA does), and the
//! checks at the end are the same: every acknowledged message there exactly once, nothing that
//! was not at least attempted, and no delivery stored twice.
//!
//! Short run in the default suite: `MAILCOVE_STRESS_SESSIONS` (50) sessions for
//! `MAILCOVE_STRESS_SECS` (60) seconds. Long run: `MAILCOVE_STRESS_SESSIONS=200
//! MAILCOVE_STRESS_SECS=600 cargo test --release --test stress -- --nocapture` (docs/testing.md).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres::PgServer;
use common::*;

const USERS: usize = 4;
/// Sequence ranges one learning FETCH names (keeps the command line short).
const LEARN_RANGES: usize = 100;

/// Above this many messages, IMAP sessions expunge where they would append.
const MAILBOX_SOFT_LIMIT: usize = 2000;

/// What one session sees of its mailbox at the end: message count and flags per UID.
type SessionView = (u32, BTreeMap<u32, Vec<String>>);

/// The count and the entries of `a` that `b` does not have, for failure messages.
fn view_diff(a: &SessionView, b: &SessionView) -> String {
    let only: Vec<_> = a.1.iter().filter(|(u, f)| b.1.get(u) != Some(f)).collect();
    format!("{} messages, differing {only:?}", a.0)
}
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

thread_local! {
    /// Set in the session threads of a run whose database goes away: answers saying so are
    /// not failures but "not acknowledged".
    static OUTAGE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn outage() -> bool {
    OUTAGE.with(std::cell::Cell::get)
}

/// The payload of the panic that ends an IMAP session whose server could not answer because
/// the database was down ([`imap_session`] starts it over); raised only when [`outage`].
struct Unavailable;

/// Ends the session on `what` (a read or write failure, a `NO [UNAVAILABLE]`): start over when
/// the database may be down, else the test fails.
fn cut(what: &str) -> ! {
    if outage() {
        std::panic::panic_any(Unavailable);
    }
    panic!("{what}")
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

/// The LMTP envelope sender of every delivery.
const SENDER: &str = "stress@test";

/// What a delivery of `token` to user `user` must look like in storage: the server prepends
/// `Return-Path:` and `Delivered-To:` (the recipient as given in RCPT TO).
fn delivered_body(user: usize, token: &str) -> Vec<u8> {
    let mut m = format!("Return-Path: <{SENDER}>\r\nDelivered-To: u{user}\r\n").into_bytes();
    m.extend_from_slice(&body(token));
    m
}

/// The token of a stored message and, for an LMTP delivery, its recipient; panics unless the
/// bytes are exactly what was appended or delivered.
fn token_of(data: &[u8]) -> (String, Option<usize>) {
    let text = String::from_utf8_lossy(data);
    let stamp = format!("Return-Path: <{SENDER}>\r\nDelivered-To: u");
    let (rcpt, rest) = match text.strip_prefix(&stamp) {
        Some(r) => {
            let (user, rest) = r
                .split_once("\r\n")
                .unwrap_or_else(|| panic!("bad stamp: {text:?}"));
            let user: usize = user
                .parse()
                .unwrap_or_else(|_| panic!("bad Delivered-To: {text:?}"));
            (Some(user), rest)
        }
        None => (None, &text[..]),
    };
    let t = rest
        .strip_prefix("Message-ID: <")
        .and_then(|t| t.split('@').next())
        .unwrap_or_else(|| panic!("foreign message: {text:?}"))
        .to_string();
    match rcpt {
        Some(u) => assert_eq!(
            data,
            delivered_body(u, &t),
            "delivery {t} is not what was sent"
        ),
        None => assert_eq!(data, body(&t), "message {t} is not what was appended"),
    }
    (t, rcpt)
}

/// The token in a FETCH ENVELOPE (its message-id field).
fn envelope_token(l: &str) -> Option<&str> {
    let env = &l[l.find("ENVELOPE (")?..];
    let end = env.find("@stress>\"")?;
    let start = env[..end].rfind("\"<")? + 2;
    Some(&env[start..end])
}

/// (user, mailbox, UID).
type Key = (usize, String, u32);

/// What all sessions learned, shared.
#[derive(Default)]
struct Ledger {
    /// (user, mailbox, uid) -> token, for every message acknowledged or seen.
    uids: HashMap<Key, String>,
    /// Messages made by COPY or MOVE (as opposed to the original APPEND or delivery).
    copies: HashSet<Key>,
    /// Removal asked for (UID EXPUNGE, MOVE, or POP3 QUIT after DELE), before the command was
    /// sent: only these may be expunged; those not in `removed` may or may not be gone.
    intents: HashSet<Key>,
    /// Seen expunged by some session, or deleted by a POP3 QUIT answered `+OK`: must be gone.
    removed: HashSet<Key>,
    /// LMTP deliveries (user, token) whose DATA was sent for an accepted recipient.
    attempted: HashSet<(usize, String)>,
    /// LMTP deliveries (user, token) answered 250: must be there unless removed.
    delivered: HashSet<(usize, String)>,
    /// APPENDs (user, mailbox, token) sent: one answered `NO [UNAVAILABLE]` may have been
    /// stored all the same (the database went away after its COMMIT).
    appends_sent: HashSet<(usize, String, String)>,
    /// COPY and MOVE (user, target mailbox, token) sent while the database may go away.
    copies_sent: HashSet<(usize, String, String)>,
    /// Messages per (user, mailbox) as the last IMAP session there to finish a command saw it.
    sizes: HashMap<(usize, String), usize>,
    /// Highest UID seen or acknowledged per (user, mailbox).
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
        let m = self.max_uid.entry((user, mailbox.to_string())).or_default();
        *m = (*m).max(uid);
    }

    /// A UID just handed out must be above everything seen there before the command was sent.
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

    fn count(&mut self, op: &'static str, n: u64) {
        *self.ops.entry(op).or_default() += n;
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
        let n = self
            .r
            .read_until(b'\n', &mut buf)
            .unwrap_or_else(|e| cut(&format!("read: {e}")));
        if n == 0 {
            cut("server closed the connection");
        }
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
        self.write(&out);
        self.collect(&tag)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.r
            .get_mut()
            .write_all(bytes)
            .unwrap_or_else(|e| cut(&format!("write: {e}")));
    }

    fn collect(&mut self, tag: &str) -> String {
        loop {
            let l = self.read_line();
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                assert!(!rest.starts_with("BAD"), "{l}");
                if rest.starts_with("NO [UNAVAILABLE]") {
                    cut(&l);
                }
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
                    // Not learned yet: whoever asked for the removal knew the UID and checks it.
                    lg.count("EXPUNGE of a message not learned yet", 1);
                } else {
                    let key = (self.user, self.mailbox.clone(), uid);
                    assert!(
                        lg.intents.contains(&key),
                        "u{}/{}: UID {uid} expunged but nobody asked for it",
                        self.user,
                        self.mailbox
                    );
                    lg.removed.insert(key);
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
                if let (Some(uid), Some(token)) = (uid, envelope_token(l)) {
                    self.ledger
                        .lock()
                        .unwrap()
                        .bind(self.user, &self.mailbox, uid, token);
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

    /// Learns the UIDs (and tokens) of the messages not learned yet: those announced by EXISTS,
    /// and any whose FETCH failed because another session had just expunged it.
    /// Learns the UIDs of every sequence number this session does not know yet, at most
    /// [`LEARN_RANGES`] ranges per FETCH.
    fn learn(&mut self) {
        // Each pass learns its ranges (or sees them expunged), so the passes needed are known
        // up front; the bound only keeps a server that answers nothing from looping forever.
        let unknown = self.seq.iter().filter(|u| **u == 0).count();
        for _ in 0..unknown.div_ceil(LEARN_RANGES).max(1) {
            if !self.learn_some() {
                return;
            }
        }
    }

    /// One FETCH for up to [`LEARN_RANGES`] ranges of unknown sequence numbers; false when
    /// nothing was unknown.
    fn learn_some(&mut self) -> bool {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (i, _) in self.seq.iter().enumerate().filter(|(_, u)| **u == 0) {
            match ranges.last_mut() {
                Some((_, end)) if *end == i => *end = i + 1,
                _ => ranges.push((i + 1, i + 1)),
            }
        }
        if ranges.is_empty() {
            return false;
        }
        let set: Vec<String> = ranges
            .iter()
            .take(LEARN_RANGES)
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}:{b}")
                }
            })
            .collect();
        // ENVELOPE reads the message, so one another session just expunged gets
        // `NO [EXPUNGEISSUED]` (RFC 2180 4.1.3); the others are still reported.
        let t = self.run(
            &format!("FETCH {} (UID FLAGS ENVELOPE)", set.join(",")),
            None,
        );
        assert!(
            t.contains(" OK ") || t.contains(" NO [EXPUNGEISSUED]"),
            "{t}"
        );
        true
    }

    fn select(&mut self, mailbox: &str) {
        self.seq.clear();
        self.flags.clear();
        self.mailbox = mailbox.to_string();
        let t = self.run(&format!("SELECT {mailbox}"), None);
        assert!(t.contains(" OK "), "{t}");
        self.learn();
    }

    /// Message count and flags per UID, as this session knows them.
    fn view(&self) -> SessionView {
        let flags = self
            .seq
            .iter()
            .map(|u| (*u, self.flags.get(u).cloned().unwrap_or_default()))
            .collect();
        (self.seq.len() as u32, flags)
    }

    /// A UID of the view whose message is known to the ledger.
    fn random_uid(&self, rng: &mut Rng) -> Option<u32> {
        let lg = self.ledger.lock().unwrap();
        let known: Vec<u32> = self
            .seq
            .iter()
            .copied()
            .filter(|&u| u != 0 && lg.uids.contains_key(&(self.user, self.mailbox.clone(), u)))
            .collect();
        (!known.is_empty()).then(|| known[rng.below(known.len())])
    }

    fn append(&mut self, mailbox: &str, token: &str) {
        let floor = {
            let mut lg = self.ledger.lock().unwrap();
            let sent = (self.user, mailbox.to_string(), token.to_string());
            lg.appends_sent.insert(sent);
            lg.floor(self.user, mailbox)
        };
        let t = self.run(&format!("APPEND {mailbox}"), Some(&body(token)));
        let nums = code_numbers(&t, "APPENDUID").unwrap_or_else(|| panic!("{t}"));
        let mut lg = self.ledger.lock().unwrap();
        lg.bind(self.user, mailbox, nums[1], token);
        lg.assigned(self.user, mailbox, nums[1], floor);
    }

    /// COPY or MOVE of one UID; binds the new UIDs to the source's tokens.
    fn transfer(&mut self, verb: &str, uid: u32, to: &str) {
        let floor = {
            let mut lg = self.ledger.lock().unwrap();
            if verb == "MOVE" {
                lg.intents.insert((self.user, self.mailbox.clone(), uid));
            }
            if let Some(token) = lg
                .uids
                .get(&(self.user, self.mailbox.clone(), uid))
                .cloned()
            {
                lg.copies_sent.insert((self.user, to.to_string(), token));
            }
            lg.floor(self.user, to)
        };
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.write(format!("{tag} UID {verb} {uid} {to}\r\n").as_bytes());
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
        if t.contains(" NO [UNAVAILABLE]") {
            cut(&t);
        }
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
            lg.copies.insert((self.user, to.to_string(), *d));
        }
    }
}

/// One IMAP session until `deadline`; when the database goes away ([`Unavailable`]), a new
/// one, with a new connection, that goes on with the same random sequence and tokens.
fn imap_session(port: u16, id: usize, deadline: Instant, ledger: Arc<Mutex<Ledger>>) -> Imap {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut n = 0;
    loop {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            imap_session_run(port, id, deadline, Arc::clone(&ledger), &mut rng, &mut n)
        }));
        match run {
            Ok(c) => return c,
            Err(p) if p.is::<Unavailable>() => {
                ledger
                    .lock()
                    .unwrap()
                    .count("IMAP session started over (database away)", 1);
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

fn imap_session_run(
    port: u16,
    id: usize,
    deadline: Instant,
    ledger: Arc<Mutex<Ledger>>,
    rng: &mut Rng,
    n: &mut usize,
) -> Imap {
    let user = id % USERS;
    let mut c = Imap::connect(port, user, Arc::clone(&ledger));
    // Every user has sessions in both mailboxes.
    c.select(MAILBOXES[(id / USERS) % 2]);
    while Instant::now() < deadline {
        *n += 1;
        let n = *n;
        let other = MAILBOXES
            .iter()
            .find(|&&m| m != c.mailbox)
            .unwrap()
            .to_string();
        let mut op = rng.below(100);
        let target = if rng.below(2) == 0 {
            c.mailbox.clone()
        } else {
            other.clone()
        };
        let full = |m: &str| {
            let lg = c.ledger.lock().unwrap();
            lg.sizes.get(&(user, m.to_string())).copied().unwrap_or(0) >= MAILBOX_SOFT_LIMIT
        };
        if (op < 25 && full(&target)) || ((60..=67).contains(&op) && full(&other)) {
            // Full enough: expunge instead of adding, so long runs reach a steady state rather
            // than measuring ever larger mailboxes.
            op = 75;
        }
        let name = match op {
            0..=24 => {
                c.append(&target, &format!("s{id}-{n}"));
                "APPEND"
            }
            25..=39 => {
                let t = c.run("FETCH 1:* (UID FLAGS)", None);
                assert!(t.contains(" OK ") || t.contains(" NO "), "{t}");
                "FETCH"
            }
            40..=44 => {
                if let Some(uid) = c.random_uid(rng) {
                    // Read the body through the session and check it is the appended message.
                    c.tag += 1;
                    let tag = format!("t{}", c.tag);
                    c.write(format!("{tag} UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes());
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
                            c.r.read_exact(&mut data)
                                .unwrap_or_else(|e| cut(&format!("read: {e}")));
                            let rest = c.read_line();
                            let (token, rcpt) = token_of(&data);
                            assert!(
                                rcpt.is_none_or(|r| r == user),
                                "u{user} got u{rcpt:?}'s mail"
                            );
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
                if let Some(uid) = c.random_uid(rng) {
                    let sign = if rng.below(2) == 0 { '+' } else { '-' };
                    let flag = FLAGS[rng.below(FLAGS.len())];
                    c.run(&format!("UID STORE {uid} {sign}FLAGS ({flag})"), None);
                }
                "STORE"
            }
            60..=67 => {
                if let Some(uid) = c.random_uid(rng) {
                    c.transfer("COPY", uid, &other);
                }
                "COPY"
            }
            68..=74 => {
                if let Some(uid) = c.random_uid(rng) {
                    c.transfer("MOVE", uid, &other);
                }
                "MOVE"
            }
            75..=81 => {
                if let Some(uid) = c.random_uid(rng) {
                    let key = (user, c.mailbox.clone(), uid);
                    c.ledger.lock().unwrap().intents.insert(key);
                    c.run(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"), None);
                    c.run(&format!("UID EXPUNGE {uid}"), None);
                }
                "EXPUNGE"
            }
            82..=89 => {
                c.tag += 1;
                let tag = format!("t{}", c.tag);
                c.write(format!("{tag} UID SEARCH ALL\r\n").as_bytes());
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
                c.write(format!("{tag} IDLE\r\n").as_bytes());
                // Changes may be reported before the continuation.
                loop {
                    let l = c.read_line();
                    if l.starts_with("+ ") {
                        break;
                    }
                    if l.starts_with(&format!("{tag} NO [UNAVAILABLE]")) {
                        // IDLE refused before it began (its first look at the mailbox failed).
                        cut(&l);
                    }
                    c.untagged(&l);
                }
                c.r.get_ref()
                    .set_read_timeout(Some(Duration::from_millis(150)))
                    .unwrap();
                let mut buf = Vec::new();
                while c.r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                    let l = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if l.starts_with(&format!("{tag} ")) {
                        // IDLE ended by the server before DONE: only when the database is away.
                        cut(&l);
                    }
                    c.untagged(&l);
                    buf.clear();
                }
                c.r.get_ref().set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                c.write(b"DONE\r\n");
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
        let mut lg = c.ledger.lock().unwrap();
        lg.count(name, 1);
        lg.sizes.insert((user, c.mailbox.clone()), c.seq.len());
    }
    c
}

/// What a POP3 session does after downloading.
#[derive(Clone, Copy, PartialEq)]
enum Pop3End {
    /// QUIT without deleting.
    Keep,
    /// DELE what it retrieved, then QUIT: gone once QUIT is answered `+OK`.
    Delete,
    /// DELE what it retrieved, then drop the connection: nothing may be deleted.
    DeleteAndDrop,
}

fn pop3_session(port: u16, id: usize, deadline: Instant, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(0x1234_5678 ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    while Instant::now() < deadline {
        let user = rng.below(USERS);
        let end = match rng.below(10) {
            0..=3 => Pop3End::Delete,
            4..=5 => Pop3End::DeleteAndDrop,
            _ => Pop3End::Keep,
        };
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
        if outage() && l.starts_with("-ERR [SYS/TEMP]") {
            ledger
                .lock()
                .unwrap()
                .count("POP3 login refused (database away)", 1);
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert!(l.starts_with("+OK Logged in, "), "{l}");
        p.send("UIDL");
        let l = p.line();
        if outage() && l.starts_with("-ERR [SYS/TEMP]") {
            continue;
        }
        assert!(l.starts_with("+OK"), "{l}");
        // Message number -> UID (the UIDL is %08X of UID and UIDVALIDITY).
        let list: Vec<(usize, u32)> = p
            .multiline()
            .iter()
            .map(|l| {
                let (n, uidl) = l.split_once(' ').unwrap_or_else(|| panic!("UIDL {l:?}"));
                let uid = uidl
                    .get(..8)
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| panic!("UIDL {l:?}"));
                (n.parse().unwrap(), uid)
            })
            .collect();
        let mut retrieved = Vec::new();
        for _ in 0..3.min(list.len()) {
            let (n, uid) = list[rng.below(list.len())];
            p.send(&format!("RETR {n}"));
            let head = p.line();
            if head == format!("-ERR Message {n} was removed by another session.") {
                // An IMAP session expunged it after this session's snapshot: the answer comes
                // before any data and the session goes on.
                ledger
                    .lock()
                    .unwrap()
                    .count("POP3 RETR of a vanished message", 1);
                continue;
            }
            if outage() && head.starts_with("-ERR [SYS/TEMP]") {
                ledger
                    .lock()
                    .unwrap()
                    .count("POP3 RETR refused (database away)", 1);
                continue;
            }
            assert!(head.starts_with("+OK"), "{head}");
            let lines = p.multiline();
            let mut data = Vec::new();
            for l in lines {
                data.extend_from_slice(l.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            let (token, rcpt) = token_of(&data);
            assert!(
                rcpt.is_none_or(|r| r == user),
                "u{user} got u{rcpt:?}'s mail"
            );
            ledger.lock().unwrap().bind(user, "INBOX", uid, &token);
            if !retrieved.contains(&(n, uid)) {
                retrieved.push((n, uid));
            }
        }
        if end == Pop3End::Keep || retrieved.is_empty() {
            p.send("QUIT");
            // Nothing to delete, but the session's end is written too (downloads for
            // `pop3_expire`), which fails while the database is away.
            let l = p.line();
            assert!(
                l.starts_with("+OK") || (outage() && l.starts_with("-ERR [SYS/TEMP]")),
                "QUIT: {l}"
            );
            ledger.lock().unwrap().count("POP3 download", 1);
            continue;
        }
        for (n, _) in &retrieved {
            p.send(&format!("DELE {n}"));
            let l = p.line();
            assert!(l.starts_with("+OK"), "DELE {n}: {l}");
        }
        let keys: Vec<Key> = retrieved
            .iter()
            .map(|&(_, uid)| (user, "INBOX".to_string(), uid))
            .collect();
        if end == Pop3End::DeleteAndDrop {
            // No QUIT, no UPDATE state: every message stays (and no EXPUNGE may be seen).
            drop(p);
            ledger
                .lock()
                .unwrap()
                .count("POP3 DELE then connection dropped", 1);
            continue;
        }
        ledger.lock().unwrap().intents.extend(keys.iter().cloned());
        p.send("QUIT");
        let l = p.try_line();
        let mut lg = ledger.lock().unwrap();
        if l.as_deref().is_some_and(|l| l.starts_with("+OK")) {
            lg.removed.extend(keys);
            lg.count("POP3 DELE+QUIT", 1);
            lg.count("POP3 messages deleted", retrieved.len() as u64);
        } else {
            // The deletions may or may not have happened; the messages are in `intents`.
            lg.count("POP3 QUIT not +OK", 1);
        }
    }
}

/// True when `token` was sent before (a delivery sent again); counts it.
fn lg_retry(ledger: &Mutex<Ledger>, token: &str) -> bool {
    let mut lg = ledger.lock().unwrap();
    let again = lg.attempted.iter().any(|(_, t)| t == token);
    if again {
        lg.count("LMTP delivery sent again after 4xx", 1);
    }
    again
}

/// Delivers messages over LMTP, each with a unique token, to one to three users (sometimes with
/// an unknown recipient among them), several transactions per connection.
fn lmtp_session(port: u16, id: usize, deadline: Instant, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(0xdead_beef ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut n = 0;
    // Deliveries answered 4xx, sent again later with the same bytes, as an MTA does.
    let mut deferred: Vec<(usize, String)> = Vec::new();
    while Instant::now() < deadline {
        let mut l = Client::plain(port);
        assert!(l.line().starts_with("220 "));
        l.send("LHLO stress");
        l.until("250 ");
        for _ in 0..10 {
            // Deliver about as much as IMAP sessions append, whatever the machine's speed.
            while Instant::now() < deadline && {
                let lg = ledger.lock().unwrap();
                let get = |op| lg.ops.get(op).copied().unwrap_or(0);
                get("LMTP transaction") > get("APPEND") / 2 + 20
            } {
                std::thread::sleep(Duration::from_millis(10));
            }
            if Instant::now() >= deadline {
                break;
            }
            let (token, users) = match deferred.pop() {
                Some((u, token)) => (token, vec![u]),
                None => {
                    n += 1;
                    let mut users = vec![rng.below(USERS)];
                    for _ in 0..rng.below(3) {
                        let u = rng.below(USERS);
                        if !users.contains(&u) {
                            users.push(u);
                        }
                    }
                    (format!("l{id}-{n}"), users)
                }
            };
            let retry = lg_retry(&ledger, &token);
            l.send(&format!("MAIL FROM:<{SENDER}>"));
            let r = l.line();
            assert!(r.starts_with("250 "), "MAIL: {r}");
            let unknown = !retry && rng.below(8) == 0;
            let mut accepted = Vec::new();
            for (i, u) in users.iter().enumerate() {
                if unknown && i == users.len() / 2 {
                    l.send(&format!("RCPT TO:<nobody{id}>"));
                    let r = l.line();
                    assert!(r.starts_with("550 "), "RCPT of an unknown user: {r}");
                }
                l.send(&format!("RCPT TO:<u{u}>"));
                let r = l.line();
                if r.starts_with("250 ") {
                    accepted.push(*u);
                } else {
                    assert!(r.starts_with('4'), "RCPT TO:<u{u}>: {r}");
                    ledger.lock().unwrap().count("LMTP RCPT 4xx", 1);
                    if outage() {
                        deferred.push((*u, token.clone()));
                    }
                }
            }
            if accepted.is_empty() {
                l.send("RSET");
                assert!(l.line().starts_with("250 "));
                continue;
            }
            l.send("DATA");
            let r = l.line();
            assert!(r.starts_with("354 "), "DATA: {r}");
            {
                let mut lg = ledger.lock().unwrap();
                for u in &accepted {
                    lg.attempted.insert((*u, token.clone()));
                }
            }
            let mut data = body(&token);
            data.extend_from_slice(b".\r\n");
            l.send_raw(&data);
            for u in &accepted {
                let r = l.line();
                let mut lg = ledger.lock().unwrap();
                if r.starts_with("250 ") {
                    assert_eq!(r, format!("250 2.0.0 <u{u}> Saved"), "replies out of order");
                    lg.delivered.insert((*u, token.clone()));
                    lg.count("LMTP recipient delivered", 1);
                } else {
                    // Not acknowledged: the message may or may not be there.
                    assert!(r.starts_with('4'), "delivery to u{u}: {r}");
                    lg.count("LMTP recipient 4xx", 1);
                    if outage() {
                        deferred.push((*u, token.clone()));
                    }
                }
            }
            let mut lg = ledger.lock().unwrap();
            lg.count("LMTP transaction", 1);
            if accepted.len() > 1 {
                lg.count("LMTP multi-recipient transaction", 1);
            }
            if unknown {
                lg.count("LMTP unknown recipient refused", 1);
            }
        }
        l.send("QUIT");
        assert!(l.line().starts_with("221 "));
    }
}

#[test]
fn stress_with_invariant_checks() {
    let sessions = env_or("MAILCOVE_STRESS_SESSIONS", 50).max(3) as usize;
    let secs = env_or("MAILCOVE_STRESS_SECS", 60);
    stress(sessions, secs, None);
}

/// The stress run on the PostgreSQL backend, PostgreSQL stopped a quarter into the run for
/// longer than a session waits for a connection, then started again (issue 18).
#[test]
fn stress_across_a_postgresql_restart() {
    let sessions = env_or("MAILCOVE_STRESS_SESSIONS", 20).max(3) as usize;
    let secs = env_or("MAILCOVE_STRESS_SECS", 45).max(30);
    // The sessions that start over print nothing: only real failures do.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.payload().is::<Unavailable>() {
            default_hook(info);
        }
    }));
    let pg = PgServer::new();
    pg.create_database("mail");
    stress(sessions, secs, Some(pg));
}

/// `sessions` sessions for `secs` seconds, then the checks; on PostgreSQL server `pg` (restarted
/// in the middle) when given, else on the backend the test servers use.
fn stress(sessions: usize, secs: u64, pg: Option<PgServer>) {
    let outage = pg.is_some();
    let lmtp_port = free_port();
    // All sessions come from 127.0.0.1; a dropped POP3 session may still hold its slot while
    // the next one connects.
    let per_ip = (2 * sessions + 20).max(1000);
    let mut b = Server::builder().users(&[]).config(&format!(
        "[limits]\nmax_userip_connections = {per_ip}\nmax_connections_per_ip = {per_ip}\n\n\
         [[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lmtp_port}\"\n"
    ));
    for u in 0..USERS {
        b = b.user(&format!("u{u}"), "pw");
    }
    if let Some(pg) = &pg {
        b = b.mail_location(&pg.url("mail"));
    }
    let s = b.start();
    // Box1 exists for everyone.
    for u in 0..USERS {
        let mut c = s.imap();
        c.line();
        c.cmd("l", &format!("LOGIN u{u} pw"));
        let r = c.cmd("c", "CREATE Box1");
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with("c OK [MAILBOXID (") && r[0].ends_with(")] Create completed."),
            "{r:?}"
        );
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let pop3_sessions = (sessions / 10).max(1);
    // One LMTP session delivers faster than ten IMAP sessions append: fewer keep mailboxes (and
    // so the cost of every FETCH 1:*) growing at a similar pace.
    let lmtp_sessions = (sessions / 25).max(1);
    let set_outage = move || OUTAGE.with(|o| o.set(outage));
    let imap: Vec<_> = (0..sessions - pop3_sessions - lmtp_sessions)
        .map(|id| {
            let (port, lg) = (s.ports.imap, Arc::clone(&ledger));
            std::thread::spawn(move || {
                set_outage();
                imap_session(port, id, deadline, lg)
            })
        })
        .collect();
    let others: Vec<_> = (0..pop3_sessions)
        .map(|id| {
            let (port, lg) = (s.ports.pop3, Arc::clone(&ledger));
            std::thread::spawn(move || {
                set_outage();
                pop3_session(port, id, deadline, lg)
            })
        })
        .chain((0..lmtp_sessions).map(|id| {
            let lg = Arc::clone(&ledger);
            std::thread::spawn(move || {
                set_outage();
                lmtp_session(lmtp_port, id, deadline, lg)
            })
        }))
        .collect();
    // Down for longer than an operation waits for a connection, so sessions are answered
    // `[UNAVAILABLE]` / 451, not only slowed down.
    let restarter = pg.map(|mut pg| {
        let at = start + Duration::from_secs(secs / 4);
        std::thread::spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            pg.stop();
            std::thread::sleep(Duration::from_secs(
                mailcove::limits::PG_ACQUIRE_TIMEOUT_SECS + 3,
            ));
            pg.start();
            pg
        })
    });
    let mut finished: Vec<Imap> = imap.into_iter().map(|t| t.join().unwrap()).collect();
    for t in others {
        t.join().unwrap();
    }
    let _pg = restarter.map(|t| t.join().unwrap());
    let ran = start.elapsed().as_secs();
    // Quiet now: every session catches up with NOOP. What each session was told (EXISTS,
    // EXPUNGE, FETCH FLAGS updates) must be what a full FETCH shows, and all sessions of a
    // mailbox must agree on its flags.
    let mut views: HashMap<(usize, String), Vec<SessionView>> = HashMap::new();
    for c in &mut finished {
        c.run("NOOP", None);
        c.learn();
        let told = c.view();
        let t = c.run("FETCH 1:* (UID FLAGS)", None);
        assert!(t.contains(" OK ") || c.seq.is_empty(), "{t}");
        let truth = c.view();
        assert!(
            told == truth,
            "a session of u{}/{} was not told of every change: told {}, full FETCH {}",
            c.user,
            c.mailbox,
            view_diff(&told, &truth),
            view_diff(&truth, &told),
        );
        views
            .entry((c.user, c.mailbox.clone()))
            .or_default()
            .push(truth);
    }
    for ((user, mailbox), vs) in &views {
        for v in vs {
            assert!(
                v == &vs[0],
                "sessions of u{user}/{mailbox} disagree after quiescing: {} / {}",
                view_diff(v, &vs[0]),
                view_diff(&vs[0], v)
            );
        }
    }
    drop(finished);
    // Nothing acknowledged is missing, nothing else is there, every body is whole.
    let lg = ledger.lock().unwrap();
    let (mut total, mut unlearned) = (0, 0);
    for user in 0..USERS {
        let mut c = s.imap();
        c.line();
        c.cmd("l", &format!("LOGIN u{user} pw"));
        for mailbox in MAILBOXES {
            c.cmd("s", &format!("SELECT {mailbox}"));
            let present: HashMap<u32, String> = c
                .fetch_all_bodies("f")
                .into_iter()
                .map(|(uid, data)| {
                    let (token, rcpt) = token_of(&data);
                    assert!(
                        rcpt.is_none_or(|r| r == user),
                        "u{user}/{mailbox} holds u{rcpt:?}'s mail"
                    );
                    (uid, token)
                })
                .collect();
            // Per token, the messages that are not copies: at most one (no duplicate delivery).
            let mut originals: HashMap<&str, Vec<u32>> = HashMap::new();
            for (uid, token) in &present {
                let key = (user, mailbox.to_string(), *uid);
                assert!(
                    !lg.removed.contains(&key),
                    "u{user}/{mailbox} UID {uid} ({token}) removed but still there"
                );
                match lg.uids.get(&key) {
                    Some(t) => assert_eq!(t, token, "u{user}/{mailbox} UID {uid} changed"),
                    None => {
                        // No session ever saw it: only an LMTP delivery can be like that, or,
                        // when the database went away, an APPEND/COPY/MOVE answered
                        // `NO [UNAVAILABLE]` after its commit.
                        let sent = (user, mailbox.to_string(), token.clone());
                        assert!(
                            (mailbox == "INBOX" && lg.attempted.contains(&(user, token.clone())))
                                || (outage
                                    && (lg.appends_sent.contains(&sent)
                                        || lg.copies_sent.contains(&sent))),
                            "u{user}/{mailbox} UID {uid} ({token}) was never acknowledged"
                        );
                        unlearned += 1;
                    }
                }
                let maybe_copy = outage
                    && lg
                        .copies_sent
                        .contains(&(user, mailbox.to_string(), token.clone()));
                if !lg.copies.contains(&key) && !maybe_copy {
                    originals.entry(token).or_default().push(*uid);
                }
            }
            for (token, uids) in &originals {
                assert!(
                    uids.len() == 1,
                    "u{user}/{mailbox}: {token} stored more than once: UIDs {uids:?}"
                );
            }
            // Every message known to have been there is still there unless a removal was
            // asked for.
            let missing: Vec<_> = lg
                .uids
                .iter()
                .filter(|((u, m, uid), _)| {
                    *u == user
                        && m == mailbox
                        && !present.contains_key(uid)
                        && !lg.intents.contains(&(*u, m.clone(), *uid))
                })
                .collect();
            assert!(
                missing.is_empty(),
                "u{user}/{mailbox}: messages lost without any removal: {missing:?}"
            );
            if mailbox == "INBOX" {
                // Every acknowledged delivery arrived: some session saw it, or it is here.
                let seen: HashSet<&String> = lg
                    .uids
                    .iter()
                    .filter(|((u, m, _), _)| *u == user && m == "INBOX")
                    .map(|(_, t)| t)
                    .collect();
                let here: HashSet<&String> = present.values().collect();
                let lost: Vec<_> = lg
                    .delivered
                    .iter()
                    .filter(|(u, t)| *u == user && !seen.contains(t) && !here.contains(t))
                    .collect();
                assert!(
                    lost.is_empty(),
                    "u{user}: LMTP deliveries answered 250 but never stored: {lost:?}"
                );
            }
            total += present.len();
        }
    }
    eprintln!(
        "stress: {sessions} sessions ({} IMAP, {pop3_sessions} POP3, {lmtp_sessions} LMTP) for \
         {secs} s (all done after {ran} s, checked after {} s); operations {:?}; {total} messages \
         at the end ({unlearned} deliveries no session had seen), {} UIDs bound, {} removed, {} \
         deliveries acknowledged",
        sessions - pop3_sessions - lmtp_sessions,
        start.elapsed().as_secs(),
        lg.ops,
        lg.uids.len(),
        lg.removed.len(),
        lg.delivered.len(),
    );
    for (op, least) in [
        ("APPEND", 50),
        ("COPY", 1),
        ("MOVE", 1),
        ("EXPUNGE", 1),
        ("POP3 download", 1),
        ("POP3 DELE+QUIT", 1),
        ("POP3 DELE then connection dropped", 1),
        ("LMTP recipient delivered", 1),
        ("LMTP multi-recipient transaction", 1),
    ] {
        assert!(
            lg.ops.get(op).copied().unwrap_or(0) >= least,
            "too little {op}: {:?}",
            lg.ops
        );
    }
    if outage {
        let op = "IMAP session started over (database away)";
        assert!(
            lg.ops.get(op).copied().unwrap_or(0) >= 1,
            "the restart went unnoticed: {:?}",
            lg.ops
        );
    }
}
