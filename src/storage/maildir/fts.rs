//! The Maildir backend's full-text index: a tantivy index in `<user root>/mailcove-fts/`
//! ([`crate::fts::FTS_DIR`]), opened once per process and user and shared by its sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::fsutil::blocking;
use super::user::UserCtx;
use crate::fts::{FTS_DIR, FtsIndex, TantivyFts};
use crate::limits::{FTS_OPEN_INDEXES, FTS_WRITER_MEMORY_BYTES};
use crate::storage::Result;

/// Open indexes by user root; at most [`FTS_OPEN_INDEXES`] that nobody else holds are kept.
#[derive(Default)]
pub(crate) struct OpenIndexes(Mutex<HashMap<PathBuf, Arc<TantivyFts>>>);

impl OpenIndexes {
    fn cached(&self, root: &Path) -> Option<Arc<TantivyFts>> {
        self.0.lock().get(root).cloned()
    }

    /// Opens (blocking) the index of `root`, or the one already open.
    fn open(&self, root: &Path) -> Result<Arc<TantivyFts>> {
        let mut map = self.0.lock();
        if let Some(f) = map.get(root) {
            return Ok(f.clone());
        }
        if map.len() >= FTS_OPEN_INDEXES {
            map.retain(|_, f| Arc::strong_count(f) > 1);
        }
        let f = Arc::new(TantivyFts::open_dir(
            &root.join(FTS_DIR),
            FTS_WRITER_MEMORY_BYTES,
        )?);
        map.insert(root.to_path_buf(), f.clone());
        Ok(f)
    }
}

/// The user's index, `None` when the backend was set up without one.
pub(super) async fn user_fts(user: &Arc<UserCtx>) -> Result<Option<Arc<dyn FtsIndex>>> {
    if !user.shared.options.fts {
        return Ok(None);
    }
    if let Some(f) = user.shared.fts.cached(&user.root) {
        return Ok(Some(f as Arc<dyn FtsIndex>));
    }
    let u = user.clone();
    let f = blocking(move || u.shared.fts.open(&u.root)).await?;
    Ok(Some(f as Arc<dyn FtsIndex>))
}

/// Queues mailbox `mailbox` of `user` for the background indexer after new mail was committed
/// into it ([`crate::fts::indexer::enqueue`]; never waits).
pub(super) fn index_soon(user: &Arc<UserCtx>, mailbox: &str) {
    if !user.shared.options.fts {
        return;
    }
    let dedup = format!("maildir:{}\u{0}{mailbox}", user.root.display());
    crate::fts::indexer::enqueue(
        Arc::new(super::user_store::MaildirUser(user.clone())),
        mailbox.to_owned(),
        dedup,
    );
}

/// Queues the removal of the index entries of mailbox `n` of `user`, deleted or renamed away
/// (its storage identity, as [`super::mailbox_handle`] names it, is gone; never waits).
pub(super) fn purge_soon(user: &Arc<UserCtx>, n: &crate::storage::names::MailboxName) {
    if !user.shared.options.fts {
        return;
    }
    let identity = format!("maildir:{}", user.dir_of(n).display());
    crate::fts::indexer::enqueue_purge(
        Arc::new(super::user_store::MaildirUser(user.clone())),
        identity,
    );
}
