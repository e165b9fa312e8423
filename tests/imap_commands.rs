//! The IMAP command table against the real binary: every command sent in a state it is not valid
//! in gets the tagged `BAD` of RFC 3501 section 6 (and nothing else happens), commands parsed but
//! not implemented get `BAD ... is not supported`, and an unknown SEARCH charset answers
//! `NO [BADCHARSET (...)]` through the one error mapping.

mod common;

use common::*;

const NOT_LOGGED_IN: &str = "BAD Command not valid in this state: log in first.";
const LOGGED_IN: &str = "BAD Command not valid in this state: already logged in.";
const NOT_SELECTED: &str = "BAD Command not valid in this state: no mailbox is selected.";

/// Commands valid only once logged in (authenticated or selected state), one line each.
const AUTHENTICATED: &[&str] = &[
    "ENABLE CONDSTORE",
    "NAMESPACE",
    "IDLE",
    "COMPRESS DEFLATE",
    "SELECT INBOX",
    "EXAMINE INBOX",
    "CREATE a",
    "DELETE a",
    "RENAME a b",
    "SUBSCRIBE a",
    "UNSUBSCRIBE a",
    "LIST \"\" *",
    "LSUB \"\" *",
    "STATUS INBOX (MESSAGES)",
    "APPEND INBOX {1+}\r\nx",
    "GETQUOTA \"\"",
    "GETQUOTAROOT INBOX",
    "SETQUOTA \"\" ()",
];

/// Commands valid only with a mailbox selected.
const SELECTED: &[&str] = &[
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "UID EXPUNGE 1",
    "SEARCH ALL",
    "UID SEARCH ALL",
    "FETCH 1 FLAGS",
    "UID FETCH 1 FLAGS",
    "STORE 1 +FLAGS (\\Seen)",
    "UID STORE 1 +FLAGS (\\Seen)",
    "COPY 1 a",
    "UID COPY 1 a",
    "MOVE 1 a",
    "UID MOVE 1 a",
];

/// Commands valid only before login.
const NOT_AUTHENTICATED: &[&str] = &["LOGIN demo demo", "AUTHENTICATE PLAIN", "STARTTLS"];

/// Sends each of `commands` with its own tag and expects `tag <answer>` for each. Fewer than
/// `MAX_BAD_COMMANDS` per call, since every one counts as a client mistake.
fn expect_each(c: &mut Client, prefix: &str, commands: &[&str], answer: &str) {
    assert!(commands.len() < mailcove::limits::MAX_BAD_COMMANDS as usize);
    for (i, command) in commands.iter().enumerate() {
        let tag = format!("{prefix}{i}");
        c.send_raw(format!("{tag} {command}\r\n").as_bytes());
        let got = c.line();
        assert_eq!(got, format!("{tag} {answer}"), "{command}");
    }
}

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    c.line();
    run_transcript(&mut c, "C: l LOGIN demo demo\nS: l OK {*}");
    c
}

#[test]
fn before_login_only_any_state_and_login_commands_run() {
    let s = Server::start();
    let mut c = s.imap();
    c.line();
    expect_each(&mut c, "a", AUTHENTICATED, NOT_LOGGED_IN);
    // A fresh connection: the first one used up most of its bad-command allowance.
    let mut c = s.imap();
    c.line();
    expect_each(&mut c, "s", SELECTED, NOT_LOGGED_IN);
    // Any-state commands still work, and nothing above created or changed anything.
    run_transcript(
        &mut c,
        r#"C: n NOOP
S: n OK NOOP completed.
C: i ID NIL
S: * ID ({*})
S: i OK ID completed.
C: l LOGIN demo demo
S: l OK {*}
C: x LIST "" a
S: x OK List completed.
C: y LIST "" b
S: y OK List completed.
C: z STATUS INBOX (MESSAGES)
S: * STATUS INBOX (MESSAGES 0)
S: z OK Status completed."#,
    );
}

#[test]
fn after_login_login_commands_and_selected_commands_are_refused() {
    let s = Server::start();
    let mut c = login(&s);
    expect_each(&mut c, "p", NOT_AUTHENTICATED, LOGGED_IN);
    expect_each(&mut c, "s", SELECTED, NOT_SELECTED);
    // Commands of the authenticated state run once logged in.
    run_transcript(
        &mut c,
        r#"C: q2 GETQUOTAROOT INBOX
S: * QUOTAROOT INBOX ""
S: * QUOTA "" ()
S: q2 OK Getquotaroot completed.
C: q3 GETQUOTA ""
S: * QUOTA "" ()
S: q3 OK Getquota completed."#,
    );
}

#[test]
fn in_the_selected_state_login_commands_are_refused_and_the_rest_run() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r"C: a SELECT INBOX
S: * FLAGS {*}
S: * OK [PERMANENTFLAGS {*}
S: * 0 EXISTS
S: * 0 RECENT
S: * OK [UIDVALIDITY {*}
S: * OK [UIDNEXT 1] Predicted next UID
S: a OK [READ-WRITE] Select completed.",
    );
    expect_each(&mut c, "p", NOT_AUTHENTICATED, LOGGED_IN);
    run_transcript(
        &mut c,
        r#"C: b CHECK
S: b OK Check completed.
C: c NAMESPACE
S: * NAMESPACE (("" "/")) NIL NIL
S: c OK Namespace completed.
C: d CAPABILITY
S: * CAPABILITY IMAP4rev1 *
S: d OK Capability completed.
C: e UNSELECT
S: e OK Unselect completed.
C: f FETCH 1 FLAGS
S: f BAD Command not valid in this state: no mailbox is selected.
C: g LOGOUT
S: * BYE Logging out.
S: g OK Logout completed."#,
    );
    assert!(c.closed());
}

#[test]
fn an_unknown_search_charset_answers_no_badcharset_and_empties_the_saved_result() {
    let s = Server::start();
    let mut c = login(&s);
    for _ in 0..2 {
        let body = "Subject: x\r\n\r\nx\r\n";
        c.send_raw(format!("ap APPEND INBOX {{{}+}}\r\n{body}\r\n", body.len()).as_bytes());
        let got = c.until("ap ").pop().unwrap_or_default();
        assert!(got.starts_with("ap OK [APPENDUID "), "{got}");
    }
    run_transcript(
        &mut c,
        r"C: a EXAMINE INBOX
S: * FLAGS {*}
S: * OK [PERMANENTFLAGS {*}
S: * 2 EXISTS
# RFC 3501 2.3.2: the first session to open the mailbox sees the APPENDs \Recent, read-only too.
S: * 2 RECENT
S: * OK [UNSEEN 1] First unseen.
S: * OK [UIDVALIDITY {*}
S: * OK [UIDNEXT 3] Predicted next UID
S: a OK [READ-ONLY] Examine completed.
C: b SEARCH CHARSET KOI8-R ALL
S: b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.
C: c UID SEARCH CHARSET X-UNKNOWN TEXT x
S: c NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.
C: d SEARCH CHARSET us-ascii ALL
S: * SEARCH 1 2
S: d OK Search completed.
# RFC 5182 2.1: SAVE fills $, and a SEARCH with SAVE that answers NO empties it.
C: e SEARCH RETURN (SAVE) ALL
S: e OK Search completed.
C: f FETCH $ (UID)
S: * 1 FETCH (UID 1)
S: * 2 FETCH (UID 2)
S: f OK Fetch completed.
C: g SEARCH RETURN (SAVE) CHARSET KOI8-R ALL
S: g NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset.
C: h FETCH $ (UID)
S: h OK Fetch completed.",
    );
}

#[test]
fn a_reload_changing_the_separator_warns_and_imap_keeps_the_stores_separator() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a CREATE Work/Projects
S: a OK Create completed."#,
    );
    let cfg = std::fs::read_to_string(&s.config_path).unwrap();
    let changed = cfg.replacen("[mail]\n", "[mail]\nseparator = \".\"\n", 1);
    assert_ne!(cfg, changed);
    std::fs::write(&s.config_path, changed).unwrap();
    s.signal(nix::sys::signal::Signal::SIGHUP);
    let log = s.wait_log(|l| l.contains("configuration reloaded"));
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("mail.separator changed")
            && l.contains("only after a restart")),
        "{log}"
    );
    // Both the session from before the reload and a new one still see `/` everywhere.
    let mut fresh = login(&s);
    for c in [&mut c, &mut fresh] {
        run_transcript(
            c,
            r#"C: b LIST "" ""
S: * LIST (\Noselect) "/" ""
S: b OK List completed.
C: c LIST "" Work/%
S: * LIST (\HasNoChildren) "/" Work/Projects
S: c OK List completed.
C: d NAMESPACE
S: * NAMESPACE (("" "/")) NIL NIL
S: d OK Namespace completed.
C: e CREATE Work/Later/
S: e OK Create completed.
C: f LSUB "" Work/*
S: f OK Lsub completed.
C: g DELETE Work/Later
S: g OK Delete completed."#,
        );
    }
}
