//! Loading the index: the base and its log replayed, or a rebuild from the message files
//! (adopting `dovecot-uidlist` on first contact).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::Path;

use crate::limits::{DIR_MTIME_SETTLE_NS, MAX_INDEX_BYTES};
use crate::storage::maildir::dovecot::{self, UIDLIST_FILE};
use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{now_ns, read_small, write_atomic};
use crate::storage::maildir::index::{self, BASE_FILE, Header, LOG_FILE};
use crate::storage::{MessageList, MessageMeta, Result, StorageError};

use super::append::clean_tmp;
use super::keywords::beyond_letters;
use super::listing::{Found, make_found, read_names, sort_found};
use super::prefetch::{PREFETCH_AHEAD, prefetch};
use super::uidvalidity::alloc_uidvalidity;
use super::{Ctx, FileRec, Inner, dir_mtime, stamp_of};

/// Generation and header length of a log file.
fn log_generation(path: &Path) -> Option<(u64, usize)> {
    let mut buf = [0u8; 64];
    let f = File::open(path).ok()?;
    let n = f.read_at(&mut buf, 0).ok()?;
    index::parse_log_header(buf.get(..n)?)
}

impl Inner {
    /// Loads or catches up with the index on disk; the flock is held.
    pub(super) fn catch_up(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        if !self.loaded || stamp_of(&base_path) != self.base_stamp {
            return self.load(ctx);
        }
        self.reload_keywords(ctx.dir)?;
        self.replay_log(ctx)
    }

    fn replay_log(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let Some(log) = self.log.as_ref() else {
            return Ok(());
        };
        let len = log
            .metadata()
            .map_err(|e| StorageError::io("stat log", e))?
            .len();
        if len <= self.log_offset {
            return Ok(());
        }
        let want = usize::try_from(len - self.log_offset).unwrap_or(usize::MAX);
        if want > MAX_INDEX_BYTES {
            return self.rebuild_from_files(ctx, "index log too large");
        }
        let mut buf = vec![0u8; want];
        log.read_exact_at(&mut buf, self.log_offset)
            .map_err(|e| StorageError::io("read log", e))?;
        let (records, good) = index::parse_log(&buf);
        if good < buf.len() {
            if index::valid_record_after(&buf, good) {
                // Damage in the middle, not a torn end: the records after it
                // (and the UIDs they gave out) cannot be trusted.
                return self.rebuild_from_files(ctx, "index log damaged");
            }
            // A writer died mid-record; we hold the lock, so cut the tail.
            tracing::warn!(dir = %ctx.dir.display(), "cutting torn index log tail");
            log.set_len(self.log_offset + good as u64)
                .map_err(|e| StorageError::io("truncate log", e))?;
        }
        self.log_offset += good as u64;
        self.log_records += records.len();
        self.apply_all(records);
        Ok(())
    }

    /// Starts over from the message files with a new UIDVALIDITY.
    fn rebuild_from_files(&mut self, ctx: &Ctx<'_>, why: &str) -> Result<()> {
        tracing::warn!(dir = %ctx.dir.display(), why, "rebuilding index with a new UIDVALIDITY");
        self.list = MessageList::default();
        self.files.clear();
        self.own_names.clear();
        self.cache = None;
        self.rebuild(ctx)?;
        self.version += 1;
        Ok(())
    }

    fn load(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        let stamp = stamp_of(&base_path);
        let data = match read_small(&base_path, MAX_INDEX_BYTES) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(dir = %ctx.dir.display(), error = %e, "rebuilding index");
                None
            }
        };
        let fresh_load = !self.loaded;
        if fresh_load {
            // Some tools create only cur/ or only new/; we need all three to work.
            let mut b = std::fs::DirBuilder::new();
            b.mode(0o700);
            for sub in ["cur", "new", "tmp"] {
                let _ = b.create(ctx.dir.join(sub));
            }
        }
        let old_uidvalidity = self.hdr.uidvalidity;
        self.list = MessageList::default();
        self.files.clear();
        self.keywords_stamp = None;
        self.more_keywords_stamp = None;
        self.keywords.clear();
        self.keyword_lookup = None;
        self.reload_keywords(ctx.dir)?;
        let n = self.keywords.len();
        let mut metas = Vec::new();
        let mut files = Vec::new();
        let parsed = data.as_deref().map(|d| {
            index::parse_base_with(d, |e| {
                metas.push(MessageMeta {
                    uid: e.uid,
                    flags: filename::flags_of(e.name, n),
                    modseq: e.modseq,
                    phys_size: e.phys,
                    virt_size: e.virt,
                    internal_date: e.date,
                });
                files.push(FileRec {
                    name: e.name.into(),
                    in_new: e.in_new,
                    dl: e.dl,
                });
            })
        });
        match parsed {
            Some(Ok((hdr, beyond))) => {
                for (uid, set) in beyond {
                    if let Ok(i) = metas.binary_search_by_key(&uid, |m| m.uid)
                        && let Some(m) = metas.get_mut(i)
                    {
                        m.flags.keywords.union_with(&beyond_letters(&set));
                    }
                }
                self.hdr = hdr;
                self.base_pending = false;
                self.maybe_in_new = files.iter().any(|f| f.in_new);
                self.files = files;
                self.list = MessageList::from_sorted(metas);
                self.base_stamp = stamp;
                self.open_log(ctx)?;
            }
            Some(Err(e)) => {
                tracing::warn!(dir = %ctx.dir.display(), error = %e, "rebuilding index");
                self.base_stamp = stamp;
                self.rebuild(ctx)?;
            }
            None => {
                self.base_stamp = stamp;
                self.rebuild(ctx)?;
            }
        }
        self.loaded = true;
        self.version += 1;
        if fresh_load {
            clean_tmp(ctx.dir);
        }
        if old_uidvalidity != 0 && old_uidvalidity != self.hdr.uidvalidity {
            self.cache = None;
        }
        Ok(())
    }

    /// Opens the log of our generation and replays it (replacing a missing
    /// or stale one; the base it belongs to is already durable).
    fn open_log(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let path = ctx.dir.join(LOG_FILE);
        let header_len = log_generation(&path)
            .filter(|(g, _)| *g == self.hdr.generation)
            .map(|(_, l)| l);
        let header_len = match header_len {
            Some(l) => l,
            None => {
                let h = index::log_header(self.hdr.generation);
                write_atomic(&path, h.as_bytes(), ctx.fsync)?;
                h.len()
            }
        };
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| StorageError::io("open log", e))?;
        self.log = Some(f);
        self.log_offset = header_len as u64;
        self.log_records = 0;
        self.replay_log(ctx)
    }

    /// Builds the index from the directories, adopting `dovecot-uidlist`.
    fn rebuild(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        // Adopt Dovecot's UIDs only on first contact. Once we have kept an
        // index here (even a damaged one), the uidlist is stale: messages
        // we added since would get UIDs it already gave to others under the
        // same UIDVALIDITY. Then a fresh UIDVALIDITY is the honest answer.
        let ours_existed = ctx.dir.join(BASE_FILE).exists() || ctx.dir.join(LOG_FILE).exists();
        let uidlist = if ours_existed {
            None
        } else {
            read_small(&ctx.dir.join(UIDLIST_FILE), MAX_INDEX_BYTES)
                .ok()
                .flatten()
                .and_then(|d| dovecot::parse_uidlist(&d))
        };
        let (uidvalidity, mut uidnext) = match &uidlist {
            Some(l) => (l.uidvalidity, l.next_uid.max(1)),
            None => (alloc_uidvalidity(ctx.root)?, 1),
        };
        let cur_stamp = dir_mtime(&ctx.dir.join("cur")).unwrap_or(0);
        let log_gen = log_generation(&ctx.dir.join(LOG_FILE)).map_or(0, |(g, _)| g);
        let cur_names = read_names(&ctx.dir.join("cur"))?;
        let new_names = read_names(&ctx.dir.join("new"))?;
        let listed =
            (cur_names.iter().map(|n| (n, false))).chain(new_names.iter().map(|n| (n, true)));
        let found = make_found(ctx.dir, listed)?;
        let mut adopted: Vec<(u32, Found<'_>)> = Vec::new();
        let fresh: Vec<Found<'_>> = match &uidlist {
            None => found,
            Some(l) => {
                let mut fresh = Vec::new();
                for f in found {
                    match l.uids.get(filename::base_of(f.name)) {
                        Some(&uid) if uid > 0 => adopted.push((uid, f)),
                        _ => fresh.push(f),
                    }
                }
                // Operators migrating from Dovecot watch for this (docs/migration.md).
                tracing::info!(
                    mailbox = %ctx.dir.display(),
                    uidvalidity = l.uidvalidity,
                    messages = adopted.len(),
                    "adopted dovecot-uidlist"
                );
                fresh
            }
        };
        adopted.sort_by_key(|a| a.0);
        adopted.dedup_by_key(|a| a.0);
        if let Some(last) = adopted.last() {
            uidnext = uidnext.max(last.0.saturating_add(1));
        }
        let first_recent = uidnext;
        let order = sort_found(&fresh);
        let n = self.keywords.len();
        // Message `k` in UID order: the adopted ones, then the fresh ones
        // numbered from `first_recent` in their sorted order.
        let nth = |k: usize| -> Option<(u32, &Found<'_>)> {
            match adopted.get(k) {
                Some((uid, f)) => Some((*uid, f)),
                None => {
                    let j = k - adopted.len();
                    let f = fresh.get(*order.get(j)? as usize)?;
                    let uid = u32::try_from(j).ok()?.checked_add(first_recent)?;
                    Some((uid, f))
                }
            }
        };
        let total = adopted.len() + fresh.len();
        self.files.reserve(total);
        let files = &mut self.files;
        let mut in_new = false;
        // One pass in UID order: each name is copied out of the listing
        // (and its flags parsed) while it is in the cache, and the copies
        // lie in UID order for the index write that follows.
        let metas = (0..total).filter_map(|k| {
            // Two steps ahead: the entry, then (once it is in) its name.
            if let Some(ahead) = k
                .checked_sub(adopted.len())
                .and_then(|j| order.get(j + 2 * PREFETCH_AHEAD))
                .and_then(|&i| fresh.get(i as usize))
            {
                prefetch(ahead);
            }
            if let Some((_, ahead)) = nth(k + PREFETCH_AHEAD) {
                prefetch(ahead.name);
            }
            let (uid, f) = nth(k)?;
            in_new |= f.in_new;
            files.push(FileRec {
                name: f.name.into(),
                in_new: f.in_new,
                dl: 0,
            });
            Some(MessageMeta {
                uid,
                flags: filename::flags_of(f.name, n),
                modseq: 1,
                phys_size: f.phys,
                virt_size: f.virt,
                internal_date: f.date,
            })
        });
        self.list = MessageList::from_sorted(metas);
        self.maybe_in_new |= in_new;
        uidnext = uidnext.max(
            u32::try_from(fresh.len())
                .unwrap_or(u32::MAX)
                .saturating_add(first_recent),
        );
        self.hdr = Header {
            uidvalidity,
            uidnext,
            highest_modseq: 1,
            first_recent,
            generation: self.hdr.generation.max(log_gen).saturating_add(1),
            cur_mtime: cur_stamp,
            cur_uncertain: now_ns().saturating_sub(cur_stamp) < DIR_MTIME_SETTLE_NS,
            // Our first index here, under a UIDVALIDITY nobody has seen:
            // losing it in a crash costs a rebuild under a new one, never a
            // UID reused (docs/design.md, "The first index").
            unsynced: !ours_existed && uidlist.is_none(),
        };
        // Written when the operation that loaded us commits, together with
        // what it changed (the first SELECT's \Recent claim): one base write
        // instead of a base and a log record, each fsynced.
        self.base_pending = true;
        self.log = None;
        Ok(())
    }
}
