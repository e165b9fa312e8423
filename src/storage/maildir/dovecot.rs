//! Dovecot's per-mailbox files we read (`dovecot-uidlist`) or share
//! (`dovecot-keywords`), and the keyword-table format both it and our own
//! `mailcove-keywords` use.

use std::collections::HashMap;
use std::ops::Range;

use super::filename::base_of;

/// Dovecot's UID list.
pub(crate) const UIDLIST_FILE: &str = "dovecot-uidlist";
/// Dovecot's keyword table: `<index> <name>` per line, index 0 = letter `a`.
pub(crate) const KEYWORDS_FILE: &str = "dovecot-keywords";

/// What we adopt from a `dovecot-uidlist`.
#[derive(Debug, Default)]
pub(crate) struct Uidlist {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// Base file name (without the `:2,` part) to UID.
    pub uids: HashMap<String, u32>,
}

/// Parses a `dovecot-uidlist` of version 1 (`1 <uidvalidity> <nextuid>`) or
/// 3 (`3 V<uidvalidity> N<nextuid> G<guid> ...`, entries
/// `<uid> [<ext> ...] :<filename>`). `None` when it cannot be understood.
pub(crate) fn parse_uidlist(data: &[u8]) -> Option<Uidlist> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.lines();
    let header = lines.next()?;
    let mut fields = header.split(' ');
    let version = fields.next()?;
    let mut list = Uidlist::default();
    match version {
        "1" => {
            list.uidvalidity = fields.next()?.parse().ok()?;
            list.next_uid = fields.next()?.parse().ok()?;
        }
        "2" | "3" => {
            for f in fields {
                if let Some(v) = f.strip_prefix('V') {
                    list.uidvalidity = v.parse().ok()?;
                } else if let Some(v) = f.strip_prefix('N') {
                    list.next_uid = v.parse().ok()?;
                }
            }
        }
        _ => return None,
    }
    if list.uidvalidity == 0 {
        return None;
    }
    for line in lines {
        let (uid, rest) = line.split_once(' ')?;
        let uid: u32 = uid.parse().ok()?;
        let name = if version == "1" {
            rest
        } else {
            // Extensions come first; the file name follows " :" (or the
            // first ':' when there are no extensions).
            rest.split_once(':').map(|(_, n)| n)?
        };
        list.uids.insert(base_of(name).to_owned(), uid);
        list.next_uid = list.next_uid.max(uid.saturating_add(1));
    }
    Some(list)
}

/// Parses a keyword table (`<index> <name>` per line), keeping the indexes in
/// `indexes` (`dovecot-keywords` holds the letters' 0..26, `mailcove-keywords`
/// the rest); the result is positional from 0, missing indexes are empty
/// placeholders.
pub(crate) fn parse_keywords(data: &[u8], indexes: Range<usize>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let Some((i, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if !indexes.contains(&i) || name.is_empty() {
            continue;
        }
        if out.len() <= i {
            out.resize(i + 1, String::new());
        }
        if let Some(slot) = out.get_mut(i) {
            *slot = name.to_owned();
        }
    }
    out
}

/// Serialises the part `indexes` of a keyword table in Dovecot's format.
pub(crate) fn format_keywords(keywords: &[String], indexes: Range<usize>) -> Vec<u8> {
    let mut s = String::new();
    let start = indexes.start;
    let part = keywords.get(start..indexes.end.min(keywords.len()));
    for (i, k) in part.unwrap_or_default().iter().enumerate() {
        if !k.is_empty() {
            s.push_str(&format!("{} {k}\n", start + i));
        }
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v3_and_v1() {
        let v3 =
            b"3 V1234567890 N5 G2f1c8e0b\n1 :1.M1P1.h,S=10,W=11:2,S\n3 G1 W11 :3.M1P1.h,S=10\n";
        let l = parse_uidlist(v3);
        assert!(matches!(&l, Some(l) if l.uidvalidity == 1234567890 && l.next_uid == 5));
        let l = l.unwrap_or_default();
        assert_eq!(l.uids.get("1.M1P1.h,S=10,W=11"), Some(&1));
        assert_eq!(l.uids.get("3.M1P1.h,S=10"), Some(&3));
        let v1 = b"1 42 9\n7 abc:2,S\n";
        assert!(
            matches!(parse_uidlist(v1), Some(l) if l.uidvalidity == 42 && l.uids.get("abc") == Some(&7))
        );
        assert!(parse_uidlist(b"9 x\n").is_none());
    }

    #[test]
    fn keywords_round_trip() {
        let k = parse_keywords(b"0 $Forwarded\n2 Work\n26 Late\n", 0..26);
        assert_eq!(
            k,
            vec!["$Forwarded".to_owned(), String::new(), "Work".to_owned()]
        );
        assert_eq!(
            format_keywords(&k, 0..26),
            b"0 $Forwarded\n2 Work\n".to_vec()
        );
        let ours = parse_keywords(b"2 Work\n27 Late\n", 26..100);
        assert_eq!(
            (ours.len(), ours.get(27).map(String::as_str)),
            (28, Some("Late"))
        );
        assert_eq!(format_keywords(&ours, 26..100), b"27 Late\n".to_vec());
    }
}
