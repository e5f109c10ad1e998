//! Waiting for what happens asynchronously (read models, messages, logs).

use std::future::Future;
use std::time::{Duration, Instant};

/// Asks `probe` every 50 ms until `done` holds for its answer, for at most `within`; returns
/// the last answer (which the test then asserts on, so a timeout fails with what was seen).
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + within;
    loop {
        let answer = probe().await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
