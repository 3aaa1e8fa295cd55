//! Chaos: a seeded random sequence of kills during `terrace cluster up`
//! against real Terraform, the real `hashicorp/aws` provider and moto —
//! SIGKILL of terrace alone, SIGKILL of terrace's and Terraform's process
//! groups, SIGTERM — each at a random moment of the apply and followed by
//! the documented recovery (`terrace cluster unlock --yes` when a lock was
//! left); then a final `up` must converge (a re-plan changes nothing) and
//! `down` must leave nothing tagged for the cluster.
//!
//! `CHAOS_RUNS` seeds (default 1) from `CHAOS_SEED` (default 1), with
//! `CHAOS_KILLS` kill points each (default 5); `scripts/chaos` runs them
//! and prints, per run, the seed, the kill points and the outcome, and at
//! the end `N/RUNS converged`.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::account::{lock_key, object, tagged_for_cluster};
use support::machine::{Machine, REGION, error, events, parse};
use support::signals::{Kill, kill_after};

/// splitmix64: a seed gives the same kill points on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// One kill point: how, and after how many resources Terraform applied.
#[derive(Debug, Clone, Copy)]
struct Point {
    kill: Kill,
    after: usize,
}

/// The kill points of `seed`. A first apply creates about 80 resources;
/// later ones create what is still missing, so a late point may not be
/// reached (the `up` then finishes, which is fine).
fn points(seed: u64, count: usize) -> Vec<Point> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| Point {
            kill: [Kill::Terrace, Kill::Group, Kill::Term][rng.between(0, 2) as usize],
            after: rng.between(1, 60) as usize,
        })
        .collect()
}

fn env_number(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn up_args(name: &str) -> Vec<&str> {
    vec![
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--name",
        name,
        "--yes",
        "--stop-after",
        "outputs",
    ]
}

/// What happened at one kill point, for the run's line.
fn step(point: &Point, outcome: &str) -> String {
    format!("{}@{}:{outcome}", point.kill.name(), point.after)
}

/// One seeded run; `Err` says where it did not converge.
async fn run(seed: u64, points: &[Point], steps: &mut Vec<String>) -> Result<(), String> {
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let name = format!("chaos{seed}");
    let up = up_args(&name);
    for point in points {
        let killed = kill_after(machine.command(&up), point.after, point.kill);
        if !killed.reached {
            if killed.exit != Some(0) {
                let problem = error(&events(&killed.stdout));
                return Err(format!(
                    "{}: up failed before its kill point: {problem}",
                    step(point, "unreached")
                ));
            }
            steps.push(step(point, "finished-first"));
            continue;
        }
        if point.kill == Kill::Term && killed.exit != Some(143) {
            return Err(format!(
                "{}: SIGTERM gave exit {:?}, not 143",
                step(point, "term"),
                killed.exit
            ));
        }
        // The documented recovery: a lock left behind is released.
        let locked = object(&machine.account, REGION, &lock_key(&name))
            .await
            .is_some();
        if locked && point.kill == Kill::Term {
            return Err(format!(
                "{}: SIGTERM left the state lock",
                step(point, "term")
            ));
        }
        if locked {
            let unlock = machine.run(&[
                "--output", "json", "cluster", "unlock", "--region", REGION, "--name", &name,
                "--yes",
            ]);
            if unlock.status.code() != Some(0) {
                let problem = error(&events(&String::from_utf8_lossy(&unlock.stdout)));
                return Err(format!(
                    "{}: unlock failed: {problem}",
                    step(point, "locked")
                ));
            }
            steps.push(step(point, "unlocked"));
        } else {
            steps.push(step(point, "clean"));
        }
    }

    let last = machine.run(&up);
    if last.status.code() != Some(0) {
        let problem = error(&events(&String::from_utf8_lossy(&last.stdout)));
        return Err(format!("the final up failed: {problem}"));
    }
    let (_, summary) = parse(&last);
    let adopted = summary["summary"]["orphans"]["adopted"]
        .as_array()
        .map_or(0, Vec::len);
    let removed = summary["summary"]["orphans"]["removed"]
        .as_array()
        .map_or(0, Vec::len);
    steps.push(format!("final-up(adopted {adopted}, removed {removed})"));
    let again = machine.run(&up);
    let (_, summary) = parse(&again);
    if again.status.code() != Some(0) || summary["summary"]["no_changes"] != Value::Bool(true) {
        return Err(format!(
            "the re-plan is not empty: {}",
            summary["summary"]["changes"]
        ));
    }
    let down = machine.run(&[
        "--output", "json", "cluster", "down", "--region", REGION, "--name", &name, "--yes",
    ]);
    if down.status.code() != Some(0) {
        let problem = error(&events(&String::from_utf8_lossy(&down.stdout)));
        return Err(format!("down failed: {problem}"));
    }
    let left = tagged_for_cluster(&machine.account, REGION, &name).await;
    if !left.is_empty() {
        return Err(format!("down left {} tagged: {left:?}", left.len()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_kills_during_up_then_up_converges_and_down_leaves_nothing() {
    terrace::tls::install_crypto_provider();
    let runs = env_number("CHAOS_RUNS", 1);
    let first = env_number("CHAOS_SEED", 1);
    let kills = env_number("CHAOS_KILLS", 5) as usize;
    let started = Instant::now();
    let mut converged = 0;
    let mut failures = Vec::new();
    for seed in first..first + runs {
        let points = points(seed, kills);
        let began = Instant::now();
        let mut steps = Vec::new();
        let outcome = run(seed, &points, &mut steps).await;
        let planned: Vec<String> = points
            .iter()
            .map(|p| format!("{}@{}", p.kill.name(), p.after))
            .collect();
        let verdict = match &outcome {
            Ok(()) => {
                converged += 1;
                "converged".to_string()
            }
            Err(e) => format!("FAILED: {e}"),
        };
        eprintln!(
            "chaos seed {seed}: kills [{}] → {} | {verdict} ({:.0}s)",
            planned.join(" "),
            steps.join(" "),
            began.elapsed().as_secs_f64()
        );
        if let Err(e) = outcome {
            failures.push(format!("seed {seed}: {e}"));
        }
    }
    eprintln!(
        "{converged}/{runs} converged in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_seed_always_gives_the_same_kill_points() {
    let a: Vec<(Kill, usize)> = points(7, 5).iter().map(|p| (p.kill, p.after)).collect();
    let b: Vec<(Kill, usize)> = points(7, 5).iter().map(|p| (p.kill, p.after)).collect();
    assert_eq!(a, b);
    assert_ne!(
        a,
        points(8, 5)
            .iter()
            .map(|p| (p.kill, p.after))
            .collect::<Vec<_>>()
    );
    assert!(a.iter().all(|(_, after)| (1..=60).contains(after)));
}
