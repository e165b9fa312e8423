//! Loopback ports for the servers the tests start (mailcove, PostgreSQL, slapd).

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where ports are drawn from: below Linux's ephemeral range (32768 and up), which the kernel
/// hands out for `bind(0)` and for every outgoing connection.
const PORTS: std::ops::Range<u16> = 15_000..32_000;

/// Ports this process holds: for each, its open lock file (see [`unused_loopback_port`]).
static GIVEN: Mutex<Vec<(u16, File)>> = Mutex::new(Vec::new());

/// The directory of the per-port lock files every test process of this user shares (one per
/// user, so that a run as root does not leave a directory another user cannot write in).
fn lock_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "mailcove-test-ports-{}",
        nix::unistd::Uid::effective()
    ))
}

/// A loopback port nobody listens on, for a server the test starts next.
///
/// tests/run-all runs several test binaries at once (tests/run-suites), each probing ports and
/// releasing them before its server binds them. A port from the ephemeral range can be handed
/// again at once to another process's probe or to any outgoing connection in between, and the
/// server then fails with "Address already in use". So ports are drawn at random below that
/// range and checked bindable. Two test processes could still draw the same port in the moment
/// between one's probe and its server's bind (it happened twice in one run of the suite), so
/// each port is also reserved across processes: an exclusive `flock` on
/// `$TMPDIR/mailcove-test-ports-<uid>/<port>`, held until this process exits (the kernel drops it
/// then, so a killed test leaves nothing reserved).
pub fn unused_loopback_port() -> u16 {
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).expect("create the test port lock directory");
    let span = u64::from(PORTS.end - PORTS.start);
    loop {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = PORTS.start + u16::try_from(random % span).unwrap_or(0);
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.iter().any(|(p, _)| *p == port) {
            continue;
        }
        let path = dir.join(port.to_string());
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open the port lock {}: {e}", path.display()));
        // Held by another test process: its server is about to bind the port, or has.
        if lock.try_lock().is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push((port, lock));
            return port;
        }
    }
}
