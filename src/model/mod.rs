//! The shared model: the vocabulary every layer agrees on — the AWS names
//! derived from a cluster name, the tags that mark Terrace's resources, the
//! system node group's taint and selector, and what a valid DNS label or
//! zone is.
//!
//! A leaf: it depends on no other module of the crate, so `config`,
//! `render`, `addons`, `aws` and `teardown` can all use it without
//! depending on each other. It holds rules and constants only: no I/O.

pub mod dns;
pub mod names;
pub mod system;
pub mod tags;

pub use names::{EventRules, NameLimit, Names};
