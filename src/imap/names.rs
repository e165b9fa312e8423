//! Mailbox names between the wire and storage (UTF-8), and the LIST wildcard matching of
//! RFC 3501 6.3.8.
//!
//! On the wire a name is modified UTF-7 (RFC 3501 5.1.3) until the client sends
//! `ENABLE UTF8=ACCEPT`; from then on it is plain UTF-8 both ways (RFC 6855 3), so `&` is an
//! ordinary character and `Entw&APw-rfe` names a mailbox with exactly those ten characters, as
//! in IMAP4rev2 (RFC 9051 5.1), where modified UTF-7 is only a convention of IMAP4rev1 clients.

use unicode_normalization::is_nfc;

use super::proto::types::Mailbox;
use super::response::ImapError;
use crate::mutf7;

/// How the session's client writes mailbox names (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameForm {
    /// Modified UTF-7 (RFC 3501 5.1.3): every client until it enables UTF8=ACCEPT.
    ModifiedUtf7,
    /// UTF-8 (RFC 6855 3), after `ENABLE UTF8=ACCEPT`.
    Utf8,
}

/// The storage name of a mailbox the client named.
///
/// In [`NameForm::Utf8`] the name must be valid UTF-8: RFC 6855 3 requires `BAD` for 8-bit
/// octets that are not UTF-8.
pub fn from_wire(mb: &Mailbox, form: NameForm) -> Result<String, ImapError> {
    if mb.is_inbox() {
        return Ok("INBOX".to_string());
    }
    let name = match form {
        NameForm::ModifiedUtf7 => mutf7::decode(mb.as_bytes())
            .map_err(|_| ImapError::BadMailboxName("not valid modified UTF-7"))?,
        NameForm::Utf8 => String::from_utf8(mb.as_bytes().to_vec())
            .map_err(|_| ImapError::Parse("Mailbox name is not valid UTF-8."))?,
    };
    Ok(normalise_inbox(name))
}

/// Checks a name the client wants to create (CREATE, RENAME's target) against RFC 6855 3: a
/// mailbox name is Net-Unicode (RFC 5198 2, which asks for Normalization Form C) without line or
/// paragraph separators. Control characters are refused for every client by the storage layer's
/// generic checks. A name that is not NFC is refused rather than normalised (RFC 9051 5.1 allows
/// either), because normalising would have to happen in every command that takes a name, and an
/// existing non-NFC mailbox (created in modified UTF-7, which has no such rule) would then be
/// unreachable for UTF-8 clients.
pub fn check_new_name(name: &str) -> Result<(), ImapError> {
    if name.contains(['\u{2028}', '\u{2029}']) {
        return Err(ImapError::BadMailboxName("line or paragraph separator"));
    }
    if !is_nfc(name) {
        return Err(ImapError::BadMailboxName(
            "not in Unicode Normalization Form C (RFC 5198)",
        ));
    }
    Ok(())
}

/// `inbox/sub` names the child of INBOX: INBOX is case-insensitive also as a prefix.
fn normalise_inbox(name: String) -> String {
    if name.len() > 5
        && name.is_char_boundary(5)
        && name[..5].eq_ignore_ascii_case("INBOX")
        && !name[5..].starts_with(char::is_alphanumeric)
    {
        format!("INBOX{}", &name[5..])
    } else {
        name
    }
}

/// The wire form of a storage name. Modified UTF-7 is always printable US-ASCII; the UTF-8 form
/// goes out as a quoted string (see `encode::write_mailbox`).
pub fn to_wire(name: &str, form: NameForm) -> Vec<u8> {
    match form {
        NameForm::ModifiedUtf7 => mutf7::encode(name).into_bytes(),
        NameForm::Utf8 => name.as_bytes().to_vec(),
    }
}

/// A LIST reference or pattern as a storage (UTF-8) pattern.
///
/// In modified UTF-7 it is decoded when it is valid modified UTF-7, else taken as sent. An `&`
/// that starts no valid shift (`&'+,-`) is then a plain `&`, as in the storage name of a mailbox
/// the client would write `&-`. Dovecot's cmd-list.c does the same (it keeps a part whose
/// conversion fails), so such a LIST answers OK with whatever matches instead of an error.
///
/// In UTF-8 it is taken as sent, and 8-bit octets that are not UTF-8 are a `BAD` (RFC 6855 3).
pub fn list_pattern_from_wire(p: &[u8], form: NameForm) -> Result<String, ImapError> {
    match form {
        NameForm::ModifiedUtf7 => {
            Ok(mutf7::decode(p).unwrap_or_else(|_| String::from_utf8_lossy(p).into_owned()))
        }
        NameForm::Utf8 => String::from_utf8(p.to_vec())
            .map_err(|_| ImapError::Parse("Mailbox pattern is not valid UTF-8.")),
    }
}

/// RFC 3501 6.3.8: `*` matches anything, `%` anything but the hierarchy separator. INBOX matches
/// case-insensitively. Iterative with backtracking, so no pattern can recurse deeply.
pub fn matches(pattern: &str, name: &str, sep: char) -> bool {
    let name_norm;
    let name = if name.len() >= 5
        && name.is_char_boundary(5)
        && name[..5].eq_ignore_ascii_case("INBOX")
        && pattern.len() >= 5
        && pattern.is_char_boundary(5)
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        name_norm = format!("{}{}", &pattern[..5], &name[5..]);
        name_norm.as_str()
    } else {
        name
    };
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Last `*` or `%` seen: (pattern index after it, name index it matched up to, is_percent).
    let mut star: Option<(usize, usize, bool)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ni, false));
                pi += 1;
            }
            Some('%') => {
                star = Some((pi + 1, ni, true));
                pi += 1;
            }
            Some(c) if *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn, percent)) if !(percent && n[sn] == sep) => {
                    star = Some((sp, sn + 1, percent));
                    pi = sp;
                    ni = sn + 1;
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*' || *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_follow_rfc_3501() {
        assert!(matches("*", "a/b/c", '/'));
        assert!(matches("%", "a", '/'));
        assert!(!matches("%", "a/b", '/'));
        assert!(matches("a/%", "a/b", '/'));
        assert!(!matches("a/%", "a/b/c", '/'));
        assert!(matches("a/*", "a/b/c", '/'));
        assert!(matches("inbox", "INBOX", '/'));
        assert!(matches("Inbox*", "INBOX/x", '/'));
        assert!(!matches("inbox", "Other", '/'));
        assert!(matches("*b%", "a/ab", '/'));
        assert!(!matches("*b%", "a/ab/c", '/') || matches("*b", "a/ab", '/'));
        assert!(matches("*/c", "a/ab/c", '/'));
        assert!(matches("%/%", "a/b", '/'));
        assert!(!matches("", "a", '/'));
        assert!(matches("Sent*", "Sent Items", '/'));
        assert!(matches("ä*", "äbc", '/'));
    }

    #[test]
    fn list_patterns_that_are_not_modified_utf7_are_taken_as_sent() {
        let odd = "!#$$&'+,-.0123456789:;<=>?@^_`|[}";
        let m = NameForm::ModifiedUtf7;
        let p = list_pattern_from_wire(format!("{odd}%*").as_bytes(), m).unwrap();
        assert_eq!(p, format!("{odd}%*"));
        assert!(
            matches(&p, odd, '/'),
            "the mailbox the client writes with &-"
        );
        assert!(matches(&p, &format!("{odd}x/y"), '/'));
        assert!(!matches(&p, "INBOX", '/'));
        assert_eq!(list_pattern_from_wire(b"Entw&APw-*", m).unwrap(), "Entwü*");
        assert_eq!(list_pattern_from_wire(b"&Jjo*", m).unwrap(), "&Jjo*");
        assert_eq!(list_pattern_from_wire(b"a\xffb", m).unwrap(), "a\u{fffd}b");
    }

    #[test]
    fn names_round_trip_through_modified_utf7() {
        let m = NameForm::ModifiedUtf7;
        let mb = Mailbox::new(b"Entw&APw-rfe".to_vec());
        assert_eq!(from_wire(&mb, m).unwrap(), "Entwürfe");
        assert_eq!(to_wire("Entwürfe", m), b"Entw&APw-rfe".to_vec());
        assert!(from_wire(&Mailbox::new(b"bad&-x&Jjo".to_vec()), m).is_err());
        assert_eq!(
            from_wire(&Mailbox::new(b"inbox/Sub".to_vec()), m).unwrap(),
            "INBOX/Sub"
        );
    }

    /// RFC 6855 3: after ENABLE UTF8=ACCEPT names are UTF-8 both ways, `&` included.
    #[test]
    fn utf8_names_are_taken_and_given_as_sent() {
        let u = NameForm::Utf8;
        let mb = Mailbox::new("Entwürfe".as_bytes().to_vec());
        assert_eq!(from_wire(&mb, u).unwrap(), "Entwürfe");
        assert_eq!(to_wire("Entwürfe", u), "Entwürfe".as_bytes().to_vec());
        let amp = Mailbox::new(b"Entw&APw-rfe".to_vec());
        assert_eq!(from_wire(&amp, u).unwrap(), "Entw&APw-rfe");
        assert_eq!(
            from_wire(&Mailbox::new("inbox/Ä".as_bytes().to_vec()), u).unwrap(),
            "INBOX/Ä"
        );
        assert!(matches!(
            from_wire(&Mailbox::new(b"a\xffb".to_vec()), u),
            Err(ImapError::Parse(_))
        ));
        assert!(list_pattern_from_wire(b"a\xc3", u).is_err());
        assert_eq!(list_pattern_from_wire("ä*".as_bytes(), u).unwrap(), "ä*");
    }

    #[test]
    fn new_names_must_be_net_unicode() {
        assert!(check_new_name("Entwürfe").is_ok());
        // "u" + COMBINING DIAERESIS is the NFD spelling of "ü".
        assert!(check_new_name("Entwu\u{308}rfe").is_err());
        assert!(check_new_name("a\u{2028}b").is_err());
        assert!(check_new_name("a\u{2029}b").is_err());
    }
}
