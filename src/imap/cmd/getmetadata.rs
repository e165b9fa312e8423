//! GETMETADATA (RFC 5464 4.2): the entries of a mailbox, or with the mailbox `""` the server
//! entries, with the MAXSIZE (4.2.1) and DEPTH (4.2.2) options.
//!
//! * Each named entry is answered with its value, or `NIL` when it has none, whatever the DEPTH;
//!   with DEPTH 1 or infinity the existing entries below it follow, in name order. RFC 5464
//!   4.2.2's DEPTH example lists only the children of a named entry that has no value; Dovecot
//!   (`cmd_getmetadata_send_entry` with `require_reply` for every named entry) answers `NIL` for
//!   it, so a client always gets an answer for each entry it named. mailcove follows Dovecot.
//! * Values longer than MAXSIZE are left out and the tagged OK carries
//!   `[METADATA LONGENTRIES n]`, n the longest left out.
//! * All entries go in one `* METADATA` response; an entry named twice, or reached from two
//!   named entries, is sent once. The answer is bounded by
//!   [`crate::limits::MAX_METADATA_USER_BYTES`], what a user may store at all.
//! * The server entries `/shared/admin` and `/shared/comment` come from the configuration
//!   (`[imap] metadata_admin`, `metadata_comment`) and are read-only ([`READ_ONLY`]); every
//!   other server entry is stored per user (there are no users sharing a server entry, as in
//!   Dovecot without a shared attribute dictionary).

use std::collections::BTreeSet;
use std::ops::Bound;

use super::Reply;
use crate::config::Config;
use crate::imap::names;
use crate::imap::proto::encode::{self, Code};
use crate::imap::proto::types::{Mailbox, MetadataDepth};
use crate::imap::response::ImapError;
use crate::imap::session::Session;
use crate::storage::MetadataMap;

/// The server entries that come from the configuration and that no client may change
/// (RFC 5464 3.2.1.1: `/shared/admin` "is always read-only").
pub const READ_ONLY: [&str; 2] = ["/shared/admin", "/shared/comment"];

/// The storage's name of a METADATA target: `None` for the server (`""`), else the mailbox.
pub fn target(s: &Session, mb: &Mailbox) -> Result<Option<String>, ImapError> {
    if mb.as_bytes().is_empty() {
        return Ok(None);
    }
    names::from_wire(mb, s.name_form()).map(Some)
}

/// The configured server entries ([`READ_ONLY`]), those that are set.
fn configured(config: &Config) -> Vec<(&'static str, &str)> {
    [
        (READ_ONLY[0], config.imap.metadata_admin.as_deref()),
        (READ_ONLY[1], config.imap.metadata_comment.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

/// One entry of the answer: its name and value (`None`: `NIL`).
pub type Found<'a> = (&'a str, Option<&'a [u8]>);

/// What GETMETADATA answers from `map`: the entries in the order sent (`None` values are
/// `NIL`), and the size of the longest value left out for MAXSIZE.
pub fn select<'a>(
    map: &'a MetadataMap,
    entries: &'a [String],
    depth: MetadataDepth,
    maxsize: Option<u64>,
) -> (Vec<Found<'a>>, Option<u64>) {
    let mut sent: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    let mut longest: Option<u64> = None;
    let mut offer = |name: &'a str, value: Option<&'a [u8]>, out: &mut Vec<_>| {
        if !sent.insert(name) {
            return;
        }
        if let (Some(v), Some(max)) = (value, maxsize) {
            let len = v.len() as u64;
            if len > max {
                longest = Some(longest.map_or(len, |l| l.max(len)));
                return;
            }
        }
        out.push((name, value));
    };
    for entry in entries {
        let own = map.get_key_value(entry.as_str());
        match own {
            Some((k, v)) => offer(k.as_str(), Some(v.as_slice()), &mut out),
            None => offer(entry.as_str(), None, &mut out),
        }
        if depth == MetadataDepth::Zero {
            continue;
        }
        let prefix = format!("{entry}/");
        for (k, v) in map.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded)) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            if depth == MetadataDepth::One && rest.contains('/') {
                continue;
            }
            offer(k.as_str(), Some(v.as_slice()), &mut out);
        }
    }
    (out, longest)
}

/// GETMETADATA [(options)] mailbox entries.
pub async fn getmetadata(
    s: &mut Session,
    mb: &Mailbox,
    maxsize: Option<u64>,
    depth: MetadataDepth,
    entries: &[String],
) -> Result<Reply, ImapError> {
    let target = target(s, mb)?;
    let mut map = s.store()?.metadata_get(target.as_deref()).await?;
    if target.is_none() {
        for (k, v) in configured(&s.shared.config()) {
            map.insert(k.to_owned(), v.as_bytes().to_vec());
        }
    }
    let (found, longest) = select(&map, entries, depth, maxsize);
    if !found.is_empty() {
        let wire = match &target {
            Some(name) => names::to_wire(name, s.name_form()),
            None => Vec::new(),
        };
        encode::metadata(s.conn.out(), &wire, &found);
    }
    Ok(Reply::Ok(
        longest.map(Code::MetadataLongEntries),
        "Getmetadata completed.".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> MetadataMap {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    fn names<'a>(found: &[(&'a str, Option<&[u8]>)]) -> Vec<&'a str> {
        found.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn depth_reaches_the_entry_its_children_or_everything_below() {
        let m = map(&[
            ("/private/a", "1"),
            ("/private/a/b", "2"),
            ("/private/a/b/c", "3"),
            ("/private/a/d", "4"),
            ("/private/ab", "5"),
            ("/shared/a", "6"),
        ]);
        let e = vec!["/private/a".to_owned()];
        let (f, _) = select(&m, &e, MetadataDepth::Zero, None);
        assert_eq!(names(&f), ["/private/a"]);
        let (f, _) = select(&m, &e, MetadataDepth::One, None);
        assert_eq!(names(&f), ["/private/a", "/private/a/b", "/private/a/d"]);
        let (f, _) = select(&m, &e, MetadataDepth::Infinity, None);
        assert_eq!(
            names(&f),
            [
                "/private/a",
                "/private/a/b",
                "/private/a/b/c",
                "/private/a/d"
            ]
        );
        // A missing entry is NIL at every DEPTH (as Dovecot); named twice, sent once.
        let e = vec!["/private/x".to_owned(), "/private/x".to_owned()];
        let (f, _) = select(&m, &e, MetadataDepth::Zero, None);
        assert_eq!(f, [("/private/x", None)]);
        let (f, _) = select(&m, &e, MetadataDepth::One, None);
        assert_eq!(f, [("/private/x", None)]);
        let e = vec!["/shared".to_owned(), "/private".to_owned()];
        let (f, _) = select(&m, &e, MetadataDepth::One, None);
        assert_eq!(
            names(&f),
            [
                "/shared",
                "/shared/a",
                "/private",
                "/private/a",
                "/private/ab"
            ]
        );
        assert_eq!((f[0].1, f[2].1), (None, None));
    }

    #[test]
    fn maxsize_leaves_out_long_values_and_names_the_longest() {
        let m = map(&[
            ("/shared/a", "12345"),
            ("/shared/b", "123"),
            ("/shared/c", "1"),
        ]);
        let e: Vec<String> = ["/shared/a", "/shared/b", "/shared/c", "/shared/none"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let (f, longest) = select(&m, &e, MetadataDepth::Zero, Some(2));
        assert_eq!(names(&f), ["/shared/c", "/shared/none"]);
        assert_eq!(longest, Some(5));
        let (f, longest) = select(&m, &e, MetadataDepth::Zero, Some(5));
        assert_eq!(f.len(), 4);
        assert_eq!(longest, None);
    }
}
