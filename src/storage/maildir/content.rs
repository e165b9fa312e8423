//! Message content of the Maildir backend: the opened file behind a [`MessageContent`].
//!
//! The page-cache fast paths stay here, inside the backend: a file is opened with
//! `openat2(RESOLVE_CACHED)` ([`open_cached`]) and read with `preadv2(RWF_NOWAIT)`
//! ([`read_cached`]) on the runtime thread when neither needs the disk; both fail with `EAGAIN`
//! instead of waiting, and the caller then takes a blocking worker (`read_at` on a
//! `spawn_blocking` thread). The protocol layers see none of it: they ask
//! [`MessageContent::read_now`] first and [`MessageContent::read_at`] when that declines.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::storage::{MessageContent, ReadPart, Result, StorageError, header_end};

/// One opened message file.
pub(crate) struct MaildirContent {
    /// Shared with the blocking thread of a read in flight.
    file: Arc<File>,
    /// The recorded size (message files never change once delivered).
    len: u64,
}

impl MaildirContent {
    pub(crate) fn new(file: File, len: u64) -> Self {
        MaildirContent {
            file: Arc::new(file),
            len,
        }
    }
}

#[async_trait]
impl MessageContent for MaildirContent {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
        // Any failure (mostly "not cached") sends the caller to `read_at`, which reports a real
        // error properly.
        read_cached(&self.file, offset, buf).ok().map(Ok)
    }

    async fn read_at(&self, offset: u64, len: usize, mut buf: Vec<u8>) -> Result<Vec<u8>> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            // Only grow (zeroing the new part): a buffer reused from chunk to chunk is not
            // cleared and zeroed again each time; its bytes are all overwritten or cut off.
            if buf.len() < len {
                buf.resize(len, 0);
            }
            let n = read_at(&file, offset, buf.get_mut(..len).unwrap_or_default())
                .map_err(|e| StorageError::io("read message", e))?;
            buf.truncate(n);
            Ok(buf)
        })
        .await
        .map_err(|e| StorageError::Temporary(format!("message read task failed: {e}")))?
    }
}

/// Reads what `part` asks of an open message file of recorded size `phys_size` (blocking).
pub(crate) fn read_part(file: &File, phys_size: u64, part: ReadPart) -> io::Result<Vec<u8>> {
    match part {
        ReadPart::Header => read_header(file, phys_size),
        ReadPart::Whole { cap } => read_capped(file, phys_size, cap),
    }
}

/// The header through its blank line, at most [`crate::limits::MAX_HEADER_BYTES`]. The first
/// read asks for at most 4 KiB and never more than the file's size, so a typical message costs
/// exactly one `pread`.
fn read_header(file: &File, phys_size: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut want = usize::try_from(phys_size).map_or(4096, |n| n.clamp(1, 4096));
    loop {
        let start = out.len();
        out.resize(start + want, 0);
        let n = read_once(file, start as u64, out.get_mut(start..).unwrap_or_default())?;
        out.truncate(start + n);
        if let Some(end) = header_end(&out, start.saturating_sub(3)) {
            out.truncate(end);
            return Ok(out);
        }
        if out.len() >= crate::limits::MAX_HEADER_BYTES {
            out.truncate(crate::limits::MAX_HEADER_BYTES);
            return Ok(out);
        }
        if n < want {
            return Ok(out);
        }
        want = 16 * 1024;
    }
}

/// The file from its start, at most `cap` bytes. A file of its recorded size costs one `pread`:
/// it asks for one byte more than recorded, and a short read of a regular file is its end.
fn read_capped(file: &File, phys_size: u64, cap: usize) -> io::Result<Vec<u8>> {
    let mut want = usize::try_from(phys_size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .min(cap);
    let mut buf = Vec::new();
    loop {
        let start = buf.len();
        buf.resize(want, 0);
        let n = read_once(file, start as u64, buf.get_mut(start..).unwrap_or_default())?;
        buf.truncate(start + n);
        if buf.len() < want || want >= cap {
            return Ok(buf);
        }
        // The file is larger than recorded: read on, up to the cap.
        want = want.saturating_mul(2).min(cap);
    }
}

/// One `pread` (retried only when interrupted): a regular file answers short only at its end,
/// so a caller that asks for one byte more than it expects learns the end without a second call.
fn read_once(file: &File, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read_at(buf, pos) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// Fills `buf` from offset `pos` of `file` (blocking); returns the bytes read, fewer only at the
/// end of the file.
pub(crate) fn read_at(file: &File, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|b| !b.is_empty()) {
        match file.read_at(rest, pos + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Opens `path` read-only if that needs no disk access (every path component is in the dentry
/// cache); `WouldBlock` otherwise, or on systems without `openat2(RESOLVE_CACHED)`.
pub(crate) fn open_cached(path: &std::path::Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        /// `struct open_how` of linux/openat2.h.
        #[repr(C)]
        struct OpenHow {
            flags: u64,
            mode: u64,
            resolve: u64,
        }
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let how = OpenHow {
            flags: (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: libc::RESOLVE_CACHED,
        };
        // SAFETY: `c` is a NUL-terminated path and `how` a valid `open_how` of the size passed;
        // both outlive the call, which only reads them.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::AT_FDCWD,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = i32::try_from(fd).map_err(|_| io::Error::other("openat2 returned a bad fd"))?;
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::ErrorKind::WouldBlock.into())
    }
}

/// The smallest page size of the page cache (every larger one is a multiple of it).
#[cfg(target_os = "linux")]
const CACHE_PAGE: u64 = 4096;

/// Fills `buf` from offset `pos` of `file` if the data is in the page cache; returns the bytes
/// read (fewer only at the end of the file), or an error (`WouldBlock` when part of it would
/// have to come from the disk, or on systems without `preadv2(RWF_NOWAIT)`). A read that ends
/// inside a page is taken as the end of the file, so a whole small message costs one call.
pub(crate) fn read_cached(file: &File, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut n = 0;
        while let Some(rest) = buf.get_mut(n..).filter(|b| !b.is_empty()) {
            let iov = libc::iovec {
                iov_base: rest.as_mut_ptr().cast(),
                iov_len: rest.len(),
            };
            let off = i64::try_from(pos + n as u64)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: `iov` describes `rest`, which is valid for writes of its length and not
            // otherwise borrowed during the call.
            let r = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, off, libc::RWF_NOWAIT) };
            match r {
                0 => break,
                r if r > 0 => {
                    n += r as usize;
                    if n < buf.len() && !(pos + n as u64).is_multiple_of(CACHE_PAGE) {
                        // A read the page cache cut short stops at the first page it does not
                        // hold, so at a page boundary; one that stops inside a page stopped at
                        // the end of the file (message files never grow): no need to ask again.
                        break;
                    }
                }
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(n)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, pos, buf);
        Err(io::ErrorKind::WouldBlock.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        f
    }

    #[test]
    fn parts_are_cut_at_the_header_end_or_the_cap_whatever_size_was_recorded() {
        let data = b"Subject: x\n\nbody line\n";
        let f = file(data);
        for recorded in [0u64, 5, data.len() as u64, 1000] {
            let h = read_part(&f, recorded, ReadPart::Header).unwrap();
            assert_eq!(h, b"Subject: x\n\n", "recorded {recorded}");
            let w = read_part(&f, recorded, ReadPart::Whole { cap: 1 << 20 }).unwrap();
            assert_eq!(w, data, "recorded {recorded}");
            let w = read_part(&f, recorded, ReadPart::Whole { cap: 4 }).unwrap();
            assert_eq!(w, b"Subj", "recorded {recorded}");
        }
        let f = file(b"no blank line");
        assert_eq!(
            read_part(&f, 13, ReadPart::Header).unwrap(),
            b"no blank line"
        );
    }

    #[tokio::test]
    async fn content_reads_ranges_now_or_on_a_worker() {
        let c = MaildirContent::new(file(b"0123456789"), 10);
        assert_eq!(c.len(), 10);
        let got = c.read_at(4, 4, b"longer junk".to_vec()).await.unwrap();
        assert_eq!(got, b"4567");
        let got = c.read_at(8, 4, got).await.unwrap();
        assert_eq!(got, b"89");
        let mut buf = [0u8; 16];
        // Where RWF_NOWAIT is unsupported the caller takes the blocking path instead.
        if let Some(n) = c.read_now(0, &mut buf) {
            assert_eq!(&buf[..n.unwrap()], b"0123456789");
        }
    }
}
