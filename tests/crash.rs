//! Crash safety (issue 7): the server is killed with SIGKILL in the middle of concurrent APPEND,
//! COPY, MOVE and EXPUNGE work, many times. After every restart each acknowledged change is there,
//! nothing half-written is visible, UIDs stay unique, stable and ascending, UIDVALIDITY does not
//! change, and a torn index log (a partial record at its end) is repaired on the next open.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Crash rounds per run (each: restart, a burst of work, SIGKILL, full verification).
const ROUNDS: usize = 6;
/// Appenders into INBOX and movers (APPEND, COPY, MOVE, EXPUNGE chains) per round.
const APPENDERS: usize = 3;
const MOVERS: usize = 2;

/// A connection whose reads and writes report a dead server as an error instead of panicking:
/// dying mid-command is the point of this test.
struct Raw {
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> std::io::Result<Raw> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut r = Raw {
            r: BufReader::new(s),
        };
        r.line()?;
        Ok(r)
    }

    fn line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        if self.r.read_until(b'\n', &mut buf)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.r.get_mut().write_all(bytes)
    }

    /// Sends a command; returns the untagged lines and the tagged one.
    fn cmd(&mut self, tag: &str, cmd: &[u8]) -> std::io::Result<(Vec<String>, String)> {
        let mut line = format!("{tag} ").into_bytes();
        line.extend_from_slice(cmd);
        line.extend_from_slice(b"\r\n");
        self.send(&line)?;
        let mut untagged = Vec::new();
        loop {
            let l = self.line()?;
            if l.starts_with(&format!("{tag} ")) {
                return Ok((untagged, l));
            }
            untagged.push(l);
        }
    }

    fn ok(&mut self, tag: &str, cmd: &[u8]) -> std::io::Result<(Vec<String>, String)> {
        let (u, t) = self.cmd(tag, cmd)?;
        if t.starts_with(&format!("{tag} OK")) {
            Ok((u, t))
        } else {
            Err(std::io::Error::other(format!(
                "{t} for {}",
                String::from_utf8_lossy(cmd)
            )))
        }
    }
}

/// The message for a token: its size and content derive from the token, so a reader can tell a
/// whole message from a torn one.
fn body(token: &str) -> Vec<u8> {
    let n = token
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let mut m = format!("Message-ID: <{token}@crash>\r\nSubject: {token}\r\n\r\n").into_bytes();
    for i in 0..(20 + n % 200) {
        m.extend_from_slice(format!("{token} line {i} of filler text\r\n").as_bytes());
    }
    m
}

fn code_numbers(line: &str, code: &str) -> Option<Vec<u32>> {
    let start = line.find(&format!("[{code} "))? + code.len() + 2;
    let end = start + line[start..].find(']')?;
    line[start..end]
        .split(' ')
        .map(|n| n.parse().ok())
        .collect()
}

/// Where a mover's message is: each step is acknowledged before the next starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// In W only.
    Appended,
    /// In W and C.
    Copied,
    /// In C and M.
    Moved,
    /// In C only.
    Expunged,
    /// In W, C and M: a MOVE cut short by the kill after its copy was durable (only ever found
    /// after a crash, never acknowledged).
    Duplicated,
}

#[derive(Default)]
struct Model {
    /// token -> (mailbox, UID) of every acknowledged INBOX append.
    inbox: BTreeMap<String, u32>,
    /// token -> last acknowledged step, with the UIDs it has in each mailbox.
    movers: BTreeMap<String, (Step, HashMap<String, u32>)>,
    /// Tokens with a command in flight when the server died: (token, step it was trying).
    in_flight: Vec<(String, Option<Step>)>,
    /// Highest UID ever acknowledged per mailbox.
    max_uid: HashMap<String, u32>,
    uidvalidity: HashMap<String, u32>,
    /// MOVEs cut short that left the message in both mailboxes.
    dup_moves: usize,
}

impl Model {
    fn saw_uid(&mut self, mailbox: &str, uid: u32, validity: u32) {
        let m = self.max_uid.entry(mailbox.to_string()).or_default();
        *m = (*m).max(uid);
        let v = *self
            .uidvalidity
            .entry(mailbox.to_string())
            .or_insert(validity);
        assert_eq!(v, validity, "UIDVALIDITY of {mailbox} changed");
    }
}

fn appender(port: u16, round: usize, k: usize, model: Arc<Mutex<Model>>) -> std::io::Result<()> {
    let mut c = Raw::connect(port)?;
    c.ok("l", b"LOGIN demo demo")?;
    for i in 0.. {
        let token = format!("A{round}-{k}-{i}");
        let msg = body(&token);
        model.lock().unwrap().in_flight.push((token.clone(), None));
        let mut cmd = format!("APPEND INBOX {{{}+}}\r\n", msg.len()).into_bytes();
        cmd.extend_from_slice(&msg);
        let (_, t) = c.ok("a", &cmd)?;
        let [v, uid] = code_numbers(&t, "APPENDUID").unwrap()[..] else {
            panic!("{t}")
        };
        let mut m = model.lock().unwrap();
        m.in_flight.retain(|(x, _)| x != &token);
        m.inbox.insert(token, uid);
        m.saw_uid("INBOX", uid, v);
    }
    Ok(())
}

fn mover(port: u16, round: usize, k: usize, model: Arc<Mutex<Model>>) -> std::io::Result<()> {
    let (w, cbox, mbox) = (format!("W{k}"), format!("C{k}"), format!("M{k}"));
    let mut c = Raw::connect(port)?;
    c.ok("l", b"LOGIN demo demo")?;
    for i in 0.. {
        let token = format!("M{round}-{k}-{i}");
        let msg = body(&token);
        let begin = |step: Option<Step>| {
            let mut m = model.lock().unwrap();
            m.in_flight.retain(|(x, _)| x != &token);
            m.in_flight.push((token.clone(), step));
        };
        let done = |step: Step, uids: &[(&str, u32, u32)], gone: Option<&str>| {
            let mut m = model.lock().unwrap();
            m.in_flight.retain(|(x, _)| x != &token);
            for (mb, uid, v) in uids {
                m.saw_uid(mb, *uid, *v);
            }
            let e = m
                .movers
                .entry(token.clone())
                .or_insert((step, HashMap::new()));
            e.0 = step;
            for (mb, uid, _) in uids {
                e.1.insert(mb.to_string(), *uid);
            }
            if let Some(g) = gone {
                e.1.remove(g);
            }
        };
        begin(None);
        let mut cmd = format!("APPEND {w} {{{}+}}\r\n", msg.len()).into_bytes();
        cmd.extend_from_slice(&msg);
        let (_, t) = c.ok("a", &cmd)?;
        let [v, wuid] = code_numbers(&t, "APPENDUID").unwrap()[..] else {
            panic!("{t}")
        };
        done(Step::Appended, &[(&w, wuid, v)], None);
        c.ok("s", format!("SELECT {w}").as_bytes())?;
        begin(Some(Step::Copied));
        let (_, t) = c.ok("c", format!("UID COPY {wuid} {cbox}").as_bytes())?;
        let [v, _, cuid] = code_numbers(&t, "COPYUID").unwrap()[..] else {
            panic!("{t}")
        };
        done(Step::Copied, &[(&cbox, cuid, v)], None);
        begin(Some(Step::Moved));
        let (u, _) = c.ok("m", format!("UID MOVE {wuid} {mbox}").as_bytes())?;
        let copy = u.iter().find_map(|l| code_numbers(l, "COPYUID")).unwrap();
        let [v, _, muid] = copy[..] else {
            panic!("{u:?}")
        };
        done(Step::Moved, &[(&mbox, muid, v)], Some(&w));
        c.ok("s", format!("SELECT {mbox}").as_bytes())?;
        begin(Some(Step::Expunged));
        c.ok(
            "d",
            format!("UID STORE {muid} +FLAGS.SILENT (\\Deleted)").as_bytes(),
        )?;
        c.ok("e", format!("UID EXPUNGE {muid}").as_bytes())?;
        done(Step::Expunged, &[], Some(&mbox));
    }
    Ok(())
}

/// Every message of a mailbox as (UID, token), checking that each is whole.
fn contents(c: &mut Client, mailbox: &str) -> (u32, u32, Vec<(u32, String)>) {
    c.send(&format!("s SELECT {mailbox}"));
    let sel = c.until("s ");
    assert!(sel.last().unwrap().starts_with("s OK"), "{sel:?}");
    let num = |code: &str| {
        sel.iter()
            .find_map(|l| code_numbers(l, code))
            .unwrap_or_else(|| panic!("no {code} in {sel:?}"))[0]
    };
    let (validity, uidnext) = (num("UIDVALIDITY"), num("UIDNEXT"));
    let mut out = Vec::new();
    for (uid, data) in c.fetch_all_bodies("f") {
        let text = String::from_utf8(data.clone()).unwrap();
        let token = text
            .strip_prefix("Message-ID: <")
            .and_then(|t| t.split('@').next())
            .unwrap_or_else(|| panic!("{mailbox} UID {uid} is not one of ours: {text:?}"))
            .to_string();
        assert_eq!(data, body(&token), "{mailbox} UID {uid} ({token}) is torn");
        out.push((uid, token));
    }
    let uids: Vec<u32> = out.iter().map(|(u, _)| *u).collect();
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "{mailbox} UIDs not ascending: {uids:?}"
    );
    (validity, uidnext, out)
}

/// Checks the store against the model; returns where each token is (mailbox -> UID).
fn verify(s: &Server, model: &Model) -> HashMap<String, HashMap<String, u32>> {
    let mut c = s.imap();
    c.line();
    c.cmd("l", "LOGIN demo demo");
    let mut seen: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for mb in ["INBOX", "W0", "W1", "C0", "C1", "M0", "M1"] {
        let (validity, uidnext, msgs) = contents(&mut c, mb);
        if let Some(v) = model.uidvalidity.get(mb) {
            assert_eq!(*v, validity, "UIDVALIDITY of {mb} changed");
        }
        let max = model.max_uid.get(mb).copied().unwrap_or(0);
        assert!(
            uidnext > max,
            "{mb}: UIDNEXT {uidnext} not above acknowledged UID {max}"
        );
        for (uid, token) in msgs {
            let dup = seen
                .entry(token.clone())
                .or_default()
                .insert(mb.to_string(), uid);
            assert!(dup.is_none(), "{token} twice in {mb}");
        }
    }
    let in_flight: HashMap<&str, Option<Step>> = model
        .in_flight
        .iter()
        .map(|(t, s)| (t.as_str(), *s))
        .collect();
    for (token, uid) in &model.inbox {
        let at = seen.get(token).and_then(|m| m.get("INBOX"));
        assert_eq!(
            at,
            Some(uid),
            "acknowledged append {token} (UID {uid}) lost or renumbered"
        );
    }
    let places = |step: Step, k: &str| -> Vec<String> {
        let names: &[&str] = match step {
            Step::Appended => &["W"],
            Step::Copied => &["W", "C"],
            Step::Moved => &["C", "M"],
            Step::Expunged => &["C"],
            Step::Duplicated => &["C", "M", "W"],
        };
        let mut v: Vec<String> = names.iter().map(|n| format!("{n}{k}")).collect();
        v.sort();
        v
    };
    for (token, (step, uids)) in &model.movers {
        let k = &token.split('-').nth(1).unwrap().to_string();
        let mut got: Vec<String> = seen
            .get(token)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        got.sort();
        let mut allowed = vec![places(*step, k)];
        if let Some(Some(next)) = in_flight.get(token.as_str()) {
            allowed.push(places(*next, k));
            if *next == Step::Moved {
                // A MOVE cut short may leave the copy in place before the source is expunged:
                // duplicated, never lost.
                allowed.push(places(Step::Duplicated, k));
            }
        }
        assert!(
            allowed.contains(&got),
            "{token}: acknowledged {step:?}, found in {got:?}, allowed {allowed:?}"
        );
        // Acknowledged UIDs stay what they were.
        for (mb, uid) in uids {
            if let Some(found) = seen.get(token).and_then(|m| m.get(mb)) {
                assert_eq!(found, uid, "{token} renumbered in {mb}");
            }
        }
    }
    // Nothing else: every message is acknowledged or was in flight.
    for token in seen.keys() {
        assert!(
            model.inbox.contains_key(token)
                || model.movers.contains_key(token)
                || in_flight.contains_key(token.as_str()),
            "{token} appeared from nowhere"
        );
    }
    seen
}

/// After a verified crash, what an in-flight command left behind becomes the new truth.
fn settle(model: &mut Model, seen: &HashMap<String, HashMap<String, u32>>) {
    let in_flight = std::mem::take(&mut model.in_flight);
    for (token, step) in in_flight {
        let Some(found) = seen.get(&token) else {
            model.movers.remove(&token);
            continue;
        };
        if step.is_none() && token.starts_with('A') {
            model.inbox.insert(token, found["INBOX"]);
            continue;
        }
        let has = |p: &str| found.keys().any(|m| m.starts_with(p));
        let now = match (has("W"), has("C"), has("M")) {
            (true, false, false) => Step::Appended,
            (true, true, _) => Step::Copied,
            (false, true, true) => Step::Moved,
            _ => Step::Expunged,
        };
        let now = if has("W") && has("M") {
            model.dup_moves += 1;
            Step::Duplicated
        } else {
            now
        };
        model.movers.insert(token, (now, found.clone()));
    }
}

/// Appends half a record to every index log, as a write cut short by power loss would leave it.
fn tear_index_logs(root: &std::path::Path) -> usize {
    let mut torn = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().is_some_and(|n| n == "mailcove-index.log") {
                let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
                f.write_all(b"A 4000000000 17 0 12").unwrap();
                torn += 1;
            }
        }
    }
    torn
}

#[test]
fn sigkill_during_concurrent_append_copy_move_expunge_loses_nothing_acknowledged() {
    let mut s = Server::start();
    let mut c = s.imap();
    c.line();
    c.cmd("l", "LOGIN demo demo");
    for mb in ["W0", "W1", "C0", "C1", "M0", "M1"] {
        let r = c.cmd("c", &format!("CREATE {mb}"));
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with("c OK [MAILBOXID (") && r[0].ends_with(")] Create completed."),
            "{r:?}"
        );
    }
    drop(c);
    let model = Arc::new(Mutex::new(Model::default()));
    let mut acked_total = 0;
    for round in 0..ROUNDS {
        let port = s.ports.imap;
        let mut workers = Vec::new();
        for k in 0..APPENDERS {
            let m = model.clone();
            workers.push(std::thread::spawn(move || appender(port, round, k, m)));
        }
        for k in 0..MOVERS {
            let m = model.clone();
            workers.push(std::thread::spawn(move || mover(port, round, k, m)));
        }
        // Different burst lengths land the kill at different points of the work.
        std::thread::sleep(Duration::from_millis(400 + 150 * round as u64));
        s.kill();
        for w in workers {
            let err = w.join().unwrap().expect_err("a worker outlived the server");
            assert!(
                matches!(
                    err.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionRefused
                ),
                "worker failed by itself, not by the kill: {err}"
            );
        }
        if round % 2 == 1 {
            assert!(
                tear_index_logs(&s.maildir("demo")) > 0,
                "no index log to tear"
            );
        }
        s.restart();
        let mut m = model.lock().unwrap();
        let seen = verify(&s, &m);
        settle(&mut m, &seen);
        acked_total = m.inbox.len() + m.movers.len();
    }
    // A torn base (not just a torn log tail): the index is rebuilt from the Maildir. Every message
    // is still there, whole, once; UIDs stay ascending; if the UIDs could not be kept, UIDVALIDITY
    // must change so clients do not trust their caches (RFC 3501 2.3.1.1).
    s.kill();
    let base = s.maildir("demo").join("mailcove-index");
    let old = std::fs::read(&base).unwrap();
    std::fs::write(&base, &old[..old.len() / 2]).unwrap();
    s.restart();
    let mut c = s.imap();
    c.line();
    c.cmd("l", "LOGIN demo demo");
    let (validity, _, msgs) = contents(&mut c, "INBOX");
    let m = model.lock().unwrap();
    let found: HashMap<&str, u32> = msgs.iter().map(|(u, t)| (t.as_str(), *u)).collect();
    assert_eq!(
        found.len(),
        msgs.len(),
        "a message shows twice after the rebuild"
    );
    let kept_uids = m
        .inbox
        .iter()
        .all(|(t, u)| found.get(t.as_str()) == Some(u));
    for t in m.inbox.keys() {
        assert!(
            found.contains_key(t.as_str()),
            "{t} lost in the index rebuild"
        );
    }
    assert!(
        kept_uids || validity != m.uidvalidity["INBOX"],
        "UIDs changed in the rebuild but UIDVALIDITY did not"
    );
    assert!(
        m.inbox.len() > 20,
        "too little work was acknowledged: {}",
        m.inbox.len()
    );
    assert!(
        m.movers.values().any(|(s, _)| *s == Step::Expunged),
        "no mover chain completed"
    );
    eprintln!(
        "{acked_total} acknowledged messages survived {ROUNDS} SIGKILLs; {} MOVEs cut short left a duplicate",
        m.dup_moves
    );
}
