//! CANCELUPDATE (RFC 5267 4.3.5): stop the ADDTO/REMOVEFROM updates of searches.

use super::Reply;
use crate::imap::response::ImapError;
use crate::imap::session::Session;

/// `CANCELUPDATE "tag" ...`: drops the live contexts of the tags, in order. A tag that names no
/// live context is answered `NO`, as Dovecot does ("Unknown tag"); the tags before it stay
/// cancelled.
pub fn cancelupdate(s: &mut Session, tags: &[Vec<u8>]) -> Result<Reply, ImapError> {
    let sel = s.selected_mut()?;
    match sel.contexts.cancel(tags) {
        Ok(()) => Reply::ok("Updates cancelled."),
        Err(_) => Err(ImapError::Cannot(
            "No search with that tag asked for updates",
        )),
    }
}
