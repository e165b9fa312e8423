//! Group commit (issue 23) over the wire: many sessions APPEND, STORE and EXPUNGE in one mailbox
//! at once, so their changes share fsync rounds (src/storage/maildir/group_commit.rs). Every
//! acknowledged change must be there, exactly, after the server is SIGKILLed and started again:
//! each APPEND under the UID its APPENDUID named with its bytes, each STORE's flags, each UID
//! EXPUNGE gone, and nothing else. The coalescing itself (fewer fsyncs than writers, none
//! acknowledged before an fsync that started after its write) is the unit test in that file.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

/// Sessions writing into the one INBOX at the same time.
const WRITERS: usize = 8;
/// APPENDs per session.
const PER_WRITER: usize = 30;

/// What one session was told was done: UID -> (body, flags it must have).
type Acked = BTreeMap<u32, (Vec<u8>, BTreeSet<String>)>;

fn message(writer: usize, i: usize) -> Vec<u8> {
    format!(
        "From: w{writer}@example.com\r\nSubject: group commit {writer}/{i}\r\n\r\n{}\r\n",
        format!("line {i} of writer {writer}\r\n").repeat(1 + i % 7)
    )
    .into_bytes()
}

fn login(s: &Server) -> Client {
    let mut c = login_demo(s);
    let r = c.cmd("s", "SELECT INBOX");
    assert!(r.last().unwrap().starts_with("s OK"), "{r:?}");
    c
}

/// The UID of `[APPENDUID v uid]` in a tagged OK.
fn appenduid(line: &str) -> u32 {
    assert!(line.contains(" OK "), "APPEND failed: {line}");
    line.split("[APPENDUID ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|r| r.split(' ').nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no APPENDUID in {line:?}"))
}

/// One session: APPENDs (half with \Seen), adds \Flagged and $Work to some of its messages,
/// and deletes every fifth with UID EXPUNGE; returns what it was acknowledged.
fn writer(s: &Server, w: usize) -> (Acked, Vec<u32>) {
    let mut c = login(s);
    let mut acked = Acked::new();
    let mut expunged = Vec::new();
    for i in 0..PER_WRITER {
        let data = message(w, i);
        let seen = i % 2 == 0;
        let tag = format!("a{i}");
        c.send(&format!(
            "{tag} APPEND INBOX ({}) {{{}}}",
            if seen { "\\Seen" } else { "" },
            data.len()
        ));
        let cont = c.line();
        assert!(cont.starts_with('+'), "no continuation: {cont}");
        c.send_raw(&data);
        c.send_raw(b"\r\n");
        let uid = appenduid(c.until(&format!("{tag} ")).last().unwrap());
        let mut flags = BTreeSet::new();
        if seen {
            flags.insert("\\Seen".to_string());
        }
        if i % 3 == 0 {
            let r = c.cmd(
                &format!("f{i}"),
                &format!("UID STORE {uid} +FLAGS (\\Flagged $Work)"),
            );
            assert!(r.last().unwrap().starts_with(&format!("f{i} OK")), "{r:?}");
            flags.insert("\\Flagged".to_string());
            flags.insert("$Work".to_string());
        }
        if i % 5 == 4 {
            let r = c.cmd(
                &format!("d{i}"),
                &format!("UID STORE {uid} +FLAGS (\\Deleted)"),
            );
            assert!(r.last().unwrap().starts_with(&format!("d{i} OK")), "{r:?}");
            let r = c.cmd(&format!("x{i}"), &format!("UID EXPUNGE {uid}"));
            assert!(r.last().unwrap().starts_with(&format!("x{i} OK")), "{r:?}");
            expunged.push(uid);
        } else {
            acked.insert(uid, (data, flags));
        }
    }
    c.cmd("z", "LOGOUT");
    (acked, expunged)
}

/// Every message of INBOX as UID -> (body, flags without \Recent).
fn contents(s: &Server) -> Acked {
    let mut c = login(s);
    let bodies = c.fetch_all_bodies("b");
    let lines = c.cmd("f", "UID FETCH 1:* (UID FLAGS)");
    assert!(lines.last().unwrap().starts_with("f OK"), "{lines:?}");
    let mut flags: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for l in &lines[..lines.len() - 1] {
        let uid: u32 = l
            .split("UID ")
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|u| u.parse().ok())
            .unwrap_or_else(|| panic!("no UID in {l:?}"));
        let set = l
            .split("FLAGS (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_else(|| panic!("no FLAGS in {l:?}"))
            .split_whitespace()
            .filter(|f| *f != "\\Recent")
            .map(str::to_string)
            .collect();
        flags.insert(uid, set);
    }
    c.cmd("z", "LOGOUT");
    bodies
        .into_iter()
        .map(|(uid, body)| {
            let f = flags.remove(&uid).unwrap_or_default();
            (uid, (body, f))
        })
        .collect()
}

#[test]
fn concurrent_appends_and_stores_in_one_mailbox_all_survive_a_kill() {
    let mut s = Server::start();
    // The demo user's INBOX may hold messages already: they must stay as they are.
    let before = contents(&s);
    let results: Vec<(Acked, Vec<u32>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let s = &s;
                scope.spawn(move || writer(s, w))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut want = before;
    let mut gone = BTreeSet::new();
    for (acked, expunged) in results {
        assert_eq!(acked.len() + expunged.len(), PER_WRITER);
        for (uid, v) in acked {
            assert!(want.insert(uid, v).is_none(), "UID {uid} handed out twice");
        }
        for uid in expunged {
            assert!(gone.insert(uid), "UID {uid} expunged twice");
        }
    }
    assert_eq!(
        want.keys().filter(|u| gone.contains(u)).count(),
        0,
        "a UID was both kept and expunged"
    );
    // What every session saw acknowledged, before and after a SIGKILL and a new start.
    assert_eq!(contents(&s), want, "before the kill");
    if memory_backend() && !postgres_backend() {
        // The memory backend keeps nothing across a restart; Maildir and PostgreSQL must.
        eprintln!("SKIPPED on MAILCOVE_TEST_BACKEND=memory: the check after a kill");
        return;
    }
    s.restart();
    let after = contents(&s);
    for uid in &gone {
        assert!(!after.contains_key(uid), "expunged UID {uid} is back");
    }
    assert_eq!(after, want, "after the kill");
}
