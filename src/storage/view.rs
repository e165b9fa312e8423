//! A session's picture of one mailbox, backend-independent.
//!
//! The picture changes only in [`View::refresh`] (and in the operations that
//! refresh as part of their answer: expunge and move), so sequence numbers
//! never shift under a FETCH, STORE or SEARCH. The view's own STORE results
//! are patched into its picture right away (copying one chunk), which also
//! means a later refresh does not report them a second time.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use super::{
    CacheField, CopyResult, InternalDate, InternalDates, KeywordSet, MailboxHandle, Message,
    MessageList, MessageMeta, OpenOptions, ReadPart, Result, StorageError, StoreRequest,
    SyncOutcome, Updated, Vanished,
};

/// What changed between two pictures, in the order IMAP reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Sequence numbers for `* n EXPUNGE`, in the order to send them
    /// (descending, so each number is valid when it is sent).
    pub expunged: Vec<u32>,
    /// The UIDs of the expunged messages (ascending).
    pub expunged_uids: Vec<u32>,
    /// New `* n EXISTS` count when messages arrived.
    pub exists: Option<u32>,
    /// New `* n RECENT` count when it changed.
    pub recent: Option<u32>,
    /// Sequence numbers (after the expunges) whose flags or modseq were
    /// changed by someone else: send `* n FETCH (FLAGS ...)`.
    pub flag_changes: Vec<u32>,
    /// The keyword table grew: send a new `* FLAGS` and PERMANENTFLAGS.
    pub keywords_changed: bool,
    /// The mailbox was replaced (UIDVALIDITY changed): the session must end
    /// its selection (IMAP sends `* BYE` or `* OK [CLOSED]`).
    pub uidvalidity_changed: bool,
}

impl Delta {
    /// True when there is nothing to tell the client.
    pub fn is_empty(&self) -> bool {
        self == &Delta::default()
    }
}

/// What a STORE through a view did.
#[derive(Debug, Clone, Default)]
pub struct StoreOutcome {
    /// `(sequence number, new state)` of each changed message still in the view.
    pub updated: Vec<(u32, Updated)>,
    /// UIDs that failed the UNCHANGEDSINCE test.
    pub failed: Vec<u32>,
    /// The keyword table grew (send `* FLAGS`).
    pub keywords_changed: bool,
}

/// A session-owned picture of a mailbox; see the module docs.
pub struct View {
    handle: Arc<dyn MailboxHandle>,
    options: OpenOptions,
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
    keywords: Arc<[String]>,
    keyword_limit: usize,
    list: MessageList,
    recent: Vec<Range<u32>>,
    changes: watch::Receiver<u64>,
    watching: bool,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("mailbox", &self.handle.name())
            .field("messages", &self.list.len())
            .field("uidvalidity", &self.uidvalidity)
            .finish()
    }
}

impl View {
    /// Opens a view on a backend handle (backends call this from
    /// [`super::UserStore::open`]).
    pub async fn open(handle: Arc<dyn MailboxHandle>, options: OpenOptions) -> Result<View> {
        let mut changes = handle.changes();
        changes.borrow_and_update();
        let synced = handle
            .sync(options.claim_recent && !options.read_only)
            .await?;
        Ok(View::from_sync(handle, options, changes, synced))
    }

    /// A view on what a sync of the handle returned, for backends that
    /// sync as part of finding the mailbox. `changes` must have been
    /// subscribed (and marked seen) before that sync began, so nothing
    /// that happens after it goes unnoticed.
    pub fn from_sync(
        handle: Arc<dyn MailboxHandle>,
        options: OpenOptions,
        changes: watch::Receiver<u64>,
        synced: SyncOutcome,
    ) -> View {
        let SyncOutcome { snapshot, recent } = synced;
        let mut view = View {
            handle,
            options,
            uidvalidity: snapshot.uidvalidity,
            uidnext: snapshot.uidnext,
            highest_modseq: snapshot.highest_modseq,
            keywords: snapshot.keywords.clone(),
            keyword_limit: snapshot.keyword_limit,
            list: snapshot.messages.clone(),
            recent: Vec::new(),
            changes,
            watching: false,
        };
        view.add_recent(recent, 0);
        view
    }

    /// Records `r` as `\Recent` for this session, from `new_from` on: the UIDs below it were
    /// in the view already (a read-only view is offered the unclaimed UIDs again on each
    /// refresh; a claiming view never gets one it had, since it took them all). Views that
    /// neither claim nor are read-only (POP3) keep none.
    fn add_recent(&mut self, r: Option<Range<u32>>, new_from: u32) {
        if !(self.options.claim_recent || self.options.read_only) {
            return;
        }
        if let Some(r) = r.map(|r| r.start.max(new_from)..r.end)
            && !r.is_empty()
        {
            self.recent.push(r);
        }
    }

    /// See [`MailboxHandle::identity`].
    pub fn identity(&self) -> Option<String> {
        self.handle.identity()
    }

    /// The backend's handle on the mailbox (for work that outlives the view, such as the
    /// background full-text indexer).
    pub fn handle(&self) -> Arc<dyn MailboxHandle> {
        self.handle.clone()
    }

    /// See [`MailboxHandle::fts`].
    pub async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        self.handle.fts().await
    }

    /// The mailbox name.
    pub fn name(&self) -> &str {
        self.handle.name()
    }
    /// True for EXAMINE views.
    pub fn read_only(&self) -> bool {
        self.options.read_only
    }
    /// Number of messages (EXISTS).
    pub fn len(&self) -> u32 {
        u32::try_from(self.list.len()).unwrap_or(u32::MAX)
    }
    /// True when the view holds no message.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// UIDVALIDITY.
    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }
    /// UIDNEXT as of the last refresh.
    pub fn uidnext(&self) -> u32 {
        self.uidnext
    }
    /// HIGHESTMODSEQ as of the last refresh or own store.
    pub fn highest_modseq(&self) -> u64 {
        self.highest_modseq
    }
    /// Keyword table (for FLAGS / PERMANENTFLAGS and to name [`KeywordSet`]
    /// bits); empty strings are unused slots and must be skipped.
    pub fn keywords(&self) -> &Arc<[String]> {
        &self.keywords
    }
    /// True when STORE may still create keywords (PERMANENTFLAGS `\*`).
    pub fn can_create_keywords(&self) -> bool {
        self.keywords.len() < self.keyword_limit
    }
    /// Names of the keywords in `set`.
    pub fn keyword_names(&self, set: &KeywordSet) -> Vec<&str> {
        set.iter()
            .filter_map(|i| self.keywords.get(i).map(String::as_str))
            .collect()
    }
    /// All messages in sequence order.
    pub fn messages(&self) -> &MessageList {
        &self.list
    }
    /// The message with 1-based sequence number `seq`.
    pub fn get(&self, seq: u32) -> Option<&MessageMeta> {
        let i = usize::try_from(seq).ok()?.checked_sub(1)?;
        self.list.get(i)
    }
    /// Sequence number of `uid`.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.list
            .position(uid)
            .and_then(|i| u32::try_from(i + 1).ok())
    }
    /// True when `uid` is `\Recent` for this session.
    pub fn is_recent(&self, uid: u32) -> bool {
        self.recent.iter().any(|r| r.contains(&uid))
    }
    /// Number of `\Recent` messages in the view (RECENT).
    pub fn recent_count(&self) -> u32 {
        let n: usize = self
            .recent
            .iter()
            .map(|r| self.list.rank(r.end) - self.list.rank(r.start))
            .sum();
        u32::try_from(n).unwrap_or(u32::MAX)
    }
    /// Sequence number of the first message without `\Seen` (`OK [UNSEEN]`).
    /// Worked out once per picture and shared by the views holding it
    /// ([`MessageList::first_unseen`]), so a warm SELECT does not read every message.
    pub fn first_unseen(&self) -> Option<u32> {
        self.list
            .first_unseen()
            .and_then(|i| u32::try_from(i + 1).ok())
    }

    /// Waits until the mailbox may have changed since the last refresh
    /// (another session, another process, an MTA writing into it). Cancel-safe.
    /// After it returns call [`View::refresh`]; the delta may be empty.
    ///
    /// The first call (with [`OpenOptions::watch`]) starts watching the
    /// disk and returns at once, so the caller's next refresh covers the
    /// moment before the watch existed.
    pub async fn changed(&mut self) {
        if self.options.watch && !self.watching {
            self.watching = true;
            match self.handle.watch().await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "cannot watch mailbox"),
            }
        }
        if self.changes.changed().await.is_err() {
            // The backend state is gone; nothing will ever change again.
            std::future::pending::<()>().await;
        }
    }

    /// Brings the view up to date and says what changed.
    pub async fn refresh(&mut self) -> Result<Delta> {
        self.changes.borrow_and_update();
        let out = self
            .handle
            .sync(self.options.claim_recent && !self.options.read_only)
            .await?;
        let old_recent = self.recent_count();
        self.add_recent(out.recent, self.uidnext);
        let snap = out.snapshot;
        let mut delta = Delta::default();
        if snap.uidvalidity != self.uidvalidity {
            delta.uidvalidity_changed = true;
            return Ok(delta);
        }
        let new_count = diff(&self.list, &snap.messages, &mut delta);
        delta.expunged.reverse();
        delta.keywords_changed = snap.keywords.len() != self.keywords.len();
        self.list = snap.messages.clone();
        self.keywords = snap.keywords.clone();
        self.uidnext = snap.uidnext;
        self.highest_modseq = self.highest_modseq.max(snap.highest_modseq);
        if new_count > 0 {
            delta.exists = Some(self.len());
        }
        let recent = self.recent_count();
        if recent != old_recent || (new_count > 0 && recent > 0) {
            delta.recent = Some(recent);
        }
        Ok(delta)
    }

    /// STORE: changes flags of `uids` (UIDs not in the mailbox any more are
    /// skipped) and patches this view's picture.
    pub async fn store(&mut self, uids: &[u32], request: StoreRequest) -> Result<StoreOutcome> {
        if self.options.read_only {
            return Err(StorageError::ReadOnly);
        }
        let res = self.handle.store(uids.to_vec(), request).await?;
        let mut out = StoreOutcome {
            keywords_changed: res.keywords.len() != self.keywords.len(),
            failed: res.failed,
            updated: Vec::with_capacity(res.updated.len()),
        };
        self.keywords = res.keywords;
        for u in res.updated {
            self.highest_modseq = self.highest_modseq.max(u.modseq);
            if let Some(i) = self.list.position(u.uid) {
                self.list.update(i, |m| {
                    m.flags = u.flags.clone();
                    m.modseq = u.modseq;
                });
                out.updated.push((seq(i), u));
            }
        }
        Ok(out)
    }

    /// EXPUNGE (`None`) or UID EXPUNGE (`Some(uids)`): removes `\Deleted`
    /// messages and refreshes; the delta lists what to report, including
    /// changes by others.
    pub async fn expunge(&mut self, uids: Option<&[u32]>) -> Result<Delta> {
        if self.options.read_only {
            return Err(StorageError::ReadOnly);
        }
        self.handle.expunge(uids.map(<[u32]>::to_vec)).await?;
        self.refresh().await
    }

    /// QRESYNC: the UIDs expunged with a modseq greater than `modseq` that this picture no
    /// longer holds, ascending ([`MailboxHandle::vanished_since`]). UIDs expunged since the last
    /// refresh are left out while the picture still shows them: they are reported by the next
    /// refresh, never before their messages leave the picture. `Unknown` when the storage does
    /// not remember that far back: then every UID below UIDNEXT not in the picture may be gone.
    pub async fn vanished_since(&self, modseq: u64) -> Result<Vanished> {
        Ok(match self.handle.vanished_since(modseq).await? {
            Vanished::Exact(mut uids) => {
                let mut list = self.list.cursor();
                uids.retain(|u| list.find(*u).is_none());
                Vanished::Exact(uids)
            }
            Vanished::Unknown => Vanished::Unknown,
        })
    }

    /// COPY to another mailbox of the same user.
    pub async fn copy(&self, uids: &[u32], dest: &str) -> Result<CopyResult> {
        self.handle.copy(uids.to_vec(), dest, false).await
    }

    /// MOVE: copies, expunges the sources and refreshes.
    pub async fn move_to(&mut self, uids: &[u32], dest: &str) -> Result<(CopyResult, Delta)> {
        if self.options.read_only {
            return Err(StorageError::ReadOnly);
        }
        let res = self.handle.copy(uids.to_vec(), dest, true).await?;
        let delta = self.refresh().await?;
        Ok((res, delta))
    }

    /// Opens a message and reads up to `max_head` of its first bytes along (see
    /// [`MailboxHandle::open_message`]); `Expunged` when another session removed it.
    pub async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message> {
        self.handle.open_message(uid, max_head).await
    }

    /// Reads `uids` in one backend call, each as `part` asks (`None`: expunged); see
    /// [`MailboxHandle::read_messages`]. The caller bounds the batch by the sizes it knows.
    pub async fn read_messages(
        &self,
        uids: Vec<u32>,
        part: ReadPart,
    ) -> Result<Vec<Option<Bytes>>> {
        let n = uids.len();
        let got = self.handle.read_messages(uids, part).await?;
        if got.len() != n {
            // A backend answering out of step would attach bytes to the wrong messages.
            return Err(StorageError::Corrupt(format!(
                "asked for {n} messages, storage answered {}",
                got.len()
            )));
        }
        Ok(got)
    }

    /// The INTERNALDATEs of `uids` (Unix seconds), reading those this picture does not know
    /// yet with one storage call (a first look at Maildir files reads none). A message not in
    /// the view, or whose file vanished before its date could be read, has no date in the
    /// answer: treat it as expunged. Dates read are kept in the picture, so asking again is free.
    pub async fn internal_dates(&mut self, uids: &[u32]) -> Result<InternalDates> {
        let mut list = self.list.cursor();
        let unknown: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| {
                list.find(*u)
                    .is_some_and(|(_, m)| !m.internal_date.is_read())
            })
            .collect();
        if !unknown.is_empty() {
            for (uid, date) in self.handle.resolve_dates(unknown).await? {
                if let Some(i) = self.list.position(uid) {
                    self.list.update(i, |m| {
                        if !m.internal_date.is_read() {
                            m.internal_date = InternalDate::at(date);
                        }
                    });
                }
            }
        }
        let mut list = self.list.cursor();
        let dates = uids
            .iter()
            .filter_map(|&u| Some((u, list.find(u)?.1.internal_date.get()?)));
        if uids.is_sorted_by(|a, b| a < b) {
            Ok(InternalDates::from_sorted(dates.collect()))
        } else {
            Ok(dates.collect())
        }
    }

    /// Cached blobs for `uids`.
    pub async fn cache_get(&self, uids: &[u32], field: CacheField) -> Result<Vec<Option<Bytes>>> {
        self.handle
            .cache_get_prefix(uids.to_vec(), field, usize::MAX)
            .await
    }

    /// Cached blobs for a prefix of `uids` within `max_bytes` (see
    /// [`MailboxHandle::cache_get_prefix`]).
    pub async fn cache_get_prefix(
        &self,
        uids: &[u32],
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>> {
        self.handle
            .cache_get_prefix(uids.to_vec(), field, max_bytes)
            .await
    }

    /// Stores cached blobs.
    pub async fn cache_put(&self, field: CacheField, entries: Vec<(u32, Bytes)>) -> Result<()> {
        self.handle.cache_put_fields(vec![(field, entries)]).await
    }

    /// Stores cached blobs of several fields at once.
    pub async fn cache_put_fields(
        &self,
        fields: Vec<(CacheField, Vec<(u32, Bytes)>)>,
    ) -> Result<()> {
        self.handle.cache_put_fields(fields).await
    }

    /// SAVEDATE, EMAILID and THREADID of `uids` (see [`MailboxHandle::objects`]); a message
    /// that is gone is left out.
    pub async fn objects(&self, uids: &[u32]) -> Result<Vec<super::MessageObject>> {
        self.handle.objects(uids.to_vec()).await
    }

    /// POP3: records that `uids` were downloaded (first time only).
    pub async fn pop3_mark_downloaded(&self, uids: &[u32]) -> Result<()> {
        self.handle.pop3_mark_downloaded(uids.to_vec()).await
    }
}

/// Compares two pictures; fills expunges and flag changes, returns how many
/// messages are new.
fn diff(old: &MessageList, new: &MessageList, delta: &mut Delta) -> usize {
    if old.same_chunks(new) {
        return 0;
    }
    let mut old = old.iter().enumerate().peekable();
    let mut new = new.iter().enumerate().peekable();
    let mut new_count = 0usize;
    loop {
        match (old.peek(), new.peek()) {
            (Some((oi, o)), Some((ni, n))) => {
                if o.uid == n.uid {
                    if o.flags != n.flags || o.modseq != n.modseq {
                        delta.flag_changes.push(seq(*ni));
                    }
                    old.next();
                    new.next();
                } else if o.uid < n.uid {
                    delta.expunged.push(seq(*oi));
                    delta.expunged_uids.push(o.uid);
                    old.next();
                } else {
                    new_count += 1;
                    new.next();
                }
            }
            (Some((oi, o)), None) => {
                delta.expunged.push(seq(*oi));
                delta.expunged_uids.push(o.uid);
                old.next();
            }
            (None, Some(_)) => {
                new_count += 1;
                new.next();
            }
            (None, None) => break,
        }
    }
    new_count
}

fn seq(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}
