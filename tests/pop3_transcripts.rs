//! POP3 on the wire against the real binary: every command of RFC 1939 with its answers, every
//! error of issue 4 with its response code (and the session going on), pipelining in one write,
//! STLS and implicit TLS, the snapshot semantics, the maildrop lock, and the deletion policies
//! with their effect on the files on disk.

mod common;
mod pop3_common;

use std::time::{Duration, Instant};

use common::*;
use pop3_common::*;

fn sizes(msgs: &[&[u8]]) -> Vec<usize> {
    msgs.iter().map(|m| crlf(m).len()).collect()
}

#[test]
fn every_transaction_command_answers_as_rfc_1939_says() {
    let s = Server::start();
    create_maildir(&s);
    let m1 = msg("one", "Hello\r\n");
    let m2 = msg("two", "first\r\nsecond\r\nthird\r\n");
    let m3 = msg("three", "x\r\n");
    let p1 = deliver(&s, &m1);
    let p2 = deliver(&s, &m2);
    let p3 = deliver(&s, &m3);
    let z = sizes(&[&m1, &m2, &m3]);
    let total: usize = z.iter().sum();
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        &format!(
            "C: USER demo
             S: +OK
             C: PASS demo
             S: +OK Logged in, 3 messages.
             C: STAT
             S: +OK 3 {total}
             C: LIST
             S: +OK 3 messages ({total} octets)
             S: 1 {}
             S: 2 {}
             S: 3 {}
             S: .
             C: LIST 2
             S: +OK 2 {}
             C: NOOP
             S: +OK
             C: RETR 1
             S: +OK {} octets
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: one
             S:
             S: Hello
             S: .
             C: TOP 2 0
             S: +OK
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: two
             S:
             S: .
             C: TOP 2 2
             S: +OK
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: two
             S:
             S: first
             S: second
             S: .
             C: DELE 1
             S: +OK Message 1 deleted.
             C: STAT
             S: +OK 2 {}
             C: LIST
             S: +OK 2 messages ({} octets)
             S: 2 {}
             S: 3 {}
             S: .
             C: RSET
             S: +OK 3 messages ({total} octets)
             C: LIST 1
             S: +OK 1 {}
             C: DELE 3
             S: +OK Message 3 deleted.",
            z[0],
            z[1],
            z[2],
            z[1],
            z[0],
            z[1] + z[2],
            z[1] + z[2],
            z[1],
            z[2],
            z[0],
        ),
    );
    // UIDL: all, then one; the values are 16 hex digits, distinct, and agree.
    c.send("UIDL");
    assert_eq!(c.line(), "+OK Unique-ID listing follows");
    let all = c.multiline();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].starts_with("1 ") && all[1].starts_with("2 "),
        "{all:?}"
    );
    for l in &all {
        let id = l.split(' ').nth(1).unwrap();
        assert_eq!(id.len(), 16, "{l}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{l}");
    }
    assert_ne!(all[0][2..], all[1][2..]);
    c.send("UIDL 2");
    assert_eq!(c.line(), format!("+OK {}", all[1]));
    run_transcript(&mut c, "C: QUIT\nS: +OK Logging out.");
    assert!(c.closed());
    // UPDATE: message 3 is gone; 1 was retrieved (\Seen for IMAP), 2 only read by TOP.
    if on_maildir("every_transaction_command_answers_as_rfc_1939_says: the files left") {
        assert!(find(&s, &p3).is_none(), "{:?}", stored(&s));
        assert!(find(&s, &p1).unwrap().flags.contains('S'));
        assert!(!find(&s, &p2).unwrap().flags.contains('S'));
    }
    // The next session sees the two that are left, numbered afresh, with the same UIDLs.
    let mut c = login(&s);
    c.send("UIDL");
    c.line();
    let again = c.multiline();
    assert_eq!(
        again,
        vec![
            all[0].clone(),
            format!("2 {}", all[1].split(' ').nth(1).unwrap())
        ]
    );
}

#[test]
fn every_error_gets_a_clear_err_and_the_session_goes_on() {
    let s = Server::start();
    create_maildir(&s);
    deliver(&s, &msg("one", "body\r\n"));
    let mut c = s.pop3();
    c.line();
    let long = format!("USER {}", "x".repeat(251));
    assert_eq!(long.len() + 2, 258);
    let just_fits = format!("USER {}", "y".repeat(248));
    assert_eq!(just_fits.len() + 2, 255);
    run_transcript(
        &mut c,
        &format!(
            "# TRANSACTION commands before login
             C: STAT
             S: -ERR Command not valid in this state: not logged in yet.
             C: LIST
             S: -ERR Command not valid in this state: not logged in yet.
             C: RETR 1
             S: -ERR Command not valid in this state: not logged in yet.
             C: TOP 1 1
             S: -ERR Command not valid in this state: not logged in yet.
             C: UIDL
             S: -ERR Command not valid in this state: not logged in yet.
             C: DELE 1
             S: -ERR Command not valid in this state: not logged in yet.
             C: RSET
             S: -ERR Command not valid in this state: not logged in yet.
             C: NOOP
             S: -ERR Command not valid in this state: not logged in yet.
             # unknown, empty, missing and bad arguments
             C: FROB
             S: -ERR Unknown command.
             C:
             S: -ERR Unknown command.
             C: UTF8
             S: -ERR Unknown command.
             C: USER
             S: -ERR Invalid arguments: USER needs exactly one user name.
             C: PASS demo
             S: -ERR No user name given; send USER first.
             C: APOP demo 0123456789abcdef0123456789abcdef
             S: -ERR APOP is not supported; use USER/PASS or AUTH over TLS.
             C: AUTH CRAM-MD5
             S: -ERR Unsupported authentication mechanism.
             C: AUTH PLAIN !!notbase64
             S: -ERR Invalid base64 or malformed SASL data.
             C: STLS now
             S: -ERR Invalid arguments: this command takes no arguments.
             # RFC 2449: 255 octets with CRLF pass, more do not
             C: {just_fits}
             S: +OK
             C: {long}
             S: -ERR Line too long (RFC 2449: at most 255 octets).
             # a wrong password is [AUTH] and USER must be given again
             C: USER demo
             S: +OK
             C: PASS wrong
             S: -ERR [AUTH] Authentication failed.
             C: PASS demo
             S: -ERR No user name given; send USER first.
             C: USER demo
             S: +OK
             C: PASS demo
             S: +OK Logged in, 1 messages.
             # AUTHORIZATION commands after login
             C: USER demo
             S: -ERR Command not valid in this state: already logged in.
             C: PASS demo
             S: -ERR Command not valid in this state: already logged in.
             C: AUTH PLAIN AGRlbW8AZGVtbw==
             S: -ERR Command not valid in this state: already logged in.
             C: STLS
             S: -ERR Command not valid in this state: already logged in.
             C: QUIT
             S: +OK Logging out."
        ),
    );
    assert!(c.closed());
    // A fresh connection: the bad-command limit counts per connection.
    let mut c = login(&s);
    run_transcript(
        &mut c,
        &format!(
            "# message numbers and arguments
             C: RETR
             S: -ERR Invalid arguments: a message number is needed.
             C: RETR x
             S: -ERR Invalid arguments: invalid message number.
             C: RETR 0
             S: -ERR Invalid arguments: invalid message number.
             C: RETR -1
             S: -ERR Invalid arguments: invalid message number.
             C: RETR 2
             S: -ERR There's no message 2.
             C: RETR 4294967296
             S: -ERR Invalid arguments: invalid message number.
             C: LIST 2
             S: -ERR There's no message 2.
             C: LIST 1 2
             S: -ERR Invalid arguments: at most one message number.
             C: UIDL 7
             S: -ERR There's no message 7.
             C: TOP 1
             S: -ERR Invalid arguments: TOP needs a message number and a line count.
             C: TOP 1 many
             S: -ERR Invalid arguments: TOP needs a line count.
             C: TOP 9 1
             S: -ERR There's no message 9.
             C: DELE 2
             S: -ERR There's no message 2.
             C: STAT 1
             S: -ERR Invalid arguments: this command takes no arguments.
             C: DELE 1
             S: +OK Message 1 deleted.
             C: DELE 1
             S: -ERR Message 1 is deleted.
             C: RETR 1
             S: -ERR Message 1 is deleted.
             C: TOP 1 0
             S: -ERR Message 1 is deleted.
             C: LIST 1
             S: -ERR Message 1 is deleted.
             C: UIDL 1
             S: -ERR Message 1 is deleted.
             C: {long}
             S: -ERR Line too long (RFC 2449: at most 255 octets).
             C: RSET
             S: +OK 1 messages *
             C: NOOP
             S: +OK
             C: QUIT
             S: +OK Logging out."
        ),
    );
    assert!(c.closed());
    // RSET undid the DELE: the message is still there.
    if on_maildir("every_error_gets_a_clear_err_and_the_session_goes_on: the file left") {
        assert_eq!(stored(&s).len(), 1);
    }
}

#[test]
fn too_many_bad_commands_or_failed_logins_close_the_connection_with_a_reason() {
    let s = Server::start();
    let mut c = s.pop3();
    c.line();
    c.send_raw("FROB\r\n".repeat(20).as_bytes());
    for _ in 0..19 {
        assert_eq!(c.line(), "-ERR Unknown command.");
    }
    assert_eq!(c.line(), "-ERR Too many invalid commands, disconnecting.");
    assert!(c.closed());

    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS a\nS: -ERR [AUTH] Authentication failed.
         C: AUTH PLAIN AGRlbW8AYg==\nS: -ERR [AUTH] Authentication failed.
         C: USER demo\nS: +OK\nC: PASS c\nS: -ERR [AUTH] Too many failed logins, disconnecting.",
    );
    assert!(c.closed());
}

#[test]
fn pipelined_commands_in_one_write_are_answered_in_order() {
    let s = Server::start();
    create_maildir(&s);
    let m1 = msg("p1", ".dot first\r\n");
    let m2 = msg("p2", "second\r\n");
    deliver(&s, &m1);
    deliver(&s, &m2);
    let z = sizes(&[&m1, &m2]);
    let mut c = s.pop3();
    c.line();
    // CAPA says PIPELINING; everything below is one write.
    run_transcript(
        &mut c,
        &format!(
            "C: CAPA
             C: USER demo
             C: PASS demo
             C: STAT
             C: LIST
             C: RETR 1
             C: TOP 2 0
             C: DELE 1
             C: DELE 2
             C: STAT
             C: QUIT
             S: +OK Capability list follows
             S: TOP
             S: UIDL
             S: RESP-CODES
             S: AUTH-RESP-CODE
             S: PIPELINING
             S: USER
             S: SASL PLAIN LOGIN
             S: STLS
             S: EXPIRE NEVER
             S: IMPLEMENTATION mailcove-{{*}}
             S: .
             S: +OK
             S: +OK Logged in, 2 messages.
             S: +OK 2 {}
             S: +OK 2 messages ({} octets)
             S: 1 {}
             S: 2 {}
             S: .
             S: +OK {} octets
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: p1
             S:
             S: ..dot first
             S: .
             S: +OK
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: p2
             S:
             S: .
             S: +OK Message 1 deleted.
             S: +OK Message 2 deleted.
             S: +OK 0 0
             S: +OK Logging out.",
            z[0] + z[1],
            z[0] + z[1],
            z[0],
            z[1],
            z[0],
        ),
    );
    assert!(c.closed());
    if on_maildir("pipelined_commands_in_one_write_are_answered_in_order: no file left") {
        assert!(stored(&s).is_empty(), "{:?}", stored(&s));
    }
}

#[test]
fn a_whole_session_through_stls_on_a_remote_connection() {
    let s = Server::start();
    create_maildir(&s);
    let m = msg("tls", "secret body\r\n");
    let p = deliver(&s, &m);
    let mut c = Client::plain(s.ports.pop3_remote);
    c.line();
    // Not TLS, not loopback: no plaintext credentials, and the mechanism list is empty.
    run_transcript(
        &mut c,
        "C: USER demo
         S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; issue STLS first.
         C: AUTH PLAIN AGRlbW8AZGVtbw==
         S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; issue STLS first.
         C: AUTH LOGIN
         S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; issue STLS first.
         C: AUTH
         S: +OK
         S: .
         C: STLS
         S: +OK Begin TLS negotiation now.",
    );
    c.upgrade(&s.cert.der);
    run_transcript(
        &mut c,
        &format!(
            "C: AUTH
             S: +OK
             S: PLAIN
             S: LOGIN
             S: .
             C: AUTH PLAIN AGRlbW8AZGVtbw==
             S: +OK Logged in, 1 messages.
             C: CAPA
             S: +OK Capability list follows
             S: TOP
             S: UIDL
             S: RESP-CODES
             S: AUTH-RESP-CODE
             S: PIPELINING
             S: USER
             S: SASL PLAIN LOGIN
             S: EXPIRE NEVER
             S: IMPLEMENTATION mailcove-{{*}}
             S: .
             C: RETR 1
             S: +OK {} octets
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: tls
             S:
             S: secret body
             S: .
             C: DELE 1
             S: +OK Message 1 deleted.
             C: QUIT
             S: +OK Logging out.",
            m.len()
        ),
    );
    if on_maildir("a_whole_session_through_stls_on_a_remote_connection: the file is gone") {
        assert!(find(&s, &p).is_none());
    }
}

#[test]
fn a_whole_session_over_implicit_tls_with_auth_login() {
    let s = Server::start();
    create_maildir(&s);
    let m = msg("995", "over pop3s\r\n");
    deliver(&s, &m);
    let mut c = s.pop3s();
    assert_eq!(c.line(), "+OK mailcove ready.");
    run_transcript(
        &mut c,
        &format!(
            "C: CAPA
             S: +OK Capability list follows
             S: TOP
             S: UIDL
             S: RESP-CODES
             S: AUTH-RESP-CODE
             S: PIPELINING
             S: USER
             S: SASL PLAIN LOGIN
             S: EXPIRE NEVER
             S: IMPLEMENTATION mailcove-{{*}}
             S: .
             C: STLS
             S: -ERR STLS not available: TLS is already active.
             C: AUTH LOGIN
             S: + VXNlcm5hbWU6
             C: ZGVtbw==
             S: + UGFzc3dvcmQ6
             C: ZGVtbw==
             S: +OK Logged in, 1 messages.
             C: TOP 1 5
             S: +OK
             S: From: alice@example.org
             S: To: demo@example.org
             S: Subject: 995
             S:
             S: over pop3s
             S: .
             C: LIST
             S: +OK 1 messages ({} octets)
             S: 1 {}
             S: .
             C: QUIT
             S: +OK Logging out.",
            m.len(),
            m.len()
        ),
    );
}

#[test]
fn the_maildrop_is_a_snapshot_taken_at_login() {
    let s = Server::start();
    create_maildir(&s);
    deliver(&s, &msg("before", "a\r\n"));
    let mut c = login(&s);
    run_transcript(&mut c, "C: STAT\nS: +OK 1 *");
    // Mail arriving during the session is not shown, not even after NOOP or RSET.
    deliver(&s, &msg("during", "b\r\n"));
    run_transcript(
        &mut c,
        "C: NOOP\nS: +OK\nC: RSET\nS: +OK 1 messages *\nC: STAT\nS: +OK 1 *
         C: LIST 2\nS: -ERR There's no message 2.\nC: DELE 1\nS: +OK *\nC: QUIT\nS: +OK *",
    );
    // ... and is there for the next session, without the one deleted.
    let mut c = login(&s);
    run_transcript(
        &mut c,
        "C: TOP 1 0\nS: +OK\nS: From: *\nS: To: *\nS: Subject: during\nS:\nS: .",
    );
}

#[test]
fn a_message_expunged_by_someone_else_during_the_session_is_a_clean_error() {
    if skip_unless_maildir("a_message_expunged_by_someone_else_during_the_session_is_a_clean_error")
    {
        return;
    }
    let s = Server::start();
    create_maildir(&s);
    let p1 = deliver(&s, &msg("gone", "a\r\n"));
    deliver(&s, &msg("kept", "b\r\n"));
    let mut c = login(&s);
    // Another MUA removes the file behind the snapshot's back.
    let gone = find(&s, &p1).unwrap();
    let root = s.maildir("demo");
    for sub in ["cur", "new"] {
        let _ = std::fs::remove_file(root.join(sub).join(&gone.name));
    }
    run_transcript(
        &mut c,
        "C: RETR 1
         S: -ERR Message 1 was removed by another session.
         C: TOP 2 0
         S: +OK
         S: From: *
         S: To: *
         S: Subject: kept
         S:
         S: .
         C: DELE 2
         S: +OK Message 2 deleted.
         C: QUIT
         S: +OK Logging out.",
    );
    assert!(stored(&s).is_empty(), "{:?}", stored(&s));
}

#[test]
fn a_second_login_gets_in_use_and_a_dropped_session_deletes_nothing() {
    let s = Server::start();
    create_maildir(&s);
    let p = deliver(&s, &msg("locked", "x\r\n"));
    let mut first = login(&s);
    run_transcript(&mut first, "C: RETR 1\nS: +OK *");
    first.multiline();
    run_transcript(&mut first, "C: DELE 1\nS: +OK Message 1 deleted.");
    // The second login is refused with [IN-USE] and stays in AUTHORIZATION; so does AUTH.
    let mut second = s.pop3();
    second.line();
    run_transcript(
        &mut second,
        "C: USER demo
         S: +OK
         C: PASS demo
         S: -ERR [IN-USE] Mailbox is locked by another POP3 session.
         C: AUTH PLAIN AGRlbW8AZGVtbw==
         S: -ERR [IN-USE] Mailbox is locked by another POP3 session.
         C: STAT
         S: -ERR Command not valid in this state: not logged in yet.
         C: QUIT
         S: +OK Logging out.",
    );
    // The first client vanishes without QUIT: no UPDATE state, nothing deleted, lock released.
    drop(first);
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut c = loop {
        let mut c = s.pop3();
        c.line();
        c.send("USER demo");
        c.line();
        c.send("PASS demo");
        let l = c.line();
        if l.starts_with("+OK Logged in") {
            break c;
        }
        assert!(l.starts_with("-ERR [IN-USE]"), "{l}");
        assert!(Instant::now() < deadline, "the lock was never released");
        std::thread::sleep(Duration::from_millis(50));
    };
    run_transcript(&mut c, "C: STAT\nS: +OK 1 *\nC: QUIT\nS: +OK *");
    if !on_maildir("a_second_login_gets_in_use_and_a_dropped_session_deletes_nothing: the file") {
        return;
    }
    let m = find(&s, &p).expect("message deleted by a session that never sent QUIT");
    // Not even \Seen: RETR without QUIT changes nothing.
    assert!(!m.flags.contains('S'), "{m:?}");
}

#[test]
fn keep_policy_hides_deleted_messages_but_keeps_them_flagged_for_imap() {
    let s = Server::builder()
        .config("[pop3]\ndelete_policy = \"keep\"\n")
        .start();
    create_maildir(&s);
    let p1 = deliver(&s, &msg("k1", "a\r\n"));
    let p2 = deliver(&s, &msg("k2", "b\r\n"));
    let mut c = login(&s);
    run_transcript(
        &mut c,
        "C: CAPA\nS: +OK *\nS: TOP\nS: UIDL\nS: RESP-CODES\nS: AUTH-RESP-CODE\nS: PIPELINING
         S: USER\nS: SASL PLAIN LOGIN\nS: EXPIRE NEVER\nS: IMPLEMENTATION *\nS: .
         C: DELE 1\nS: +OK *\nC: QUIT\nS: +OK Logging out.",
    );
    if on_maildir("keep_policy_hides_deleted_messages_but_keeps_them_flagged_for_imap: files") {
        let kept = find(&s, &p1).expect("keep policy removed the file");
        assert!(
            kept.flags.contains('S') && kept.flags.contains('T'),
            "{kept:?}"
        );
        assert!(find(&s, &p2).unwrap().flags.is_empty());
    }
    // A later POP3 session does not offer it again.
    let mut c = login(&s);
    run_transcript(
        &mut c,
        "C: STAT\nS: +OK 1 *\nC: TOP 1 0\nS: +OK\nS: From: *\nS: To: *\nS: Subject: k2\nS:\nS: .",
    );
}

#[test]
fn per_user_policy_in_the_users_file_overrides_the_config() {
    if skip_unless_maildir("per_user_policy_in_the_users_file_overrides_the_config") {
        return;
    }
    let s = Server::builder()
        .users(&[
            format!(
                "demo:{}::::::userdb_pop3_delete_policy=keep",
                cheap_argon2("demo")
            ),
            format!("other:{}::::::", cheap_argon2("other")),
        ])
        .start();
    create_maildir(&s);
    let p = deliver(&s, &msg("mine", "a\r\n"));
    let mut c = login(&s);
    run_transcript(&mut c, "C: DELE 1\nS: +OK *\nC: QUIT\nS: +OK *");
    assert!(find(&s, &p).unwrap().flags.contains('T'));
    // The other user has the server-wide delete policy.
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER other\nS: +OK\nC: PASS other\nS: +OK Logged in, 0 messages.\nC: QUIT\nS: +OK *",
    );
    let q = deliver_to(&s.maildir("other"), &msg("theirs", "b\r\n"));
    let mut c = s.pop3();
    c.line();
    run_transcript(
        &mut c,
        "C: USER other\nS: +OK\nC: PASS other\nS: +OK Logged in, 1 messages.
         C: DELE 1\nS: +OK *\nC: QUIT\nS: +OK *",
    );
    assert!(!q.exists());
    let left = std::fs::read_dir(s.maildir("other").join("cur"))
        .unwrap()
        .count()
        + std::fs::read_dir(s.maildir("other").join("new"))
            .unwrap()
            .count();
    assert_eq!(left, 0);
}

/// Appends a record to the INBOX index log saying `uid` was first downloaded at `when`, the way
/// the storage records downloads (one text line with its CRC-32); the server must not be running.
fn backdate_download(s: &Server, uid: u32, when: i64) {
    let log = s.maildir("demo").join("mailcove-index.log");
    let mut data = std::fs::read(&log).expect("no index log after a download");
    assert!(data.ends_with(b"\n"));
    let body = format!("P {uid} {when}");
    let line = format!("{body} #{:08x}\n", crc32fast::hash(body.as_bytes()));
    data.extend_from_slice(line.as_bytes());
    // Rewrite in place so owner and mode stay the server's.
    std::fs::write(&log, data).unwrap();
}

#[test]
fn keep_days_expunges_messages_that_many_days_after_their_first_download() {
    if skip_unless_maildir("keep_days_expunges_messages_that_many_days_after_their_first_download")
    {
        return;
    }
    let mut s = Server::builder()
        .config("[pop3]\ndelete_policy = \"keep-days\"\nkeep_days = 3\n")
        .start();
    create_maildir(&s);
    let old = deliver(&s, &msg("old", "a\r\n"));
    let fresh = deliver(&s, &msg("fresh", "b\r\n"));
    let never = deliver(&s, &msg("never downloaded", "c\r\n"));
    let mut c = s.pop3();
    c.line();
    c.send("CAPA");
    c.line();
    assert!(c.multiline().contains(&"EXPIRE 3 USER".to_string()));
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, 3 messages.",
    );
    c.send("CAPA");
    c.line();
    assert!(c.multiline().contains(&"EXPIRE 3".to_string()));
    c.send("UIDL 1");
    let uid_old = u32::from_str_radix(&c.line()[6..14], 16).unwrap();
    // Leave mail on the server: download two, delete none.
    for n in [1, 2] {
        c.send(&format!("RETR {n}"));
        assert!(c.line().starts_with("+OK"));
        c.multiline();
    }
    run_transcript(&mut c, "C: QUIT\nS: +OK Logging out.");
    // Downloaded just now: nothing expires yet.
    let mut c = login(&s);
    run_transcript(&mut c, "C: STAT\nS: +OK 3 *\nC: QUIT\nS: +OK *");
    // Four days later, as far as message 1 is concerned.
    s.kill();
    let four_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 4 * 86_400;
    backdate_download(&s, uid_old, four_days_ago);
    s.restart();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        "C: STAT\nS: +OK 2 *\nC: TOP 1 0\nS: +OK\nS: From: *\nS: To: *\nS: Subject: fresh\nS:\nS: .
         C: QUIT\nS: +OK *",
    );
    assert!(find(&s, &old).is_none(), "{:?}", stored(&s));
    assert!(find(&s, &fresh).is_some());
    assert!(find(&s, &never).is_some());
}

#[test]
fn retr_marks_seen_unless_configured_otherwise() {
    let s = Server::builder()
        .config("[pop3]\nmark_seen_on_retr = false\n")
        .start();
    create_maildir(&s);
    let p = deliver(&s, &msg("unseen", "a\r\n"));
    let mut c = login(&s);
    c.send("RETR 1");
    assert!(c.line().starts_with("+OK"));
    c.multiline();
    run_transcript(&mut c, "C: QUIT\nS: +OK Logging out.");
    if on_maildir("retr_marks_seen_unless_configured_otherwise: the file's flags") {
        assert!(!find(&s, &p).unwrap().flags.contains('S'));
    }
}

#[test]
fn uidls_survive_sessions_and_restarts_and_are_adopted_from_dovecot() {
    if skip_unless_maildir("uidls_survive_sessions_and_restarts_and_are_adopted_from_dovecot") {
        return;
    }
    let mut s = Server::start();
    create_maildir(&s);
    for i in 0..3 {
        deliver(&s, &msg(&format!("u{i}"), "x\r\n"));
    }
    let uidl = |s: &Server| {
        let mut c = login(s);
        c.send("UIDL");
        assert!(c.line().starts_with("+OK"));
        let l = c.multiline();
        run_transcript(&mut c, "C: QUIT\nS: +OK *");
        l
    };
    let first = uidl(&s);
    assert_eq!(first.len(), 3);
    assert_eq!(uidl(&s), first);
    s.restart();
    assert_eq!(uidl(&s), first);

    // A Maildir migrated from Dovecot: its dovecot-uidlist gives UID 42 and UIDVALIDITY
    // 1700000123, so the UIDL is Dovecot's default %08Xu%08Xv of those, what the client knows.
    s.kill();
    let root = s.maildir("demo");
    for e in std::fs::read_dir(&root).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("mailcove-index") || name.starts_with("mailcove-cache") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    for sub in ["cur", "new"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    let p = deliver(&s, &msg("from dovecot", "x\r\n"));
    let base = p.file_name().unwrap().to_string_lossy().into_owned();
    let cur = root.join("cur").join(format!("{base}:2,S"));
    std::fs::rename(&p, &cur).unwrap();
    std::fs::write(
        root.join("dovecot-uidlist"),
        format!("3 V1700000123 N43 G0123456789abcdef0123456789abcdef\n42 :{base}\n"),
    )
    .unwrap();
    s.restart();
    assert_eq!(
        uidl(&s),
        vec![format!("1 0000002A{:08X}", 1_700_000_123u32)]
    );
}

#[test]
fn login_delay_is_advertised_and_enforced_after_the_password() {
    let s = Server::builder()
        .config("[pop3]\nlogin_delay_secs = 3600\n")
        .start();
    let mut c = s.pop3();
    c.line();
    c.send("CAPA");
    c.line();
    assert!(c.multiline().contains(&"LOGIN-DELAY 3600".to_string()));
    run_transcript(
        &mut c,
        "C: USER demo\nS: +OK\nC: PASS demo\nS: +OK Logged in, *\nC: QUIT\nS: +OK *",
    );
    let mut c = s.pop3();
    c.line();
    // A wrong password is still just [AUTH]: the delay reveals nothing before the password.
    run_transcript(
        &mut c,
        "C: USER demo
         S: +OK
         C: PASS wrong
         S: -ERR [AUTH] Authentication failed.
         C: USER demo
         S: +OK
         C: PASS demo
         S: -ERR [LOGIN-DELAY] Logged in too recently; wait {*} more seconds.
         C: QUIT
         S: +OK Logging out.",
    );
}

#[test]
fn plaintext_on_a_remote_port_without_tls_points_to_a_tls_port() {
    let port = free_port();
    let _server = Server::builder()
        .config(&format!(
            "[[listener]]\nprotocol = \"pop3\"\naddress = \"127.0.0.1:{port}\"\ntls = \"none\"\nassume_remote = true\n"
        ))
        .start();
    let mut c = Client::plain(port);
    c.line();
    run_transcript(
        &mut c,
        "C: CAPA
         S: +OK Capability list follows
         S: TOP
         S: UIDL
         S: RESP-CODES
         S: AUTH-RESP-CODE
         S: PIPELINING
         S: EXPIRE NEVER
         S: IMPLEMENTATION *
         S: .
         C: USER demo
         S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use a TLS port.
         C: AUTH PLAIN AGRlbW8AZGVtbw==
         S: -ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use a TLS port.
         C: STLS
         S: -ERR STLS not available: not offered on this port.",
    );
}

#[test]
fn imap_keeps_working_while_pop3_holds_the_lock_and_sees_its_commit() {
    let s = Server::start();
    create_maildir(&s);
    deliver(&s, &msg("first", "a\r\n"));
    deliver(&s, &msg("second", "b\r\n"));
    let mut pop = login(&s);
    c_retr(&mut pop, 2);
    let mut imap = s.imap();
    assert!(imap.line().starts_with("* OK"));
    let ok = |lines: &[String], tag: &str| {
        assert!(
            lines.last().unwrap().starts_with(&format!("{tag} OK")),
            "{lines:?}"
        );
    };
    ok(&imap.cmd("a1", "LOGIN demo demo"), "a1");
    let sel = imap.cmd("a2", "SELECT INBOX");
    ok(&sel, "a2");
    assert!(sel.contains(&"* 2 EXISTS".to_string()), "{sel:?}");
    ok(&imap.cmd("a3", "STORE 1 +FLAGS (\\Flagged)"), "a3");
    let fetch = imap.cmd("a4", "FETCH 1:2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    ok(&fetch, "a4");
    assert!(
        fetch.iter().any(|l| l.starts_with("* 2 FETCH")),
        "{fetch:?}"
    );
    assert!(
        fetch.iter().any(|l| l.contains("Subject: second")),
        "{fetch:?}"
    );
    // POP3 commits: message 1 deleted, message 2 retrieved (so \Seen).
    run_transcript(
        &mut pop,
        "C: DELE 1\nS: +OK *\nC: QUIT\nS: +OK Logging out.",
    );
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let lines = imap.cmd("a5", "NOOP");
        ok(&lines, "a5");
        seen.extend(lines);
        if seen.iter().any(|l| l == "* 1 EXPUNGE") && seen.iter().any(|l| l.contains("\\Seen")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "IMAP never saw the POP3 commit: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fetch = imap.cmd("a6", "FETCH 1 (FLAGS)");
    ok(&fetch, "a6");
    assert!(
        fetch
            .iter()
            .any(|l| l.starts_with("* 1 FETCH (FLAGS (") && l.contains("\\Seen")),
        "{fetch:?}"
    );
    ok(&imap.cmd("a7", "LOGOUT"), "a7");
}

fn c_retr(c: &mut Client, n: u32) {
    c.send(&format!("RETR {n}"));
    assert!(c.line().starts_with("+OK"));
    c.multiline();
}
