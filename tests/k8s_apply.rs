//! Server-side apply through discovery against the in-memory API: CRDs go
//! first and are awaited until Established, kinds unknown to the API are a
//! clear error, and fields another manager holds are taken over.

mod support;

use std::time::Duration;

use serde_json::json;
use support::kube::{Behaviour, FakeCluster, resource};
use terrace::k8s::{K8sError, parse};
use terrace::wait::Backoff;

const NODEPOOL_AND_ITS_CRD: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: { name: default }
spec: { limits: { cpu: "10" } }
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: nodepools.karpenter.sh }
spec:
  group: karpenter.sh
  names: { kind: NodePool, plural: nodepools, singular: nodepool, listKind: NodePoolList }
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
"#;

fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(2),
        max: Duration::from_millis(10),
        factor: 2.0,
    }
}

#[tokio::test]
async fn a_custom_resource_waits_for_its_crd_even_when_listed_first() {
    let cluster = FakeCluster::running(Behaviour {
        crd_established: Duration::from_millis(150),
        ..Behaviour::default()
    })
    .await;
    let objects = parse("nodepool.yaml", NODEPOOL_AND_ITS_CRD).unwrap();

    let before = cluster
        .kube
        .resolve("karpenter.sh/v1", "NodePool")
        .await
        .unwrap_err();
    assert!(matches!(before, K8sError::UnknownKind { .. }), "{before}");

    cluster
        .kube
        .apply_all(&objects, "default", Duration::from_secs(5), &fast())
        .await
        .expect("CRD first, then the NodePool");
    let pool = cluster
        .dynamic(&resource("karpenter.sh/v1", "NodePool", "nodepools"), None)
        .get("default")
        .await
        .unwrap();
    assert_eq!(pool.data["spec"]["limits"]["cpu"], "10");
}

#[tokio::test]
async fn nothing_that_needs_a_crd_is_applied_before_the_crd_is_established() {
    // No API server simulation: the CRD is stored but never Established.
    let cluster = FakeCluster::new().await;
    let objects = parse("nodepool.yaml", NODEPOOL_AND_ITS_CRD).unwrap();
    let err = cluster
        .kube
        .apply_all(&objects, "default", Duration::from_millis(200), &fast())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "waiting for CustomResourceDefinition nodepools.karpenter.sh to be Established"
        ),
        "{text}"
    );
    assert!(
        text.contains("last seen: no status conditions yet"),
        "{text}"
    );
    let pools = cluster
        .dynamic(&resource("karpenter.sh/v1", "NodePool", "nodepools"), None)
        .list(&Default::default())
        .await
        .unwrap();
    assert!(pools.items.is_empty());
}

#[tokio::test]
async fn a_kind_the_api_does_not_serve_is_a_clear_error() {
    let cluster = FakeCluster::new().await;
    let objects = parse("nodepool.yaml", NODEPOOL_AND_ITS_CRD).unwrap();
    let err = cluster
        .kube
        .apply(&objects[0], "default")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the API server serves no NodePool in karpenter.sh/v1 (is its CustomResourceDefinition installed?)"
    );
}

#[tokio::test]
async fn apply_takes_over_fields_from_another_manager() {
    let cluster = FakeCluster::new().await;
    let configmaps = cluster.dynamic(&resource("v1", "ConfigMap", "configmaps"), Some("argocd"));
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": "argocd"},
                        "data": {"url": "https://someone-else"}});
    configmaps
        .patch(
            "argocd-cm",
            &kube::api::PatchParams::apply("kubectl"),
            &kube::api::Patch::Apply(&theirs),
        )
        .await
        .unwrap();

    let ours = parse(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: argocd-cm }\ndata: { url: https://terrace }\n",
    )
    .unwrap();
    cluster
        .kube
        .apply(&ours[0], "argocd")
        .await
        .expect("force takes over");
    let cm = configmaps.get("argocd-cm").await.unwrap();
    assert_eq!(cm.data["data"]["url"], "https://terrace");
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"terrace".to_string()), "{managers:?}");
}
