//! SEARCH and UID SEARCH (RFC 3501 6.4.4). Being written; answers BAD until then.

use super::Reply;
use crate::imap::proto::types::{SearchKey, SearchReturn, Tag};
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// [UID] SEARCH [RETURN (...)] [CHARSET x] keys.
pub async fn search(
    s: &mut Session,
    _tag: &Tag,
    _uid: bool,
    _returns: Option<&[SearchReturn]>,
    _charset: Option<&[u8]>,
    _criteria: &SearchKey,
) -> Result<Reply, ImapError> {
    s.selected()?;
    Err(ImapError::NotSupported("SEARCH"))
}
