//! Shared helpers for integration tests (each test file uses what it needs).
#![allow(dead_code)]

pub mod bin;
pub mod leftovers;
pub mod moto;
pub mod seed;
