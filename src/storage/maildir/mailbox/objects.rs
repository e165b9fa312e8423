//! SAVEDATE, EMAILID and THREADID of messages, from the names this state holds (see
//! `super::super::objectid`): no file is read.

use super::MailboxState;
use crate::storage::MessageObject;
use crate::storage::maildir::objectid::object_of;

impl MailboxState {
    /// The objects of `uids` still in the mailbox, in the order asked.
    pub(crate) fn objects(&self, uids: &[u32]) -> Vec<MessageObject> {
        let inner = self.inner.lock();
        uids.iter()
            .filter_map(|&uid| {
                let i = inner.list.position(uid)?;
                let f = inner.files.get(i)?;
                Some(object_of(uid, &f.name))
            })
            .collect()
    }
}
