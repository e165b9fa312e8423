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
    ///
    /// Lines before the window are only measured; from the window's start on, the chunk is
    /// copied in runs between bare LFs (found with `memchr`), so CRLF input is one copy and LF
    /// input one copy per line, and the part past the window's end is cut off afterwards.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while self.vpos < self.start && !rest.is_empty() {
            let (line, lf, tail) = match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let (line, tail) = rest.split_at(i);
                    (line, true, tail.get(1..).unwrap_or_default())
                }
                None => (rest, false, &[][..]),
            };
            let cr_before = line.last().map_or(self.prev_cr, |&b| b == b'\r');
            let add_cr = lf && !cr_before;
            let vlen = line.len() as u64 + u64::from(lf) + u64::from(add_cr);
            if self.vpos + vlen <= self.start {
                self.vpos += vlen;
            } else {
                // The window starts inside this line.
                self.emit(line, out);
                if add_cr {
                    self.emit(b"\r", out);
                }
                if lf {
                    self.emit(b"\n", out);
                }
            }
            self.prev_cr = !lf && cr_before;
            rest = tail;
        }
        if rest.is_empty() || self.is_done() {
            return;
        }
        let mark = out.len();
        self.prev_cr = convert(rest, self.prev_cr, out);
        let produced = (out.len() - mark) as u64;
        let room = self.end - self.vpos;
        if produced > room {
            out.truncate(mark + usize::try_from(room).unwrap_or(usize::MAX));
        }
        self.vpos += produced;
        if let Some(with) = self.nul
            && let Some(sent) = out.get_mut(mark..)
            && memchr::memchr(0, sent).is_some()
        {
            for b in sent.iter_mut().filter(|b| **b == 0) {
                *b = with;
            }
        }
    }

    /// True when `chunk` would come out exactly as it is: it lies inside the window, holds no
    /// bare LF and no NUL to replace. The state then advances as if it had been fed, and the
    /// caller sends the chunk's stored bytes itself (`sendfile`). False, with nothing changed,
    /// otherwise.
    pub fn pass_through(&mut self, chunk: &[u8]) -> bool {
        let n = chunk.len() as u64;
        if chunk.is_empty() || self.vpos < self.start || self.vpos.saturating_add(n) > self.end {
            return false;
        }
        // Bare LF first: a file with LF line ends fails at its first line, where the NUL test
        // would scan the whole chunk.
        if has_bare_lf(chunk, self.prev_cr) {
            return false;
        }
        if self.nul.is_some() && memchr::memchr(0, chunk).is_some() {
            return false;
        }
        self.vpos += n;
        self.prev_cr = chunk.last() == Some(&b'\r');
        true
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

/// Appends `input` to `out` with every bare LF made CRLF; `prev_cr` says whether the byte before
/// `input` was CR. Returns whether the last byte of `input` is CR.
fn convert(input: &[u8], prev_cr: bool, out: &mut Vec<u8>) -> bool {
    out.reserve(input.len());
    let mut from = 0;
    for i in memchr::memchr_iter(b'\n', input) {
        let cr_before = match i.checked_sub(1) {
            Some(p) => input.get(p) == Some(&b'\r'),
            None => prev_cr,
        };
        if !cr_before {
            out.extend_from_slice(input.get(from..i).unwrap_or_default());
            out.extend_from_slice(b"\r\n");
            from = i + 1;
        }
    }
    out.extend_from_slice(input.get(from..).unwrap_or_default());
    match input.last() {
        Some(&b) => b == b'\r',
        None => prev_cr,
    }
}

/// True when `input` holds an LF not preceded by CR; `prev_cr` says whether the byte before
/// `input` was CR.
pub fn has_bare_lf(input: &[u8], prev_cr: bool) -> bool {
    memchr::memchr_iter(b'\n', input).any(|i| match i.checked_sub(1) {
        Some(p) => input.get(p) != Some(&b'\r'),
        None => !prev_cr,
    })
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
    fn passing_chunks_through_gives_what_converting_them_gives() {
        let inputs: [&[u8]; 4] = [
            b"a\r\nb\r\nc\r\n",
            b"a\nb\r\nc\r\r\n\n\rd\n",
            b"crlf\r\nwith nul \0 here\r\n",
            b"ends in cr\r",
        ];
        for input in inputs {
            for window in [None, Some((3, 7)), Some((0, 1000))] {
                for nul in [false, true] {
                    let make = || {
                        let c = match window {
                            Some((s, l)) => LfToCrlf::with_window(s, l),
                            None => LfToCrlf::new(),
                        };
                        if nul { c.replace_nul(0x80) } else { c }
                    };
                    let mut want = Vec::new();
                    make().feed(input, &mut want);
                    for chunk in 1..input.len() + 1 {
                        let mut c = make();
                        let mut got = Vec::new();
                        for piece in input.chunks(chunk) {
                            if c.pass_through(piece) {
                                got.extend_from_slice(piece);
                            } else {
                                c.feed(piece, &mut got);
                            }
                        }
                        assert_eq!(
                            got, want,
                            "{input:?} window {window:?} nul {nul} chunk {chunk}"
                        );
                    }
                }
            }
        }
        // Never a chunk that needs converting, and then nothing changes.
        let mut c = LfToCrlf::new().replace_nul(0x80);
        assert!(!c.pass_through(b"a\nb"));
        assert!(!c.pass_through(b"a\0b"));
        assert_eq!(c.virtual_pos(), 0);
        assert!(c.pass_through(b"a\r\nb"));
        assert_eq!(c.virtual_pos(), 4);
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

    /// The plain definition: every LF not preceded by CR gains one, NUL becomes 0x80.
    fn reference(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0u8;
        for &b in input {
            if b == b'\n' && prev != b'\r' {
                out.push(b'\r');
            }
            out.push(if b == 0 { 0x80 } else { b });
            prev = b;
        }
        out
    }

    #[test]
    fn random_inputs_windows_and_chunkings_match_the_definition() {
        // A small xorshift generator: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"\n\r\0.ab";
        for round in 0..300 {
            let len = (next() % 200) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let expected = reference(&input);
            let total = expected.len() as u64;
            let start = next() % (total + 3);
            let wlen = next() % (total + 3);
            let (ws, wl) = partial_window(total, start, wlen);
            let chunk = 1 + (next() % 17) as usize;
            let mut c = LfToCrlf::with_window(ws, wl).replace_nul(0x80);
            let mut out = Vec::new();
            for piece in input.chunks(chunk) {
                c.feed(piece, &mut out);
            }
            let want = &expected[ws as usize..(ws + wl) as usize];
            assert_eq!(
                out, want,
                "round {round}: {input:?} window {ws}+{wl} chunk {chunk}"
            );
            assert_eq!(virtual_len(&input), total);
        }
    }

    #[test]
    fn partial_rules() {
        assert_eq!(partial_window(10, 0, 4), (0, 4));
        assert_eq!(partial_window(10, 8, 4), (8, 2));
        assert_eq!(partial_window(10, 10, 4), (10, 0));
        assert_eq!(partial_window(10, 99, 4), (10, 0));
    }
}
