//! IMAP URLs (RFC 5092) as CATENATE takes them (RFC 4469 3): relative URLs naming a message or
//! a part of one in the logged-in user's own mailboxes, with URL-PARTIAL (`;PARTIAL=`, RFC 5550,
//! RFC 5092 `ipartial`). Pure: no I/O, no session; [`parse_message_url`] only reads the text.
//!
//! Accepted (RFC 5092 11 `imapurl-rel`):
//! - `iabsolute-path`: `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`;
//! - `irelative-path` with a mailbox (`mailbox[;UIDVALIDITY=n]/;UID=n...`), resolved against the
//!   base `imap://user@server/` or, when a mailbox is selected, `imap://user@server/<selected>`
//!   (RFC 3986 5.2.3: relative to the selected mailbox's parent);
//! - `irelative-path` of a message in the selected mailbox (`;UID=n...`).
//!
//! Refused (answered `NO [BADURL]`): absolute URLs and network paths (`imap://...`, `//...`:
//! RFC 4469 3 leaves them out of scope, and they could name another user or server), URLAUTH
//! (`;URLAUTH=`, `;EXPIRE=`), message lists (`?search`), dot segments, section- or partial-only
//! references (the base names no message), and malformed %-escapes or numbers.

/// A message or part named by a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// How the mailbox was named.
    pub mailbox: UrlMailbox,
    /// `;UIDVALIDITY=n`: must match the mailbox's.
    pub uidvalidity: Option<u32>,
    /// `;UID=n`
    pub uid: u32,
    /// `;SECTION=` decoded: an IMAP `section-spec` (`1.2.MIME`, `HEADER.FIELDS (SUBJECT)`).
    pub section: Option<String>,
    /// `;PARTIAL=offset[.length]` (RFC 5092 `partial-range`).
    pub partial: Option<(u64, Option<u64>)>,
}

/// The mailbox part of a [`MessageUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlMailbox {
    /// `/name...`: a name from the root (decoded, UTF-8).
    Absolute(String),
    /// `name...`: relative to the base's path (see [`MessageUrl::mailbox_name`]).
    Relative(String),
    /// `;UID=...`: the selected mailbox.
    Selected,
}

/// Why a URL is not one CATENATE can use (every one is answered `NO [BADURL "url"]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not valid RFC 5092 syntax.
    #[error("malformed IMAP URL")]
    Syntax,
    /// An absolute URL or network path: possibly another server or user.
    #[error("only relative IMAP URLs are accepted")]
    NotRelative,
    /// Valid, but not a message or part this server copies (URLAUTH, a search).
    #[error("unsupported IMAP URL")]
    Unsupported,
}

impl MessageUrl {
    /// The mailbox's name (UTF-8, `sep` as the hierarchy separator), with `selected` the selected
    /// mailbox's name if any. `None` when the URL needs a selected mailbox and there is none.
    pub fn mailbox_name(&self, selected: Option<&str>) -> Option<String> {
        match &self.mailbox {
            UrlMailbox::Absolute(n) => Some(n.clone()),
            UrlMailbox::Selected => selected.map(str::to_owned),
            UrlMailbox::Relative(n) => {
                // RFC 3986 5.2.3: merge with the base path `/<selected>`: keep its segments up
                // to the last `/`.
                let parent = selected
                    .and_then(|s| s.rfind('/').map(|i| &s[..=i]))
                    .unwrap_or("");
                Some(format!("{parent}{n}"))
            }
        }
    }
}

/// Case-insensitive prefix strip.
fn strip_ci<'a>(s: &'a [u8], prefix: &str) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// RFC 5092 `bchar` (plus `;`, which splits parameters, and `%`, checked when decoding).
fn is_url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$'()*+,;&=:@/%".contains(&b)
}

/// Percent-decodes (RFC 3986 2.1).
fn decode(s: &[u8]) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(UrlError::Syntax)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::Syntax)?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(UrlError::Syntax);
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Syntax)?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn decode_utf8(s: &[u8]) -> Result<String, UrlError> {
    String::from_utf8(decode(s)?).map_err(|_| UrlError::Syntax)
}

/// `nz-number`: no leading zero, not 0, fits `u32`.
fn nz_number(s: &[u8]) -> Result<u32, UrlError> {
    if s.first() == Some(&b'0') {
        return Err(UrlError::Syntax);
    }
    let n = number(s)?;
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or(UrlError::Syntax)
}

/// `number` (taken as 64-bit, as RFC 9051 `number64` for offsets).
fn number(s: &[u8]) -> Result<u64, UrlError> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return Err(UrlError::Syntax);
    }
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(UrlError::Syntax)
}

/// Splits `s` at its first `;` (the parameter that follows keeps its `;`).
fn until_param(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b';') {
        Some(i) => (
            s.get(..i).unwrap_or_default(),
            s.get(i..).unwrap_or_default(),
        ),
        None => (s, &[]),
    }
}

/// Parses a URL given to CATENATE (see the module documentation).
pub fn parse_message_url(url: &[u8]) -> Result<MessageUrl, UrlError> {
    if url.is_empty() || !url.iter().all(|&b| is_url_char(b) || b == b'?') {
        return Err(UrlError::Syntax);
    }
    if url.starts_with(b"//") {
        return Err(UrlError::NotRelative);
    }
    // A scheme (`imap:`) before any `/`: an absolute URL (a relative path's first segment may
    // not hold `:`, RFC 3986 4.2).
    let first_segment = url.split(|&b| b == b'/').next().unwrap_or_default();
    if first_segment.contains(&b':') {
        return Err(UrlError::NotRelative);
    }
    if url.contains(&b'?') {
        // imessagelist: a search, not a message.
        return Err(UrlError::Unsupported);
    }
    let (mailbox_raw, rest, absolute) = match url.strip_prefix(b"/") {
        Some(r) => {
            let (m, rest) = until_param(r);
            (m, rest, true)
        }
        None => {
            let (m, rest) = until_param(url);
            (m, rest, false)
        }
    };
    let (mailbox, rest) = if mailbox_raw.is_empty() {
        if absolute {
            // `/;UID=1`: no mailbox.
            return Err(UrlError::Syntax);
        }
        if strip_ci(rest, ";UID=").is_none() {
            // `;SECTION=` or `;PARTIAL=` alone: the base names no message.
            return Err(UrlError::Unsupported);
        }
        (UrlMailbox::Selected, rest)
    } else {
        if rest.is_empty() {
            // A mailbox URL: names no message.
            return Err(UrlError::Unsupported);
        }
        // `name;UIDVALIDITY=n/;UID=` or `name/;UID=`.
        let name_raw = if strip_ci(rest, ";UIDVALIDITY=").is_some() {
            mailbox_raw
        } else {
            mailbox_raw.strip_suffix(b"/").ok_or(UrlError::Syntax)?
        };
        if name_raw.is_empty()
            || name_raw
                .split(|&b| b == b'/')
                .any(|seg| seg == b"." || seg == b"..")
        {
            return Err(UrlError::Syntax);
        }
        let mut name = decode_utf8(name_raw)?;
        if name.eq_ignore_ascii_case("INBOX") {
            name = "INBOX".to_owned();
        }
        let m = if absolute {
            UrlMailbox::Absolute(name)
        } else {
            UrlMailbox::Relative(name)
        };
        (m, rest)
    };
    let mut rest = rest;
    let mut uidvalidity = None;
    if let Some(r) = strip_ci(rest, ";UIDVALIDITY=") {
        let (digits, r) = until_param(r);
        let digits = digits.strip_suffix(b"/").ok_or(UrlError::Syntax)?;
        uidvalidity = Some(nz_number(digits)?);
        rest = r;
    }
    let r = strip_ci(rest, ";UID=").ok_or(UrlError::Syntax)?;
    let (digits, r) = until_param(r);
    let (digits, more) = match digits.strip_suffix(b"/") {
        Some(d) => (d, true),
        None => (digits, false),
    };
    let uid = nz_number(digits)?;
    rest = r;
    if more == rest.is_empty() {
        // A `/` must come before another parameter, and only then.
        return Err(UrlError::Syntax);
    }
    let mut section = None;
    if let Some(r) = strip_ci(rest, ";SECTION=") {
        let (raw, r) = until_param(r);
        let raw = if r.is_empty() {
            raw
        } else {
            raw.strip_suffix(b"/").ok_or(UrlError::Syntax)?
        };
        if raw.is_empty() {
            return Err(UrlError::Syntax);
        }
        section = Some(decode_utf8(raw)?);
        rest = r;
    }
    let mut partial = None;
    if let Some(r) = strip_ci(rest, ";PARTIAL=") {
        let (raw, r) = until_param(r);
        let (offset, length) = match raw.iter().position(|&b| b == b'.') {
            Some(i) => (
                raw.get(..i).unwrap_or_default(),
                Some(u64::from(nz_number(raw.get(i + 1..).unwrap_or_default())?)),
            ),
            None => (raw, None),
        };
        partial = Some((number(offset)?, length));
        rest = r;
    }
    if !rest.is_empty() {
        // ;URLAUTH=, ;EXPIRE= or anything else after the part.
        return Err(
            if strip_ci(rest, ";URLAUTH=").is_some() || strip_ci(rest, ";EXPIRE=").is_some() {
                UrlError::Unsupported
            } else {
                UrlError::Syntax
            },
        );
    }
    Ok(MessageUrl {
        mailbox,
        uidvalidity,
        uid,
        section,
        partial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str) -> MessageUrl {
        parse_message_url(url.as_bytes()).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn err(url: &str) -> UrlError {
        match parse_message_url(url.as_bytes()) {
            Ok(u) => panic!("{url} parsed as {u:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rfc4469_examples() {
        // RFC 4469 6 examples.
        let u = ok("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER");
        assert_eq!(u.mailbox, UrlMailbox::Absolute("Drafts".into()));
        assert_eq!(u.uidvalidity, Some(385_759_045));
        assert_eq!(u.uid, 20);
        assert_eq!(u.section.as_deref(), Some("HEADER"));
        assert_eq!(u.partial, None);
        let u = ok("/Drafts;UIDVALIDITY=385759045/;UID=20/;Section=2.MIME");
        assert_eq!(u.section.as_deref(), Some("2.MIME"));
        let u = ok("/INBOX;UIDVALIDITY=785799047/;UID=11467");
        assert_eq!((u.uid, u.section), (11467, None));
    }

    #[test]
    fn forms_and_partial() {
        let u = ok("/inbox/;UID=3/;PARTIAL=0.1024");
        assert_eq!(u.mailbox, UrlMailbox::Absolute("INBOX".into()));
        assert_eq!((u.uidvalidity, u.uid), (None, 3));
        assert_eq!(u.partial, Some((0, Some(1024))));
        let u = ok(";UID=7/;SECTION=1.2/;PARTIAL=10");
        assert_eq!(u.mailbox, UrlMailbox::Selected);
        assert_eq!(u.section.as_deref(), Some("1.2"));
        assert_eq!(u.partial, Some((10, None)));
        let u = ok("Sent%20Items/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT%20FROM)");
        assert_eq!(u.mailbox, UrlMailbox::Relative("Sent Items".into()));
        assert_eq!(u.section.as_deref(), Some("HEADER.FIELDS (SUBJECT FROM)"));
        assert_eq!(u.mailbox_name(None).as_deref(), Some("Sent Items"));
        assert_eq!(u.mailbox_name(Some("a/b")).as_deref(), Some("a/Sent Items"));
        let u = ok("/a/b%C3%A9;UIDVALIDITY=1/;UID=2");
        assert_eq!(u.mailbox, UrlMailbox::Absolute("a/b\u{e9}".into()));
        assert_eq!(ok(";UID=1").mailbox_name(None), None);
        assert_eq!(
            ok(";UID=1").mailbox_name(Some("INBOX")).as_deref(),
            Some("INBOX")
        );
    }

    #[test]
    fn refused() {
        assert_eq!(
            err("imap://other@mail.example.org/INBOX/;UID=1"),
            UrlError::NotRelative
        );
        assert_eq!(err("//other@host/INBOX/;UID=1"), UrlError::NotRelative);
        assert_eq!(err("IMAP:/INBOX/;UID=1"), UrlError::NotRelative);
        assert_eq!(
            err("/INBOX/;UID=1;URLAUTH=user+fred:internal:0123"),
            UrlError::Syntax
        );
        assert_eq!(
            err("/INBOX/;UID=1/;URLAUTH=anonymous"),
            UrlError::Unsupported
        );
        assert_eq!(err("/INBOX?SUBJECT%20x"), UrlError::Unsupported);
        assert_eq!(err(";SECTION=1"), UrlError::Unsupported);
        assert_eq!(err("/INBOX"), UrlError::Unsupported);
        for bad in [
            "",
            "/",
            "/INBOX;UID=1",
            "/INBOX/;UID=0",
            "/INBOX/;UID=01",
            "/INBOX/;UID=4294967296",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1/",
            "/INBOX/;UID=1;SECTION=1",
            "/INBOX/;UID=1/;SECTION=",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=1/;PARTIAL=.5",
            "/INBOX/;UID=1/;BOGUS=1",
            "/INBOX;UIDVALIDITY=0/;UID=1",
            "/IN%ZZBOX/;UID=1",
            "/IN%C3BOX/;UID=1",
            "/a/../b/;UID=1",
            "/IN BOX/;UID=1",
            "/INBOX/;UID=1\r\n",
        ] {
            assert_eq!(err(bad), UrlError::Syntax, "{bad:?}");
        }
    }
}
