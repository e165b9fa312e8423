//! What SEARCH looks at: decoded header values (RFC 2047 words and charsets),
//! decoded text of text/* parts (quoted-printable, base64, charsets to UTF-8,
//! HTML reduced to text), case-insensitive substring matching, and the Date:
//! header for SENTBEFORE / SENTON / SENTSINCE.
//!
//! Memory is bounded: at most [`MAX_SEARCH_TEXT_BYTES`] raw bytes of each part
//! are decoded and at most that much decoded text is kept per message; text
//! beyond it is not searched.

use std::borrow::Cow;

use mail_parser::DateTime;
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;

use super::address::parse_address_list;
use super::header::{fields, unfold};
use super::{ContentInfo, MessageInfo, PartKind};
use crate::limits::MAX_SEARCH_TEXT_BYTES;

/// The text of a text part's body: the transfer encoding undone (base64, quoted-printable; a
/// body that does not decode is taken as it is) and the charset converted to UTF-8 (an unknown
/// or missing charset is read as UTF-8, invalid sequences replaced). Valid UTF-8 that needed no
/// decoding is borrowed. Shared by SEARCH and PREVIEW (`super::preview`).
pub(crate) fn decoded_text<'a>(content: &ContentInfo, body: &'a [u8]) -> Cow<'a, str> {
    let enc = content.encoding.as_deref().unwrap_or(b"7bit");
    let decoded: Option<Vec<u8>> = if enc.eq_ignore_ascii_case(b"base64") {
        let clean: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        base64_decode(&clean)
    } else if enc.eq_ignore_ascii_case(b"quoted-printable") {
        quoted_printable_decode(body)
    } else {
        None
    };
    let charset = content.param(b"charset").and_then(charset_decoder);
    match (decoded, charset) {
        (Some(d), Some(dec)) => Cow::Owned(dec(&d)),
        (None, Some(dec)) => Cow::Owned(dec(body)),
        (Some(d), None) => Cow::Owned(
            String::from_utf8(d)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ),
        (None, None) => String::from_utf8_lossy(body),
    }
}

/// A Date: header's calendar date, as written (time and zone disregarded, as
/// RFC 3501 says for the SENT* keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SentDate {
    /// Year.
    pub year: u16,
    /// Month 1-12.
    pub month: u8,
    /// Day 1-31.
    pub day: u8,
}

/// Unfolds a raw header value and decodes its RFC 2047 encoded words (into
/// UTF-8; whitespace between adjacent encoded words is dropped, RFC 2047
/// section 6.2). Raw 8-bit bytes are read as UTF-8, invalid sequences replaced.
pub fn decode_header_value(raw: &[u8]) -> String {
    let v = unfold(raw);
    if memchr::memmem::find(&v, b"=?").is_none() {
        // No encoded word (most values): the unfolded bytes are the text.
        return String::from_utf8(v)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    }
    let mut out = String::new();
    let mut i = 0usize;
    let mut plain_start = 0usize;
    let mut last_encoded = false;
    while i < v.len() {
        if v.get(i..i + 2) == Some(b"=?")
            && let Some(rest) = v.get(i + 1..)
        {
            let mut stream = MessageStream::new(rest);
            if let Some(text) = stream.decode_rfc2047() {
                let between = v.get(plain_start..i).unwrap_or(&[]);
                let only_ws = between.iter().all(|&b| b == b' ' || b == b'\t');
                if !(last_encoded && only_ws) {
                    out.push_str(&String::from_utf8_lossy(between));
                }
                out.push_str(&text);
                i += 1 + stream.offset();
                plain_start = i;
                last_encoded = true;
                continue;
            }
        }
        if !matches!(v.get(i), Some(b' ' | b'\t')) {
            last_encoded = false;
        }
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(
        v.get(plain_start..).unwrap_or(&[]),
    ));
    out
}

/// `s` in the form SEARCH compares: `i;unicode-casemap` (RFC 5051), the comparator of
/// I18NLEVEL=1 (RFC 5255 section 4.2), in place when it is ASCII.
fn lowercase(s: String) -> String {
    super::casemap::fold(s)
}

/// Case-insensitive substring test under `i;unicode-casemap` (RFC 5051: titlecase, then
/// NFKD, on both sides). An empty needle matches everything.
pub fn contains_folded(haystack: &str, needle: &str) -> bool {
    super::casemap::casemap_contains(haystack, needle)
}

fn push_capped(out: &mut String, s: &str) {
    let room = MAX_SEARCH_TEXT_BYTES.saturating_sub(out.len());
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut cut = room;
        while cut > 0 && !s.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push_str(s.get(..cut).unwrap_or(""));
    }
}

impl MessageInfo {
    /// Decoded values of the message's top-level header fields called `name`
    /// (case-insensitive), for SEARCH FROM/TO/CC/BCC/SUBJECT/HEADER.
    pub fn header_values(&self, raw: &[u8], name: &[u8]) -> Vec<String> {
        header_values_in(self.root().header.slice(raw), name)
    }

    /// All top-level header fields as `Name: decoded value` lines (SEARCH TEXT
    /// matches the header as well as the body), capped.
    pub fn header_text(&self, raw: &[u8]) -> String {
        header_text_in(self.root().header.slice(raw))
    }

    /// The header fields of every MIME part below the top level (part headers such as
    /// `Content-Disposition: attachment; filename=...`, and the headers of attached messages)
    /// as `Name: decoded value` lines, capped: SEARCH TEXT matches the whole message, and
    /// Dovecot's scan finds words in these as in the top-level header.
    pub fn part_headers_text(&self, raw: &[u8]) -> String {
        let mut out = String::new();
        for p in self.parts.iter().skip(1) {
            if out.len() >= MAX_SEARCH_TEXT_BYTES {
                break;
            }
            let header = p.header.slice(raw);
            if header.is_empty() {
                continue;
            }
            push_capped(&mut out, &header_text_in(header));
            push_capped(&mut out, "\n");
        }
        out
    }

    /// Decoded text of every text/* part (nested messages included), for
    /// SEARCH BODY; capped at `MAX_SEARCH_TEXT_BYTES`.
    pub fn body_text(&self, raw: &[u8]) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if p.kind != PartKind::Leaf || p.digest_default || !p.content.is_text() {
                continue;
            }
            if out.len() >= MAX_SEARCH_TEXT_BYTES {
                break;
            }
            let body = p.body.slice(raw);
            let body = body.get(..MAX_SEARCH_TEXT_BYTES).unwrap_or(body);
            let is_html = p
                .content
                .subtype
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(b"html"));
            let text = decoded_text(&p.content, body);
            if is_html {
                push_capped(&mut out, &html_to_text(&text));
            } else {
                push_capped(&mut out, &text);
            }
            push_capped(&mut out, "\n");
        }
        out
    }

    /// The Date: header's date, for SENTBEFORE / SENTON / SENTSINCE; `None`
    /// when missing or unparsable.
    pub fn sent_date(&self) -> Option<SentDate> {
        SentDate::parse(self.envelope().date.as_deref()?)
    }
}

impl SentDate {
    /// The calendar date of an (unfolded) Date: value; `None` when unparsable.
    pub fn parse(value: &[u8]) -> Option<SentDate> {
        let s = String::from_utf8_lossy(value);
        let dt = DateTime::parse_rfc822(&s)?;
        ((1..=12).contains(&dt.month) && (1..=31).contains(&dt.day)).then_some(SentDate {
            year: dt.year,
            month: dt.month,
            day: dt.day,
        })
    }
}

/// Decoded values of the fields called `name` (case-insensitive) of a header
/// block.
pub fn header_values_in(header: &[u8], name: &[u8]) -> Vec<String> {
    fields(header)
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| decode_header_value(f.raw_value))
        .collect()
}

/// The header fields holding address lists, whose addresses SEARCH also matches in clean form
/// (see [`address_search_text`]).
pub fn is_address_field(name: &[u8]) -> bool {
    [&b"From"[..], b"To", b"Cc", b"Bcc", b"Sender", b"Reply-To"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// An address list as SEARCH matches it besides the decoded value: parsed as ENVELOPE parses
/// it, so comments and folding whitespace inside each addr-spec (RFC 5322 CFWS, as in
/// `<user (c)@ (c) example.org>`) are gone, and written `name <mailbox@host>` (or
/// `mailbox@host` without a name) per address, joined by `, `, names RFC 2047 decoded. Group
/// markers and ENVELOPE's fill-ins (`MISSING_DOMAIN`, ...) are left out. Dovecot matches
/// FROM/TO/CC/BCC against such a rewritten address list too; we match the decoded value as
/// well, so a search for text of a comment still finds the message.
pub fn address_search_text(raw_value: &[u8]) -> String {
    let mut out = String::new();
    for a in parse_address_list(raw_value) {
        // Group markers have no host.
        let Some(host) = a.host.as_deref() else {
            continue;
        };
        let host = Some(host).filter(|h| !matches!(*h, b"MISSING_DOMAIN" | b"SYNTAX_ERROR"));
        let mailbox = a.mailbox.as_deref().filter(|m| *m != b"MISSING_MAILBOX");
        if !out.is_empty() {
            out.push_str(", ");
        }
        if let Some(name) = a.name.as_deref() {
            out.push_str(&decode_header_value(name));
            out.push_str(" <");
        }
        out.push_str(&String::from_utf8_lossy(mailbox.unwrap_or_default()));
        if let Some(host) = host {
            out.push('@');
            out.push_str(&String::from_utf8_lossy(host));
        }
        if a.name.is_some() {
            out.push('>');
        }
    }
    out
}

/// What a header key compares with in the fields called `name` of a header block: the decoded
/// values, and for address fields also each one's [`address_search_text`].
pub fn header_search_values_in(header: &[u8], name: &[u8]) -> Vec<String> {
    let address = is_address_field(name);
    let mut out = Vec::new();
    for f in fields(header).filter(|f| f.name.eq_ignore_ascii_case(name)) {
        out.push(decode_header_value(f.raw_value));
        if address {
            out.push(address_search_text(f.raw_value));
        }
    }
    out
}

/// Every field of a header block as `Name: decoded value` lines, capped.
///
/// A value without an encoded word (`=?`) decodes to itself unfolded, which is written straight
/// into the result instead of through [`decode_header_value`]'s copies.
pub fn header_text_in(header: &[u8]) -> String {
    let mut out = String::with_capacity(header.len().min(MAX_SEARCH_TEXT_BYTES));
    let mut unfolded = Vec::new();
    for f in fields(header) {
        push_capped(&mut out, &String::from_utf8_lossy(f.name));
        push_capped(&mut out, ": ");
        unfold_into(f.raw_value, &mut unfolded);
        if memchr::memmem::find(&unfolded, b"=?").is_none() {
            push_capped(&mut out, &String::from_utf8_lossy(&unfolded));
        } else {
            push_capped(&mut out, &decode_header_value(f.raw_value));
        }
        push_capped(&mut out, "\n");
    }
    out
}

/// [`unfold`] into a reused buffer: CR and LF removed, then leading and trailing blanks.
fn unfold_into(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut rest = raw;
    while let Some(i) = memchr::memchr2(b'\r', b'\n', rest) {
        out.extend_from_slice(rest.get(..i).unwrap_or_default());
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    let lead = out.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    let trail = out
        .get(lead..)
        .unwrap_or_default()
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    out.truncate(out.len() - trail);
    out.drain(..lead);
}

/// What SEARCH's header keys need of a header block, in one pass over its
/// fields: for each field named in `names` (case-insensitive), its index in
/// `names` and its decoded value casemapped (address fields get a second
/// entry, their [`address_search_text`] casemapped); and the date of the last
/// Date: field (the one ENVELOPE reports).
pub fn search_fields_in(
    header: &[u8],
    names: &[&[u8]],
) -> (Vec<(usize, String)>, Option<SentDate>) {
    let mut values = Vec::new();
    let mut date: Option<&[u8]> = None;
    for f in fields(header) {
        if f.name.eq_ignore_ascii_case(b"Date") {
            date = Some(f.raw_value);
        }
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(f.name)) {
            values.push((i, lowercase(decode_header_value(f.raw_value))));
            if is_address_field(f.name) {
                values.push((i, lowercase(address_search_text(f.raw_value))));
            }
        }
    }
    (values, date.and_then(|d| SentDate::parse(&unfold(d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_header_value(b" =?utf-8?q?J=C3=B6rg?= <j@x>"),
            "Jörg <j@x>"
        );
        assert_eq!(
            decode_header_value(b"=?iso-8859-1?q?a?=  =?iso-8859-1?q?b?= c"),
            "ab c"
        );
        assert_eq!(
            decode_header_value(b"=?utf-8?b?w6k=?=\n =?utf-8?b?w6k=?="),
            "éé"
        );
        assert_eq!(decode_header_value(b"plain =?bogus"), "plain =?bogus");
        // Multi-byte charsets come from encoding_rs (mail-parser's full_encoding): Japanese mail
        // still uses ISO-2022-JP, and SORT/SEARCH must see the text, not escape sequences.
        assert_eq!(
            decode_header_value(b"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?="),
            "\u{65e5}\u{672c}\u{8a9e}"
        );
        // Without encoded words: unfolded, raw 8-bit read as UTF-8, invalid bytes replaced.
        assert_eq!(decode_header_value(b" a\r\n\tb \r\n"), "a\tb");
        assert_eq!(decode_header_value("J\u{f6}rg".as_bytes()), "J\u{f6}rg");
        assert_eq!(decode_header_value(b"x\xffy"), "x\u{fffd}y");
    }

    #[test]
    fn search_form_is_casemap() {
        for s in ["", "ABC def", "Grüße KÖLN", "ΑΣ", "x\u{fffd}Y"] {
            assert_eq!(
                lowercase(s.to_owned()),
                super::super::casemap::casemap(s),
                "{s}"
            );
        }
    }

    #[test]
    fn folding_match() {
        assert!(contains_folded("Grüße aus KÖLN", "köln"));
        // Precomposed and decomposed letters are the same under i;unicode-casemap.
        assert!(contains_folded("Cafe\u{301}", "CAFÉ"));
        assert!(contains_folded("abc", ""));
        assert!(!contains_folded("abc", "abd"));
    }

    #[test]
    fn header_text_decodes_like_each_value() {
        let header: &[u8] = b"Subject: \t plain\r\n  folded \r\nX-Enc: a =?utf-8?q?J=C3=B6rg?=\r\n\
            X-Cr: =\r?not-a-word\r\nX-Empty:\r\nX-Blank:  \t \r\nX-Bad: caf\xe9\r\n\r\n";
        let want: String = fields(header)
            .map(|f| {
                format!(
                    "{}: {}\n",
                    String::from_utf8_lossy(f.name),
                    decode_header_value(f.raw_value)
                )
            })
            .collect();
        assert_eq!(header_text_in(header), want);
        assert!(want.contains("Subject: plain  folded\n"));
        assert!(want.contains("X-Enc: a Jörg\n"));
        let mut v = Vec::new();
        for raw in [&b""[..], b" ", b"\r\n \t", b" a\r\n b ", b"\tx\ry\n"] {
            unfold_into(raw, &mut v);
            assert_eq!(v, unfold(raw), "{raw:?}");
        }
    }

    #[test]
    fn addresses_are_searched_without_comments_and_folding() {
        assert_eq!(
            address_search_text(b"<user-from (comment)@ (comment) domain.org>"),
            "user-from@domain.org"
        );
        assert_eq!(
            address_search_text(
                b"=?utf-8?q?J=C3=B6rg?= <j (x)\r\n @ x.org>, b (c) . d @ e (Bee), G: h@i;, nohost"
            ),
            "J\u{f6}rg <j@x.org>, Bee <b.d@e>, h@i, nohost"
        );
        let header = b"From: <user-from (comment)@ (comment) domain.org>\r\nSubject: s\r\n\r\n";
        let values = header_search_values_in(header, b"from");
        assert!(values.iter().any(|v| v.contains("user-from@domain.org")));
        assert!(values.iter().any(|v| v.contains("(comment)")));
        assert_eq!(header_search_values_in(header, b"Subject"), vec!["s"]);
        let (fields, _) = search_fields_in(header, &[b"From"]);
        assert_eq!(
            fields,
            vec![
                (
                    0,
                    super::super::casemap::casemap("<user-from (comment)@ (comment) domain.org>")
                ),
                (0, super::super::casemap::casemap("user-from@domain.org"))
            ]
        );
    }
}
