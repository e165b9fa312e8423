//! METADATA (RFC 5464) on the wire, against the real binary: server entries (two of them from
//! the configuration, read-only) and mailbox entries, `/private` and `/shared`, DEPTH 0, 1 and
//! infinity on a small tree, MAXSIZE and `[METADATA LONGENTRIES n]`, the limits of SETMETADATA
//! (`[METADATA MAXSIZE n]`, `[METADATA TOOMANY]`, all or none), invalid entry names (BAD),
//! mailboxes that do not exist (`NO [NONEXISTENT]`), entries following RENAME and going with
//! DELETE, and (on Maildir) surviving a restart.
//!
//! Every expected answer is worked out by hand from RFC 5464 and the entries each test sets.

mod common;

use common::*;
use mailcove::limits::{MAX_METADATA_ENTRIES, MAX_METADATA_VALUE_BYTES};

const ADMIN: &str = "mailto:postmaster@example.org";

fn server() -> Server {
    Server::builder()
        .config(&format!(
            "[imap]\nmetadata_admin = \"{ADMIN}\"\nmetadata_comment = \"Test server\"\n"
        ))
        .start()
}

fn login(s: &Server) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", "LOGIN demo demo");
    assert!(r.last().is_some_and(|l| l.starts_with("l OK")), "{r:?}");
    c
}

/// Sends raw command bytes (literals inline, LITERAL+) and returns the raw answer and the
/// tagged line.
fn raw(c: &mut Client, tag: &str, bytes: &[u8]) -> (Vec<u8>, String) {
    c.send_raw(bytes);
    c.raw_until(tag)
}

#[test]
fn server_entries_come_from_the_config_and_are_read_only() {
    let s = server();
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    // Not before login: RFC 5464 5 adds both commands to `command-auth`.
    run_transcript(
        &mut c,
        r#"C: a GETMETADATA "" /shared/admin
S: a BAD Command not valid in this state: log in first.
C: l LOGIN demo demo
S: l OK *
C: d GETMETADATA "" /shared/admin
S: * METADATA "" (/shared/admin "mailto:postmaster@example.org")
S: d OK Getmetadata completed.
C: e GETMETADATA "" (/SHARED/Comment /shared/admin /private/missing)
S: * METADATA "" (/shared/comment "Test server" /shared/admin "mailto:postmaster@example.org" /private/missing NIL)
S: e OK Getmetadata completed.
C: f SETMETADATA "" (/shared/admin "mailto:me@example.org")
S: f NO [NOPERM] The server's /shared/admin and /shared/comment are read-only.
C: g SETMETADATA "" (/private/vendor/vendor.mailcove/x "one" /shared/comment NIL)
S: g NO [NOPERM] The server's /shared/admin and /shared/comment are read-only.
C: h GETMETADATA "" (DEPTH infinity) /private
S: * METADATA "" (/private NIL)
S: h OK Getmetadata completed.
C: i SETMETADATA "" (/private/vendor/vendor.mailcove/x "one")
S: i OK Setmetadata completed.
C: j GETMETADATA "" (DEPTH infinity) (/private /shared)
S: * METADATA "" (/private NIL /private/vendor/vendor.mailcove/x "one" /shared NIL /shared/admin "mailto:postmaster@example.org" /shared/comment "Test server")
S: j OK Getmetadata completed.
"#,
    );
    let caps = c.cmd("k", "CAPABILITY");
    // RFC 5464 1: METADATA is mailbox and server entries; METADATA-SERVER would say server only.
    assert!(
        !caps[0].split(' ').any(|w| w == "METADATA-SERVER"),
        "{caps:?}"
    );
}

#[test]
fn without_config_the_admin_entry_is_nil_and_still_read_only() {
    let s = Server::start();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a GETMETADATA "" (/shared/admin /shared/comment)
S: * METADATA "" (/shared/admin NIL /shared/comment NIL)
S: a OK Getmetadata completed.
C: b SETMETADATA "" (/shared/admin "mailto:x@example.org")
S: b NO [NOPERM] *
"#,
    );
}

#[test]
fn mailbox_entries_private_and_shared_with_literals_and_nil() {
    let s = server();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a CREATE Notes
S: a OK *
C: b SETMETADATA Notes (/private/comment "My own comment" /Shared/Comment "Shared comment")
S: b OK Setmetadata completed.
C: c GETMETADATA Notes (/shared/comment /private/comment)
S: * METADATA Notes (/shared/comment "Shared comment" /private/comment "My own comment")
S: c OK Getmetadata completed.
C: d SETMETADATA Notes (/private/comment NIL)
S: d OK Setmetadata completed.
C: e GETMETADATA Notes (/private/comment /shared/comment)
S: * METADATA Notes (/private/comment NIL /shared/comment "Shared comment")
S: e OK Getmetadata completed.
C: f GETMETADATA INBOX /shared/comment
S: * METADATA INBOX (/shared/comment NIL)
S: f OK Getmetadata completed.
"#,
    );
    // A multi-line value (RFC 5464 4.3's example) and a binary one (literal8, RFC 5464 5).
    let (_, tagged) = raw(
        &mut c,
        "g",
        b"g SETMETADATA INBOX (/private/comment {33+}\r\nMy new comment across\r\ntwo lines. \
          /shared/vendor/vendor.mailcove/bin ~{3+}\r\n\0\x01\xff)\r\n",
    );
    assert_eq!(tagged, "g OK Setmetadata completed.");
    let (data, tagged) = c.raw_exchange(
        "h",
        "GETMETADATA INBOX (/private/comment /shared/vendor/vendor.mailcove/bin)",
    );
    assert_eq!(tagged, "h OK Getmetadata completed.");
    assert_eq!(
        data,
        b"* METADATA INBOX (/private/comment {33}\r\nMy new comment across\r\ntwo lines. \
          /shared/vendor/vendor.mailcove/bin ~{3}\r\n\0\x01\xff)\r\n"
    );
    // A NUL in a plain literal is no `value`.
    let (_, tagged) = raw(
        &mut c,
        "i",
        b"i SETMETADATA INBOX (/private/comment {1+}\r\n\0)\r\n",
    );
    assert!(tagged.starts_with("i BAD "), "{tagged}");
    // A literal over the command line limit is refused by the framing before SETMETADATA sees
    // it (RFC 7888: BAD [TOOBIG] for a non-synchronizing one), and the connection goes on.
    let mut cmd = b"j SETMETADATA INBOX (/shared/huge {70000+}\r\n".to_vec();
    cmd.resize(cmd.len() + 70_000, b'x');
    cmd.extend_from_slice(b")\r\n");
    let (_, tagged) = raw(&mut c, "j", &cmd);
    assert_eq!(tagged, "j BAD [TOOBIG] Literal too big");
    assert_eq!(c.cmd("k", "NOOP"), ["k OK NOOP completed."]);
}

#[test]
fn depth_and_maxsize() {
    let s = server();
    let mut c = login(&s);
    // The tree of RFC 5464 4.2.2's wording: /a, its children /a/b and /a/d, its grandchild
    // /a/b/c, and /ab, which is no child of /a.
    run_transcript(
        &mut c,
        r#"C: a SETMETADATA INBOX (/shared/a "1" /shared/a/b "22" /shared/a/b/c "333" /shared/a/d "4444" /shared/ab "55555")
S: a OK Setmetadata completed.
C: b GETMETADATA INBOX /shared/a
S: * METADATA INBOX (/shared/a "1")
S: b OK Getmetadata completed.
# RFC 5464 5 puts the options before the mailbox; its examples after it. Both are taken.
C: c GETMETADATA (DEPTH 0) INBOX /shared/a
S: * METADATA INBOX (/shared/a "1")
S: c OK Getmetadata completed.
C: c2 GETMETADATA (DEPTH 1) INBOX (/shared/a/b)
S: * METADATA INBOX (/shared/a/b "22" /shared/a/b/c "333")
S: c2 OK Getmetadata completed.
C: d GETMETADATA INBOX (DEPTH 1) /shared/a
S: * METADATA INBOX (/shared/a "1" /shared/a/b "22" /shared/a/d "4444")
S: d OK Getmetadata completed.
C: e GETMETADATA INBOX (DEPTH infinity) /shared/a
S: * METADATA INBOX (/shared/a "1" /shared/a/b "22" /shared/a/b/c "333" /shared/a/d "4444")
S: e OK Getmetadata completed.
# A named entry without a value is NIL at any DEPTH (Dovecot; RFC 5464 4.2.2's example omits
# it), its existing children follow.
C: f GETMETADATA INBOX (DEPTH 1) /shared/a/x
S: * METADATA INBOX (/shared/a/x NIL)
S: f OK Getmetadata completed.
C: g GETMETADATA INBOX (MAXSIZE 2 DEPTH infinity) /shared
S: * METADATA INBOX (/shared NIL /shared/a "1" /shared/a/b "22")
S: g OK [METADATA LONGENTRIES 5] Getmetadata completed.
C: h GETMETADATA INBOX (MAXSIZE 3) (/shared/a/d /shared/a/b/c)
S: * METADATA INBOX (/shared/a/b/c "333")
S: h OK [METADATA LONGENTRIES 4] Getmetadata completed.
C: i GETMETADATA INBOX (MAXSIZE 0) /shared/ab
S: i OK [METADATA LONGENTRIES 5] Getmetadata completed.
C: j GETMETADATA INBOX (DEPTH 2) /shared/a
S: j BAD DEPTH must be 0, 1 or infinity
C: k GETMETADATA INBOX (MAXSIZE x) /shared/a
S: k BAD *
C: m GETMETADATA INBOX (FOO 1) /shared/a
S: m BAD unknown GETMETADATA option
"#,
    );
}

#[test]
fn setmetadata_limits_all_or_none() {
    let s = server();
    let mut c = login(&s);
    // One value over the largest accepted: NO [METADATA MAXSIZE n], and the other entry of the
    // same command is not set either (RFC 5464 4.3).
    let mut cmd = format!(
        "a SETMETADATA INBOX (/shared/ok \"fine\" /shared/big {{{}+}}\r\n",
        MAX_METADATA_VALUE_BYTES + 1
    )
    .into_bytes();
    cmd.resize(cmd.len() + MAX_METADATA_VALUE_BYTES + 1, b'x');
    cmd.extend_from_slice(b")\r\n");
    let (_, tagged) = raw(&mut c, "a", &cmd);
    assert_eq!(
        tagged,
        format!(
            "a NO [METADATA MAXSIZE {MAX_METADATA_VALUE_BYTES}] Metadata entry value is too large."
        )
    );
    run_transcript(
        &mut c,
        r#"C: b GETMETADATA INBOX /shared/ok
S: * METADATA INBOX (/shared/ok NIL)
S: b OK Getmetadata completed.
"#,
    );
    // The largest value is taken.
    let mut cmd = format!(
        "c SETMETADATA INBOX (/shared/big {{{}+}}\r\n",
        MAX_METADATA_VALUE_BYTES
    )
    .into_bytes();
    cmd.resize(cmd.len() + MAX_METADATA_VALUE_BYTES, b'x');
    cmd.extend_from_slice(b")\r\n");
    assert_eq!(raw(&mut c, "c", &cmd).1, "c OK Setmetadata completed.");
    // Up to the entry count of one mailbox (the big one is the first), then TOOMANY for a new
    // entry, while changing an existing one still works.
    let pairs: Vec<String> = (1..MAX_METADATA_ENTRIES)
        .map(|i| format!("/private/e{i} \"{i}\""))
        .collect();
    let r = c.cmd("d", &format!("SETMETADATA INBOX ({})", pairs.join(" ")));
    assert_eq!(r, ["d OK Setmetadata completed."]);
    run_transcript(
        &mut c,
        r#"C: e SETMETADATA INBOX (/private/one-more "x")
S: e NO [METADATA TOOMANY] Too many metadata entries.
C: f SETMETADATA INBOX (/private/e1 "changed" /shared/big NIL)
S: f OK Setmetadata completed.
C: g GETMETADATA INBOX (/private/e1 /private/e2 /shared/big)
S: * METADATA INBOX (/private/e1 "changed" /private/e2 "2" /shared/big NIL)
S: g OK Getmetadata completed.
C: h SETMETADATA INBOX (/private/one-more "x")
S: h OK Setmetadata completed.
"#,
    );
}

#[test]
fn invalid_entry_names_are_bad() {
    let s = server();
    let mut c = login(&s);
    // RFC 5464 3.2: "Invalid entry names result in a BAD response in any IMAP command in which
    // they are used."
    run_transcript(
        &mut c,
        r#"C: a SETMETADATA INBOX (/shared//comment "x")
S: a BAD Entry name must not contain '//'
C: b SETMETADATA INBOX (/shared/comment/ "x")
S: b BAD Entry name must not end with '/'
C: c SETMETADATA INBOX ("/shared/com*ent" "x")
S: c BAD Entry name must not contain '*' or '%'
C: d GETMETADATA INBOX "/private/50%"
S: d BAD Entry name must not contain '*' or '%'
C: e GETMETADATA INBOX /comment
S: e BAD Entry name must begin with /private or /shared
C: f SETMETADATA INBOX (comment "x")
S: f BAD Entry name must begin with '/'
C: g SETMETADATA INBOX (/shared "x")
S: g BAD Entry name must be below /private or /shared
C: h GETMETADATA INBOX "/shared/tab	x"
S: h BAD Entry name must be US-ASCII without control characters
C: i SETMETADATA INBOX /shared/comment "x"
S: i BAD *
C: j GETMETADATA INBOX ()
S: j BAD *
C: k SETMETADATA INBOX (/shared/comment)
S: k BAD *
"#,
    );
}

#[test]
fn missing_mailboxes_rename_and_delete() {
    let s = server();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a GETMETADATA Nowhere /shared/comment
S: a NO [NONEXISTENT] Mailbox doesn't exist.
C: b SETMETADATA Nowhere (/shared/comment "x")
S: b NO [NONEXISTENT] Mailbox doesn't exist.
C: c CREATE Work/Projects
S: c OK *
C: d GETMETADATA Work /shared/comment
S: d NO [NONEXISTENT] Mailbox doesn't exist.
C: e SETMETADATA Work/Projects (/shared/comment "projects")
S: e OK Setmetadata completed.
C: f CREATE Work
S: f OK *
C: g SETMETADATA Work (/private/comment "work")
S: g OK Setmetadata completed.
C: h RENAME Work Job
S: h OK *
C: i GETMETADATA Job /private/comment
S: * METADATA Job (/private/comment "work")
S: i OK Getmetadata completed.
C: j GETMETADATA Job/Projects /shared/comment
S: * METADATA Job/Projects (/shared/comment "projects")
S: j OK Getmetadata completed.
C: k DELETE Job/Projects
S: k OK *
C: m CREATE Job/Projects
S: m OK *
C: n GETMETADATA Job/Projects /shared/comment
S: * METADATA Job/Projects (/shared/comment NIL)
S: n OK Getmetadata completed.
C: o SETMETADATA INBOX (/private/comment "inbox")
S: o OK Setmetadata completed.
C: p RENAME INBOX Old
S: p OK *
C: q GETMETADATA INBOX /private/comment
S: * METADATA INBOX (/private/comment "inbox")
S: q OK Getmetadata completed.
C: r GETMETADATA Old /private/comment
S: * METADATA Old (/private/comment "inbox")
S: r OK Getmetadata completed.
C: s SELECT Old
S: * *
"#,
    );
    // Both commands work in the selected state too.
    c.until("s OK");
    run_transcript(
        &mut c,
        r#"C: t GETMETADATA Old /private/comment
S: * METADATA Old (/private/comment "inbox")
S: t OK Getmetadata completed.
"#,
    );
}

#[test]
fn entries_survive_a_restart() {
    if skip_unless_maildir("entries_survive_a_restart") {
        return;
    }
    let mut s = server();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a SETMETADATA INBOX (/private/comment "kept")
S: a OK Setmetadata completed.
C: b SETMETADATA "" (/private/vendor/vendor.mailcove/x "server")
S: b OK Setmetadata completed.
"#,
    );
    drop(c);
    s.restart();
    let mut c = login(&s);
    run_transcript(
        &mut c,
        r#"C: a GETMETADATA INBOX /private/comment
S: * METADATA INBOX (/private/comment "kept")
S: a OK Getmetadata completed.
C: b GETMETADATA "" /private/vendor/vendor.mailcove/x
S: * METADATA "" (/private/vendor/vendor.mailcove/x "server")
S: b OK Getmetadata completed.
"#,
    );
    // Where the sysadmin finds them (docs/ext-metadata.md).
    let root = s.maildir("demo");
    assert!(root.join("mailcove-metadata").is_file());
    assert!(root.join("mailcove-server-metadata").is_file());
}
