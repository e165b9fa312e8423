//! The schema and its forward migrations, run at start-up.
//!
//! Each migration is one entry of [`MIGRATIONS`], applied in order inside a transaction that
//! also records it in `schema_version`; a database already at a version skips it. Two nodes
//! starting at once both try; the second one's insert of the version row conflicts, its
//! transaction rolls back and it reads the version again.
//!
//! The SQL stays in the subset CockroachDB and YugabyteDB also speak (docs/postgresql.md): no
//! triggers, no stored procedures, no large objects, no sequences but `BIGSERIAL` for user ids.
//! Every primary key begins with `user_id`.

use sqlx::Row as _;
use sqlx::postgres::PgPool;

use super::db;
use crate::storage::{Result, StorageError};

/// Version 1: users, mailboxes, keywords, messages, content, expunge tombstones,
/// subscriptions, METADATA, the structure cache and POP3 leases.
const V1: &str = "
CREATE TABLE users (
    user_id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_uidvalidity BIGINT NOT NULL DEFAULT 0,
    next_mailbox_id BIGINT NOT NULL DEFAULT 1,
    next_email_id BIGINT NOT NULL DEFAULT 1,
    bytes_used BIGINT NOT NULL DEFAULT 0,
    messages_used BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE mailboxes (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uidnext BIGINT NOT NULL DEFAULT 1,
    highest_modseq BIGINT NOT NULL DEFAULT 1,
    first_recent BIGINT NOT NULL DEFAULT 1,
    vanished_floor BIGINT NOT NULL DEFAULT 0,
    special_use TEXT,
    PRIMARY KEY (user_id, mailbox_id),
    UNIQUE (user_id, name)
);
CREATE TABLE mailbox_keywords (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    idx INT NOT NULL,
    name TEXT NOT NULL,
    folded TEXT NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, idx),
    UNIQUE (user_id, mailbox_id, folded)
);
CREATE TABLE blobs (
    user_id BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    size BIGINT NOT NULL,
    refs BIGINT NOT NULL,
    PRIMARY KEY (user_id, hash)
);
CREATE TABLE blob_chunks (
    user_id BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    seq INT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (user_id, hash, seq)
);
CREATE TABLE messages (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    system_flags SMALLINT NOT NULL,
    keywords INT[] NOT NULL,
    phys_size BIGINT NOT NULL,
    virt_size BIGINT NOT NULL,
    internal_date BIGINT NOT NULL,
    save_date BIGINT NOT NULL,
    email_id BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    downloaded BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, mailbox_id, uid)
);
CREATE TABLE vanished (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    modseq BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, modseq)
);
CREATE TABLE subscriptions (
    user_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);
CREATE TABLE metadata (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    entry TEXT NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, entry)
);
CREATE TABLE message_cache (
    user_id BIGINT NOT NULL,
    mailbox_id BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    field SMALLINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (user_id, mailbox_id, uid, field)
);
CREATE TABLE pop3_leases (
    user_id BIGINT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
";

/// Version 2: the LMTP deliveries of the last day, so a retried delivery is stored once
/// (docs/postgresql.md, "LMTP retries"). `delivery` is the SHA-256 of sender, recipient and
/// message as the MTA sent them; the index serves the purge of old rows.
const V2: &str = "
CREATE TABLE deliveries (
    user_id BIGINT NOT NULL,
    delivery BYTEA NOT NULL,
    mailbox_id BIGINT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    delivered_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, delivery, mailbox_id)
);
CREATE INDEX deliveries_age ON deliveries (user_id, delivered_at);
";

/// Version 3: messages by modseq, so a refresh reads only the rows changed since the picture it
/// has (`picture.rs`) instead of the whole mailbox.
const V3: &str = "CREATE INDEX messages_modseq ON messages (user_id, mailbox_id, modseq);";

/// Version 4: content nobody refers to is purged a grace period after its release, not at
/// once, so a session still sending it can finish (blob.rs).
const V4: &str = "
ALTER TABLE blobs ADD COLUMN released_at BIGINT;
CREATE INDEX blobs_released ON blobs (user_id, released_at);
";

/// Every migration, in order: `MIGRATIONS[i]` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The version this code writes and reads.
pub const CURRENT: i32 = MIGRATIONS.len() as i32;

/// The version the database is at (0: no schema yet).
pub async fn version(pool: &PgPool) -> Result<i32> {
    let row = sqlx::query("SELECT coalesce(max(version), 0) FROM schema_version")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    row.try_get::<i32, _>(0).map_err(db)
}

/// Creates the schema when missing, runs the migrations it lacks, then [`tune`]s it.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    migrate_versions(pool).await?;
    tune(pool).await;
    Ok(())
}

/// PostgreSQL-only storage settings, attempted at every start and their failure ignored
/// (logged): they change how the database stores data, never what it stores, so the schema
/// version stays (an older mailcove may still open the database), and a database that lacks
/// them (CockroachDB, YugabyteDB, PostgreSQL before 14 or built without lz4) works as before.
/// docs/postgresql.md, "Tuning".
///
/// * `blob_chunks.data` compressed with lz4 instead of pglz: a message over ~2 KB is
///   compressed when stored, and pglz costs ~0.8 ms of database CPU per 100 KB text message on
///   the test host where lz4 costs ~0.1 ms (and reads decompress faster too). Existing rows keep
///   their compression; only new ones use lz4. The table lock it takes waits at most
///   [`TUNE_LOCK_TIMEOUT`], so a busy cluster starts without it and tries again next start.
async fn tune(pool: &PgPool) {
    let attempt = async {
        let current: Option<String> = sqlx::query_scalar(
            "SELECT attcompression::TEXT FROM pg_catalog.pg_attribute \
             WHERE attrelid = 'blob_chunks'::regclass AND attname = 'data'",
        )
        .fetch_optional(pool)
        .await?;
        if current.as_deref() == Some("l") {
            return Ok(false);
        }
        let mut tx = pool.begin().await?;
        sqlx::query(TUNE_LOCK_TIMEOUT).execute(&mut *tx).await?;
        sqlx::query("ALTER TABLE blob_chunks ALTER COLUMN data SET COMPRESSION lz4")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(true)
    };
    match attempt.await {
        Ok(true) => tracing::info!("postgresql: blob_chunks.data now compressed with lz4"),
        Ok(false) => {}
        Err(e) => tracing::info!(
            error = %e,
            "postgresql: lz4 compression of message content not available; pglz (or none) stays"
        ),
    }
}

/// How long [`tune`]'s `ALTER TABLE` waits for the table lock (other nodes' transactions).
const TUNE_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '2s'";

/// The migrations of [`migrate`].
async fn migrate_versions(pool: &PgPool) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INT PRIMARY KEY,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(pool)
    .await
    .map_err(db)?;
    // A few rounds: another node may be migrating at the same moment.
    for _ in 0..5 {
        let at = version(pool).await?;
        if at > CURRENT {
            return Err(StorageError::Corrupt(format!(
                "the database schema is version {at}, newer than this mailcove ({CURRENT})"
            )));
        }
        if at == CURRENT {
            return Ok(());
        }
        let next = at + 1;
        let Some(sql) = usize::try_from(at).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return Ok(());
        };
        let mut tx = pool.begin().await.map_err(db)?;
        let applied = async {
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO schema_version (version, applied_at) \
                 VALUES ($1, extract(epoch FROM now())::BIGINT)",
            )
            .bind(next)
            .execute(&mut *tx)
            .await
        }
        .await;
        match applied {
            Ok(_) => {
                tx.commit().await.map_err(db)?;
                tracing::info!(version = next, "postgresql schema migrated");
            }
            Err(e) => {
                drop(tx);
                tracing::warn!(error = %e, version = next, "schema migration failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    match version(pool).await? {
        CURRENT => Ok(()),
        at => Err(StorageError::Temporary(format!(
            "the database schema stays at version {at}, wanted {CURRENT}"
        ))),
    }
}
