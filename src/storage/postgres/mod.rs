//! The PostgreSQL backend (issue 18, phase 1): every user's mail in one PostgreSQL database,
//! selected with `[mail] location = "postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME"`.
//!
//! `setup::storage_backend` selects it; it passes the whole storage conformance suite and the
//! IMAP/POP3 wire suites (`MAILCOVE_TEST_BACKEND=postgres`). docs/postgresql.md is the guide.
//! TLS to the database follows the URL's `sslmode` ([`PgOptions::connect_options`]).
//!
//! * Schema ([`schema`]): created at first start, forward migrations recorded in
//!   `schema_version`. Every key begins with `user_id`, so the tables can be sharded by user.
//! * Locking: every write that changes a user's usage or mailbox tree first locks the user's
//!   row (`SELECT ... FOR UPDATE`), then the mailbox rows it changes, in `mailbox_id` order. UIDs
//!   and modseqs are taken with `UPDATE mailboxes ... RETURNING` inside the storing transaction,
//!   so the mailbox row stays locked until commit: commit order is UID order, and a view's sync
//!   (which takes the mailbox row `FOR SHARE`) never sees UID n+1 without UID n.
//! * Content ([`blob`]): stored once per user and SHA-256, in chunks of at most
//!   [`crate::limits::PG_CHUNK_BYTES`], with a reference count dropped by expunge and delete.
//! * Notifications: within one process, a watch channel per mailbox and the per-user change
//!   feed ([`super::feed`]), as the memory backend; across nodes, a NOTIFY in every changing
//!   transaction, one LISTEN connection per process and a catch-up poll ([`push`]).
//! * The full-text index is per user in RAM, as the memory backend's (phase 2 stores it).

mod blob;
mod fields;
mod mailbox;
mod picture;
mod push;
pub(crate) mod retry;
mod schema;
mod user;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use sqlx::Row as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use tokio::sync::watch;

use super::{Result, SpecialUse, Storage, StorageError, StorageUser, UserStore};
use crate::limits::DEFAULT_MAX_MESSAGE_SIZE;

pub use user::PgUser;

/// True when `location` names a PostgreSQL database (`postgresql://` or `postgres://`).
pub fn is_location(location: &str) -> bool {
    let l = location.trim();
    l.starts_with("postgresql://") || l.starts_with("postgres://")
}

/// How the PostgreSQL backend is set up.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgresql://USER[:PASSWORD]@HOST:PORT/DBNAME[?host=/run/postgresql&sslmode=disable]`.
    pub url: String,
    /// A file whose first line is the password (overrides one in the URL).
    pub password_file: Option<std::path::PathBuf>,
    /// Hierarchy separator on the wire (default `/`).
    pub separator: char,
    /// Default byte quota (0 = unlimited).
    pub quota_bytes: u64,
    /// Default message-count quota (0 = unlimited).
    pub quota_messages: u64,
    /// Mailboxes created (and subscribed) at login when missing.
    pub autocreate: Vec<(String, Option<SpecialUse>)>,
    /// Largest message stored.
    pub max_message_size: u64,
    /// Keep a full-text index per user (in RAM in phase 1).
    pub fts: bool,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long a POP3 maildrop lease lasts without renewal (`[mail]
    /// postgresql_pop3_lease_secs`): how long a node that died keeps the maildrop locked.
    pub pop3_lease_secs: u64,
    /// Send and LISTEN for change notices (`[mail] postgresql_notify`); off, the catch-up
    /// poll alone carries changes between nodes.
    pub notify: bool,
}

impl PgOptions {
    /// Options with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PgOptions {
            url: url.into(),
            password_file: None,
            separator: '/',
            quota_bytes: 0,
            quota_messages: 0,
            autocreate: Vec::new(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            fts: true,
            max_connections: crate::limits::PG_POOL_CONNECTIONS,
            pop3_lease_secs: crate::limits::POP3_LEASE_SECS,
            notify: true,
        }
    }

    /// Why the location cannot be used, checked without reading the password file (for
    /// `mailcove check-config`).
    pub fn check_location(&self) -> std::result::Result<(), String> {
        let o: PgConnectOptions = self
            .url
            .trim()
            .parse()
            .map_err(|e| format!("not a usable postgresql:// URL: {e}"))?;
        check_tls_files(&self.url, o.get_ssl_mode())
    }

    /// The connection options: the URL with its libpq parameters (`sslmode`, `sslrootcert`,
    /// `sslcert`, `sslkey`, `host=/socket/dir`, ...) and the password from the file.
    ///
    /// TLS is rustls with ring, as everywhere else in mailcove. `sslmode` means what it means
    /// to libpq: `disable` never, `allow`/`prefer` (the default) when the server offers it,
    /// `require` always without checking the certificate, `verify-ca` checks it against
    /// `sslrootcert` (or the system's CA store when that is not given), `verify-full` also
    /// checks that it names the host.
    pub fn connect_options(&self) -> Result<PgConnectOptions> {
        let mut o: PgConnectOptions = self
            .url
            .trim()
            .parse()
            .map_err(|e| StorageError::Temporary(format!("postgresql location: {e}")))?;
        if let Some(file) = &self.password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| StorageError::io_at("read postgresql password file", file, e))?;
            let pw = text.lines().next().unwrap_or_default();
            o = o.password(pw);
        }
        check_tls_files(&self.url, o.get_ssl_mode()).map_err(StorageError::Temporary)?;
        Ok(o.application_name("mailcove"))
    }

    /// How long a storage operation waits for a pooled connection before it answers
    /// `[UNAVAILABLE]`: libpq's `connect_timeout` parameter of the URL when it is a positive
    /// number of seconds, else [`crate::limits::PG_ACQUIRE_TIMEOUT_SECS`]. libpq bounds one
    /// connection attempt with it; here it bounds the whole wait, attempts and backoff included,
    /// which is what a client waiting on a database that is down sees.
    pub fn acquire_timeout(&self) -> std::time::Duration {
        let secs = url_parameter(&self.url, "connect_timeout")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&s| s > 0)
            .unwrap_or(crate::limits::PG_ACQUIRE_TIMEOUT_SECS);
        std::time::Duration::from_secs(secs)
    }
}

/// The value of libpq parameter `key` in the URL's query, percent-decoded.
fn url_parameter(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.trim().split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The certificate and key files a TLS mode names must be readable: found at check-config and
/// start, not at the first login.
fn check_tls_files(url: &str, mode: PgSslMode) -> std::result::Result<(), String> {
    if matches!(mode, PgSslMode::Disable) {
        return Ok(());
    }
    for key in ["sslrootcert", "sslcert", "sslkey"] {
        if let Some(file) = url_parameter(url, key)
            && let Err(e) = std::fs::metadata(&file).and_then(|_| std::fs::File::open(&file))
        {
            return Err(format!("postgresql {key} {file}: {e}"));
        }
    }
    Ok(())
}

/// What every store of one user in this process shares.
pub(crate) struct UserShared {
    /// The user's change feed (NOTIFY), shared by all its sessions in this process.
    pub feed: super::ChangeFeed,
    /// Wakes the views of one mailbox (by `mailbox_id`) after a commit in this process.
    pub watches: Mutex<HashMap<i64, watch::Sender<u64>>>,
    /// The user's full-text index in RAM, made when first asked for.
    pub fts: std::sync::OnceLock<Arc<crate::fts::TantivyFts>>,
    /// A POP3 lease of this user is held in this process.
    pub pop3_held: Arc<AtomicBool>,
    /// `(highest_modseq, uidnext)` of each watched mailbox as this process last read it (a
    /// view's sync, the catch-up poll): what the poll compares the database with.
    pub seen: Mutex<HashMap<i64, (u64, u32)>>,
    /// The user's mailboxes as the poll last read them, while the feed has subscribers.
    pub feed_base: Mutex<Option<HashMap<i64, push::MailboxState>>>,
    /// When (Unix seconds) this process last deleted the user's expired LMTP delivery records.
    pub deliveries_swept: std::sync::atomic::AtomicI64,
}

impl UserShared {
    fn new() -> Self {
        UserShared {
            feed: super::ChangeFeed::default(),
            watches: Mutex::new(HashMap::new()),
            fts: std::sync::OnceLock::new(),
            pop3_held: Arc::new(AtomicBool::new(false)),
            seen: Mutex::new(HashMap::new()),
            feed_base: Mutex::new(None),
            deliveries_swept: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// True (once per [`crate::limits::PG_DELIVERY_SWEEP_SECS`]) when a delivery at `now`
    /// should delete the user's expired delivery records.
    pub fn sweep_due(&self, now: i64) -> bool {
        let every = i64::try_from(crate::limits::PG_DELIVERY_SWEEP_SECS).unwrap_or(i64::MAX);
        let last = self.deliveries_swept.load(Ordering::Relaxed);
        now.saturating_sub(last) >= every
            && self
                .deliveries_swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// The receiver of mailbox `id`'s change channel.
    pub fn subscribe(&self, id: i64) -> watch::Receiver<u64> {
        self.watches
            .lock()
            .entry(id)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Wakes the views of mailbox `id`.
    pub fn poke(&self, id: i64) {
        if let Some(tx) = self.watches.lock().get(&id) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// The mailboxes a view of this process has open; forgets the others.
    pub fn watched(&self) -> Vec<i64> {
        let mut w = self.watches.lock();
        w.retain(|_, tx| tx.receiver_count() > 0);
        self.seen.lock().retain(|id, _| w.contains_key(id));
        w.keys().copied().collect()
    }

    /// Records that mailbox `id` was read at `modseq` and `uidnext`; true when that is past
    /// what was recorded before (or nothing was). Both only grow for one mailbox id.
    pub fn saw(&self, id: i64, modseq: u64, uidnext: u32) -> bool {
        let mut seen = self.seen.lock();
        let e = seen.entry(id).or_insert((0, 0));
        let moved = modseq > e.0 || uidnext > e.1;
        *e = (e.0.max(modseq), e.1.max(uidnext));
        moved
    }
}

/// What the stores and handles of one [`PgStorage`] share.
pub(crate) struct Shared {
    /// Opened at first use, in the runtime that uses it (the admin CLI and `deliver` build
    /// theirs after choosing the backend), with the schema migrated.
    pool: std::sync::OnceLock<PgPool>,
    /// Held while the pool is being opened; says when the last attempt failed and why, so the
    /// sessions that waited for that attempt get its answer instead of each trying in turn.
    opening: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
    connect: PgConnectOptions,
    pub options: PgOptions,
    /// Names this process's POP3 leases (`node:generation`) and its notices.
    pub node: String,
    users: Mutex<HashMap<i64, Arc<UserShared>>>,
    /// The last picture of each mailbox read here, for refreshes that read only changes.
    pub pictures: Mutex<picture::Pictures>,
    /// Cached summaries (`message_cache` rows) read or written here.
    pub fields: Mutex<fields::Fields>,
    /// The listener and the catch-up poll, started by the first session that waits.
    push: tokio::sync::OnceCell<()>,
    /// The listener is connected and LISTENing.
    listening: AtomicBool,
    /// The database has `pg_notify` (PostgreSQL; not CockroachDB): notices are sent.
    notify_ok: AtomicBool,
}

/// The PostgreSQL [`Storage`]; see the module docs.
pub struct PgStorage {
    shared: Arc<Shared>,
}

impl PgStorage {
    /// Checks the options (location, password file, separator); connects at first use.
    pub fn new(options: PgOptions) -> Result<Self> {
        let sep = options.separator;
        if !sep.is_ascii_punctuation() || "&\"\\%*".contains(sep) {
            return Err(StorageError::Invalid("unusable hierarchy separator"));
        }
        let connect = options.connect_options()?;
        let node = format!(
            "{}-{}-{:x}",
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            std::process::id(),
            user::now_secs()
        );
        Ok(PgStorage {
            shared: Arc::new(Shared {
                pool: std::sync::OnceLock::new(),
                opening: tokio::sync::Mutex::new(None),
                connect,
                options,
                node,
                users: Mutex::new(HashMap::new()),
                pictures: Mutex::new(picture::Pictures::default()),
                fields: Mutex::new(fields::Fields::default()),
                push: tokio::sync::OnceCell::new(),
                listening: AtomicBool::new(false),
                notify_ok: AtomicBool::new(false),
            }),
        })
    }

    /// [`PgStorage::new`], then connects and creates or migrates the schema now.
    pub async fn connect(options: PgOptions) -> Result<Self> {
        let s = PgStorage::new(options)?;
        s.shared.pool().await?;
        Ok(s)
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i32> {
        schema::version(&self.shared.pool().await?).await
    }
}

impl Shared {
    /// The pool, connected (and the schema migrated) on first use.
    ///
    /// A database that is down at first use makes this fail after
    /// [`PgOptions::acquire_timeout`] (sqlx retries a refused connection with
    /// backoff until then) with [`StorageError::Temporary`]; nothing is kept, so the next use
    /// tries again, and once the database is back the pool is opened. Sessions that arrive while
    /// one attempt runs wait for it and share its failure rather than each waiting a timeout of
    /// its own in turn.
    ///
    /// Once open, the pool mends itself: a connection idle longer than
    /// [`crate::limits::PG_POOL_PING_IDLE`] is tested (a ping) before it is handed out, and each
    /// is tested on its return (by sqlx, after the caller let go of it), so connections the
    /// database dropped (a restart, a failover) are closed and replaced by new ones, connecting
    /// with the same backoff. A recently used connection is handed out untested (no round trip
    /// on a busy session's path); if the database dropped it, the read or `BEGIN` that meets the
    /// dead connection runs again on another one ([`retry::fresh`]).
    async fn pool(&self) -> Result<PgPool> {
        if let Some(p) = self.pool.get() {
            return Ok(p.clone());
        }
        let asked = std::time::Instant::now();
        let mut last = self.opening.lock().await;
        if let Some(p) = self.pool.get() {
            return Ok(p.clone());
        }
        if let Some((at, why)) = last.as_ref()
            && *at >= asked
        {
            return Err(StorageError::Temporary(why.clone()));
        }
        match self.open().await {
            Ok(pool) => Ok(self.pool.get_or_init(|| pool).clone()),
            Err(e) => {
                *last = Some((std::time::Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<PgPool> {
        let pool = PgPoolOptions::new()
            .max_connections(self.options.max_connections)
            .acquire_timeout(self.options.acquire_timeout())
            // Not sqlx's ping before every acquire (a round trip before every statement and
            // transaction): only a connection idle longer than PG_POOL_PING_IDLE is tested; one
            // used more recently that the database dropped fails at first use, and the reads
            // and BEGINs run again on another connection (retry::fresh).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > crate::limits::PG_POOL_PING_IDLE {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(self.connect.clone())
            .await
            .map_err(db)?;
        schema::migrate(&pool).await?;
        let notify: bool = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE proname = 'pg_notify')",
        )
        .fetch_one(&pool)
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)?;
        self.notify_ok
            .store(notify && self.options.notify, Ordering::Relaxed);
        Ok(pool)
    }

    fn user_shared(&self, user_id: i64) -> Arc<UserShared> {
        self.users
            .lock()
            .entry(user_id)
            .or_insert_with(|| Arc::new(UserShared::new()))
            .clone()
    }
}

#[async_trait]
impl Storage for PgStorage {
    async fn user(&self, user: &StorageUser) -> Result<Arc<dyn UserStore>> {
        if user.name.is_empty() || user.name.chars().any(char::is_control) {
            return Err(StorageError::Invalid(
                "user name unusable in a mail location",
            ));
        }
        let pool = self.shared.pool().await?;
        let (user_id, mailboxes) = user::login(&pool, &user.name).await?;
        let store = PgUser::new(
            pool,
            self.shared.clone(),
            self.shared.user_shared(user_id),
            user_id,
            user,
        );
        store.init(mailboxes).await?;
        Ok(Arc::new(store))
    }
}

/// A database error as a storage error: a unique violation is `AlreadyExists`, anything else
/// temporary (the connection, a timeout: the client may retry). A serialization failure or a
/// deadlock is temporary too, marked so that [`retry::write_tx!`] runs its transaction again.
pub(crate) fn db(e: sqlx::Error) -> StorageError {
    if let sqlx::Error::Database(d) = &e
        && let Some(code) = d.code()
    {
        if code == "23505" {
            return StorageError::AlreadyExists;
        }
        if retry::is_conflict_code(&code) {
            tracing::debug!(error = %e, "postgresql transaction conflict");
            return StorageError::Temporary(format!("{}{code}: {e}", retry::CONFLICT));
        }
    }
    tracing::warn!(error = %e, "postgresql");
    StorageError::Temporary(format!("postgresql: {e}"))
}

/// A UID or modseq from its `BIGINT` column.
pub(crate) fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A size or modseq from its `BIGINT` column.
pub(crate) fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A `u64` for a `BIGINT` column.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_that_select_the_backend() {
        assert!(is_location("postgresql://u@h:5432/db"));
        assert!(is_location(" postgres://u@h/db"));
        assert!(!is_location("~/Maildir"));
        assert!(!is_location("memory:"));
        assert!(!is_location("/var/mail/postgresql://x"));
    }

    #[test]
    fn tls_modes_parse_and_their_files_must_exist() {
        let ok = |u: &str| PgOptions::new(u).check_location();
        assert_eq!(
            ok("postgresql://u:p@127.0.0.1:5432/mail?sslmode=disable"),
            Ok(())
        );
        assert_eq!(
            ok("postgresql://u@localhost/mail?host=/run/postgresql"),
            Ok(())
        );
        assert_eq!(ok("postgresql://u@h/mail?sslmode=require"), Ok(()));
        assert_eq!(ok("postgresql://u@h/mail?sslmode=verify-full"), Ok(()));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap_or_else(|e| panic!("{e}"));
        let with = |file: &std::path::Path| {
            format!(
                "postgresql://u@h/mail?sslmode=verify-ca&sslrootcert={}",
                file.display()
            )
        };
        assert_eq!(ok(&with(&ca)), Ok(()));
        let missing = ok(&with(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(missing.contains("sslrootcert"), "{missing}");
        assert!(missing.contains("missing.pem"), "{missing}");
        assert!(ok("postgresql://u@h/mail?sslmode=bogus").is_err());
        assert!(ok("postgresql://u@h:notaport/mail").is_err());
    }

    #[test]
    fn connect_timeout_in_the_url_bounds_the_wait_for_a_connection() {
        let default = std::time::Duration::from_secs(crate::limits::PG_ACQUIRE_TIMEOUT_SECS);
        let of = |url: &str| PgOptions::new(url).acquire_timeout();
        assert_eq!(of("postgresql://u@h/db"), default);
        assert_eq!(
            of("postgresql://u@h/db?sslmode=disable&connect_timeout=3"),
            std::time::Duration::from_secs(3)
        );
        // libpq: zero, negative or not a number means no timeout of its own; ours stays.
        assert_eq!(of("postgresql://u@h/db?connect_timeout=0"), default);
        assert_eq!(of("postgresql://u@h/db?connect_timeout=-5"), default);
        assert_eq!(of("postgresql://u@h/db?connect_timeout=soon"), default);
    }

    #[test]
    fn the_password_file_overrides_the_url() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nignored\n").unwrap_or_else(|e| panic!("{e}"));
        let mut o = PgOptions::new("postgresql://u:in-url@h/mail");
        o.password_file = Some(file);
        let c = o.connect_options().unwrap_or_else(|e| panic!("{e}"));
        // sqlx has no getter for the password; its Debug output shows the field.
        let url = format!("{c:?}");
        assert!(url.contains("from-file"), "{url}");
        assert!(!url.contains("in-url"), "{url}");
        o.password_file = Some(dir.path().join("missing"));
        assert!(o.connect_options().is_err());
    }

    #[test]
    fn the_poll_wakes_only_what_moved_past_what_this_process_saw() {
        let us = UserShared::new();
        let rx = us.subscribe(7);
        // A view's sync recorded (modseq 5, uidnext 3): the same again is nothing new, and a
        // stale read (a sync that began before) does not move it back.
        assert!(us.saw(7, 5, 3), "nothing was recorded yet");
        assert!(!us.saw(7, 5, 3));
        assert!(!us.saw(7, 4, 2));
        assert!(us.saw(7, 6, 3), "a flag change or expunge: modseq");
        assert!(us.saw(7, 6, 4), "an append: uidnext");
        assert_eq!(us.watched(), vec![7]);
        // A mailbox nobody has open any more is forgotten, with what was seen of it.
        drop(rx);
        assert!(us.watched().is_empty());
        assert!(us.seen.lock().is_empty());
    }

    #[test]
    fn unusable_separators_are_refused() {
        let mut o = PgOptions::new("postgresql://u@h/mail");
        o.separator = '*';
        assert!(PgStorage::new(o).is_err());
    }
}
