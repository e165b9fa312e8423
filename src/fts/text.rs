//! The text a message is indexed with: everything a SEARCH string key is compared with by the
//! scan ([`crate::imap::search`]), in the same casemapped form.

use crate::mime::casemap::fold;
use crate::mime::{MessageInfo, header_search_values_in, header_text_in};

/// The address fields whose comment-free form the header keys also match
/// ([`crate::mime::is_address_field`]).
const ADDRESS_FIELDS: &[&[u8]] = &[b"From", b"To", b"Cc", b"Bcc", b"Sender", b"Reply-To"];

/// The casemapped text of a message (read up to [`crate::limits::MAX_SEARCH_MESSAGE_BYTES`], as
/// the scan reads it): the top-level header as `Name: value` lines (decoded), the address fields
/// once more as header keys see them, the headers of the MIME parts (attachment names included)
/// and the decoded text of the text parts. Parts are separated by newlines; a trigram across a
/// separator only widens the candidates.
pub fn message_text(raw: &[u8]) -> String {
    let info = MessageInfo::parse_structure(raw);
    let header = info.root().header.slice(raw);
    let mut out = String::new();
    out.push_str(&fold(header_text_in(header)));
    out.push('\n');
    for name in ADDRESS_FIELDS {
        for v in header_search_values_in(header, name) {
            out.push_str(&fold(v));
            out.push('\n');
        }
    }
    out.push_str(&fold(info.part_headers_text(raw)));
    out.push('\n');
    out.push_str(&fold(info.body_text(raw)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_holds_headers_addresses_part_headers_and_decoded_bodies() {
        let raw = b"From: Ann (x) <ann (y) @ (z) EXAMPLE.org>\r\nSubject: =?UTF-8?B?SsO2cmc=?=\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>CAF=C9 <b>Zanzibar</b></p>\r\n--b\r\n\
Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"Report.pdf\"\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let t = message_text(raw);
        for want in [
            "jörg",
            "ann@example.org",
            "café",
            "zanzibar",
            "report.pdf",
            "attachment",
        ] {
            let want = crate::mime::casemap::casemap(want);
            assert!(t.contains(&want), "{want} not in {t}");
        }
        assert!(!t.contains("<b>"));
    }
}
