//! Keywords past the 26 a Maildir file name can carry as letters (`a`..`z`, indexing
//! `dovecot-keywords`): a thousand of them in one mailbox, set with STORE and read back with
//! FETCH FLAGS, SEARCH KEYWORD/UNKEYWORD and the FLAGS/PERMANENTFLAGS of SELECT, in a new
//! connection, after a restart (read from disk), and after another program renamed the files
//! to change their flags (the keywords past the letters are not in the names, and survive).
//! RFC 3501 2.3.2 (keywords), 6.4.6 (STORE), 7.1 (PERMANENTFLAGS `\*`), 7.2.6 (FLAGS).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// Keywords set on message 1 (far beyond the 26 letters).
const N: usize = 1000;
/// Keywords set on message 2: one with a letter, two without.
const ON_SECOND: [usize; 3] = [3, 500, 999];

fn kw(i: usize) -> String {
    format!("kw{i}")
}

/// Three messages as a delivery agent writes them into `cur/`, no flags yet.
fn drop_messages(root: &Path) {
    for i in 1..=3 {
        let body = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        let name = format!(
            "{}.M{i}P7Q1.tool,S={},W={}:2,",
            1_700_000_000 + i,
            body.len(),
            body.len()
        );
        std::fs::write(root.join("cur").join(name), body).unwrap();
    }
}

/// The flags inside the first parenthesised list after `key (` in `line`; `\Recent` (per
/// session, the first one sees the messages as new) is left out.
fn flag_list(line: &str, key: &str) -> BTreeSet<String> {
    let start = line
        .find(&format!("{key} ("))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        + key.len()
        + 2;
    let end = line[start..]
        .find(')')
        .unwrap_or_else(|| panic!("unterminated {key} in {line:?}"))
        + start;
    line[start..end]
        .split(' ')
        .filter(|f| !f.is_empty() && *f != "\\Recent")
        .map(str::to_owned)
        .collect()
}

fn keywords(range: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    range.into_iter().map(kw).collect()
}

fn fetch_flags(c: &mut Client, tag: &str, seq: u32) -> BTreeSet<String> {
    let r = c.cmd(tag, &format!("FETCH {seq} (FLAGS)"));
    assert_tagged_ok(&r);
    let line = r
        .iter()
        .find(|l| l.starts_with(&format!("* {seq} FETCH")))
        .unwrap_or_else(|| panic!("no FETCH response in {r:?}"));
    flag_list(line, "FLAGS")
}

fn search(c: &mut Client, tag: &str, criteria: &str) -> String {
    let r = c.cmd(tag, &format!("SEARCH {criteria}"));
    assert_tagged_ok(&r);
    r.iter()
        .find(|l| l.starts_with("* SEARCH"))
        .cloned()
        .unwrap_or_else(|| panic!("no * SEARCH in {r:?}"))
}

/// SELECTs INBOX and checks that FLAGS and PERMANENTFLAGS name every keyword, `\*` included.
fn select(c: &mut Client, tag: &str) {
    let r = c.cmd(tag, "SELECT INBOX");
    assert_tagged_ok(&r);
    let flags = r
        .iter()
        .find(|l| l.starts_with("* FLAGS"))
        .unwrap_or_else(|| panic!("no FLAGS in {r:?}"));
    let all = keywords(0..N);
    let listed = flag_list(flags, "FLAGS");
    assert!(all.is_subset(&listed), "FLAGS lacks keywords");
    let perm = r
        .iter()
        .find(|l| l.contains("[PERMANENTFLAGS"))
        .unwrap_or_else(|| panic!("no PERMANENTFLAGS in {r:?}"));
    let perm = flag_list(perm, "[PERMANENTFLAGS");
    assert!(all.is_subset(&perm), "PERMANENTFLAGS lacks keywords");
    assert!(
        perm.contains("\\*"),
        "more keywords may still be created: {perm:?}"
    );
}

/// What every session sees once the keywords are set (`extra`: flags another program added
/// to message 1 and 2 by renaming their files).
fn check(c: &mut Client, extra: &[(u32, &str)]) {
    let with = |seq: u32, mut set: BTreeSet<String>| {
        for (s, f) in extra {
            if *s == seq {
                set.insert((*f).to_owned());
            }
        }
        set
    };
    assert_eq!(fetch_flags(c, "f1", 1), with(1, keywords(0..N)));
    assert_eq!(fetch_flags(c, "f2", 2), with(2, keywords(ON_SECOND)));
    assert_eq!(fetch_flags(c, "f3", 3), with(3, BTreeSet::new()));
    assert_eq!(search(c, "s1", "KEYWORD kw999"), "* SEARCH 1 2");
    assert_eq!(search(c, "s2", "KEYWORD KW500"), "* SEARCH 1 2");
    assert_eq!(search(c, "s3", "KEYWORD kw3"), "* SEARCH 1 2");
    assert_eq!(search(c, "s4", "KEYWORD kw42"), "* SEARCH 1");
    assert_eq!(search(c, "s5", "UNKEYWORD kw777"), "* SEARCH 2 3");
    assert_eq!(
        search(c, "s6", "KEYWORD kw0 KEYWORD kw998 UNKEYWORD kw500"),
        "* SEARCH"
    );
    assert_eq!(
        search(c, "s7", "OR KEYWORD kw26 KEYWORD nosuch"),
        "* SEARCH 1"
    );
}

#[test]
fn a_thousand_keywords_in_one_mailbox_survive_reconnect_restart_and_renames() {
    let mut s = Server::start();
    // The login makes the Maildir; INBOX is not selected before the files are there.
    let mut c = login_demo(&s);
    drop_messages(&s.maildir("demo"));
    assert_tagged_ok(&c.cmd("a", "SELECT INBOX"));
    // A hundred new keywords per STORE; each announces the grown table.
    for chunk in 0..N / 100 {
        let names: Vec<String> = (chunk * 100..chunk * 100 + 100).map(kw).collect();
        let r = c.cmd(
            &format!("t{chunk}"),
            &format!("STORE 1 +FLAGS.SILENT ({})", names.join(" ")),
        );
        assert_tagged_ok(&r);
        assert!(r.iter().any(|l| l.starts_with("* FLAGS (")), "{r:?}");
        assert!(r.iter().any(|l| l.contains("[PERMANENTFLAGS (")), "{r:?}");
    }
    // The first 26 names are Dovecot's (file-name letters), the rest mailcove's.
    let root = s.maildir("demo");
    let lines = |f: &str| {
        std::fs::read_to_string(root.join(f))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(lines("dovecot-keywords"), 26);
    assert_eq!(lines("mailcove-keywords"), N - 26);
    let second: Vec<String> = ON_SECOND.iter().map(|i| kw(*i)).collect();
    let r = c.cmd("u", &format!("STORE 2 +FLAGS ({})", second.join(" ")));
    assert_tagged_ok(&r);
    // Known keywords, any case: the table does not grow, FETCH shows the stored spelling.
    assert!(!r.iter().any(|l| l.starts_with("* FLAGS")), "{r:?}");
    let fetched = r
        .iter()
        .find(|l| l.starts_with("* 2 FETCH"))
        .unwrap_or_else(|| panic!("no FETCH in {r:?}"));
    assert_eq!(flag_list(fetched, "FLAGS"), keywords(ON_SECOND));
    check(&mut c, &[]);
    select(&mut c, "b");

    // A new connection of the same server.
    assert_tagged_ok(&c.cmd("z", "LOGOUT"));
    let mut c = login_demo(&s);
    select(&mut c, "a");
    check(&mut c, &[]);
    assert_tagged_ok(&c.cmd("z", "LOGOUT"));

    // A new server process: everything comes from the disk.
    s.restart();
    let mut c = login_demo(&s);
    select(&mut c, "a");
    check(&mut c, &[]);

    // Another program (an MUA on the Maildir, a second server) marks messages 1 and 2 by
    // renaming their files: the letters stay, the keywords past them are not in the names.
    let cur = s.maildir("demo").join("cur");
    let mut renamed = 0;
    for e in std::fs::read_dir(&cur).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let (base, letters) = name.split_once(":2,").unwrap();
        let flag = if base.starts_with("1700000001.") {
            'F'
        } else if base.starts_with("1700000002.") {
            'S'
        } else {
            continue;
        };
        // Message 1 carries a..z (its first 26 keywords), message 2 carries d (kw3).
        let expected = if flag == 'F' {
            ('a'..='z').collect::<String>()
        } else {
            "d".to_owned()
        };
        assert_eq!(letters, expected, "{name}");
        let mut all: Vec<char> = letters.chars().chain([flag]).collect();
        all.sort_unstable();
        let new_name = format!("{base}:2,{}", all.into_iter().collect::<String>());
        std::fs::rename(cur.join(&name), cur.join(new_name)).unwrap();
        renamed += 1;
    }
    assert_eq!(renamed, 2);
    let r = c.cmd("n", "NOOP");
    assert_tagged_ok(&r);
    assert!(r.iter().any(|l| l.starts_with("* 1 FETCH")), "{r:?}");
    assert!(r.iter().any(|l| l.starts_with("* 2 FETCH")), "{r:?}");
    let extra = [(1, "\\Flagged"), (2, "\\Seen")];
    check(&mut c, &extra);

    // Removing a keyword past the letters renames nothing and is kept too.
    let before: BTreeSet<String> = std::fs::read_dir(&cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_tagged_ok(&c.cmd("r", "STORE 2 -FLAGS.SILENT (kw500)"));
    let after: BTreeSet<String> = std::fs::read_dir(&cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(before, after, "no file name carries kw500");
    assert_tagged_ok(&c.cmd("z", "LOGOUT"));
    s.restart();
    let mut c = login_demo(&s);
    select(&mut c, "a");
    let mut want: BTreeSet<String> = keywords([3, 999]);
    want.insert("\\Seen".into());
    assert_eq!(fetch_flags(&mut c, "f", 2), want);
    assert_eq!(search(&mut c, "s", "KEYWORD kw500"), "* SEARCH 1");
    let mut want = keywords(0..N);
    want.insert("\\Flagged".into());
    assert_eq!(fetch_flags(&mut c, "g", 1), want);
    assert_tagged_ok(&c.cmd("z", "LOGOUT"));
}

/// At `MAX_KEYWORDS_PER_MAILBOX` (10,000) a STORE that needs one more keyword is refused with
/// a NO that says why, creates nothing, and PERMANENTFLAGS stops offering `\*`; keywords that
/// exist can still be set.
#[test]
fn keywords_past_the_limit_are_refused_with_a_clear_no() {
    const LIMIT: usize = mailcove::limits::MAX_KEYWORDS_PER_MAILBOX;
    let s = Server::start();
    let mut c = login_demo(&s);
    drop_messages(&s.maildir("demo"));
    assert_tagged_ok(&c.cmd("a", "SELECT INBOX"));
    for chunk in 0..4 {
        let names: Vec<String> = (chunk * LIMIT / 4..(chunk + 1) * LIMIT / 4)
            .map(kw)
            .collect();
        assert_tagged_ok(&c.cmd(
            &format!("t{chunk}"),
            &format!("STORE 1 +FLAGS.SILENT ({})", names.join(" ")),
        ));
    }
    let r = c.cmd("x", "STORE 2 +FLAGS (kw1 onemore)");
    assert_eq!(
        r.last().map(String::as_str),
        Some("x NO [CANNOT] too many keywords in this mailbox (at most 10000)."),
        "{r:?}"
    );
    assert_eq!(search(&mut c, "s", "KEYWORD onemore"), "* SEARCH");
    assert_eq!(
        fetch_flags(&mut c, "f", 2),
        BTreeSet::new(),
        "nothing stored"
    );
    let r = c.cmd("y", "STORE 2 +FLAGS (kw1 KW9999)");
    assert_tagged_ok(&r);
    assert_eq!(fetch_flags(&mut c, "g", 2), keywords([1, 9999]));
    let r = c.cmd("b", "SELECT INBOX");
    assert_tagged_ok(&r);
    let perm = r
        .iter()
        .find(|l| l.contains("[PERMANENTFLAGS"))
        .unwrap_or_else(|| panic!("no PERMANENTFLAGS in {r:?}"));
    let perm = flag_list(perm, "[PERMANENTFLAGS");
    assert_eq!(perm.len(), LIMIT + 5, "system flags and every keyword");
    assert!(!perm.contains("\\*"), "no keyword can be created any more");
}
