//! Streaming a byte range of a stored message to a client: FETCH body sections and POP3
//! RETR/TOP.
//!
//! Each step reads one chunk with a positional read (`pread`) and converts it (LF→CRLF, dot
//! stuffing) on a blocking thread, so the runtime thread only writes to the socket. While the
//! caller writes chunk `k`, chunk `k + 1` is already being read and converted: one thread hop per
//! chunk, overlapped with the client's reading. `tokio::fs::File` would instead hop to a blocking
//! thread for every read call (including the one that finds the end of the file) and copy each
//! chunk once more through its own buffer.
//!
//! A file whose data is in the page cache (nearly always: messages are read soon after they are
//! written, or again) does not need a blocking thread at all: [`open_cached`] and
//! [`read_cached`] use `openat2(RESOLVE_CACHED)` and `preadv2(RWF_NOWAIT)`, which fail with
//! `EAGAIN` instead of waiting for the disk, and the caller then takes the blocking path. The
//! chunks of a stream are read that way on the runtime thread as long as they are cached, so a
//! cached message costs no thread hop at all; once a chunk is not, reading goes on through the
//! blocking pool, one chunk ahead, overlapped with the writes.
//!
//! Memory stays at one read buffer and two output buffers per stream however large the message
//! is: a new step starts only when the previous one has been handed to the caller, and the caller
//! writes (or blocks on a client that reads nothing) before asking for the next one. The buffers
//! come from and go back to a [`StreamBuffers`], so a FETCH of many small messages or a POP3
//! session retrieving its whole maildrop allocates them once.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::Head;

/// Turns stored bytes into the bytes sent to a client, chunk by chunk.
pub trait Convert: Send + 'static {
    /// Converts one chunk, appending to `out`; returns true once no more input is wanted.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool;
}

/// Buffers reused across the streams of one command or session.
#[derive(Debug, Default)]
pub struct StreamBuffers {
    read: Vec<u8>,
    out: [Vec<u8>; 2],
}

impl StreamBuffers {
    /// No memory until the first stream.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What one blocking step hands back.
struct Step<C> {
    conv: C,
    read: Vec<u8>,
    out: Vec<u8>,
    /// Bytes asked for and bytes read: fewer only at the end of the file.
    want: usize,
    n: usize,
    /// The converter wants no more input.
    done: bool,
}

/// One stream in progress (see the module documentation).
pub struct Pump<C: Convert> {
    file: Arc<File>,
    /// File offset of the next read.
    pos: u64,
    /// File offset where the range ends (`u64::MAX`: at the end of the file).
    end: u64,
    chunk: usize,
    /// Converter and read buffer while no step is in flight.
    idle: Option<(C, Vec<u8>)>,
    /// Output buffers not in use (at most two).
    spare: Vec<Vec<u8>>,
    inflight: Option<JoinHandle<io::Result<Step<C>>>>,
    /// Output converted on this thread (the head, or a chunk from the page cache), not handed out
    /// yet.
    first: Option<Vec<u8>>,
    /// There is more to read and no step has been started for it.
    more: bool,
    /// The file ended before `end`.
    short: bool,
}

impl<C: Convert> Pump<C> {
    /// Starts streaming `[start, end)` of `file` through `conv`, reading at most `chunk` bytes per
    /// step (less when the range is shorter, so a small message is one step). `end` may be
    /// `u64::MAX` to read to the end of the file. `head` holds bytes already read from offset 0
    /// ([`Head`]); they are converted at once, here, and reading goes on after them. Must be
    /// called inside the runtime.
    pub fn start(
        file: Arc<File>,
        head: Head,
        range: (u64, u64),
        chunk: usize,
        mut conv: C,
        bufs: &mut StreamBuffers,
    ) -> Self {
        let (start, end) = range;
        let [mut a, b] = std::mem::take(&mut bufs.out);
        let mut read = std::mem::take(&mut bufs.read);
        let mut p = Pump {
            file,
            pos: start,
            end,
            chunk: chunk.max(1),
            idle: None,
            spare: vec![b],
            inflight: None,
            first: None,
            more: false,
            short: false,
        };
        if start == 0 && !head.bytes.is_empty() {
            let mut head = head;
            let len = usize::try_from(end).unwrap_or(usize::MAX);
            if head.bytes.len() > len {
                head.bytes.truncate(len);
                head.complete = false;
            }
            a.clear();
            let done = conv.feed(&head.bytes, &mut a);
            p.pos = head.bytes.len() as u64;
            let finished = done || head.complete || p.pos >= end;
            if head.complete && p.pos < end && end != u64::MAX {
                p.short = true;
            }
            if read.capacity() < head.bytes.capacity() {
                read = head.bytes;
            }
            p.first = Some(a);
            p.idle = Some((conv, read));
            p.more = !finished;
        } else {
            p.idle = Some((conv, read));
            if !p.step_from_cache(&mut a) {
                p.launch(a);
            }
        }
        p
    }

    /// Reads and converts the next chunk here, into `first`, when it is in the page cache; false
    /// (and nothing changed) when it is not.
    fn step_from_cache(&mut self, out: &mut Vec<u8>) -> bool {
        let want = self.want();
        let Some((conv, read)) = self.idle.as_mut().filter(|_| want > 0) else {
            return false;
        };
        if read.len() < want {
            read.resize(want, 0);
        }
        let Some(buf) = read.get_mut(..want) else {
            return false;
        };
        let Ok(n) = read_cached(&self.file, self.pos, buf) else {
            return false;
        };
        out.clear();
        let done = conv.feed(buf.get(..n).unwrap_or_default(), out);
        self.pos += n as u64;
        if n < want && self.end != u64::MAX {
            self.short = true;
        }
        self.first = Some(std::mem::take(out));
        self.more = n == want && !done;
        true
    }

    /// Bytes the next step reads.
    fn want(&self) -> usize {
        usize::try_from(self.end.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(self.chunk)
    }

    /// Starts the next step with output buffer `out`, if there is anything left to read.
    fn launch(&mut self, mut out: Vec<u8>) {
        out.clear();
        let want = self.want();
        let Some((conv, read)) = self.idle.take_if(|_| want > 0) else {
            self.spare.push(out);
            return;
        };
        let (file, pos) = (self.file.clone(), self.pos);
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            step(&file, pos, want, read, out, conv)
        }));
    }

    /// The next converted chunk (possibly empty), or `None` once the range, the file or the
    /// converter is finished. Give the buffer back with [`Pump::recycle`].
    pub async fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        if std::mem::take(&mut self.more) {
            let mut out = self.spare.pop().unwrap_or_default();
            if self.step_from_cache(&mut out) {
                return Ok(self.first.take());
            }
            self.launch(out);
        }
        let Some(h) = self.inflight.take() else {
            return Ok(None);
        };
        let s = h
            .await
            .map_err(|e| io::Error::other(format!("message read task failed: {e}")))??;
        self.pos += s.n as u64;
        self.idle = Some((s.conv, s.read));
        if s.n < s.want && self.end != u64::MAX {
            self.short = true;
        }
        if s.n == s.want && !s.done {
            // The data was not cached: read ahead while the caller writes this chunk.
            let out = self.spare.pop().unwrap_or_default();
            self.launch(out);
        }
        Ok(Some(s.out))
    }

    /// Returns a buffer [`Pump::next`] gave out.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 2 {
            self.spare.push(buf);
        }
    }

    /// True when the file ended before the requested range did.
    pub fn ended_early(&self) -> bool {
        self.short
    }

    /// The converter, once the stream is finished (no step in flight).
    pub fn converter(&mut self) -> Option<&mut C> {
        self.idle.as_mut().map(|(c, _)| c)
    }

    /// Gives the buffers back for the next stream. Buffers of a step still in flight (a stream
    /// abandoned midway) are lost; the next stream allocates new ones.
    pub fn finish(mut self, bufs: &mut StreamBuffers) {
        if let Some((_, read)) = self.idle.take() {
            bufs.read = read;
        }
        for (slot, buf) in bufs.out.iter_mut().zip(self.spare.drain(..)) {
            *slot = buf;
        }
    }
}

/// Reads up to `want` bytes at `pos` (fewer only at the end of the file) and converts them.
fn step<C: Convert>(
    file: &File,
    pos: u64,
    want: usize,
    mut read: Vec<u8>,
    mut out: Vec<u8>,
    mut conv: C,
) -> io::Result<Step<C>> {
    if read.len() < want {
        read.resize(want, 0);
    }
    let n = read_at(file, pos, read.get_mut(..want).unwrap_or_default())?;
    let done = conv.feed(read.get(..n).unwrap_or_default(), &mut out);
    Ok(Step {
        conv,
        read,
        out,
        want,
        n,
        done,
    })
}

/// Fills `buf` from offset `pos` of `file` (blocking); returns the bytes read, fewer only at the
/// end of the file.
pub fn read_at(file: &File, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
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
pub fn open_cached(path: &std::path::Path) -> io::Result<File> {
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
pub fn read_cached(file: &File, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
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

    /// Copies everything, and records the sizes of the chunks it was fed.
    struct Copy {
        stop_after: Option<usize>,
        fed: usize,
    }

    impl Convert for Copy {
        fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
            out.extend_from_slice(chunk);
            self.fed += chunk.len();
            self.stop_after.is_some_and(|n| self.fed >= n)
        }
    }

    async fn collect(
        file: &Arc<File>,
        head: Head,
        range: (u64, u64),
        chunk: usize,
        stop_after: Option<usize>,
        bufs: &mut StreamBuffers,
    ) -> (Vec<u8>, bool) {
        let conv = Copy { stop_after, fed: 0 };
        let mut p = Pump::start(file.clone(), head, range, chunk, conv, bufs);
        let mut all = Vec::new();
        while let Some(out) = p.next().await.unwrap() {
            all.extend_from_slice(&out);
            p.recycle(out);
        }
        let short = p.ended_early();
        assert!(p.converter().is_some(), "the converter comes back");
        p.finish(bufs);
        (all, short)
    }

    #[tokio::test]
    async fn ranges_heads_and_chunk_sizes_give_exactly_the_file() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let file = Arc::new(f);
        let mut bufs = StreamBuffers::new();
        for chunk in [1, 7, 64, 999, 1000, 1001, 4096] {
            for (start, end) in [(0, 1000), (0, u64::MAX), (3, 997), (500, 501), (1000, 1000)] {
                let (got, short) =
                    collect(&file, Head::default(), (start, end), chunk, None, &mut bufs).await;
                let want = &data[start as usize..end.min(1000) as usize];
                assert_eq!(got, want, "chunk {chunk} range {start}..{end}");
                assert!(!short);
            }
            // A head read along with the open: partial, or the whole file.
            for head_len in [1usize, 10, 999, 1000] {
                let head = Head {
                    bytes: data[..head_len].to_vec(),
                    complete: head_len == 1000 && chunk > 1000,
                };
                let (got, _) = collect(&file, head, (0, u64::MAX), chunk, None, &mut bufs).await;
                assert_eq!(got, data, "chunk {chunk} head {head_len}");
            }
            // A head longer than the range is cut to it.
            let head = Head {
                bytes: data[..100].to_vec(),
                complete: false,
            };
            let (got, _) = collect(&file, head, (0, 40), chunk, None, &mut bufs).await;
            assert_eq!(got, &data[..40]);
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_and_a_converter_that_stops() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[b'a'; 300]).unwrap();
        let file = Arc::new(f);
        let mut bufs = StreamBuffers::new();
        let (got, short) = collect(&file, Head::default(), (0, 500), 64, None, &mut bufs).await;
        assert_eq!(got.len(), 300);
        assert!(short, "the file ended before the range");
        // The converter wants no more after 100 bytes: reading stops at that chunk.
        let (got, _) = collect(&file, Head::default(), (0, 300), 64, Some(100), &mut bufs).await;
        assert_eq!(got.len(), 128);
    }

    #[test]
    fn the_blocking_step_reads_positionally() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let conv = Copy {
            stop_after: None,
            fed: 0,
        };
        let s = step(&f, 4, 4, Vec::new(), Vec::new(), conv).unwrap();
        assert_eq!((s.n, s.want, &s.out[..]), (4, 4, &b"4567"[..]));
        let s = step(&f, 8, 4, s.read, Vec::new(), s.conv).unwrap();
        assert_eq!((s.n, &s.out[..]), (2, &b"89"[..]));
        let mut buf = [0u8; 16];
        let n = read_cached(&f, 0, &mut buf);
        // Where RWF_NOWAIT is unsupported the caller takes the blocking path instead.
        if let Ok(n) = n {
            assert_eq!(&buf[..n], b"0123456789");
        }
    }
}
