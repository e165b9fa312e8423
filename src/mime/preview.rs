//! The PREVIEW text of a message (RFC 8970): at most [`PREVIEW_MAX_CHARS`] characters of plain
//! text from its first displayable text part.
//!
//! # Algorithm
//!
//! It follows Dovecot 2.3's `message-snippet.c`, so users moving from Dovecot see the previews
//! they knew:
//! 1. The candidate parts are the single (leaf) parts of the MIME tree in document order that are
//!    text/plain (also a part without Content-Type) or text/html; parts inside an attached
//!    message/rfc822 are candidates too, as in Dovecot. Unlike Dovecot, a part marked
//!    `Content-Disposition: attachment` (or inside one) is skipped, and so are other text/*
//!    types (text/calendar, text/csv, ...): they are files, not the message's own words.
//! 2. Of each candidate the first [`PREVIEW_PART_BYTES`] raw bytes are read, cut back to the last
//!    line end when the part is longer (no encoded quantum, QP escape or character is cut in
//!    two). The transfer encoding is undone and the charset converted to UTF-8 with mail-parser,
//!    as SEARCH does ([`super::search::decoded_text`]). HTML is reduced to text by mail-parser's
//!    `html_to_text` (tags removed, `head`, `style`, `script` and `template` content dropped,
//!    entities decoded), after a line break is put before every block-level tag so that
//!    `<div>a</div><div>b</div>` reads `a b`, not `ab`.
//! 3. Lines starting with `>` are quoted text and are kept apart. All other text is collapsed:
//!    every run of whitespace (Unicode, so `&nbsp;` too) becomes one space, control characters,
//!    NULs and byte-order marks are dropped, leading and trailing whitespace removed.
//! 4. The first candidate that gives any text wins: its unquoted text cut at
//!    [`PREVIEW_MAX_CHARS`] characters, or, when a part has only quoted lines, `>` and the
//!    quoted text (as Dovecot does, so a reply that only quotes still says something). When no
//!    candidate gives text (attachment-only, encrypted, empty body), the preview is the empty
//!    string, as RFC 8970 3.2 requires. At most [`PREVIEW_MAX_PARTS`] candidates are tried.
//!
//! Characters are Unicode scalar values, counted and cut on `char` boundaries, so a preview is
//! always whole UTF-8. Signatures are not removed (Dovecot does not either): they are only
//! reached when the text above them is shorter than the preview.
//!
//! This module does no I/O: [`preview_sources`] says which byte ranges to read and
//! [`part_preview`] makes the text of one of them, so the FETCH code reads only those ranges of
//! the stored message, never the whole of it.

use std::borrow::Cow;

use mail_parser::decoders::html::html_to_text;

use super::search::decoded_text;
use super::{ByteRange, ContentInfo, MessageInfo, PartKind};
use crate::limits::{PREVIEW_MAX_CHARS, PREVIEW_MAX_PARTS, PREVIEW_PART_BYTES};

/// A part a preview may be made from, and what of it to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviewSource {
    /// Index of the part in [`MessageInfo::parts`].
    pub part: u32,
    /// The first [`PREVIEW_PART_BYTES`] of the part's body, in the stored message.
    pub window: ByteRange,
    /// True when the window is shorter than the body.
    pub cut: bool,
}

/// True for the media types a preview is made from: text/plain (or no Content-Type, which means
/// text/plain) and text/html.
fn displayable(c: &ContentInfo) -> bool {
    c.is_text()
        && c.subtype
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(b"plain") || s.eq_ignore_ascii_case(b"html"))
}

fn is_html(c: &ContentInfo) -> bool {
    c.subtype
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(b"html"))
}

/// True when the part or one of its containers is `Content-Disposition: attachment`.
fn attached(info: &MessageInfo, mut index: u32) -> bool {
    // Parents always have smaller indices, so this walk ends; the bound keeps it so for a
    // structure built by hand.
    for _ in 0..=info.parts.len() {
        let Some(p) = info.part(index) else {
            return false;
        };
        if p.content
            .disposition
            .as_ref()
            .is_some_and(|d| d.value.eq_ignore_ascii_case(b"attachment"))
        {
            return true;
        }
        match p.parent {
            Some(parent) => index = parent,
            None => return false,
        }
    }
    false
}

/// The parts to try, in order, with the byte window of each to read (at most
/// [`PREVIEW_MAX_PARTS`]).
pub fn preview_sources(info: &MessageInfo) -> Vec<PreviewSource> {
    info.parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let i = u32::try_from(i).ok()?;
            (p.kind == PartKind::Leaf
                && !p.digest_default
                && displayable(&p.content)
                && !attached(info, i))
            .then(|| {
                let end = p
                    .body
                    .end
                    .min(p.body.start.saturating_add(PREVIEW_PART_BYTES));
                PreviewSource {
                    part: i,
                    window: ByteRange {
                        start: p.body.start,
                        end,
                    },
                    cut: end < p.body.end,
                }
            })
        })
        .take(PREVIEW_MAX_PARTS)
        .collect()
}

/// The preview text of one part from the bytes of its window (see [`PreviewSource`]); empty when
/// the part has no text.
pub fn part_preview(content: &ContentInfo, window: &[u8], cut: bool) -> String {
    let body = if cut {
        // Back to the last line end, so no encoded quantum or character is cut in two.
        match memchr::memrchr(b'\n', window) {
            Some(lf) => window.get(..=lf).unwrap_or(window),
            None => window,
        }
    } else {
        window
    };
    let text = decoded_text(content, body);
    let text = if is_html(content) {
        Cow::Owned(html_to_text(&break_blocks(&text)))
    } else {
        text
    };
    snippet(&text)
}

/// The preview of a message held whole in memory: the first part of [`preview_sources`] that
/// gives text (for tests and tools; FETCH reads only the windows).
pub fn message_preview(info: &MessageInfo, raw: &[u8]) -> String {
    for src in preview_sources(info) {
        let Some(p) = info.part(src.part) else {
            continue;
        };
        let text = part_preview(&p.content, src.window.slice(raw), src.cut);
        if !text.is_empty() {
            return text;
        }
    }
    String::new()
}

/// HTML elements that start a new block of text.
const BLOCK_TAGS: &[&[u8]] = &[
    b"address",
    b"article",
    b"blockquote",
    b"br",
    b"dd",
    b"div",
    b"dl",
    b"dt",
    b"footer",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"header",
    b"hr",
    b"li",
    b"ol",
    b"p",
    b"pre",
    b"section",
    b"table",
    b"td",
    b"th",
    b"tr",
    b"ul",
];

/// `html` with a line break before every block-level tag, opening or closing
/// (`html_to_text` joins the text of adjacent blocks otherwise).
fn break_blocks(html: &str) -> String {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut from = 0;
    for lt in memchr::memchr_iter(b'<', b) {
        let name_start = if b.get(lt + 1) == Some(&b'/') {
            lt + 2
        } else {
            lt + 1
        };
        let rest = b.get(name_start..).unwrap_or_default();
        let len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        let name = rest.get(..len).unwrap_or_default();
        if len > 0 && BLOCK_TAGS.iter().any(|t| t.eq_ignore_ascii_case(name)) {
            // `<` is ASCII, so both cuts are on character boundaries.
            out.push_str(html.get(from..lt).unwrap_or_default());
            out.push('\n');
            from = lt;
        }
    }
    out.push_str(html.get(from..).unwrap_or_default());
    out
}

/// Collapsed text being gathered, up to a number of characters.
struct Gather {
    text: String,
    chars: usize,
    max: usize,
    space: bool,
}

impl Gather {
    fn new(max: usize) -> Gather {
        Gather {
            text: String::new(),
            chars: 0,
            max,
            space: false,
        }
    }

    fn full(&self) -> bool {
        self.chars >= self.max
    }

    fn push(&mut self, c: char) {
        if self.full() {
            return;
        }
        if c.is_whitespace() {
            // Leading whitespace is dropped; a run inside the text becomes one space.
            self.space = !self.text.is_empty();
            return;
        }
        if c.is_control() || c == '\u{feff}' {
            return;
        }
        if self.space {
            self.space = false;
            self.text.push(' ');
            self.chars += 1;
            if self.full() {
                return;
            }
        }
        self.text.push(c);
        self.chars += 1;
    }

    fn push_line(&mut self, line: &str) {
        for c in line.chars() {
            if self.full() {
                return;
            }
            self.push(c);
        }
        // The line end separates words.
        self.push('\n');
    }

    fn finish(mut self) -> String {
        let keep = self.text.trim_end().len();
        self.text.truncate(keep);
        self.text
    }
}

/// The preview of plain text (step 3 and 4 of the module docs): unquoted text collapsed and cut,
/// or `>` and the quoted text when there is no other.
fn snippet(text: &str) -> String {
    let mut main = Gather::new(PREVIEW_MAX_CHARS);
    // One character is taken by the leading `>`.
    let mut quoted = Gather::new(PREVIEW_MAX_CHARS - 1);
    for line in text.split('\n') {
        if main.full() {
            break;
        }
        match line.strip_prefix('>') {
            Some(q) => {
                if !quoted.full() {
                    quoted.push_line(q);
                }
            }
            None => main.push_line(line),
        }
    }
    let main = main.finish();
    if !main.is_empty() {
        return main;
    }
    let quoted = quoted.finish();
    if quoted.is_empty() {
        return quoted;
    }
    format!(">{quoted}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::PREVIEW_RFC_MAX_CHARS;

    fn preview(raw: &str) -> String {
        let raw = raw.replace('\n', "\r\n");
        message_preview(&MessageInfo::parse(raw.as_bytes()), raw.as_bytes())
    }

    fn preview_bytes(raw: &[u8]) -> String {
        message_preview(&MessageInfo::parse(raw), raw)
    }

    #[test]
    fn plain_text_is_collapsed_and_trimmed() {
        assert_eq!(
            preview("Subject: x\n\n  Hello   there,\n\n\thow are\tyou?  \n\n"),
            "Hello there, how are you?"
        );
        // No MIME at all (no Content-Type): text/plain.
        assert_eq!(preview("\nJust a body"), "Just a body");
    }

    #[test]
    fn quoted_lines_as_dovecot() {
        // Dovecot's test-message-snippet cases, worked through the same rules.
        assert_eq!(preview("\nline1\n>quote2\nline2\n"), "line1 line2");
        assert_eq!(
            preview("\nline1\n>quote2\n> quote3\n > line4\n\n  \t\t  \nline5\n  \t "),
            "line1 > line4 line5"
        );
        assert_eq!(preview("\n>quote1\n>quote2\n"), ">quote1 quote2");
        assert_eq!(
            preview("\n>quote1\n>quote2\nbottom\nposter\n"),
            "bottom poster"
        );
        assert_eq!(preview("\ntop\nposter\n>quote1\n>quote2\n"), "top poster");
        assert_eq!(preview("\n \n"), "");
    }

    #[test]
    fn empty_and_attachment_only_messages_have_an_empty_preview() {
        assert_eq!(preview("Subject: nothing\n\n"), "");
        assert_eq!(
            preview(
                "Content-Type: multipart/mixed; boundary=a\n\n--a\n\
                 Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n\
                 JVBERi0xLjQK\n--a\n\
                 Content-Type: text/plain; name=notes.txt\n\
                 Content-Disposition: attachment; filename=notes.txt\n\n\
                 not the message text\n--a--\n"
            ),
            ""
        );
    }

    #[test]
    fn first_text_part_after_a_binary_one() {
        assert_eq!(
            preview(
                "Content-Type: multipart/mixed; boundary=a\n\n--a\n\
                 Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n\
                 U2hvdWxkIG5vdCBiZSBpbiBzbmlwcGV0\n--a\n\
                 Content-Type: TeXT/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n\
                 PGh0bWw+PGhlYWQ+PC9oZWFkPjxib2R5PjxwPlNob3VsZCBiZSBpbiBzbmlwcGV0PC9wPjwvYm9k\n\
                 eT48L2h0bWw+\n--a--\n"
            ),
            "Should be in snippet"
        );
    }

    #[test]
    fn an_empty_first_part_passes_to_the_next() {
        assert_eq!(
            preview(
                "Content-Type: multipart/mixed; boundary=a\n\n--a\n\
                 Content-Type: text/html\n\n<html><body><p></p><!-- x --></body></html>\n--a\n\
                 Content-Type: text/plain\n\npart two\n--a--\n"
            ),
            "part two"
        );
    }

    #[test]
    fn multipart_alternative_takes_the_first_alternative() {
        assert_eq!(
            preview(
                "Content-Type: multipart/alternative; boundary=b\n\n--b\n\
                 Content-Type: text/plain; charset=us-ascii\n\nPlain version\n--b\n\
                 Content-Type: text/html\n\n<p>HTML version</p>\n--b--\n"
            ),
            "Plain version"
        );
    }

    #[test]
    fn html_is_reduced_to_text() {
        let html = "Content-Type: text/html; charset=utf-8\n\n\
            <html><head><title>T</title><style>p { color: red }</style></head>\
            <body><script>var x = 1;</script><div>Hi,</div><div>Tom &amp; Jerry&nbsp;&lt;3\
            </div><p>Caf&eacute; <b>bold</b></p><!-- hidden --></body></html>\n";
        assert_eq!(preview(html), "Hi, Tom & Jerry <3 Café bold");
    }

    #[test]
    fn quoted_printable_latin1_is_decoded() {
        assert_eq!(
            preview(
                "Content-Type: text/plain; charset=iso-8859-1\n\
                 Content-Transfer-Encoding: quoted-printable\n\n\
                 hyv=E4=E4 p=E4iv=E4=E4, soft=\nbreak\n"
            ),
            "hyvää päivää, softbreak"
        );
    }

    #[test]
    fn base64_and_other_charsets_are_decoded() {
        // "Grüße aus Köln" in UTF-8, base64.
        assert_eq!(
            preview(
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n\
                 R3LDvMOfZSBhdXMgS8O2bG4=\n"
            ),
            "Grüße aus Köln"
        );
        // KOI8-R: "Привет" is F0 D2 C9 D7 C5 D4.
        let mut raw = b"Content-Type: text/plain; charset=koi8-r\r\n\r\n".to_vec();
        raw.extend_from_slice(&[0xF0, 0xD2, 0xC9, 0xD7, 0xC5, 0xD4, b'!', b'\r', b'\n']);
        assert_eq!(preview_bytes(&raw), "Привет!");
    }

    #[test]
    fn long_text_is_cut_at_200_characters_not_bytes() {
        // 150 two-byte and then 150 three-byte characters, no spaces.
        let body: String = "é".repeat(150) + &"€".repeat(150);
        let p = preview(&format!(
            "Content-Type: text/plain; charset=utf-8\n\n{body}\n"
        ));
        assert_eq!(p.chars().count(), PREVIEW_MAX_CHARS);
        assert!(p.chars().count() <= PREVIEW_RFC_MAX_CHARS);
        assert_eq!(p, "é".repeat(150) + &"€".repeat(50));
        // A cut right after a word leaves no trailing space.
        let words = "abcd ".repeat(60);
        let p = preview(&format!("\n{words}"));
        assert_eq!(p, "abcd ".repeat(40).trim_end());
    }

    #[test]
    fn controls_nuls_and_bom_are_dropped() {
        let raw =
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xEF\xBB\xBFfoo\x00bar\x07 baz\r\n";
        assert_eq!(preview_bytes(raw), "foobar baz");
    }

    #[test]
    fn only_the_window_is_read_and_cut_at_a_line_end() {
        // A part longer than the window: the window ends in the middle of a line, which is
        // dropped rather than decoded in half.
        let line = "=C3=A9".repeat(10) + "\n";
        let n = (PREVIEW_PART_BYTES as usize) / line.len() + 2;
        let raw = format!(
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n{}",
            line.repeat(n)
        );
        let info = MessageInfo::parse(raw.as_bytes());
        let srcs = preview_sources(&info);
        assert_eq!(srcs.len(), 1);
        assert!(srcs[0].cut);
        assert_eq!(srcs[0].window.len(), PREVIEW_PART_BYTES);
        let p = message_preview(&info, raw.as_bytes());
        // 10 é per line, joined by spaces: "éééééééééé éééééééééé ..." cut at 200 characters.
        let expected: String = std::iter::repeat_n("é".repeat(10), 20)
            .collect::<Vec<_>>()
            .join(" ");
        let expected: String = expected.chars().take(PREVIEW_MAX_CHARS).collect();
        assert_eq!(p, expected.trim_end());
    }

    #[test]
    fn inner_messages_count_unless_attached() {
        // A digest's first message (no Content-Type: message/rfc822) gives the preview, as in
        // Dovecot's test "multipart/digest child without Content-Type is message/rfc822".
        assert_eq!(
            preview(
                "Content-Type: multipart/digest; boundary=a\n\n--a\n\n\
                 Subject: inner\n\ninner body\n\n--a--\n"
            ),
            "inner body"
        );
        // A forwarded message marked as an attachment does not.
        assert_eq!(
            preview(
                "Content-Type: multipart/mixed; boundary=a\n\n--a\n\
                 Content-Type: message/rfc822\nContent-Disposition: attachment\n\n\
                 Subject: inner\n\ninner body\n\n--a--\n"
            ),
            ""
        );
    }

    #[test]
    fn at_most_eight_parts_are_tried() {
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=z\n\n");
        for _ in 0..20 {
            raw.push_str("--z\nContent-Type: text/plain\n\n \n");
        }
        raw.push_str("--z--\n");
        let info = MessageInfo::parse(raw.as_bytes());
        assert_eq!(preview_sources(&info).len(), PREVIEW_MAX_PARTS);
    }
}
