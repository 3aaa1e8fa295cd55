//! Terraform as a child process: finding the binary, running init, plan,
//! apply, output and destroy in a cluster's work directory, and turning the
//! `-json` message stream into progress events and typed results.
//!
//! This module knows nothing of AWS APIs, Kubernetes or the order of a
//! cluster's phases; `cluster/` decides what to run when.

mod binary;
mod error;
mod interrupt;
mod runner;
mod stream;

pub use binary::{BinaryError, MIN_VERSION, Terraform, Version};
pub use error::RunError;
pub use interrupt::{Interrupt, InterruptHandle, Signal};
pub use runner::{Backend, Output, Plan, Runner};
pub use stream::{Changes, Diagnostic, LockInfo, PlannedChange, Severity};
