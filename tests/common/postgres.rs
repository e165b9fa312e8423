//! A real PostgreSQL server owned by a test: Debian's `postgresql` package, `initdb` in a temp
//! dir (as `nobody` when the tests run as root: PostgreSQL refuses root), a role `mailcove`
//! with a SCRAM password, listening on a free loopback port. Used by `auth_sql.rs` (users in
//! SQL) and by the storage conformance suite (the PostgreSQL storage backend).
//!
//! Self-contained (it needs nothing else of `tests/common`), so a test binary that does not use
//! the wire harness includes it with `#[path = "common/postgres.rs"] mod postgres;`.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The role and password every test server has.
pub const ROLE: &str = "mailcove";
pub const PASSWORD: &str = "db-secret";

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// `cmd` run as `nobody` when we are root.
pub fn run_as(cmd: &mut Command) -> &mut Command {
    if is_root() {
        cmd.uid(65534).gid(65534);
    }
    cmd
}

/// Gives `p` to `nobody` when we are root (the server's data and socket directory).
pub fn chown_nobody(p: &Path) {
    if is_root() {
        nix::unistd::chown(
            p,
            Some(nix::unistd::Uid::from_raw(65534)),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
    }
}

/// A program of the newest installed PostgreSQL.
pub fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|e| panic!("PostgreSQL is installed (Debian package postgresql): {e}"))
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .last()
        .unwrap_or_else(|| panic!("no PostgreSQL under /usr/lib/postgresql"))
        .join("bin")
        .join(name)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[path = "port.rs"]
pub mod port;
use port::unused_loopback_port as loopback_port;

/// A PostgreSQL server in a temporary directory.
pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// Removes `dir` when dropped (a server of [`shared`] lives as long as the process).
    _owned: Option<tempfile::TempDir>,
}

impl PgServer {
    /// A new cluster, started, in a temporary directory removed when the server is dropped.
    pub fn new() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("mailcove-pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut s = PgServer::init(dir.path().to_path_buf());
        s._owned = Some(dir);
        s
    }

    fn init(dir: PathBuf) -> PgServer {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        chown_nobody(&dir);
        let pw = dir.join("pw");
        std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap_or_else(|e| panic!("pw: {e}"));
        chown_nobody(&pw);
        run(run_as(
            Command::new(pg_bin("initdb"))
                .arg("-D")
                .arg(dir.join("data"))
                .args(["-U", ROLE, "--auth=scram-sha-256", "--no-sync"])
                .args(["--locale=C", "-E", "UTF8"])
                .arg(format!("--pwfile={}", pw.display())),
        ));
        let mut s = PgServer {
            dir,
            port: loopback_port(),
            child: None,
            _owned: None,
        };
        // The port was only probed free: another test process may bind it before the server
        // does (tests/run-all runs several at once). Then the server exits at once, and it is
        // started again on another port; a restart (`start` after `stop`) keeps its port.
        for _ in 0..5 {
            match s.try_start() {
                Ok(()) => return s,
                Err(log) if log.contains("Address already in use") => s.port = loopback_port(),
                Err(log) => panic!("database did not start: {log}"),
            }
        }
        s.start();
        s
    }

    /// Starts the server (again, after [`PgServer::stop`]) and waits until it answers.
    pub fn start(&mut self) {
        if let Err(log) = self.try_start() {
            panic!("database did not start: {log}");
        }
    }

    /// Starts the server and waits until it answers; the server's log when it exited or did not
    /// answer within a minute.
    fn try_start(&mut self) -> Result<(), String> {
        let d = &self.dir;
        let log = std::fs::File::create(d.join("server.log"))
            .unwrap_or_else(|e| panic!("server.log: {e}"));
        let child = run_as(
            Command::new(pg_bin("postgres"))
                .arg("-D")
                .arg(d.join("data"))
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(d)
                .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
                .args(["-c", "max_connections=300"]),
        )
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("postgres: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let log =
            |d: &std::path::Path| std::fs::read_to_string(d.join("server.log")).unwrap_or_default();
        while !self.psql("postgres", "SELECT 1").status.success() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_some()));
            if exited {
                self.child = None;
                return Err(log(&self.dir));
            }
            if Instant::now() >= deadline {
                return Err(log(&self.dir));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Runs `sql` in database `db` with psql.
    pub fn psql(&self, db: &str, sql: &str) -> Output {
        Command::new(pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", ROLE, "-d", db, "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"))
    }

    /// Runs `sql` in database `db`, which must succeed.
    pub fn exec(&self, db: &str, sql: &str) {
        let out = self.psql(db, sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database.
    pub fn create_database(&self, name: &str) {
        self.exec("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// The `[mail] location` of database `db` with the password in the URL.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fast shutdown (SIGINT), waiting for the server to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One server for the whole test process, started on first use; databases are cheap, so each
/// test takes its own ([`fresh_database`]). A watchdog shell stops the server and removes its
/// directory once this process has exited (statics are never dropped).
// The watchdog is meant to outlive this process (it acts once we are gone): never waited for.
#[allow(clippy::zombie_processes)]
pub fn shared() -> &'static PgServer {
    static SERVER: std::sync::OnceLock<PgServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mailcove-pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp dir: {e}"))
            .keep();
        let s = PgServer::init(dir.clone());
        let pid = s.pid().unwrap_or(0);
        let script = format!(
            "while [ -d /proc/{me} ]; do sleep 0.5; done; kill -INT {pid}; \
             while [ -d /proc/{pid} ]; do sleep 0.2; done; rm -rf '{dir}'",
            me = std::process::id(),
            dir = dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("watchdog: {e}"));
        s
    })
}

/// A new empty database on the [`shared`] server; returns its `[mail] location`.
pub fn fresh_database() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let server = shared();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    server.create_database(&name);
    server.url(&name)
}

impl PgServer {
    /// Turns TLS on (certificate and key in PEM) and makes the server refuse TCP connections
    /// without it, then reloads the configuration: a client that connects at all used TLS.
    pub fn require_tls(&self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.dir.join("data");
        for (name, pem, mode) in [
            ("server.crt", cert_pem, 0o644),
            ("server.key", key_pem, 0o600),
        ] {
            let p = data.join(name);
            std::fs::write(&p, pem).unwrap_or_else(|e| panic!("{name}: {e}"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {name}: {e}"));
            chown_nobody(&p);
        }
        let hba = data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
        std::fs::write(
            &hba,
            format!("hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n{old}"),
        )
        .unwrap_or_else(|e| panic!("pg_hba.conf: {e}"));
        // psql connects with sslmode=prefer: it takes TLS once it is on.
        self.exec("postgres", "ALTER SYSTEM SET ssl = on");
        self.exec("postgres", "SELECT pg_reload_conf()");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.psql("postgres", "SHOW ssl");
            if out.status.success() && self.query("postgres", "SHOW ssl") == "on" {
                return;
            }
            assert!(Instant::now() < deadline, "ssl did not turn on");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The single value `sql` returns (psql `-At`).
    pub fn query(&self, db: &str, sql: &str) -> String {
        let out = Command::new(pg_bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", ROLE, "-d", db, "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// [`PgServer::stop`] then [`PgServer::start`]: every client connection is cut, and the
    /// server answers again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }
}
