//! LMTP delivery throughput: deliveries per second with 1 and 8 concurrent connections, for 4 KB
//! and 100 KB messages, fsync on. Starts the real (release, under `cargo bench`) binary on a free
//! loopback port with a temporary mail directory.
//!
//! `cargo bench --bench lmtp` — `BENCH_SECS` sets the seconds per case (default 5). The mail
//! directory lives under `BENCH_DIR` (default the system temp dir): put it on the disk you want
//! to measure, since fsync cost is most of a delivery.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mailcove");
const USERS: usize = 8;

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, port: u16) -> Result<Daemon, Box<dyn std::error::Error>> {
    let params = mailcove::auth::Argon2Params {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };
    let hash = mailcove::auth::admin::hash_password(b"x", &params)?;
    let users: String = (0..USERS)
        .map(|i| format!("bench{i}:{{ARGON2ID}}{hash}::::::\n"))
        .collect();
    std::fs::write(dir.join("users"), users)?;
    let d = dir.display();
    let config = format!(
        "[server]\nhostname = \"bench\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\n\
         [[listener]]\nprotocol = \"lmtp\"\naddress = \"127.0.0.1:{port}\"\n\n\
         [mail]\nlocation = \"{d}/mail/%n\"\nfsync = true\n\n\
         [auth]\nusers_file = \"{d}/users\"\n\n[logging]\nlevel = \"warn\"\n"
    );
    std::fs::write(dir.join("mailcove.toml"), config)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    std::fs::set_permissions(dir.join("users"), std::fs::Permissions::from_mode(0o644))?;
    let log = std::fs::File::create(dir.join("server.log"))?;
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(dir.join("mailcove.toml"))
        .env("MAILCOVE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(dir.join("server.log"))?.contains("mailcove started") {
        if Instant::now() > deadline {
            return Err("mailcove did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(daemon)
}

fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: bench@example.net\r\nSubject: bench\r\n\r\n".to_vec();
    let line = b"0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}

/// One connection delivering to `rcpt` until `stop`; adds its deliveries to `done`.
fn connection(
    port: u16,
    rcpt: &str,
    msg: &[u8],
    stop: &AtomicBool,
    done: &AtomicU64,
) -> std::io::Result<()> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_nodelay(true)?;
    let mut w = sock.try_clone()?;
    let mut r = BufReader::new(sock);
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>, code: &str| -> std::io::Result<()> {
        line.clear();
        r.read_line(&mut line)?;
        if line.starts_with(code) {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "expected {code}, got {line:?}"
            )))
        }
    };
    expect(&mut r, "220")?;
    w.write_all(b"LHLO bench\r\n")?;
    for _ in 0..5 {
        expect(&mut r, "250-")?;
    }
    expect(&mut r, "250 ")?;
    let mut wire =
        format!("MAIL FROM:<bench@example.net>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n").into_bytes();
    wire.extend_from_slice(msg);
    wire.extend_from_slice(b".\r\n");
    while !stop.load(Ordering::Relaxed) {
        w.write_all(&wire)?;
        expect(&mut r, "250")?;
        expect(&mut r, "250")?;
        expect(&mut r, "354")?;
        expect(&mut r, "250")?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    w.write_all(b"QUIT\r\n")?;
    Ok(())
}

fn run_case(port: u16, conns: usize, spread: bool, size: usize, secs: u64) -> f64 {
    let msg = message(size);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..conns {
            let rcpt = if spread {
                format!("bench{}", i % USERS)
            } else {
                "bench0".to_string()
            };
            let (msg, stop, done) = (&msg, &stop, &done);
            s.spawn(move || {
                if let Err(e) = connection(port, &rcpt, msg, stop, done) {
                    eprintln!("connection {i}: {e}");
                }
            });
        }
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let base = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let dir = tempfile::Builder::new()
        .prefix("mailcove-bench")
        .tempdir_in(base)?;
    let port = free_port()?;
    let _daemon = start(dir.path(), port)?;
    println!(
        "LMTP delivery, fsync on, {secs} s per case, mail in {}",
        dir.path().display()
    );
    println!(
        "{:>8} {:>12} {:>22} {:>14} {:>10}",
        "size", "connections", "recipients", "deliveries/s", "MB/s"
    );
    for size in [4 * 1024, 100 * 1024] {
        for (conns, spread) in [(1, false), (8, false), (8, true)] {
            let rate = run_case(port, conns, spread, size, secs);
            let who = if spread {
                "8 users (1 per conn)"
            } else {
                "1 user"
            };
            println!(
                "{:>8} {:>12} {:>22} {:>14.1} {:>10.1}",
                format!("{} KB", size / 1024),
                conns,
                who,
                rate,
                rate * size as f64 / 1e6
            );
        }
    }
    Ok(())
}
