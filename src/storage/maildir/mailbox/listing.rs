//! Reading `cur/` and `new/`: the names we manage, and the files found with their sizes and
//! the order new ones are numbered in.

use std::io;
use std::path::Path;

use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{Dir, DirNames, FileStat, list_dir};
use crate::storage::{InternalDate, Result, StorageError};

use super::par_map::par_map;

/// Whether a file name is one we are willing to manage.
fn acceptable_name(name: &str) -> bool {
    // Every name of a 100,000-file listing passes here: bytes when ASCII.
    let control = if name.is_ascii() {
        name.bytes().any(|b| b.is_ascii_control())
    } else {
        name.chars().any(char::is_control)
    };
    !name.starts_with('.') && !name.is_empty() && name.len() <= 255 && !control
}

pub(super) fn read_names(dir: &Path) -> Result<DirNames> {
    match list_dir(dir, acceptable_name) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NonExistent),
        Err(e) => Err(StorageError::io("read directory", e)),
    }
}

/// A message file found on disk, its name borrowed from the listing.
#[derive(Debug, Clone, Copy)]
pub(super) struct Found<'a> {
    pub(super) name: &'a str,
    pub(super) in_new: bool,
    /// The mtime, or [`InternalDate::NOT_READ`].
    pub(super) date: InternalDate,
    pub(super) phys: u64,
    pub(super) virt: u64,
    /// What new files are numbered by (then by name): the mtime when it was
    /// read, else the delivery time the name starts with.
    order: i64,
}

/// The files found on disk (name, in `new/`) with their sizes; files that
/// vanished or are not plain files are left out.
///
/// A file whose name carries both sizes (`,S=` and `,W=`) and starts with
/// its delivery time is not stat-ed: its INTERNALDATE (the mtime) is left
/// unknown and read when a command needs it
/// ([`MailboxState::resolve_dates`](super::MailboxState::resolve_dates)),
/// as Dovecot does, since stat-ing every file dominated the first SELECT of
/// a big Maildir. Other files are stat-ed by bare name relative to an open
/// `cur/` or `new/`, by a few threads at once when there are many.
pub(super) fn make_found<'a>(
    dir: &Path,
    listed: impl Iterator<Item = (&'a str, bool)>,
) -> Result<Vec<Found<'a>>> {
    let named = |name: &str| -> Option<(u64, u64, i64)> {
        match filename::sizes(name) {
            (Some(s), Some(w)) => Some((s, w, filename::delivery_time(name)?)),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(listed.size_hint().0);
    let mut to_stat: Vec<(&str, bool)> = Vec::new();
    for (name, in_new) in listed {
        match named(name) {
            Some((phys, virt, order)) => out.push(Found {
                name,
                in_new,
                date: InternalDate::NOT_READ,
                phys,
                virt,
                order,
            }),
            None => to_stat.push((name, in_new)),
        }
    }
    if to_stat.is_empty() {
        return Ok(out);
    }
    let dirs = Dirs::open(dir, &to_stat)?;
    let stats = par_map(&to_stat, |&(name, in_new)| dirs.stat(name, in_new));
    for ((name, in_new), st) in to_stat.into_iter().zip(stats) {
        let Some(st) = st.filter(|st| st.is_file) else {
            continue;
        };
        let (s, w) = filename::sizes(name);
        let phys = s.unwrap_or(st.size);
        let virt = match w {
            Some(w) => w,
            None => {
                let sub = if in_new { "new" } else { "cur" };
                match filename::virtual_size_of(&dir.join(sub).join(name)) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
        };
        out.push(Found {
            name,
            in_new,
            date: InternalDate::at(st.mtime),
            phys,
            virt,
            order: st.mtime,
        });
    }
    Ok(out)
}

/// The order in which files new to us get their UIDs (positions in
/// `found`): by [`Found::order`], then by name.
pub(super) fn sort_found(found: &[Found<'_>]) -> Vec<u32> {
    let mut order: Vec<(i64, u32)> = found
        .iter()
        .zip(0u32..)
        .map(|(f, i)| (f.order, i))
        .collect();
    // Plain pairs sort fastest; then the rare runs of equal times by name.
    order.sort_unstable();
    let name = |i: u32| found.get(i as usize).map(|f| f.name);
    for run in order.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| name(a.1).cmp(&name(b.1)));
        }
    }
    order.into_iter().map(|(_, i)| i).collect()
}

/// `cur/` and `new/` opened for stat-ing entries by bare name.
pub(super) struct Dirs {
    cur: Option<Dir>,
    new: Option<Dir>,
}

impl Dirs {
    /// Opens the directories `files` live in. Failing to open one (out of
    /// descriptors) is an error, not an empty listing: the caller must not
    /// record `cur/` as known.
    pub(super) fn open(dir: &Path, files: &[(&str, bool)]) -> Result<Dirs> {
        let open = |sub: &str, needed: bool| -> Result<Option<Dir>> {
            if !needed {
                return Ok(None);
            }
            match Dir::open(&dir.join(sub)) {
                Ok(d) => Ok(Some(d)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StorageError::io("open directory", e)),
            }
        };
        Ok(Dirs {
            cur: open("cur", files.iter().any(|f| !f.1))?,
            new: open("new", files.iter().any(|f| f.1))?,
        })
    }

    pub(super) fn stat(&self, name: &str, in_new: bool) -> Option<FileStat> {
        if in_new {
            self.new.as_ref()
        } else {
            self.cur.as_ref()
        }?
        .stat(name)
    }
}

#[cfg(test)]
mod tests {
    use super::{Found, InternalDate, sort_found};

    #[test]
    fn new_files_are_numbered_by_time_then_name() {
        let f = |name, order| Found {
            name,
            in_new: false,
            date: InternalDate::NOT_READ,
            phys: 0,
            virt: 0,
            order,
        };
        let found = vec![
            f("b", 2),
            f("z", 1),
            f("a", 2),
            f("c", 0),
            f("a0", 2),
            f("y", 9),
        ];
        let order = sort_found(&found);
        let names: Vec<&str> = order.iter().map(|&i| found[i as usize].name).collect();
        assert_eq!(names, ["c", "z", "a", "a0", "b", "y"]);
    }
}
