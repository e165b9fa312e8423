//! The COMPRESS=DEFLATE layer (RFC 4978) of a connection: raw DEFLATE (RFC 1951, no zlib header)
//! both ways, between the session's plain-text buffers and the byte stream (inside TLS when TLS
//! is on, as RFC 4978 section 3 orders: compress, then encrypt).
//!
//! Memory is what this layer is about. A miniz compressor is about 300 KiB (its 64 KiB LZ code
//! buffer, an 85 KiB output buffer, the 32 KiB window and two 64 KiB hash tables); Dovecot keeps
//! one per compressed connection for its whole life. Here the compressor lives only while a
//! response burst is being written: every write ends with a sync flush, which ends the current
//! DEFLATE block on a byte boundary with everything sent, and [`Deflate::idle`] drops the
//! compressor before the session waits for the next command. The next burst starts a fresh
//! compressor whose blocks are a valid continuation of the same stream: DEFLATE back-references
//! are distances into the receiver's output, and a fresh compressor only refers to bytes it has
//! produced itself (which is what a `Z_FULL_FLUSH` arranges for a kept compressor). The cost is
//! that a burst cannot refer to text of the previous one; IMAP bursts are mostly self-similar.
//!
//! The inflater cannot be dropped: the client may refer back up to 32 KiB into what it sent
//! before, so its window stays (miniz: 32 KiB window plus about 10 KiB of Huffman tables).
//!
//! Input is inflated in bounded pieces into the session's read buffer, never more than the caller
//! asked for, so a decompression bomb meets the same line and literal limits as plain input: it
//! costs CPU for the bytes it expands to, never memory.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::limits::{DEFLATE_LEVEL, DEFLATE_OUTPUT_CHUNK};

/// The compressor of one burst and the buffer its output goes through.
struct Deflater {
    c: Compress,
    buf: Vec<u8>,
}

/// Compression state of one connection after `COMPRESS DEFLATE`.
pub struct Deflate {
    /// Inflates what the client sends; boxed inside flate2, kept for the connection's life.
    inflate: Decompress,
    /// Compressed bytes received and not inflated yet (at most one read's worth).
    pending: Vec<u8>,
    /// The client ended its DEFLATE stream (a final block); nothing after it is read.
    ended: bool,
    /// The compressor, only while a burst is being written.
    deflate: Option<Box<Deflater>>,
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad DEFLATE data: {e}"))
}

impl Deflate {
    /// Starts both directions; `pending` holds bytes already received after the COMPRESS command
    /// (the client's first compressed bytes).
    pub fn new(pending: Vec<u8>) -> Self {
        Deflate {
            inflate: Decompress::new(false),
            pending,
            ended: false,
            deflate: None,
        }
    }

    /// True when nothing received is waiting to be inflated, so more must be read.
    pub fn wants_input(&self) -> bool {
        self.pending.is_empty()
    }

    /// True once the client's stream has ended: no more input will come out of it.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Adds compressed bytes read from the stream.
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Inflates what is pending into `out`, at most `out.len()` bytes; returns how many were
    /// produced (0: more input is needed, or the stream ended). Bytes the output had no room for
    /// stay inside the inflater or in `pending` for the next call.
    pub fn inflate(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.ended || out.is_empty() {
            return Ok(0);
        }
        loop {
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(&self.pending, out, FlushDecompress::None)
                .map_err(corrupt)?;
            let used = usize::try_from(self.inflate.total_in() - in0).unwrap_or(usize::MAX);
            let made = usize::try_from(self.inflate.total_out() - out0).unwrap_or(usize::MAX);
            self.pending.drain(..used.min(self.pending.len()));
            if self.pending.is_empty() {
                // Give a large read's buffer back rather than keep it while idle.
                self.pending = Vec::new();
            }
            if status == Status::StreamEnd {
                // Anything after the final block is not DEFLATE data; the session sees end of
                // input once what was inflated has been read.
                self.ended = true;
                self.pending = Vec::new();
            }
            // Input taken without output (block headers) while more is pending: go on.
            if made > 0 || used == 0 || self.pending.is_empty() || self.ended {
                return Ok(made);
            }
        }
    }

    /// Compresses `data`, writes the result to `w` in pieces of at most [`DEFLATE_OUTPUT_CHUNK`]
    /// and ends with a sync flush, so the client can inflate everything sent so far. Does not
    /// flush `w` itself.
    pub async fn write<W: AsyncWrite + Unpin>(&mut self, w: &mut W, data: &[u8]) -> io::Result<()> {
        let z = self.deflate.get_or_insert_with(|| {
            Box::new(Deflater {
                c: Compress::new(Compression::new(DEFLATE_LEVEL), false),
                buf: Vec::with_capacity(DEFLATE_OUTPUT_CHUNK),
            })
        });
        let mut rest = data;
        loop {
            z.buf.clear();
            let in0 = z.c.total_in();
            z.c.compress_vec(rest, &mut z.buf, FlushCompress::Sync)
                .map_err(|e| io::Error::other(format!("deflate failed: {e}")))?;
            let used = usize::try_from(z.c.total_in() - in0).unwrap_or(usize::MAX);
            rest = rest.get(used..).unwrap_or_default();
            let full = z.buf.len() == z.buf.capacity();
            if !z.buf.is_empty() {
                w.write_all(&z.buf).await?;
            }
            // The flush is complete when all input is taken and the output had room to spare
            // (zlib's rule for Z_SYNC_FLUSH: call again while the output buffer comes back full).
            if rest.is_empty() && !full {
                return Ok(());
            }
        }
    }

    /// Drops the compressor between bursts (see the module comment); everything it produced has
    /// been flushed by [`Deflate::write`].
    pub fn idle(&mut self) {
        self.deflate = None;
    }

    /// True while a compressor is allocated (for tests of the idle cost).
    pub fn has_compressor(&self) -> bool {
        self.deflate.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inflates `z` with a plain raw inflater, as a client would.
    fn client_inflate(z: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(z.len() * 50 + 1024);
        d.decompress_vec(z, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(d.total_in() as usize, z.len(), "client left input unread");
        out
    }

    fn client_deflate(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert_eq!(c.total_in() as usize, data.len());
        out
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Pseudo-random text, partly repetitive, so blocks are neither stored nor trivial.
    fn text(n: usize, seed: u32) -> Vec<u8> {
        let words: &[&[u8]] = &[
            b"IMAP ",
            b"FETCH ",
            b"* 12 ",
            b"(FLAGS ",
            b"\\Seen) ",
            b"\r\n",
        ];
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(3) {
                v.push(b'a' + (x % 26) as u8);
            } else {
                v.extend_from_slice(words[(x as usize >> 3) % words.len()]);
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn bursts_with_a_fresh_compressor_each_time_inflate_as_one_stream() {
        let mut z = Deflate::new(Vec::new());
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, n) in [10usize, 70_000, 1, 300_000, 5].into_iter().enumerate() {
            let data = text(n, i as u32 + 1);
            block_on(z.write(&mut wire, &data)).unwrap();
            assert!(z.has_compressor());
            z.idle();
            assert!(!z.has_compressor());
            want.extend_from_slice(&data);
            // After every burst the client can read everything sent so far.
            assert_eq!(client_inflate(&wire), want);
        }
    }

    #[test]
    fn input_is_inflated_in_pieces_no_larger_than_asked_whatever_the_split() {
        let data = text(100_000, 7);
        let wire = client_deflate(&data);
        for split in [1usize, 3, 4096, wire.len()] {
            for room in [1usize, 7, 4096] {
                let mut z = Deflate::new(Vec::new());
                let mut got = Vec::new();
                let mut fed = 0;
                let mut buf = vec![0u8; room];
                while got.len() < data.len() {
                    let n = z.inflate(&mut buf).unwrap();
                    assert!(n <= room);
                    got.extend_from_slice(&buf[..n]);
                    if n == 0 {
                        assert!(z.wants_input(), "no output yet input pending");
                        let end = (fed + split).min(wire.len());
                        assert!(fed < end, "ran out of input at {}", got.len());
                        z.push_input(&wire[fed..end]);
                        fed = end;
                    }
                }
                assert_eq!(got, data, "split {split} room {room}");
            }
        }
    }

    #[test]
    fn a_bomb_comes_out_one_bounded_piece_at_a_time() {
        // 16 MiB of one byte compresses more than a hundredfold (miniz's fast level); the
        // inflater never yields more per call than the room given.
        let mut c = Compress::new(Compression::fast(), false);
        let mut wire = Vec::new();
        let zeros = vec![b'x'; 1 << 20];
        for _ in 0..16 {
            wire.reserve(64 * 1024);
            c.compress_vec(&zeros, &mut wire, FlushCompress::None)
                .unwrap();
        }
        c.compress_vec(&[], &mut wire, FlushCompress::Sync).unwrap();
        assert!(wire.len() * 100 < 16 << 20, "{}", wire.len());
        let mut z = Deflate::new(wire);
        let mut buf = vec![0u8; 4096];
        let mut total = 0usize;
        for _ in 0..100 {
            let n = z.inflate(&mut buf).unwrap();
            assert!(n > 0 && n <= 4096);
            total += n;
        }
        assert_eq!(total, 100 * 4096);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut z = Deflate::new(vec![0xff; 64]);
        let mut buf = [0u8; 64];
        let err = z.inflate(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_final_block_ends_the_input() {
        let mut c = Compress::new(Compression::default(), false);
        let mut wire = Vec::with_capacity(1024);
        c.compress_vec(b"a NOOP\r\n", &mut wire, FlushCompress::Finish)
            .unwrap();
        wire.extend_from_slice(b"junk after the end");
        let mut z = Deflate::new(wire);
        let mut buf = [0u8; 64];
        let n = z.inflate(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"a NOOP\r\n");
        assert!(z.ended());
        assert_eq!(z.inflate(&mut buf).unwrap(), 0);
    }
}
