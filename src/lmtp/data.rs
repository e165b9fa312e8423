//! Reading a message: DATA (dot-stuffed, ended by `.` alone on a line) and BDAT chunks (exact
//! octet counts, RFC 3030).
//!
//! [`Unstuffer`] is a byte-fed state machine, independent of sockets, so every split of the input
//! across reads behaves the same and it can be tested and fuzzed alone. It does not look at line
//! lengths: a line may be as long as the message size limit allows. CRLF and bare LF both end a
//! line (MTAs that pass through bare LF are common); the line ends are stored exactly as they came.
//!
//! The whole message is read before anything is delivered, so a slow or stalled client never
//! holds a mailbox lock. A message over the size limit is still read to its end (so the stream
//! stays in step for the next command) but not kept.

use std::io;
use std::time::Duration;

use crate::limits::LMTP_IDLE_SECS;
use crate::server::conn::Conn;

/// Bytes the connection may buffer while a message streams through.
const READ_BUFFER: usize = 64 * 1024;

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
#[derive(Debug)]
pub struct Unstuffer {
    state: State,
    out: Vec<u8>,
    limit: usize,
    too_big: bool,
}

impl Unstuffer {
    /// A decoder that keeps at most `limit` message bytes.
    pub fn new(limit: usize) -> Self {
        Unstuffer {
            state: State::LineStart,
            out: Vec::new(),
            limit,
            too_big: false,
        }
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
        if self.out.len().saturating_add(bytes.len()) > self.limit {
            self.too_big = true;
            self.out = Vec::new();
            return;
        }
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

/// Reads a DATA body up to its terminating line. `Ok(None)` when it was over `limit` bytes.
pub async fn read_data(conn: &mut Conn, limit: usize) -> io::Result<Option<Vec<u8>>> {
    let mut u = Unstuffer::new(limit);
    loop {
        let used = u.feed(conn.buffered());
        conn.consume(used);
        if u.done() {
            return Ok(u.finish());
        }
        fill(conn).await?;
    }
}

/// Reads exactly `size` octets of a BDAT chunk, appending them to `out` while it stays within
/// `limit`; past it, the octets are read and dropped and `too_big` is set.
pub async fn read_chunk(
    conn: &mut Conn,
    size: u64,
    out: &mut Vec<u8>,
    limit: usize,
    too_big: &mut bool,
) -> io::Result<()> {
    let fits = usize::try_from(size)
        .ok()
        .and_then(|s| out.len().checked_add(s))
        .is_some_and(|total| total <= limit);
    if !fits && !*too_big {
        *too_big = true;
        *out = Vec::new();
    }
    let mut left = size;
    loop {
        let avail = conn.buffered();
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(avail.len());
        if !*too_big {
            out.extend_from_slice(avail.get(..take).unwrap_or_default());
        }
        conn.consume(take);
        left -= take as u64;
        if left == 0 {
            return Ok(());
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
