//! A user's Sieve tracking file: what must survive a restart between deliveries.
//!
//! * `duplicate` (RFC 7352) ids, recorded once a delivery succeeded;
//! * vacation responses (RFC 5230 section 4.2, RFC 6131): one per (handle, sender) within
//!   `:days`/`:seconds`;
//! * redirects already sent for a message (by Message-ID and target), so a delivery the MTA
//!   retries after a temporary failure does not redirect twice.
//!
//! All three are 32-byte keys (SHA-256 of a kind tag and the parts) with the time they were
//! recorded and the time they expire, one line each: `HEX-KEY SEEN EXPIRES`. The file lives next
//! to the user's active-script link (the home, `~/.mailcove.sieve-tracking`), is rewritten
//! whole through a temporary file, fsynced and renamed, and holds at most
//! [`SIEVE_TRACKING_ENTRIES`] lines: expired entries are dropped on every write, and past the
//! bound the ones expiring first go. Within one process writers are serialised; a `deliver`
//! run racing the daemon can lose the other's newest entry (a vacation reply might then be
//! sent once more), never corrupt the file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::limits::SIEVE_TRACKING_ENTRIES;

/// The tracking file's name in the user's home (the active link's directory).
pub const TRACKING_FILE: &str = ".mailcove.sieve-tracking";

/// A key of a kind (`b"vacation"`, `b"redirect"`) and its parts.
pub fn key(kind: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind);
    for p in parts {
        h.update([0u8]);
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    at: u64,
    expires: u64,
}

/// The entries of one user's file, as read at the start of a delivery.
#[derive(Debug, Default, Clone)]
pub struct Tracking {
    path: Option<PathBuf>,
    entries: HashMap<[u8; 32], Seen>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

static WRITERS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

impl Tracking {
    /// Reads the file in `dir` (a missing or unreadable file is empty; bad lines are skipped).
    pub fn load(dir: Option<&Path>) -> Tracking {
        let Some(dir) = dir else {
            return Tracking::default();
        };
        let path = dir.join(TRACKING_FILE);
        let entries = std::fs::read_to_string(&path)
            .map(|s| parse(&s))
            .unwrap_or_default();
        Tracking {
            path: Some(path),
            entries,
        }
    }

    /// Whether `key` was recorded less than `period` before `now`.
    pub fn seen_within(&self, key: &[u8; 32], period: Duration, now: SystemTime) -> bool {
        let now = unix(now);
        self.entries
            .get(key)
            .is_some_and(|s| s.at.saturating_add(period.as_secs()) > now && s.at <= now)
    }

    /// Records `marks` (key, period) at `now` in the file, keeping what others wrote since it
    /// was read. Durable when it returns Ok.
    pub fn record(&self, marks: &[([u8; 32], Duration)], now: SystemTime) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if marks.is_empty() {
            return Ok(());
        }
        let _one = WRITERS.lock();
        let mut entries = std::fs::read_to_string(path)
            .map(|s| parse(&s))
            .unwrap_or_default();
        let now = unix(now);
        for (k, period) in marks {
            let expires = now.saturating_add(period.as_secs());
            let e = entries.entry(*k).or_insert(Seen { at: now, expires });
            e.at = now;
            e.expires = e.expires.max(expires);
        }
        entries.retain(|_, s| s.expires > now);
        let mut list: Vec<_> = entries.into_iter().collect();
        if list.len() > SIEVE_TRACKING_ENTRIES {
            list.sort_by_key(|(_, s)| std::cmp::Reverse(s.expires));
            list.truncate(SIEVE_TRACKING_ENTRIES);
        }
        let mut text = String::with_capacity(list.len() * 90);
        for (k, s) in &list {
            for b in k {
                text.push_str(&format!("{b:02x}"));
            }
            text.push_str(&format!(" {} {}\n", s.at, s.expires));
        }
        write_durably(path, text.as_bytes())
    }
}

fn parse(s: &str) -> HashMap<[u8; 32], Seen> {
    let mut out = HashMap::new();
    for line in s.lines().take(SIEVE_TRACKING_ENTRIES * 2) {
        let mut it = line.split(' ');
        let (Some(hex), Some(at), Some(exp)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(at), Ok(expires)) = (at.parse(), exp.parse()) else {
            continue;
        };
        if hex.len() != 64 {
            continue;
        }
        let mut k = [0u8; 32];
        let ok = k.iter_mut().enumerate().all(|(i, b)| {
            hex.get(i * 2..i * 2 + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .map(|v| *b = v)
                .is_some()
        });
        if ok {
            out.insert(k, Seen { at, expires });
        }
    }
    out
}

/// Writes `data` to `path` through a temporary file: fsync the file, rename, fsync the directory.
fn write_durably(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{}.tmp.{}", TRACKING_FILE, std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_keys_survive_reloading_and_expire() {
        let d = tempfile::tempdir().unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let a = key(b"vacation", &[b"h", b"alice@example.org"]);
        let b = key(b"vacation", &[b"h", b"bob@example.org"]);
        assert_ne!(a, b);
        let t = Tracking::load(Some(d.path()));
        assert!(!t.seen_within(&a, Duration::from_secs(60), t0));
        t.record(&[(a, Duration::from_secs(60))], t0).unwrap();
        let t = Tracking::load(Some(d.path()));
        assert!(t.seen_within(&a, Duration::from_secs(60), t0 + Duration::from_secs(59)));
        assert!(!t.seen_within(&a, Duration::from_secs(60), t0 + Duration::from_secs(60)));
        assert!(!t.seen_within(&b, Duration::from_secs(60), t0));
        // Recording something else later drops the expired entry.
        t.record(
            &[(b, Duration::from_secs(10))],
            t0 + Duration::from_secs(100),
        )
        .unwrap();
        let text = std::fs::read_to_string(d.path().join(TRACKING_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn the_file_stays_bounded() {
        let d = tempfile::tempdir().unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = Tracking::load(Some(d.path()));
        let marks: Vec<_> = (0..SIEVE_TRACKING_ENTRIES + 10)
            .map(|i| {
                (
                    key(b"duplicate", &[&i.to_be_bytes()]),
                    Duration::from_secs(1000 + i as u64),
                )
            })
            .collect();
        t.record(&marks, t0).unwrap();
        let t = Tracking::load(Some(d.path()));
        assert_eq!(t.entries.len(), SIEVE_TRACKING_ENTRIES);
        // The ones expiring first were dropped.
        assert!(!t.seen_within(&marks[0].0, Duration::from_secs(5000), t0));
        let last = marks.last().unwrap().0;
        assert!(t.seen_within(&last, Duration::from_secs(5000), t0));
    }
}
