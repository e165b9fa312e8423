//! Threading for THREAD and UID THREAD (RFC 5256 section 3): the ORDEREDSUBJECT and REFERENCES
//! algorithms, and Dovecot's REFS.
//!
//! The algorithms are pure functions from a slice of [`ThreadMessage`]s (the searched messages,
//! in mailbox order) to a [`ThreadTree`] the encoder writes as `* THREAD ...`. They read no
//! message: the per-message keys (sent date, base subject, Message-ID, References, In-Reply-To)
//! come from the sort key cache.
//!
//! Cost: REFERENCES and REFS use one hash map keyed by Message-ID and arrays indexed by node, so
//! time is O(n log n) for the sorts plus the length of the ancestor walks that refuse loops, and
//! memory is a few words per message and per distinct referenced Message-ID.
//!
//! Choices where the RFC leaves room, or where we follow Dovecot:
//! - Equal sent dates are ordered by sequence number (RFC 5256 2.2); since UIDs grow with
//!   sequence numbers this is also Dovecot's UID tie-break.
//! - REFS (Dovecot's `THREAD=REFS`, from the expired draft-ietf-morg-inthread): REFERENCES steps
//!   1 to 4 and 6 without the subject merge (step 5), and the threads are ordered by the sent
//!   date of their *latest* message instead of their first (Dovecot
//!   `index-thread-finish.c`, `sort_root_nodes_ref2`). Equal latest dates are ordered by the
//!   thread's first message.

mod ordered_subject;
mod references;

pub use crate::imap::proto::encode::{ThreadNode, ThreadTree};
pub use crate::imap::proto::types::ThreadAlgorithm as Algorithm;
pub use ordered_subject::ordered_subject;
pub use references::{references, refs};

/// Threads `msgs` (in mailbox order) with `algorithm`.
pub fn thread<R: AsRef<str>>(algorithm: Algorithm, msgs: &[ThreadMessage<'_, R>]) -> ThreadTree {
    match algorithm {
        Algorithm::OrderedSubject => ordered_subject(msgs),
        Algorithm::References => references(msgs),
        Algorithm::Refs => refs(msgs),
    }
}

/// What the algorithms know about one searched message. The slice handed to them must be in
/// mailbox (sequence number) order: the position breaks ties between equal dates and decides
/// which of two messages with the same Message-ID keeps it.
#[derive(Debug, Clone, Copy)]
pub struct ThreadMessage<'a, R: AsRef<str> = &'a str> {
    /// The number written in the response: the sequence number, or the UID for UID THREAD.
    pub number: u32,
    /// The sent date (RFC 5256 2.2) in seconds since the epoch, UTC; INTERNALDATE when the
    /// `Date:` header is missing or unusable.
    pub date: i64,
    /// The base subject (RFC 5256 2.1) as the comparison key: equal keys are the same subject.
    pub base_subject: &'a str,
    /// Base subject extraction removed a `Re:`/`Fwd:`, a `(fwd)` trailer or a `[fwd: ...]`
    /// wrapper: the message is a reply or forward.
    pub is_reply: bool,
    /// The normalised Message-ID, if the message has a valid one.
    pub message_id: Option<&'a str>,
    /// The valid, normalised msg-ids of the References header, in order.
    pub references: &'a [R],
    /// The valid, normalised msg-ids of In-Reply-To; only the first is used, and only when
    /// References has none (RFC 5256 3, REFERENCES).
    pub in_reply_to: &'a [R],
}

/// The sort key of a message for "sort by sent date" (RFC 5256 2.2): its date, then its position.
fn date_key<R: AsRef<str>>(msgs: &[ThreadMessage<'_, R>], index: u32) -> (i64, u32) {
    let date = usize::try_from(index)
        .ok()
        .and_then(|i| msgs.get(i))
        .map_or(i64::MIN, |m| m.date);
    (date, index)
}

/// A message's position as a `u32` node payload (mailboxes hold fewer than 2^32 messages).
fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX - 1)
}
