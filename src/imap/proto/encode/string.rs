//! The lexical pieces every response is made of: strings (atom, quoted or literal, picked by
//! content), atoms the server knows, flag lists, and human-readable text.

use crate::imap::proto::types::{Flag, is_atom_char};
use crate::limits::MAX_QUOTED_RESPONSE_LEN;

/// True when `s` may be sent as a quoted string: 7-bit, no CR, LF or NUL.
fn quotable(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED_RESPONSE_LEN
        && s.iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

/// Writes `s` as a quoted string, escaping `"` and `\\`; the caller has checked it may be quoted.
fn write_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Writes `s` as an IMAP `string`: quoted when that is possible, otherwise a literal.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if quotable(s) {
        write_quoted(out, s);
    } else {
        write_literal(out, s);
    }
}

/// Writes `s` as a synchronizing-literal-shaped server literal `{n}\r\n...`.
pub fn write_literal(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'{');
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.extend_from_slice(s);
}

/// Writes an `nstring`: NIL for `None`, else a string.
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => write_string(out, s),
    }
}

/// Writes an `astring`: a bare atom when every byte allows it (and it is not `NIL`), else a string.
pub fn write_astring(out: &mut Vec<u8>, s: &[u8]) {
    if !s.is_empty() && s.iter().all(|&b| is_atom_char(b)) && !s.eq_ignore_ascii_case(b"NIL") {
        out.extend_from_slice(s);
    } else {
        write_string(out, s);
    }
}

/// Writes a mailbox name in its wire form as an `astring`.
///
/// A client that did not enable UTF8=ACCEPT gets modified UTF-7, which is always printable
/// US-ASCII, so 8-bit octets here can only be the UTF-8 form of a client that did. RFC 6855 3
/// lets the server send such a client UTF-8 in quoted strings, so a name that is valid UTF-8
/// without control characters goes out quoted (as Dovecot's `imap_append_astring(.., utf8)`);
/// anything else is left to [`write_astring`], which falls back to a literal.
pub fn write_mailbox(out: &mut Vec<u8>, name: &[u8]) {
    let utf8_quotable = name.len() <= MAX_QUOTED_RESPONSE_LEN
        && name.iter().any(|&b| b >= 0x80)
        && std::str::from_utf8(name).is_ok_and(|s| !s.chars().any(char::is_control));
    if utf8_quotable {
        write_quoted(out, name);
    } else {
        write_astring(out, name);
    }
}

/// Writes human-readable response text (`text = 1*TEXT-CHAR`): CR, LF, NUL,
/// other controls and 8-bit bytes become `?`/space so the line cannot be
/// split or corrupted; empty text becomes `completed` because the grammar
/// needs at least one character.
pub fn write_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty() {
        out.extend_from_slice(b"completed");
        return;
    }
    for (i, &b) in text.as_bytes().iter().enumerate() {
        let c = match b {
            b'\r' | b'\n' | b'\t' => b' ',
            // A leading "[" would read as the start of a response code.
            b'[' if i == 0 => b'(',
            0x20..=0x7e => b,
            _ => b'?',
        };
        out.push(c);
    }
}

/// Writes an atom known to the server (capability, keyword); bytes that an atom
/// cannot hold are dropped so a programming slip cannot break the line.
pub(super) fn write_atom(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| is_atom_char(b) || b == b']'));
}

/// Writes the flags separated by spaces; returns how many.
pub(super) fn write_flag_items<F: std::borrow::Borrow<Flag>>(
    out: &mut Vec<u8>,
    flags: impl IntoIterator<Item = F>,
) -> usize {
    let mut n = 0;
    for f in flags {
        if n > 0 {
            out.push(b' ');
        }
        f.borrow().write(out);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use crate::imap::proto::parse::parse_command;
    use crate::imap::proto::types::CommandBody;

    use super::*;

    fn enc(f: fn(&mut Vec<u8>, &[u8]), s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v, s);
        v
    }

    #[test]
    fn strings_pick_quoted_or_literal() {
        assert_eq!(enc(write_string, b"a b"), b"\"a b\"");
        assert_eq!(enc(write_string, b"a\"b\\"), b"\"a\\\"b\\\\\"");
        assert_eq!(enc(write_string, b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(enc(write_string, "é".as_bytes()), b"{2}\r\n\xc3\xa9");
        assert_eq!(enc(write_string, b"a\0"), b"{2}\r\na\0");
        assert_eq!(enc(write_astring, b"INBOX"), b"INBOX");
        assert_eq!(enc(write_astring, b"nil"), b"\"nil\"");
        assert_eq!(enc(write_astring, b""), b"\"\"");
        assert_eq!(enc(write_astring, b"a]"), b"\"a]\"");
    }

    /// Encodes `user` as an astring and `pass` as a string into a LOGIN command,
    /// parses it back and checks both survive byte for byte.
    fn round_trip(user: &[u8], pass: &[u8]) {
        let mut cmd = b"a LOGIN ".to_vec();
        write_astring(&mut cmd, user);
        cmd.push(b' ');
        write_string(&mut cmd, pass);
        cmd.extend_from_slice(b"\r\n");
        match parse_command(&cmd).map(|c| c.body) {
            Ok(CommandBody::Login { username, password }) => {
                assert_eq!(username, user);
                assert_eq!(password.expose(), pass);
            }
            other => panic!("{other:?} for {cmd:?}"),
        }
    }

    #[test]
    fn strings_round_trip_through_the_parser() {
        let cases: &[&[u8]] = &[
            b"plain",
            b"with space",
            b"quote\"inside",
            b"back\\slash",
            b"\\\"",
            b"cr\rhere",
            b"lf\nhere",
            b"crlf\r\n",
            "8-bit caf\u{e9} \u{1F600}".as_bytes(),
            b"\xff\xfe",
            b"",
            b"NIL",
            b"nil",
            b"{5}",
            b"a]b",
            b"(x)",
            b"%*",
            &[b'x'; 2000],
        ];
        for c in cases {
            round_trip(c, c);
        }
    }

    #[test]
    fn mailbox_names_in_utf8_go_out_quoted() {
        assert_eq!(enc(write_mailbox, b"INBOX"), b"INBOX");
        assert_eq!(enc(write_mailbox, b"Entw&APw-rfe"), b"Entw&APw-rfe");
        assert_eq!(enc(write_mailbox, b"a b"), b"\"a b\"");
        assert_eq!(
            enc(write_mailbox, "Entwürfe \"x\"".as_bytes()),
            "\"Entwürfe \\\"x\\\"\"".as_bytes()
        );
        // Not UTF-8, or a C1 control: a literal, never an 8-bit quoted string.
        assert_eq!(enc(write_mailbox, b"a\xffb"), b"{3}\r\na\xffb");
        assert_eq!(
            enc(write_mailbox, "a\u{85}".as_bytes()),
            b"{3}\r\na\xc2\x85"
        );
    }

    #[test]
    fn nul_goes_out_as_literal() {
        // NUL cannot be quoted; a literal carries it byte-exact.
        assert_eq!(enc(write_string, b"\0"), b"{1}\r\n\0");
        assert_eq!(enc(write_astring, b"a\0b"), b"{3}\r\na\0b");
        let mut v = Vec::new();
        write_nstring(&mut v, None);
        assert_eq!(v, b"NIL");
    }
}
