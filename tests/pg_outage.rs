//! The PostgreSQL backend when the database goes away (issue 18, "The database going away"):
//! sessions answer `NO [UNAVAILABLE]` (IMAP), `-ERR [SYS/TEMP]` (POP3) and `451 4.3.0` (LMTP),
//! mailcove keeps running, and once the database is back the same connections work again
//! without restarting mailcove; a database that is down when mailcove first needs it is
//! connected to once it is up. And an MTA's retry of a delivery that was stored is stored
//! once. Each test runs its own PostgreSQL (tests/common/postgres.rs) or its own database.
//!
//! While the database is down, an operation waits up to `PG_ACQUIRE_TIMEOUT_SECS` (sqlx
//! retries the refused connection) before it answers, so each step below takes that long.

mod common;

use common::postgres::PgServer;
use common::*;

/// The body of a test message.
fn message(subject: &str) -> String {
    format!(
        "From: a@example.org\r\nSubject: {subject}\r\nMessage-ID: <{subject}@t>\r\n\r\n{subject}\r\n"
    )
}

fn lmtp(port: u16) -> Client {
    let mut l = Client::plain(port);
    assert!(l.line().starts_with("220 "));
    l.send("LHLO test");
    l.until("250 ");
    l
}

/// MAIL and RCPT for `rcpt`; the RCPT reply.
fn envelope(l: &mut Client, sender: &str, rcpt: &str) -> String {
    l.send(&format!("MAIL FROM:<{sender}>"));
    let r = l.line();
    assert!(r.starts_with("250 "), "MAIL: {r}");
    l.send(&format!("RCPT TO:<{rcpt}>"));
    l.line()
}

/// DATA with `body`; the one recipient's reply.
fn data(l: &mut Client, body: &str) -> String {
    l.send("DATA");
    let r = l.line();
    assert!(r.starts_with("354 "), "DATA: {r}");
    l.send_raw(format!("{body}.\r\n").as_bytes());
    l.line()
}

/// A whole delivery of `body` from `sender` to `rcpt`; the reply to DATA.
fn deliver(l: &mut Client, sender: &str, rcpt: &str, body: &str) -> String {
    let r = envelope(l, sender, rcpt);
    assert!(r.starts_with("250 "), "RCPT: {r}");
    data(l, body)
}

fn imap_login(s: &Server) -> (Client, Vec<String>) {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", "LOGIN alice pw");
    (c, r)
}

fn tagged(r: &[String]) -> &str {
    r.last().map_or("", String::as_str)
}

/// APPEND of `body` to INBOX with a synchronizing literal; the tagged reply (which may come
/// instead of the continuation, before the message is sent: RFC 3501 7.5).
fn append(c: &mut Client, tag: &str, body: &str) -> String {
    c.send(&format!("{tag} APPEND INBOX {{{}}}", body.len()));
    let go = c.line();
    if go.starts_with(&format!("{tag} ")) {
        return go;
    }
    assert!(go.starts_with('+'), "{go}");
    c.send_raw(body.as_bytes());
    c.send_raw(b"\r\n");
    c.until(&format!("{tag} ")).pop().unwrap_or_default()
}

/// The subjects in INBOX, in UID order.
fn subjects(c: &mut Client, tag: &str) -> Vec<String> {
    let sel = c.cmd(&format!("{tag}s"), "SELECT INBOX");
    assert!(tagged(&sel).contains(" OK "), "{sel:?}");
    let r = c.cmd(
        &format!("{tag}f"),
        "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    assert!(tagged(&r).contains(" OK ") || r.len() == 1, "{r:?}");
    r.iter()
        .filter_map(|l| l.strip_prefix("Subject: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn sessions_answer_temporary_failures_while_the_database_is_down_and_recover() {
    let mut pg = PgServer::new();
    pg.create_database("mail");
    // Down before mailcove first needs it: the pool is opened at first use.
    pg.stop();
    let lmtp_port = free_port();
    let mut s = Server::builder()
        .users(&[])
        .user("alice", "pw")
        // libpq's connect_timeout bounds how long each operation waits for the database before
        // it answers [UNAVAILABLE] (10 s without it): the same answers, sooner.
        .mail_location(&format!("{}&connect_timeout=3", pg.url("mail")))
        .config(&format!(
            "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lmtp_port}\"\n"
        ))
        .start();
    let (_, r) = imap_login(&s);
    assert!(
        tagged(&r).starts_with("l NO [UNAVAILABLE]"),
        "login while the database never was up: {r:?}"
    );
    pg.start();
    let (mut a, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l OK"), "login once it is up: {r:?}");
    let mut l = lmtp(lmtp_port);
    assert_eq!(
        deliver(&mut l, "s@example.org", "alice", &message("one")),
        "250 2.0.0 <alice> Saved"
    );
    assert!(append(&mut a, "a1", &message("two")).starts_with("a1 OK [APPENDUID "));
    assert_eq!(subjects(&mut a, "a2"), ["one", "two"]);
    // An LMTP transaction whose recipient was accepted before the database went away.
    let r = envelope(&mut l, "s@example.org", "alice");
    assert!(r.starts_with("250 "), "{r}");

    pg.stop();
    // RFC 5530 3: UNAVAILABLE, "a server or other resource is temporarily unavailable".
    let r = a.cmd("b1", "SELECT INBOX");
    assert!(tagged(&r).starts_with("b1 NO [UNAVAILABLE]"), "{r:?}");
    let r = append(&mut a, "b2", &message("lost"));
    assert!(r.starts_with("b2 NO [UNAVAILABLE]"), "{r}");
    let (_, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l NO [UNAVAILABLE]"), "{r:?}");
    // RFC 2034 / RFC 3463: 4.3.0, "other or undefined mail system status", temporary.
    let r = data(&mut l, &message("deferred"));
    assert!(r.starts_with("451 4.3.0 <alice>"), "{r}");
    let r = envelope(&mut l, "s@example.org", "alice");
    assert!(r.starts_with("451 4.3.0 <alice>"), "RCPT while down: {r}");
    l.send("RSET");
    assert!(l.line().starts_with("250 "));
    // RFC 3206 4: SYS/TEMP, a temporary system problem.
    let mut p = s.pop3();
    assert!(p.line().starts_with("+OK"));
    p.send("USER alice");
    assert!(p.line().starts_with("+OK"));
    p.send("PASS pw");
    let r = p.line();
    assert!(r.starts_with("-ERR [SYS/TEMP]"), "{r}");
    assert!(
        s.wait_exit(std::time::Duration::ZERO).is_none(),
        "mailcove must keep running while the database is down"
    );

    pg.start();
    // The same connections work again, mailcove not restarted.
    assert!(append(&mut a, "c1", &message("three")).starts_with("c1 OK [APPENDUID "));
    assert_eq!(
        deliver(&mut l, "s@example.org", "alice", &message("four")),
        "250 2.0.0 <alice> Saved"
    );
    // Nothing answered NO or 451 was stored.
    assert_eq!(subjects(&mut a, "c2"), ["one", "two", "three", "four"]);
    let (_, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l OK"), "{r:?}");
    let mut p = s.pop3();
    assert!(p.line().starts_with("+OK"));
    p.send("USER alice");
    assert!(p.line().starts_with("+OK"));
    p.send("PASS pw");
    let r = p.line();
    assert!(r.starts_with("+OK"), "{r}");
    p.send("STAT");
    assert!(p.line().starts_with("+OK 4 "));
}

#[test]
fn an_lmtp_retry_of_a_stored_delivery_is_stored_once() {
    let lmtp_port = free_port();
    let s = Server::builder()
        .users(&[])
        .user("alice", "pw")
        .mail_location(&common::postgres::fresh_database())
        .config(&format!(
            "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lmtp_port}\"\n"
        ))
        .start();
    let mut l = lmtp(lmtp_port);
    let m = message("once");
    // The MTA never saw the first 250 (say the connection dropped) and sends it all again:
    // the same sender, recipient and bytes are the same delivery.
    for _ in 0..2 {
        assert_eq!(
            deliver(&mut l, "s@example.org", "alice", &m),
            "250 2.0.0 <alice> Saved"
        );
    }
    let mut l2 = lmtp(lmtp_port);
    assert_eq!(
        deliver(&mut l2, "s@example.org", "alice", &m),
        "250 2.0.0 <alice> Saved"
    );
    // Another sender, or the same bytes changed, is another delivery.
    assert_eq!(
        deliver(&mut l, "t@example.org", "alice", &m),
        "250 2.0.0 <alice> Saved"
    );
    assert_eq!(
        deliver(&mut l, "s@example.org", "alice", &message("twice")),
        "250 2.0.0 <alice> Saved"
    );
    let (mut a, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l OK"), "{r:?}");
    assert_eq!(subjects(&mut a, "a"), ["once", "once", "twice"]);
    let r = a.cmd("b", "FETCH 1:2 (BODY.PEEK[HEADER.FIELDS (RETURN-PATH)])");
    let senders: Vec<&String> = r.iter().filter(|l| l.starts_with("Return-Path")).collect();
    assert_eq!(
        senders,
        [
            "Return-Path: <s@example.org>",
            "Return-Path: <t@example.org>"
        ]
    );
}

/// A server with user alice on a fresh PostgreSQL database and an LMTP listener: the server,
/// the database's name and the LMTP port.
fn alice_on_a_fresh_database() -> (Server, String, u16) {
    let lmtp_port = free_port();
    let location = common::postgres::fresh_database();
    let db = location
        .rsplit('/')
        .next()
        .and_then(|t| t.split('?').next())
        .unwrap_or_default()
        .to_owned();
    let s = Server::builder()
        .users(&[])
        .user("alice", "pw")
        .mail_location(&location)
        .config(&format!(
            "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lmtp_port}\"\n"
        ))
        .start();
    (s, db, lmtp_port)
}

/// Expired delivery records are deleted at most once per `PG_DELIVERY_SWEEP_SECS` per user and
/// process, not by every delivery, so a retry can find its own record expired but still there:
/// it is stored again (past the window, as documented) and its record renewed, and the MTA's
/// next retry of it is stored once.
#[test]
fn a_delivery_whose_record_expired_is_stored_again_then_once() {
    let (s, db, lmtp_port) = alice_on_a_fresh_database();
    let mut l = lmtp(lmtp_port);
    let m = message("aged");
    let saved = "250 2.0.0 <alice> Saved";
    assert_eq!(deliver(&mut l, "s@example.org", "alice", &m), saved);
    // The record ages past the 24 h window; this process swept a moment ago, so it stays.
    let pg = common::postgres::shared();
    pg.exec(
        &db,
        "UPDATE deliveries SET delivered_at = delivered_at - 2 * 86400",
    );
    assert_eq!(pg.query(&db, "SELECT count(*) FROM deliveries"), "1");
    for _ in 0..3 {
        assert_eq!(deliver(&mut l, "s@example.org", "alice", &m), saved);
    }
    assert_eq!(
        pg.query(&db, "SELECT count(*), max(uid) FROM deliveries"),
        "1|2"
    );
    let (mut a, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l OK"), "{r:?}");
    assert_eq!(subjects(&mut a, "a"), ["aged", "aged"]);
}

/// On a PostgreSQL with lz4 (Debian's has it), message content is stored lz4-compressed (the
/// start-up tuning of docs/postgresql.md, "Tuning"), and reads back whole.
#[test]
fn message_content_is_compressed_with_lz4() {
    let (s, db, lmtp_port) = alice_on_a_fresh_database();
    let mut l = lmtp(lmtp_port);
    let line = "the quick brown fox jumps over the lazy dog 0123456789\r\n";
    let m = format!("{}{}", message("big"), line.repeat(2000));
    assert_eq!(
        deliver(&mut l, "s@example.org", "alice", &m),
        "250 2.0.0 <alice> Saved"
    );
    let pg = common::postgres::shared();
    assert_eq!(
        pg.query(
            &db,
            "SELECT attcompression FROM pg_attribute \
             WHERE attrelid = 'blob_chunks'::regclass AND attname = 'data'"
        ),
        "l"
    );
    assert_eq!(
        pg.query(&db, "SELECT pg_column_compression(data) FROM blob_chunks"),
        "lz4"
    );
    let (mut a, r) = imap_login(&s);
    assert!(tagged(&r).starts_with("l OK"), "{r:?}");
    assert!(tagged(&a.cmd("s", "SELECT INBOX")).contains(" OK "));
    let r = a.cmd("f", "FETCH 1 (RFC822.SIZE BODY.PEEK[TEXT]<108000.100>)");
    let stamped = m.len() + "Return-Path: <s@example.org>\r\nDelivered-To: alice\r\n".len();
    assert!(
        r.iter()
            .any(|l| l.contains(&format!("RFC822.SIZE {stamped}"))),
        "{r:?}"
    );
    assert!(r.iter().any(|l| l.contains("lazy dog")), "{r:?}");
}

/// Run at SERIALIZABLE (as CockroachDB and YugabyteDB always run), PostgreSQL aborts with
/// SQLSTATE 40001 ("could not serialize access due to concurrent update") a transaction that
/// waited for the user's row while another one changed it. The backend runs it again, so
/// concurrent appends all succeed, with distinct UIDs. Each run of a transaction can only lose to
/// a commit made after it began, so with 4 at once none needs more than 4 runs
/// (`PG_TX_ATTEMPTS` is 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_run_again() {
    use mailcove::storage::postgres::{PgOptions, PgStorage};
    use mailcove::storage::{AppendMessage, Storage, StorageUser, SystemFlags};
    use std::sync::Arc;
    const AT_ONCE: usize = 4;
    const ROUNDS: usize = 5;
    assert!(AT_ONCE <= mailcove::limits::PG_TX_ATTEMPTS as usize);
    let pg = tokio::task::spawn_blocking(|| {
        let pg = PgServer::new();
        pg.create_database("mail");
        pg.exec(
            "postgres",
            "ALTER DATABASE mail SET default_transaction_isolation TO 'serializable'",
        );
        pg
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let storage: Arc<dyn Storage> = Arc::new(
        PgStorage::connect(PgOptions::new(pg.url("mail")))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let user = StorageUser {
        name: "alice".into(),
        ..Default::default()
    };
    let first = storage.user(&user).await.unwrap_or_else(|e| panic!("{e}"));
    let mut uids = Vec::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(tokio::sync::Barrier::new(AT_ONCE));
        let tasks: Vec<_> = (0..AT_ONCE)
            .map(|i| {
                let (storage, user, barrier) = (storage.clone(), user.clone(), barrier.clone());
                tokio::spawn(async move {
                    let u = storage.user(&user).await?;
                    barrier.wait().await;
                    let data = format!("Subject: r{round} m{i}\r\n\r\nx\r\n");
                    u.append(
                        "INBOX",
                        AppendMessage {
                            data: bytes::Bytes::from(data),
                            flags: SystemFlags::EMPTY,
                            keywords: Vec::new(),
                            internal_date: None,
                        },
                    )
                    .await
                    .map(|r| r.uid)
                })
            })
            .collect();
        for t in tasks {
            let uid = t
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("an append failed instead of running again: {e}"));
            uids.push(uid);
        }
    }
    uids.sort_unstable();
    let want: Vec<u32> = (1..=(AT_ONCE * ROUNDS) as u32).collect();
    assert_eq!(uids, want);
    let status = first
        .status("INBOX")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.messages as usize, AT_ONCE * ROUNDS);
    let log = std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default();
    assert!(
        log.contains("could not serialize access"),
        "no transaction was aborted with 40001, so nothing was run again: {log}"
    );
}
