//! Receiver (framing) behaviour: splits, literals of both kinds, limits, resynchronisation.

use mailcove::imap::proto::parse::ParseErrorKind;
use mailcove::imap::proto::receive::{
    FrameError, Framed, LineFramed, Receiver, ReceiverLimits, StreamRest,
};
use mailcove::imap::proto::types::{Command, CommandBody, Tag};

fn limits() -> ReceiverLimits {
    ReceiverLimits {
        max_line: 1000,
        max_literal: 10_000,
        literal_plus: true,
    }
}

/// A minimal session loop: feeds `chunks` one after another into a buffer,
/// polls, drains as told. Returns every event with the continuation requests.
#[derive(Debug, PartialEq)]
enum Event {
    Continue(u64),
    Command(Result<Command, ParseErrorKind>),
    Error(FrameError),
}

fn run(limits: ReceiverLimits, chunks: &[&[u8]]) -> (Vec<Event>, Vec<u8>) {
    let mut rx = Receiver::new(limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match rx.poll(&buf) {
                Framed::Incomplete => break,
                Framed::Continue { literal_len } => events.push(Event::Continue(literal_len)),
                Framed::Command { consumed, result } => {
                    buf.drain(..consumed);
                    events.push(Event::Command(result.map_err(|e| e.kind)));
                }
                Framed::Error { consumed, error } => {
                    buf.drain(..consumed);
                    events.push(Event::Error(error));
                }
                Framed::Skip { consumed } => {
                    assert!(consumed > 0, "Skip must consume");
                    buf.drain(..consumed);
                }
                Framed::Stream { .. } | Framed::LiteralData { .. } | Framed::StreamEnd { .. } => {
                    panic!("only a streaming receiver streams literals")
                }
            }
        }
    }
    (events, buf)
}

/// What a streaming receiver reported, with literal data gathered per streamed literal.
#[derive(Debug, PartialEq)]
enum StreamEvent {
    Continue(u64),
    Command(Result<CommandBody, ParseErrorKind>),
    Error(FrameError),
    Stream(Result<CommandBody, ParseErrorKind>, u64, bool),
    Data(Vec<u8>),
    End(StreamRest),
}

/// Like [`run`] with [`Receiver::streaming`]; every streamed literal is accepted. The buffer
/// never holds more than `2 * max_line` bytes plus the chunk just fed.
fn run_streaming(limits: ReceiverLimits, chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut rx = Receiver::streaming(limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let mut data = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match rx.poll(&buf) {
                Framed::Incomplete => break,
                Framed::Continue { literal_len } => events.push(StreamEvent::Continue(literal_len)),
                Framed::Command { consumed, result } => {
                    buf.drain(..consumed);
                    events.push(StreamEvent::Command(
                        result.map(|c| c.body).map_err(|e| e.kind),
                    ));
                }
                Framed::Error { consumed, error } => {
                    buf.drain(..consumed);
                    events.push(StreamEvent::Error(error));
                }
                Framed::Skip { consumed } => {
                    buf.drain(..consumed);
                }
                Framed::Stream {
                    consumed,
                    head,
                    literal_len,
                    synchronizing,
                } => {
                    buf.drain(..consumed);
                    events.push(StreamEvent::Stream(
                        head.map(|c| c.body).map_err(|e| e.kind),
                        literal_len,
                        synchronizing,
                    ));
                }
                Framed::LiteralData { available, left } => {
                    assert!(available > 0 && available <= buf.len());
                    data.extend(buf.drain(..available));
                    rx.take_literal(available);
                    if left == 0 {
                        events.push(StreamEvent::Data(std::mem::take(&mut data)));
                    }
                }
                Framed::StreamEnd { consumed, rest } => {
                    buf.drain(..consumed);
                    events.push(StreamEvent::End(rest));
                }
            }
            assert!(buf.len() <= 2 * limits.max_line + chunk.len());
        }
    }
    events
}

#[test]
fn streaming_receiver_streams_append_literals_at_every_split() {
    let input: &[u8] = b"a APPEND INBOX (\\Seen) {5}\r\nhello\r\nb NOOP\r\n\
c APPEND INBOX {3+}\r\nabc {2+}\r\nxy\r\nd NOOP\r\n\
e APPEND {5}\r\nINBOX {4}\r\nwxyz\r\n\
f APPEND INBOX ((x) {2+}\r\nhi\r\n\
g SEARCH TEXT {1001}\r\nh NOOP\r\n";
    let whole = run_streaming(limits(), &[input]);
    let appended = |flags: Vec<mailcove::imap::proto::types::Flag>, mailbox: &str| {
        Ok(CommandBody::Append {
            mailbox: mailcove::imap::proto::types::Mailbox::new(mailbox.as_bytes().to_vec()),
            messages: vec![mailcove::imap::proto::types::AppendMessage {
                flags,
                date: None,
                data: Vec::new(),
                binary: false,
                utf8: false,
                catenate: None,
            }],
        })
    };
    assert_eq!(
        whole[0],
        StreamEvent::Stream(
            appended(vec![mailcove::imap::proto::types::Flag::Seen], "INBOX"),
            5,
            true
        )
    );
    assert_eq!(whole[1], StreamEvent::Data(b"hello".to_vec()));
    assert_eq!(whole[2], StreamEvent::End(StreamRest::End));
    assert_eq!(whole[3], StreamEvent::Command(Ok(CommandBody::Noop)));
    assert_eq!(
        whole[4],
        StreamEvent::Stream(appended(Vec::new(), "INBOX"), 3, false)
    );
    assert_eq!(whole[5], StreamEvent::Data(b"abc".to_vec()));
    // MULTIAPPEND: the second literal streams too, after the text between them.
    assert_eq!(
        whole[6],
        StreamEvent::End(StreamRest::Next {
            header_at: 1,
            literal_len: 2,
            synchronizing: false
        })
    );
    assert_eq!(whole[7], StreamEvent::Data(b"xy".to_vec()));
    assert_eq!(whole[8], StreamEvent::End(StreamRest::End));
    assert_eq!(whole[9], StreamEvent::Command(Ok(CommandBody::Noop)));
    // A literal mailbox name is an ordinary literal; the message after it streams.
    assert_eq!(whole[10], StreamEvent::Continue(5));
    assert_eq!(
        whole[11],
        StreamEvent::Stream(appended(Vec::new(), "INBOX"), 4, true)
    );
    assert_eq!(whole[12], StreamEvent::Data(b"wxyz".to_vec()));
    assert_eq!(whole[13], StreamEvent::End(StreamRest::End));
    // A bad APPEND still streams (so its data is never read as commands); the head says why.
    assert!(matches!(&whole[14], StreamEvent::Stream(Err(_), 2, false)));
    assert_eq!(whole[15], StreamEvent::Data(b"hi".to_vec()));
    assert_eq!(whole[16], StreamEvent::End(StreamRest::End));
    // Other literals are held to the line limit.
    assert!(matches!(
        &whole[17],
        StreamEvent::Error(FrameError::LiteralTooBig { size: 1001, .. })
    ));
    assert_eq!(whole[18], StreamEvent::Command(Ok(CommandBody::Noop)));
    assert_eq!(whole.len(), 19);
    for split in 1..input.len() {
        let chunks: Vec<&[u8]> = input.chunks(split).collect();
        assert_eq!(run_streaming(limits(), &chunks), whole, "split {split}");
    }
}

fn tag(s: &str) -> Option<Tag> {
    Tag::new(s.as_bytes())
}

fn cmd(t: &str, body: CommandBody) -> Event {
    Event::Command(Ok(Command {
        tag: tag(t).expect("valid tag"),
        body,
    }))
}

#[test]
fn every_split_gives_the_same_result() {
    let stream: &[u8] =
        b"a1 NOOP\r\na2 LOGIN {4}\r\nfred {3+}\r\nxyz\r\na3 SELECT inbox\r\nbad\r\na4 LOGOUT\r\n";
    let (whole, rest) = run(limits(), &[stream]);
    assert!(rest.is_empty());
    assert_eq!(whole.len(), 6, "{whole:?}");
    assert_eq!(whole[1], Event::Continue(4));
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let (events, rest) = run(limits(), &[a, b]);
        assert_eq!(events, whole, "split at {cut}");
        assert!(rest.is_empty());
    }
    // One byte at a time.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let (events, _) = run(limits(), &bytes);
    assert_eq!(events, whole);
}

#[test]
fn synchronizing_literal_accepted() {
    let (ev, _) = run(limits(), &[b"A001 LOGIN {11}\r\n"]);
    assert_eq!(ev, vec![Event::Continue(11)]);
    let (ev, rest) = run(
        limits(),
        &[
            b"A001 LOGIN {11}\r\n",
            b"FRED FOOBAR {7}\r\n",
            b"fat man\r\n",
        ],
    );
    assert!(rest.is_empty());
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0], Event::Continue(11));
    assert_eq!(ev[1], Event::Continue(7));
    match &ev[2] {
        Event::Command(Ok(Command {
            body: CommandBody::Login { username, password },
            ..
        })) => {
            assert_eq!(username, b"FRED FOOBAR");
            assert_eq!(password.expose(), b"fat man");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn continue_is_reported_once() {
    let mut rx = Receiver::new(limits());
    let buf = b"a APPEND INBOX {5}\r\n";
    assert_eq!(rx.poll(buf), Framed::Continue { literal_len: 5 });
    assert_eq!(rx.poll(buf), Framed::Incomplete);
    let buf = b"a APPEND INBOX {5}\r\nhel";
    assert_eq!(rx.poll(buf), Framed::Incomplete);
    let buf = b"a APPEND INBOX {5}\r\nhello\r\n";
    assert!(matches!(
        rx.poll(buf),
        Framed::Command {
            consumed: 27,
            result: Ok(_)
        }
    ));
}

#[test]
fn synchronizing_literal_too_big_is_refused_without_continue() {
    let (ev, rest) = run(limits(), &[b"a1 APPEND INBOX {10001}\r\n", b"a2 NOOP\r\n"]);
    assert!(rest.is_empty());
    assert_eq!(
        ev,
        vec![
            Event::Error(FrameError::LiteralTooBig {
                tag: tag("a1"),
                size: 10_001,
                synchronizing: true
            }),
            cmd("a2", CommandBody::Noop),
        ]
    );
    // A size that does not even fit in 64 bits saturates and is refused too.
    let (ev, _) = run(
        limits(),
        &[b"a1 APPEND INBOX {99999999999999999999999}\r\na2 NOOP\r\n"],
    );
    assert!(matches!(
        ev[0],
        Event::Error(FrameError::LiteralTooBig { size: u64::MAX, .. })
    ));
    assert_eq!(ev[1], cmd("a2", CommandBody::Noop));
}

#[test]
fn non_synchronizing_literal_too_big_is_discarded() {
    // The literal's bytes look like a command; they must never run.
    let mut data = b"x LOGOUT\r\n".repeat(1001);
    data.truncate(10_001);
    let chunks: Vec<&[u8]> = vec![
        b"a1 APPEND INBOX {10001+}\r\n",
        &data[..5000],
        &data[5000..],
        b" more {3+}\r\nabc trailing\r\n",
        b"a2 NOOP\r\n",
    ];
    let (ev, rest) = run(limits(), &chunks);
    assert!(rest.is_empty());
    assert_eq!(
        ev,
        vec![
            Event::Error(FrameError::LiteralTooBig {
                tag: tag("a1"),
                size: 10_001,
                synchronizing: false
            }),
            cmd("a2", CommandBody::Noop),
        ]
    );
}

#[test]
fn literal_minus_caps_non_synchronizing_at_4096() {
    let lim = ReceiverLimits {
        literal_plus: false,
        ..limits()
    };
    let data = vec![b'a'; 4097];
    let (ev, rest) = run(
        lim,
        &[b"a1 LOGIN {4097+}\r\n", &data, b" pw\r\na2 NOOP\r\n"],
    );
    assert!(rest.is_empty());
    assert_eq!(
        ev,
        vec![
            Event::Error(FrameError::LiteralTooBig {
                tag: tag("a1"),
                size: 4097,
                synchronizing: false
            }),
            cmd("a2", CommandBody::Noop),
        ]
    );
    // 4096 is fine, and a synchronizing 4097 is fine under LITERAL-.
    let data = vec![b'a'; 4096];
    let (ev, _) = run(lim, &[b"a1 LOGIN {4096+}\r\n", &data, b" pw\r\n"]);
    assert!(matches!(ev[0], Event::Command(Ok(_))));
    let data = vec![b'a'; 4097];
    let (ev, _) = run(lim, &[b"a1 LOGIN {4097}\r\n", &data, b" pw\r\n"]);
    assert_eq!(ev[0], Event::Continue(4097));
    assert!(matches!(ev[1], Event::Command(Ok(_))));
}

#[test]
fn cumulative_literals_are_limited() {
    let data = vec![b'a'; 6000];
    let (ev, rest) = run(
        limits(),
        &[
            b"a1 LOGIN {6000+}\r\n",
            &data,
            b" {6000+}\r\n",
            &data,
            b"\r\na2 NOOP\r\n",
        ],
    );
    assert!(rest.is_empty());
    assert!(matches!(
        ev[0],
        Event::Error(FrameError::LiteralTooBig { size: 6000, .. })
    ));
    assert_eq!(ev[1], cmd("a2", CommandBody::Noop));
    assert_eq!(ev.len(), 2);
}

#[test]
fn announced_literal_not_yet_sent_is_incomplete() {
    let mut rx = Receiver::new(limits());
    assert_eq!(rx.poll(b"a1 LOGIN {5+}\r\nfr"), Framed::Incomplete);
    assert_eq!(rx.poll(b"a1 LOGIN {5+}\r\nfred"), Framed::Incomplete);
    assert_eq!(rx.poll(b"a1 LOGIN {5+}\r\nfred "), Framed::Incomplete);
    assert!(matches!(
        rx.poll(b"a1 LOGIN {5+}\r\nfred  x\r\n"),
        Framed::Command {
            consumed: 24,
            result: Ok(_)
        }
    ));
}

#[test]
fn line_too_long_resynchronises() {
    let long = vec![b'x'; 3000];
    let (ev, rest) = run(
        limits(),
        &[b"t1 LOGIN ", &long, &long, b" y\r\nt2 NOOP\r\n"],
    );
    assert!(rest.is_empty());
    assert_eq!(
        ev,
        vec![
            Event::Error(FrameError::LineTooLong { tag: tag("t1") }),
            cmd("t2", CommandBody::Noop),
        ]
    );
    // Same when the whole line arrives at once, and when it announces a
    // non-synchronizing literal that must be skipped too.
    let mut line = b"t1 LOGIN ".to_vec();
    line.extend_from_slice(&long);
    line.extend_from_slice(b" {10+}\r\nt9 LOGOUT\r\nt2 NOOP\r\n");
    let (ev, _) = run(limits(), &[&line]);
    assert_eq!(
        ev,
        vec![
            Event::Error(FrameError::LineTooLong { tag: tag("t1") }),
            cmd("t2", CommandBody::Noop),
        ]
    );
    // No valid tag: the error is untagged.
    let (ev, _) = run(limits(), &[&long, b"\r\n"]);
    assert_eq!(
        ev,
        vec![Event::Error(FrameError::LineTooLong { tag: None })]
    );
}

/// Found by the `imap_command` fuzz target: a too-long line ending in a
/// literal header longer than the receiver's remembered tail (leading zeros,
/// or more digits than a u64) was only recognised when the line arrived in one
/// read; in pieces, the literal's data was framed as commands.
#[test]
fn long_literal_header_after_too_long_line_is_split_independent() {
    let long = vec![b'x'; 1500];
    let headers: [&[u8]; 3] = [
        b" {0000000000000000000000000000000000000000000010+}\r\n",
        b" {88888888888888888888888888888888888888888888888888+}\r\n",
        b" {12345678901234567890+}\r\n",
    ];
    for header in headers {
        let mut stream = b"t1 LOGIN ".to_vec();
        stream.extend_from_slice(&long);
        stream.extend_from_slice(header);
        let data_start = stream.len();
        stream.extend_from_slice(b"t9 LOGOUT\r\nt2 NOOP\r\n");
        let whole = run(limits(), &[&stream]);
        for split in [1000, 1450, 1480, data_start - 5, data_start - 1] {
            let (a, b) = stream.split_at(split);
            let mut pieces: Vec<&[u8]> = vec![a];
            pieces.extend(b.chunks(7));
            assert_eq!(run(limits(), &pieces), whole, "split at {split}");
        }
        // Ten octets of data: `t9 LOGOUT\r` is skipped, the lone LF ends
        // nothing, `t2 NOOP` runs. Saturated sizes swallow everything.
        let expect_noop = header.starts_with(b" {0");
        assert_eq!(whole.0.len(), 1 + usize::from(expect_noop));
        assert_eq!(
            whole.0.first(),
            Some(&Event::Error(FrameError::LineTooLong { tag: tag("t1") }))
        );
    }
}

#[test]
fn parse_errors_keep_framing() {
    let (ev, _) = run(
        limits(),
        &[b"a1 FOO\r\n* NOOP\r\n\r\na2 SELECT\r\na3 NOOP\r\n"],
    );
    assert_eq!(
        ev,
        vec![
            Event::Command(Err(ParseErrorKind::UnknownCommand)),
            Event::Command(Err(ParseErrorKind::NoTag)),
            Event::Command(Err(ParseErrorKind::NoTag)),
            Event::Command(Err(ParseErrorKind::Syntax)),
            cmd("a3", CommandBody::Noop),
        ]
    );
}

#[test]
fn bare_lines_for_idle_and_sasl() {
    let mut rx = Receiver::new(limits());
    assert_eq!(rx.poll_line(b"DO", 100), LineFramed::Incomplete);
    let buf = b"DONE\r\na1 NOOP\r\n";
    assert_eq!(
        rx.poll_line(buf, 100),
        LineFramed::Line {
            consumed: 6,
            line_len: 4
        }
    );
    assert!(mailcove::imap::proto::receive::is_idle_done(&buf[..4]));
    assert!(matches!(
        rx.poll(&buf[6..]),
        Framed::Command {
            consumed: 9,
            result: Ok(_)
        }
    ));
    // Too long: reported, then the rest of the line is skipped.
    let mut rx = Receiver::new(limits());
    assert_eq!(
        rx.poll_line(b"abcdefgh", 4),
        LineFramed::TooLong { consumed: 8 }
    );
    assert_eq!(rx.poll(b"ijk\r\na1 NOOP\r\n"), Framed::Skip { consumed: 5 });
    assert!(matches!(
        rx.poll(b"a1 NOOP\r\n"),
        Framed::Command {
            consumed: 9,
            result: Ok(_)
        }
    ));
}

/// RFC 3516 / RFC 4466 / RFC 7888 6: `~{n}` and `~{n+}` frame like `{n}` and `{n+}`, for any
/// command; only a literal8 may carry NUL (RFC 3501 `CHAR8`), and a NUL anywhere else is BAD.
#[test]
fn literal8_framing_and_nul_only_inside_literal8() {
    // Non-streaming receiver: literal8 outside APPEND is framed, then the parser refuses it
    // where the grammar has no literal8 (SEARCH TEXT takes an astring).
    let input: &[u8] = b"a SEARCH TEXT ~{3+}\r\na\0b\r\nb SEARCH TEXT ~{2}\r\nxy\r\n\
c SEARCH TEXT {3+}\r\na\0b\r\nd SEARCH TEXT \"a\0b\"\r\ne NO\0OP\r\nf NOOP\r\n";
    let (whole, rest) = run(limits(), &[input]);
    assert!(rest.is_empty());
    assert!(matches!(&whole[0], Event::Command(Err(_))), "{whole:?}");
    assert_eq!(whole[1], Event::Continue(2));
    assert!(matches!(&whole[2], Event::Command(Err(_))), "{whole:?}");
    // NUL in a plain literal, a quoted string or a bare line: BAD, and framing stays in step.
    assert!(matches!(&whole[3], Event::Command(Err(_))), "{whole:?}");
    assert!(matches!(&whole[4], Event::Command(Err(_))), "{whole:?}");
    assert!(matches!(&whole[5], Event::Command(Err(_))), "{whole:?}");
    assert_eq!(whole[6], cmd("f", CommandBody::Noop));
    assert_eq!(whole.len(), 7);
    for split in 1..input.len() {
        let chunks: Vec<&[u8]> = input.chunks(split).collect();
        assert_eq!(run(limits(), &chunks).0, whole, "split {split}");
    }

    // Streaming receiver: APPEND's literal8 (sync and non-sync) streams and may hold NUL; a plain
    // literal holding NUL streams too (its data must not run as commands), and APPEND, which knows
    // the literal's kind, answers BAD (tests/imap_append.rs, tests/hostile.rs).
    let input: &[u8] = b"a APPEND INBOX ~{3}\r\na\0b\r\nb APPEND INBOX ~{3+}\r\nc\0d\r\n\
c APPEND INBOX {3+}\r\ne\0f\r\nd APPEND INBOX {3+}\r\nghi\r\ne NOOP\r\n";
    let whole = run_streaming(limits(), &[input]);
    let head = |binary: bool| {
        Ok(CommandBody::Append {
            mailbox: mailcove::imap::proto::types::Mailbox::new(b"INBOX".to_vec()),
            messages: vec![mailcove::imap::proto::types::AppendMessage {
                flags: Vec::new(),
                date: None,
                data: Vec::new(),
                binary,
                utf8: false,
                catenate: None,
            }],
        })
    };
    assert_eq!(
        whole,
        vec![
            StreamEvent::Stream(head(true), 3, true),
            StreamEvent::Data(b"a\0b".to_vec()),
            StreamEvent::End(StreamRest::End),
            StreamEvent::Stream(head(true), 3, false),
            StreamEvent::Data(b"c\0d".to_vec()),
            StreamEvent::End(StreamRest::End),
            StreamEvent::Stream(head(false), 3, false),
            StreamEvent::Data(b"e\0f".to_vec()),
            StreamEvent::End(StreamRest::End),
            StreamEvent::Stream(head(false), 3, false),
            StreamEvent::Data(b"ghi".to_vec()),
            StreamEvent::End(StreamRest::End),
            StreamEvent::Command(Ok(CommandBody::Noop)),
        ]
    );
}

/// UTF8 (RFC 6855) and CATENATE (RFC 4469) put a streamed literal inside parentheses: the head is
/// still recognised, the text after each literal is handed over (`Next` before another literal,
/// `Junk` for other text to the line's end) and parses with the APPEND grammar
/// (`parse_append_tail`), at every split.
#[test]
fn streaming_receiver_frames_utf8_and_catenate_appends() {
    use mailcove::imap::proto::parse::{AppendAt, parse_append_tail};
    use mailcove::imap::proto::types::CatPart;
    let input: &[u8] = b"a APPEND INBOX UTF8 (~{3+}\r\nabc)\r\n\
b APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" TEXT {2+}\r\nxy URL \";UID=2\" TEXT ~{1+}\r\nz) {1+}\r\nw\r\n\
c NOOP\r\n";
    let whole = run_streaming(limits(), &[input]);
    let StreamEvent::Stream(Ok(CommandBody::Append { messages, .. }), 3, false) = &whole[0] else {
        panic!("{:?}", whole[0]);
    };
    assert!(messages.len() == 1 && messages[0].utf8 && messages[0].binary);
    assert_eq!(whole[1], StreamEvent::Data(b"abc".to_vec()));
    assert_eq!(whole[2], StreamEvent::End(StreamRest::Junk));
    let tail = parse_append_tail(AppendAt::Utf8Message, b")\r\n", None).expect("tail");
    assert!(tail.message_done && tail.messages.is_empty() && tail.more_parts.is_empty());
    let StreamEvent::Stream(Ok(CommandBody::Append { messages, .. }), 2, false) = &whole[3] else {
        panic!("{:?}", whole[3]);
    };
    let parts = messages[0].catenate.as_ref().expect("CATENATE");
    assert_eq!(parts[0], CatPart::Url(b"/INBOX/;UID=1".to_vec()));
    assert_eq!(whole[4], StreamEvent::Data(b"xy".to_vec()));
    assert_eq!(
        whole[5],
        StreamEvent::End(StreamRest::Next {
            header_at: 19,
            literal_len: 1,
            synchronizing: false
        })
    );
    // The text between: one more URL part, then the TEXT literal8 that streams next.
    let tail = parse_append_tail(
        AppendAt::CatPart,
        b" URL \";UID=2\" TEXT ~{1+}\r\n",
        Some(19),
    )
    .expect("tail");
    assert!(!tail.message_done && tail.messages.is_empty());
    assert_eq!(tail.more_parts.len(), 2);
    assert_eq!(tail.more_parts[0], CatPart::Url(b";UID=2".to_vec()));
    assert_eq!(whole[6], StreamEvent::Data(b"z".to_vec()));
    assert!(matches!(
        whole[7],
        StreamEvent::End(StreamRest::Next { literal_len: 1, .. })
    ));
    // `)` closes the CATENATE and a plain message follows (MULTIAPPEND).
    let tail = parse_append_tail(AppendAt::CatPart, b") {1+}\r\n", Some(2)).expect("tail");
    assert!(tail.message_done && tail.messages.len() == 1 && tail.more_parts.is_empty());
    assert_eq!(whole[8], StreamEvent::Data(b"w".to_vec()));
    assert_eq!(whole[9], StreamEvent::End(StreamRest::End));
    assert_eq!(whole[10], StreamEvent::Command(Ok(CommandBody::Noop)));
    assert_eq!(whole.len(), 11);
    // Text that is no APPEND continuation is a syntax error.
    assert!(parse_append_tail(AppendAt::Message, b")\r\n", None).is_err());
    assert!(parse_append_tail(AppendAt::CatPart, b" URL\r\n", None).is_err());
    for split in 1..input.len() {
        let chunks: Vec<&[u8]> = input.chunks(split).collect();
        assert_eq!(run_streaming(limits(), &chunks), whole, "split {split}");
    }
}
