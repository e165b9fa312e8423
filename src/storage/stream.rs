//! Streaming a byte range of a stored message to a client: FETCH body sections and POP3
//! RETR/TOP. Backend-neutral: the bytes come from a [`MessageContent`].
//!
//! Each step reads one chunk and converts it (LF→CRLF, dot stuffing). While the content can
//! answer without waiting ([`MessageContent::read_now`]: memory, or for Maildir the page cache
//! through `preadv2(RWF_NOWAIT)`), chunks are read and converted right here on the runtime
//! thread, so a cached message costs no thread hop at all. Once a chunk would wait, the step
//! ([`MessageContent::read_at`] and the conversion) runs in a spawned task, one chunk ahead:
//! while the caller writes chunk `k`, chunk `k + 1` is already being read and converted, one
//! backend read per chunk, overlapped with the client's reading.
//!
//! A caller that can send a file range to its client without reading it (plain TCP, no
//! COMPRESS: `sendfile(2)`) asks for [`Piece::File`] too ([`Pump::allow_file`]): a chunk read
//! from the page cache that the converter would pass unchanged ([`Convert::pass_through`]) is
//! then handed out as a range of the backend's file ([`MessageContent::file`]) instead of being
//! copied into an output buffer, and goes from the page cache to the socket.
//!
//! Memory stays at one read buffer and two output buffers per stream however large the message
//! is: a new step starts only when the previous one has been handed to the caller, and the caller
//! writes (or blocks on a client that reads nothing) before asking for the next one. The buffers
//! come from and go back to a [`StreamBuffers`], so a FETCH of many small messages or a POP3
//! session retrieving its whole maildrop allocates them once.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{Head, MessageContent, Result, StorageError};
use crate::limits::SENDFILE_MIN_BYTES;

/// Turns stored bytes into the bytes sent to a client, chunk by chunk.
pub trait Convert: Send + 'static {
    /// Converts one chunk, appending to `out`; returns true once no more input is wanted.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool;

    /// True when `chunk` would come out of [`Convert::feed`] exactly as it is, in which case
    /// the state advances as if it had been fed and the caller sends the stored bytes itself;
    /// false (the default), with nothing changed, when it must be converted.
    fn pass_through(&mut self, chunk: &[u8]) -> bool {
        let _ = chunk;
        false
    }
}

/// What [`Pump::next_piece`] hands out.
pub enum Piece {
    /// Converted bytes; give the buffer back with [`Pump::recycle`].
    Bytes(Vec<u8>),
    /// Stored bytes that need no conversion, to be sent straight from the file (`sendfile`):
    /// `len` bytes at `offset` of `file`. Only with [`Pump::allow_file`].
    File {
        /// The content's file ([`MessageContent::file`]).
        file: Arc<std::fs::File>,
        /// Where the bytes start in the file.
        offset: u64,
        /// How many; the file held them all when they were checked.
        len: usize,
    },
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
    content: Arc<dyn MessageContent>,
    /// File offset of the next read.
    pos: u64,
    /// File offset where the range ends (`u64::MAX`: at the end of the file).
    end: u64,
    chunk: usize,
    /// Converter and read buffer while no step is in flight.
    idle: Option<(C, Vec<u8>)>,
    /// Output buffers not in use (at most two).
    spare: Vec<Vec<u8>>,
    inflight: Option<JoinHandle<Result<Step<C>>>>,
    /// Output converted on this thread (the head, or a chunk from the page cache), not handed out
    /// yet.
    first: Option<Vec<u8>>,
    /// A range of the file to hand out as it is ([`Piece::File`]), not handed out yet.
    first_file: Option<(u64, usize)>,
    /// The content's file, when the caller can send file ranges ([`Pump::allow_file`]).
    file: Option<Arc<std::fs::File>>,
    /// There is more to read and no step has been started for it.
    more: bool,
    /// The file ended before `end`.
    short: bool,
}

impl<C: Convert> Pump<C> {
    /// Starts streaming `[start, end)` of `content` through `conv`, reading at most `chunk` bytes
    /// per step (less when the range is shorter, so a small message is one step). `end` may be
    /// `u64::MAX` to read to the end of the message. `head` holds bytes already read from offset 0
    /// ([`Head`]); they are converted at once, here, and reading goes on after them. Must be
    /// called inside the runtime.
    pub fn start(
        content: Arc<dyn MessageContent>,
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
            content,
            pos: start,
            end,
            chunk: chunk.max(1),
            idle: None,
            spare: vec![b],
            inflight: None,
            first: None,
            first_file: None,
            file: None,
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
            // The first step is taken by the first `next_piece`, right after: after
            // `allow_file`, when the caller makes that call.
            p.idle = Some((conv, read));
            p.spare.push(a);
            p.more = true;
        }
        p
    }

    /// Lets [`Pump::next_piece`] hand out [`Piece::File`] ranges: chunks read from the page
    /// cache that the converter passes through unchanged ([`Convert::pass_through`]) and are at
    /// least [`SENDFILE_MIN_BYTES`] long, when the content is a file. For a caller that can
    /// send a file range to its client without reading it (plain TCP: `sendfile`). Takes
    /// effect from the next step on (a head given to `start` is converted).
    pub fn allow_file(&mut self) {
        self.file = self.content.file();
    }

    /// Reads and converts the next chunk here, into `first` (or `first_file`, see
    /// [`Pump::allow_file`]), when the content can give it without waiting; false (and nothing
    /// changed) when it cannot.
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
        let Some(Ok(n)) = self.content.read_now(self.pos, buf) else {
            return false;
        };
        if self.file.is_some()
            && n >= SENDFILE_MIN_BYTES
            && let Some(chunk) = buf.get(..n)
            && conv.pass_through(chunk)
        {
            self.first_file = Some((self.pos, n));
            self.pos += n as u64;
            if n < want && self.end != u64::MAX {
                self.short = true;
            }
            self.more = n == want;
            if self.spare.len() < 2 {
                self.spare.push(std::mem::take(out));
            }
            return true;
        }
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
        let (content, pos) = (self.content.clone(), self.pos);
        self.inflight = Some(tokio::spawn(async move {
            step(&*content, pos, want, read, out, conv).await
        }));
    }

    /// The next converted chunk (possibly empty), or `None` once the range, the file or the
    /// converter is finished. Give the buffer back with [`Pump::recycle`]. For a stream without
    /// [`Pump::allow_file`].
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>> {
        match self.next_piece().await? {
            None => Ok(None),
            Some(Piece::Bytes(b)) => Ok(Some(b)),
            Some(Piece::File { .. }) => Err(StorageError::Temporary(
                "a file range from a stream that did not allow them".into(),
            )),
        }
    }

    /// The step's output waiting to be handed out, if any.
    fn take_ready(&mut self) -> Option<Piece> {
        if let Some(first) = self.first.take() {
            return Some(Piece::Bytes(first));
        }
        let (offset, len) = self.first_file.take()?;
        let file = self.file.clone()?;
        Some(Piece::File { file, offset, len })
    }

    /// The next piece: converted bytes (possibly empty) or, after [`Pump::allow_file`], a file
    /// range to send as it is; `None` once the range, the file or the converter is finished.
    pub async fn next_piece(&mut self) -> Result<Option<Piece>> {
        if let Some(ready) = self.take_ready() {
            return Ok(Some(ready));
        }
        if std::mem::take(&mut self.more) {
            let mut out = self.spare.pop().unwrap_or_default();
            if self.step_from_cache(&mut out) {
                return Ok(self.take_ready());
            }
            self.launch(out);
        }
        let Some(h) = self.inflight.take() else {
            return Ok(None);
        };
        let s = h
            .await
            .map_err(|e| StorageError::Temporary(format!("message read task failed: {e}")))??;
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
        Ok(Some(Piece::Bytes(s.out)))
    }

    /// Returns a buffer [`Pump::next`] gave out.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 2 {
            self.spare.push(buf);
        }
    }

    /// True when the message ended before the requested range did.
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

/// Reads up to `want` bytes at `pos` (fewer only at the end of the message) and converts them.
async fn step<C: Convert>(
    content: &dyn MessageContent,
    pos: u64,
    want: usize,
    read: Vec<u8>,
    mut out: Vec<u8>,
    mut conv: C,
) -> Result<Step<C>> {
    let read = content.read_at(pos, want, read).await?;
    let n = read.len().min(want);
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

/// Room over `max_message_size` for the trace header that LMTP and `deliver` put in front of a
/// message (`Return-Path:`, `Delivered-To:`): the protocol layers bound the message the client
/// sent, so a message at the limit must still be stored, as Maildir stores it. For backends that
/// check the stored size themselves (memory, PostgreSQL).
pub(crate) const STAMP_SLACK: u64 = 64 * 1024;

/// The most a backend that checks sizes itself stores for one message.
pub(crate) fn stored_size_limit(max_message_size: u64) -> u64 {
    max_message_size.saturating_add(STAMP_SLACK)
}

/// A streamed append's bytes gathered in memory until commit, within the user's quota room and
/// the message size limit: the body of [`super::AppendStream`] for the backends that store a
/// message in one piece (memory, PostgreSQL phase 1).
pub(crate) struct Gathered {
    /// The bytes so far.
    pub(crate) data: bytes::BytesMut,
    /// Bytes the user may still store (`None`: no byte limit).
    room: Option<u64>,
    /// [`stored_size_limit`] of the configured `max_message_size`.
    max: u64,
}

impl Gathered {
    /// Nothing gathered yet.
    pub(crate) fn new(room: Option<u64>, max_message_size: u64) -> Gathered {
        Gathered {
            data: bytes::BytesMut::new(),
            room,
            max: stored_size_limit(max_message_size),
        }
    }

    /// Adds `data`, or refuses it (over quota, too large) and keeps what it had.
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = (self.data.len() as u64).saturating_add(data.len() as u64);
        if self.room.is_some_and(|r| len > r) {
            return Err(StorageError::OverQuota);
        }
        if len > self.max {
            return Err(StorageError::Cannot("message too large"));
        }
        self.data.extend_from_slice(data);
        Ok(())
    }

    /// As Maildir: a message that cannot fit is refused before the client sends it.
    pub(crate) fn reserve(&self, size: u64) -> Result<()> {
        if self.room.is_some_and(|r| size > r) {
            return Err(StorageError::OverQuota);
        }
        Ok(())
    }

    /// Bytes gathered.
    pub(crate) fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use bytes::Bytes;

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

    /// Content that answers at once only below `now_below` (a cache holding the first bytes),
    /// and otherwise only through `read_at`.
    struct Partly {
        data: Bytes,
        now_below: u64,
    }

    #[async_trait]
    impl MessageContent for Partly {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
            if offset < self.now_below {
                self.data.read_now(offset, buf)
            } else {
                None
            }
        }
        async fn read_at(&self, offset: u64, len: usize, buf: Vec<u8>) -> Result<Vec<u8>> {
            self.data.read_at(offset, len, buf).await
        }
    }

    /// The same bytes as content that is always ready, never ready, and ready for a prefix.
    fn contents(data: &[u8]) -> Vec<Arc<dyn MessageContent>> {
        let data = Bytes::copy_from_slice(data);
        vec![
            Arc::new(data.clone()),
            Arc::new(Partly {
                data: data.clone(),
                now_below: 0,
            }),
            Arc::new(Partly {
                data,
                now_below: 100,
            }),
        ]
    }

    async fn collect(
        content: &Arc<dyn MessageContent>,
        head: Head,
        range: (u64, u64),
        chunk: usize,
        stop_after: Option<usize>,
        bufs: &mut StreamBuffers,
    ) -> (Vec<u8>, bool) {
        let conv = Copy { stop_after, fed: 0 };
        let mut p = Pump::start(content.clone(), head, range, chunk, conv, bufs);
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
    async fn ranges_heads_and_chunk_sizes_give_exactly_the_message() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut bufs = StreamBuffers::new();
        for (k, content) in contents(&data).iter().enumerate() {
            for chunk in [1, 7, 64, 999, 1000, 1001, 4096] {
                for (start, end) in [(0, 1000), (0, u64::MAX), (3, 997), (500, 501), (1000, 1000)] {
                    let (got, short) = collect(
                        content,
                        Head::default(),
                        (start, end),
                        chunk,
                        None,
                        &mut bufs,
                    )
                    .await;
                    let want = &data[start as usize..end.min(1000) as usize];
                    assert_eq!(got, want, "content {k} chunk {chunk} range {start}..{end}");
                    assert!(!short);
                }
                // A head read along with the open: partial, or the whole message.
                for head_len in [1usize, 10, 999, 1000] {
                    let head = Head {
                        bytes: data[..head_len].to_vec(),
                        complete: head_len == 1000 && chunk > 1000,
                    };
                    let (got, _) =
                        collect(content, head, (0, u64::MAX), chunk, None, &mut bufs).await;
                    assert_eq!(got, data, "content {k} chunk {chunk} head {head_len}");
                }
                // A head longer than the range is cut to it.
                let head = Head {
                    bytes: data[..100].to_vec(),
                    complete: false,
                };
                let (got, _) = collect(content, head, (0, 40), chunk, None, &mut bufs).await;
                assert_eq!(got, &data[..40]);
            }
        }
    }

    #[tokio::test]
    async fn a_message_shorter_than_its_range_and_a_converter_that_stops() {
        let mut bufs = StreamBuffers::new();
        for (k, content) in contents(&[b'a'; 300]).iter().enumerate() {
            let (got, short) =
                collect(content, Head::default(), (0, 500), 64, None, &mut bufs).await;
            assert_eq!(got.len(), 300, "content {k}");
            assert!(short, "content {k}: the message ended before the range");
            // The converter wants no more after 100 bytes: reading stops at that chunk.
            let (got, _) =
                collect(content, Head::default(), (0, 300), 64, Some(100), &mut bufs).await;
            assert_eq!(got.len(), 128, "content {k}");
        }
    }

    /// Content kept in a file, answering from memory (as the page cache would) and offering
    /// the file for `sendfile`.
    struct InFile {
        data: Bytes,
        file: Arc<std::fs::File>,
    }

    #[async_trait]
    impl MessageContent for InFile {
        fn len(&self) -> u64 {
            self.data.len() as u64
        }
        fn read_now(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize>> {
            self.data.read_now(offset, buf)
        }
        async fn read_at(&self, offset: u64, len: usize, buf: Vec<u8>) -> Result<Vec<u8>> {
            self.data.read_at(offset, len, buf).await
        }
        fn file(&self) -> Option<Arc<std::fs::File>> {
            Some(self.file.clone())
        }
    }

    /// Passes chunks without a `!` through; feeds (copies) the others.
    struct NoBang;

    impl Convert for NoBang {
        fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> bool {
            out.extend_from_slice(chunk);
            false
        }
        fn pass_through(&mut self, chunk: &[u8]) -> bool {
            !chunk.contains(&b'!')
        }
    }

    #[tokio::test]
    async fn file_ranges_are_handed_out_only_when_allowed_and_large_enough() {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        let chunk = SENDFILE_MIN_BYTES;
        // Five chunks, the third one with a `!` (converted), then a short tail.
        let mut data: Vec<u8> = (0..5 * chunk + 100)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        data[2 * chunk + 7] = b'!';
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let content: Arc<dyn MessageContent> = Arc::new(InFile {
            data: Bytes::from(data.clone()),
            file: Arc::new(f),
        });
        let mut bufs = StreamBuffers::new();
        for allow in [false, true] {
            let mut p = Pump::start(
                content.clone(),
                Head::default(),
                (0, u64::MAX),
                chunk,
                NoBang,
                &mut bufs,
            );
            if allow {
                p.allow_file();
            }
            let (mut got, mut files) = (Vec::new(), Vec::new());
            while let Some(piece) = p.next_piece().await.unwrap() {
                match piece {
                    Piece::Bytes(b) => {
                        got.extend_from_slice(&b);
                        p.recycle(b);
                    }
                    Piece::File { file, offset, len } => {
                        let mut buf = vec![0; len];
                        file.read_exact_at(&mut buf, offset).unwrap();
                        assert_eq!(offset, got.len() as u64);
                        got.extend_from_slice(&buf);
                        files.push(offset);
                    }
                }
            }
            p.finish(&mut bufs);
            assert_eq!(got, data, "allow {allow}");
            // The `!` chunk and the short tail are converted.
            let want: Vec<u64> = if allow {
                vec![0, chunk as u64, 3 * chunk as u64, 4 * chunk as u64]
            } else {
                Vec::new()
            };
            assert_eq!(files, want, "allow {allow}");
        }
    }

    #[tokio::test]
    async fn the_step_reads_by_range() {
        let content = Bytes::from_static(b"0123456789");
        let conv = Copy {
            stop_after: None,
            fed: 0,
        };
        let s = step(&content, 4, 4, Vec::new(), Vec::new(), conv)
            .await
            .unwrap();
        assert_eq!((s.n, s.want, &s.out[..]), (4, 4, &b"4567"[..]));
        let s = step(&content, 8, 4, s.read, Vec::new(), s.conv)
            .await
            .unwrap();
        assert_eq!((s.n, &s.out[..]), (2, &b"89"[..]));
    }
}
