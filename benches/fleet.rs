//! `terrace fleet up` of three regions against the slowest of the same
//! three built one at a time, side by side in one run: real Terraform and
//! provider against moto behind the EKS shim, `--stop-after outputs`, the
//! clusters of `tests/fixtures/fleet-emulator.yaml`. Each build gets a
//! fresh emulated account and home directory. Target (issue 12): the fleet
//! takes at most 1.3 × the slowest single region.
//!
//!     scripts/bench-fleet      (cargo test --bench fleet, after scripts/lib/test-env.sh)

#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

#[allow(dead_code)]
#[path = "../tests/support/terraform.rs"]
mod terraform;

use std::process::Command;
use std::time::Instant;

const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
const TARGET: f64 = 1.3;

/// Runs terrace with `args` in a fresh home against a fresh account;
/// returns the wall time in seconds.
async fn timed(args: &[&str]) -> f64 {
    let account = moto::account_with_eks_shim().await;
    let home = tempfile::tempdir().expect("temp dir");
    let rc = terraform::cli_config(home.path());
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fleet-emulator.yaml"
    );
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["--output", "json", "--config", config])
        .args(args)
        .current_dir(home.path())
        .envs(account.env(REGIONS[0]))
        .env("HOME", home.path())
        .env("TF_CLI_CONFIG_FILE", &rc)
        .env("KUBECONFIG", "")
        .output()
        .expect("terrace runs");
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

#[tokio::main]
async fn main() {
    terrace::tls::install_crypto_provider();
    let up = ["--yes", "--stop-after", "outputs"];
    let mut singles = Vec::new();
    for region in REGIONS {
        let args = [&["cluster", "up", "--region", region][..], &up].concat();
        let wall = timed(&args).await;
        println!("cluster up --region {region:<10} {wall:>6.1} s");
        singles.push(wall);
    }
    let slowest = singles.iter().copied().fold(0.0, f64::max);
    let fleet = timed(&[&["fleet", "up"][..], &up].concat()).await;
    let ratio = fleet / slowest;
    println!("fleet up (3 regions)           {fleet:>6.1} s");
    println!(
        "fleet / slowest single region: {ratio:.2} (target ≤ {TARGET}) on {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
