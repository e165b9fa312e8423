//! The METADATA response (RFC 5464 4.4.1): `* METADATA mailbox (entry value ...)`.
//!
//! `metadata-resp = "METADATA" SP mailbox SP (entry-values / entry-list)`,
//! `entry-value = entry SP value` and `value = nstring / literal8`: a value with a NUL can only
//! travel as `literal8` (`~{n}`), anything else as a quoted string or a literal.

use super::string::{write_astring, write_mailbox, write_nstring};

/// `* METADATA mailbox (entry value ...)\r\n`; `None` values are `NIL`. `entries` must not be
/// empty (the grammar needs one pair at least).
pub fn metadata(out: &mut Vec<u8>, mailbox: &[u8], entries: &[(&str, Option<&[u8]>)]) {
    out.extend_from_slice(b"* METADATA ");
    write_mailbox(out, mailbox);
    out.extend_from_slice(b" (");
    for (i, (name, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_astring(out, name.as_bytes());
        out.push(b' ');
        match value {
            Some(v) if v.contains(&0) => {
                out.extend_from_slice(b"~{");
                out.extend_from_slice(v.len().to_string().as_bytes());
                out.extend_from_slice(b"}\r\n");
                out.extend_from_slice(v);
            }
            _ => write_nstring(out, *value),
        }
    }
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_literal_literal8_or_nil_by_content() {
        let mut out = Vec::new();
        metadata(
            &mut out,
            b"INBOX",
            &[
                ("/private/comment", Some(&b"My \"own\" comment"[..])),
                ("/shared/comment", None),
                ("/shared/two", Some(&b"a\r\nb"[..])),
                ("/shared/bin", Some(&b"\0x"[..])),
            ],
        );
        assert_eq!(
            out,
            b"* METADATA INBOX (/private/comment \"My \\\"own\\\" comment\" /shared/comment NIL \
              /shared/two {4}\r\na\r\nb /shared/bin ~{2}\r\n\0x)\r\n"
        );
        out.clear();
        metadata(
            &mut out,
            b"",
            &[("/shared/admin", Some(&b"mailto:a@b"[..]))],
        );
        assert_eq!(out, b"* METADATA \"\" (/shared/admin \"mailto:a@b\")\r\n");
    }
}
