//! The runner's own cost: init + plan + apply + output against the fake
//! terraform (tests/fake-terraform), which sleeps a known time in each step.
//! Overhead = wall time − the sum of the sleeps; it covers spawning, reading
//! the `-json` stream, reporting events and parsing outputs, plus the fake's
//! own start-up (bash, and the `sleep` it runs). Running the same four fake
//! commands directly, without the runner, shows how much of it is the fake.
//! Target (issue 4, for the whole `up`): wall ≤ sleeps × 1.05 + 300 ms.
//!
//!     cargo bench --bench terraform_runner
//!     TERRACE_BENCH_RUNS=10 TERRACE_BENCH_SLEEP=1.0 cargo bench --bench terraform_runner

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use terrace::progress::Collect;
use terrace::terraform::{Backend, Runner, Terraform};

const STEPS: u32 = 4;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The same four commands, run directly: the fake's own cost.
fn direct(fake: &Path, dir: &Path, sleep: f64, plan_file: &Path) -> Duration {
    let start = Instant::now();
    let plan_arg = format!("-out={}", plan_file.display());
    let plan_path = plan_file.display().to_string();
    let steps: [&[&str]; 4] = [
        &["init", "-json"],
        &["plan", "-json", "-detailed-exitcode", &plan_arg],
        &["apply", "-json", &plan_path],
        &["output", "-json"],
    ];
    for args in steps {
        let out = Command::new(fake)
            .args(args)
            .current_dir(dir)
            .env("FAKE_TF_SLEEP", sleep.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run the fake");
        assert!(out.status.code().is_some_and(|c| c == 0 || c == 2));
    }
    start.elapsed()
}

fn main() {
    let runs: usize = env_or("TERRACE_BENCH_RUNS", 5);
    let sleep: f64 = env_or("TERRACE_BENCH_SLEEP", 0.5);
    let fake = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake-terraform/terraform");
    let terraform = Terraform::at(&fake).expect("fake terraform");
    let tmp = tempfile::tempdir().expect("temp dir");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(work.join("terraform")).expect("work dir");
    let runner = Runner::new(terraform, &work)
        .with_env("FAKE_TF_SLEEP", &sleep.to_string())
        .with_env("XDG_CACHE_HOME", tmp.path().join("cache").to_str().unwrap());
    let backend = Backend::for_cluster("bench-bucket", "bench", "us-east-1");
    let plan_file = work.join("terraform/plan.tfplan");
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let slept = Duration::from_secs_f64(sleep * f64::from(STEPS));
    let mut overheads = Vec::with_capacity(runs);
    let mut fake_costs = Vec::with_capacity(runs);
    let mut events = 0;
    for _ in 0..runs {
        let reporter = Collect::default();
        let start = Instant::now();
        rt.block_on(async {
            runner.init(&backend, &reporter).await.expect("init");
            runner.plan(&plan_file, &reporter).await.expect("plan");
            runner.apply(&plan_file, &reporter).await.expect("apply");
            runner.output(&reporter).await.expect("output");
        });
        let wall = start.elapsed();
        events = reporter.events().len();
        overheads.push(wall.saturating_sub(slept));
        fake_costs
            .push(direct(&fake, &work.join("terraform"), sleep, &plan_file).saturating_sub(slept));
    }
    overheads.sort();
    fake_costs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let budget = slept.mul_f64(0.05) + Duration::from_millis(300);
    let worst = overheads[runs - 1];
    println!(
        "terraform runner, init+plan+apply+output, {sleep} s sleep per step ({} ms slept, {events} events): \
         overhead median {:.1} ms, min {:.1} ms, max {:.1} ms over {runs} runs \
         (the fake alone, run directly: median {:.1} ms); budget {:.0} ms: {}",
        ms(slept),
        ms(overheads[runs / 2]),
        ms(overheads[0]),
        ms(worst),
        ms(fake_costs[runs / 2]),
        ms(budget),
        if worst <= budget { "within" } else { "OVER" },
    );
}
