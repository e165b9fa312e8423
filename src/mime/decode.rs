//! Content-Transfer-Encoding decoding for FETCH BINARY (RFC 3516): base64 (RFC 2045 6.8),
//! quoted-printable (RFC 2045 6.7) and the identity encodings, fed chunk by chunk so a 50 MiB
//! attachment is never held whole.
//!
//! Invalid data is an error, not silently repaired: a client asking for BINARY gets the exact
//! decoded octets or a failure (`NO [PARSE]`), and can still fetch `BODY[...]` and decode it
//! itself (RFC 3516 section 6). This is Dovecot's behaviour (its base64 and QP input streams fail
//! with EINVAL, which `imap` answers with `NO [PARSE] Invalid data in MIME part`), although RFC
//! 2045 6.8 tells decoders to ignore characters outside the base64 alphabet: Dovecot is the
//! server our clients know, and a decoder that skips garbage returns data that is not what was
//! sent. What is accepted, as in Dovecot:
//! - base64: whitespace (SP, TAB, CR, LF) anywhere; after the `=` padding only whitespace; the
//!   data must end on a whole 4-character quantum;
//! - quoted-printable: `=XX` with upper- or lowercase hex, soft line breaks `=` [whitespace]
//!   [CR]LF, hard line breaks (CRLF or a bare LF, always decoded to CRLF, RFC 3516 section 6),
//!   trailing whitespace of a line dropped (RFC 2045 6.7 rule 3).
//!
//! Deviations from Dovecot, each because Dovecot would refuse a valid message:
//! - a quoted-printable body ending in `=` (optionally followed by whitespace) is a soft line
//!   break at the end of the data, not an error: the line break before a multipart boundary
//!   belongs to the boundary (RFC 2046 5.1.1), so the body of a part whose encoder ended it with a
//!   soft break ends in `=`;
//! - a run of whitespace followed by text inside a line is kept up to
//!   [`QP_MAX_WHITESPACE_RUN`] octets (the longest legal line, RFC 5322 2.1.1) where Dovecot
//!   stops at 76.

use super::LfToCrlf;
use crate::limits::QP_MAX_WHITESPACE_RUN;

/// How a part's body is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cte {
    /// 7bit, 8bit, binary (or no Content-Transfer-Encoding): the octets as they are, with bare
    /// LF sent as CRLF.
    Identity,
    /// base64
    Base64,
    /// quoted-printable
    QuotedPrintable,
}

impl Cte {
    /// The decoding of a part whose Content-Transfer-Encoding token is `encoding` (as
    /// [`super::ContentInfo::encoding`] holds it: `None` when missing or not a single token,
    /// which BODYSTRUCTURE reports as 7bit, so it is served as 7bit); `None` when the encoding is
    /// unknown (`NO [UNKNOWN-CTE]`).
    pub fn of(encoding: Option<&[u8]>) -> Option<Cte> {
        let Some(e) = encoding else {
            return Some(Cte::Identity);
        };
        let is = |name: &[u8]| e.eq_ignore_ascii_case(name);
        if is(b"7bit") || is(b"8bit") || is(b"binary") {
            Some(Cte::Identity)
        } else if is(b"base64") {
            Some(Cte::Base64)
        } else if is(b"quoted-printable") {
            Some(Cte::QuotedPrintable)
        } else {
            None
        }
    }

    /// True when decoding changes the octets (base64, quoted-printable).
    pub fn is_converted(self) -> bool {
        self != Cte::Identity
    }
}

/// Why encoded data could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A character or sequence the encoding does not allow.
    #[error("invalid {0} data")]
    Invalid(&'static str),
    /// The data ended inside an encoded unit.
    #[error("{0} data ends in the middle of an encoded unit")]
    Truncated(&'static str),
}

/// A streaming decoder for one part body.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// Identity: bare LF → CRLF, NUL kept.
    Identity(LfToCrlf),
    /// base64
    Base64(Base64Decoder),
    /// quoted-printable
    QuotedPrintable(QpDecoder),
}

impl Decoder {
    /// A decoder at the start of a body.
    pub fn new(cte: Cte) -> Decoder {
        match cte {
            Cte::Identity => Decoder::Identity(LfToCrlf::new()),
            Cte::Base64 => Decoder::Base64(Base64Decoder::default()),
            Cte::QuotedPrintable => Decoder::QuotedPrintable(QpDecoder::default()),
        }
    }

    /// Decodes one chunk of the body, appending to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        match self {
            Decoder::Identity(c) => {
                c.feed(input, out);
                Ok(())
            }
            Decoder::Base64(d) => d.feed(input, out),
            Decoder::QuotedPrintable(d) => d.feed(input, out),
        }
    }

    /// The body ended: checks that it ended cleanly (and flushes what is pending).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        match self {
            Decoder::Identity(_) => Ok(()),
            Decoder::Base64(d) => d.finish(),
            Decoder::QuotedPrintable(d) => d.finish(out),
        }
    }
}

/// Decodes a whole body in memory (tests and small data).
pub fn decode_all(cte: Cte, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut d = Decoder::new(cte);
    let mut out = Vec::with_capacity(input.len());
    d.feed(input, &mut out)?;
    d.finish(&mut out)?;
    Ok(out)
}

/// Sextet of each base64 alphabet character; [`NOT_BASE64`] for every other byte.
const BASE64_SEXTETS: [u8; 256] = {
    let mut t = [NOT_BASE64; 256];
    let mut i = 0;
    while i < 64 {
        let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i];
        t[c as usize] = i as u8;
        i += 1;
    }
    t
};
const NOT_BASE64: u8 = 0xff;

fn base64_value(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Streaming base64 decoder (see the module documentation for what it accepts).
#[derive(Debug, Clone, Default)]
pub struct Base64Decoder {
    /// Sextets of the current quantum.
    acc: u32,
    /// Characters of the current quantum, padding included.
    count: u8,
    /// `=` characters in the current quantum.
    pad: u8,
    /// The padding ended the data: only whitespace may follow.
    ended: bool,
}

impl Base64Decoder {
    /// Decodes one chunk.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        const WHAT: &str = "base64";
        out.reserve(input.len() / 4 * 3);
        let mut i = 0;
        loop {
            if self.count == 0 && !self.ended {
                // Whole quanta of four alphabet characters, the bulk of any base64 body, a table
                // lookup each; padding, whitespace and errors take the byte-at-a-time path below.
                while let Some(&[a, b, c, d]) = input
                    .get(i..i + 4)
                    .and_then(|q| <&[u8; 4]>::try_from(q).ok())
                {
                    let s = [a, b, c, d].map(|x| BASE64_SEXTETS[usize::from(x)]);
                    if s.contains(&NOT_BASE64) {
                        break;
                    }
                    let v = u32::from(s[0]) << 18
                        | u32::from(s[1]) << 12
                        | u32::from(s[2]) << 6
                        | u32::from(s[3]);
                    out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
                    i += 4;
                }
            }
            let Some(&b) = input.get(i) else {
                break;
            };
            i += 1;
            if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                continue;
            }
            if self.ended {
                return Err(DecodeError::Invalid(WHAT));
            }
            if b == b'=' {
                // Padding may only replace the third and fourth characters of a quantum.
                if self.count < 2 {
                    return Err(DecodeError::Invalid(WHAT));
                }
                self.count += 1;
                self.pad += 1;
            } else {
                let Some(v) = base64_value(b) else {
                    return Err(DecodeError::Invalid(WHAT));
                };
                if self.pad > 0 {
                    return Err(DecodeError::Invalid(WHAT));
                }
                self.acc = (self.acc << 6) | v;
                self.count += 1;
            }
            if self.count == 4 {
                let a = self.acc;
                match self.pad {
                    0 => out.extend_from_slice(&[(a >> 16) as u8, (a >> 8) as u8, a as u8]),
                    1 => out.extend_from_slice(&[(a >> 10) as u8, (a >> 2) as u8]),
                    _ => out.push((a >> 4) as u8),
                }
                self.ended = self.pad > 0;
                self.acc = 0;
                self.count = 0;
                self.pad = 0;
            }
        }
        Ok(())
    }

    /// The data ended: it must end on a whole quantum.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.count == 0 {
            Ok(())
        } else {
            Err(DecodeError::Truncated("base64"))
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum QpState {
    #[default]
    Text,
    /// Whitespace held in `ws`: dropped if the line ends, else sent.
    Whitespace,
    /// After `=`.
    Equals,
    /// After `=` and whitespace: only a line break may follow (a soft break).
    EqualsWhitespace,
    /// After `=` and one hex digit.
    Hex2(u8),
    /// After a CR (hard line break pending).
    Cr,
    /// After `=` [whitespace] CR (soft line break pending).
    SoftCr,
}

/// Streaming quoted-printable decoder (see the module documentation for what it accepts).
#[derive(Debug, Clone, Default)]
pub struct QpDecoder {
    state: QpState,
    /// Pending whitespace, at most [`QP_MAX_WHITESPACE_RUN`] octets.
    ws: Vec<u8>,
    /// The pending whitespace run was longer than `ws` holds.
    ws_overflow: bool,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        // Lowercase is not RFC 2045's alphabet, but encoders write it and Dovecot accepts it.
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl QpDecoder {
    /// Decodes one chunk.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        const WHAT: &str = "quoted-printable";
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.state {
                QpState::Text => {
                    // Copy the run of plain octets at once.
                    let rest = input.get(i..).unwrap_or_default();
                    let run = rest
                        .iter()
                        .position(|&c| matches!(c, b'=' | b'\r' | b'\n' | b' ' | b'\t'))
                        .unwrap_or(rest.len());
                    out.extend_from_slice(rest.get(..run).unwrap_or_default());
                    i += run;
                    let Some(&c) = input.get(i) else { break };
                    match c {
                        b'=' => self.state = QpState::Equals,
                        b'\r' => self.state = QpState::Cr,
                        b'\n' => out.extend_from_slice(b"\r\n"),
                        _ => {
                            self.ws.push(c);
                            self.state = QpState::Whitespace;
                        }
                    }
                }
                QpState::Whitespace => match b {
                    b' ' | b'\t' => {
                        if self.ws.len() < QP_MAX_WHITESPACE_RUN {
                            self.ws.push(b);
                        } else {
                            self.ws_overflow = true;
                        }
                    }
                    b'\r' => self.state = QpState::Cr,
                    b'\n' => {
                        self.drop_ws();
                        out.extend_from_slice(b"\r\n");
                        self.state = QpState::Text;
                    }
                    _ => {
                        // Not trailing whitespace after all: it is data.
                        if self.ws_overflow {
                            return Err(DecodeError::Invalid(WHAT));
                        }
                        out.extend_from_slice(&self.ws);
                        self.drop_ws();
                        self.state = QpState::Text;
                        continue;
                    }
                },
                QpState::Equals => match b {
                    b' ' | b'\t' => self.state = QpState::EqualsWhitespace,
                    b'\r' => self.state = QpState::SoftCr,
                    b'\n' => self.state = QpState::Text,
                    _ => match hex_value(b) {
                        Some(h) => self.state = QpState::Hex2(h),
                        None => return Err(DecodeError::Invalid(WHAT)),
                    },
                },
                QpState::Hex2(h) => match hex_value(b) {
                    Some(l) => {
                        out.push((h << 4) | l);
                        self.state = QpState::Text;
                    }
                    None => return Err(DecodeError::Invalid(WHAT)),
                },
                QpState::EqualsWhitespace => match b {
                    b' ' | b'\t' => {}
                    b'\r' => self.state = QpState::SoftCr,
                    b'\n' => self.state = QpState::Text,
                    _ => return Err(DecodeError::Invalid(WHAT)),
                },
                QpState::Cr | QpState::SoftCr => {
                    if b != b'\n' {
                        // A CR that is not part of a line break (Dovecot: invalid).
                        return Err(DecodeError::Invalid(WHAT));
                    }
                    if self.state == QpState::Cr {
                        self.drop_ws();
                        out.extend_from_slice(b"\r\n");
                    }
                    self.state = QpState::Text;
                }
            }
            i += 1;
        }
        Ok(())
    }

    fn drop_ws(&mut self) {
        self.ws.clear();
        self.ws_overflow = false;
    }

    /// The data ended. Trailing whitespace is dropped (rule 3); a final `=` is a soft line break
    /// (see the module documentation); half an `=XX` or a lone CR is an error.
    pub fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let state = std::mem::take(&mut self.state);
        self.drop_ws();
        match state {
            QpState::Text | QpState::Whitespace | QpState::Equals | QpState::EqualsWhitespace => {
                Ok(())
            }
            QpState::Hex2(_) | QpState::Cr | QpState::SoftCr => {
                Err(DecodeError::Truncated("quoted-printable"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Result<Vec<u8>, DecodeError> {
        decode_all(Cte::Base64, s)
    }

    fn qp(s: &[u8]) -> Result<Vec<u8>, DecodeError> {
        decode_all(Cte::QuotedPrintable, s)
    }

    /// Feeds `input` split at every point (and one octet at a time); every way must agree.
    fn chunked(cte: Cte, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let whole = decode_all(cte, input);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            let mut d = Decoder::new(cte);
            let mut out = Vec::new();
            let r = d
                .feed(a, &mut out)
                .and_then(|()| d.feed(b, &mut out))
                .and_then(|()| d.finish(&mut out))
                .map(|()| out);
            assert_eq!(
                r,
                whole,
                "split at {at} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut d = Decoder::new(cte);
        let mut out = Vec::new();
        let mut r = Ok(());
        for byte in input.chunks(1) {
            r = r.and_then(|()| d.feed(byte, &mut out));
        }
        let r = r.and_then(|()| d.finish(&mut out)).map(|()| out);
        assert_eq!(r, whole, "octet by octet");
        whole
    }

    #[test]
    fn cte_names() {
        assert_eq!(Cte::of(None), Some(Cte::Identity));
        for n in [&b"7BIT"[..], b"8bit", b"Binary"] {
            assert_eq!(Cte::of(Some(n)), Some(Cte::Identity));
        }
        assert_eq!(Cte::of(Some(b"BASE64")), Some(Cte::Base64));
        assert_eq!(
            Cte::of(Some(b"Quoted-Printable")),
            Some(Cte::QuotedPrintable)
        );
        assert_eq!(Cte::of(Some(b"x-uuencode")), None);
    }

    #[test]
    fn base64_valid_forms() {
        // RFC 4648 10 test vectors.
        assert_eq!(b64(b""), Ok(b"".to_vec()));
        assert_eq!(b64(b"Zg=="), Ok(b"f".to_vec()));
        assert_eq!(b64(b"Zm8="), Ok(b"fo".to_vec()));
        assert_eq!(b64(b"Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(b64(b"Zm9vYg=="), Ok(b"foob".to_vec()));
        assert_eq!(b64(b"Zm9vYmE="), Ok(b"fooba".to_vec()));
        assert_eq!(b64(b"Zm9vYmFy"), Ok(b"foobar".to_vec()));
        // Whitespace anywhere, also inside a quantum and between the pads.
        assert_eq!(
            chunked(Cte::Base64, b"  aGVs \r\n bG8g\r\nd29y\tbGQ= \r\n\r\n"),
            Ok(b"hello world".to_vec())
        );
        assert_eq!(
            chunked(Cte::Base64, b"Zm 9v\nYg= =\n"),
            Ok(b"foob".to_vec())
        );
        // NUL and high octets come through.
        assert_eq!(b64(b"AP8A"), Ok(vec![0, 0xff, 0]));
    }

    #[test]
    fn base64_invalid_forms() {
        for bad in [
            &b"Zm9v!"[..],
            b"Zm9!v",
            b"Zg==Zg==",
            b"Z===",
            b"=AAA",
            b"Zg=A",
            b"Zm9v\0",
        ] {
            assert!(
                matches!(chunked(Cte::Base64, bad), Err(DecodeError::Invalid(_))),
                "{bad:?}"
            );
        }
        for short in [&b"Zm9"[..], b"Zm9vY", b"Zg="] {
            assert!(
                matches!(chunked(Cte::Base64, short), Err(DecodeError::Truncated(_))),
                "{short:?}"
            );
        }
    }

    #[test]
    fn qp_rfc2045_rules() {
        // Rule 1: =XX, either case.
        assert_eq!(
            chunked(Cte::QuotedPrintable, b"a=3Db=3db"),
            Ok(b"a=b=b".to_vec())
        );
        assert_eq!(qp(b"=00=FF"), Ok(vec![0, 0xff]));
        // Rule 2: literal octets, 8-bit ones too.
        assert_eq!(qp(b"caf\xc3\xa9"), Ok(b"caf\xc3\xa9".to_vec()));
        // Rule 3 and 4: trailing whitespace dropped, hard breaks become CRLF (bare LF too).
        assert_eq!(
            chunked(Cte::QuotedPrintable, b"a b \t\r\nc\t\nd  "),
            Ok(b"a b\r\nc\r\nd".to_vec())
        );
        // Rule 5: soft breaks, with transport whitespace after the `=`.
        assert_eq!(
            chunked(Cte::QuotedPrintable, b"long=\r\nline= \t\nend"),
            Ok(b"longlineend".to_vec())
        );
        // A final soft break (the boundary's CRLF is not part of the body).
        assert_eq!(
            chunked(Cte::QuotedPrintable, b"no newline="),
            Ok(b"no newline".to_vec())
        );
        assert_eq!(qp(b"x= "), Ok(b"x".to_vec()));
        // Whitespace inside a line is data.
        assert_eq!(qp(b"a \t b"), Ok(b"a \t b".to_vec()));
    }

    #[test]
    fn qp_invalid_forms() {
        for bad in [&b"=G0"[..], b"=4G", b"= x", b"a\rb", b"=\rx"] {
            assert!(
                matches!(
                    chunked(Cte::QuotedPrintable, bad),
                    Err(DecodeError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        for short in [&b"=4"[..], b"a\r"] {
            assert!(
                matches!(
                    chunked(Cte::QuotedPrintable, short),
                    Err(DecodeError::Truncated(_))
                ),
                "{short:?}"
            );
        }
    }

    #[test]
    fn qp_whitespace_run_is_bounded() {
        let mut long = vec![b' '; QP_MAX_WHITESPACE_RUN + 10];
        // Trailing: dropped whatever its length.
        long.extend_from_slice(b"\r\nx");
        assert_eq!(qp(&long), Ok(b"\r\nx".to_vec()));
        // Followed by text: past the bound it cannot be reproduced, so it is refused.
        let mut text = vec![b' '; QP_MAX_WHITESPACE_RUN + 10];
        text.push(b'x');
        assert!(matches!(qp(&text), Err(DecodeError::Invalid(_))));
        let mut ok = vec![b' '; QP_MAX_WHITESPACE_RUN];
        ok.push(b'x');
        assert_eq!(qp(&ok), Ok(ok.clone()));
    }

    #[test]
    fn identity_converts_bare_lf_and_keeps_nul() {
        assert_eq!(
            decode_all(Cte::Identity, b"a\nb\0\r\n"),
            Ok(b"a\r\nb\0\r\n".to_vec())
        );
    }
}
