//! Where the header and body data of one message come from: the search header cache, the
//! header block of the file, or the message itself (capped).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::imap::proto::types::Date;
use crate::limits::MAX_SEARCH_HEADER_CACHE_BYTES;
use crate::mime::{MessageInfo, header_fields};
use crate::storage::CacheField;

/// The storage cache field holding a message's [`CACHED_FIELDS`] for SEARCH: a magic line, then
/// those header lines as `BODY[HEADER.FIELDS (...)]` would return them. Number 16 is taken by
/// SEARCH; the blob's magic makes a clash with another user of the number read as a miss.
pub const SEARCH_HEADER_CACHE: CacheField = CacheField(16);

/// The header fields the search cache keeps: those the SEARCH keys FROM, TO, CC, BCC, SUBJECT
/// and SENT* name, which is what clients search by far most often.
pub const CACHED_FIELDS: &[&[u8]] = &[b"From", b"To", b"Cc", b"Bcc", b"Subject", b"Date"];

const CACHE_MAGIC: &[u8] = b"MCSEARCH1\r\n";

/// True when `name` is one of [`CACHED_FIELDS`] (case-insensitive).
pub(crate) fn is_cached_field(name: &[u8]) -> bool {
    CACHED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The cache entry for a header block; `None` when it would be larger than
/// [`MAX_SEARCH_HEADER_CACHE_BYTES`] (such a message is read from its file each time).
pub(crate) fn cache_blob(header: &[u8]) -> Option<Bytes> {
    let fields = header_fields(header, CACHED_FIELDS, false);
    if fields.len() + CACHE_MAGIC.len() > MAX_SEARCH_HEADER_CACHE_BYTES {
        return None;
    }
    let mut blob = Vec::with_capacity(CACHE_MAGIC.len() + fields.len());
    blob.extend_from_slice(CACHE_MAGIC);
    blob.extend_from_slice(&fields);
    Some(Bytes::from(blob))
}

/// Message data for the header and body stages: raw bytes (a header block, a cached field set,
/// or the whole message up to the cap) and their parse.
pub(crate) struct Loaded {
    raw: Vec<u8>,
    info: MessageInfo,
    header_text: OnceLock<String>,
    /// Lower-cased decoded body text, present once the message itself was read.
    body: Option<String>,
}

impl Loaded {
    /// Header data from a header block.
    pub(crate) fn header(raw: Vec<u8>) -> Loaded {
        let info = MessageInfo::parse(&raw);
        Loaded {
            raw,
            info,
            header_text: OnceLock::new(),
            body: None,
        }
    }

    /// Header data from a search cache entry; `None` when the blob is not ours.
    pub(crate) fn from_cache(blob: &[u8]) -> Option<Loaded> {
        let fields = blob.strip_prefix(CACHE_MAGIC)?;
        Some(Loaded::header(fields.to_vec()))
    }

    /// Header and body data from the (possibly capped) raw message.
    pub(crate) fn message(raw: Vec<u8>) -> Loaded {
        let mut l = Loaded::header(raw);
        l.body = Some(l.info.body_text(&l.raw).to_lowercase());
        l
    }

    /// Decoded values of the header fields called `name`.
    pub(crate) fn values(&self, name: &[u8]) -> Vec<String> {
        self.info.header_values(&self.raw, name)
    }

    /// The `Date:` header's day number, if there is a usable one.
    pub(crate) fn sent_day(&self) -> Option<i64> {
        let d = self.info.sent_date()?;
        Date::new(d.year, d.month, d.day).map(Date::days_since_epoch)
    }

    /// Every header field as decoded text, lower-cased (for TEXT).
    pub(crate) fn header_text(&self) -> &str {
        self.header_text
            .get_or_init(|| self.info.header_text(&self.raw).to_lowercase())
    }

    /// Lower-cased decoded body text, when the message was read.
    pub(crate) fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_blob_round_trip_keeps_only_search_fields() {
        let header = b"Received: from x\r\nFrom: =?UTF-8?B?SsO2cmc=?= <j@x>\r\nSubject: hi\r\n there\r\nX-Other: y\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n";
        let blob = cache_blob(header).unwrap_or_default();
        let l = Loaded::from_cache(&blob);
        let Some(l) = l else {
            panic!("own blob refused");
        };
        assert_eq!(l.values(b"from"), vec!["Jörg <j@x>".to_string()]);
        assert_eq!(l.values(b"Subject"), vec!["hi there".to_string()]);
        assert!(l.values(b"Received").is_empty());
        assert!(l.values(b"X-Other").is_empty());
        assert_eq!(
            l.sent_day(),
            Date::new(1994, 2, 7).map(Date::days_since_epoch)
        );
        // A blob written by someone else under the same field number is a miss.
        assert!(Loaded::from_cache(b"MCMI\x01garbage").is_none());
    }

    #[test]
    fn oversized_field_set_is_not_cached() {
        let mut header = b"To: ".to_vec();
        header.extend(std::iter::repeat_n(b'a', MAX_SEARCH_HEADER_CACHE_BYTES));
        header.extend_from_slice(b"\r\n\r\n");
        assert!(cache_blob(&header).is_none());
    }

    #[test]
    fn message_text_is_lower_cased_and_decoded() {
        let raw = b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCAF=C9 cr=E8me\r\n".to_vec();
        let l = Loaded::message(raw);
        assert!(l.body().unwrap_or_default().contains("café crème"));
        assert!(l.header_text().contains("subject: x"));
    }
}
