//! Shared helpers for integration tests (each test file uses what it needs).
#![allow(dead_code)]

pub mod kube;
pub mod moto;
