//! Waiting on an upstream with a deadline that a stopped process does not misread.
//!
//! The clock goes on while a process is stopped (SIGSTOP, a paused VM or container), so every
//! timer whose deadline passed during the stop fires at once when it runs again, before the
//! answers that arrived meanwhile are read from their sockets: the timer and the socket are
//! woken in the same turn, and which task runs first is chance. Without care, an upstream that
//! answered in time is taken for one that did not, and its call is failed (or tried again
//! elsewhere) after the upstream did the work.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// A timer that fires this much after its deadline says the process was not running then.
const LATE: Duration = Duration::from_millis(500);

/// How long an answer that may be waiting unread is given after such a stop.
const GRACE: Duration = Duration::from_secs(2);

/// `fut` if it ends within `wait`, else `None`; when the timer fired late (the process was
/// stopped past the deadline), `fut` has [`GRACE`] more to end in.
pub(super) async fn within<F: Future>(wait: Duration, fut: F) -> Option<F::Output> {
    let deadline = Instant::now() + wait;
    let mut fut = std::pin::pin!(fut);
    if let Ok(v) = tokio::time::timeout_at(deadline, fut.as_mut()).await {
        return Some(v);
    }
    if Instant::now().saturating_duration_since(deadline) < LATE {
        return None;
    }
    tracing::info!(
        late_ms = (Instant::now() - deadline).as_millis() as u64,
        "a timer fired late (was the process stopped?): the upstream is given a moment more"
    );
    tokio::time::timeout(GRACE, fut).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timer_on_time_ends_the_wait() {
        let started = Instant::now();
        let slow = tokio::time::sleep(Duration::from_secs(10));
        assert!(within(Duration::from_millis(50), slow).await.is_none());
        assert!(started.elapsed() < GRACE, "no grace for a timer on time");
        assert_eq!(
            within(Duration::from_secs(1), async { 7 }).await,
            Some(7),
            "an answer in time"
        );
    }

    /// A stop of the whole process, as the runtime sees it: the thread blocked past the
    /// deadline, and the answer ready right after.
    #[tokio::test]
    async fn a_late_timer_gives_the_answer_a_moment_more() {
        let answer = async {
            // Ready only after the thread was blocked (a stopped process's first turn).
            tokio::time::sleep(Duration::from_millis(200)).await;
            "answered"
        };
        let waiting = within(Duration::from_millis(50), async {
            std::thread::sleep(Duration::from_millis(800)); // the stop, past the deadline
            answer.await
        });
        assert_eq!(waiting.await, Some("answered"));
    }
}
