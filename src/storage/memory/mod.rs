//! The memory backend: every user's mail in process memory, selected with
//! `[mail] location = "memory:"`.
//!
//! It is the reference implementation of the storage traits, small enough to read in one
//! sitting, and what the tests run against besides Maildir (`tests/storage_conformance.rs`, and
//! the wire tests with `MAILCOVE_TEST_BACKEND=memory`). Everything is lost when the process
//! exits: do not use it for real mail.
//!
//! * Per user (`UserData`): the mailbox tree as a map from hierarchy levels to mailbox states,
//!   subscriptions, special-use attributes, quota usage, the last UIDVALIDITY handed out and the
//!   POP3 maildrop flag.
//! * Per mailbox (`mailbox::MailboxState`): the message list every view shares, the message
//!   bytes, the keyword table and a watch channel bumped on every change.
//! * Message content: the stored [`Bytes`] is the [`super::MessageContent`] handed out (reads
//!   answer at once, nothing is copied); a COPY shares the buffer with its source.
//! * Locks: a user's mutex is taken before any of its mailboxes' mutexes, and two mailboxes
//!   (COPY, MOVE) are locked in address order. No lock is held across an `.await`.
//!
//! Memory stays bounded by the same limits as Maildir: the message size
//! ([`MemoryOptions::max_message_size`]), [`MAX_MAILBOXES_PER_USER`], the keyword table width,
//! [`crate::limits::MAX_CACHE_ENTRY_BYTES`] per cached blob, and the per-user quota.

mod mailbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use self::mailbox::{MailboxState, NewMessage};
use super::metadata::{self, MetadataChange, MetadataMap};
use super::names::MailboxName;
use super::stream::{Gathered, stored_size_limit};
use super::{
    AppendManyResult, AppendMessage, AppendResult, AppendStream, CacheField, CopyResult, Head,
    ImportMessage, MailboxHandle, MailboxInfo, MailboxStatus, Message, OpenOptions, PendingAppend,
    Pop3Lock, QuotaUsage, ReadPart, Result, SpecialUse, Storage, StorageError, StorageUser,
    StoreRequest, StoreResult, SyncOutcome, SystemFlags, UserStore, Vanished, View,
};
use crate::limits::{DEFAULT_MAX_MESSAGE_SIZE, MAX_MAILBOXES_PER_USER};

/// The `[mail] location` value that selects this backend.
pub const LOCATION: &str = "memory:";

/// How the memory backend is set up (built from the config like [`super::maildir::MaildirOptions`]).
#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// Hierarchy separator on the wire (default `/`).
    pub separator: char,
    /// Default byte quota (0 = unlimited).
    pub quota_bytes: u64,
    /// Default message-count quota (0 = unlimited).
    pub quota_messages: u64,
    /// Mailboxes created (and subscribed) at login when missing.
    pub autocreate: Vec<(String, Option<SpecialUse>)>,
    /// Largest message stored; a bigger one is refused (`Cannot`).
    pub max_message_size: u64,
    /// Keep a full-text index ([`crate::fts`]) per user, in memory.
    pub fts: bool,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            separator: '/',
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            fts: true,
        }
    }
}

/// The memory [`Storage`]; see the module docs.
pub struct MemoryStorage {
    options: Arc<MemoryOptions>,
    users: Mutex<HashMap<String, Arc<UserData>>>,
}

impl MemoryStorage {
    /// An empty store; refuses a separator that cannot work (as Maildir does).
    pub fn new(options: MemoryOptions) -> Result<Self> {
        let sep = options.separator;
        if !sep.is_ascii_punctuation() || "&\"\\%*".contains(sep) {
            return Err(StorageError::Invalid("unusable hierarchy separator"));
        }
        Ok(MemoryStorage {
            options: Arc::new(options),
            users: Mutex::new(HashMap::new()),
        })
    }
}

type Levels = Vec<String>;

/// One user's mail.
struct UserData {
    inner: Mutex<UserInner>,
    /// Held by one POP3 session at a time.
    pop3_locked: Arc<AtomicBool>,
    /// The user's change feed (NOTIFY), shared by all its sessions.
    feed: super::ChangeFeed,
    /// The user's full-text index in RAM, made when first asked for.
    fts: std::sync::OnceLock<Arc<crate::fts::TantivyFts>>,
}

struct UserInner {
    /// Selectable mailboxes; parents missing here are implicit (`\Noselect`).
    mailboxes: BTreeMap<Levels, Arc<MailboxState>>,
    subscriptions: Vec<Levels>,
    special_use: HashMap<Levels, SpecialUse>,
    bytes_used: u64,
    messages_used: u64,
    /// Last UIDVALIDITY handed out: a mailbox deleted and created again gets a new one.
    last_uidvalidity: u32,
    /// METADATA (RFC 5464) entries per mailbox, and the server entries under `None`; a mailbox
    /// without entries has no key. Moved by RENAME, removed by DELETE.
    metadata: HashMap<Option<Levels>, MetadataMap>,
}

impl UserInner {
    fn new_uidvalidity(&mut self) -> u32 {
        let now = u32::try_from(now_secs()).unwrap_or(u32::MAX);
        let next = now.max(self.last_uidvalidity.saturating_add(1)).max(1);
        self.last_uidvalidity = next;
        next
    }

    fn create(&mut self, n: &MailboxName) -> Result<Arc<MailboxState>> {
        if self.mailboxes.contains_key(n.components()) {
            return Err(StorageError::AlreadyExists);
        }
        if self.mailboxes.len() >= MAX_MAILBOXES_PER_USER {
            return Err(StorageError::Cannot("too many mailboxes"));
        }
        let state = MailboxState::new(self.new_uidvalidity());
        self.mailboxes
            .insert(n.components().to_vec(), state.clone());
        Ok(state)
    }

    fn get(&self, n: &MailboxName) -> Result<Arc<MailboxState>> {
        self.mailboxes
            .get(n.components())
            .cloned()
            .ok_or(StorageError::NonExistent)
    }
}

/// Effective limits of one user (`None` = unlimited).
#[derive(Debug, Clone, Copy)]
struct Limits {
    bytes: Option<u64>,
    messages: Option<u64>,
}

impl Limits {
    /// Refuses adding `bytes` in `messages` messages to `u` when a limit would be exceeded.
    fn check(&self, u: &UserInner, bytes: u64, messages: u64) -> Result<()> {
        if self
            .bytes
            .is_some_and(|l| u.bytes_used.saturating_add(bytes) > l)
            || self
                .messages
                .is_some_and(|l| u.messages_used.saturating_add(messages) > l)
        {
            return Err(StorageError::OverQuota);
        }
        Ok(())
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn user(&self, user: &StorageUser) -> Result<Arc<dyn UserStore>> {
        if user.name.is_empty() || user.name.chars().any(char::is_control) {
            return Err(StorageError::Invalid(
                "user name unusable in a mail location",
            ));
        }
        let pick = |v: Option<u64>, d: u64| match v.unwrap_or(d) {
            0 => None,
            n => Some(n),
        };
        let data = self
            .users
            .lock()
            .entry(user.name.clone())
            .or_insert_with(|| {
                Arc::new(UserData {
                    inner: Mutex::new(UserInner {
                        mailboxes: BTreeMap::new(),
                        subscriptions: Vec::new(),
                        special_use: HashMap::new(),
                        bytes_used: 0,
                        messages_used: 0,
                        last_uidvalidity: 0,
                        metadata: HashMap::new(),
                    }),
                    pop3_locked: Arc::new(AtomicBool::new(false)),
                    feed: super::ChangeFeed::default(),
                    fts: std::sync::OnceLock::new(),
                })
            })
            .clone();
        let store = MemoryUser {
            data,
            origin: super::feed::next_origin(),
            options: self.options.clone(),
            limits: Limits {
                bytes: pick(user.quota_bytes, self.options.quota_bytes),
                messages: pick(user.quota_messages, self.options.quota_messages),
            },
        };
        store.init()?;
        Ok(Arc::new(store))
    }
}

/// [`UserStore`] of the memory backend.
struct MemoryUser {
    data: Arc<UserData>,
    /// Stamped on the changes this store publishes.
    origin: u64,
    options: Arc<MemoryOptions>,
    limits: Limits,
}

impl MemoryUser {
    fn sep(&self) -> char {
        self.options.separator
    }

    fn parse(&self, name: &str, allow_trailing: bool) -> Result<MailboxName> {
        MailboxName::parse(name, self.sep(), allow_trailing)
    }

    /// INBOX and the autocreate mailboxes, when missing.
    fn init(&self) -> Result<()> {
        let inbox = MailboxName::from_components(vec!["INBOX".to_owned()]);
        let mut u = self.data.inner.lock();
        if u.get(&inbox).is_err() {
            u.create(&inbox)?;
        }
        for (name, special) in &self.options.autocreate {
            let n = self.parse(name, true)?;
            if u.get(&n).is_ok() || n.is_inbox() {
                continue;
            }
            u.create(&n)?;
            if let Some(su) = special {
                u.special_use.insert(n.components().to_vec(), *su);
            }
            if !u.subscriptions.iter().any(|s| s == n.components()) {
                u.subscriptions.push(n.components().to_vec());
            }
        }
        Ok(())
    }

    /// The key of a mailbox's METADATA entries (`None`: the server entries).
    fn metadata_key(&self, mailbox: Option<&str>) -> Result<Option<Levels>> {
        mailbox
            .map(|name| Ok(self.parse(name, false)?.components().to_vec()))
            .transpose()
    }

    /// RENAME of INBOX: `to` gets a copy of `from`'s METADATA entries (within the limits).
    fn metadata_copy_inbox(&self, from: &MailboxName, to: &MailboxName) -> Result<()> {
        let mut u = self.data.inner.lock();
        let Some(map) = u.metadata.get(&Some(from.components().to_vec())).cloned() else {
            return Ok(());
        };
        let key = Some(to.components().to_vec());
        let others: u64 = u
            .metadata
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, m)| metadata::map_bytes(m))
            .sum();
        let mut copy = MetadataMap::new();
        metadata::apply(
            &mut copy,
            map.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            others,
        )?;
        u.metadata.insert(key, copy);
        Ok(())
    }

    fn ctx(&self) -> Arc<UserCtx> {
        Arc::new(UserCtx {
            data: self.data.clone(),
            origin: self.origin,
            options: self.options.clone(),
            limits: self.limits,
        })
    }

    fn append_now(&self, name: &str, msg: AppendMessage) -> Result<AppendResult> {
        let n = self.parse(name, false)?;
        self.ctx().append(&n, msg)
    }
}

/// What a mailbox handle and an append stream need of their user.
struct UserCtx {
    data: Arc<UserData>,
    /// The origin of the store this context came from.
    origin: u64,
    options: Arc<MemoryOptions>,
    limits: Limits,
}

impl UserCtx {
    /// The user's store again (same data and origin), for the background indexer.
    fn store(&self) -> MemoryUser {
        MemoryUser {
            data: self.data.clone(),
            origin: self.origin,
            options: self.options.clone(),
            limits: self.limits,
        }
    }

    /// Publishes a change of `mailbox` to the user's feed.
    fn publish(&self, mailbox: Option<String>, kind: super::ChangeKind) {
        if matches!(kind, super::ChangeKind::MessageNew)
            && let Some(name) = &mailbox
        {
            self.index_soon(name);
        }
        self.data.feed.publish(super::Change {
            mailbox,
            kind,
            origin: self.origin,
        });
    }

    /// Queues mailbox `name` for the background full-text indexer after new mail was committed
    /// into it ([`crate::fts::indexer::enqueue`]; never waits).
    fn index_soon(&self, name: &str) {
        if !self.options.fts {
            return;
        }
        let store = self.store();
        let dedup = format!("memory:{:p}\u{0}{name}", Arc::as_ptr(&self.data));
        crate::fts::indexer::enqueue(Arc::new(store), name.to_owned(), dedup);
    }

    /// Queues the removal of the index entries of a deleted mailbox (its [`MailboxState`]).
    fn purge_soon(&self, state: &MailboxState) {
        if !self.options.fts {
            return;
        }
        let store = self.store();
        // As MemoryMailbox::identity.
        let identity = format!("memory:{}", state.serial());
        crate::fts::indexer::enqueue_purge(Arc::new(store), identity);
    }

    fn append(&self, n: &MailboxName, msg: AppendMessage) -> Result<AppendResult> {
        let len = msg.data.len() as u64;
        if len > stored_size_limit(self.options.max_message_size) {
            return Err(StorageError::Cannot("message too large"));
        }
        let mut u = self.data.inner.lock();
        let state = u.get(n)?;
        self.limits.check(&u, len, 1)?;
        let date = msg.internal_date.unwrap_or_else(now_secs);
        let (uidvalidity, uid) = state.change(|m| {
            let uids = m.add(vec![NewMessage {
                data: msg.data,
                system: msg.flags,
                keywords: msg.keywords,
                date,
                email: None,
            }])?;
            let uid = uids
                .first()
                .copied()
                .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
            Ok(((m.uidvalidity, uid), true))
        })?;
        u.bytes_used += len;
        u.messages_used += 1;
        drop(u);
        self.publish(
            Some(n.to_wire(self.options.separator)),
            super::ChangeKind::MessageNew,
        );
        Ok(AppendResult { uidvalidity, uid })
    }

    /// COPY or MOVE of `uids` from `src` to the mailbox `dest`, all or nothing.
    fn copy(
        &self,
        src: &Arc<MailboxState>,
        uids: &[u32],
        dest: &str,
        move_: bool,
    ) -> Result<CopyResult> {
        let dn = MailboxName::parse(dest, self.options.separator, false)?;
        let mut u = self.data.inner.lock();
        let dst = u.get(&dn)?;
        let same = Arc::ptr_eq(src, &dst);
        // Both mailboxes locked (in address order) for the whole copy, so what is copied is what
        // is expunged for a move, and nobody sees half of it.
        let (mut sg, mut dg) = if same {
            (src.lock(), None)
        } else if Arc::as_ptr(src) < Arc::as_ptr(&dst) {
            let s = src.lock();
            (s, Some(dst.lock()))
        } else {
            let d = dst.lock();
            (src.lock(), Some(d))
        };
        if sg.deleted || dg.as_ref().is_some_and(|d| d.deleted) {
            return Err(StorageError::NonExistent);
        }
        let sources = sg.sources(uids);
        let bytes: u64 = sources.iter().map(|(_, m, ..)| m.phys_size).sum();
        let count = sources.len() as u64;
        if !move_ {
            self.limits.check(&u, bytes, count)?;
        }
        let src_uids: Vec<u32> = sources.iter().map(|(uid, ..)| *uid).collect();
        let new: Vec<NewMessage> = sources
            .into_iter()
            .map(|(uid, m, keywords, data)| NewMessage {
                data,
                system: m.flags.system,
                keywords,
                date: m.internal_date.get().unwrap_or_else(now_secs),
                // RFC 8474 5.1: a copy has its source's EMAILID.
                email: sg.email_of(uid),
            })
            .collect();
        let target = match dg.as_deref_mut() {
            Some(d) => d,
            None => &mut *sg,
        };
        let uidvalidity = target.uidvalidity;
        let new_uids = target.add(new)?;
        if move_ {
            // The source may be the target too: the new copies are not in `src_uids`.
            sg.expunge(Some(&src_uids), true);
        } else {
            u.bytes_used += bytes;
            u.messages_used += count;
        }
        drop(dg);
        drop(sg);
        drop(u);
        if !src_uids.is_empty() {
            dst.poke();
            if move_ && !same {
                src.poke();
            }
        }
        Ok(CopyResult {
            uidvalidity,
            mapping: src_uids.into_iter().zip(new_uids).collect(),
        })
    }

    /// Expunges and gives the quota back.
    fn expunge(&self, state: &MailboxState, uids: Option<&[u32]>, force: bool) -> Result<Vec<u32>> {
        let mut u = self.data.inner.lock();
        let (gone, bytes) = state.change(|m| {
            let (gone, bytes) = m.expunge(uids, force);
            let changed = !gone.is_empty();
            Ok(((gone, bytes), changed))
        })?;
        u.bytes_used = u.bytes_used.saturating_sub(bytes);
        u.messages_used = u.messages_used.saturating_sub(gone.len() as u64);
        Ok(gone)
    }
}

#[async_trait]
impl UserStore for MemoryUser {
    fn separator(&self) -> char {
        self.sep()
    }

    async fn list(&self) -> Result<Vec<MailboxInfo>> {
        let u = self.data.inner.lock();
        let mut all: BTreeMap<&[String], bool> = BTreeMap::new();
        for k in u.mailboxes.keys() {
            all.insert(k, true);
            for depth in 1..k.len() {
                all.entry(k.get(..depth).unwrap_or_default())
                    .or_insert(false);
            }
        }
        let mut autocreated: HashMap<Levels, SpecialUse> = HashMap::new();
        for (name, su) in &self.options.autocreate {
            if let (Some(su), Ok(n)) = (su, self.parse(name, true)) {
                autocreated.insert(n.components().to_vec(), *su);
            }
        }
        let keys: Vec<&[String]> = all.keys().copied().collect();
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let has_children = keys
                .get(i + 1)
                .is_some_and(|next| next.len() > k.len() && next.starts_with(k));
            out.push(MailboxInfo {
                name: MailboxName::from_components(k.to_vec()).to_wire(self.sep()),
                noselect: !all.get(k).copied().unwrap_or(false),
                has_children,
                special_use: u
                    .special_use
                    .get(*k)
                    .or_else(|| autocreated.get(*k))
                    .copied(),
                subscribed: u.subscriptions.iter().any(|s| s.as_slice() == *k),
            });
        }
        // INBOX first, as clients expect.
        out.sort_by_key(|m| m.name != "INBOX");
        Ok(out)
    }

    async fn subscriptions(&self) -> Result<Vec<String>> {
        let sep = self.sep().to_string();
        Ok(self
            .data
            .inner
            .lock()
            .subscriptions
            .iter()
            .map(|s| s.join(&sep))
            .collect())
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        user_fts(&self.data, &self.options)
    }

    async fn rebuild_index(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        self.data.inner.lock().get(&n)?;
        Err(StorageError::Cannot(
            "the memory backend keeps no index or cache apart from the messages: nothing to rebuild",
        ))
    }

    async fn mailbox_id(&self, name: &str) -> Result<String> {
        let n = self.parse(name, false)?;
        // The state's serial is never reused and RENAME moves the state: kept by a rename, new
        // for a mailbox created again.
        let state = self.data.inner.lock().get(&n)?;
        Ok(mailbox::object_id('F', state.serial()))
    }

    async fn metadata_get(&self, mailbox: Option<&str>) -> Result<MetadataMap> {
        let key = self.metadata_key(mailbox)?;
        let u = self.data.inner.lock();
        if let Some(levels) = &key {
            u.get(&MailboxName::from_components(levels.clone()))?;
        }
        Ok(u.metadata.get(&key).cloned().unwrap_or_default())
    }

    async fn metadata_set(
        &self,
        mailbox: Option<&str>,
        changes: Vec<MetadataChange>,
    ) -> Result<()> {
        let key = self.metadata_key(mailbox)?;
        let mut u = self.data.inner.lock();
        if let Some(levels) = &key {
            u.get(&MailboxName::from_components(levels.clone()))?;
        }
        let others: u64 = u
            .metadata
            .iter()
            .filter(|(k, _)| **k != key)
            .map(|(_, m)| metadata::map_bytes(m))
            .sum();
        let mut map = u.metadata.get(&key).cloned().unwrap_or_default();
        metadata::apply(&mut map, changes, others)?;
        if map.is_empty() {
            u.metadata.remove(&key);
        } else {
            u.metadata.insert(key, map);
        }
        Ok(())
    }

    async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()> {
        let n = self.parse(name, true)?;
        if n.is_inbox() {
            return Err(StorageError::AlreadyExists);
        }
        let mut u = self.data.inner.lock();
        u.create(&n)?;
        if let Some(su) = special_use {
            u.special_use.insert(n.components().to_vec(), su);
        }
        drop(u);
        self.ctx().publish(
            Some(n.to_wire(self.sep())),
            super::ChangeKind::MailboxCreated,
        );
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        if n.is_inbox() {
            return Err(StorageError::Cannot("INBOX cannot be deleted"));
        }
        let mut u = self.data.inner.lock();
        let Some(state) = u.mailboxes.remove(n.components()) else {
            let has_children = u.mailboxes.keys().any(|k| {
                let k = MailboxName::from_components(k.clone());
                k.is_below(&n)
            });
            return Err(if has_children {
                StorageError::Cannot(crate::storage::HAS_CHILDREN_NOT_SELECTABLE)
            } else {
                StorageError::NonExistent
            });
        };
        let (bytes, count) = state.lock().usage();
        u.bytes_used = u.bytes_used.saturating_sub(bytes);
        u.messages_used = u.messages_used.saturating_sub(count);
        u.special_use.remove(n.components());
        u.metadata.remove(&Some(n.components().to_vec()));
        drop(u);
        state.mark_deleted();
        self.ctx().purge_soon(&state);
        self.ctx().publish(
            Some(n.to_wire(self.sep())),
            super::ChangeKind::MailboxDeleted,
        );
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let f = self.parse(from, false)?;
        let t = self.parse(to, false)?;
        if t.is_inbox() || f == t {
            return Err(StorageError::AlreadyExists);
        }
        if t.is_below(&f) {
            return Err(StorageError::Cannot(
                "cannot rename a mailbox into its own child",
            ));
        }
        if f.is_inbox() {
            // RFC 3501 6.3.5: INBOX's messages move into a new mailbox; INBOX stays, empty, and
            // its children are not touched.
            self.create(to, None).await?;
            // RFC 5464 4.1: the new mailbox gets a copy of INBOX's METADATA; INBOX keeps them.
            self.metadata_copy_inbox(&f, &t)?;
            let ctx = self.ctx();
            let inbox = self.data.inner.lock().get(&f)?;
            let uids: Vec<u32> = inbox.lock().list.iter().map(|m| m.uid).collect();
            ctx.copy(&inbox, &uids, to, true)?;
            ctx.index_soon(to);
            if !uids.is_empty() {
                ctx.publish(Some("INBOX".to_owned()), super::ChangeKind::MessageExpunge);
            }
            return Ok(());
        }
        let mut u = self.data.inner.lock();
        let mut moves: Vec<(Levels, Levels)> = Vec::new();
        for k in u.mailboxes.keys() {
            let old = MailboxName::from_components(k.clone());
            if old == f || old.is_below(&f) {
                let target = old
                    .reparent(&f, &t)
                    .ok_or(StorageError::Invalid("rename"))?;
                if target.components().len() > crate::limits::MAX_MAILBOX_DEPTH
                    || target.to_wire(self.sep()).len() > crate::limits::MAX_MAILBOX_NAME_BYTES
                {
                    return Err(StorageError::InvalidName("name too long"));
                }
                moves.push((k.clone(), target.components().to_vec()));
            }
        }
        if moves.is_empty() {
            return Err(StorageError::NonExistent);
        }
        if moves.iter().any(|(_, t)| u.mailboxes.contains_key(t)) {
            return Err(StorageError::AlreadyExists);
        }
        for (old, new) in moves {
            if let Some(state) = u.mailboxes.remove(&old) {
                u.mailboxes.insert(new.clone(), state);
            }
            if let Some(m) = u.metadata.remove(&Some(old.clone())) {
                u.metadata.insert(Some(new.clone()), m);
            }
            if let Some(su) = u.special_use.remove(&old) {
                u.special_use.insert(new, su);
            }
        }
        drop(u);
        self.ctx().publish(
            Some(t.to_wire(self.sep())),
            super::ChangeKind::MailboxRenamed {
                old: f.to_wire(self.sep()),
            },
        );
        Ok(())
    }

    async fn subscribe(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        let mut u = self.data.inner.lock();
        if !u.subscriptions.iter().any(|s| s == n.components()) {
            if u.subscriptions.len() >= MAX_MAILBOXES_PER_USER {
                return Err(StorageError::Cannot("too many subscriptions"));
            }
            u.subscriptions.push(n.components().to_vec());
        }
        drop(u);
        self.ctx().publish(
            Some(n.to_wire(self.sep())),
            super::ChangeKind::SubscriptionChanged,
        );
        Ok(())
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        self.data
            .inner
            .lock()
            .subscriptions
            .retain(|s| s != n.components());
        self.ctx().publish(
            Some(n.to_wire(self.sep())),
            super::ChangeKind::SubscriptionChanged,
        );
        Ok(())
    }

    fn origin(&self) -> u64 {
        self.origin
    }

    async fn subscribe_changes(&self) -> Result<super::FeedSubscription> {
        // Nothing changes a memory store outside this process: the feed is all there is.
        Ok(super::FeedSubscription::new(
            &self.data.feed,
            self.origin,
            None,
        ))
    }

    fn publish_metadata_change(&self, mailbox: Option<&str>, entries: &[String]) {
        let sep = self.sep();
        let mailbox = mailbox
            .map(|m| MailboxName::parse(m, sep, false).map_or(m.to_owned(), |n| n.to_wire(sep)));
        self.ctx().publish(
            mailbox,
            super::ChangeKind::MetadataChanged {
                entries: entries.to_vec(),
            },
        );
    }

    async fn status(&self, name: &str) -> Result<MailboxStatus> {
        let n = self.parse(name, false)?;
        let state = self.data.inner.lock().get(&n)?;
        let st = state.lock().status();
        Ok(st)
    }

    async fn open(&self, name: &str, options: OpenOptions) -> Result<View> {
        let n = self.parse(name, false)?;
        let state = self.data.inner.lock().get(&n)?;
        let handle = Arc::new(MemoryMailbox {
            name: n.to_wire(self.sep()),
            state,
            user: self.ctx(),
        });
        View::open(handle, options).await
    }

    async fn append(&self, name: &str, message: AppendMessage) -> Result<AppendResult> {
        self.append_now(name, message)
    }

    async fn append_stream(&self, name: &str) -> Result<Box<dyn AppendStream>> {
        let n = self.parse(name, false)?;
        let room = {
            let u = self.data.inner.lock();
            u.get(&n)?;
            self.limits.check(&u, 0, 1)?;
            self.limits.bytes.map(|l| l.saturating_sub(u.bytes_used))
        };
        Ok(Box::new(MemoryAppend {
            user: self.ctx(),
            data: Gathered::new(room, self.options.max_message_size),
            mailbox: n,
        }))
    }

    async fn commit_many(&self, items: Vec<PendingAppend>) -> Result<AppendManyResult> {
        let mut batch = Vec::with_capacity(items.len());
        let mut mailbox = None;
        for item in items {
            let Ok(stream) = item.stream.into_any().downcast::<MemoryAppend>() else {
                return Err(StorageError::Temporary(
                    "append stream of another backend".into(),
                ));
            };
            let stream = *stream;
            if !Arc::ptr_eq(&stream.user.data, &self.data)
                || mailbox.as_ref().is_some_and(|m| *m != stream.mailbox)
            {
                return Err(StorageError::Temporary(
                    "append batch spans mailboxes".into(),
                ));
            }
            mailbox = Some(stream.mailbox);
            batch.push(NewMessage {
                data: stream.data.data.freeze(),
                system: item.flags,
                keywords: item.keywords,
                date: item.internal_date.unwrap_or_else(now_secs),
                email: None,
            });
        }
        let Some(n) = mailbox else {
            return Err(StorageError::Temporary("empty append batch".into()));
        };
        let bytes: u64 = batch.iter().map(|m| m.data.len() as u64).sum();
        let count = batch.len() as u64;
        // One lock over the user for the quota check and the adding: all or none.
        let mut u = self.data.inner.lock();
        let state = u.get(&n)?;
        self.limits.check(&u, bytes, count)?;
        let (uidvalidity, uids) = state.change(|m| {
            let uids = m.add(batch)?;
            Ok(((m.uidvalidity, uids), true))
        })?;
        u.bytes_used += bytes;
        u.messages_used += count;
        drop(u);
        self.ctx()
            .publish(Some(n.to_wire(self.sep())), super::ChangeKind::MessageNew);
        Ok(AppendManyResult { uidvalidity, uids })
    }

    async fn import_mailbox(
        &self,
        name: &str,
        uidvalidity: u32,
        uidnext: u32,
        special_use: Option<SpecialUse>,
    ) -> Result<()> {
        let n = self.parse(name, false)?;
        let mut u = self.data.inner.lock();
        let (state, created) = match u.get(&n) {
            Ok(s) => (s, false),
            Err(StorageError::NonExistent) => {
                let s = u.create(&n)?;
                if let Some(su) = special_use {
                    u.special_use.insert(n.components().to_vec(), su);
                }
                (s, true)
            }
            Err(e) => return Err(e),
        };
        let set = state.change(|m| {
            let have = (m.uidvalidity, m.uidnext);
            let want = super::import_counters(have, m.list.is_empty(), (uidvalidity, uidnext));
            match want {
                Ok(pair) => {
                    m.set_counters(pair.0, pair.1);
                    Ok((Ok(()), pair != have))
                }
                Err(e) => Ok((Err(e), false)),
            }
        })?;
        if let Err(e) = set {
            if created {
                u.mailboxes.remove(n.components());
                u.special_use.remove(n.components());
            }
            return Err(e);
        }
        // A mailbox deleted and created again must still get a UIDVALIDITY of its own.
        u.last_uidvalidity = u.last_uidvalidity.max(uidvalidity);
        drop(u);
        if created {
            self.ctx().publish(
                Some(n.to_wire(self.sep())),
                super::ChangeKind::MailboxCreated,
            );
        }
        Ok(())
    }

    async fn import_messages(&self, name: &str, messages: Vec<ImportMessage>) -> Result<()> {
        let n = self.parse(name, false)?;
        let bytes: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        let count = messages.len() as u64;
        let batch: Vec<(u32, NewMessage)> = messages
            .into_iter()
            .map(|m| {
                let new = NewMessage {
                    data: m.data,
                    system: m.flags,
                    keywords: m.keywords,
                    date: m.internal_date,
                    email: None,
                };
                (m.uid, new)
            })
            .collect();
        let mut u = self.data.inner.lock();
        let state = u.get(&n)?;
        if batch.is_empty() {
            return Ok(());
        }
        state.change(|m| m.import(batch).map(|()| ((), true)))?;
        u.bytes_used += bytes;
        u.messages_used += count;
        drop(u);
        self.ctx()
            .publish(Some(n.to_wire(self.sep())), super::ChangeKind::MessageNew);
        Ok(())
    }

    async fn quota(&self) -> Result<QuotaUsage> {
        let u = self.data.inner.lock();
        Ok(QuotaUsage {
            bytes_used: u.bytes_used,
            bytes_limit: self.limits.bytes,
            messages_used: u.messages_used,
            messages_limit: self.limits.messages,
        })
    }

    async fn quota_recalc(&self) -> Result<QuotaUsage> {
        let mut u = self.data.inner.lock();
        let (mut bytes, mut count) = (0u64, 0u64);
        for state in u.mailboxes.values() {
            let (b, c) = state.lock().usage();
            bytes = bytes.saturating_add(b);
            count = count.saturating_add(c);
        }
        u.bytes_used = bytes;
        u.messages_used = count;
        Ok(QuotaUsage {
            bytes_used: bytes,
            bytes_limit: self.limits.bytes,
            messages_used: count,
            messages_limit: self.limits.messages,
        })
    }

    async fn pop3_lock(&self) -> Result<Pop3Lock> {
        let flag = self.data.pop3_locked.clone();
        if flag.swap(true, Ordering::AcqRel) {
            return Err(StorageError::InUse);
        }
        Ok(Pop3Lock(Box::new(Pop3Guard(flag))))
    }

    async fn pop3_expire(&self, days: u32) -> Result<Vec<u32>> {
        let inbox = MailboxName::from_components(vec!["INBOX".to_owned()]);
        let state = self.data.inner.lock().get(&inbox)?;
        let cutoff = now_secs() - i64::from(days) * 86_400;
        let uids = state.lock().downloaded_before(cutoff);
        if uids.is_empty() {
            return Ok(uids);
        }
        self.ctx().expunge(&state, Some(&uids), true)
    }
}

/// Releases the POP3 maildrop when the session drops its [`Pop3Lock`].
struct Pop3Guard(Arc<AtomicBool>);

impl Drop for Pop3Guard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A streamed append: the bytes gather in memory (where this backend keeps them anyway) and are
/// stored on commit; dropped before, nothing is stored.
struct MemoryAppend {
    user: Arc<UserCtx>,
    mailbox: MailboxName,
    data: Gathered,
}

#[async_trait]
impl AppendStream for MemoryAppend {
    async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.data.write(data)
    }

    fn reserve(&mut self, size: u64) -> Result<()> {
        self.data.reserve(size)
    }

    fn len(&self) -> u64 {
        self.data.len()
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }

    async fn commit(
        self: Box<Self>,
        flags: SystemFlags,
        keywords: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<AppendResult> {
        let MemoryAppend {
            user,
            mailbox,
            data,
            ..
        } = *self;
        user.append(
            &mailbox,
            AppendMessage {
                data: data.data.freeze(),
                flags,
                keywords,
                internal_date,
            },
        )
    }
}

/// A memory mailbox as a [`MailboxHandle`]; one per view.
struct MemoryMailbox {
    name: String,
    state: Arc<MailboxState>,
    user: Arc<UserCtx>,
}

impl MemoryMailbox {
    fn body(&self, uid: u32) -> Result<(super::MessageMeta, Bytes)> {
        self.state.lock().body(uid).ok_or(StorageError::Expunged)
    }
}

/// The part of a stored message that [`MailboxHandle::read_messages`] asks for: a slice of the
/// same buffer, nothing copied.
fn cut(data: &Bytes, part: ReadPart) -> Bytes {
    let end = match part {
        ReadPart::Header => super::header_end(data, 0)
            .unwrap_or(data.len())
            .min(crate::limits::MAX_HEADER_BYTES),
        ReadPart::Whole { cap } => cap,
    };
    data.slice(..end.min(data.len()))
}

#[async_trait]
impl MailboxHandle for MemoryMailbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> Option<String> {
        Some(format!("memory:{}", self.state.serial()))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.state.subscribe()
    }

    async fn watch(&self) -> Result<()> {
        // Nothing changes a memory mailbox outside this process.
        Ok(())
    }

    async fn sync(&self, claim_recent: bool) -> Result<SyncOutcome> {
        let mut m = self.state.lock();
        if m.deleted {
            return Err(StorageError::NonExistent);
        }
        let recent = m.unclaimed_recent(claim_recent);
        Ok(SyncOutcome {
            snapshot: m.snapshot(),
            recent,
        })
    }

    async fn store(&self, uids: Vec<u32>, request: StoreRequest) -> Result<StoreResult> {
        let r = self.state.change(|m| m.store(&uids, &request))?;
        if !r.updated.is_empty() {
            self.user
                .publish(Some(self.name.clone()), super::ChangeKind::FlagChange);
        }
        Ok(r)
    }

    async fn expunge(&self, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let gone = self.user.expunge(&self.state, uids.as_deref(), false)?;
        if !gone.is_empty() {
            self.user
                .publish(Some(self.name.clone()), super::ChangeKind::MessageExpunge);
        }
        Ok(gone)
    }

    async fn copy(&self, uids: Vec<u32>, dest: &str, move_: bool) -> Result<CopyResult> {
        let r = self.user.copy(&self.state, &uids, dest, move_)?;
        if !r.mapping.is_empty() {
            let sep = self.user.options.separator;
            let dest =
                MailboxName::parse(dest, sep, false).map_or(dest.to_owned(), |n| n.to_wire(sep));
            self.user.publish(Some(dest), super::ChangeKind::MessageNew);
            if move_ {
                self.user
                    .publish(Some(self.name.clone()), super::ChangeKind::MessageExpunge);
            }
        }
        Ok(r)
    }

    async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message> {
        let (meta, data) = self.body(uid)?;
        // The head is a copy of the first bytes (callers own it); the content shares the stored
        // buffer, and every read of it is answered at once (`read_now`).
        let want = max_head.min(data.len().saturating_add(1));
        let head = if want == 0 {
            Head::default()
        } else {
            let bytes = data
                .get(..want.min(data.len()))
                .unwrap_or_default()
                .to_vec();
            Head {
                complete: bytes.len() < want,
                bytes,
            }
        };
        Ok(Message {
            uid,
            phys_size: meta.phys_size,
            virt_size: meta.virt_size,
            content: Arc::new(data),
            head,
        })
    }

    async fn read_messages(&self, uids: Vec<u32>, part: ReadPart) -> Result<Vec<Option<Bytes>>> {
        let m = self.state.lock();
        Ok(uids
            .iter()
            .map(|uid| m.body(*uid).map(|(_, data)| cut(&data, part)))
            .collect())
    }

    async fn resolve_dates(&self, uids: Vec<u32>) -> Result<Vec<(u32, i64)>> {
        // Dates are always known here; answer for the present messages asked about.
        let m = self.state.lock();
        Ok(uids
            .into_iter()
            .filter_map(|uid| {
                m.list
                    .find(uid)
                    .and_then(|meta| meta.internal_date.get())
                    .map(|date| (uid, date))
            })
            .collect())
    }

    async fn cache_get_prefix(
        &self,
        uids: Vec<u32>,
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>> {
        // The blobs are shared `Bytes`, but the caller still holds what it is given: stop after
        // the first UID whose blob passes `max_bytes` (at least one UID is always answered).
        let all = self.state.lock().cache_get(&uids, field.0);
        let mut used = 0usize;
        let mut out = Vec::with_capacity(all.len());
        for blob in all {
            if !out.is_empty() && used >= max_bytes {
                break;
            }
            used = used.saturating_add(blob.as_ref().map_or(0, Bytes::len));
            out.push(blob);
        }
        Ok(out)
    }

    async fn cache_put_fields(&self, fields: Vec<(CacheField, Vec<(u32, Bytes)>)>) -> Result<()> {
        let mut state = self.state.lock();
        for (field, entries) in fields {
            state.cache_put(field.0, entries);
        }
        Ok(())
    }

    async fn pop3_mark_downloaded(&self, uids: Vec<u32>) -> Result<()> {
        self.state.lock().mark_downloaded(&uids, now_secs());
        Ok(())
    }

    async fn vanished_since(&self, modseq: u64) -> Result<Vanished> {
        let inner = self.state.lock();
        if inner.deleted {
            return Err(StorageError::NonExistent);
        }
        Ok(inner.vanished_since(modseq))
    }

    async fn objects(&self, uids: Vec<u32>) -> Result<Vec<super::MessageObject>> {
        Ok(self.state.lock().objects(&uids))
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        user_fts(&self.user.data, &self.user.options)
    }
}

/// The user's in-memory full-text index (tantivy in RAM), `None` when configured off.
fn user_fts(
    data: &UserData,
    options: &MemoryOptions,
) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
    if !options.fts {
        return Ok(None);
    }
    if let Some(f) = data.fts.get() {
        return Ok(Some(f.clone() as Arc<dyn crate::fts::FtsIndex>));
    }
    let made = Arc::new(crate::fts::TantivyFts::in_ram(
        crate::limits::FTS_WRITER_MEMORY_BYTES,
    )?);
    let f = data.fts.get_or_init(|| made).clone();
    Ok(Some(f as Arc<dyn crate::fts::FtsIndex>))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::stream::STAMP_SLACK;

    fn user(name: &str) -> StorageUser {
        StorageUser {
            name: name.to_owned(),
            home: None,
            quota_bytes: None,
            quota_messages: None,
            location: None,
        }
    }

    fn message(data: &'static [u8]) -> AppendMessage {
        AppendMessage {
            data: Bytes::from_static(data),
            ..AppendMessage::default()
        }
    }

    #[tokio::test]
    async fn messages_over_the_size_limit_are_refused_whole_or_streamed() {
        let st = MemoryStorage::new(MemoryOptions {
            max_message_size: 10,
            ..MemoryOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let u = st.user(&user("a")).await.unwrap_or_else(|e| panic!("{e}"));
        // The limit leaves room for a delivery's trace header, and no more.
        let at_limit = vec![b'x'; 10 + STAMP_SLACK as usize];
        let whole = |data: &[u8]| AppendMessage {
            data: Bytes::copy_from_slice(data),
            ..AppendMessage::default()
        };
        assert!(u.append("INBOX", whole(&at_limit)).await.is_ok());
        let over = vec![b'x'; 11 + STAMP_SLACK as usize];
        assert!(matches!(
            u.append("INBOX", whole(&over)).await,
            Err(StorageError::Cannot(_))
        ));
        let mut s = u
            .append_stream("INBOX")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.write(&at_limit).await.is_ok());
        assert!(matches!(s.write(b"x").await, Err(StorageError::Cannot(_))));
        drop(s);
        let st = u.status("INBOX").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.messages, 1);
    }

    #[tokio::test]
    async fn a_user_is_the_same_store_at_every_login_and_others_are_apart() {
        let st = MemoryStorage::new(MemoryOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let a = st.user(&user("a")).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(a.append("INBOX", message(b"x")).await.is_ok());
        let again = st.user(&user("a")).await.unwrap_or_else(|e| panic!("{e}"));
        let b = st.user(&user("b")).await.unwrap_or_else(|e| panic!("{e}"));
        let count = |s: MailboxStatus| s.messages;
        assert_eq!(again.status("INBOX").await.map(count).ok(), Some(1));
        assert_eq!(b.status("INBOX").await.map(count).ok(), Some(0));
    }

    #[tokio::test]
    async fn a_view_of_a_deleted_mailbox_is_told_it_is_gone() {
        let st = MemoryStorage::new(MemoryOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let u = st.user(&user("a")).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(u.create("Box", None).await.is_ok());
        let mut v = u
            .open("Box", OpenOptions::SELECT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(u.delete("Box").await.is_ok());
        assert!(matches!(v.refresh().await, Err(StorageError::NonExistent)));
        // A new mailbox of that name is another one.
        assert!(u.create("Box", None).await.is_ok());
        assert!(matches!(v.refresh().await, Err(StorageError::NonExistent)));
    }

    #[tokio::test]
    async fn the_mailbox_count_is_bounded() {
        let st = MemoryStorage::new(MemoryOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let u = st.user(&user("a")).await.unwrap_or_else(|e| panic!("{e}"));
        // INBOX is one of them.
        for i in 1..MAX_MAILBOXES_PER_USER {
            assert!(u.create(&format!("m{i}"), None).await.is_ok(), "{i}");
        }
        assert!(matches!(
            u.create("one-more", None).await,
            Err(StorageError::Cannot(_))
        ));
    }
}
