//! `terrace cluster up` end to end, to the addon boundary (`--stop-after
//! outputs`), with the fake terraform sleeping a known time in each of
//! init, plan, apply and output, against a warmed-up moto. Reports the wall
//! time against the sum of the sleeps, and how much of the difference was
//! spent waiting on the AWS API (preflight, state bucket) rather than in
//! Terrace. Target (issue 4): wall ≤ sleeps × 1.05 + 300 ms.
//!
//!     cargo bench --bench up
//!     TERRACE_BENCH_RUNS=10 TERRACE_BENCH_SLEEP=2.0 cargo bench --bench up

#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const STEPS: f64 = 4.0;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    terrace::tls::install_crypto_provider();
    let runs: usize = env_or("TERRACE_BENCH_RUNS", 5);
    let sleep: f64 = env_or("TERRACE_BENCH_SLEEP", 2.0);
    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-terraform/terraform");
    let account = moto::account().await;
    let home = tempfile::tempdir().expect("temp dir");
    let run = |sleep: f64| {
        let start = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args([
                "--output",
                "json",
                "cluster",
                "up",
                "--region",
                "us-east-1",
                "--yes",
                "--stop-after",
                "outputs",
            ])
            .current_dir(home.path())
            .envs(account.env("us-east-1"))
            .env("HOME", home.path())
            .env("TERRACE_TERRAFORM", &fake)
            .env("FAKE_TF_SLEEP", sleep.to_string())
            .output()
            .expect("terrace runs");
        let wall = start.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let summary: serde_json::Value = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "summary")
            .expect("a summary");
        let aws: f64 = summary["summary"]["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["phase"] == "preflight" || p["phase"] == "state")
            .filter_map(|p| p["seconds"].as_f64())
            .sum();
        (wall, Duration::from_secs_f64(aws))
    };
    // The first run creates the state bucket and wakes moto's services.
    run(0.0);
    let mut results: Vec<(Duration, Duration)> = (0..runs).map(|_| run(sleep)).collect();
    results.sort();
    let (wall, aws) = results[runs / 2];
    let sleeps = Duration::from_secs_f64(sleep * STEPS);
    let budget = sleeps.mul_f64(1.05) + Duration::from_millis(300);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "up to the addon boundary, fake terraform sleeping {sleep} s in each of 4 steps ({runs} runs):\n  \
         median wall {:.0} ms = sleeps {:.0} ms + overhead {:.0} ms (of which AWS API calls {:.0} ms)\n  \
         budget sleeps × 1.05 + 300 ms = {:.0} ms: {}",
        ms(wall),
        ms(sleeps),
        ms(wall.saturating_sub(sleeps)),
        ms(aws),
        ms(budget),
        if wall <= budget { "within" } else { "OVER" }
    );
}
