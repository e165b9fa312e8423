//! One user's context ([`UserCtx`]): mailbox names to directories, the per-user lock, and the
//! operations that span mailboxes or check quota: COPY/MOVE, APPEND, STATUS.

use std::path::PathBuf;
use std::sync::Arc;

use super::USER_LOCK_FILE;
use super::fsutil::{LockMode, flock, now_secs, open_lock_file};
use super::mailbox::MailboxState;
use super::storage::Shared;
use super::tree::{create_maildir, disk_name};
use super::{filename, fsutil, quota};
use crate::limits::MAX_MAILBOX_NAME_BYTES;
use crate::storage::names::MailboxName;
use crate::storage::{
    AppendMessage, AppendResult, CopyResult, ImportMessage, MailboxStatus, Result, SpecialUse,
    StorageError,
};

/// One user's Maildir tree.
pub(crate) struct UserCtx {
    pub(super) shared: Arc<Shared>,
    /// The user's change feed (shared by every session of the user).
    pub(super) feed: Arc<super::feed::UserFeed>,
    /// Stamped on the changes this session's store publishes.
    pub(super) origin: u64,
    pub(super) root: PathBuf,
    pub(super) limits: quota::Limits,
}

pub(super) struct UserLock(std::fs::File);
impl Drop for UserLock {
    fn drop(&mut self) {
        fsutil::funlock(&self.0);
    }
}

impl UserCtx {
    pub(super) fn sep(&self) -> char {
        self.shared.options.separator
    }
    pub(super) fn fsync(&self) -> bool {
        self.shared.options.fsync
    }

    pub(super) fn init(&self) -> Result<()> {
        create_maildir(&self.root, self.fsync())?;
        for (name, special) in self.shared.options.autocreate.clone() {
            match self.create(&name, special) {
                Ok(()) => {
                    let n = self.parse(&name, false)?;
                    self.set_subscribed(&n, true)?;
                }
                Err(StorageError::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(super) fn user_lock(&self) -> Result<UserLock> {
        let f = open_lock_file(&self.root.join(USER_LOCK_FILE))?;
        flock(&f, LockMode::Exclusive).map_err(|e| StorageError::io("lock user", e))?;
        Ok(UserLock(f))
    }

    /// Generic checks plus Maildir++'s own: no `.` inside a level, and the
    /// directory name must fit in 255 bytes.
    pub(super) fn parse(&self, name: &str, allow_trailing: bool) -> Result<MailboxName> {
        let n = MailboxName::parse(name, self.sep(), allow_trailing)?;
        if n.components().iter().any(|c| c.contains('.')) {
            return Err(StorageError::InvalidName(
                "'.' is not allowed in a mailbox name here",
            ));
        }
        if !n.is_inbox() && disk_name(&n).len() > MAX_MAILBOX_NAME_BYTES {
            return Err(StorageError::InvalidName("name too long"));
        }
        Ok(n)
    }

    pub(super) fn dir_of(&self, n: &MailboxName) -> PathBuf {
        if n.is_inbox() {
            self.root.clone()
        } else {
            self.root.join(disk_name(n))
        }
    }

    pub(super) fn state(&self, n: &MailboxName) -> Result<Arc<MailboxState>> {
        let dir = self.dir_of(n);
        if !dir.join("cur").is_dir() {
            return Err(StorageError::NonExistent);
        }
        Ok(self.shared.state(&dir, &self.root))
    }

    /// Copies (or moves) `uids` of `src` into `dest`.
    pub(super) fn copy(
        &self,
        src: &Arc<MailboxState>,
        uids: &[u32],
        dest: &str,
        move_: bool,
    ) -> Result<CopyResult> {
        let dn = self.parse(dest, false)?;
        let dst = self.state(&dn)?;
        let mut sources = src.sources(uids)?;
        let total: u64 = sources.iter().map(|s| s.meta.phys_size).sum();
        if !move_ || !Arc::ptr_eq(src, &dst) {
            // A move within one user does not change usage; check copies only.
            if !move_ {
                quota::check(
                    &self.root,
                    &self.limits,
                    self.fsync(),
                    total,
                    sources.len() as u64,
                )?;
            }
        }
        let mut items = Vec::with_capacity(sources.len());
        let mut src_uids = Vec::with_capacity(sources.len());
        let mut retried = false;
        while !sources.is_empty() {
            let mut missing = Vec::new();
            for s in sources.drain(..) {
                match dst.link_tmp(&s) {
                    Ok(Some((path, base))) => {
                        items.push((
                            path,
                            base,
                            s.meta.internal_date,
                            s.meta.flags.system,
                            s.keywords,
                        ));
                        src_uids.push(s.uid);
                    }
                    Ok(None) => missing.push(s.uid),
                    Err(e) => {
                        for (p, ..) in &items {
                            let _ = std::fs::remove_file(p);
                        }
                        return Err(e);
                    }
                }
            }
            if missing.is_empty() || retried {
                break;
            }
            // Renamed by someone else since we looked: learn the new names once.
            retried = true;
            src.rescan()?;
            sources = src.sources(&missing)?;
        }
        let bytes: u64 = items
            .iter()
            .map(|(_, b, ..)| filename::sizes(b).0.unwrap_or(0))
            .sum();
        let count = items.len();
        let (uidvalidity, new_uids) = dst.commit_new(items)?;
        let mapping: Vec<(u32, u32)> = src_uids.iter().copied().zip(new_uids).collect();
        if move_ {
            let (_, usage) = src.expunge(Some(&src_uids), true)?;
            quota::add(&self.root, usage.bytes, usage.messages);
        }
        quota::add(
            &self.root,
            i64::try_from(bytes).unwrap_or(i64::MAX),
            i64::try_from(count).unwrap_or(i64::MAX),
        );
        Ok(CopyResult {
            uidvalidity,
            mapping,
        })
    }

    pub(super) fn append(&self, name: &str, msg: AppendMessage) -> Result<AppendResult> {
        let n = self.parse(name, false)?;
        let state = self.state(&n)?;
        quota::check(
            &self.root,
            &self.limits,
            self.fsync(),
            msg.data.len() as u64,
            1,
        )?;
        let date = msg.internal_date.unwrap_or_else(now_secs);
        let (tmp, base) = state.write_tmp(&msg.data, date)?;
        let (uidvalidity, uids) =
            state.commit_new(vec![(tmp, base, date, msg.flags, msg.keywords)])?;
        quota::add(
            &self.root,
            i64::try_from(msg.data.len()).unwrap_or(i64::MAX),
            1,
        );
        let uid = uids
            .first()
            .copied()
            .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
        Ok(AppendResult { uidvalidity, uid })
    }

    /// [`crate::storage::UserStore::import_mailbox`].
    pub(super) fn import_mailbox(
        &self,
        name: &str,
        uidvalidity: u32,
        uidnext: u32,
        special_use: Option<SpecialUse>,
    ) -> Result<bool> {
        let n = self.parse(name, false)?;
        let created = match self.state(&n) {
            Ok(_) => false,
            Err(StorageError::NonExistent) => {
                self.create(name, special_use)?;
                true
            }
            Err(e) => return Err(e),
        };
        self.state(&n)?.set_import_counters(uidvalidity, uidnext)?;
        Ok(created)
    }

    /// [`crate::storage::UserStore::import_messages`]: each message written to `tmp/` durably,
    /// then all renamed into `cur/` under their UIDs at once (or none).
    pub(super) fn import_messages(&self, name: &str, messages: Vec<ImportMessage>) -> Result<()> {
        let n = self.parse(name, false)?;
        let state = self.state(&n)?;
        if messages.is_empty() {
            return Ok(());
        }
        let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
        let bytes: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        let count = messages.len();
        let mut items = Vec::with_capacity(count);
        for m in messages {
            match state.write_tmp(&m.data, m.internal_date) {
                Ok((tmp, base)) => items.push((tmp, base, m.internal_date, m.flags, m.keywords)),
                Err(e) => {
                    for (p, ..) in &items {
                        let _ = std::fs::remove_file(p);
                    }
                    return Err(e);
                }
            }
        }
        state.commit_at(items, Some(&uids))?;
        quota::add(
            &self.root,
            i64::try_from(bytes).unwrap_or(i64::MAX),
            i64::try_from(count).unwrap_or(i64::MAX),
        );
        Ok(())
    }

    pub(super) fn status(&self, name: &str) -> Result<MailboxStatus> {
        let n = self.parse(name, false)?;
        let state = self.state(&n)?;
        let (snap, _) = state.sync(false, false)?;
        let mut st = MailboxStatus {
            messages: u32::try_from(snap.messages.len()).unwrap_or(u32::MAX),
            recent: state.unclaimed_recent(),
            uidnext: snap.uidnext,
            uidvalidity: snap.uidvalidity,
            highest_modseq: snap.highest_modseq,
            ..MailboxStatus::default()
        };
        // Kept per chunk of the list: no scan of the messages (src/storage/msglist.rs).
        st.set_counts(snap.messages.tally());
        Ok(st)
    }
}
