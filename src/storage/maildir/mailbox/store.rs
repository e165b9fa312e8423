//! STORE: flags are set by renaming the file (`:2,` letters); keywords beyond the letters go
//! to the index.

use std::io;
use std::sync::Arc;

use crate::storage::maildir::filename;
use crate::storage::maildir::index::Record;
use crate::storage::{
    Flags, KeywordSet, Result, StorageError, StoreOp, StoreRequest, StoreResult, Updated,
};

use super::keywords::beyond_letters;
use super::{Ctx, Inner, MailboxState, dir_mtime};

impl MailboxState {
    /// STORE.
    pub(crate) fn store(&self, uids: &[u32], req: &StoreRequest) -> Result<StoreResult> {
        self.locked(|inner, ctx| {
            // Removing a keyword the mailbox does not know removes nothing: never create it.
            let kws = inner.intern_keywords(ctx, &req.keywords, req.op != StoreOp::Remove)?;
            let cur = ctx.dir.join("cur");
            let pre = dir_mtime(&cur);
            let mut out = StoreResult {
                updated: Vec::new(),
                failed: Vec::new(),
                keywords: Arc::from([]),
            };
            let mut records = Vec::new();
            let mut retry = Vec::new();
            let mut uids = uids.to_vec();
            uids.sort_unstable();
            uids.dedup();
            for uid in uids {
                match inner.store_one(ctx, uid, req, &kws)? {
                    StoreStep::Done(u, rec) => {
                        out.updated.push(u);
                        records.extend(rec);
                    }
                    StoreStep::Failed => out.failed.push(uid),
                    StoreStep::Missing => {}
                    StoreStep::Vanished => retry.push(uid),
                }
            }
            inner.apply_all(records.clone());
            if !retry.is_empty() {
                // Someone renamed files under us: learn their names, try again.
                let mut found = inner.scan(ctx, true)?;
                inner.apply_all(found.clone());
                records.append(&mut found);
                for uid in retry {
                    if let StoreStep::Done(u, rec) = inner.store_one(ctx, uid, req, &kws)? {
                        out.updated.push(u);
                        inner.apply_all(rec.clone());
                        records.extend(rec);
                    }
                }
            }
            inner.own_cur_change(&cur, pre);
            out.keywords = inner.keywords_arc();
            Ok((out, records))
        })
    }
}

enum StoreStep {
    /// Changed (or already so): the new state and the records saying so.
    Done(Updated, Vec<Record>),
    Failed,
    Missing,
    Vanished,
}

impl Inner {
    fn store_one(
        &mut self,
        ctx: &Ctx<'_>,
        uid: u32,
        req: &StoreRequest,
        kws: &KeywordSet,
    ) -> Result<StoreStep> {
        let Some(i) = self.list.position(uid) else {
            return Ok(StoreStep::Missing);
        };
        let (Some(m), Some(f)) = (self.list.get(i).cloned(), self.files.get(i).cloned()) else {
            return Ok(StoreStep::Missing);
        };
        if req.unchanged_since.is_some_and(|us| m.modseq > us) {
            return Ok(StoreStep::Failed);
        }
        let new_flags = match req.op {
            StoreOp::Replace => Flags {
                system: req.flags,
                keywords: kws.clone(),
            },
            StoreOp::Add => {
                let mut keywords = m.flags.keywords.clone();
                keywords.union_with(kws);
                Flags {
                    system: m.flags.system.union(req.flags),
                    keywords,
                }
            }
            StoreOp::Remove => {
                let mut keywords = m.flags.keywords.clone();
                keywords.remove_all(kws);
                Flags {
                    system: m.flags.system.minus(req.flags),
                    keywords,
                }
            }
        };
        if new_flags == m.flags {
            return Ok(StoreStep::Done(
                Updated {
                    uid,
                    flags: m.flags,
                    modseq: m.modseq,
                },
                Vec::new(),
            ));
        }
        // The letters go into the file name; keywords beyond them into the index.
        let new_name = filename::with_flags(&f.name, &new_flags, self.keywords.len());
        let renamed = new_name != *f.name;
        if renamed {
            let from = self.file_path(ctx.dir, &f);
            match std::fs::rename(&from, ctx.dir.join("cur").join(&new_name)) {
                Ok(()) => {
                    self.note_own(&f.name);
                    self.note_own(&new_name);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StoreStep::Vanished),
                Err(e) => return Err(StorageError::io("rename for flags", e)),
            }
        }
        let beyond = beyond_letters(&new_flags.keywords);
        let beyond_changed = beyond != beyond_letters(&m.flags.keywords);
        self.hdr.highest_modseq = self.hdr.highest_modseq.saturating_add(1);
        let modseq = self.hdr.highest_modseq;
        let mut records = Vec::with_capacity(2);
        if renamed {
            records.push(Record::Rename {
                uid,
                modseq,
                in_new: false,
                name: new_name,
            });
        }
        if beyond_changed || !renamed {
            records.push(Record::Keywords {
                uid,
                modseq,
                keywords: beyond,
            });
        }
        Ok(StoreStep::Done(
            Updated {
                uid,
                flags: new_flags,
                modseq,
            },
            records,
        ))
    }
}
