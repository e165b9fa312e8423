//! CATENATE's IMAP URLs (`mailcove::imap::url`, RFC 5092 / RFC 4469 3): parsing arbitrary bytes.
//!
//! Invariants: no panic; an accepted URL is relative (no scheme, no `//` authority) and made only
//! of URL characters, names a real UID (and UIDVALIDITY and PARTIAL length, when given, are not
//! 0), has no empty section or mailbox and no dot segment; and it is canonical enough that
//! percent-encoding its parts again gives a URL that parses to the same thing.

use mailcove::imap::url::{MessageUrl, UrlMailbox, parse_message_url};

fn enc(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The URL written back from its parts, every non-alphanumeric byte percent-encoded.
fn write(u: &MessageUrl) -> String {
    let mut out = String::new();
    match &u.mailbox {
        UrlMailbox::Absolute(n) => {
            out.push('/');
            enc(&mut out, n);
        }
        UrlMailbox::Relative(n) => enc(&mut out, n),
        UrlMailbox::Selected => {}
    }
    if let Some(v) = u.uidvalidity {
        out.push_str(&format!(";UIDVALIDITY={v}"));
    }
    if u.mailbox != UrlMailbox::Selected {
        out.push('/');
    }
    out.push_str(&format!(";UID={}", u.uid));
    if let Some(s) = &u.section {
        out.push_str("/;SECTION=");
        enc(&mut out, s);
    }
    if let Some((o, l)) = u.partial {
        out.push_str(&format!("/;PARTIAL={o}"));
        if let Some(l) = l {
            out.push_str(&format!(".{l}"));
        }
    }
    out
}

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let Ok(u) = parse_message_url(data) else {
        return;
    };
    assert!(!data.starts_with(b"//"), "network path accepted");
    let first = data.split(|&b| b == b'/').next().unwrap_or_default();
    assert!(!first.contains(&b':'), "absolute URL accepted");
    assert!(
        data.iter()
            .all(|&b| b.is_ascii_graphic() && !b"\"\\[]{}<>^`|#".contains(&b)),
        "non-URL character accepted"
    );
    assert!(u.uid > 0);
    assert!(u.uidvalidity != Some(0));
    assert!(!matches!(u.partial, Some((_, Some(0)))));
    assert!(u.section.as_ref().is_none_or(|s| !s.is_empty()));
    if let UrlMailbox::Absolute(n) | UrlMailbox::Relative(n) = &u.mailbox {
        assert!(!n.is_empty());
    }
    let again = write(&u);
    assert_eq!(
        parse_message_url(again.as_bytes()).as_ref(),
        Ok(&u),
        "{again} does not parse back"
    );
}
