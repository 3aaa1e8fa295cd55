//! Where "stop now" comes from: SIGINT, SIGTERM and SIGHUP in the CLI (one
//! source for all three), a handle in tests.
//!
//! An [`Interrupt`] counts requests to stop and remembers the signal of the
//! first. The runner passes the first on to Terraform as SIGINT (Terraform
//! then finishes the calls in flight, writes its state and releases the
//! lock) and the second as SIGKILL. A CI cancel (SIGTERM) or a lost session
//! (SIGHUP) is treated exactly as a Ctrl-C; only the exit code differs.

use tokio::sync::watch;

/// A signal that asks Terrace to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C at a terminal.
    Int,
    /// SIGTERM: a CI cancel, `docker stop`, a Kubernetes pod deletion.
    Term,
    /// SIGHUP: the terminal or SSH session went away.
    Hup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
            Signal::Hup => "SIGHUP",
        }
    }

    fn number(self) -> libc::c_int {
        match self {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
            Signal::Hup => libc::SIGHUP,
        }
    }

    /// 128 + the signal number: what a shell reports for a process the
    /// signal ended, so scripts cannot tell a clean stop from a default one.
    pub fn exit_code(self) -> u8 {
        128 + self.number() as u8
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    count: u32,
    /// `None` when the first request came from a handle, not a signal.
    first: Option<Signal>,
}

/// A cloneable view of how many times stopping was asked for.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<Requests>);

/// Triggers the [`Interrupt`] it was made with.
#[derive(Debug, Clone)]
pub struct InterruptHandle(std::sync::Arc<watch::Sender<Requests>>);

impl InterruptHandle {
    /// Asks to stop; a second call asks to stop at once.
    pub fn interrupt(&self) {
        self.0.send_modify(|r| r.count += 1);
    }

    /// Asks to stop because `signal` arrived.
    pub fn signal(&self, signal: Signal) {
        self.0.send_modify(|r| {
            r.count += 1;
            r.first.get_or_insert(signal);
        });
    }
}

impl Interrupt {
    pub fn channel() -> (InterruptHandle, Interrupt) {
        let (tx, rx) = watch::channel(Requests::default());
        (InterruptHandle(std::sync::Arc::new(tx)), Interrupt(rx))
    }

    /// Never fires: for callers that have no way to stop.
    pub fn never() -> Interrupt {
        Interrupt::channel().1
    }

    /// Fires on each SIGINT, SIGTERM or SIGHUP this process receives. Once
    /// called, none of them ends the process by itself any more: the caller
    /// owns stopping. Needs a running Tokio runtime.
    pub fn signals() -> std::io::Result<Interrupt> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (handle, interrupt) = Interrupt::channel();
        tokio::spawn(async move {
            loop {
                let arrived = tokio::select! {
                    Some(()) = int.recv() => Signal::Int,
                    Some(()) = term.recv() => Signal::Term,
                    Some(()) = hup.recv() => Signal::Hup,
                    else => return,
                };
                handle.signal(arrived);
            }
        });
        Ok(interrupt)
    }

    /// How many times stopping was asked for so far.
    pub fn count(&self) -> u32 {
        self.0.borrow().count
    }

    /// The signal behind the first request, if a signal made it.
    pub fn first_signal(&self) -> Option<Signal> {
        self.0.borrow().first
    }

    /// Waits until the count exceeds `seen`, returning the new count; never
    /// returns if every handle is gone.
    pub async fn exceeds(&mut self, seen: u32) -> u32 {
        let count = self.0.wait_for(|r| r.count > seen).await.map(|r| r.count);
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
        assert_eq!(interrupt.first_signal(), None);
    }

    #[tokio::test]
    async fn the_first_signal_decides_the_exit_code() {
        let (handle, interrupt) = Interrupt::channel();
        handle.signal(Signal::Term);
        handle.signal(Signal::Int);
        assert_eq!(interrupt.count(), 2);
        assert_eq!(interrupt.first_signal(), Some(Signal::Term));
        assert_eq!(Signal::Int.exit_code(), 130);
        assert_eq!(Signal::Term.exit_code(), 143);
        assert_eq!(Signal::Hup.exit_code(), 129);
    }

    #[tokio::test]
    async fn never_fires() {
        let mut interrupt = Interrupt::never();
        let waited = tokio::time::timeout(Duration::from_millis(20), interrupt.exceeds(0)).await;
        assert!(waited.is_err());
    }
}
