//! CHECK (RFC 3501 6.4.1).

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// CHECK: every change is already durable when acknowledged, so there is nothing to flush; the
/// command loop reports the mailbox's changes before the OK, as for NOOP.
pub async fn check(s: &mut Session) -> Result<Reply, ImapError> {
    s.selected()?;
    Reply::ok("Check completed.")
}
