//! The one way Terrace waits for the cluster: poll a probe with backoff
//! until it reports ready, fails, or the deadline passes.
//!
//! Polling (not watches) keeps every wait testable against the in-memory
//! API, which has no watch support; the backoff keeps it cheap on a real
//! cluster. A timeout names what was awaited and the last state seen.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::K8sError;

/// How often a wait polls: `initial`, growing by `factor` up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    /// Quick first checks (most waits on a re-run are already satisfied),
    /// then at most one poll every two seconds, so a wait ends at most two
    /// seconds after its condition holds.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            factor: 1.5,
        }
    }
}

impl Backoff {
    fn next(&self, current: Duration) -> Duration {
        current.mul_f64(self.factor.max(1.0)).min(self.max)
    }
}

/// What one look at the cluster found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll<T> {
    Ready(T),
    /// Not yet; the text is the current state, kept for a timeout message.
    Pending(String),
    /// It will not get better by waiting (a Degraded Application, …).
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("timed out after {} waiting for {what}; last seen: {last}", seconds(*.after))]
    Timeout {
        what: String,
        after: Duration,
        last: String,
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

/// Polls `probe` until it is ready or failed, or `timeout` has passed.
///
/// A probe error (the API did not answer, …) counts as "not yet" and is
/// kept as the last state, except an authorization error, which waiting
/// cannot fix.
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    backoff: &Backoff,
    mut probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, K8sError>>,
{
    let start = Instant::now();
    let deadline = start + timeout;
    let mut interval = backoff.initial;
    let mut last: String;
    loop {
        match probe().await {
            Ok(Poll::Ready(value)) => return Ok(value),
            Ok(Poll::Failed(message)) => {
                return Err(WaitError::Failed {
                    what: what.to_string(),
                    message,
                });
            }
            Ok(Poll::Pending(state)) => last = state,
            Err(err) if err.is_forbidden() => {
                return Err(WaitError::Failed {
                    what: what.to_string(),
                    message: err.to_string(),
                });
            }
            Err(err) => last = format!("error: {err}"),
        }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn fast() -> Backoff {
        Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            factor: 2.0,
        }
    }

    #[tokio::test]
    async fn returns_once_ready() {
        let calls = AtomicU32::new(0);
        let got = until("thing", Duration::from_secs(5), &fast(), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            Ok(if n < 3 {
                Poll::Pending(format!("try {n}"))
            } else {
                Poll::Ready(n)
            })
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn timeout_names_the_object_and_last_state() {
        let err = until(
            "Deployment argocd/argocd-server",
            Duration::from_millis(30),
            &fast(),
            || async { Ok::<Poll<()>, K8sError>(Poll::Pending("0/1 replicas available".into())) },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("Deployment argocd/argocd-server"), "{text}");
        assert!(text.contains("0/1 replicas available"), "{text}");
    }

    #[tokio::test]
    async fn failure_ends_the_wait_at_once() {
        let started = std::time::Instant::now();
        let err = until("app", Duration::from_secs(30), &fast(), || async {
            Ok::<Poll<()>, K8sError>(Poll::Failed("Degraded".into()))
        })
        .await
        .unwrap_err();
        assert!(matches!(err, WaitError::Failed { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let b = Backoff::default();
        let mut d = b.initial;
        for _ in 0..20 {
            d = b.next(d);
        }
        assert_eq!(d, b.max);
    }
}
