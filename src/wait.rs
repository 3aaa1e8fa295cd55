//! The one way Terrace waits: poll a probe with backoff until it reports
//! ready, fails, or a deadline passes, keeping the last state it observed.
//!
//! Polling (not watches) keeps every wait testable against the in-memory
//! Kubernetes API, which has no watch support, and works for AWS APIs,
//! which have none; the backoff keeps it cheap. The last poll happens at
//! the deadline, so a wait never gives up before its time. This module
//! knows nothing of what is awaited: Kubernetes, teardown and the drain
//! each describe their state in their own terms.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a wait polls: `initial`, growing by `factor` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    /// For the Kubernetes API: quick first checks (most waits on a re-run
    /// are already satisfied), then at most one poll every two seconds, so
    /// a wait ends at most two seconds after its condition holds.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            factor: 1.5,
        }
    }
}

impl Backoff {
    /// For AWS APIs, which throttle: doubling from a quarter second to at
    /// most one poll every ten seconds.
    pub const AWS: Backoff = Backoff {
        initial: Duration::from_millis(250),
        max: Duration::from_secs(10),
        factor: 2.0,
    };

    /// Milliseconds apart, for tests of what waits.
    #[cfg(test)]
    pub(crate) const FAST: Backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        factor: 2.0,
    };

    fn next(&self, current: Duration) -> Duration {
        current.mul_f64(self.factor.max(1.0)).min(self.max)
    }
}

/// What one look found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T, S = String> {
    Ready(T),
    /// Not yet; the state seen, kept for the timeout.
    Pending(S),
    /// It will not get better by waiting (a Degraded Application, an API
    /// that refuses us, …).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaitError<S = String> {
    #[error("timed out after {} waiting for {what}; last seen: {last}", seconds(*.after))]
    Timeout {
        what: String,
        after: Duration,
        last: S,
    },
    #[error("while waiting for {what}: {message}")]
    Failed { what: String, message: String },
}

fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{:.0}s", d.as_secs_f64())
    }
}

/// Polls `probe` until it is ready or failed, or `deadline` has passed;
/// a timeout carries the last pending state.
pub async fn until<T, S, F, Fut>(
    what: &str,
    deadline: Instant,
    backoff: &Backoff,
    mut probe: F,
) -> Result<T, WaitError<S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T, S>>,
{
    let start = Instant::now();
    let mut interval = backoff.initial;
    loop {
        let last = match probe().await {
            Poll::Ready(value) => return Ok(value),
            Poll::Failed(message) => {
                return Err(WaitError::Failed {
                    what: what.to_string(),
                    message,
                });
            }
            Poll::Pending(state) => state,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::Timeout {
                what: what.to_string(),
                after: now - start,
                last,
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = backoff.next(interval);
    }
}

/// As [`until`], with the deadline `timeout` from now.
pub async fn within<T, S, F, Fut>(
    what: &str,
    timeout: Duration,
    backoff: &Backoff,
    probe: F,
) -> Result<T, WaitError<S>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Poll<T, S>>,
{
    until(what, Instant::now() + timeout, backoff, probe).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_once_ready() {
        let calls = AtomicU32::new(0);
        let got: Result<u32, WaitError> =
            within("thing", Duration::from_secs(5), &Backoff::FAST, || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    Poll::Pending(format!("try {n}"))
                } else {
                    Poll::Ready(n)
                }
            })
            .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test]
    async fn timeout_names_the_object_and_last_state() {
        let err = within(
            "Deployment argocd/argocd-server",
            Duration::from_millis(30),
            &Backoff::FAST,
            || async { Poll::<(), _>::Pending("0/1 replicas available".to_string()) },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Deployment argocd/argocd-server"), "{text}");
        assert!(text.contains("0/1 replicas available"), "{text}");
    }

    #[tokio::test]
    async fn timeout_keeps_a_structured_last_state() {
        let calls = AtomicU32::new(0);
        let err = within(
            "instances",
            Duration::from_millis(20),
            &Backoff::FAST,
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                Poll::<(), _>::Pending(vec![format!("i-{n}")])
            },
        )
        .await
        .unwrap_err();
        let polls = calls.load(Ordering::SeqCst);
        assert!(polls > 1, "{polls}");
        match err {
            WaitError::Timeout { last, .. } => assert_eq!(last, [format!("i-{}", polls - 1)]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn failure_ends_the_wait_at_once() {
        let started = std::time::Instant::now();
        let err = within("app", Duration::from_secs(30), &Backoff::FAST, || async {
            Poll::<(), String>::Failed("Degraded".into())
        })
        .await
        .unwrap_err();
        assert!(matches!(err, WaitError::Failed { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn backs_off_then_polls_once_more_at_the_deadline() {
        let start = Instant::now();
        let calls = AtomicU32::new(0);
        let err = until(
            "gone",
            start + Duration::from_millis(600),
            &Backoff::AWS,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Poll::<(), String>::Pending("there".into())
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WaitError::Timeout { .. }));
        // At 0, 250 ms, then 600 ms (the 500 ms step cut at the deadline).
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        for b in [Backoff::default(), Backoff::AWS] {
            let mut d = b.initial;
            for _ in 0..20 {
                d = b.next(d);
            }
            assert_eq!(d, b.max);
        }
    }
}
