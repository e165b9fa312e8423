//! RFC 7352 `duplicate`: the tracking key is SHA-256 over the handle and the tracked value;
//! the key store belongs to delivery (`Environment::duplicate_seen`, `Outcome::duplicate_marks`).

use sha2::{Digest, Sha256};

/// The key for `value` under `handle` (separated by a NUL so that ("ab","c") and ("a","bc")
/// differ).
pub fn key(handle: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sieve-duplicate\0");
    h.update(handle.as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    let out = h.finalize();
    let mut k = [0u8; 32];
    k.copy_from_slice(out.as_slice());
    k
}
