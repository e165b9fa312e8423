//! The storage admin commands (`mailcove mailbox`, `expunge`, `quota get`, `index rebuild`,
//! `import`, `export`) run as a separate process against the mail of a running daemon, whose
//! IMAP sessions then see what they did. Maildir only: a separate process cannot reach the
//! memory backend's mail (the commands refuse it, which the last test checks).

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Runs `mailcove <words> -c <config> <args>`; returns (status, stdout, stderr).
fn admin(s: &Server, words: &[&str], args: &[&str]) -> (i32, String, String) {
    admin_with(&s.config_path, words, args)
}

fn admin_with(config: &Path, words: &[&str], args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(words)
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("MAILCOVE_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`admin`] that must succeed; returns stdout.
fn ok(s: &Server, words: &[&str], args: &[&str]) -> String {
    let (code, out, err) = admin(s, words, args);
    assert_eq!(code, 0, "mailcove {words:?} {args:?}: {err}");
    assert_eq!(err, "", "mailcove {words:?} {args:?}");
    out
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn two_users() -> Server {
    Server::builder()
        .users(&[
            format!("demo:{}::::::", cheap_argon2("demo")),
            format!("bob:{}::::::", cheap_argon2("pw")),
        ])
        .start()
}

fn login(s: &Server, user: &str, pw: &str) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    assert_tagged_ok(&c.cmd("l", &format!("LOGIN {user} {pw}")));
    c
}

/// APPEND with flags and an INTERNALDATE.
fn append(c: &mut Client, mailbox: &str, flags: &str, date: &str, data: &[u8]) {
    c.send(&format!(
        "a APPEND {mailbox} ({flags}) \"{date}\" {{{}}}",
        data.len()
    ));
    assert!(c.line().starts_with('+'));
    c.send_raw(data);
    c.send_raw(b"\r\n");
    let r = c.until("a ");
    assert_tagged_ok(&r);
}

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n").into_bytes()
}

#[test]
fn mailbox_commands_print_tables_and_json() {
    if skip_unless_maildir("mailbox_commands_print_tables_and_json") {
        return;
    }
    let s = Server::start();
    let u = ["-u", "demo"];
    assert_eq!(
        ok(
            &s,
            &["mailbox", "create"],
            &["-u", "demo", "-s", "Projects/2026"]
        ),
        "mailbox        result\nProjects/2026  created\n"
    );
    let out = ok(
        &s,
        &["mailbox", "create"],
        &[
            "-u",
            "demo",
            "--special-use",
            "flagged",
            "Starred",
            "--json",
        ],
    );
    assert_eq!(
        json(&out),
        serde_json::json!([{"mailbox": "Starred", "result": "created"}])
    );
    // INBOX first, the autocreated mailboxes of the default configuration, the implicit parent.
    assert_eq!(
        ok(&s, &["mailbox", "list"], &u),
        "mailbox        special_use  subscribed  selectable  children\n\
         INBOX          -            no          yes         no\n\
         Archive        \\Archive     yes         yes         no\n\
         Drafts         \\Drafts      yes         yes         no\n\
         Junk           \\Junk        yes         yes         no\n\
         Projects       -            no          no          yes\n\
         Projects/2026  -            yes         yes         no\n\
         Sent           \\Sent        yes         yes         no\n\
         Starred        \\Flagged     no          yes         no\n\
         Trash          \\Trash       yes         yes         no\n"
    );

    // Three messages, one seen and one deleted, all still \Recent (no session has selected
    // INBOX): STATUS as IMAP would give it.
    let mut c = login(&s, "demo", "demo");
    let sizes: Vec<usize> = ["one", "two", "three"]
        .iter()
        .map(|m| msg(m).len())
        .collect();
    append(
        &mut c,
        "INBOX",
        "\\Seen",
        "01-Dec-2025 10:00:00 +0000",
        &msg("one"),
    );
    append(
        &mut c,
        "INBOX",
        "",
        "02-Dec-2025 10:00:00 +0000",
        &msg("two"),
    );
    append(
        &mut c,
        "INBOX",
        "\\Deleted",
        "03-Dec-2025 10:00:00 +0000",
        &msg("three"),
    );
    let st = c.cmd("s", "STATUS INBOX (UIDVALIDITY HIGHESTMODSEQ)");
    assert_tagged_ok(&st);
    let num = |item: &str| -> u64 {
        let l = &st[0];
        let at = l.find(item).unwrap() + item.len() + 1;
        l[at..]
            .split([' ', ')'])
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let out = ok(
        &s,
        &["mailbox", "status"],
        &["-u", "demo", "--json", "INBOX"],
    );
    assert_eq!(
        json(&out),
        serde_json::json!([{
            "mailbox": "INBOX", "messages": 3, "recent": 3, "unseen": 2, "deleted": 1,
            "uidnext": 4, "uidvalidity": num("UIDVALIDITY"),
            "highestmodseq": num("HIGHESTMODSEQ"),
            "size": sizes.iter().sum::<usize>(),
        }])
    );

    // Rename moves the children; the session sees the new name.
    assert_eq!(
        ok(
            &s,
            &["mailbox", "rename"],
            &["-u", "demo", "Projects", "Done"]
        ),
        "mailbox   renamed_to\nProjects  Done\n"
    );
    let l = c.cmd("l", "LIST \"\" \"Done*\"");
    assert_tagged_ok(&l);
    assert!(l.iter().any(|x| x.ends_with(" \"/\" Done/2026")), "{l:?}");
    assert_eq!(
        ok(
            &s,
            &["mailbox", "delete"],
            &["-u", "demo", "-s", "Done/2026", "Starred"]
        ),
        "mailbox    result\nDone/2026  deleted\nStarred    deleted\n"
    );
    let names: Vec<String> = json(&ok(&s, &["mailbox", "list"], &["-u", "demo", "--json"]))
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mailbox"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    );

    // Errors: one line on stderr, exit 1, nothing on stdout.
    let (code, out, err) = admin(&s, &["mailbox", "delete"], &["-u", "demo", "Nope"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "mailcove: demo: Nope: mailbox does not exist\n");
    let (code, _, err) = admin(&s, &["mailbox", "list"], &["-u", "nobody-here"]);
    assert_eq!(code, 1);
    assert_eq!(err, "mailcove: no such user \"nobody-here\"\n");
    let (code, _, err) = admin(
        &s,
        &["mailbox", "create"],
        &["-u", "demo", "--special-use", "x", "Y"],
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with("mailcove: unknown special use \"x\""),
        "{err}"
    );
}

/// The corpus of the expunge test: (flags, INTERNALDATE, subject). `SEEN BEFORE 1-Jan-2026`
/// compares the UTC date of INTERNALDATE (RFC 3501 6.4.4 leaves the zone to the server;
/// mailcove uses UTC, see src/imap/search/mod.rs): it matches UIDs 1 and 4 only.
const CORPUS: [(&str, &str, &str); 6] = [
    // 1: seen, December: matches.
    ("\\Seen", "01-Dec-2025 10:00:00 +0000", "old seen"),
    // 2: not seen.
    ("", "01-Dec-2025 10:00:00 +0000", "old unseen"),
    // 3: seen, but January.
    ("\\Seen", "15-Jan-2026 10:00:00 +0000", "new seen"),
    // 4: seen, the last second of 2025 in UTC: matches.
    ("\\Seen", "31-Dec-2025 23:59:59 +0000", "last second"),
    // 5: deleted before, not seen: does not match, and expunge by query must leave it.
    ("\\Deleted", "01-Nov-2025 10:00:00 +0000", "deleted unseen"),
    // 6: seen, 31 December in its own zone but 1 January 00:30 in UTC: no match.
    ("\\Seen", "31-Dec-2025 23:30:00 -0100", "zone"),
];

#[test]
fn expunge_by_query_removes_exactly_the_matches() {
    if skip_unless_maildir("expunge_by_query_removes_exactly_the_matches") {
        return;
    }
    let s = two_users();
    let mut c = login(&s, "demo", "demo");
    for (flags, date, subject) in CORPUS {
        append(&mut c, "INBOX", flags, date, &msg(subject));
    }
    let mut b = login(&s, "bob", "pw");
    append(
        &mut b,
        "INBOX",
        "\\Seen",
        "01-Dec-2025 10:00:00 +0000",
        &msg("bob old"),
    );
    append(
        &mut b,
        "INBOX",
        "",
        "01-Dec-2025 10:00:00 +0000",
        &msg("bob unseen"),
    );
    // A session has INBOX selected while the command runs.
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));

    let out = ok(
        &s,
        &["expunge"],
        &["-u", "demo", "INBOX", "SEEN", "BEFORE", "1-Jan-2026"],
    );
    assert_eq!(out, "mailbox  expunged  uids\nINBOX    2         1,4\n");
    let r = c.cmd("n", "NOOP");
    assert_tagged_ok(&r);
    assert_eq!(
        r.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        2,
        "{r:?}"
    );
    let r = c.cmd("u", "UID SEARCH ALL");
    assert_eq!(r[0], "* SEARCH 2 3 5 6");
    // Nothing else matches now; a string key with a space is one IMAP string.
    let out = ok(
        &s,
        &["expunge"],
        &["-u", "demo", "--json", "INBOX", "SEEN BEFORE 1-Jan-2026"],
    );
    assert_eq!(
        json(&out),
        serde_json::json!([{"mailbox": "INBOX", "expunged": 0, "uids": ""}])
    );
    let out = ok(
        &s,
        &["expunge"],
        &["-u", "demo", "INBOX", "SUBJECT \"new seen\""],
    );
    assert_eq!(out, "mailbox  expunged  uids\nINBOX    1         3\n");

    // -A: the same query for every user, a user column first.
    let out = ok(&s, &["expunge"], &["-A", "INBOX", "OR", "DELETED", "SEEN"]);
    assert_eq!(
        out,
        "user  mailbox  expunged  uids\ndemo  INBOX    2         5:6\nbob   INBOX    1         1\n"
    );
    // The selected session learns of the expunges at its next NOOP (RFC 3501 7.4.1).
    let r = c.cmd("n", "NOOP");
    assert_eq!(
        r.iter().filter(|l| l.ends_with(" EXPUNGE")).count(),
        3,
        "{r:?}"
    );
    let r = c.cmd("u", "UID SEARCH ALL");
    assert_eq!(
        r.iter().find(|l| l.starts_with("* SEARCH")).unwrap(),
        "* SEARCH 2"
    );
    let r = b.cmd("s", "SELECT INBOX");
    assert_tagged_ok(&r);
    assert_eq!(b.cmd("u", "UID SEARCH ALL")[0], "* SEARCH 2");

    // A query IMAP would answer BAD is refused before anything is touched.
    let (code, out, err) = admin(
        &s,
        &["expunge"],
        &["-u", "demo", "INBOX", "SEEN", "BEFORE", "31-Feb-2026"],
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("mailcove: search query: "), "{err}");
    let (code, _, err) = admin(&s, &["expunge"], &["-u", "demo", "Nope", "ALL"]);
    assert_eq!(code, 1);
    assert_eq!(err, "mailcove: demo: Nope: mailbox does not exist\n");
}

/// A hand-written mboxrd file in the form export writes: `MAILER-DAEMON` senders, the flag
/// fields last in each header, one empty line after each message. Message 1 has `From ` lines
/// quoted once and twice in its body and flags in all three fields; message 2 has CRLF line
/// ends and a thrice-quoted line; message 3 has an empty body.
const MBOX: &[u8] = b"From MAILER-DAEMON Mon Dec  1 10:00:00 2025\n\
From: alice@example.org\n\
Subject: one\n\
Status: RO\n\
X-Status: AF\n\
X-Keywords: $Work todo\n\
\n\
Hello\n\
>From the start of a line\n\
>>From twice quoted\n\
\x20From not at a line start\n\
\n\
From MAILER-DAEMON Tue Dec  2 11:30:00 2025\n\
From: bob@example.org\r\n\
Subject: two\r\n\
Status: O\r\n\
\r\n\
Body two\r\n\
>>>From three\r\n\
\n\
From MAILER-DAEMON Wed Dec 31 23:59:59 2025\n\
Subject: three\n\
Status: O\n\
X-Status: D\n\
\n\
\n";

/// The messages as stored: flag fields out, one `>` less on the quoted lines.
const STORED: [&[u8]; 3] = [
    b"From: alice@example.org\nSubject: one\n\nHello\nFrom the start of a line\n>From twice quoted\n From not at a line start\n",
    b"From: bob@example.org\r\nSubject: two\r\n\r\nBody two\r\n>>From three\r\n",
    b"Subject: three\n\n",
];

/// LF to CRLF, as IMAP sends a message stored with bare LFs.
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn mbox_import_then_export_round_trips_byte_exact() {
    if skip_unless_maildir("mbox_import_then_export_round_trips_byte_exact") {
        return;
    }
    let s = two_users();
    let file = s.path().join("in.mbox");
    std::fs::write(&file, MBOX).unwrap();
    let f = file.to_str().unwrap();
    assert_eq!(
        ok(&s, &["import"], &["-u", "demo", "--mbox", f, "Imported"]),
        "mailbox   imported  uids\nImported  3         1:3\n"
    );

    // What IMAP sees: the bodies unquoted, the flags and dates of the mbox.
    let mut c = login(&s, "demo", "demo");
    assert_tagged_ok(&c.cmd("s", "SELECT Imported"));
    let bodies = c.fetch_all_bodies("f");
    let want: Vec<(u32, Vec<u8>)> = (1..=3).zip(STORED.iter().map(|m| crlf(m))).collect();
    assert_eq!(bodies, want);
    let r = c.cmd("g", "UID FETCH 1:3 (FLAGS INTERNALDATE)");
    assert_tagged_ok(&r);
    assert_eq!(
        r[..3],
        [
            "* 1 FETCH (UID 1 FLAGS (\\Answered \\Flagged \\Seen $Work todo \\Recent) INTERNALDATE \"01-Dec-2025 10:00:00 +0000\")",
            "* 2 FETCH (UID 2 FLAGS (\\Recent) INTERNALDATE \"02-Dec-2025 11:30:00 +0000\")",
            "* 3 FETCH (UID 3 FLAGS (\\Deleted \\Recent) INTERNALDATE \"31-Dec-2025 23:59:59 +0000\")",
        ]
    );

    // Export writes the file it was given, byte for byte.
    let out_file = s.path().join("out.mbox");
    let o = out_file.to_str().unwrap();
    assert_eq!(
        ok(
            &s,
            &["export"],
            &["-u", "demo", "--mbox", o, "Imported", "--json"]
        ),
        serde_json::to_string_pretty(&serde_json::json!([
            {"mailbox": "Imported", "exported": 3, "file": o}
        ]))
        .unwrap()
            + "\n"
    );
    assert_eq!(std::fs::read(&out_file).unwrap(), MBOX);
    // An existing file is not overwritten.
    let (code, _, err) = admin(&s, &["export"], &["-u", "demo", "--mbox", o, "Imported"]);
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");

    // -A: into every user's INBOX, and out again, one file per user.
    let out = ok(&s, &["import"], &["-A", "--mbox", o]);
    assert_eq!(
        out,
        "user  mailbox  imported  uids\ndemo  INBOX    3         1:3\nbob   INBOX    3         1:3\n"
    );
    let template = s.path().join("all-%u.mbox");
    let (code, _, err) = admin(&s, &["export"], &["-A", "--mbox", f]);
    assert_eq!(code, 1);
    assert!(err.contains("%u"), "{err}");
    ok(
        &s,
        &["export"],
        &["-A", "--mbox", template.to_str().unwrap()],
    );
    for user in ["demo", "bob"] {
        let got = std::fs::read(s.path().join(format!("all-{user}.mbox"))).unwrap();
        assert_eq!(got, MBOX, "{user}");
    }

    // Not an mbox file: refused, nothing stored.
    let bad = s.path().join("bad.mbox");
    std::fs::write(&bad, "Subject: no From_ line\n\nx\n").unwrap();
    let (code, _, err) = admin(
        &s,
        &["import"],
        &["-u", "demo", "--mbox", bad.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not an mbox file"), "{err}");
}

#[test]
fn index_rebuild_keeps_uids_and_flags_and_drops_the_cache() {
    if skip_unless_maildir("index_rebuild_keeps_uids_and_flags_and_drops_the_cache") {
        return;
    }
    let s = Server::start();
    let mut c = login(&s, "demo", "demo");
    for (flags, date, subject) in CORPUS {
        append(&mut c, "INBOX", flags, date, &msg(subject));
    }
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // UIDs 2 and 3 leave: the rebuilt index must not give their UIDs again.
    assert_tagged_ok(&c.cmd("d", "UID STORE 2:3 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&c.cmd("e", "UID EXPUNGE 2:3"));
    assert_tagged_ok(&c.cmd("b", "FETCH 1:* BODYSTRUCTURE"));
    let before = c.cmd("f", "UID FETCH 1:* (FLAGS INTERNALDATE)");
    assert_tagged_ok(&before);
    let uidvalidity = c.cmd("x", "STATUS INBOX (UIDVALIDITY)")[0]
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let dir = s.maildir("demo");
    assert!(dir.join("mailcove-cache").exists());
    // A message an MTA dropped in by hand: the rescan gives it the next UID.
    std::fs::write(dir.join("new").join("1.hand.host"), msg("by hand")).unwrap();

    let out = ok(&s, &["index", "rebuild"], &["-u", "demo", "INBOX"]);
    assert_eq!(
        out,
        format!(
            "mailbox  messages  uidvalidity  uidnext\nINBOX    5         {uidvalidity:<11}  8\n"
        )
    );
    assert!(!dir.join("mailcove-cache").exists());

    // The session that was open and a new one both see the same UIDs, flags and dates.
    let r = c.cmd("n", "NOOP");
    assert_tagged_ok(&r);
    assert!(!r.iter().any(|l| l.contains("EXPUNGE")), "{r:?}");
    let mut d = login(&s, "demo", "demo");
    let sel = d.cmd("s", "SELECT INBOX");
    assert!(
        sel.iter()
            .any(|l| l == &format!("* OK [UIDVALIDITY {uidvalidity}] UIDs valid")),
        "{sel:?}"
    );
    let after = d.cmd("f", "UID FETCH 1:6 (FLAGS INTERNALDATE)");
    let flags_only = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.replace(" \\Recent", "").replace("\\Recent ", ""))
            .collect()
    };
    assert_eq!(flags_only(&after), flags_only(&before));
    let r = d.cmd("h", "UID SEARCH SUBJECT \"by hand\"");
    assert_eq!(r[0], "* SEARCH 7");
    let bodies = d.fetch_all_bodies("g");
    assert_eq!(
        bodies.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        [1, 4, 5, 6, 7]
    );
    assert_eq!(bodies[0].1, msg("old seen"));

    // Without a mailbox: every selectable one.
    let out = json(&ok(&s, &["index", "rebuild"], &["-u", "demo", "--json"]));
    let names: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mailbox"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    );
}

#[test]
fn quota_get_and_recalc_for_one_or_every_user() {
    if skip_unless_maildir("quota_get_and_recalc_for_one_or_every_user") {
        return;
    }
    let s = Server::builder()
        .users(&[
            format!(
                "demo:{}::::::userdb_quota_rule=*:storage=1M",
                cheap_argon2("demo")
            ),
            format!("bob:{}::::::", cheap_argon2("pw")),
        ])
        .start();
    s.append_messages("demo", "demo", "INBOX", &[&msg("one"), &msg("two")]);
    let used = msg("one").len() + msg("two").len();
    assert_eq!(
        ok(&s, &["quota", "get"], &["-u", "demo"]),
        format!(
            "storage_used  storage_limit  messages_used  messages_limit\n\
             {used:<12}  1048576        2              -\n"
        )
    );
    assert_eq!(
        json(&ok(&s, &["quota", "get"], &["-A", "--json"])),
        serde_json::json!([
            {"user": "demo", "storage_used": used, "storage_limit": 1_048_576,
             "messages_used": 2, "messages_limit": null},
            {"user": "bob", "storage_used": 0, "storage_limit": null,
             "messages_used": 0, "messages_limit": null},
        ])
    );
    // recalc keeps its one-line report (and its --config/--user flags).
    let (code, out, err) = admin_with(&s.config_path, &["quota", "recalc"], &["--user", "demo"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("demo: storage {used} of 1048576 bytes, messages 2 of unlimited\n")
    );
    assert_eq!(
        ok(&s, &["quota", "recalc"], &["-A"]),
        format!(
            "demo: storage {used} of 1048576 bytes, messages 2 of unlimited\n\
             bob: storage 0 of unlimited bytes, messages 0 of unlimited\n"
        )
    );
}

#[test]
fn the_memory_backend_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, format!("demo:{}::::::\n", cheap_argon2("demo"))).unwrap();
    let config = dir.path().join("mailcove.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nuser = \"nobody\"\ngroup = \"nogroup\"\n\n[[listener]]\nprotocol = \"imap\"\naddress = \"127.0.0.1:1\"\ntls = \"none\"\n\n[mail]\nlocation = \"memory:\"\n\n[auth]\nusers_file = \"{}\"\n",
            users.display()
        ),
    )
    .unwrap();
    let (code, out, err) = admin_with(&config, &["mailbox", "list"], &["-u", "demo"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(
        err.starts_with("mailcove: mail.location = \"memory:\" keeps mail in the daemon's memory"),
        "{err}"
    );
}
