//! Addresses as the `address` and `envelope` tests see them (RFC 5228 section 2.7.4) with the
//! `:user`/`:detail` parts of RFC 5233 (`subaddress`, separator `+` as Pigeonhole's default
//! `recipient_delimiter`). Header address lists are parsed by `crate::mime`'s ENVELOPE parser.

use super::ast::AddressPart;
use crate::mime::parse_address_list;

/// The subaddress separator.
pub const DETAIL_SEPARATOR: char = '+';

/// One address: local part and domain (either may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// The local part.
    pub local: String,
    /// The domain.
    pub domain: String,
}

/// The addresses of a header field's raw value; groups contribute their members, and the
/// ENVELOPE parser's fill-ins for missing parts read as empty.
pub fn header_addresses(raw_value: &[u8]) -> Vec<Addr> {
    parse_address_list(raw_value)
        .into_iter()
        .filter(|a| a.host.is_some())
        .map(|a| {
            let clean = |v: Option<Vec<u8>>, fill: &[u8]| -> String {
                match v {
                    Some(v) if v != fill && v != b"SYNTAX_ERROR" => {
                        String::from_utf8_lossy(&v).into_owned()
                    }
                    _ => String::new(),
                }
            };
            Addr {
                local: clean(a.mailbox, b"MISSING_MAILBOX"),
                domain: clean(a.host, b"MISSING_DOMAIN"),
            }
        })
        .collect()
}

/// An envelope address (`user@domain`, no brackets).
pub fn envelope_address(s: &str) -> Addr {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    match s.rsplit_once('@') {
        Some((l, d)) => Addr {
            local: l.to_string(),
            domain: d.to_string(),
        },
        None => Addr {
            local: s.to_string(),
            domain: String::new(),
        },
    }
}

/// The part of `a` a test compares; `None` when the part does not exist (`:detail` of an
/// address without a separator, RFC 5233 section 4).
pub fn part(a: &Addr, part: AddressPart) -> Option<String> {
    match part {
        AddressPart::All => Some(if a.domain.is_empty() {
            a.local.clone()
        } else {
            format!("{}@{}", a.local, a.domain)
        }),
        AddressPart::Localpart => Some(a.local.clone()),
        AddressPart::Domain => Some(a.domain.clone()),
        AddressPart::User => Some(
            a.local
                .split_once(DETAIL_SEPARATOR)
                .map_or(a.local.as_str(), |(u, _)| u)
                .to_string(),
        ),
        AddressPart::Detail => a
            .local
            .split_once(DETAIL_SEPARATOR)
            .map(|(_, d)| d.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_subaddress() {
        let v = header_addresses(b" \"Ken\" <ken+sieve@example.org>, group: a@b.c;\r\n");
        assert_eq!(v.len(), 2);
        assert_eq!(part(&v[0], AddressPart::User).as_deref(), Some("ken"));
        assert_eq!(part(&v[0], AddressPart::Detail).as_deref(), Some("sieve"));
        assert_eq!(
            part(&v[0], AddressPart::Domain).as_deref(),
            Some("example.org")
        );
        assert_eq!(part(&v[1], AddressPart::All).as_deref(), Some("a@b.c"));
        assert_eq!(part(&v[1], AddressPart::Detail), None);
        let e = envelope_address("ken+@example.org");
        assert_eq!(part(&e, AddressPart::Detail).as_deref(), Some(""));
    }
}
