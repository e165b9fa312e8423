//! Small file-system helpers: durable writes, directory fsync, flock.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::limits::{DIR_LIST_RESERVE_MAX, DIR_READ_BUF_BYTES};
use crate::storage::{Result, StorageError};

/// Fsyncs a directory so a rename or create in it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `data` atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, data: &[u8], fsync: bool) -> Result<()> {
    replace_file(path, data, fsync)?;
    if fsync {
        let dir = path
            .parent()
            .ok_or_else(|| StorageError::Temporary("path without parent".into()))?;
        fsync_dir(dir).map_err(|e| StorageError::io("write file", e))?;
    }
    Ok(())
}

/// Replaces `path` with `data` by temp file and rename; with `sync_data`,
/// the data is fsynced before the rename. The directory is NOT fsynced: the
/// caller does that once for several files, before relying on the names.
pub(crate) fn replace_file(path: &Path, data: &[u8], sync_data: bool) -> Result<()> {
    replace_file_with(path, sync_data, |f| f.write_all(data))
}

/// [`replace_file`] with the content written by `fill`.
pub(crate) fn replace_file_with(
    path: &Path,
    sync_data: bool,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| StorageError::Temporary("path without parent".into()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StorageError::Temporary("path without file name".into()))?;
    // Unique per process and call: two threads may replace the same file
    // (a quota recalculation is not under any lock).
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("{name}.tmp.{}.{seq}", std::process::id()));
    let res = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        fill(&mut f)?;
        if sync_data {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| StorageError::io_at("write file", &tmp, e))
}

/// Appends `data` to the existing file `path`; with `sync_data`, the appended bytes (and the new
/// length) are durable when this returns. The name is not touched, so no directory fsync is
/// needed: the file must already have been made durable under its name.
pub(crate) fn append_durable(path: &Path, data: &[u8], sync_data: bool) -> Result<()> {
    let res = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().append(true).open(path)?;
        f.write_all(data)?;
        if sync_data {
            f.sync_data()?;
        }
        Ok(())
    })();
    res.map_err(|e| StorageError::io_at("append to file", path, e))
}

/// What [`Dir::stat`] reports about one entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileStat {
    pub is_file: bool,
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

/// An open directory whose entries are looked at by bare name (`fstatat`),
/// so stat-ing 100,000 files does not walk the full path 100,000 times.
pub(crate) struct Dir(File);

impl Dir {
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path)
            .map(Dir)
    }

    /// Stats `name` (one path component) as `stat(2)` does, following a
    /// symlink; `None` when it is gone, unreadable or not a plain name.
    pub(crate) fn stat(&self, name: &str) -> Option<FileStat> {
        let mut buf = [0u8; 256];
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&0) || bytes.contains(&b'/') {
            return None;
        }
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        // `buf` holds the name and at least one NUL after it (names longer
        // than 255 bytes fail the `get_mut` above).
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the descriptor is open, `buf` is NUL-terminated and `st`
        // is a valid out-pointer that fstatat fills on success.
        let r =
            unsafe { libc::fstatat(self.0.as_raw_fd(), buf.as_ptr().cast(), st.as_mut_ptr(), 0) };
        if r != 0 {
            return None;
        }
        // SAFETY: fstatat returned 0, so it wrote the whole struct.
        let st = unsafe { st.assume_init() };
        Some(FileStat {
            is_file: st.st_mode & libc::S_IFMT == libc::S_IFREG,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: st.st_mtime,
        })
    }
}

/// The names in a directory, back to back in one buffer: listing a
/// 100,000-file `cur/` costs a few growing allocations, not one per name.
#[derive(Default)]
pub(crate) struct DirNames {
    text: String,
    /// `ends[i]` is where name `i` ends in `text` (it starts where `i - 1` ends).
    ends: Vec<u32>,
}

impl DirNames {
    /// Number of names.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there is no name.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The names, in the order the directory listed them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&end| {
            let end = end as usize;
            let s = self.text.get(start..end).unwrap_or_default();
            start = end;
            s
        })
    }
}

/// Lists `path` with `getdents64(2)` into a [`DirNames`], keeping the UTF-8
/// names `keep` accepts (`.` and `..` never reach it).
///
/// `std::fs::read_dir` allocates a name and an `Arc`'d path per entry; this
/// copies each name once, from the kernel's buffer into one string.
pub(crate) fn list_dir(path: &Path, keep: impl Fn(&str) -> bool) -> io::Result<DirNames> {
    let dir = Dir::open(path)?;
    // u64 words: the kernel writes 8-aligned records.
    let mut buf = vec![0u64; DIR_READ_BUF_BYTES / 8];
    let mut out = DirNames::default();
    // A directory's size is about the bytes of its records (name plus 19
    // to 26): reserving that once saves growing 6 MB of names by doubling.
    let size = dir.0.metadata().map_or(0, |m| m.len());
    let guess = usize::try_from(size).unwrap_or(0).min(DIR_LIST_RESERVE_MAX);
    out.text.reserve(guess);
    out.ends.reserve(guess / 32);
    loop {
        let len = buf.len() * 8;
        // SAFETY: the descriptor is an open directory and `buf` is a
        // writable buffer of `len` bytes that outlives the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.0.as_raw_fd(),
                buf.as_mut_ptr().cast::<u8>(),
                len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = usize::try_from(n).unwrap_or(0).min(len);
        if n == 0 {
            return Ok(out);
        }
        // SAFETY: the kernel initialised the first `n` bytes; u8 has no
        // alignment or validity requirements.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let mut pos = 0usize;
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16,
        // d_type u8, then the NUL-terminated name.
        while let Some(rec) = bytes.get(pos..) {
            let Some(&[a, b]) = rec.get(16..18) else {
                break;
            };
            let reclen = usize::from(u16::from_ne_bytes([a, b]));
            if reclen == 0 {
                break;
            }
            let raw = rec.get(19..reclen.min(rec.len())).unwrap_or_default();
            let raw = raw
                .get(..memchr::memchr(0, raw).unwrap_or(raw.len()))
                .unwrap_or_default();
            pos += reclen;
            if raw == b"." || raw == b".." {
                continue;
            }
            if let Ok(name) = std::str::from_utf8(raw)
                && keep(name)
            {
                out.text.push_str(name);
                let end = u32::try_from(out.text.len())
                    .map_err(|_| io::Error::other("directory listing too large"))?;
                out.ends.push(end);
            }
        }
    }
}

/// Reads a small file, refusing ones above `limit` bytes; `None` when absent.
pub(crate) fn read_small(path: &Path, limit: usize) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io_at("open file", path, e)),
    };
    let mut buf = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StorageError::io("read file", e))?;
    if buf.len() > limit {
        return Err(StorageError::Corrupt(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(Some(buf))
}

/// `flock(2)` modes.
#[derive(Clone, Copy)]
pub(crate) enum LockMode {
    /// Wait for the exclusive lock.
    Exclusive,
    /// Take the exclusive lock or fail at once.
    TryExclusive,
}

/// Takes a `flock` on `file`. Returns `Ok(false)` when `TryExclusive` finds it held.
pub(crate) fn flock(file: &File, mode: LockMode) -> io::Result<bool> {
    let op = match mode {
        LockMode::Exclusive => libc::LOCK_EX,
        LockMode::TryExclusive => libc::LOCK_EX | libc::LOCK_NB,
    };
    loop {
        // SAFETY: flock on a valid, owned descriptor has no memory effects.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Releases a `flock`.
pub(crate) fn funlock(file: &File) {
    // SAFETY: as above; failure only means the lock was not held.
    unsafe {
        libc::flock(file.as_raw_fd(), libc::LOCK_UN);
    }
}

/// Opens (creating) a lock file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .mode(0o600)
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io_at("open lock file", path, e))
}

/// Now as Unix seconds.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Now as Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Modification time of a file or directory as Unix nanoseconds.
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.mtime_nsec())
}

/// Runs blocking work off the runtime threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Temporary(format!("storage worker failed: {e}")))?
}
