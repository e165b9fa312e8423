//! Response encoding primitives (RFC 3501 section 4 and 9: atom, quoted, literal, nstring).

/// Characters that may not appear in an atom (RFC 3501 `atom-specials`), besides CTLs and 8-bit.
fn is_atom_char(b: u8) -> bool {
    b > 0x20
        && b < 0x7f
        && !matches!(
            b,
            b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
        )
}

/// True when `s` may be sent as a quoted string: 7-bit, no CR, LF or NUL.
fn quotable(s: &[u8]) -> bool {
    s.len() <= 1024
        && s.iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80)
}

/// Writes `s` as an IMAP `string`: quoted when that is possible, otherwise a literal.
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if quotable(s) {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
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

#[cfg(test)]
mod tests {
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
}
