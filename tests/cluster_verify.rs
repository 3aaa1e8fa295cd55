//! `up`'s verify phase against the in-memory API with simulated
//! controllers: it waits under one deadline, and when that passes it names
//! every node, addon and object that is not ready.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::kube::{Behaviour, FakeCluster, default_stack, fast_options};
use terrace::addons::install::install;
use terrace::cluster::ClusterError;
use terrace::cluster::verify::{Expected, verify};
use terrace::progress::Discard;

/// A node of the system node group, Ready or not.
fn node(name: &str, group: &str, ready: bool) -> Node {
    let condition = if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime network not ready"})
    };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"eks.amazonaws.com/nodegroup": group}},
        "status": {"conditions": [condition]},
    }))
    .unwrap()
}

/// A cluster with the whole stack installed and healthy.
async fn installed() -> (FakeCluster, Expected) {
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    install(
        &cluster.kube,
        &tree,
        &spec,
        &fast_options(cache.path()),
        &Discard,
    )
    .await
    .expect("install succeeds");
    let expected = Expected::of(&spec, &tree).unwrap();
    (cluster, expected)
}

fn fast() -> terrace::wait::Backoff {
    fast_options(std::path::Path::new("/nonexistent")).backoff
}

#[tokio::test]
async fn one_of_two_system_nodes_not_ready_fails_at_the_deadline_naming_it() {
    let (cluster, expected) = installed().await;
    assert_eq!(expected.nodes, 2, "the default node group wants two nodes");
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let group = expected.node_group.clone();
    for (name, ready) in [("ip-10-0-1-10", true), ("ip-10-0-2-20", false)] {
        nodes
            .create(&PostParams::default(), &node(name, &group, ready))
            .await
            .unwrap();
    }
    // A node of another group (Karpenter's) does not count.
    nodes
        .create(&PostParams::default(), &node("ip-10-0-3-30", "other", true))
        .await
        .unwrap();

    let deadline = Duration::from_millis(600);
    let begun = Instant::now();
    let err = verify(&cluster.kube, &expected, deadline, &fast(), &Discard)
        .await
        .unwrap_err();
    assert!(begun.elapsed() >= deadline, "it waited for the deadline");
    let ClusterError::NotReady { problems, .. } = &err else {
        panic!("expected NotReady, got {err:?}");
    };
    assert_eq!(
        problems,
        &[
            "node ip-10-0-2-20: Ready=False (container runtime network not ready)".to_string(),
            format!("system node group {group}: 1 of 2 nodes Ready"),
        ],
        "{err}"
    );

    // The node comes up while verify waits: it passes.
    let waiting = tokio::spawn({
        let kube = cluster.kube.clone();
        let expected = expected.clone();
        async move { verify(&kube, &expected, Duration::from_secs(10), &fast(), &Discard).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    nodes
        .patch_status(
            "ip-10-0-2-20",
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    waiting
        .await
        .unwrap()
        .expect("verify passes once both nodes are Ready");
}

#[tokio::test]
async fn missing_nodes_an_unhealthy_addon_and_a_wrong_version_are_named() {
    let (cluster, mut expected) = installed().await;
    // Pinned to another version than the one installed.
    let reloader = expected
        .addons
        .iter_mut()
        .find(|(name, _)| name == "reloader")
        .unwrap();
    reloader.1 = Some("0.0.1".into());
    let err = verify(
        &cluster.kube,
        &expected,
        Duration::from_millis(300),
        &fast(),
        &Discard,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("addon reloader: at chart version"), "{text}");
    assert!(text.contains("pinned 0.0.1"), "{text}");
    assert!(
        text.contains(&format!(
            "system node group {}: 0 of 2 nodes Ready",
            expected.node_group
        )),
        "{text}"
    );
    assert!(
        !text.contains("NodePool"),
        "Karpenter's objects are Ready: {text}"
    );
}
