//! A small scoped thread pool: stat-ing 100,000 files on a few threads.

use crate::limits::{STAT_FILES_PER_THREAD, STAT_THREADS_MAX};

/// `f` over `items`, in order, by a few threads when there are many (each
/// call is one `fstatat`, and 100,000 of them are the cost that matters).
pub(super) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = stat_threads(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        // A chunk whose thread cannot be started (thread limit reached) is
        // done here instead: the result must stay complete.
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|c| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || c.iter().map(f).collect::<Vec<_>>())
                    .map_err(|_| c)
            })
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for p in parts {
            match p {
                Ok(h) => match h.join() {
                    Ok(mut v) => out.append(&mut v),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(c) => out.extend(c.iter().map(f)),
            }
        }
        out
    })
}

/// Threads to stat `n` files with.
fn stat_threads(n: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |c| c.get()));
    (n / STAT_FILES_PER_THREAD).clamp(1, cpus.clamp(1, STAT_THREADS_MAX))
}
