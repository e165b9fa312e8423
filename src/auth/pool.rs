//! The bounded hashing pool.
//!
//! Password hashing is deliberately slow and memory-hard, so it must neither
//! run on tokio's worker threads (it would stall every session) nor run
//! unboundedly (200 simultaneous Argon2 logins at 19 MiB each is 4 GiB). At
//! most `threads` jobs run at once, each on `spawn_blocking`; at most
//! `max_queued` more wait for a slot; any further job fails at once with
//! [`PoolError::Overloaded`], which the caller turns into a temporary failure
//! the client may retry.
//!
//! The permit moves into the blocking closure, so a job whose caller went
//! away (client disconnected) still counts until it really finishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, TryAcquireError};

/// Why a job did not run to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// All threads busy and the wait queue full.
    #[error("hashing pool overloaded")]
    Overloaded,
    /// The job panicked or the runtime is shutting down.
    #[error("hashing job failed")]
    Failed,
}

/// A semaphore-bounded front to `spawn_blocking` with a bounded wait queue.
#[derive(Debug)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    queued: AtomicUsize,
    threads: usize,
    max_queued: usize,
}

/// Frees a queue slot when dropped, so a cancelled wait frees it too.
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashPool {
    /// A pool running at most `threads` (at least 1) jobs with at most
    /// `max_queued` waiting.
    pub fn new(threads: usize, max_queued: usize) -> Self {
        let threads = threads.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(threads)),
            queued: AtomicUsize::new(0),
            threads,
            max_queued,
        }
    }

    /// Number of jobs that may run at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Largest number of jobs that may wait.
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// Jobs currently waiting for a thread.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Jobs currently running.
    pub fn running(&self) -> usize {
        self.threads
            .saturating_sub(self.permits.available_permits())
    }

    /// Runs `job` on a blocking thread once a slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(PoolError::Failed),
            Err(TryAcquireError::NoPermits) => {
                let max = self.max_queued;
                self.queued
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                        (q < max).then_some(q + 1)
                    })
                    .map_err(|_| PoolError::Overloaded)?;
                let _slot = QueueSlot(&self.queued);
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| PoolError::Failed)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|_| PoolError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[tokio::test]
    async fn excess_beyond_threads_plus_queue_is_refused() {
        let pool = Arc::new(HashPool::new(1, 2));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));

        let mut jobs = Vec::new();
        for _ in 0..3 {
            let pool = Arc::clone(&pool);
            let rx = Arc::clone(&release_rx);
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let rx = rx.lock().map_err(|_| ())?;
                    rx.recv_timeout(Duration::from_secs(30)).map_err(|_| ())
                })
                .await
            }));
        }
        // Wait (bounded) until one job runs and two wait.
        for _ in 0..1000 {
            if pool.running() == 1 && pool.queued() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.running(), 1);
        assert_eq!(pool.queued(), 2);

        assert_eq!(pool.run(|| ()).await, Err(PoolError::Overloaded));
        assert_eq!(pool.run(|| ()).await, Err(PoolError::Overloaded));

        for _ in 0..3 {
            release_tx.send(()).ok();
        }
        for job in jobs {
            assert_eq!(job.await.ok(), Some(Ok(Ok(()))));
        }
        assert_eq!(pool.queued(), 0);
        assert_eq!(pool.running(), 0);
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn cancelled_waiter_frees_its_queue_slot() {
        let pool = Arc::new(HashPool::new(1, 1));
        let (tx, rx) = mpsc::channel::<()>();
        let busy = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(move || rx.recv_timeout(Duration::from_secs(30)).is_ok())
                    .await
            })
        };
        for _ in 0..1000 {
            if pool.running() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiter = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(|| ()).await })
        };
        for _ in 0..1000 {
            if pool.queued() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.queued(), 1);
        waiter.abort();
        assert!(waiter.await.is_err());
        assert_eq!(pool.queued(), 0);
        tx.send(()).ok();
        assert_eq!(busy.await.ok(), Some(Ok(true)));
    }
}
