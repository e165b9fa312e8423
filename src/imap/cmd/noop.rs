//! NOOP (RFC 3501 6.1.2).

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// NOOP: the command loop reports the selected mailbox's changes before the OK (the table row
/// lets it), which is what clients poll with NOOP for.
pub fn noop(_s: &mut Session) -> Result<Reply, ImapError> {
    Reply::ok("NOOP completed.")
}
