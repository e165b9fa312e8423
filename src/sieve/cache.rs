//! Compiled scripts, cached process-wide. An entry is keyed by the script's path and its file
//! identity (device, inode, size, modification time), so a script edited in place, replaced by
//! a rename or re-linked is compiled again on its next use; an unchanged one is compiled once.
//! A script that does not compile is cached as such too, so its error is logged once per
//! version of the file, not once per message.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{CompileError, Script};
use crate::limits::{SIEVE_MAX_SCRIPT_SIZE, SIEVE_SCRIPT_CACHE_ENTRIES};

/// The identity of one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Self {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

struct Entry {
    version: Version,
    compiled: Result<Arc<Script>, CompileError>,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, Entry>,
    clock: u64,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// The compiled script at `path` (following links): `None` when there is no such file,
/// `Some(Err)` when it does not compile (logged once per version of the file).
pub fn load(path: &Path) -> Option<Result<Arc<Script>, CompileError>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let version = Version::of(&meta);
    if let Some(hit) = lookup(path, version) {
        return Some(hit);
    }
    // Compile outside the lock: two deliveries may compile the same new script at once, which
    // costs a little CPU but never blocks everyone behind one big script.
    let compiled = read_and_compile(path, &meta);
    // The file may have changed while it was read: key the entry by what was there before the
    // read, so a change after the stat is seen (and compiled) next time.
    if let Err(e) = &compiled {
        tracing::warn!(script = %path.display(), error = %e, "sieve: script does not compile; it is skipped and mail goes to INBOX");
    }
    insert(path, version, compiled.clone());
    Some(compiled)
}

fn read_and_compile(path: &Path, meta: &std::fs::Metadata) -> Result<Arc<Script>, CompileError> {
    let fail = |message: String| CompileError {
        line: 1,
        column: 1,
        message,
    };
    if meta.len() > SIEVE_MAX_SCRIPT_SIZE as u64 {
        return Err(fail(format!(
            "script is larger than {SIEVE_MAX_SCRIPT_SIZE} bytes"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read the script: {e}")))?;
    let source = String::from_utf8(bytes).map_err(|_| fail("script is not UTF-8".into()))?;
    super::compile(&source).map(Arc::new)
}

fn lookup(path: &Path, version: Version) -> Option<Result<Arc<Script>, CompileError>> {
    let mut guard = CACHE.lock();
    let cache = guard.get_or_insert_with(Cache::default);
    cache.clock += 1;
    let now = cache.clock;
    let e = cache.entries.get_mut(path)?;
    if e.version != version {
        return None;
    }
    e.last_used = now;
    Some(e.compiled.clone())
}

fn insert(path: &Path, version: Version, compiled: Result<Arc<Script>, CompileError>) {
    let mut guard = CACHE.lock();
    let cache = guard.get_or_insert_with(Cache::default);
    cache.clock += 1;
    if cache.entries.len() >= SIEVE_SCRIPT_CACHE_ENTRIES && !cache.entries.contains_key(path) {
        let oldest = cache
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(p, _)| p.clone());
        if let Some(p) = oldest {
            cache.entries.remove(&p);
        }
    }
    let last_used = cache.clock;
    cache.entries.insert(
        path.to_path_buf(),
        Entry {
            version,
            compiled,
            last_used,
        },
    );
}

/// Entries held (for tests and metrics).
pub fn len() -> usize {
    CACHE.lock().as_ref().map_or(0, |c| c.entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_no_script_and_changes_are_seen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.sieve");
        assert!(load(&p).is_none());
        std::fs::write(&p, "keep;").unwrap();
        let first = load(&p).unwrap();
        let again = load(&p).unwrap();
        match (&first, &again) {
            (Ok(a), Ok(b)) => assert!(Arc::ptr_eq(a, b), "unchanged file is served from cache"),
            (Err(a), Err(b)) => assert_eq!(a, b),
            _ => panic!("same file compiled differently"),
        }
        // A new version (different size) is compiled again.
        std::fs::write(&p, "keep;\nkeep;\n").unwrap();
        let third = load(&p).unwrap();
        if let (Ok(a), Ok(b)) = (&first, &third) {
            assert!(!Arc::ptr_eq(a, b));
            assert_eq!(b.source(), "keep;\nkeep;\n");
        }
        assert!(len() >= 1);
    }

    #[test]
    fn oversized_script_does_not_compile() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.sieve");
        std::fs::write(&p, vec![b'#'; SIEVE_MAX_SCRIPT_SIZE + 1]).unwrap();
        assert!(matches!(load(&p), Some(Err(_))));
    }
}
