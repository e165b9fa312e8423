//! TLS to the PostgreSQL storage backend (issue 18): the `[mail] location` URL's `sslmode`
//! means what it means to libpq. Against a PostgreSQL of the test's own that refuses TCP
//! without TLS: `verify-full` with the right CA serves mail (and the server's statistics show
//! mailcove's connections encrypted), a wrong CA or `sslmode=disable` leaves the user a
//! temporary failure (`NO [UNAVAILABLE]`) with the reason in the log, and the server goes on.
//! The same server holds an SQL user database (`[auth] backend = "sql"`, Dovecot's connect
//! string with libpq's `sslmode`/`sslrootcert`): logins verify over TLS too.

mod common;
#[path = "common/pki.rs"]
mod pki;

use common::postgres::PgServer;
use common::*;
use pki::make_pki;

const MESSAGE: &str =
    "From: a@example.org\r\nSubject: over TLS\r\n\r\nencrypted to the database\r\n";

fn location(pg: &PgServer, db: &str, query: &str) -> String {
    pg.create_database(db);
    format!(
        "postgresql://{}:{}@127.0.0.1:{}/{db}?{query}",
        common::postgres::ROLE,
        common::postgres::PASSWORD,
        pg.port
    )
}

fn login(s: &Server) -> (Client, Vec<String>) {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", "LOGIN ann pw");
    (c, r)
}

#[test]
fn sslmode_is_honoured_against_a_server_that_requires_tls() {
    if postgres_backend() || memory_backend() {
        // This test chooses its own backend (a PostgreSQL of its own); one run is enough.
        return;
    }
    let pki = make_pki();
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    let other_ca = certs.path().join("other-ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&other_ca, make_pki().ca_pem).unwrap();
    chmod(certs.path(), 0o755);
    let pg = PgServer::new();
    pg.require_tls(&pki.cert_pem, &pki.key_pem);

    // verify-full with our CA: the certificate names 127.0.0.1 and is checked.
    let verified = location(
        &pg,
        "verified",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let s = Server::builder()
        .user("ann", "pw")
        .mail_location(&verified)
        .start();
    let (mut c, r) = login(&s);
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}\n{}", s.log());
    s.append_message("ann", "pw", "INBOX", MESSAGE.as_bytes());
    c.cmd("s", "SELECT INBOX");
    let f = c.cmd("f", "FETCH 1 BODY.PEEK[]");
    assert!(f.concat().contains("encrypted to the database"), "{f:?}");
    let encrypted = pg.query(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'mailcove' AND datname = 'verified' AND ssl",
    );
    assert_ne!(encrypted, "0", "mailcove's connections use TLS");
    let plain = pg.query(
        "postgres",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'mailcove' AND NOT ssl",
    );
    assert_eq!(plain, "0");
    c.cmd("o", "LOGOUT");
    drop(s);

    // A certificate our CA file did not sign: refused, the user told to come back later.
    let wrong = location(
        &pg,
        "wrong_ca",
        &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
    );
    let s = Server::builder()
        .user("ann", "pw")
        .mail_location(&wrong)
        .start();
    let (mut c, r) = login(&s);
    assert!(r.last().unwrap().starts_with("l NO [UNAVAILABLE]"), "{r:?}");
    assert!(
        s.log().to_lowercase().contains("certificate"),
        "the log names the certificate problem:\n{}",
        s.log()
    );
    // The server goes on: the same connection still answers.
    let n = c.cmd("n", "NOOP");
    assert!(n.last().unwrap().starts_with("n OK"), "{n:?}");
    drop(s);

    // Without TLS the server refuses us (pg_hba hostnossl reject): a temporary failure too.
    let plain = location(&pg, "plain", "sslmode=disable");
    let s = Server::builder()
        .user("ann", "pw")
        .mail_location(&plain)
        .start();
    let (_c, r) = login(&s);
    assert!(r.last().unwrap().starts_with("l NO [UNAVAILABLE]"), "{r:?}");
    assert!(
        s.log().contains("no encryption") || s.log().contains("pg_hba"),
        "{}",
        s.log()
    );
}

fn sql_auth(pg: &PgServer, tls: &str) -> String {
    format!(
        "[auth]\nbackend = \"sql\"\nusers_file = \"$DIR/users\"\nfailure_delay_ms = 50\n\
         failure_delay_max_ms = 200\nhash_threads = 2\n\
         [auth.sql]\ndriver = \"postgresql\"\n\
         connect = \"host=127.0.0.1 port={} dbname=users user={} password={} {tls}\"\n\
         password_query = \"SELECT username AS user, password FROM mailbox WHERE username = '%u'\"\n\
         user_query = \"SELECT username AS user FROM mailbox WHERE username = '%u'\"\n\
         query_timeout_ms = 2000\n",
        pg.port,
        common::postgres::ROLE,
        common::postgres::PASSWORD,
    )
}

#[test]
fn sql_logins_verify_the_database_certificate() {
    if postgres_backend() || memory_backend() {
        // Users in SQL do not depend on the storage backend; one run is enough.
        return;
    }
    let pki = make_pki();
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    chmod(certs.path(), 0o755);
    let pg = PgServer::new();
    pg.require_tls(&pki.cert_pem, &pki.key_pem);
    pg.create_database("users");
    pg.exec(
        "users",
        &format!(
            "CREATE TABLE mailbox (username TEXT PRIMARY KEY, password TEXT); \
             INSERT INTO mailbox VALUES ('ann', '{}')",
            cheap_argon2("pw")
        ),
    );
    let tls = format!("sslmode=verify-full sslrootcert={}", ca.display());
    let s = Server::builder().config(&sql_auth(&pg, &tls)).start();
    let (_c, r) = login(&s);
    assert!(r.last().unwrap().starts_with("l OK"), "{r:?}\n{}", s.log());
    drop(s);
    // The server refuses plaintext: the lookup fails, temporarily, not as a wrong password.
    let s = Server::builder()
        .config(&sql_auth(&pg, "sslmode=disable"))
        .start();
    let (_c, r) = login(&s);
    assert!(r.last().unwrap().starts_with("l NO [UNAVAILABLE]"), "{r:?}");
}

#[test]
fn check_config_names_a_missing_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mailcove.toml");
    std::fs::write(
        &cfg,
        format!(
            "[mail]\nlocation = \"postgresql://m@db.example.org/mail?sslmode=verify-full&sslrootcert={}/nope.pem\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let (ok, err) = check_config(&cfg);
    assert!(!ok, "{err}");
    assert!(
        err.contains("sslrootcert") && err.contains("nope.pem"),
        "{err}"
    );
}
