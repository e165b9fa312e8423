//! The iterative MIME structure scanner (see the module docs of `mime` for the
//! rules it follows and why).

use super::header::{line_end, scan_header};
use super::{ByteRange, MessageInfo, Part, PartKind, Size};
use crate::limits::{MAX_MIME_DEPTH, MAX_MIME_PARTS};

/// An open multipart boundary.
struct Open {
    part: usize,
    boundary: Vec<u8>,
}

/// A boundary line found in the input.
struct Hit {
    /// Where the body before the boundary ends (its `[CR]LF` excluded).
    body_end: usize,
    /// Index in the open-boundary stack.
    owner: usize,
    /// `--boundary--`.
    close: bool,
    /// Start of the line after the boundary line.
    after: usize,
}

enum Step {
    Header(usize),
    Body(usize),
}

/// Counts of a byte slice as sent to a client: virtual length and LFs. LFs are found with
/// memchr: bodies of large attachments go through here.
pub(crate) fn measure(s: &[u8]) -> Size {
    let mut lines = 0u64;
    let mut bare = 0u64;
    for i in memchr::memchr_iter(b'\n', s) {
        lines += 1;
        // Every LF not preceded by CR (in `s`) becomes CRLF on the wire.
        if i == 0 || s.get(i - 1) != Some(&b'\r') {
            bare += 1;
        }
    }
    Size {
        virtual_len: s.len() as u64 + bare,
        lines,
    }
}

/// Checks whether the line at `ls` is a boundary line of an open boundary;
/// the longest matching boundary wins, innermost on ties (Dovecot's
/// `boundary_find`).
fn boundary_at(raw: &[u8], ls: usize, open: &[Open]) -> Option<(usize, bool, usize)> {
    let line = raw.get(ls..line_end(raw, ls))?;
    let rest = line.strip_prefix(b"--")?;
    let mut best: Option<usize> = None;
    for (i, o) in open.iter().enumerate().rev() {
        if rest.starts_with(&o.boundary)
            && best.is_none_or(|b| {
                open.get(b)
                    .is_some_and(|ob| ob.boundary.len() < o.boundary.len())
            })
        {
            best = Some(i);
        }
    }
    let owner = best?;
    let blen = open.get(owner)?.boundary.len();
    let close = rest.get(blen..).is_some_and(|r| r.starts_with(b"--"));
    Some((owner, close, ls + line.len()))
}

/// Where a body that started at `body_start` ends when the boundary line
/// begins at `ls`: the `[CR]LF` before the line belongs to the boundary.
fn end_before(raw: &[u8], body_start: usize, ls: usize) -> usize {
    if ls <= body_start {
        return ls;
    }
    let mut e = ls - 1; // the LF
    if e > body_start && raw.get(e - 1) == Some(&b'\r') {
        e -= 1;
    }
    e
}

/// Finds the next boundary line at or after line start `pos`. Only lines starting with `--`
/// can be one, so the search jumps from one `LF--` to the next (at memchr speed through base64
/// attachments) instead of visiting every line.
fn find_boundary(raw: &[u8], pos: usize, open: &[Open]) -> Option<Hit> {
    if open.is_empty() {
        return None;
    }
    let mut ls = pos;
    while ls < raw.len() {
        if raw.get(ls..ls + 2) == Some(b"--")
            && let Some((owner, close, after)) = boundary_at(raw, ls, open)
        {
            return Some(Hit {
                body_end: end_before(raw, pos, ls),
                owner,
                close,
                after,
            });
        }
        ls += memchr::memmem::find(raw.get(ls..)?, b"\n--")? + 1;
    }
    None
}

/// Finds the end of a header starting at `pos`: after the blank line, at EOF,
/// or (returned as a hit) at a boundary line.
fn find_header_end(raw: &[u8], pos: usize, open: &[Open]) -> (usize, Option<Hit>) {
    let mut ls = pos;
    while ls < raw.len() {
        let rest = raw.get(ls..).unwrap_or(&[]);
        if rest.starts_with(b"\n") {
            return (ls + 1, None);
        }
        if rest.starts_with(b"\r\n") {
            return (ls + 2, None);
        }
        if rest.starts_with(b"--")
            && let Some((owner, close, after)) = boundary_at(raw, ls, open)
        {
            let end = end_before(raw, pos, ls);
            return (
                end,
                Some(Hit {
                    body_end: end,
                    owner,
                    close,
                    after,
                }),
            );
        }
        ls = line_end(raw, ls);
    }
    (raw.len(), None)
}

pub(crate) fn parse(raw: &[u8]) -> MessageInfo {
    parse_with(raw, true)
}

/// [`parse`], with the envelopes of the message and its message/rfc822 parts only when
/// `envelopes` is set (SEARCH needs the structure and header ranges, not the addresses).
pub(crate) fn parse_with(raw: &[u8], envelopes: bool) -> MessageInfo {
    // Most messages have a few parts; growing one at a time copies the large `Part`s.
    let mut parts = Vec::with_capacity(8);
    parts.push(Part::new(None));
    let mut open: Vec<Open> = Vec::new();
    let mut cur = 0usize;
    let mut depth = 0usize;
    let mut step = Step::Header(0);
    loop {
        match step {
            Step::Header(pos) => {
                let (hdr_end, hit) = find_header_end(raw, pos, &open);
                let parent = parts.get(cur).and_then(|p| p.parent).map(|p| p as usize);
                let parent_part = parent.and_then(|p| parts.get(p));
                let parent_multipart = parent_part.is_some_and(|p| p.kind == PartKind::Multipart);
                let parent_digest = parent_multipart
                    && parent_part.is_some_and(|p| {
                        p.content
                            .subtype
                            .as_deref()
                            .is_some_and(|s| s.eq_ignore_ascii_case(b"digest"))
                    });
                let message_root =
                    parent.is_none() || parent_part.is_some_and(|p| p.kind == PartKind::Message);
                let scan = scan_header(
                    raw.get(pos..hdr_end).unwrap_or(&[]),
                    message_root && envelopes,
                );
                let mut content = scan.content;
                if !(scan.is_mime || parent_multipart) {
                    // No MIME-Version, no Content-Type and not inside a
                    // multipart: Dovecot ignores the other Content-* fields
                    // (RFC 2045 section 4 ties them to MIME-Version).
                    content = Default::default();
                }
                // RFC 2046 section 5.1.5: the default in a digest is message/rfc822.
                let digest_default = content.ctype.is_none() && parent_digest;
                let is_type = |t: &[u8], s: &[u8]| {
                    content
                        .ctype
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(t))
                        && content
                            .subtype
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(s))
                };
                let wants_multipart = content
                    .ctype
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"multipart"))
                    && content.subtype.is_some();
                let wants_message = digest_default || is_type(b"message", b"rfc822");
                let boundary = content
                    .param(b"boundary")
                    .filter(|b| !b.is_empty())
                    .map(<[u8]>::to_vec);
                let room = depth < MAX_MIME_DEPTH && parts.len() < MAX_MIME_PARTS;
                let kind = if wants_multipart {
                    // Without a boundary or past a limit the multipart has no
                    // children and is written as Dovecot writes one.
                    PartKind::Multipart
                } else if wants_message && room && hit.is_none() {
                    PartKind::Message
                } else {
                    PartKind::Leaf
                };
                if let Some(p) = parts.get_mut(cur) {
                    p.header = range(pos, hdr_end);
                    p.body = range(hdr_end, hdr_end);
                    p.content = content;
                    p.digest_default = digest_default;
                    p.kind = kind;
                    p.envelope = scan.envelope.map(Box::new);
                }
                if let Some(hit) = hit {
                    step = finish(&mut parts, &mut open, &mut cur, &mut depth, hit);
                    continue;
                }
                match kind {
                    PartKind::Multipart => {
                        if let (Some(b), true) = (boundary, room) {
                            open.push(Open {
                                part: cur,
                                boundary: b,
                            });
                        }
                        step = Step::Body(hdr_end);
                    }
                    PartKind::Message => {
                        let child = parts.len();
                        parts.push(Part::new(Some(cur as u32)));
                        if let Some(p) = parts.get_mut(cur) {
                            p.children.push(child as u32);
                        }
                        cur = child;
                        depth += 1;
                        step = Step::Header(hdr_end);
                    }
                    PartKind::Leaf => step = Step::Body(hdr_end),
                }
            }
            Step::Body(pos) => match find_boundary(raw, pos, &open) {
                Some(hit) => step = finish(&mut parts, &mut open, &mut cur, &mut depth, hit),
                None => {
                    // EOF ends every part still open: `cur` and its ancestors.
                    let mut p = Some(cur);
                    while let Some(i) = p {
                        let Some(part) = parts.get_mut(i) else { break };
                        part.body.end = raw.len() as u64;
                        p = part.parent.map(|x| x as usize);
                    }
                    break;
                }
            },
        }
    }
    compute_sizes(raw, &mut parts);
    MessageInfo { parts }
}

fn range(s: usize, e: usize) -> ByteRange {
    ByteRange {
        start: s as u64,
        end: e as u64,
    }
}

/// Handles a boundary line: ends every part from `cur` up to the boundary's
/// multipart, then starts the next body part or the epilogue.
fn finish(
    parts: &mut Vec<Part>,
    open: &mut Vec<Open>,
    cur: &mut usize,
    depth: &mut usize,
    hit: Hit,
) -> Step {
    let Some(owner) = open.get(hit.owner).map(|o| o.part) else {
        return Step::Body(hit.after);
    };
    let mut p = *cur;
    while p != owner {
        let Some(part) = parts.get_mut(p) else { break };
        part.body.end = hit.body_end as u64;
        match part.parent {
            Some(x) => {
                p = x as usize;
                *depth = depth.saturating_sub(1);
            }
            None => break,
        }
    }
    *cur = owner;
    // Boundaries of the parts just ended are forgotten (Dovecot does the same).
    open.truncate(hit.owner + 1);
    if hit.close {
        open.pop();
        return Step::Body(hit.after);
    }
    if parts.len() >= MAX_MIME_PARTS {
        // Too many parts: stop recognising boundaries; the rest of the
        // message is the body of this multipart.
        open.clear();
        return Step::Body(hit.after);
    }
    let child = parts.len();
    parts.push(Part::new(Some(owner as u32)));
    if let Some(o) = parts.get_mut(owner) {
        o.children.push(child as u32);
    }
    *cur = child;
    *depth += 1;
    Step::Header(hit.after)
}

/// Sizes bottom-up, so every byte is measured once whatever the nesting: a
/// container's body is its children plus the gaps between them (prologue,
/// boundary lines, epilogue). Gaps start and end on line boundaries, so no
/// CRLF is split between two measured pieces.
fn compute_sizes(raw: &[u8], parts: &mut [Part]) {
    for i in (0..parts.len()).rev() {
        let Some(p) = parts.get(i) else { continue };
        let header_size = measure(p.header.slice(raw));
        let mut body = Size::default();
        let mut pos = p.body.start;
        for &c in &p.children {
            let Some(cp) = parts.get(c as usize) else {
                continue;
            };
            let gap = ByteRange {
                start: pos,
                end: cp.header.start.max(pos),
            };
            body.add(measure(gap.slice(raw)));
            body.add(cp.header_size);
            body.add(cp.body_size);
            pos = cp.body.end.max(pos);
        }
        let tail = ByteRange {
            start: pos,
            end: p.body.end.max(pos),
        };
        body.add(measure(tail.slice(raw)));
        if let Some(p) = parts.get_mut(i) {
            p.header_size = header_size;
            p.body_size = body;
        }
    }
}
