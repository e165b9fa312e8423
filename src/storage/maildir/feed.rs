//! The Maildir side of the per-user change feed ([`crate::storage::feed`]).
//!
//! * What mailcove changes itself in mailbox names, subscriptions and metadata is published in
//!   process by [`super::user_store`].
//! * Message changes (by mailcove or by anyone else: an MTA writing `new/`, another server
//!   process) are seen by inotify. While at least one session of a user listens, the user has ONE
//!   [`WatchSet`]: a watch on `new/` and `cur/` of each of the user's selectable mailboxes, all
//!   in ONE inotify watcher per daemon. Sessions share it through their subscription (an `Arc`),
//!   so a connection costs a feed cursor, never a watch per mailbox; the last subscription to go
//!   removes the watches. Mailboxes created, renamed or deleted by mailcove update the set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher as _};
use parking_lot::Mutex;

use super::storage::Shared;
use super::user::UserCtx;
use crate::storage::names::MailboxName;
use crate::storage::{Change, ChangeFeed, ChangeKind, Result};

/// The daemon's feed registry: one [`UserFeed`] per user root, and the one inotify watcher that
/// serves every user's [`WatchSet`].
#[derive(Default)]
pub(crate) struct Feeds {
    users: Mutex<HashMap<PathBuf, Weak<UserFeed>>>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Watched `new/` or `cur/` directory -> its user and mailbox name.
    dirs: Mutex<HashMap<PathBuf, (Weak<UserFeed>, String)>>,
}

/// One user's feed and, while anyone listens, its watch set.
#[derive(Default)]
pub(crate) struct UserFeed {
    pub(crate) feed: ChangeFeed,
    watch: Mutex<Weak<WatchSet>>,
}

/// The inotify watches of one user; dropped with the last subscription.
pub(crate) struct WatchSet {
    shared: Weak<Shared>,
    /// Watched directories (`new/` and `cur/` of each mailbox).
    dirs: Mutex<Vec<PathBuf>>,
}

impl Drop for WatchSet {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let dirs = std::mem::take(&mut *self.dirs.lock());
        unwatch(&shared.feeds, &dirs);
    }
}

fn unwatch(feeds: &Feeds, dirs: &[PathBuf]) {
    {
        let mut map = feeds.dirs.lock();
        for d in dirs {
            map.remove(d);
        }
    }
    if let Some(w) = feeds.watcher.lock().as_mut() {
        for d in dirs {
            let _ = w.unwatch(d);
        }
    }
}

impl Feeds {
    /// The feed of the user whose Maildir is `root` (one per root in the process).
    pub(crate) fn user(&self, root: &Path) -> Arc<UserFeed> {
        let mut users = self.users.lock();
        if let Some(f) = users.get(root).and_then(Weak::upgrade) {
            return f;
        }
        users.retain(|_, w| w.strong_count() > 0);
        let f = Arc::new(UserFeed::default());
        users.insert(root.to_path_buf(), Arc::downgrade(&f));
        f
    }
}

/// Publishes an in-process change of `ctx`'s user.
pub(crate) fn publish(ctx: &UserCtx, mailbox: Option<String>, kind: ChangeKind) {
    ctx.feed.feed.publish(Change {
        mailbox,
        kind,
        origin: ctx.origin,
    });
}

/// The user's watch set, made (and filled) when none is alive. Runs on a blocking thread.
pub(crate) fn watch_set(ctx: &UserCtx) -> Result<Arc<WatchSet>> {
    let mut slot = ctx.feed.watch.lock();
    if let Some(ws) = slot.upgrade() {
        return Ok(ws);
    }
    let ws = Arc::new(WatchSet {
        shared: Arc::downgrade(&ctx.shared),
        dirs: Mutex::new(Vec::new()),
    });
    *slot = Arc::downgrade(&ws);
    drop(slot);
    resync(ctx, &ws)?;
    Ok(ws)
}

/// Brings the user's watch set (if anyone listens) in line with the mailboxes on disk, after a
/// CREATE, DELETE or RENAME. Runs on a blocking thread.
pub(crate) fn rewatch(ctx: &UserCtx) {
    let ws = ctx.feed.watch.lock().upgrade();
    if let Some(ws) = ws
        && let Err(e) = resync(ctx, &ws)
    {
        tracing::warn!(error = %e, "cannot update the NOTIFY watch set");
    }
}

fn resync(ctx: &UserCtx, ws: &WatchSet) -> Result<()> {
    let mut wanted: Vec<(PathBuf, String)> = Vec::new();
    let sep = ctx.sep();
    let mut push = |dir: PathBuf, name: String| {
        for sub in ["new", "cur"] {
            wanted.push((dir.join(sub), name.clone()));
        }
    };
    push(ctx.root.clone(), "INBOX".to_owned());
    for (n, selectable) in ctx.disk_folders()? {
        if selectable {
            push(ctx.dir_of(&n), n.to_wire(sep));
        }
    }
    let feeds = &ctx.shared.feeds;
    let mut dirs = ws.dirs.lock();
    let gone: Vec<PathBuf> = dirs
        .iter()
        .filter(|d| !wanted.iter().any(|(w, _)| w == *d))
        .cloned()
        .collect();
    unwatch(feeds, &gone);
    dirs.retain(|d| !gone.contains(d));
    let mut watcher = feeds.watcher.lock();
    if watcher.is_none() {
        let weak = Arc::downgrade(&ctx.shared);
        match notify::recommended_watcher(move |res| dispatch(&weak, res)) {
            Ok(w) => *watcher = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start inotify; NOTIFY sees only this process's changes");
                return Ok(());
            }
        }
    }
    let Some(w) = watcher.as_mut() else {
        return Ok(());
    };
    let mut map = feeds.dirs.lock();
    for (dir, name) in wanted {
        map.insert(dir.clone(), (Arc::downgrade(&ctx.feed), name));
        if !dirs.contains(&dir) {
            match w.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => dirs.push(dir),
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "cannot watch mailbox for NOTIFY");
                    map.remove(&dir);
                }
            }
        }
    }
    Ok(())
}

/// What one inotify event in `new/` or `cur/` means for NOTIFY; `None` when nothing a client
/// can see changed. A file arriving in `new/` is a new message; a file removed is an expunge;
/// a file leaving `new/` is a session moving it to `cur/` (not a change); the rest in `cur/`
/// (a rename for flags, a move in from `new/` or `tmp/`) cannot be told apart from one event.
fn classify(kind: &EventKind, in_new: bool) -> Option<ChangeKind> {
    match kind {
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) if in_new => {
            Some(ChangeKind::MessageNew)
        }
        EventKind::Remove(_) => Some(ChangeKind::MessageExpunge),
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) if in_new => None,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => None,
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) => {
            Some(ChangeKind::MessagesChanged)
        }
        EventKind::Modify(_) | EventKind::Access(_) => None,
        EventKind::Any | EventKind::Other => Some(ChangeKind::MessagesChanged),
    }
}

fn dispatch(shared: &Weak<Shared>, res: notify::Result<notify::Event>) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let Ok(event) = res else {
        return;
    };
    for path in &event.paths {
        let Some(dir) = path.parent() else {
            continue;
        };
        let in_new = dir.file_name().is_some_and(|n| n == "new");
        let Some(kind) = classify(&event.kind, in_new) else {
            continue;
        };
        let target = shared
            .feeds
            .dirs
            .lock()
            .get(dir)
            .and_then(|(f, name)| f.upgrade().map(|f| (f, name.clone())));
        if let Some((feed, name)) = target {
            feed.feed.publish(Change {
                mailbox: Some(name),
                kind,
                origin: 0,
            });
        }
    }
}

/// The mailbox name of `n` on the wire (for in-process publication).
pub(crate) fn wire(ctx: &UserCtx, n: &MailboxName) -> String {
    n.to_wire(ctx.sep())
}
