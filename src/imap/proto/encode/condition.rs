//! Status responses (RFC 3501 section 7.1): `OK`, `NO`, `BAD`, `BYE` and `PREAUTH`, tagged or
//! untagged, with their response codes; the answers to parse and framing errors; and
//! continuation requests.

use super::number::{write_num, write_sequence_set, write_uid_list};
use super::string::{write_astring, write_atom, write_flag_items, write_string, write_text};
use crate::imap::proto::sequence::ResolvedSet;
use crate::imap::proto::types::{Flag, Tag};

/// Response conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`
    Ok,
    /// `NO`
    No,
    /// `BAD`
    Bad,
    /// `BYE` (untagged only)
    Bye,
    /// `PREAUTH` (greeting only)
    Preauth,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::Preauth => "PREAUTH",
        }
    }
}

/// Response codes (`resp-text-code`) of RFC 3501 and the extensions mailcove speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// `ALERT`
    Alert,
    /// `BADCHARSET (charsets)`; the list may be empty.
    BadCharset(Vec<String>),
    /// `CAPABILITY IMAP4rev1 ...` (the caller includes IMAP4rev1).
    Capability(Vec<String>),
    /// `PARSE`
    Parse,
    /// `PERMANENTFLAGS (flags [\*])`; `true` adds `\*` (new keywords allowed).
    PermanentFlags(Vec<Flag>, bool),
    /// `READ-ONLY`
    ReadOnly,
    /// `READ-WRITE`
    ReadWrite,
    /// `TRYCREATE`
    TryCreate,
    /// `UIDNEXT n`
    UidNext(u32),
    /// `UIDVALIDITY n`
    UidValidity(u32),
    /// `UNSEEN n`
    Unseen(u32),
    /// `APPENDUID uidvalidity uids` (RFC 4315); UIDs in append order.
    AppendUid(u32, Vec<u32>),
    /// `COPYUID uidvalidity source-uids dest-uids` (RFC 4315); both lists in corresponding order.
    CopyUid(u32, Vec<u32>, Vec<u32>),
    /// `UIDNOTSTICKY` (RFC 4315)
    UidNotSticky,
    /// `HIGHESTMODSEQ n` (RFC 7162)
    HighestModSeq(u64),
    /// `NOMODSEQ` (RFC 7162)
    NoModSeq,
    /// `MODIFIED set` (RFC 7162)
    Modified(ResolvedSet),
    /// `CLOSED` (RFC 7162)
    Closed,
    /// `TOOBIG` (RFC 4469/7888)
    TooBig,
    /// `NOTSAVED` (RFC 5182)
    NotSaved,
    /// `NOUPDATE "tag"` (RFC 5267 4.3.1): no updates for that searching command.
    NoUpdate(String),
    /// `UNKNOWN-CTE` (RFC 3516)
    UnknownCte,
    /// `BADURL "url"` (RFC 4469 4.1): the URL of a CATENATE part that could not be used. Bytes
    /// that `url-resp-text` or a quoted string cannot hold become `?`.
    BadUrl(String),
    /// `COMPRESSIONACTIVE` (RFC 4978)
    CompressionActive,
    /// `USEATTR` (RFC 6154)
    UseAttr,
    /// `UNAVAILABLE` (RFC 5530)
    Unavailable,
    /// `AUTHENTICATIONFAILED`
    AuthenticationFailed,
    /// `AUTHORIZATIONFAILED`
    AuthorizationFailed,
    /// `EXPIRED`
    Expired,
    /// `PRIVACYREQUIRED`
    PrivacyRequired,
    /// `CONTACTADMIN`
    ContactAdmin,
    /// `NOPERM`
    NoPerm,
    /// `INUSE`
    InUse,
    /// `EXPUNGEISSUED`
    ExpungeIssued,
    /// `CORRUPTION`
    Corruption,
    /// `SERVERBUG`
    ServerBug,
    /// `CLIENTBUG`
    ClientBug,
    /// `CANNOT`
    Cannot,
    /// `LIMIT`
    Limit,
    /// `OVERQUOTA`
    OverQuota,
    /// `ALREADYEXISTS`
    AlreadyExists,
    /// `NONEXISTENT`
    NonExistent,
    /// `MAILBOXID (objectid)` (RFC 8474 4.1, 4.2)
    MailboxId(String),
    /// `HASCHILDREN` (RFC 9051 7.1): DELETE failed because the mailbox has children.
    HasChildren,
    /// `METADATA LONGENTRIES n` (RFC 5464 4.2.1): the biggest value GETMETADATA left out.
    MetadataLongEntries(u64),
    /// `METADATA MAXSIZE n` (RFC 5464 4.3): the largest value the server accepts.
    MetadataMaxSize(u64),
    /// `METADATA TOOMANY` (RFC 5464 4.3)
    MetadataTooMany,
    /// `BADEVENT (event ...)` (RFC 5465 3.1), listing every event the server supports.
    BadEvent(&'static [&'static str]),
    /// `NOTIFICATIONOVERFLOW` (RFC 5465 5.8)
    NotificationOverflow,
}

fn write_code(out: &mut Vec<u8>, code: &Code) {
    use Code as C;
    let simple = match code {
        C::Alert => "ALERT",
        C::Parse => "PARSE",
        C::ReadOnly => "READ-ONLY",
        C::ReadWrite => "READ-WRITE",
        C::TryCreate => "TRYCREATE",
        C::UidNotSticky => "UIDNOTSTICKY",
        C::NoModSeq => "NOMODSEQ",
        C::Closed => "CLOSED",
        C::TooBig => "TOOBIG",
        C::NotSaved => "NOTSAVED",
        C::UnknownCte => "UNKNOWN-CTE",
        C::CompressionActive => "COMPRESSIONACTIVE",
        C::UseAttr => "USEATTR",
        C::Unavailable => "UNAVAILABLE",
        C::AuthenticationFailed => "AUTHENTICATIONFAILED",
        C::AuthorizationFailed => "AUTHORIZATIONFAILED",
        C::Expired => "EXPIRED",
        C::PrivacyRequired => "PRIVACYREQUIRED",
        C::ContactAdmin => "CONTACTADMIN",
        C::NoPerm => "NOPERM",
        C::InUse => "INUSE",
        C::ExpungeIssued => "EXPUNGEISSUED",
        C::Corruption => "CORRUPTION",
        C::ServerBug => "SERVERBUG",
        C::ClientBug => "CLIENTBUG",
        C::Cannot => "CANNOT",
        C::Limit => "LIMIT",
        C::OverQuota => "OVERQUOTA",
        C::AlreadyExists => "ALREADYEXISTS",
        C::NonExistent => "NONEXISTENT",
        C::HasChildren => "HASCHILDREN",
        C::MetadataTooMany => "METADATA TOOMANY",
        C::MetadataLongEntries(n) | C::MetadataMaxSize(n) => {
            out.extend_from_slice(match code {
                C::MetadataLongEntries(_) => b"METADATA LONGENTRIES ",
                _ => b"METADATA MAXSIZE ",
            });
            write_num(out, n);
            return;
        }
        C::NotificationOverflow => "NOTIFICATIONOVERFLOW",
        C::BadEvent(names) => {
            out.extend_from_slice(b"BADEVENT (");
            out.extend_from_slice(names.join(" ").as_bytes());
            out.push(b')');
            return;
        }
        C::BadCharset(list) => {
            out.extend_from_slice(b"BADCHARSET");
            if !list.is_empty() {
                out.extend_from_slice(b" (");
                for (i, c) in list.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    write_astring(out, c.as_bytes());
                }
                out.push(b')');
            }
            return;
        }
        C::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY");
            for c in caps {
                out.push(b' ');
                write_atom(out, c);
            }
            return;
        }
        C::PermanentFlags(flags, any) => {
            out.extend_from_slice(b"PERMANENTFLAGS (");
            write_flag_items(out, flags);
            if *any {
                if !flags.is_empty() {
                    out.push(b' ');
                }
                out.extend_from_slice(b"\\*");
            }
            out.push(b')');
            return;
        }
        C::UidNext(n) | C::UidValidity(n) | C::Unseen(n) => {
            out.extend_from_slice(match code {
                C::UidNext(_) => b"UIDNEXT ",
                C::UidValidity(_) => b"UIDVALIDITY ",
                _ => b"UNSEEN ",
            });
            write_num(out, n);
            return;
        }
        C::BadUrl(url) => {
            out.extend_from_slice(b"BADURL \"");
            for &b in url
                .as_bytes()
                .iter()
                .take(crate::limits::MAX_QUOTED_RESPONSE_LEN)
            {
                let ok = (0x20..0x7f).contains(&b) && !matches!(b, b']' | b'"' | b'\\');
                out.push(if ok { b } else { b'?' });
            }
            out.push(b'"');
            return;
        }
        C::NoUpdate(tag) => {
            out.extend_from_slice(b"NOUPDATE ");
            write_string(out, tag.as_bytes());
            return;
        }
        C::AppendUid(v, uids) => {
            out.extend_from_slice(b"APPENDUID ");
            write_num(out, v);
            out.push(b' ');
            write_uid_list(out, uids);
            return;
        }
        C::CopyUid(v, src, dst) => {
            out.extend_from_slice(b"COPYUID ");
            write_num(out, v);
            out.push(b' ');
            write_uid_list(out, src);
            out.push(b' ');
            write_uid_list(out, dst);
            return;
        }
        C::HighestModSeq(n) => {
            out.extend_from_slice(b"HIGHESTMODSEQ ");
            write_num(out, n);
            return;
        }
        C::Modified(set) => {
            out.extend_from_slice(b"MODIFIED ");
            write_sequence_set(out, set);
            return;
        }
        C::MailboxId(id) => {
            out.extend_from_slice(b"MAILBOXID (");
            out.extend_from_slice(id.as_bytes());
            out.push(b')');
            return;
        }
    };
    out.extend_from_slice(simple.as_bytes());
}

fn write_resp_text(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    if let Some(code) = code {
        out.push(b'[');
        write_code(out, code);
        out.extend_from_slice(b"] ");
    }
    write_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// `tag OK/NO/BAD [CODE] text\r\n`.
pub fn tagged(out: &mut Vec<u8>, tag: &Tag, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(tag.as_str().as_bytes());
    out.push(b' ');
    write_resp_text(out, status, code, text);
}

/// `* OK/NO/BAD/BYE/PREAUTH [CODE] text\r\n`.
pub fn untagged(out: &mut Vec<u8>, status: Status, code: Option<&Code>, text: &str) {
    out.extend_from_slice(b"* ");
    write_resp_text(out, status, code, text);
}

/// Tagged when `tag` is known, else untagged (for errors where the tag could not be read).
pub fn tagged_or_untagged(
    out: &mut Vec<u8>,
    tag: Option<&Tag>,
    status: Status,
    code: Option<&Code>,
    text: &str,
) {
    match tag {
        Some(t) => tagged(out, t, status, code, text),
        None => untagged(out, status, code, text),
    }
}

/// `+ text\r\n`: continuation request for a synchronizing literal or IDLE.
pub fn continue_req(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    write_text(out, text);
    out.extend_from_slice(b"\r\n");
}

/// `+ base64\r\n`: a SASL challenge (`+ \r\n` for an empty one, as RFC 3501 6.2.2 shows).
pub fn continue_base64(out: &mut Vec<u8>, challenge: &[u8]) {
    use base64::Engine;
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(challenge)
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Tag {
        Tag::new(s.as_bytes()).expect("tag")
    }

    #[test]
    fn status_responses() {
        let mut v = Vec::new();
        tagged(&mut v, &t("a1"), Status::Ok, None, "LOGIN completed");
        untagged(
            &mut v,
            Status::Ok,
            Some(&Code::UidValidity(3857529045)),
            "UIDs valid",
        );
        untagged(
            &mut v,
            Status::Ok,
            Some(&Code::PermanentFlags(vec![Flag::Deleted, Flag::Seen], true)),
            "Limited",
        );
        tagged(
            &mut v,
            &t("a2"),
            Status::No,
            Some(&Code::BadCharset(vec!["UTF-8".into(), "US-ASCII".into()])),
            "",
        );
        untagged(
            &mut v,
            Status::Bye,
            None,
            "evil\r\n* OK [ALERT] injected\0\u{e9}",
        );
        untagged(&mut v, Status::No, None, "[fake] code");
        tagged(
            &mut v,
            &t("a3"),
            Status::Ok,
            Some(&Code::CopyUid(
                38505,
                vec![304, 319, 320, 321],
                vec![3956, 3957, 3958, 3959],
            )),
            "Done",
        );
        tagged(
            &mut v,
            &t("a4"),
            Status::Ok,
            Some(&Code::AppendUid(38505, vec![3955])),
            "APPEND completed",
        );
        untagged(
            &mut v,
            Status::Ok,
            Some(&Code::Capability(vec![
                "IMAP4rev1".into(),
                "AUTH=PLAIN".into(),
            ])),
            "Hi",
        );
        tagged(
            &mut v,
            &t("a5"),
            Status::No,
            Some(&Code::AlreadyExists),
            "Mailbox exists",
        );
        tagged(
            &mut v,
            &t("a6"),
            Status::Ok,
            Some(&Code::Modified([7u32, 9, 8, 12].into_iter().collect())),
            "x",
        );
        assert_eq!(
            String::from_utf8_lossy(&v),
            "a1 OK LOGIN completed\r\n\
             * OK [UIDVALIDITY 3857529045] UIDs valid\r\n\
             * OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n\
             a2 NO [BADCHARSET (UTF-8 US-ASCII)] completed\r\n\
             * BYE evil  * OK [ALERT] injected???\r\n\
             * NO (fake] code\r\n\
             a3 OK [COPYUID 38505 304,319:321 3956:3959] Done\r\n\
             a4 OK [APPENDUID 38505 3955] APPEND completed\r\n\
             * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Hi\r\n\
             a5 NO [ALREADYEXISTS] Mailbox exists\r\n\
             a6 OK [MODIFIED 7:9,12] x\r\n"
        );
    }

    #[test]
    fn continuation_requests() {
        let mut v = Vec::new();
        continue_req(&mut v, "Ready");
        continue_base64(&mut v, b"");
        continue_base64(&mut v, b"abc");
        assert_eq!(String::from_utf8_lossy(&v), "+ Ready\r\n+ \r\n+ YWJj\r\n");
    }
}
