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
    /// Output converted from the head, not handed out yet.
    first: Option<Vec<u8>>,
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
            if !finished {
                let out = p.spare.pop().unwrap_or_default();
                p.launch(out);
            }
        } else {
            p.idle = Some((conv, read));
            p.launch(a);
        }
        p
    }

    /// Starts the next step with output buffer `out`, if there is anything left to read.
    fn launch(&mut self, mut out: Vec<u8>) {
        out.clear();
        let want = usize::try_from(self.end.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(self.chunk);
        let Some((conv, read)) = self.idle.take().filter(|_| want > 0) else {
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
            // Read ahead while the caller writes this chunk.
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
    let mut n = 0;
    while let Some(buf) = read.get_mut(n..want).filter(|b| !b.is_empty()) {
        match file.read_at(buf, pos + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
