//! The operator-stack install against the in-memory API and simulated
//! controllers: success, a Degraded addon, timeouts, and an idempotent re-run.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::kube::{
    AppOutcome, Behaviour, FakeCluster, application_resource, default_stack, fast_options, resource,
};
use terrace::addons::install::{InstallError, install};
use terrace::addons::{Catalog, health};
use terrace::progress::Collect;

const HELM_ADDONS: [&str; 5] = [
    "aws-load-balancer-controller",
    "external-dns",
    "external-secrets",
    "karpenter",
    "reloader",
];

#[tokio::test]
async fn installs_the_whole_stack() {
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let events = Collect::default();
    let report = install(
        &cluster.kube,
        &tree,
        &spec,
        &fast_options(cache.path()),
        &events,
    )
    .await
    .expect("install succeeds");

    let mut names: Vec<&str> = report.addons.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    assert_eq!(names, HELM_ADDONS);
    assert_eq!(report.bootstrap.version, "v3.5.1");
    let karpenter = report
        .addons
        .iter()
        .find(|a| a.name == "karpenter")
        .unwrap();
    assert_eq!(
        karpenter.extras,
        ["EC2NodeClass default", "NodePool default"]
    );
    let eso = report
        .addons
        .iter()
        .find(|a| a.name == "external-secrets")
        .unwrap();
    assert_eq!(eso.extras.len(), 2);
    // The apps' IngressClass and its parameters, once the chart's CRD is
    // Established; neither has a status, so applied is ready.
    let lbc = report
        .addons
        .iter()
        .find(|a| a.name == "aws-load-balancer-controller")
        .unwrap();
    assert_eq!(lbc.extras, ["IngressClassParams alb", "IngressClass alb"]);

    // external-dns waits for the load balancer controller.
    let alb = report
        .addons
        .iter()
        .find(|a| a.name == "aws-load-balancer-controller")
        .unwrap();
    let dns = report
        .addons
        .iter()
        .find(|a| a.name == "external-dns")
        .unwrap();
    assert!(dns.healthy_after_secs > alb.healthy_after_secs);

    // The namespace was applied (the fake cannot store Namespaces; the test layer does).
    let namespaces = cluster.namespaces();
    assert_eq!(
        namespaces["argocd"]["metadata"]["managedFields"][0]["manager"],
        "terrace"
    );

    // Argo CD runs on the tainted system nodes.
    let server = cluster
        .dynamic(
            &resource("apps/v1", "Deployment", "deployments"),
            Some("argocd"),
        )
        .get("argocd-server")
        .await
        .unwrap();
    assert_eq!(
        server.data["spec"]["template"]["spec"]["tolerations"][0]["key"],
        "CriticalAddonsOnly"
    );
    assert_eq!(
        server.data["spec"]["template"]["spec"]["nodeSelector"]["terrace.dev/pool"],
        "system"
    );

    let text: Vec<String> = events.events().iter().map(|e| e.message.clone()).collect();
    for addon in HELM_ADDONS {
        assert!(
            text.iter()
                .any(|m| m.starts_with(&format!("{addon}: Synced and Healthy"))),
            "{addon}: {text:#?}"
        );
    }
    assert!(events.events().iter().all(|e| e.phase == "addons"));

    // The live line's count: how many are healthy, what the rest show.
    let counts: Vec<(u64, String)> = events
        .events()
        .iter()
        .filter(|e| e.passing && e.fields.contains_key("done"))
        .map(|e| (e.fields["done"].as_u64().unwrap(), e.message.clone()))
        .collect();
    assert_eq!(
        counts.first().map(|(_, m)| m.as_str()),
        Some("0/6 addons healthy, waiting for argocd: rolling out"),
        "{counts:#?}"
    );
    assert_eq!(
        counts.last().map(|(_, m)| m.as_str()),
        Some("6/6 addons healthy"),
        "{counts:#?}"
    );
    assert!(
        counts.iter().any(|(done, m)| (1..6).contains(done)
            && m.starts_with(&format!("{done}/6 addons healthy, waiting for "))
            && m.contains("external-dns: ")),
        "external-dns is named while awaited: {counts:#?}"
    );
    assert!(
        counts
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 != w[1].1),
        "the count only grows and never repeats itself: {counts:#?}"
    );

    let status = health::status(
        &cluster.kube,
        Catalog::embedded().unwrap().gitops(),
        &HELM_ADDONS,
    )
    .await
    .unwrap();
    assert_eq!(status.len(), 6);
    assert!(status.iter().all(|s| s.healthy), "{status:#?}");
    assert_eq!(status[0].name, "argocd");
    assert_eq!(status[0].version, "v3.5.1");
    let karpenter = status.iter().find(|s| s.name == "karpenter").unwrap();
    assert_eq!(
        (karpenter.sync.as_str(), karpenter.health.as_str()),
        ("Synced", "Healthy")
    );
    assert_eq!(karpenter.version, spec_version("karpenter"));
}

fn spec_version(addon: &str) -> String {
    terrace::addons::Catalog::embedded()
        .unwrap()
        .get(addon)
        .unwrap()
        .version()
        .to_string()
}

#[tokio::test]
async fn a_degraded_addon_is_named_and_its_dependents_are_not_installed() {
    let mut behaviour = Behaviour::default();
    behaviour.apps.insert(
        "aws-load-balancer-controller".into(),
        AppOutcome::Degraded(
            Duration::from_millis(50),
            "Deployment aws-load-balancer-controller: CrashLoopBackOff".into(),
        ),
    );
    let cluster = FakeCluster::running(behaviour).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let err = install(
        &cluster.kube,
        &tree,
        &spec,
        &fast_options(cache.path()),
        &Collect::default(),
    )
    .await
    .unwrap_err();
    let InstallError::Addons(failures) = &err else {
        panic!("expected addon failures, got {err}");
    };
    let text = err.to_string();
    // Every other chart comes after the LB controller (its Service webhook
    // rejects new Services until it is Ready), so none of them is applied.
    let after = ["external-dns", "external-secrets", "karpenter", "reloader"];
    assert_eq!(failures.len(), 1 + after.len(), "{text}");
    assert!(text.contains("addon aws-load-balancer-controller: while waiting for Application argocd/aws-load-balancer-controller to be Synced and Healthy: sync=Synced health=Degraded"), "{text}");
    assert!(text.contains("health=Degraded"), "{text}");
    assert!(text.contains("CrashLoopBackOff"), "{text}");
    let apps = cluster.dynamic(&application_resource(), Some("argocd"));
    for addon in after {
        assert!(
            text.contains(&format!(
                "addon {addon}: not installed because aws-load-balancer-controller did not become healthy"
            )),
            "{text}"
        );
        assert!(apps.get_opt(addon).await.unwrap().is_none(), "{addon}");
    }

    let status = health::status(
        &cluster.kube,
        Catalog::embedded().unwrap().gitops(),
        &HELM_ADDONS,
    )
    .await
    .unwrap();
    let unhealthy: Vec<&str> = status
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        unhealthy,
        [
            "aws-load-balancer-controller",
            "external-dns",
            "external-secrets",
            "karpenter",
            "reloader"
        ]
    );
    let missing = status.iter().find(|s| s.name == "external-dns").unwrap();
    assert_eq!(missing.health, "Missing");
}

#[tokio::test]
async fn a_stuck_application_times_out_naming_it_and_its_last_status() {
    let mut behaviour = Behaviour::default();
    behaviour.apps.insert(
        "reloader".into(),
        AppOutcome::Stuck("failed calling webhook: no endpoints available".into()),
    );
    let cluster = FakeCluster::running(behaviour).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let mut options = fast_options(cache.path());
    options.timeouts.addon = Duration::from_millis(400);
    let started = std::time::Instant::now();
    let err = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("addon reloader: timed out after"),
        "{text}"
    );
    assert!(
        text.contains("waiting for Application argocd/reloader to be Synced and Healthy"),
        "{text}"
    );
    assert!(text.contains("sync=OutOfSync health=Progressing"), "{text}");
    assert!(
        text.contains("condition SyncError: failed calling webhook: no endpoints available"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the deadline bounds the wait"
    );
}

#[tokio::test]
async fn an_extra_that_never_gets_ready_times_out_with_its_conditions() {
    let mut behaviour = Behaviour::default();
    behaviour.never_ready.insert(
        "NodePool".into(),
        "EC2NodeClass default has no resolved subnets".into(),
    );
    let cluster = FakeCluster::running(behaviour).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let mut options = fast_options(cache.path());
    options.timeouts.ready = Duration::from_millis(300);
    let err = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("addon karpenter: timed out after"), "{text}");
    assert!(
        text.contains("waiting for NodePool default to be Ready"),
        "{text}"
    );
    assert!(
        text.contains("Ready=False (NotReady: EC2NodeClass default has no resolved subnets)"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "only karpenter failed: {text}");
}

/// Everything Terrace applied, without what the fake changes on every
/// write (it bumps resourceVersion and generation even for a no-op apply)
/// and without status, which controllers own.
async fn snapshot(cluster: &FakeCluster) -> Vec<Value> {
    let kinds = [
        resource(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        ),
        resource("apps/v1", "Deployment", "deployments"),
        resource("apps/v1", "StatefulSet", "statefulsets"),
        resource("v1", "ConfigMap", "configmaps"),
        resource("v1", "ServiceAccount", "serviceaccounts"),
        application_resource(),
        resource("karpenter.sh/v1", "NodePool", "nodepools"),
        resource("karpenter.k8s.aws/v1", "EC2NodeClass", "ec2nodeclasses"),
        resource(
            "external-secrets.io/v1",
            "ClusterSecretStore",
            "clustersecretstores",
        ),
    ];
    let mut objects = Vec::new();
    for kind in kinds {
        for object in cluster
            .dynamic(&kind, None)
            .list(&Default::default())
            .await
            .unwrap()
        {
            let mut value = serde_json::to_value(&object).unwrap();
            value.as_object_mut().unwrap().remove("status");
            let meta = value["metadata"].as_object_mut().unwrap();
            for volatile in ["resourceVersion", "generation", "managedFields"] {
                meta.remove(volatile);
            }
            objects.push(value);
        }
    }
    objects
}

#[tokio::test]
async fn a_second_run_changes_nothing_and_keeps_terrace_as_field_manager() {
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let (spec, tree) = default_stack();
    let cache = tempfile::tempdir().unwrap();
    let options = fast_options(cache.path());
    install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .expect("first run");
    let before = snapshot(&cluster).await;
    assert!(before.len() > 15, "{}", before.len());

    let second = install(&cluster.kube, &tree, &spec, &options, &Collect::default())
        .await
        .expect("second run");
    assert!(second.bootstrap.from_cache);
    let after = snapshot(&cluster).await;
    assert_eq!(after.len(), before.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a, b, "a re-run changes no object");
    }

    // Every object Terrace applied is managed by `terrace` and nothing else applies to it.
    let apps = cluster.dynamic(&application_resource(), Some("argocd"));
    for app in apps.list(&Default::default()).await.unwrap() {
        let managers: Vec<(String, String)> = app
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                (
                    m.manager.unwrap_or_default(),
                    m.operation.unwrap_or_default(),
                )
            })
            .filter(|(_, op)| op == "Apply")
            .collect();
        assert_eq!(
            managers,
            [("terrace".to_string(), "Apply".to_string())],
            "{:?}",
            app.metadata.name
        );
    }
}
