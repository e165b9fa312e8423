//! Reading a message: DATA (dot-stuffed, ended by `.` alone on a line) and BDAT chunks (exact
//! octet counts, RFC 3030).
//!
//! [`Unstuffer`] is a byte-fed state machine, independent of sockets, so every split of the input
//! across reads behaves the same and it can be tested and fuzzed alone. It does not look at line
//! lengths: a line may be as long as the message size limit allows. CRLF and bare LF both end a
//! line (MTAs that pass through bare LF are common); the line ends are stored exactly as they came.
//!
//! The message streams into a [`Spool`] as it arrives (memory: the connection's read buffer and
//! the spool's small in-memory part), and is read whole before anything is delivered, so a slow
//! or stalled client never holds a mailbox lock. A message over the size limit is still read to
//! its end (so the stream stays in step for the next command) but not kept.

use std::io;
use std::time::Duration;

use crate::limits::{INCOMING_MESSAGE_CHUNK, LMTP_IDLE_SECS};
use crate::server::conn::Conn;
use crate::spool::Spool;

/// Bytes the connection may buffer while a message streams through: one chunk, the share of
/// the in-flight budget a transfer holds.
const READ_BUFFER: usize = INCOMING_MESSAGE_CHUNK;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    InLine,
    /// A `.` was the first byte of the line.
    Dot,
    /// `.` then CR at the start of a line.
    DotCr,
    /// The terminating `.` line was seen.
    Done,
}

/// Dot-unstuffs a DATA stream and finds its end, keeping at most `limit` bytes.
///
/// Decoded bytes gather in an output buffer that the caller may drain after each
/// [`Unstuffer::feed`] ([`Unstuffer::output`], [`Unstuffer::clear_output`]), so a message streams
/// through with memory bounded by the input fed at once; [`Unstuffer::finish`] returns what was
/// not drained.
#[derive(Debug)]
pub struct Unstuffer {
    state: State,
    out: Vec<u8>,
    limit: usize,
    total: usize,
    too_big: bool,
}

impl Unstuffer {
    /// A decoder that keeps at most `limit` message bytes.
    pub fn new(limit: usize) -> Self {
        Unstuffer {
            state: State::LineStart,
            out: Vec::new(),
            limit,
            total: 0,
            too_big: false,
        }
    }

    /// Decoded bytes not drained yet (empty once the message is known to be too big).
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Drains the decoded bytes.
    pub fn clear_output(&mut self) {
        self.out.clear();
    }

    /// True once the message passed the limit.
    pub fn too_big(&self) -> bool {
        self.too_big
    }

    /// Feeds input; returns how many bytes were used. Stops right after the terminating line,
    /// leaving the rest (pipelined commands) unconsumed.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::LineStart => {
                    if input.get(i) == Some(&b'.') {
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::InLine;
                    }
                }
                State::InLine => {
                    let rest = input.get(i..).unwrap_or_default();
                    match memchr::memchr(b'\n', rest) {
                        Some(pos) => {
                            self.push(rest.get(..=pos).unwrap_or_default());
                            self.state = State::LineStart;
                            i += pos + 1;
                        }
                        None => {
                            self.push(rest);
                            i = input.len();
                        }
                    }
                }
                State::Dot => match input.get(i) {
                    Some(b'\n') => {
                        self.state = State::Done;
                        i += 1;
                    }
                    Some(b'\r') => {
                        self.state = State::DotCr;
                        i += 1;
                    }
                    // A stuffed dot: drop it, the rest of the line is content.
                    _ => self.state = State::InLine,
                },
                State::DotCr => {
                    if input.get(i) == Some(&b'\n') {
                        self.state = State::Done;
                        i += 1;
                    } else {
                        // ".\r" followed by more: the dot was stuffing, the CR is content.
                        self.push(b"\r");
                        self.state = State::InLine;
                    }
                }
            }
        }
        i
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.too_big {
            return;
        }
        if self.total.saturating_add(bytes.len()) > self.limit {
            self.too_big = true;
            self.out = Vec::new();
            return;
        }
        self.total += bytes.len();
        self.out.extend_from_slice(bytes);
    }

    /// True once the terminating `.` line was seen.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The message, or None when it was larger than the limit.
    pub fn finish(self) -> Option<Vec<u8>> {
        (!self.too_big).then_some(self.out)
    }
}

/// Fills the connection's buffer, flushing queued replies first (the client may be waiting for
/// 354 or a BDAT reply before it sends more) and failing when the client stays silent too long.
async fn fill(conn: &mut Conn) -> io::Result<()> {
    conn.flush().await?;
    match tokio::time::timeout(Duration::from_secs(LMTP_IDLE_SECS), conn.fill(READ_BUFFER)).await {
        Ok(Ok(0)) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a message",
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client silent inside a message",
        )),
    }
}

/// How receiving a message ended (the stream is in step for the next command in every case).
#[derive(Debug)]
pub enum Received {
    /// The whole message is in the spool.
    Complete,
    /// It was larger than the limit; the rest was read and dropped.
    TooBig,
    /// The spool could not take it (a temporary file error); the rest was read and dropped.
    Failed(io::Error),
}

/// Writes `bytes` to the spool unless an earlier write failed.
async fn spool_write(spool: &mut Spool, bytes: &[u8], failed: &mut Option<io::Error>) {
    if failed.is_none()
        && let Err(e) = spool.write(bytes).await
    {
        *failed = Some(e);
    }
}

/// Reads a DATA body up to its terminating line, dot-unstuffed into `spool`, keeping at most
/// `limit` bytes. `Err` only when the connection fails (the spool then holds a partial message:
/// drop it).
pub async fn read_data(conn: &mut Conn, limit: usize, spool: &mut Spool) -> io::Result<Received> {
    let mut u = Unstuffer::new(limit);
    let mut failed = None;
    loop {
        let used = u.feed(conn.buffered());
        conn.consume(used);
        if !u.output().is_empty() {
            spool_write(spool, u.output(), &mut failed).await;
            u.clear_output();
        }
        if u.done() {
            return Ok(match failed {
                Some(e) => Received::Failed(e),
                None if u.too_big() => Received::TooBig,
                None => Received::Complete,
            });
        }
        fill(conn).await?;
    }
}

/// Reads and drops `size` octets of a BDAT chunk that cannot be taken.
pub async fn skip_chunk(conn: &mut Conn, size: u64) -> io::Result<()> {
    read_chunk(conn, size, None, 0).await.map(|_| ())
}

/// Reads exactly `size` octets of a BDAT chunk into `spool` while the message stays within
/// `limit` (`Some`); with `None` (too big already, or no transaction) they are read and dropped.
/// Returns false when the message passed the limit with this chunk.
pub async fn read_chunk(
    conn: &mut Conn,
    size: u64,
    mut spool: Option<&mut Spool>,
    limit: usize,
) -> io::Result<Result<bool, io::Error>> {
    let fits = spool.as_ref().is_some_and(|s| {
        s.len()
            .checked_add(size)
            .is_some_and(|total| total <= limit as u64)
    });
    let mut failed = None;
    let mut left = size;
    loop {
        let avail = conn.buffered();
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(avail.len());
        if fits && let Some(s) = spool.as_deref_mut() {
            spool_write(s, avail.get(..take).unwrap_or_default(), &mut failed).await;
        }
        conn.consume(take);
        left -= take as u64;
        if left == 0 {
            return Ok(match failed {
                Some(e) => Err(e),
                None => Ok(fits),
            });
        }
        fill(conn).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], limit: usize, split: usize) -> (Option<Vec<u8>>, usize) {
        let mut u = Unstuffer::new(limit);
        let mut used = 0;
        for chunk in input.chunks(split.max(1)) {
            let n = u.feed(chunk);
            used += n;
            if u.done() {
                break;
            }
            assert_eq!(n, chunk.len(), "input left over before the end");
        }
        assert!(u.done(), "end not found");
        (u.finish(), used)
    }

    #[test]
    fn unstuffs_and_stops_at_the_end_line() {
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nnot a command\r\n.\r\nQUIT\r\n";
        for split in 1..input.len() {
            let (msg, used) = decode_split(input, 1000, split);
            assert_eq!(
                msg.as_deref(),
                Some(&b"Subject: x\r\n\r\n.leading dot\r\n"[..]),
                "split {split}"
            );
            assert_eq!(
                input.get(used..),
                Some(&b"not a command\r\n.\r\nQUIT\r\n"[..])
            );
        }
    }

    #[test]
    fn bare_lf_lines_and_terminator() {
        let (msg, _) = decode_split(b"a\nb\r\n..\n.\n", 1000, 3);
        assert_eq!(msg.as_deref(), Some(&b"a\nb\r\n.\n"[..]));
    }

    #[test]
    fn dot_cr_inside_a_line_is_content() {
        let (msg, _) = decode_split(b".\rx\r\n.\r\n", 1000, 1);
        assert_eq!(msg.as_deref(), Some(&b"\rx\r\n"[..]));
        let (msg, _) = decode_split(b"x.\r\n.y\r\n.\r\n", 1000, 1);
        assert_eq!(msg.as_deref(), Some(&b"x.\r\ny\r\n"[..]));
    }

    #[test]
    fn empty_message_and_long_lines() {
        let (msg, _) = decode_split(b".\r\n", 10, 1);
        assert_eq!(msg.as_deref(), Some(&b""[..]));
        let mut long = vec![b'x'; 200_000];
        long.extend_from_slice(b"\r\n.\r\n");
        let (msg, _) = decode_split(&long, 300_000, 4096);
        assert_eq!(msg.map(|m| m.len()), Some(200_002));
    }

    #[test]
    fn draining_after_every_feed_gives_the_same_message() {
        let input = b"Subject: x\r\n\r\n..a\r\nb\r\n.\r\nNOOP\r\n";
        for split in 1..input.len() {
            let mut u = Unstuffer::new(1000);
            let mut got = Vec::new();
            for chunk in input.chunks(split) {
                u.feed(chunk);
                got.extend_from_slice(u.output());
                u.clear_output();
                if u.done() {
                    break;
                }
            }
            assert!(u.done() && !u.too_big());
            assert_eq!(got, b"Subject: x\r\n\r\n.a\r\nb\r\n", "split {split}");
        }
        // The limit counts drained bytes too.
        let mut u = Unstuffer::new(5);
        u.feed(b"abc\r\n");
        u.clear_output();
        u.feed(b"d\r\n.\r\n");
        assert!(u.done() && u.too_big());
        assert_eq!(u.finish(), None);
    }

    #[test]
    fn over_the_limit_is_read_through_but_not_kept() {
        let input = b"0123456789\r\n0123456789\r\n.\r\nNOOP\r\n";
        let (msg, used) = decode_split(input, 15, 5);
        assert_eq!(msg, None);
        assert_eq!(input.get(used..), Some(&b"NOOP\r\n"[..]));
        // Exactly at the limit is accepted.
        let (msg, _) = decode_split(b"0123456789\r\n.\r\n", 12, 5);
        assert_eq!(msg.map(|m| m.len()), Some(12));
    }
}
