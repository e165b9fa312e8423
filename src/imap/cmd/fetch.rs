//! FETCH and UID FETCH (RFC 3501 6.4.5). Being written; answers BAD until then.

use super::Reply;
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::types::FetchAttr;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// [UID] FETCH set attributes.
pub async fn fetch(
    s: &mut Session,
    _uid: bool,
    _set: &SequenceSet,
    _attrs: &[FetchAttr],
    _changed_since: Option<u64>,
) -> Result<Reply, ImapError> {
    s.selected()?;
    Err(ImapError::NotSupported("FETCH"))
}
