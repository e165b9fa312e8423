//! Group commit: writers to one mailbox share the fsyncs that make their changes durable.
//!
//! A writer changes the files (renames into `cur/`, unlinks, index-log appends) under the
//! mailbox lock, registers the change here ([`GroupCommit::note_write`], still under the lock)
//! and releases the lock. Then, before it acknowledges anything, it waits
//! ([`GroupCommit::wait`]) until a sync round that *started after* its change has finished: one
//! writer at a time leads a round (runs the sync: the caller's closure, for a mailbox an fsync of
//! `cur/` and an fdatasync of the index log), every writer registered before the round started
//! is covered by it, and those registered while it runs are covered by the next one. With `n`
//! writers arriving while an fsync is in flight, the next fsync acknowledges all `n`, instead of
//! `n` fsyncs one after the other under the mailbox lock.
//!
//! Readers that see a change before it is durable wait for the same round (the caller asks for
//! [`GroupCommit::written`] under the lock), so nothing a client is shown can be lost to a crash.
//!
//! A failed round fails every writer it covered; the caller then reloads its state from the
//! disk (see [`GroupCommit::take_failed`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// One mailbox's (or any set of files') shared sync rounds.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<Rounds>,
    done: Condvar,
    /// A round failed since the last [`GroupCommit::take_failed`].
    failed: AtomicBool,
}

/// What a failed round's fsync returned, handed to every writer it covered.
struct Failure {
    os: Option<i32>,
    kind: io::ErrorKind,
    text: String,
}

impl Failure {
    fn error(&self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.text.clone()),
        }
    }
}

#[derive(Default)]
struct Rounds {
    /// Sequence number of the last registered change.
    written: u64,
    /// Every change numbered up to this is durable.
    durable: u64,
    /// A round is being run (by the writer that leads it).
    running: bool,
    /// The highest change a failed round covered, and the error it had: waiters up to it fail.
    failed_upto: u64,
    error: Option<Failure>,
    /// Rounds run so far (for tests and counters).
    rounds: u64,
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, Rounds> {
        // The state is a few counters, valid after any panic between two updates.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a change whose syscalls have all returned; the number to wait for.
    pub(crate) fn note_write(&self) -> u64 {
        let mut s = self.lock();
        s.written += 1;
        s.written
    }

    /// The number of the last registered change: a reader that saw the state after it waits for
    /// it. `None` when every change is durable already.
    pub(crate) fn written(&self) -> Option<u64> {
        let s = self.lock();
        (s.written > s.durable).then_some(s.written)
    }

    /// Number of rounds run so far.
    #[cfg(test)]
    pub(crate) fn rounds(&self) -> u64 {
        self.lock().rounds
    }

    /// True once after a round failed: the in-memory state may hold changes that are not on
    /// disk and should be reloaded.
    pub(crate) fn take_failed(&self) -> bool {
        self.failed.swap(false, Ordering::AcqRel)
    }

    /// Returns once change `seq` is durable: after a round that started after it was registered
    /// has succeeded, led by this caller (running `sync`) or by another. A round that covered
    /// `seq` and failed fails this call.
    pub(crate) fn wait(&self, seq: u64, sync: impl Fn() -> io::Result<()>) -> io::Result<()> {
        let mut s = self.lock();
        loop {
            // A failure is final for what it covered, even after a later round succeeded: an
            // fsync that failed may have dropped the pages, which the next fsync then skips.
            if s.failed_upto >= seq
                && let Some(f) = &s.error
            {
                return Err(f.error());
            }
            if s.durable >= seq {
                return Ok(());
            }
            if s.running {
                s = self.done.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead a round covering every change registered so far.
            s.running = true;
            let target = s.written;
            drop(s);
            let res = sync();
            s = self.lock();
            s.running = false;
            s.rounds += 1;
            match res {
                Ok(()) => s.durable = s.durable.max(target),
                Err(e) => {
                    s.failed_upto = s.failed_upto.max(target);
                    s.error = Some(Failure {
                        os: e.raw_os_error(),
                        kind: e.kind(),
                        text: e.to_string(),
                    });
                    self.failed.store(true, Ordering::Release);
                }
            }
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupCommit;
    use std::collections::BTreeSet;
    use std::io;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, Mutex};

    /// A fake file: writes land in `pending`; a sync makes durable only what was pending when it
    /// STARTED (what an fsync guarantees), however long it then takes.
    #[derive(Default)]
    struct Disk {
        pending: Mutex<BTreeSet<usize>>,
        durable: Mutex<BTreeSet<usize>>,
    }

    #[test]
    fn many_waiters_share_few_rounds_and_none_is_acknowledged_early() {
        const WRITERS: usize = 16;
        let g = Arc::new(GroupCommit::default());
        let disk = Arc::new(Disk::default());
        let registered = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(WRITERS));
        let threads: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (g, disk, registered, start) = (
                    Arc::clone(&g),
                    Arc::clone(&disk),
                    Arc::clone(&registered),
                    Arc::clone(&start),
                );
                std::thread::spawn(move || {
                    start.wait();
                    disk.pending.lock().unwrap().insert(w);
                    let seq = g.note_write();
                    registered.fetch_add(1, Ordering::SeqCst);
                    g.wait(seq, || {
                        let snapshot = disk.pending.lock().unwrap().clone();
                        // The first round holds until every writer has registered, so the
                        // second covers all the rest: at most two rounds for sixteen writers.
                        while registered.load(Ordering::SeqCst) < WRITERS {
                            std::thread::yield_now();
                        }
                        disk.durable.lock().unwrap().extend(snapshot);
                        Ok(())
                    })
                    .unwrap();
                    // Acknowledged: the write must be in what some finished round made durable.
                    assert!(
                        disk.durable.lock().unwrap().contains(&w),
                        "writer {w} acknowledged before a sync that started after its write"
                    );
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let rounds = g.rounds();
        assert!(
            (1..=2).contains(&rounds),
            "{WRITERS} writers took {rounds} rounds"
        );
        assert_eq!(disk.durable.lock().unwrap().len(), WRITERS);
        assert_eq!(g.written(), None, "everything registered is durable");
    }

    #[test]
    fn a_write_during_a_round_waits_for_the_next() {
        let g = Arc::new(GroupCommit::default());
        let first = g.note_write();
        let second = Arc::new(Mutex::new(None));
        let rounds_seen = Arc::new(AtomicUsize::new(0));
        {
            let (g2, second, rounds_seen) = (
                Arc::clone(&g),
                Arc::clone(&second),
                Arc::clone(&rounds_seen),
            );
            g.wait(first, move || {
                rounds_seen.fetch_add(1, Ordering::SeqCst);
                // A change registered while this round runs is not covered by it.
                *second.lock().unwrap() = Some(g2.note_write());
                Ok(())
            })
            .unwrap();
        }
        let second = second.lock().unwrap().unwrap();
        assert_eq!(
            g.written(),
            Some(second),
            "the later change is still pending"
        );
        g.wait(second, || {
            rounds_seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert_eq!(rounds_seen.load(Ordering::SeqCst), 2);
        assert_eq!(g.written(), None);
    }

    #[test]
    fn a_failed_round_fails_its_writers_and_asks_for_a_reload() {
        let g = GroupCommit::default();
        let seq = g.note_write();
        let e = g
            .wait(seq, || Err(io::Error::other("disk on fire")))
            .unwrap_err();
        assert!(e.to_string().contains("disk on fire"));
        // Asking again does not retry an fsync that failed (its pages may be gone).
        let again = g.wait(seq, || Ok(())).unwrap_err();
        assert!(again.to_string().contains("disk on fire"));
        assert!(g.take_failed());
        assert!(!g.take_failed());
        // A later change gets a round of its own.
        let next = g.note_write();
        g.wait(next, || Ok(())).unwrap();
    }
}
