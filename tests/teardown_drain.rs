//! The drain against kube-fake-client (with Argo CD, Load Balancer
//! Controller and Karpenter custom resources registered) and moto for the
//! load balancers and instances the controllers would remove.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube_fake_client::{ClientBuilder, interceptor};
use serde_json::{Value, json};
use support::kube::{Application, EC2NodeClass, NodeClaim, NodePool, TargetGroupBinding};
use support::leftovers::{Seeder, spec};
use support::moto;
use terrace::aws::Aws;
use terrace::progress::Collect;
use terrace::teardown::{DrainError, DrainOptions, drain};

const REGION: &str = "us-east-1";
const CLUSTER: &str = "tc-drain";

fn objects() -> Vec<Value> {
    let meta = |name: &str, ns: Option<&str>| match ns {
        Some(ns) => json!({ "name": name, "namespace": ns }),
        None => json!({ "name": name }),
    };
    vec![
        json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta("web", Some("argocd")),
                "spec": { "project": "default", "syncPolicy": { "automated": { "prune": true, "selfHeal": true },
                          "syncOptions": ["ServerSideApply=true"] } } }),
        json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta("manual", Some("argocd")),
                "spec": { "project": "default" } }),
        json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("web", Some("default")),
                "spec": { "ingressClassName": "alb" } }),
        json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("docs", Some("team")),
                "spec": { "ingressClassName": "nginx" } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": meta("web-lb", Some("default")),
                "spec": { "type": "LoadBalancer", "ports": [{ "port": 80 }] } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": meta("internal", Some("default")),
                "spec": { "type": "ClusterIP", "ports": [{ "port": 80 }] } }),
        json!({ "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "TargetGroupBinding", "metadata": meta("tgb", Some("default")),
                "spec": { "targetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y" } }),
        json!({ "apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta("pv-ebs", None),
                "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteOnce"],
                          "csi": { "driver": "ebs.csi.aws.com", "volumeHandle": "vol-1" } } }),
        json!({ "apiVersion": "v1", "kind": "PersistentVolume", "metadata": meta("pv-nfs", None),
                "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteMany"],
                          "nfs": { "server": "nfs.local", "path": "/data" } } }),
        json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data", Some("default")),
                "spec": { "volumeName": "pv-ebs", "accessModes": ["ReadWriteOnce"] } }),
        json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("shared", Some("default")),
                "spec": { "volumeName": "pv-nfs", "accessModes": ["ReadWriteMany"] } }),
        json!({ "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": meta("default", None), "spec": {} }),
        json!({ "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "metadata": meta("default-x7k2p", None), "spec": {} }),
        json!({ "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": meta("default", None), "spec": {} }),
    ]
}

/// A fake API server with every resource the drain touches, recording
/// patches and deletes in order.
async fn fake_cluster(ops: Arc<Mutex<Vec<String>>>) -> kube::Client {
    let (patches, deletes) = (ops.clone(), ops);
    ClientBuilder::new()
        .with_resource::<Application>()
        .with_resource::<NodePool>()
        .with_resource::<NodeClaim>()
        .with_resource::<EC2NodeClass>()
        .with_resource::<TargetGroupBinding>()
        .with_runtime_objects(objects())
        .with_interceptor_funcs(
            interceptor::Funcs::new()
                .patch(move |ctx| {
                    patches.lock().unwrap().push(format!("patch {}", ctx.name));
                    Ok(None)
                })
                .delete(move |ctx| {
                    deletes.lock().unwrap().push(format!("delete {}", ctx.name));
                    Ok(None)
                }),
        )
        .build()
        .await
        .unwrap()
}

fn dynamic(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
    )
}

/// What the controllers do in a real cluster, played against the fake
/// API and moto: the LB controller removes its load balancer once the
/// Service is gone, Karpenter removes NodeClaims and terminates their
/// instances once the NodePool is gone, the CSI driver deletes the PV of a
/// deleted claim.
async fn controllers(client: kube::Client, seeder: Arc<Seeder>, lb: String, instance: String) {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pools = dynamic(&client, "karpenter.sh", "v1", "NodePool", "nodepools");
    let nodeclaims = dynamic(&client, "karpenter.sh", "v1", "NodeClaim", "nodeclaims");
    let (mut lb_gone, mut nodes_gone, mut pv_gone) = (false, false, false);
    loop {
        if !lb_gone && services.get_opt("web-lb").await.unwrap().is_none() {
            seeder
                .elbv2
                .delete_load_balancer()
                .load_balancer_arn(&lb)
                .send()
                .await
                .unwrap();
            lb_gone = true;
        }
        if !nodes_gone
            && pools
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        {
            // The fake client files custom resources under a namespace even
            // when they are cluster-scoped; delete where it filed them.
            for claim in nodeclaims.list(&ListParams::default()).await.unwrap().items {
                let ns = claim.metadata.namespace.clone().unwrap_or_default();
                let api: Api<DynamicObject> = Api::namespaced_with(
                    client.clone(),
                    &ns,
                    &ApiResource::from_gvk_with_plural(
                        &GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim"),
                        "nodeclaims",
                    ),
                );
                api.delete(&claim.metadata.name.unwrap(), &DeleteParams::default())
                    .await
                    .unwrap();
            }
            seeder
                .ec2
                .terminate_instances()
                .instance_ids(&instance)
                .send()
                .await
                .unwrap();
            nodes_gone = true;
        }
        if !pv_gone && claims.get_opt("data").await.unwrap().is_none() {
            volumes
                .delete("pv-ebs", &DeleteParams::default())
                .await
                .unwrap();
            pv_gone = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn drain_pauses_argo_then_lets_the_controllers_clean_up() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let seeder = Arc::new(Seeder::new(&account, REGION).await);
    let lb = seeder
        .load_balancer("k8s-default-weblb", &[("elbv2.k8s.aws/cluster", CLUSTER)])
        .await;
    let instance = seeder
        .instance(&[
            ("karpenter.sh/nodepool", "default"),
            ("eks:eks-cluster-name", CLUSTER),
        ])
        .await;
    let ops = Arc::new(Mutex::new(Vec::new()));
    let client = fake_cluster(ops.clone()).await;
    let simulated = tokio::spawn(controllers(client.clone(), seeder.clone(), lb, instance));

    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, CLUSTER, &[CLUSTER]);
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let events = Collect::default();
    let opts = DrainOptions {
        keep_volumes: false,
        deadline: Duration::from_secs(30),
    };
    let report = drain(client.clone(), &spec, &opts, &aws, &events)
        .await
        .unwrap();
    simulated.abort();

    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(
        report.waits.iter().all(|w| w.completed),
        "{:?}",
        report.waits
    );
    assert_eq!(report.paused.len(), 1);
    assert_eq!(report.paused[0].name, "web");

    let ops = ops.lock().unwrap().clone();
    assert_eq!(
        ops.first().map(String::as_str),
        Some("patch web"),
        "{ops:?}"
    );
    let deleted: Vec<(String, String)> = report
        .deleted
        .iter()
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect();
    for expected in [
        ("Ingress", "web"),
        ("Ingress", "docs"),
        ("Service", "web-lb"),
        ("TargetGroupBinding", "tgb"),
        ("PersistentVolumeClaim", "data"),
        ("NodePool", "default"),
        ("EC2NodeClass", "default"),
    ] {
        assert!(
            deleted.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {deleted:?}"
        );
    }
    assert_eq!(deleted.len(), 7, "{deleted:?}");

    let apps = dynamic(
        &client,
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
    );
    let web = apps.list(&ListParams::default()).await.unwrap();
    for app in web.items {
        assert!(
            app.data.pointer("/spec/syncPolicy/automated").is_none(),
            "{app:?}"
        );
        assert!(app.data.pointer("/spec/project").is_some());
    }
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    assert!(services.get_opt("internal").await.unwrap().is_some());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    assert!(
        claims.get_opt("shared").await.unwrap().is_some(),
        "a non-EBS claim was deleted"
    );
    let ingresses: Api<Ingress> = Api::all(client.clone());
    assert!(
        ingresses
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn keep_volumes_leaves_claims_and_a_stuck_load_balancer_is_a_bounded_warning() {
    terrace::tls::install_crypto_provider();
    let account = moto::account().await;
    let seeder = Seeder::new(&account, REGION).await;
    let lb = seeder
        .load_balancer("k8s-default-stuck", &[("elbv2.k8s.aws/cluster", CLUSTER)])
        .await;
    // Another cluster's load balancer is none of this drain's business.
    seeder
        .load_balancer("k8s-other", &[("elbv2.k8s.aws/cluster", "tc-other")])
        .await;
    let client = fake_cluster(Arc::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, CLUSTER, &[CLUSTER]);
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let opts = DrainOptions {
        keep_volumes: true,
        deadline: Duration::from_secs(2),
    };
    let started = Instant::now();
    let events = Collect::default();
    let report = drain(client.clone(), &spec, &opts, &aws, &events)
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let lb_wait = &report.waits[0];
    assert_eq!(lb_wait.what, "load balancers");
    assert!(!lb_wait.completed);
    assert_eq!(lb_wait.remaining, vec![lb]);
    // The live line says what the wait is for and how many are left.
    let waiting = events
        .events()
        .into_iter()
        .find(|e| {
            e.fields
                .get("waiting")
                .is_some_and(|w| w == "load balancers")
        })
        .expect("a waiting event for the load balancers");
    assert!(waiting.passing);
    assert_eq!(waiting.message, "waiting for load balancers: 1 left");
    assert_eq!(waiting.fields["remaining"], 1);
    assert!(
        report.warnings.iter().any(|w| w.contains("load balancers")),
        "{:?}",
        report.warnings
    );
    // NodeClaims never go here (no Karpenter): a second bounded warning.
    assert!(
        report
            .waits
            .iter()
            .any(|w| w.what == "NodeClaims" && !w.completed)
    );
    assert!(
        !report
            .deleted
            .iter()
            .any(|o| o.kind == "PersistentVolumeClaim"),
        "{:?}",
        report.deleted
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    assert!(claims.get_opt("data").await.unwrap().is_some());
}

#[tokio::test]
async fn an_api_that_does_not_answer_is_a_distinct_error_at_once() {
    terrace::tls::install_crypto_provider();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The listener is dropped: nothing listens on that port any more.
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, CLUSTER, &[CLUSTER]);
    let opts = DrainOptions {
        keep_volumes: false,
        deadline: Duration::from_secs(60),
    };
    let started = Instant::now();
    let result = drain(client, &spec, &opts, &aws, &Collect::default()).await;
    assert!(
        matches!(result, Err(DrainError::Unreachable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_api_that_refuses_us_is_forbidden_not_unreachable() {
    terrace::tls::install_crypto_provider();
    let endpoint = support::kube::refusing_api();
    let config = kube::Config::new(endpoint.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let account = moto::account().await;
    let aws = Aws::from_config(account.sdk_config(REGION).await);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), REGION, CLUSTER, &[CLUSTER]);
    let opts = DrainOptions {
        keep_volumes: false,
        deadline: Duration::from_secs(60),
    };
    let result = drain(client, &spec, &opts, &aws, &Collect::default()).await;
    match result {
        Err(DrainError::Forbidden(message)) => assert!(message.contains("401"), "{message}"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
}
