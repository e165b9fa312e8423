//! Response encoding (RFC 3501 sections 4, 7 and 9 and the extensions' response syntax).
//!
//! Every writer appends to a `Vec<u8>` the session then flushes, so a
//! response can be built in pieces and streamed (a FETCH body section is a
//! prefix written here, then `n` octets copied from the message file, then
//! the rest of the FETCH). Strings always go through [`write_string`] /
//! [`write_astring`] / [`write_nstring`], which pick atom, quoted or literal
//! form by content, so no byte a client or a message supplied can end a
//! response line early. Human-readable text goes through [`write_text`],
//! which replaces CR, LF, NUL and 8-bit bytes.

use super::parse::ParseError;
use super::receive::FrameError;
use super::sequence::ResolvedSet;
use super::types::{
    DateTime, FetchAttr, Flag, MailboxAttr, Section, SectionText, StatusItem, Tag, is_atom_char,
};
use crate::limits::MAX_QUOTED_RESPONSE_LEN;

/// True when `s` may be sent as a quoted string: 7-bit, no CR, LF or NUL.
fn quotable(s: &[u8]) -> bool {
    s.len() <= MAX_QUOTED_RESPONSE_LEN
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
fn write_atom(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| is_atom_char(b) || b == b']'));
}

/// Numbers the protocol writes in decimal.
trait Decimal: Copy {
    fn value(self) -> u64;
}

impl Decimal for u32 {
    fn value(self) -> u64 {
        u64::from(self)
    }
}

impl Decimal for u64 {
    fn value(self) -> u64 {
        self
    }
}

impl Decimal for std::num::NonZeroU32 {
    fn value(self) -> u64 {
        u64::from(self.get())
    }
}

impl<T: Decimal> Decimal for &T {
    fn value(self) -> u64 {
        (*self).value()
    }
}

/// Writes `n` in decimal. A FETCH of 100,000 messages writes several numbers per message, so
/// this formats on the stack instead of through `fmt` and a temporary `String`.
fn write_num(out: &mut Vec<u8>, n: impl Decimal) {
    write_decimal(out, n.value());
}

/// Writes `n` in decimal.
pub fn write_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::digits::decimal(&mut [0u8; 20], n));
}

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
    /// `UNKNOWN-CTE` (RFC 3516)
    UnknownCte,
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

/// The answer to a command that did not parse: `tag BAD text` or `* BAD text`.
pub fn parse_error(out: &mut Vec<u8>, error: &ParseError) {
    tagged_or_untagged(out, error.tag.as_ref(), Status::Bad, None, error.message);
}

/// The answer to a framing error (see [`receive`](super::receive)):
/// a refused synchronizing literal gets `NO [TOOBIG]` (no `+` was sent, the
/// client sends no data), a discarded non-synchronizing one `BAD [TOOBIG]`
/// (RFC 7888 section 5), a too-long line `BAD`. Untagged when no tag was readable.
pub fn frame_error(out: &mut Vec<u8>, error: &FrameError) {
    match error {
        FrameError::LiteralTooBig {
            tag,
            synchronizing: true,
            ..
        } => tagged_or_untagged(
            out,
            tag.as_ref(),
            Status::No,
            Some(&Code::TooBig),
            "Literal too big",
        ),
        FrameError::LiteralTooBig { tag, .. } => tagged_or_untagged(
            out,
            tag.as_ref(),
            Status::Bad,
            Some(&Code::TooBig),
            "Literal too big",
        ),
        FrameError::LineTooLong { tag } => tagged_or_untagged(
            out,
            tag.as_ref(),
            Status::Bad,
            None,
            "Command line too long",
        ),
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

/// `* CAPABILITY IMAP4rev1 ...\r\n` (the caller lists IMAP4rev1 itself).
pub fn capability(out: &mut Vec<u8>, caps: &[&str]) {
    out.extend_from_slice(b"* CAPABILITY");
    for c in caps {
        out.push(b' ');
        write_atom(out, c);
    }
    out.extend_from_slice(b"\r\n");
}

/// `* ENABLED caps\r\n` (RFC 5161).
pub fn enabled(out: &mut Vec<u8>, caps: &[&str]) {
    out.extend_from_slice(b"* ENABLED");
    for c in caps {
        out.push(b' ');
        write_atom(out, c);
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the flags separated by spaces; returns how many.
fn write_flag_items<F: std::borrow::Borrow<Flag>>(
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

/// `* FLAGS (flags)\r\n`.
pub fn flags(out: &mut Vec<u8>, flags: &[Flag]) {
    out.extend_from_slice(b"* FLAGS (");
    write_flag_items(out, flags);
    out.extend_from_slice(b")\r\n");
}

/// `* n EXISTS\r\n`.
pub fn exists(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(b"* ");
    write_num(out, n);
    out.extend_from_slice(b" EXISTS\r\n");
}

/// `* n RECENT\r\n`.
pub fn recent(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(b"* ");
    write_num(out, n);
    out.extend_from_slice(b" RECENT\r\n");
}

/// `* seq EXPUNGE\r\n`.
pub fn expunge(out: &mut Vec<u8>, seq: u32) {
    out.extend_from_slice(b"* ");
    write_num(out, seq);
    out.extend_from_slice(b" EXPUNGE\r\n");
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
/// `name` is the wire form (modified UTF-7 already applied); `childinfo_subscribed`
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
    write_astring(out, name);
    if childinfo_subscribed {
        out.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    }
    out.extend_from_slice(b"\r\n");
}

/// `* STATUS name (ITEM n ...)\r\n`.
pub fn status(out: &mut Vec<u8>, name: &[u8], items: &[(StatusItem, u64)]) {
    out.extend_from_slice(b"* STATUS ");
    write_astring(out, name);
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

/// `* SEARCH n...[ (MODSEQ m)]\r\n` (RFC 3501; RFC 7162 adds the MODSEQ when results exist).
pub fn search(out: &mut Vec<u8>, numbers: &[u32], modseq: Option<u64>) {
    out.extend_from_slice(b"* SEARCH");
    for n in numbers {
        out.push(b' ');
        write_num(out, n);
    }
    if let (Some(m), false) = (modseq, numbers.is_empty()) {
        out.extend_from_slice(b" (MODSEQ ");
        write_num(out, m);
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

/// One ESEARCH result item (RFC 4731, RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsearchData {
    /// `MIN n`
    Min(u32),
    /// `MAX n`
    Max(u32),
    /// `ALL set`
    All(ResolvedSet),
    /// `COUNT n`
    Count(u32),
    /// `MODSEQ n`
    ModSeq(u64),
}

/// `* ESEARCH (TAG "t") [UID] items\r\n` (RFC 4731).
pub fn esearch(out: &mut Vec<u8>, tag: Option<&Tag>, uid: bool, data: &[EsearchData]) {
    out.extend_from_slice(b"* ESEARCH");
    if let Some(t) = tag {
        out.extend_from_slice(b" (TAG ");
        write_string(out, t.as_str().as_bytes());
        out.push(b')');
    }
    if uid {
        out.extend_from_slice(b" UID");
    }
    for d in data {
        out.push(b' ');
        match d {
            EsearchData::Min(n) => {
                out.extend_from_slice(b"MIN ");
                write_num(out, n);
            }
            EsearchData::Max(n) => {
                out.extend_from_slice(b"MAX ");
                write_num(out, n);
            }
            EsearchData::Count(n) => {
                out.extend_from_slice(b"COUNT ");
                write_num(out, n);
            }
            EsearchData::ModSeq(n) => {
                out.extend_from_slice(b"MODSEQ ");
                write_num(out, n);
            }
            EsearchData::All(set) => {
                out.extend_from_slice(b"ALL ");
                write_sequence_set(out, set);
            }
        }
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
    write_astring(out, mailbox);
    for r in roots {
        out.push(b' ');
        write_astring(out, r);
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a resolved set compactly: `1:3,5,9:12`.
pub fn write_sequence_set(out: &mut Vec<u8>, set: &ResolvedSet) {
    for (i, r) in set.ranges().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_num(out, r.start());
        if r.end() != r.start() {
            out.push(b':');
            write_num(out, r.end());
        }
    }
}

/// Writes UIDs in the given order, joining ascending runs (`5,6,7,2` → `5:7,2`):
/// COPYUID's two lists must correspond item by item (RFC 4315), so no sorting.
pub fn write_uid_list(out: &mut Vec<u8>, uids: &[u32]) {
    let mut i = 0;
    let mut first = true;
    while let Some(&start) = uids.get(i) {
        let mut end = start;
        let mut j = i + 1;
        while let Some(&next) = uids.get(j) {
            if end.checked_add(1) != Some(next) {
                break;
            }
            end = next;
            j += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_num(out, start);
        if end != start {
            out.push(b':');
            write_num(out, end);
        }
        i = j;
    }
}

fn write_part(out: &mut Vec<u8>, part: &[std::num::NonZeroU32]) {
    for (i, p) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        write_num(out, p);
    }
}

/// Writes a section spec as the response echoes it: `1.2.HEADER.FIELDS (FROM TO)`.
pub fn write_section(out: &mut Vec<u8>, section: &Section) {
    write_part(out, &section.part);
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let (name, fields) = match text {
        SectionText::Header => ("HEADER", None),
        SectionText::Text => ("TEXT", None),
        SectionText::Mime => ("MIME", None),
        SectionText::HeaderFields(f) => ("HEADER.FIELDS", Some(f)),
        SectionText::HeaderFieldsNot(f) => ("HEADER.FIELDS.NOT", Some(f)),
    };
    out.extend_from_slice(name.as_bytes());
    if let Some(fields) = fields {
        out.extend_from_slice(b" (");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, f);
        }
        out.push(b')');
    }
}

/// Builds one `* n FETCH (...)` response item by item, so the session can
/// flush `out` between items and stream a body section's octets in between.
#[derive(Debug)]
pub struct FetchResponse {
    first: bool,
}

impl FetchResponse {
    /// Writes `* seq FETCH (`.
    pub fn start(out: &mut Vec<u8>, seq: u32) -> FetchResponse {
        out.extend_from_slice(b"* ");
        write_num(out, seq);
        out.extend_from_slice(b" FETCH (");
        FetchResponse { first: true }
    }

    fn sep(&mut self, out: &mut Vec<u8>) {
        if !self.first {
            out.push(b' ');
        }
        self.first = false;
    }

    /// Starts a free-form item: writes `NAME ` and leaves `out` for the value
    /// (ENVELOPE, BODYSTRUCTURE and BODY are written this way by the MIME helper).
    pub fn item(&mut self, out: &mut Vec<u8>, name: &str) {
        self.sep(out);
        write_atom(out, name);
        out.push(b' ');
    }

    /// `FLAGS (...)`, with `\Recent` appended when `recent`.
    pub fn flags<F: std::borrow::Borrow<Flag>>(
        &mut self,
        out: &mut Vec<u8>,
        flags: impl IntoIterator<Item = F>,
        recent: bool,
    ) {
        self.sep(out);
        out.extend_from_slice(b"FLAGS (");
        let n = write_flag_items(out, flags);
        if recent {
            if n > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(b"\\Recent");
        }
        out.push(b')');
    }

    /// `UID n`.
    pub fn uid(&mut self, out: &mut Vec<u8>, uid: u32) {
        self.sep(out);
        out.extend_from_slice(b"UID ");
        write_num(out, uid);
    }

    /// `INTERNALDATE "17-Jul-1996 02:44:25 -0700"`.
    pub fn internal_date(&mut self, out: &mut Vec<u8>, date: &DateTime) {
        self.sep(out);
        out.extend_from_slice(b"INTERNALDATE ");
        date.write_quoted(out, b' ');
    }

    /// `RFC822.SIZE n`.
    pub fn rfc822_size(&mut self, out: &mut Vec<u8>, size: u64) {
        self.sep(out);
        out.extend_from_slice(b"RFC822.SIZE ");
        write_num(out, size);
    }

    /// `MODSEQ (n)` (RFC 7162).
    pub fn modseq(&mut self, out: &mut Vec<u8>, modseq: u64) {
        self.sep(out);
        out.extend_from_slice(b"MODSEQ (");
        write_num(out, modseq);
        out.push(b')');
    }

    /// `BINARY.SIZE[part] n` (RFC 3516).
    pub fn binary_size(&mut self, out: &mut Vec<u8>, part: &[std::num::NonZeroU32], size: u64) {
        self.sep(out);
        out.extend_from_slice(b"BINARY.SIZE[");
        write_part(out, part);
        out.extend_from_slice(b"] ");
        write_num(out, size);
    }

    /// Writes the item name for a body-section attribute as the response names it
    /// (`BODY[...]<origin>`, `RFC822.TEXT`, `BINARY[...]`); `.PEEK` is dropped.
    /// Returns false (writing nothing) for attributes that are not sections.
    fn section_name(&mut self, out: &mut Vec<u8>, attr: &FetchAttr) -> bool {
        let (name, partial): (&[u8], _) = match attr {
            FetchAttr::Rfc822 => (b"RFC822", None),
            FetchAttr::Rfc822Header => (b"RFC822.HEADER", None),
            FetchAttr::Rfc822Text => (b"RFC822.TEXT", None),
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                self.sep(out);
                out.extend_from_slice(b"BODY[");
                write_section(out, section);
                out.push(b']');
                (b"", *partial)
            }
            FetchAttr::Binary { part, partial, .. } => {
                self.sep(out);
                out.extend_from_slice(b"BINARY[");
                write_part(out, part);
                out.push(b']');
                (b"", *partial)
            }
            _ => return false,
        };
        if !name.is_empty() {
            self.sep(out);
            out.extend_from_slice(name);
        }
        if let Some(p) = partial {
            // The response names only the origin (RFC 3501 msg-att-static).
            out.push(b'<');
            write_num(out, p.origin);
            out.push(b'>');
        }
        true
    }

    /// Writes `BODY[section]<origin> {len}\r\n` (or the RFC822.* / BINARY form);
    /// the session then sends exactly `len` octets of content. `literal8` uses
    /// `~{len}` for BINARY content holding NUL. Returns false, writing nothing,
    /// when `attr` is not a section attribute.
    pub fn section_prefix(
        &mut self,
        out: &mut Vec<u8>,
        attr: &FetchAttr,
        len: u64,
        literal8: bool,
    ) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.extend_from_slice(if literal8 { b" ~{" } else { b" {" });
        write_num(out, len);
        out.extend_from_slice(b"}\r\n");
        true
    }

    /// Writes a section attribute with a small in-memory value, as a string.
    pub fn section_value(&mut self, out: &mut Vec<u8>, attr: &FetchAttr, value: &[u8]) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.push(b' ');
        write_string(out, value);
        true
    }

    /// Writes a section attribute as NIL (a part that does not exist).
    pub fn section_nil(&mut self, out: &mut Vec<u8>, attr: &FetchAttr) -> bool {
        if !self.section_name(out, attr) {
            return false;
        }
        out.extend_from_slice(b" NIL");
        true
    }

    /// Writes `)\r\n`, ending the response.
    pub fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(b")\r\n");
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
    fn decimal_numbers_at_the_edges() {
        let mut v = Vec::new();
        for n in [0u64, 7, 10, 99, 100, 4_294_967_295, u64::MAX] {
            v.clear();
            write_decimal(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
        v.clear();
        write_num(&mut v, std::num::NonZeroU32::MIN);
        write_num(&mut v, 12u32);
        assert_eq!(v, b"112");
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

    use crate::imap::proto::parse::parse_command;
    use crate::imap::proto::types::{CommandBody, Date, Partial};
    use std::num::NonZeroU32;

    fn t(s: &str) -> Tag {
        Tag::new(s.as_bytes()).expect("tag")
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
    fn nul_goes_out_as_literal() {
        // NUL cannot be quoted; a literal carries it byte-exact.
        assert_eq!(enc(write_string, b"\0"), b"{1}\r\n\0");
        assert_eq!(enc(write_astring, b"a\0b"), b"{3}\r\na\0b");
        let mut v = Vec::new();
        write_nstring(&mut v, None);
        assert_eq!(v, b"NIL");
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
    fn uid_lists_keep_order() {
        let mut v = Vec::new();
        write_uid_list(&mut v, &[5, 6, 7, 2, 3, 10, u32::MAX]);
        assert_eq!(v, b"5:7,2:3,10,4294967295");
    }

    #[test]
    fn framing_and_parse_errors() {
        use crate::imap::proto::receive::FrameError;
        let mut v = Vec::new();
        frame_error(
            &mut v,
            &FrameError::LiteralTooBig {
                tag: Some(t("a")),
                size: 9,
                synchronizing: true,
            },
        );
        frame_error(
            &mut v,
            &FrameError::LiteralTooBig {
                tag: Some(t("b")),
                size: 9,
                synchronizing: false,
            },
        );
        frame_error(&mut v, &FrameError::LineTooLong { tag: None });
        if let Err(e) = parse_command(b"c FOO\r\n") {
            parse_error(&mut v, &e);
        }
        if let Err(e) = parse_command(b"\r\n") {
            parse_error(&mut v, &e);
        }
        assert_eq!(
            String::from_utf8_lossy(&v),
            "a NO [TOOBIG] Literal too big\r\n\
             b BAD [TOOBIG] Literal too big\r\n\
             * BAD Command line too long\r\n\
             c BAD unknown command\r\n\
             * BAD a command must start with a tag and a space\r\n"
        );
    }

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
        search(&mut v, &[2, 84, 882], None);
        search(&mut v, &[], Some(5));
        search(&mut v, &[2], Some(917162500));
        esearch(
            &mut v,
            Some(&t("A283")),
            true,
            &[
                EsearchData::Min(2),
                EsearchData::Count(3),
                EsearchData::All([2u32, 10, 11].into_iter().collect()),
            ],
        );
        esearch(&mut v, None, false, &[]);
        enabled(&mut v, &["CONDSTORE"]);
        id(&mut v, Some(&[("name", Some(b"mailcove")), ("os", None)]));
        id(&mut v, None);
        namespace(
            &mut v,
            Some(&[Namespace {
                prefix: b"",
                delimiter: Some(b'/'),
            }]),
            None,
            Some(&[]),
        );
        capability(&mut v, &["IMAP4rev1", "LITERAL+", "bad word\r\n"]);
        vanished(&mut v, true, &[300u32, 301, 405].into_iter().collect());
        quota(&mut v, b"", &[("STORAGE", 10, 512)]);
        quotaroot(&mut v, b"INBOX", &[b""]);
        continue_req(&mut v, "Ready");
        continue_base64(&mut v, b"");
        continue_base64(&mut v, b"abc");
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
             * SEARCH 2 84 882\r\n\
             * SEARCH\r\n\
             * SEARCH 2 (MODSEQ 917162500)\r\n\
             * ESEARCH (TAG \"A283\") UID MIN 2 COUNT 3 ALL 2,10:11\r\n\
             * ESEARCH\r\n\
             * ENABLED CONDSTORE\r\n\
             * ID (\"name\" \"mailcove\" \"os\" NIL)\r\n\
             * ID NIL\r\n\
             * NAMESPACE ((\"\" \"/\")) NIL NIL\r\n\
             * CAPABILITY IMAP4rev1 LITERAL+ badword\r\n\
             * VANISHED (EARLIER) 300:301,405\r\n\
             * QUOTA \"\" (STORAGE 10 512)\r\n\
             * QUOTAROOT INBOX \"\"\r\n\
             + Ready\r\n\
             + \r\n\
             + YWJj\r\n"
        );
    }

    #[test]
    fn fetch_items() {
        let nz = |n| NonZeroU32::new(n).expect("nz");
        let mut v = Vec::new();
        let mut f = FetchResponse::start(&mut v, 12);
        f.flags(&mut v, &[Flag::Seen], true);
        f.uid(&mut v, 4827313);
        let date = Date::new(1996, 7, 17).and_then(|d| DateTime::new(d, 2, 44, 25, -420));
        if let Some(d) = date {
            f.internal_date(&mut v, &d);
        }
        f.rfc822_size(&mut v, 44827);
        f.modseq(&mut v, 624140003);
        let attr = FetchAttr::BodySection {
            peek: true,
            section: Section {
                part: vec![nz(1), nz(2)],
                text: Some(SectionText::HeaderFields(vec![
                    b"FROM".to_vec(),
                    b"TO".to_vec(),
                ])),
            },
            partial: Some(Partial {
                origin: 0,
                count: nz(100),
            }),
        };
        assert!(f.section_prefix(&mut v, &attr, 5, false));
        v.extend_from_slice(b"hello");
        assert!(f.section_prefix(&mut v, &FetchAttr::Rfc822Text, 0, false));
        let bin = FetchAttr::Binary {
            peek: false,
            part: vec![nz(3)],
            partial: None,
        };
        assert!(f.section_prefix(&mut v, &bin, 2, true));
        v.extend_from_slice(b"\0\x01");
        let mime = FetchAttr::BodySection {
            peek: false,
            section: Section {
                part: vec![nz(9)],
                text: Some(SectionText::Mime),
            },
            partial: None,
        };
        assert!(f.section_nil(&mut v, &mime));
        assert!(f.section_value(&mut v, &FetchAttr::Rfc822Header, b"A: b\r\n\r\n"));
        assert!(!f.section_prefix(&mut v, &FetchAttr::Uid, 1, false));
        f.binary_size(&mut v, &[nz(3)], 2);
        f.item(&mut v, "ENVELOPE");
        v.extend_from_slice(b"NIL");
        f.finish(&mut v);
        assert_eq!(
            v,
            b"* 12 FETCH (FLAGS (\\Seen \\Recent) UID 4827313 \
INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 MODSEQ (624140003) \
BODY[1.2.HEADER.FIELDS (FROM TO)]<0> {5}\r\nhello RFC822.TEXT {0}\r\n \
BINARY[3] ~{2}\r\n\0\x01 BODY[9.MIME] NIL RFC822.HEADER {8}\r\nA: b\r\n\r\n \
BINARY.SIZE[3] 2 ENVELOPE NIL)\r\n"
                .as_slice()
        );
    }
}
