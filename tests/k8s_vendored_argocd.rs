//! The real Argo CD release manifest (`$TERRACE_SHARED/vendor`, default
//! `../shared/vendor`): its SHA-256 matches the pin in addons/argocd, and
//! the whole 1.9 MB of it parses, is patched and applies (large CRDs
//! included) with its workloads rolled out. A missing file fails the test,
//! so a broken checkout or `TERRACE_SHARED` cannot pass silently; where the
//! shared directory is known to be absent, `TERRACE_SKIP_VENDORED=1` skips
//! it, saying so.

mod support;

use std::time::Duration;

use support::kube::{Behaviour, FakeCluster};
use terrace::addons::{Catalog, argocd, release};
use terrace::wait::Backoff;

#[tokio::test]
async fn the_vendored_release_matches_the_pin_and_applies() {
    let Some((path, bytes)) = support::vendored::argocd_manifest() else {
        return;
    };
    let pinned = Catalog::embedded()
        .unwrap()
        .get("argocd")
        .unwrap()
        .manifest
        .clone()
        .unwrap();
    assert_eq!(
        release::sha256_hex(&bytes),
        pinned.sha256,
        "{}",
        path.display()
    );
    assert!(path.ends_with(format!("argocd-{}-install.yaml", pinned.version)));

    let text = String::from_utf8(bytes).unwrap();
    let objects = argocd::prepare(&text, &path.display().to_string(), "argocd", &[]).unwrap();
    let count = |kind: &str| objects.iter().filter(|o| o.kind == kind).count();
    assert_eq!(count("CustomResourceDefinition"), 3);
    assert_eq!(count("Deployment"), 6);
    assert_eq!(count("StatefulSet"), 1);
    assert_eq!(count("Namespace"), 1);
    for workload in objects
        .iter()
        .filter(|o| o.kind == "Deployment" || o.kind == "StatefulSet")
    {
        let pod = &workload.value["spec"]["template"]["spec"];
        assert!(
            pod["tolerations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == "CriticalAddonsOnly"),
            "{}",
            workload.describe()
        );
        assert_eq!(
            pod["nodeSelector"]["terrace.dev/pool"],
            "system",
            "{}",
            workload.describe()
        );
    }

    let cluster = FakeCluster::running(Behaviour::default()).await;
    let backoff = Backoff {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
        factor: 2.0,
    };
    cluster
        .kube
        .apply_all(&objects, "argocd", Duration::from_secs(30), &backoff)
        .await
        .expect("the real manifest applies");
    let workloads = argocd::rollout(
        &cluster.kube,
        &objects,
        "argocd",
        Duration::from_secs(30),
        &backoff,
    )
    .await
    .expect("its workloads roll out");
    assert_eq!(workloads, 7);
}
