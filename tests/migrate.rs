//! `mailcove migrate` between real servers (issue 18): a Maildir server, a PostgreSQL server
//! (tests/common/postgres.rs) and back to Maildir, everything checked over IMAP as a client sees
//! it: UIDVALIDITY, UIDNEXT, UIDs, FLAGS, INTERNALDATE, the bytes of every message, subscriptions
//! and special-use. Also: a second run copies nothing, a killed run and a run limited to one
//! user are completed by the next, a target mailbox under another UIDVALIDITY is refused, and
//! mail delivered to the source while the migration runs ends up in the target.
//!
//! The servers pick their own backends here, so the tests run on Maildir only (they skip under
//! `MAILCOVE_TEST_BACKEND`, which would put every server on one backend).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn users() -> Vec<String> {
    ["demo", "bob", "carol"]
        .iter()
        .map(|u| format!("{u}:{}::::::", cheap_argon2(u)))
        .collect()
}

fn maildir_server() -> Server {
    Server::builder().users(&users()).start()
}

fn pg_server() -> Server {
    Server::builder()
        .users(&users())
        .mail_location(&postgres::fresh_database())
        .start()
}

/// Runs `mailcove migrate --from <from> --to <to> <extra>`; returns (status, stdout, stderr).
fn migrate(from: &Server, to: &Server, extra: &[&str]) -> (i32, String, String) {
    let out = migrate_cmd(&from.config_path, &to.config_path, extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn migrate_cmd(from: &Path, to: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("migrate")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to)
        .args(extra)
        .env_remove("MAILCOVE_LOG");
    c
}

fn migrate_ok(from: &Server, to: &Server, extra: &[&str]) -> (String, String) {
    let (code, out, err) = migrate(from, to, extra);
    assert_eq!(code, 0, "migrate failed:\n{out}\n{err}");
    (out, err)
}

fn login(s: &Server, user: &str) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    assert_tagged_ok(&c.cmd("l", &format!("LOGIN {user} {user}")));
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
    assert_tagged_ok(&c.until("a "));
}

fn msg(subject: &str) -> Vec<u8> {
    format!("From: a@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n").into_bytes()
}

/// One message as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    uid: u32,
    /// FLAGS without `\Recent`, which is per session and never stored.
    flags: BTreeSet<String>,
    internal_date: String,
    body: Vec<u8>,
}

/// What a client sees of one mailbox: STATUS (UIDVALIDITY UIDNEXT MESSAGES) and every message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MailboxSeen {
    status: String,
    messages: Vec<Seen>,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("no {start:?} in {s:?}"));
    let rest = &s[from..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} in {rest:?}"))]
}

fn mailbox_seen(c: &mut Client, mailbox: &str) -> MailboxSeen {
    let r = c.cmd(
        "s",
        &format!("STATUS {mailbox} (UIDVALIDITY UIDNEXT MESSAGES)"),
    );
    assert_tagged_ok(&r);
    let status = r
        .iter()
        .find(|l| l.starts_with("* STATUS"))
        .map(|l| between(l, " (", ")").to_string())
        .unwrap_or_else(|| panic!("no STATUS: {r:?}"));
    assert_tagged_ok(&c.cmd("e", &format!("EXAMINE {mailbox}")));
    c.send("f UID FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[])");
    let mut messages = Vec::new();
    loop {
        let l = c.line();
        if l.starts_with("f ") {
            assert!(l.starts_with("f OK"), "{l}");
            break;
        }
        if !l.contains(" FETCH (") {
            continue;
        }
        let uid: u32 = between(&l, "UID ", " ")
            .trim_end_matches(')')
            .parse()
            .unwrap();
        let flags = between(&l, "FLAGS (", ")")
            .split(' ')
            .filter(|f| !f.is_empty() && *f != "\\Recent")
            .map(str::to_string)
            .collect();
        let internal_date = between(&l, "INTERNALDATE \"", "\"").to_string();
        let len: usize = between(&l, "BODY[] {", "}").parse().unwrap();
        let body = c.bytes(len);
        assert_eq!(c.line(), ")");
        messages.push(Seen {
            uid,
            flags,
            internal_date,
            body,
        });
    }
    MailboxSeen { status, messages }
}

/// Subscriptions (LSUB names) and special-use attributes (LIST ... RETURN (SPECIAL-USE)).
fn tree_seen(c: &mut Client) -> (BTreeSet<String>, BTreeSet<String>) {
    let r = c.cmd("ls", "LSUB \"\" \"*\"");
    assert_tagged_ok(&r);
    let subs = r
        .iter()
        .filter(|l| l.starts_with("* LSUB"))
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    let r = c.cmd("li", "LIST \"\" \"*\" RETURN (SPECIAL-USE)");
    assert_tagged_ok(&r);
    let special = r
        .iter()
        .filter(|l| l.starts_with("* LIST"))
        .filter_map(|l| {
            let attrs = between(l, "(", ")");
            let name = l.rsplit(' ').next().unwrap_or_default();
            ["\\Archive", "\\Sent", "\\Trash", "\\Drafts", "\\Junk"]
                .iter()
                .find(|a| attrs.contains(*a))
                .map(|a| format!("{name} {a}"))
        })
        .collect();
    (subs, special)
}

/// Everything `user` sees in `mailboxes` and its tree.
fn user_seen(
    s: &Server,
    user: &str,
    mailboxes: &[&str],
) -> (Vec<MailboxSeen>, (BTreeSet<String>, BTreeSet<String>)) {
    let mut c = login(s, user);
    let boxes = mailboxes.iter().map(|m| mailbox_seen(&mut c, m)).collect();
    (boxes, tree_seen(&mut c))
}

/// The UIDVALIDITY a STATUS answer names.
fn uidvalidity(seen: &MailboxSeen) -> String {
    seen.status
        .split(' ')
        .skip_while(|w| *w != "UIDVALIDITY")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn maildir_to_postgresql_and_back_keeps_what_clients_cached() {
    if skip_unless_maildir("maildir_to_postgresql_and_back_keeps_what_clients_cached") {
        return;
    }
    let a = maildir_server();
    let mut c = login(&a, "demo");
    let (m1, m2, m3) = (msg("one"), msg("two"), msg("three"));
    append(
        &mut c,
        "INBOX",
        "\\Seen $Work",
        "01-Jan-2020 10:00:00 +0000",
        &m1,
    );
    append(&mut c, "INBOX", "", "02-Feb-2021 11:30:00 +0000", &m2);
    append(
        &mut c,
        "INBOX",
        "\\Flagged \\Answered",
        "03-Mar-2022 12:00:00 +0000",
        &m3,
    );
    // A gap in the UIDs: UID 2 is gone, UIDNEXT stays 4.
    assert_tagged_ok(&c.cmd("x", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("x", "UID STORE 2 +FLAGS (\\Deleted)"));
    assert_tagged_ok(&c.cmd("x", "EXPUNGE"));
    // Archive, Drafts, Junk, Sent and Trash come from the default [[mail.autocreate]], subscribed.
    append(
        &mut c,
        "Archive",
        "\\Draft Later",
        "04-Apr-2019 08:15:00 +0000",
        &msg("old"),
    );
    assert_tagged_ok(&c.cmd("x", "CREATE Lists/rust"));
    assert_tagged_ok(&c.cmd("x", "SUBSCRIBE Lists/rust"));
    assert_tagged_ok(&c.cmd("x", "UNSUBSCRIBE Junk"));
    drop(c);
    let mut c = login(&a, "bob");
    append(
        &mut c,
        "INBOX",
        "\\Seen",
        "05-May-2023 09:00:00 +0000",
        &msg("bob's"),
    );
    drop(c);
    let boxes = ["INBOX", "Archive", "Lists/rust", "Sent"];
    let demo_a = user_seen(&a, "demo", &boxes);
    let bob_a = user_seen(&a, "bob", &["INBOX"]);

    // What a client cached from the source, by hand: UIDs 1 and 3 in INBOX, UIDNEXT 4.
    let inbox = demo_a.0.first().unwrap();
    assert!(
        inbox.status.contains("UIDNEXT 4 MESSAGES 2"),
        "{}",
        inbox.status
    );
    let want: Vec<(u32, Vec<&str>, &str, &[u8])> = vec![
        (
            1,
            vec!["$Work", "\\Seen"],
            "01-Jan-2020 10:00:00 +0000",
            &m1,
        ),
        (
            3,
            vec!["\\Answered", "\\Flagged"],
            "03-Mar-2022 12:00:00 +0000",
            &m3,
        ),
    ];
    let got: Vec<(u32, Vec<&str>, &str, &[u8])> = inbox
        .messages
        .iter()
        .map(|m| {
            (
                m.uid,
                m.flags.iter().map(String::as_str).collect(),
                m.internal_date.as_str(),
                m.body.as_slice(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(demo_a.1.0.contains("Lists/rust") && demo_a.1.0.contains("Archive"));
    assert!(!demo_a.1.0.contains("Junk"));
    assert!(demo_a.1.1.contains("Archive \\Archive"), "{:?}", demo_a.1.1);

    // Maildir -> PostgreSQL: everything a client cached holds.
    let b = pg_server();
    let (out, err) = migrate_ok(&a, &b, &[]);
    assert!(
        out.contains("demo: 7 mailbox(es), 3 message(s) verified, 3 copied"),
        "{out}"
    );
    assert!(
        out.contains("bob: 6 mailbox(es), 1 message(s) verified, 1 copied"),
        "{out}"
    );
    assert!(
        err.contains("migrate: demo: INBOX: pass 1: copied 2/2"),
        "{err}"
    );
    assert_eq!(user_seen(&b, "demo", &boxes), demo_a);
    assert_eq!(user_seen(&b, "bob", &["INBOX"]), bob_a);

    // A second run has nothing to copy and says so.
    let (out, err) = migrate_ok(&a, &b, &[]);
    assert!(
        out.contains("nothing to copy: 3 user(s) already in the target, 4 message(s) verified"),
        "{out}"
    );
    assert!(!err.contains("copied"), "{err}");
    assert_eq!(user_seen(&b, "demo", &boxes), demo_a);

    // PostgreSQL -> Maildir: the same again. As on a real host, where the mail root belongs to
    // the mail user, the users' Maildirs are there (the server makes them at first login).
    let c_server = maildir_server();
    for u in ["demo", "bob", "carol"] {
        drop(login(&c_server, u));
    }
    migrate_ok(&b, &c_server, &[]);
    assert_eq!(user_seen(&c_server, "demo", &boxes), demo_a);
    assert_eq!(user_seen(&c_server, "bob", &["INBOX"]), bob_a);
    // New mail in the new store continues above every UID clients saw.
    let mut c = login(&c_server, "demo");
    append(
        &mut c,
        "INBOX",
        "",
        "06-Jun-2024 10:00:00 +0000",
        &msg("new"),
    );
    let after = mailbox_seen(&mut c, "INBOX");
    assert_eq!(
        after.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3, 4]
    );
    assert_eq!(uidvalidity(&after), uidvalidity(inbox));
}

/// Delivers `n` messages to `user`'s INBOX as an MTA writing Maildir files would.
fn deliver_files(s: &Server, user: &str, n: usize) {
    // The user's Maildir exists once the user logged in.
    drop(login(s, user));
    for i in 0..n {
        let body = format!(
            "From: list@example.org\r\nSubject: message {i}\r\n\r\n{}\r\n",
            "line of text\r\n".repeat(40)
        );
        s.deliver_raw(
            user,
            user,
            &format!("{}.M{i}P1.test", 1_700_000_000 + i),
            body.as_bytes(),
        );
    }
}

fn messages_of(s: &Server, user: &str) -> u32 {
    let mut c = login(s, user);
    let r = c.cmd("s", "STATUS INBOX (MESSAGES)");
    assert_tagged_ok(&r);
    r.iter()
        .find(|l| l.starts_with("* STATUS"))
        .map(|l| between(l, "MESSAGES ", ")").parse().unwrap())
        .unwrap()
}

#[test]
fn interrupted_and_partial_runs_are_completed_by_the_next() {
    if skip_unless_maildir("interrupted_and_partial_runs_are_completed_by_the_next") {
        return;
    }
    let a = maildir_server();
    deliver_files(&a, "demo", 350);
    deliver_files(&a, "bob", 3);
    let b = pg_server();
    // carol's INBOX in the target already holds mail under its own UIDVALIDITY: refused.
    let mut c = login(&b, "carol");
    append(
        &mut c,
        "INBOX",
        "",
        "01-Jan-2020 10:00:00 +0000",
        &msg("mine"),
    );
    drop(c);

    // Only bob first.
    let (out, _) = migrate_ok(&a, &b, &["--user", "bob"]);
    assert!(
        out.contains("bob: 6 mailbox(es), 3 message(s) verified, 3 copied"),
        "{out}"
    );
    assert!(!out.contains("demo"), "{out}");
    assert_eq!(messages_of(&b, "demo"), 0);

    // demo, killed after its first batch was stored.
    let mut child = migrate_cmd(&a.config_path, &b.config_path, &["--user", "demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a progress line");
        if line.contains("demo: INBOX: pass 1: copied 100/350") {
            break;
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it could be interrupted"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = messages_of(&b, "demo");
    assert!(
        (100..350).contains(&partial),
        "{partial} messages after the kill"
    );

    // Every user now: demo's rest, bob's nothing, carol's conflict named.
    let (code, out, err) = migrate(&a, &b, &[]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("carol: target mailbox \"INBOX\" holds messages under UIDVALIDITY"),
        "{err}"
    );
    assert!(
        err.contains("migration of 1 user(s) failed (carol)"),
        "{err}"
    );
    let rest = 350 - partial;
    assert!(
        out.contains(&format!(
            "demo: 6 mailbox(es), 350 message(s) verified, {rest} copied"
        )),
        "{out}"
    );
    assert!(
        out.contains("bob: 6 mailbox(es), 3 message(s) verified, 0 copied"),
        "{out}"
    );
    assert_eq!(
        user_seen(&b, "demo", &["INBOX"]),
        user_seen(&a, "demo", &["INBOX"])
    );
    assert_eq!(messages_of(&b, "carol"), 1);
}

#[test]
fn mail_delivered_during_the_migration_reaches_the_target() {
    if skip_unless_maildir("mail_delivered_during_the_migration_reaches_the_target") {
        return;
    }
    let a = maildir_server();
    let mut c = login(&a, "demo");
    for i in 0..5 {
        append(
            &mut c,
            "INBOX",
            "",
            "01-Jan-2020 10:00:00 +0000",
            &msg(&format!("m{i}")),
        );
    }
    assert_tagged_ok(&c.cmd("x", "SELECT INBOX"));
    let b = pg_server();
    let mut child = migrate_cmd(
        &a.config_path,
        &b.config_path,
        &["--user", "demo", "--settle-ms", "3000"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("settling");
        lines.push(line.clone());
        if line.contains("settling") {
            break;
        }
    }
    // While it waits: new mail, a flag change and an expunge at the source.
    append(
        &mut c,
        "INBOX",
        "\\Flagged",
        "02-Feb-2021 10:00:00 +0000",
        &msg("late"),
    );
    assert_tagged_ok(&c.cmd("x", "UID STORE 1 +FLAGS (\\Seen)"));
    assert_tagged_ok(&c.cmd("x", "UID STORE 2 +FLAGS (\\Deleted)"));
    assert_tagged_ok(&c.cmd("x", "UID EXPUNGE 2"));
    drop(c);
    let out = child.wait_with_output().unwrap();
    lines.extend(rx.try_iter());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INBOX: pass 3: copied 1/1")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("INBOX: pass 3: 1 flag change(s) applied, 1 expunge(s) mirrored")),
        "{lines:?}"
    );
    let target = user_seen(&b, "demo", &["INBOX"]);
    assert_eq!(target, user_seen(&a, "demo", &["INBOX"]));
    let inbox = target.0.first().unwrap();
    assert_eq!(
        inbox.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3, 4, 5, 6]
    );
    assert!(inbox.messages.first().unwrap().flags.contains("\\Seen"));
    assert!(inbox.messages.last().unwrap().flags.contains("\\Flagged"));
}
