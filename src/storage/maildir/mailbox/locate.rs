//! Finding and opening message files for reads, by bare name relative to an open `cur/` or
//! `new/`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::MailboxState;

impl MailboxState {
    /// [`MailboxState::locate`] for a caller on a runtime thread: `None` also when another
    /// thread holds the state (a scan can take milliseconds), rather than waiting for it.
    pub(crate) fn try_locate(&self, uid: u32) -> Option<(PathBuf, u64, u64)> {
        let inner = self.inner.try_lock()?;
        let i = inner.list.position(uid)?;
        let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
        Some((inner.file_path(&self.dir, f), m.phys_size, m.virt_size))
    }

    /// Opens the file of `uid` by its bare name, relative to the open directory in `dirs`
    /// (no path built, one component for the kernel to look up); `None` when `uid` is not in
    /// the mailbox, else the open's result (`NotFound` when renamed or expunged by someone else:
    /// the caller rescans and asks again) and the message's physical and virtual sizes.
    pub(crate) fn open_in(
        &self,
        uid: u32,
        dirs: &mut MessageDirs,
    ) -> Option<(io::Result<File>, u64, u64)> {
        let (in_new, phys, virt) = {
            let inner = self.inner.lock();
            let i = inner.list.position(uid)?;
            let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
            dirs.name.clear();
            dirs.name.push_str(&f.name);
            (f.in_new, m.phys_size, m.virt_size)
        };
        Some((dirs.open(&self.dir, in_new), phys, virt))
    }

    /// The file names and sizes of `uids` under one hold of the state, for a run of opens by
    /// [`MessageDirs::open_located`] (`None` for a UID not in the mailbox). A run of opens then
    /// takes the state lock once, instead of once per message, and does not stall behind a
    /// cache write or a rescan on another thread between its opens.
    pub(crate) fn locate_many(&self, uids: &[u32], out: &mut LocatedRun) {
        out.names.clear();
        out.files.clear();
        let inner = self.inner.lock();
        let mut list = inner.list.cursor();
        for &uid in uids {
            let found = list.find(uid).and_then(|(i, m)| {
                let f = inner.files.get(i)?;
                let start = out.names.len();
                out.names.push_str(&f.name);
                Some(LocatedFile {
                    name: start..out.names.len(),
                    in_new: f.in_new,
                    phys_size: m.phys_size,
                })
            });
            out.files.push(found);
        }
    }

    /// Path and sizes of one message from memory (no lock).
    pub(crate) fn locate(&self, uid: u32) -> Option<(PathBuf, u64, u64)> {
        let inner = self.inner.lock();
        let i = inner.list.position(uid)?;
        let (m, f) = (inner.list.get(i)?, inner.files.get(i)?);
        Some((inner.file_path(&self.dir, f), m.phys_size, m.virt_size))
    }
}

/// `cur/` and `new/` of one mailbox, each opened (`O_PATH`) when first needed, for a run of
/// message opens by [`MailboxState::open_in`]. Held for one run only, so a mailbox renamed
/// meanwhile is found at its new path by the next run.
#[derive(Default)]
pub(crate) struct MessageDirs {
    /// `cur/` (0) and `new/` (1).
    fds: [Option<File>; 2],
    /// The name of the message being opened; reused, so an open allocates nothing.
    name: String,
}

impl MessageDirs {
    /// Opens a message of `run` (located by [`MailboxState::locate_many`] in the mailbox at
    /// `dir`); `NotFound` when it was renamed or expunged since.
    pub(crate) fn open_located(
        &mut self,
        dir: &Path,
        run: &LocatedRun,
        file: &LocatedFile,
    ) -> io::Result<File> {
        self.name.clear();
        self.name
            .push_str(run.names.get(file.name.clone()).unwrap_or_default());
        self.open(dir, file.in_new)
    }

    fn open(&mut self, dir: &Path, in_new: bool) -> io::Result<File> {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::Mode;
        let slot = self
            .fds
            .get_mut(usize::from(in_new))
            .ok_or_else(|| io::Error::other("no directory slot"))?;
        let d = match slot {
            Some(d) => d,
            None => slot.insert(
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(dir.join(if in_new { "new" } else { "cur" }))?,
            ),
        };
        let fd = openat(
            &*d,
            self.name.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        Ok(File::from(fd))
    }
}

/// Where the files of a run of UIDs were when [`MailboxState::locate_many`] looked: their
/// names in one buffer (reused from run to run) and, per UID, its place in it and its sizes.
#[derive(Default)]
pub(crate) struct LocatedRun {
    names: String,
    files: Vec<Option<LocatedFile>>,
}

/// One message of a [`LocatedRun`].
#[derive(Clone)]
pub(crate) struct LocatedFile {
    name: std::ops::Range<usize>,
    in_new: bool,
    /// Size of the file.
    pub(crate) phys_size: u64,
}

impl LocatedRun {
    /// The messages located, in the order asked for.
    pub(crate) fn files(&self) -> &[Option<LocatedFile>] {
        &self.files
    }
}
