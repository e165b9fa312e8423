//! INTERNALDATE of messages another tool wrote into a Maildir with `,S=`/`,W=` names: the first
//! SELECT does not read their mtimes, so FETCH INTERNALDATE, SEARCH BEFORE/ON/SINCE and COPY read
//! them when asked. Every answer must be the file's mtime, the same after a restart, and a file
//! that vanished before its date was read is an expunged message.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// (mtime, INTERNALDATE as FETCH shows it) of the five files, in name (delivery) order: the
/// mtimes are deliberately not in that order.
const DATES: [(i64, &str); 5] = [
    (1_673_352_000, "10-Jan-2023 12:00:00 +0000"),
    (1_678_005_015, "05-Mar-2023 08:30:15 +0000"),
    (1_625_097_600, "01-Jul-2021 00:00:00 +0000"),
    (1_735_689_599, "31-Dec-2024 23:59:59 +0000"),
    (1_643_767_322, "02-Feb-2022 02:02:02 +0000"),
];

/// Writes the five messages as a delivery agent would (even ones in `new/`, odd ones in `cur/`
/// with `\Seen`), each with its mtime; returns their paths.
fn drop_messages(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for (i, (mtime, _)) in DATES.iter().enumerate() {
        let body = format!("Subject: m{i}\nFrom: tool@example.org\n\nbody {i}\n");
        let (s, w) = (body.len(), body.len() + 4);
        let base = format!("{}.M{i}P9Q1.tool,S={s},W={w}", 1_700_000_000 + i);
        let path = if i % 2 == 0 {
            root.join("new").join(base)
        } else {
            root.join("cur").join(format!("{base}:2,S"))
        };
        std::fs::write(&path, &body).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        let f = std::fs::File::options().write(true).open(&path);
        let t = std::time::UNIX_EPOCH + Duration::from_secs(*mtime as u64);
        assert!(f.and_then(|f| f.set_modified(t)).is_ok());
        paths.push(path);
    }
    paths
}

fn fetch_dates(c: &mut Client, tag: &str, set: &str) -> Vec<String> {
    let r = c.cmd(tag, &format!("UID FETCH {set} (INTERNALDATE)"));
    assert_tagged_ok(&r);
    r.iter().filter(|l| l.starts_with("* ")).cloned().collect()
}

fn expected_fetch(uids: &[u32]) -> Vec<String> {
    uids.iter()
        .map(|&u| {
            let d = DATES[u as usize - 1].1;
            format!("* {u} FETCH (UID {u} INTERNALDATE \"{d}\")")
        })
        .collect()
}

fn search(c: &mut Client, tag: &str, criteria: &str) -> String {
    let r = c.cmd(tag, &format!("UID SEARCH {criteria}"));
    assert_tagged_ok(&r);
    r.iter()
        .find(|l| l.starts_with("* SEARCH"))
        .cloned()
        .unwrap_or_else(|| panic!("no * SEARCH in {r:?}"))
}

fn check_searches(c: &mut Client) {
    assert_eq!(search(c, "s1", "SINCE 1-Jan-2023"), "* SEARCH 1 2 4");
    assert_eq!(search(c, "s2", "BEFORE 1-Jan-2023"), "* SEARCH 3 5");
    assert_eq!(search(c, "s3", "ON 31-Dec-2024"), "* SEARCH 4");
    assert_eq!(search(c, "s4", "NOT ON 1-Jul-2021 SEEN"), "* SEARCH 2 4");
}

#[test]
fn dates_of_sized_files_are_their_mtimes_in_every_session() {
    let mut s = Server::start();
    let root = s.maildir("demo");
    // The login makes the Maildir; INBOX is not selected before the files are there.
    let mut c = login_demo(&s);
    let paths = drop_messages(&root);
    assert_tagged_ok(&c.cmd("c", "CREATE Kept"));
    let sel = c.cmd("x", "SELECT INBOX");
    assert_tagged_ok(&sel);
    assert!(sel.contains(&"* 5 EXISTS".to_string()), "{sel:?}");
    // UIDs follow the names' delivery times, not the mtimes.
    let r = c.cmd("u", "FETCH 1:* (UID FLAGS)");
    assert_tagged_ok(&r);
    assert!(
        r.iter().any(|l| l.starts_with("* 3 FETCH (UID 3 ")),
        "{r:?}"
    );
    // COPY first, before anything read a date: the copy keeps the source's date.
    assert_tagged_ok(&c.cmd("y", "UID COPY 3 Kept"));
    // SEARCH before any FETCH, then FETCH.
    check_searches(&mut c);
    assert_eq!(
        fetch_dates(&mut c, "f1", "1:*"),
        expected_fetch(&[1, 2, 3, 4, 5])
    );
    let r = c.cmd("e", "EXAMINE Kept");
    assert_tagged_ok(&r);
    let r = c.cmd("f2", "FETCH 1 (INTERNALDATE)");
    assert_tagged_ok(&r);
    assert_eq!(
        r.first().map(String::as_str),
        Some(&*format!("* 1 FETCH (INTERNALDATE \"{}\")", DATES[2].1))
    );
    assert_tagged_ok(&c.cmd("o", "LOGOUT"));

    // A new process: FETCH first this time, then SEARCH; the same answers.
    s.restart();
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("x", "SELECT INBOX"));
    assert_eq!(fetch_dates(&mut c, "f3", "2,4"), expected_fetch(&[2, 4]));
    check_searches(&mut c);
    assert_eq!(
        fetch_dates(&mut c, "f4", "1:*"),
        expected_fetch(&[1, 2, 3, 4, 5])
    );
    assert_tagged_ok(&c.cmd("o", "LOGOUT"));

    // After another restart, a file removed behind the server's back before its date was read
    // is an expunged message: no date is made up for it.
    s.restart();
    let gone = std::fs::read_dir(root.join("cur"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{}.", 1_700_000_004)))
        })
        .unwrap_or_else(|| panic!("message 5 not in cur/ (was {:?})", paths.get(4)));
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("x", "SELECT INBOX"));
    assert!(std::fs::remove_file(&gone).is_ok());
    let r = c.cmd("f5", "UID FETCH 4:5 (INTERNALDATE)");
    assert!(
        r.last()
            .is_some_and(|l| l.starts_with("f5 NO [EXPUNGEISSUED]")),
        "{r:?}"
    );
    assert!(
        r.contains(&expected_fetch(&[4])[0]),
        "the message still there is answered: {r:?}"
    );
    assert!(!r.iter().any(|l| l.contains("FETCH (UID 5 ")), "{r:?}");
    let n = c.cmd("n", "NOOP");
    assert_tagged_ok(&n);
    assert!(
        r.iter().chain(&n).any(|l| l == "* 5 EXPUNGE"),
        "the expunge is announced: {r:?} {n:?}"
    );
    assert_eq!(search(&mut c, "s5", "BEFORE 1-Jan-2023"), "* SEARCH 3");
}
