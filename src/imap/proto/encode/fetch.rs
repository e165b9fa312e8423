//! `FETCH` responses, written item by item so the session can stream a body section's octets
//! between a prefix written here and the rest of the response.

use super::number::write_num;
use super::string::{write_astring, write_atom, write_flag_items, write_nstring, write_string};
use crate::imap::proto::types::{DateTime, FetchAttr, Flag, Section, SectionText};

fn write_part(out: &mut Vec<u8>, part: &[std::num::NonZeroU32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_num(out, p);
    }
}

/// Writes a section spec as the response echoes it: `1.2.HEADER.FIELDS (FROM TO)`.
pub fn write_section(out: &mut Vec<u8>, section: &Section) {
    write_part(out, &section.part);
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let (name, fields) = match text {
        SectionText::Header => ("HEADER", None),
        SectionText::Text => ("TEXT", None),
        SectionText::Mime => ("MIME", None),
        SectionText::HeaderFields(f) => ("HEADER.FIELDS", Some(f)),
        SectionText::HeaderFieldsNot(f) => ("HEADER.FIELDS.NOT", Some(f)),
    };
    out.extend_from_slice(name.as_bytes());
    if let Some(fields) = fields {
        out.extend_from_slice(b" (");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, f);
        }
        out.push(b')');
    }
}

/// Builds one `* n FETCH (...)` response item by item, so the session can
/// flush `out` between items and stream a body section's octets in between.
#[derive(Debug)]
pub struct FetchResponse {
    first: bool,
}

impl FetchResponse {
    /// Writes `* seq FETCH (`.
    pub fn start(out: &mut Vec<u8>, seq: u32) -> FetchResponse {
        out.extend_from_slice(b"* ");
        write_num(out, seq);
        out.extend_from_slice(b" FETCH (");
        FetchResponse { first: true }
    }

    fn sep(&mut self, out: &mut Vec<u8>) {
        if !self.first {
            out.push(b' ');
        }
        self.first = false;
    }

    /// Starts a free-form item: writes `NAME ` and leaves `out` for the value
    /// (ENVELOPE, BODYSTRUCTURE and BODY are written this way by the MIME helper).
    pub fn item(&mut self, out: &mut Vec<u8>, name: &str) {
        self.sep(out);
        write_atom(out, name);
        out.push(b' ');
    }

    /// `FLAGS (...)`, with `\Recent` appended when `recent`.
    pub fn flags<F: std::borrow::Borrow<Flag>>(
        &mut self,
        out: &mut Vec<u8>,
        flags: impl IntoIterator<Item = F>,
        recent: bool,
    ) {
        self.sep(out);
        out.extend_from_slice(b"FLAGS (");
        let n = write_flag_items(out, flags);
        if recent {
            if n > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(b"\\Recent");
        }
        out.push(b')');
    }

    /// `UID n`.
    pub fn uid(&mut self, out: &mut Vec<u8>, uid: u32) {
        self.sep(out);
        out.extend_from_slice(b"UID ");
        write_num(out, uid);
    }

    /// `INTERNALDATE "17-Jul-1996 02:44:25 -0700"`.
    pub fn internal_date(&mut self, out: &mut Vec<u8>, date: &DateTime) {
        self.sep(out);
        out.extend_from_slice(b"INTERNALDATE ");
        date.write_quoted(out, b' ');
    }

    /// `RFC822.SIZE n`.
    pub fn rfc822_size(&mut self, out: &mut Vec<u8>, size: u64) {
        self.sep(out);
        out.extend_from_slice(b"RFC822.SIZE ");
        write_num(out, size);
    }

    /// `MODSEQ (n)` (RFC 7162).
    pub fn modseq(&mut self, out: &mut Vec<u8>, modseq: u64) {
        self.sep(out);
        out.extend_from_slice(b"MODSEQ (");
        write_num(out, modseq);
        out.push(b')');
    }

    /// `BINARY.SIZE[part] n` (RFC 3516).
    pub fn binary_size(&mut self, out: &mut Vec<u8>, part: &[std::num::NonZeroU32], size: u64) {
        self.sep(out);
        out.extend_from_slice(b"BINARY.SIZE[");
        write_part(out, part);
        out.extend_from_slice(b"] ");
        write_num(out, size);
    }

    /// `PREVIEW "text"`, or `PREVIEW NIL` when a LAZY request found none ready (RFC 8970
    /// `msg-att-dynamic =/ "PREVIEW" SP nstring`). Text that is not 7-bit goes as a literal.
    pub fn preview(&mut self, out: &mut Vec<u8>, text: Option<&str>) {
        self.sep(out);
        out.extend_from_slice(b"PREVIEW ");
        write_nstring(out, text.map(str::as_bytes));
    }

    /// Writes the item name for a body-section attribute as the response names it
    /// (`BODY[...]<origin>`, `RFC822.TEXT`, `BINARY[...]`); `.PEEK` is dropped.
    /// Returns false (writing nothing) for attributes that are not sections.
    fn section_name(&mut self, out: &mut Vec<u8>, attr: &FetchAttr) -> bool {
        let (name, partial): (&[u8], _) = match attr {
            FetchAttr::Rfc822 => (b"RFC822", None),
            FetchAttr::Rfc822Header => (b"RFC822.HEADER", None),
            FetchAttr::Rfc822Text => (b"RFC822.TEXT", None),
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                self.sep(out);
                out.extend_from_slice(b"BODY[");
                write_section(out, section);
                out.push(b']');
                (b"", *partial)
            }
            FetchAttr::Binary { part, partial, .. } => {
                self.sep(out);
                out.extend_from_slice(b"BINARY[");
                write_part(out, part);
                out.push(b']');
                (b"", *partial)
            }
            _ => return false,
        };
        if !name.is_empty() {
            self.sep(out);
            out.extend_from_slice(name);
        }
        if let Some(p) = partial {
            // The response names only the origin (RFC 3501 msg-att-static).
            out.push(b'<');
            write_num(out, p.origin);
            out.push(b'>');
        }
        true
    }

    /// Writes `BODY[section]<origin> {len}\r\n` (or the RFC822.* / BINARY form);
    /// the session then sends exactly `len` octets of content. `literal8` uses
    /// `~{len}` for BINARY content holding NUL. Returns false, writing nothing,
    /// when `attr` is not a section attribute.
    pub fn section_prefix(
        &mut self,
        out: &mut Vec<u8>,
        attr: &FetchAttr,
        len: u64,
        literal8: bool,
    ) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.extend_from_slice(if literal8 { b" ~{" } else { b" {" });
        write_num(out, len);
        out.extend_from_slice(b"}\r\n");
        true
    }

    /// Writes a section attribute with a small in-memory value, as a string.
    pub fn section_value(&mut self, out: &mut Vec<u8>, attr: &FetchAttr, value: &[u8]) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.push(b' ');
        write_string(out, value);
        true
    }

    /// Writes a section attribute as NIL (a part that does not exist).
    pub fn section_nil(&mut self, out: &mut Vec<u8>, attr: &FetchAttr) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.extend_from_slice(b" NIL");
        true
    }

    /// Writes `)\r\n`, ending the response.
    pub fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b")\r\n");
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use crate::imap::proto::types::{Date, Partial};

    use super::*;

    #[test]
    fn fetch_items() {
        let nz = |n| NonZeroU32::new(n).expect("nz");
        let mut v = Vec::new();
        let mut f = FetchResponse::start(&mut v, 12);
        f.flags(&mut v, &[Flag::Seen], true);
        f.uid(&mut v, 4827313);
        let date = Date::new(1996, 7, 17).and_then(|d| DateTime::new(d, 2, 44, 25, -420));
        if let Some(d) = date {
            f.internal_date(&mut v, &d);
        }
        f.rfc822_size(&mut v, 44827);
        f.modseq(&mut v, 624140003);
        let attr = FetchAttr::BodySection {
            peek: true,
            section: Section {
                part: vec![nz(1), nz(2)],
                text: Some(SectionText::HeaderFields(vec![
                    b"FROM".to_vec(),
                    b"TO".to_vec(),
                ])),
            },
            partial: Some(Partial {
                origin: 0,
                count: nz(100),
            }),
        };
        assert!(f.section_prefix(&mut v, &attr, 5, false));
        v.extend_from_slice(b"hello");
        assert!(f.section_prefix(&mut v, &FetchAttr::Rfc822Text, 0, false));
        let bin = FetchAttr::Binary {
            peek: false,
            part: vec![nz(3)],
            partial: None,
        };
        assert!(f.section_prefix(&mut v, &bin, 2, true));
        v.extend_from_slice(b"\0\x01");
        let mime = FetchAttr::BodySection {
            peek: false,
            section: Section {
                part: vec![nz(9)],
                text: Some(SectionText::Mime),
            },
            partial: None,
        };
        assert!(f.section_nil(&mut v, &mime));
        assert!(f.section_value(&mut v, &FetchAttr::Rfc822Header, b"A: b\r\n\r\n"));
        assert!(!f.section_prefix(&mut v, &FetchAttr::Uid, 1, false));
        f.binary_size(&mut v, &[nz(3)], 2);
        f.item(&mut v, "ENVELOPE");
        v.extend_from_slice(b"NIL");
        f.finish(&mut v);
        assert_eq!(
            v,
            b"* 12 FETCH (FLAGS (\\Seen \\Recent) UID 4827313 \
INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 MODSEQ (624140003) \
BODY[1.2.HEADER.FIELDS (FROM TO)]<0> {5}\r\nhello RFC822.TEXT {0}\r\n \
BINARY[3] ~{2}\r\n\0\x01 BODY[9.MIME] NIL RFC822.HEADER {8}\r\nA: b\r\n\r\n \
BINARY.SIZE[3] 2 ENVELOPE NIL)\r\n"
                .as_slice()
        );
    }

    #[test]
    fn preview_item() {
        let mut v = Vec::new();
        let mut f = FetchResponse::start(&mut v, 3);
        f.uid(&mut v, 9);
        f.preview(&mut v, Some("Hi \"you\""));
        f.finish(&mut v);
        assert_eq!(v, b"* 3 FETCH (UID 9 PREVIEW \"Hi \\\"you\\\"\")\r\n");
        v.clear();
        let mut f = FetchResponse::start(&mut v, 1);
        f.preview(&mut v, None);
        f.preview(&mut v, Some(""));
        f.preview(&mut v, Some("h\u{e4}"));
        f.finish(&mut v);
        assert_eq!(
            v,
            "* 1 FETCH (PREVIEW NIL PREVIEW \"\" PREVIEW {3}\r\nh\u{e4})\r\n".as_bytes()
        );
    }
}
