//! Where "stop now" comes from: Ctrl-C in the CLI, a handle in tests.
//!
//! An [`Interrupt`] counts requests to stop. The runner passes the first on
//! to Terraform as SIGINT (Terraform then finishes the calls in flight,
//! writes its state and releases the lock) and the second as SIGKILL.

use tokio::sync::watch;

/// A cloneable view of how many times the user asked to stop.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<u32>);

/// Triggers the [`Interrupt`] it was made with.
#[derive(Debug, Clone)]
pub struct InterruptHandle(std::sync::Arc<watch::Sender<u32>>);

impl InterruptHandle {
    /// Asks to stop; a second call asks to stop at once.
    pub fn interrupt(&self) {
        self.0.send_modify(|count| *count += 1);
    }
}

impl Interrupt {
    pub fn channel() -> (InterruptHandle, Interrupt) {
        let (tx, rx) = watch::channel(0);
        (InterruptHandle(std::sync::Arc::new(tx)), Interrupt(rx))
    }

    /// Never fires: for callers that have no way to stop.
    pub fn never() -> Interrupt {
        Interrupt::channel().1
    }

    /// Fires on each Ctrl-C (SIGINT) this process receives. Once called, a
    /// Ctrl-C no longer ends the process by itself: the caller owns stopping.
    /// Needs a running Tokio runtime.
    pub fn ctrl_c() -> Interrupt {
        let (handle, interrupt) = Interrupt::channel();
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                handle.interrupt();
            }
        });
        interrupt
    }

    /// How many times stopping was asked for so far.
    pub fn count(&self) -> u32 {
        *self.0.borrow()
    }

    /// Waits until the count exceeds `seen`, returning the new count; never
    /// returns if every handle is gone.
    pub async fn exceeds(&mut self, seen: u32) -> u32 {
        let count = self.0.wait_for(|count| *count > seen).await.map(|c| *c);
        match count {
            Ok(count) => count,
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn counts_requests_and_wakes_waiters() {
        let (handle, mut interrupt) = Interrupt::channel();
        assert_eq!(interrupt.count(), 0);
        let waiter = tokio::spawn({
            let mut interrupt = interrupt.clone();
            async move { interrupt.exceeds(0).await }
        });
        handle.interrupt();
        assert_eq!(waiter.await.unwrap(), 1);
        handle.interrupt();
        assert_eq!(interrupt.exceeds(1).await, 2);
        assert_eq!(interrupt.count(), 2);
    }

    #[tokio::test]
    async fn never_fires() {
        let mut interrupt = Interrupt::never();
        let waited = tokio::time::timeout(Duration::from_millis(20), interrupt.exceeds(0)).await;
        assert!(waited.is_err());
    }
}
