//! LOGOUT (RFC 3501 6.1.3).

use super::Reply;
use crate::imap::proto::types::Tag;
use crate::imap::response::ImapError;
use crate::imap::session::{Session, State};

/// LOGOUT: untagged BYE, then the tagged OK, then close.
pub fn logout(s: &mut Session, tag: &Tag) -> Result<Reply, ImapError> {
    s.untagged("BYE Logging out.");
    s.ok(tag, None, "Logout completed.");
    s.conn.set_end(crate::server::sessions::EndReason::Logout);
    s.state = State::Logout;
    Ok(Reply::Close)
}
