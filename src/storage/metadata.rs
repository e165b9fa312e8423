//! METADATA (RFC 5464) entries as every backend keeps them: per mailbox, and per user for the
//! server entries (the mailbox name `""` on the wire). A backend stores a [`MetadataMap`] per
//! mailbox and one for the server entries, and changes it only through [`apply`], so the limits
//! and the all-or-nothing rule of RFC 5464 4.3 are the same in every backend.
//!
//! Entry names are opaque keys here; the IMAP layer checks them (RFC 5464 3.2) and lower-cases
//! them first, so the case-insensitive comparison RFC 5464 asks for is a plain one here.

use std::collections::BTreeMap;

use super::{Result, StorageError};
use crate::limits::{MAX_METADATA_ENTRIES, MAX_METADATA_USER_BYTES, MAX_METADATA_VALUE_BYTES};

/// The entries of one mailbox (or the server entries of one user): name to value, in name order.
pub type MetadataMap = BTreeMap<String, Vec<u8>>;

/// One change of a SETMETADATA: the entry name and its new value, `None` to remove it.
pub type MetadataChange = (String, Option<Vec<u8>>);

/// A limit that refused a change (RFC 5464 4.3), as [`StorageError::Metadata`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataLimit {
    /// A value longer than the most this server stores, which it carries
    /// (`[METADATA MAXSIZE n]`).
    MaxSize(u64),
    /// No room for a new entry: [`MAX_METADATA_ENTRIES`] on the mailbox, or
    /// [`MAX_METADATA_USER_BYTES`] over all the user's entries (`[METADATA TOOMANY]`).
    TooMany,
}

/// What a map counts towards [`MAX_METADATA_USER_BYTES`]: its names plus its values.
pub fn map_bytes(map: &MetadataMap) -> u64 {
    map.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

/// Applies `changes` to `map`, all or none. `others` is what the user's other maps count
/// ([`map_bytes`]). A change that does not make the map bigger (a removal, a shorter value) is
/// never refused, so a user over a limit lowered since can always clean up.
pub fn apply(map: &mut MetadataMap, changes: Vec<MetadataChange>, others: u64) -> Result<()> {
    if changes.iter().any(|(_, v)| {
        v.as_ref()
            .is_some_and(|v| v.len() > MAX_METADATA_VALUE_BYTES)
    }) {
        return Err(StorageError::Metadata(MetadataLimit::MaxSize(
            MAX_METADATA_VALUE_BYTES as u64,
        )));
    }
    let mut next = map.clone();
    for (name, value) in changes {
        match value {
            Some(v) => {
                next.insert(name, v);
            }
            None => {
                next.remove(&name);
            }
        }
    }
    if next.len() > map.len() && next.len() > MAX_METADATA_ENTRIES {
        return Err(StorageError::Metadata(MetadataLimit::TooMany));
    }
    let after = map_bytes(&next);
    if after > map_bytes(map) && others.saturating_add(after) > MAX_METADATA_USER_BYTES as u64 {
        return Err(StorageError::Metadata(MetadataLimit::TooMany));
    }
    *map = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: &[u8]) -> MetadataChange {
        (name.to_owned(), Some(value.to_vec()))
    }

    #[test]
    fn changes_apply_all_or_none_within_the_limits() {
        let mut m = MetadataMap::new();
        apply(
            &mut m,
            vec![set("/private/a", b"1"), set("/shared/b", b"22")],
            0,
        )
        .expect("set");
        assert_eq!(map_bytes(&m), 10 + 1 + 9 + 2);
        // One value too big: nothing changes, not even the valid one before it.
        let big = vec![0u8; MAX_METADATA_VALUE_BYTES + 1];
        let e = apply(
            &mut m,
            vec![set("/private/a", b"new"), ("/private/c".into(), Some(big))],
            0,
        );
        assert!(matches!(
            e,
            Err(StorageError::Metadata(MetadataLimit::MaxSize(n))) if n == MAX_METADATA_VALUE_BYTES as u64
        ));
        assert_eq!(m.get("/private/a").map(Vec::as_slice), Some(&b"1"[..]));
        // Removing and replacing need no room; a new entry past the user's bytes does.
        let e = apply(
            &mut m,
            vec![set("/private/d", b"x")],
            MAX_METADATA_USER_BYTES as u64,
        );
        assert!(matches!(
            e,
            Err(StorageError::Metadata(MetadataLimit::TooMany))
        ));
        apply(
            &mut m,
            vec![("/private/a".into(), None), set("/shared/b", b"2")],
            MAX_METADATA_USER_BYTES as u64,
        )
        .expect("shrinking is always allowed");
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let mut m = MetadataMap::new();
        let many: Vec<_> = (0..MAX_METADATA_ENTRIES)
            .map(|i| set(&format!("/private/e{i}"), b""))
            .collect();
        apply(&mut m, many, 0).expect("up to the limit");
        let e = apply(&mut m, vec![set("/private/one-more", b"")], 0);
        assert!(matches!(
            e,
            Err(StorageError::Metadata(MetadataLimit::TooMany))
        ));
        apply(&mut m, vec![set("/private/e0", b"replaced")], 0).expect("replacing is no new entry");
    }
}
