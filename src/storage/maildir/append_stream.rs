//! [`MaildirAppend`]: a streamed APPEND into `tmp/`, moved into `cur/` on commit.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::fsutil::{blocking, now_secs};
use super::mailbox::MailboxState;
use super::user::UserCtx;
use super::{filename, quota};
use crate::limits::MAX_PARALLEL_FSYNCS;
use crate::storage::{
    AppendManyResult, AppendResult, AppendStream, PendingAppend, Result, StorageError, SystemFlags,
};

/// A streamed append: a file in the mailbox's `tmp/`, moved into `cur/` on
/// commit, removed if dropped before.
pub(super) struct MaildirAppend {
    pub(super) state: Arc<MailboxState>,
    pub(super) user: Arc<UserCtx>,
    pub(super) file: Option<std::fs::File>,
    pub(super) path: PathBuf,
    pub(super) len: u64,
    /// Bytes the user may still store (`None`: no byte limit).
    pub(super) room: Option<u64>,
    pub(super) counter: filename::VirtualCounter,
    pub(super) done: bool,
    /// The mailbox's name as given to `append_stream` (to index the message once stored).
    pub(super) mailbox: String,
}

impl Drop for MaildirAppend {
    fn drop(&mut self) {
        if !self.done {
            // One unlink of our own temp file: cheap enough for any thread.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[async_trait]
impl AppendStream for MaildirAppend {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = self.len.saturating_add(data.len() as u64);
        if self.room.is_some_and(|r| len > r) {
            return Err(StorageError::OverQuota);
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StorageError::Temporary("append stream broken".into()))?;
        let chunk = data.to_vec();
        let (file, res) = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let r = file.write_all(&chunk);
            (file, r)
        })
        .await
        .map_err(|e| StorageError::Temporary(format!("storage worker failed: {e}")))?;
        res.map_err(|e| StorageError::io("write message", e))?;
        self.file = Some(file);
        self.counter.feed(data);
        self.len = len;
        Ok(())
    }

    fn reserve(&mut self, size: u64) -> Result<()> {
        if self.room.is_some_and(|r| size > r) {
            return Err(StorageError::OverQuota);
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    async fn commit(
        mut self: Box<Self>,
        flags: SystemFlags,
        keywords: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<AppendResult> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StorageError::Temporary("append stream broken".into()))?;
        let state = self.state.clone();
        let user = self.user.clone();
        let path = self.path.clone();
        let (phys, virt) = (self.len, self.len.saturating_add(self.counter.bare_lf()));
        let date = internal_date.unwrap_or_else(now_secs);
        let res = blocking(move || {
            // Room was measured when the stream started; other appends may have used it since.
            quota::check(&user.root, &user.limits, user.fsync(), phys, 1)?;
            state.finish_tmp(&file, date)?;
            drop(file);
            let base = filename::new_base(phys, virt);
            let (uidvalidity, uids) =
                state.commit_new(vec![(path, base, date, flags, keywords)])?;
            quota::add(&user.root, i64::try_from(phys).unwrap_or(i64::MAX), 1);
            let uid = uids
                .first()
                .copied()
                .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
            Ok(AppendResult { uidvalidity, uid })
        })
        .await;
        // commit_new renamed the temp file, or removed it on failure; a
        // failure before that leaves it for Drop.
        if res.is_ok() {
            self.done = true;
            super::fts::index_soon(&self.user, &self.mailbox);
        }
        res
    }
}

/// Stores several streamed appends of one mailbox at once, all or none (MULTIAPPEND): every
/// temp file made durable, then all moved into `cur/` under one index lock with consecutive UIDs
/// ([`MailboxState::commit_new`] takes back the moved ones if a step fails).
pub(super) async fn commit_many(
    user: &Arc<UserCtx>,
    items: Vec<PendingAppend>,
) -> Result<AppendManyResult> {
    let mut streams: Vec<Box<MaildirAppend>> = Vec::with_capacity(items.len());
    let mut meta = Vec::with_capacity(items.len());
    for item in items {
        let Ok(stream) = item.stream.into_any().downcast::<MaildirAppend>() else {
            return Err(StorageError::Temporary(
                "append stream of another backend".into(),
            ));
        };
        let same = streams
            .first()
            .is_none_or(|f| Arc::ptr_eq(&f.state, &stream.state));
        if !Arc::ptr_eq(&stream.user, user) || !same {
            return Err(StorageError::Temporary(
                "append batch spans mailboxes".into(),
            ));
        }
        meta.push((item.flags, item.keywords, item.internal_date));
        streams.push(stream);
    }
    let Some(state) = streams.first().map(|s| s.state.clone()) else {
        return Err(StorageError::Temporary("empty append batch".into()));
    };
    let mut files = Vec::with_capacity(streams.len());
    for s in &mut streams {
        let file = s
            .file
            .take()
            .ok_or_else(|| StorageError::Temporary("append stream broken".into()))?;
        files.push(file);
    }
    let jobs: Vec<_> = streams
        .iter()
        .zip(meta)
        .map(|(s, (flags, keywords, date))| {
            let (phys, virt) = (s.len, s.len.saturating_add(s.counter.bare_lf()));
            (s.path.clone(), phys, virt, flags, keywords, date)
        })
        .collect();
    let user2 = user.clone();
    let res = blocking(move || {
        let phys_total: u64 = jobs.iter().map(|j| j.1).sum();
        let count = jobs.len() as u64;
        quota::check(&user2.root, &user2.limits, user2.fsync(), phys_total, count)?;
        let dates: Vec<i64> = jobs.iter().map(|j| j.5.unwrap_or_else(now_secs)).collect();
        finish_all(&state, &files, &dates)?;
        let mut items = Vec::with_capacity(jobs.len());
        for ((path, phys, virt, flags, keywords, _), date) in jobs.into_iter().zip(dates) {
            items.push((path, filename::new_base(phys, virt), date, flags, keywords));
        }
        drop(files);
        let (uidvalidity, uids) = state.commit_new(items)?;
        quota::add(
            &user2.root,
            i64::try_from(phys_total).unwrap_or(i64::MAX),
            i64::try_from(count).unwrap_or(i64::MAX),
        );
        Ok(AppendManyResult { uidvalidity, uids })
    })
    .await;
    // commit_new renamed the temp files, or removed them on failure; a failure before that
    // leaves them to Drop.
    if res.is_ok() {
        for s in &mut streams {
            s.done = true;
        }
        if let Some(s) = streams.first() {
            super::fts::index_soon(user, &s.mailbox);
        }
    }
    res
}

/// Dates and makes durable every temp file of a batch: on up to [`MAX_PARALLEL_FSYNCS`] threads
/// at once, so the file system's journal commits the fsyncs together instead of one after the
/// other (each one is a journal commit when alone). The first failure is returned.
fn finish_all(state: &MailboxState, files: &[std::fs::File], dates: &[i64]) -> Result<()> {
    let threads = files.len().clamp(1, MAX_PARALLEL_FSYNCS);
    let per = files.len().div_ceil(threads);
    if threads == 1 {
        for (f, d) in files.iter().zip(dates) {
            state.finish_tmp(f, *d)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per)
            .zip(dates.chunks(per))
            .map(|(fs, ds)| {
                scope.spawn(move || -> Result<()> {
                    for (f, d) in fs.iter().zip(ds) {
                        state.finish_tmp(f, *d)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(StorageError::Temporary("fsync thread panicked".into())));
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}
