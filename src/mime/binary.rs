//! FETCH `BINARY[section]` resolution (RFC 3516, RFC 9051 6.4.5): which stored bytes make up a
//! section's decoded content, as a list of [`BinarySegment`]s the FETCH code streams in order.
//!
//! The section is found as for `BODY[section]` ([`MessageInfo::find_part`]). Then, as Dovecot's
//! `index-mail-binary.c` does:
//! - a leaf part: its body, decoded by its Content-Transfer-Encoding;
//! - `BINARY[]`: the whole message, header included;
//! - a multipart or message/rfc822 part (RFC 9051 says BINARY is only for leaf parts but does
//!   not say what a server answers otherwise; Dovecot serves it, and so do we): its body with
//!   every descendant leaf decoded, and the header of every decoded descendant rewritten to say
//!   `Content-Transfer-Encoding: binary`, so the result is still a valid MIME entity. Boundaries,
//!   preambles and other headers are sent as stored (bare LF as CRLF).
//!
//! An unknown Content-Transfer-Encoding anywhere in the section fails it (`NO [UNKNOWN-CTE]`),
//! also on a container, as in Dovecot.

use super::decode::Cte;
use super::header::header_fields;
use super::{ByteRange, MessageInfo};

/// One piece of a BINARY section, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinarySegment {
    /// Stored bytes decoded by the encoding (identity for headers and boundaries).
    Data(ByteRange, Cte),
    /// A part header sent through [`binary_header`]: its Content-Transfer-Encoding fields are
    /// replaced by `Content-Transfer-Encoding: binary`.
    Header(ByteRange),
}

/// The section holds a part whose Content-Transfer-Encoding this server cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownCte;

struct Builder<'a> {
    info: &'a MessageInfo,
    segments: Vec<BinarySegment>,
    /// Stored bytes from here on are not yet covered by a segment.
    cursor: u64,
}

impl Builder<'_> {
    /// Adds `range` to be sent decoded by `cte`, joining it to the previous identity segment
    /// when they touch (so a section without encoded parts is one stream, like `BODY[...]`).
    fn push(&mut self, range: ByteRange, cte: Cte) {
        if range.is_empty() {
            return;
        }
        if cte == Cte::Identity
            && let Some(BinarySegment::Data(prev, Cte::Identity)) = self.segments.last_mut()
            && prev.end == range.start
        {
            prev.end = range.end;
            return;
        }
        self.segments.push(BinarySegment::Data(range, cte));
    }

    /// Covers the stored bytes from the cursor up to `end` as they are.
    fn copy_to(&mut self, end: u64) {
        if end > self.cursor {
            self.push(
                ByteRange {
                    start: self.cursor,
                    end,
                },
                Cte::Identity,
            );
            self.cursor = end;
        }
    }

    /// Adds part `idx` (its header too when `include_header`). Recursion is bounded by the
    /// parser's [`crate::limits::MAX_MIME_DEPTH`].
    fn add(&mut self, idx: u32, include_header: bool) -> Result<(), UnknownCte> {
        let Some(part) = self.info.part(idx) else {
            return Ok(());
        };
        let cte = Cte::of(part.content.encoding.as_deref()).ok_or(UnknownCte)?;
        let leaf = part.children.is_empty();
        if include_header {
            if leaf && cte.is_converted() {
                self.copy_to(part.header.start);
                self.segments.push(BinarySegment::Header(part.header));
            } else {
                self.copy_to(part.header.end);
            }
        }
        self.cursor = part.body.start;
        if !leaf {
            for &child in &part.children {
                self.add(child, true)?;
            }
            self.copy_to(part.body.end);
            return Ok(());
        }
        self.push(part.body, cte);
        self.cursor = part.body.end;
        Ok(())
    }
}

impl MessageInfo {
    /// The segments of `BINARY[path]`; `Ok(None)` when the part does not exist (sent as an
    /// empty string, as `BODY[...]` of a missing part is).
    pub fn binary_segments(&self, path: &[u32]) -> Result<Option<Vec<BinarySegment>>, UnknownCte> {
        let Some(idx) = self.find_part(path) else {
            return Ok(None);
        };
        let Some(part) = self.part(idx) else {
            return Ok(None);
        };
        let include_header = path.is_empty();
        let mut b = Builder {
            info: self,
            segments: Vec::new(),
            cursor: if include_header {
                part.header.start
            } else {
                part.body.start
            },
        };
        b.add(idx, include_header)?;
        Ok(Some(b.segments))
    }
}

/// A decoded part's header as BINARY sends it: every field but Content-Transfer-Encoding, CRLF
/// line ends, then `Content-Transfer-Encoding: binary` and the blank line (Dovecot's
/// `binary_cte_filter_callback` adds the same field at the end of the header).
pub fn binary_header(raw: &[u8]) -> Vec<u8> {
    const CTE: &[u8] = b"Content-Transfer-Encoding: binary\r\n";
    let mut h = header_fields(raw, &[b"Content-Transfer-Encoding"], true);
    // `header_fields` always ends with the blank line.
    let at = h.len().saturating_sub(2);
    h.splice(at..at, CTE.iter().copied());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::decode::decode_all;

    /// The bytes BINARY sends, built in memory from the segments.
    fn render(raw: &[u8], path: &[u32]) -> Result<Option<Vec<u8>>, UnknownCte> {
        let info = MessageInfo::parse(raw);
        let Some(segs) = info.binary_segments(path)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for s in segs {
            match s {
                BinarySegment::Data(r, cte) => {
                    out.extend(decode_all(cte, r.slice(raw)).unwrap_or_default());
                }
                BinarySegment::Header(r) => out.extend(binary_header(r.slice(raw))),
            }
        }
        Ok(Some(out))
    }

    const MIXED: &[u8] = b"Subject: t\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\nline\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9=\r\n\
--b--\r\n";

    #[test]
    fn leaf_parts_are_their_decoded_bodies() {
        assert_eq!(render(MIXED, &[1]), Ok(Some(b"plain\r\nline".to_vec())));
        assert_eq!(render(MIXED, &[2]), Ok(Some(vec![0, 1, 2])));
        assert_eq!(render(MIXED, &[3]), Ok(Some(b"caf\xc3\xa9".to_vec())));
        assert_eq!(render(MIXED, &[4]), Ok(None));
    }

    #[test]
    fn whole_message_decodes_every_leaf_and_rewrites_their_headers() {
        let expected: &[u8] = b"Subject: t\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
pre\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\nline\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n\
--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\ncaf\xc3\xa9\r\n\
--b--\r\n";
        assert_eq!(render(MIXED, &[]), Ok(Some(expected.to_vec())));
    }

    #[test]
    fn unencoded_message_is_one_segment() {
        let raw = b"Subject: x\n\nbody\n";
        let info = MessageInfo::parse(raw);
        assert_eq!(
            info.binary_segments(&[]),
            Ok(Some(vec![BinarySegment::Data(
                ByteRange {
                    start: 0,
                    end: raw.len() as u64
                },
                Cte::Identity
            )]))
        );
        assert_eq!(render(raw, &[1]), Ok(Some(b"body\r\n".to_vec())));
    }

    #[test]
    fn single_part_base64_message() {
        let raw =
            b"Subject: x\r\nContent-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\naGk=\r\n";
        assert_eq!(render(raw, &[1]), Ok(Some(b"hi".to_vec())));
        assert_eq!(
            render(raw, &[]),
            Ok(Some(
                b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\nhi"
                    .to_vec()
            ))
        );
    }

    #[test]
    fn unknown_encoding_anywhere_in_the_section_fails_it() {
        let raw = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b\r\n\r\nok\r\n--b--\r\n";
        assert_eq!(render(raw, &[1]), Err(UnknownCte));
        assert_eq!(render(raw, &[]), Err(UnknownCte));
        assert_eq!(render(raw, &[2]), Ok(Some(b"ok".to_vec())));
    }
}
