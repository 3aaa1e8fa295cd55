//! Renders a 20-cluster fleet (config load and validation, render, atomic
//! write of every tree) and reports the median of repeated runs.
//! Target (issue 2): under 0.5 s for all 20 in a release build.
//!
//!     cargo bench --bench render            # 15 runs
//!     TERRACE_BENCH_RUNS=50 cargo bench --bench render

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use terrace::config::{self, regions::REGIONS};
use terrace::render::{self, Outputs};

const CLUSTERS: usize = 20;

fn fleet_yaml() -> String {
    let mut yaml = String::from(
        "fleet: bench\ndefaults:\n  addons:\n    external-dns: { zones: [example.com] }\n    argocd: { repo: https://github.com/acme/platform.git }\nclusters:\n",
    );
    for (i, region) in REGIONS.iter().take(CLUSTERS).enumerate() {
        let _ = writeln!(
            yaml,
            "  - region: {}\n    network: {{ cidr: 10.{i}.0.0/16 }}",
            region.code
        );
    }
    yaml
}

fn main() {
    let runs: usize = std::env::var("TERRACE_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(15);
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("terrace.yaml");
    std::fs::write(&config, fleet_yaml()).expect("write fleet");

    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut files = 0;
    for run in 0..runs {
        let start = Instant::now();
        let specs = config::load_fleet(
            &config,
            terrace::addons::Catalog::embedded().unwrap().schema(),
        )
        .expect("valid fleet");
        assert_eq!(specs.len(), CLUSTERS);
        files = 0;
        for spec in &specs {
            let tree = render::render(spec, &Outputs::placeholders()).expect("render");
            files += tree.len();
            tree.write_atomic(&tmp.path().join(format!("out-{run}/{}", spec.name)))
                .expect("write");
        }
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "render {CLUSTERS}-cluster fleet ({files} files): median {:.1} ms, min {:.1} ms, max {:.1} ms over {runs} runs",
        ms(times[runs / 2]),
        ms(times[0]),
        ms(times[runs - 1]),
    );
}
