//! EXPUNGE (and the second half of MOVE).

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use crate::storage::maildir::index::Record;
use crate::storage::{Result, StorageError, SystemFlags};

use super::{Inner, MailboxState, Usage, dir_mtime};

impl MailboxState {
    /// EXPUNGE: `\Deleted` messages (within `uids` when given); with `force`,
    /// every message of `uids` (the second half of MOVE).
    pub(crate) fn expunge(&self, uids: Option<&[u32]>, force: bool) -> Result<(Vec<u32>, Usage)> {
        self.locked(|inner, ctx| {
            let wanted: Option<HashSet<u32>> = uids.map(|u| u.iter().copied().collect());
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let pick = |inner: &Inner| -> Vec<(u32, PathBuf, u64)> {
                inner
                    .list
                    .iter()
                    .zip(inner.files.iter())
                    .filter(|(m, _)| {
                        wanted.as_ref().is_none_or(|w| w.contains(&m.uid))
                            && (force || m.flags.system.contains(SystemFlags::DELETED))
                    })
                    .map(|(m, f)| (m.uid, inner.file_path(ctx.dir, f), m.phys_size))
                    .collect()
            };
            let mut records = Vec::new();
            let mut gone = Vec::new();
            let mut usage = Usage::default();
            let mut vanished = false;
            for (uid, path, size) in pick(inner) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        if let Some(n) = path.file_name().and_then(|n| n.to_str()) {
                            inner.note_own(n);
                        }
                        inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                        records.push(Record::Expunge {
                            uid,
                            modseq: inner.hdr.highest_modseq,
                        });
                        gone.push(uid);
                        usage.bytes -= i64::try_from(size).unwrap_or(i64::MAX);
                        usage.messages -= 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => vanished = true,
                    Err(e) => return Err(StorageError::io("unlink message", e)),
                }
            }
            inner.apply_all(records.clone());
            if vanished {
                let mut found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                records.append(&mut found);
                let mut again = Vec::new();
                for (uid, path, size) in pick(inner) {
                    if std::fs::remove_file(&path).is_ok() {
                        if let Some(n) = path.file_name().and_then(|n| n.to_str()) {
                            inner.note_own(n);
                        }
                        inner.hdr.highest_modseq = inner.hdr.highest_modseq.saturating_add(1);
                        let r = Record::Expunge {
                            uid,
                            modseq: inner.hdr.highest_modseq,
                        };
                        again.push(r.clone());
                        records.push(r);
                        gone.push(uid);
                        usage.bytes -= i64::try_from(size).unwrap_or(i64::MAX);
                        usage.messages -= 1;
                    }
                }
                inner.apply_all(again);
            }
            inner.own_cur_change(&cur, pre);
            gone.sort_unstable();
            Ok(((gone, usage), records))
        })
    }
}
