//! OBJECTID (RFC 8474) and SAVEDATE (RFC 8514) on the wire, against the real binary.
//!
//! * MAILBOXID: in CREATE's tagged OK (4.1), SELECT/EXAMINE's untagged OK (4.2), STATUS and
//!   LIST RETURN (STATUS) (4.3); RENAME keeps it, DELETE then CREATE makes a new one, RENAME
//!   INBOX makes a new mailbox (8.2).
//! * EMAILID: kept by COPY and MOVE (5.1); THREADID NIL and SEARCH THREADID matching nothing, as
//!   the RFC requires of a server that does not track threads (5.2); SEARCH EMAILID (6).
//! * SAVEDATE: the time of the APPEND or COPY, while INTERNALDATE is carried over (RFC 8514 3);
//!   SAVEDBEFORE/SAVEDON/SAVEDSINCE compare days of it, SAVEDATESUPPORTED (4.3).
//! * On Maildir: save dates of hand-placed files (the time their names start with, INTERNALDATE
//!   from their mtimes, the INTERNALDATE fallback for a name without a time), and every id and
//!   date the same after a restart and after the index is thrown away.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Waits (at most a second) for the clock to pass to the next second.
fn next_second() {
    let t = now();
    while now() == t {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `objectid` in `NAME (objectid)` of a line.
fn paren(line: &str, name: &str) -> String {
    let key = format!("{name} (");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + key.len();
    let rest = &line[at..];
    let id = &rest[..rest.find(')').unwrap_or_else(|| panic!("no ) in {line:?}"))];
    assert!(
        !id.is_empty()
            && id.len() <= 255
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "not an objectid: {id:?}"
    );
    id.to_string()
}

/// The MAILBOXID of the line of `lines` carrying one.
fn mailbox_id(lines: &[String]) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains("MAILBOXID ("))
        .unwrap_or_else(|| panic!("no MAILBOXID in {lines:?}"));
    paren(line, "MAILBOXID")
}

/// `STATUS name (MAILBOXID)`.
fn status_id(c: &mut Client, name: &str) -> String {
    let r = c.cmd("st", &format!("STATUS {name} (MAILBOXID)"));
    assert_tagged_ok(&r);
    assert_eq!(r.len(), 2, "{r:?}");
    mailbox_id(&r)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `d-Mon-yyyy` (a SEARCH date) of the UTC day of `secs`.
fn search_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{d}-{}-{y}", MONTHS[(m - 1) as usize])
}

/// Unix seconds of a quoted `"dd-Mon-yyyy hh:mm:ss +zzzz"` after `NAME ` in a line; `None` for
/// NIL.
fn date_item(line: &str, name: &str) -> Option<i64> {
    let key = format!("{name} ");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
        + key.len();
    let rest = &line[at..];
    if rest.starts_with("NIL") {
        return None;
    }
    let v = &rest[1..rest[1..].find('"').map(|e| e + 1).expect("closing quote")];
    let (date, time_zone) = v.split_once(' ').expect("date time");
    let mut dp = date.trim().split('-');
    let d: i64 = dp.next().unwrap().trim().parse().unwrap();
    let mon = dp.next().unwrap();
    let y: i64 = dp.next().unwrap().parse().unwrap();
    let m = MONTHS.iter().position(|x| *x == mon).expect("month") as i64 + 1;
    let (time, zone) = time_zone.split_once(' ').expect("zone");
    let hms: Vec<i64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zh: i64 = zone[1..3].parse().unwrap();
    let zm: i64 = zone[3..5].parse().unwrap();
    Some(
        days_from_civil(y, m, d) * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
            - sign * (zh * 3600 + zm * 60),
    )
}

/// The numbers of the `* SEARCH` line of an answer.
fn search(c: &mut Client, tag: &str, keys: &str) -> Vec<u32> {
    let r = c.cmd(tag, keys);
    assert_tagged_ok(&r);
    let line = r
        .iter()
        .find(|l| l.starts_with("* SEARCH"))
        .unwrap_or_else(|| panic!("no SEARCH in {r:?}"));
    line["* SEARCH".len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The `* n FETCH` lines of an answer.
fn fetched(r: &[String]) -> Vec<String> {
    assert_tagged_ok(r);
    r.iter()
        .filter(|l| l.starts_with("* ") && l.contains(" FETCH ("))
        .cloned()
        .collect()
}

/// APPENDs `data` with an INTERNALDATE, as a LITERAL+ literal.
fn append_dated(c: &mut Client, mailbox: &str, date: &str, data: &[u8]) -> Vec<String> {
    let mut cmd = format!("ap APPEND {mailbox} \"{date}\" {{{}+}}\r\n", data.len()).into_bytes();
    cmd.extend_from_slice(data);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    c.until("ap ")
}

#[test]
fn capabilities_announce_objectid_and_savedate() {
    let s = Server::start();
    let mut c = login_demo(&s);
    let r = c.cmd("c", "CAPABILITY");
    assert_tagged_ok(&r);
    let caps: Vec<&str> = r[0].split(' ').collect();
    assert!(caps.contains(&"OBJECTID"), "{r:?}");
    assert!(caps.contains(&"SAVEDATE"), "{r:?}");
}

#[test]
fn mailboxid_follows_the_mailbox_not_the_name() {
    let s = Server::start();
    let mut c = login_demo(&s);
    // RFC 8474 4.1: the tagged OK of every successful CREATE.
    let r = c.cmd("1", "CREATE foo");
    assert!(r.last().unwrap().starts_with("1 OK [MAILBOXID ("), "{r:?}");
    let foo_id = mailbox_id(&r);
    let r = c.cmd("2", "CREATE bar");
    assert!(r.last().unwrap().starts_with("2 OK [MAILBOXID ("), "{r:?}");
    let bar_id = mailbox_id(&r);
    assert_ne!(foo_id, bar_id);
    let r = c.cmd("3", "CREATE foo");
    assert!(r.last().unwrap().starts_with("3 NO"), "{r:?}");
    assert!(!r.last().unwrap().contains("MAILBOXID"), "{r:?}");

    // 4.3: STATUS, alone and among the numbers.
    assert_eq!(status_id(&mut c, "foo"), foo_id);
    let r = c.cmd("4", "STATUS foo (MESSAGES MAILBOXID UIDNEXT)");
    assert_tagged_ok(&r);
    assert_eq!(
        r[0],
        format!("* STATUS foo (MESSAGES 0 UIDNEXT 1 MAILBOXID ({foo_id}))")
    );

    // 4.2: SELECT and EXAMINE.
    let r = c.cmd("5", "SELECT foo");
    assert_tagged_ok(&r);
    assert!(
        r.contains(&format!("* OK [MAILBOXID ({foo_id})] Ok")),
        "{r:?}"
    );
    let r = c.cmd("6", "EXAMINE bar");
    assert_tagged_ok(&r);
    assert!(
        r.contains(&format!("* OK [MAILBOXID ({bar_id})] Ok")),
        "{r:?}"
    );
    assert_tagged_ok(&c.cmd("7", "UNSELECT"));

    // 4: RENAME keeps it.
    assert_tagged_ok(&c.cmd("8", "RENAME foo renamed"));
    assert_eq!(status_id(&mut c, "renamed"), foo_id);
    assert_eq!(status_id(&mut c, "bar"), bar_id);
    let inbox = status_id(&mut c, "INBOX");
    assert!(inbox != foo_id && inbox != bar_id);

    // With LIST-STATUS (RFC 5819), as in RFC 8474 4.3's example.
    let r = c.cmd("9", "LIST \"\" \"*\" RETURN (STATUS (MAILBOXID))");
    assert_tagged_ok(&r);
    for (name, id) in [("INBOX", &inbox), ("bar", &bar_id), ("renamed", &foo_id)] {
        assert!(
            r.contains(&format!("* STATUS {name} (MAILBOXID ({id}))")),
            "{name}: {r:?}"
        );
    }

    // A mailbox deleted and made again is another mailbox.
    assert_tagged_ok(&c.cmd("10", "DELETE renamed"));
    let r = c.cmd("11", "STATUS renamed (MAILBOXID)");
    assert!(r.last().unwrap().starts_with("11 NO"), "{r:?}");
    let r = c.cmd("12", "CREATE renamed");
    assert_tagged_ok(&r);
    let again = mailbox_id(&r);
    assert_ne!(again, foo_id);
    assert_eq!(status_id(&mut c, "renamed"), again);

    // RENAME INBOX makes a new mailbox and moves the messages (RFC 8474 8.2, RFC 3501 6.3.5).
    assert_tagged_ok(&c.cmd("13", "RENAME INBOX oldinbox"));
    assert_eq!(status_id(&mut c, "INBOX"), inbox);
    let old = status_id(&mut c, "oldinbox");
    assert!(old != inbox && old != foo_id && old != bar_id && old != again);

    // Not a STATUS item of another kind: still BAD for an unknown one.
    let r = c.cmd("14", "STATUS bar (MAILBOXIDS)");
    assert!(r.last().unwrap().starts_with("14 BAD"), "{r:?}");
}

#[test]
fn emailid_is_kept_by_copy_and_move_and_threadid_is_nil() {
    let s = Server::start();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &[
            b"Subject: a\r\n\r\none\r\n",
            b"Subject: b\r\n\r\ntwo\r\n",
            b"Subject: c\r\n\r\nthree\r\n",
        ],
    );
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("1", "CREATE Dest"));
    assert_tagged_ok(&c.cmd("2", "SELECT INBOX"));
    let lines = fetched(&c.cmd("3", "FETCH 1:3 (EMAILID THREADID)"));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let ids: Vec<String> = lines.iter().map(|l| paren(l, "EMAILID")).collect();
    for l in &lines {
        // RFC 8474 5.2: NIL when threads are not tracked.
        assert!(l.contains("THREADID NIL"), "{l:?}");
    }
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "{ids:?}"
    );
    // The same id every time it is asked (5.1: immutable), also by UID FETCH.
    let again = fetched(&c.cmd("4", "UID FETCH 1:3 (EMAILID)"));
    let again: Vec<String> = again.iter().map(|l| paren(l, "EMAILID")).collect();
    assert_eq!(again, ids);

    // RFC 8474 6: SEARCH EMAILID, THREADID.
    assert_eq!(
        search(&mut c, "5", &format!("SEARCH EMAILID {}", ids[1])),
        [2]
    );
    assert_eq!(
        search(
            &mut c,
            "6",
            &format!("SEARCH OR EMAILID {} EMAILID {}", ids[0], ids[2])
        ),
        [1, 3]
    );
    assert_eq!(
        search(&mut c, "7", "SEARCH EMAILID Mnothing"),
        Vec::<u32>::new()
    );
    assert_eq!(
        search(&mut c, "8", "SEARCH THREADID T1"),
        Vec::<u32>::new(),
        "5.2: no message matches a THREADID when threads are not tracked"
    );
    assert_eq!(
        search(&mut c, "9", &format!("SEARCH NOT EMAILID {}", ids[0])),
        [2, 3]
    );
    // objectid = 1*255(ALPHA / DIGIT / "_" / "-").
    for (tag, bad) in [
        ("b1", "SEARCH EMAILID"),
        ("b2", "SEARCH EMAILID a.b"),
        ("b3", "SEARCH EMAILID \"M1\""),
        ("b4", "SEARCH THREADID"),
    ] {
        let r = c.cmd(tag, bad);
        assert!(
            r.last().unwrap().starts_with(&format!("{tag} BAD")),
            "{r:?}"
        );
    }
    let long = format!("SEARCH EMAILID {}", "a".repeat(256));
    let r = c.cmd("b5", &long);
    assert!(r.last().unwrap().starts_with("b5 BAD"), "{r:?}");
    let r = c.cmd("b6", "FETCH 1 EMAILID[1]");
    assert!(r.last().unwrap().starts_with("b6 BAD"), "{r:?}");

    // 5.1: COPY and MOVE keep EMAILID for the COPYUID pairs.
    let r = c.cmd("10", "COPY 1 Dest");
    assert_tagged_ok(&r);
    assert!(r.last().unwrap().contains("[COPYUID "), "{r:?}");
    let r = c.cmd("11", "MOVE 2 Dest");
    assert_tagged_ok(&r);
    // INBOX is now messages 1 and 3 of before.
    assert_eq!(
        search(&mut c, "12", &format!("SEARCH EMAILID {}", ids[1])),
        Vec::<u32>::new()
    );
    assert_eq!(
        search(&mut c, "13", &format!("SEARCH EMAILID {}", ids[2])),
        [2]
    );
    assert_eq!(
        search(&mut c, "14", &format!("UID SEARCH EMAILID {}", ids[2])),
        [3]
    );
    assert_tagged_ok(&c.cmd("15", "SELECT Dest"));
    let lines = fetched(&c.cmd("16", "UID FETCH 1:* (EMAILID THREADID)"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("UID 1 "), "{lines:?}");
    assert_eq!(paren(&lines[0], "EMAILID"), ids[0], "the copy");
    assert_eq!(paren(&lines[1], "EMAILID"), ids[1], "the moved message");
    assert_eq!(
        search(&mut c, "17", &format!("SEARCH EMAILID {}", ids[1])),
        [2]
    );
}

#[test]
fn savedate_is_the_save_time_and_internaldate_is_kept() {
    let s = Server::start();
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("1", "CREATE Dest"));
    let t0 = now();
    let r = append_dated(
        &mut c,
        "INBOX",
        "01-Jan-2000 00:00:00 +0000",
        b"Subject: old\r\n\r\nold\r\n",
    );
    assert_tagged_ok(&r);
    let t1 = now();
    assert_tagged_ok(&c.cmd("2", "SELECT INBOX"));
    let l = fetched(&c.cmd("3", "FETCH 1 (INTERNALDATE SAVEDATE)"));
    assert_eq!(date_item(&l[0], "INTERNALDATE"), Some(946_684_800));
    let saved = date_item(&l[0], "SAVEDATE").expect("a save date");
    assert!(t0 <= saved && saved <= t1, "{l:?}");

    // RFC 8514 3: a copy's save date is the time of the COPY; INTERNALDATE stays.
    next_second();
    let c0 = now();
    assert_tagged_ok(&c.cmd("4", "COPY 1 Dest"));
    let c1 = now();
    assert_tagged_ok(&c.cmd("5", "SELECT Dest"));
    let l = fetched(&c.cmd("6", "FETCH 1 (SAVEDATE INTERNALDATE)"));
    assert_eq!(date_item(&l[0], "INTERNALDATE"), Some(946_684_800));
    let copied = date_item(&l[0], "SAVEDATE").expect("a save date");
    assert!(c0 <= copied && copied <= c1 && copied > saved, "{l:?}");

    // 4.3: the SAVED keys compare the day of the save date, not INTERNALDATE's.
    let day = search_date(copied);
    assert_eq!(
        search(&mut c, "7", "SEARCH SAVEDBEFORE 1-Jan-2001"),
        Vec::<u32>::new()
    );
    assert_eq!(search(&mut c, "8", "SEARCH BEFORE 1-Jan-2001"), [1]);
    assert_eq!(search(&mut c, "9", &format!("SEARCH SAVEDON {day}")), [1]);
    assert_eq!(
        search(&mut c, "10", &format!("SEARCH SAVEDSINCE {day}")),
        [1]
    );
    assert_eq!(
        search(&mut c, "11", &format!("SEARCH SAVEDBEFORE {day}")),
        Vec::<u32>::new()
    );
    assert_eq!(
        search(
            &mut c,
            "12",
            &format!("SEARCH SAVEDSINCE {}", search_date(copied + 86_400))
        ),
        Vec::<u32>::new()
    );
    assert_eq!(search(&mut c, "13", "SEARCH SAVEDATESUPPORTED"), [1]);
    assert_eq!(
        search(&mut c, "14", "SEARCH NOT SAVEDATESUPPORTED"),
        Vec::<u32>::new()
    );
    for (tag, bad) in [
        ("b1", "SEARCH SAVEDON 32-Jan-2020"),
        ("b2", "SEARCH SAVEDSINCE"),
        ("b3", "FETCH 1 SAVEDATE[]"),
    ] {
        let r = c.cmd(tag, bad);
        assert!(
            r.last().unwrap().starts_with(&format!("{tag} BAD")),
            "{r:?}"
        );
    }
}

/// Writes a message file into `new/` with a given mtime (its INTERNALDATE).
fn place(dir: &std::path::Path, name: &str, data: &[u8], mtime: i64) {
    let path = dir.join("new").join(name);
    std::fs::write(&path, data).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime as u64))
        .unwrap();
}

#[test]
fn saved_keys_on_a_hand_built_maildir() {
    if skip_unless_maildir("saved_keys_on_a_hand_built_maildir") {
        return;
    }
    let s = Server::start();
    // The first login makes the Maildir.
    let mut c = login_demo(&s);
    let root = s.maildir("demo");
    // 1990-01-01 00:00:00 UTC, 2004-11-09 11:33:20 UTC.
    const Y1990: i64 = 631_152_000;
    const Y2004: i64 = 1_100_000_000;
    // Delivered by an MTA: the names start with the delivery time (2001-09-09 01:46:40 and
    // 2001-09-10 05:33:20 UTC); the third name has no time.
    place(
        &root,
        "1000000000.M1P1Q1.mta",
        b"Subject: A\r\n\r\na\r\n",
        Y1990,
    );
    place(
        &root,
        "1000100000.M1P1Q2.mta",
        b"Subject: BB\r\n\r\nbb\r\n",
        Y1990,
    );
    place(&root, "no-time-here", b"Subject: CCC\r\n\r\nccc\r\n", Y2004);
    assert_tagged_ok(&c.cmd("1", "SELECT INBOX"));
    let lines = fetched(&c.cmd("2", "FETCH 1:* (RFC822.SIZE SAVEDATE INTERNALDATE)"));
    assert_eq!(lines.len(), 3, "{lines:?}");
    // Message number by size: A 17, B 19, C 21 octets.
    let seq_of = |size: u32| -> u32 {
        let l = lines
            .iter()
            .find(|l| l.contains(&format!("RFC822.SIZE {size}")))
            .unwrap_or_else(|| panic!("no message of {size} octets: {lines:?}"));
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (a, b, cc) = (seq_of(17), seq_of(19), seq_of(21));
    let line = |seq: u32| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("* {seq} ")))
            .unwrap()
    };
    assert_eq!(date_item(line(a), "SAVEDATE"), Some(1_000_000_000));
    assert_eq!(date_item(line(b), "SAVEDATE"), Some(1_000_100_000));
    assert_eq!(date_item(line(cc), "SAVEDATE"), None, "{lines:?}");
    assert_eq!(date_item(line(a), "INTERNALDATE"), Some(Y1990));
    assert_eq!(date_item(line(cc), "INTERNALDATE"), Some(Y2004));

    let sorted = |mut v: Vec<u32>| {
        v.sort_unstable();
        v
    };
    assert_eq!(search(&mut c, "3", "SEARCH SAVEDON 9-Sep-2001"), [a]);
    assert_eq!(search(&mut c, "4", "SEARCH SAVEDBEFORE 10-Sep-2001"), [a]);
    // C has no save date: RFC 8514 4.3 falls back to its INTERNALDATE (2004).
    assert_eq!(
        search(&mut c, "5", "SEARCH SAVEDSINCE 10-Sep-2001"),
        sorted(vec![b, cc])
    );
    assert_eq!(search(&mut c, "6", "SEARCH SAVEDON 9-Nov-2004"), [cc]);
    assert_eq!(search(&mut c, "7", "SEARCH SINCE 1-Jan-2000"), [cc]);
    assert_eq!(
        search(&mut c, "8", "SEARCH SAVEDATESUPPORTED"),
        sorted(vec![a, b, cc])
    );
    assert_eq!(
        search(
            &mut c,
            "9",
            "SEARCH SAVEDSINCE 1-Jan-1991 SAVEDBEFORE 1-Jan-2002"
        ),
        sorted(vec![a, b])
    );
}

/// MAILBOXIDs of INBOX and foo, and `(EMAILID, SAVEDATE)` of the messages of each.
type Picture = (
    String,
    String,
    Vec<(String, Option<i64>)>,
    Vec<(String, Option<i64>)>,
);

fn picture(s: &Server) -> Picture {
    let mut c = login_demo(s);
    let inbox = status_id(&mut c, "INBOX");
    let foo_id = status_id(&mut c, "foo");
    let mut msgs = |mb: &str| {
        assert_tagged_ok(&c.cmd("s", &format!("SELECT {mb}")));
        let mut v: Vec<(String, Option<i64>)> =
            fetched(&c.cmd("f", "FETCH 1:* (EMAILID SAVEDATE)"))
                .iter()
                .map(|l| (paren(l, "EMAILID"), date_item(l, "SAVEDATE")))
                .collect();
        v.sort();
        v
    };
    let a = msgs("INBOX");
    let b = msgs("foo");
    (inbox, foo_id, a, b)
}

#[test]
fn ids_and_save_dates_survive_restart_and_index_rebuild() {
    if skip_unless_maildir("ids_and_save_dates_survive_restart_and_index_rebuild") {
        return;
    }
    let mut s = Server::start();
    s.append_messages(
        "demo",
        "demo",
        "INBOX",
        &[b"Subject: a\r\n\r\none\r\n", b"Subject: b\r\n\r\ntwo\r\n"],
    );
    {
        let mut c = login_demo(&s);
        assert_tagged_ok(&c.cmd("1", "CREATE foo"));
        assert_tagged_ok(&c.cmd("2", "SELECT INBOX"));
        next_second();
        assert_tagged_ok(&c.cmd("3", "COPY 1:2 foo"));
        assert_tagged_ok(&c.cmd("4", "LOGOUT"));
    }
    let before = picture(&s);
    assert_eq!(before.2.len(), 2);
    assert_eq!(
        before.2.iter().map(|m| &m.0).collect::<Vec<_>>(),
        before.3.iter().map(|m| &m.0).collect::<Vec<_>>(),
        "copies keep EMAILID"
    );
    assert!(
        before.2.iter().zip(&before.3).all(|(a, b)| a.1 < b.1),
        "{before:?}"
    );

    s.restart();
    assert_eq!(picture(&s), before, "after a restart");

    // Throw the indexes away: ids and dates come from what Maildir itself keeps.
    s.kill();
    let root = s.maildir("demo");
    let mut removed = 0;
    for dir in [root.clone(), root.join(".foo")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_name()
                .to_string_lossy()
                .starts_with("mailcove-index")
            {
                std::fs::remove_file(e.path()).unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed >= 2, "no index to remove");
    s.restart();
    assert_eq!(picture(&s), before, "after an index rebuild");
}
