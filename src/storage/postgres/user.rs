//! One user's mail in the database: the [`UserStore`] and the transactions every write runs
//! (storing messages, expunging, copying), shared with the mailbox handles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use sqlx::postgres::{PgPool, PgRow, Postgres};
use sqlx::{Row as _, Transaction};

mod import;

use super::mailbox::PgMailbox;
use super::push::{self, Entry, Kind};
use super::retry::write_tx;
use super::{Shared, UserShared, blob, db, i64_of, u32_of, u64_of};
use crate::limits::{
    MAX_KEYWORD_BYTES, MAX_MAILBOXES_PER_USER, MAX_METADATA_ENTRIES, PG_CHUNK_BYTES,
    PG_DELIVERY_MEMORY_SECS, PG_STORE_INLINE_BYTES,
};
use crate::storage::metadata::{self, MetadataChange, MetadataMap};
use crate::storage::names::MailboxName;
use crate::storage::stream::{Gathered, stored_size_limit};
use crate::storage::{
    AppendManyResult, AppendMessage, AppendResult, AppendStream, ChangeKind, CopyResult,
    DeliveryId, MailboxInfo, MailboxStatus, OpenOptions, PendingAppend, Pop3Lock, QuotaUsage,
    Result, SpecialUse, StorageError, StorageUser, SystemFlags, UserStore, View,
};

/// Most keywords one mailbox holds, as in every backend.
pub(crate) const KEYWORD_LIMIT: usize = crate::limits::MAX_KEYWORDS_PER_MAILBOX;

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A keyword a mailbox may hold (the memory backend's rule).
pub(crate) fn valid_keyword(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_KEYWORD_BYTES
        && !name.starts_with('\\')
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "(){%*\"]".contains(c))
}

/// The `users` row of `name` (made when missing) and the keys of the user's mailboxes: one
/// query at a login of a known user (what [`PgUser::init`] needs to see nothing is missing).
pub(crate) async fn login(
    pool: &PgPool,
    name: &str,
) -> Result<(i64, std::collections::HashSet<String>)> {
    for made in [false, true] {
        let row = super::retry::fresh(|| {
            sqlx::query(
                "SELECT u.user_id, ARRAY(SELECT m.name FROM mailboxes m \
                 WHERE m.user_id = u.user_id) FROM users u WHERE u.name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
        })
        .await
        .map_err(db)?;
        if let Some(r) = row {
            let names: Vec<String> = r.try_get(1).map_err(db)?;
            return Ok((r.try_get(0).map_err(db)?, names.into_iter().collect()));
        }
        if made {
            break;
        }
        sqlx::query("INSERT INTO users (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(pool)
            .await
            .map_err(db)?;
    }
    Err(StorageError::Temporary(format!(
        "postgresql: the users row of {name} went away"
    )))
}

/// The key of a mailbox in `mailboxes.name` and `subscriptions.name`: its levels joined by `/`,
/// which no level may contain ([`MailboxName::parse`]), whatever the wire separator.
pub(crate) fn key(n: &MailboxName) -> String {
    n.components().join("/")
}

pub(crate) fn from_key(k: &str) -> MailboxName {
    MailboxName::from_components(k.split('/').map(str::to_owned).collect())
}

/// Effective limits of one user (`None` = unlimited).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    bytes: Option<u64>,
    messages: Option<u64>,
}

/// What the locked `users` row says.
struct UserRow {
    bytes_used: u64,
    messages_used: u64,
    last_uidvalidity: i64,
}

impl Limits {
    fn check(&self, u: &UserRow, bytes: u64, messages: u64) -> Result<()> {
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

/// Begins a transaction.
///
/// A `BEGIN` that met a connection the database dropped runs again on another
/// ([`super::retry::fresh`]): nothing of the transaction ran yet.
pub(crate) async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    super::retry::fresh(|| pool.begin()).await.map_err(db)
}

/// Locks the user's row for the transaction: every write that changes usage or the tree
/// takes it first, so the per-user order is the same everywhere (no deadlocks).
async fn lock_user(tx: &mut Transaction<'static, Postgres>, user_id: i64) -> Result<UserRow> {
    let r = sqlx::query(
        "SELECT bytes_used, messages_used, last_uidvalidity FROM users \
         WHERE user_id = $1 FOR UPDATE",
    )
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok(UserRow {
        bytes_used: u64_of(r.try_get(0).map_err(db)?),
        messages_used: u64_of(r.try_get(1).map_err(db)?),
        last_uidvalidity: r.try_get(2).map_err(db)?,
    })
}

/// Adds (or with negative values removes) usage.
async fn add_usage(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    bytes: i64,
    messages: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE users SET bytes_used = greatest(bytes_used + $2, 0), \
         messages_used = greatest(messages_used + $3, 0) WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(bytes)
    .bind(messages)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Locks the user's row and, in the same statement, adds `bytes` and `messages` to its usage
/// and takes `emails` EMAILID numbers: returns the usage before (for the quota check, whose
/// failure rolls the transaction back) and the first number taken. The storing transactions'
/// first statement, as [`lock_user`] is the others'.
async fn charge_user(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    bytes: i64,
    messages: i64,
    emails: i64,
) -> Result<(UserRow, i64)> {
    let r = sqlx::query(
        "UPDATE users SET bytes_used = bytes_used + $2, messages_used = messages_used + $3, \
         next_email_id = next_email_id + $4 WHERE user_id = $1 \
         RETURNING bytes_used - $2, messages_used - $3, last_uidvalidity, next_email_id - $4",
    )
    .bind(user_id)
    .bind(bytes)
    .bind(messages)
    .bind(emails)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?;
    Ok((
        UserRow {
            bytes_used: u64_of(r.try_get(0).map_err(db)?),
            messages_used: u64_of(r.try_get(1).map_err(db)?),
            last_uidvalidity: r.try_get(2).map_err(db)?,
        },
        r.try_get(3).map_err(db)?,
    ))
}

/// What [`take_uids`] found.
enum Taken {
    /// `n` UIDs and modseqs taken in mailbox `id`, the first ones given.
    Uids {
        id: i64,
        uidvalidity: u32,
        first_uid: i64,
        first_modseq: i64,
    },
    /// The delivery was stored there already: its UIDVALIDITY and UID; nothing taken.
    Delivered(u32, u32),
}

/// In one statement: finds mailbox `k` and takes `n` UIDs and modseqs in it (its row stays
/// locked until commit: commit order is UID order), unless `delivery` was stored there within
/// [`PG_DELIVERY_MEMORY_SECS`]. The caller holds the user row, so the delivery lookup sees every
/// delivery committed before (docs/postgresql.md, "LMTP retries"); a missing mailbox is
/// `NonExistent`.
async fn take_uids(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    k: &str,
    n: i64,
    delivery: Option<&DeliveryId>,
) -> Result<Taken> {
    let since = now_secs() - i64_of(PG_DELIVERY_MEMORY_SECS);
    let rows = sqlx::query(
        "WITH d AS (SELECT d.uidvalidity, d.uid FROM deliveries d JOIN mailboxes b \
         ON b.user_id = d.user_id AND b.mailbox_id = d.mailbox_id \
         WHERE d.user_id = $1 AND b.name = $2 AND d.delivery = $4 AND d.delivered_at >= $5 \
         LIMIT 1), \
         m AS (UPDATE mailboxes SET uidnext = uidnext + $3, highest_modseq = highest_modseq + $3 \
         WHERE user_id = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM d) \
         RETURNING mailbox_id, uidnext, highest_modseq, uidvalidity) \
         SELECT false, mailbox_id, uidnext, highest_modseq, uidvalidity FROM m \
         UNION ALL SELECT true, 0, uid, 0, uidvalidity FROM d",
    )
    .bind(user_id)
    .bind(k)
    .bind(n)
    .bind(delivery.map(|d| &d.0[..]))
    .bind(since)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let r = rows.first().ok_or(StorageError::NonExistent)?;
    let uid: i64 = r.try_get(2).map_err(db)?;
    let uidvalidity = u32_of(r.try_get(4).map_err(db)?);
    if r.try_get::<bool, _>(0).map_err(db)? {
        return Ok(Taken::Delivered(uidvalidity, u32_of(uid)));
    }
    if uid - 1 > i64::from(u32::MAX) {
        return Err(StorageError::Cannot("UID space exhausted"));
    }
    let hms: i64 = r.try_get(3).map_err(db)?;
    Ok(Taken::Uids {
        id: r.try_get(1).map_err(db)?,
        uidvalidity,
        first_uid: uid - n,
        first_modseq: hms - n + 1,
    })
}

/// The id of mailbox `k`, locking its row when `lock`.
async fn mailbox_id_tx(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    k: &str,
    lock: bool,
) -> Result<i64> {
    let sql = if lock {
        "SELECT mailbox_id FROM mailboxes WHERE user_id = $1 AND name = $2 FOR UPDATE"
    } else {
        "SELECT mailbox_id FROM mailboxes WHERE user_id = $1 AND name = $2"
    };
    sqlx::query(sql)
        .bind(user_id)
        .bind(k)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?
        .try_get(0)
        .map_err(db)
}

/// Locks the row of mailbox `id` and returns its key; `NonExistent` when it was deleted.
pub(crate) async fn lock_mailbox(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
) -> Result<String> {
    sqlx::query("SELECT name FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2 FOR UPDATE")
        .bind(user_id)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?
        .try_get(0)
        .map_err(db)
}

/// Deletes the user's LMTP delivery records older than [`PG_DELIVERY_MEMORY_SECS`] (an index
/// range on `deliveries_age`); run by a delivery at most once per
/// [`crate::limits::PG_DELIVERY_SWEEP_SECS`] per user and process ([`UserShared::sweep_due`]).
/// Rows past the window are ignored by the lookup ([`take_uids`]) whether deleted or not.
async fn forget_deliveries(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM deliveries WHERE user_id = $1 AND delivered_at < $2")
        .bind(user_id)
        .bind(now - i64_of(PG_DELIVERY_MEMORY_SECS))
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok(())
}

/// The keyword table of a mailbox, index order.
pub(crate) async fn keywords<'e, E>(exec: E, user_id: i64, id: i64) -> Result<Vec<String>>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let rows = sqlx::query(
        "SELECT name FROM mailbox_keywords WHERE user_id = $1 AND mailbox_id = $2 ORDER BY idx",
    )
    .bind(user_id)
    .bind(id)
    .fetch_all(exec)
    .await
    .map_err(db)?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0).map_err(db))
        .collect()
}

/// `name` folded as keywords compare (ASCII case only, as the other backends): the
/// `mailbox_keywords.folded` column, unique per mailbox, so a lookup is one index probe.
fn fold(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// The indexes of `names` in the keyword table of mailbox `id`, adding the missing ones when
/// `create`; refuses a bad keyword or one past the limit before adding any. Reads only the rows
/// of the names asked about (a table may hold [`KEYWORD_LIMIT`] names).
pub(crate) async fn keyword_indexes(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
    names: &[String],
    create: bool,
) -> Result<Vec<i32>> {
    let known = keyword_map(tx, user_id, id, names, create).await?;
    Ok(indexes_in(&known, names))
}

/// The indexes of `names` in `known` (from [`keyword_map`]), ascending, once each; names not
/// in it are left out.
fn indexes_in(known: &HashMap<String, i32>, names: &[String]) -> Vec<i32> {
    let mut out: Vec<i32> = names
        .iter()
        .filter_map(|n| known.get(&fold(n)).copied())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// [`keyword_indexes`] as a map from folded name to index, for a batch whose rows each take
/// their own subset (no statement when `names` is empty).
async fn keyword_map(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
    names: &[String],
    create: bool,
) -> Result<HashMap<String, i32>> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let folded: Vec<String> = names.iter().map(|n| fold(n)).collect();
    let mut known: HashMap<String, i32> = HashMap::new();
    for r in sqlx::query(
        "SELECT idx, folded FROM mailbox_keywords WHERE user_id = $1 AND mailbox_id = $2 \
         AND folded = ANY($3)",
    )
    .bind(user_id)
    .bind(id)
    .bind(&folded)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?
    {
        known.insert(r.try_get(1).map_err(db)?, r.try_get(0).map_err(db)?);
    }
    let mut new: Vec<(&String, String)> = Vec::new();
    if create {
        for (n, f) in names.iter().zip(&folded) {
            if known.contains_key(f) || new.iter().any(|(_, k)| k == f) {
                continue;
            }
            if !valid_keyword(n) {
                return Err(StorageError::Invalid("bad keyword"));
            }
            new.push((n, f.clone()));
        }
    }
    if !new.is_empty() {
        // The table is dense (0..n), and max() is read from the primary key's end.
        let count: i64 = sqlx::query(
            "SELECT coalesce(max(idx) + 1, 0)::BIGINT FROM mailbox_keywords \
             WHERE user_id = $1 AND mailbox_id = $2",
        )
        .bind(user_id)
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count.saturating_add(new.len()) > KEYWORD_LIMIT {
            return Err(StorageError::Invalid("too many keywords in this mailbox"));
        }
        for (i, (n, f)) in new.into_iter().enumerate() {
            let idx = i32::try_from(count + i).unwrap_or(i32::MAX);
            sqlx::query(
                "INSERT INTO mailbox_keywords (user_id, mailbox_id, idx, name, folded) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(id)
            .bind(idx)
            .bind(n)
            .bind(&f)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
            known.insert(f, idx);
        }
    }
    Ok(known)
}

/// The `INT[]` of keyword indexes as the text `string_to_array` reads (`UNNEST` cannot carry
/// arrays of different lengths).
pub(crate) fn kw_text(idx: &[i32]) -> String {
    idx.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// A message row to insert.
pub(crate) struct NewRow {
    pub hash: Vec<u8>,
    pub phys: u64,
    pub virt: u64,
    pub system: SystemFlags,
    pub keywords: Vec<String>,
    pub date: i64,
    /// The EMAILID number of the source of a copy; `None` for new content.
    pub email: Option<i64>,
}

/// The columns of message rows to insert, as the arrays the `UNNEST` of [`MESSAGES_INSERT`]
/// reads.
#[derive(Default)]
pub(crate) struct Rows {
    uid: Vec<i64>,
    modseq: Vec<i64>,
    flags: Vec<i16>,
    keywords: Vec<String>,
    phys: Vec<i64>,
    virt: Vec<i64>,
    date: Vec<i64>,
    email: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

impl Rows {
    /// Adds `row` as `uid` and `modseq`, with keyword indexes `kw` (its EMAILID must be set).
    fn push(&mut self, uid: i64, modseq: i64, row: &NewRow, kw: &[i32]) {
        self.uid.push(uid);
        self.modseq.push(modseq);
        self.flags.push(i16::from(row.system.0));
        self.keywords.push(kw_text(kw));
        self.phys.push(i64_of(row.phys));
        self.virt.push(i64_of(row.virt));
        self.date.push(row.date);
        self.email.push(row.email.unwrap_or(0));
        self.hash.push(row.hash.clone());
    }
}

/// Binds `$1` to `$12` of [`MESSAGES_INSERT`]: the user, the mailbox, SAVEDATE and the rows'
/// columns, in the order the statement reads them.
fn bind_rows<'q>(
    q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    user_id: i64,
    id: i64,
    now: i64,
    rows: &'q Rows,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    q.bind(user_id)
        .bind(id)
        .bind(now)
        .bind(&rows.uid)
        .bind(&rows.modseq)
        .bind(&rows.flags)
        .bind(&rows.keywords)
        .bind(&rows.phys)
        .bind(&rows.virt)
        .bind(&rows.date)
        .bind(&rows.email)
        .bind(&rows.hash)
}

/// Inserts [`Rows`]: `$1` user, `$2` mailbox, `$3` save date, `$4`..`$12` the columns.
const MESSAGES_INSERT: &str = "INSERT INTO messages (user_id, mailbox_id, uid, modseq, \
     system_flags, keywords, phys_size, virt_size, internal_date, save_date, email_id, hash) \
     SELECT $1, $2, u, m, f, string_to_array(k, ',')::INT[], p, v, d, $3, e, h \
     FROM UNNEST($4::BIGINT[], $5::BIGINT[], $6::SMALLINT[], $7::TEXT[], $8::BIGINT[], \
     $9::BIGINT[], $10::BIGINT[], $11::BIGINT[], $12::BYTEA[]) AS t(u, m, f, k, p, v, d, e, h)";

/// Stores new messages in one statement, whatever else the transaction wrote before it: the
/// content rows (`blobs`, one more reference each) and, for content new to the user, its
/// chunks; the message [`Rows`] of mailbox `id`; with `record`, the LMTP delivery record
/// (delivery, UIDVALIDITY, UID); with `notice`, the change notice to the other nodes
/// (`pg_notify`, sent at commit). `contents` is `(hash, data)` per message, in row order.
/// Content past [`PG_STORE_INLINE_BYTES`] in a batch goes by [`blob::put`] first, a statement
/// per chunk, so that this statement's parameters stay bounded.
#[allow(clippy::too_many_arguments)]
async fn store_batch(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
    contents: &[(&[u8], &[u8])],
    rows: &Rows,
    now: i64,
    record: Option<(&DeliveryId, u32, u32)>,
    notice: Option<String>,
) -> Result<()> {
    // One entry per distinct content: hash, size, references added, chunks sent inline.
    let mut inline_bytes = 0usize;
    let mut distinct: Vec<(&[u8], i64, i64)> = Vec::new();
    let (mut c_hash, mut c_seq, mut c_data): (Vec<&[u8]>, Vec<i32>, Vec<&[u8]>) =
        (Vec::new(), Vec::new(), Vec::new());
    for &(h, data) in contents {
        if let Some(d) = distinct.iter_mut().find(|d| d.0 == h) {
            d.2 += 1;
            continue;
        }
        if inline_bytes.saturating_add(data.len()) > PG_STORE_INLINE_BYTES {
            blob::put(tx, user_id, h, data).await?;
            continue;
        }
        inline_bytes += data.len();
        distinct.push((h, i64_of(data.len() as u64), 1));
        for (seq, chunk) in data.chunks(PG_CHUNK_BYTES).enumerate() {
            c_hash.push(h);
            c_seq.push(i32::try_from(seq).unwrap_or(i32::MAX));
            c_data.push(chunk);
        }
    }
    let (b_hash, b_size, b_refs): (Vec<&[u8]>, Vec<i64>, Vec<i64>) = (
        distinct.iter().map(|d| d.0).collect(),
        distinct.iter().map(|d| d.1).collect(),
        distinct.iter().map(|d| d.2).collect(),
    );
    // A content released but not purged yet (refs 0) still has its chunks: they are the same
    // bytes, so those inserts do nothing. Two transactions storing the same new content wait for
    // each other on the `blobs` row: the second finds more references than its own and sends
    // no chunks.
    let mut sql = format!(
        "WITH t AS (SELECT h, s, n FROM UNNEST($13::BYTEA[], $14::BIGINT[], $15::BIGINT[]) \
         AS t(h, s, n)), \
         b AS (INSERT INTO blobs (user_id, hash, size, refs) SELECT $1, h, s, n FROM t \
         ON CONFLICT (user_id, hash) DO UPDATE SET refs = blobs.refs + EXCLUDED.refs, \
         released_at = NULL RETURNING hash, refs), \
         c AS (INSERT INTO blob_chunks (user_id, hash, seq, data) SELECT $1, x.h, x.q, x.d \
         FROM UNNEST($16::BYTEA[], $17::INT[], $18::BYTEA[]) AS x(h, q, d) \
         JOIN b ON b.hash = x.h JOIN t ON t.h = x.h WHERE b.refs <= t.n \
         ON CONFLICT DO NOTHING), \
         m AS ({MESSAGES_INSERT})"
    );
    let mut next = 19;
    if record.is_some() {
        sql.push_str(&format!(
            ", d AS (INSERT INTO deliveries (user_id, delivery, mailbox_id, uidvalidity, uid, \
             delivered_at) VALUES ($1, ${}, $2, ${}, ${}, $3) \
             ON CONFLICT (user_id, delivery, mailbox_id) DO UPDATE \
             SET uidvalidity = EXCLUDED.uidvalidity, uid = EXCLUDED.uid, \
             delivered_at = EXCLUDED.delivered_at)",
            next,
            next + 1,
            next + 2
        ));
        next += 3;
    }
    if notice.is_some() {
        sql.push_str(&format!(" SELECT pg_notify(${}, ${})", next, next + 1));
    } else {
        sql.push_str(" SELECT 1");
    }
    // Only this function's fragments and parameter numbers go into the text.
    let mut q = bind_rows(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        user_id,
        id,
        now,
        rows,
    )
    .bind(&b_hash)
    .bind(&b_size)
    .bind(&b_refs)
    .bind(&c_hash)
    .bind(&c_seq)
    .bind(&c_data);
    if let Some((d, uidvalidity, uid)) = record {
        q = q
            .bind(&d.0[..])
            .bind(i64::from(uidvalidity))
            .bind(i64::from(uid));
    }
    if let Some(payload) = notice {
        q = q.bind(push::CHANNEL).bind(payload);
    }
    q.execute(&mut **tx).await.map_err(db)?;
    Ok(())
}

/// Bytes a client is sent for `data`: every bare LF counted as CRLF.
pub(crate) fn virtual_size(data: &[u8]) -> u64 {
    let bare = memchr::memchr_iter(b'\n', data)
        .filter(|&i| i == 0 || data.get(i - 1) != Some(&b'\r'))
        .count();
    data.len() as u64 + bare as u64
}

/// Inserts rows into mailbox `id` (whose row the caller has locked or is about to lock with
/// the UID update), taking their UIDs and modseqs in the transaction; returns the UIDVALIDITY
/// and the UIDs, in row order. Content references are the caller's.
pub(crate) async fn insert_rows(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
    rows: Vec<NewRow>,
) -> Result<(u32, Vec<u32>)> {
    let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    // The UID update locks the mailbox row until commit: commit order is UID order.
    let r = sqlx::query(
        "UPDATE mailboxes SET uidnext = uidnext + $3, highest_modseq = highest_modseq + $3 \
         WHERE user_id = $1 AND mailbox_id = $2 RETURNING uidnext, highest_modseq, uidvalidity",
    )
    .bind(user_id)
    .bind(id)
    .bind(n)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?
    .ok_or(StorageError::NonExistent)?;
    let uidnext: i64 = r.try_get(0).map_err(db)?;
    let hms: i64 = r.try_get(1).map_err(db)?;
    let uidvalidity = u32_of(r.try_get(2).map_err(db)?);
    if uidnext - 1 > i64::from(u32::MAX) {
        return Err(StorageError::Cannot("UID space exhausted"));
    }
    // Every keyword of the batch at once: checked (and added) before any row goes in.
    let all: Vec<String> = rows.iter().flat_map(|r| r.keywords.clone()).collect();
    let known = keyword_map(tx, user_id, id, &all, true).await?;
    let fresh = rows.iter().filter(|r| r.email.is_none()).count();
    let mut next_email = 0i64;
    if fresh > 0 {
        let fresh = i64::try_from(fresh).unwrap_or(i64::MAX);
        let end: i64 = sqlx::query(
            "UPDATE users SET next_email_id = next_email_id + $2 WHERE user_id = $1 \
             RETURNING next_email_id",
        )
        .bind(user_id)
        .bind(fresh)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        next_email = end - fresh;
    }
    let first_uid = uidnext - n;
    let first_modseq = hms - n + 1;
    let now = now_secs();
    let mut uids = Vec::with_capacity(rows.len());
    let mut cols = Rows::default();
    for (i, mut row) in rows.into_iter().enumerate() {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        let idx = indexes_in(&known, &row.keywords);
        row.email = Some(row.email.unwrap_or_else(|| {
            next_email += 1;
            next_email - 1
        }));
        cols.push(first_uid + i, first_modseq + i, &row, &idx);
        uids.push(u32_of(first_uid + i));
    }
    bind_rows(sqlx::query(MESSAGES_INSERT), user_id, id, now, &cols)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    Ok((uidvalidity, uids))
}

/// Expunges from mailbox `id` (locked by the caller, after the user row) the messages of
/// `uids` (all when `None`) carrying `\Deleted`, or all of them with `force`: each takes its own
/// modseq and a tombstone for QRESYNC; usage and content references drop. Returns the UIDs,
/// ascending, and their bytes.
pub(crate) async fn expunge_in(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
    uids: Option<&[u32]>,
    force: bool,
) -> Result<(Vec<u32>, u64)> {
    let wanted: Option<Vec<i64>> = uids.map(|u| u.iter().map(|&x| i64::from(x)).collect());
    let rows = sqlx::query(
        "DELETE FROM messages WHERE user_id = $1 AND mailbox_id = $2 \
         AND ($3::BIGINT[] IS NULL OR uid = ANY($3)) AND ($4 OR system_flags & 8 <> 0) \
         RETURNING uid, hash, phys_size",
    )
    .bind(user_id)
    .bind(id)
    .bind(wanted)
    .bind(force)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut gone: Vec<(i64, Vec<u8>, i64)> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(db)?;
    gone.sort_unstable_by_key(|g| g.0);
    let n = i64::try_from(gone.len()).unwrap_or(i64::MAX);
    let hms: i64 = sqlx::query(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + $3 \
         WHERE user_id = $1 AND mailbox_id = $2 RETURNING highest_modseq",
    )
    .bind(user_id)
    .bind(id)
    .bind(n)
    .fetch_one(&mut **tx)
    .await
    .map_err(db)?
    .try_get(0)
    .map_err(db)?;
    let uids: Vec<i64> = gone.iter().map(|g| g.0).collect();
    let modseqs: Vec<i64> = (0..n).map(|i| hms - n + 1 + i).collect();
    sqlx::query(
        "INSERT INTO vanished (user_id, mailbox_id, modseq, uid) \
         SELECT $1, $2, m, u FROM UNNEST($3::BIGINT[], $4::BIGINT[]) AS t(m, u)",
    )
    .bind(user_id)
    .bind(id)
    .bind(&modseqs)
    .bind(&uids)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    trim_vanished(tx, user_id, id).await?;
    sqlx::query(
        "DELETE FROM message_cache WHERE user_id = $1 AND mailbox_id = $2 AND uid = ANY($3)",
    )
    .bind(user_id)
    .bind(id)
    .bind(&uids)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    let hashes: Vec<Vec<u8>> = gone.iter().map(|g| g.1.clone()).collect();
    blob::release(tx, user_id, &hashes).await?;
    let bytes: i64 = gone.iter().map(|g| g.2).sum();
    add_usage(tx, user_id, -bytes, -n).await?;
    Ok((uids.into_iter().map(u32_of).collect(), u64_of(bytes)))
}

/// Keeps the last [`crate::limits::VANISHED_WINDOW`] tombstones of a mailbox; the floor rises
/// to the highest modseq forgotten.
async fn trim_vanished(
    tx: &mut Transaction<'static, Postgres>,
    user_id: i64,
    id: i64,
) -> Result<()> {
    let window = i64::try_from(crate::limits::VANISHED_WINDOW).unwrap_or(i64::MAX);
    let cut: Option<i64> = sqlx::query(
        "SELECT modseq FROM vanished WHERE user_id = $1 AND mailbox_id = $2 \
         ORDER BY modseq DESC OFFSET $3 LIMIT 1",
    )
    .bind(user_id)
    .bind(id)
    .bind(window)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db)?
    .map(|r| r.try_get(0))
    .transpose()
    .map_err(db)?;
    if let Some(cut) = cut {
        sqlx::query("DELETE FROM vanished WHERE user_id = $1 AND mailbox_id = $2 AND modseq <= $3")
            .bind(user_id)
            .bind(id)
            .bind(cut)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "UPDATE mailboxes SET vanished_floor = greatest(vanished_floor, $3) \
             WHERE user_id = $1 AND mailbox_id = $2",
        )
        .bind(user_id)
        .bind(id)
        .bind(cut)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// [`UserStore`] of the PostgreSQL backend; cheap to clone (handles and streams hold one).
#[derive(Clone)]
pub struct PgUser {
    pool: PgPool,
    pub(crate) sh: Arc<Shared>,
    pub(crate) us: Arc<UserShared>,
    pub(crate) user_id: i64,
    origin: u64,
    limits: Limits,
    /// The key and id of the mailbox this session's store last opened, until
    /// [`UserStore::mailbox_id`] takes it (SELECT's MAILBOXID right after the open).
    opened: Arc<Mutex<Option<(String, i64)>>>,
}

impl PgUser {
    pub(crate) fn new(
        pool: PgPool,
        sh: Arc<Shared>,
        us: Arc<UserShared>,
        user_id: i64,
        user: &StorageUser,
    ) -> Self {
        let pick = |v: Option<u64>, d: u64| match v.unwrap_or(d) {
            0 => None,
            n => Some(n),
        };
        let limits = Limits {
            bytes: pick(user.quota_bytes, sh.options.quota_bytes),
            messages: pick(user.quota_messages, sh.options.quota_messages),
        };
        PgUser {
            pool,
            sh,
            us,
            user_id,
            origin: crate::storage::feed::next_origin(),
            limits,
            opened: Arc::new(Mutex::new(None)),
        }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn sep(&self) -> char {
        self.sh.options.separator
    }

    fn parse(&self, name: &str, allow_trailing: bool) -> Result<MailboxName> {
        MailboxName::parse(name, self.sep(), allow_trailing)
    }

    pub(crate) fn wire(&self, n: &MailboxName) -> String {
        n.to_wire(self.sep())
    }

    /// INBOX and the autocreate mailboxes, when missing from `have` (the keys of the user's
    /// mailboxes, read by [`login`]): the writes only when something is missing.
    pub(crate) async fn init(&self, have: std::collections::HashSet<String>) -> Result<()> {
        let inbox = MailboxName::from_components(vec!["INBOX".to_owned()]);
        if !have.contains("INBOX") {
            match self.create_mailbox(&inbox, None).await {
                Ok(_) | Err(StorageError::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
        }
        for (name, special) in &self.sh.options.autocreate {
            let n = self.parse(name, true)?;
            if n.is_inbox() || have.contains(&key(&n)) {
                continue;
            }
            match self.create_mailbox(&n, *special).await {
                Ok(_) => {
                    self.subscribe_key(&key(&n)).await?;
                }
                Err(StorageError::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The id of mailbox `n`.
    pub(crate) async fn mailbox_id_of(&self, n: &MailboxName) -> Result<i64> {
        sqlx::query("SELECT mailbox_id FROM mailboxes WHERE user_id = $1 AND name = $2")
            .bind(self.user_id)
            .bind(key(n))
            .fetch_optional(self.pool())
            .await
            .map_err(db)?
            .ok_or(StorageError::NonExistent)?
            .try_get(0)
            .map_err(db)
    }

    async fn create_mailbox(&self, n: &MailboxName, special: Option<SpecialUse>) -> Result<i64> {
        write_tx!(self.pool(), |tx| {
            let u = lock_user(&mut tx, self.user_id).await?;
            let rows = sqlx::query("SELECT name FROM mailboxes WHERE user_id = $1")
                .bind(self.user_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let k = key(n);
            if rows
                .iter()
                .any(|r| r.try_get::<String, _>(0).is_ok_and(|x| x == k))
            {
                return Err(StorageError::AlreadyExists);
            }
            if rows.len() >= MAX_MAILBOXES_PER_USER {
                return Err(StorageError::Cannot("too many mailboxes"));
            }
            let uidvalidity = now_secs()
                .max(u.last_uidvalidity.saturating_add(1))
                .clamp(1, i64::from(u32::MAX));
            let id: i64 = sqlx::query(
                "UPDATE users SET last_uidvalidity = $2, next_mailbox_id = next_mailbox_id + 1 \
             WHERE user_id = $1 RETURNING next_mailbox_id - 1",
            )
            .bind(self.user_id)
            .bind(uidvalidity)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
            sqlx::query(
                "INSERT INTO mailboxes (user_id, mailbox_id, name, uidvalidity, special_use) \
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.user_id)
            .bind(id)
            .bind(&k)
            .bind(uidvalidity)
            .bind(special.map(SpecialUse::attribute))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            self.notify(&mut tx, vec![Entry::new(id, &k, Kind::Created)])
                .await?;
            id
        })
    }

    /// Subscribes `k` in one transaction that tells the other nodes.
    async fn subscribe_key(&self, k: &str) -> Result<()> {
        write_tx!(self.pool(), |tx| {
            let count: i64 = sqlx::query("SELECT count(*) FROM subscriptions WHERE user_id = $1")
                .bind(self.user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            let r = sqlx::query(
                "INSERT INTO subscriptions (user_id, name) SELECT $1, $2 WHERE $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(self.user_id)
            .bind(k)
            .bind(count < i64::try_from(MAX_MAILBOXES_PER_USER).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if r.rows_affected() == 0 {
                let exists =
                    sqlx::query("SELECT 1 FROM subscriptions WHERE user_id = $1 AND name = $2")
                        .bind(self.user_id)
                        .bind(k)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db)?
                        .is_some();
                if !exists {
                    return Err(StorageError::Cannot("too many subscriptions"));
                }
            } else {
                let mailbox = sqlx::query(
                    "SELECT mailbox_id FROM mailboxes WHERE user_id = $1 AND name = $2",
                )
                .bind(self.user_id)
                .bind(k)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?
                .map(|r| r.try_get::<i64, _>(0))
                .transpose()
                .map_err(db)?;
                self.notify(
                    &mut tx,
                    vec![Entry::new(mailbox.unwrap_or(0), k, Kind::Sub)],
                )
                .await?;
            }
        })
    }

    /// Tells the other nodes, inside `tx`, what it changes of this user ([`push::send`]).
    pub(crate) async fn notify(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        notice: Vec<Entry>,
    ) -> Result<()> {
        push::send(tx, &self.sh, self.user_id, notice).await
    }

    /// Publishes a change to the user's feed (and queues indexing of new mail).
    pub(crate) fn publish(&self, mailbox: Option<String>, kind: ChangeKind) {
        if matches!(kind, ChangeKind::MessageNew)
            && let Some(name) = &mailbox
            && self.sh.options.fts
        {
            let dedup = format!("pg:{}\u{0}{name}", self.user_id);
            crate::fts::indexer::enqueue(Arc::new(self.clone()), name.clone(), dedup);
        }
        self.us.feed.publish(crate::storage::Change {
            mailbox,
            kind,
            origin: self.origin,
        });
    }

    /// Stores messages into mailbox `n`, all or none. With `delivery` (one message, from LMTP)
    /// a delivery already stored there within [`PG_DELIVERY_MEMORY_SECS`] stores nothing and
    /// answers the first copy's UIDVALIDITY and UID (docs/postgresql.md, "LMTP retries").
    pub(crate) async fn append_many(
        &self,
        n: &MailboxName,
        msgs: Vec<(Bytes, SystemFlags, Vec<String>, Option<i64>)>,
        delivery: Option<DeliveryId>,
    ) -> Result<(u32, Vec<u32>)> {
        let max = stored_size_limit(self.sh.options.max_message_size);
        if msgs.iter().any(|m| m.0.len() as u64 > max) {
            return Err(StorageError::Cannot("message too large"));
        }
        let bytes: u64 = msgs.iter().map(|m| m.0.len() as u64).sum();
        let count = msgs.len() as u64;
        let delivery = delivery.filter(|_| msgs.len() == 1);
        let hashes: Vec<Vec<u8>> = msgs.iter().map(|m| blob::hash(&m.0)).collect();
        let k = key(n);
        let sweep = delivery.is_some() && self.us.sweep_due(now_secs());
        let (out, id, stored) = write_tx!(self.pool(), |tx| {
            let total = i64_of(count);
            // The user row first, then the mailbox row: the order of every writer.
            let (u, first_email) =
                charge_user(&mut tx, self.user_id, i64_of(bytes), total, total).await?;
            let (id, uidvalidity, first_uid, first_modseq) =
                match take_uids(&mut tx, self.user_id, &k, total, delivery.as_ref()).await? {
                    Taken::Uids {
                        id,
                        uidvalidity,
                        first_uid,
                        first_modseq,
                    } => (id, uidvalidity, first_uid, first_modseq),
                    // The MTA's retry of a delivery that was committed: nothing is stored (the
                    // usage just charged rolls back with the rest).
                    Taken::Delivered(v, uid) => return Ok(((v, vec![uid]), 0, false)),
                };
            self.limits.check(&u, bytes, count)?;
            let all: Vec<String> = msgs.iter().flat_map(|m| m.2.iter().cloned()).collect();
            let known = keyword_map(&mut tx, self.user_id, id, &all, true).await?;
            let now = now_secs();
            let mut rows = Rows::default();
            let mut uids = Vec::with_capacity(msgs.len());
            for (i, ((data, system, keywords, date), h)) in msgs.iter().zip(&hashes).enumerate() {
                let i = i64_of(i as u64);
                rows.push(
                    first_uid + i,
                    first_modseq + i,
                    &NewRow {
                        hash: h.clone(),
                        phys: data.len() as u64,
                        virt: virtual_size(data),
                        system: *system,
                        keywords: Vec::new(),
                        date: date.unwrap_or(now),
                        email: Some(first_email + i),
                    },
                    &indexes_in(&known, keywords),
                );
                uids.push(u32_of(first_uid + i));
            }
            let contents: Vec<(&[u8], &[u8])> = hashes
                .iter()
                .zip(&msgs)
                .map(|(h, m)| (&h[..], &m.0[..]))
                .collect();
            let notice = push::payload(&self.sh, self.user_id, vec![Entry::new(id, &k, Kind::New)]);
            let record = match (&delivery, uids.first()) {
                (Some(d), Some(uid)) => Some((d, uidvalidity, *uid)),
                _ => None,
            };
            store_batch(
                &mut tx,
                self.user_id,
                id,
                &contents,
                &rows,
                now,
                record,
                notice,
            )
            .await?;
            if sweep {
                forget_deliveries(&mut tx, self.user_id, now).await?;
            }
            ((uidvalidity, uids), id, true)
        })?;
        if stored {
            self.us.poke(id);
            self.publish(Some(self.wire(n)), ChangeKind::MessageNew);
        }
        Ok(out)
    }

    /// COPY or MOVE of `uids` from mailbox `src` to mailbox `dest`, all or nothing.
    pub(crate) async fn copy_uids(
        &self,
        src: i64,
        uids: &[u32],
        dest: &str,
        move_: bool,
    ) -> Result<(CopyResult, i64)> {
        let dn = self.parse(dest, false)?;
        let (result, dst, copied) = write_tx!(self.pool(), |tx| {
            let u = lock_user(&mut tx, self.user_id).await?;
            // The target found and both mailbox rows locked in one statement, in id order (rows
            // are locked as they come out of the sort).
            let dk = key(&dn);
            let locked = sqlx::query(
                "SELECT mailbox_id, name FROM mailboxes WHERE user_id = $1 \
                 AND (mailbox_id = $2 OR name = $3) ORDER BY mailbox_id FOR UPDATE",
            )
            .bind(self.user_id)
            .bind(src)
            .bind(&dk)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let (mut src_key, mut dst) = (None, None);
            for r in &locked {
                let id: i64 = r.try_get(0).map_err(db)?;
                let name: String = r.try_get(1).map_err(db)?;
                if name == dk {
                    dst = Some(id);
                }
                if id == src {
                    src_key = Some(name);
                }
            }
            let (Some(src_key), Some(dst)) = (src_key, dst) else {
                return Err(StorageError::NonExistent);
            };
            let wanted: Vec<i64> = uids.iter().map(|&x| i64::from(x)).collect();
            let rows = sqlx::query(
            "SELECT uid, system_flags, keywords, phys_size, virt_size, internal_date, email_id, \
             hash FROM messages WHERE user_id = $1 AND mailbox_id = $2 AND uid = ANY($3) \
             ORDER BY uid",
        )
        .bind(self.user_id)
        .bind(src)
        .bind(&wanted)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
            // The source's keyword table only when a message has keywords.
            let table = if rows
                .iter()
                .any(|r| r.try_get::<Vec<i32>, _>(2).is_ok_and(|k| !k.is_empty()))
            {
                keywords(&mut *tx, self.user_id, src).await?
            } else {
                Vec::new()
            };
            let mut src_uids = Vec::with_capacity(rows.len());
            let mut new = Vec::with_capacity(rows.len());
            for r in &rows {
                let uid: i64 = r.try_get(0).map_err(db)?;
                let kw: Vec<i32> = r.try_get(2).map_err(db)?;
                src_uids.push(u32_of(uid));
                new.push(NewRow {
                    system: SystemFlags(
                        u8::try_from(r.try_get::<i16, _>(1).map_err(db)?).unwrap_or(0),
                    ),
                    keywords: kw
                        .iter()
                        .filter_map(|&i| table.get(usize::try_from(i).ok()?).cloned())
                        .collect(),
                    phys: u64_of(r.try_get(3).map_err(db)?),
                    virt: u64_of(r.try_get(4).map_err(db)?),
                    date: r.try_get(5).map_err(db)?,
                    // RFC 8474 5.1: a copy has its source's EMAILID.
                    email: Some(r.try_get(6).map_err(db)?),
                    hash: r.try_get(7).map_err(db)?,
                });
            }
            let bytes: u64 = new.iter().map(|r| r.phys).sum();
            let count = new.len() as u64;
            if !move_ {
                self.limits.check(&u, bytes, count)?;
            }
            if new.is_empty() {
                let uidvalidity: i64 = sqlx::query(
                    "SELECT uidvalidity FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2",
                )
                .bind(self.user_id)
                .bind(dst)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
                return Ok((
                    CopyResult {
                        uidvalidity: u32_of(uidvalidity),
                        mapping: Vec::new(),
                    },
                    dst,
                    false,
                ));
            }
            let hashes: Vec<Vec<u8>> = new.iter().map(|r| r.hash.clone()).collect();
            blob::add_refs(&mut tx, self.user_id, &hashes).await?;
            let (uidvalidity, new_uids) = insert_rows(&mut tx, self.user_id, dst, new).await?;
            add_usage(&mut tx, self.user_id, i64_of(bytes), i64_of(count)).await?;
            let mut notice = vec![Entry::new(dst, &key(&dn), Kind::New)];
            if move_ {
                // The source may be the target too: the new copies are not in `src_uids`.
                expunge_in(&mut tx, self.user_id, src, Some(&src_uids), true).await?;
                notice.push(Entry::new(src, &src_key, Kind::Expunge));
            }
            self.notify(&mut tx, notice).await?;
            (
                CopyResult {
                    uidvalidity,
                    mapping: src_uids.into_iter().zip(new_uids).collect(),
                },
                dst,
                true,
            )
        })?;
        if copied {
            self.us.poke(dst);
            if move_ {
                self.us.poke(src);
            }
        }
        Ok((result, dst))
    }

    /// Expunges from mailbox `id` and wakes its views.
    pub(crate) async fn expunge_mailbox(
        &self,
        id: i64,
        uids: Option<&[u32]>,
        force: bool,
    ) -> Result<Vec<u32>> {
        let gone = write_tx!(self.pool(), |tx| {
            lock_user(&mut tx, self.user_id).await?;
            let k = lock_mailbox(&mut tx, self.user_id, id).await?;
            let gone = expunge_in(&mut tx, self.user_id, id, uids, force).await?.0;
            if !gone.is_empty() {
                let notice = vec![Entry::new(id, &k, Kind::Expunge)];
                self.notify(&mut tx, notice).await?;
            }
            gone
        })?;
        if !gone.is_empty() {
            self.us.poke(id);
        }
        Ok(gone)
    }

    /// Every METADATA row of the user: `mailbox_id` (0 for the server entries) to its map.
    async fn metadata_all(
        tx: &mut Transaction<'static, Postgres>,
        user_id: i64,
    ) -> Result<HashMap<i64, MetadataMap>> {
        let rows = sqlx::query("SELECT mailbox_id, entry, value FROM metadata WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut **tx)
            .await
            .map_err(db)?;
        let mut out: HashMap<i64, MetadataMap> = HashMap::new();
        for r in rows {
            out.entry(r.try_get(0).map_err(db)?)
                .or_default()
                .insert(r.try_get(1).map_err(db)?, r.try_get(2).map_err(db)?);
        }
        Ok(out)
    }

    /// Replaces the METADATA of `mid` with `changes` applied, within the limits.
    async fn metadata_apply(&self, mid: i64, changes: Vec<MetadataChange>) -> Result<()> {
        write_tx!(self.pool(), |tx| {
            lock_user(&mut tx, self.user_id).await?;
            let mut all = Self::metadata_all(&mut tx, self.user_id).await?;
            let others: u64 = all
                .iter()
                .filter(|(k, _)| **k != mid)
                .map(|(_, m)| metadata::map_bytes(m))
                .sum();
            let mut map = all.remove(&mid).unwrap_or_default();
            let changes_names: Vec<String> = changes.iter().map(|c| c.0.clone()).collect();
            metadata::apply(&mut map, changes.clone(), others)?;
            debug_assert!(map.len() <= MAX_METADATA_ENTRIES);
            sqlx::query("DELETE FROM metadata WHERE user_id = $1 AND mailbox_id = $2")
                .bind(self.user_id)
                .bind(mid)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            let mut notice = Entry {
                m: mid,
                k: Kind::Meta,
                n: None,
                old: None,
                e: changes_names,
            };
            if mid != 0 {
                notice.n = Some(lock_mailbox(&mut tx, self.user_id, mid).await?);
            }
            self.notify(&mut tx, vec![notice]).await?;
            let (names, values): (Vec<String>, Vec<Vec<u8>>) = map.into_iter().unzip();
            sqlx::query(
                "INSERT INTO metadata (user_id, mailbox_id, entry, value) \
             SELECT $1, $2, e, v FROM UNNEST($3::TEXT[], $4::BYTEA[]) AS t(e, v)",
            )
            .bind(self.user_id)
            .bind(mid)
            .bind(&names)
            .bind(&values)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        })
    }

    /// The METADATA key of `mailbox` (0: the server entries); `NonExistent` for a missing one.
    async fn metadata_key(&self, mailbox: Option<&str>) -> Result<i64> {
        match mailbox {
            None => Ok(0),
            Some(name) => self.mailbox_id_of(&self.parse(name, false)?).await,
        }
    }
}

fn row_status(r: &PgRow) -> std::result::Result<MailboxStatus, sqlx::Error> {
    let c = |i: usize| r.try_get::<i64, _>(i).map(u32_of);
    Ok(MailboxStatus {
        uidvalidity: c(0)?,
        uidnext: c(1)?,
        highest_modseq: u64_of(r.try_get(2)?),
        messages: c(3)?,
        unseen: c(4)?,
        size: u64_of(r.try_get(5)?),
        deleted: c(6)?,
        deleted_bytes: u64_of(r.try_get(7)?),
        recent: c(8)?,
    })
}

#[async_trait]
impl UserStore for PgUser {
    fn separator(&self) -> char {
        self.sep()
    }

    async fn list(&self) -> Result<Vec<MailboxInfo>> {
        let rows = sqlx::query("SELECT name, special_use FROM mailboxes WHERE user_id = $1")
            .bind(self.user_id)
            .fetch_all(self.pool())
            .await
            .map_err(db)?;
        let subs = self.subscriptions_keys().await?;
        let mut all: BTreeMap<Vec<String>, (bool, Option<SpecialUse>)> = BTreeMap::new();
        for r in rows {
            let k: String = r.try_get(0).map_err(db)?;
            let su: Option<String> = r.try_get(1).map_err(db)?;
            let levels = from_key(&k).components().to_vec();
            for depth in 1..levels.len() {
                all.entry(levels.get(..depth).unwrap_or_default().to_vec())
                    .or_insert((false, None));
            }
            all.insert(
                levels,
                (true, su.as_deref().and_then(SpecialUse::from_attribute)),
            );
        }
        let mut autocreated: HashMap<Vec<String>, SpecialUse> = HashMap::new();
        for (name, su) in &self.sh.options.autocreate {
            if let (Some(su), Ok(n)) = (su, self.parse(name, true)) {
                autocreated.insert(n.components().to_vec(), *su);
            }
        }
        let keys: Vec<&Vec<String>> = all.keys().collect();
        let mut out = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let has_children = keys
                .get(i + 1)
                .is_some_and(|next| next.len() > k.len() && next.starts_with(k));
            let (selectable, su) = all.get(*k).copied().unwrap_or((false, None));
            let n = MailboxName::from_components((*k).clone());
            out.push(MailboxInfo {
                name: self.wire(&n),
                noselect: !selectable,
                has_children,
                special_use: su.or_else(|| autocreated.get(*k).copied()),
                subscribed: subs.contains(&key(&n)),
            });
        }
        // INBOX first, as clients expect.
        out.sort_by_key(|m| m.name != "INBOX");
        Ok(out)
    }

    async fn subscriptions(&self) -> Result<Vec<String>> {
        Ok(self
            .subscriptions_keys()
            .await?
            .iter()
            .map(|k| self.wire(&from_key(k)))
            .collect())
    }

    async fn create(&self, name: &str, special_use: Option<SpecialUse>) -> Result<()> {
        let n = self.parse(name, true)?;
        if n.is_inbox() {
            return Err(StorageError::AlreadyExists);
        }
        self.create_mailbox(&n, special_use).await?;
        self.publish(Some(self.wire(&n)), ChangeKind::MailboxCreated);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        if n.is_inbox() {
            return Err(StorageError::Cannot("INBOX cannot be deleted"));
        }
        let k = key(&n);
        let id = write_tx!(self.pool(), |tx| {
            lock_user(&mut tx, self.user_id).await?;
            let id = match mailbox_id_tx(&mut tx, self.user_id, &k, true).await {
                Ok(id) => id,
                Err(StorageError::NonExistent) => {
                    let child = sqlx::query(
                        "SELECT 1 FROM mailboxes WHERE user_id = $1 \
                     AND left(name, length($2) + 1) = $2 || '/' LIMIT 1",
                    )
                    .bind(self.user_id)
                    .bind(&k)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
                    return Err(if child.is_some() {
                        StorageError::Cannot(crate::storage::HAS_CHILDREN_NOT_SELECTABLE)
                    } else {
                        StorageError::NonExistent
                    });
                }
                Err(e) => return Err(e),
            };
            let rows = sqlx::query(
            "DELETE FROM messages WHERE user_id = $1 AND mailbox_id = $2 RETURNING hash, phys_size",
        )
        .bind(self.user_id)
        .bind(id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
            let mut hashes = Vec::with_capacity(rows.len());
            let mut bytes = 0i64;
            for r in &rows {
                hashes.push(r.try_get::<Vec<u8>, _>(0).map_err(db)?);
                bytes += r.try_get::<i64, _>(1).map_err(db)?;
            }
            blob::release(&mut tx, self.user_id, &hashes).await?;
            add_usage(
                &mut tx,
                self.user_id,
                -bytes,
                -i64::try_from(rows.len()).unwrap_or(i64::MAX),
            )
            .await?;
            for table in [
                "DELETE FROM mailbox_keywords WHERE user_id = $1 AND mailbox_id = $2",
                "DELETE FROM vanished WHERE user_id = $1 AND mailbox_id = $2",
                "DELETE FROM metadata WHERE user_id = $1 AND mailbox_id = $2",
                "DELETE FROM message_cache WHERE user_id = $1 AND mailbox_id = $2",
                "DELETE FROM mailboxes WHERE user_id = $1 AND mailbox_id = $2",
            ] {
                sqlx::query(table)
                    .bind(self.user_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            self.notify(&mut tx, vec![Entry::new(id, &k, Kind::Deleted)])
                .await?;
            id
        })?;
        self.us.poke(id);
        self.us.watches.lock().remove(&id);
        if self.sh.options.fts {
            crate::fts::indexer::enqueue_purge(
                Arc::new(self.clone()),
                PgMailbox::identity_of(self.user_id, id),
            );
        }
        self.publish(Some(self.wire(&n)), ChangeKind::MailboxDeleted);
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
            let inbox = self.mailbox_id_of(&f).await?;
            self.create(to, None).await?;
            // RFC 5464 4.1: the new mailbox gets a copy of INBOX's METADATA; INBOX keeps them.
            let map = self.metadata_get(Some("INBOX")).await?;
            if !map.is_empty() {
                let to_id = self.mailbox_id_of(&t).await?;
                self.metadata_apply(to_id, map.into_iter().map(|(k, v)| (k, Some(v))).collect())
                    .await?;
            }
            let uids: Vec<u32> = sqlx::query(
                "SELECT uid FROM messages WHERE user_id = $1 AND mailbox_id = $2 ORDER BY uid",
            )
            .bind(self.user_id)
            .bind(inbox)
            .fetch_all(self.pool())
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<i64, _>(0).map(u32_of))
            .collect::<std::result::Result<_, _>>()
            .map_err(db)?;
            self.copy_uids(inbox, &uids, to, true).await?;
            self.publish(Some(self.wire(&t)), ChangeKind::MessageNew);
            if !uids.is_empty() {
                self.publish(Some("INBOX".to_owned()), ChangeKind::MessageExpunge);
            }
            return Ok(());
        }
        write_tx!(self.pool(), |tx| {
            lock_user(&mut tx, self.user_id).await?;
            let rows = sqlx::query("SELECT mailbox_id, name FROM mailboxes WHERE user_id = $1")
                .bind(self.user_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            let mut existing: HashMap<String, i64> = HashMap::new();
            for r in &rows {
                existing.insert(r.try_get(1).map_err(db)?, r.try_get(0).map_err(db)?);
            }
            let mut moves: Vec<(i64, String)> = Vec::new();
            for (k, id) in &existing {
                let old = from_key(k);
                if old == f || old.is_below(&f) {
                    let target = old
                        .reparent(&f, &t)
                        .ok_or(StorageError::Invalid("rename"))?;
                    if target.components().len() > crate::limits::MAX_MAILBOX_DEPTH
                        || self.wire(&target).len() > crate::limits::MAX_MAILBOX_NAME_BYTES
                    {
                        return Err(StorageError::InvalidName("name too long"));
                    }
                    moves.push((*id, key(&target)));
                }
            }
            if moves.is_empty() {
                return Err(StorageError::NonExistent);
            }
            if moves.iter().any(|(_, t)| existing.contains_key(t)) {
                return Err(StorageError::AlreadyExists);
            }
            // One notice for the top, as the feed has one event (its children move with it).
            let top = existing.get(&key(&f)).copied().unwrap_or(0);
            let mut renamed = Entry::new(top, &key(&t), Kind::Renamed);
            renamed.old = Some(key(&f));
            self.notify(&mut tx, vec![renamed]).await?;
            for (id, new) in &moves {
                sqlx::query(
                    "UPDATE mailboxes SET name = $3 WHERE user_id = $1 AND mailbox_id = $2",
                )
                .bind(self.user_id)
                .bind(id)
                .bind(new)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            }
        })?;
        self.publish(
            Some(self.wire(&t)),
            ChangeKind::MailboxRenamed { old: self.wire(&f) },
        );
        Ok(())
    }

    async fn subscribe(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        self.subscribe_key(&key(&n)).await?;
        self.publish(Some(self.wire(&n)), ChangeKind::SubscriptionChanged);
        Ok(())
    }

    async fn unsubscribe(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        let k = key(&n);
        write_tx!(self.pool(), |tx| {
            let gone = sqlx::query("DELETE FROM subscriptions WHERE user_id = $1 AND name = $2")
                .bind(self.user_id)
                .bind(&k)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            if gone.rows_affected() > 0 {
                let id = mailbox_id_tx(&mut tx, self.user_id, &k, false)
                    .await
                    .unwrap_or(0);
                let notice = vec![Entry::new(id, &k, Kind::Sub)];
                self.notify(&mut tx, notice).await?;
            }
        })?;
        self.publish(Some(self.wire(&n)), ChangeKind::SubscriptionChanged);
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<MailboxStatus> {
        let n = self.parse(name, false)?;
        let r = sqlx::query(
            "SELECT m.uidvalidity, m.uidnext, m.highest_modseq, count(x.uid), \
             count(x.uid) FILTER (WHERE x.system_flags & 1 = 0), \
             coalesce(sum(x.virt_size), 0)::BIGINT, \
             count(x.uid) FILTER (WHERE x.system_flags & 8 <> 0), \
             coalesce(sum(x.phys_size) FILTER (WHERE x.system_flags & 8 <> 0), 0)::BIGINT, \
             count(x.uid) FILTER (WHERE x.uid >= m.first_recent) \
             FROM mailboxes m LEFT JOIN messages x \
             ON x.user_id = m.user_id AND x.mailbox_id = m.mailbox_id \
             WHERE m.user_id = $1 AND m.name = $2 \
             GROUP BY m.uidvalidity, m.uidnext, m.highest_modseq, m.first_recent",
        )
        .bind(self.user_id)
        .bind(key(&n))
        .fetch_optional(self.pool())
        .await
        .map_err(db)?
        .ok_or(StorageError::NonExistent)?;
        row_status(&r).map_err(db)
    }

    async fn open(&self, name: &str, options: OpenOptions) -> Result<View> {
        // One round trip when this process's picture of the mailbox is current and there is
        // no \Recent to claim: the mailbox found by name and its row read in one statement
        // (PgMailbox::open_by_name), the rest from memory.
        let n = self.parse(name, false)?;
        let claim = options.claim_recent && !options.read_only;
        let (handle, changes, synced) =
            PgMailbox::open_by_name(self.clone(), &key(&n), self.wire(&n), claim).await?;
        // A view that watches is a SELECT or EXAMINE, which asks for the MAILBOXID next.
        *self.opened.lock() = options.watch.then(|| (key(&n), handle.id()));
        Ok(View::from_sync(handle, options, changes, synced))
    }

    async fn append(&self, name: &str, message: AppendMessage) -> Result<AppendResult> {
        let n = self.parse(name, false)?;
        let (uidvalidity, uids) = self
            .append_many(
                &n,
                vec![(
                    message.data,
                    message.flags,
                    message.keywords,
                    message.internal_date,
                )],
                None,
            )
            .await?;
        let uid = uids
            .first()
            .copied()
            .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
        Ok(AppendResult { uidvalidity, uid })
    }

    async fn append_stream(&self, name: &str) -> Result<Box<dyn AppendStream>> {
        let n = self.parse(name, false)?;
        // The mailbox's existence and the usage in one read.
        let r = sqlx::query(
            "SELECT u.bytes_used, u.messages_used, m.mailbox_id FROM users u \
             LEFT JOIN mailboxes m ON m.user_id = u.user_id AND m.name = $2 \
             WHERE u.user_id = $1",
        )
        .bind(self.user_id)
        .bind(key(&n))
        .fetch_one(self.pool())
        .await
        .map_err(db)?;
        if r.try_get::<Option<i64>, _>(2).map_err(db)?.is_none() {
            return Err(StorageError::NonExistent);
        }
        let (bytes_used, messages_used) = (
            u64_of(r.try_get(0).map_err(db)?),
            u64_of(r.try_get(1).map_err(db)?),
        );
        if self.limits.messages.is_some_and(|l| messages_used >= l) {
            return Err(StorageError::OverQuota);
        }
        let room = self.limits.bytes.map(|l| l.saturating_sub(bytes_used));
        Ok(Box::new(PgAppend {
            user: self.clone(),
            data: Gathered::new(room, self.sh.options.max_message_size),
            mailbox: n,
            delivery: None,
        }))
    }

    async fn commit_many(&self, items: Vec<PendingAppend>) -> Result<AppendManyResult> {
        let mut batch = Vec::with_capacity(items.len());
        let mut mailbox: Option<MailboxName> = None;
        for item in items {
            let Ok(stream) = item.stream.into_any().downcast::<PgAppend>() else {
                return Err(StorageError::Temporary(
                    "append stream of another backend".into(),
                ));
            };
            let stream = *stream;
            if stream.user.user_id != self.user_id
                || mailbox.as_ref().is_some_and(|m| *m != stream.mailbox)
            {
                return Err(StorageError::Temporary(
                    "append batch spans mailboxes".into(),
                ));
            }
            mailbox = Some(stream.mailbox);
            batch.push((
                stream.data.data.freeze(),
                item.flags,
                item.keywords,
                item.internal_date,
            ));
        }
        let Some(n) = mailbox else {
            return Err(StorageError::Temporary("empty append batch".into()));
        };
        let (uidvalidity, uids) = self.append_many(&n, batch, None).await?;
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
        self.import_mailbox_pg(&n, uidvalidity, uidnext, special_use)
            .await
            .map(drop)
    }

    async fn import_messages(
        &self,
        name: &str,
        messages: Vec<crate::storage::ImportMessage>,
    ) -> Result<()> {
        let n = self.parse(name, false)?;
        self.import_messages_pg(&n, messages).await
    }

    async fn quota(&self) -> Result<QuotaUsage> {
        let r = sqlx::query("SELECT bytes_used, messages_used FROM users WHERE user_id = $1")
            .bind(self.user_id)
            .fetch_one(self.pool())
            .await
            .map_err(db)?;
        Ok(QuotaUsage {
            bytes_used: u64_of(r.try_get(0).map_err(db)?),
            bytes_limit: self.limits.bytes,
            messages_used: u64_of(r.try_get(1).map_err(db)?),
            messages_limit: self.limits.messages,
        })
    }

    async fn quota_recalc(&self) -> Result<QuotaUsage> {
        write_tx!(self.pool(), |tx| {
            lock_user(&mut tx, self.user_id).await?;
            sqlx::query(
                "UPDATE users SET \
             bytes_used = (SELECT coalesce(sum(phys_size), 0) FROM messages WHERE user_id = $1), \
             messages_used = (SELECT count(*) FROM messages WHERE user_id = $1) \
             WHERE user_id = $1",
            )
            .bind(self.user_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        })?;
        self.quota().await
    }

    async fn pop3_lock(&self) -> Result<Pop3Lock> {
        super::mailbox::pop3_lock(self).await
    }

    async fn pop3_expire(&self, days: u32) -> Result<Vec<u32>> {
        let inbox = MailboxName::from_components(vec!["INBOX".to_owned()]);
        let id = self.mailbox_id_of(&inbox).await?;
        let cutoff = now_secs() - i64::from(days) * 86_400;
        let uids: Vec<u32> = sqlx::query(
            "SELECT uid FROM messages WHERE user_id = $1 AND mailbox_id = $2 \
             AND downloaded <> 0 AND downloaded <= $3 ORDER BY uid",
        )
        .bind(self.user_id)
        .bind(id)
        .bind(cutoff)
        .fetch_all(self.pool())
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.try_get::<i64, _>(0).map(u32_of))
        .collect::<std::result::Result<_, _>>()
        .map_err(db)?;
        if uids.is_empty() {
            return Ok(uids);
        }
        let gone = self.expunge_mailbox(id, Some(&uids), true).await?;
        if !gone.is_empty() {
            self.publish(Some("INBOX".to_owned()), ChangeKind::MessageExpunge);
        }
        Ok(gone)
    }

    async fn mailbox_id(&self, name: &str) -> Result<String> {
        let n = self.parse(name, false)?;
        // SELECT asks right after opening the mailbox: the id the open found (the mailbox
        // the session now has selected, even if renamed meanwhile) is taken once, not read
        // again.
        let opened = self.opened.lock().take();
        let id = match opened {
            Some((k, id)) if k == key(&n) => id,
            _ => self.mailbox_id_of(&n).await?,
        };
        // Mailbox ids come from a per-user counter: kept by RENAME, never reused.
        Ok(format!("F{:x}-{:x}", self.user_id, id))
    }

    async fn rebuild_index(&self, name: &str) -> Result<()> {
        let n = self.parse(name, false)?;
        self.mailbox_id_of(&n).await?;
        Err(StorageError::Cannot(
            "the postgresql backend keeps no index apart from the messages: nothing to rebuild",
        ))
    }

    async fn metadata_get(&self, mailbox: Option<&str>) -> Result<MetadataMap> {
        let mid = self.metadata_key(mailbox).await?;
        let rows =
            sqlx::query("SELECT entry, value FROM metadata WHERE user_id = $1 AND mailbox_id = $2")
                .bind(self.user_id)
                .bind(mid)
                .fetch_all(self.pool())
                .await
                .map_err(db)?;
        let mut map = MetadataMap::new();
        for r in rows {
            map.insert(r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?);
        }
        Ok(map)
    }

    async fn metadata_set(
        &self,
        mailbox: Option<&str>,
        changes: Vec<MetadataChange>,
    ) -> Result<()> {
        let mid = self.metadata_key(mailbox).await?;
        self.metadata_apply(mid, changes).await
    }

    fn origin(&self) -> u64 {
        self.origin
    }

    async fn subscribe_changes(&self) -> Result<crate::storage::FeedSubscription> {
        // Subscribed first, then listening, then the poll's baseline read: a change of another
        // node after the baseline is either notified or found by the poll.
        let sub = crate::storage::FeedSubscription::new(&self.us.feed, self.origin, None);
        push::ensure(&self.sh).await;
        push::baseline(&self.sh, &self.us, self.user_id).await?;
        Ok(sub)
    }

    fn remembers_deliveries(&self) -> bool {
        true
    }

    fn publish_metadata_change(&self, mailbox: Option<&str>, entries: &[String]) {
        let sep = self.sep();
        let mailbox = mailbox
            .map(|m| MailboxName::parse(m, sep, false).map_or(m.to_owned(), |n| n.to_wire(sep)));
        self.publish(
            mailbox,
            ChangeKind::MetadataChanged {
                entries: entries.to_vec(),
            },
        );
    }

    async fn fts(&self) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
        user_fts(&self.us, self.sh.options.fts)
    }
}

impl PgUser {
    async fn subscriptions_keys(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT name FROM subscriptions WHERE user_id = $1 ORDER BY name")
            .bind(self.user_id)
            .fetch_all(self.pool())
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<String, _>(0).map_err(db))
            .collect()
    }
}

/// The user's full-text index (tantivy in RAM, as the memory backend), `None` when off.
pub(crate) fn user_fts(us: &UserShared, on: bool) -> Result<Option<Arc<dyn crate::fts::FtsIndex>>> {
    if !on {
        return Ok(None);
    }
    if let Some(f) = us.fts.get() {
        return Ok(Some(f.clone() as Arc<dyn crate::fts::FtsIndex>));
    }
    let made = Arc::new(crate::fts::TantivyFts::in_ram(
        crate::limits::FTS_WRITER_MEMORY_BYTES,
    )?);
    let f = us.fts.get_or_init(|| made).clone();
    Ok(Some(f as Arc<dyn crate::fts::FtsIndex>))
}

/// A streamed append: the bytes gather in memory and are stored on commit, in one transaction;
/// dropped before, nothing is stored. (Phase 2 streams them into chunk rows as they come.)
struct PgAppend {
    user: PgUser,
    mailbox: MailboxName,
    data: Gathered,
    /// The LMTP delivery this is, remembered with it ([`PgUser::append_many`]).
    delivery: Option<DeliveryId>,
}

#[async_trait]
impl AppendStream for PgAppend {
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

    fn set_delivery(&mut self, id: DeliveryId) -> bool {
        self.delivery = Some(id);
        true
    }

    async fn commit(
        self: Box<Self>,
        flags: SystemFlags,
        keywords: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<AppendResult> {
        let PgAppend {
            user,
            mailbox,
            data,
            delivery,
        } = *self;
        let (uidvalidity, uids) = user
            .append_many(
                &mailbox,
                vec![(data.data.freeze(), flags, keywords, internal_date)],
                delivery,
            )
            .await?;
        let uid = uids
            .first()
            .copied()
            .ok_or_else(|| StorageError::Temporary("append lost".into()))?;
        Ok(AppendResult { uidvalidity, uid })
    }
}

/// Holds a POP3 lease flag for [`super::mailbox::pop3_lock`].
pub(crate) fn pop3_flag(u: &PgUser) -> bool {
    u.us.pop3_held.swap(true, Ordering::AcqRel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_index_text_is_what_string_to_array_reads() {
        assert_eq!(kw_text(&[]), "");
        assert_eq!(kw_text(&[0, 5, 12]), "0,5,12");
    }

    #[test]
    fn mailbox_keys_round_trip_whatever_the_separator() {
        let n =
            MailboxName::parse("Work.Projects.2024", '.', false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key(&n), "Work/Projects/2024");
        assert_eq!(from_key(&key(&n)), n);
    }

    #[test]
    fn keywords_fold_ascii_case_only_and_are_checked() {
        assert_eq!(fold("$Forwarded"), "$forwarded");
        assert_eq!(fold("Émoi"), "Émoi".to_ascii_lowercase());
        assert!(valid_keyword("$Junk"));
        assert!(!valid_keyword("bad word"));
        assert!(!valid_keyword("\\Seen"));
        assert!(!valid_keyword(""));
    }

    #[test]
    fn virtual_size_counts_bare_lf_as_crlf() {
        assert_eq!(virtual_size(b""), 0);
        assert_eq!(virtual_size(b"a\r\nb\nc"), 7);
        assert_eq!(virtual_size(b"\n\n"), 4);
    }
}
