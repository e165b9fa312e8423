//! Migration (`mailcove migrate`): a mailbox's UIDVALIDITY and UIDNEXT set to those it has in
//! another store. The messages themselves go in through [`MailboxState::commit_at`].
//!
//! Both values live in the index header (`mailcove-index`, and a header record in its log), as
//! for every other mailbox; a `dovecot-uidlist` is only ever read, on first contact.

use crate::storage::Result;

use super::MailboxState;

impl MailboxState {
    /// Applies [`crate::storage::import_counters`] to this mailbox, durably (the changed header
    /// is logged by [`MailboxState::locked`]).
    pub(crate) fn set_import_counters(&self, uidvalidity: u32, uidnext: u32) -> Result<()> {
        self.locked(|inner, _ctx| {
            let have = (inner.hdr.uidvalidity, inner.hdr.uidnext);
            let pair = crate::storage::import_counters(
                have,
                inner.list.is_empty(),
                (uidvalidity, uidnext),
            )?;
            if pair != have {
                if pair.0 != have.0 {
                    // Cached data of the old UIDVALIDITY names nothing any more.
                    inner.cache = None;
                    inner.hdr.first_recent = inner.hdr.first_recent.min(pair.1);
                }
                inner.hdr.uidvalidity = pair.0;
                inner.hdr.uidnext = pair.1;
                // The shared snapshot is rebuilt with the new values.
                inner.version += 1;
            }
            Ok(((), Vec::new()))
        })
    }
}
