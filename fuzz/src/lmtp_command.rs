//! LMTP command lines (`mailcove::lmtp::command::parse`) and the DATA reader
//! (`mailcove::lmtp::data::Unstuffer`).
//!
//! Input layout: byte 0 seeds the read sizes; up to the first LF is one
//! command line (its CR/LF removed); everything after it is a DATA stream.
//!
//! Invariants: the verb's case does not matter; paths respect
//! `LMTP_MAX_PATH`; `BDAT` and (plain) `RCPT` written back canonically
//! parse to the same command. The DATA reader gives the same consumed count, end and
//! message whether the stream arrives in one read or many, never keeps more
//! than its limit, and dot-stuffing its message again and reading that back
//! gives the message unchanged.

use mailcove::limits::LMTP_MAX_PATH;
use mailcove::lmtp::command::{Command, parse};
use mailcove::lmtp::data::Unstuffer;

const LIMIT: usize = 2000;

fn command(line: &[u8]) {
    let result = parse(line);
    let verb_len = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let mut upper = line.to_vec();
    if let Some(verb) = upper.get_mut(..verb_len) {
        verb.make_ascii_uppercase();
    }
    assert_eq!(parse(&upper), result, "verb case changed the result");
    match &result {
        Ok(Command::Mail { from, .. }) => assert!(from.len() <= LMTP_MAX_PATH),
        Ok(Command::Rcpt { to, .. }) => {
            assert!(to.len() <= LMTP_MAX_PATH);
            // Not round-tripped, both harmless as such addresses name no user:
            // a bare path may hold an unbalanced quote, which no bracketed
            // path can express (its `>` would be quoted); and a path left
            // starting with `@` after one source route was dropped loses
            // another route when parsed again.
            if !to.contains('"') && !to.contains('\\') && !to.starts_with('@') {
                let again = parse(format!("RCPT TO:<{to}>").as_bytes());
                assert_eq!(again.as_ref().ok(), result.as_ref().ok(), "RCPT round trip");
            }
        }
        Ok(Command::Bdat { size, last }) => {
            let text = format!("BDAT {size}{}", if *last { " LAST" } else { "" });
            assert_eq!(parse(text.as_bytes()).as_ref().ok(), result.as_ref().ok());
        }
        _ => {}
    }
}

/// Feeds `stream` in reads sized from `seed` (0: one read); returns what was
/// consumed, whether the end was seen, and the message.
fn unstuff(stream: &[u8], seed: u8) -> (usize, bool, Option<Vec<u8>>) {
    let mut u = Unstuffer::new(LIMIT);
    let mut rng = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut pos = 0;
    while pos < stream.len() && !u.done() {
        let n = if seed == 0 {
            stream.len()
        } else {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            1 + (rng % 61) as usize
        };
        let end = (pos + n).min(stream.len());
        let chunk = stream.get(pos..end).unwrap_or_default();
        let used = u.feed(chunk);
        assert!(used <= chunk.len());
        if !u.done() {
            assert_eq!(used, chunk.len(), "stopped before the end line");
        }
        pos += used;
    }
    let done = u.done();
    (pos, done, u.finish())
}

/// Dot-stuffs `message` (which ends with a line end) and appends the end line.
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let [seed, rest @ ..] = data else {
        return;
    };
    let (line, stream) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    command(line.strip_suffix(b"\r").unwrap_or(line));

    let whole = unstuff(stream, 0);
    if *seed != 0 {
        assert_eq!(
            unstuff(stream, *seed),
            whole,
            "DATA depends on how it was read"
        );
    }
    let (_, done, message) = whole;
    if let Some(m) = &message {
        assert!(m.len() <= LIMIT);
        if done && m.last().is_none_or(|&b| b == b'\n') {
            let again = stuff(m);
            let (used, done2, back) = unstuff(&again, 0);
            assert!(done2 && used == again.len());
            assert_eq!(back.as_ref(), Some(m), "stuffing round trip");
        }
    }
}
