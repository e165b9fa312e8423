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

use crate::limits::{READ_PIECE_POOL_BUFFERS, READ_PIECE_POOL_MAX_BYTES};
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

    fn file(&self) -> Option<Arc<File>> {
        Some(self.file.clone())
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

/// The messages of one `read_messages` call, read one after the other into one buffer and handed
/// out as slices of it ([`PieceReader::finish`]). The buffer comes from a small pool and goes
/// back to it when the last slice is dropped (see [`READ_PIECE_POOL_BUFFERS`]); bytes are read
/// into its spare room, never zeroed first. A piece of 100-odd small messages thus costs no
/// allocation, memset or page fault per message, where a fresh zeroed `Vec` per message cost
/// about a tenth of a first `FETCH 1:* ENVELOPE`'s CPU (malloc, memset, page faults).
pub(crate) struct PieceReader {
    buf: Vec<u8>,
    /// Each message's range of `buf`, `None` when it is gone.
    spans: Vec<Option<(usize, usize)>>,
}

impl PieceReader {
    /// A reader for `messages` messages, with a buffer from the pool when one is free.
    pub(crate) fn new(messages: usize) -> Self {
        let buf = PIECE_POOL
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        PieceReader {
            buf,
            spans: Vec::with_capacity(messages),
        }
    }

    /// Makes room for `bytes` more, so a piece whose sizes are known is one allocation at most.
    pub(crate) fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    /// Appends `part` of an open message file of recorded size `phys_size` (blocking).
    pub(crate) fn push(&mut self, file: &File, phys_size: u64, part: ReadPart) -> io::Result<()> {
        let start = self.buf.len();
        let read = match part {
            ReadPart::Header => append_header(file, phys_size, &mut self.buf, start),
            ReadPart::Whole { cap } => append_capped(file, phys_size, cap, &mut self.buf, start),
        };
        if let Err(e) = read {
            self.buf.truncate(start);
            return Err(e);
        }
        self.spans.push(Some((start, self.buf.len())));
        Ok(())
    }

    /// Records a message that is gone.
    pub(crate) fn push_missing(&mut self) {
        self.spans.push(None);
    }

    /// Each message's bytes, in the order pushed (`None`: gone), all slices of one buffer.
    pub(crate) fn finish(mut self) -> Vec<Option<bytes::Bytes>> {
        let spans = std::mem::take(&mut self.spans);
        let all = bytes::Bytes::from_owner(Pooled(std::mem::take(&mut self.buf)));
        spans
            .into_iter()
            .map(|s| s.map(|(a, b)| all.slice(a..b)))
            .collect()
    }
}

impl Drop for PieceReader {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.buf));
    }
}

/// Free piece buffers (see [`PieceReader`]).
static PIECE_POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// Puts a piece buffer back in the pool, emptied, unless it is too large or the pool is full.
fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > READ_PIECE_POOL_MAX_BYTES {
        return;
    }
    buf.clear();
    if let Ok(mut pool) = PIECE_POOL.lock()
        && pool.len() < READ_PIECE_POOL_BUFFERS
    {
        pool.push(buf);
    }
}

/// A piece buffer owned by the [`bytes::Bytes`] slices of its messages; back to the pool when the
/// last one is dropped.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// Appends the header of a message (starting at `start`, `buf`'s current length) through its
/// blank line, at most [`crate::limits::MAX_HEADER_BYTES`]. The first read asks for at most
/// 4 KiB and never more than the file's size, so a typical message costs exactly one `pread`.
fn append_header(file: &File, phys_size: u64, buf: &mut Vec<u8>, start: usize) -> io::Result<()> {
    let mut want = usize::try_from(phys_size).map_or(4096, |n| n.clamp(1, 4096));
    loop {
        let from = buf.len() - start;
        let n = pread_append(file, from as u64, want, buf)?;
        let got = buf.get(start..).unwrap_or_default();
        if let Some(end) = header_end(got, from.saturating_sub(3)) {
            buf.truncate(start + end);
            return Ok(());
        }
        if got.len() >= crate::limits::MAX_HEADER_BYTES {
            buf.truncate(start + crate::limits::MAX_HEADER_BYTES);
            return Ok(());
        }
        if n < want {
            return Ok(());
        }
        want = 16 * 1024;
    }
}

/// Appends a message (starting at `start`, `buf`'s current length) from its start, at most
/// `cap` bytes. A file of its recorded size costs one `pread`: it asks for one byte more than
/// recorded, and a short read of a regular file is its end.
fn append_capped(
    file: &File,
    phys_size: u64,
    cap: usize,
    buf: &mut Vec<u8>,
    start: usize,
) -> io::Result<()> {
    let mut want = usize::try_from(phys_size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .min(cap);
    loop {
        let have = buf.len() - start;
        let ask = want - have;
        let n = pread_append(file, have as u64, ask, buf)?;
        if n < ask || want >= cap {
            return Ok(());
        }
        // The file is larger than recorded: read on, up to the cap.
        want = want.saturating_mul(2).min(cap);
    }
}

/// One `pread` of up to `len` bytes at `pos` (retried only when interrupted) into the spare room
/// of `buf`, which grows by the count read; nothing is zeroed first.
fn pread_append(file: &File, pos: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let off = i64::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    buf.reserve(len);
    let spare = buf.spare_capacity_mut();
    let len = len.min(spare.len());
    loop {
        // SAFETY: `spare` is `buf`'s unused capacity, valid for writes of at least `len` bytes
        // and not otherwise borrowed during the call; `pread` writes at most `len` bytes.
        let r = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), len, off) };
        if r >= 0 {
            let n = usize::try_from(r).unwrap_or(0).min(len);
            // SAFETY: the kernel initialised the first `n` bytes of the spare capacity, and
            // `n` is within it.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
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

    /// `part` of one message, read as the only message of a piece.
    fn read_part(f: &File, recorded: u64, part: ReadPart) -> io::Result<Vec<u8>> {
        let mut r = PieceReader::new(1);
        r.push(f, recorded, part)?;
        Ok(r.finish().remove(0).unwrap().to_vec())
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

    #[test]
    fn a_piece_hands_out_each_message_whole_and_in_order_from_one_buffer() {
        let a = b"Subject: a\r\n\r\nfirst\r\n".to_vec();
        // Larger than one first read of a header, with the blank line past it.
        let mut b = b"Subject: b\r\nX: ".to_vec();
        b.extend(std::iter::repeat_n(b'y', 6000));
        b.extend_from_slice(b"\r\n\r\nsecond\r\n");
        let (fa, fb) = (file(&a), file(&b));
        for round in 0..3 {
            // Recorded sizes too small and too large: the files' real ends count.
            let mut r = PieceReader::new(4);
            r.push(&fa, 3, ReadPart::Whole { cap: 1 << 20 }).unwrap();
            r.push_missing();
            r.push(&fb, 1 << 16, ReadPart::Whole { cap: 1 << 20 })
                .unwrap();
            r.push(&fb, b.len() as u64, ReadPart::Header).unwrap();
            let got = r.finish();
            assert_eq!(got.len(), 4, "round {round}");
            assert_eq!(got[0].as_deref(), Some(&a[..]), "round {round}");
            assert!(got[1].is_none(), "round {round}");
            assert_eq!(got[2].as_deref(), Some(&b[..]), "round {round}");
            assert_eq!(
                got[3].as_deref(),
                Some(&b[..b.len() - "second\r\n".len()]),
                "round {round}"
            );
            // Dropped here: the next round may reuse the buffer; its old bytes must not show.
        }
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
