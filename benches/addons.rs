//! The addons phase against the in-memory API with simulated controllers
//! that make each addon healthy after a known delay. Reports the phase's
//! wall time next to the longest dependency chain of those delays.
//! Target (issue 5): no more than the longest chain + 10%.
//!
//! Time runs 1:100: the delays are a real install's (Argo CD rolls out in
//! about a minute, a chart in 30–90 s) divided by 100, and so are the poll
//! intervals (production: 200 ms growing to 2 s), so the ratio measured is
//! the one a real cluster would see, plus the in-memory API's own overhead.
//!
//!     cargo bench --bench addons             # 5 runs
//!     TERRACE_BENCH_RUNS=20 cargo bench --bench addons

#[allow(dead_code)]
#[path = "../tests/support/kube.rs"]
mod kube_support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kube_support::{AppOutcome, Behaviour, FakeCluster, default_stack, fast_options};
use terrace::addons::Catalog;
use terrace::progress::Discard;
use terrace::wait::Backoff;

const SCALE: u32 = 100;

fn scaled(secs: u64) -> Duration {
    Duration::from_secs(secs) / SCALE
}

fn behaviour() -> Behaviour {
    let apps: HashMap<String, AppOutcome> = [
        ("external-secrets", 90),
        ("reloader", 30),
        ("aws-load-balancer-controller", 60),
        ("external-dns", 45),
        ("karpenter", 75),
    ]
    .into_iter()
    .map(|(name, secs)| (name.to_string(), AppOutcome::Healthy(scaled(secs))))
    .collect();
    Behaviour {
        crd_established: scaled(2),
        rollout: scaled(60),
        default_app: AppOutcome::Stuck("unexpected addon".into()),
        apps,
        ready: scaled(10),
        ..Behaviour::default()
    }
}

/// Argo CD (CRDs Established, then rollout), then the longest path through
/// the addon graph, where an addon with extras also waits for their CRDs
/// and Ready conditions.
fn longest_chain(b: &Behaviour, extras: &[&str]) -> Duration {
    let catalog = Catalog::embedded().unwrap();
    let mut healthy: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut longest = Duration::ZERO;
    for addon in catalog.iter() {
        let Some(AppOutcome::Healthy(delay)) = b.apps.get(&addon.name) else {
            continue;
        };
        let start = addon
            .depends_on
            .iter()
            .filter_map(|d| healthy.get(d.as_str()))
            .max()
            .copied()
            .unwrap_or_default();
        let done = start + *delay;
        healthy.insert(&addon.name, done);
        let finished = if extras.contains(&addon.name.as_str()) {
            done + b.crd_established + b.ready
        } else {
            done
        };
        longest = longest.max(finished);
    }
    b.crd_established + b.rollout + longest
}

fn main() {
    terrace::tls::install_crypto_provider();
    let runs: usize = std::env::var("TERRACE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (spec, tree) = default_stack();
    let chain = longest_chain(&behaviour(), &["karpenter", "external-secrets"]);
    let mut times = Vec::new();
    for _ in 0..runs {
        let cache = tempfile::tempdir().unwrap();
        let mut options = fast_options(cache.path());
        options.backoff = Backoff {
            initial: Backoff::default().initial / SCALE,
            max: Backoff::default().max / SCALE,
            factor: Backoff::default().factor,
        };
        let elapsed = runtime.block_on(async {
            let cluster = FakeCluster::running(behaviour()).await;
            let started = Instant::now();
            terrace::addons::install::install(&cluster.kube, &tree, &spec, &options, &Discard)
                .await
                .expect("install");
            started.elapsed()
        });
        times.push(elapsed);
    }
    times.sort();
    let median = times[times.len() / 2];
    let ratio = median.as_secs_f64() / chain.as_secs_f64();
    println!("addons phase, {runs} runs (time scaled 1:{SCALE})");
    println!(
        "  longest dependency chain: {:>7.1} ms",
        chain.as_secs_f64() * 1e3
    );
    println!(
        "  wall time: median {:>7.1} ms, min {:.1} ms, max {:.1} ms",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  median / chain: {:.3} ({:+.1}%), target <= +10%: {}",
        ratio,
        (ratio - 1.0) * 100.0,
        if ratio <= 1.10 { "met" } else { "MISSED" }
    );
}
