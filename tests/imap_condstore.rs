//! CONDSTORE and QRESYNC (RFC 7162) on the wire, against the real binary, following the RFC's
//! examples: ENABLE (RFC 5161), HIGHESTMODSEQ on SELECT/EXAMINE and in STATUS, FETCH MODSEQ and
//! CHANGEDSINCE, STORE UNCHANGEDSINCE with `[MODIFIED]`, SEARCH MODSEQ (with the per-flag entry
//! form, RFC 7162 3.1.5), unsolicited FETCH with MODSEQ after NOOP and in IDLE, and QRESYNC: two
//! sessions where one changes flags and expunges while the other is away and then resyncs with
//! `SELECT (QRESYNC ...)` or `UID FETCH ... (CHANGEDSINCE n VANISHED)`, VANISHED instead of
//! EXPUNGE once enabled (IDLE included), `[CLOSED]`, and the BAD of QRESYNC syntax before
//! `ENABLE QRESYNC`. Clients that enable nothing see what they always saw.
//!
//! Mod-sequence values are not fixed by the RFC, so they are read from the answers and compared
//! (strictly greater after each change) rather than written into the transcripts.

mod common;

use common::*;

/// A server with `n` messages in INBOX, none `\Recent` any more (a first session took them).
fn server_with(n: usize) -> Server {
    let s = Server::start();
    let bodies: Vec<Vec<u8>> = (1..=n)
        .map(|i| format!("Subject: m{i}\r\n\r\nbody {i}\r\n").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    s.append_messages("demo", "demo", "INBOX", &refs);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("o", "LOGOUT"));
    s
}

/// The number in `[NAME n]` of the first line that has one.
fn code(lines: &[String], name: &str) -> u64 {
    let key = format!("[{name} ");
    lines
        .iter()
        .find_map(|l| {
            let rest = &l[l.find(&key)? + key.len()..];
            rest[..rest.find(']')?].parse().ok()
        })
        .unwrap_or_else(|| panic!("no [{name}] in {lines:?}"))
}

/// The `MODSEQ (n)` of a FETCH line.
fn modseq(line: &str) -> u64 {
    let rest = &line[line
        .find("MODSEQ (")
        .unwrap_or_else(|| panic!("no MODSEQ in {line:?}"))
        + 8..];
    rest[..rest.find(')').unwrap_or(rest.len())]
        .parse()
        .unwrap_or_else(|_| panic!("bad MODSEQ in {line:?}"))
}

/// The untagged lines of an answer (the tagged line left out).
fn untagged(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("* "))
        .cloned()
        .collect()
}

#[test]
fn enable_reports_what_it_turned_on_and_select_then_carries_highestmodseq() {
    let s = server_with(2);
    let mut c = login_demo(&s);
    // RFC 5161 3.1: each ENABLED lists only what that command enabled; unknown names are ignored.
    run_transcript(
        &mut c,
        "C: e1 ENABLE CONDSTORE X-UNKNOWN
         S: * ENABLED CONDSTORE
         S: e1 OK Enabled.
         C: e2 ENABLE CONDSTORE
         S: * ENABLED
         S: e2 OK Enabled.
         C: e3 ENABLE QRESYNC CONDSTORE
         S: * ENABLED QRESYNC
         S: e3 OK Enabled.",
    );
    let sel = c.cmd("s", "SELECT INBOX");
    assert_tagged_ok(&sel);
    let highest = code(&sel, "HIGHESTMODSEQ");
    assert!(highest > 0, "{sel:?}");
    let st = c.cmd("t", "STATUS INBOX (HIGHESTMODSEQ MESSAGES)");
    assert_eq!(
        st[0],
        format!("* STATUS INBOX (HIGHESTMODSEQ {highest} MESSAGES 2)")
    );
    assert_tagged_ok(&st);

    // The CONDSTORE select parameter is an enabling command of its own (RFC 7162 3.1.8).
    let mut d = login_demo(&s);
    let ex = d.cmd("x", "EXAMINE INBOX (CONDSTORE)");
    assert_eq!(code(&ex, "HIGHESTMODSEQ"), highest);
    assert_eq!(ex.last().unwrap(), "x OK [READ-ONLY] Examine completed.");

    // A client that enables nothing sees no HIGHESTMODSEQ (RFC 7162 3.1.2.1).
    let mut plain = login_demo(&s);
    let sel = plain.cmd("s", "SELECT INBOX");
    assert_tagged_ok(&sel);
    assert!(!sel.iter().any(|l| l.contains("MODSEQ")), "{sel:?}");
    let f = plain.cmd("f", "FETCH 1:* (FLAGS)");
    assert_eq!(
        untagged(&f),
        ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]
    );
}

#[test]
fn fetch_modseq_and_changedsince_as_in_rfc7162_3_1_4() {
    let s = server_with(3);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // The first enabling command with a mailbox selected tells its HIGHESTMODSEQ (RFC 7162 3.1).
    let f = c.cmd("f1", "FETCH 1:* (MODSEQ)");
    assert_tagged_ok(&f);
    assert!(f[0].starts_with("* OK [HIGHESTMODSEQ "), "{f:?}");
    let highest = code(&f, "HIGHESTMODSEQ");
    let lines = untagged(&f);
    assert_eq!(lines.len(), 4, "{f:?}");
    for (i, l) in lines[1..].iter().enumerate() {
        assert!(
            l.starts_with(&format!("* {} FETCH (MODSEQ (", i + 1)),
            "{l}"
        );
        assert!(modseq(l) <= highest, "{l} above {highest}");
    }

    // Once enabled, STORE answers carry UID and MODSEQ (RFC 7162 3.2.4), a new, greater one.
    let st = c.cmd("s2", "STORE 2 +FLAGS (\\Flagged)");
    assert_tagged_ok(&st);
    assert!(
        st[0].starts_with("* 2 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("),
        "{st:?}"
    );
    let m2 = modseq(&st[0]);
    assert!(m2 > highest);

    // CHANGEDSINCE: only what changed after the value, MODSEQ implied.
    let f = c.cmd("f2", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"));
    assert_eq!(
        untagged(&f),
        [format!("* 2 FETCH (FLAGS (\\Flagged) MODSEQ ({m2}))")]
    );
    assert_tagged_ok(&f);
    let f = c.cmd("f3", &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {m2})"));
    assert_eq!(f, ["f3 OK Fetch completed."]);

    // A FETCH that sets \Seen reports it with UID and MODSEQ once CONDSTORE is on.
    let f = c.cmd("f4", "FETCH 3 (BODY[HEADER.FIELDS (SUBJECT)])");
    assert_tagged_ok(&f);
    assert!(
        f[0].starts_with("* 3 FETCH (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {"),
        "{f:?}"
    );
    let seen = f
        .iter()
        .find(|l| l.contains("FLAGS (\\Seen)"))
        .unwrap_or_else(|| panic!("no \\Seen in {f:?}"));
    assert!(modseq(seen) > m2, "{f:?}");
}

#[test]
fn store_unchangedsince_answers_modified_as_in_rfc7162_3_1_3() {
    let s = server_with(3);
    let mut c = login_demo(&s);
    let sel = c.cmd("s", "SELECT INBOX (CONDSTORE)");
    let before = code(&sel, "HIGHESTMODSEQ");
    // Another session changes message 2 after the client read `before`.
    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t", "STORE 2 +FLAGS.SILENT ($Important)"));

    // Messages 1 and 3 are stored and reported even with .SILENT; 2 is left alone.
    let st = c.cmd(
        "a1",
        &format!("STORE 1:3 (UNCHANGEDSINCE {before}) +FLAGS.SILENT (\\Seen)"),
    );
    let fetches: Vec<&String> = st.iter().filter(|l| l.contains(" FETCH (")).collect();
    assert!(
        fetches
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (")),
        "{st:?}"
    );
    assert!(
        fetches
            .iter()
            .any(|l| l.starts_with("* 3 FETCH (UID 3 FLAGS (\\Seen) MODSEQ (")),
        "{st:?}"
    );
    assert_eq!(
        st.last().unwrap(),
        "a1 OK [MODIFIED 2] Conditional store failed."
    );
    // NOOP brings the other session's change, with UID and MODSEQ.
    let n = c.cmd("n", "NOOP");
    assert!(
        n.iter()
            .any(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS ($Important) MODSEQ (")),
        "{n:?}"
    );

    // UID STORE names the failed messages by UID; UNCHANGEDSINCE 0 fails on every message.
    let st = c.cmd("a2", "UID STORE 1,3 (UNCHANGEDSINCE 0) -FLAGS (\\Seen)");
    assert_eq!(st, ["a2 OK [MODIFIED 1,3] Conditional store failed."]);
}

#[test]
fn search_modseq_with_and_without_the_flag_entry() {
    let s = server_with(3);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let st = c.cmd("t", "STORE 2 +FLAGS (\\Draft)");
    assert_tagged_ok(&st);
    // Not enabled yet: the plain STORE answer of RFC 3501.
    assert_eq!(st[0], "* 2 FETCH (FLAGS (\\Draft))");
    let f = c.cmd("f", "FETCH 2 (MODSEQ)");
    let m2 = modseq(f.iter().find(|l| l.starts_with("* 2 FETCH")).unwrap());
    // RFC 7162 3.1.5: MODSEQ n matches modseqs >= n; the answer ends with the highest one.
    let r = c.cmd("q1", &format!("SEARCH MODSEQ {m2}"));
    assert_eq!(
        r,
        [
            format!("* SEARCH 2 (MODSEQ {m2})"),
            "q1 OK Search completed.".into()
        ]
    );
    // No per-flag modseqs are kept, so the entry name and type are ignored (RFC 7162 3.1.5).
    let r = c.cmd(
        "q2",
        &format!("UID SEARCH MODSEQ \"/flags/\\\\draft\" all {m2}"),
    );
    assert_eq!(r[0], format!("* SEARCH 2 (MODSEQ {m2})"));
    let r = c.cmd("q3", &format!("SEARCH MODSEQ {}", m2 + 1));
    assert_eq!(r, ["* SEARCH", "q3 OK Search completed."]);
    let r = c.cmd("q4", "SEARCH MODSEQ 0");
    assert!(r[0].starts_with("* SEARCH 1 2 3 (MODSEQ "), "{r:?}");
}

#[test]
fn noop_reports_other_sessions_changes_with_modseq() {
    let s = server_with(2);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE CONDSTORE"));
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t", "STORE 1 +FLAGS.SILENT (\\Answered)"));
    let n = c.cmd("n", "NOOP");
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(
        n[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Answered) MODSEQ ("),
        "{n:?}"
    );
    assert_tagged_ok(&n);
}

/// Session 1 reads the state, goes away; session 2 changes flags and expunges; session 1
/// comes back and resyncs in one SELECT (RFC 7162 3.2.5.1).
#[test]
fn qresync_select_after_changes_made_by_another_session() {
    let s = server_with(5);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    let sel = c.cmd("s", "SELECT INBOX");
    let (validity, highest) = (code(&sel, "UIDVALIDITY"), code(&sel, "HIGHESTMODSEQ"));
    assert_tagged_ok(&c.cmd("o", "LOGOUT"));

    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t1", "STORE 2 +FLAGS.SILENT (\\Seen)"));
    assert_tagged_ok(&other.cmd("t2", "STORE 4 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("x", "EXPUNGE"));
    assert_tagged_ok(&other.cmd("o", "LOGOUT"));

    let mut c = login_demo(&s);
    run_transcript(
        &mut c,
        &format!(
            "C: e ENABLE QRESYNC
             S: * ENABLED QRESYNC
             S: e OK Enabled.
             C: a03 SELECT INBOX (QRESYNC ({validity} {highest}))
             S: * FLAGS *
             S: * OK [PERMANENTFLAGS *
             S: * 4 EXISTS
             S: * 0 RECENT
             S: * OK [UNSEEN 1] *
             S: * OK [UIDVALIDITY {validity}] *
             S: * OK [UIDNEXT 6] *
             S: * OK [HIGHESTMODSEQ {{*}}] *
             S: * OK [MAILBOXID {{*}}] Ok
             S: * VANISHED (EARLIER) 4
             S: * 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ ({{*}}))
             S: a03 OK [READ-WRITE] Select completed."
        ),
    );
    // The same question with the known UIDs limited to 1:3: nothing vanished among them.
    let sel = c.cmd(
        "b",
        &format!("EXAMINE INBOX (QRESYNC ({validity} {highest} 1:3))"),
    );
    assert_eq!(sel[0], "* OK [CLOSED] Previous mailbox closed.");
    assert!(!sel.iter().any(|l| l.contains("VANISHED")), "{sel:?}");
    assert_eq!(
        sel.iter().filter(|l| l.contains(" FETCH (")).count(),
        1,
        "{sel:?}"
    );
    // Sequence match data (RFC 7162 3.2.5.2): with an old modseq UID 4 is reported...
    let sel = c.cmd(
        "c",
        &format!("EXAMINE INBOX (QRESYNC ({validity} 1 1:5 (1,3 1,3)))"),
    );
    let vanished: Vec<&String> = sel.iter().filter(|l| l.contains("VANISHED")).collect();
    assert_eq!(vanished, ["* VANISHED (EARLIER) 4"], "{sel:?}");
    // ...but a client that says its message 4 is UID 5, which matches, already knows every
    // expunge at or below UID 5.
    let sel = c.cmd(
        "c",
        &format!("EXAMINE INBOX (QRESYNC ({validity} 1 1:5 (2,4 2,5)))"),
    );
    assert_tagged_ok(&sel);
    assert!(!sel.iter().any(|l| l.contains("VANISHED")), "{sel:?}");
    // A different UIDVALIDITY: the client's cache is stale, the other parameters are ignored.
    let sel = c.cmd(
        "d",
        &format!("EXAMINE INBOX (QRESYNC ({} {highest}))", validity + 1),
    );
    assert_tagged_ok(&sel);
    assert!(
        !sel.iter()
            .any(|l| l.contains("VANISHED") || l.contains("FETCH")),
        "{sel:?}"
    );
    // A resync across a server restart gives the same answer (the memory backend keeps
    // nothing across a restart, so this part is for Maildir).
    if memory_backend() {
        return;
    }
    drop(c);
    let mut s = s;
    s.restart();
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    let sel = c.cmd(
        "s",
        &format!("SELECT INBOX (QRESYNC ({validity} {highest}))"),
    );
    assert!(
        sel.contains(&"* VANISHED (EARLIER) 4".to_string()),
        "{sel:?}"
    );
    assert!(
        sel.iter()
            .any(|l| l.starts_with("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (")),
        "{sel:?}"
    );
}

#[test]
fn uid_fetch_changedsince_vanished_as_in_rfc7162_3_2_6() {
    let s = server_with(6);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    let sel = c.cmd("s", "SELECT INBOX");
    let highest = code(&sel, "HIGHESTMODSEQ");
    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t1", "STORE 3,5 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("x", "EXPUNGE"));
    assert_tagged_ok(&other.cmd("t2", "STORE 1 +FLAGS.SILENT (\\Flagged)"));
    // The expunges reach this session as VANISHED, not EXPUNGE, once QRESYNC is on.
    let n = c.cmd("n", "NOOP");
    assert_eq!(n[0], "* VANISHED 3,5", "{n:?}");
    run_transcript(
        &mut c,
        &format!(
            "C: s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)
             S: * VANISHED (EARLIER) 3,5
             S: * 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ ({{*}}))
             S: s100 OK Fetch completed.
             C: s101 UID FETCH 4:6 (FLAGS) (CHANGEDSINCE {highest} VANISHED)
             S: * VANISHED (EARLIER) 5
             S: s101 OK Fetch completed."
        ),
    );
    // VANISHED is a UID FETCH modifier only, and needs CHANGEDSINCE.
    let r = c.cmd("b1", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert!(r[0].starts_with("b1 BAD"), "{r:?}");
    let r = c.cmd("b2", "UID FETCH 1:* (FLAGS) (VANISHED)");
    assert!(r[0].starts_with("b2 BAD"), "{r:?}");
}

#[test]
fn qresync_syntax_before_enable_qresync_is_bad() {
    let s = server_with(1);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE CONDSTORE"));
    // RFC 7162 3.2.3 / 3.2.5: BAD, and the selected mailbox stays selected.
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    let r = c.cmd("q", "SELECT INBOX (QRESYNC (1 1))");
    assert_eq!(r, ["q BAD QRESYNC is not enabled."]);
    let r = c.cmd("v", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)");
    assert_eq!(r, ["v BAD QRESYNC is not enabled."]);
    let r = c.cmd("f", "FETCH 1 (FLAGS)");
    assert_tagged_ok(&r);
}

#[test]
fn idle_reports_vanished_and_modseq_once_qresync_is_enabled() {
    let s = server_with(3);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    c.send("i IDLE");
    assert_eq!(c.line(), "+ idling");
    let mut other = login_demo(&s);
    assert_tagged_ok(&other.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t", "STORE 2 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("x", "EXPUNGE"));
    assert_tagged_ok(&other.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)"));
    let mut got = Vec::new();
    while !got
        .iter()
        .any(|l: &String| l.contains("UID 1 FLAGS (\\Seen)"))
    {
        let l = c.line();
        if l != "* OK Still here" {
            got.push(l);
        }
    }
    assert!(got.contains(&"* VANISHED 2".to_string()), "{got:?}");
    assert!(!got.iter().any(|l| l.ends_with("EXPUNGE")), "{got:?}");
    let fetch = got.iter().find(|l| l.contains("UID 1 FLAGS")).unwrap();
    assert!(
        fetch.starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ ("),
        "{got:?}"
    );
    c.send("DONE");
    assert_eq!(c.line(), "i OK Idle completed.");

    // Its own EXPUNGE is reported as VANISHED too (RFC 7162 3.2.7).
    assert_tagged_ok(&c.cmd("t", "STORE 1 +FLAGS.SILENT (\\Deleted)"));
    assert_eq!(
        c.cmd("x", "EXPUNGE"),
        ["* VANISHED 1", "x OK Expunge completed."]
    );

    // Without QRESYNC the same events are EXPUNGE responses, as always.
    let mut plain = login_demo(&s);
    assert_tagged_ok(&plain.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&other.cmd("t", "UID STORE 3 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&other.cmd("x", "EXPUNGE"));
    assert_eq!(
        plain.cmd("n", "NOOP"),
        ["* 1 EXPUNGE", "n OK NOOP completed."]
    );
}

#[test]
fn select_over_a_selected_mailbox_sends_closed_first() {
    let s = server_with(1);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    assert_tagged_ok(&c.cmd("a", "CREATE other"));
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    // RFC 7162 3.2.11: the old mailbox's responses end at [CLOSED], before the new one's.
    let r = c.cmd("x", "EXAMINE other");
    assert_eq!(r[0], "* OK [CLOSED] Previous mailbox closed.");
    assert_tagged_ok(&r);
    // Even a mailbox that never had mail has a valid (non-zero) HIGHESTMODSEQ: a client may
    // send it back in QRESYNC, where 0 is not a mod-sequence-value (RFC 7162 7).
    assert!(code(&r, "HIGHESTMODSEQ") > 0, "{r:?}");
}

/// The index is lost (both files removed while the server is down) and rebuilt from the
/// Maildir: a client's resync is then either refused as a different UIDVALIDITY (the client
/// starts over) or answered from a HIGHESTMODSEQ that did not go backwards, reporting the
/// message expunged before the loss and every message whose modseq is above the client's.
#[test]
fn qresync_after_an_index_rebuild_stays_correct() {
    if skip_unless_maildir("qresync_after_an_index_rebuild_stays_correct") {
        return;
    }
    let mut s = server_with(4);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    let sel = c.cmd("s", "SELECT INBOX");
    let (validity, highest) = (code(&sel, "UIDVALIDITY"), code(&sel, "HIGHESTMODSEQ"));
    assert_tagged_ok(&c.cmd("t", "UID STORE 3 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&c.cmd("x", "EXPUNGE"));
    assert_tagged_ok(&c.cmd("o", "LOGOUT"));
    s.kill();
    let root = s.maildir("demo");
    for name in ["mailcove-index", "mailcove-index.log"] {
        let _ = std::fs::remove_file(root.join(name));
    }
    s.restart();
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    let sel = c.cmd(
        "s",
        &format!("SELECT INBOX (QRESYNC ({validity} {highest}))"),
    );
    assert_tagged_ok(&sel);
    if code(&sel, "UIDVALIDITY") != validity {
        assert!(
            !sel.iter().any(|l| l.contains("VANISHED")),
            "parameters of another UIDVALIDITY were used: {sel:?}"
        );
        return;
    }
    assert!(code(&sel, "HIGHESTMODSEQ") > highest, "{sel:?}");
    let vanished: Vec<&String> = sel.iter().filter(|l| l.contains("VANISHED")).collect();
    assert_eq!(vanished, ["* VANISHED (EARLIER) 3"], "{sel:?}");
}

/// Expunges before the client's mod-sequence are not news to it: within the remembered window
/// VANISHED (EARLIER) holds only the later ones (RFC 7162 3.2.5.1). A backend that does not
/// remember expunges may add the earlier ones (RFC 7162 3.2.5.2), never a present message.
#[test]
fn vanished_earlier_leaves_out_expunges_the_client_already_saw() {
    let s = server_with(5);
    let mut c = login_demo(&s);
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    assert_tagged_ok(&c.cmd("s", "SELECT INBOX"));
    assert_tagged_ok(&c.cmd("t", "UID STORE 2 +FLAGS.SILENT (\\Deleted)"));
    assert_eq!(
        c.cmd("x", "EXPUNGE"),
        ["* VANISHED 2", "x OK Expunge completed."]
    );
    let sel = c.cmd("s2", "SELECT INBOX");
    let (validity, seen) = (code(&sel, "UIDVALIDITY"), code(&sel, "HIGHESTMODSEQ"));
    assert_tagged_ok(&c.cmd("t", "UID STORE 4 +FLAGS.SILENT (\\Deleted)"));
    assert_tagged_ok(&c.cmd("x", "EXPUNGE"));
    let sel = c.cmd("s3", &format!("SELECT INBOX (QRESYNC ({validity} {seen}))"));
    assert_tagged_ok(&sel);
    let vanished: Vec<&String> = sel.iter().filter(|l| l.contains("VANISHED")).collect();
    if memory_backend() {
        assert_eq!(vanished, ["* VANISHED (EARLIER) 4"], "{sel:?}");
    } else {
        assert!(
            matches!(
                vanished.as_slice(),
                [v] if *v == "* VANISHED (EARLIER) 4" || *v == "* VANISHED (EARLIER) 2,4"
            ),
            "{sel:?}"
        );
    }
}

#[test]
fn condstore_and_qresync_are_announced_after_login() {
    let s = server_with(0);
    let mut c = s.imap();
    let greeting = c.line();
    // Before login the list stays short (RFC 7162 3.1.1 / 3.2.3 are about the logged-in server).
    assert!(!greeting.contains("CONDSTORE"), "{greeting}");
    let r = c.cmd("l", "LOGIN demo demo");
    assert_tagged_ok(&r);
    let caps = c.cmd("c", "CAPABILITY");
    let words: Vec<&str> = caps[0].split(' ').collect();
    assert!(
        words.contains(&"CONDSTORE") && words.contains(&"QRESYNC") && words.contains(&"ENABLE"),
        "{caps:?}"
    );
    // RFC 5161 3.1: ENABLE does not change the list.
    assert_tagged_ok(&c.cmd("e", "ENABLE QRESYNC"));
    assert_eq!(c.cmd("c2", "CAPABILITY")[0], caps[0]);
}
