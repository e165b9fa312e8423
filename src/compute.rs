//! CPU-heavy work kept off the runtime threads, whatever the storage backend: parsing the MIME
//! structure of a batch of messages for FETCH, evaluating SEARCH over a batch of message texts.
//!
//! The protocol layers get message bytes from storage ([`crate::storage::View::read_messages`])
//! and hand the parsing here, so the storage traits carry bytes, not closures, and a backend
//! without blocking threads of its own needs none for this.

use thiserror::Error;

use crate::storage::StorageError;

/// The computation panicked or the runtime is shutting down.
#[derive(Debug, Error)]
#[error("background computation failed: {0}")]
pub struct ComputeError(String);

impl From<ComputeError> for StorageError {
    fn from(e: ComputeError) -> Self {
        StorageError::Temporary(e.to_string())
    }
}

/// Runs `f` on a thread where it may take its time (tokio's blocking pool) and returns its
/// result. One call is one thread hop: give it a batch, not one message.
pub async fn run<T, F>(f: F) -> Result<T, ComputeError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ComputeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_closure_and_reports_a_panic() {
        let got = run(|| (1..=10u32).sum::<u32>()).await;
        assert_eq!(got.ok(), Some(55));
        let failed = run(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
    }
}
