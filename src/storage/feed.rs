//! The per-user change feed: mailbox-level events (new message, expunge, flag change, mailbox
//! created/deleted/renamed, subscription changed, metadata changed) published once per user and
//! shared by every session of that user. IMAP NOTIFY (RFC 5465) reads it.
//!
//! The feed is a bounded broadcast channel: every subscriber has its own cursor into one shared
//! ring of [`crate::limits::NOTIFY_FEED_CAPACITY`] events, so a session costs one receiver, not a
//! queue, and a session that falls behind is told it lost events (the RFC's
//! `[NOTIFICATIONOVERFLOW]`) instead of holding memory. The channel exists only while someone
//! listens: with no subscriber, publishing is a lock and a check.
//!
//! Events name mailboxes (UTF-8, wire separator), never views or files: a backend publishes what
//! it changes itself in process; the Maildir backend adds what inotify sees of other writers
//! (an MTA writing `new/` directly) from one watch set per user.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::broadcast;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Messages were added (APPEND, COPY, MOVE, delivery).
    MessageNew,
    /// Messages were expunged.
    MessageExpunge,
    /// Flags of messages changed.
    FlagChange,
    /// Messages changed in a way the backend could not classify (a file renamed by another
    /// process): any of the three message events.
    MessagesChanged,
    /// The mailbox was created.
    MailboxCreated,
    /// The mailbox was deleted.
    MailboxDeleted,
    /// The mailbox was renamed from `old` (its children with it; one event for the top).
    MailboxRenamed {
        /// The name before the rename.
        old: String,
    },
    /// The mailbox was subscribed or unsubscribed.
    SubscriptionChanged,
    /// Metadata entries (RFC 5464) of the mailbox, or of the server when the event names no
    /// mailbox, changed (set or removed).
    MetadataChanged {
        /// The entry names, e.g. `/shared/comment`.
        entries: Vec<String>,
    },
}

impl ChangeKind {
    /// True for the events about messages inside a mailbox.
    pub fn is_message_event(&self) -> bool {
        matches!(
            self,
            ChangeKind::MessageNew
                | ChangeKind::MessageExpunge
                | ChangeKind::FlagChange
                | ChangeKind::MessagesChanged
        )
    }
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The mailbox (UTF-8, wire separator); `None` only for server metadata.
    pub mailbox: Option<String>,
    /// What happened.
    pub kind: ChangeKind,
    /// The [`UserStore`](super::UserStore) that made the change ([`UserStore::origin`]
    /// (super::UserStore::origin)); 0 when unknown (another process). A session skips its own
    /// changes (RFC 5465 5: the server SHOULD NOT notify a client of what it did itself).
    pub origin: u64,
}

/// A fresh origin id for a [`UserStore`](super::UserStore) instance (never 0).
pub fn next_origin() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One user's feed; see the module docs.
#[derive(Default)]
pub struct ChangeFeed {
    tx: Mutex<Option<broadcast::Sender<Arc<Change>>>>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeFeed")
    }
}

impl ChangeFeed {
    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        let mut tx = self.tx.lock();
        match tx.as_ref() {
            Some(t) => t.subscribe(),
            None => {
                let (t, rx) = broadcast::channel(crate::limits::NOTIFY_FEED_CAPACITY);
                *tx = Some(t);
                rx
            }
        }
    }

    /// Publishes an event to every current subscriber; drops the channel when nobody listens.
    pub fn publish(&self, change: Change) {
        let mut tx = self.tx.lock();
        if let Some(t) = tx.as_ref() {
            if t.receiver_count() == 0 {
                *tx = None;
            } else {
                let _ = t.send(Arc::new(change));
            }
        }
    }

    /// True while someone listens (a backend skips work for a feed nobody reads).
    pub fn has_subscribers(&self) -> bool {
        self.tx
            .lock()
            .as_ref()
            .is_some_and(|t| t.receiver_count() > 0)
    }
}

/// What went wrong reading a [`FeedSubscription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedError {
    /// The subscriber fell more than [`crate::limits::NOTIFY_FEED_CAPACITY`] events behind:
    /// events were lost (IMAP `* OK [NOTIFICATIONOVERFLOW]`).
    Overflow,
    /// The feed is gone (the backend shut down).
    Closed,
}

/// A session's subscription to its user's feed; what [`UserStore::subscribe_changes`]
/// (super::UserStore::subscribe_changes) returns. Dropping it ends the subscription (and, for
/// Maildir, the user's watch set when it was the last one).
pub struct FeedSubscription {
    rx: broadcast::Receiver<Arc<Change>>,
    origin: u64,
    _guard: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for FeedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedSubscription")
            .field("origin", &self.origin)
            .finish()
    }
}

impl FeedSubscription {
    /// A subscription to `feed` for the store `origin`, keeping `guard` alive while it lives.
    pub fn new(
        feed: &ChangeFeed,
        origin: u64,
        guard: Option<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        FeedSubscription {
            rx: feed.subscribe(),
            origin,
            _guard: guard,
        }
    }

    /// The origin id of the store that subscribed (its own changes carry it).
    pub fn origin(&self) -> u64 {
        self.origin
    }

    /// The next event, waiting for one.
    pub async fn recv(&mut self) -> Result<Arc<Change>, FeedError> {
        match self.rx.recv().await {
            Ok(c) => Ok(c),
            Err(broadcast::error::RecvError::Lagged(_)) => Err(FeedError::Overflow),
            Err(broadcast::error::RecvError::Closed) => Err(FeedError::Closed),
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<Option<Arc<Change>>, FeedError> {
        match self.rx.try_recv() {
            Ok(c) => Ok(Some(c)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Err(FeedError::Overflow),
            Err(broadcast::error::TryRecvError::Closed) => Err(FeedError::Closed),
        }
    }
}
