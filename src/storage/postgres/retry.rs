//! Write transactions that the database may abort and ask to run again.
//!
//! PostgreSQL aborts a transaction with SQLSTATE 40001 (serialization failure) or 40P01
//! (deadlock detected); CockroachDB and YugabyteDB, which run SERIALIZABLE, answer 40001 to any
//! transaction that lost a conflict, even at COMMIT. Either way nothing of it was kept, so the
//! whole transaction runs again: [`write_tx!`] wraps every write transaction of the backend,
//! with at most [`PG_TX_ATTEMPTS`] runs and a jittered, doubling pause from
//! [`PG_RETRY_BACKOFF`]. Any other error (a lost connection above all: a COMMIT whose answer
//! never came may have committed) is returned at once, as `[UNAVAILABLE]` / 451.

use std::hash::BuildHasher as _;

use crate::limits::{PG_RETRY_BACKOFF, PG_TX_ATTEMPTS};
use crate::storage::StorageError;

/// How [`super::db`] starts the text of an error that is worth running again; no other error
/// text starts so.
pub(crate) const CONFLICT: &str = "postgresql transaction conflict ";

/// The SQLSTATEs after which a transaction runs again: serialization failure, deadlock.
pub(crate) fn is_conflict_code(code: &str) -> bool {
    code == "40001" || code == "40P01"
}

/// True for an error made by [`super::db`] from a [`is_conflict_code`] SQLSTATE.
pub(crate) fn is_conflict(e: &StorageError) -> bool {
    matches!(e, StorageError::Temporary(m) if m.starts_with(CONFLICT))
}

/// True for an error that says the pooled connection was dead before the statement reached a
/// live server: an I/O error (the socket closed under it), or PostgreSQL's notice that it shut
/// the session down (57P01 admin shutdown, 57P02 crash shutdown), which a connection idle
/// across a restart reads first. Since the idle ping is skipped for connections used within
/// [`crate::limits::PG_POOL_PING_IDLE`], this is how a restart shows on them.
pub(crate) fn is_stale(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c == "57P01" || c == "57P02" || c.starts_with("08")),
        _ => false,
    }
}

/// Runs `run` (a read, or a transaction's `BEGIN`: nothing that could have changed anything
/// when it fails so) again on another pooled connection while it fails with [`is_stale`], at
/// most [`crate::limits::PG_STALE_RETRIES`] times: each such failure closes the dead
/// connection, so after a database restart the first command of a session works instead of
/// answering `[UNAVAILABLE]` once per stale connection. A database that is down fails at the
/// new connection's connect (`PoolTimedOut`), which is returned.
pub(crate) async fn fresh<T, F, Fut>(mut run: F) -> std::result::Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut left = crate::limits::PG_STALE_RETRIES;
    loop {
        match run().await {
            Err(e) if left > 0 && is_stale(&e) => {
                left -= 1;
                tracing::debug!(error = %e, "stale postgresql connection; running again");
            }
            done => return done,
        }
    }
}

/// The pause before run `attempt + 1` (`attempt` >= 1): the doubled step plus up to one step
/// more at random.
fn pause(attempt: u32) -> std::time::Duration {
    let step = PG_RETRY_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(10));
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let nanos = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX).max(1);
    step + std::time::Duration::from_nanos(random % nanos)
}

/// After run `*attempt` failed with `e`: true (having waited) when it should run again.
pub(crate) async fn again(e: &StorageError, attempt: &mut u32) -> bool {
    *attempt += 1;
    if !is_conflict(e) || *attempt >= PG_TX_ATTEMPTS {
        return false;
    }
    tracing::debug!(error = %e, attempt = *attempt, "postgresql transaction runs again");
    tokio::time::sleep(pause(*attempt)).await;
    true
}

/// Runs `$body` in a new transaction named `$tx` of `$pool` and commits it; runs it all again
/// (a new transaction) when the database aborted it with a conflict ([`again`]). The body is a
/// block that may use `?` and `return` (an `Err` rolls back; an early `Ok` ends without
/// committing, for bodies that found nothing to write), so it must not consume what it needs
/// again on a second run. Its value is what the macro gives.
macro_rules! write_tx {
    ($pool:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let outcome = async {
                #[allow(unused_mut)]
                let mut $tx = $crate::storage::postgres::user::begin($pool).await?;
                let value = $body;
                $tx.commit().await.map_err($crate::storage::postgres::db)?;
                Ok::<_, $crate::storage::StorageError>(value)
            }
            .await;
            match outcome {
                Err(e) if $crate::storage::postgres::retry::again(&e, &mut attempt).await => {}
                done => break done,
            }
        }
    }};
}
pub(crate) use write_tx;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_conflicts_run_again() {
        assert!(is_conflict_code("40001"));
        assert!(is_conflict_code("40P01"));
        assert!(!is_conflict_code("23505"));
        assert!(!is_conflict_code("08006"));
        assert!(is_conflict(&StorageError::Temporary(format!(
            "{CONFLICT}40001: could not serialize access"
        ))));
        assert!(!is_conflict(&StorageError::Temporary(
            "postgresql: pool timed out".into()
        )));
        assert!(!is_conflict(&StorageError::AlreadyExists));
    }

    #[test]
    fn only_dead_connections_count_as_stale() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(is_stale(&io));
        // The database is down: a new connection could not be made; running again would only
        // wait the acquire timeout again.
        assert!(!is_stale(&sqlx::Error::PoolTimedOut));
        assert!(!is_stale(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn pauses_double_with_jitter_and_stay_short() {
        let mut total = std::time::Duration::ZERO;
        for attempt in 1..PG_TX_ATTEMPTS {
            let step = PG_RETRY_BACKOFF * (1 << (attempt - 1));
            let p = pause(attempt);
            assert!(p >= step && p < step * 2, "attempt {attempt}: {p:?}");
            total += p;
        }
        assert!(total < std::time::Duration::from_millis(200), "{total:?}");
    }

    #[tokio::test]
    async fn a_conflict_runs_again_until_the_attempts_are_spent() {
        let conflict = StorageError::Temporary(format!("{CONFLICT}40001: x"));
        let mut attempt = 0;
        let mut runs = 1;
        while again(&conflict, &mut attempt).await {
            runs += 1;
        }
        assert_eq!(runs, PG_TX_ATTEMPTS);
        let mut attempt = 0;
        assert!(!again(&StorageError::Temporary("down".into()), &mut attempt).await);
    }
}
