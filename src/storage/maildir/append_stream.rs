//! [`MaildirAppend`]: a streamed APPEND into `tmp/`, moved into `cur/` on commit.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use super::fsutil::{blocking, now_secs};
use super::mailbox::MailboxState;
use super::user::UserCtx;
use super::{filename, quota};
use crate::storage::{AppendResult, AppendStream, Result, StorageError, SystemFlags};

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
        }
        res
    }
}
