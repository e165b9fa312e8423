//! inotify (through the `notify` crate) on `new/` and `cur/` of mailboxes
//! that have live views, and only those: one watcher per daemon, reference
//! counted per mailbox directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher as _};

use super::mailbox::MailboxState;
use super::storage::Shared;

/// The daemon's watcher and how many views want each mailbox watched.
#[derive(Default)]
pub(crate) struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    counts: HashMap<PathBuf, usize>,
}

/// Only name changes matter in `new/` and `cur/`: reading a message
/// (open/close) or touching its data must not look like someone else's
/// change, and inotify reports each rename three times (from, to, and both
/// paths together), of which the combined one is a duplicate.
fn names_changed(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => false,
        EventKind::Modify(ModifyKind::Name(_)) => true,
        EventKind::Modify(_) | EventKind::Access(_) => false,
        EventKind::Any | EventKind::Other => true,
    }
}

fn dispatch(shared: &Weak<Shared>, res: notify::Result<notify::Event>) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let event = match res {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "inotify error; rescanning watched mailboxes");
            shared.poke_all();
            return;
        }
    };
    if event.need_rescan() {
        shared.poke_all();
        return;
    }
    if !names_changed(&event.kind) {
        return;
    }
    for path in event.paths {
        let Some(mailbox) = path.parent().and_then(Path::parent) else {
            continue;
        };
        if let Some(state) = shared.lookup(mailbox) {
            state.fs_event(path);
        }
    }
}

/// Starts watching a mailbox (or counts one more view of it).
pub(crate) fn watch(shared: &Arc<Shared>, state: &MailboxState) {
    let dir = state.dir();
    let mut w = shared.watch.lock();
    if w.watcher.is_none() {
        let weak = Arc::downgrade(shared);
        match notify::recommended_watcher(move |res| dispatch(&weak, res)) {
            Ok(watcher) => w.watcher = Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start inotify; changes by others are seen on the next command");
                return;
            }
        }
    }
    let count = w.counts.entry(dir.to_path_buf()).or_insert(0);
    *count += 1;
    if *count == 1
        && let Some(watcher) = w.watcher.as_mut()
    {
        let mut ok = true;
        for sub in ["new", "cur"] {
            if let Err(e) = watcher.watch(&dir.join(sub), RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch mailbox");
                ok = false;
            }
        }
        if ok {
            state.set_watched(true);
        }
    }
}

/// One view of a mailbox fewer; stops watching at zero.
pub(crate) fn unwatch(shared: &Shared, state: &MailboxState) {
    let dir = state.dir();
    let mut w = shared.watch.lock();
    let Some(count) = w.counts.get_mut(dir) else {
        return;
    };
    *count = count.saturating_sub(1);
    if *count == 0 {
        state.set_watched(false);
        w.counts.remove(dir);
        if let Some(watcher) = w.watcher.as_mut() {
            for sub in ["new", "cur"] {
                let _ = watcher.unwatch(&dir.join(sub));
            }
        }
    }
}
