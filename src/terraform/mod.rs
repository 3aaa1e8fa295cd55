//! Terraform as a child process: finding the binary, and (as the pipeline
//! grows) running init/plan/apply/output/destroy with `-json` progress.
//! This module knows nothing of AWS APIs or Kubernetes.

mod binary;

pub use binary::{BinaryError, MIN_VERSION, Terraform, Version};
