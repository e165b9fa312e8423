//! MOVE and UID MOVE (RFC 6851). A move is a copy whose source messages are then expunged; the
//! body it shares with COPY is [`super::copy::copy`], which writes COPYUID in an untagged OK
//! before the EXPUNGE responses (RFC 6851 4.3).

use super::Reply;
use super::copy::copy;
use crate::imap::proto::sequence::SequenceSet;
use crate::imap::proto::types::Mailbox;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// MOVE or UID MOVE: `set` names sequence numbers or UIDs, moved into `mb`.
pub async fn move_messages(
    s: &mut Session,
    uid: bool,
    set: &SequenceSet,
    mb: &Mailbox,
) -> Result<Reply, ImapError> {
    copy(s, uid, set, mb, true).await
}
