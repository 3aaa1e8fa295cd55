//! `terrace addons status` end to end: the binary reads a kubeconfig and
//! talks HTTP to the in-memory cluster (installed by the real installer);
//! exit 0 when every addon is healthy, 1 naming the unhealthy ones.

mod support;

use std::process::Command;
use std::time::Duration;

use support::kube::{AppOutcome, Behaviour, FakeCluster, default_stack, fast_options, kubeconfig};
use terrace::addons::install::install;
use terrace::progress::Discard;

async fn installed(behaviour: Behaviour) -> FakeCluster {
    let cluster = FakeCluster::running(behaviour).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let _ = install(
        &cluster.kube,
        &tree,
        &spec,
        &fast_options(cache.path()),
        &Discard,
    )
    .await;
    cluster
}

fn status(kubeconfig: &std::path::Path, json: bool) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_terrace"));
    command
        .args(["addons", "status", "--kubeconfig"])
        .arg(kubeconfig);
    if json {
        command.args(["--output", "json"]);
    }
    command.env_remove("KUBECONFIG").output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_stack_exits_zero() {
    let cluster = installed(Behaviour::default()).await;
    let (endpoint, _server) = cluster.serve_http().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &endpoint);

    let out = tokio::task::spawn_blocking(move || (status(&config, false), status(&config, true)))
        .await
        .unwrap();
    let (text, json) = out;
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{stdout}");
    assert!(
        lines[1].starts_with("argocd")
            && lines[1].contains("v3.5.1")
            && lines[1].contains("Healthy"),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("karpenter") && l.contains("1.14.1") && l.contains("Synced")),
        "{stdout}"
    );
    assert_eq!(lines.len(), 7, "{stdout}");

    assert!(json.status.success());
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["healthy"], true);
    assert_eq!(value["addons"].as_array().unwrap().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_addon_exits_one_and_is_named() {
    let mut behaviour = Behaviour::default();
    behaviour.apps.insert(
        "reloader".into(),
        AppOutcome::Degraded(
            Duration::from_millis(20),
            "Deployment reloader: ImagePullBackOff".into(),
        ),
    );
    let cluster = installed(behaviour).await;
    let (endpoint, _server) = cluster.serve_http().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &endpoint);

    let out = tokio::task::spawn_blocking(move || status(&config, false))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("reloader")
            && l.contains("Degraded")
            && l.contains("ImagePullBackOff")),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: not healthy: reloader"
    );
}

#[test]
fn an_unreachable_cluster_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), "http://127.0.0.1:9");
    let out = status(&config, false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:9") || stderr.contains("onnect"),
        "{stderr}"
    );
}
