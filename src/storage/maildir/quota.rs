//! Per-user quota in a Maildir++ `maildirsize` file: a definition line
//! (`<bytes>S,<count>C`) followed by `<bytes> <count>` delta lines appended
//! by every writer (one `write` each, no lock, as the Maildir++ spec says).
//! The file is rebuilt by walking the folders only when it is missing,
//! grows past 5120 bytes, or its definition differs from the limits.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use super::filename;
use super::fsutil::{read_small, write_atomic};
use crate::limits::{MAILDIRSIZE_RECALC_BYTES, MAX_SMALL_FILE_BYTES};
use crate::storage::{QuotaUsage, Result, StorageError};

/// File name of the quota file.
pub(crate) const MAILDIRSIZE: &str = "maildirsize";

/// Effective limits of one user (`None` = unlimited).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub bytes: Option<u64>,
    pub messages: Option<u64>,
}

fn definition(l: &Limits) -> String {
    format!("{}S,{}C", l.bytes.unwrap_or(0), l.messages.unwrap_or(0))
}

/// Current usage, rebuilding `maildirsize` when needed.
pub(crate) fn usage(root: &Path, limits: &Limits, fsync: bool) -> Result<QuotaUsage> {
    let path = root.join(MAILDIRSIZE);
    let data = read_small(&path, MAX_SMALL_FILE_BYTES).unwrap_or(None);
    let parsed = data.as_deref().and_then(|d| {
        if d.len() > MAILDIRSIZE_RECALC_BYTES {
            return None;
        }
        let text = std::str::from_utf8(d).ok()?;
        let mut lines = text.lines();
        if lines.next()? != definition(limits) {
            return None;
        }
        let (mut bytes, mut count) = (0i64, 0i64);
        for l in lines {
            let (b, c) = l.trim().split_once(' ')?;
            bytes = bytes.saturating_add(b.parse().ok()?);
            count = count.saturating_add(c.parse().ok()?);
        }
        Some((bytes.max(0).unsigned_abs(), count.max(0).unsigned_abs()))
    });
    let (bytes, count) = match parsed {
        Some(v) => v,
        None => {
            let (b, c) = recalc(root)?;
            let text = format!("{}\n{b} {c}\n", definition(limits));
            write_atomic(&path, text.as_bytes(), fsync)?;
            (b, c)
        }
    };
    Ok(QuotaUsage {
        bytes_used: bytes,
        bytes_limit: limits.bytes,
        messages_used: count,
        messages_limit: limits.messages,
    })
}

/// Rebuilds `maildirsize` from the folders (an administrator's `mailcove quota recalc`), as
/// the Maildir++ rules do when the file is missing: sum every message, then replace the file
/// atomically with the definition line and one usage line. Writers that append a delta while
/// the walk runs may be lost or counted twice, as with any Maildir++ recalculation; the next
/// recalculation (or the 5120-byte rebuild) corrects that.
pub(crate) fn recalculate(root: &Path, limits: &Limits, fsync: bool) -> Result<QuotaUsage> {
    let (bytes, count) = recalc(root)?;
    let text = format!("{}\n{bytes} {count}\n", definition(limits));
    write_atomic(&root.join(MAILDIRSIZE), text.as_bytes(), fsync)?;
    Ok(QuotaUsage {
        bytes_used: bytes,
        bytes_limit: limits.bytes,
        messages_used: count,
        messages_limit: limits.messages,
    })
}

/// Refuses adding `bytes` in `messages` messages when it would exceed a limit.
pub(crate) fn check(
    root: &Path,
    limits: &Limits,
    fsync: bool,
    bytes: u64,
    messages: u64,
) -> Result<()> {
    if limits.bytes.is_none() && limits.messages.is_none() {
        return Ok(());
    }
    let u = usage(root, limits, fsync)?;
    if limits
        .bytes
        .is_some_and(|l| u.bytes_used.saturating_add(bytes) > l)
        || limits
            .messages
            .is_some_and(|l| u.messages_used.saturating_add(messages) > l)
    {
        return Err(StorageError::OverQuota);
    }
    Ok(())
}

/// Records a change of usage (a missing file is rebuilt on the next read).
/// Once the file outgrows the Maildir++ limit it is removed, so it never
/// grows without bound and the next reader recalculates it.
pub(crate) fn add(root: &Path, bytes: i64, messages: i64) {
    if bytes == 0 && messages == 0 {
        return;
    }
    let path = root.join(MAILDIRSIZE);
    if let Ok(mut f) = OpenOptions::new().append(true).open(&path) {
        let _ = f.write_all(format!("{bytes} {messages}\n").as_bytes());
        if f.metadata()
            .is_ok_and(|m| m.len() > MAILDIRSIZE_RECALC_BYTES as u64)
        {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Sums every message of every folder (from `,S=` or `stat`).
fn recalc(root: &Path) -> Result<(u64, u64)> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(root) {
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(n) = name.to_str() else { continue };
            if n.starts_with('.') && n != "." && n != ".." && ent.path().join("cur").is_dir() {
                dirs.push(ent.path());
            }
        }
    }
    let (mut bytes, mut count) = (0u64, 0u64);
    for d in dirs {
        let (b, c) = folder_usage(&d);
        bytes += b;
        count += c;
    }
    Ok((bytes, count))
}

/// Bytes and count of the messages of one folder (its `cur` and `new`), by the Maildir++ rules:
/// the size from `,S=` in the name, else from `stat`.
pub(crate) fn folder_usage(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut count) = (0u64, 0u64);
    for sub in ["cur", "new"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(n) = name.to_str() else { continue };
            if n.starts_with('.') {
                continue;
            }
            let size = match filename::sizes(n).0 {
                Some(s) => s,
                None => ent.metadata().map(|m| m.len()).unwrap_or(0),
            };
            bytes += size;
            count += 1;
        }
    }
    (bytes, count)
}
