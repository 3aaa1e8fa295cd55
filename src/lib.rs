//! Terrace: disposable Amazon EKS clusters.
//!
//! The library holds every domain module; `main.rs` only parses arguments,
//! calls [`run`](app::run) and maps errors to exit codes.

pub mod addons;
pub mod app;
pub mod aws;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dirs;
pub mod drill;
pub mod duration;
pub mod k8s;
pub mod model;
pub mod ops;
pub mod progress;
pub mod render;
pub mod teardown;
pub mod terraform;
pub mod tls;
pub mod tree;
pub mod ui;
pub mod wait;
