//! Command framing: splits the client's byte stream into whole commands.
//!
//! A command is one or more lines; a line ending in a literal header (`{n}`,
//! `{n+}` or `~{n}`) is followed by `n` octets of data and then the rest of the
//! command. The [`Receiver`] is fed the session's read buffer again and again
//! as it grows, and answers with a [`Framed`]:
//!
//! ```text
//!   Incomplete            read more, call poll again with the longer buffer
//!   Continue{n}           send "+ ..." once, then read more (synchronizing literal accepted)
//!   Command{consumed,..}  buf[..consumed] was one command: handle it, drop those bytes
//!   Error{consumed,..}    framing error: drop those bytes, answer it (see FrameError)
//!   Skip{consumed}        discarding a rejected command: drop those bytes, poll again
//! ```
//!
//! Contract: between two polls the session may only append to the buffer,
//! except that after `Command`, `Error` or `Skip` it removes exactly
//! `buf[..consumed]`. The receiver remembers how far it scanned, so polling a
//! growing buffer costs time proportional to the new bytes only.
//!
//! Limits and how each is answered (the session writes the response with
//! [`ImapError`](crate::imap::response::ImapError)):
//! - a synchronizing literal over `max_literal` is refused *before* any `+`
//!   is sent (`tag NO [TOOBIG]`); the client then sends no data (RFC 3501
//!   7.5, RFC 7888 section 4) and framing resumes at the next line;
//! - a non-synchronizing literal over the limit (or over 4096 octets when
//!   only LITERAL- is offered) is reported at once (`tag BAD [TOOBIG]`,
//!   allowed by RFC 7888 section 4 before the data is read), then exactly
//!   its octets and the rest of its command are discarded without buffering,
//!   so a literal's data is never executed as commands;
//! - a command whose line bytes pass `max_line` is reported at once (BAD)
//!   and the rest of the line (and any non-synchronizing literal it
//!   announces) is discarded: mailcove resynchronises at the next line
//!   rather than sending BYE. A client can still waste bandwidth this way;
//!   the session's bad-command counter decides when to disconnect.
//!
//! The literal octets of one command together may not pass `max_literal`, so
//! a whole command never needs more than `max_line + max_literal` bytes.

use crate::imap::proto::parse::{ParseError, parse_append_probe, parse_command};
use crate::imap::proto::types::{Command, Tag, is_tag_char};
use crate::limits::{
    DEFAULT_MAX_COMMAND_LINE, DEFAULT_MAX_MESSAGE_SIZE, LITERAL_HEADER_TAIL, LITERAL_MINUS_MAX,
};

/// Framing limits, fixed for the life of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverLimits {
    /// Most octets of command text (all lines of a command, literal data excluded).
    pub max_line: usize,
    /// Most octets of literal data in one command (the largest APPEND).
    pub max_literal: u64,
    /// True when LITERAL+ is offered; false means only LITERAL- (non-synchronizing
    /// literals up to 4096 octets).
    pub literal_plus: bool,
}

impl Default for ReceiverLimits {
    /// The daemon's defaults: 64 KiB command text, the default message size, LITERAL+.
    fn default() -> Self {
        ReceiverLimits {
            max_line: DEFAULT_MAX_COMMAND_LINE,
            max_literal: DEFAULT_MAX_MESSAGE_SIZE,
            literal_plus: true,
        }
    }
}

/// What the receiver found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// Not enough bytes yet.
    Incomplete,
    /// A synchronizing literal of `literal_len` octets was announced and accepted:
    /// send a continuation request (`+ ...`) once, then keep feeding.
    Continue {
        /// Announced literal size.
        literal_len: u64,
    },
    /// `buf[..consumed]` is one whole command (literals included), parsed.
    Command {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// The command, or why it is not one (answer BAD).
        result: Result<Command, ParseError>,
    },
    /// The command could not be framed; drop `buf[..consumed]` and answer the error.
    Error {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// What went wrong.
        error: FrameError,
    },
    /// Bytes of a rejected command were discarded; drop `buf[..consumed]`, poll again.
    Skip {
        /// Bytes to drop from the buffer.
        consumed: usize,
    },
    /// Streaming mode only: the message literal of an APPEND was announced. Drop
    /// `buf[..consumed]` (the command text so far), then either refuse it
    /// ([`Receiver::refuse_literal`]) or (after `+` for a synchronizing one) take its data as
    /// [`Framed::LiteralData`] until [`Framed::StreamEnd`].
    Stream {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// The command as if the literal were empty (`APPEND box flags date {0}`), or why the
        /// text before the literal is no APPEND (answer BAD and refuse the literal).
        head: Result<Command, ParseError>,
        /// Announced literal size.
        literal_len: u64,
        /// `{n}` (the client waits for `+`) rather than `{n+}` (the data is on its way).
        synchronizing: bool,
    },
    /// `buf[..available]` is data of the streamed literal; `left` more octets follow those.
    /// Report what was used with [`Receiver::take_literal`] (and drop it from the buffer).
    LiteralData {
        /// Literal octets at the start of the buffer.
        available: usize,
        /// Octets of the literal still to come after `available`.
        left: u64,
    },
    /// The streamed literal is over and so is its command; drop `buf[..consumed]`.
    StreamEnd {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// What followed the literal on its line.
        rest: StreamRest,
    },
}

/// What followed a streamed literal (see [`Framed::StreamEnd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRest {
    /// The line ended: the command is complete.
    End,
    /// The line ended in another literal header (the next MULTIAPPEND message, or a CATENATE
    /// part): the receiver now streams that literal. `buf[..consumed]` holds the text between
    /// the literals, the header starting at `header_at`. Take its data with
    /// [`Framed::LiteralData`] (after `+` when `synchronizing`), or refuse it with
    /// [`Receiver::refuse_literal`].
    Next {
        /// Offset of the literal header (its `~` or `{`) in the consumed text.
        header_at: usize,
        /// Announced literal size.
        literal_len: u64,
        /// `{n}` (the client waits for `+`) rather than `{n+}`.
        synchronizing: bool,
    },
    /// Other text followed, to the line's end: `buf[..consumed]` (the APPEND handler parses it:
    /// `)` closes a `UTF8 (...)` or CATENATE, and a CATENATE may end in URL parts). Text longer
    /// than `max_line` is cut there (no CRLF at its end) and the rest of the line discarded.
    Junk,
}

/// A framing error; see the module documentation for the answer each needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A literal was larger than allowed.
    #[error("literal of {size} octets is too big")]
    LiteralTooBig {
        /// The command's tag, if it had a valid one.
        tag: Option<Tag>,
        /// The announced size (saturated at `u64::MAX`).
        size: u64,
        /// `{n}` (refused before `+`) rather than `{n+}` (being discarded).
        synchronizing: bool,
    },
    /// The command text was longer than `max_line`.
    #[error("command line too long")]
    LineTooLong {
        /// The command's tag, if it had a valid one.
        tag: Option<Tag>,
    },
}

impl FrameError {
    /// The tag to answer with (`None`: answer untagged).
    pub fn tag(&self) -> Option<&Tag> {
        match self {
            FrameError::LiteralTooBig { tag, .. } | FrameError::LineTooLong { tag } => tag.as_ref(),
        }
    }
}

/// Result of [`Receiver::poll_line`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFramed {
    /// No complete line yet.
    Incomplete,
    /// `buf[..line_len]` is the line without its CRLF; drop `buf[..consumed]` after use.
    Line {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// Length of the line's text.
        line_len: usize,
    },
    /// The line passed the given maximum; drop `buf[..consumed]`. The rest of the
    /// line is discarded by later polls (which return `Skip`).
    TooLong {
        /// Bytes to drop from the buffer.
        consumed: usize,
    },
}

/// A literal header found at the end of a line.
struct LiteralHeader {
    size: u64,
    synchronizing: bool,
    /// Offset of the header in the line (its `~` for a literal8, else its `{`).
    start: usize,
}

/// Finds `{n}`, `{n+}` or `~{n}` right before the line's CRLF.
/// `line` is the line including its LF.
fn literal_header(line: &[u8]) -> Option<LiteralHeader> {
    let body = line.strip_suffix(b"\r\n")?;
    let body = body.strip_suffix(b"}")?;
    let (body, synchronizing) = match body.strip_suffix(b"+") {
        Some(b) => (b, false),
        None => (body, true),
    };
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body.get(open + 1..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Saturate: any number this large is over every limit anyway.
    let size = digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let start = if open > 0 && body.get(open - 1) == Some(&b'~') {
        open - 1
    } else {
        open
    };
    Some(LiteralHeader {
        size,
        synchronizing,
        start,
    })
}

/// For a literal whose header starts at `buf[header_at]` in the command `buf`: `Some` when the
/// command is an APPEND and the literal is (by position) its message rather than its mailbox
/// name, with the command parsed as if the literal were empty.
fn append_message_head(buf: &[u8], header_at: usize) -> Option<Result<Command, ParseError>> {
    let text = buf.get(..header_at)?;
    let tag_end = text.iter().position(|&b| !is_tag_char(b))?;
    let rest = text.get(tag_end..)?.strip_prefix(b" ")?;
    let name = rest.get(..7)?;
    if !name.eq_ignore_ascii_case(b"APPEND ") {
        return None;
    }
    // `tag APPEND {n}`: the literal is the mailbox name, an ordinary literal.
    if rest.len() == 7 {
        return None;
    }
    Some(parse_append_probe(text, buf.get(header_at) == Some(&b'~')))
}

/// Digits of the largest `u64` (`18446744073709551615`): a longer number
/// (after its leading zeros) saturates, like in [`literal_header`].
const U64_DIGITS: usize = 20;

/// Appends `bytes` of a discarded line to `tail`, which keeps just enough of
/// the line's end for [`literal_header`] to read the same header it would
/// read from the whole line.
///
/// Cutting to a fixed number of bytes is not enough: `{0000…5+}` or a
/// 70-digit size is a valid header longer than any cut, and losing its `{`
/// would make the literal's data look like commands, but only when the line
/// arrived in pieces. So digit runs are kept value-equivalent instead: leading
/// zeros are dropped and a run past [`U64_DIGITS`] becomes 20 nines, which
/// saturates to the same `u64::MAX`.
fn push_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    // Only the last bytes matter, plus a digit run reaching into them and
    // the character before that run.
    let mut from = bytes.len().saturating_sub(LITERAL_HEADER_TAIL);
    while from > 0 && bytes.get(from - 1).is_some_and(u8::is_ascii_digit) {
        from -= 1;
    }
    if from > 0 {
        tail.clear();
        from -= 1;
    }
    for &b in bytes.get(from..).unwrap_or_default() {
        if b.is_ascii_digit() {
            let run = tail.iter().rev().take_while(|c| c.is_ascii_digit()).count();
            if run == 1 && tail.last() == Some(&b'0') {
                tail.pop();
            } else if run >= U64_DIGITS {
                let start = tail.len().saturating_sub(run);
                tail.truncate(start);
                tail.extend_from_slice(&[b'9'; U64_DIGITS]);
                continue;
            }
        }
        tail.push(b);
        if tail.len() > 2 * LITERAL_HEADER_TAIL {
            // Keep the last LITERAL_HEADER_TAIL bytes and the whole digit
            // run (at most U64_DIGITS) and character reaching into them.
            let mut cut = tail.len() - LITERAL_HEADER_TAIL;
            while cut > 0 && tail.get(cut - 1).is_some_and(u8::is_ascii_digit) {
                cut -= 1;
            }
            tail.drain(..cut.saturating_sub(1));
        }
    }
}

/// The tag at the start of `buf`, if it is a valid one followed by a space.
fn leading_tag(buf: &[u8]) -> Option<Tag> {
    let end = buf.iter().position(|&b| !is_tag_char(b))?;
    if buf.get(end) != Some(&b' ') {
        return None;
    }
    buf.get(..end).and_then(Tag::new)
}

#[derive(Debug)]
enum State {
    /// Collecting the command that starts at `buf[0]`.
    Command {
        /// Start of the line being read.
        line_start: usize,
        /// Bytes from `line_start` on already searched for LF.
        scanned: usize,
        /// Line bytes of earlier lines of this command.
        line_bytes: usize,
        /// Literal octets of this command so far.
        literal_bytes: u64,
        /// End of the literal data being waited for.
        awaiting: Option<usize>,
    },
    /// Inside a streamed APPEND literal.
    Streaming {
        /// Literal octets not yet taken.
        left: u64,
    },
    /// After a streamed literal, reading the rest of its line.
    StreamTail {
        /// Bytes already searched for LF.
        scanned: usize,
    },
    /// Throwing away the rest of a rejected command (already reported).
    Discard {
        /// Literal octets still to drop before line text resumes.
        literal_left: u64,
        /// The last bytes of the current line, to spot a literal header at its end.
        tail: Vec<u8>,
    },
}

impl State {
    fn fresh() -> State {
        State::Command {
            line_start: 0,
            scanned: 0,
            line_bytes: 0,
            literal_bytes: 0,
            awaiting: None,
        }
    }
}

/// The byte-fed command framer (see the module documentation).
#[derive(Debug)]
pub struct Receiver {
    limits: ReceiverLimits,
    state: State,
    /// APPEND message literals are streamed, other literals are held to `max_line`.
    streaming: bool,
}

impl Receiver {
    /// A receiver at the start of a command.
    pub fn new(limits: ReceiverLimits) -> Receiver {
        Receiver {
            limits,
            state: State::fresh(),
            streaming: false,
        }
    }

    /// A receiver that streams APPEND message literals ([`Framed::Stream`]) instead of
    /// buffering them, so a command never needs more than `2 * max_line` bytes of buffer:
    /// every other literal (a mailbox name, a search string) counts against `max_line`.
    pub fn streaming(limits: ReceiverLimits) -> Receiver {
        Receiver {
            streaming: true,
            ..Receiver::new(limits)
        }
    }

    /// Refuses the literal announced by [`Framed::Stream`] (answer the command with a tagged
    /// NO or BAD): a synchronizing literal's data never comes (no `+` was sent), a
    /// non-synchronizing one's is discarded with the rest of its command.
    pub fn refuse_literal(&mut self, synchronizing: bool) {
        if let State::Streaming { left, .. } = self.state {
            self.state = if synchronizing {
                State::fresh()
            } else {
                State::Discard {
                    literal_left: left,
                    tail: Vec::new(),
                }
            };
        }
    }

    /// `n` octets of the streamed literal (at the buffer's start) were used and dropped.
    pub fn take_literal(&mut self, n: usize) {
        if let State::Streaming { left, .. } = &mut self.state {
            *left = left.saturating_sub(u64::try_from(n).unwrap_or(u64::MAX));
        }
    }

    /// True while the rest of a rejected command is being thrown away.
    pub fn is_discarding(&self) -> bool {
        matches!(self.state, State::Discard { .. })
    }

    /// Frames the next command from `buf` (see the module documentation).
    pub fn poll(&mut self, buf: &[u8]) -> Framed {
        match self.state {
            State::Discard { .. } => return self.discard(buf, 0),
            State::Streaming { left: 0, .. } => {
                self.state = State::StreamTail { scanned: 0 };
                return self.stream_tail(buf);
            }
            // NUL in a streamed literal is for APPEND to judge: it knows whether the literal
            // was a literal8 (RFC 3516 4.4) and answers BAD for a plain one.
            State::Streaming { left } => return Self::literal_data(buf, left),
            State::StreamTail { .. } => return self.stream_tail(buf),
            State::Command { .. } => {}
        }
        let State::Command {
            line_start,
            scanned,
            line_bytes,
            literal_bytes,
            awaiting,
        } = &mut self.state
        else {
            return Framed::Incomplete;
        };
        // A buffer shorter than what was scanned breaks the contract; start
        // over rather than index out of bounds.
        if buf.len() < *scanned || buf.len() < *line_start {
            self.state = State::fresh();
            return self.poll(buf);
        }
        loop {
            if let Some(end) = *awaiting {
                if buf.len() < end {
                    return Framed::Incomplete;
                }
                *awaiting = None;
                *line_start = end;
                *scanned = end;
            }
            let from = (*scanned).max(*line_start);
            let lf = buf
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
            let Some(off) = lf else {
                *scanned = buf.len();
                if *line_bytes + (buf.len() - *line_start) > self.limits.max_line {
                    let tag = leading_tag(buf.get(..self.limits.max_line).unwrap_or(buf));
                    let mut tail = Vec::new();
                    push_tail(&mut tail, buf.get(*line_start..).unwrap_or_default());
                    self.state = State::Discard {
                        literal_left: 0,
                        tail,
                    };
                    return Framed::Error {
                        consumed: buf.len(),
                        error: FrameError::LineTooLong { tag },
                    };
                }
                return Framed::Incomplete;
            };
            let line_end = from + off + 1;
            let line = buf.get(*line_start..line_end).unwrap_or_default();
            *line_bytes += line.len();
            let header = literal_header(line);
            if *line_bytes > self.limits.max_line {
                let tag = leading_tag(buf.get(..self.limits.max_line).unwrap_or(buf));
                // The line is complete: only a non-synchronizing literal it
                // announces is still to come and must be thrown away.
                self.state = match header.filter(|h| !h.synchronizing) {
                    Some(h) => State::Discard {
                        literal_left: h.size,
                        tail: Vec::new(),
                    },
                    None => State::fresh(),
                };
                return Framed::Error {
                    consumed: line_end,
                    error: FrameError::LineTooLong { tag },
                };
            }
            let Some(header) = header else {
                self.state = State::fresh();
                let command = buf.get(..line_end).unwrap_or_default();
                return Framed::Command {
                    consumed: line_end,
                    result: parse_command(command),
                };
            };
            let stream_head = if self.streaming {
                append_message_head(buf, *line_start + header.start)
            } else {
                None
            };
            // Streamed literals go to storage, others must fit the buffer.
            let max_literal = if self.streaming && stream_head.is_none() {
                self.limits.max_line as u64
            } else {
                self.limits.max_literal
            };
            let total = literal_bytes.saturating_add(header.size);
            let allowed = if header.synchronizing || self.limits.literal_plus {
                max_literal
            } else {
                max_literal.min(LITERAL_MINUS_MAX)
            };
            if let Some(head) = stream_head
                && header.size <= allowed
            {
                self.state = State::Streaming { left: header.size };
                return Framed::Stream {
                    consumed: line_end,
                    head,
                    literal_len: header.size,
                    synchronizing: header.synchronizing,
                };
            }
            let end = usize::try_from(header.size)
                .ok()
                .and_then(|n| line_end.checked_add(n));
            let end = match end {
                Some(end) if header.size <= allowed && total <= max_literal => end,
                _ => {
                    let error = FrameError::LiteralTooBig {
                        tag: leading_tag(buf),
                        size: header.size,
                        synchronizing: header.synchronizing,
                    };
                    self.state = if header.synchronizing {
                        State::fresh()
                    } else {
                        State::Discard {
                            literal_left: header.size,
                            tail: Vec::new(),
                        }
                    };
                    return Framed::Error {
                        consumed: line_end,
                        error,
                    };
                }
            };
            *literal_bytes = total;
            *awaiting = Some(end);
            *scanned = line_end;
            if header.synchronizing {
                return Framed::Continue {
                    literal_len: header.size,
                };
            }
        }
    }

    fn literal_data(buf: &[u8], left: u64) -> Framed {
        if buf.is_empty() {
            return Framed::Incomplete;
        }
        let available = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        Framed::LiteralData {
            available,
            left: left - available as u64,
        }
    }

    /// The rest of the line after a streamed literal.
    fn stream_tail(&mut self, buf: &[u8]) -> Framed {
        let State::StreamTail { scanned } = &mut self.state else {
            return Framed::Incomplete;
        };
        let from = (*scanned).min(buf.len());
        let found = buf
            .get(from..)
            .and_then(|r| memchr::memchr(b'\n', r))
            .map(|off| from + off + 1);
        let end = match found {
            Some(end) if end <= self.limits.max_line => end,
            _ if buf.len() > self.limits.max_line => {
                // Longer than a line may be: cut at `max_line` whether or not its end has
                // arrived, so what the handler sees never depends on how the bytes were read.
                let cut = self.limits.max_line;
                let mut tail = Vec::new();
                push_tail(&mut tail, buf.get(..cut).unwrap_or_default());
                self.state = State::Discard {
                    literal_left: 0,
                    tail,
                };
                return Framed::StreamEnd {
                    consumed: cut,
                    rest: StreamRest::Junk,
                };
            }
            _ => {
                *scanned = buf.len();
                return Framed::Incomplete;
            }
        };
        let line = buf.get(..end).unwrap_or_default();
        let (rest, state) = if line == b"\r\n" || line == b"\n" {
            (StreamRest::End, State::fresh())
        } else {
            match literal_header(line) {
                // The APPEND handler decides about it (and refuses it when it must).
                Some(h) => (
                    StreamRest::Next {
                        header_at: h.start,
                        literal_len: h.size,
                        synchronizing: h.synchronizing,
                    },
                    State::Streaming { left: h.size },
                ),
                None => (StreamRest::Junk, State::fresh()),
            }
        };
        self.state = state;
        Framed::StreamEnd {
            consumed: end,
            rest,
        }
    }

    /// Drops bytes of a rejected command from `buf[start..]`.
    fn discard(&mut self, buf: &[u8], start: usize) -> Framed {
        let mut pos = start;
        let skip = |pos: usize| {
            if pos == 0 {
                Framed::Incomplete
            } else {
                Framed::Skip { consumed: pos }
            }
        };
        loop {
            let State::Discard { literal_left, tail } = &mut self.state else {
                return skip(pos);
            };
            if *literal_left > 0 {
                let avail = buf.len().saturating_sub(pos);
                let take = usize::try_from(*literal_left).map_or(avail, |l| l.min(avail));
                pos += take;
                *literal_left =
                    literal_left.saturating_sub(u64::try_from(take).unwrap_or(u64::MAX));
                if *literal_left > 0 {
                    return skip(pos);
                }
            }
            let rest = buf.get(pos..).unwrap_or_default();
            match rest.iter().position(|&b| b == b'\n') {
                None => {
                    push_tail(tail, rest);
                    return skip(buf.len());
                }
                Some(off) => {
                    push_tail(tail, rest.get(..=off).unwrap_or_default());
                    pos += off + 1;
                    match literal_header(tail) {
                        Some(h) if !h.synchronizing => {
                            *literal_left = h.size;
                            tail.clear();
                        }
                        // A synchronizing literal's data never comes: the client
                        // waits for a `+` it will not get. The command is over.
                        _ => {
                            self.state = State::fresh();
                            return skip(pos);
                        }
                    }
                }
            }
        }
    }

    /// Frames one bare line of at most `max` octets (CRLF excluded), for the
    /// `DONE` that ends IDLE and for SASL responses during AUTHENTICATE.
    ///
    /// Only valid between commands (not while a command is half read).
    pub fn poll_line(&mut self, buf: &[u8], max: usize) -> LineFramed {
        let scanned = match &mut self.state {
            State::Command {
                line_start: 0,
                scanned,
                line_bytes: 0,
                literal_bytes: 0,
                awaiting: None,
            } => scanned,
            _ => {
                self.state = State::fresh();
                return self.poll_line(buf, max);
            }
        };
        let from = (*scanned).min(buf.len());
        match buf
            .get(from..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            Some(off) => {
                let lf = from + off;
                self.state = State::fresh();
                let line_len = if lf > 0 && buf.get(lf - 1) == Some(&b'\r') {
                    lf - 1
                } else {
                    lf
                };
                if line_len > max {
                    return LineFramed::TooLong { consumed: lf + 1 };
                }
                LineFramed::Line {
                    consumed: lf + 1,
                    line_len,
                }
            }
            None if buf.len() > max + 1 => {
                self.state = State::Discard {
                    literal_left: 0,
                    tail: Vec::new(),
                };
                LineFramed::TooLong {
                    consumed: buf.len(),
                }
            }
            None => {
                *scanned = buf.len();
                LineFramed::Incomplete
            }
        }
    }
}

/// True when `line` (as returned by [`Receiver::poll_line`]) is the `DONE` ending IDLE.
pub fn is_idle_done(line: &[u8]) -> bool {
    line.eq_ignore_ascii_case(b"DONE")
}
