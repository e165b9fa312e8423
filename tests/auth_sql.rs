//! Users in SQL databases (`[auth] backend = "sql"`): SQLite, PostgreSQL and MariaDB, each a
//! real server started here in a temp dir on a loopback port (as `nobody` when the tests run as
//! root: both servers refuse root), holding a postfixadmin-style `mailbox` table and queried
//! with postfixadmin's own Dovecot query. One database server per driver serves every case.
//!
//! Checked per driver: IMAP LOGIN and POP3 USER/PASS, wrong password and unknown user alike,
//! SQL injection attempts in the user name (they are bound parameters: unknown users), nologin
//! and allow_nets, LMTP delivery into the user's home from the database, `NO [UNAVAILABLE]`,
//! `-ERR [SYS/TEMP]` and `451 4.3.0` while the database is stopped and recovery once it is back,
//! a hung server (SIGSTOP) answering within the query timeout, and the lookup cache (a changed
//! password is seen after the TTL, an unknown user is remembered the negative TTL).
//! SQLite has no server to stop or hang: it gets every case but those.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Server, cheap_argon2, free_port, imap_login_answer, pop3_login_answer};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// postfixadmin's password query as its Dovecot documentation gives it, plus the passdb fields.
const PASSWORD_QUERY: &str = "SELECT username AS user, password, nologin, allow_nets \
    FROM mailbox WHERE username = '%u' AND active = '1'";
const USER_QUERY: &str = "SELECT home, maildir AS mail, quota_rule AS userdb_quota_rule FROM mailbox \
    WHERE username = '%u' AND active = '1'";
const ITERATE_QUERY: &str = "SELECT username AS user FROM mailbox WHERE active = '1'";
/// The query timeout the servers here run with.
const TIMEOUT_MS: u64 = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sqlite,
    Postgres,
    Mariadb,
}

/// A database server (or file) the test owns.
struct Db {
    kind: Kind,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

// The PostgreSQL binaries and the `nobody` rules are the shared harness's (tests/common/postgres.rs).
use common::postgres::{chown_nobody, pg_bin, run_as};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Db {
    fn new(kind: Kind) -> Db {
        let dir = tempfile::Builder::new()
            .prefix("mailcove-sql")
            .tempdir()
            .unwrap();
        common::chmod(dir.path(), 0o755);
        chown_nobody(dir.path());
        let mut db = Db {
            kind,
            dir,
            port: free_port(),
            child: None,
        };
        match kind {
            Kind::Sqlite => {}
            Kind::Postgres => {
                let pw = db.dir.path().join("pw");
                std::fs::write(&pw, "db-secret\n").unwrap();
                chown_nobody(&pw);
                run(run_as(
                    Command::new(pg_bin("initdb"))
                        .arg("-D")
                        .arg(db.dir.path().join("data"))
                        .args(["-U", "mailcove", "--auth=scram-sha-256", "--no-sync"])
                        .args(["--locale=C", "-E", "UTF8"])
                        .arg(format!("--pwfile={}", pw.display())),
                ));
            }
            Kind::Mariadb => {
                run(run_as(
                    Command::new("mariadb-install-db")
                        .arg("--no-defaults")
                        .arg(format!(
                            "--datadir={}",
                            db.dir.path().join("data").display()
                        ))
                        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]),
                ));
            }
        }
        db.start();
        let setup = match kind {
            Kind::Mariadb => {
                "CREATE DATABASE mail; \
                 CREATE USER 'mailcove'@'127.0.0.1' IDENTIFIED BY 'db-secret'; \
                 GRANT SELECT ON mail.* TO 'mailcove'@'127.0.0.1'; USE mail; \
                 CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, password VARCHAR(255), \
                 home VARCHAR(255), maildir VARCHAR(255), quota_rule VARCHAR(255), nologin VARCHAR(8), \
                 allow_nets VARCHAR(255), active TINYINT(1) NOT NULL DEFAULT 1);"
            }
            Kind::Postgres => {
                "CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, password VARCHAR(255), \
                 home VARCHAR(255), maildir VARCHAR(255), quota_rule VARCHAR(255), nologin VARCHAR(8), \
                 allow_nets VARCHAR(255), active BOOLEAN NOT NULL DEFAULT TRUE);"
            }
            Kind::Sqlite => {
                "CREATE TABLE mailbox (username TEXT PRIMARY KEY, password TEXT, home TEXT, \
                 maildir TEXT, quota_rule TEXT, nologin TEXT, allow_nets TEXT, \
                 active INTEGER NOT NULL DEFAULT 1);"
            }
        };
        db.exec(setup);
        if kind == Kind::Sqlite {
            common::chmod(&db.file(), 0o644);
        }
        db
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("users.db")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// `[auth.sql]` for mailcove.
    fn auth_config(&self, cache: &str) -> String {
        let (driver, connect) = match self.kind {
            Kind::Sqlite => ("sqlite", self.file().display().to_string()),
            Kind::Postgres => (
                "postgresql",
                format!(
                    "host=127.0.0.1 port={} dbname=postgres user=mailcove password=db-secret",
                    self.port
                ),
            ),
            Kind::Mariadb => (
                "mysql",
                format!(
                    "host=127.0.0.1 port={} dbname=mail user=mailcove password='db-secret' maxconns=4",
                    self.port
                ),
            ),
        };
        format!(
            "[auth]\nusers_file = \"$DIR/users\"\nfailure_delay_ms = 50\nfailure_delay_max_ms = 200\n\
             hash_threads = 2\nargon2_m_cost_kib = 64\nargon2_t_cost = 1\nbackend = \"sql\"\n{cache}\n\
             [auth.sql]\ndriver = \"{driver}\"\nconnect = \"{connect}\"\n\
             password_query = \"{PASSWORD_QUERY}\"\nuser_query = \"{USER_QUERY}\"\n\
             iterate_query = \"{ITERATE_QUERY}\"\nquery_timeout_ms = {TIMEOUT_MS}\n"
        )
    }

    fn start(&mut self) {
        let d = self.dir.path();
        let child = match self.kind {
            Kind::Sqlite => return,
            Kind::Postgres => run_as(
                Command::new(pg_bin("postgres"))
                    .arg("-D")
                    .arg(d.join("data"))
                    .args(["-p", &self.port.to_string(), "-k"])
                    .arg(d)
                    .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
            )
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("server.log")).unwrap())
            .spawn()
            .unwrap(),
            Kind::Mariadb => run_as(
                Command::new("/usr/sbin/mariadbd")
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", d.join("data").display()))
                    .arg(format!("--socket={}", self.socket().display()))
                    .arg(format!("--port={}", self.port))
                    .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
                    .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
                    .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"]),
            )
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("server.log")).unwrap())
            .spawn()
            .unwrap(),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ready() {
            assert!(
                Instant::now() < deadline,
                "database did not start: {}",
                std::fs::read_to_string(d.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ready(&self) -> bool {
        self.cli("SELECT 1").status.success()
    }

    fn cli(&self, sql: &str) -> std::process::Output {
        match self.kind {
            Kind::Sqlite => Command::new("sqlite3").arg(self.file()).arg(sql).output(),
            Kind::Postgres => Command::new(pg_bin("psql"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args([
                    "-U",
                    "mailcove",
                    "-d",
                    "postgres",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                ])
                .args(["-c", sql])
                .env("PGPASSWORD", "db-secret")
                .output(),
            Kind::Mariadb => Command::new("mariadb")
                .arg("--no-defaults")
                .arg(format!("--socket={}", self.socket().display()))
                .args(["-uroot", "-e", sql])
                .output(),
        }
        .unwrap()
    }

    fn exec(&self, sql: &str) {
        let sql = if self.kind == Kind::Mariadb && !sql.starts_with("CREATE DATABASE") {
            format!("USE mail; {sql}")
        } else {
            sql.to_string()
        };
        let out = self.cli(&sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Adds a user; `extra` are `column = value` SQL pairs.
    fn add(&self, user: &str, password: &str, home: &Path, extra: &[(&str, &str)]) {
        let mut cols = vec!["username", "password", "home"];
        let hash = cheap_argon2(password);
        let home = home.display().to_string();
        let mut vals = vec![user.to_string(), hash, home];
        for (c, v) in extra {
            cols.push(c);
            vals.push(v.to_string());
        }
        let vals: Vec<String> = vals
            .iter()
            .map(|v| format!("'{}'", v.replace('\'', "''")))
            .collect();
        self.exec(&format!(
            "INSERT INTO mailbox ({}) VALUES ({});",
            cols.join(", "),
            vals.join(", ")
        ));
    }

    fn set_password(&self, user: &str, password: &str) {
        self.exec(&format!(
            "UPDATE mailbox SET password = '{}' WHERE username = '{user}';",
            cheap_argon2(password)
        ));
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown; SIGTERM for MariaDB.
            let sig = match self.kind {
                Kind::Postgres => Signal::SIGINT,
                _ => Signal::SIGTERM,
            };
            let _ = kill(Pid::from_raw(child.id() as i32), sig);
            let _ = child.wait();
        }
    }

    /// SIGSTOP (or SIGCONT) to the server and every process it forked (PostgreSQL's backends
    /// each call setsid(), so the process group does not reach them).
    fn signal_all(&self, sig: Signal) {
        let Some(child) = &self.child else { return };
        let mut pids = vec![child.id() as i32];
        loop {
            let mut grew = false;
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                if ppid.is_some_and(|pp| pids.contains(&pp)) && !pids.contains(&pid) {
                    pids.push(pid);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.signal_all(Signal::SIGCONT);
        self.signal_all(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

/// Whether `user` logs in with `password` within `within` (asking again until then).
fn logs_in_within(s: &Server, within: Duration, user: &str, password: &str) -> bool {
    eventually(within, || {
        imap_login_answer(s, user, password).starts_with(OK)
    })
}

const OK: &str = "a OK";
const INVALID: &str = "a NO [AUTHENTICATIONFAILED]";
const UNAVAILABLE: &str = "a NO [UNAVAILABLE]";

fn assert_login(s: &Server, user: &str, password: &str, expect: &str) {
    let got = imap_login_answer(s, user, password);
    assert!(
        got.starts_with(expect),
        "LOGIN {user:?}: {got}\n{}",
        s.log()
    );
}

/// LMTP: the reply to `RCPT TO:<rcpt>`, and when it is 250 the reply after DATA.
fn lmtp(port: u16, rcpt: &str, body: &str) -> (String, Option<String>) {
    let mut c = Client::plain(port);
    assert!(c.line().starts_with("220"));
    c.send("LHLO test");
    c.until("250 ");
    c.send("MAIL FROM:<sender@example.net>");
    assert!(c.line().starts_with("250"));
    c.send(&format!("RCPT TO:<{rcpt}>"));
    let rcpt_reply = c.line();
    if !rcpt_reply.starts_with("250") {
        return (rcpt_reply, None);
    }
    c.send("DATA");
    assert!(c.line().starts_with("354"));
    c.send_raw(format!("Subject: t\r\n\r\n{body}\r\n.\r\n").as_bytes());
    (rcpt_reply, Some(c.line()))
}

/// `mailcove deliver -d rcpt` with a small message; its exit code.
fn deliver(s: &Server, rcpt: &str) -> i32 {
    use std::io::Write as _;
    let mut child = Command::new(common::BIN)
        .args(["deliver", "-d", rcpt, "--config"])
        .arg(&s.config_path)
        .env_remove("MAILCOVE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Subject: deliver\r\n\r\nhi\r\n");
    child.wait().unwrap().code().unwrap_or(-1)
}

/// Retries `check` until it holds or `within` passes.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_mailcove(db: &Db, cache: &str, lmtp_port: u16) -> Server {
    Server::builder()
        .config(&db.auth_config(cache))
        .config(&format!(
            "[[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{lmtp_port}\"\n"
        ))
        .mail_location("~/Maildir")
        .start()
}

fn cases(kind: Kind) {
    let mut db = Db::new(kind);
    let homes = tempfile::Builder::new()
        .prefix("mailcove-homes")
        .tempdir()
        .unwrap();
    common::chmod(homes.path(), 0o755);
    let home = |name: &str| {
        let h = homes.path().join(name);
        std::fs::create_dir_all(&h).unwrap();
        chown_nobody(&h);
        h
    };
    db.add("alice@example.org", "alice-pw", &home("alice"), &[]);
    db.add(
        "nolog@example.org",
        "pw",
        &home("nolog"),
        &[("nologin", "Y")],
    );
    db.add(
        "netonly@example.org",
        "pw",
        &home("netonly"),
        &[("allow_nets", "192.0.2.0/24")],
    );
    db.add(
        "local@example.org",
        "pw",
        &home("local"),
        &[("allow_nets", "127.0.0.0/8")],
    );
    db.add("gone@example.org", "pw", &home("gone"), &[("active", "0")]);
    // Its own mail location, postfixadmin style (a `maildir` column read as userdb `mail`).
    db.add(
        "vmail@example.org",
        "pw",
        &home("vmail"),
        &[("maildir", "maildir:~/mail/%d/%n:INDEX=MEMORY")],
    );
    db.add(
        "dbox@example.org",
        "pw",
        &home("dbox"),
        &[("maildir", "mdbox:~/mdbox")],
    );

    let lmtp_port = free_port();
    let s = start_mailcove(&db, "", lmtp_port);

    // Logins.
    assert_login(&s, "alice@example.org", "alice-pw", OK);
    let pass = pop3_login_answer(&s, "alice@example.org", "alice-pw");
    assert!(pass.starts_with("+OK Logged in"), "{pass}");
    assert_login(&s, "alice@example.org", "wrong", INVALID);
    assert!(pop3_login_answer(&s, "alice@example.org", "wrong").starts_with("-ERR [AUTH]"));
    assert_login(&s, "nobody@example.org", "alice-pw", INVALID);
    assert_login(&s, "gone@example.org", "pw", INVALID);
    // Injection attempts are user names like any other: nobody has them.
    for hostile in [
        "x' OR '1'='1",
        "alice@example.org' --",
        "' OR 1=1 --",
        "%",
        "_lice@example.org",
        "alice@example.%",
        "alice\\@example.org",
        "\\' OR 1=1 #",
    ] {
        assert_login(&s, hostile, "alice-pw", INVALID);
    }
    // passdb fields.
    assert_login(&s, "nolog@example.org", "pw", INVALID);
    assert_login(&s, "netonly@example.org", "pw", INVALID);
    assert_login(&s, "local@example.org", "pw", OK);

    // LMTP into the home the database names.
    let (rcpt, data) = lmtp(lmtp_port, "alice@example.org", "hello from lmtp");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(data.as_deref().unwrap_or("").starts_with("250"), "{data:?}");
    if common::on_maildir("delivery into the home") {
        let maildir = homes.path().join("alice/Maildir");
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(maildir.join(sub)).unwrap() {
                files.push(std::fs::read(e.unwrap().path()).unwrap());
            }
        }
        assert_eq!(files.len(), 1, "{}: {files:?}", maildir.display());
        assert!(String::from_utf8_lossy(&files[0]).contains("hello from lmtp"));
    }
    let (rcpt, data) = lmtp(lmtp_port, "vmail@example.org", "to the column's place");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(data.as_deref().unwrap_or("").starts_with("250"), "{data:?}");
    assert_login(&s, "vmail@example.org", "pw", OK);
    if common::on_maildir("delivery into the database's mail location") {
        let maildir = homes.path().join("vmail/mail/example.org/vmail");
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(maildir.join(sub)).unwrap() {
                files.push(std::fs::read(e.unwrap().path()).unwrap());
            }
        }
        assert_eq!(files.len(), 1, "{}: {files:?}", maildir.display());
        assert!(String::from_utf8_lossy(&files[0]).contains("to the column's place"));
        assert!(!homes.path().join("vmail/Maildir").exists());
    }
    if common::on_maildir("a mail location mailcove cannot serve") {
        // The administrator's to fix: deferred (the MTA keeps it queued), never bounced.
        let (rcpt, data) = lmtp(lmtp_port, "dbox@example.org", "waits in the queue");
        assert!(rcpt.starts_with("451 4.3.0 "), "{rcpt}");
        assert_eq!(data, None);
    }
    // (Gone before the -A commands below, which would rightly report that user as failed.)
    db.exec("DELETE FROM mailbox WHERE username = 'dbox@example.org';");
    let (rcpt, _) = lmtp(lmtp_port, "x'OR'1'='1@example.org", "x");
    assert!(rcpt.starts_with("550 5.1.1"), "{rcpt}");
    if common::on_maildir("deliver and the admin commands") {
        assert_eq!(deliver(&s, "alice@example.org"), 0);
        assert_eq!(deliver(&s, "nobody@example.org"), 67);
        // -A: the users iterate_query returns (not the inactive one), each looked up.
        let out = Command::new(common::BIN)
            .args(["quota", "get", "-A", "--json", "--config"])
            .arg(&s.config_path)
            .env_remove("MAILCOVE_LOG")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for user in ["alice@", "nolog@", "netonly@", "local@"] {
            assert!(
                text.contains(&format!("\"{user}example.org\"")),
                "{user}: {text}"
            );
        }
        assert!(!text.contains("gone@"), "{text}");
    }

    if kind != Kind::Sqlite {
        // Stopped: temporary failures everywhere, then recovery.
        db.stop();
        assert_login(&s, "alice@example.org", "alice-pw", UNAVAILABLE);
        assert!(
            pop3_login_answer(&s, "alice@example.org", "alice-pw").starts_with("-ERR [SYS/TEMP]")
        );
        let (rcpt, _) = lmtp(lmtp_port, "alice@example.org", "x");
        assert!(rcpt.starts_with("451 4.3.0"), "{rcpt}");
        if common::on_maildir("deliver while the database is down") {
            assert_eq!(deliver(&s, "alice@example.org"), 75);
        }
        db.start();
        assert!(
            logs_in_within(&s, Duration::from_secs(20), "alice@example.org", "alice-pw"),
            "no recovery: {}",
            s.log()
        );

        // Hung: the login answers within the timeout instead of waiting forever.
        db.signal_all(Signal::SIGSTOP);
        let t = Instant::now();
        assert_login(&s, "alice@example.org", "alice-pw", UNAVAILABLE);
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(TIMEOUT_MS / 2) && took < Duration::from_secs(8),
            "{took:?}"
        );
        let (rcpt, _) = lmtp(lmtp_port, "alice@example.org", "x");
        assert!(rcpt.starts_with("451 4.3.0"), "{rcpt}");
        db.signal_all(Signal::SIGCONT);
        assert!(
            logs_in_within(&s, Duration::from_secs(20), "alice@example.org", "alice-pw"),
            "no recovery after SIGCONT: {}",
            s.log()
        );
    }
    drop(s);

    // The lookup cache: 4 s for found users and for unknown ones.
    let ttl = Duration::from_secs(4);
    let s = start_mailcove(
        &db,
        "cache_ttl_secs = 4\ncache_negative_ttl_secs = 4\ncache_size = 100",
        free_port(),
    );
    let first_cached = Instant::now();
    assert_login(&s, "alice@example.org", "alice-pw", OK);
    assert_login(&s, "late@example.org", "late-pw", INVALID);
    let last_cached = Instant::now();
    db.set_password("alice@example.org", "new-pw");
    db.add("late@example.org", "late-pw", &home("late"), &[]);
    // Within the TTL the database is not asked again.
    assert_login(&s, "alice@example.org", "alice-pw", OK);
    assert_login(&s, "alice@example.org", "new-pw", INVALID);
    assert_login(&s, "late@example.org", "late-pw", INVALID);
    assert!(first_cached.elapsed() < ttl, "too slow to see the cache");
    std::thread::sleep(ttl.saturating_sub(last_cached.elapsed()) + Duration::from_millis(300));
    let recached = Instant::now();
    assert_login(&s, "alice@example.org", "new-pw", OK);
    assert_login(&s, "alice@example.org", "alice-pw", INVALID);
    assert_login(&s, "late@example.org", "late-pw", OK);

    // A reload (SIGHUP) empties the cache: the next password counts at once, not after the TTL.
    db.set_password("alice@example.org", "third-pw");
    assert_login(&s, "alice@example.org", "new-pw", OK);
    s.signal(Signal::SIGHUP);
    assert!(
        logs_in_within(&s, Duration::from_secs(2), "alice@example.org", "third-pw"),
        "{}",
        s.log()
    );
    assert!(
        recached.elapsed() < ttl,
        "too slow to tell reload from expiry"
    );
}

#[test]
fn sqlite() {
    cases(Kind::Sqlite);
}

#[test]
fn postgresql() {
    cases(Kind::Postgres);
}

#[test]
fn mariadb() {
    cases(Kind::Mariadb);
}
