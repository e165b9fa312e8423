//! The global in-flight budget: message bytes buffered in memory, summed over every connection.
//!
//! Messages are streamed (an APPEND literal goes to the mailbox's `tmp/` as it arrives, LMTP DATA
//! to a [`crate::spool::Spool`]), so one transfer only ever holds a chunk
//! ([`crate::limits::INCOMING_MESSAGE_CHUNK`]) or a small in-memory spool. This budget bounds the
//! sum of those: a transfer takes a [`Permit`] for the bytes it may buffer before it asks the
//! client for data, and gives it back when it ends. When the budget is spent a new transfer waits
//! a little ([`crate::limits::INFLIGHT_WAIT_MS`]) and is then refused (`NO [LIMIT]`, LMTP
//! `452 4.3.1`) rather than memory growing with the number of clients.
//!
//! The limit is passed by the caller (from `limits.max_inflight_message_bytes` of the config in
//! force), so a reload changes it for new transfers. [`in_flight_bytes`] is one atomic load, for
//! the metrics (`mailcove_inflight_message_bytes`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// The part of `limit` an IMAP APPEND may take: all but the share kept for mail delivery
/// ([`crate::limits::DELIVERY_INFLIGHT_RESERVE_DIVISOR`]), and at least one chunk.
pub fn client_limit(limit: u64) -> u64 {
    let chunk = crate::limits::INCOMING_MESSAGE_CHUNK as u64;
    let reserve =
        (limit / crate::limits::DELIVERY_INFLIGHT_RESERVE_DIVISOR).min(limit.saturating_sub(chunk));
    limit - reserve
}

/// A byte budget shared by every connection of the process.
#[derive(Debug, Default)]
pub struct Budget {
    used: AtomicU64,
    freed: Notify,
}

static GLOBAL: Budget = Budget {
    used: AtomicU64::new(0),
    freed: Notify::const_new(),
};

/// The process's budget.
pub fn global() -> &'static Budget {
    &GLOBAL
}

/// Message bytes currently held by transfers in this process.
pub fn in_flight_bytes() -> u64 {
    GLOBAL.in_use()
}

impl Budget {
    /// Bytes held now.
    pub fn in_use(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit under `limit` now.
    fn take(&self, bytes: u64, limit: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= limit)
            })
            .is_ok()
    }

    fn give(&self, bytes: u64) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
            self.freed.notify_waiters();
        }
    }

    /// Takes `bytes` under `limit` at once, or `None`.
    pub fn try_acquire(&'static self, bytes: u64, limit: u64) -> Option<Permit> {
        // Built only once the bytes are taken: a Permit gives its bytes back when dropped.
        if self.take(bytes, limit) {
            Some(Permit {
                budget: self,
                bytes,
            })
        } else {
            None
        }
    }

    /// Takes `bytes` under `limit`, waiting at most `wait` for other transfers to give some back.
    pub async fn acquire(&'static self, bytes: u64, limit: u64, wait: Duration) -> Option<Permit> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the attempt, so a release between the two is not missed.
            let freed = self.freed.notified();
            if let Some(p) = self.try_acquire(bytes, limit) {
                return Some(p);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_acquire(bytes, limit);
            }
        }
    }
}

/// Bytes of the budget held by one transfer; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    budget: &'static Budget,
    bytes: u64,
}

impl Permit {
    /// A permit for nothing (when no budget applies).
    pub fn empty(budget: &'static Budget) -> Permit {
        Permit { budget, bytes: 0 }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Takes `more` bytes under `limit` at once; false (and nothing taken) if they do not fit.
    pub fn try_grow(&mut self, more: u64, limit: u64) -> bool {
        if self.budget.take(more, limit) {
            self.bytes += more;
            true
        } else {
            false
        }
    }

    /// Gives back everything held, keeping the (now empty) permit.
    pub fn release(&mut self) {
        self.budget.give(std::mem::take(&mut self.bytes));
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TEST: Budget = Budget {
        used: AtomicU64::new(0),
        freed: Notify::const_new(),
    };

    #[test]
    fn delivery_keeps_a_quarter_and_clients_keep_at_least_a_chunk() {
        let chunk = crate::limits::INCOMING_MESSAGE_CHUNK as u64;
        assert_eq!(client_limit(64 << 20), 48 << 20);
        assert_eq!(client_limit(chunk), chunk);
        assert_eq!(client_limit(chunk + 100), chunk);
        assert_eq!(client_limit(8 * chunk), 6 * chunk);
    }

    #[tokio::test]
    async fn the_budget_bounds_the_sum_and_is_given_back() {
        let a = TEST.try_acquire(60, 100).expect("fits");
        assert!(TEST.try_acquire(50, 100).is_none(), "60 + 50 > 100");
        let mut b = TEST.try_acquire(40, 100).expect("exactly at the limit");
        assert_eq!(TEST.in_use(), 100);
        assert!(!b.try_grow(1, 100));
        assert!(
            TEST.acquire(10, 100, Duration::from_millis(20))
                .await
                .is_none(),
            "waits, then gives up"
        );
        let waiter = tokio::spawn(TEST.acquire(30, 100, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        let c = waiter
            .await
            .expect("task")
            .expect("freed bytes reach a waiter");
        assert_eq!(c.bytes(), 30);
        b.release();
        assert_eq!(TEST.in_use(), 30);
        drop(c);
        drop(b);
        assert_eq!(TEST.in_use(), 0);
    }
}
