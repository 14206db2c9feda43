//! Many futures at once, each on its own task, with their outputs in the order they were given:
//! how the monitor fans out its lookups and probes and then reports them in the order of its
//! targets, endpoints and addresses.
//!
//! Written here because neither kept tool does both: `futures::future::join_all` keeps the order
//! but polls every future on the caller's task (one thread for all the handshakes), and tokio's
//! `JoinSet` spreads the tasks over the runtime but yields them as they finish.

use std::future::Future;

use tokio::task::JoinSet;

/// Spawn each of `futures` and wait for all: their outputs in the order of `futures`, `None` for
/// one whose task panicked.
pub(super) async fn spawn_in_order<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<Option<T>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut set = JoinSet::new();
    let mut count = 0;
    for (i, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (i, future.await) });
        count += 1;
    }
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(count).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, value)) = joined
            && let Some(slot) = out.get_mut(i)
        {
            *slot = Some(value);
        }
    }
    out
}

/// [`spawn_in_order`] with at most `limit` tasks alive at once: each future is made (by its
/// maker, in order) only when a task has finished. A future waiting for a permit still holds its
/// whole state (a check's is tens of kilobytes), so spawning every endpoint's check at the start
/// held memory in proportion to the endpoints, not to the work in flight.
pub(super) async fn spawn_in_order_bounded<T, F, M>(makers: Vec<M>, limit: usize) -> Vec<Option<T>>
where
    M: FnOnce() -> F,
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn store<T>(out: &mut [Option<T>], joined: Result<(usize, T), tokio::task::JoinError>) {
        if let Ok((i, value)) = joined
            && let Some(slot) = out.get_mut(i)
        {
            *slot = Some(value);
        }
    }
    let limit = limit.max(1);
    let mut set = JoinSet::new();
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(makers.len()).collect();
    for (i, make) in makers.into_iter().enumerate() {
        if set.len() >= limit
            && let Some(joined) = set.join_next().await
        {
            store(&mut out, joined);
        }
        let future = make();
        set.spawn(async move { (i, future.await) });
    }
    while let Some(joined) = set.join_next().await {
        store(&mut out, joined);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{spawn_in_order, spawn_in_order_bounded};

    #[tokio::test]
    async fn outputs_come_in_the_order_given_and_a_panic_is_none() {
        let delays = [30_u64, 0, 10, 20];
        let futures = delays.iter().map(|&ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            assert_ne!(ms, 20, "this task panics");
            ms
        });
        let out = spawn_in_order(futures).await;
        assert_eq!(out, vec![Some(30), Some(0), Some(10), None]);
    }

    #[tokio::test]
    async fn bounded_keeps_the_order_and_never_runs_more_than_the_limit() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (alive, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let delays = [30_u64, 0, 10, 20, 5, 25, 0, 15];
        let makers: Vec<_> = delays
            .iter()
            .map(|&ms| {
                let (alive, most) = (Arc::clone(&alive), Arc::clone(&most));
                move || async move {
                    let now = alive.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    alive.fetch_sub(1, Ordering::SeqCst);
                    assert_ne!(ms, 20, "this task panics");
                    ms
                }
            })
            .collect();
        let out = spawn_in_order_bounded(makers, 3).await;
        let want: Vec<Option<u64>> = delays.iter().map(|&ms| (ms != 20).then_some(ms)).collect();
        assert_eq!(out, want);
        assert!(most.load(Ordering::SeqCst) <= 3, "{most:?}");
    }
}
