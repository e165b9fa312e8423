//! ENVELOPE, BODY and BODYSTRUCTURE for clients that did not enable UTF8=ACCEPT.
//!
//! A message stored with raw UTF-8 header fields (RFC 6532, appended with `APPEND ... UTF8` or
//! delivered over SMTPUTF8) has 8-bit octets in its ENVELOPE and BODYSTRUCTURE strings. RFC 6855
//! 8 makes the server responsible for sending a client that did not enable UTF8=ACCEPT only
//! header information that complies with RFC 3501 and RFC 5322, that is 7-bit. This module
//! rewrites the cached IMAP text of those items for such a client, in the manner of RFC 6858's
//! simplified downgrade (RFC 6855 7 says a downgrade SHOULD follow RFC 6857 or RFC 6858):
//!
//! - text (subject, display names, group names, dates, message ids, body parameters,
//!   descriptions) becomes RFC 2047 encoded-words, `=?utf-8?b?...?=` (`unknown-8bit`, RFC 1428,
//!   for octets that are not UTF-8), which every legacy client decodes for display;
//! - an address whose local part or domain is not ASCII cannot be written at all in RFC 5322,
//!   so it becomes an empty group whose name is the encoded-word of the whole address
//!   (`Name <local@domain>`): the reader sees who it was, and a reply cannot go to a mangled
//!   address;
//! - 7-bit items are sent as cached, untouched.
//!
//! Body sections (`BODY[HEADER]`, `BODY[]`, `RFC822*`, `BINARY[]`) are sent as stored, as
//! Dovecot does (it never downgrades): rewriting them would change RFC822.SIZE, partial fetch
//! offsets and signatures for the same UID depending on the client (the UIDVALIDITY concern of
//! RFC 6855 7). docs/ext-utf8.md says so.
//!
//! The input is our own writer's output (`crate::mime::write_envelope` / `write_body`), read back
//! from the cache. Should it not parse (a damaged cache entry), every 8-bit octet is replaced by
//! `?` in place, which keeps literal lengths right and still sends nothing 8-bit.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::imap::proto::encode::write_string;
use crate::limits::MAX_DOWNGRADE_DEPTH;

/// Which item the text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ENVELOPE list.
    Envelope,
    /// A BODY or BODYSTRUCTURE list.
    Body,
}

/// Rewrites `out[start..]`, one item's IMAP text, for a client without UTF8=ACCEPT: nothing
/// happens unless it has 8-bit octets.
pub fn in_place(out: &mut Vec<u8>, start: usize, kind: Kind) {
    let Some(text) = out.get(start..) else {
        return;
    };
    if text.is_ascii() {
        return;
    }
    let mut fixed = Vec::with_capacity(text.len() * 2);
    if let Some(node) = parse(text) {
        let node = match kind {
            Kind::Envelope => envelope(node),
            Kind::Body => body(node, 0),
        };
        write(&mut fixed, &node);
    } else {
        fixed.extend(text.iter().map(|&b| if b < 0x80 { b } else { b'?' }));
    }
    out.truncate(start);
    out.extend_from_slice(&fixed);
}

/// The IMAP data the items are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    List(Vec<Node>),
    Str(Vec<u8>),
    Nil,
    /// A bare token other than NIL (a number).
    Atom(Vec<u8>),
}

/// Parses one parenthesised item; `None` when it is not well formed or nests deeper than
/// [`MAX_DOWNGRADE_DEPTH`]. Iterative, so no input can recurse deeply.
fn parse(text: &[u8]) -> Option<Node> {
    let mut stack: Vec<Vec<Node>> = Vec::new();
    let mut i = 0usize;
    let mut done: Option<Node> = None;
    while i < text.len() {
        let node = match text[i] {
            b' ' => {
                i += 1;
                continue;
            }
            b'(' => {
                if stack.len() >= MAX_DOWNGRADE_DEPTH || done.is_some() {
                    return None;
                }
                stack.push(Vec::new());
                i += 1;
                continue;
            }
            b')' => {
                i += 1;
                Node::List(stack.pop()?)
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                loop {
                    match *text.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            s.push(*text.get(i + 1)?);
                            i += 2;
                        }
                        b => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                i += 1;
                Node::Str(s)
            }
            b'{' => {
                let close = i + text.get(i..)?.iter().position(|&b| b == b'}')?;
                let n: usize = std::str::from_utf8(text.get(i + 1..close)?)
                    .ok()?
                    .parse()
                    .ok()?;
                if text.get(close + 1..close + 3)? != b"\r\n" {
                    return None;
                }
                let data = text.get(close + 3..close + 3 + n)?;
                i = close + 3 + n;
                Node::Str(data.to_vec())
            }
            _ => {
                let end = text[i..]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'(' | b')'))
                    .map_or(text.len(), |p| i + p);
                let tok = &text[i..end];
                i = end;
                if tok.eq_ignore_ascii_case(b"NIL") {
                    Node::Nil
                } else if tok.iter().all(u8::is_ascii_graphic) {
                    Node::Atom(tok.to_vec())
                } else {
                    return None;
                }
            }
        };
        match stack.last_mut() {
            Some(list) => list.push(node),
            None if done.is_none() => done = Some(node),
            None => return None,
        }
    }
    if stack.is_empty() { done } else { None }
}

/// Writes a node back; strings go through [`write_string`], so they come out quoted when they
/// can be. Recursion is bounded by [`parse`]'s depth limit.
fn write(out: &mut Vec<u8>, node: &Node) {
    match node {
        Node::Nil => out.extend_from_slice(b"NIL"),
        Node::Atom(a) => out.extend_from_slice(a),
        Node::Str(s) => write_string(out, s),
        Node::List(items) => {
            out.push(b'(');
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write(out, n);
            }
            out.push(b')');
        }
    }
}

/// Bytes of text per encoded-word: 45 bytes are 60 base64 characters, so with
/// `=?unknown-8bit?b?` and `?=` a word stays within RFC 2047 2's 75 characters.
const WORD_BYTES: usize = 45;

/// `text` as RFC 2047 encoded-words separated by spaces (which a decoder drops between
/// adjacent encoded-words, RFC 2047 6.2); 7-bit text is returned as it is. UTF-8 is split only
/// at character boundaries, as RFC 2047 5 requires of multi-octet characters.
fn encode_words(text: &[u8]) -> Vec<u8> {
    if text.is_ascii() {
        return text.to_vec();
    }
    let (charset, chunks): (&[u8], Vec<&[u8]>) = match std::str::from_utf8(text) {
        Ok(s) => {
            let mut chunks = Vec::new();
            let mut start = 0;
            let mut end = 0;
            for (i, c) in s.char_indices() {
                if i + c.len_utf8() - start > WORD_BYTES && end > start {
                    chunks.push(&text[start..end]);
                    start = end;
                }
                end = i + c.len_utf8();
            }
            chunks.push(&text[start..end]);
            (b"utf-8", chunks)
        }
        Err(_) => (b"unknown-8bit", text.chunks(WORD_BYTES).collect()),
    };
    let mut out = Vec::with_capacity(text.len() * 2);
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(b"=?");
        out.extend_from_slice(charset);
        out.extend_from_slice(b"?b?");
        out.extend_from_slice(B64.encode(chunk).as_bytes());
        out.extend_from_slice(b"?=");
    }
    out
}

/// Every string in `node` as encoded-words.
fn text(node: Node) -> Node {
    match node {
        Node::Str(s) => Node::Str(encode_words(&s)),
        Node::List(items) => Node::List(items.into_iter().map(text).collect()),
        other => other,
    }
}

fn has_8bit(node: &Node) -> bool {
    matches!(node, Node::Str(s) if !s.is_ascii())
}

/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
fn envelope(node: Node) -> Node {
    match node {
        Node::List(items) if items.len() == 10 => Node::List(
            items
                .into_iter()
                .enumerate()
                .map(|(i, n)| {
                    if (2..8).contains(&i) {
                        addresses(n)
                    } else {
                        text(n)
                    }
                })
                .collect(),
        ),
        other => text(other),
    }
}

/// An address list; see the module documentation for the non-ASCII addresses.
fn addresses(node: Node) -> Node {
    let Node::List(list) = node else {
        return text(node);
    };
    let mut out = Vec::with_capacity(list.len());
    for addr in list {
        let Node::List(fields) = addr else {
            out.push(text(addr));
            continue;
        };
        let [name, adl, mailbox, host] = <[Node; 4]>::try_from(fields)
            .unwrap_or_else(|f| [Node::List(f), Node::Nil, Node::Nil, Node::Nil]);
        let is_group_marker = host == Node::Nil;
        if !is_group_marker && (has_8bit(&adl) || has_8bit(&mailbox) || has_8bit(&host)) {
            out.push(Node::List(vec![
                Node::Nil,
                Node::Nil,
                Node::Str(encode_words(&display(&name, &mailbox, &host))),
                Node::Nil,
            ]));
            out.push(Node::List(vec![Node::Nil, Node::Nil, Node::Nil, Node::Nil]));
        } else {
            out.push(Node::List(vec![
                text(name),
                text(adl),
                text(mailbox),
                text(host),
            ]));
        }
    }
    Node::List(out)
}

/// `Name <local@domain>` (or `local@domain` without a name), as the group's name.
fn display(name: &Node, mailbox: &Node, host: &Node) -> Vec<u8> {
    let s = |n: &Node| match n {
        Node::Str(s) | Node::Atom(s) => s.clone(),
        _ => Vec::new(),
    };
    let addr = [s(mailbox), b"@".to_vec(), s(host)].concat();
    match name {
        Node::Str(n) if !n.is_empty() => [n.clone(), b" <".to_vec(), addr, b">".to_vec()].concat(),
        _ => addr,
    }
}

/// A BODY or BODYSTRUCTURE part: children of a multipart and the envelope and body of a
/// message/rfc822 part get their own treatment, everything else is text.
fn body(node: Node, depth: usize) -> Node {
    let Node::List(items) = node else {
        return text(node);
    };
    if depth > MAX_DOWNGRADE_DEPTH {
        return text(Node::List(items));
    }
    if matches!(items.first(), Some(Node::List(_))) {
        // Multipart: the children, then subtype and extension data.
        let mut in_children = true;
        return Node::List(
            items
                .into_iter()
                .map(|n| {
                    in_children &= matches!(n, Node::List(_));
                    if in_children {
                        body(n, depth + 1)
                    } else {
                        text(n)
                    }
                })
                .collect(),
        );
    }
    let is = |n: Option<&Node>, want: &[u8]| matches!(n, Some(Node::Str(s)) if s.eq_ignore_ascii_case(want));
    // body-type-msg: "message" "rfc822" params id desc enc octets envelope body lines ...
    let message = is(items.first(), b"message") && is(items.get(1), b"rfc822");
    Node::List(
        items
            .into_iter()
            .enumerate()
            .map(|(i, n)| match i {
                7 if message => envelope(n),
                8 if message => body(n, depth + 1),
                _ => text(n),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::mime::{MessageInfo, write_body, write_envelope};

    fn run(text: &[u8], kind: Kind) -> String {
        let mut out = b"* 1 FETCH (ENVELOPE ".to_vec();
        let start = out.len();
        out.extend_from_slice(text);
        in_place(&mut out, start, kind);
        assert!(
            out.is_ascii(),
            "8-bit left in {}",
            String::from_utf8_lossy(&out)
        );
        String::from_utf8(out[start..].to_vec()).unwrap_or_default()
    }

    fn word(s: &str) -> String {
        format!("=?utf-8?b?{}?=", B64.encode(s))
    }

    fn parsed(raw: &[u8]) -> MessageInfo {
        MessageInfo::parse(raw)
    }

    #[test]
    fn seven_bit_items_are_untouched() {
        let t = b"(\"date\" \"Hi\" NIL NIL NIL NIL NIL NIL NIL \"<a@b>\")";
        let mut out = t.to_vec();
        in_place(&mut out, 0, Kind::Envelope);
        assert_eq!(out, t);
    }

    #[test]
    fn utf8_envelope_becomes_encoded_words_and_groups() {
        let raw = "From: Jörg <jörg@bücher.example>\r\nTo: Anna Ö <anna@example.com>, plain@example.com\r\nSubject: Grüße\r\nMessage-ID: <1@example.com>\r\n\r\nbody\r\n";
        let info = parsed(raw.as_bytes());
        let mut text = Vec::new();
        write_envelope(&mut text, info.envelope());
        assert!(!text.is_ascii());
        let got = run(&text, Kind::Envelope);
        let group = format!(
            "((NIL NIL \"{}\" NIL)(NIL NIL NIL NIL))",
            word("Jörg <jörg@bücher.example>")
        )
        .replace(")(", ") (");
        let expected = format!(
            "(NIL \"{subj}\" {group} {group} {group} ((\"{anna}\" NIL \"anna\" \"example.com\") (NIL NIL \"plain\" \"example.com\")) NIL NIL NIL \"<1@example.com>\")",
            subj = word("Grüße"),
            anna = word("Anna Ö"),
        );
        assert_eq!(got, expected);
    }

    #[test]
    fn long_text_is_split_into_words_at_character_boundaries() {
        let s = "ä".repeat(40); // 80 bytes: one word of 22 characters, one of 18.
        let words = String::from_utf8(encode_words(s.as_bytes())).unwrap_or_default();
        let parts: Vec<&str> = words.split(' ').collect();
        assert_eq!(parts, [word(&"ä".repeat(22)), word(&"ä".repeat(18))]);
        assert!(parts.iter().all(|w| w.len() <= 75));
        let latin1 = encode_words(b"caf\xe9");
        assert_eq!(latin1, b"=?unknown-8bit?b?Y2Fm6Q==?=");
    }

    #[test]
    fn bodystructure_parameters_and_nested_envelopes_are_downgraded() {
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=\"Bericht für Jörg.txt\"\r\n\r\nx\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: Ünal <ünal@example.com>\r\nSubject: Über\r\n\r\ninner\r\n--b--\r\n";
        let info = parsed(raw.as_bytes());
        let mut text = Vec::new();
        write_body(&mut text, &info, true);
        assert!(!text.is_ascii());
        let got = run(&text, Kind::Body);
        assert!(
            got.contains(&format!("\"name\" \"{}\"", word("Bericht für Jörg.txt"))),
            "{got}"
        );
        assert!(got.contains(&format!("\"{}\"", word("Über"))), "{got}");
        assert!(
            got.contains(&format!(
                "((NIL NIL \"{}\" NIL) (NIL NIL NIL NIL))",
                word("Ünal <ünal@example.com>")
            )),
            "{got}"
        );
        // The structure is otherwise the same: the same parts in the same places.
        assert_eq!(got.matches("\"text\" \"plain\"").count(), 2, "{got}");
        assert!(
            got.ends_with("\"mixed\" (\"boundary\" \"b\") NIL NIL NIL)"),
            "{got}"
        );
    }

    #[test]
    fn unparsable_text_loses_only_its_8bit_octets() {
        let t = "(\"Grüße\" {3}\r\nabc".as_bytes();
        let mut out = t.to_vec();
        in_place(&mut out, 0, Kind::Envelope);
        assert_eq!(out, b"(\"Gr????e\" {3}\r\nabc");
        let deep = format!("{}\"ü\"{}", "(".repeat(1000), ")".repeat(1000));
        let mut out = deep.into_bytes();
        in_place(&mut out, 0, Kind::Body);
        assert!(out.is_ascii());
    }
}
