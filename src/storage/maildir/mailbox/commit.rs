//! Applying records to memory, appending them to `mailcove-index.log`, and writing a new
//! base (`mailcove-index`) when the log grew large.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::limits::{INDEX_LOG_COMPACT_MIN, MAILDIR_KEYWORD_LETTERS};
use crate::storage::maildir::filename;
use crate::storage::maildir::fsutil::{fsync_dir, replace_file, replace_file_with};
use crate::storage::maildir::index::{self, BASE_FILE, Entry, Header, LOG_FILE, Record};
use crate::storage::{KeywordSet, MessageMeta, Result, StorageError};

use super::keywords::{beyond_letters, name_flags};
use super::{Ctx, FileRec, Inner, stamp_of};

impl Inner {
    /// Writes a full base of the current generation and starts its empty log.
    ///
    /// The base is fsynced before its rename. A log already there holds
    /// records an older base lacks, so then the new base's name is made
    /// durable before that log is replaced: a crash in between must not
    /// leave the old base with a new, empty log. The new log's header line
    /// is not fsynced (a torn or missing header makes a log stale, and a
    /// stale log is replaced; the first record appended is fdatasynced
    /// together with it). One directory fsync then makes both names durable
    /// before anything that relies on them is acknowledged.
    fn write_index(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        let base_path = ctx.dir.join(BASE_FILE);
        let log_path = ctx.dir.join(LOG_FILE);
        let entries = self
            .list
            .iter()
            .zip(self.files.iter())
            .map(|(m, f)| index::EntryRef {
                uid: m.uid,
                modseq: m.modseq,
                date: m.internal_date,
                phys: m.phys_size,
                virt: m.virt_size,
                dl: f.dl,
                in_new: f.in_new,
                name: &f.name,
            });
        // Keywords no file name can carry (rare: a cheap pass over the bits when there are none).
        let beyond: Vec<(u32, KeywordSet)> = (self.list.iter())
            .map(|m| (m.uid, beyond_letters(&m.flags.keywords)))
            .filter(|(_, set)| !set.is_empty())
            .collect();
        // A brand-new base is synced with the first record logged after it.
        let durable = ctx.fsync && !self.hdr.unsynced;
        // The remembered expunges go into the base, so compaction does not forget them.
        let hdr = Header {
            vanished_floor: Some(self.vanished.floor()),
            ..self.hdr
        };
        replace_file_with(&base_path, durable, |f| {
            index::write_base(f, &hdr, entries, &beyond, self.vanished.iter())
        })?;
        self.base_stamp = stamp_of(&base_path);
        let sync_dir = || {
            if durable {
                fsync_dir(ctx.dir).map_err(|e| StorageError::io("fsync mailbox directory", e))
            } else {
                Ok(())
            }
        };
        if std::fs::symlink_metadata(&log_path).is_ok() {
            sync_dir()?;
        }
        let header = index::log_header(self.hdr.generation);
        replace_file(&log_path, header.as_bytes(), false)?;
        sync_dir()?;
        let f = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| StorageError::io("open log", e))?;
        self.log = Some(f);
        self.log_offset = header.len() as u64;
        self.log_records = 0;
        self.base_pending = false;
        Ok(())
    }

    /// Applies records to memory: ours right after the file-system change
    /// they describe, others' when replaying the log.
    pub(super) fn apply_all(&mut self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let n = self.keywords.len();
        let mut removed: HashSet<u32> = HashSet::new();
        for r in records {
            match r {
                Record::Append(e) => {
                    let meta = meta_of(&e, n);
                    if self.list.push(meta) {
                        self.maybe_in_new |= e.in_new;
                        self.files.push(FileRec {
                            name: e.name.into(),
                            in_new: e.in_new,
                            dl: e.dl,
                        });
                    }
                    self.hdr.uidnext = self.hdr.uidnext.max(e.uid.saturating_add(1));
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(e.modseq);
                }
                Record::Rename {
                    uid,
                    modseq,
                    in_new,
                    name,
                } => {
                    if let Some(i) = self.list.position(uid) {
                        self.list.update(i, |m| {
                            m.flags = name_flags(&name, n, &m.flags.keywords);
                            if modseq != 0 {
                                m.modseq = modseq;
                            }
                        });
                        if let Some(f) = self.files.get_mut(i) {
                            self.maybe_in_new |= in_new;
                            f.name = name.into();
                            f.in_new = in_new;
                        }
                    }
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
                Record::Expunge { uid, modseq } => {
                    removed.insert(uid);
                    self.vanished.record(uid, modseq);
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
                Record::Header(h) => {
                    let (generation, unsynced) = (self.hdr.generation, self.hdr.unsynced);
                    // HIGHESTMODSEQ never goes back, whatever order records come in.
                    let highest_modseq = self.hdr.highest_modseq.max(h.highest_modseq);
                    self.hdr = Header {
                        generation,
                        unsynced,
                        highest_modseq,
                        vanished_floor: None,
                        ..h
                    };
                }
                Record::Pop3 { uid, dl } => {
                    if let Some(i) = self.list.position(uid)
                        && let Some(f) = self.files.get_mut(i)
                    {
                        f.dl = dl;
                    }
                }
                Record::Keywords {
                    uid,
                    modseq,
                    keywords,
                } => {
                    if let Some(i) = self.list.position(uid) {
                        self.list.update(i, |m| {
                            let mut set = m.flags.keywords.split_at(MAILDIR_KEYWORD_LETTERS).0;
                            set.union_with(&beyond_letters(&keywords));
                            m.flags.keywords = set;
                            if modseq != 0 {
                                m.modseq = modseq;
                            }
                        });
                    }
                    self.hdr.highest_modseq = self.hdr.highest_modseq.max(modseq);
                }
            }
        }
        if !removed.is_empty() {
            let keep: Vec<bool> = self
                .list
                .iter()
                .map(|m| !removed.contains(&m.uid))
                .collect();
            let mut it = keep.iter();
            self.files.retain(|_| *it.next().unwrap_or(&true));
            self.list.retain(|m| !removed.contains(&m.uid));
            if let Some(c) = self.cache.as_mut() {
                c.forget(&removed);
            }
        }
        self.version += 1;
    }

    /// Appends records to the log and compacts when it grew large. The log is NOT fsynced
    /// here: the caller makes it durable with `cur/` in a shared round after releasing the
    /// locks ([`super::MailboxState::locked`], group commit) before anything is acknowledged.
    /// True when it wrote anything.
    pub(super) fn commit(&mut self, ctx: &Ctx<'_>, records: Vec<Record>) -> Result<bool> {
        if self.base_pending {
            // Memory already holds the records; the base gets them all.
            self.write_index(ctx)?;
            return Ok(true);
        }
        if records.is_empty() {
            return Ok(false);
        }
        if self.hdr.unsynced {
            self.sync_base(ctx)?;
        }
        let mut text = String::new();
        for r in &records {
            index::format_record(&mut text, r);
        }
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| StorageError::Temporary("index log not open".into()))?;
        log.write_all(text.as_bytes())
            .map_err(|e| StorageError::io("append index log", e))?;
        self.log_offset += text.len() as u64;
        self.log_records += records.len();
        if self.log_records > INDEX_LOG_COMPACT_MIN.max(self.list.len() / 2) {
            self.hdr.generation = self.hdr.generation.saturating_add(1);
            self.write_index(ctx)?;
        }
        Ok(true)
    }

    /// Makes a base written without an fsync durable, with its log's name,
    /// before a record that relies on it is appended (by whichever process
    /// appends first; the others find nothing left to write).
    fn sync_base(&mut self, ctx: &Ctx<'_>) -> Result<()> {
        if ctx.fsync {
            File::open(ctx.dir.join(BASE_FILE))
                .and_then(|f| f.sync_all())
                .and_then(|()| fsync_dir(ctx.dir))
                .map_err(|e| StorageError::io("fsync index", e))?;
        }
        self.hdr.unsynced = false;
        Ok(())
    }
}

fn meta_of(e: &Entry, keyword_count: usize) -> MessageMeta {
    MessageMeta {
        uid: e.uid,
        flags: filename::flags_of(&e.name, keyword_count),
        modseq: e.modseq,
        phys_size: e.phys,
        virt_size: e.virt,
        internal_date: e.date,
    }
}
