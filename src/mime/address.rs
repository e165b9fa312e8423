//! ENVELOPE fields and RFC 5322 address lists, parsed the way Dovecot's
//! `message-address.c` does with `fill_missing` (what its ENVELOPE uses):
//! display names are phrases with quotes removed and encoded-words left as
//! they are, an addr-spec's trailing comment becomes its name, a missing local
//! part is `MISSING_MAILBOX`, a missing domain `MISSING_DOMAIN`, a broken
//! `<...>` gets the domain `SYNTAX_ERROR`, groups become a start marker
//! `(NIL NIL "name" NIL)` and an end marker `(NIL NIL NIL NIL)`. Parsing stops
//! at garbage between addresses (as Dovecot); empty list elements (`a, ,b`) are
//! skipped instead of becoming MISSING_MAILBOX entries, and so is an entry
//! with nothing in it (no name, no local part, no domain, no `<...>`), which
//! only fill-in text would describe. At most [`MAX_ENVELOPE_ADDRESSES`] entries
//! are kept per header, so the fixed text of each entry cannot amplify a
//! header of tiny broken addresses without bound.
//!
//! Comments and folding whitespace (RFC 5322 CFWS) may stand between every
//! token of an addr-spec (`<user (c)@ (c) example.org>`); they are dropped, so
//! mailbox and host are the clean `user` and `example.org`.

use super::header::{Lexer, unfold};
use super::{Address, Envelope};
use crate::limits::MAX_ENVELOPE_ADDRESSES;

/// RFC 5322 `atext`; 8-bit bytes are accepted (raw UTF-8 names exist).
pub(crate) fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Stores one header field into the envelope when it is an envelope field.
pub(crate) fn envelope_field(e: &mut Envelope, name: &[u8], raw_value: &[u8]) {
    let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
    if is("Date") {
        e.date = Some(unfold(raw_value));
    } else if is("Subject") {
        e.subject = Some(unfold(raw_value));
    } else if is("Message-ID") {
        e.message_id = Some(unfold(raw_value));
    } else if is("In-Reply-To") {
        e.in_reply_to = Some(unfold(raw_value));
    } else if is("From") {
        e.from = parse_address_list(raw_value);
    } else if is("Sender") {
        e.sender = parse_address_list(raw_value);
    } else if is("Reply-To") {
        e.reply_to = parse_address_list(raw_value);
    } else if is("To") {
        e.to = parse_address_list(raw_value);
    } else if is("Cc") {
        e.cc = parse_address_list(raw_value);
    } else if is("Bcc") {
        e.bcc = parse_address_list(raw_value);
    }
}

/// Parses an address-list header value into ENVELOPE addresses.
pub(crate) fn parse_address_list(raw_value: &[u8]) -> Vec<Address> {
    let v = unfold(raw_value);
    let mut p = Lexer::new(&v);
    let mut out = Vec::new();
    loop {
        p.skip_cfws();
        while p.eat(b',') {
            p.skip_cfws();
        }
        if p.at_end() || out.len() >= MAX_ENVELOPE_ADDRESSES {
            break;
        }
        let before = p.i;
        parse_address(&mut p, &mut out);
        p.skip_cfws();
        if p.i == before || !p.eat(b',') {
            break;
        }
    }
    out
}

fn parse_address(p: &mut Lexer<'_>, out: &mut Vec<Address>) {
    let start = p.i;
    if let Some(name) = phrase(p)
        && p.eat(b':')
    {
        // A group needs its start and end markers: both fit or neither is written.
        if out.len() + 2 > MAX_ENVELOPE_ADDRESSES {
            return;
        }
        out.push(Address {
            mailbox: Some(name),
            ..Address::default()
        });
        loop {
            p.skip_cfws();
            while p.eat(b',') {
                p.skip_cfws();
            }
            // Keep one entry for the end marker.
            if p.at_end() || p.eat(b';') || out.len() + 1 >= MAX_ENVELOPE_ADDRESSES {
                break;
            }
            let before = p.i;
            out.extend(parse_mailbox(p));
            p.skip_cfws();
            if p.i == before {
                break;
            }
            if p.eat(b';') {
                break;
            }
            if !p.eat(b',') {
                break;
            }
        }
        out.push(Address::default());
        return;
    }
    p.i = start;
    out.extend(parse_mailbox(p));
}

/// `mailbox = name-addr / addr-spec`, with Dovecot's fill-ins; `None` for an
/// entry without a name, a local part, a domain or angle brackets (garbage that
/// only the fill-in text would describe).
fn parse_mailbox(p: &mut Lexer<'_>) -> Option<Address> {
    let start = p.i;
    let mut a = Address::default();
    let name = phrase(p);
    p.skip_cfws();
    let angle = p.peek() == Some(b'<');
    if angle {
        a.name = name.filter(|n| !n.is_empty());
        if !angle_addr(p, &mut a) {
            a.host = Some(b"SYNTAX_ERROR".to_vec());
            // Resynchronise after the closing '>' or at the next ','.
            while let Some(c) = p.peek() {
                if c == b',' {
                    break;
                }
                p.i += 1;
                if c == b'>' {
                    break;
                }
            }
        }
    } else {
        p.i = start;
        p.last_comment.clear();
        p.skip_cfws();
        a.mailbox = local_part(p);
        p.skip_cfws();
        if a.mailbox.is_some() && p.eat(b'@') {
            a.host = domain(p);
        }
        p.skip_cfws();
        if !p.last_comment.is_empty() {
            a.name = Some(std::mem::take(&mut p.last_comment));
        }
    }
    let empty = a.mailbox.as_ref().is_none_or(Vec::is_empty)
        && a.host.is_none()
        && a.name.is_none()
        && a.adl.is_none();
    if empty && !angle {
        return None;
    }
    if a.mailbox.is_none() {
        a.mailbox = Some(b"MISSING_MAILBOX".to_vec());
    }
    if a.host.is_none() {
        a.host = Some(b"MISSING_DOMAIN".to_vec());
    }
    Some(a)
}

/// `"<" [route ":"] local-part ["@" domain] ">"`; false when broken.
fn angle_addr(p: &mut Lexer<'_>, a: &mut Address) -> bool {
    p.i += 1;
    p.skip_cfws();
    if p.peek() == Some(b'@') {
        let mut route = Vec::new();
        while p.eat(b'@') {
            if !route.is_empty() {
                route.push(b',');
            }
            route.push(b'@');
            match domain(p) {
                Some(d) => route.extend_from_slice(&d),
                None => return false,
            }
            p.skip_cfws();
            while p.eat(b',') {
                p.skip_cfws();
            }
        }
        if !p.eat(b':') {
            a.adl = Some(b"INVALID_ROUTE".to_vec());
            return false;
        }
        a.adl = Some(route);
        p.skip_cfws();
    }
    if p.eat(b'>') {
        // "<>" (null reverse path): no mailbox, no domain.
        return true;
    }
    a.mailbox = local_part(p);
    if a.mailbox.is_none() {
        return false;
    }
    p.skip_cfws();
    if p.eat(b'@') {
        a.host = domain(p);
        if a.host.is_none() {
            return false;
        }
        p.skip_cfws();
    }
    p.eat(b'>')
}

/// A phrase: words (atoms, quoted strings, obsolete dots) joined by one space.
/// `None` when there is no word at all.
fn phrase(p: &mut Lexer<'_>) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let mut any = false;
    loop {
        p.skip_cfws();
        match p.peek() {
            Some(b'"') => {
                if any {
                    out.push(b' ');
                }
                out.extend_from_slice(&p.quoted());
            }
            Some(c) if is_atext(c) || c == b'.' => {
                if any {
                    out.push(b' ');
                }
                out.extend_from_slice(p.take_while(|b| is_atext(b) || b == b'.'));
            }
            _ => break,
        }
        any = true;
    }
    any.then_some(out)
}

/// `local-part = dot-atom / quoted-string / obs-local-part`.
fn local_part(p: &mut Lexer<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut any = false;
    loop {
        p.skip_cfws();
        match p.peek() {
            Some(b'"') => out.extend_from_slice(&p.quoted()),
            Some(c) if is_atext(c) => out.extend_from_slice(p.take_while(is_atext)),
            _ => break,
        }
        any = true;
        p.skip_cfws();
        if p.peek() == Some(b'.') {
            p.i += 1;
            out.push(b'.');
        } else {
            break;
        }
    }
    any.then_some(out)
}

/// `domain = dot-atom / domain-literal`.
fn domain(p: &mut Lexer<'_>) -> Option<Vec<u8>> {
    p.skip_cfws();
    if p.peek() == Some(b'[') {
        let lit = p.take_while(|b| b != b']').to_vec();
        let mut lit = lit;
        if p.eat(b']') {
            lit.push(b']');
        }
        p.skip_cfws();
        return Some(lit);
    }
    let mut out = Vec::new();
    loop {
        p.skip_cfws();
        let a = p.take_while(is_atext);
        if a.is_empty() {
            break;
        }
        out.extend_from_slice(a);
        p.skip_cfws();
        if p.peek() == Some(b'.') {
            p.i += 1;
            out.push(b'.');
        } else {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: Option<&str>, mb: Option<&str>, host: Option<&str>) -> Address {
        Address {
            name: name.map(|s| s.as_bytes().to_vec()),
            adl: None,
            mailbox: mb.map(|s| s.as_bytes().to_vec()),
            host: host.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn plain_named_commented() {
        let l = parse_address_list(
            b" \"Doe, John\" <john@ex.com>, jane@ex.org (Jane D),\n <bob@ex.net>",
        );
        assert_eq!(
            l,
            vec![
                a(Some("Doe, John"), Some("john"), Some("ex.com")),
                a(Some("Jane D"), Some("jane"), Some("ex.org")),
                a(None, Some("bob"), Some("ex.net")),
            ]
        );
    }

    #[test]
    fn missing_parts_and_groups() {
        assert_eq!(
            parse_address_list(b"user"),
            vec![a(None, Some("user"), Some("MISSING_DOMAIN"))]
        );
        let l = parse_address_list(b"Team: a@b, c@d;, undisclosed-recipients:;");
        assert_eq!(
            l,
            vec![
                a(None, Some("Team"), None),
                a(None, Some("a"), Some("b")),
                a(None, Some("c"), Some("d")),
                Address::default(),
                a(None, Some("undisclosed-recipients"), None),
                Address::default(),
            ]
        );
    }

    #[test]
    fn route_and_encoded_name() {
        let l = parse_address_list(b"=?utf-8?q?J=C3=B6rg?= <@r1,@r2:j@x.y>");
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].name.as_deref(), Some(&b"=?utf-8?q?J=C3=B6rg?="[..]));
        assert_eq!(l[0].adl.as_deref(), Some(&b"@r1,@r2"[..]));
        assert_eq!(l[0].mailbox.as_deref(), Some(&b"j"[..]));
    }

    #[test]
    fn comments_and_folding_inside_addr_spec_are_dropped() {
        // RFC 5322 section 3.4.1: CFWS may surround every token of an addr-spec.
        assert_eq!(
            parse_address_list(b"<user-from (comment)@ (comment) domain.org>"),
            vec![a(None, Some("user-from"), Some("domain.org"))]
        );
        assert_eq!(
            parse_address_list(b"Name <john (x) . (y)\r\n doe@ex (z) . com>"),
            vec![a(Some("Name"), Some("john.doe"), Some("ex.com"))]
        );
        // Outside angle brackets the last comment becomes the name.
        assert_eq!(
            parse_address_list(b"user (a) @ (b)\r\n\tdomain.org (Real Name)"),
            vec![a(Some("Real Name"), Some("user"), Some("domain.org"))]
        );
        assert_eq!(
            parse_address_list(b"(c)\"q u\"(c)@(c)[1.2.3.4](c)"),
            vec![a(Some("c"), Some("q u"), Some("[1.2.3.4]"))]
        );
    }

    #[test]
    fn entries_without_content_are_dropped_but_null_path_kept() {
        assert_eq!(
            parse_address_list(b"a@b, @"),
            vec![a(None, Some("a"), Some("b"))]
        );
        assert_eq!(parse_address_list(b"\"\""), vec![]);
        assert_eq!(
            parse_address_list(b"<>"),
            vec![a(None, Some("MISSING_MAILBOX"), Some("MISSING_DOMAIN"))]
        );
        assert_eq!(
            parse_address_list(b"G: @;"),
            vec![a(None, Some("G"), None), Address::default()]
        );
    }

    #[test]
    fn entries_per_header_are_capped_and_groups_stay_closed() {
        let many = b"x,".repeat(3 * MAX_ENVELOPE_ADDRESSES);
        let l = parse_address_list(&many);
        assert_eq!(l.len(), MAX_ENVELOPE_ADDRESSES);
        assert!(
            l.iter()
                .all(|e| *e == a(None, Some("x"), Some("MISSING_DOMAIN")))
        );
        let mut group = b"g: ".to_vec();
        group.extend(b"y@z, ".repeat(2 * MAX_ENVELOPE_ADDRESSES));
        group.extend_from_slice(b";");
        let l = parse_address_list(&group);
        assert_eq!(l.len(), MAX_ENVELOPE_ADDRESSES);
        assert_eq!(l.first(), Some(&a(None, Some("g"), None)));
        assert_eq!(l.last(), Some(&Address::default()));
        // A group that no longer fits is left out whole.
        let mut late = b"x,".repeat(MAX_ENVELOPE_ADDRESSES - 1);
        late.extend_from_slice(b"g: y@z;");
        let l = parse_address_list(&late);
        assert_eq!(l.len(), MAX_ENVELOPE_ADDRESSES - 1);
        assert!(l.iter().all(|e| e.host.is_some()));
    }
}
