//! Message to ENVELOPE / BODY / BODYSTRUCTURE (`mailcove::mime`): parse,
//! write, cache round trip and section resolution on random part paths.
//!
//! Input: the raw stored message. Its last eight bytes also choose the part
//! paths and section texts resolved.
//!
//! Invariants: the part tree is a tree (parents first, children point back,
//! depth and part count within the limits); every range lies in the message,
//! headers come before bodies, children inside their parent; virtual sizes
//! are what LF→CRLF conversion produces; ENVELOPE, BODY and BODYSTRUCTURE
//! are well-formed IMAP lists of bounded size; the cache blob reads back to
//! the same structure; a resolved section stays inside the message and
//! `section_bytes` has the announced virtual length; the PREVIEW text reads only windows
//! inside the message and is at most `PREVIEW_MAX_CHARS` characters, with no control
//! characters, no whitespace but single spaces, and no space at either end.

use mailcove::limits::{
    MAX_ENVELOPE_ADDRESSES, MAX_MIME_CACHE_BYTES, MAX_MIME_DEPTH, MAX_MIME_PARTS,
};
use mailcove::limits::{PREVIEW_MAX_CHARS, PREVIEW_PART_BYTES};
use mailcove::mime::{
    Envelope, MessageInfo, PartKind, SectionPlan, SectionSpec, SectionText, message_preview,
    preview_sources, virtual_len, write_body, write_envelope,
};

use crate::wire::check_list;

/// Checks the tree of `info` and its ranges; when `raw_len` is given (`info`
/// was parsed from that message) also that they lie in the message and in
/// their parent. A cache blob's ranges are checked against the file by FETCH.
pub fn check_tree(info: &MessageInfo, raw_len: Option<u64>) {
    assert!(!info.parts.is_empty() && info.parts.len() <= MAX_MIME_PARTS + 1);
    let mut depth = vec![0usize; info.parts.len()];
    for (i, p) in info.parts.iter().enumerate() {
        match p.parent {
            None => assert_eq!(i, 0, "only the root has no parent"),
            Some(parent) => {
                let parent = parent as usize;
                assert!(parent < i, "parent after child");
                assert!(info.parts[parent].children.contains(&(i as u32)));
                depth[i] = depth[parent] + 1;
                assert!(depth[i] <= MAX_MIME_DEPTH + 1, "tree deeper than the limit");
            }
        }
        for &c in &p.children {
            assert_eq!(
                info.parts.get(c as usize).and_then(|c| c.parent),
                Some(i as u32)
            );
        }
        match p.kind {
            PartKind::Leaf => assert!(p.children.is_empty()),
            PartKind::Message => assert!(p.children.len() <= 1),
            PartKind::Multipart => {}
        }
        for r in [p.header, p.body] {
            assert!(r.start <= r.end, "inverted range");
        }
        assert!(p.header.end <= p.body.start, "header after body");
        if let Some(raw_len) = raw_len {
            assert!(p.body.end <= raw_len, "range outside the message");
            if let Some(parent) = p.parent.and_then(|x| info.part(x)) {
                assert!(parent.header.start <= p.header.start && p.body.end <= parent.body.end);
            }
        }
    }
}

/// Most bytes one ENVELOPE address entry writes besides bytes of its input:
/// parentheses and three spaces, then per string NIL, two quotes or a literal
/// header (`{1048576}\r\n`), or a fill-in such as `"MISSING_MAILBOX"`.
const ADDRESS_ENTRY_FIXED: usize = 96;

/// The most ENVELOPE bytes `info` may be written as, `input_len` being the
/// bytes it was read from (message or cache blob). Every string byte comes
/// from the input, at most doubled by the spaces joining phrase words and
/// again by quoting; From is written up to three times (Sender and Reply-To
/// default to it, RFC 3501 section 7.4.2); each address entry adds at most
/// [`ADDRESS_ENTRY_FIXED`], and there are at most [`MAX_ENVELOPE_ADDRESSES`]
/// per header, so tiny broken addresses cannot amplify without bound.
pub fn envelope_budget(info: &MessageInfo, input_len: usize) -> usize {
    envelope_budget_of(info.envelope(), input_len)
}

/// [`envelope_budget`] of one envelope whose strings come from `input_len` bytes.
fn envelope_budget_of(e: &Envelope, input_len: usize) -> usize {
    let lists = [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc];
    for l in lists {
        assert!(l.len() <= MAX_ENVELOPE_ADDRESSES, "{} addresses", l.len());
    }
    let from_copies = 1 + usize::from(e.sender.is_empty()) + usize::from(e.reply_to.is_empty());
    let entries = e.from.len() * from_copies
        + [&e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc]
            .iter()
            .map(|l| l.len())
            .sum::<usize>();
    12 * input_len + ADDRESS_ENTRY_FIXED * entries + 1024
}

/// Writes ENVELOPE and both BODY forms of `info` and checks them: ENVELOPE
/// against [`envelope_budget`], BODY and BODYSTRUCTURE against `budget` plus
/// the envelope budget of each message/rfc822 part they contain. `own_raw`:
/// `info` was parsed from the input, so a nested envelope's strings come from
/// its own header (disjoint from the others'); else (a cache blob) from
/// anywhere in the input.
pub fn check_written(info: &MessageInfo, input_len: usize, own_raw: bool, budget: usize) {
    let mut out = Vec::new();
    write_envelope(&mut out, info.envelope());
    check_list(&out);
    let envelope_budget = envelope_budget(info, input_len);
    assert!(
        out.len() <= envelope_budget,
        "ENVELOPE of {} bytes",
        out.len()
    );
    let nested: usize = info
        .parts
        .iter()
        .skip(1)
        .filter_map(|p| {
            let from = if own_raw {
                usize::try_from(p.header.len()).unwrap_or(usize::MAX)
            } else {
                input_len
            };
            p.envelope.as_deref().map(|e| envelope_budget_of(e, from))
        })
        .fold(0usize, usize::saturating_add);
    let budget = budget.saturating_add(nested);
    for extended in [false, true] {
        out.clear();
        write_body(&mut out, info, extended);
        check_list(&out);
        assert!(out.len() <= budget, "BODY of {} bytes", out.len());
    }
}

/// Resolves sections chosen by `selector` and checks the plans against `raw`;
/// `own_raw` says `info` was parsed from `raw` (not read from a cache blob
/// that may belong to another file), so its sizes must be exact.
pub fn check_sections(info: &MessageInfo, raw: &[u8], own_raw: bool, selector: &[u8]) {
    let names: [&[u8]; 2] = [b"Subject", b"Content-Type"];
    for window in selector.chunks(4) {
        let path: Vec<u32> = window
            .iter()
            .skip(1)
            .map(|b| u32::from(b % 4))
            .take_while(|&n| n > 0)
            .collect();
        let text = match window.first().map_or(0, |b| b % 6) {
            0 => SectionText::Full,
            1 => SectionText::Header,
            2 => SectionText::HeaderFields(&names),
            3 => SectionText::HeaderFieldsNot(&names),
            4 => SectionText::Text,
            _ => SectionText::Mime,
        };
        let spec = SectionSpec { path: &path, text };
        let bytes = info.section_bytes(raw, &spec);
        match info.resolve_section(&spec) {
            SectionPlan::Empty => assert!(bytes.is_empty()),
            SectionPlan::Range {
                range,
                virtual_len: len,
            } => {
                assert!(range.start <= range.end);
                assert_eq!(bytes.len() as u64, virtual_len(range.slice(raw)));
                if own_raw {
                    assert!(range.end <= raw.len() as u64);
                    assert_eq!(len, bytes.len() as u64, "announced size is wrong");
                }
            }
            SectionPlan::HeaderFields { header, .. } => {
                assert!(header.start <= header.end);
                assert!(!own_raw || header.end <= raw.len() as u64);
                // Bare LFs become CRLF; an unterminated last line and the
                // blank line that ends the block are added.
                assert!(bytes.len() as u64 <= 2 * header.len() + 4);
            }
        }
        if path.is_empty() {
            assert!(info.find_part(&path) == Some(0));
        }
    }
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let info = MessageInfo::parse(data);
    check_tree(&info, Some(data.len() as u64));
    let root = info.root();
    assert_eq!(root.header.start, 0);
    assert_eq!(info.virtual_size(), virtual_len(root.whole().slice(data)));
    for p in &info.parts {
        assert_eq!(p.header_size.virtual_len, virtual_len(p.header.slice(data)));
        assert_eq!(p.body_size.virtual_len, virtual_len(p.body.slice(data)));
    }
    // Every BODY byte comes from the message or from fixed text per part.
    let budget = 4 * data.len() + 512 * info.parts.len() + 1024;
    check_written(&info, data.len(), true, budget);
    let blob = info.to_cache_bytes();
    if blob.len() <= MAX_MIME_CACHE_BYTES {
        assert_eq!(
            MessageInfo::from_cache_bytes(&blob).as_ref(),
            Some(&info),
            "cache round trip"
        );
    }
    let selector = data.get(data.len().saturating_sub(8)..).unwrap_or_default();
    check_sections(&info, data, true, selector);
    check_preview(&info, data);
}

/// The PREVIEW invariants (RFC 8970 3.3) of the module docs.
fn check_preview(info: &MessageInfo, data: &[u8]) {
    for src in preview_sources(info) {
        assert!(
            src.window.end <= data.len() as u64,
            "preview window outside the message"
        );
        assert!(
            src.window.len() <= PREVIEW_PART_BYTES,
            "preview window too large"
        );
    }
    let p = message_preview(info, data);
    assert!(p.chars().count() <= PREVIEW_MAX_CHARS, "preview too long");
    assert!(
        !p.chars().any(char::is_control),
        "control character in preview"
    );
    assert!(
        !p.chars().any(|c| c.is_whitespace() && c != ' ') && !p.contains("  "),
        "whitespace not collapsed"
    );
    assert!(
        !p.starts_with(' ') && !p.ends_with(' '),
        "preview not trimmed"
    );
}
