//! ENVELOPE, BODY and BODYSTRUCTURE writers (RFC 3501 sections 7.4.2 and 9).
//!
//! Output follows Dovecot's `imap-bodystructure.c` / `imap-envelope.c` byte for
//! byte where RFC 3501 leaves a choice:
//! - type, subtype, parameter names and values keep the case of the header
//!   (Dovecot does not upper-case them); defaults are lower case:
//!   `"text" "plain" ("charset" "us-ascii") ... "7bit"`;
//! - message/rfc822 parts are always written `"message" "rfc822"`;
//! - a text part without a charset parameter gets `"charset" "us-ascii"`
//!   appended to its parameters;
//! - a multipart without children (no boundary found, or past the nesting
//!   limit) is written with one empty text/plain child, a multipart without a
//!   subtype as `"x-unknown"`, a single part without subtype `"unknown"`;
//! - a message/rfc822 part kept opaque by a limit is written as
//!   `"application" "octet-stream"`, since RFC 3501's body-type-msg requires
//!   an envelope and body we did not parse.

use super::{Address, ContentInfo, Envelope, MessageInfo, Param, PartKind};
use crate::imap::proto::encode::{write_nstring, write_string};

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

/// Writes an ENVELOPE list `(date subject from sender reply-to to cc bcc
/// in-reply-to message-id)`; Sender and Reply-To fall back to From when empty
/// (RFC 3501 section 7.4.2).
pub fn write_envelope(out: &mut Vec<u8>, env: &Envelope) {
    out.push(b'(');
    write_nstring(out, env.date.as_deref());
    out.push(b' ');
    write_nstring(out, env.subject.as_deref());
    out.push(b' ');
    write_addresses(out, &env.from);
    out.push(b' ');
    write_addresses(
        out,
        if env.sender.is_empty() {
            &env.from
        } else {
            &env.sender
        },
    );
    out.push(b' ');
    write_addresses(
        out,
        if env.reply_to.is_empty() {
            &env.from
        } else {
            &env.reply_to
        },
    );
    out.push(b' ');
    write_addresses(out, &env.to);
    out.push(b' ');
    write_addresses(out, &env.cc);
    out.push(b' ');
    write_addresses(out, &env.bcc);
    out.push(b' ');
    write_nstring(out, env.in_reply_to.as_deref());
    out.push(b' ');
    write_nstring(out, env.message_id.as_deref());
    out.push(b')');
}

fn write_addresses(out: &mut Vec<u8>, list: &[Address]) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        write_nstring(out, a.name.as_deref());
        out.push(b' ');
        write_nstring(out, a.adl.as_deref());
        out.push(b' ');
        write_nstring(out, a.mailbox.as_deref());
        out.push(b' ');
        write_nstring(out, a.host.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// Writes the BODY (`extended == false`) or BODYSTRUCTURE (`true`) value of
/// the whole message, parentheses included.
pub fn write_body(out: &mut Vec<u8>, info: &MessageInfo, extended: bool) {
    write_part(out, info, 0, extended);
}

/// Writes one part in parentheses. Recursion depth is the part nesting depth,
/// which `parse` and `from_cache_bytes` bound by `MAX_MIME_DEPTH`.
fn write_part(out: &mut Vec<u8>, info: &MessageInfo, idx: u32, extended: bool) {
    let Some(part) = info.part(idx) else {
        out.extend_from_slice(if extended {
            EMPTY_BODYSTRUCTURE
        } else {
            EMPTY_BODY
        });
        return;
    };
    let c = &part.content;
    match part.kind {
        PartKind::Multipart => {
            out.push(b'(');
            if part.children.is_empty() {
                out.extend_from_slice(if extended {
                    EMPTY_BODYSTRUCTURE
                } else {
                    EMPTY_BODY
                });
            }
            for &ch in &part.children {
                write_part(out, info, ch, extended);
            }
            out.push(b' ');
            write_string(out, c.subtype.as_deref().unwrap_or(b"x-unknown"));
            if extended {
                out.push(b' ');
                write_params(out, &c.params, false);
                write_ext_tail(out, c);
            }
            out.push(b')');
        }
        PartKind::Message | PartKind::Leaf => {
            out.push(b'(');
            let is_message = part.kind == PartKind::Message;
            let opaque_message = !is_message && (part.digest_default || is_message_rfc822(c));
            let text = !is_message && !opaque_message && c.is_text();
            if is_message {
                out.extend_from_slice(b"\"message\" \"rfc822\"");
            } else if opaque_message {
                out.extend_from_slice(b"\"application\" \"octet-stream\"");
            } else {
                write_string(out, c.ctype.as_deref().unwrap_or(b"text"));
                out.push(b' ');
                let sub: &[u8] = match (&c.subtype, text) {
                    (Some(s), _) => s,
                    (None, true) => b"plain",
                    (None, false) => b"unknown",
                };
                write_string(out, sub);
            }
            out.push(b' ');
            write_params(out, &c.params, text);
            out.push(b' ');
            write_nstring(out, c.id.as_deref());
            out.push(b' ');
            write_nstring(out, c.description.as_deref());
            out.push(b' ');
            write_string(out, c.encoding.as_deref().unwrap_or(b"7bit"));
            out.push(b' ');
            out.extend_from_slice(part.body_size.virtual_len.to_string().as_bytes());
            if text {
                out.push(b' ');
                out.extend_from_slice(part.body_size.lines.to_string().as_bytes());
            } else if is_message {
                let child = part.children.first().copied();
                out.push(b' ');
                let env = child
                    .and_then(|ch| info.part(ch))
                    .and_then(|p| p.envelope.as_deref());
                write_envelope(out, env.unwrap_or(&Envelope::default()));
                out.push(b' ');
                match child {
                    Some(ch) => write_child_message(out, info, ch, extended),
                    None => out.extend_from_slice(if extended {
                        EMPTY_BODYSTRUCTURE
                    } else {
                        EMPTY_BODY
                    }),
                }
                out.push(b' ');
                out.extend_from_slice(part.body_size.lines.to_string().as_bytes());
            }
            if extended {
                out.push(b' ');
                write_nstring(out, c.md5.as_deref());
                write_ext_tail(out, c);
            }
            out.push(b')');
        }
    }
}

/// The encapsulated message of a message/rfc822 part is written like a
/// top-level message body.
fn write_child_message(out: &mut Vec<u8>, info: &MessageInfo, idx: u32, extended: bool) {
    write_part(out, info, idx, extended);
}

fn is_message_rfc822(c: &ContentInfo) -> bool {
    c.ctype
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"message"))
        && c.subtype
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(b"rfc822"))
}

/// ` disposition language location` shared by both body kinds.
fn write_ext_tail(out: &mut Vec<u8>, c: &ContentInfo) {
    out.push(b' ');
    match &c.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(d) => {
            out.push(b'(');
            write_string(out, &d.value);
            out.push(b' ');
            write_params(out, &d.params, false);
            out.push(b')');
        }
    }
    out.push(b' ');
    if c.language.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        for (i, l) in c.language.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_string(out, l);
        }
        out.push(b')');
    }
    out.push(b' ');
    write_nstring(out, c.location.as_deref());
}

fn write_params(out: &mut Vec<u8>, params: &[Param], default_charset: bool) {
    let has_charset = params
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case(b"charset"));
    if params.is_empty() && !default_charset {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, &p.name);
        out.push(b' ');
        write_string(out, &p.value);
    }
    if default_charset && !has_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}
