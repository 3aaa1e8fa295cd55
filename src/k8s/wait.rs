//! Waiting on the cluster through the one wait primitive ([`crate::wait`]),
//! with what an API error means for a wait: a refusal ends it (waiting
//! cannot fix authorization), anything else is "not yet" and is kept as
//! the last state.

use std::future::Future;
use std::time::Duration;

use super::K8sError;
use crate::wait::{self, Backoff, Poll, WaitError};

/// Polls `probe` until it is ready or failed, or `timeout` has passed.
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
    wait::within(what, timeout, backoff, || {
        let next = probe();
        async move {
            match next.await {
                Ok(poll) => poll,
                Err(err) if err.is_forbidden() => Poll::Failed(err.to_string()),
                Err(err) => Poll::Pending(format!("error: {err}")),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_api_error_is_not_yet_and_is_reported_as_the_last_state() {
        let err = until(
            "thing",
            Duration::from_millis(20),
            &Backoff::FAST,
            || async { Err::<Poll<()>, _>(K8sError::Client("connection refused".into())) },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, WaitError::Timeout { .. }), "{text}");
        assert!(
            text.contains("error: cannot build a Kubernetes client: connection refused"),
            "{text}"
        );
    }
}
