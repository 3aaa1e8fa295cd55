//! Two figures:
//!
//! 1. **sweep**: a moto account seeded with 200 leftover resources of one
//!    cluster (load balancers with listeners and target groups, Karpenter
//!    instances, launch templates, detached ENIs, security groups, PVC
//!    volumes, DNS records) next to another cluster's and decoys; the sweep
//!    and then the leak report, which must be empty.
//! 2. **stateless down**: a cluster built for real (`terrace cluster up
//!    --stop-after outputs`: real Terraform and provider against moto behind
//!    the EKS shim, which refuses deletes EC2 would refuse), its Terraform
//!    state object deleted, 200 leftovers seeded inside its VPC, then
//!    `terrace cluster down --yes` with the API unreachable: gate, pre-sweep,
//!    stateless sweep of everything and verify. It must exit 0.
//!
//! Each reports wall time and AWS calls by operation.
//!
//!     TERRACE_MOTO_SERVER=…/moto_server cargo bench --profile dev --bench sweep
//!     TERRACE_BENCH_RUNS=3 … (runs of the sweep figure)

#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

#[allow(dead_code)]
#[path = "../tests/support/leftovers.rs"]
mod leftovers;

#[allow(dead_code)]
#[path = "../tests/support/terraform.rs"]
mod terraform;

use std::time::{Duration, Instant};

use terrace::aws::Aws;
use terrace::progress::Discard;
use terrace::teardown::{self, Options};

const REGION: &str = "us-east-1";
const CLUSTER: &str = "bench-a";
const RESOURCES: usize = 200;
/// The cluster `up` builds for the stateless-down figure (the default name).
const BUILT: &str = "terrace-us-east-1";

#[tokio::main]
async fn main() {
    terrace::tls::install_crypto_provider();
    let runs: usize = std::env::var("TERRACE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for run in 1..=runs {
        let account = moto::account().await;
        let seeder = leftovers::Seeder::new(&account, REGION).await;
        let mut seeded = leftovers::Seeded::default();
        let mut n = 0;
        while seeded.len() + 9 <= RESOURCES {
            seeded.extend(seeder.cluster_leftovers(CLUSTER, n).await);
            n += 1;
        }
        while seeded.len() < RESOURCES {
            seeded.enis.push(
                seeder
                    .eni(&[("cluster.k8s.amazonaws.com/name", CLUSTER)])
                    .await,
            );
        }
        seeder.cluster_leftovers("bench-b", 0).await;
        seeder.decoys(CLUSTER, &seeded.security_groups[0]).await;

        let dir = tempfile::tempdir().unwrap();
        let spec = leftovers::spec(dir.path(), REGION, CLUSTER, &[CLUSTER, "bench-b"]);
        let aws = Aws::from_config(account.sdk_config(REGION).await);
        let opts = Options {
            keep_volumes: false,
            deadline: Duration::from_secs(120),
            ..Options::default()
        };
        let started = Instant::now();
        let report = teardown::sweep(&aws, &spec, &opts, &Discard).await.unwrap();
        let elapsed = started.elapsed();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let mut by_kind = std::collections::BTreeMap::new();
        for item in &report.deleted {
            *by_kind.entry(item.kind.as_str()).or_insert(0) += 1;
        }
        assert_eq!(
            report.deleted.len(),
            RESOURCES,
            "deleted by kind: {by_kind:?}"
        );
        let leaks = teardown::verify(&aws, &spec, &opts).await.unwrap();
        assert!(leaks.is_clean(), "{:?}", leaks.leaks);

        println!(
            "sweep run {run}: {} resources deleted in {:.2} s with {} AWS calls (verify: clean, {} calls)",
            report.deleted.len(),
            elapsed.as_secs_f64(),
            report.total_calls,
            leaks.total_calls
        );
        for (operation, count) in &report.calls {
            println!("  {operation:<36} {count}");
        }
    }
    stateless_down().await;
}

/// Seeds 200 leftovers of `cluster` into `vpc`'s subnets (a zone of its
/// own for the DNS records).
async fn seed_inside(
    account: &moto::Account,
    vpc: &str,
    subnets: [String; 2],
    cluster: &str,
) -> usize {
    let mut seeder = leftovers::Seeder::new(account, REGION).await;
    seeder.vpc = vpc.to_string();
    seeder.subnets = subnets;
    let mut seeded = leftovers::Seeded::default();
    let mut n = 0;
    // Counted without DNS records: the built cluster has no ExternalDNS
    // zone, so its records are not the sweep's (they stay in their zone).
    let counted = |s: &leftovers::Seeded| s.len() - s.records.len();
    while counted(&seeded) + 7 <= RESOURCES {
        seeded.extend(seeder.cluster_leftovers(cluster, n).await);
        n += 1;
    }
    while counted(&seeded) < RESOURCES {
        seeded.enis.push(
            seeder
                .eni(&[("cluster.k8s.amazonaws.com/name", cluster)])
                .await,
        );
    }
    counted(&seeded)
}

async fn stateless_down() {
    let account = moto::account_with_eks_shim().await;
    let home = tempfile::tempdir().unwrap();
    let rc = terraform::cli_config(home.path());
    let terrace = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(["--output", "json"])
            .args(args)
            .current_dir(home.path())
            .envs(account.env(REGION))
            .env("HOME", home.path())
            .env("KUBECONFIG", "")
            .env("TF_CLI_CONFIG_FILE", &rc)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("terrace runs");
        let summary: serde_json::Value = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "summary")
            .unwrap_or_else(|| panic!("no summary: {}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{summary}");
        summary
    };
    let built = Instant::now();
    terrace(&[
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ]);
    let build_seconds = built.elapsed().as_secs_f64();

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&account.sdk_config(REGION).await)
            .force_path_style(true)
            .build(),
    );
    s3.delete_object()
        .bucket(format!("terrace-state-{}-{REGION}", account.id))
        .key(format!("clusters/{BUILT}/terraform.tfstate"))
        .send()
        .await
        .unwrap();
    let (vpc, subnets) = leftovers::cluster_network(&account, REGION, BUILT).await;
    let seeded = seed_inside(&account, &vpc, subnets, BUILT).await;

    let started = Instant::now();
    let summary = terrace(&["cluster", "down", "--region", REGION, "--yes"]);
    let elapsed = started.elapsed();
    let s = &summary["summary"];
    assert_eq!(s["leaks"]["leaks"].as_array().map(Vec::len), Some(0), "{s}");
    let mut calls: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut deleted = 0;
    for report in s["pre_sweeps"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&s["sweep"]])
    {
        deleted += report["deleted"].as_array().map_or(0, Vec::len);
        for (operation, count) in report["calls"].as_object().into_iter().flatten() {
            *calls.entry(operation.clone()).or_default() += count.as_u64().unwrap_or(0);
        }
    }
    println!(
        "stateless down of a built cluster ({build_seconds:.0} s to build) plus {seeded} leftovers: \
         {deleted} resources deleted, exit 0, verify clean, in {:.2} s wall; \
         pre-sweep and sweep made {} AWS calls (verify {} more)",
        elapsed.as_secs_f64(),
        calls.values().sum::<u64>(),
        s["leaks"]["total_calls"]
    );
    for phase in s["phases"].as_array().into_iter().flatten() {
        println!(
            "  phase {:<12} {:>7.2} s",
            phase["phase"].as_str().unwrap_or_default(),
            phase["seconds"].as_f64().unwrap_or_default()
        );
    }
    for (operation, count) in &calls {
        println!("  {operation:<40} {count}");
    }
}
