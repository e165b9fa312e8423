//! IMAP mailbox commands against the real binary, as wire transcripts: SELECT/EXAMINE, CREATE,
//! DELETE, RENAME (with children and INBOX), SUBSCRIBE/LSUB, LIST patterns and extensions, STATUS,
//! APPEND with both literal kinds, STORE, COPY/MOVE with COPYUID, EXPUNGE, CLOSE/UNSELECT, IDLE,
//! and when EXISTS/FETCH/EXPUNGE reach other sessions.

mod common;

use common::*;

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    run_transcript(&mut c, "C: l LOGIN demo demo\nS: l OK {*}");
    c
}

/// APPENDs `body` with a non-synchronizing literal and returns the tagged answer.
fn append(c: &mut Client, mailbox: &str, flags: &str, body: &str) -> String {
    c.send_raw(
        format!(
            "ap APPEND {mailbox} ({flags}) {{{}+}}\r\n{body}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.until("ap ").pop().unwrap()
}

const MSG: &str = "From: Alice <alice@example.org>\r\nSubject: hello\r\n\r\nHi there.\r\n";

#[test]
fn select_and_examine_answer_every_rfc_3501_item() {
    let s = Server::start();
    let mut c = login(&s);
    assert!(append(&mut c, "INBOX", "\\Seen", MSG).starts_with("ap OK [APPENDUID "));
    assert!(append(&mut c, "INBOX", "$Label1", MSG).starts_with("ap OK [APPENDUID "));
    run_transcript(
        &mut c,
        r"C: a SELECT INBOX
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1 \*)] Flags permitted.
S: * 2 EXISTS
S: * 2 RECENT
S: * OK [UNSEEN 2] First unseen.
S: * OK [UIDVALIDITY {*}] UIDs valid
S: * OK [UIDNEXT 3] Predicted next UID
S: * OK [MAILBOXID {*}] Ok
S: a OK [READ-WRITE] Select completed.
C: b EXAMINE INBOX
S: * OK [CLOSED] Previous mailbox closed.
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Label1)
S: * OK [PERMANENTFLAGS ()] Read-only mailbox.
S: * 2 EXISTS
S: * 0 RECENT
S: * OK [UNSEEN 2] First unseen.
S: * OK [UIDVALIDITY {*}] UIDs valid
S: * OK [UIDNEXT 3] Predicted next UID
S: * OK [MAILBOXID {*}] Ok
S: b OK [READ-ONLY] Examine completed.
C: c STORE 1 +FLAGS (\Deleted)
S: c NO [CANNOT] Mailbox is read-only.
C: d SELECT nosuch
S: * OK [CLOSED] Previous mailbox closed.
S: d NO [NONEXISTENT] Mailbox doesn't exist.
C: e NOOP
S: e OK NOOP completed.
C: f FETCH 1 FLAGS
S: f BAD Command not valid in this state: no mailbox is selected.",
    );
}

#[test]
fn create_delete_rename_with_children_and_inbox() {
    let s = Server::start();
    let mut c = login(&s);
    assert!(append(&mut c, "INBOX", "", MSG).starts_with("ap OK"));
    run_transcript(
        &mut c,
        r#"C: a CREATE Work/
S: a OK [MAILBOXID {*}] Create completed.
C: b CREATE Work/Projects
S: b OK [MAILBOXID {*}] Create completed.
C: c CREATE Work
S: c NO [ALREADYEXISTS] Mailbox already exists.
C: d CREATE INBOX
S: d NO [ALREADYEXISTS] Mailbox already exists.
C: e CREATE "Entw&APw-rfe"
S: e OK [MAILBOXID {*}] Create completed.
C: f CREATE "bad&-name&Jjo"
S: f NO [CANNOT] Invalid mailbox name: not valid modified UTF-7.
C: g RENAME Work Job
S: g OK Rename completed.
C: h LIST "" "Job*"
S: * LIST (\HasChildren) "/" Job
S: * LIST (\HasNoChildren) "/" Job/Projects
S: h OK List completed.
C: i RENAME INBOX Old
S: i OK Rename completed.
C: j STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 0)
S: j OK Status completed.
C: k STATUS Old (MESSAGES)
S: * STATUS Old (MESSAGES 1)
S: k OK Status completed.
C: l DELETE INBOX
S: l NO [CANNOT] INBOX can't be deleted.
C: m DELETE Job
S: m OK Delete completed.
C: n LIST "" "Job*"
S: * LIST (\Noselect \HasChildren) "/" Job
S: * LIST (\HasNoChildren) "/" Job/Projects
S: n OK List completed.
C: o DELETE nosuch
S: o NO [NONEXISTENT] Mailbox doesn't exist.
C: p LIST "" "Entw*"
S: * LIST (\HasNoChildren) "/" Entw&APw-rfe
S: p OK List completed."#,
    );
}

#[test]
fn list_patterns_special_use_and_extended_forms() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a CREATE A/B/C
S: a OK [MAILBOXID {*}] Create completed.
C: b LIST "" ""
S: * LIST (\Noselect) "/" ""
S: b OK List completed.
C: c LIST "" %
S: * LIST (\HasNoChildren) "/" INBOX
S: * LIST (\Noselect \HasChildren) "/" A
S: * LIST (\HasNoChildren \Archive) "/" Archive
S: * LIST (\HasNoChildren \Drafts) "/" Drafts
S: * LIST (\HasNoChildren \Junk) "/" Junk
S: * LIST (\HasNoChildren \Sent) "/" Sent
S: * LIST (\HasNoChildren \Trash) "/" Trash
S: c OK List completed.
C: d LIST A/ %
S: * LIST (\Noselect \HasChildren) "/" A/B
S: d OK List completed.
C: e LIST "" A/*
S: * LIST (\Noselect \HasChildren) "/" A/B
S: * LIST (\HasNoChildren) "/" A/B/C
S: e OK List completed.
C: f LIST (SPECIAL-USE) "" *
S: * LIST (\HasNoChildren \Archive) "/" Archive
S: * LIST (\HasNoChildren \Drafts) "/" Drafts
S: * LIST (\HasNoChildren \Junk) "/" Junk
S: * LIST (\HasNoChildren \Sent) "/" Sent
S: * LIST (\HasNoChildren \Trash) "/" Trash
S: f OK List completed.
C: g LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UIDNEXT))
S: * LIST (\HasNoChildren) "/" INBOX
S: * STATUS INBOX (MESSAGES 0 UIDNEXT 1)
S: * LIST (\HasNoChildren \Sent) "/" Sent
S: * STATUS Sent (MESSAGES 0 UIDNEXT 1)
S: g OK List completed.
C: h CREATE Notes (USE (\Flagged))
S: h OK [MAILBOXID {*}] Create completed.
C: i LIST "" Notes
S: * LIST (\HasNoChildren \Flagged) "/" Notes
S: i OK List completed.
C: j LIST "" inbox
S: * LIST (\HasNoChildren) "/" INBOX
S: j OK List completed."#,
    );
}

#[test]
fn subscriptions_and_lsub() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a CREATE x/y
S: a OK [MAILBOXID {*}] Create completed.
C: b SUBSCRIBE x/y
S: b OK Subscribe completed.
C: c UNSUBSCRIBE Junk
S: c OK Unsubscribe completed.
C: d LSUB "" *
S: * LSUB () "/" Archive
S: * LSUB () "/" Drafts
S: * LSUB () "/" Sent
S: * LSUB () "/" Trash
S: * LSUB () "/" x/y
S: d OK Lsub completed.
C: e LSUB "" %
S: * LSUB () "/" Archive
S: * LSUB () "/" Drafts
S: * LSUB () "/" Sent
S: * LSUB () "/" Trash
S: * LSUB (\Noselect) "/" x
S: e OK Lsub completed.
C: f LIST (SUBSCRIBED) "" x*
S: * LIST (\HasNoChildren \Subscribed) "/" x/y
S: f OK List completed.
C: g SUBSCRIBE gone
S: g OK Subscribe completed.
C: h LIST (SUBSCRIBED) "" gone
S: * LIST (\NonExistent \Subscribed) "/" gone
S: h OK List completed."#,
    );
}

#[test]
fn append_with_both_literal_kinds_and_errors() {
    let s = Server::start();
    let mut c = login(&s);
    // Synchronizing literal: the server asks for the data first.
    c.send(&format!(
        "a APPEND INBOX (\\Flagged) \"05-Jan-2024 10:00:00 +0100\" {{{}}}",
        MSG.len()
    ));
    assert_eq!(c.line(), "+ Ready for literal data");
    c.send_raw(format!("{MSG}\r\n").as_bytes());
    let l = c.line();
    assert!(
        l.starts_with("a OK [APPENDUID ") && l.ends_with(" 1] Append completed."),
        "{l}"
    );
    run_transcript(
        &mut c,
        &format!(
            "C: b APPEND nosuch {{{n}+}}\nC: {body}\nC: \nS: b NO [TRYCREATE] Mailbox doesn't exist.\nC: c APPEND INBOX (\\Recent) {{{n}+}}\nC: {body}\nC: \nS: c BAD Invalid flag: \\Recent cannot be set.\nC: d APPEND INBOX {{0+}}\nC: \nS: d NO [CANNOT] Can't save a zero byte message.\nC: e STATUS INBOX (MESSAGES)\nS: * STATUS INBOX (MESSAGES 1)\nS: e OK Status completed.",
            n = MSG.len(),
            body = MSG.trim_end_matches("\r\n").replace("\r\n", "\nC: ")
        ),
    );
    // A literal announced larger than the limit is refused before any data is sent.
    c.send("f APPEND INBOX {999999999999}");
    assert_eq!(c.line(), "f NO [TOOBIG] Literal too big");
    run_transcript(&mut c, "C: g NOOP\nS: g OK NOOP completed.");
}

#[test]
fn store_copy_move_expunge_and_close() {
    let s = Server::start();
    let mut c = login(&s);
    for _ in 0..4 {
        assert!(append(&mut c, "INBOX", "", MSG).starts_with("ap OK"));
    }
    run_transcript(
        &mut c,
        r#"C: a SELECT INBOX
S: * FLAGS {*}
S: * OK [PERMANENTFLAGS {*}
S: * 4 EXISTS
S: * 4 RECENT
S: * OK [UNSEEN 1] First unseen.
S: * OK [UIDVALIDITY {*}
S: * OK [UIDNEXT 5] Predicted next UID
S: * OK [MAILBOXID {*}] Ok
S: a OK [READ-WRITE] Select completed.
C: b STORE 1:2 +FLAGS (\Seen Work)
S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft Work)
S: * OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft Work \*)] Flags permitted.
S: * 1 FETCH (FLAGS (\Seen Work \Recent))
S: * 2 FETCH (FLAGS (\Seen Work \Recent))
S: b OK Store completed.
C: c UID STORE 2 -FLAGS.SILENT (Work)
S: c OK Store completed.
C: d STORE 5 FLAGS (\Seen)
S: d BAD Invalid messageset: message number out of range.
C: e COPY 1:2 Archive
S: e OK [COPYUID {*} 1:2 1:2] Copy completed.
C: f COPY 1 nosuch
S: f NO [TRYCREATE] Mailbox doesn't exist.
C: g UID MOVE 3 Trash
S: * OK [COPYUID {*} 3 1] Moved UIDs.
S: * 3 EXPUNGE
S: g OK Move completed.
C: h STORE 1 +FLAGS (\Deleted)
S: * 1 FETCH (FLAGS (\Deleted \Seen Work \Recent))
S: h OK Store completed.
C: i UID EXPUNGE 4
S: i OK Expunge completed.
C: j EXPUNGE
S: * 1 EXPUNGE
S: j OK Expunge completed.
C: k STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 2)
S: k OK Status completed.
C: l STORE 2 +FLAGS (\Deleted)
S: * 2 FETCH (FLAGS (\Deleted \Recent))
S: l OK Store completed.
C: m UNSELECT
S: m OK Unselect completed.
C: n STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 2)
S: n OK Status completed.
C: o SELECT INBOX
S: * FLAGS {*}
S: * OK [PERMANENTFLAGS {*}
S: * 2 EXISTS
S: * 0 RECENT
S: * OK [UNSEEN 2] First unseen.
S: * OK [UIDVALIDITY {*}
S: * OK [UIDNEXT 5] Predicted next UID
S: * OK [MAILBOXID {*}] Ok
S: o OK [READ-WRITE] Select completed.
C: p CLOSE
S: p OK Close completed.
C: q STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 1)
S: q OK Status completed.
C: r STATUS Archive (MESSAGES)
S: * STATUS Archive (MESSAGES 2)
S: r OK Status completed."#,
    );
}

/// Three sessions on one mailbox: A changes things, B is idle in NOOP-land, C runs commands that
/// must not shift sequence numbers. Each learns of the changes only at the moments RFC 3501 allows.
#[test]
fn three_sessions_see_exists_fetch_and_expunge_when_allowed() {
    let s = Server::start();
    let mut a = login(&s);
    for _ in 0..3 {
        assert!(append(&mut a, "INBOX", "", MSG).starts_with("ap OK"));
    }
    let select = "C: s SELECT INBOX\nS: * FLAGS {*}\nS: * OK [PERMANENTFLAGS {*}\nS: * 3 EXISTS\nS: * {*} RECENT\nS: * OK [UNSEEN 1] {*}\nS: * OK [UIDVALIDITY {*}\nS: * OK [UIDNEXT 4] {*}\nS: * OK [MAILBOXID {*}] Ok\nS: s OK [READ-WRITE] Select completed.";
    let mut b = login(&s);
    let mut c = login(&s);
    run_transcript(&mut a, select);
    run_transcript(&mut b, select);
    run_transcript(&mut c, select);
    // A flags message 2 and expunges message 1, then a new message arrives.
    run_transcript(
        &mut a,
        "C: a1 STORE 2 +FLAGS.SILENT (\\Flagged)\nS: a1 OK Store completed.\nC: a2 STORE 1 +FLAGS.SILENT (\\Deleted)\nS: a2 OK Store completed.\nC: a3 EXPUNGE\nS: * 1 EXPUNGE\nS: a3 OK Expunge completed.",
    );
    assert!(append(&mut a, "INBOX", "", MSG).starts_with("ap OK"));
    // C: a non-UID STORE must not carry EXPUNGE (sequence numbers stay as C knows them); the
    // message numbers C uses still mean what they meant.
    run_transcript(
        &mut c,
        "C: c1 STORE 3 +FLAGS.SILENT (\\Seen)\nS: c1 OK Store completed.",
    );
    // B: NOOP reports everything, expunge first.
    run_transcript(
        &mut b,
        "C: b1 NOOP\nS: * 1 EXPUNGE\nS: * 3 EXISTS\nS: * 1 FETCH (UID 2 FLAGS (\\Flagged))\nS: * 2 FETCH (UID 3 FLAGS (\\Seen))\nS: b1 OK NOOP completed.",
    );
    // C: now a NOOP tells it too.
    run_transcript(
        &mut c,
        "C: c2 NOOP\nS: * 1 EXPUNGE\nS: * 3 EXISTS\nS: * 1 FETCH (UID 2 FLAGS (\\Flagged))\nS: c2 OK NOOP completed.",
    );
}

#[test]
fn idle_pushes_changes_and_keeps_pipelined_commands() {
    let s = Server::start();
    let mut a = login(&s);
    let mut b = login(&s);
    run_transcript(
        &mut a,
        "C: s SELECT INBOX\nS: * FLAGS {*}\nS: * OK [PERMANENTFLAGS {*}\nS: * 0 EXISTS\nS: * 0 RECENT\nS: * OK [UIDVALIDITY {*}\nS: * OK [UIDNEXT 1] {*}\nS: * OK [MAILBOXID {*}] Ok\nS: s OK [READ-WRITE] Select completed.\nC: i IDLE\nS: + idling",
    );
    assert!(append(&mut b, "INBOX", "", MSG).starts_with("ap OK"));
    assert_eq!(a.line(), "* 1 EXISTS");
    assert_eq!(a.line(), "* 1 RECENT");
    run_transcript(
        &mut b,
        "C: x SELECT INBOX\nS: * FLAGS {*}\nS: * OK [PERM{*}\nS: * 1 EXISTS\nS: * 0 RECENT\nS: * OK [UNSEEN 1] {*}\nS: * OK [UIDVALIDITY {*}\nS: * OK [UIDNEXT 2] {*}\nS: * OK [MAILBOXID {*}] Ok\nS: x OK {*}\nC: y STORE 1 +FLAGS (\\Seen)\nS: * 1 FETCH (FLAGS (\\Seen))\nS: y OK Store completed.",
    );
    assert_eq!(a.line(), "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))");
    // DONE with a command pipelined behind it: both run, in order.
    a.send_raw(b"DONE\r\nn NOOP\r\n");
    assert_eq!(a.line(), "i OK Idle completed.");
    assert_eq!(a.line(), "n OK NOOP completed.");
    // Anything but DONE ends IDLE with BAD.
    run_transcript(
        &mut a,
        "C: j IDLE\nS: + idling\nC: STOP\nS: j BAD Expected DONE.",
    );
}

#[test]
fn namespace_enable_id_and_capability_after_login() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a NAMESPACE
S: * NAMESPACE (("" "/")) NIL NIL
S: a OK Namespace completed.
C: b ENABLE CONDSTORE
S: * ENABLED CONDSTORE
S: b OK Enabled.
C: c ID ("name" "test")
S: * ID ("name" "mailcove" "version" {*})
S: c OK ID completed.
C: d CAPABILITY
S: * CAPABILITY IMAP4rev1 {*} IDLE {*} UIDPLUS MOVE {*} APPENDLIMIT=52428800
S: d OK Capability completed.
C: e LOGIN demo demo
S: e BAD Command not valid in this state: already logged in.
C: f LOGOUT
S: * BYE Logging out.
S: f OK Logout completed."#,
    );
}

/// What one session reads of the selected mailbox: `[UNSEEN n]`, EXISTS and RECENT from a SELECT
/// (asked twice, the second warm), and the same counts worked out message by message with
/// SEARCH and FETCH; STATUS (asked before the SELECT) must agree with both.
struct Counts {
    exists: usize,
    first_unseen: Option<u32>,
    unseen: usize,
}

fn counts_seen_by(c: &mut Client) -> Counts {
    let number_in = |l: &str, prefix: &str, code: &str| -> Option<u64> {
        l.strip_prefix(prefix)?.split(code).next()?.parse().ok()
    };
    let status = c.cmd("st", "STATUS INBOX (MESSAGES UNSEEN SIZE DELETED)");
    assert!(
        status.last().is_some_and(|l| l.starts_with("st OK")),
        "{status:?}"
    );
    let item = |name: &str| -> u64 {
        status[0]
            .split(&format!("{name} "))
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status:?}"))
    };
    let mut selects = Vec::new();
    for tag in ["s1", "s2"] {
        let lines = c.cmd(tag, "SELECT INBOX");
        assert!(
            lines
                .last()
                .is_some_and(|l| l.starts_with(&format!("{tag} OK"))),
            "{lines:?}"
        );
        let exists = lines.iter().find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXISTS")?
                .parse::<usize>()
                .ok()
        });
        let recent = lines.iter().find_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" RECENT")?
                .parse::<usize>()
                .ok()
        });
        let unseen = lines
            .iter()
            .find_map(|l| number_in(l, "* OK [UNSEEN ", "]"))
            .map(|n| u32::try_from(n).unwrap());
        selects.push((exists.expect("EXISTS"), recent.expect("RECENT"), unseen));
    }
    assert_eq!(selects[0].0, selects[1].0, "{selects:?}");
    assert_eq!(selects[0].2, selects[1].2, "{selects:?}");
    let (exists, recent, first_unseen) = selects[1];
    let search = |c: &mut Client, key: &str| -> Vec<u32> {
        let lines = c.cmd("se", &format!("SEARCH {key}"));
        assert!(
            lines.last().is_some_and(|l| l.starts_with("se OK")),
            "{lines:?}"
        );
        lines[0]
            .strip_prefix("* SEARCH")
            .unwrap_or_else(|| panic!("{lines:?}"))
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let unseen = search(c, "UNSEEN");
    let deleted = search(c, "DELETED");
    assert_eq!(
        first_unseen,
        unseen.first().copied(),
        "[UNSEEN n] is the first unseen"
    );
    assert_eq!(recent, search(c, "RECENT").len(), "RECENT");
    let sizes = c.cmd("fs", "FETCH 1:* (RFC822.SIZE)");
    assert!(
        sizes.last().is_some_and(|l| l.starts_with("fs OK")),
        "{sizes:?}"
    );
    assert_eq!(sizes.len(), exists + 1, "one FETCH per message");
    let size: u64 = sizes
        .iter()
        .filter_map(|l| l.split("RFC822.SIZE ").nth(1))
        .map(|n| n.trim_end_matches(')').parse::<u64>().unwrap())
        .sum();
    assert_eq!(item("MESSAGES"), exists as u64, "STATUS MESSAGES");
    assert_eq!(item("UNSEEN"), unseen.len() as u64, "STATUS UNSEEN");
    assert_eq!(item("DELETED"), deleted.len() as u64, "STATUS DELETED");
    assert_eq!(item("SIZE"), size, "STATUS SIZE");
    assert!(
        c.cmd("u", "UNSELECT")
            .last()
            .is_some_and(|l| l.starts_with("u OK"))
    );
    Counts {
        exists,
        first_unseen,
        unseen: unseen.len(),
    }
}

/// SELECT's `[UNSEEN n]` and STATUS's UNSEEN, SIZE and DELETED come from counts the message list
/// keeps per chunk of 1,024 messages (src/storage/msglist.rs), so a warm SELECT does not read
/// every message. Over three chunks, after flag changes, expunges (which merge chunks) and an
/// APPEND by another session, they still say what SEARCH and FETCH find message by message.
#[test]
fn select_unseen_and_status_counts_follow_another_session_across_chunks() {
    let s = Server::start();
    let msgs: Vec<String> = (0..2600)
        .map(|i| format!("Subject: m{i}\r\n\r\nbody {i}\r\n"))
        .collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_bytes()).collect();
    s.append_messages("demo", "demo", "INBOX", &refs);
    let mut a = login(&s);
    let mut b = login(&s);
    let ok = |c: &mut Client, cmd: &str| {
        let lines = c.cmd("w", cmd);
        assert!(
            lines.last().is_some_and(|l| l.starts_with("w OK")),
            "{cmd}: {lines:?}"
        );
    };
    ok(&mut a, "SELECT INBOX");
    let all = counts_seen_by(&mut b);
    assert_eq!(
        (all.exists, all.first_unseen, all.unseen),
        (2600, Some(1), 2600)
    );

    ok(&mut a, "STORE 1:* +FLAGS.SILENT (\\Seen)");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.exists, c.first_unseen, c.unseen), (2600, None, 0));

    ok(&mut a, "STORE 2500 -FLAGS.SILENT (\\Seen)");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.first_unseen, c.unseen), (Some(2500), 1));

    ok(&mut a, "STORE 1500 -FLAGS.SILENT (\\Seen)");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.first_unseen, c.unseen), (Some(1500), 2));

    ok(&mut a, "STORE 10,1500 +FLAGS.SILENT (\\Deleted)");
    counts_seen_by(&mut b);
    ok(&mut a, "EXPUNGE");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.exists, c.first_unseen, c.unseen), (2598, Some(2498), 1));

    ok(&mut a, "STORE 1:1100 +FLAGS.SILENT (\\Deleted)");
    ok(&mut a, "EXPUNGE");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.exists, c.first_unseen, c.unseen), (1498, Some(1398), 1));

    assert!(append(&mut a, "INBOX", "", MSG).starts_with("ap OK"));
    let c = counts_seen_by(&mut b);
    assert_eq!((c.exists, c.first_unseen, c.unseen), (1499, Some(1398), 2));

    ok(&mut a, "STORE 1398 +FLAGS.SILENT (\\Seen)");
    let c = counts_seen_by(&mut b);
    assert_eq!((c.exists, c.first_unseen, c.unseen), (1499, Some(1499), 1));
}
