//! The SQL user database: SQLite, PostgreSQL and MySQL/MariaDB through sqlx's `Any` driver,
//! with Dovecot's dovecot-sql.conf.ext queries ([`template`]: variables are bound parameters),
//! Dovecot's result columns ([`fields`]) and Dovecot's `connect` string ([`connect`]).
//!
//! * **Pool**: `maxconns` connections (Dovecot's default 5), opened lazily, so mailcove starts
//!   while the database is down; each is pinged before use, so connections a restarted server
//!   closed are replaced instead of failing a login.
//! * **Timeout**: a lookup (waiting for a connection, the query, reading the rows) gets
//!   `query_timeout_ms` (`limits::DEFAULT_SQL_QUERY_TIMEOUT_MS`); a hung server costs a client
//!   that long, then a temporary failure.
//! * **Backoff**: after a connection failure or a timeout the database is left alone for
//!   `SQL_RECONNECT_BACKOFF_MIN_MS`, doubling per failure up to `SQL_RECONNECT_BACKOFF_MAX_MS`;
//!   lookups meanwhile fail at once with [`DbError::Unavailable`] instead of each waiting.
//! * **Bounds**: a password or user query reads at most two rows (two is an error, as in
//!   Dovecot: a login must not depend on row order), values and columns are capped
//!   (`MAX_DB_FIELD_LEN`, `MAX_DB_FIELDS`), `iterate_query` at `MAX_DB_ITERATE_USERS` names.

pub mod connect;
pub mod fields;
mod template;

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AssertSqlSafe, Column, Row as _};

pub use template::Template;

use super::UserInfo;
use super::db::{DbError, DbFuture, LookupRequest, PassRecord, UserDatabase};
use crate::config::{SqlConfig, SqlDriver};
use crate::limits::{
    MAX_DB_FIELD_LEN, MAX_DB_FIELDS, MAX_DB_ITERATE_USERS, SQL_RECONNECT_BACKOFF_MAX_MS,
    SQL_RECONNECT_BACKOFF_MIN_MS,
};
use fields::Row;

/// Whether `scheme` is one `default_pass_scheme` may name: one mailcove verifies.
pub fn default_scheme_supported(scheme: &str) -> bool {
    // The schemes `StoredHash::parse` verifies.
    [
        "ARGON2ID",
        "ARGON2I",
        "SHA512-CRYPT",
        "SHA256-CRYPT",
        "BLF-CRYPT",
        "CRYPT",
        "PLAIN",
        "CLEARTEXT",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(scheme))
}

/// One query, parsed and rendered for the driver.
struct Query {
    template: Template,
    /// Built from the template only, never from a request: no user input reaches it.
    sql: Arc<str>,
}

impl Query {
    fn new(text: &str, driver: SqlDriver, key: &str) -> Result<Self, String> {
        let template = Template::parse(text).map_err(|e| format!("{key}: {e}"))?;
        let sql = Arc::from(template.sql(driver));
        Ok(Self { template, sql })
    }
}

/// Whether the server answered lately, and when to try again if not.
#[derive(Debug)]
struct Health {
    down_until: Option<Instant>,
    backoff: Duration,
}

/// An SQL passdb + userdb.
pub struct SqlDatabase {
    pool: sqlx::AnyPool,
    password: Query,
    user: Query,
    iterate: Query,
    default_scheme: String,
    timeout: Duration,
    health: Mutex<Health>,
}

impl std::fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlDatabase").finish_non_exhaustive()
    }
}

impl SqlDatabase {
    /// Prepares the pool (no connection is made yet) and the queries; the error names the key
    /// that is wrong. Must run inside a tokio runtime.
    pub fn open(cfg: &SqlConfig) -> Result<Self, String> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let connect = connect::parse(cfg.driver, &cfg.connect)
            .map_err(|e| format!("auth.sql.connect: {e}"))?;
        if !default_scheme_supported(&cfg.default_pass_scheme) {
            return Err(format!(
                "auth.sql.default_pass_scheme: {:?} is not a scheme mailcove verifies",
                cfg.default_pass_scheme
            ));
        }
        let timeout = Duration::from_millis(cfg.query_timeout_ms.max(1));
        // Outside a runtime (the admin and deliver commands open the database before theirs)
        // the pool must not spawn its reaper task: idle connections then just stay open.
        let in_runtime = tokio::runtime::Handle::try_current().is_ok();
        let pool = AnyPoolOptions::new()
            .max_connections(connect.max_connections)
            .min_connections(0)
            .acquire_timeout(timeout)
            .idle_timeout(in_runtime.then_some(Duration::from_secs(600)))
            .max_lifetime(in_runtime.then_some(Duration::from_secs(1800)))
            .test_before_acquire(true)
            .connect_lazy(&connect.url)
            .map_err(|e| format!("auth.sql.connect: {e}"))?;
        Ok(Self {
            pool,
            password: Query::new(&cfg.password_query, cfg.driver, "auth.sql.password_query")?,
            user: Query::new(&cfg.user_query, cfg.driver, "auth.sql.user_query")?,
            iterate: Query::new(&cfg.iterate_query, cfg.driver, "auth.sql.iterate_query")?,
            default_scheme: cfg.default_pass_scheme.to_ascii_uppercase(),
            timeout,
            health: Mutex::new(Health {
                down_until: None,
                backoff: Duration::from_millis(SQL_RECONNECT_BACKOFF_MIN_MS),
            }),
        })
    }

    /// Fails at once while the database is backed off.
    fn gate(&self) -> Result<(), DbError> {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match health.down_until {
            Some(until) if Instant::now() < until => Err(DbError::Unavailable(format!(
                "backing off after a failure, next try in {} ms",
                until.saturating_duration_since(Instant::now()).as_millis()
            ))),
            _ => Ok(()),
        }
    }

    /// Records how a lookup went: a failure of the server starts or extends the backoff, an
    /// answer ends it.
    fn record(&self, result: &Result<Vec<Row>, DbError>) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(e @ (DbError::Unavailable(_) | DbError::Timeout)) => {
                let wait = health.backoff;
                health.down_until = Some(Instant::now() + wait);
                health.backoff =
                    (wait * 2).min(Duration::from_millis(SQL_RECONNECT_BACKOFF_MAX_MS));
                tracing::warn!(error = %e, retry_ms = wait.as_millis() as u64, "SQL user database failed");
            }
            Err(DbError::Config(e)) => {
                tracing::error!(error = %e, "SQL user database query failed");
            }
            Ok(_) => {
                if health.down_until.take().is_some() {
                    tracing::info!("SQL user database answers again");
                }
                health.backoff = Duration::from_millis(SQL_RECONNECT_BACKOFF_MIN_MS);
            }
        }
    }

    /// Runs `query` for `req`, reading at most `max_rows` rows (one more is an error).
    async fn rows(
        &self,
        query: &Query,
        values: Vec<String>,
        max_rows: usize,
    ) -> Result<Vec<Row>, DbError> {
        self.gate()?;
        let run = async {
            let mut q = sqlx::query(AssertSqlSafe(Arc::clone(&query.sql)));
            for v in values {
                q = q.bind(v);
            }
            let mut stream = q.fetch(&self.pool);
            let mut out = Vec::new();
            while let Some(row) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                let row = row.map_err(map_error)?;
                if out.len() == max_rows {
                    return Err(DbError::Config(format!(
                        "query returned more than {max_rows} row(s)"
                    )));
                }
                out.push(read_row(&row)?);
            }
            Ok(out)
        };
        let result = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(DbError::Timeout),
        };
        self.record(&result);
        result
    }

    /// At most one row for `req` (more is a misconfigured query).
    async fn one_row(
        &self,
        query: &Query,
        req: &LookupRequest<'_>,
    ) -> Result<Option<Row>, DbError> {
        let values = query.template.values(req);
        let mut rows = self.rows(query, values, 1).await?;
        Ok(rows.pop())
    }
}

/// What a driver error means for the login: the server is unreachable or refusing
/// (`Unavailable`, backed off), or the query or its result cannot work (`Config`).
fn map_error(e: sqlx::Error) -> DbError {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLSTATE class 42 (syntax, undefined table or column) in PostgreSQL; MySQL's
            // 1054 unknown column, 1064 syntax, 1146 no such table; SQLite reports these as
            // its generic error 1.
            let query_error = code.starts_with("42")
                || matches!(code.as_str(), "1054" | "1064" | "1146" | "1")
                || db.message().contains("no such");
            if query_error {
                DbError::Config(db.message().to_owned())
            } else {
                DbError::Unavailable(db.message().to_owned())
            }
        }
        E::PoolTimedOut => DbError::Timeout,
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolClosed | E::WorkerCrashed => {
            DbError::Unavailable(e.to_string())
        }
        other => DbError::Config(other.to_string()),
    }
}

/// A row's columns as text: text, numbers and booleans as they print, UTF-8 blobs as text.
fn read_row(row: &AnyRow) -> Result<Row, DbError> {
    let columns = row.columns();
    if columns.len() > MAX_DB_FIELDS {
        return Err(DbError::Config(format!(
            "query returned more than {MAX_DB_FIELDS} columns"
        )));
    }
    let mut out = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let value = if let Ok(v) = row.try_get::<Option<String>, _>(i) {
            v
        } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
            v.map(|n| n.to_string())
        } else if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
            v.map(|b| if b { "1" } else { "0" }.to_owned())
        } else if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
            v.map(|n| n.to_string())
        } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
            v.map(|b| {
                String::from_utf8(b).map_err(|_| {
                    DbError::Config(format!("column {:?} is not UTF-8", column.name()))
                })
            })
            .transpose()?
        } else {
            return Err(DbError::Config(format!(
                "column {:?} has a type mailcove cannot read; cast it to text",
                column.name()
            )));
        };
        if value.as_ref().is_some_and(|v| v.len() > MAX_DB_FIELD_LEN) {
            return Err(DbError::Config(format!(
                "column {:?} longer than limits::MAX_DB_FIELD_LEN",
                column.name()
            )));
        }
        out.push((column.name().to_ascii_lowercase(), value));
    }
    Ok(out)
}

impl UserDatabase for SqlDatabase {
    fn kind(&self) -> &'static str {
        "sql"
    }

    fn password_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<PassRecord>> {
        Box::pin(async move {
            match self.one_row(&self.password, &req).await? {
                None => Ok(None),
                Some(row) => fields::pass_record(row, req.user, &self.default_scheme).map(Some),
            }
        })
    }

    fn user_lookup<'a>(&'a self, req: LookupRequest<'a>) -> DbFuture<'a, Option<UserInfo>> {
        Box::pin(async move {
            match self.one_row(&self.user, &req).await? {
                None => Ok(None),
                Some(row) => fields::user_record(row, req.user).map(Some),
            }
        })
    }

    fn iterate(&self) -> DbFuture<'_, Vec<String>> {
        Box::pin(async move {
            let req = LookupRequest {
                user: "",
                remote: None,
                local: None,
                service: "admin",
            };
            let values = self.iterate.template.values(&req);
            let rows = self
                .rows(&self.iterate, values, MAX_DB_ITERATE_USERS)
                .await?;
            Ok(rows
                .into_iter()
                .map(|row| fields::user_record(row, ""))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .map(|u| u.name)
                .filter(|n| !n.is_empty())
                .collect())
        })
    }
}
