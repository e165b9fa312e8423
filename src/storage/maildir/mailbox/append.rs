//! APPEND and COPY: new messages are written (or linked) into `tmp/`, then renamed into
//! `cur/` and given UIDs; and the cleaning of `tmp/` leftovers.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::limits::TMP_MAX_AGE_SECS;
use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{fsync_dir, now_secs};
use crate::storage::maildir::index::{Entry, Record};
use crate::storage::{Flags, InternalDate, Result, StorageError, SystemFlags};

use super::keywords::beyond_letters;
use super::par_map::par_map;
use super::{MailboxState, Source, dir_mtime};

impl MailboxState {
    /// Writes `data` into `tmp/` durably and returns the temp path and base name.
    pub(crate) fn write_tmp(&self, data: &[u8], date: i64) -> Result<(PathBuf, String)> {
        let base = filename::new_base(data.len() as u64, filename::virtual_size(data));
        let path = self.dir.join("tmp").join(&base);
        let res = (|| -> io::Result<()> {
            let mut f = OpenOptions::new()
                .mode(0o600)
                .write(true)
                .create_new(true)
                .open(&path)?;
            f.write_all(data)?;
            set_mtime(&f, date)?;
            if self.fsync {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&path);
            return Err(StorageError::io("write message", e));
        }
        Ok((path, base))
    }

    /// Creates an empty file in `tmp/` for a streamed append.
    pub(crate) fn create_tmp(&self) -> Result<(File, PathBuf)> {
        let path = self.dir.join("tmp").join(filename::new_unique());
        let f = OpenOptions::new()
            .mode(0o600)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io("create message", e))?;
        Ok((f, path))
    }

    /// Makes a streamed append's file durable and dates it.
    pub(crate) fn finish_tmp(&self, f: &File, date: i64) -> Result<()> {
        set_mtime(f, date).map_err(|e| StorageError::io("date message", e))?;
        if self.fsync {
            f.sync_all()
                .map_err(|e| StorageError::io("fsync message", e))?;
        }
        Ok(())
    }

    /// Links (or copies) another mailbox's file into our `tmp/`.
    pub(crate) fn link_tmp(&self, src: &Source) -> Result<Option<(PathBuf, String)>> {
        // A new unique name (its time is the copy's SAVEDATE) carrying the source's EMAILID.
        let src_name = src.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let base = crate::storage::maildir::objectid::copy_base(
            src.meta.phys_size,
            src.meta.virt_size,
            src_name,
        );
        let path = self.dir.join("tmp").join(&base);
        match std::fs::hard_link(&src.path, &path) {
            Ok(()) => Ok(Some((path, base))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(_) => {
                // Different file system or links refused: copy the bytes.
                let res = (|| -> io::Result<()> {
                    let date = match src.meta.internal_date.get() {
                        Some(d) => d,
                        None => std::fs::metadata(&src.path)?.mtime(),
                    };
                    std::fs::copy(&src.path, &path)?;
                    let f = OpenOptions::new().write(true).open(&path)?;
                    set_mtime(&f, date)?;
                    if self.fsync {
                        f.sync_all()?;
                    }
                    Ok(())
                })();
                match res {
                    Ok(()) => Ok(Some((path, base))),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        if e.kind() == io::ErrorKind::NotFound {
                            Ok(None)
                        } else {
                            Err(StorageError::io("copy message", e))
                        }
                    }
                }
            }
        }
    }

    /// Moves prepared `tmp/` files into `cur/` with their flags and gives
    /// them UIDs; durable (file fsynced before its rename; `cur/` and the log fsynced by the
    /// group commit of [`MailboxState::locked`]) on return.
    /// Each item is `(tmp path, base name, date, flags, keywords)`; the date is Unix seconds,
    /// or a copy's [`InternalDate`] (then possibly not read yet: the link has the same mtime).
    pub(crate) fn commit_new<D: Into<InternalDate> + Copy>(
        &self,
        items: Vec<(PathBuf, String, D, SystemFlags, Vec<String>)>,
    ) -> Result<(u32, Vec<u32>)> {
        self.commit_at(items, None)
    }

    /// [`MailboxState::commit_new`], with the UIDs given in `fixed` (one per item, ascending
    /// from at least UIDNEXT: migration, [`crate::storage::UserStore::import_messages`]) instead
    /// of the next free ones.
    pub(crate) fn commit_at<D: Into<InternalDate> + Copy>(
        &self,
        items: Vec<(PathBuf, String, D, SystemFlags, Vec<String>)>,
        fixed: Option<&[u32]>,
    ) -> Result<(u32, Vec<u32>)> {
        let cleanup = |items: &[(PathBuf, String, D, SystemFlags, Vec<String>)]| {
            for (p, ..) in items {
                let _ = std::fs::remove_file(p);
            }
        };
        let res = self.locked(|inner, ctx| {
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let mut records = Vec::with_capacity(items.len());
            let mut uids = Vec::with_capacity(items.len());
            if let Some(fixed) = fixed {
                if fixed.len() != items.len() {
                    return Err(StorageError::Temporary("import UIDs do not match".into()));
                }
                crate::storage::import_uidnext(inner.hdr.uidnext, fixed.iter().copied())?;
            }
            // Every new keyword of every item, created at once (or none, when they would not fit).
            let all: Vec<String> = items.iter().flat_map(|i| i.4.iter().cloned()).collect();
            inner.intern_keywords(ctx, &all, true)?;
            // Files already renamed into cur/: taken back out if a later step fails, so a batch
            // (MULTIAPPEND) is stored all or none.
            let mut moved: Vec<PathBuf> = Vec::with_capacity(items.len());
            let rollback = |moved: &[PathBuf]| {
                for p in moved {
                    let _ = std::fs::remove_file(p);
                }
                if ctx.fsync {
                    let _ = fsync_dir(&cur);
                }
            };
            let mut step = |inner: &mut super::Inner,
                            moved: &mut Vec<PathBuf>,
                            item: &(PathBuf, String, D, SystemFlags, Vec<String>),
                            fixed_uid: Option<u32>|
             -> Result<()> {
                let (tmp, base, date, system, keywords) = item;
                let kws = inner.intern_keywords(ctx, keywords, false)?;
                let beyond = beyond_letters(&kws);
                let flags = Flags {
                    system: *system,
                    keywords: kws,
                };
                // A linked copy whose source date was never read: the link
                // is the same inode, with the same mtime.
                let date = match (*date).into().get() {
                    Some(d) => d,
                    None => std::fs::metadata(tmp)
                        .map_err(|e| StorageError::io("stat message", e))?
                        .mtime(),
                };
                let name = filename::with_flags(base, &flags, inner.keywords.len());
                let dest = cur.join(&name);
                std::fs::rename(tmp, &dest).map_err(|e| StorageError::io("rename into cur", e))?;
                moved.push(dest);
                inner.note_own(&name);
                let (phys, virt) = match filename::sizes(base) {
                    (Some(p), Some(v)) => (p, v),
                    _ => (0, 0),
                };
                let uid = fixed_uid.unwrap_or(inner.hdr.uidnext);
                inner.hdr.uidnext = uid
                    .checked_add(1)
                    .ok_or_else(|| StorageError::Corrupt("UID space exhausted".into()))?;
                inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                let modseq = inner.hdr.highest_modseq;
                let e = Entry {
                    uid,
                    modseq,
                    date: InternalDate::at(date),
                    phys,
                    virt,
                    dl: 0,
                    in_new: false,
                    name,
                };
                records.push(Record::Append(e));
                if !beyond.is_empty() {
                    records.push(Record::Keywords {
                        uid,
                        modseq,
                        keywords: beyond,
                    });
                }
                uids.push(uid);
                Ok(())
            };
            for (i, item) in items.iter().enumerate() {
                let fixed_uid = fixed.and_then(|f| f.get(i).copied());
                if let Err(e) = step(inner, &mut moved, item, fixed_uid) {
                    rollback(&moved);
                    return Err(e);
                }
            }
            // `cur/` is fsynced (with the log) by the group commit after the locks are released,
            // before this returns.
            inner.own_cur_change(&cur, pre);
            inner.apply_all(records.clone());
            Ok(((inner.hdr.uidvalidity, uids), records))
        });
        if res.is_err() {
            cleanup(&items);
        }
        res
    }

    /// Paths and metadata of `uids` for copying (missing ones are skipped).
    pub(crate) fn sources(&self, uids: &[u32]) -> Result<Vec<Source>> {
        self.locked(|inner, ctx| {
            let mut out = Vec::new();
            let mut sorted = uids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            for uid in sorted {
                let Some(i) = inner.list.position(uid) else {
                    continue;
                };
                let (Some(m), Some(f)) = (inner.list.get(i), inner.files.get(i)) else {
                    continue;
                };
                let keywords = m
                    .flags
                    .keywords
                    .iter()
                    .filter_map(|k| inner.keywords.get(k).cloned())
                    .filter(|k| !k.is_empty())
                    .collect();
                out.push(Source {
                    uid,
                    path: inner.file_path(ctx.dir, f),
                    meta: m.clone(),
                    keywords,
                });
            }
            // The copy keeps the source's INTERNALDATE: read the ones not
            // known yet (a source whose file is gone keeps an unknown date
            // and is not found by the link that follows).
            let dates = par_map(&out, |s| {
                if s.meta.internal_date.is_read() {
                    None
                } else {
                    std::fs::metadata(&s.path).ok().map(|m| m.mtime())
                }
            });
            let mut learned = Vec::new();
            for (s, d) in out.iter_mut().zip(dates) {
                if let Some(d) = d {
                    s.meta.internal_date = InternalDate::at(d);
                    learned.push((s.uid, d));
                }
            }
            inner.set_dates(&learned);
            Ok((out, Vec::new()))
        })
    }
}

fn set_mtime(f: &File, date: i64) -> io::Result<()> {
    let t = if date >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(date.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH
    };
    f.set_modified(t)
}

/// Removes `tmp/` leftovers older than 36 hours (crashed writers).
pub(super) fn clean_tmp(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir.join("tmp")) else {
        return;
    };
    let cutoff = now_secs() - TMP_MAX_AGE_SECS;
    for ent in rd.flatten() {
        if let Ok(m) = ent.metadata()
            && m.is_file()
            && tmp_is_stale(m.mtime(), m.ctime(), cutoff)
        {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// A `tmp/` file is a crashed writer's leftover only when both its mtime and
/// its ctime are old: appends set mtime to the INTERNALDATE and copies
/// hard-link files with old mtimes, but both make the ctime fresh.
fn tmp_is_stale(mtime: i64, ctime: i64, cutoff: i64) -> bool {
    mtime.max(ctime) < cutoff
}

#[cfg(test)]
mod tests {
    use super::tmp_is_stale;

    #[test]
    fn tmp_staleness_needs_old_mtime_and_ctime() {
        let cutoff = 1_000_000;
        assert!(tmp_is_stale(10, 20, cutoff));
        assert!(
            !tmp_is_stale(10, cutoff + 5, cutoff),
            "fresh link of an old message"
        );
        assert!(!tmp_is_stale(cutoff + 5, 10, cutoff));
    }
}
