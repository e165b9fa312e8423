//! INTERNALDATEs: read lazily from the files' mtimes, kept once known.

use std::path::Path;

use crate::storage::{InternalDate, Result};

use super::listing::Dirs;
use super::par_map::par_map;
use super::{Inner, MailboxState};

impl MailboxState {
    /// INTERNALDATEs of `uids` (those still in the mailbox), reading the
    /// files' mtimes for the ones not known yet (see
    /// [`make_found`](super::listing::make_found)).
    ///
    /// The files are stat-ed without holding the mailbox, by bare name from
    /// the open directories. A file that is not where we thought (renamed or
    /// expunged by someone else) is looked for once more after a rescan,
    /// which records the expunge of one that is gone: its date stays
    /// unknown and it is treated as expunged. Dates read are kept in memory
    /// (never changed once known) and go to disk with the next index write;
    /// until then another process reads the same mtimes.
    pub(crate) fn resolve_dates(&self, uids: &[u32]) -> Result<Vec<(u32, i64)>> {
        let (uidvalidity, mut out, todo) = {
            let inner = self.inner.lock();
            let (out, todo) = inner.dates_or_files(uids.iter().copied());
            (inner.hdr.uidvalidity, out, todo)
        };
        if todo.is_empty() {
            return Ok(out);
        }
        let files: Vec<(&str, bool)> = todo.iter().map(|(_, n, i)| (&**n, *i)).collect();
        let dates = stat_dates(&self.dir, &files)?;
        let mut learned = Vec::with_capacity(todo.len());
        let mut missing = Vec::new();
        for ((uid, ..), d) in todo.iter().zip(dates) {
            match d {
                Some(d) => learned.push((*uid, d)),
                None => missing.push(*uid),
            }
        }
        {
            let mut inner = self.inner.lock();
            if inner.hdr.uidvalidity == uidvalidity {
                inner.set_dates(&learned);
            }
        }
        out.append(&mut learned);
        if !missing.is_empty() {
            // Renamed or expunged by someone else: learn the names, once.
            let mut again = self.locked(|inner, ctx| {
                let found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                let (mut known, todo) = inner.dates_or_files(missing);
                let files: Vec<(&str, bool)> = todo.iter().map(|(_, n, i)| (&**n, *i)).collect();
                let dates = stat_dates(ctx.dir, &files)?;
                let learned: Vec<(u32, i64)> = todo
                    .iter()
                    .zip(dates)
                    .filter_map(|((uid, ..), d)| Some((*uid, d?)))
                    .collect();
                inner.set_dates(&learned);
                known.extend(learned);
                Ok((known, found))
            })?;
            out.append(&mut again);
        }
        Ok(out)
    }
}

/// mtimes of `files` (name, in `new/`), `None` for one that is gone or not
/// a plain file.
fn stat_dates(dir: &Path, files: &[(&str, bool)]) -> Result<Vec<Option<i64>>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let dirs = Dirs::open(dir, files)?;
    Ok(par_map(files, |&(name, in_new)| {
        dirs.stat(name, in_new)
            .filter(|st| st.is_file)
            .map(|st| st.mtime)
    }))
}

/// A message whose date is read from its file: UID, file name, whether in `new/`.
type ToStat = (u32, Box<str>, bool);

impl Inner {
    /// For each of `uids` still in the mailbox: its date when known, else the file to stat.
    fn dates_or_files(
        &self,
        uids: impl IntoIterator<Item = u32>,
    ) -> (Vec<(u32, i64)>, Vec<ToStat>) {
        let (mut known, mut todo) = (Vec::new(), Vec::new());
        for uid in uids {
            let Some(i) = self.list.position(uid) else {
                continue;
            };
            let (Some(m), Some(f)) = (self.list.get(i), self.files.get(i)) else {
                continue;
            };
            if let Some(d) = m.internal_date.get() {
                known.push((uid, d));
            } else {
                todo.push((uid, f.name.clone(), f.in_new));
            }
        }
        (known, todo)
    }

    /// Records dates read from the files; a date already known never changes.
    pub(super) fn set_dates(&mut self, dates: &[(u32, i64)]) {
        let mut changed = false;
        for &(uid, date) in dates {
            if let Some(i) = self.list.position(uid)
                && self.list.get(i).is_some_and(|m| !m.internal_date.is_read())
            {
                self.list
                    .update(i, |m| m.internal_date = InternalDate::at(date));
                changed = true;
            }
        }
        if changed {
            // A new snapshot carries them to views; nothing to tell clients.
            self.version += 1;
        }
    }
}
