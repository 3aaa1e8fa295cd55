//! Argo CD Config Management Plugins end to end against the in-memory API:
//! the real vendored v3.5.1 release manifest, installed through the
//! installer with `addons.argocd.plugins: [{preset: cdk8s, …}]`, carries the
//! sidecar exactly as Argo CD's plugin mechanism requires; a second run
//! changes nothing; removing the plugin removes its sidecar; `addons
//! status` reports the sidecar's readiness; and the patched objects pass
//! `k8s-schema-check`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use support::kube::{Behaviour, FakeCluster, fast_options};
use terrace::addons::install::{InstallOptions, Timeouts, install};
use terrace::addons::release::ManifestSource;
use terrace::addons::{Catalog, argocd, health};
use terrace::config::{ClusterSpec, Plugin, Request};
use terrace::progress::Discard;

const IMAGE: &str =
    "ghcr.io/acme/cdk8s@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn spec(dir: &Path, plugins: Value) -> ClusterSpec {
    let config = dir.join("terrace.yaml");
    let file = json!({
        "clusters": [{ "region": "us-east-1", "addons": { "argocd": { "plugins": plugins } } }],
    });
    std::fs::write(&config, serde_norway::to_string(&file).unwrap()).unwrap();
    terrace::config::load(
        &Request {
            config: Some(config),
            region: "us-east-1".into(),
            name: None,
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .expect("valid spec")
}

fn options(manifest: &Path, cache: &Path) -> InstallOptions {
    let mut options = fast_options(cache);
    options.argocd_manifest = ManifestSource::File(manifest.to_path_buf());
    options.argocd_sha256 = None; // the pinned hash guards the vendored file
    // The real manifest is large: on a loaded machine the simulated
    // controllers take longer than the fixture's 5 s deadlines.
    let s = Duration::from_secs;
    options.timeouts = Timeouts {
        crd: s(30),
        rollout: s(30),
        addon: s(30),
        ready: s(30),
    };
    options
}

async fn run(cluster: &FakeCluster, spec: &ClusterSpec, options: &InstallOptions) {
    let tree = terrace::render::render(spec, &terrace::render::Outputs::placeholders()).unwrap();
    install(&cluster.kube, &tree, spec, options, &Discard)
        .await
        .expect("install succeeds");
}

async fn repo_server(cluster: &FakeCluster) -> Value {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), "argocd");
    serde_json::to_value(api.get(argocd::REPO_SERVER).await.unwrap()).unwrap()
}

fn container<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
}

fn volume<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
}

fn mounts(container: &Value) -> Vec<(String, String, Option<String>)> {
    container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
                m["subPath"].as_str().map(str::to_string),
            )
        })
        .collect()
}

async fn plugin_config(cluster: &FakeCluster) -> Value {
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "argocd");
    let configmap = api.get(argocd::PLUGINS_CONFIGMAP).await.unwrap();
    serde_json::to_value(configmap.data.unwrap_or_default()).unwrap()
}

#[tokio::test]
async fn the_cdk8s_sidecar_is_installed_kept_and_removed() {
    let Some((manifest, _)) = support::vendored::argocd_manifest() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let options = options(&manifest, dir.path());
    let cluster = FakeCluster::running(Behaviour::default()).await;
    let with_plugin = spec(dir.path(), json!([{ "preset": "cdk8s", "image": IMAGE }]));
    run(&cluster, &with_plugin, &options).await;

    let deployment = repo_server(&cluster).await;
    let sidecar = container(&deployment, "cmp-cdk8s").expect("the cdk8s sidecar");
    assert_eq!(sidecar["image"], IMAGE);
    assert_eq!(
        sidecar["command"],
        json!(["/var/run/argocd/argocd-cmp-server"])
    );
    assert_eq!(sidecar["securityContext"]["runAsNonRoot"], true);
    assert_eq!(sidecar["securityContext"]["runAsUser"], 999);
    let s = |x: &str| x.to_string();
    assert_eq!(
        mounts(sidecar),
        [
            (s("var-files"), s("/var/run/argocd"), None),
            (s("plugins"), s("/home/argocd/cmp-server/plugins"), None),
            (
                s("cmp-plugins"),
                s("/home/argocd/cmp-server/config/plugin.yaml"),
                Some(s("cdk8s.yaml"))
            ),
            (s("cmp-tmp"), s("/tmp"), None),
        ]
    );
    // The repo-server keeps its own /tmp; the sidecar's is a separate emptyDir.
    let server = container(&deployment, "argocd-repo-server").unwrap();
    assert!(mounts(server).contains(&(s("tmp"), s("/tmp"), None)));
    assert_eq!(
        volume(&deployment, "cmp-tmp").unwrap()["emptyDir"],
        json!({})
    );
    assert_eq!(
        volume(&deployment, "cmp-plugins").unwrap()["configMap"]["name"],
        argocd::PLUGINS_CONFIGMAP
    );
    assert!(volume(&deployment, "var-files").unwrap()["emptyDir"].is_object());
    // Still on the system nodes, like every Argo CD workload.
    assert_eq!(
        deployment["spec"]["template"]["spec"]["nodeSelector"]["terrace.dev/pool"],
        "system"
    );

    let data = plugin_config(&cluster).await;
    let plugin: Value = serde_norway::from_str(data["cdk8s.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(plugin["kind"], "ConfigManagementPlugin");
    assert_eq!(plugin["metadata"]["name"], "cdk8s");
    assert_eq!(plugin["spec"]["version"], "v1.0");
    assert_eq!(
        plugin["spec"]["generate"]["command"],
        json!(["cdk8s", "synth", "--stdout"])
    );
    assert_eq!(plugin["spec"]["discover"]["fileName"], "cdk8s.yaml");
    assert!(
        plugin["spec"]["init"]["command"][2]
            .as_str()
            .unwrap()
            .starts_with("npm install"),
        "{plugin}"
    );

    // A second run is a no-op: the same spec, labels and configuration (the
    // fake bumps generation and resourceVersion on every apply, so those
    // are not compared).
    run(&cluster, &with_plugin, &options).await;
    let again = repo_server(&cluster).await;
    assert_eq!(again["spec"], deployment["spec"]);
    assert_eq!(
        again["metadata"]["labels"],
        deployment["metadata"]["labels"]
    );
    assert_eq!(plugin_config(&cluster).await, data);

    // Removing the plugin removes its sidecar, its volumes and its config.
    let without = spec(dir.path(), json!([]));
    run(&cluster, &without, &options).await;
    let removed = repo_server(&cluster).await;
    assert!(container(&removed, "cmp-cdk8s").is_none(), "{removed}");
    assert!(volume(&removed, "cmp-tmp").is_none());
    assert!(volume(&removed, "cmp-plugins").is_none());
    assert!(container(&removed, "argocd-repo-server").is_some());
    assert!(volume(&removed, "var-files").is_some());
    let hash = |d: &Value| {
        d["spec"]["template"]["metadata"]["annotations"][argocd::PLUGINS_HASH_ANNOTATION].clone()
    };
    assert!(hash(&removed).is_string());
    assert_ne!(hash(&removed), hash(&deployment), "the pods roll");
    // The ConfigMap is still applied, now without the plugin. (A real API
    // server prunes the key Terrace no longer applies; the fake merges map
    // keys instead, so the key itself is not asserted here.)
    assert!(plugin_config(&cluster).await.is_object());
}

fn repo_server_pod(ready: bool) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "argocd-repo-server-0",
            "namespace": "argocd",
            "labels": { "app.kubernetes.io/name": "argocd-repo-server" },
        },
        "spec": { "containers": [
            { "name": "argocd-repo-server", "image": "quay.io/argoproj/argocd:v3.5.1" },
            { "name": "cmp-cdk8s", "image": IMAGE },
        ] },
        "status": { "containerStatuses": [
            { "name": "argocd-repo-server", "ready": true, "restartCount": 0, "image": "quay.io/argoproj/argocd:v3.5.1", "imageID": "" },
            { "name": "cmp-cdk8s", "ready": ready, "restartCount": 0, "image": IMAGE, "imageID": "" },
        ] },
    }))
    .unwrap()
}

#[tokio::test]
async fn addons_status_reports_each_plugin_sidecar() {
    let Some((manifest, _)) = support::vendored::argocd_manifest() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let options = options(&manifest, dir.path());
    let cluster = FakeCluster::running(Behaviour::default()).await;
    run(
        &cluster,
        &spec(dir.path(), json!([{ "preset": "cdk8s", "image": IMAGE }])),
        &options,
    )
    .await;
    let catalog = Catalog::embedded().unwrap();
    let statuses = || health::status(&cluster.kube, catalog.gitops(), &[]);
    let plugin_row =
        |rows: &[health::AddonStatus]| rows.iter().find(|r| r.name == "plugin/cdk8s-v1.0").cloned();

    // No repo-server pod reports the sidecar yet.
    let rows = statuses().await.unwrap();
    let row = plugin_row(&rows).expect("a row for the plugin");
    assert!(!row.healthy);
    assert_eq!(row.health, "NotReady");
    assert_eq!(row.version, "sha256:0123456789ab");
    assert!(health::unhealthy(&rows).contains(&"plugin/cdk8s-v1.0"));

    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "argocd");
    pods.create(&PostParams::default(), &repo_server_pod(false))
        .await
        .unwrap();
    let row = plugin_row(&statuses().await.unwrap()).unwrap();
    assert_eq!(row.health, "NotReady");
    pods.delete("argocd-repo-server-0", &DeleteParams::default())
        .await
        .unwrap();
    pods.create(&PostParams::default(), &repo_server_pod(true))
        .await
        .unwrap();
    let row = plugin_row(&statuses().await.unwrap()).unwrap();
    assert_eq!(
        (row.health.as_str(), row.healthy),
        ("Ready", true),
        "{row:?}"
    );

    // Without plugins there is no plugin row.
    run(&cluster, &spec(dir.path(), json!([])), &options).await;
    let rows = statuses().await.unwrap();
    assert!(plugin_row(&rows).is_none(), "{rows:?}");
}

/// The patched repo-server Deployment and the plugins' ConfigMap validate
/// strictly against the Kubernetes schemas.
#[test]
fn the_patched_objects_pass_k8s_schema_check() {
    let Some((manifest, bytes)) = support::vendored::argocd_manifest() else {
        return;
    };
    let Some(tool) = support::vendored::file("tools/k8s-schema-check") else {
        return;
    };
    let plugins: Vec<Plugin> = serde_json::from_value(
        spec(
            tempfile::tempdir().unwrap().path(),
            json!([
                { "preset": "cdk8s", "image": IMAGE },
                { "name": "envsubst", "image": "ghcr.io/acme/envsubst:1.2.0",
                  "generate": ["sh", "-c", "envsubst < manifest.yaml"],
                  "resources": { "requests": { "cpu": "50m", "memory": "64Mi" }, "limits": { "memory": "256Mi" } } },
            ]),
        )
        .addons["argocd"]
            .settings["plugins"]
            .clone(),
    )
    .unwrap();
    let objects = argocd::prepare(
        &String::from_utf8(bytes).unwrap(),
        &manifest.display().to_string(),
        "argocd",
        &plugins,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut written = 0;
    for object in objects.iter().filter(|o| {
        (o.kind == "Deployment" && o.name == argocd::REPO_SERVER)
            || (o.kind == "ConfigMap" && o.name == argocd::PLUGINS_CONFIGMAP)
    }) {
        let path = dir
            .path()
            .join(format!("{}-{}.yaml", object.kind, object.name));
        std::fs::write(path, serde_norway::to_string(&object.value).unwrap()).unwrap();
        written += 1;
    }
    assert_eq!(written, 2);
    let out = Command::new(&tool).arg(dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 2 document(s)"));
}
