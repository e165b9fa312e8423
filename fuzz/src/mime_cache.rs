//! Structure-cache blobs read back from disk (`MessageInfo::from_cache_bytes`):
//! a cache file may be torn or damaged, and what it yields is then written
//! as BODYSTRUCTURE and used to resolve sections.
//!
//! Input: the blob (the seeds are real blobs). The blob itself also serves as
//! the "message" the sections are cut from, so ranges may not fit.
//!
//! Invariants: an accepted blob gives a tree obeying the limits with ordered
//! ranges (whether they fit the file is FETCH's check), writes
//! well-formed bounded ENVELOPE/BODY data, re-serialises to a blob that
//! reads back equal, and resolves sections without leaving the message.

use mailcove::mime::MessageInfo;

use crate::mime_structure::{check_sections, check_tree, check_written};

/// Checks one input; panics on a violated invariant.
pub fn run(data: &[u8]) {
    let Some(info) = MessageInfo::from_cache_bytes(data) else {
        return;
    };
    check_tree(&info, None);
    // Strings written come from the blob (each at most doubled by quoting or
    // a literal header) or are fixed text per part.
    check_written(
        &info,
        data.len(),
        false,
        4 * data.len() + 512 * info.parts.len() + 1024,
    );
    let again = info.to_cache_bytes();
    assert_eq!(MessageInfo::from_cache_bytes(&again).as_ref(), Some(&info));
    check_sections(
        &info,
        data,
        false,
        data.get(data.len().saturating_sub(8)..).unwrap_or_default(),
    );
}
