//! Where the header and body data of one message come from: the search header cache, the
//! header block of the file, or the message itself (capped).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::imap::proto::types::Date;
use crate::limits::MAX_SEARCH_HEADER_CACHE_BYTES;
use crate::mime::{
    MessageInfo, SentDate, header_search_values_in, header_text_in, search_fields_in,
};
use crate::storage::CacheField;

/// The storage cache field holding a message's [`CACHED_FIELDS`] for SEARCH: a magic line, then
/// those header lines as `BODY[HEADER.FIELDS (...)]` would return them. Number 16 is taken by
/// SEARCH; the blob's magic makes a clash with another user of the number read as a miss.
pub const SEARCH_HEADER_CACHE: CacheField = CacheField(16);

/// The header fields the search cache keeps: those the SEARCH keys FROM, TO, CC, BCC, SUBJECT
/// and SENT* name, which is what clients search by far most often.
pub const CACHED_FIELDS: &[&[u8]] = &[b"From", b"To", b"Cc", b"Bcc", b"Subject", b"Date"];

// Version 4: values in the i;unicode-casemap form (version 2 held them lower-cased), and address
// fields also hold their addresses without comments (CFWS) (version 3 had one of the two).
const CACHE_MAGIC: &[u8] = b"MCSEARCH4\r\n";

/// True when `name` is one of [`CACHED_FIELDS`] (case-insensitive).
pub(crate) fn is_cached_field(name: &[u8]) -> bool {
    cached_index(name).is_some()
}

fn cached_index(name: &[u8]) -> Option<u8> {
    CACHED_FIELDS
        .iter()
        .position(|f| f.eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i).ok())
}

/// The [`SEARCH_HEADER_CACHE`] entry for a header block; `None` when it would be larger than
/// [`MAX_SEARCH_HEADER_CACHE_BYTES`] (such a message is read from its file each time). Whoever
/// reads a header anyway (FETCH on a cache miss) can store it, so a later SEARCH FROM needs no
/// file.
///
/// Layout after the magic: the `Date:` day number (`i64` little-endian, `i64::MIN` for none),
/// then for each occurrence of a cached field: its index in [`CACHED_FIELDS`] (one byte), the
/// length of its value (`u32` little-endian) and the value decoded (RFC 2047) and casemapped (RFC 5051),
/// exactly what a header key compares with, so answering from the cache is a substring scan.
/// An address field has a second entry: its addresses without comments and folding
/// whitespace ([`crate::mime::address_search_text`]), casemapped.
pub fn cache_blob(header: &[u8]) -> Option<Bytes> {
    let (values, date) = search_fields_in(header, CACHED_FIELDS);
    let len = CACHE_MAGIC.len() + 8 + values.iter().map(|(_, v)| 5 + v.len()).sum::<usize>();
    if len > MAX_SEARCH_HEADER_CACHE_BYTES {
        return None;
    }
    let mut blob = Vec::with_capacity(len);
    blob.extend_from_slice(CACHE_MAGIC);
    let day = date.and_then(day_number).unwrap_or(i64::MIN);
    blob.extend_from_slice(&day.to_le_bytes());
    for (i, v) in values {
        blob.push(u8::try_from(i).ok()?);
        blob.extend_from_slice(&u32::try_from(v.len()).ok()?.to_le_bytes());
        blob.extend_from_slice(v.as_bytes());
    }
    Some(Bytes::from(blob))
}

fn day_number(d: SentDate) -> Option<i64> {
    Date::new(d.year, d.month, d.day).map(Date::days_since_epoch)
}

/// A checked search cache entry (see [`cache_blob`]).
pub(crate) struct Cached {
    blob: Bytes,
    sent_day: Option<i64>,
}

impl Cached {
    /// `None` when the blob is not a well-formed entry of this version.
    fn new(blob: Bytes) -> Option<Cached> {
        let rest = blob.strip_prefix(CACHE_MAGIC)?;
        let day = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let c = Cached {
            sent_day: (day != i64::MIN).then_some(day),
            blob: blob.clone(),
        };
        // Walk it once: a blob that does not end exactly after its last entry is refused.
        let mut it = c.entries();
        it.by_ref().for_each(drop);
        (it.pos == c.blob.len()).then_some(c)
    }

    fn entries(&self) -> Entries<'_> {
        Entries {
            blob: &self.blob,
            pos: CACHE_MAGIC.len() + 8,
        }
    }
}

struct Entries<'a> {
    blob: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let idx = *self.blob.get(self.pos)?;
        let len = self.blob.get(self.pos + 1..self.pos + 5)?;
        let len = usize::try_from(u32::from_le_bytes(len.try_into().ok()?)).ok()?;
        let start = self.pos + 5;
        let value = self.blob.get(start..start.checked_add(len)?)?;
        self.pos = start + len;
        Some((idx, value))
    }
}

/// The form SEARCH compares text in: `i;unicode-casemap` (RFC 5051), the comparator of
/// I18NLEVEL=1 (RFC 5255 section 4.2); in place when the text is ASCII.
fn lower(s: String) -> String {
    crate::mime::casemap::fold(s)
}

/// Message data for the header and body stages: a search cache entry, a header block, or the
/// whole message (up to the cap) parsed.
pub(crate) enum Loaded {
    /// From the search cache: answers header keys on [`CACHED_FIELDS`] and SENT*.
    Cached(Cached),
    /// The header block read from the file.
    Header {
        raw: Vec<u8>,
        header_text: OnceLock<String>,
    },
    /// The message itself.
    Message {
        raw: Vec<u8>,
        info: MessageInfo,
        header_text: OnceLock<String>,
        /// Casemapped decoded body text.
        body: String,
        /// Casemapped header fields of the MIME parts below the top level (for TEXT).
        part_headers: OnceLock<String>,
    },
}

impl Loaded {
    /// Header data from a header block.
    pub(crate) fn header(raw: Vec<u8>) -> Loaded {
        Loaded::Header {
            raw,
            header_text: OnceLock::new(),
        }
    }

    /// Header data from a search cache entry; `None` when the blob is not ours.
    pub(crate) fn from_cache(blob: Bytes) -> Option<Loaded> {
        Cached::new(blob).map(Loaded::Cached)
    }

    /// Header and body data from the (possibly capped) raw message.
    pub(crate) fn message(raw: Vec<u8>) -> Loaded {
        let info = MessageInfo::parse_structure(&raw);
        let body = lower(info.body_text(&raw));
        Loaded::Message {
            raw,
            info,
            header_text: OnceLock::new(),
            body,
            part_headers: OnceLock::new(),
        }
    }

    fn header_block(&self) -> Option<&[u8]> {
        match self {
            Loaded::Cached(_) => None,
            Loaded::Header { raw, .. } => Some(raw),
            Loaded::Message { raw, info, .. } => Some(info.root().header.slice(raw)),
        }
    }

    /// Whether a header field `name` contains the casemapped `needle` (an empty needle: whether
    /// the field is present); `None` when this data does not have the field.
    pub(crate) fn header_matches(&self, name: &[u8], needle: &str) -> Option<bool> {
        if let Loaded::Cached(c) = self {
            let idx = cached_index(name)?;
            let mut values = c.entries().filter(|(i, _)| *i == idx);
            return Some(if needle.is_empty() {
                values.next().is_some()
            } else {
                let finder = memchr::memmem::Finder::new(needle.as_bytes());
                values.any(|(_, v)| finder.find(v).is_some())
            });
        }
        let header = self.header_block()?;
        Some(
            header_search_values_in(header, name)
                .iter()
                .any(|v| needle.is_empty() || lower(v.clone()).contains(needle)),
        )
    }

    /// The decoded, casemapped values of header field `name` (FUZZY keys); `None` when this
    /// data has no header block (a cache entry).
    pub(crate) fn header_values(&self, name: &[u8]) -> Option<Vec<String>> {
        let header = self.header_block()?;
        // Each field's decoded value once (not also the comment-free address form that
        // substring keys get too), so that occurrences are counted once.
        Some(
            crate::mime::fields(header)
                .filter(|f| f.name.eq_ignore_ascii_case(name))
                .map(|f| lower(crate::mime::decode_header_value(f.raw_value)))
                .collect(),
        )
    }

    /// The `Date:` header's day number, if there is a usable one; the outer `None` when this
    /// data cannot tell.
    pub(crate) fn sent_day(&self) -> Option<Option<i64>> {
        match self {
            Loaded::Cached(c) => Some(c.sent_day),
            // The date of the last Date: field, as ENVELOPE reports it.
            Loaded::Header { .. } | Loaded::Message { .. } => Some(
                search_fields_in(self.header_block()?, &[])
                    .1
                    .and_then(day_number),
            ),
        }
    }

    /// Every header field as decoded text, casemapped (for TEXT); `None` from the cache.
    pub(crate) fn header_text(&self) -> Option<&str> {
        let (Loaded::Header { header_text, .. } | Loaded::Message { header_text, .. }) = self
        else {
            return None;
        };
        let header = self.header_block()?;
        Some(header_text.get_or_init(|| lower(header_text_in(header))))
    }

    /// Casemapped header fields of every MIME part below the top level, when the message was
    /// read (TEXT matches them as well as the top-level header and the body).
    pub(crate) fn part_headers(&self) -> Option<&str> {
        match self {
            Loaded::Message {
                raw,
                info,
                part_headers,
                ..
            } => Some(part_headers.get_or_init(|| lower(info.part_headers_text(raw)))),
            _ => None,
        }
    }

    /// Casemapped decoded body text, when the message was read.
    pub(crate) fn body(&self) -> Option<&str> {
        match self {
            Loaded::Message { body, .. } => Some(body),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(header: &[u8]) -> Loaded {
        let blob = cache_blob(header).unwrap_or_default();
        let Some(l) = Loaded::from_cache(blob) else {
            panic!("own blob refused");
        };
        l
    }

    #[test]
    fn cache_blob_answers_like_the_header_for_search_fields_only() {
        let header = b"Received: from x\r\nFrom: =?UTF-8?B?SsO2cmc=?= <j@x>\r\nSubject: hi\r\n There\r\nX-Other: y\r\nCc:\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n";
        let c = cached(header);
        let h = Loaded::header(header.to_vec());
        for (name, needle, want) in [
            (&b"from"[..], "jörg <j@x>", Some(true)),
            (b"FROM", "=?utf-8", Some(false)),
            (b"Subject", "hi there", Some(true)),
            (b"Cc", "", Some(true)),
            (b"To", "", Some(false)),
            (b"Bcc", "x", Some(false)),
        ] {
            let needle = &crate::mime::casemap::casemap(needle);
            assert_eq!(c.header_matches(name, needle), want, "{name:?} {needle}");
            assert_eq!(h.header_matches(name, needle), want, "{name:?} {needle}");
        }
        // Fields outside the cached set are unknown to the cache, not absent.
        assert_eq!(c.header_matches(b"Received", ""), None);
        assert_eq!(h.header_matches(b"Received", ""), Some(true));
        let day = Date::new(1994, 2, 7).map(Date::days_since_epoch);
        assert_eq!(c.sent_day(), Some(day));
        assert_eq!(h.sent_day(), Some(day));
        assert!(c.header_text().is_none());
        // A blob written by someone else under the same field number is a miss, and so is a
        // truncated or padded one.
        assert!(Loaded::from_cache(Bytes::from_static(b"MCMI\x01garbage")).is_none());
        let blob = cache_blob(header).unwrap_or_default();
        assert!(Loaded::from_cache(blob.slice(..blob.len() - 1)).is_none());
        let mut padded = blob.to_vec();
        padded.push(0);
        assert!(Loaded::from_cache(Bytes::from(padded)).is_none());
    }

    #[test]
    fn missing_or_bad_date_is_cached_as_none() {
        assert_eq!(cached(b"From: a\r\n\r\n").sent_day(), Some(None));
        assert_eq!(cached(b"Date: someday\r\n\r\n").sent_day(), Some(None));
    }

    #[test]
    fn oversized_field_set_is_not_cached() {
        let mut header = b"To: ".to_vec();
        header.extend(std::iter::repeat_n(b'a', MAX_SEARCH_HEADER_CACHE_BYTES));
        header.extend_from_slice(b"\r\n\r\n");
        assert!(cache_blob(&header).is_none());
    }

    #[test]
    fn a_read_message_is_parsed_without_envelopes_and_dates_come_from_its_header() {
        let raw = b"Date: Tue, 1 Feb 2022 10:00:00 +0000\r\nFrom: a@x\r\n\
Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
From: inner@x\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n";
        let full = MessageInfo::parse(raw);
        let mut stripped = full.clone();
        for p in &mut stripped.parts {
            p.envelope = None;
        }
        assert!(full.parts.iter().any(|p| p.envelope.is_some()));
        assert_eq!(MessageInfo::parse_structure(raw), stripped);
        let l = Loaded::message(raw.to_vec());
        let day = Date::new(1994, 2, 7).map(Date::days_since_epoch);
        assert_eq!(l.sent_day(), Some(day));
        assert_eq!(full.sent_date().and_then(day_number), day);
        assert!(l.body().unwrap_or_default().contains("INNER BODY"));
    }

    #[test]
    fn lower_is_unicode_casemap() {
        for s in [
            "",
            "ABC def",
            "Grüße aus KÖLN, ÀÉÎ",
            "İSTANBUL \u{212a}elvin",
            "ΟΔΟΣ ΣΟΦΟΣ Σ.",
            "Ünïcödé ÜBER ALLES \u{1e9e} ＡＢＣ",
            "ПРИВЕТ мир",
            "日本語テキスト ABC",
        ] {
            assert_eq!(lower(s.to_owned()), crate::mime::casemap::casemap(s), "{s}");
        }
    }

    #[test]
    fn message_text_is_lower_cased_and_decoded() {
        let raw = b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCAF=C9 cr=E8me\r\n".to_vec();
        let l = Loaded::message(raw);
        assert!(
            l.body()
                .unwrap_or_default()
                .contains(&crate::mime::casemap::casemap("café crème"))
        );
        assert!(l.header_text().unwrap_or_default().contains("SUBJECT: X"));
    }

    #[test]
    fn addresses_match_without_comments_from_cache_and_header() {
        let header = b"From: <user-from (comment)@ (comment) domain.org>\r\n\
To: Ann (x) <ann (y) @ (z) EXAMPLE.org>\r\nCc: plain@example.org\r\n\r\n";
        let c = cached(header);
        let h = Loaded::header(header.to_vec());
        for (name, needle, want) in [
            (&b"From"[..], "user-from@domain.org", true),
            (b"From", "(comment)", true),
            (b"To", "ann@example.org", true),
            (b"To", "ann <ann@example.org>", true),
            (b"Cc", "plain@example.org", true),
            (b"Cc", "user-from", false),
            (b"From", "user-from@domain.org>", false),
        ] {
            // Callers hand over the needle in the compared form (i;unicode-casemap).
            let needle = &crate::mime::casemap::casemap(needle);
            assert_eq!(
                c.header_matches(name, needle),
                Some(want),
                "{name:?} {needle}"
            );
            assert_eq!(
                h.header_matches(name, needle),
                Some(want),
                "{name:?} {needle}"
            );
        }
    }
}
