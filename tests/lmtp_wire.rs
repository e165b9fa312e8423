//! LMTP wire transcripts against the real binary: every command, every per-recipient outcome,
//! pipelining, dot-stuffing, bare LF, the size limit, BDAT, `+detail` folders and Unix sockets.

mod common;
mod lmtp_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use common::{Client, Server, run_transcript};
use lmtp_support::{make_folder, stamped, start, stored, users};

fn connect(port: u16) -> Client {
    let mut c = Client::plain(port);
    let greeting = c.line();
    assert!(
        greeting.starts_with("220 localhost LMTP"),
        "greeting: {greeting}"
    );
    c
}

#[test]
fn every_command_and_its_errors() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut c = connect(port);
    run_transcript(
        &mut c,
        r#"
        C: NOOP
        S: 250 2.0.0 OK
        C: MAIL FROM:<a@b>
        S: 503 5.5.1 Send LHLO first
        C: HELO client
        S: 500 5.5.1 This is an LMTP server: use LHLO
        C: EHLO client
        S: 500 5.5.1 This is an LMTP server: use LHLO
        C: LHLO
        S: 501 5.5.4 Syntax error: LHLO needs one domain argument
        C: LHLO client.example
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 52428800
        S: 250 CHUNKING
        C: RCPT TO:<demo>
        S: 503 5.5.1 MAIL needed first
        C: DATA
        S: 503 5.5.1 MAIL needed first
        C: VRFY demo
        S: 502 5.5.1 VRFY is not supported
        C: EXPN staff
        S: 500 5.5.2 Unknown command
        C: MAIL FROM:<a@b> RET=FULL
        S: 555 5.5.4 Unsupported parameter RET
        C: MAIL FROM:<a@b> AUTH=a+2
        S: 501 5.5.4 Syntax error: AUTH needs an xtext mailbox
        C: MAIL FROM:<a@b> SIZE=99999999999
        S: 552 5.3.4 Message size exceeds fixed maximum message size
        C: MAIL FROM:<a@b> SIZE=100 BODY=8BITMIME
        S: 250 2.1.0 OK
        C: MAIL FROM:<a@b>
        S: 503 5.5.1 Nested MAIL command
        C: RCPT TO:<demo> NOTIFY=NEVER
        S: 555 5.5.4 Unsupported parameter NOTIFY
        C: RCPT TO:<demo> ORCPT=rfc822
        S: 501 5.5.4 Syntax error: ORCPT needs addr-type;address
        C: RCPT TO:demo extra
        S: 555 5.5.4 Unsupported parameter extra
        C: RCPT TO:<demo
        S: 501 5.5.4 Syntax error: unterminated <address>
        C: DATA
        S: 503 5.5.1 No valid recipients
        C: RSET
        S: 250 2.0.0 OK
        C: RCPT TO:<demo>
        S: 503 5.5.1 MAIL needed first
        C: MAIL FROM:<>
        S: 250 2.1.0 OK
        C: RCPT TO:<demo>
        S: 250 2.1.5 OK
        C: RSET
        S: 250 2.0.0 OK
        C: QUIT
        S: 221 2.0.0 localhost closing connection
        "#,
    );
    assert!(c.closed());
    // RSET threw the transaction away: nothing was stored.
    assert!(stored(&s.maildir("demo"), "").is_empty());
}

#[test]
fn one_reply_per_recipient_with_each_outcome() {
    let mut lines = users();
    lines.push(lmtp_support::user_line("broken", ""));
    // A name that cannot form a mail path: a permanent failure.
    lines.push(lmtp_support::user_line("sl/ash", ""));
    let (s, port) = start(Server::builder().users(&lines));
    // A user whose mail directory cannot be created: a temporary storage error.
    std::fs::write(s.maildir("broken"), b"not a directory").unwrap();

    let mut c = connect(port);
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 52428800
        S: 250 CHUNKING
        C: MAIL FROM:<sender@example.net>
        S: 250 2.1.0 OK
        C: RCPT TO:<demo@Example.COM>
        S: 250 2.1.5 OK
        C: RCPT TO:<nobody@example.com>
        S: 550 5.1.1 <nobody@example.com> User doesn't exist
        C: RCPT TO:<broken>
        S: 451 4.3.0 <broken> Temporary internal error
        C: RCPT TO:<sl/ash>
        S: 550 5.2.0 <sl/ash> Mailbox unavailable
        C: RCPT TO:<full>
        S: 250 2.1.5 OK
        C: RCPT TO:<other@EXAMPLE.org>
        S: 250 2.1.5 OK
        C: RCPT TO:<demo@example.com>
        S: 250 2.1.5 OK
        C: DATA
        S: 354 *
        C: Subject: outcomes
        C:
        C: body
        C: .
        S: 250 2.0.0 <demo@Example.COM> Saved
        S: 552 5.2.2 <full> Quota exceeded (mailbox for user is full)
        S: 250 2.0.0 <other@EXAMPLE.org> Saved
        S: 250 2.0.0 <demo@example.com> Saved
        C: MAIL FROM:<sender@example.net> SIZE=10
        S: 250 2.1.0 OK
        C: RCPT TO:<full>
        S: 552 5.2.2 <full> Quota exceeded (mailbox for user is full)
        C: QUIT
        S: 221 *
        "#,
    );
    let msg = b"Subject: outcomes\r\n\r\nbody\r\n";
    let mut want = vec![
        stamped("sender@example.net", "demo@Example.COM", msg),
        stamped("sender@example.net", "demo@example.com", msg),
    ];
    want.sort();
    assert_eq!(stored(&s.maildir("demo"), ""), want);
    assert_eq!(
        stored(&s.maildir("other"), ""),
        vec![stamped("sender@example.net", "other@EXAMPLE.org", msg)]
    );
    assert!(stored(&s.maildir("full"), "").is_empty());
}

#[test]
fn over_quota_can_be_temporary_and_storage_errors_after_data_are_451() {
    let (s, port) = start(
        Server::builder()
            .users(&users())
            .config("[lmtp]\nover_quota = \"temporary\"\n"),
    );
    let mut c = connect(port);
    // Create demo's Maildir with a first delivery, then make it unwritable.
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 52428800
        S: 250 CHUNKING
        C: MAIL FROM:<>
        C: RCPT TO:<demo>
        C: DATA
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 354 *
        C: Subject: first
        C: .
        S: 250 2.0.0 <demo> Saved
        C: MAIL FROM:<>
        C: RCPT TO:<full>
        C: RCPT TO:<demo>
        C: RCPT TO:<other@example.org>
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        "#,
    );
    let tmp = s.maildir("demo").join("tmp");
    common::chmod(&tmp, 0o000);
    run_transcript(
        &mut c,
        r#"
        C: DATA
        S: 354 *
        C: Subject: second
        C: .
        S: 452 4.2.2 <full> Quota exceeded (mailbox for user is full)
        S: 451 4.3.0 <demo> Temporary internal error
        S: 250 2.0.0 <other@example.org> Saved
        "#,
    );
    common::chmod(&tmp, 0o755);
    assert_eq!(
        stored(&s.maildir("demo"), ""),
        vec![stamped("", "demo", b"Subject: first\r\n")]
    );
    assert_eq!(
        stored(&s.maildir("other"), ""),
        vec![stamped("", "other@example.org", b"Subject: second\r\n")]
    );
}

#[test]
fn pipelined_transactions_get_replies_in_order() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut c = connect(port);
    // Everything up to each DATA goes in one write, and so does the second transaction together
    // with the end of the first message.
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        C: MAIL FROM:<a@x>
        C: RCPT TO:<demo>
        C: RCPT TO:<ghost>
        C: RCPT TO:<other@example.org>
        C: DATA
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 52428800
        S: 250 CHUNKING
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 550 5.1.1 <ghost> User doesn't exist
        S: 250 2.1.5 OK
        S: 354 *
        C: Subject: one
        C: .
        C: MAIL FROM:<b@x>
        C: RCPT TO:<demo>
        C: DATA
        S: 250 2.0.0 <demo> Saved
        S: 250 2.0.0 <other@example.org> Saved
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 354 *
        C: Subject: two
        C: .
        C: NOOP
        C: QUIT
        S: 250 2.0.0 <demo> Saved
        S: 250 2.0.0 OK
        S: 221 *
        "#,
    );
    let mut want = vec![
        stamped("a@x", "demo", b"Subject: one\r\n"),
        stamped("b@x", "demo", b"Subject: two\r\n"),
    ];
    want.sort();
    assert_eq!(stored(&s.maildir("demo"), ""), want);
}

#[test]
fn dot_stuffing_bare_lf_and_long_lines_are_stored_exactly() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut c = connect(port);
    run_transcript(
        &mut c,
        "C: LHLO mx\nC: MAIL FROM:<a@x>\nC: RCPT TO:<demo>\nC: DATA\nS: 250-localhost\nS: 250-PIPELINING\nS: 250-ENHANCEDSTATUSCODES\nS: 250-8BITMIME\nS: 250-SIZE 52428800\nS: 250 CHUNKING\nS: 250 2.1.0 OK\nS: 250 2.1.5 OK\nS: 354 *\n",
    );
    let long = "x".repeat(200_000);
    let wire = format!(
        "Subject: dots\r\n\r\n..leading dot\r\n...\r\n.\r.not the end\r\nbare\nlf\n{long}\r\nlast\r\n.\r\n"
    );
    c.send_raw(wire.as_bytes());
    assert_eq!(c.line(), "250 2.0.0 <demo> Saved");
    let body = format!(
        "Subject: dots\r\n\r\n.leading dot\r\n..\r\n\r.not the end\r\nbare\nlf\n{long}\r\nlast\r\n"
    );
    assert_eq!(
        stored(&s.maildir("demo"), ""),
        vec![stamped("a@x", "demo", body.as_bytes())]
    );
}

#[test]
fn a_message_over_the_size_limit_is_refused_per_recipient_and_the_session_goes_on() {
    let (s, port) = start(
        Server::builder()
            .users(&users())
            .config("[limits]\nmax_message_size = 2048\n"),
    );
    let mut c = connect(port);
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        C: MAIL FROM:<a@x> SIZE=2049
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 2048
        S: 250 CHUNKING
        S: 552 5.3.4 Message size exceeds fixed maximum message size
        C: MAIL FROM:<a@x>
        C: RCPT TO:<demo>
        C: RCPT TO:<other@example.org>
        C: DATA
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        S: 354 *
        "#,
    );
    let mut big = String::from("Subject: big\r\n\r\n");
    for i in 0..100 {
        big.push_str(&format!("line {i:04} of a message that is too large\r\n"));
    }
    big.push_str(".\r\nNOOP\r\n");
    c.send_raw(big.as_bytes());
    assert_eq!(
        c.line(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(
        c.line(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(c.line(), "250 2.0.0 OK", "the stream stayed in step");
    assert!(stored(&s.maildir("demo"), "").is_empty());
}

#[test]
fn bdat_chunks_are_stored_verbatim() {
    let (s, port) = start(
        Server::builder()
            .users(&users())
            .config("[limits]\nmax_message_size = 1024\n"),
    );
    let mut c = connect(port);
    let part1 = "Subject: chunks\r\n\r\n.not stuffed\r\n";
    let part2 = ".\r\nstill the message\n";
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 1024
        S: 250 CHUNKING
        "#,
    );
    // BDAT without MAIL: the chunk is still consumed.
    c.send_raw(b"BDAT 6\r\nRSET\r\nNOOP\r\n");
    assert_eq!(c.line(), "503 5.5.1 MAIL needed first");
    assert_eq!(c.line(), "250 2.0.0 OK");
    c.send_raw(
        format!(
            "MAIL FROM:<a@x>\r\nRCPT TO:<demo>\r\nRCPT TO:<ghost>\r\nBDAT {}\r\n{part1}BDAT {} LAST\r\n{part2}",
            part1.len(),
            part2.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.line(), "250 2.1.0 OK");
    assert_eq!(c.line(), "250 2.1.5 OK");
    assert_eq!(c.line(), "550 5.1.1 <ghost> User doesn't exist");
    assert_eq!(
        c.line(),
        format!("250 2.0.0 {} octets received", part1.len())
    );
    assert_eq!(c.line(), "250 2.0.0 <demo> Saved");
    // DATA after BDAT in one transaction is refused; an oversized chunk is read and refused.
    let big = "y".repeat(1500);
    c.send_raw(
        format!(
            "MAIL FROM:<a@x>\r\nRCPT TO:<demo>\r\nBDAT 3\r\nabcDATA\r\nBDAT 1500 LAST\r\n{big}NOOP\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(c.line(), "250 2.1.0 OK");
    assert_eq!(c.line(), "250 2.1.5 OK");
    assert_eq!(c.line(), "250 2.0.0 3 octets received");
    assert_eq!(c.line(), "503 5.5.1 DATA not allowed after BDAT");
    assert_eq!(
        c.line(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert_eq!(c.line(), "250 2.0.0 OK");
    let whole = format!("{part1}{part2}");
    assert_eq!(
        stored(&s.maildir("demo"), ""),
        vec![stamped("a@x", "demo", whole.as_bytes())]
    );
}

#[test]
fn detail_goes_to_an_existing_folder_else_inbox() {
    let (s, port) = start(Server::builder().users(&users()));
    make_folder(&s.maildir("demo"), "Work");
    let mut c = connect(port);
    run_transcript(
        &mut c,
        r#"
        C: LHLO mx
        C: MAIL FROM:<a@x>
        C: RCPT TO:<demo+Work@example.com>
        C: RCPT TO:<demo+Nope@example.com>
        C: RCPT TO:<other+Work@example.org>
        C: DATA
        S: 250-localhost
        S: 250-PIPELINING
        S: 250-ENHANCEDSTATUSCODES
        S: 250-8BITMIME
        S: 250-SIZE 52428800
        S: 250 CHUNKING
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        S: 354 *
        C: Subject: detail
        C: .
        S: 250 2.0.0 <demo+Work@example.com> Saved
        S: 250 2.0.0 <demo+Nope@example.com> Saved
        S: 250 2.0.0 <other+Work@example.org> Saved
        "#,
    );
    let msg = b"Subject: detail\r\n";
    assert_eq!(
        stored(&s.maildir("demo"), "Work"),
        vec![stamped("a@x", "demo+Work@example.com", msg)]
    );
    assert_eq!(
        stored(&s.maildir("demo"), ""),
        vec![stamped("a@x", "demo+Nope@example.com", msg)]
    );
    assert_eq!(
        stored(&s.maildir("other"), ""),
        vec![stamped("a@x", "other+Work@example.org", msg)]
    );
}

#[test]
fn detail_folders_can_be_turned_off() {
    let (s, port) = start(
        Server::builder()
            .users(&users())
            .config("[lmtp]\nsave_to_detail_mailbox = false\n"),
    );
    make_folder(&s.maildir("demo"), "Work");
    let mut c = connect(port);
    c.send_raw(b"LHLO mx\r\nMAIL FROM:<>\r\nRCPT TO:<demo+Work>\r\nDATA\r\n");
    let replies = c.until("354");
    assert_eq!(replies.len(), 9, "{replies:?}");
    c.send_raw(b"Subject: x\r\n.\r\n");
    assert_eq!(c.line(), "250 2.0.0 <demo+Work> Saved");
    assert!(stored(&s.maildir("demo"), "Work").is_empty());
    assert_eq!(stored(&s.maildir("demo"), "").len(), 1);
}

#[test]
fn unix_socket_listener_with_mode_and_stale_socket_replaced_on_restart() {
    let mut s = Server::builder()
        .users(&users())
        .config("[[listener]]\nprotocol = \"lmtp\"\npath = \"$DIR/run/lmtp\"\nmode = \"0600\"\n")
        .start();
    let path = s.path().join("run").join("lmtp");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    if common::is_root() {
        use std::os::unix::fs::MetadataExt;
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            meta.uid(),
            nobody.uid.as_raw(),
            "owned by the daemon's user"
        );
    }
    let deliver = |tag: &str| {
        let sock = std::os::unix::net::UnixStream::connect(&path).unwrap();
        sock.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
        let mut w = sock.try_clone().unwrap();
        let mut r = BufReader::new(sock);
        w.write_all(
            format!("LHLO mx\r\nMAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\nSubject: {tag}\r\n.\r\nQUIT\r\n")
                .as_bytes(),
        )
        .unwrap();
        let mut replies = Vec::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap() == 0 {
                break;
            }
            replies.push(l.trim_end().to_string());
        }
        replies
    };
    let replies = deliver("unix");
    assert!(
        replies.first().is_some_and(|l| l.starts_with("220 ")),
        "{replies:?}"
    );
    assert!(
        replies.contains(&"250 2.0.0 <demo> Saved".to_string()),
        "{replies:?}"
    );
    // SIGKILL leaves the socket file behind; the next start must replace it.
    s.restart();
    let replies = deliver("again");
    assert!(
        replies.contains(&"250 2.0.0 <demo> Saved".to_string()),
        "{replies:?}"
    );
    assert_eq!(stored(&s.maildir("demo"), "").len(), 2);
}

#[test]
fn lmtp_listener_config_is_validated() {
    let check = |toml: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, toml).unwrap();
        let out = std::process::Command::new(common::BIN)
            .args(["check-config", "--config"])
            .arg(&p)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check(
        "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:24\"\ntls = \"implicit\"\n",
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("key `listener[0].tls`: lmtp listeners carry no TLS"),
        "{err}"
    );
    let (code, err) =
        check("[[listener]]\nprotocol = \"imap\"\npath = \"/run/x\"\ntls = \"none\"\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("for lmtp listeners only"), "{err}");
    let (code, err) = check(
        "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:24\"\n[lmtp]\nover_quota = \"later\"\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains(":5:"), "the bad value's line is named: {err}");
    let (code, err) = check(
        "[[listener]]\nprotocol = \"lmtp\"\npath = \"/run/x\"\nmode = \"rw\"\n[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:24\"\nowner = \"postfix\"\n",
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("listener[0].mode"), "{err}");
    assert!(err.contains("only to a Unix socket"), "{err}");
    // The default `tls` of an lmtp listener needs no certificate.
    let (code, err) = check(
        "[[listener]]\nprotocol = \"lmtp\"\npath = \"/run/mailcove/lmtp\"\nowner = \"postfix\"\ngroup = \"postfix\"\n[lmtp]\nrecipient_delimiter = \"+-\"\n",
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_stalled_client_holds_no_mailbox_lock() {
    let (s, port) = start(Server::builder().users(&users()));
    let mut slow = connect(port);
    slow.send_raw(b"LHLO slow\r\nMAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\n");
    assert_eq!(slow.until("354").len(), 9);
    // Half a message, then silence.
    slow.send_raw(b"Subject: stalled\r\n\r\nhalf a bo");

    // Meanwhile another delivery to the same mailbox completes, and POP3 (which takes the
    // maildrop lock) logs in and sees it.
    let mut c = connect(port);
    c.send_raw(b"LHLO fast\r\nMAIL FROM:<>\r\nRCPT TO:<demo>\r\nDATA\r\nSubject: fast\r\n.\r\n");
    assert_eq!(
        c.until("250 2.0.0").last().unwrap(),
        "250 2.0.0 <demo> Saved"
    );
    let mut p = s.pop3();
    p.line();
    p.send("USER demo");
    p.line();
    p.send("PASS pw");
    assert!(p.line().starts_with("+OK"));
    p.send("STAT");
    assert!(p.line().starts_with("+OK 1 "));
    p.send("QUIT");
    p.line();

    // The stalled message completes later and is stored whole.
    slow.send_raw(b"dy\r\n.\r\n");
    assert_eq!(slow.line(), "250 2.0.0 <demo> Saved");
    let mut want = vec![
        stamped("", "demo", b"Subject: fast\r\n"),
        stamped("", "demo", b"Subject: stalled\r\n\r\nhalf a body\r\n"),
    ];
    want.sort();
    assert_eq!(stored(&s.maildir("demo"), ""), want);
}

/// A per-user message-count rule (`*:messages=1`) over LMTP: the first message is saved, the
/// next recipient is refused at RCPT with 552 5.2.2 by default and 452 4.2.2 with
/// `over_quota = "temporary"`; IMAP GETQUOTA reports the usage LMTP left (RFC 9208 MESSAGE).
#[test]
fn message_count_rule_refuses_at_rcpt_permanently_or_temporarily() {
    for (config, refusal) in [
        (
            "",
            "552 5.2.2 <one> Quota exceeded (mailbox for user is full)",
        ),
        (
            "[lmtp]\nover_quota = \"temporary\"\n",
            "452 4.2.2 <one> Quota exceeded (mailbox for user is full)",
        ),
    ] {
        let (s, port) = start(
            Server::builder()
                .users(&[lmtp_support::user_line(
                    "one",
                    "userdb_quota_rule=*:messages=1",
                )])
                .config(config),
        );
        let mut c = connect(port);
        run_transcript(
            &mut c,
            &format!(
                r#"
                C: LHLO mx
                S: 250-localhost
                S: 250-PIPELINING
                S: 250-ENHANCEDSTATUSCODES
                S: 250-8BITMIME
                S: 250-SIZE *
                S: 250 CHUNKING
                C: MAIL FROM:<a@example.net>
                S: 250 2.1.0 OK
                C: RCPT TO:<one>
                S: 250 2.1.5 OK
                C: DATA
                S: 354 *
                C: Subject: first
                C:
                C: body
                C: .
                S: 250 2.0.0 <one> Saved
                C: MAIL FROM:<a@example.net>
                S: 250 2.1.0 OK
                C: RCPT TO:<one>
                S: {refusal}
                C: QUIT
                S: 221 *
                "#
            ),
        );
        let mut c = s.imap();
        c.line();
        common::assert_tagged_ok(&c.cmd("l", "LOGIN one pw"));
        let r = c.cmd("q", "GETQUOTA \"\"");
        assert_eq!(r[0], "* QUOTA \"\" (MESSAGE 1 1)", "{r:?}");
        common::assert_tagged_ok(&r);
    }
}
