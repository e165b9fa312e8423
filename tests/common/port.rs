//! Loopback ports for the servers the tests start (mailcove, PostgreSQL, slapd).

use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::Mutex;

/// Where ports are drawn from: below Linux's ephemeral range (32768 and up), which the kernel
/// hands out for `bind(0)` and for every outgoing connection.
const PORTS: std::ops::Range<u16> = 15_000..32_000;

/// A loopback port nobody listens on, for a server the test starts next.
///
/// tests/run-all runs several test binaries at once (tests/run-suites), each probing ports and
/// releasing them before its server binds them. A port from the ephemeral range can be handed
/// again at once to another process's probe or to any outgoing connection in between, and the
/// server then fails with "Address already in use". So ports are drawn at random below that
/// range, checked bindable, and never handed out twice by one process.
pub fn unused_loopback_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let span = u64::from(PORTS.end - PORTS.start);
    loop {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let port = PORTS.start + u16::try_from(random % span).unwrap_or(0);
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}
