//! IMAP command framing and parsing (`mailcove::imap::proto::receive::Receiver`
//! and `mailcove::imap::proto::parse::parse_command`).
//!
//! Input layout: byte 0 seeds the chunk sizes, bit 0 of byte 1 chooses
//! LITERAL+ or LITERAL-, bit 1 the streaming receiver the session uses (APPEND
//! literals, MULTIAPPEND, CATENATE and UTF8 forms streamed, the text between
//! them parsed with `parse_append_tail`), the rest is the client's byte stream. The stream is
//! fed to a receiver with small limits (so the limit paths are reached) the
//! way the session does it: append a chunk, poll until `Incomplete`, drop
//! what each answer consumed.
//!
//! Invariants: every answer consumes 1..=buffered bytes; a framed command
//! ends with LF; the buffer never holds more than `max_line + max_literal`
//! while waiting; a continuation is only requested for a literal within the
//! limit; polling always terminates; and the continuation requests, commands
//! and errors framed do
//! not depend on how the stream was split into reads (one read versus many).
//! The whole stream is also handed to `parse_command` directly.

use mailcove::imap::proto::parse::{AppendAt, ParseError, parse_append_tail, parse_command};
use mailcove::imap::proto::receive::{FrameError, Framed, Receiver, ReceiverLimits, StreamRest};
use mailcove::imap::proto::types::Command;

const LIMITS_LINE: usize = 300;
const LIMITS_LITERAL: u64 = 1000;
/// Largest chunk a split run feeds at once.
const MAX_CHUNK: usize = 97;

#[derive(Debug, PartialEq)]
enum Event {
    Continue(u64),
    Command(Vec<u8>, Result<Command, ParseError>),
    Error(FrameError),
}

/// Sizes of the reads a run feeds: the whole stream at once when the seed is 0, else 1 to
/// [`MAX_CHUNK`] bytes each from an xorshift of the seed.
struct Chunks {
    seed: u8,
    rng: u32,
}

impl Chunks {
    fn new(seed: u8) -> Chunks {
        Chunks {
            seed,
            rng: u32::from(seed).wrapping_mul(2_654_435_761) | 1,
        }
    }

    /// The next read's size, `whole` being the stream's length.
    fn next(&mut self, whole: usize) -> usize {
        if self.seed == 0 {
            return whole;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        1 + (self.rng % MAX_CHUNK as u32) as usize
    }
}

/// Feeds `stream` in chunks whose sizes come from `seed` (0: one chunk).
fn frame(stream: &[u8], seed: u8, literal_plus: bool) -> Vec<Event> {
    let limits = ReceiverLimits {
        max_line: LIMITS_LINE,
        max_literal: LIMITS_LITERAL,
        literal_plus,
    };
    let mut rx = Receiver::new(limits);
    let mut chunks = Chunks::new(seed);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut events = Vec::new();
    let mut polls = 0usize;
    loop {
        polls += 1;
        assert!(
            polls <= 4 * stream.len() + 16,
            "receiver does not make progress"
        );
        match rx.poll(&buf) {
            Framed::Incomplete => {
                assert!(buf.len() as u64 <= LIMITS_LINE as u64 + LIMITS_LITERAL);
                if fed == stream.len() {
                    return events;
                }
                let n = chunks.next(stream.len());
                let end = (fed + n).min(stream.len());
                buf.extend_from_slice(&stream[fed..end]);
                fed = end;
            }
            Framed::Continue { literal_len } => {
                assert!(literal_len <= LIMITS_LITERAL);
                events.push(Event::Continue(literal_len));
            }
            Framed::Command { consumed, result } => {
                assert!(consumed > 0 && consumed <= buf.len());
                let command: Vec<u8> = buf.drain(..consumed).collect();
                assert_eq!(command.last(), Some(&b'\n'));
                assert!(command.len() as u64 <= LIMITS_LINE as u64 + LIMITS_LITERAL);
                events.push(Event::Command(command, result));
            }
            Framed::Error { consumed, error } => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
                events.push(Event::Error(error));
            }
            Framed::Skip { consumed } => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
            }
            Framed::Stream { .. } | Framed::LiteralData { .. } | Framed::StreamEnd { .. } => {
                panic!("only a streaming receiver streams literals")
            }
        }
    }
}

/// What the streaming receiver reported (literal data counted, not kept).
#[derive(Debug, PartialEq)]
enum StreamEvent {
    Frame(Event),
    Stream(Vec<u8>, u64, bool),
    Data(usize),
    End(Vec<u8>, StreamRest),
}

/// Like [`frame`] with [`Receiver::streaming`], as the session runs it: every streamed literal
/// is taken, and the text after each one goes through `parse_append_tail` (which must not
/// panic, whatever it says). The buffer never holds more than `2 * max_line` plus one chunk.
fn frame_streaming(stream: &[u8], seed: u8, literal_plus: bool) -> Vec<StreamEvent> {
    let limits = ReceiverLimits {
        max_line: LIMITS_LINE,
        max_literal: LIMITS_LITERAL,
        literal_plus,
    };
    let mut rx = Receiver::streaming(limits);
    let mut chunks = Chunks::new(seed);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0usize;
    let mut events = Vec::new();
    let mut polls = 0usize;
    let mut data = 0usize;
    loop {
        polls += 1;
        assert!(
            polls <= 4 * stream.len() + 16,
            "streaming receiver does not make progress"
        );
        match rx.poll(&buf) {
            Framed::Incomplete => {
                if fed == stream.len() {
                    return events;
                }
                let n = chunks.next(stream.len());
                let end = (fed + n).min(stream.len());
                // The last chunk fed may still be waiting whole.
                assert!(
                    buf.len() <= 2 * LIMITS_LINE + MAX_CHUNK,
                    "buffer grew past two lines"
                );
                buf.extend_from_slice(&stream[fed..end]);
                fed = end;
            }
            Framed::Continue { literal_len } => {
                events.push(StreamEvent::Frame(Event::Continue(literal_len)));
            }
            Framed::Command { consumed, result } => {
                assert!(consumed > 0 && consumed <= buf.len());
                let command: Vec<u8> = buf.drain(..consumed).collect();
                events.push(StreamEvent::Frame(Event::Command(command, result)));
            }
            Framed::Error { consumed, error } => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
                events.push(StreamEvent::Frame(Event::Error(error)));
            }
            Framed::Skip { consumed } => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
            }
            Framed::Stream {
                consumed,
                literal_len,
                synchronizing,
                ..
            } => {
                assert!(consumed > 0 && consumed <= buf.len());
                let head: Vec<u8> = buf.drain(..consumed).collect();
                events.push(StreamEvent::Stream(head, literal_len, synchronizing));
            }
            Framed::LiteralData { available, left } => {
                assert!(available > 0 && available <= buf.len());
                buf.drain(..available);
                rx.take_literal(available);
                data += available;
                if left == 0 {
                    events.push(StreamEvent::Data(std::mem::take(&mut data)));
                }
            }
            Framed::StreamEnd { consumed, rest } => {
                assert!(consumed > 0 && consumed <= buf.len());
                let text: Vec<u8> = buf.drain(..consumed).collect();
                let header_at = match rest {
                    StreamRest::Next { header_at, .. } => Some(header_at),
                    _ => None,
                };
                for at in [
                    AppendAt::Message,
                    AppendAt::Utf8Message,
                    AppendAt::CatPart,
                    AppendAt::Utf8CatPart,
                ] {
                    let _ = parse_append_tail(at, &text, header_at);
                }
                events.push(StreamEvent::End(text, rest));
            }
        }
    }
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let [seed, flags, stream @ ..] = data else {
        return;
    };
    let literal_plus = flags & 1 == 1;
    if flags & 2 == 2 {
        let whole = frame_streaming(stream, 0, literal_plus);
        if *seed != 0 {
            let split = frame_streaming(stream, *seed, literal_plus);
            assert_eq!(
                whole, split,
                "streamed framing depends on how the stream was read"
            );
        }
        return;
    }
    let whole = frame(stream, 0, literal_plus);
    if *seed != 0 {
        let split = frame(stream, *seed, literal_plus);
        assert_eq!(whole, split, "framing depends on how the stream was read");
    }
    if let Ok(cmd) = parse_command(stream) {
        assert!(stream.ends_with(b"\n"));
        assert!(!cmd.tag.as_str().is_empty());
    }
}
