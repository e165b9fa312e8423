//! QUOTA (RFC 9208, and the RFC 2087 forms older clients send) on the wire, against the real
//! binary: the capabilities, GETQUOTAROOT / GETQUOTA for a user without limits, with the
//! configured default and with a per-user `userdb_quota_rule`, SETQUOTA refused with `[NOPERM]`,
//! `NO [OVERQUOTA]` for APPEND and COPY over the message and the byte limit, MOVE that stays
//! free (it adds nothing to the user's one quota root), and STATUS DELETED / DELETED-STORAGE.
//!
//! Every expected number is worked out by hand from the messages of this file: each is built to
//! an exact size, and both backends store the bytes as sent, so STORAGE is the sum of the sizes
//! in units of 1024 octets, rounded up (RFC 9208 5.1; Dovecot rounds the same way).

mod common;

use common::*;

/// A message of exactly `size` bytes (CRLF lines only, so its RFC822.SIZE is `size` too).
fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!("Subject: m{i}\r\n\r\n").into_bytes();
    assert!(m.len() + 2 <= size);
    m.resize(size - 2, b'x');
    m.extend_from_slice(b"\r\n");
    m
}

/// APPEND with a LITERAL+ literal; the lines of the answer, the tagged one last.
fn append(c: &mut Client, tag: &str, mailbox: &str, data: &[u8]) -> Vec<String> {
    let mut cmd = format!("{tag} APPEND {mailbox} {{{}+}}\r\n", data.len()).into_bytes();
    cmd.extend_from_slice(data);
    cmd.extend_from_slice(b"\r\n");
    c.send_raw(&cmd);
    c.until(&format!("{tag} "))
}

fn login(s: &Server, user: &str) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", &format!("LOGIN {user} pw"));
    assert!(r.last().is_some_and(|l| l.starts_with("l OK")), "{r:?}");
    c
}

/// A users-file line for `name` (password `pw`) with the given extra fields.
fn user(name: &str, extra: &str) -> String {
    format!("{name}:{}::::::{extra}", cheap_argon2("pw"))
}

/// Config text that sets the `[mail]` default quota: appended right after the harness's
/// `[mail]` table, so it supplies its own `[auth]` (the harness then adds none).
fn mail_defaults(bytes: u64, messages: u64) -> String {
    format!(
        "quota_bytes = {bytes}\nquota_messages = {messages}\n\n[auth]\nusers_file = \"$DIR/users\"\n\
         failure_delay_ms = 50\nfailure_delay_max_ms = 200\nhash_threads = 2\n"
    )
}

const OVER: &str = "NO [OVERQUOTA] Quota exceeded (mailbox for user is full).";

#[test]
fn capabilities_and_a_user_without_limits() {
    let s = Server::builder().users(&[user("free", "")]).start();
    let mut c = login(&s, "free");
    let caps = c.cmd("c", "CAPABILITY");
    let words: Vec<&str> = caps[0].split(' ').collect();
    for w in ["QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE"] {
        assert!(words.contains(&w), "{w} missing: {caps:?}");
    }
    // RFC 9208 4.1.3: QUOTASET only where SETQUOTA works, and here it never does.
    assert!(!words.contains(&"QUOTASET"), "{caps:?}");
    // RFC 9208 4.2.1: resources not listed are unlimited, so no limit is an empty list.
    // RFC 9208 4.1.2: the mailbox need not exist.
    run_transcript(
        &mut c,
        r##"C: a GETQUOTAROOT INBOX
S: * QUOTAROOT INBOX ""
S: * QUOTA "" ()
S: a OK Getquotaroot completed.
C: b GETQUOTAROOT "Not there"
S: * QUOTAROOT "Not there" ""
S: * QUOTA "" ()
S: b OK Getquotaroot completed.
C: c GETQUOTA ""
S: * QUOTA "" ()
S: c OK Getquota completed.
C: d GETQUOTA "#user/free"
S: d NO [NONEXISTENT] Quota root doesn't exist.
C: e SETQUOTA "" (STORAGE 512)
S: e NO [NOPERM] Quota can be changed only by the administrator.
C: f SETQUOTA "" ()
S: f NO [NOPERM] Quota can be changed only by the administrator.
C: g SETQUOTA "" (STORAGE 512 MESSAGE 10)
S: g NO [NOPERM] Quota can be changed only by the administrator.
C: h SETQUOTA "" STORAGE 512
S: h BAD *
C: i SETQUOTA "" (STORAGE)
S: i BAD *
C: j GETQUOTAROOT
S: j BAD *
C: k GETQUOTA
S: k BAD *
C: l NOOP
S: l OK NOOP completed."##,
    );
    // The RFC 2087 forms: any case, the root as a quoted string or a literal, the mailbox
    // quoted; the same grammar as RFC 9208, which older clients (imaplib, Thunderbird) send.
    run_transcript(
        &mut c,
        r#"C: m getquotaroot "inbox"
S: * QUOTAROOT INBOX ""
S: * QUOTA "" ()
S: m OK Getquotaroot completed.
C: n GetQuota {0+}
C:
S: * QUOTA "" ()
S: n OK Getquota completed.
C: o setquota "" (storage 1)
S: o NO [NOPERM] Quota can be changed only by the administrator."#,
    );
    // Before login, all of them are refused like any authenticated-state command.
    let mut c = s.imap();
    c.line();
    run_transcript(
        &mut c,
        r#"C: a GETQUOTAROOT INBOX
S: a BAD Command not valid in this state: log in first.
C: b SETQUOTA "" ()
S: b BAD Command not valid in this state: log in first."#,
    );
}

#[test]
fn per_user_rules_override_the_configured_default() {
    let s = Server::builder()
        .users(&[
            user("plain", ""),
            user(
                "ruled",
                "userdb_quota_rule=*:storage=4K userdb_quota_rule2=*:messages=3",
            ),
            // storage=0 lifts the byte limit; the message default stays.
            user("nobytes", "userdb_quota_rule=*:storage=0"),
            // Dovecot's storage without a unit is in kilobytes.
            user("kilo", "quota_rule=*:storage=2048"),
        ])
        .config(&mail_defaults(1 << 20, 100))
        .start();
    let mut c = login(&s, "plain");
    run_transcript(
        &mut c,
        r#"C: a GETQUOTA ""
S: * QUOTA "" (STORAGE 0 1024 MESSAGE 0 100)
S: a OK Getquota completed."#,
    );
    let mut c = login(&s, "nobytes");
    run_transcript(
        &mut c,
        r#"C: a GETQUOTA ""
S: * QUOTA "" (MESSAGE 0 100)
S: a OK Getquota completed."#,
    );
    let mut c = login(&s, "kilo");
    run_transcript(
        &mut c,
        r#"C: a GETQUOTA ""
S: * QUOTA "" (STORAGE 0 2048 MESSAGE 0 100)
S: a OK Getquota completed."#,
    );

    // 3 messages at most: 600 + 700 + 1000 bytes = 2300 bytes, 3 KiB rounded up.
    let mut c = login(&s, "ruled");
    run_transcript(
        &mut c,
        r#"C: a GETQUOTAROOT INBOX
S: * QUOTAROOT INBOX ""
S: * QUOTA "" (STORAGE 0 4 MESSAGE 0 3)
S: a OK Getquotaroot completed."#,
    );
    assert_tagged_ok(&append(&mut c, "b", "INBOX", &message(1, 600)));
    run_transcript(
        &mut c,
        r#"C: c GETQUOTA ""
S: * QUOTA "" (STORAGE 1 4 MESSAGE 1 3)
S: c OK Getquota completed."#,
    );
    assert_tagged_ok(&append(&mut c, "d", "INBOX", &message(2, 700)));
    assert_tagged_ok(&append(&mut c, "e", "INBOX", &message(3, 1000)));
    run_transcript(
        &mut c,
        r#"C: f GETQUOTA ""
S: * QUOTA "" (STORAGE 3 4 MESSAGE 3 3)
S: f OK Getquota completed."#,
    );
    // APPEND over the message limit: a LITERAL+ literal is read and dropped, a synchronizing
    // one is refused before the client sends it (no `+`).
    assert_eq!(
        append(&mut c, "g", "INBOX", &message(4, 100)),
        vec![format!("g {OVER}")]
    );
    run_transcript(
        &mut c,
        &format!(
            r#"C: h APPEND INBOX {{100}}
S: h {OVER}
C: i CREATE Other
S: i OK *"#
        ),
    );
    assert_tagged_ok(&c.cmd("j", "SELECT INBOX"));
    run_transcript(
        &mut c,
        &format!(
            r#"C: k COPY 1 Other
S: k {OVER}
C: l UID COPY 1:3 Other
S: l {OVER}
C: m GETQUOTA ""
S: * QUOTA "" (STORAGE 3 4 MESSAGE 3 3)
S: m OK Getquota completed."#
        ),
    );
    // MOVE adds nothing to the one quota root: it works at the limit (RFC 9208 4.3.1 asks for
    // OVERQUOTA only when the addition puts the mailbox over; Dovecot does not check a move
    // within one quota root either), so a full user can still move mail to Trash.
    run_transcript(
        &mut c,
        r#"C: n MOVE 1 Other
S: * OK [COPYUID *
S: * 1 EXPUNGE
S: n OK *
C: o GETQUOTA ""
S: * QUOTA "" (STORAGE 3 4 MESSAGE 3 3)
S: o OK Getquota completed.
C: p STATUS Other (MESSAGES SIZE)
S: * STATUS Other (MESSAGES 1 SIZE 600)
S: p OK Status completed."#,
    );
    // Expunging gives the room back: 700 + 1000 bytes, 2 messages.
    run_transcript(
        &mut c,
        r#"C: q STORE 1 +FLAGS.SILENT (\Deleted)
S: q OK *
C: r EXPUNGE
S: * 1 EXPUNGE
S: r OK *
C: s GETQUOTA ""
S: * QUOTA "" (STORAGE 2 4 MESSAGE 2 3)
S: s OK Getquota completed."#,
    );
    assert_tagged_ok(&append(&mut c, "t", "Other", &message(5, 100)));
}

#[test]
fn byte_limit_refuses_append_and_copy_but_not_move() {
    // 2 KiB: one 1500-byte message fits, a second 600 bytes would make 2100 > 2048.
    let s = Server::builder()
        .users(&[user("small", "userdb_quota_rule=*:storage=2K")])
        .start();
    let mut c = login(&s, "small");
    assert_tagged_ok(&append(&mut c, "a", "INBOX", &message(1, 1500)));
    assert_eq!(
        append(&mut c, "b", "INBOX", &message(2, 600)),
        vec![format!("b {OVER}")]
    );
    assert_tagged_ok(&append(&mut c, "c", "INBOX", &message(3, 548)));
    run_transcript(
        &mut c,
        &format!(
            r#"C: d GETQUOTAROOT INBOX
S: * QUOTAROOT INBOX ""
S: * QUOTA "" (STORAGE 2 2)
S: d OK Getquotaroot completed.
C: e APPEND INBOX {{1}}
S: e {OVER}
C: f CREATE Keep
S: f OK *"#
        ),
    );
    assert_tagged_ok(&c.cmd("g", "SELECT INBOX"));
    run_transcript(
        &mut c,
        &format!(
            r#"C: h COPY 2 Keep
S: h {OVER}
C: i MOVE 1:2 Keep
S: * OK [COPYUID *
S: * 2 EXPUNGE
S: * 1 EXPUNGE
S: i OK *
C: j GETQUOTA ""
S: * QUOTA "" (STORAGE 2 2)
S: j OK Getquota completed.
C: k STATUS Keep (MESSAGES SIZE)
S: * STATUS Keep (MESSAGES 2 SIZE 2048)
S: k OK Status completed."#
        ),
    );
}

#[test]
fn status_deleted_and_deleted_storage() {
    let s = Server::builder().users(&[user("st", "")]).start();
    let mut c = login(&s, "st");
    for (i, size) in [(1, 600), (2, 1500), (3, 2100)] {
        assert_tagged_ok(&append(&mut c, "a", "INBOX", &message(i, size)));
    }
    // RFC 9208 4.1.4: DELETED counts \Deleted messages, DELETED-STORAGE is what EXPUNGE would
    // free, in the STORAGE resource's units (1024 octets, rounded up).
    run_transcript(
        &mut c,
        r#"C: b STATUS INBOX (MESSAGES DELETED DELETED-STORAGE SIZE)
S: * STATUS INBOX (MESSAGES 3 DELETED 0 DELETED-STORAGE 0 SIZE 4200)
S: b OK Status completed."#,
    );
    assert_tagged_ok(&c.cmd("c", "SELECT INBOX"));
    run_transcript(
        &mut c,
        r#"C: d STORE 2:3 +FLAGS.SILENT (\Deleted)
S: d OK *
C: e STATUS INBOX (DELETED DELETED-STORAGE)
S: * STATUS INBOX (DELETED 2 DELETED-STORAGE 4)
S: e OK Status completed.
C: f LIST "" INBOX RETURN (STATUS (deleted deleted-storage messages))
S: * LIST (\HasNoChildren) "/" INBOX
S: * STATUS INBOX (DELETED 2 DELETED-STORAGE 4 MESSAGES 3)
S: f OK *
C: g STORE 2 -FLAGS.SILENT (\Deleted)
S: g OK *
C: h STATUS INBOX (DELETED-STORAGE DELETED)
S: * STATUS INBOX (DELETED-STORAGE 3 DELETED 1)
S: h OK Status completed.
C: i EXPUNGE
S: * 3 EXPUNGE
S: i OK *
C: j STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)
S: * STATUS INBOX (MESSAGES 2 DELETED 0 DELETED-STORAGE 0)
S: j OK Status completed."#,
    );
}
