//! Mailbox data: `FLAGS`, `EXISTS`, `RECENT`, `EXPUNGE` and `VANISHED` about the selected
//! mailbox; `LIST`/`LSUB`, `STATUS` and `NAMESPACE` about mailboxes by name; `QUOTA` and
//! `QUOTAROOT`.

use super::number::{write_num, write_sequence_set};
use super::string::{write_astring, write_atom, write_flag_items, write_mailbox, write_string};
use crate::imap::proto::sequence::ResolvedSet;
use crate::imap::proto::types::{Flag, MailboxAttr, StatusItem};

/// `* FLAGS (flags)\r\n`.
pub fn flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.extend_from_slice(b"* FLAGS (");
    write_flag_items(out, flags);
    out.extend_from_slice(b")\r\n");
}

/// `* n EXISTS\r\n`.
pub fn exists(out: &mut Vec<u8>, n: u32) {
    numbered(out, n, b" EXISTS\r\n");
}

/// `* n RECENT\r\n`.
pub fn recent(out: &mut Vec<u8>, n: u32) {
    numbered(out, n, b" RECENT\r\n");
}

/// `* seq EXPUNGE\r\n`.
pub fn expunge(out: &mut Vec<u8>, seq: u32) {
    numbered(out, seq, b" EXPUNGE\r\n");
}

/// `* n` followed by `rest`: the message-data lines that start with a number.
fn numbered(out: &mut Vec<u8>, n: u32, rest: &[u8]) {
    out.extend_from_slice(b"* ");
    write_num(out, n);
    out.extend_from_slice(rest);
}

/// `* VANISHED [(EARLIER)] uids\r\n` (RFC 7162).
pub fn vanished(out: &mut Vec<u8>, earlier: bool, uids: &ResolvedSet) {
    out.extend_from_slice(b"* VANISHED ");
    if earlier {
        out.extend_from_slice(b"(EARLIER) ");
    }
    write_sequence_set(out, uids);
    out.extend_from_slice(b"\r\n");
}

/// Writes a hierarchy delimiter: `"/"` (quoted char) or NIL when there is none
/// or it cannot be a QUOTED-CHAR.
fn write_delimiter(out: &mut Vec<u8>, delimiter: Option<u8>) {
    match delimiter {
        Some(d) if d != 0 && d != b'\r' && d != b'\n' && d < 0x80 => write_string(out, &[d]),
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// Whether a mailbox line is a LIST or an LSUB response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `* LIST`
    List,
    /// `* LSUB`
    Lsub,
}

/// `* LIST (attrs) "/" name [("CHILDINFO" ("SUBSCRIBED"))]\r\n`.
///
/// `name` is the wire form (modified UTF-7 or UTF-8 already applied, see
/// [`write_mailbox`]); `childinfo_subscribed`
/// adds the RFC 5258 CHILDINFO extended item for RECURSIVEMATCH.
pub fn list(
    out: &mut Vec<u8>,
    kind: ListKind,
    attrs: &[MailboxAttr],
    delimiter: Option<u8>,
    name: &[u8],
    childinfo_subscribed: bool,
) {
    out.extend_from_slice(match kind {
        ListKind::List => b"* LIST (",
        ListKind::Lsub => b"* LSUB (",
    });
    for (i, a) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(a.as_str().as_bytes());
    }
    out.extend_from_slice(b") ");
    write_delimiter(out, delimiter);
    out.push(b' ');
    write_mailbox(out, name);
    if childinfo_subscribed {
        out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    out.extend_from_slice(b"\r\n");
}

/// `* STATUS name (ITEM n ...)\r\n`.
pub fn status(out: &mut Vec<u8>, name: &[u8], items: &[(StatusItem, u64)]) {
    out.extend_from_slice(b"* STATUS ");
    write_mailbox(out, name);
    out.extend_from_slice(b" (");
    for (i, (item, n)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(item.as_str().as_bytes());
        out.push(b' ');
        write_num(out, n);
    }
    out.extend_from_slice(b")\r\n");
}

/// One namespace: its prefix (wire form) and hierarchy delimiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Namespace<'a> {
    /// Prefix, e.g. `""` or `"Other Users/"`.
    pub prefix: &'a [u8],
    /// Hierarchy delimiter.
    pub delimiter: Option<u8>,
}

fn write_namespace_list(out: &mut Vec<u8>, list: Option<&[Namespace<'_>]>) {
    match list {
        None | Some([]) => out.extend_from_slice(b"NIL"),
        Some(list) => {
            out.push(b'(');
            for ns in list {
                out.push(b'(');
                write_string(out, ns.prefix);
                out.push(b' ');
                write_delimiter(out, ns.delimiter);
                out.push(b')');
            }
            out.push(b')');
        }
    }
}

/// `* NAMESPACE personal other shared\r\n` (RFC 2342); `None`/empty lists are NIL.
pub fn namespace(
    out: &mut Vec<u8>,
    personal: Option<&[Namespace<'_>]>,
    other: Option<&[Namespace<'_>]>,
    shared: Option<&[Namespace<'_>]>,
) {
    out.extend_from_slice(b"* NAMESPACE ");
    write_namespace_list(out, personal);
    out.push(b' ');
    write_namespace_list(out, other);
    out.push(b' ');
    write_namespace_list(out, shared);
    out.extend_from_slice(b"\r\n");
}

/// `* QUOTA root (RESOURCE usage limit ...)\r\n` (RFC 9208).
pub fn quota(out: &mut Vec<u8>, root: &[u8], resources: &[(&str, u64, u64)]) {
    out.extend_from_slice(b"* QUOTA ");
    write_astring(out, root);
    out.extend_from_slice(b" (");
    for (i, (name, usage, limit)) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_atom(out, name);
        out.push(b' ');
        write_num(out, usage);
        out.push(b' ');
        write_num(out, limit);
    }
    out.extend_from_slice(b")\r\n");
}

/// `* QUOTAROOT mailbox root...\r\n` (RFC 9208).
pub fn quotaroot(out: &mut Vec<u8>, mailbox: &[u8], roots: &[&[u8]]) {
    out.extend_from_slice(b"* QUOTAROOT ");
    write_mailbox(out, mailbox);
    for r in roots {
        out.push(b' ');
        write_astring(out, r);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_data() {
        let mut v = Vec::new();
        flags(
            &mut v,
            &[
                Flag::Answered,
                Flag::Flagged,
                Flag::Deleted,
                Flag::Seen,
                Flag::Draft,
            ],
        );
        exists(&mut v, 172);
        recent(&mut v, 1);
        expunge(&mut v, 3);
        list(
            &mut v,
            ListKind::List,
            &[MailboxAttr::HasNoChildren, MailboxAttr::Sent],
            Some(b'/'),
            b"Sent Items",
            false,
        );
        list(
            &mut v,
            ListKind::List,
            &[MailboxAttr::Noselect],
            None,
            b"",
            false,
        );
        list(&mut v, ListKind::Lsub, &[], Some(b'\\'), b"INBOX", false);
        list(&mut v, ListKind::List, &[], Some(b'.'), b"Foo", true);
        status(
            &mut v,
            b"blurdybloop",
            &[(StatusItem::Messages, 231), (StatusItem::UidNext, 44292)],
        );
        namespace(
            &mut v,
            Some(&[Namespace {
                prefix: b"",
                delimiter: Some(b'/'),
            }]),
            None,
            Some(&[]),
        );
        vanished(&mut v, true, &[300u32, 301, 405].into_iter().collect());
        quota(&mut v, b"", &[("STORAGE", 10, 512)]);
        quotaroot(&mut v, b"INBOX", &[b""]);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * 172 EXISTS\r\n\
             * 1 RECENT\r\n\
             * 3 EXPUNGE\r\n\
             * LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n\
             * LIST (\\Noselect) NIL \"\"\r\n\
             * LSUB () \"\\\\\" INBOX\r\n\
             * LIST () \".\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
             * STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n\
             * NAMESPACE ((\"\" \"/\")) NIL NIL\r\n\
             * VANISHED (EARLIER) 300:301,405\r\n\
             * QUOTA \"\" (STORAGE 10 512)\r\n\
             * QUOTAROOT INBOX \"\"\r\n"
        );
    }
}
