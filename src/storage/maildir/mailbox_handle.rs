//! [`MaildirMailbox`]: one view's [`MailboxHandle`] on a Maildir mailbox, and opening and
//! reading its message files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch as tokio_watch;

use super::content::MaildirContent;
use super::fsutil::blocking;
use super::mailbox::{LocatedRun, MailboxState, MessageDirs};
use super::user::UserCtx;
use super::{content, quota, watch};
use crate::limits::VISIT_LOCATE_CHUNK;
use crate::storage::{
    CacheField, CopyResult, Head, MailboxHandle, Message, MessageObject, ReadPart, Result,
    StorageError, StoreRequest, StoreResult, SyncOutcome, Vanished,
};

/// A Maildir mailbox as a [`MailboxHandle`]; one per view.
pub(super) struct MaildirMailbox {
    pub(super) name: String,
    pub(super) state: Arc<MailboxState>,
    pub(super) user: Arc<UserCtx>,
    pub(super) watching: AtomicBool,
}

impl Drop for MaildirMailbox {
    fn drop(&mut self) {
        if self.watching.load(Ordering::Relaxed) {
            watch::unwatch(&self.user.shared, &self.state);
        }
    }
}

impl MaildirMailbox {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arc<MailboxState>, &UserCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = self.state.clone();
        let user = self.user.clone();
        blocking(move || f(&state, &user)).await
    }
}

impl MaildirMailbox {
    /// Opens a message and reads its head on this (runtime) thread when that needs neither a
    /// lock another thread holds nor the disk (`content::open_cached`, `content::read_cached`);
    /// `None` sends the caller to the blocking path, which also handles a file renamed meanwhile.
    fn open_from_cache(&self, uid: u32, max_head: usize) -> Option<Message> {
        let (path, phys, virt) = self.state.try_locate(uid)?;
        let file = content::open_cached(&path).ok()?;
        opened(uid, phys, virt, file, max_head, content::read_cached).ok()
    }
}

/// Opens the file of `uid` and reads up to `max_head` of its first bytes. Blocking.
fn open_file(s: &MailboxState, uid: u32, max_head: usize) -> Result<Message> {
    let (file, phys, virt) = open_std(s, uid, None)?.ok_or(StorageError::Expunged)?;
    opened(uid, phys, virt, file, max_head, content::read_at)
        .map_err(|e| StorageError::io("open message", e))
}

/// The [`Message`] of an opened message file, with up to `max_head` of its first bytes read
/// with `read` (at most one beyond the recorded size, so a message of that size is known to be
/// read to its end).
fn opened(
    uid: u32,
    phys_size: u64,
    virt_size: u64,
    file: std::fs::File,
    max_head: usize,
    read: fn(&std::fs::File, u64, &mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<Message> {
    let want = usize::try_from(phys_size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .min(max_head);
    let head = if want == 0 {
        Head::default()
    } else {
        let mut bytes = vec![0u8; want];
        let n = read(&file, 0, &mut bytes)?;
        bytes.truncate(n);
        Head {
            complete: n < want,
            bytes,
        }
    };
    Ok(Message {
        uid,
        phys_size,
        virt_size,
        content: Arc::new(MaildirContent::new(file, phys_size)),
        head,
    })
}

/// Opens a message file for blocking reads with its physical and virtual sizes; `None` when it
/// was expunged. With `dirs`, the file is opened by name relative to its already open directory.
fn open_std(
    s: &MailboxState,
    uid: u32,
    mut dirs: Option<&mut MessageDirs>,
) -> Result<Option<(std::fs::File, u64, u64)>> {
    for attempt in 0..2 {
        let located = match dirs.as_deref_mut() {
            Some(d) => s.open_in(uid, d),
            None => s
                .locate(uid)
                .map(|(path, phys, virt)| (std::fs::File::open(path), phys, virt)),
        };
        let Some((opened, phys_size, virt_size)) = located else {
            return Ok(None);
        };
        match opened {
            Ok(file) => return Ok(Some((file, phys_size, virt_size))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => {
                // Renamed or expunged by someone else: look again.
                s.rescan()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("open message", e)),
        }
    }
    Ok(None)
}

/// Reads `part` of each of `uids`, one file open at a time (`None`: expunged), all into one
/// pooled buffer ([`content::PieceReader`]). Blocking: the whole batch is one trip to a blocking
/// worker.
fn read_many(s: &MailboxState, uids: &[u32], part: ReadPart) -> Result<Vec<Option<Bytes>>> {
    let mut piece = content::PieceReader::new(uids.len());
    let mut dirs = MessageDirs::default();
    let mut run = LocatedRun::default();
    for chunk in uids.chunks(VISIT_LOCATE_CHUNK) {
        s.locate_many(chunk, &mut run);
        if let ReadPart::Whole { cap } = part {
            // One byte past each recorded size: that is what a whole read asks for.
            let want: u64 = run
                .files()
                .iter()
                .flatten()
                .map(|l| l.phys_size.saturating_add(1).min(cap as u64))
                .sum();
            piece.reserve(usize::try_from(want).unwrap_or(0));
        }
        for (&uid, found) in chunk.iter().zip(run.files()) {
            let file = match found {
                None => None,
                Some(l) => match dirs.open_located(s.dir(), &run, l) {
                    Ok(file) => Some((file, l.phys_size)),
                    // Renamed or expunged since it was located: look again. open_std first asks
                    // for the current name (another worker may have rescanned already) and
                    // rescans only if that fails too, so the rest of a stale chunk costs no
                    // rescan each.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        open_std(s, uid, Some(&mut dirs))?.map(|(f, phys, _)| (f, phys))
                    }
                    Err(e) => return Err(StorageError::io("open message", e)),
                },
            };
            match file {
                None => piece.push_missing(),
                Some((f, phys)) => piece
                    .push(&f, phys, part)
                    .map_err(|e| StorageError::io("read message", e))?,
            }
        }
    }
    Ok(piece.finish())
}

#[async_trait]
impl MailboxHandle for MaildirMailbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> Option<String> {
        // UIDVALIDITY comes from a per-user counter, so a mailbox made again at the same
        // directory gets another one.
        Some(format!("maildir:{}", self.state.dir().display()))
    }

    fn changes(&self) -> tokio_watch::Receiver<u64> {
        self.state.subscribe()
    }

    async fn watch(&self) -> Result<()> {
        if self.watching.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        // Adding an inotify watch walks the directory's cached entries:
        // milliseconds for 100,000 files, so not on a runtime thread.
        let shared = self.user.shared.clone();
        let state = self.state.clone();
        blocking(move || {
            watch::watch(&shared, &state);
            Ok(())
        })
        .await
    }

    async fn sync(&self, claim_recent: bool) -> Result<SyncOutcome> {
        self.run(move |s, _| {
            let (snapshot, recent) = s.sync(true, claim_recent)?;
            Ok(SyncOutcome { snapshot, recent })
        })
        .await
    }

    async fn store(&self, uids: Vec<u32>, request: StoreRequest) -> Result<StoreResult> {
        self.run(move |s, _| s.store(&uids, &request)).await
    }

    async fn expunge(&self, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        self.run(move |s, u| {
            let (gone, usage) = s.expunge(uids.as_deref(), false)?;
            quota::add(&u.root, usage.bytes, usage.messages);
            Ok(gone)
        })
        .await
    }

    async fn copy(&self, uids: Vec<u32>, dest: &str, move_: bool) -> Result<CopyResult> {
        let mailbox = dest.to_owned();
        let dest = dest.to_owned();
        let res = self.run(move |s, u| u.copy(s, &uids, &dest, move_)).await;
        if res.as_ref().is_ok_and(|r| !r.mapping.is_empty()) {
            super::fts::index_soon(&self.user, &mailbox);
        }
        res
    }

    async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message> {
        if let Some(m) = self.open_from_cache(uid, max_head) {
            return Ok(m);
        }
        self.run(move |s, _| open_file(s, uid, max_head)).await
    }

    async fn read_messages(&self, uids: Vec<u32>, part: ReadPart) -> Result<Vec<Option<Bytes>>> {
        self.run(move |s, _| read_many(s, &uids, part)).await
    }

    async fn resolve_dates(&self, uids: Vec<u32>) -> Result<Vec<(u32, i64)>> {
        self.run(move |s, _| s.resolve_dates(&uids)).await
    }

    async fn cache_get_prefix(
        &self,
        uids: Vec<u32>,
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>> {
        if let Some(got) = self.state.try_cache_get(&uids, field.0, max_bytes) {
            return Ok(got);
        }
        self.run(move |s, _| s.cache_get(&uids, field.0, max_bytes))
            .await
    }

    async fn cache_put_fields(&self, fields: Vec<(CacheField, Vec<(u32, Bytes)>)>) -> Result<()> {
        let fields: Vec<(u8, Vec<(u32, Bytes)>)> =
            fields.into_iter().map(|(f, e)| (f.0, e)).collect();
        self.run(move |s, _| s.cache_put(&fields)).await
    }

    async fn pop3_mark_downloaded(&self, uids: Vec<u32>) -> Result<()> {
        self.run(move |s, _| s.mark_downloaded(&uids)).await
    }

    async fn vanished_since(&self, modseq: u64) -> Result<Vanished> {
        self.run(move |s, _| s.vanished_since(modseq)).await
    }

    async fn objects(&self, uids: Vec<u32>) -> Result<Vec<MessageObject>> {
        self.run(move |s, _| Ok(s.objects(&uids))).await
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        super::fts::user_fts(&self.user).await
    }
}
