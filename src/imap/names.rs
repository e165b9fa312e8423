//! Mailbox names between the wire (modified UTF-7, RFC 3501 5.1.3) and storage (UTF-8), and the
//! LIST wildcard matching of RFC 3501 6.3.8.

use super::proto::types::Mailbox;
use super::response::ImapError;
use crate::mutf7;

/// The storage name of a mailbox the client named.
pub fn from_wire(mb: &Mailbox) -> Result<String, ImapError> {
    if mb.is_inbox() {
        return Ok("INBOX".to_string());
    }
    let name = mutf7::decode(mb.as_bytes())
        .map_err(|_| ImapError::BadMailboxName("not valid modified UTF-7"))?;
    Ok(normalise_inbox(name))
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

/// The wire form of a storage name.
pub fn to_wire(name: &str) -> Vec<u8> {
    mutf7::encode(name).into_bytes()
}

/// A LIST reference or pattern as a storage (UTF-8) pattern: decoded when it is valid modified
/// UTF-7, else taken as sent. An `&` that starts no valid shift (`&'+,-`) is then a plain `&`,
/// as in the storage name of a mailbox the client would write `&-`. Dovecot's cmd-list.c does
/// the same (it keeps a part whose conversion fails), so such a LIST answers OK with whatever
/// matches instead of an error.
pub fn list_pattern_from_wire(p: &[u8]) -> String {
    mutf7::decode(p).unwrap_or_else(|_| String::from_utf8_lossy(p).into_owned())
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
        let p = list_pattern_from_wire(format!("{odd}%*").as_bytes());
        assert_eq!(p, format!("{odd}%*"));
        assert!(
            matches(&p, odd, '/'),
            "the mailbox the client writes with &-"
        );
        assert!(matches(&p, &format!("{odd}x/y"), '/'));
        assert!(!matches(&p, "INBOX", '/'));
        assert_eq!(list_pattern_from_wire(b"Entw&APw-*"), "Entwü*");
        assert_eq!(list_pattern_from_wire(b"&Jjo*"), "&Jjo*");
        assert_eq!(list_pattern_from_wire(b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn names_round_trip_through_modified_utf7() {
        let mb = Mailbox::new(b"Entw&APw-rfe".to_vec());
        assert_eq!(from_wire(&mb).unwrap(), "Entwürfe");
        assert_eq!(to_wire("Entwürfe"), b"Entw&APw-rfe".to_vec());
        assert!(from_wire(&Mailbox::new(b"bad&-x&Jjo".to_vec())).is_err());
        assert_eq!(
            from_wire(&Mailbox::new(b"inbox/Sub".to_vec())).unwrap(),
            "INBOX/Sub"
        );
    }
}
