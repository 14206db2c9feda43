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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::spawn_in_order;

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
}
