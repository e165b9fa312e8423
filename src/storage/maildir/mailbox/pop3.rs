//! POP3 first-download times, for `pop3_expire` (messages downloaded more than N days ago).

use crate::storage::Result;
use crate::storage::maildir::fsutil::now_secs;
use crate::storage::maildir::index::Record;

use super::MailboxState;

impl MailboxState {
    /// Records the first POP3 download time of `uids`.
    pub(crate) fn mark_downloaded(&self, uids: &[u32]) -> Result<()> {
        let now = now_secs();
        self.locked(|inner, _| {
            let mut records = Vec::new();
            for &uid in uids {
                if let Some(i) = inner.list.position(uid)
                    && inner.files.get(i).is_some_and(|f| f.dl == 0)
                {
                    records.push(Record::Pop3 { uid, dl: now });
                }
            }
            inner.apply_all(records.clone());
            Ok(((), records))
        })
    }

    /// UIDs first downloaded at or before `cutoff` (Unix seconds).
    pub(crate) fn downloaded_before(&self, cutoff: i64) -> Result<Vec<u32>> {
        self.locked(|inner, _| {
            let uids = inner
                .list
                .iter()
                .zip(inner.files.iter())
                .filter(|(_, f)| f.dl != 0 && f.dl <= cutoff)
                .map(|(m, _)| m.uid)
                .collect();
            Ok((uids, Vec::new()))
        })
    }
}
