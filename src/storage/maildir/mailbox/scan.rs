//! Finding changes made by others.
//!
//! * mailcove processes log every change in `mailcove-index.log`; replaying
//!   the new tail is cheap.
//! * `new/` is read on every sync: it is where MTAs drop mail, mailcove
//!   never writes there, and it is normally empty, so a readdir costs
//!   microseconds.
//! * `cur/` (100,000 files) is read only when its mtime differs from the one
//!   recorded when we last knew it, when that record was taken within
//!   [`DIR_MTIME_SETTLE_NS`] of the change (a later change in the same clock
//!   tick would not move the mtime: we rescan once it has settled), when
//!   inotify reported a name we do not know, or when a file we expected
//!   vanished.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::limits::{DIR_MTIME_SETTLE_NS, OWN_NAMES_MAX};
use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{DirNames, mtime_ns, now_ns};
use crate::storage::maildir::index::{Entry, Record};
use crate::storage::{Result, StorageError};

use super::hasher::BuildFx;
use super::keywords::name_flags;
use super::listing::{make_found, read_names, sort_found};
use super::{Ctx, Inner, MailboxState, dir_mtime};

impl MailboxState {
    /// Forces a full rescan (a file we expected was not there).
    pub(crate) fn rescan(&self) -> Result<()> {
        self.locked(|inner, ctx| {
            let found = inner.scan(ctx, true)?;
            inner.apply_all(found.clone());
            Ok(((), found))
        })
    }
}

impl Inner {
    /// After our own change in `cur/`: if nobody else had changed it since
    /// we last knew it, we still know it.
    pub(super) fn own_cur_change(&mut self, cur: &Path, pre: Option<i64>) {
        if pre.is_some()
            && pre == Some(self.hdr.cur_mtime)
            && let Some(post) = dir_mtime(cur)
        {
            self.hdr.cur_mtime = post;
            self.hdr.cur_uncertain = true;
        }
    }

    /// Remembers a name in `cur/` that we ourselves created or removed, so
    /// its inotify event is not taken for someone else's change.
    pub(super) fn note_own(&mut self, name: &str) {
        if self.own_names.len() >= OWN_NAMES_MAX {
            // Events for the forgotten names cost one spurious rescan.
            self.own_names.clear();
        }
        *self.own_names.entry(name.into()).or_insert(0) += 1;
    }

    /// Decides from queued inotify events whether `cur/` holds something
    /// we did not do ourselves.
    fn events_say_dirty(&mut self, ctx: &Ctx<'_>) -> bool {
        let events = std::mem::take(&mut *ctx.state.events.lock());
        let cur = ctx.dir.join("cur");
        let mut dirty = false;
        for p in events {
            if p.parent() != Some(cur.as_path()) {
                continue;
            }
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            match self.own_names.get_mut(name) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    self.own_names.remove(name);
                }
                None => dirty = true,
            }
        }
        dirty
    }

    /// Looks at `new/` (always) and `cur/` (when it may have changed) and
    /// returns records for what others did: new files, flag renames, removals.
    ///
    /// The directory listing goes into a map and the index is walked in
    /// UID order against it: one hash probe per message and sequential
    /// access to our own arrays, instead of random lookups into them.
    pub(super) fn scan(&mut self, ctx: &Ctx<'_>, force_cur: bool) -> Result<Vec<Record>> {
        let cur = ctx.dir.join("cur");
        // A Maildir made by a tool that skipped new/ is still a mailbox.
        let new_names = match read_names(&ctx.dir.join("new")) {
            Err(StorageError::NonExistent) => DirNames::default(),
            other => other?,
        };
        let cur_meta = std::fs::metadata(&cur).map_err(|e| StorageError::io("stat cur", e))?;
        let cur_mtime = mtime_ns(&cur_meta);
        let now = now_ns();
        let events_dirty = self.events_say_dirty(ctx);
        let mut settle_scan =
            self.hdr.cur_uncertain && now.saturating_sub(self.hdr.cur_mtime) >= DIR_MTIME_SETTLE_NS;
        if settle_scan && cur_mtime == self.hdr.cur_mtime {
            // A change hidden in the same mtime tick as our last record
            // would still have produced an inotify event if the watch was
            // already in place then; its absence settles the record
            // without reading 100,000 names.
            let since = ctx.state.watched_since.load(Ordering::SeqCst);
            if since != 0 && since.saturating_add(DIR_MTIME_SETTLE_NS) <= self.hdr.cur_mtime {
                self.hdr.cur_uncertain = false;
                settle_scan = false;
            }
        }
        let mut need_cur = force_cur
            || events_dirty
            || ctx.state.dirty.swap(false, Ordering::Relaxed)
            || cur_mtime != self.hdr.cur_mtime
            || settle_scan;
        if !need_cur && self.maybe_in_new {
            // A file we think is in new/ but is not: someone moved it to cur/.
            let new_set: HashSet<&str> = new_names.iter().collect();
            need_cur = self
                .files
                .iter()
                .any(|f| f.in_new && !new_set.contains(&*f.name));
        }
        if !need_cur && new_names.is_empty() {
            return Ok(Vec::new());
        }
        let cur_names = if need_cur {
            read_names(&cur)?
        } else {
            DirNames::default()
        };
        // base -> (full name, in new/); cur/ wins over new/ for one base.
        let mut listing: HashMap<&str, (&str, bool), BuildFx> = HashMap::with_capacity_and_hasher(
            cur_names.len() + new_names.len(),
            BuildFx::default(),
        );
        for n in new_names.iter() {
            listing.insert(filename::base_of(n), (n, true));
        }
        for n in cur_names.iter() {
            listing.insert(filename::base_of(n), (n, false));
        }
        let kw = self.keywords.len();
        let mut records = Vec::new();
        let mut modseq = self.hdr.highest_modseq;
        for (m, f) in self.list.iter().zip(self.files.iter()) {
            match listing.remove(filename::base_of(&f.name)) {
                Some((name, in_new)) => {
                    if &*f.name == name && f.in_new == in_new {
                        continue;
                    }
                    if !need_cur && in_new && !f.in_new {
                        // Only new/ was listed; this is a second copy of
                        // a base we already have elsewhere.
                        continue;
                    }
                    let flags = name_flags(name, kw, &m.flags.keywords);
                    let ms = if flags != m.flags {
                        modseq = modseq.saturating_add(1);
                        modseq
                    } else {
                        0
                    };
                    records.push(Record::Rename {
                        uid: m.uid,
                        modseq: ms,
                        in_new,
                        name: name.to_owned(),
                    });
                }
                None if need_cur => {
                    // Gone, unless readdir raced with a rename.
                    if self.file_path(ctx.dir, f).exists() {
                        continue;
                    }
                    modseq = modseq.saturating_add(1);
                    records.push(Record::Expunge { uid: m.uid, modseq });
                }
                None => {}
            }
        }
        self.hdr.highest_modseq = modseq;
        if need_cur {
            self.hdr.cur_mtime = cur_mtime;
            self.hdr.cur_uncertain = now.saturating_sub(cur_mtime) < DIR_MTIME_SETTLE_NS;
        }
        // What is left in the listing is new to us.
        let found = make_found(ctx.dir, listing.into_values())?;
        for f in sort_found(&found)
            .into_iter()
            .filter_map(|i| found.get(i as usize))
        {
            let uid = self.hdr.uidnext;
            self.hdr.uidnext = self.hdr.uidnext.saturating_add(1);
            self.hdr.highest_modseq = self.hdr.highest_modseq.saturating_add(1);
            records.push(Record::Append(Entry {
                uid,
                modseq: self.hdr.highest_modseq,
                date: f.date,
                phys: f.phys,
                virt: f.virt,
                dl: 0,
                in_new: f.in_new,
                name: f.name.to_owned(),
            }));
        }
        Ok(records)
    }

    /// Moves files a view has now seen from `new/` to `cur/`, as Dovecot does.
    pub(super) fn move_new_to_cur(&mut self, ctx: &Ctx<'_>) -> Result<Vec<Record>> {
        if !self.maybe_in_new {
            return Ok(Vec::new());
        }
        let mut pending: Vec<(u32, String, String)> = Vec::new();
        for (m, f) in self.list.iter().zip(self.files.iter()) {
            if f.in_new {
                let new_name = if f.name.contains(":2,") {
                    f.name.to_string()
                } else {
                    format!("{}:2,", filename::base_of(&f.name))
                };
                pending.push((m.uid, f.name.to_string(), new_name));
            }
        }
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let cur = ctx.dir.join("cur");
        let pre = dir_mtime(&cur);
        let mut records = Vec::new();
        for (uid, old, new_name) in pending {
            match std::fs::rename(ctx.dir.join("new").join(&old), cur.join(&new_name)) {
                Ok(()) => {
                    self.note_own(&new_name);
                    records.push(Record::Rename {
                        uid,
                        modseq: 0,
                        in_new: false,
                        name: new_name,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    ctx.state.dirty.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(StorageError::io("move new to cur", e)),
            }
        }
        self.own_cur_change(&cur, pre);
        Ok(records)
    }
}
