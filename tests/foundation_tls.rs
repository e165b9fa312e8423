//! Certificate and key formats, IPv6 listeners and systemd readiness, against the real binary.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Kills the daemon when a test ends, even by panic, so no server outlives its test.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a config with one implicit-TLS POP3 listener on `addr` and the given PEM files.
fn config(dir: &std::path::Path, addr: &str, cert: &str, key: &str) -> std::path::PathBuf {
    let users = dir.join("users");
    std::fs::write(&users, format!("demo:{}::::::\n", cheap_argon2("demo"))).unwrap();
    chmod(&users, 0o644);
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nuser = \"nobody\"\ngroup = \"nogroup\"\n[[listener]]\nprotocol = \"pop3\"\naddress = \"{addr}\"\ntls = \"implicit\"\n[tls]\ncertificate = \"{cert}\"\nkey = \"{key}\"\n[auth]\nusers_file = \"{}\"\n[mail]\nlocation = \"{}/mail/%n\"\n",
            users.display(),
            dir.display()
        ),
    )
    .unwrap();
    cfg
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the daemon on `cfg`, waits for its greeting over TLS trusting `cert_der`, and stops it.
fn greets_over_tls(
    cfg: &std::path::Path,
    port: u16,
    cert_der: &[u8],
    notify: Option<&std::path::Path>,
) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(cfg)
        .stderr(std::process::Stdio::piped());
    if let Some(sock) = notify {
        cmd.env("NOTIFY_SOCKET", sock);
    }
    cmd.stdout(std::process::Stdio::null());
    let mut daemon = Daemon(cmd.spawn().unwrap());
    let child = &mut daemon.0;
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let greeting = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            || std::net::TcpStream::connect(("::1", port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(300));
            let mut c = Client::tls(port, cert_der);
            break c.line();
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("server exited {status}: {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server never listened"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    greeting
}

fn der_of(pem_path: &std::path::Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(pem_path)
        .unwrap()
        .to_vec()
}

#[test]
fn rsa_pkcs1_rsa_pkcs8_ec_sec1_and_ed25519_keys_all_load() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let d = dir.path().display().to_string();
    let cases: &[(&str, &[&str])] = &[
        (
            "rsa-pkcs8",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        ),
        (
            "ec",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        ),
        (
            "ed25519",
            &[
                "req",
                "-x509",
                "-newkey",
                "ed25519",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        ),
    ];
    for (name, args) in cases {
        let cert = format!("{d}/{name}.crt");
        let key = format!("{d}/{name}.key");
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-keyout", &key, "-out", &cert]);
        openssl(&a);
        chmod(std::path::Path::new(&key), 0o644);
        let mut keys = vec![key.clone()];
        if *name == "rsa-pkcs8" {
            // The same key in the traditional "BEGIN RSA PRIVATE KEY" (PKCS#1) form.
            let pkcs1 = format!("{d}/{name}-pkcs1.key");
            openssl(&["rsa", "-in", &key, "-traditional", "-out", &pkcs1]);
            chmod(std::path::Path::new(&pkcs1), 0o644);
            keys.push(pkcs1);
        }
        if *name == "ec" {
            let sec1 = format!("{d}/{name}-sec1.key");
            openssl(&["ec", "-in", &key, "-out", &sec1]);
            chmod(std::path::Path::new(&sec1), 0o644);
            assert!(
                std::fs::read_to_string(&sec1)
                    .unwrap()
                    .contains("BEGIN EC PRIVATE KEY")
            );
            keys.push(sec1);
        }
        for k in keys {
            let port = free_port();
            let cfg = config(dir.path(), &format!("127.0.0.1:{port}"), &cert, &k);
            let greeting = greets_over_tls(&cfg, port, &der_of(std::path::Path::new(&cert)), None);
            assert!(greeting.starts_with("+OK"), "{name} {k}: {greeting}");
        }
    }
}

#[test]
fn ipv6_listener_and_systemd_notification() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        // No IPv6 on this host: there is nothing to listen on.
        eprintln!("skipping the IPv6 half: ::1 is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let cert = TestCert::new();
    cert.write(dir.path());
    let port = free_port();
    let d = dir.path().display().to_string();
    let cfg = config(
        dir.path(),
        &format!("[::1]:{port}"),
        &format!("{d}/cert.pem"),
        &format!("{d}/key.pem"),
    );
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    chmod(&sock_path, 0o777);
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let tcp = std::net::TcpStream::connect(("::1", port));
    assert!(tcp.is_err(), "port already in use");
    let greeting = {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"])
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut daemon = Daemon(cmd.spawn().unwrap());
        let child = &mut daemon.0;
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("READY=1 from the daemon");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
        let stream = std::net::TcpStream::connect(("::1", port)).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let conn = rustls::ClientConnection::new(
            client_config(&cert.der),
            "localhost".try_into().unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(conn, stream);
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(&mut tls)
            .read_line(&mut line)
            .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let n = sock.recv(&mut buf).expect("STOPPING=1 from the daemon");
        assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
        child.wait().unwrap();
        line
    };
    assert!(greeting.starts_with("+OK"), "{greeting}");
}
