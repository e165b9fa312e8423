//! `getmetadata` and `setmetadata` (RFC 5464 section 5):
//!
//! ```text
//! getmetadata         = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
//! getmetadata-options = "(" getmetadata-option *(SP getmetadata-option) ")"
//! getmetadata-option  = tagged-ext-label [SP tagged-ext-val]
//! maxsize-opt         = "MAXSIZE" SP number
//! scope-opt           = "DEPTH" SP ("0" / "1" / "infinity")
//! entries             = entry / "(" entry *(SP entry) ")"
//! entry               = astring            ; MUST NOT contain "*" or "%"
//! setmetadata         = "SETMETADATA" SP mailbox SP entry-values
//! entry-values        = "(" entry-value *(SP entry-value) ")"
//! entry-value         = entry SP value
//! value               = nstring / literal8
//! ```
//!
//! The ABNF puts the options before the mailbox, but every example of RFC 5464 4.2.1 and 4.2.2
//! puts them after it (`GETMETADATA "INBOX" (MAXSIZE 1024) (...)`), and clients copied both;
//! like Cyrus, both orders are taken. After the mailbox, a list whose first octet is a letter
//! is the options (an entry starts with `/`, or is quoted or a literal).
//!
//! Entry names are checked here (RFC 5464 3.2: an invalid name is BAD in any command) and
//! lower-cased, since they compare case-insensitively. MAXSIZE and DEPTH are the only options
//! RFC 5464 defines; any other is BAD, as Dovecot answers. The lists are bounded by the
//! command's line and literal limits.

use std::borrow::Cow;

use nom::Parser;
use nom::branch::alt;
use nom::bytes::complete::tag;
use nom::combinator::{map, value};
use nom::multi::separated_list1;
use nom::sequence::delimited;

use super::core::{astring, keyword, literal8, mailbox, nstring, number64, sp};
use super::{PResult, ParseErrorKind, ctx, failure};
use crate::imap::proto::types::{CommandBody, MetadataDepth};
use crate::limits::MAX_METADATA_ENTRY_NAME_BYTES;

/// What an entry name is used for: GETMETADATA may name a whole hierarchy (`/shared`, to be
/// read with DEPTH); SETMETADATA needs at least two components (RFC 5464 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryUse {
    /// GETMETADATA.
    Get,
    /// SETMETADATA.
    Set,
}

/// Checks an entry name against RFC 5464 3.2 and returns it lower-cased, or why it is invalid:
/// no octet 0x00-0x19 and nothing non-ASCII (the RFC's words, and Dovecot's
/// `imap_metadata_verify_entry_name`, which also lets the merely "discouraged" 0x1A-0x1F and
/// 0x7F through), no `*` or `%`, no `//`, no trailing `/`, and `/private` or `/shared` first.
/// Like Dovecot, GETMETADATA may name `/private` or `/shared` alone.
pub fn entry_name(raw: &[u8], usage: EntryUse) -> Result<String, &'static str> {
    if raw.len() > MAX_METADATA_ENTRY_NAME_BYTES {
        return Err("Entry name is too long");
    }
    if raw.first() != Some(&b'/') {
        return Err("Entry name must begin with '/'");
    }
    if raw.iter().any(|&b| b <= 0x19 || b >= 0x80) {
        return Err("Entry name must be US-ASCII without control characters");
    }
    if raw.iter().any(|&b| b == b'*' || b == b'%') {
        return Err("Entry name must not contain '*' or '%'");
    }
    if raw.windows(2).any(|w| w == b"//") {
        return Err("Entry name must not contain '//'");
    }
    if raw.ends_with(b"/") {
        return Err("Entry name must not end with '/'");
    }
    let name = String::from_utf8_lossy(raw).to_ascii_lowercase();
    let scoped = ["/private", "/shared"].iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| {
            rest.starts_with('/') || (rest.is_empty() && usage == EntryUse::Get)
        })
    });
    if !scoped {
        return Err(match usage {
            EntryUse::Get => "Entry name must begin with /private or /shared",
            EntryUse::Set => "Entry name must be below /private or /shared",
        });
    }
    Ok(name)
}

/// `entry`, checked and lower-cased.
fn entry(usage: EntryUse) -> impl FnMut(&[u8]) -> PResult<'_, String> {
    move |i| {
        let (rest, raw) = ctx("expected an entry name", astring).parse(i)?;
        match entry_name(&raw, usage) {
            Ok(name) => Ok((rest, name)),
            Err(why) => Err(failure(i, ParseErrorKind::Syntax, why)),
        }
    }
}

/// One `getmetadata-option`.
enum GetOption {
    MaxSize(u64),
    Depth(MetadataDepth),
}

fn get_option(i: &[u8]) -> PResult<'_, GetOption> {
    if let Ok((rest, ())) = keyword("MAXSIZE")(i) {
        let (rest, n) = ctx("MAXSIZE needs a number", (sp, number64))
            .parse(rest)
            .map(|(r, ((), n))| (r, n))?;
        return Ok((rest, GetOption::MaxSize(n)));
    }
    if let Ok((rest, ())) = keyword("DEPTH")(i) {
        let (rest, _) = sp(rest)?;
        let (rest, d) = ctx(
            "DEPTH must be 0, 1 or infinity",
            alt((
                value(MetadataDepth::Zero, keyword("0")),
                value(MetadataDepth::One, keyword("1")),
                value(MetadataDepth::Infinity, keyword("infinity")),
            )),
        )
        .parse(rest)?;
        return Ok((rest, GetOption::Depth(d)));
    }
    Err(failure(
        i,
        ParseErrorKind::Syntax,
        "unknown GETMETADATA option",
    ))
}

/// `entries`
fn entries(i: &[u8]) -> PResult<'_, Vec<String>> {
    if i.first() == Some(&b'(') {
        return delimited(
            tag(&b"("[..]),
            separated_list1(sp, entry(EntryUse::Get)),
            ctx("expected ')' after the entries", tag(&b")"[..])),
        )
        .parse(i);
    }
    map(entry(EntryUse::Get), |e| vec![e]).parse(i)
}

/// `getmetadata-options`: MAXSIZE (if given) and DEPTH (0 if not).
fn options(i: &[u8]) -> PResult<'_, (Option<u64>, MetadataDepth)> {
    let (rest, list) = delimited(
        tag(&b"("[..]),
        separated_list1(sp, get_option),
        ctx("expected ')' after the options", tag(&b")"[..])),
    )
    .parse(i)?;
    let mut maxsize = None;
    let mut depth = MetadataDepth::Zero;
    for o in list {
        match o {
            GetOption::MaxSize(n) => maxsize = Some(n),
            GetOption::Depth(d) => depth = d,
        }
    }
    Ok((rest, (maxsize, depth)))
}

/// `getmetadata` after the command name (options before or after the mailbox).
pub(super) fn getmetadata(i: &[u8]) -> PResult<'_, CommandBody> {
    let (mut rest, _) = sp(i)?;
    let mut given = None;
    if rest.first() == Some(&b'(') {
        let (r, o) = options(rest)?;
        given = Some(o);
        (rest, _) = sp(r)?;
    }
    let (mut rest, (mailbox, ())) = (mailbox, sp).parse(rest)?;
    if given.is_none()
        && rest.first() == Some(&b'(')
        && rest.get(1).is_some_and(u8::is_ascii_alphabetic)
    {
        let (r, o) = options(rest)?;
        given = Some(o);
        (rest, _) = sp(r)?;
    }
    let (rest, entries) = entries(rest)?;
    let (maxsize, depth) = given.unwrap_or((None, MetadataDepth::Zero));
    Ok((
        rest,
        CommandBody::GetMetadata {
            mailbox,
            maxsize,
            depth,
            entries,
        },
    ))
}

/// `value = nstring / literal8`
fn metadata_value(i: &[u8]) -> PResult<'_, Option<Vec<u8>>> {
    ctx(
        "expected a value: a string, a literal8 or NIL",
        alt((
            map(literal8, |d| Some(d.to_vec())),
            map(nstring, |v| v.map(Cow::into_owned)),
        )),
    )
    .parse(i)
}

/// `setmetadata` after the command name.
pub(super) fn setmetadata(i: &[u8]) -> PResult<'_, CommandBody> {
    let entry_value = map(
        (entry(EntryUse::Set), sp, metadata_value),
        |(name, (), value)| (name, value),
    );
    let (rest, (_, mailbox, _, entries)) = (
        sp,
        mailbox,
        sp,
        ctx(
            "expected a parenthesised list of entries and values",
            delimited(
                tag(&b"("[..]),
                separated_list1(sp, entry_value),
                tag(&b")"[..]),
            ),
        ),
    )
        .parse(i)?;
    Ok((rest, CommandBody::SetMetadata { mailbox, entries }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::proto::parse::parse_command;

    fn body(line: &str) -> CommandBody {
        parse_command(format!("t {line}\r\n").as_bytes())
            .unwrap_or_else(|e| panic!("{line}: {e:?}"))
            .body
    }

    fn bad(line: &[u8]) -> &'static str {
        let mut l = b"t ".to_vec();
        l.extend_from_slice(line);
        l.extend_from_slice(b"\r\n");
        match parse_command(&l) {
            Ok(c) => panic!("{:?} parsed: {c:?}", String::from_utf8_lossy(line)),
            Err(e) => e.message,
        }
    }

    #[test]
    fn entry_names_follow_rfc_5464_section_3_2() {
        use EntryUse::{Get, Set};
        assert_eq!(
            entry_name(b"/Private/Comment", Set),
            Ok("/private/comment".into())
        );
        assert_eq!(
            entry_name(b"/shared/vendor/x/y", Set),
            Ok("/shared/vendor/x/y".into())
        );
        assert_eq!(entry_name(b"/shared", Get), Ok("/shared".into()));
        // Discouraged, not forbidden (RFC 5464 3.2; Dovecot takes them too).
        assert_eq!(
            entry_name(b"/shared/\x1a\x7f", Set),
            Ok("/shared/\x1a\x7f".into())
        );
        for (name, usage) in [
            (&b"/shared"[..], Set),
            (b"/private", Set),
            (b"shared/comment", Get),
            (b"/other/comment", Get),
            (b"/sharedx/comment", Get),
            (b"/shared//comment", Get),
            (b"/shared/comment/", Get),
            (b"/shared/com*", Get),
            (b"/shared/com%", Get),
            (b"/shared/\x19x", Get),
            (b"/shared/\xc3\xa9", Get),
            (b"", Get),
        ] {
            assert!(
                entry_name(name, usage).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(name)
            );
        }
        let long = format!("/shared/{}", "x".repeat(MAX_METADATA_ENTRY_NAME_BYTES));
        assert!(entry_name(long.as_bytes(), Get).is_err());
    }

    #[test]
    fn getmetadata_takes_options_and_one_entry_or_a_list() {
        assert_eq!(
            body("GETMETADATA \"\" /shared/comment"),
            CommandBody::GetMetadata {
                mailbox: crate::imap::proto::types::Mailbox::new(Vec::new()),
                maxsize: None,
                depth: MetadataDepth::Zero,
                entries: vec!["/shared/comment".into()],
            }
        );
        assert_eq!(
            body("getmetadata (maxsize 1024 DEPTH infinity) inbox (/Shared/A \"/private/b\")"),
            CommandBody::GetMetadata {
                mailbox: crate::imap::proto::types::Mailbox::new(b"INBOX".to_vec()),
                maxsize: Some(1024),
                depth: MetadataDepth::Infinity,
                entries: vec!["/shared/a".into(), "/private/b".into()],
            }
        );
        // The order of RFC 5464's examples: options after the mailbox.
        assert_eq!(
            body("GETMETADATA INBOX (MAXSIZE 1024) (/shared/comment /private/comment)"),
            CommandBody::GetMetadata {
                mailbox: crate::imap::proto::types::Mailbox::new(b"INBOX".to_vec()),
                maxsize: Some(1024),
                depth: MetadataDepth::Zero,
                entries: vec!["/shared/comment".into(), "/private/comment".into()],
            }
        );
        assert!(matches!(
            body("GETMETADATA (DEPTH 1) INBOX /shared"),
            CommandBody::GetMetadata {
                depth: MetadataDepth::One,
                ..
            }
        ));
        assert_eq!(
            bad(b"GETMETADATA (DEPTH 2) INBOX /shared"),
            "DEPTH must be 0, 1 or infinity"
        );
        assert_eq!(
            bad(b"GETMETADATA (FOO 1) INBOX /shared"),
            "unknown GETMETADATA option"
        );
        assert_eq!(
            bad(b"GETMETADATA () INBOX /shared"),
            "unknown GETMETADATA option"
        );
        assert_eq!(
            bad(b"GETMETADATA INBOX \"/shared/c*\""),
            "Entry name must not contain '*' or '%'"
        );
        // As an atom, `*` ends the name (it is no ASTRING-CHAR), which leaves a trailing '/'.
        assert_eq!(
            bad(b"GETMETADATA INBOX /shared/*"),
            "Entry name must not end with '/'"
        );
        assert_eq!(
            bad(b"GETMETADATA INBOX (/shared/a /x)"),
            "Entry name must begin with /private or /shared"
        );
        assert!(!bad(b"GETMETADATA INBOX").is_empty());
        assert!(!bad(b"GETMETADATA INBOX ()").is_empty());
    }

    #[test]
    fn setmetadata_takes_strings_literals_literal8_and_nil() {
        assert_eq!(
            body(
                "SETMETADATA INBOX (/private/comment {5+}\r\na\r\nbc /shared/x NIL /shared/y ~{2+}\r\n\0z /shared/z \"q\")"
            ),
            CommandBody::SetMetadata {
                mailbox: crate::imap::proto::types::Mailbox::new(b"INBOX".to_vec()),
                entries: vec![
                    ("/private/comment".into(), Some(b"a\r\nbc".to_vec())),
                    ("/shared/x".into(), None),
                    ("/shared/y".into(), Some(b"\0z".to_vec())),
                    ("/shared/z".into(), Some(b"q".to_vec())),
                ],
            }
        );
        assert_eq!(
            bad(b"SETMETADATA INBOX (/shared \"x\")"),
            "Entry name must be below /private or /shared"
        );
        assert!(!bad(b"SETMETADATA INBOX ()").is_empty());
        assert!(!bad(b"SETMETADATA INBOX (/shared/a)").is_empty());
        assert!(!bad(b"SETMETADATA INBOX /shared/a \"x\"").is_empty());
        // NUL only travels in literal8.
        assert!(!bad(b"SETMETADATA INBOX (/shared/a {1+}\r\n\0)").is_empty());
    }
}
