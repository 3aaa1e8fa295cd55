//! Polling with exponential backoff under a deadline: every wait in
//! teardown (load balancers gone, instances terminated, a group no longer
//! in use) goes through [`Backoff`], never a fixed sleep.

use std::time::Duration;

use tokio::time::Instant;

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(10);

pub(crate) struct Backoff {
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    pub fn until(deadline: Instant) -> Backoff {
        Backoff {
            deadline,
            delay: FIRST_DELAY,
        }
    }

    /// Waits before the next attempt; `false` once the deadline has passed
    /// (the last wait is cut short to end at the deadline).
    pub async fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        let pause = self.delay.min(self.deadline - now);
        tokio::time::sleep(pause).await;
        self.delay = (self.delay * 2).min(MAX_DELAY);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backs_off_then_stops_at_the_deadline() {
        let start = Instant::now();
        let mut backoff = Backoff::until(start + Duration::from_millis(600));
        let mut waits = 0;
        while backoff.wait().await {
            waits += 1;
        }
        // 250 ms, then 350 ms (the 500 ms step cut at the deadline)
        assert_eq!(waits, 2);
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
}
