//! Sweeps a moto account seeded with 200 leftover resources of one cluster
//! (load balancers with listeners and target groups, Karpenter instances,
//! launch templates, detached ENIs, security groups, PVC volumes, DNS
//! records) next to another cluster's and decoys, then checks the leak
//! report is empty. Reports the sweep's wall time and its AWS calls.
//!
//!     TERRACE_MOTO_SERVER=…/moto_server cargo bench --bench sweep
//!     TERRACE_BENCH_RUNS=3 cargo bench --bench sweep

#[allow(dead_code)]
#[path = "../tests/support/moto.rs"]
mod moto;

#[allow(dead_code)]
#[path = "../tests/support/leftovers.rs"]
mod leftovers;

use std::time::{Duration, Instant};

use terrace::aws::Aws;
use terrace::progress::Discard;
use terrace::teardown::{self, Options};

const REGION: &str = "us-east-1";
const CLUSTER: &str = "bench-a";
const RESOURCES: usize = 200;

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
}
