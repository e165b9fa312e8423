//! SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO) and the per-message keys THREAD
//! shares with it.
//!
//! # Design
//!
//! [`keys`] computes what SORT and THREAD compare from each message's header once, keeps it
//! in the storage cache ([`keys::SORT_KEYS_CACHE`]) and loads it for the messages a search
//! found; strings are already in their `i;unicode-casemap` form (RFC 5051, the I18NLEVEL=1
//! collation RFC 5256 section 7 requires), so comparing is comparing bytes. [`shared`] keeps
//! the per-UID integer columns made from them for all sessions, so a warm SORT reads no entry.

#![deny(missing_docs)]

pub mod keys;
pub mod order;
pub mod shared;

pub use keys::{KeyMask, Keys, SORT_KEYS_CACHE, load};

use crate::imap::proto::types::SortCriterion;
use crate::imap::search::{self, Hit, Program, SearchError};
use crate::imap::selected::Selected;

/// The messages `prog` (compiled against `sel`) finds, in the order of `criteria`
/// (RFC 5256 section 3). ESORT/CONTEXT reuse this and take what they need of the list.
pub async fn run(
    sel: &mut Selected,
    criteria: &[SortCriterion],
    prog: &Program,
) -> Result<Vec<Hit>, SearchError> {
    let hits = search::run(sel, prog).await?;
    if hits.len() < 2 {
        return Ok(hits);
    }
    let columns = shared::columns(sel, &hits, criteria).await?;
    let seq = |i: usize| hits.get(i).map_or(0, |h| h.seq);
    Ok(order::order_columns(criteria, columns, seq)
        .into_iter()
        .filter_map(|i| hits.get(i).copied())
        .collect())
}
