//! UNSELECT (RFC 3691).

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// UNSELECT: unselects without expunging.
pub fn unselect(s: &mut Session) -> Result<Reply, ImapError> {
    s.selected()?;
    s.unselect();
    Reply::ok("Unselect completed.")
}
