//! Running a few futures side by side on one task: FETCH and SEARCH share a batch of messages
//! out by estimated work ([`shares`]) into lanes, each reading its messages from storage
//! (`View::read_messages`, in pieces bounded by [`by_bytes`]) and parsing them on
//! [`crate::compute::run`], and wait for all lanes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;

use crate::compute;
use crate::storage::{ReadPart, StorageError, View};

/// Runs the futures concurrently (on this task) and returns their outputs in order.
pub async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Splits `jobs` over `workers` so that each gets about the same work by `cost`: a batch ends
/// when its slowest worker does, and one large message among small ones would otherwise leave
/// the other workers idle. Largest first to the least loaded worker; each share keeps the
/// order of `jobs`, and empty shares are left out.
pub fn shares<T>(jobs: Vec<T>, workers: usize, cost: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let workers = workers.clamp(1, jobs.len().max(1));
    let mut order: Vec<(u64, usize)> = jobs.iter().enumerate().map(|(i, j)| (cost(j), i)).collect();
    order.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut load = vec![0u64; workers];
    let mut owner = vec![0usize; jobs.len()];
    for (c, i) in order {
        let w = (0..workers)
            .min_by_key(|&w| load.get(w).copied())
            .unwrap_or(0);
        if let Some(l) = load.get_mut(w) {
            *l += c;
        }
        if let Some(o) = owner.get_mut(i) {
            *o = w;
        }
    }
    let mut out: Vec<Vec<T>> = (0..workers).map(|_| Vec::new()).collect();
    for (job, w) in jobs.into_iter().zip(owner) {
        if let Some(share) = out.get_mut(w) {
            share.push(job);
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Cuts `items` into consecutive groups whose `size`s add up to at most `budget`, each group
/// holding at least one item (a single item over the budget is a group of its own): what a
/// caller of `View::read_messages` holds in memory at once, by the sizes it knows.
pub fn by_bytes<T>(items: Vec<T>, budget: u64, size: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut used = 0u64;
    for item in items {
        let s = size(&item);
        match out.last_mut() {
            Some(group) if used.saturating_add(s) <= budget => {
                used += s;
                group.push(item);
            }
            _ => {
                used = s;
                out.push(vec![item]);
            }
        }
    }
    out
}

/// Reads `pieces` of jobs from storage (`part` of the message `uid` names) and hands each piece
/// with its bytes (`None`: expunged) to `f` on [`compute::run`], reading the next piece while
/// one is processed: at most two pieces are held, and each costs one read and one compute hop.
/// Returns what `f` made of each piece, in order.
pub async fn read_and_compute<J, R, F>(
    view: &View,
    pieces: Vec<Vec<J>>,
    uid: impl Fn(&J) -> u32,
    part: ReadPart,
    f: F,
) -> Result<Vec<R>, StorageError>
where
    J: Send + 'static,
    R: Send + 'static,
    F: Fn(Vec<J>, Vec<Option<Bytes>>) -> R + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let mut out = Vec::with_capacity(pieces.len());
    let mut pieces = pieces.into_iter();
    let Some(mut piece) = pieces.next() else {
        return Ok(out);
    };
    let mut raws = view
        .read_messages(piece.iter().map(&uid).collect(), part)
        .await?;
    loop {
        let g = f.clone();
        let work = compute::run(move || g(piece, raws));
        let Some(next) = pieces.next() else {
            out.push(work.await?);
            return Ok(out);
        };
        let read = view.read_messages(next.iter().map(&uid).collect(), part);
        let (made, got) = tokio::join!(work, read);
        out.push(made?);
        raws = got?;
        piece = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_groups_keep_order_stay_in_budget_and_never_drop_an_oversized_item() {
        let sizes = vec![3u64, 4, 2, 10, 1, 1, 5];
        let groups = by_bytes(sizes.clone(), 6, |&s| s);
        assert_eq!(
            groups,
            vec![vec![3], vec![4, 2], vec![10], vec![1, 1], vec![5]]
        );
        assert_eq!(groups.concat(), sizes);
        assert!(by_bytes(Vec::<u64>::new(), 6, |&s| s).is_empty());
        assert_eq!(by_bytes(vec![0u64; 3], 0, |&s| s), vec![vec![0, 0, 0]]);
    }
}
