//! `terrace drill` end to end: the real binary, real Terraform and provider
//! against moto behind the EKS shim, built to the addon boundary
//! (`--stop-after outputs`), with each cluster's API played by an
//! in-memory cluster whose simulated Argo CD runs the platform's
//! Applications. The shim answers DescribeCluster with that API's
//! endpoint; when the drill's teardown has removed the EKS cluster, the
//! test stands up the next in-memory cluster (the API of the cluster the
//! recovery builds) and points the endpoint at it.
//!
//! One cluster is built once and drilled twice: a failing drill (one
//! Application never healthy again, a 1-second RTO), then a passing one;
//! `drill history` then lists both from the state bucket.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::kube::{AppOutcome, Behaviour, FakeCluster};
use support::machine::{CLUSTER, Machine, REGION, parse, show};
use support::moto::Account;

const REPO: &str = "https://github.com/acme/platform.git";
const APPS: &[&str] = &["web", "payments", "search"];

/// An in-memory cluster serving its API over HTTP, running the platform's
/// Applications (plus `legacy`, Degraded all along) as `behaviour` says.
async fn api(behaviour: Behaviour) -> (FakeCluster, String, tokio::task::JoinHandle<()>) {
    let mut behaviour = behaviour;
    behaviour.apps.insert(
        "legacy".into(),
        AppOutcome::Degraded(Duration::ZERO, "ImagePullBackOff".into()),
    );
    let cluster = FakeCluster::running(behaviour).await;
    for app in APPS.iter().chain(&["legacy"]) {
        cluster
            .add_application("argocd", app, REPO, &format!("apps/{app}"), "main")
            .await;
    }
    let (endpoint, server) = cluster.serve_http().await;
    (cluster, endpoint, server)
}

async fn cluster_exists(account: &Account) -> bool {
    let eks = aws_sdk_eks::Client::new(&account.sdk_config(REGION).await);
    eks.describe_cluster().name(CLUSTER).send().await.is_ok()
}

/// Runs `args` while a watcher waits for the EKS cluster to go, then
/// serves the recovered cluster's API (`next`) in its place.
async fn drill_with_next(
    machine: &Machine,
    args: Vec<String>,
    next: Behaviour,
) -> (
    std::process::Output,
    (FakeCluster, tokio::task::JoinHandle<()>),
) {
    let account = machine.account.clone();
    let watcher = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1200);
        while cluster_exists(&account).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cluster never went"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (cluster, endpoint, server) = api(next).await;
        account.set_cluster_endpoint(CLUSTER, &endpoint).await;
        (cluster, server)
    });
    let command = machine.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let output = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        watcher.is_finished(),
        "the drill never removed the cluster: {}",
        show(&output)
    );
    (output, watcher.await.unwrap())
}

fn phases(report: &Value) -> Vec<(String, String)> {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p["end"].as_f64() >= p["start"].as_f64(), "{p}");
            (
                p["name"].as_str().unwrap().to_string(),
                p["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == ext));
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_fails_naming_what_did_not_come_back_then_passes_and_history_lists_both() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let build = machine.run(&[
        "--output",
        "json",
        "cluster",
        "up",
        "--region",
        REGION,
        "--yes",
        "--stop-after",
        "outputs",
    ]);
    assert_eq!(build.status.code(), Some(0), "{}", show(&build));
    let (_first, endpoint, _first_server) = api(Behaviour::default()).await;
    machine
        .account
        .set_cluster_endpoint(CLUSTER, &endpoint)
        .await;
    let reports = machine.dir.path().join("reports");
    let drill = |rto: &str| -> Vec<String> {
        [
            "--output",
            "json",
            "drill",
            "--region",
            REGION,
            "--yes",
            "--stop-after",
            "outputs",
            "--rto",
            rto,
            "--report-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([reports.display().to_string()])
        .collect()
    };

    // The recovered cluster's `payments` never becomes healthy, and the
    // target is a second: the drill fails, naming it, with the figure.
    let mut stuck = Behaviour::default();
    stuck.apps.insert(
        "payments".into(),
        AppOutcome::Stuck("secret payments/db not found".into()),
    );
    let (failed, _second) = drill_with_next(&machine, drill("1s"), stuck).await;
    assert_eq!(failed.status.code(), Some(1), "{}", show(&failed));
    let (events, summary) = parse(&failed);
    assert_eq!(summary["command"], "drill");
    assert_eq!(summary["ok"], false);
    let report = &summary["summary"]["report"];
    assert_eq!(
        phases(report),
        [
            ("baseline".into(), "done".into()),
            ("disaster".into(), "done".into()),
            ("recovery".into(), "done".into()),
            ("applications".into(), "failed".into()),
        ]
    );
    let baseline: Vec<&str> = report["baseline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(baseline, ["legacy", "payments", "search", "web"]);
    assert_eq!(report["not_back"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["not_back"][0]["application"], "argocd/payments");
    assert!(
        report["not_back"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("secret payments/db not found"),
        "{report}"
    );
    let rto = &report["rto"];
    assert_eq!(rto["recovered"], false);
    assert_eq!(rto["target_seconds"], 1.0);
    let measured = rto["measured_seconds"].as_f64().unwrap();
    let up_seconds = summary["summary"]["up"]["seconds"].as_f64().unwrap();
    assert!(measured >= up_seconds, "{measured} < {up_seconds}");
    assert!(
        report["milestones"]["control_plane"].as_f64().is_some(),
        "{report}"
    );
    assert!(report["milestones"]["nodes"].as_f64().is_some(), "{report}");
    assert!(
        report["milestones"]["addons"].is_null(),
        "stopped after outputs"
    );
    let error = support::machine::error(&events);
    assert!(
        error.contains("argocd/payments did not come back")
            && error.contains("secret payments/db not found"),
        "{error}"
    );
    assert!(error.contains("(target 1s)"), "{error}");
    assert_eq!(
        summary["summary"]["down"]["leaks"]["leaks"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "the disaster left nothing of the old cluster"
    );
    let md = files(&reports, "md");
    assert_eq!(md.len(), 1, "{md:?}");
    let text = std::fs::read_to_string(&md[0]).unwrap();
    assert!(text.contains("**FAILED**"), "{text}");
    assert!(
        text.contains("| argocd/payments | Synced / Healthy |"),
        "{text}"
    );
    assert_eq!(files(&reports, "svg").len(), 1);
    assert!(
        summary["kept"]["stored"]
            .as_str()
            .unwrap()
            .contains("/drills/terrace-us-east-1/drill-terrace-us-east-1-"),
        "{summary}"
    );

    // Drilled again: the baseline now has `payments` stuck, so it is not
    // required; everything that was healthy comes back well within 30m.
    let (passed, _third) = drill_with_next(&machine, drill("30m"), Behaviour::default()).await;
    assert_eq!(passed.status.code(), Some(0), "{}", show(&passed));
    let (_, summary) = parse(&passed);
    assert_eq!(summary["ok"], true, "{summary}");
    let report = &summary["summary"]["report"];
    assert!(phases(report).iter().all(|(_, o)| o == "done"), "{report}");
    assert_eq!(report["rto"]["recovered"], true);
    assert_eq!(report["rto"]["met"], true);
    assert!(report["milestones"]["last_application"].as_f64().is_some());
    assert_eq!(report["not_back"].as_array().unwrap().len(), 0);
    let md = files(&reports, "md");
    assert_eq!(md.len(), 2);
    // The passing report, for whoever reads the test's log (--nocapture).
    println!("{}", std::fs::read_to_string(&md[1]).unwrap());

    let history = machine.run(&["--output", "json", "drill", "history", "--region", REGION]);
    assert_eq!(history.status.code(), Some(0), "{}", show(&history));
    let (_, summary) = parse(&history);
    let rows = summary["summary"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary}");
    assert_eq!(rows[0]["passed"], false);
    assert_eq!(rows[1]["passed"], true);
    assert!(rows[1]["rto_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(summary["summary"]["trend"], "unknown");
    let text = machine.run(&["drill", "history", "--region", REGION]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.starts_with("STARTED"), "{stdout}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_that_cannot_be_read_stops_the_drill_before_anything_is_destroyed() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let ours = support::stack::seed(
        &machine.account,
        REGION,
        CLUSTER,
        &support::stack::tags_for(Some(CLUSTER)),
        true,
        0,
    )
    .await;
    machine
        .account
        .set_cluster_endpoint(CLUSTER, &support::kube::refusing_api())
        .await;
    let output = machine.run(&["--output", "json", "drill", "--region", REGION, "--yes"]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let (events, summary) = parse(&output);
    let report = &summary["summary"]["report"];
    assert_eq!(phases(report), [("baseline".into(), "failed".into())]);
    assert!(summary["summary"]["down"].is_null());
    let error = support::machine::error(&events);
    assert!(error.contains("Unauthorized"), "{error}");
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &ours)
            .await
            .len(),
        ours.ids.len(),
        "nothing was touched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_into_another_region_leaves_the_source_alone_and_builds_that_regions_cluster() {
    terrace::tls::install_crypto_provider();
    let machine = Machine::new(support::moto::account_with_eks_shim().await);
    let ours = support::stack::seed(
        &machine.account,
        REGION,
        CLUSTER,
        &support::stack::tags_for(Some(CLUSTER)),
        true,
        0,
    )
    .await;
    let (_source, endpoint, _source_server) = api(Behaviour::default()).await;
    machine
        .account
        .set_cluster_endpoint(CLUSTER, &endpoint)
        .await;
    let (_target, endpoint, _target_server) = api(Behaviour::default()).await;
    machine
        .account
        .set_cluster_endpoint("terrace-us-west-2", &endpoint)
        .await;

    let output = machine.run(&[
        "--output",
        "json",
        "drill",
        "--region",
        REGION,
        "--to-region",
        "us-west-2",
        "--yes",
        "--stop-after",
        "outputs",
        "--rto",
        "30m",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", show(&output));
    let (_, summary) = parse(&output);
    let report = &summary["summary"]["report"];
    assert_eq!(
        phases(report),
        [
            ("baseline".into(), "done".into()),
            ("disaster".into(), "skipped".into()),
            ("recovery".into(), "done".into()),
            ("applications".into(), "done".into()),
        ]
    );
    assert_eq!(report["recovered_cluster"], "terrace-us-west-2");
    assert_eq!(report["recovered_region"], "us-west-2");
    assert!(summary["summary"]["down"].is_null());
    assert_eq!(
        support::stack::surviving(&machine.account, REGION, &ours)
            .await
            .len(),
        ours.ids.len(),
        "the source region is left alone"
    );
    let eks = aws_sdk_eks::Client::new(&machine.account.sdk_config("us-west-2").await);
    assert!(
        eks.describe_cluster()
            .name("terrace-us-west-2")
            .send()
            .await
            .is_ok(),
        "the recovery built us-west-2's cluster"
    );
}
