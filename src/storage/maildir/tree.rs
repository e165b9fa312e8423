//! The folder tree of one user: listing, creating, deleting and renaming Maildir++ folders
//! (`.a.b.c` under the root, levels in modified UTF-7).

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::filename;
use super::fsutil::fsync_dir;
use super::storage::path_safe;
use super::user::UserCtx;
use crate::limits::{MAX_MAILBOX_NAME_BYTES, MAX_MAILBOXES_PER_USER};
use crate::mutf7;
use crate::storage::names::MailboxName;
use crate::storage::{MailboxInfo, Result, SpecialUse, StorageError};

pub(super) fn create_maildir(dir: &Path, fsync: bool) -> Result<()> {
    // Every login passes here: do not pay an fsync when nothing is new.
    if ["cur", "new", "tmp"].iter().all(|s| dir.join(s).is_dir()) {
        return Ok(());
    }
    // Mail is private to the mail user: 0700 directories, 0600 files.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    for sub in ["cur", "new", "tmp"] {
        let path = dir.join(sub);
        builder
            .create(&path)
            .map_err(|e| StorageError::io_at("create maildir", &path, e))?;
    }
    if fsync {
        fsync_dir(dir).map_err(|e| StorageError::io("fsync maildir", e))?;
    }
    Ok(())
}

impl UserCtx {
    /// Folders on disk: `(name, selectable)`, INBOX excluded.
    pub(super) fn disk_folders(&self) -> Result<Vec<(MailboxName, bool)>> {
        let rd =
            std::fs::read_dir(&self.root).map_err(|e| StorageError::io("list mailboxes", e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| StorageError::io("list mailboxes", e))?;
            let fname = ent.file_name();
            let Some(n) = fname.to_str() else { continue };
            let Some(rest) = n.strip_prefix('.') else {
                continue;
            };
            if rest.is_empty() || rest == "." || !ent.path().is_dir() {
                continue;
            }
            let mut comps = Vec::new();
            let mut ok = true;
            for c in rest.split('.') {
                match mutf7::decode(c.as_bytes()) {
                    Ok(d) if !d.is_empty() && path_safe(&d) && !d.contains(self.sep()) => {
                        comps.push(d)
                    }
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            // `.INBOX` alone, or `.inbox.x` in another case, would name a
            // mailbox we map elsewhere (INBOX is the root, `INBOX/x` is
            // `.INBOX.x`): ignore it rather than show an unreachable name.
            let inbox_clash = comps.first().is_some_and(|c| {
                c.eq_ignore_ascii_case("INBOX") && (c != "INBOX" || comps.len() == 1)
            });
            if !ok || inbox_clash {
                tracing::warn!(dir = %ent.path().display(), "ignoring folder with an invalid name");
                continue;
            }
            if out.len() >= MAX_MAILBOXES_PER_USER {
                tracing::warn!(root = %self.root.display(), "too many folders; listing truncated");
                break;
            }
            out.push((
                MailboxName::from_components(comps),
                ent.path().join("cur").is_dir(),
            ));
        }
        Ok(out)
    }

    fn exists(&self, n: &MailboxName) -> bool {
        self.dir_of(n).join("cur").is_dir()
    }

    pub(super) fn create(&self, name: &str, special: Option<SpecialUse>) -> Result<()> {
        let n = self.parse(name, true)?;
        if n.is_inbox() || self.exists(&n) {
            return Err(StorageError::AlreadyExists);
        }
        let dir = self.dir_of(&n);
        create_maildir(&dir, self.fsync())?;
        // Dovecot and Courier mark Maildir++ folders with this empty file.
        let _ = std::fs::File::create(dir.join("maildirfolder"));
        if self.fsync() {
            fsync_dir(&self.root).map_err(|e| StorageError::io("fsync root", e))?;
        }
        if let Some(su) = special {
            let _l = self.user_lock()?;
            let mut map = self.read_special_use()?;
            map.insert(n.components().to_vec(), su);
            self.write_special_use(&map)?;
        }
        Ok(())
    }

    pub(super) fn delete(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        if n.is_inbox() {
            return Err(StorageError::Cannot("INBOX cannot be deleted"));
        }
        let dir = self.dir_of(&n);
        if !dir.is_dir() {
            let has_children = self.disk_folders()?.iter().any(|(c, _)| c.is_below(&n));
            return Err(if has_children {
                StorageError::Cannot(crate::storage::HAS_CHILDREN_NOT_SELECTABLE)
            } else {
                StorageError::NonExistent
            });
        }
        // Rename first so no reader ever sees a half-deleted mailbox.
        let trash = self.root.join(format!(
            "mailcove-deleted.{}.{}",
            std::process::id(),
            filename::new_base(0, 0).replace(',', "_")
        ));
        std::fs::rename(&dir, &trash).map_err(|e| StorageError::io("delete mailbox", e))?;
        if self.fsync() {
            fsync_dir(&self.root).map_err(|e| StorageError::io("fsync root", e))?;
        }
        self.shared.forget(std::slice::from_ref(&dir));
        // Its messages leave the quota (Maildir++: a deleted folder's usage is given back).
        let (bytes, count) = super::quota::folder_usage(&trash);
        super::quota::add(
            &self.root,
            -i64::try_from(bytes).unwrap_or(i64::MAX),
            -i64::try_from(count).unwrap_or(i64::MAX),
        );
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(dir = %trash.display(), error = %e, "could not remove deleted mailbox");
        }
        let _l = self.user_lock()?;
        let mut map = self.read_special_use()?;
        if map.remove(n.components()).is_some() {
            self.write_special_use(&map)?;
        }
        Ok(())
    }

    pub(super) fn rename_folders(&self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        let folders = self.disk_folders()?;
        let mut moves: Vec<(PathBuf, PathBuf, MailboxName, MailboxName)> = Vec::new();
        for (f, _) in &folders {
            if f == from || f.is_below(from) {
                let target = f
                    .reparent(from, to)
                    .ok_or(StorageError::Invalid("rename"))?;
                if target.components().len() > crate::limits::MAX_MAILBOX_DEPTH
                    || disk_name(&target).len() > MAX_MAILBOX_NAME_BYTES
                {
                    return Err(StorageError::InvalidName("name too long"));
                }
                moves.push((self.dir_of(f), self.dir_of(&target), f.clone(), target));
            }
        }
        if moves.is_empty() {
            return Err(StorageError::NonExistent);
        }
        if moves.iter().any(|(_, t, ..)| t.exists()) {
            return Err(StorageError::AlreadyExists);
        }
        let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (src, dst, ..) in &moves {
            if let Err(e) = std::fs::rename(src, dst) {
                for (s, d) in done.iter().rev() {
                    let _ = std::fs::rename(d, s);
                }
                return Err(StorageError::io("rename mailbox", e));
            }
            done.push((src.clone(), dst.clone()));
        }
        if self.fsync() {
            fsync_dir(&self.root).map_err(|e| StorageError::io("fsync root", e))?;
        }
        let old: Vec<PathBuf> = moves.iter().map(|(s, ..)| s.clone()).collect();
        self.shared.forget(&old);
        let _l = self.user_lock()?;
        let mut map = self.read_special_use()?;
        let mut changed = false;
        for (_, _, f, t) in &moves {
            if let Some(su) = map.remove(f.components()) {
                map.insert(t.components().to_vec(), su);
                changed = true;
            }
        }
        if changed {
            self.write_special_use(&map)?;
        }
        Ok(())
    }

    pub(super) fn list(&self) -> Result<Vec<MailboxInfo>> {
        let folders = self.disk_folders()?;
        let mut all: BTreeMap<Vec<String>, bool> = BTreeMap::new();
        all.insert(vec!["INBOX".to_owned()], true);
        for (n, selectable) in &folders {
            all.insert(n.components().to_vec(), *selectable);
            for a in n.ancestors() {
                all.entry(a.components().to_vec()).or_insert(false);
            }
        }
        let subs = self.read_subscriptions()?;
        let special = self.special_uses()?;
        let keys: Vec<&Vec<String>> = all.keys().collect();
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let has_children = keys
                .get(i + 1)
                .is_some_and(|next| next.len() > k.len() && next.starts_with(k));
            let name = MailboxName::from_components((*k).clone());
            out.push(MailboxInfo {
                name: name.to_wire(self.sep()),
                noselect: !all.get(*k).copied().unwrap_or(false),
                has_children,
                special_use: special.get(*k).copied(),
                subscribed: subs.iter().any(|s| s == *k),
            });
        }
        // INBOX first, as clients expect.
        out.sort_by_key(|m| m.name != "INBOX");
        Ok(out)
    }
}

/// Directory name of a non-INBOX mailbox: `.` + levels in modified UTF-7.
pub(super) fn disk_name(n: &MailboxName) -> String {
    let mut s = String::new();
    for c in n.components() {
        s.push('.');
        s.push_str(&mutf7::encode(c));
    }
    s
}
