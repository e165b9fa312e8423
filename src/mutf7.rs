//! Modified UTF-7 (RFC 3501 section 5.1.3), the encoding of IMAP mailbox
//! names on the wire and of Maildir++ folder names on disk (Dovecot writes
//! them that way).
//!
//! Printable US-ASCII (0x20..=0x7e) stands for itself except `&`, which is
//! written `&-`. Everything else is UTF-16 in a "modified BASE64" (`,`
//! instead of `/`, no padding) between `&` and `-`.
//!
//! Decoding is strict because two different byte strings must never name the
//! same mailbox (that would let a client create a second, invisible copy of
//! `INBOX` or of a folder another client caches): non-minimal encodings
//! (a printable ASCII character inside a shifted run, two adjacent shifted
//! runs, non-zero padding bits, `&` followed directly by a character that is
//! not BASE64), unpaired surrogates, 8-bit bytes and control characters are
//! all rejected.

use thiserror::Error;

/// Why a modified UTF-7 string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Mutf7Error {
    /// A byte outside printable US-ASCII appeared outside a shifted run.
    #[error("8-bit or control byte in modified UTF-7")]
    NonAscii,
    /// A shifted run is not terminated by `-`.
    #[error("unterminated shifted sequence in modified UTF-7")]
    Unterminated,
    /// A character outside the modified BASE64 alphabet inside a shifted run.
    #[error("invalid character in modified BASE64")]
    BadBase64,
    /// The run's bit count does not hold whole UTF-16 units, or the padding
    /// bits are not zero.
    #[error("bad padding in modified UTF-7")]
    BadPadding,
    /// The same text has a shorter encoding (printable ASCII shifted, or two
    /// shifted runs back to back).
    #[error("non-minimal modified UTF-7 encoding")]
    NotMinimal,
    /// An unpaired UTF-16 surrogate.
    #[error("unpaired surrogate in modified UTF-7")]
    BadSurrogate,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b',' => Some(63),
        _ => None,
    }
}

fn is_direct(c: char) -> bool {
    ('\u{20}'..='\u{7e}').contains(&c)
}

/// Encodes a UTF-8 string as modified UTF-7.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut units: Vec<u16> = Vec::new();
    for c in s.chars() {
        if is_direct(c) {
            flush_shifted(&mut out, &mut units);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_shifted(&mut out, &mut units);
    out
}

fn flush_shifted(out: &mut String, units: &mut Vec<u16>) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for u in units.drain(..) {
        acc = (acc << 16) | u32::from(u);
        bits += 16;
        while bits >= 6 {
            bits -= 6;
            out.push(char::from(ALPHABET[((acc >> bits) & 0x3f) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (6 - bits)) & 0x3f) as usize]));
    }
    out.push('-');
}

/// Decodes modified UTF-7 into UTF-8, refusing anything but the one minimal
/// encoding of a valid Unicode string.
pub fn decode(input: &[u8]) -> Result<String, Mutf7Error> {
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    // Position right after the `-` of the previous shifted run: a new run
    // starting there should have been merged into it.
    let mut prev_run_end: Option<usize> = None;
    while let Some(&b) = input.get(i) {
        if b == b'&' {
            let start = i + 1;
            let Some(rel_end) = input
                .get(start..)
                .and_then(|r| r.iter().position(|&c| c == b'-'))
            else {
                return Err(Mutf7Error::Unterminated);
            };
            let end = start + rel_end;
            if end == start {
                out.push('&');
                i = end + 1;
                continue;
            }
            if prev_run_end == Some(i) {
                return Err(Mutf7Error::NotMinimal);
            }
            decode_run(input.get(start..end).unwrap_or_default(), &mut out)?;
            i = end + 1;
            prev_run_end = Some(i);
        } else if (0x20..=0x7e).contains(&b) {
            out.push(char::from(b));
            i += 1;
        } else {
            return Err(Mutf7Error::NonAscii);
        }
    }
    Ok(out)
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), Mutf7Error> {
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    let mut units: Vec<u16> = Vec::with_capacity(run.len() * 6 / 16 + 1);
    for &c in run {
        let v = b64_value(c).ok_or(Mutf7Error::BadBase64)?;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 16 {
            bits -= 16;
            units.push(((acc >> bits) & 0xffff) as u16);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be fewer than one BASE64 digit and all zero.
    if bits >= 6 || acc != 0 || units.is_empty() {
        return Err(Mutf7Error::BadPadding);
    }
    for r in char::decode_utf16(units.iter().copied()) {
        let c = r.map_err(|_| Mutf7Error::BadSurrogate)?;
        if is_direct(c) {
            return Err(Mutf7Error::NotMinimal);
        }
        out.push(c);
    }
    Ok(())
}

/// True when `input` is the minimal modified UTF-7 encoding of some string.
pub fn is_valid(input: &[u8]) -> bool {
    decode(input).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_example() {
        // RFC 3501 section 5.1.3 example.
        let s = "~peter/mail/\u{65e5}\u{672c}\u{8a9e}/\u{53f0}\u{5317}";
        assert_eq!(encode(s), "~peter/mail/&ZeVnLIqe-/&U,BTFw-");
        assert_eq!(decode(b"~peter/mail/&ZeVnLIqe-/&U,BTFw-").as_deref(), Ok(s));
    }

    #[test]
    fn ampersand_and_ascii() {
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode(b"A&-B").as_deref(), Ok("A&B"));
        assert_eq!(encode("Entw\u{fc}rfe"), "Entw&APw-rfe");
        assert_eq!(decode(b"Entw&APw-rfe").as_deref(), Ok("Entw\u{fc}rfe"));
    }

    #[test]
    fn astral_plane_uses_surrogate_pairs() {
        let s = "\u{1F600}";
        let e = encode(s);
        assert_eq!(decode(e.as_bytes()).as_deref(), Ok(s));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(decode(b"&AGE-"), Err(Mutf7Error::NotMinimal)); // 'a' shifted
        assert_eq!(decode(b"&U,BTFw-&ZeVnLIqe-"), Err(Mutf7Error::NotMinimal));
        assert_eq!(decode(b"&U,BTFw"), Err(Mutf7Error::Unterminated));
        assert_eq!(decode(b"&U,B-"), Err(Mutf7Error::BadPadding));
        assert_eq!(decode(b"&2D0-"), Err(Mutf7Error::BadSurrogate)); // lone U+D83D
        assert_eq!(decode(b"&U/BTFw-"), Err(Mutf7Error::BadBase64));
        assert_eq!(decode("\u{e9}".as_bytes()), Err(Mutf7Error::NonAscii));
        assert_eq!(decode(b"a\x01b"), Err(Mutf7Error::NonAscii));
        // Non-zero padding bits: "&APx-" would decode to U+00FC with stray bits.
        assert_eq!(decode(b"&APx-"), Err(Mutf7Error::BadPadding));
        assert!(is_valid(b"INBOX"));
    }
}
