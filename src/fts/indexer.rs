//! The background indexer: brings a mailbox's full-text index up to date with its messages.
//!
//! A search that finds UIDs the index does not cover scans them and [`spawn`]s a job for them; a
//! job runs at most once per mailbox at a time and at most [`FTS_INDEX_JOBS`] in the process, in
//! steps of [`FTS_INDEX_STEP_BYTES`] read through the storage trait and indexed on the blocking
//! pool ([`crate::compute::run`]), never on the runtime's workers. Each step is one commit: a
//! crash loses at most the step under way, which is simply not covered and is indexed again.
//!
//! Mail that arrives (APPEND, MULTIAPPEND, LMTP and `deliver`, COPY and MOVE) is indexed without
//! waiting for a search: after its commit the storage backend calls [`enqueue`], which never
//! waits (a full queue drops the request: the next search catches up anyway). One worker per
//! process takes the queued mailboxes one at a time, each [`FTS_QUEUE_DELAY`] after it was
//! queued, so a burst of deliveries into a mailbox (queued once: the queue holds a mailbox at
//! most once) becomes one job.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, OnceLock};

use parking_lot::Mutex;
use tokio::sync::{Semaphore, mpsc};

use super::{FtsDoc, FtsIndex, text::message_text};
use crate::limits::{
    FTS_INDEX_JOBS, FTS_INDEX_STEP_BYTES, FTS_INDEX_STEP_MESSAGES, FTS_QUEUE_DELAY, FTS_QUEUE_SIZE,
    MAX_SEARCH_MESSAGE_BYTES,
};
use crate::storage::{MailboxHandle, OpenOptions, ReadPart, Result, StorageError, UserStore};

/// How the indexer opens a mailbox: reading only, taking no `\Recent`, watching nothing.
const INDEX_VIEW: OpenOptions = OpenOptions {
    read_only: true,
    claim_recent: false,
    watch: false,
};

/// Mailbox keys with a job running or queued.
static RUNNING: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
static JOBS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(FTS_INDEX_JOBS));

/// Messages of one mailbox to index.
pub struct Job {
    /// Where the messages are read from.
    pub handle: Arc<dyn MailboxHandle>,
    /// The user's index.
    pub fts: Arc<dyn FtsIndex>,
    /// [`super::mailbox_key`] of the mailbox.
    pub key: String,
    /// `(uid, size in bytes)` of the messages, ascending.
    pub todo: Vec<(u32, u64)>,
    /// Expunged messages to drop from the index first.
    pub gone: Vec<u32>,
}

/// Removes the key from [`RUNNING`] however the job ends.
struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.lock().remove(&self.0);
    }
}

/// True while a job for mailbox `key` is queued or running.
pub fn is_running(key: &str) -> bool {
    RUNNING.lock().contains(key)
}

/// Starts indexing `job` in the background unless a job for the mailbox is already there; never
/// waits. Needs a tokio runtime.
pub fn spawn(job: Job) {
    if (job.todo.is_empty() && job.gone.is_empty()) || !RUNNING.lock().insert(job.key.clone()) {
        return;
    }
    let running = Running(job.key.clone());
    tokio::spawn(async move {
        let _running = running;
        let key = job.key.clone();
        match run(job).await {
            Ok(n) => tracing::debug!(mailbox = %key, messages = n, "full-text index caught up"),
            Err(e) => tracing::warn!(mailbox = %key, error = %e, "full-text indexing stopped"),
        }
    });
}

/// Indexes `job` now (waiting for a job slot), returning how many messages were indexed; the
/// admin rebuild and [`spawn`] use it.
pub async fn run(job: Job) -> Result<usize> {
    let _slot = JOBS
        .acquire()
        .await
        .map_err(|e| StorageError::Temporary(e.to_string()))?;
    if !job.gone.is_empty() {
        let (fts, key, gone) = (job.fts.clone(), job.key.clone(), job.gone.clone());
        crate::compute::run(move || fts.remove(&key, &gone)).await??;
    }
    let mut done = 0;
    for step in steps(&job.todo) {
        let uids: Vec<u32> = step.iter().map(|(u, _)| *u).collect();
        let part = ReadPart::Whole {
            cap: MAX_SEARCH_MESSAGE_BYTES,
        };
        let raws = job.handle.read_messages(uids.clone(), part).await?;
        let fts = job.fts.clone();
        let key = job.key.clone();
        done += crate::compute::run(move || {
            let docs: Vec<FtsDoc> = uids
                .into_iter()
                .zip(raws)
                // Expunged meanwhile: nothing to index.
                .filter_map(|(uid, raw)| {
                    Some(FtsDoc {
                        uid,
                        text: message_text(&raw?),
                    })
                })
                .collect();
            let n = docs.len();
            fts.add(&key, docs).map(|()| n)
        })
        .await??;
        tokio::task::yield_now().await;
    }
    Ok(done)
}

/// Indexes every message of mailbox `name` again (after dropping what the index had for it):
/// `mailcove index rebuild --fts`. Returns how many were indexed.
pub async fn rebuild(store: &dyn UserStore, fts: Arc<dyn FtsIndex>, name: &str) -> Result<usize> {
    let view = store.open(name, INDEX_VIEW).await?;
    let identity = view.identity().ok_or(StorageError::Cannot(
        "this backend keeps no full-text index",
    ))?;
    let key = super::mailbox_key(&identity, view.uidvalidity());
    let (f, k) = (fts.clone(), key.clone());
    crate::compute::run(move || {
        let old = f.covered(&k)?;
        f.remove(&k, &old)
    })
    .await??;
    let todo = view
        .messages()
        .iter()
        .map(|m| (m.uid, m.phys_size))
        .collect();
    run(Job {
        handle: view.handle(),
        fts,
        key,
        todo,
        gone: Vec::new(),
    })
    .await
}

/// A mailbox whose new mail is to be indexed ([`enqueue`]).
struct Queued {
    store: Arc<dyn UserStore>,
    mailbox: String,
    /// Identifies the user's mailbox in [`QUEUED`].
    dedup: String,
    /// Instead of indexing: the storage identity of a deleted (or renamed) mailbox whose
    /// entries are dropped ([`FtsIndex::remove_mailbox`]).
    purge: Option<String>,
    /// When it was queued.
    at: tokio::time::Instant,
}

/// Mailboxes (their `dedup` strings) waiting in the queue.
static QUEUED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));
/// The queue of the process's worker, made with the worker on the first [`enqueue`].
static QUEUE: OnceLock<mpsc::Sender<Queued>> = OnceLock::new();

/// Asks the background worker to index the messages of mailbox `mailbox` of `store` that its
/// index does not cover, soon ([`FTS_QUEUE_DELAY`]). `dedup` names the user's mailbox uniquely in
/// the process: a mailbox already queued is not queued again. Never waits: without a tokio
/// runtime, or with the queue full ([`FTS_QUEUE_SIZE`]), nothing is queued and the next search
/// of the mailbox starts the indexing instead.
pub fn enqueue(store: Arc<dyn UserStore>, mailbox: String, dedup: String) {
    push(store, mailbox, dedup, None);
}

/// Asks the background worker to drop the index entries of the mailbox whose storage identity
/// was `identity` ([`crate::storage::MailboxHandle::identity`]): it was deleted or renamed away.
/// Never waits; dropped when the queue is full (the entries are then never asked about: a
/// mailbox made again has another UIDVALIDITY, and `mailcove index rebuild --fts` drops them).
pub fn enqueue_purge(store: Arc<dyn UserStore>, identity: String) {
    let dedup = format!("purge\u{0}{identity}");
    push(store, String::new(), dedup, Some(identity));
}

fn push(store: Arc<dyn UserStore>, mailbox: String, dedup: String, purge: Option<String>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if !QUEUED.lock().insert(dedup.clone()) {
        return;
    }
    let tx = QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel(FTS_QUEUE_SIZE);
        rt.spawn(worker(rx));
        tx
    });
    let item = Queued {
        store,
        mailbox,
        dedup: dedup.clone(),
        purge,
        at: tokio::time::Instant::now(),
    };
    if tx.try_send(item).is_err() {
        QUEUED.lock().remove(&dedup);
        tracing::debug!("full-text indexing queue full; the next search catches up");
    }
}

/// The worker: one queued mailbox at a time.
async fn worker(mut rx: mpsc::Receiver<Queued>) {
    while let Some(q) = rx.recv().await {
        tokio::time::sleep_until(q.at + FTS_QUEUE_DELAY).await;
        // Mail arriving from now on queues the mailbox again.
        QUEUED.lock().remove(&q.dedup);
        if let Some(identity) = q.purge {
            match purge(q.store.as_ref(), identity.clone()).await {
                Ok(remaining) => tracing::debug!(
                    %identity,
                    remaining,
                    "full-text index entries of a removed mailbox dropped"
                ),
                Err(e) => tracing::debug!(
                    %identity,
                    error = %e,
                    "cannot drop full-text index entries"
                ),
            }
            continue;
        }
        match catch_up(q.store.as_ref(), &q.mailbox).await {
            Ok(Some((done, covered))) => tracing::debug!(
                mailbox = %q.mailbox,
                indexed = done,
                covered,
                "full-text index updated after delivery"
            ),
            Ok(None) => {}
            Err(e) => tracing::debug!(
                mailbox = %q.mailbox,
                error = %e,
                "full-text indexing after delivery stopped; the next search catches up"
            ),
        }
    }
}

/// Drops the index entries of the mailbox whose storage identity was `identity`; returns how
/// many messages the index holds then.
async fn purge(store: &dyn UserStore, identity: String) -> Result<u64> {
    let Some(fts) = store.fts().await? else {
        return Ok(0);
    };
    crate::compute::run(move || {
        fts.remove_mailbox(&identity)?;
        fts.status().map(|s| s.messages)
    })
    .await?
}

/// Indexes the messages of mailbox `name` its index does not cover and drops the expunged ones,
/// after any job for the mailbox under way. Returns how many were indexed and how many the
/// index covers then; `None` when the backend keeps no index.
pub async fn catch_up(store: &dyn UserStore, name: &str) -> Result<Option<(usize, usize)>> {
    let Some(fts) = store.fts().await? else {
        return Ok(None);
    };
    let view = store.open(name, INDEX_VIEW).await?;
    let Some(identity) = view.identity() else {
        return Ok(None);
    };
    let key = super::mailbox_key(&identity, view.uidvalidity());
    // One job per mailbox: wait for one a search started.
    let deadline = tokio::time::Instant::now() + crate::limits::FTS_WRITER_LOCK_WAIT;
    let running = loop {
        if RUNNING.lock().insert(key.clone()) {
            break Running(key.clone());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StorageError::Temporary("indexing job still running".into()));
        }
        tokio::time::sleep(FTS_QUEUE_DELAY).await;
    };
    let (f, k) = (fts.clone(), key.clone());
    let covered = crate::compute::run(move || f.covered(&k)).await??;
    let todo: Vec<(u32, u64)> = view
        .messages()
        .iter()
        .filter(|m| covered.binary_search(&m.uid).is_err())
        .map(|m| (m.uid, m.phys_size))
        .collect();
    let uidnext = view.uidnext();
    let gone: Vec<u32> = covered
        .iter()
        .copied()
        .filter(|&u| u < uidnext && view.seq_of(u).is_none())
        .collect();
    let total = covered.len() - gone.len() + todo.len();
    let done = if todo.is_empty() && gone.is_empty() {
        0
    } else {
        run(Job {
            handle: view.handle(),
            fts,
            key,
            todo,
            gone,
        })
        .await?
    };
    drop(running);
    Ok(Some((done, total)))
}

/// `todo` cut into steps of at most [`FTS_INDEX_STEP_BYTES`] (one message at least) and
/// [`FTS_INDEX_STEP_MESSAGES`].
fn steps(todo: &[(u32, u64)]) -> Vec<&[(u32, u64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0u64;
    for (i, (_, size)) in todo.iter().enumerate() {
        let size = (*size).min(MAX_SEARCH_MESSAGE_BYTES as u64);
        if i > start
            && (bytes + size > FTS_INDEX_STEP_BYTES || i - start >= FTS_INDEX_STEP_MESSAGES)
        {
            out.extend(todo.get(start..i));
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < todo.len() {
        out.extend(todo.get(start..));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_bounded_and_keep_every_message_in_order() {
        let half = FTS_INDEX_STEP_BYTES / 2;
        // A message counts with at most what is read of it (the search cap).
        let huge = FTS_INDEX_STEP_BYTES * 4;
        let todo = vec![(1, 10), (2, half), (3, half), (4, 1), (5, huge), (6, 1)];
        let s = steps(&todo);
        let uids: Vec<Vec<u32>> = s
            .iter()
            .map(|p| p.iter().map(|(u, _)| *u).collect())
            .collect();
        let cap = MAX_SEARCH_MESSAGE_BYTES as u64;
        assert!(cap <= half, "test assumes the cap fits half a step");
        assert_eq!(uids, vec![vec![1, 2], vec![3, 4], vec![5, 6]]);
        let many: Vec<(u32, u64)> = (0..(FTS_INDEX_STEP_MESSAGES as u32 + 1))
            .map(|u| (u, 1))
            .collect();
        assert_eq!(steps(&many).len(), 2);
        assert!(steps(&[]).is_empty());
    }
}
