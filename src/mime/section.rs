//! FETCH `BODY[section]` resolution (RFC 3501 section 6.4.5).
//!
//! Part numbers are followed as Dovecot's `imap_msgpart` does: in a multipart,
//! `n` is the n-th body part; in any other part only `1` is allowed and means
//! the part itself (so part 1 of a single-part message is its body); when more
//! numbers follow a message/rfc822 part they address the encapsulated message;
//! any other non-multipart part cannot be descended: a final `1` names the
//! part itself (`BODY[1.1]` of a text/plain message is its body, as in
//! Dovecot) but `1.1.1` does not exist.
//! HEADER, HEADER.FIELDS[.NOT] and TEXT after a part number need a
//! message/rfc822 part and then refer to the encapsulated message.
//!
//! A part number that does not exist (or HEADER/TEXT of a part that is not a
//! message) resolves to [`SectionPlan::Empty`]: Dovecot answers such FETCHes
//! with an empty string rather than NIL or an error, and so do we.

use super::header::header_fields;
use super::{ByteRange, LfToCrlf, MessageInfo, PartKind};

/// The text part of a section specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionText<'a> {
    /// No text specifier: `BODY[]` or `BODY[1.2]`.
    Full,
    /// `HEADER`.
    Header,
    /// `HEADER.FIELDS (names)`.
    HeaderFields(&'a [&'a [u8]]),
    /// `HEADER.FIELDS.NOT (names)`.
    HeaderFieldsNot(&'a [&'a [u8]]),
    /// `TEXT`.
    Text,
    /// `MIME` (only valid after a part number).
    Mime,
}

/// A parsed section: part path (1-based numbers) and text specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionSpec<'a> {
    /// Part numbers; empty for the whole message.
    pub path: &'a [u32],
    /// What of the addressed part.
    pub text: SectionText<'a>,
}

/// What to send for a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionPlan {
    /// The part does not exist: send an empty string.
    Empty,
    /// Stream this physical range through [`LfToCrlf`]; it yields
    /// `virtual_len` bytes. For IMAP use `LfToCrlf::new().replace_nul(0x80)`:
    /// literals must not contain NUL (RFC 3501 `CHAR8`), and Dovecot sends
    /// 0x80 in its place, which keeps every size unchanged.
    Range {
        /// Physical range in the stored file.
        range: ByteRange,
        /// Bytes after LF→CRLF conversion.
        virtual_len: u64,
    },
    /// Read this physical header range and send
    /// [`header_fields`]`(header, names, not)` (already CRLF, ends with the
    /// blank line; pass it through `LfToCrlf` too for partial windows and
    /// NUL replacement — conversion of CRLF text changes nothing else).
    HeaderFields {
        /// Physical range of the header block.
        header: ByteRange,
        /// True for HEADER.FIELDS.NOT.
        not: bool,
    },
}

impl MessageInfo {
    /// Finds the part a part path addresses (Dovecot's `imap_msgpart_find`).
    pub fn find_part(&self, path: &[u32]) -> Option<u32> {
        let mut idx = 0u32;
        for (i, &n) in path.iter().enumerate() {
            let more = i + 1 < path.len();
            let p = self.part(idx)?;
            if p.kind == PartKind::Multipart {
                let n = n.checked_sub(1)?;
                idx = *p.children.get(n as usize)?;
            } else if n != 1 || (more && p.kind != PartKind::Message) {
                // Only "1" exists below a non-multipart, and only a
                // message/rfc822 part can be descended further.
                return None;
            }
            let p = self.part(idx)?;
            if p.kind == PartKind::Message && more {
                idx = *p.children.first()?;
            }
        }
        Some(idx)
    }

    /// Resolves a section to what must be sent.
    pub fn resolve_section(&self, spec: &SectionSpec<'_>) -> SectionPlan {
        let Some(idx) = self.find_part(spec.path) else {
            return SectionPlan::Empty;
        };
        let Some(part) = self.part(idx) else {
            return SectionPlan::Empty;
        };
        // The message HEADER/TEXT refer to: the message itself at the top,
        // else the message inside a message/rfc822 part.
        let message = if spec.path.is_empty() {
            Some(part)
        } else if part.kind == PartKind::Message {
            part.children.first().and_then(|&c| self.part(c))
        } else {
            None
        };
        match spec.text {
            SectionText::Full if spec.path.is_empty() => SectionPlan::Range {
                range: part.whole(),
                virtual_len: part
                    .header_size
                    .virtual_len
                    .saturating_add(part.body_size.virtual_len),
            },
            SectionText::Full => SectionPlan::Range {
                range: part.body,
                virtual_len: part.body_size.virtual_len,
            },
            SectionText::Mime if spec.path.is_empty() => SectionPlan::Empty,
            SectionText::Mime => SectionPlan::Range {
                range: part.header,
                virtual_len: part.header_size.virtual_len,
            },
            SectionText::Header => match message {
                Some(m) => SectionPlan::Range {
                    range: m.header,
                    virtual_len: m.header_size.virtual_len,
                },
                None => SectionPlan::Empty,
            },
            SectionText::Text => match message {
                Some(m) => SectionPlan::Range {
                    range: m.body,
                    virtual_len: m.body_size.virtual_len,
                },
                None => SectionPlan::Empty,
            },
            SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_) => match message {
                Some(m) => SectionPlan::HeaderFields {
                    header: m.header,
                    not: matches!(spec.text, SectionText::HeaderFieldsNot(_)),
                },
                None => SectionPlan::Empty,
            },
        }
    }

    /// The bytes a client receives for a section of `raw` (the stored file),
    /// built in memory. For small sections and tests; FETCH of large bodies
    /// streams the [`SectionPlan::Range`] instead.
    pub fn section_bytes(&self, raw: &[u8], spec: &SectionSpec<'_>) -> Vec<u8> {
        match self.resolve_section(spec) {
            SectionPlan::Empty => Vec::new(),
            SectionPlan::Range { range, .. } => {
                let mut out = Vec::new();
                LfToCrlf::new().feed(range.slice(raw), &mut out);
                out
            }
            SectionPlan::HeaderFields { header, not } => {
                let names: &[&[u8]] = match spec.text {
                    SectionText::HeaderFields(n) | SectionText::HeaderFieldsNot(n) => n,
                    _ => &[],
                };
                header_fields(header.slice(raw), names, not)
            }
        }
    }
}
