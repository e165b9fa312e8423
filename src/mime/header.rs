//! Header fields: splitting a header block into fields, unfolding, and the
//! MIME grammar of Content-Type / Content-Disposition / parameters
//! (RFC 2045 section 5.1, RFC 2183, RFC 2231) the way Dovecot reads them.

use super::{ContentInfo, Disposition, Param};

/// One header field: its name and its raw value (folding kept, from just after
/// the colon up to and including the line end of its last line).
pub(crate) struct Field<'a> {
    pub name: &'a [u8],
    pub raw_value: &'a [u8],
    /// The whole field, name to final line end.
    pub whole: &'a [u8],
}

/// Iterates the fields of a header block (which may end with the blank line).
/// A line without a colon is kept as a field with an empty value, so that
/// HEADER.FIELDS.NOT passes it through as Dovecot does.
pub(crate) fn fields(header: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        loop {
            let rest = header.get(pos..)?;
            if rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return None;
            }
            // Field extends over continuation lines (starting with SP or HT).
            let mut end = line_end(rest, 0);
            while end < rest.len() && matches!(rest.get(end), Some(b' ' | b'\t')) {
                end = line_end(rest, end);
            }
            let whole = rest.get(..end)?;
            pos += end;
            let colon = whole.iter().position(|&b| b == b':');
            let (name, raw_value) = match colon {
                Some(c) => (trim_end(whole.get(..c)?), whole.get(c + 1..)?),
                None => (trim_end(strip_eol(whole)), &[][..]),
            };
            if name.is_empty() && colon.is_none() {
                continue;
            }
            return Some(Field {
                name,
                raw_value,
                whole,
            });
        }
    })
}

/// Index just after the LF ending the line that contains `from`, or the end.
pub(crate) fn line_end(s: &[u8], from: usize) -> usize {
    match s.get(from..).and_then(|r| memchr::memchr(b'\n', r)) {
        Some(i) => from + i + 1,
        None => s.len(),
    }
}

fn strip_eol(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let Some((&last, rest)) = s.split_last() {
        if last == b' ' || last == b'\t' || last == b'\r' || last == b'\n' {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Unfolds a raw header value: drops CR and LF, drops leading whitespace and
/// trailing whitespace of the field.
pub(crate) fn unfold(raw: &[u8]) -> Vec<u8> {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    // Leading and trailing whitespace (CR and LF included, as they are dropped anyway) never
    // reaches the result; what lies between is copied a line at a time with its line ends cut
    // out, into a buffer allocated once (this runs for every envelope field of every message).
    let start = raw.iter().position(|b| !is_ws(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !is_ws(b)).map_or(start, |e| e + 1);
    let core = raw.get(start..end).unwrap_or_default();
    let mut out = Vec::with_capacity(core.len());
    let mut from = 0;
    for cut in memchr::memchr2_iter(b'\r', b'\n', core) {
        out.extend_from_slice(core.get(from..cut).unwrap_or_default());
        from = cut + 1;
    }
    out.extend_from_slice(core.get(from..).unwrap_or_default());
    out
}

/// Builds the HEADER.FIELDS / HEADER.FIELDS.NOT result from a header block:
/// the selected fields (continuation lines kept) with CRLF line ends, then the
/// blank line RFC 3501 section 6.4.5 requires, also when nothing matched.
pub fn header_fields(header: &[u8], names: &[&[u8]], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields(header) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(f.name));
        if listed != not {
            push_crlf(&mut out, f.whole);
            if !f.whole.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_crlf(out: &mut Vec<u8>, s: &[u8]) {
    let mut prev_cr = false;
    for &b in s {
        if b == b'\n' && !prev_cr {
            out.push(b'\r');
        }
        out.push(b);
        prev_cr = b == b'\r';
    }
}

// ---- RFC 822 / 2045 lexical helpers ----

pub(crate) fn is_tspecial(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
    )
}

/// RFC 2045 token character; 8-bit bytes are accepted as Dovecot does.
pub(crate) fn is_token_char(b: u8) -> bool {
    b > b' ' && b != 0x7f && !is_tspecial(b)
}

/// A cursor over an unfolded header value.
pub(crate) struct Lexer<'a> {
    pub s: &'a [u8],
    pub i: usize,
    /// Content of the last comment skipped (Dovecot uses it as a name).
    pub last_comment: Vec<u8>,
}

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            i: 0,
            last_comment: Vec::new(),
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// Skips whitespace and (nested) comments. Nesting is tracked with a
    /// counter, not recursion.
    pub fn skip_cfws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.i += 1,
                b'(' => {
                    self.last_comment.clear();
                    let mut depth = 0usize;
                    while let Some(c) = self.peek() {
                        self.i += 1;
                        match c {
                            b'(' => {
                                if depth > 0 {
                                    self.last_comment.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                self.last_comment.push(c);
                            }
                            b'\\' => {
                                if let Some(n) = self.peek() {
                                    self.i += 1;
                                    self.last_comment.push(n);
                                }
                            }
                            _ => self.last_comment.push(c),
                        }
                    }
                }
                _ => break,
            }
        }
    }

    /// A run of bytes accepted by `pred`.
    pub fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or(&[])
    }

    pub fn token(&mut self) -> &'a [u8] {
        self.take_while(is_token_char)
    }

    /// A quoted string at the cursor (which must be at `"`), unescaped.
    /// Unterminated strings run to the end of the value.
    pub fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.i += 1;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        self.i += 1;
                        out.push(n);
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(c),
            }
        }
        out
    }

    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
}

/// Parses a Content-Type value: `(type, subtype, params)`. Type is `None` when
/// there is no token at all (the header is then ignored).
pub(crate) fn parse_content_type(value: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>, Vec<Param>) {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let t = lx.token();
    if t.is_empty() {
        return (None, None, Vec::new());
    }
    lx.skip_cfws();
    let mut sub = None;
    if lx.eat(b'/') {
        lx.skip_cfws();
        let s = lx.token();
        if !s.is_empty() {
            sub = Some(s.to_vec());
        }
    }
    if sub.is_none() {
        // Dovecot keeps a broken type but reads no parameters after it.
        return (Some(t.to_vec()), None, Vec::new());
    }
    let params = parse_params(&mut lx);
    (Some(t.to_vec()), sub, params)
}

/// Parses a Content-Disposition value.
pub(crate) fn parse_disposition(value: &[u8]) -> Option<Disposition> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let t = lx.token();
    if t.is_empty() {
        return None;
    }
    Some(Disposition {
        value: t.to_vec(),
        params: parse_params(&mut lx),
    })
}

/// Parses Content-Transfer-Encoding: one token and nothing else, else `None`
/// (Dovecot then reports "7bit").
pub(crate) fn parse_encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut lx = Lexer::new(value);
    lx.skip_cfws();
    let t = lx.token();
    lx.skip_cfws();
    (!t.is_empty() && lx.at_end()).then(|| t.to_vec())
}

/// Parses Content-Language: `1#Language-tag`.
pub(crate) fn parse_language(value: &[u8]) -> Vec<Vec<u8>> {
    let mut lx = Lexer::new(value);
    let mut out = Vec::new();
    lx.skip_cfws();
    loop {
        let a = lx.take_while(super::address::is_atext);
        if a.is_empty() {
            break;
        }
        out.push(a.to_vec());
        lx.skip_cfws();
        if !lx.eat(b',') {
            break;
        }
        lx.skip_cfws();
    }
    out
}

/// Reads `*(";" attribute "=" value)` and applies RFC 2231 the way Dovecot's
/// `rfc2231_parse` does: plain parameters first in order, then the `name*...`
/// ones sorted by name and section and joined; a joined value that has any
/// charset-encoded section is returned as `name*` = `charset'lang'%XX...`
/// (not decoded), exactly as Dovecot writes it in BODYSTRUCTURE.
fn parse_params(lx: &mut Lexer<'_>) -> Vec<Param> {
    let mut plain = Vec::new();
    let mut starred: Vec<Starred> = Vec::new();
    loop {
        lx.skip_cfws();
        if lx.at_end() {
            break;
        }
        if !lx.eat(b';') {
            // Garbage: resynchronise at the next ';'.
            lx.take_while(|b| b != b';');
            continue;
        }
        lx.skip_cfws();
        let name = lx.token();
        lx.skip_cfws();
        if name.is_empty() || !lx.eat(b'=') {
            continue;
        }
        lx.skip_cfws();
        let value = if lx.peek() == Some(b'"') {
            lx.quoted()
        } else {
            lx.take_while(|b| b != b';' && b != b' ' && b != b'\t')
                .to_vec()
        };
        match split_star(name) {
            Some(s) => starred.push(Starred {
                base: s.0.to_vec(),
                index: s.1,
                extended: s.2,
                value,
            }),
            None => plain.push(Param {
                name: name.to_vec(),
                value,
            }),
        }
    }
    if starred.is_empty() {
        return plain;
    }
    starred.sort_by(|a, b| {
        a.base
            .to_ascii_lowercase()
            .cmp(&b.base.to_ascii_lowercase())
            .then(a.index.cmp(&b.index))
    });
    for group in starred.chunk_by(|a, b| a.base.eq_ignore_ascii_case(&b.base)) {
        plain.push(join_sections(group));
    }
    plain
}

struct Starred {
    base: Vec<u8>,
    /// Section number; `None` for `name*=` (a single encoded section).
    index: Option<u32>,
    extended: bool,
    value: Vec<u8>,
}

/// Splits `name*`, `name*N`, `name*N*`; `None` for a plain name.
fn split_star(name: &[u8]) -> Option<(&[u8], Option<u32>, bool)> {
    let star = name.iter().position(|&b| b == b'*')?;
    let base = name.get(..star)?;
    let rest = name.get(star + 1..)?;
    if rest.is_empty() {
        return Some((base, None, true));
    }
    let (digits, extended) = match rest.strip_suffix(b"*") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    let n: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((base, Some(n), extended))
}

fn join_sections(group: &[Starred]) -> Param {
    // Only a gap-free run of sections from 0 counts, as in Dovecot.
    let mut run: Vec<&Starred> = Vec::new();
    for s in group {
        match s.index {
            None => {
                if run.is_empty() {
                    run.push(s);
                }
                break;
            }
            Some(n) if n as usize == run.len() => run.push(s),
            Some(_) => break,
        }
    }
    if run.is_empty() {
        // Sections not starting at 0: keep the first one as it is.
        if let Some(s) = group.first() {
            run.push(s);
        }
    }
    let base = group.first().map(|s| s.base.clone()).unwrap_or_default();
    let any_ext = run.iter().any(|s| s.extended);
    let mut value = Vec::new();
    if !any_ext {
        for s in &run {
            value.extend_from_slice(&s.value);
        }
        return Param { name: base, value };
    }
    if run.first().is_some_and(|s| !s.extended) {
        value.extend_from_slice(b"''");
    }
    for s in &run {
        if s.extended {
            value.extend_from_slice(&s.value);
        } else {
            percent_escape(&mut value, &s.value);
        }
    }
    let mut name = base;
    name.push(b'*');
    Param { name, value }
}

fn percent_escape(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if is_token_char(b) && b < 0x80 && b != b'%' && b != b'\'' && b != b'*' {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let (head, tail) = s.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(tail)
}

/// Which kind of content a header says, for the structure scanner.
pub(crate) struct HeaderScan {
    pub content: ContentInfo,
    /// True when a MIME-Version or Content-Type field was present.
    pub is_mime: bool,
    pub envelope: Option<super::Envelope>,
}

/// Reads the Content-* fields (first occurrence wins, as Dovecot) and, when
/// `want_envelope`, the ENVELOPE fields (last occurrence wins, as Dovecot's
/// `message_part_envelope_parse_from_header`).
pub(crate) fn scan_header(header: &[u8], want_envelope: bool) -> HeaderScan {
    let mut c = ContentInfo::default();
    let mut is_mime = false;
    let mut seen_type = false;
    let mut seen_disp = false;
    let mut seen_lang = false;
    let mut env = want_envelope.then(super::Envelope::default);
    for f in fields(header) {
        let name = f.name;
        if name.eq_ignore_ascii_case(b"MIME-Version") {
            is_mime = true;
        } else if let Some(sub) = strip_prefix_ci(name, b"Content-") {
            let v = unfold(f.raw_value);
            if sub.eq_ignore_ascii_case(b"Type") {
                is_mime = true;
                if !seen_type {
                    seen_type = true;
                    let (t, s, p) = parse_content_type(&v);
                    if t.is_some() {
                        c.ctype = t;
                        c.subtype = s;
                        c.params = p;
                    }
                }
            } else if sub.eq_ignore_ascii_case(b"Transfer-Encoding") {
                if c.encoding.is_none() {
                    c.encoding = parse_encoding(&v);
                }
            } else if sub.eq_ignore_ascii_case(b"ID") {
                c.id.get_or_insert(v);
            } else if sub.eq_ignore_ascii_case(b"Description") {
                c.description.get_or_insert(v);
            } else if sub.eq_ignore_ascii_case(b"MD5") {
                c.md5.get_or_insert(v);
            } else if sub.eq_ignore_ascii_case(b"Location") {
                c.location.get_or_insert(v);
            } else if sub.eq_ignore_ascii_case(b"Disposition") {
                if !seen_disp {
                    seen_disp = true;
                    c.disposition = parse_disposition(&v);
                }
            } else if sub.eq_ignore_ascii_case(b"Language") && !seen_lang {
                seen_lang = true;
                c.language = parse_language(&v);
            }
        }
        if let Some(e) = env.as_mut() {
            super::address::envelope_field(e, name, f.raw_value);
        }
    }
    HeaderScan {
        content: c,
        is_mime,
        envelope: env,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str, v: &str) -> Param {
        Param {
            name: n.as_bytes().to_vec(),
            value: v.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rfc2231_as_dovecot_test_rfc2231_parser() {
        // The input and expected output of Dovecot's test-rfc2231-parser.c.
        let input = b"x/y; key4*=us-ascii''foo; key*2=ba%; key2*0=a; key3*0*=us-ascii'en'xyz; key*0=\"foo\"; key2*1*=b%25; key3*1=plop%; key*1=baz";
        let (_, _, params) = parse_content_type(input);
        assert_eq!(
            params,
            vec![
                p("key", "foobazba%"),
                p("key2*", "''ab%25"),
                p("key3*", "us-ascii'en'xyzplop%25"),
                p("key4*", "us-ascii''foo"),
            ]
        );
    }

    #[test]
    fn content_type_quoted_and_comments() {
        let (t, s, params) =
            parse_content_type(b"Text/Plain (c) ; charset = \"us\\\"ascii\" ;format=flowed");
        assert_eq!(t.as_deref(), Some(&b"Text"[..]));
        assert_eq!(s.as_deref(), Some(&b"Plain"[..]));
        assert_eq!(
            params,
            vec![p("charset", "us\"ascii"), p("format", "flowed")]
        );
    }

    #[test]
    fn fields_and_filter() {
        let h = b"Subject: a\n b\nFrom: x@y\r\nTo: z@w\n\n";
        let names: Vec<&[u8]> = fields(h).map(|f| f.name).collect();
        assert_eq!(names, vec![&b"Subject"[..], b"From", b"To"]);
        assert_eq!(
            header_fields(h, &[b"subject", b"TO"], false),
            b"Subject: a\r\n b\r\nTo: z@w\r\n\r\n"
        );
        assert_eq!(
            header_fields(h, &[b"subject", b"TO"], true),
            b"From: x@y\r\n\r\n"
        );
        assert_eq!(header_fields(h, &[b"nothing"], false), b"\r\n");
    }

    #[test]
    fn unfold_drops_line_ends_and_outer_whitespace() {
        // The definition: CR and LF removed everywhere, then SP/HT trimmed at both ends.
        fn reference(raw: &[u8]) -> Vec<u8> {
            let out: Vec<u8> = raw
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            let ws = |b: &&u8| **b == b' ' || **b == b'\t';
            let lead = out.iter().take_while(ws).count();
            let s = out.get(lead..).unwrap_or_default();
            let keep = s.len() - s.iter().rev().take_while(ws).count();
            s.get(..keep).unwrap_or_default().to_vec()
        }
        for raw in [
            &b""[..],
            b"\r\n",
            b" \t\r\n",
            b" plain\r\n",
            b"\tfolded\r\n  line two \r\n\tthree\t\r\n",
            b"bare\nlf\n",
            b"\r\n\t lead after fold",
            b"a\rb",
            b"x \r\n \r\n",
            b"\x0b vertical tab kept \x0c",
        ] {
            assert_eq!(unfold(raw), reference(raw), "{raw:?}");
        }
    }

    #[test]
    fn encoding_must_be_one_token() {
        assert_eq!(parse_encoding(b" base64 "), Some(b"base64".to_vec()));
        assert_eq!(parse_encoding(b"?invalid"), None);
        assert_eq!(parse_encoding(b"8bit junk"), None);
    }
}
