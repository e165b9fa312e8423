//! One mailbox of the PostgreSQL backend as a [`MailboxHandle`], and the POP3 lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use sqlx::Row as _;
use sqlx::postgres::Postgres;
use tokio::sync::watch;

use super::blob::{self, PgContent};
use super::retry::write_tx;
use super::user::{self, KEYWORD_LIMIT, PgUser, keyword_indexes, kw_text, lock_mailbox};
use super::{db, i64_of, picture, u32_of, u64_of};
use crate::limits::{
    MAX_CACHE_ENTRY_BYTES, MAX_HEADER_BYTES, PG_CHUNK_BYTES, PG_HEADER_PROBE_BYTES,
    PG_READ_AHEAD_BYTES, PG_READ_AHEAD_MESSAGE_BYTES, PG_READ_AHEAD_MESSAGES,
};
use crate::storage::{
    CacheField, ChangeKind, CopyResult, Flags, Head, InternalDate, KeywordSet, MailboxHandle,
    Message, MessageList, MessageMeta, MessageObject, Pop3Lock, ReadPart, Result, Snapshot,
    StorageError, StoreOp, StoreRequest, StoreResult, SyncOutcome, SystemFlags, Updated, Vanished,
};

/// A mailbox as a [`MailboxHandle`]; one per view. Keyed by `mailbox_id`, so a view of a
/// mailbox deleted (and perhaps made again under its name) learns it is gone.
pub(crate) struct PgMailbox {
    user: PgUser,
    id: i64,
    name: String,
    /// The keyword table as last read: it only grows, so only new rows are read.
    keywords: Mutex<Arc<[String]>>,
    /// UIDVALIDITY as the last sync read it (a view syncs when it opens): part of the key of
    /// the summaries cached in memory ([`super::fields`]).
    uidvalidity: std::sync::atomic::AtomicU32,
    /// Messages read ahead for the opens to come ([`MailboxHandle::open_message`]).
    ahead: Mutex<ReadAhead>,
}

/// The mailbox row as a sync reads it, with the keyword table.
struct MailboxRow {
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
    first_recent: u32,
}

/// The columns [`MailboxRow::read`] takes (`ROW_COLUMNS`), from the mailbox row and its keyword table in one
/// statement (a single statement reads one snapshot: the row and the table agree).
macro_rules! row_columns {
    () => {
        "mb.uidvalidity, mb.uidnext, mb.highest_modseq, mb.first_recent, \
         ARRAY(SELECT k.name FROM mailbox_keywords k WHERE k.user_id = mb.user_id \
         AND k.mailbox_id = mb.mailbox_id ORDER BY k.idx)"
    };
}

impl MailboxRow {
    /// The row and keyword table from columns `at..` of `r` (`row_columns!`).
    fn read(r: &sqlx::postgres::PgRow, at: usize) -> Result<(MailboxRow, Vec<String>)> {
        Ok((
            MailboxRow {
                uidvalidity: u32_of(r.try_get(at).map_err(db)?),
                uidnext: u32_of(r.try_get(at + 1).map_err(db)?),
                highest_modseq: u64_of(r.try_get(at + 2).map_err(db)?),
                first_recent: u32_of(r.try_get(at + 3).map_err(db)?),
            },
            r.try_get(at + 4).map_err(db)?,
        ))
    }
}

/// One message read ahead: its row and its whole content (immutable per hash).
struct Ahead {
    uid: u32,
    hash: Arc<[u8]>,
    phys: u64,
    virt: u64,
    data: Bytes,
}

/// What one open mailbox (one session's view) has read ahead: messages above the last one
/// opened, in ascending UID order, at most [`PG_READ_AHEAD_MESSAGES`] and
/// [`PG_READ_AHEAD_BYTES`] of content.
///
/// A message read ahead and expunged (by another session) before it is opened is still
/// served, whole, as a Maildir file opened before its unlink would be: its content is
/// immutable, and the view that opens it had it in its picture. To keep this simple, all of
/// it is dropped whenever a sync of the view sees the mailbox changed (another
/// HIGHESTMODSEQ or UIDVALIDITY), and on the view's own expunge.
#[derive(Default)]
struct ReadAhead {
    /// `(uidvalidity, highest_modseq)` of the sync the messages belong to.
    stamp: (u32, u64),
    /// The UID last opened: the next open above it is "ascending".
    last: Option<u32>,
    messages: std::collections::VecDeque<Ahead>,
}

const _: () = assert!(
    PG_READ_AHEAD_MESSAGE_BYTES <= PG_CHUNK_BYTES
        && PG_READ_AHEAD_MESSAGE_BYTES <= PG_READ_AHEAD_BYTES
);

fn keyword_set(idx: &[i32]) -> KeywordSet {
    idx.iter()
        .filter_map(|&i| usize::try_from(i).ok())
        .collect()
}

fn keyword_vec(set: &KeywordSet) -> Vec<i32> {
    set.iter().filter_map(|i| i32::try_from(i).ok()).collect()
}

fn system(v: i16) -> SystemFlags {
    SystemFlags(u8::try_from(v).unwrap_or(0))
}

impl PgMailbox {
    pub(crate) fn new(user: PgUser, id: i64, name: String) -> Self {
        PgMailbox {
            user,
            id,
            name,
            keywords: Mutex::new(Arc::from([])),
            uidvalidity: std::sync::atomic::AtomicU32::new(0),
            ahead: Mutex::new(ReadAhead::default()),
        }
    }

    /// The mailbox's id.
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// Opens mailbox `key` (`mailboxes.name`) for a view: finds it and reads its row in one
    /// statement, and when that row shows this process's picture current, builds the first
    /// sync from it without another round trip ([`PgMailbox::fast_sync`]); otherwise syncs
    /// in a transaction. Returns the handle, its change receiver and the sync.
    pub(crate) async fn open_by_name(
        user: PgUser,
        key: &str,
        wire: String,
        claim_recent: bool,
    ) -> Result<(Arc<PgMailbox>, watch::Receiver<u64>, SyncOutcome)> {
        let r = super::retry::fresh(|| {
            sqlx::query(concat!(
                "SELECT mb.mailbox_id, ",
                row_columns!(),
                " FROM mailboxes mb WHERE mb.user_id = $1 AND mb.name = $2"
            ))
            .bind(user.user_id)
            .bind(key)
            .fetch_optional(user.pool())
        })
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?;
        let id: i64 = r.try_get(0).map_err(db)?;
        let (row, keywords) = MailboxRow::read(&r, 1)?;
        let mb = Arc::new(PgMailbox::new(user, id, wire));
        // Subscribed after the read (the id was not known before): a change committed in this
        // process between the two would go unnoticed, so the receiver starts as changed and
        // the view's first wait refreshes at once (a view that watches refreshes then anyway).
        let mut changes = mb.user.us.subscribe(id);
        changes.mark_changed();
        let synced = match mb.fast_sync(&row, keywords, claim_recent) {
            Some(s) => s,
            None => mb.sync_tx(claim_recent).await?,
        };
        Ok((mb, changes, synced))
    }

    /// The sync that `row` (read in one statement, without a lock) allows without a
    /// transaction: this process's picture of the mailbox is current (same UIDVALIDITY,
    /// UIDNEXT and HIGHESTMODSEQ: every change to the messages takes a modseq, every append a
    /// UID) and there is no `\Recent` to claim. The row is a committed state, and UIDs commit in
    /// UID order (a storing transaction holds the mailbox row from its UID update to its
    /// commit), so a picture that matches it is whole. `None`: sync in a transaction.
    fn fast_sync(
        &self,
        row: &MailboxRow,
        keywords: Vec<String>,
        claim_recent: bool,
    ) -> Option<SyncOutcome> {
        if claim_recent && row.first_recent < row.uidnext {
            return None;
        }
        let cached = self
            .user
            .sh
            .pictures
            .lock()
            .get((self.user.user_id, self.id))?;
        if cached.uidvalidity != row.uidvalidity
            || cached.uidnext != row.uidnext
            || cached.highest_modseq != row.highest_modseq
        {
            return None;
        }
        let keywords: Arc<[String]> = Arc::from(keywords);
        {
            let mut have = self.keywords.lock();
            if have.len() < keywords.len() {
                *have = keywords.clone();
            }
        }
        let outcome = SyncOutcome {
            snapshot: Arc::new(Snapshot {
                uidvalidity: row.uidvalidity,
                uidnext: row.uidnext,
                highest_modseq: row.highest_modseq,
                keywords,
                keyword_limit: KEYWORD_LIMIT,
                messages: cached.messages.clone(),
            }),
            recent: (row.first_recent < row.uidnext).then_some(row.first_recent..row.uidnext),
        };
        self.synced(&outcome.snapshot);
        Some(outcome)
    }

    /// Records what a sync read: UIDVALIDITY, what this process saw of the mailbox, its
    /// picture; drops the read-ahead when the mailbox changed.
    fn synced(&self, snap: &Arc<Snapshot>) {
        self.uidvalidity.store(snap.uidvalidity, Ordering::Relaxed);
        self.user.us.saw(self.id, snap.highest_modseq, snap.uidnext);
        self.user
            .sh
            .pictures
            .lock()
            .put((self.user.user_id, self.id), snap.clone());
        let stamp = (snap.uidvalidity, snap.highest_modseq);
        let mut ahead = self.ahead.lock();
        if ahead.stamp != stamp {
            ahead.stamp = stamp;
            ahead.messages.clear();
        }
    }

    /// The next message read ahead if it is `uid` (those below it are dropped: skipped).
    fn take_ahead(&self, uid: u32) -> Option<Ahead> {
        let mut ahead = self.ahead.lock();
        while ahead.messages.front().is_some_and(|m| m.uid < uid) {
            ahead.messages.pop_front();
        }
        if ahead.messages.front().is_some_and(|m| m.uid == uid) {
            ahead.last = Some(uid);
            return ahead.messages.pop_front();
        }
        None
    }

    /// Reads ahead from `uid` on (one query: the rows and whole contents of the next messages
    /// of at most [`PG_READ_AHEAD_MESSAGE_BYTES`], within [`PG_READ_AHEAD_MESSAGES`] and
    /// [`PG_READ_AHEAD_BYTES`]) and takes `uid` from it when it is there.
    async fn read_ahead(&self, uid: u32) -> Result<Option<Ahead>> {
        let stamp = self.ahead.lock().stamp;
        let rows = super::retry::fresh(|| {
            sqlx::query(
                "SELECT m.uid, m.hash, m.phys_size, m.virt_size, c.data FROM \
                 (SELECT uid, hash, phys_size, virt_size, \
                 sum(phys_size) OVER (ORDER BY uid) AS upto FROM messages \
                 WHERE user_id = $1 AND mailbox_id = $2 AND uid >= $3 AND phys_size <= $4 \
                 ORDER BY uid LIMIT $5) m \
                 JOIN blob_chunks c ON c.user_id = $1 AND c.hash = m.hash AND c.seq = 0 \
                 WHERE m.upto <= $6 ORDER BY m.uid",
            )
            .bind(self.user.user_id)
            .bind(self.id)
            .bind(i64::from(uid))
            .bind(i64_of(PG_READ_AHEAD_MESSAGE_BYTES as u64))
            .bind(i64_of(PG_READ_AHEAD_MESSAGES as u64))
            .bind(i64_of(PG_READ_AHEAD_BYTES as u64))
            .fetch_all(self.user.pool())
        })
        .await
        .map_err(db)?;
        let mut got = std::collections::VecDeque::with_capacity(rows.len());
        for r in rows {
            let data: Vec<u8> = r.try_get(4).map_err(db)?;
            let phys = u64_of(r.try_get(2).map_err(db)?);
            if data.len() as u64 != phys {
                // Not whole in its first chunk (a damaged store): opened by itself.
                continue;
            }
            let hash: Vec<u8> = r.try_get(1).map_err(db)?;
            got.push_back(Ahead {
                uid: u32_of(r.try_get(0).map_err(db)?),
                hash: Arc::from(hash),
                phys,
                virt: u64_of(r.try_get(3).map_err(db)?),
                data: Bytes::from(data),
            });
        }
        let mut ahead = self.ahead.lock();
        if ahead.stamp != stamp {
            // A sync saw the mailbox change while this was read.
            return Ok(None);
        }
        ahead.messages = got;
        drop(ahead);
        Ok(self.take_ahead(uid))
    }

    /// A message served from the read-ahead, with `max_head` of it as its head.
    fn message_of(&self, m: Ahead, max_head: usize) -> Message {
        let want = max_head.min(
            usize::try_from(m.phys)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let head = if want == 0 {
            Head::default()
        } else {
            let bytes = m
                .data
                .get(..want.min(m.data.len()))
                .unwrap_or_default()
                .to_vec();
            Head {
                complete: bytes.len() < want,
                bytes,
            }
        };
        Message {
            uid: m.uid,
            phys_size: m.phys,
            virt_size: m.virt,
            content: Arc::new(
                PgContent::new(self.user.pool().clone(), self.user.user_id, m.hash, m.phys)
                    .holding(m.data),
            ),
            head,
        }
    }

    /// The mailbox's messages in UID order as the picture holds them: all, or only those
    /// changed (flags) or added after modseq `since`.
    async fn read_metas(
        &self,
        tx: &mut sqlx::Transaction<'static, Postgres>,
        since: Option<i64>,
    ) -> Result<Vec<MessageMeta>> {
        let rows = sqlx::query(
            "SELECT uid, system_flags, keywords, modseq, phys_size, virt_size, internal_date \
             FROM messages WHERE user_id = $1 AND mailbox_id = $2 AND modseq > $3 ORDER BY uid",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(since.unwrap_or(-1))
        .fetch_all(&mut **tx)
        .await
        .map_err(db)?;
        let mut metas = Vec::with_capacity(rows.len());
        for r in rows {
            let kw: Vec<i32> = r.try_get(2).map_err(db)?;
            metas.push(MessageMeta {
                uid: u32_of(r.try_get(0).map_err(db)?),
                flags: Flags {
                    system: system(r.try_get(1).map_err(db)?),
                    keywords: keyword_set(&kw),
                },
                modseq: u64_of(r.try_get(3).map_err(db)?),
                phys_size: u64_of(r.try_get(4).map_err(db)?),
                virt_size: u64_of(r.try_get(5).map_err(db)?),
                internal_date: InternalDate::at(r.try_get(6).map_err(db)?),
            });
        }
        Ok(metas)
    }

    /// A sync in a transaction: the mailbox row taken `FOR SHARE` (`FOR UPDATE` to claim
    /// `\Recent`), which waits for every transaction storing into the mailbox, so the changed
    /// rows read next (or the whole list) belong to that row's state.
    async fn sync_tx(&self, claim_recent: bool) -> Result<SyncOutcome> {
        let key = (self.user.user_id, self.id);
        let outcome = write_tx!(self.user.pool(), |tx| {
            // FOR SHARE waits for every transaction storing into the mailbox (they hold its row
            // from their UID update to commit), so what is read next is a whole picture.
            let sql = if claim_recent {
                "SELECT uidvalidity, uidnext, highest_modseq, first_recent, vanished_floor \
                 FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2 FOR UPDATE"
            } else {
                "SELECT uidvalidity, uidnext, highest_modseq, first_recent, vanished_floor \
                 FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2 FOR SHARE"
            };
            let r = sqlx::query(sql)
                .bind(self.user.user_id)
                .bind(self.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .ok_or(StorageError::NonExistent)?;
            let uidvalidity = u32_of(r.try_get(0).map_err(db)?);
            let uidnext = u32_of(r.try_get(1).map_err(db)?);
            let highest_modseq = u64_of(r.try_get(2).map_err(db)?);
            let first_recent = u32_of(r.try_get(3).map_err(db)?);
            let vanished_floor = u64_of(r.try_get(4).map_err(db)?);
            let keywords = self.keyword_table(&mut *tx).await?;
            // The picture this process last read: unchanged, or brought up to date with the
            // rows changed since its HIGHESTMODSEQ and the tombstones above it (every change
            // takes a modseq; tombstones at or below `vanished_floor` were trimmed, so a picture
            // older than that is read again whole).
            let cached = self.user.sh.pictures.lock().get(key);
            let messages = match cached {
                Some(c)
                    if c.uidvalidity == uidvalidity
                        && c.highest_modseq == highest_modseq
                        && c.uidnext == uidnext =>
                {
                    Some(c.messages.clone())
                }
                Some(c)
                    if c.uidvalidity == uidvalidity
                        && c.highest_modseq < highest_modseq
                        && vanished_floor <= c.highest_modseq =>
                {
                    let since = i64_of(c.highest_modseq);
                    let changed = self.read_metas(&mut tx, Some(since)).await?;
                    let expunged = sqlx::query_scalar::<_, i64>(
                        "SELECT uid FROM vanished WHERE user_id = $1 AND mailbox_id = $2 \
                         AND modseq > $3",
                    )
                    .bind(self.user.user_id)
                    .bind(self.id)
                    .bind(since)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db)?;
                    let expunged: Vec<u32> = expunged.into_iter().map(u32_of).collect();
                    picture::apply(&c.messages, &expunged, changed)
                }
                _ => None,
            };
            let messages = match messages {
                Some(m) => m,
                None => MessageList::from_sorted(self.read_metas(&mut tx, None).await?),
            };
            let recent = (first_recent < uidnext).then_some(first_recent..uidnext);
            if claim_recent && recent.is_some() {
                sqlx::query(
                    "UPDATE mailboxes SET first_recent = uidnext \
                     WHERE user_id = $1 AND mailbox_id = $2",
                )
                .bind(self.user.user_id)
                .bind(self.id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
            SyncOutcome {
                snapshot: Arc::new(Snapshot {
                    uidvalidity,
                    uidnext,
                    highest_modseq,
                    keywords,
                    keyword_limit: KEYWORD_LIMIT,
                    messages,
                }),
                recent,
            }
        })?;
        self.synced(&outcome.snapshot);
        Ok(outcome)
    }

    /// Drops the summaries of expunged messages from this process's memory.
    fn forget_fields(&self, uids: &[u32]) {
        let uv = self.uidvalidity.load(Ordering::Relaxed);
        let mut fields = self.user.sh.fields.lock();
        for &uid in uids {
            fields.forget(&(self.user.user_id, self.id, uv, uid));
        }
    }

    /// What [`MailboxHandle::identity`] answers for mailbox `id` of `user_id`.
    pub(crate) fn identity_of(user_id: i64, id: i64) -> String {
        format!("pg:{user_id}:{id}")
    }

    fn uid_params(uids: &[u32]) -> Vec<i64> {
        uids.iter().map(|&u| i64::from(u)).collect()
    }

    /// The keyword table, reading the rows added since the last look.
    async fn keyword_table<'e, E>(&self, exec: E) -> Result<Arc<[String]>>
    where
        E: sqlx::Executor<'e, Database = Postgres>,
    {
        let have = self.keywords.lock().clone();
        let rows = sqlx::query(
            "SELECT name FROM mailbox_keywords WHERE user_id = $1 AND mailbox_id = $2 \
             AND idx >= $3 ORDER BY idx",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(i32::try_from(have.len()).unwrap_or(i32::MAX))
        .fetch_all(exec)
        .await
        .map_err(db)?;
        if rows.is_empty() {
            return Ok(have);
        }
        let mut all: Vec<String> = have.to_vec();
        for r in rows {
            all.push(r.try_get(0).map_err(db)?);
        }
        let table: Arc<[String]> = Arc::from(all);
        let mut cached = self.keywords.lock();
        if cached.len() < table.len() {
            *cached = table.clone();
        }
        Ok(table)
    }
}

#[async_trait]
impl MailboxHandle for PgMailbox {
    fn name(&self) -> &str {
        &self.name
    }

    fn identity(&self) -> Option<String> {
        Some(Self::identity_of(self.user.user_id, self.id))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.user.us.subscribe(self.id)
    }

    async fn watch(&self) -> Result<()> {
        // Returns once this process LISTENs (or could not: the poll covers), so the refresh
        // the session makes next covers everything committed before (super::push).
        super::push::ensure(&self.user.sh).await;
        Ok(())
    }

    async fn sync(&self, claim_recent: bool) -> Result<SyncOutcome> {
        // One statement when nothing changed since this process's picture (the usual refresh);
        // a transaction otherwise.
        let r = super::retry::fresh(|| {
            sqlx::query(concat!(
                "SELECT ",
                row_columns!(),
                " FROM mailboxes mb WHERE mb.user_id = $1 AND mb.mailbox_id = $2"
            ))
            .bind(self.user.user_id)
            .bind(self.id)
            .fetch_optional(self.user.pool())
        })
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?;
        let (row, keywords) = MailboxRow::read(&r, 0)?;
        if let Some(outcome) = self.fast_sync(&row, keywords, claim_recent) {
            return Ok(outcome);
        }
        self.sync_tx(claim_recent).await
    }

    async fn store(&self, uids: Vec<u32>, request: StoreRequest) -> Result<StoreResult> {
        let uid = self.user.user_id;
        let kw_before = self.keywords.lock().len();
        let (out, any_changed) = write_tx!(self.user.pool(), |tx| {
            let key = lock_mailbox(&mut tx, uid, self.id).await?;
            let create = request.op != StoreOp::Remove;
            let kws = keyword_set(
                &keyword_indexes(&mut tx, uid, self.id, &request.keywords, create).await?,
            );
            let rows = sqlx::query(
                "SELECT uid, system_flags, keywords, modseq FROM messages \
             WHERE user_id = $1 AND mailbox_id = $2 AND uid = ANY($3) ORDER BY uid",
            )
            .bind(uid)
            .bind(self.id)
            .bind(Self::uid_params(&uids))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let mut out = StoreResult {
                updated: Vec::new(),
                failed: Vec::new(),
                keywords: Arc::from([]),
            };
            // The changed messages, grouped by their new flags: one UPDATE per group.
            let mut changed: Vec<(u32, Flags)> = Vec::new();
            for r in rows {
                let m_uid = u32_of(r.try_get(0).map_err(db)?);
                let kw: Vec<i32> = r.try_get(2).map_err(db)?;
                let old = Flags {
                    system: system(r.try_get(1).map_err(db)?),
                    keywords: keyword_set(&kw),
                };
                let modseq = u64_of(r.try_get(3).map_err(db)?);
                if request.unchanged_since.is_some_and(|us| modseq > us) {
                    out.failed.push(m_uid);
                    continue;
                }
                let flags = match request.op {
                    StoreOp::Replace => Flags {
                        system: request.flags,
                        keywords: kws.clone(),
                    },
                    StoreOp::Add => {
                        let mut keywords = old.keywords.clone();
                        keywords.union_with(&kws);
                        Flags {
                            system: old.system.union(request.flags),
                            keywords,
                        }
                    }
                    StoreOp::Remove => {
                        let mut keywords = old.keywords.clone();
                        keywords.remove_all(&kws);
                        Flags {
                            system: old.system.minus(request.flags),
                            keywords,
                        }
                    }
                };
                if flags == old {
                    out.updated.push(Updated {
                        uid: m_uid,
                        flags,
                        modseq,
                    });
                } else {
                    changed.push((m_uid, flags));
                }
            }
            let any_changed = !changed.is_empty();
            if any_changed {
                let n = i64::try_from(changed.len()).unwrap_or(i64::MAX);
                let hms: i64 = sqlx::query(
                    "UPDATE mailboxes SET highest_modseq = highest_modseq + $3 \
                 WHERE user_id = $1 AND mailbox_id = $2 RETURNING highest_modseq",
                )
                .bind(uid)
                .bind(self.id)
                .bind(n)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
                let first = hms - n + 1;
                let mut groups: HashMap<(i16, String), (Vec<i64>, Vec<i64>)> = HashMap::new();
                for (i, (m_uid, flags)) in changed.into_iter().enumerate() {
                    let modseq = first + i64::try_from(i).unwrap_or(i64::MAX);
                    let g = groups
                        .entry((
                            i16::from(flags.system.0),
                            kw_text(&keyword_vec(&flags.keywords)),
                        ))
                        .or_default();
                    g.0.push(i64::from(m_uid));
                    g.1.push(modseq);
                    out.updated.push(Updated {
                        uid: m_uid,
                        flags,
                        modseq: u64_of(modseq),
                    });
                }
                for ((sys, kw), (g_uids, g_modseqs)) in groups {
                    sqlx::query(
                        "UPDATE messages m SET system_flags = $3, \
                     keywords = string_to_array($4, ',')::INT[], modseq = t.ms \
                     FROM UNNEST($5::BIGINT[], $6::BIGINT[]) AS t(u, ms) \
                     WHERE m.user_id = $1 AND m.mailbox_id = $2 AND m.uid = t.u",
                    )
                    .bind(uid)
                    .bind(self.id)
                    .bind(sys)
                    .bind(kw)
                    .bind(&g_uids)
                    .bind(&g_modseqs)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                }
            }
            out.updated.sort_by_key(|u| u.uid);
            out.keywords = self.keyword_table(&mut *tx).await?;
            if any_changed || out.keywords.len() != kw_before {
                let notice = vec![super::push::Entry::new(
                    self.id,
                    &key,
                    super::push::Kind::Flags,
                )];
                self.user.notify(&mut tx, notice).await?;
            }
            (out, any_changed)
        })?;
        if any_changed || out.keywords.len() != kw_before {
            self.user.us.poke(self.id);
        }
        if !out.updated.is_empty() {
            self.user
                .publish(Some(self.name.clone()), ChangeKind::FlagChange);
        }
        Ok(out)
    }

    async fn expunge(&self, uids: Option<Vec<u32>>) -> Result<Vec<u32>> {
        let gone = self
            .user
            .expunge_mailbox(self.id, uids.as_deref(), false)
            .await?;
        if !gone.is_empty() {
            self.ahead.lock().messages.clear();
            self.forget_fields(&gone);
            self.user
                .publish(Some(self.name.clone()), ChangeKind::MessageExpunge);
        }
        Ok(gone)
    }

    async fn copy(&self, uids: Vec<u32>, dest: &str, move_: bool) -> Result<CopyResult> {
        let (r, _) = self.user.copy_uids(self.id, &uids, dest, move_).await?;
        if !r.mapping.is_empty() {
            let sep = crate::storage::UserStore::separator(&self.user);
            let dest = crate::storage::names::MailboxName::parse(dest, sep, false)
                .map_or(dest.to_owned(), |n| n.to_wire(sep));
            self.user.publish(Some(dest), ChangeKind::MessageNew);
            if move_ {
                let moved: Vec<u32> = r.mapping.iter().map(|(from, _)| *from).collect();
                self.forget_fields(&moved);
                self.user
                    .publish(Some(self.name.clone()), ChangeKind::MessageExpunge);
            }
        }
        Ok(r)
    }

    async fn open_message(&self, uid: u32, max_head: usize) -> Result<Message> {
        // Opens in ascending UID order (POP3 RETR 1, 2, ...; FETCH 1:* BODY[]) are served from
        // a read-ahead: from the second such open on, one query reads the next messages whole.
        if let Some(m) = self.take_ahead(uid) {
            return Ok(self.message_of(m, max_head));
        }
        let ascending = {
            let mut ahead = self.ahead.lock();
            let up = ahead.last.is_some_and(|last| uid > last) && ahead.messages.is_empty();
            ahead.last = Some(uid);
            up
        };
        if ascending && let Some(m) = self.read_ahead(uid).await? {
            return Ok(self.message_of(m, max_head));
        }
        // One round trip: the message's row and the head of its first chunk together (a POP3
        // RETR or a FETCH of a small message needs nothing else).
        let first = max_head.min(PG_CHUNK_BYTES);
        let row = super::retry::fresh(|| {
            sqlx::query(
                "SELECT m.hash, m.phys_size, m.virt_size, substring(c.data FROM 1 FOR $4) \
                 FROM messages m LEFT JOIN blob_chunks c \
                 ON c.user_id = m.user_id AND c.hash = m.hash AND c.seq = 0 \
                 WHERE m.user_id = $1 AND m.mailbox_id = $2 AND m.uid = $3",
            )
            .bind(self.user.user_id)
            .bind(self.id)
            .bind(i64::from(uid))
            .bind(i32::try_from(first).unwrap_or(i32::MAX))
            .fetch_optional(self.user.pool())
        })
        .await
        .map_err(db)?
        .ok_or(StorageError::Expunged)?;
        let hash: Vec<u8> = row.try_get(0).map_err(db)?;
        let phys = u64_of(row.try_get(1).map_err(db)?);
        let virt = u64_of(row.try_get(2).map_err(db)?);
        let head_bytes: Option<Vec<u8>> = row.try_get(3).map_err(db)?;
        let content = PgContent::new(
            self.user.pool().clone(),
            self.user.user_id,
            Arc::from(hash),
            phys,
        );
        let want = max_head.min(
            usize::try_from(phys)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let head = if want == 0 {
            Head::default()
        } else {
            let mut bytes = head_bytes.unwrap_or_default();
            bytes.truncate(want);
            if bytes.len() < want && (bytes.len() as u64) < phys {
                // A head beyond the first chunk.
                bytes = blob::read(
                    &content.pool,
                    content.user_id,
                    &content.hash,
                    phys,
                    0,
                    want,
                    bytes,
                )
                .await?;
            }
            Head {
                complete: bytes.len() < want,
                bytes,
            }
        };
        Ok(Message {
            uid,
            phys_size: phys,
            virt_size: virt,
            content: Arc::new(content),
            head,
        })
    }

    async fn read_messages(&self, uids: Vec<u32>, part: ReadPart) -> Result<Vec<Option<Bytes>>> {
        // One query for the batch: the start of every message's first chunk (a header is
        // nearly always within [`PG_HEADER_PROBE_BYTES`]); the few that need more are read on.
        let want = match part {
            ReadPart::Header => MAX_HEADER_BYTES,
            ReadPart::Whole { cap } => cap,
        };
        let probe = match part {
            ReadPart::Header => PG_HEADER_PROBE_BYTES,
            ReadPart::Whole { cap } => cap,
        }
        .min(PG_CHUNK_BYTES);
        let rows = sqlx::query(
            "SELECT m.uid, m.hash, m.phys_size, substring(c.data FROM 1 FOR $4) \
             FROM messages m LEFT JOIN blob_chunks c \
             ON c.user_id = m.user_id AND c.hash = m.hash AND c.seq = 0 \
             WHERE m.user_id = $1 AND m.mailbox_id = $2 AND m.uid = ANY($3)",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(Self::uid_params(&uids))
        .bind(i32::try_from(probe).unwrap_or(i32::MAX))
        .fetch_all(self.user.pool())
        .await
        .map_err(db)?;
        let mut found: HashMap<u32, (Vec<u8>, u64, Vec<u8>)> = HashMap::with_capacity(rows.len());
        for r in rows {
            let head: Option<Vec<u8>> = r.try_get(3).map_err(db)?;
            found.insert(
                u32_of(r.try_get(0).map_err(db)?),
                (
                    r.try_get(1).map_err(db)?,
                    u64_of(r.try_get(2).map_err(db)?),
                    head.unwrap_or_default(),
                ),
            );
        }
        let mut out = Vec::with_capacity(uids.len());
        for uid in &uids {
            let Some((hash, phys, mut data)) = found.remove(uid) else {
                out.push(None);
                continue;
            };
            let short = (data.len() as u64) < phys.min(want as u64);
            let needs_more = match part {
                ReadPart::Header => short && crate::storage::header_end(&data, 0).is_none(),
                ReadPart::Whole { .. } => short,
            };
            if needs_more {
                data = blob::read(
                    self.user.pool(),
                    self.user.user_id,
                    &hash,
                    phys,
                    0,
                    want,
                    Vec::new(),
                )
                .await?;
            }
            let end = match part {
                ReadPart::Header => crate::storage::header_end(&data, 0)
                    .unwrap_or(data.len())
                    .min(MAX_HEADER_BYTES),
                ReadPart::Whole { cap } => cap,
            };
            data.truncate(end);
            out.push(Some(Bytes::from(data)));
        }
        Ok(out)
    }

    async fn resolve_dates(&self, uids: Vec<u32>) -> Result<Vec<(u32, i64)>> {
        let rows = sqlx::query(
            "SELECT uid, internal_date FROM messages \
             WHERE user_id = $1 AND mailbox_id = $2 AND uid = ANY($3) ORDER BY uid",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(Self::uid_params(&uids))
        .fetch_all(self.user.pool())
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| Ok((u32_of(r.try_get(0)?), r.try_get(1)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(db)
    }

    async fn cache_get_prefix(
        &self,
        uids: Vec<u32>,
        field: CacheField,
        max_bytes: usize,
    ) -> Result<Vec<Option<Bytes>>> {
        let uv = self.uidvalidity.load(Ordering::Relaxed);
        let key = |uid: u32| (self.user.user_id, self.id, uv, uid);
        // What this process has in memory first; only the rest is read.
        let mut out: Vec<Option<Bytes>> = {
            let mut fields = self.user.sh.fields.lock();
            let mut used = 0usize;
            let mut out = Vec::with_capacity(uids.len());
            for &uid in &uids {
                if !out.is_empty() && used >= max_bytes {
                    break;
                }
                let blob = fields.get(&key(uid), field.0);
                used = used.saturating_add(blob.as_ref().map_or(0, Bytes::len));
                out.push(blob);
            }
            out
        };
        let missing: Vec<u32> = uids
            .iter()
            .zip(&out)
            .filter(|(_, b)| b.is_none())
            .map(|(u, _)| *u)
            .collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT uid, data FROM message_cache WHERE user_id = $1 AND mailbox_id = $2 \
             AND field = $3 AND uid = ANY($4)",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(i16::from(field.0))
        .bind(Self::uid_params(&missing))
        .fetch_all(self.user.pool())
        .await
        .map_err(db)?;
        let mut found: HashMap<u32, Bytes> = HashMap::with_capacity(rows.len());
        for r in rows {
            let data: Vec<u8> = r.try_get(1).map_err(db)?;
            found.insert(u32_of(r.try_get(0).map_err(db)?), Bytes::from(data));
        }
        {
            let mut fields = self.user.sh.fields.lock();
            for (uid, blob) in &found {
                fields.put(key(*uid), field.0, blob.clone());
            }
        }
        // The prefix within `max_bytes`, counted again with what the database gave.
        let mut used = 0usize;
        let mut keep = 0usize;
        for (uid, slot) in uids.iter().zip(out.iter_mut()) {
            if keep > 0 && used >= max_bytes {
                break;
            }
            if slot.is_none() {
                *slot = found.remove(uid);
            }
            used = used.saturating_add(slot.as_ref().map_or(0, Bytes::len));
            keep += 1;
        }
        out.truncate(keep);
        Ok(out)
    }

    async fn cache_put_fields(&self, fields: Vec<(CacheField, Vec<(u32, Bytes)>)>) -> Result<()> {
        for (field, entries) in fields {
            let entries: Vec<(u32, Bytes)> = entries
                .into_iter()
                .filter(|(_, b)| b.len() <= MAX_CACHE_ENTRY_BYTES)
                .collect();
            if entries.is_empty() {
                continue;
            }
            let (uids, blobs): (Vec<i64>, Vec<Vec<u8>>) = entries
                .iter()
                .map(|(u, b)| (i64::from(*u), b.to_vec()))
                .unzip();
            // Entries of expunged messages are dropped: only present UIDs are joined, and only
            // those the database took are kept in memory.
            let taken: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO message_cache (user_id, mailbox_id, uid, field, data) \
                 SELECT $1, $2, t.u, $3, t.d FROM UNNEST($4::BIGINT[], $5::BYTEA[]) AS t(u, d) \
                 JOIN messages m ON m.user_id = $1 AND m.mailbox_id = $2 AND m.uid = t.u \
                 ON CONFLICT (user_id, mailbox_id, uid, field) DO UPDATE SET data = EXCLUDED.data \
                 RETURNING uid",
            )
            .bind(self.user.user_id)
            .bind(self.id)
            .bind(i16::from(field.0))
            .bind(&uids)
            .bind(&blobs)
            .fetch_all(self.user.pool())
            .await
            .map_err(db)?;
            let taken: std::collections::HashSet<u32> = taken.into_iter().map(u32_of).collect();
            let uv = self.uidvalidity.load(Ordering::Relaxed);
            let mut cache = self.user.sh.fields.lock();
            for (uid, blob) in entries {
                if taken.contains(&uid) {
                    cache.put((self.user.user_id, self.id, uv, uid), field.0, blob);
                }
            }
        }
        Ok(())
    }

    async fn pop3_mark_downloaded(&self, uids: Vec<u32>) -> Result<()> {
        sqlx::query(
            "UPDATE messages SET downloaded = $4 WHERE user_id = $1 AND mailbox_id = $2 \
             AND uid = ANY($3) AND downloaded = 0",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(Self::uid_params(&uids))
        .bind(user::now_secs())
        .execute(self.user.pool())
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn vanished_since(&self, modseq: u64) -> Result<Vanished> {
        let floor: i64 = sqlx::query(
            "SELECT vanished_floor FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .fetch_optional(self.user.pool())
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?
        .try_get(0)
        .map_err(db)?;
        if modseq < u64_of(floor) {
            return Ok(Vanished::Unknown);
        }
        let rows = sqlx::query(
            "SELECT DISTINCT uid FROM vanished WHERE user_id = $1 AND mailbox_id = $2 \
             AND modseq > $3 ORDER BY uid",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(i64::try_from(modseq).unwrap_or(i64::MAX))
        .fetch_all(self.user.pool())
        .await
        .map_err(db)?;
        Ok(Vanished::Exact(
            rows.iter()
                .map(|r| r.try_get::<i64, _>(0).map(u32_of))
                .collect::<std::result::Result<_, _>>()
                .map_err(db)?,
        ))
    }

    async fn objects(&self, uids: Vec<u32>) -> Result<Vec<MessageObject>> {
        let rows = sqlx::query(
            "SELECT uid, save_date, email_id FROM messages \
             WHERE user_id = $1 AND mailbox_id = $2 AND uid = ANY($3)",
        )
        .bind(self.user.user_id)
        .bind(self.id)
        .bind(Self::uid_params(&uids))
        .fetch_all(self.user.pool())
        .await
        .map_err(db)?;
        let mut found: HashMap<u32, (i64, i64)> = HashMap::with_capacity(rows.len());
        for r in rows {
            found.insert(
                u32_of(r.try_get(0).map_err(db)?),
                (r.try_get(1).map_err(db)?, r.try_get(2).map_err(db)?),
            );
        }
        Ok(uids
            .into_iter()
            .filter_map(|uid| {
                let (saved, email) = found.get(&uid)?;
                Some(MessageObject {
                    uid,
                    save_date: Some(*saved),
                    email_id: format!("M{:x}-{:x}", self.user.user_id, email),
                    thread_id: None,
                })
            })
            .collect())
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        user::user_fts(&self.user.us, self.user.sh.options.fts)
    }
}

/// Releases a POP3 lease when the session drops its [`Pop3Lock`].
struct LeaseGuard {
    held: Arc<std::sync::atomic::AtomicBool>,
    pool: sqlx::PgPool,
    user_id: i64,
    holder: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        self.held.store(false, Ordering::Release);
        let (pool, user_id, holder) = (self.pool.clone(), self.user_id, self.holder.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let r = sqlx::query("DELETE FROM pop3_leases WHERE user_id = $1 AND holder = $2")
                    .bind(user_id)
                    .bind(holder)
                    .execute(&pool)
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "releasing a POP3 lease; it expires by itself");
                }
            });
        }
    }
}

/// The next lease generation of this process.
static LEASE_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The POP3 maildrop lock across nodes: a lease row with an expiry, renewed while held. Within
/// this process a flag per user answers at once; the row keeps other nodes out. A lease left
/// by a crashed node expires after [`crate::limits::POP3_LEASE_SECS`]; one left by this node
/// (its release still on the way) is taken over.
pub(crate) async fn pop3_lock(u: &PgUser) -> Result<Pop3Lock> {
    if user::pop3_flag(u) {
        return Err(StorageError::InUse);
    }
    let node = format!("{}:", u.sh.node);
    let holder = format!("{node}{}", LEASE_GENERATION.fetch_add(1, Ordering::Relaxed));
    let lease = i64::try_from(u.sh.options.pop3_lease_secs).unwrap_or(60);
    // Run again on a stale connection (retry::fresh) like a read: a first run that did take
    // the lease left it to this node, and this node's lease is taken over.
    let taken = super::retry::fresh(|| {
        sqlx::query(
            "INSERT INTO pop3_leases (user_id, holder, expires_at) \
             VALUES ($1, $2, extract(epoch FROM now())::BIGINT + $3) \
             ON CONFLICT (user_id) DO UPDATE SET holder = EXCLUDED.holder, \
             expires_at = EXCLUDED.expires_at \
             WHERE pop3_leases.expires_at < extract(epoch FROM now())::BIGINT \
             OR left(pop3_leases.holder, length($4)) = $4 RETURNING holder",
        )
        .bind(u.user_id)
        .bind(&holder)
        .bind(lease)
        .bind(&node)
        .fetch_optional(u.pool())
    })
    .await;
    let taken = match taken {
        Ok(t) => t,
        Err(e) => {
            u.us.pop3_held.store(false, Ordering::Release);
            return Err(db(e));
        }
    };
    if taken.is_none() {
        u.us.pop3_held.store(false, Ordering::Release);
        return Err(StorageError::InUse);
    }
    let (pool, user_id, h) = (u.pool().clone(), u.user_id, holder.clone());
    let renew = tokio::spawn(async move {
        let every = std::time::Duration::from_secs(u64::try_from(lease / 3).unwrap_or(20).max(1));
        loop {
            tokio::time::sleep(every).await;
            let r = sqlx::query(
                "UPDATE pop3_leases SET expires_at = extract(epoch FROM now())::BIGINT + $3 \
                 WHERE user_id = $1 AND holder = $2",
            )
            .bind(user_id)
            .bind(&h)
            .bind(lease)
            .execute(&pool)
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "renewing a POP3 lease");
            }
        }
    });
    Ok(Pop3Lock(Box::new(LeaseGuard {
        held: u.us.pop3_held.clone(),
        pool: u.pool().clone(),
        user_id: u.user_id,
        holder,
        renew,
    })))
}
