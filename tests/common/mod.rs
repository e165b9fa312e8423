//! Test harness: starts the real `mailcove` binary on free loopback ports with a config, a users
//! file, a certificate and a mail root in a temporary directory, and talks to it over real sockets
//! like a client does (plain, implicit TLS, STARTTLS/STLS).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod postgres;
pub mod scram_client;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailcove");

/// The storage backend the test servers use: `MAILCOVE_TEST_BACKEND=memory` runs them on the
/// in-memory backend (`[mail] location = "memory:"`), `MAILCOVE_TEST_BACKEND=postgres` on the
/// PostgreSQL backend (a fresh database per server on the test process's own PostgreSQL,
/// [`postgres::shared`]), anything else (the default) on Maildir. True for either backend
/// without Maildir files: mail then goes in over IMAP, and Maildir-only checks are skipped.
pub fn memory_backend() -> bool {
    std::env::var("MAILCOVE_TEST_BACKEND").is_ok_and(|b| b == "memory" || b == "postgres")
}

/// True when the test servers run on the PostgreSQL backend (`MAILCOVE_TEST_BACKEND=postgres`).
pub fn postgres_backend() -> bool {
    std::env::var("MAILCOVE_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// For tests that look at or write Maildir files: true (after saying so on stderr, past the test
/// harness's capture, so the skip is visible) when the servers run on the memory backend, where
/// the test must return without checking anything.
pub fn skip_unless_maildir(test: &str) -> bool {
    if !memory_backend() {
        return false;
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED on MAILCOVE_TEST_BACKEND={}: {test} works on Maildir files",
        std::env::var("MAILCOVE_TEST_BACKEND").unwrap_or_default()
    );
    true
}

/// For the Maildir-only part of a test that also runs on memory: true on Maildir; on the memory
/// backend false, after saying on stderr that `what` is skipped.
pub fn on_maildir(what: &str) -> bool {
    !skip_unless_maildir(what)
}

/// How long any single read in a test may wait before the test fails instead of hanging.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A loopback port nobody listens on ([`postgres::port::unused_loopback_port`]).
pub fn free_port() -> u16 {
    postgres::port::unused_loopback_port()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Argon2id with a small cost, so tests log in quickly; production defaults are in the config.
pub fn cheap_argon2(password: &str) -> String {
    let params = mailcove::auth::Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let phc = mailcove::auth::admin::hash_password(password.as_bytes(), &params).unwrap();
    format!("{{ARGON2ID}}{phc}")
}

/// A certificate and key for `localhost`, written to `dir`.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCert {
    pub fn new() -> TestCert {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        TestCert {
            cert_pem: c.cert.pem(),
            key_pem: c.signing_key.serialize_pem(),
            der: c.cert.der().to_vec(),
        }
    }

    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("cert.pem"), &self.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &self.key_pem).unwrap();
        // Readable after the server drops root (tests only; production keeps keys 0640).
        chmod(&dir.join("key.pem"), 0o644);
    }
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Options for a test server.
pub struct Builder {
    users: Vec<String>,
    extra: String,
    listeners_extra: String,
    cert: TestCert,
    server_extra: String,
    location: Option<String>,
    /// `location` is used whatever `MAILCOVE_TEST_BACKEND` says ([`Builder::shared_location`]).
    location_fixed: bool,
    mail_extra: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            users: vec![format!("demo:{}::::::", cheap_argon2("demo"))],
            extra: String::new(),
            listeners_extra: String::new(),
            cert: TestCert::new(),
            server_extra: String::new(),
            location: None,
            location_fixed: false,
            mail_extra: String::new(),
        }
    }
}

impl Builder {
    /// Replaces the users file lines.
    pub fn users(mut self, lines: &[String]) -> Self {
        self.users = lines.to_vec();
        self
    }

    /// Adds a user with a cheap argon2id hash.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users
            .push(format!("{name}:{}::::::", cheap_argon2(password)));
        self
    }

    /// TOML appended to the generated config (whole tables such as `[pop3]` or `[limits]`).
    pub fn config(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// Keys added to the generated `[server]` table (`proxy_trusted_networks = [...]`).
    pub fn server(mut self, toml: &str) -> Self {
        self.server_extra.push_str(toml);
        self.server_extra.push('\n');
        self
    }

    /// Replaces `[mail] location` (e.g. `~/Maildir` for users with a home); `$DIR` is the
    /// server's directory.
    pub fn mail_location(mut self, location: &str) -> Self {
        self.location = Some(location.to_string());
        self
    }

    /// Uses `location` whatever `MAILCOVE_TEST_BACKEND` says: several servers on one
    /// database (tests/pg_cluster.rs), where a fresh database per server would split them.
    pub fn shared_location(mut self, location: &str) -> Self {
        self.location = Some(location.to_string());
        self.location_fixed = true;
        self
    }

    /// Keys added to the generated `[mail]` table (`fts = false`).
    pub fn mail(mut self, toml: &str) -> Self {
        self.mail_extra.push_str(toml);
        self.mail_extra.push('\n');
        self
    }

    pub fn start(self) -> Server {
        Server::start_with(self)
    }
}

/// Ports of the test server's listeners.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// IMAP with STARTTLS (loopback counts as secure).
    pub imap: u16,
    /// IMAP implicit TLS.
    pub imaps: u16,
    /// POP3 with STLS.
    pub pop3: u16,
    /// POP3 implicit TLS.
    pub pop3s: u16,
    /// IMAP with STARTTLS, treated as a remote (non-loopback) client.
    pub imap_remote: u16,
    /// POP3 with STLS, treated as remote.
    pub pop3_remote: u16,
}

pub struct Server {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    pub cert: TestCert,
    pub config_path: PathBuf,
}

fn section_defined(extra: &str, table: &str) -> bool {
    extra.lines().any(|l| l.trim() == format!("[{table}]"))
}

impl Server {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn start() -> Server {
        Builder::default().start()
    }

    fn start_with(b: Builder) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("mailcove-test")
            .tempdir()
            .unwrap();
        chmod(dir.path(), 0o755);
        let ports = Ports {
            imap: free_port(),
            imaps: free_port(),
            pop3: free_port(),
            pop3s: free_port(),
            imap_remote: free_port(),
            pop3_remote: free_port(),
        };
        b.cert.write(dir.path());
        let users_path = dir.path().join("users");
        std::fs::write(&users_path, b.users.join("\n") + "\n").unwrap();
        chmod(&users_path, 0o644);
        let d = dir.path().display();
        let mut cfg = format!(
            r#"
[server]
hostname = "localhost"
user = "nobody"
group = "nogroup"
shutdown_grace_secs = 3
control_socket = "{d}/control.sock"
{server_extra}

[[listener]]
protocol = "imap"
address = "127.0.0.1:{imap}"
tls = "starttls"

[[listener]]
protocol = "imap"
address = "127.0.0.1:{imaps}"
tls = "implicit"

[[listener]]
protocol = "pop3"
address = "127.0.0.1:{pop3}"
tls = "starttls"

[[listener]]
protocol = "pop3"
address = "127.0.0.1:{pop3s}"
tls = "implicit"

[[listener]]
protocol = "imap"
address = "127.0.0.1:{imap_remote}"
tls = "starttls"
assume_remote = true

[[listener]]
protocol = "pop3"
address = "127.0.0.1:{pop3_remote}"
tls = "starttls"
assume_remote = true

[tls]
certificate = "{d}/cert.pem"
key = "{d}/key.pem"

[mail]
location = "{location}"
{mail_extra}

{listeners}
"#,
            imap = ports.imap,
            imaps = ports.imaps,
            pop3 = ports.pop3,
            pop3s = ports.pop3s,
            imap_remote = ports.imap_remote,
            pop3_remote = ports.pop3_remote,
            listeners = b.listeners_extra,
            server_extra = b.server_extra,
            mail_extra = b.mail_extra,
            // A test that runs its own PostgreSQL (to stop it), or several servers on one
            // location (Builder::shared_location), names it whatever the backend.
            location = if let Some(own) = b
                .location
                .as_ref()
                .filter(|l| b.location_fixed || l.starts_with("postgresql://"))
            {
                own.clone()
            } else if postgres_backend() {
                postgres::fresh_database()
            } else if memory_backend() {
                "memory:".to_string()
            } else if let Some(location) = &b.location {
                location.replace("$DIR", &d.to_string())
            } else {
                format!("{d}/mail/%n")
            },
        );
        if !section_defined(&b.extra, "auth") {
            cfg.push_str(&format!(
                "[auth]\nusers_file = \"{d}/users\"\nfailure_delay_ms = 50\nfailure_delay_max_ms = 200\nhash_threads = 2\n\n"
            ));
        }
        cfg.push_str(&b.extra.replace("$DIR", &d.to_string()));
        let config_path = dir.path().join("mailcove.toml");
        std::fs::write(&config_path, cfg).unwrap();
        let mut s = Server {
            child: None,
            dir,
            ports,
            cert: b.cert,
            config_path,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config_path)
            .env("MAILCOVE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mailcove");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Starts the same server again (after a kill), on the same ports and files.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Ports accept as soon as they are bound; "started" is logged once sessions are served.
            if self.log().contains("mailcove started") {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mailcove exited during start-up ({status}):\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mailcove did not start listening:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the process to exit; returns its status, or None after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until `pred` holds for the log, for events logged asynchronously.
    pub fn wait_log(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "expected log line never came:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn imap(&self) -> Client {
        Client::plain(self.ports.imap)
    }

    pub fn pop3(&self) -> Client {
        Client::plain(self.ports.pop3)
    }

    pub fn imaps(&self) -> Client {
        Client::tls(self.ports.imaps, &self.cert.der)
    }

    pub fn pop3s(&self) -> Client {
        Client::tls(self.ports.pop3s, &self.cert.der)
    }

    /// Stores `data` in `mailbox` of `user` with IMAP APPEND, as a client would: works on every
    /// backend (the memory backend has no files to drop a message into).
    pub fn append_message(&self, user: &str, password: &str, mailbox: &str, data: &[u8]) {
        self.append_messages(user, password, mailbox, &[data]);
    }

    /// [`Server::append_message`] for many messages, in order, over one connection. Small
    /// messages go up to [`MAX_MULTIAPPEND_MESSAGES`](mailcove::limits::MAX_MULTIAPPEND_MESSAGES)
    /// at a time in one MULTIAPPEND (RFC 3502) of non-synchronizing literals: one transaction
    /// per batch instead of one per message, which is most of a PostgreSQL-backed suite's set-up.
    pub fn append_messages(&self, user: &str, password: &str, mailbox: &str, messages: &[&[u8]]) {
        let mut c = self.imap();
        assert!(c.line().starts_with("* OK"), "IMAP greeting");
        let login = c.cmd("p1", &format!("LOGIN {user} {password}"));
        assert!(
            login.last().is_some_and(|l| l.starts_with("p1 OK")),
            "{login:?}"
        );
        /// Bytes of one batch at most (a client's command, not a server limit).
        const BATCH_BYTES: usize = 1 << 20;
        let small = mailcove::limits::LITERAL_MINUS_MAX as usize;
        let answered = |c: &mut Client| {
            let done = c.until("p2 ");
            assert!(
                done.last().is_some_and(|l| l.starts_with("p2 OK")),
                "{done:?}"
            );
        };
        let mut rest = messages;
        while let Some(first) = rest.first() {
            if first.len() > small {
                c.send(&format!("p2 APPEND {mailbox} {{{}}}", first.len()));
                let go = c.line();
                assert!(go.starts_with('+'), "APPEND literal refused: {go}");
                c.send_raw(first);
                c.send_raw(b"\r\n");
                answered(&mut c);
                rest = &rest[1..];
                continue;
            }
            let mut cmd = format!("p2 APPEND {mailbox}").into_bytes();
            let mut taken = 0;
            for data in rest
                .iter()
                .take(mailcove::limits::MAX_MULTIAPPEND_MESSAGES)
                .take_while(|d| d.len() <= small)
            {
                if taken > 0 && cmd.len() + data.len() > BATCH_BYTES {
                    break;
                }
                cmd.extend_from_slice(format!(" {{{}+}}\r\n", data.len()).as_bytes());
                cmd.extend_from_slice(data);
                taken += 1;
            }
            cmd.extend_from_slice(b"\r\n");
            c.send_raw(&cmd);
            answered(&mut c);
            rest = &rest[taken..];
        }
        c.cmd("p3", "LOGOUT");
    }

    /// [`Server::deliver_raw`] for many `(file name, bytes)`, delivered in order (name order on
    /// Maildir, which is the order the server numbers them in).
    pub fn deliver_raw_many(&self, user: &str, password: &str, messages: &[(String, Vec<u8>)]) {
        if memory_backend() {
            let all: Vec<&[u8]> = messages.iter().map(|(_, m)| m.as_slice()).collect();
            self.append_messages(user, password, "INBOX", &all);
        } else {
            let new = self.maildir(user).join("new");
            for (name, data) in messages {
                std::fs::write(new.join(name), data).unwrap();
            }
        }
    }

    /// Puts a message into `user`'s INBOX the way the backend allows from outside: on Maildir a
    /// file written into `new/` (as an MTA does, named `name`), on the memory backend an IMAP
    /// APPEND with `password`.
    pub fn deliver_raw(&self, user: &str, password: &str, name: &str, data: &[u8]) {
        if memory_backend() {
            self.append_message(user, password, "INBOX", data);
        } else {
            std::fs::write(self.maildir(user).join("new").join(name), data).unwrap();
        }
    }

    /// A user's Maildir root. Tests calling it are Maildir-only: they must start with
    /// [`skip_unless_maildir`], and this panics on the memory backend to say so.
    pub fn maildir(&self, user: &str) -> PathBuf {
        assert!(
            !memory_backend(),
            "this test looks at Maildir files: start it with skip_unless_maildir()"
        );
        self.dir.path().join("mail").join(user)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A rustls client config trusting exactly `cert_der`.
pub fn client_config(cert_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(cert_der.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    /// After IMAP `COMPRESS DEFLATE` (RFC 4978), over plain or TLS.
    Deflate(Box<Deflated>),
    Gone,
}

/// Raw DEFLATE both ways over another transport, as a COMPRESS=DEFLATE client does it: every
/// write is compressed and sync-flushed, reads inflate what the server sent.
struct Deflated {
    inner: Transport,
    c: flate2::Compress,
    d: flate2::Decompress,
    zin: Vec<u8>,
    zpos: usize,
    /// Compressed bytes read from and written to the wire.
    wire_in: u64,
    wire_out: u64,
}

impl Read for Deflated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let (in0, out0) = (self.d.total_in(), self.d.total_out());
            self.d
                .decompress(&self.zin[self.zpos..], buf, flate2::FlushDecompress::None)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.zpos += (self.d.total_in() - in0) as usize;
            let made = (self.d.total_out() - out0) as usize;
            if made > 0 || buf.is_empty() {
                return Ok(made);
            }
            if self.zpos < self.zin.len() {
                continue;
            }
            self.zin.clear();
            self.zin.resize(16 * 1024, 0);
            self.zpos = 0;
            let n = self.inner.read(&mut self.zin)?;
            self.zin.truncate(n);
            self.wire_in += n as u64;
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for Deflated {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        let mut out = Vec::with_capacity(64 * 1024);
        loop {
            out.clear();
            let in0 = self.c.total_in();
            self.c
                .compress_vec(rest, &mut out, flate2::FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            rest = &rest[(self.c.total_in() - in0) as usize..];
            let full = out.len() == out.capacity();
            self.inner.write_all(&out)?;
            self.wire_out += out.len() as u64;
            if rest.is_empty() && !full {
                return Ok(buf.len());
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
            Transport::Deflate(s) => s.read(buf),
            Transport::Gone => Ok(0),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
            Transport::Deflate(s) => s.write(buf),
            Transport::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
            Transport::Deflate(s) => s.flush(),
            Transport::Gone => Ok(()),
        }
    }
}

/// A line-oriented protocol client over plain TCP or TLS, with read timeouts so a wrong server
/// makes a test fail rather than hang.
pub struct Client {
    r: BufReader<Transport>,
    pub port: u16,
}

impl Client {
    pub fn connect_tcp(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    pub fn plain(port: u16) -> Client {
        Client {
            r: BufReader::new(Transport::Plain(Self::connect_tcp(port))),
            port,
        }
    }

    /// A plain client that first sends `prefix` (a PROXY protocol header) on the new socket.
    pub fn plain_after(port: u16, prefix: &[u8]) -> Client {
        let mut tcp = Self::connect_tcp(port);
        tcp.write_all(prefix).unwrap();
        Client {
            r: BufReader::new(Transport::Plain(tcp)),
            port,
        }
    }

    /// An implicit-TLS client that first sends `prefix` in plaintext, then does the handshake.
    pub fn tls_after(port: u16, cert_der: &[u8], prefix: &[u8]) -> Client {
        let mut tcp = Self::connect_tcp(port);
        tcp.write_all(prefix).unwrap();
        let conn =
            rustls::ClientConnection::new(client_config(cert_der), "localhost".try_into().unwrap())
                .unwrap();
        Client {
            r: BufReader::new(Transport::Tls(Box::new(rustls::StreamOwned::new(
                conn, tcp,
            )))),
            port,
        }
    }

    pub fn tls(port: u16, cert_der: &[u8]) -> Client {
        let tcp = Self::connect_tcp(port);
        let conn =
            rustls::ClientConnection::new(client_config(cert_der), "localhost".try_into().unwrap())
                .unwrap();
        Client {
            r: BufReader::new(Transport::Tls(Box::new(rustls::StreamOwned::new(
                conn, tcp,
            )))),
            port,
        }
    }

    /// Upgrades after STARTTLS/STLS was answered. Panics if unread bytes are buffered, because those
    /// would be plaintext sent after the OK.
    pub fn upgrade(&mut self, cert_der: &[u8]) {
        assert!(
            self.r.buffer().is_empty(),
            "server sent bytes after the STARTTLS answer"
        );
        let t = std::mem::replace(self.r.get_mut(), Transport::Gone);
        let Transport::Plain(tcp) = t else {
            panic!("already TLS")
        };
        let conn =
            rustls::ClientConnection::new(client_config(cert_der), "localhost".try_into().unwrap())
                .unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        // Drive the handshake now so failures show here.
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).expect("TLS handshake");
        }
        *self.r.get_mut() = Transport::Tls(Box::new(s));
    }

    /// Turns on raw DEFLATE both ways after `COMPRESS DEFLATE` was answered OK (RFC 4978). Bytes
    /// already read past the OK are the start of the server's compressed stream (they fail to
    /// inflate if the server sent anything plain). The client compresses with the fast level, so
    /// big test inputs compress quickly.
    pub fn compress(&mut self) {
        let early = self.r.buffer().to_vec();
        self.r.consume(early.len());
        let inner = std::mem::replace(self.r.get_mut(), Transport::Gone);
        assert!(
            !matches!(inner, Transport::Deflate(_)),
            "already compressed"
        );
        *self.r.get_mut() = Transport::Deflate(Box::new(Deflated {
            inner,
            c: flate2::Compress::new(flate2::Compression::fast(), false),
            d: flate2::Decompress::new(false),
            zin: early,
            zpos: 0,
            wire_in: 0,
            wire_out: 0,
        }));
    }

    /// Compressed bytes received since [`Client::compress`].
    pub fn compressed_bytes_received(&mut self) -> u64 {
        match self.r.get_mut() {
            Transport::Deflate(d) => d.wire_in,
            _ => panic!("not compressed"),
        }
    }

    /// Compressed bytes sent since [`Client::compress`].
    pub fn compressed_bytes_sent(&mut self) -> u64 {
        match self.r.get_mut() {
            Transport::Deflate(d) => d.wire_out,
            _ => panic!("not compressed"),
        }
    }

    /// Sends bytes below the compression layer (a client that breaks RFC 4978).
    pub fn send_uncompressed(&mut self, bytes: &[u8]) {
        match self.r.get_mut() {
            Transport::Deflate(d) => {
                d.inner.write_all(bytes).unwrap();
                d.inner.flush().unwrap();
            }
            _ => panic!("not compressed"),
        }
    }

    /// The DER of the server's certificate, on a TLS connection.
    pub fn peer_cert(&mut self) -> Vec<u8> {
        match self.r.get_mut() {
            Transport::Tls(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).expect("TLS handshake");
                }
                s.conn.peer_certificates().unwrap()[0].to_vec()
            }
            _ => panic!("not TLS"),
        }
    }

    /// `len` bytes of exported keying material (RFC 5705 / RFC 8446 7.5) for `label` and
    /// `context`, e.g. RFC 9266's `tls-exporter` channel binding.
    pub fn export_keying_material(
        &mut self,
        label: &[u8],
        context: Option<&[u8]>,
        len: usize,
    ) -> Vec<u8> {
        match self.r.get_mut() {
            Transport::Tls(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).expect("TLS handshake");
                }
                s.conn
                    .export_keying_material(vec![0u8; len], label, context)
                    .expect("export keying material")
            }
            _ => panic!("not TLS"),
        }
    }

    /// The TLS version negotiated.
    pub fn tls_version(&mut self) -> Option<rustls::ProtocolVersion> {
        match self.r.get_mut() {
            Transport::Tls(s) => s.conn.protocol_version(),
            _ => None,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).unwrap();
        self.r.get_mut().flush().unwrap();
    }

    /// Sends one line with CRLF.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// Reads one line without its CRLF; panics on EOF or timeout.
    pub fn line(&mut self) -> String {
        self.try_line()
            .unwrap_or_else(|| panic!("connection closed while a line was expected"))
    }

    /// Reads one line; None at EOF.
    pub fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = self
            .r
            .read_until(b'\n', &mut buf)
            .expect("read (timed out?)");
        if n == 0 {
            return None;
        }
        assert!(
            buf.ends_with(b"\r\n"),
            "line without CRLF: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.truncate(buf.len() - 2);
        Some(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.r.read_exact(&mut v).expect("read bytes");
        v
    }

    /// Reads one raw line including its CRLF.
    pub fn raw_line(&mut self) -> Vec<u8> {
        let mut l = Vec::new();
        while !l.ends_with(b"\r\n") {
            l.extend_from_slice(&self.bytes(1));
        }
        l
    }

    /// Reads every byte up to the tagged answer of `tag` (excluded), literals (`{n}` and
    /// literal8 `~{n}`) read by their announced length, and returns them with the tagged line.
    pub fn raw_until(&mut self, tag: &str) -> (Vec<u8>, String) {
        let mut out = Vec::new();
        let mut at_start = true;
        loop {
            let l = self.raw_line();
            if at_start && l.starts_with(format!("{tag} ").as_bytes()) {
                return (out, String::from_utf8_lossy(&l[..l.len() - 2]).into_owned());
            }
            out.extend_from_slice(&l);
            match raw_literal_len(&l) {
                Some(n) => {
                    out.extend_from_slice(&self.bytes(n));
                    at_start = false;
                }
                None => at_start = true,
            }
        }
    }

    /// Sends `tag cmd`; returns [`Client::raw_until`] of it.
    pub fn raw_exchange(&mut self, tag: &str, cmd: &str) -> (Vec<u8>, String) {
        self.send(&format!("{tag} {cmd}"));
        self.raw_until(tag)
    }

    /// Reads lines until one starts with `prefix`; returns all of them, that one last.
    pub fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            let done = l.starts_with(prefix);
            out.push(l);
            if done {
                return out;
            }
        }
    }

    /// True when the server closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }

    /// Sends a command and reads through its tagged answer.
    pub fn cmd(&mut self, tag: &str, rest: &str) -> Vec<String> {
        self.send(&format!("{tag} {rest}"));
        self.until(&format!("{tag} "))
    }

    /// Sends `tag UID FETCH 1:* (UID BODY.PEEK[])` in the selected mailbox and returns every
    /// message as (UID, bytes), checking each response's framing and the tagged OK.
    pub fn fetch_all_bodies(&mut self, tag: &str) -> Vec<(u32, Vec<u8>)> {
        self.send(&format!("{tag} UID FETCH 1:* (UID BODY.PEEK[])"));
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l.starts_with(&format!("{tag} ")) {
                assert_eq!(l, format!("{tag} OK Fetch completed."));
                return out;
            }
            let uid: u32 = l
                .split("(UID ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no UID in {l:?}"));
            let len: usize = l
                .rsplit('{')
                .next()
                .and_then(|n| n.trim_end_matches('}').parse().ok())
                .unwrap_or_else(|| panic!("no literal in {l:?}"));
            let data = self.bytes(len);
            assert_eq!(self.line(), ")");
            out.push((uid, data));
        }
    }

    /// Reads a POP3 multi-line answer body up to the terminating ".", dot-unstuffed.
    pub fn multiline(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "." {
                return out;
            }
            out.push(l.strip_prefix('.').map(str::to_string).unwrap_or(l));
        }
    }
}

/// A plain IMAP connection to `s`, greeted and logged in as `demo`.
pub fn login_demo(s: &Server) -> Client {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd("l", "LOGIN demo demo");
    assert!(r.last().is_some_and(|l| l.starts_with("l OK")), "{r:?}");
    c
}

/// Asserts that the last line of a command's answer is its tagged OK.
pub fn assert_tagged_ok(lines: &[String]) {
    assert!(
        lines
            .last()
            .is_some_and(|l| l.split(' ').nth(1) == Some("OK")),
        "{lines:?}"
    );
}

/// Runs a wire transcript: `C:` lines are sent (consecutive ones in one write, i.e. pipelined),
/// `S:` lines must arrive in order. In an `S:` line, `*` at the very end matches any rest of the
/// line, and `{*}` matches any text inside it. `#` lines are comments.
pub fn run_transcript(client: &mut Client, transcript: &str) {
    let mut pending = String::new();
    for (no, raw) in transcript.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(c) = line.strip_prefix("C: ").or_else(|| line.strip_prefix("C:")) {
            pending.push_str(c);
            pending.push_str("\r\n");
        } else if let Some(s) = line.strip_prefix("S: ").or_else(|| line.strip_prefix("S:")) {
            if !pending.is_empty() {
                client.send_raw(pending.as_bytes());
                pending.clear();
            }
            let got = client.line();
            assert!(
                line_matches(s, &got),
                "transcript line {}: expected {s:?}, got {got:?}",
                no + 1
            );
        } else {
            panic!("transcript line {}: neither C: nor S: {raw:?}", no + 1);
        }
    }
    if !pending.is_empty() {
        client.send_raw(pending.as_bytes());
    }
}

/// Matches `got` against a pattern with `{*}` wildcards and an optional trailing `*`.
pub fn line_matches(pattern: &str, got: &str) -> bool {
    let (pattern, open_end) = match pattern.strip_suffix(" *") {
        Some(p) => (format!("{p} "), true),
        None => (pattern.to_string(), false),
    };
    let parts: Vec<&str> = pattern.split("{*}").collect();
    let mut rest = got;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 && !open_end {
            return rest.ends_with(part);
        } else {
            let Some(pos) = rest.find(part) else {
                return false;
            };
            rest = &rest[pos + part.len()..];
        }
    }
    open_end || rest.is_empty()
}

/// A two-part message of several streaming chunks (`mailcove::limits::MESSAGE_STREAM_CHUNK`)
/// mixing LF and CRLF lines, bare CRs and lines starting with `.`, built so that the server's
/// chunk boundaries (counted from the file's start, and from part 2's start for `BODY[2]`) fall
/// between a CR and its LF, right after a bare CR, right before a bare LF and right before a
/// line starting with `.`. Returns the stored bytes and the stored range of part 2's body.
pub fn chunk_boundary_message() -> (Vec<u8>, std::ops::Range<usize>) {
    let chunk = mailcove::limits::MESSAGE_STREAM_CHUNK;
    let mut m = b"From: edge@example.com\nSubject: chunk boundaries\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"bb\"\n\n--bb\nContent-Type: text/plain\n\n"
        .to_vec();
    let mut line = 0usize;
    // `(t, kind)`: the boundary falls just before index `t`.
    let mut fill = |m: &mut Vec<u8>, until: usize, targets: &[(usize, usize)]| {
        while m.len() < until {
            if let Some(&(t, kind)) = targets
                .iter()
                .find(|&&(t, _)| t > m.len() + 2 && t - m.len() < 300)
            {
                m.resize(t - 2, b'x');
                match kind % 4 {
                    // CR ends one chunk, its LF starts the next.
                    0 => m.extend_from_slice(b"y\r\nz\n"),
                    // A bare CR ends a chunk.
                    1 => m.extend_from_slice(b"y\rz\n"),
                    // A bare LF starts a chunk.
                    2 => m.extend_from_slice(b"yy\nz\n"),
                    // A line starting with "." starts a chunk.
                    _ => m.extend_from_slice(b"y\n.z\n"),
                }
                continue;
            }
            let text: &[u8] = match line % 5 {
                0 => b".dot line\n",
                1 => b"crlf line\r\n",
                2 => b"bare\rcr inside\n",
                3 => b"..two dots\r\n",
                _ => b"plain line of text\n",
            };
            m.extend_from_slice(text);
            line += 1;
        }
    };
    let file_targets: Vec<(usize, usize)> = (1..8).map(|k| (k * chunk, k - 1)).collect();
    fill(&mut m, 2 * chunk + chunk / 3, &file_targets);
    m.extend_from_slice(b"last line of part one\n--bb\nContent-Type: text/plain\n\n");
    let p2 = m.len();
    let mut targets: Vec<(usize, usize)> = (1..5).map(|k| (p2 + k * chunk, k - 1)).collect();
    targets.extend(&file_targets);
    targets.sort_unstable();
    fill(&mut m, p2 + 4 * chunk + chunk / 2, &targets);
    m.extend_from_slice(b"last line of part two");
    let end2 = m.len();
    m.extend_from_slice(b"\n--bb--\n");
    assert_eq!(
        &m[chunk - 1..=chunk],
        b"\r\n",
        "a CRLF straddles the first boundary"
    );
    assert_eq!(
        &m[p2 + chunk - 1..=p2 + chunk],
        b"\r\n",
        "and part 2's first one"
    );
    (m, p2..end2)
}

/// Literal length announced at the end of a raw line (`... {123}\r\n` or `... ~{123}\r\n`).
pub fn raw_literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"}\r\n")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&l[open + 1..]).ok()?.parse().ok()
}

/// Runs `cmd` with `input` on its standard input (closed after it) and its output captured.
pub fn output_with_stdin(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The users-file line `mailcove user add --scheme SCHEME NAME` writes for `password` (given on
/// standard input), from a users file of its own.
pub fn user_add_line(scheme: &str, name: &str, password: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let out = output_with_stdin(
        Command::new(BIN)
            .args(["user", "add", "--users"])
            .arg(&users)
            .args(["--scheme", scheme, name]),
        format!("{password}\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&users)
        .unwrap()
        .trim_end()
        .to_owned()
}

/// `mailcove check-config --config CFG`: whether it passed, and what it said (standard output
/// and standard error together).
pub fn check_config(cfg: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(cfg)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `s` as an IMAP quoted string (RFC 3501 section 4.3: `\` and `"` escaped).
pub fn imap_quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The tagged answer (`a OK ...`, `a NO ...`) to `LOGIN` with `user` and `password` quoted, on a
/// new plain IMAP connection to `s`.
pub fn imap_login_answer(s: &Server, user: &str, password: &str) -> String {
    let mut c = s.imap();
    assert!(c.line().starts_with("* OK"));
    let r = c.cmd(
        "a",
        &format!("LOGIN {} {}", imap_quoted(user), imap_quoted(password)),
    );
    r.last().cloned().unwrap_or_default()
}

/// The answer to `PASS` after `USER` on a new plain POP3 connection to `s`.
pub fn pop3_login_answer(s: &Server, user: &str, password: &str) -> String {
    let mut c = s.pop3();
    assert!(c.line().starts_with("+OK"));
    c.send(&format!("USER {user}"));
    assert!(c.line().starts_with("+OK"));
    c.send(&format!("PASS {password}"));
    c.line()
}
