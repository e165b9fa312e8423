//! Full-text search index: finds the candidate messages for SEARCH BODY, TEXT and the header
//! keys so that a search reads only those instead of every message.
//!
//! # Design
//!
//! The index never decides a match. It holds, per message, the **trigrams** (every run of three
//! characters) of the text a scan would compare a key with, in the scan's own form
//! (`i;unicode-casemap`, [`text::message_text`]): the decoded top-level header lines, the
//! comment-free address forms, the headers of every MIME part (attachment file names are in
//! their `Content-Disposition`/`Content-Type` lines) and the decoded text of every text part
//! (HTML reduced to text, every charset [`crate::mime`] decodes). A key of three characters or
//! more can only be a substring of a message whose trigrams include all of the key's; the index
//! answers that set of *candidates* and the scan ([`crate::imap::search`]) confirms each
//! candidate exactly as it would without the index. So results are identical to a scan by
//! construction, substrings inside words included ("zanz" finds "zanzibar"), and shorter keys
//! simply scan.
//!
//! The index records which UIDs it covers per mailbox and UIDVALIDITY ([`mailbox_key`]); a search
//! uses it for covered UIDs and scans the rest, then asks the background [`indexer`] to catch
//! up; the storage backends also queue a mailbox for it when mail arrives
//! ([`indexer::enqueue`]). Expunged messages are left in the index and never asked about (their UIDs are not in the
//! view); `mailcove index rebuild --fts` drops them.
//!
//! The storage backend chooses where the index lives ([`crate::storage::UserStore::fts`]):
//! Maildir keeps a tantivy index beside the user's mail (`<root>/mailcove-fts/`), the memory
//! backend one in RAM ([`TantivyFts`] either way).

pub mod indexer;
mod tantivy_index;
pub mod text;

pub use tantivy_index::TantivyFts;

use crate::storage::Result;

/// The name of the index directory inside a user's Maildir root.
pub const FTS_DIR: &str = "mailcove-fts";

/// One message to index: its UID and its text in the compared form ([`text::message_text`]).
#[derive(Debug, Clone)]
pub struct FtsDoc {
    /// UID in the mailbox.
    pub uid: u32,
    /// Casemapped text (any order; only its trigrams are kept).
    pub text: String,
}

/// What an index holds, for `mailcove index rebuild --fts` and the bench.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FtsStatus {
    /// Messages indexed (all mailboxes).
    pub messages: u64,
    /// Bytes the index takes on disk (`None` for an index in memory).
    pub disk_bytes: Option<u64>,
}

/// A user's full-text index. Every method blocks (disk, CPU): call them on a blocking thread
/// ([`crate::compute::run`]).
pub trait FtsIndex: Send + Sync {
    /// The UIDs indexed for the mailbox `key` ([`mailbox_key`]), ascending.
    fn covered(&self, key: &str) -> Result<Vec<u32>>;
    /// Adds messages of mailbox `key` (one that is there already is replaced) and commits:
    /// durable and visible to searches when it returns.
    fn add(&self, key: &str, docs: Vec<FtsDoc>) -> Result<()>;
    /// The covered UIDs of mailbox `key` whose text may contain the casemapped `needle`
    /// (ascending): a superset of those that do. `None` when the needle is too short for the
    /// index ([`trigrams`] is empty): then every message is a candidate.
    fn candidates(&self, key: &str, needle: &str) -> Result<Option<Vec<u32>>>;
    /// Forgets messages of mailbox `key`.
    fn remove(&self, key: &str, uids: &[u32]) -> Result<()>;
    /// Forgets every message of the mailbox whose storage has identity `identity`
    /// ([`crate::storage::MailboxHandle::identity`]) under any UIDVALIDITY: the mailbox was
    /// deleted or renamed away.
    fn remove_mailbox(&self, identity: &str) -> Result<()>;
    /// Forgets everything (before a rebuild).
    fn clear(&self) -> Result<()>;
    /// Size and contents.
    fn status(&self) -> Result<FtsStatus>;
}

/// The key a mailbox's messages are indexed under: the backend's identity of its storage
/// ([`crate::storage::MailboxHandle::identity`]) and UIDVALIDITY, so a mailbox made again (a new
/// UIDVALIDITY) or renamed (another identity) is simply not covered and is indexed afresh.
pub fn mailbox_key(identity: &str, uidvalidity: u32) -> String {
    format!("{identity}\u{1}{uidvalidity}")
}

/// The length of the n-grams indexed: a key shorter than this is not looked up.
pub const NGRAM_CHARS: usize = 3;

/// The distinct trigrams of `needle` (its characters taken three at a time), at most
/// [`crate::limits::FTS_MAX_QUERY_NGRAMS`] of them (fewer terms only widen the candidates).
pub fn trigrams(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    let mut out: Vec<String> = chars
        .windows(NGRAM_CHARS)
        .map(|w| w.iter().collect())
        .collect();
    out.sort_unstable();
    out.dedup();
    out.truncate(crate::limits::FTS_MAX_QUERY_NGRAMS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_of_short_and_long_needles() {
        assert!(trigrams("").is_empty());
        assert!(trigrams("ab").is_empty());
        assert_eq!(trigrams("zanz"), vec!["anz", "zan"]);
        assert_eq!(trigrams("ääää"), vec!["äää"]);
        let long: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        assert_eq!(
            trigrams(&long).len(),
            26.min(crate::limits::FTS_MAX_QUERY_NGRAMS)
        );
    }
}
