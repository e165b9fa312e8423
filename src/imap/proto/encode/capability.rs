//! What client and server tell each other they support: `CAPABILITY`, `ENABLED` (RFC 5161) and
//! `ID` (RFC 2971).

use super::string::{write_atom, write_nstring, write_string};

/// `* CAPABILITY IMAP4rev1 ...\r\n` (the caller lists IMAP4rev1 itself).
pub fn capability(out: &mut Vec<u8>, caps: &[&str]) {
    atom_list(out, b"* CAPABILITY", caps);
}

/// `* ENABLED caps\r\n` (RFC 5161).
pub fn enabled(out: &mut Vec<u8>, caps: &[&str]) {
    atom_list(out, b"* ENABLED", caps);
}

/// `head atom atom...\r\n`.
fn atom_list(out: &mut Vec<u8>, head: &[u8], atoms: &[&str]) {
    out.extend_from_slice(head);
    for a in atoms {
        out.push(b' ');
        write_atom(out, a);
    }
    out.extend_from_slice(b"\r\n");
}

/// One field of the server's ID response and its value (`None` for NIL).
pub type IdField<'a> = (&'a str, Option<&'a [u8]>);

/// `* ID ("name" "value" ...)\r\n` or `* ID NIL\r\n` (RFC 2971).
pub fn id(out: &mut Vec<u8>, params: Option<&[IdField<'_>]>) {
    out.extend_from_slice(b"* ID ");
    match params {
        None => out.extend_from_slice(b"NIL"),
        Some(params) => {
            out.push(b'(');
            for (i, (k, v)) in params.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, k.as_bytes());
                out.push(b' ');
                write_nstring(out, *v);
            }
            out.push(b')');
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_enabled_and_id() {
        let mut v = Vec::new();
        enabled(&mut v, &["CONDSTORE"]);
        id(&mut v, Some(&[("name", Some(b"mailcove")), ("os", None)]));
        id(&mut v, None);
        capability(&mut v, &["IMAP4rev1", "LITERAL+", "bad word\r\n"]);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "* ENABLED CONDSTORE\r\n\
             * ID (\"name\" \"mailcove\" \"os\" NIL)\r\n\
             * ID NIL\r\n\
             * CAPABILITY IMAP4rev1 LITERAL+ badword\r\n"
        );
    }
}
