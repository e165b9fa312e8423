//! SORT (RFC 5256 section 3, RFC 5957 DISPLAYFROM/DISPLAYTO) and the per-message keys THREAD
//! shares with it.
//!
//! # Design
//!
//! [`keys`] computes what SORT and THREAD compare from each message's header once, keeps it
//! in the storage cache ([`keys::SORT_KEYS_CACHE`]) and loads it for the messages a search
//! found; strings are already in their `i;unicode-casemap` form (RFC 5051, the I18NLEVEL=1
//! collation RFC 5256 section 7 requires), so comparing is comparing bytes.

#![deny(missing_docs)]

pub mod keys;

pub use keys::{KeyMask, Keys, SORT_KEYS_CACHE, load};
