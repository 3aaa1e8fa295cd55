//! Shared helpers for integration tests (each test file uses what it needs).
#![allow(dead_code)]

pub mod account;
pub mod fake_terraform;
pub mod golden;
pub mod kube;
pub mod leftovers;
pub mod machine;
pub mod moto;
pub mod seed;
pub mod signals;
pub mod stack;
pub mod tagged;
pub mod terraform;
pub mod vendored;
