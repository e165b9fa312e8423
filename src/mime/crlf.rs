//! Streaming bare-LF → CRLF conversion with an optional window in virtual
//! (converted) space, for FETCH `BODY[...]<origin.count>` and POP3 RETR.

/// Converts physical bytes (bare LF or CRLF line ends) into the bytes sent to
/// a client, chunk by chunk. Only virtual bytes inside the window are emitted,
/// so a partial FETCH never converts more than it must keep.
#[derive(Debug, Clone)]
pub struct LfToCrlf {
    /// The previous physical byte was CR (carried across chunks).
    prev_cr: bool,
    /// Virtual bytes produced so far (emitted or skipped).
    vpos: u64,
    start: u64,
    end: u64,
    /// Byte sent in place of NUL, if any.
    nul: Option<u8>,
}

impl Default for LfToCrlf {
    fn default() -> Self {
        Self::new()
    }
}

impl LfToCrlf {
    /// A converter that emits everything.
    pub fn new() -> Self {
        LfToCrlf {
            prev_cr: false,
            vpos: 0,
            start: 0,
            end: u64::MAX,
            nul: None,
        }
    }

    /// A converter that emits only virtual bytes `[start, start + len)`.
    pub fn with_window(start: u64, len: u64) -> Self {
        LfToCrlf {
            prev_cr: false,
            vpos: 0,
            start,
            end: start.saturating_add(len),
            nul: None,
        }
    }

    /// Sends `with` instead of every NUL byte (IMAP: 0x80, as Dovecot, since
    /// literals may not contain NUL). Sizes do not change.
    pub fn replace_nul(mut self, with: u8) -> Self {
        self.nul = Some(with);
        self
    }

    /// True once the whole window has been produced; the caller may stop
    /// reading.
    pub fn is_done(&self) -> bool {
        self.vpos >= self.end
    }

    /// Virtual bytes produced so far, including skipped ones.
    pub fn virtual_pos(&self) -> u64 {
        self.vpos
    }

    /// Converts one chunk, appending the windowed output to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while !rest.is_empty() && !self.is_done() {
            match rest.iter().position(|&b| b == b'\n') {
                None => {
                    self.emit(rest, out);
                    self.prev_cr = rest.last() == Some(&b'\r');
                    return;
                }
                Some(i) => {
                    let (line, tail) = rest.split_at(i);
                    let cr_before = match line.last() {
                        Some(&b) => b == b'\r',
                        None => self.prev_cr,
                    };
                    self.emit(line, out);
                    if !cr_before {
                        self.emit(b"\r", out);
                    }
                    self.emit(b"\n", out);
                    self.prev_cr = false;
                    rest = tail.get(1..).unwrap_or(&[]);
                }
            }
        }
    }

    fn emit(&mut self, s: &[u8], out: &mut Vec<u8>) {
        let n = s.len() as u64;
        let from = self.vpos;
        let to = from + n;
        let a = self.start.max(from);
        let b = self.end.min(to);
        if a < b
            && let Some(part) = s.get((a - from) as usize..(b - from) as usize)
        {
            match self.nul {
                Some(with) if part.contains(&0) => {
                    out.extend(part.iter().map(|&c| if c == 0 { with } else { c }));
                }
                _ => out.extend_from_slice(part),
            }
        }
        self.vpos = to;
    }
}

/// Length of `s` once every bare LF is sent as CRLF.
pub fn virtual_len(s: &[u8]) -> u64 {
    super::parse::measure(s).virtual_len
}

/// Applies a FETCH partial `<origin.count>` (RFC 3501 section 6.4.5) to a
/// section of `total` virtual bytes: returns `(start, len)` in virtual space.
/// An origin past the end gives an empty string.
pub fn partial_window(total: u64, origin: u64, count: u64) -> (u64, u64) {
    if origin >= total {
        return (total, 0);
    }
    (origin, count.min(total - origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert_split(input: &[u8], at: usize, window: Option<(u64, u64)>) -> Vec<u8> {
        let mut c = match window {
            Some((s, l)) => LfToCrlf::with_window(s, l),
            None => LfToCrlf::new(),
        };
        let mut out = Vec::new();
        let (a, b) = input.split_at(at);
        c.feed(a, &mut out);
        c.feed(b, &mut out);
        out
    }

    #[test]
    fn every_split_point_gives_the_same_output() {
        let input = b"a\nb\r\nc\r\r\n\n\rd\n";
        let expected = b"a\r\nb\r\nc\r\r\n\r\n\rd\r\n".to_vec();
        assert_eq!(virtual_len(input), expected.len() as u64);
        for at in 0..=input.len() {
            assert_eq!(convert_split(input, at, None), expected, "split at {at}");
            for s in 0..=expected.len() as u64 {
                for l in 0..=4u64 {
                    let e = (s as usize).min(expected.len());
                    let end = (e + l as usize).min(expected.len());
                    assert_eq!(
                        convert_split(input, at, Some((s, l))),
                        expected[e..end].to_vec()
                    );
                }
            }
        }
    }

    #[test]
    fn nul_replacement_keeps_sizes() {
        let mut out = Vec::new();
        LfToCrlf::new().replace_nul(0x80).feed(b"a\0b\n", &mut out);
        assert_eq!(out, b"a\x80b\r\n");
        let mut out = Vec::new();
        LfToCrlf::with_window(1, 2)
            .replace_nul(0x80)
            .feed(b"a\0b\n", &mut out);
        assert_eq!(out, b"\x80b");
    }

    #[test]
    fn partial_rules() {
        assert_eq!(partial_window(10, 0, 4), (0, 4));
        assert_eq!(partial_window(10, 8, 4), (8, 2));
        assert_eq!(partial_window(10, 10, 4), (10, 0));
        assert_eq!(partial_window(10, 99, 4), (10, 0));
    }
}
