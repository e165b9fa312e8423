//! The Maildir backend: Maildir++ as Dovecot lays it out by default.
//!
//! * INBOX is the user's Maildir root; a folder `Sent` is `.Sent`, a folder
//!   `Work/Projects` (wire separator `/`) is `.Work.Projects`, and each
//!   level is written in modified UTF-7 (`Entwürfe` is `.Entw&APw-rfe`).
//!   Because `.` separates levels on disk, a `.` inside a level is refused.
//! * Parents are implicit: creating `a/b/c` creates `.a.b.c` only. LIST
//!   shows a missing parent as `\Noselect \HasChildren`; deleting a mailbox
//!   that has children removes its directory, after which it lists the same
//!   way (RFC 3501 section 6.3.4).
//! * Per mailbox, mailcove keeps `mailcove-index` + `mailcove-index.log`
//!   (UIDs, modseqs, sizes, dates, POP3 download times), `mailcove-cache`
//!   (parsed MIME data the IMAP layer stores), and shares Dovecot's
//!   `dovecot-keywords`. A `dovecot-uidlist` is adopted when no index of
//!   ours exists yet.
//! * Per user: `subscriptions` (Dovecot's format, version 2),
//!   `mailcove-special-use`, `maildirsize` (Maildir++ quota),
//!   `mailcove-uidvalidity` (last UIDVALIDITY handed out) and
//!   `mailcove-pop3.lock`.
//!
//! See `docs/design/storage.md` for the reasoning.

mod cache;
mod content;
mod dovecot;
mod filename;
mod fsutil;
mod index;
mod mailbox;
mod quota;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch as tokio_watch;

use self::content::MaildirContent;
use self::fsutil::{LockMode, blocking, flock, fsync_dir, now_secs, open_lock_file, read_small};
use self::mailbox::{LocatedRun, MailboxState, MessageDirs};
use super::names::MailboxName;
use super::{
    AppendMessage, AppendResult, AppendStream, CacheField, CopyResult, Head, MailboxHandle,
    MailboxInfo, MailboxStatus, Message, OpenOptions, Pop3Lock, QuotaUsage, ReadPart, Result,
    SpecialUse, Storage, StorageError, StorageUser, StoreRequest, StoreResult, SyncOutcome,
    SystemFlags, UserStore, View,
};
use crate::limits::{
    MAILBOX_STATE_CACHE, MAX_MAILBOX_NAME_BYTES, MAX_MAILBOXES_PER_USER, MAX_SMALL_FILE_BYTES,
    VISIT_LOCATE_CHUNK,
};
use crate::mutf7;

/// Subscriptions file, as Dovecot names it.
const SUBSCRIPTIONS_FILE: &str = "subscriptions";
/// Our per-user special-use file: `\Sent<TAB>level<TAB>level...` per line.
const SPECIAL_USE_FILE: &str = "mailcove-special-use";
/// Serialises read-modify-write of the per-user files across processes.
const USER_LOCK_FILE: &str = "mailcove-user.lock";
/// The POP3 maildrop lock.
const POP3_LOCK_FILE: &str = "mailcove-pop3.lock";

/// How the Maildir backend is set up (built by the lead from the config).
#[derive(Debug, Clone)]
pub struct MaildirOptions {
    /// Location template: `%u` full user name, `%n` local part, `%d` domain
    /// (empty when none), `%%` a percent sign, a leading `~` the home
    /// directory. Example: `/var/mail/%d/%n`, `~/Maildir`.
    pub location: String,
    /// Hierarchy separator on the wire (default `/`).
    pub separator: char,
    /// Fsync files and directories before acknowledging (turn off only for tests).
    pub fsync: bool,
    /// Default byte quota (0 = unlimited).
    pub quota_bytes: u64,
    /// Default message-count quota (0 = unlimited).
    pub quota_messages: u64,
    /// Mailboxes created (and subscribed) at login when missing.
    pub autocreate: Vec<(String, Option<SpecialUse>)>,
}

impl MaildirOptions {
    /// Options with defaults: separator `/`, fsync on, no quota, no autocreate.
    pub fn new(location: impl Into<String>) -> Self {
        MaildirOptions {
            location: location.into(),
            separator: '/',
            fsync: true,
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: Vec::new(),
        }
    }
}

/// The state shared by every user and session of the process.
pub(crate) struct Shared {
    options: MaildirOptions,
    registry: Mutex<HashMap<PathBuf, Weak<MailboxState>>>,
    /// Recently used states kept alive without a view, so that deliveries
    /// and STATUS on a mailbox nobody has open do not reload its index
    /// every time. Bounded by [`MAILBOX_STATE_CACHE`].
    recent: Mutex<std::collections::VecDeque<Arc<MailboxState>>>,
    watch: Mutex<watch::Watch>,
}

impl Shared {
    fn lookup(&self, dir: &Path) -> Option<Arc<MailboxState>> {
        self.registry.lock().get(dir).and_then(Weak::upgrade)
    }

    fn poke_all(&self) {
        let states: Vec<Arc<MailboxState>> = self
            .registry
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for s in states {
            s.mark_dirty();
        }
    }

    /// The one state of `dir` in this process.
    fn state(&self, dir: &Path, root: &Path) -> Arc<MailboxState> {
        let s = {
            let mut reg = self.registry.lock();
            match reg.get(dir).and_then(Weak::upgrade) {
                Some(s) => s,
                None => {
                    reg.retain(|_, w| w.strong_count() > 0);
                    let s = Arc::new(MailboxState::new(
                        dir.to_path_buf(),
                        root.to_path_buf(),
                        self.options.fsync,
                    ));
                    reg.insert(dir.to_path_buf(), Arc::downgrade(&s));
                    s
                }
            }
        };
        let mut recent = self.recent.lock();
        if recent.front().is_none_or(|f| !Arc::ptr_eq(f, &s)) {
            recent.retain(|r| !Arc::ptr_eq(r, &s));
            recent.push_front(s.clone());
            recent.truncate(MAILBOX_STATE_CACHE);
        }
        s
    }

    /// Forgets states of directories that were renamed or deleted, waking their views.
    fn forget(&self, dirs: &[PathBuf]) {
        self.recent
            .lock()
            .retain(|r| !dirs.iter().any(|d| d.as_path() == r.dir()));
        let gone: Vec<Arc<MailboxState>> = {
            let mut reg = self.registry.lock();
            dirs.iter()
                .filter_map(|d| reg.remove(d))
                .filter_map(|w| w.upgrade())
                .collect()
        };
        for s in gone {
            s.poke();
        }
    }
}

/// The Maildir [`Storage`].
pub struct MaildirStorage {
    shared: Arc<Shared>,
}

impl MaildirStorage {
    /// Creates the backend; refuses a separator that cannot work.
    pub fn new(options: MaildirOptions) -> Result<Self> {
        let sep = options.separator;
        if !sep.is_ascii_punctuation()
            || sep == '&'
            || sep == '"'
            || sep == '\\'
            || sep == '%'
            || sep == '*'
        {
            return Err(StorageError::Invalid("unusable hierarchy separator"));
        }
        Ok(MaildirStorage {
            shared: Arc::new(Shared {
                options,
                registry: Mutex::new(HashMap::new()),
                recent: Mutex::new(std::collections::VecDeque::new()),
                watch: Mutex::new(watch::Watch::default()),
            }),
        })
    }

    /// The Maildir root of `user` from the location template.
    pub fn user_root(&self, user: &StorageUser) -> Result<PathBuf> {
        expand_location(&self.shared.options.location, user)
    }
}

fn path_safe(s: &str) -> bool {
    s != "." && s != ".." && !s.contains('/') && !s.chars().any(char::is_control)
}

/// Expands a location template for one user.
pub fn expand_location(template: &str, user: &StorageUser) -> Result<PathBuf> {
    let bad = StorageError::Invalid("user name unusable in a mail location");
    let (local, domain) = user.name.split_once('@').unwrap_or((&user.name, ""));
    if local.is_empty() || !path_safe(&user.name) || !path_safe(local) || !path_safe(domain) {
        return Err(bad);
    }
    let mut out = String::new();
    let mut rest = template;
    if let Some(r) = template.strip_prefix('~') {
        let home = user
            .home
            .as_ref()
            .and_then(|h| h.to_str())
            .ok_or(StorageError::Invalid(
                "location uses ~ but the user has no home",
            ))?;
        out.push_str(home);
        rest = r;
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&user.name),
            Some('n') => out.push_str(local),
            Some('d') => out.push_str(domain),
            Some('%') => out.push('%'),
            _ => return Err(StorageError::Invalid("unknown % variable in mail location")),
        }
    }
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(StorageError::Invalid("mail location is not absolute"));
    }
    Ok(path)
}

#[async_trait]
impl Storage for MaildirStorage {
    async fn user(&self, user: &StorageUser) -> Result<Arc<dyn UserStore>> {
        let root = self.user_root(user)?;
        let opts = &self.shared.options;
        let pick = |v: Option<u64>, d: u64| match v.unwrap_or(d) {
            0 => None,
            n => Some(n),
        };
        let ctx = Arc::new(UserCtx {
            shared: self.shared.clone(),
            root,
            limits: quota::Limits {
                bytes: pick(user.quota_bytes, opts.quota_bytes),
                messages: pick(user.quota_messages, opts.quota_messages),
            },
        });
        let c = ctx.clone();
        blocking(move || c.init()).await?;
        Ok(Arc::new(MaildirUser(ctx)))
    }
}

/// One user's Maildir tree.
pub(crate) struct UserCtx {
    shared: Arc<Shared>,
    root: PathBuf,
    limits: quota::Limits,
}

struct UserLock(std::fs::File);
impl Drop for UserLock {
    fn drop(&mut self) {
        fsutil::funlock(&self.0);
    }
}

fn create_maildir(dir: &Path, fsync: bool) -> Result<()> {
    // Every login passes here: do not pay an fsync when nothing is new.
    if ["cur", "new", "tmp"].iter().all(|s| dir.join(s).is_dir()) {
        return Ok(());
    }
    // Mail is private to the mail user: 0700 directories, 0600 files.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    for sub in ["cur", "new", "tmp"] {
        builder
            .create(dir.join(sub))
            .map_err(|e| StorageError::io("create maildir", e))?;
    }
    if fsync {
        fsync_dir(dir).map_err(|e| StorageError::io("fsync maildir", e))?;
    }
    Ok(())
}

impl UserCtx {
    fn sep(&self) -> char {
        self.shared.options.separator
    }
    fn fsync(&self) -> bool {
        self.shared.options.fsync
    }

    fn init(&self) -> Result<()> {
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

    fn user_lock(&self) -> Result<UserLock> {
        let f = open_lock_file(&self.root.join(USER_LOCK_FILE))?;
        flock(&f, LockMode::Exclusive).map_err(|e| StorageError::io("lock user", e))?;
        Ok(UserLock(f))
    }

    /// Generic checks plus Maildir++'s own: no `.` inside a level, and the
    /// directory name must fit in 255 bytes.
    fn parse(&self, name: &str, allow_trailing: bool) -> Result<MailboxName> {
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

    fn dir_of(&self, n: &MailboxName) -> PathBuf {
        if n.is_inbox() {
            self.root.clone()
        } else {
            self.root.join(disk_name(n))
        }
    }

    fn state(&self, n: &MailboxName) -> Result<Arc<MailboxState>> {
        let dir = self.dir_of(n);
        if !dir.join("cur").is_dir() {
            return Err(StorageError::NonExistent);
        }
        Ok(self.shared.state(&dir, &self.root))
    }

    /// Folders on disk: `(name, selectable)`, INBOX excluded.
    fn disk_folders(&self) -> Result<Vec<(MailboxName, bool)>> {
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

    fn create(&self, name: &str, special: Option<SpecialUse>) -> Result<()> {
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

    fn delete(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        if n.is_inbox() {
            return Err(StorageError::Cannot("INBOX cannot be deleted"));
        }
        let dir = self.dir_of(&n);
        if !dir.is_dir() {
            let has_children = self.disk_folders()?.iter().any(|(c, _)| c.is_below(&n));
            return Err(if has_children {
                StorageError::Cannot("mailbox has children and is not selectable")
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

    fn rename_folders(&self, from: &MailboxName, to: &MailboxName) -> Result<()> {
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

    fn list(&self) -> Result<Vec<MailboxInfo>> {
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

    fn special_uses(&self) -> Result<HashMap<Vec<String>, SpecialUse>> {
        let mut map: HashMap<Vec<String>, SpecialUse> = HashMap::new();
        for (name, su) in &self.shared.options.autocreate {
            if let (Some(su), Ok(n)) = (su, MailboxName::parse(name, self.sep(), true)) {
                map.insert(n.components().to_vec(), *su);
            }
        }
        map.extend(self.read_special_use()?);
        Ok(map)
    }

    fn read_special_use(&self) -> Result<HashMap<Vec<String>, SpecialUse>> {
        let data = read_small(&self.root.join(SPECIAL_USE_FILE), MAX_SMALL_FILE_BYTES)?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&data);
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut parts = line.split('\t');
            let Some(su) = parts.next().and_then(SpecialUse::from_attribute) else {
                continue;
            };
            let comps: Vec<String> = parts.map(str::to_owned).collect();
            if !comps.is_empty() {
                map.insert(comps, su);
            }
        }
        Ok(map)
    }

    fn write_special_use(&self, map: &HashMap<Vec<String>, SpecialUse>) -> Result<()> {
        let mut lines: Vec<String> = map
            .iter()
            .map(|(k, su)| format!("{}\t{}\n", su.attribute(), k.join("\t")))
            .collect();
        lines.sort();
        fsutil::write_atomic(
            &self.root.join(SPECIAL_USE_FILE),
            lines.concat().as_bytes(),
            self.fsync(),
        )
    }

    /// Subscribed names as levels. Reads Dovecot's version 2 format
    /// (`V\t2\n\n`, then one name per line with levels separated by TAB)
    /// and version 1 (one name per line, levels separated by `.`).
    fn read_subscriptions(&self) -> Result<Vec<Vec<String>>> {
        let data = read_small(&self.root.join(SUBSCRIPTIONS_FILE), MAX_SMALL_FILE_BYTES)?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&data);
        let mut out: Vec<Vec<String>> = Vec::new();
        let v2 = text.starts_with("V\t2\n");
        for line in text.lines().skip(if v2 { 1 } else { 0 }) {
            // Dovecot tab-escapes control characters with \x01; names
            // holding those are invalid here anyway.
            if line.is_empty() || line.contains('\u{1}') {
                continue;
            }
            let comps: Vec<String> = if v2 {
                line.split('\t').map(str::to_owned).collect()
            } else {
                line.split('.')
                    .map(|c| mutf7::decode(c.as_bytes()).unwrap_or_else(|_| c.to_owned()))
                    .collect()
            };
            if comps.iter().any(String::is_empty) {
                continue;
            }
            let mut comps = comps;
            if let Some(first) = comps.first_mut()
                && first.eq_ignore_ascii_case("INBOX")
            {
                "INBOX".clone_into(first);
            }
            if !out.contains(&comps) {
                out.push(comps);
            }
        }
        Ok(out)
    }

    fn set_subscribed(&self, n: &MailboxName, on: bool) -> Result<()> {
        let _l = self.user_lock()?;
        let mut subs = self.read_subscriptions()?;
        let present = subs.iter().any(|s| s == n.components());
        if present == on {
            return Ok(());
        }
        if on {
            subs.push(n.components().to_vec());
        } else {
            subs.retain(|s| s != n.components());
        }
        let mut text = String::from("V\t2\n\n");
        for s in &subs {
            text.push_str(&s.join("\t"));
            text.push('\n');
        }
        fsutil::write_atomic(
            &self.root.join(SUBSCRIPTIONS_FILE),
            text.as_bytes(),
            self.fsync(),
        )
    }

    /// Copies (or moves) `uids` of `src` into `dest`.
    fn copy(
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

    fn append(&self, name: &str, msg: AppendMessage) -> Result<AppendResult> {
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

    fn status(&self, name: &str) -> Result<MailboxStatus> {
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
        for m in snap.messages.iter() {
            if !m.flags.system.contains(SystemFlags::SEEN) {
                st.unseen += 1;
            }
            st.size += m.virt_size;
        }
        Ok(st)
    }
}

/// Directory name of a non-INBOX mailbox: `.` + levels in modified UTF-7.
fn disk_name(n: &MailboxName) -> String {
    let mut s = String::new();
    for c in n.components() {
        s.push('.');
        s.push_str(&mutf7::encode(c));
    }
    s
}

/// [`UserStore`] of the Maildir backend.
pub struct MaildirUser(Arc<UserCtx>);

impl MaildirUser {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&UserCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let ctx = self.0.clone();
        blocking(move || f(&ctx)).await
    }
}

#[async_trait]
impl UserStore for MaildirUser {
    fn separator(&self) -> char {
        self.0.sep()
    }

    async fn list(&self) -> Result<Vec<MailboxInfo>> {
        self.run(|u| u.list()).await
    }

    async fn subscriptions(&self) -> Result<Vec<String>> {
        self.run(|u| {
            Ok(u.read_subscriptions()?
                .into_iter()
                .map(|c| c.join(&u.sep().to_string()))
                .collect())
        })
        .await
    }

    async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()> {
        let name = name.to_owned();
        self.run(move |u| u.create(&name, special_use)).await
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.run(move |u| u.delete(&name)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let f = self.0.parse(from, false)?;
        let t = self.0.parse(to, false)?;
        if t.is_inbox() || f == t {
            return Err(StorageError::AlreadyExists);
        }
        if t.is_below(&f) {
            return Err(StorageError::Cannot(
                "cannot rename a mailbox into its own child",
            ));
        }
        if f.is_inbox() {
            // RFC 3501 6.3.5: move INBOX's messages into a new mailbox;
            // INBOX stays, empty, and its children are not touched.
            let to = to.to_owned();
            return self
                .run(move |u| {
                    u.create(&to, None)?;
                    let inbox = u.state(&f)?;
                    let (snap, _) = inbox.sync(false, false)?;
                    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
                    u.copy(&inbox, &uids, &to, true).map(|_| ())
                })
                .await;
        }
        self.run(move |u| u.rename_folders(&f, &t)).await
    }

    async fn subscribe(&self, name: &str) -> Result<()> {
        let n = self.0.parse(name, false)?;
        self.run(move |u| u.set_subscribed(&n, true)).await
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        let n = self.0.parse(name, false)?;
        self.run(move |u| u.set_subscribed(&n, false)).await
    }

    async fn status(&self, name: &str) -> Result<MailboxStatus> {
        let name = name.to_owned();
        self.run(move |u| u.status(&name)).await
    }

    async fn open(&self, name: &str, options: OpenOptions) -> Result<View> {
        let n = self.0.parse(name, false)?;
        let ctx = self.0.clone();
        // Finding the state and syncing it in one trip to a blocking thread.
        let claim = options.claim_recent && !options.read_only;
        let (state, changes, synced) = self
            .run(move |u| {
                let state = u.state(&n)?;
                let mut changes = state.subscribe();
                changes.borrow_and_update();
                let (snapshot, recent) = state.sync(true, claim)?;
                Ok((state, changes, SyncOutcome { snapshot, recent }))
            })
            .await?;
        let handle = Arc::new(MaildirMailbox {
            name: name.to_owned(),
            state,
            user: ctx,
            watching: AtomicBool::new(false),
        });
        Ok(View::from_sync(handle, options, changes, synced))
    }

    async fn append(&self, name: &str, message: AppendMessage) -> Result<AppendResult> {
        let name = name.to_owned();
        self.run(move |u| u.append(&name, message)).await
    }

    async fn append_stream(&self, name: &str) -> Result<Box<dyn AppendStream>> {
        let n = self.0.parse(name, false)?;
        let (state, file, path, room) = self
            .run(move |u| {
                let state = u.state(&n)?;
                quota::check(&u.root, &u.limits, u.fsync(), 0, 1)?;
                let room =
                    match u.limits.bytes {
                        Some(limit) => Some(limit.saturating_sub(
                            quota::usage(&u.root, &u.limits, u.fsync())?.bytes_used,
                        )),
                        None => None,
                    };
                let (file, path) = state.create_tmp()?;
                Ok((state, file, path, room))
            })
            .await?;
        Ok(Box::new(MaildirAppend {
            state,
            user: self.0.clone(),
            file: Some(file),
            path,
            len: 0,
            room,
            counter: filename::VirtualCounter::default(),
            done: false,
        }))
    }

    async fn quota(&self) -> Result<QuotaUsage> {
        self.run(|u| quota::usage(&u.root, &u.limits, u.fsync()))
            .await
    }

    async fn pop3_lock(&self) -> Result<Pop3Lock> {
        self.run(|u| {
            let f = open_lock_file(&u.root.join(POP3_LOCK_FILE))?;
            if !flock(&f, LockMode::TryExclusive).map_err(|e| StorageError::io("pop3 lock", e))? {
                return Err(StorageError::InUse);
            }
            // Closing the descriptor (dropping the guard) releases the flock.
            Ok(Pop3Lock(Box::new(f)))
        })
        .await
    }

    async fn pop3_expire(&self, days: u32) -> Result<Vec<u32>> {
        self.run(move |u| {
            let inbox = u.state(&MailboxName::from_components(vec!["INBOX".to_owned()]))?;
            let cutoff = now_secs() - i64::from(days) * 86_400;
            let uids = inbox.downloaded_before(cutoff)?;
            if uids.is_empty() {
                return Ok(uids);
            }
            let (gone, usage) = inbox.expunge(Some(&uids), true)?;
            quota::add(&u.root, usage.bytes, usage.messages);
            Ok(gone)
        })
        .await
    }
}

/// A streamed append: a file in the mailbox's `tmp/`, moved into `cur/` on
/// commit, removed if dropped before.
struct MaildirAppend {
    state: Arc<MailboxState>,
    user: Arc<UserCtx>,
    file: Option<std::fs::File>,
    path: PathBuf,
    len: u64,
    /// Bytes the user may still store (`None`: no byte limit).
    room: Option<u64>,
    counter: filename::VirtualCounter,
    done: bool,
}

impl Drop for MaildirAppend {
    fn drop(&mut self) {
        if !self.done {
            // One unlink of our own temp file: cheap enough for any thread.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[async_trait]
impl AppendStream for MaildirAppend {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        let len = self.len.saturating_add(data.len() as u64);
        if self.room.is_some_and(|r| len > r) {
            return Err(StorageError::OverQuota);
        }
        let mut file = self
            .file
            .take()
            .ok_or_else(|| StorageError::Temporary("append stream broken".into()))?;
        let chunk = data.to_vec();
        let (file, res) = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let r = file.write_all(&chunk);
            (file, r)
        })
        .await
        .map_err(|e| StorageError::Temporary(format!("storage worker failed: {e}")))?;
        res.map_err(|e| StorageError::io("write message", e))?;
        self.file = Some(file);
        self.counter.feed(data);
        self.len = len;
        Ok(())
    }

    fn reserve(&mut self, size: u64) -> Result<()> {
        if self.room.is_some_and(|r| size > r) {
            return Err(StorageError::OverQuota);
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    async fn commit(
        mut self: Box<Self>,
        flags: SystemFlags,
        keywords: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<AppendResult> {
        let file = self
            .file
            .take()
            .ok_or_else(|| StorageError::Temporary("append stream broken".into()))?;
        let state = self.state.clone();
        let user = self.user.clone();
        let path = self.path.clone();
        let (phys, virt) = (self.len, self.len.saturating_add(self.counter.bare_lf()));
        let date = internal_date.unwrap_or_else(now_secs);
        let res = blocking(move || {
            // Room was measured when the stream started; other appends may have used it since.
            quota::check(&user.root, &user.limits, user.fsync(), phys, 1)?;
            state.finish_tmp(&file, date)?;
            drop(file);
            let base = filename::new_base(phys, virt);
            let (uidvalidity, uids) =
                state.commit_new(vec![(path, base, date, flags, keywords)])?;
            quota::add(&user.root, i64::try_from(phys).unwrap_or(i64::MAX), 1);
            let uid = uids
                .first()
                .copied()
                .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
            Ok(AppendResult { uidvalidity, uid })
        })
        .await;
        // commit_new renamed the temp file, or removed it on failure; a
        // failure before that leaves it for Drop.
        if res.is_ok() {
            self.done = true;
        }
        res
    }
}

/// A Maildir mailbox as a [`MailboxHandle`]; one per view.
struct MaildirMailbox {
    name: String,
    state: Arc<MailboxState>,
    user: Arc<UserCtx>,
    watching: AtomicBool,
}

impl Drop for MaildirMailbox {
    fn drop(&mut self) {
        if self.watching.load(Ordering::Relaxed) {
            watch::unwatch(&self.user.shared, &self.state);
        }
    }
}

impl MaildirMailbox {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arc<MailboxState>, &UserCtx) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = self.state.clone();
        let user = self.user.clone();
        blocking(move || f(&state, &user)).await
    }
}

impl MaildirMailbox {
    /// Opens a message and reads its head on this (runtime) thread when that needs neither a
    /// lock another thread holds nor the disk (`content::open_cached`, `content::read_cached`);
    /// `None` sends the caller to the blocking path, which also handles a file renamed meanwhile.
    fn open_from_cache(&self, uid: u32, max_head: usize) -> Option<Message> {
        let (path, phys, virt) = self.state.try_locate(uid)?;
        let file = content::open_cached(&path).ok()?;
        opened(uid, phys, virt, file, max_head, content::read_cached).ok()
    }
}

/// Opens the file of `uid` and reads up to `max_head` of its first bytes. Blocking.
fn open_file(s: &MailboxState, uid: u32, max_head: usize) -> Result<Message> {
    let (file, phys, virt) = open_std(s, uid, None)?.ok_or(StorageError::Expunged)?;
    opened(uid, phys, virt, file, max_head, content::read_at)
        .map_err(|e| StorageError::io("open message", e))
}

/// The [`Message`] of an opened message file, with up to `max_head` of its first bytes read
/// with `read` (at most one beyond the recorded size, so a message of that size is known to be
/// read to its end).
fn opened(
    uid: u32,
    phys_size: u64,
    virt_size: u64,
    file: std::fs::File,
    max_head: usize,
    read: fn(&std::fs::File, u64, &mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<Message> {
    let want = usize::try_from(phys_size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .min(max_head);
    let head = if want == 0 {
        Head::default()
    } else {
        let mut bytes = vec![0u8; want];
        let n = read(&file, 0, &mut bytes)?;
        bytes.truncate(n);
        Head {
            complete: n < want,
            bytes,
        }
    };
    Ok(Message {
        uid,
        phys_size,
        virt_size,
        content: Arc::new(MaildirContent::new(file, phys_size)),
        head,
    })
}

/// Opens a message file for blocking reads with its physical and virtual sizes; `None` when it
/// was expunged. With `dirs`, the file is opened by name relative to its already open directory.
fn open_std(
    s: &MailboxState,
    uid: u32,
    mut dirs: Option<&mut MessageDirs>,
) -> Result<Option<(std::fs::File, u64, u64)>> {
    for attempt in 0..2 {
        let located = match dirs.as_deref_mut() {
            Some(d) => s.open_in(uid, d),
            None => s
                .locate(uid)
                .map(|(path, phys, virt)| (std::fs::File::open(path), phys, virt)),
        };
        let Some((opened, phys_size, virt_size)) = located else {
            return Ok(None);
        };
        match opened {
            Ok(file) => return Ok(Some((file, phys_size, virt_size))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt == 0 => {
                // Renamed or expunged by someone else: look again.
                s.rescan()?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("open message", e)),
        }
    }
    Ok(None)
}

/// Reads `part` of each of `uids`, one file open at a time (`None`: expunged). Blocking: the
/// whole batch is one trip to a blocking worker.
fn read_many(s: &MailboxState, uids: &[u32], part: ReadPart) -> Result<Vec<Option<Bytes>>> {
    let mut out = Vec::with_capacity(uids.len());
    let mut dirs = MessageDirs::default();
    let mut run = LocatedRun::default();
    for chunk in uids.chunks(VISIT_LOCATE_CHUNK) {
        s.locate_many(chunk, &mut run);
        for (&uid, found) in chunk.iter().zip(run.files()) {
            let file = match found {
                None => None,
                Some(l) => match dirs.open_located(s.dir(), &run, l) {
                    Ok(file) => Some((file, l.phys_size)),
                    // Renamed or expunged since it was located: look again. open_std first asks
                    // for the current name (another worker may have rescanned already) and
                    // rescans only if that fails too, so the rest of a stale chunk costs no
                    // rescan each.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        open_std(s, uid, Some(&mut dirs))?.map(|(f, phys, _)| (f, phys))
                    }
                    Err(e) => return Err(StorageError::io("open message", e)),
                },
            };
            out.push(match file {
                None => None,
                Some((f, phys)) => Some(Bytes::from(
                    content::read_part(&f, phys, part)
                        .map_err(|e| StorageError::io("read message", e))?,
                )),
            });
        }
    }
    Ok(out)
}

#[async_trait]
impl MailboxHandle for MaildirMailbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn changes(&self) -> tokio_watch::Receiver<u64> {
        self.state.subscribe()
    }

    async fn watch(&self) -> Result<()> {
        if self.watching.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        // Adding an inotify watch walks the directory's cached entries:
        // milliseconds for 100,000 files, so not on a runtime thread.
        let shared = self.user.shared.clone();
        let state = self.state.clone();
        blocking(move || {
            watch::watch(&shared, &state);
            Ok(())
        })
        .await
    }

    async fn sync(&self, claim_recent: bool) -> Result<SyncOutcome> {
        self.run(move |s, _| {
            let (snapshot, recent) = s.sync(true, claim_recent)?;
            Ok(SyncOutcome { snapshot, recent })
        })
        .await
    }

    async fn store(&self, uids: Vec<u32>, request: StoreRequest) -> Result<StoreResult> {
        self.run(move |s, _| s.store(&uids, &request)).await
    }

    async fn expunge(&self, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        self.run(move |s, u| {
            let (gone, usage) = s.expunge(uids.as_deref(), false)?;
            quota::add(&u.root, usage.bytes, usage.messages);
            Ok(gone)
        })
        .await
    }

    async fn copy(&self, uids: Vec<u32>, dest: &str, move_: bool) -> Result<CopyResult> {
        let dest = dest.to_owned();
        self.run(move |s, u| u.copy(s, &uids, &dest, move_)).await
    }

    async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message> {
        if let Some(m) = self.open_from_cache(uid, max_head) {
            return Ok(m);
        }
        self.run(move |s, _| open_file(s, uid, max_head)).await
    }

    async fn read_messages(&self, uids: Vec<u32>, part: ReadPart) -> Result<Vec<Option<Bytes>>> {
        self.run(move |s, _| read_many(s, &uids, part)).await
    }

    async fn resolve_dates(&self, uids: Vec<u32>) -> Result<Vec<(u32, i64)>> {
        self.run(move |s, _| s.resolve_dates(&uids)).await
    }

    async fn cache_get_prefix(
        &self,
        uids: Vec<u32>,
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>> {
        if let Some(got) = self.state.try_cache_get(&uids, field.0, max_bytes) {
            return Ok(got);
        }
        self.run(move |s, _| s.cache_get(&uids, field.0, max_bytes))
            .await
    }

    async fn cache_put_fields(&self, fields: Vec<(CacheField, Vec<(u32, Bytes)>)>) -> Result<()> {
        let fields: Vec<(u8, Vec<(u32, Bytes)>)> =
            fields.into_iter().map(|(f, e)| (f.0, e)).collect();
        self.run(move |s, _| s.cache_put(&fields)).await
    }

    async fn pop3_mark_downloaded(&self, uids: Vec<u32>) -> Result<()> {
        self.run(move |s, _| s.mark_downloaded(&uids)).await
    }
}
