//! An in-memory cluster for tests: kube-fake-client behind a small layer
//! that adds what the fake lacks, plus simulated controllers.
//!
//! The layer answers `/version` and API discovery (`/api/v1`, `/apis/<group>/<version>`)
//! from the fake's built-in kinds and the CustomResourceDefinitions stored
//! in it that are Established, as a real API server does, so a kind becomes
//! resolvable only once its CRD is. It also serves Namespace objects, whose
//! paths kube-fake-client mis-parses, and stores cluster-scoped custom
//! objects (NodePool, …), which the fake treats as namespaced, in a hidden
//! namespace.
//!
//! The simulator plays the API server (marks CRDs Established), the
//! workload controllers (rolls Deployments and StatefulSets out), Argo CD
//! (moves each Application to Synced/Healthy or Degraded after a delay, and
//! installs the CRDs its chart would bring) and the Karpenter / External
//! Secrets controllers (sets `Ready` on their objects).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use serde_json::{Value, json};
use terrace::k8s::Kube;

/// Marker types so kube-fake-client stores the custom kinds the tests use.
macro_rules! custom_kind {
    ($ty:ident, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
        pub struct $ty {
            #[serde(default)]
            metadata: ObjectMeta,
        }
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;
            fn kind(_: &()) -> Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

custom_kind!(
    Application,
    "argoproj.io",
    "v1alpha1",
    "Application",
    "applications"
);
custom_kind!(NodePool, "karpenter.sh", "v1", "NodePool", "nodepools");
custom_kind!(
    EC2NodeClass,
    "karpenter.k8s.aws",
    "v1",
    "EC2NodeClass",
    "ec2nodeclasses"
);
custom_kind!(
    ClusterSecretStore,
    "external-secrets.io",
    "v1",
    "ClusterSecretStore",
    "clustersecretstores"
);
custom_kind!(NodeClaim, "karpenter.sh", "v1", "NodeClaim", "nodeclaims");
custom_kind!(
    IngressClassParams,
    "elbv2.k8s.aws",
    "v1beta1",
    "IngressClassParams",
    "ingressclassparams"
);
custom_kind!(
    TargetGroupBinding,
    "elbv2.k8s.aws",
    "v1beta1",
    "TargetGroupBinding",
    "targetgroupbindings"
);

/// What a simulated Argo CD does with one Application.
#[derive(Clone, Debug)]
pub enum AppOutcome {
    /// Synced and Healthy this long after it first appears.
    Healthy(Duration),
    /// Health Degraded with this message, after the delay.
    Degraded(Duration, String),
    /// Stays OutOfSync / Progressing with this message.
    Stuck(String),
}

/// How the simulated controllers behave.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub crd_established: Duration,
    pub rollout: Duration,
    pub default_app: AppOutcome,
    pub apps: HashMap<String, AppOutcome>,
    pub ready: Duration,
    /// Kinds whose objects never become Ready: (kind, message).
    pub never_ready: HashMap<String, String>,
    /// The CRDs each addon's chart installs once its Application is healthy.
    pub chart_crds: HashMap<String, Vec<Value>>,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        let ms = Duration::from_millis;
        Behaviour {
            crd_established: ms(30),
            rollout: ms(60),
            default_app: AppOutcome::Healthy(ms(80)),
            apps: HashMap::new(),
            ready: ms(40),
            never_ready: HashMap::new(),
            chart_crds: HashMap::from([
                (
                    "karpenter".to_string(),
                    vec![
                        crd("karpenter.sh", "v1", "NodePool", "nodepools", "Cluster"),
                        crd(
                            "karpenter.k8s.aws",
                            "v1",
                            "EC2NodeClass",
                            "ec2nodeclasses",
                            "Cluster",
                        ),
                    ],
                ),
                (
                    "aws-load-balancer-controller".to_string(),
                    vec![crd(
                        "elbv2.k8s.aws",
                        "v1beta1",
                        "IngressClassParams",
                        "ingressclassparams",
                        "Cluster",
                    )],
                ),
                (
                    "external-secrets".to_string(),
                    vec![crd(
                        "external-secrets.io",
                        "v1",
                        "ClusterSecretStore",
                        "clustersecretstores",
                        "Cluster",
                    )],
                ),
            ]),
        }
    }
}

/// A CustomResourceDefinition as a chart would install it.
pub fn crd(group: &str, version: &str, kind: &str, plural: &str, scope: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group,
            "names": { "kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List") },
            "scope": scope,
            "versions": [{ "name": version, "served": true, "storage": true,
                           "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }],
        },
    })
}

/// The in-memory cluster: `kube` for the code under test, `client` (same
/// API) for assertions and the simulator.
pub struct FakeCluster {
    pub kube: Kube,
    pub client: kube::Client,
    namespaces: Arc<Mutex<BTreeMap<String, Value>>>,
    simulator: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(task) = self.simulator.take() {
            task.abort();
        }
    }
}

impl FakeCluster {
    /// An empty cluster with no controllers running.
    pub async fn new() -> FakeCluster {
        terrace::tls::install_crypto_provider();
        let fake = kube_fake_client::ClientBuilder::new()
            .with_resource::<Application>()
            .with_resource::<NodePool>()
            .with_resource::<EC2NodeClass>()
            .with_resource::<ClusterSecretStore>()
            .with_resource::<IngressClassParams>()
            .with_return_managed_fields()
            .build()
            .await
            .expect("fake client");
        let namespaces = Arc::new(Mutex::new(BTreeMap::new()));
        let shim = Shim {
            fake,
            namespaces: namespaces.clone(),
        };
        let client = kube::Client::new(shim, "default");
        FakeCluster {
            kube: Kube::from_client(client.clone()),
            client,
            namespaces,
            simulator: None,
        }
    }

    /// A cluster whose controllers behave as `behaviour` says.
    pub async fn running(behaviour: Behaviour) -> FakeCluster {
        let mut cluster = FakeCluster::new().await;
        let sim = Simulator {
            client: cluster.client.clone(),
            behaviour,
            seen: HashMap::new(),
        };
        cluster.simulator = Some(tokio::spawn(sim.run()));
        cluster
    }

    /// The Namespace objects applied so far.
    pub fn namespaces(&self) -> BTreeMap<String, Value> {
        self.namespaces.lock().unwrap().clone()
    }

    pub fn dynamic(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }
}

pub fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

pub fn application_resource() -> ApiResource {
    resource("argoproj.io/v1alpha1", "Application", "applications")
}

/// Cluster-scoped custom kinds the fake can only store in a namespace.
const CLUSTER_SCOPED_CUSTOM: &[&str] = &[
    "nodepools",
    "ec2nodeclasses",
    "clustersecretstores",
    "ingressclassparams",
];
const HIDDEN_NAMESPACE: &str = "cluster-scoped";

#[derive(Clone)]
struct Shim {
    fake: kube::Client,
    namespaces: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl tower::Service<http::Request<Body>> for Shim {
    type Response = http::Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), kube::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shim = self.clone();
        Box::pin(async move { shim.handle(request).await })
    }
}

fn respond(code: u16, body: Value) -> http::Response<Body> {
    http::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn not_found(what: &str) -> http::Response<Body> {
    respond(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

impl Shim {
    async fn handle(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, kube::Error> {
        let path = request.uri().path().to_string();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        match parts.as_slice() {
            ["version"] => Ok(respond(
                200,
                json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "gitCommit": "", "gitTreeState": "clean",
                        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
            )),
            ["api", "v1"] => Ok(self.discovery("", "v1").await),
            ["apis", group, version] => Ok(self.discovery(group, version).await),
            ["api", "v1", "namespaces"] => {
                let items: Vec<Value> = self.namespaces.lock().unwrap().values().cloned().collect();
                Ok(respond(
                    200,
                    json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}),
                ))
            }
            ["api", "v1", "namespaces", name] => {
                let name = name.to_string();
                self.namespace(request, &name).await
            }
            ["apis", group, version, plural, rest @ ..]
                if CLUSTER_SCOPED_CUSTOM.contains(plural) =>
            {
                let name: String = rest.iter().map(|p| format!("/{p}")).collect();
                let rewritten =
                    format!("/apis/{group}/{version}/namespaces/{HIDDEN_NAMESPACE}/{plural}{name}");
                self.cluster_scoped(request, &rewritten).await
            }
            _ => self.fake.send(request).await,
        }
    }

    /// Sends a cluster-scoped custom object request to the hidden namespace
    /// and takes that namespace out of the answer.
    async fn cluster_scoped(
        &self,
        request: http::Request<Body>,
        path: &str,
    ) -> Result<http::Response<Body>, kube::Error> {
        let (mut parts, body) = request.into_parts();
        let query = parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        parts.uri = format!("{path}{query}").parse().unwrap();
        let response = self
            .fake
            .send(http::Request::from_parts(parts, body))
            .await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect_bytes().await?;
        let mut value: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let strip = |v: &mut Value| {
            if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("namespace");
            }
        };
        strip(&mut value);
        if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
            items.iter_mut().for_each(strip);
        }
        Ok(http::Response::from_parts(
            parts,
            Body::from(serde_json::to_vec(&value).unwrap()),
        ))
    }

    async fn namespace(
        &self,
        request: http::Request<Body>,
        name: &str,
    ) -> Result<http::Response<Body>, kube::Error> {
        let method = request.method().clone();
        let manager = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("fieldManager=")))
            .unwrap_or("")
            .to_string();
        let body = request.into_body().collect_bytes().await?;
        let mut namespaces = self.namespaces.lock().unwrap();
        match method.as_str() {
            "GET" => Ok(namespaces
                .get(name)
                .map_or_else(|| not_found(name), |ns| respond(200, ns.clone()))),
            "PATCH" => {
                let mut applied: Value = serde_json::from_slice(&body).unwrap_or_default();
                applied["metadata"]["managedFields"] =
                    json!([{ "manager": manager, "operation": "Apply" }]);
                namespaces.insert(name.to_string(), applied.clone());
                Ok(respond(200, applied))
            }
            _ => Ok(respond(
                405,
                json!({"kind": "Status", "code": 405, "message": "not supported"}),
            )),
        }
    }

    /// The kinds served in one group version: built-in ones, then the
    /// CustomResourceDefinitions that are Established.
    async fn discovery(&self, group: &str, version: &str) -> http::Response<Body> {
        let mut resources: Vec<Value> = kube_fake_client::r#gen::discovery::list_resources()
            .iter()
            .filter(|(g, v, _, _)| *g == group && *v == version)
            .map(|(g, v, kind, plural)| {
                let namespaced = kube_fake_client::r#gen::discovery::is_namespaced(g, v, kind).unwrap_or(true);
                json!({"name": plural, "singularName": "", "kind": kind, "namespaced": namespaced, "verbs": ["get", "list", "patch"]})
            })
            .collect();
        let crds = Api::<CustomResourceDefinition>::all(self.fake.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        for crd in crds {
            let value = serde_json::to_value(&crd).unwrap();
            let established =
                terrace::k8s::condition(&value, "Established").is_some_and(|(s, _)| s == "True");
            let serves = crd
                .spec
                .versions
                .iter()
                .any(|v| v.name == version && v.served);
            if crd.spec.group == group && serves && established {
                resources.push(json!({
                    "name": crd.spec.names.plural, "singularName": "", "kind": crd.spec.names.kind,
                    "namespaced": crd.spec.scope == "Namespaced", "verbs": ["get", "list", "patch"],
                }));
            }
        }
        if resources.is_empty() {
            return not_found(&format!("{group}/{version}"));
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        respond(
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    }
}

/// The simulated controllers: one loop, a few milliseconds per round.
struct Simulator {
    client: kube::Client,
    behaviour: Behaviour,
    /// When each object (by kind/namespace/name/generation) was first seen.
    seen: HashMap<String, Instant>,
}

impl Simulator {
    async fn run(mut self) {
        loop {
            self.round().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn age(&mut self, key: String) -> Duration {
        self.seen.entry(key).or_insert_with(Instant::now).elapsed()
    }

    async fn round(&mut self) {
        self.crds().await;
        self.rollouts::<Deployment>("Deployment").await;
        self.rollouts::<StatefulSet>("StatefulSet").await;
        self.applications().await;
        for (api_version, kind, plural) in [
            ("karpenter.sh/v1", "NodePool", "nodepools"),
            ("karpenter.k8s.aws/v1", "EC2NodeClass", "ec2nodeclasses"),
            (
                "external-secrets.io/v1",
                "ClusterSecretStore",
                "clustersecretstores",
            ),
        ] {
            self.readiness(&resource(api_version, kind, plural)).await;
        }
    }

    async fn crds(&mut self) {
        let api = Api::<CustomResourceDefinition>::all(self.client.clone());
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        for crd in list.items {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let value = serde_json::to_value(&crd).unwrap();
            if terrace::k8s::condition(&value, "Established").is_some() {
                continue;
            }
            if self.age(format!("crd/{name}")) >= self.behaviour.crd_established {
                let status = json!({"status": {
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
                    ],
                    "acceptedNames": crd.spec.names,
                    "storedVersions": [crd.spec.versions[0].name],
                }});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
    }

    async fn rollouts<K>(&mut self, kind: &str)
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + serde::Serialize,
    {
        let api = Api::<K>::all(self.client.clone());
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        for object in list.items {
            let value = serde_json::to_value(&object).unwrap();
            let generation = value
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let observed = value
                .pointer("/status/observedGeneration")
                .and_then(Value::as_i64);
            if observed == Some(generation) {
                continue;
            }
            let ns = object.meta().namespace.clone().unwrap_or_default();
            let name = object.meta().name.clone().unwrap_or_default();
            // Only a workload's first rollout takes time; later
            // generations (a re-apply) are observed at once.
            let delay = if observed.is_some() {
                Duration::ZERO
            } else {
                self.behaviour.rollout
            };
            if self.age(format!("{kind}/{ns}/{name}")) >= delay {
                let replicas = value
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let status = json!({"status": {
                    "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
                    "readyReplicas": replicas, "availableReplicas": replicas,
                }});
                let _ = Api::<K>::namespaced(self.client.clone(), &ns)
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
    }

    async fn applications(&mut self) {
        let resource = application_resource();
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &resource);
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        for app in list.items {
            let name = app.metadata.name.clone().unwrap_or_default();
            let ns = app.metadata.namespace.clone().unwrap_or_default();
            let age = self.age(format!("app/{ns}/{name}"));
            let outcome = self
                .behaviour
                .apps
                .get(&name)
                .unwrap_or(&self.behaviour.default_app)
                .clone();
            let source = app
                .data
                .pointer("/spec/source")
                .cloned()
                .unwrap_or_default();
            let (sync, health, message) = match &outcome {
                AppOutcome::Healthy(delay) if age >= *delay => ("Synced", "Healthy", None),
                AppOutcome::Degraded(delay, message) if age >= *delay => {
                    ("Synced", "Degraded", Some(message.clone()))
                }
                AppOutcome::Stuck(message) => ("OutOfSync", "Progressing", Some(message.clone())),
                _ => ("OutOfSync", "Progressing", None),
            };
            let current_health = app
                .data
                .pointer("/status/health/status")
                .and_then(Value::as_str);
            let current_source = app.data.pointer("/status/sync/comparedTo/source");
            if current_health == Some(health) && current_source == Some(&source) {
                continue;
            }
            let mut status = json!({
                "sync": {"status": sync, "comparedTo": {"source": source}, "revision": source["targetRevision"]},
                "health": {"status": health},
            });
            if let Some(message) = message {
                status["conditions"] = json!([{"type": "SyncError", "message": message}]);
                status["operationState"] = json!({"phase": "Running", "message": message});
            }
            let patch = json!({"status": status});
            let _ = Api::<DynamicObject>::namespaced_with(self.client.clone(), &ns, &resource)
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if health == "Healthy" {
                for crd in self
                    .behaviour
                    .chart_crds
                    .get(&name)
                    .cloned()
                    .unwrap_or_default()
                {
                    let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
                    let _ = Api::<CustomResourceDefinition>::all(self.client.clone())
                        .create(&PostParams::default(), &crd)
                        .await;
                }
            }
        }
    }

    async fn readiness(&mut self, resource: &ApiResource) {
        let api = Api::<DynamicObject>::all_with(self.client.clone(), resource);
        let Ok(list) = api.list(&ListParams::default()).await else {
            return;
        };
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let kind = resource.kind.clone();
            let never = self.behaviour.never_ready.get(&kind).cloned();
            let condition = match never {
                Some(message) => {
                    json!({"type": "Ready", "status": "False", "reason": "NotReady", "message": message})
                }
                None if self.age(format!("{kind}/{name}")) >= self.behaviour.ready => {
                    json!({"type": "Ready", "status": "True", "reason": "Ready"})
                }
                None => continue,
            };
            if object.data.pointer("/status/conditions/0") == Some(&condition) {
                continue;
            }
            let patch = json!({"status": {"conditions": [condition]}});
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
        }
    }
}

/// The default cluster's spec and its rendered tree.
pub fn default_stack() -> (terrace::config::ClusterSpec, terrace::render::Tree) {
    let spec = terrace::config::load(
        &terrace::config::Request {
            config: None,
            region: "us-east-1".into(),
            name: None,
        },
        terrace::addons::Catalog::embedded().unwrap().schema(),
    )
    .expect("default spec");
    let tree =
        terrace::render::render(&spec, &terrace::render::Outputs::placeholders()).expect("render");
    (spec, tree)
}

/// The small stand-in for Argo CD's install.yaml, and its SHA-256.
pub fn install_fixture() -> (std::path::PathBuf, String) {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/argocd-install.yaml");
    let sha = terrace::addons::release::sha256_hex(&std::fs::read(&path).unwrap());
    (path, sha)
}

/// Install options with the fixture manifest, a private cache and short
/// deadlines and poll intervals.
pub fn fast_options(cache: &std::path::Path) -> terrace::addons::install::InstallOptions {
    let (path, sha) = install_fixture();
    let s = Duration::from_secs;
    terrace::addons::install::InstallOptions {
        argocd_manifest: terrace::addons::release::ManifestSource::File(path),
        argocd_sha256: Some(sha),
        cache_dir: Some(cache.to_path_buf()),
        timeouts: terrace::addons::install::Timeouts {
            crd: s(5),
            rollout: s(5),
            addon: s(5),
            ready: s(5),
        },
        backoff: terrace::wait::Backoff {
            initial: Duration::from_millis(2),
            max: Duration::from_millis(10),
            factor: 2.0,
        },
    }
}

impl FakeCluster {
    /// Serves this cluster's API over plain HTTP on a loopback port, for
    /// tests that run the `terrace` binary; returns the endpoint.
    pub async fn serve_http(&self) -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let client = self.client.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut words = line.split_whitespace();
                        let (method, target) = (
                            words.next().unwrap_or("").to_string(),
                            words.next().unwrap_or("/").to_string(),
                        );
                        let mut request =
                            http::Request::builder().method(method.as_str()).uri(target);
                        let mut length = 0usize;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).await.unwrap_or(0);
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                                request = request.header(name.trim(), value.trim());
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let response = match client
                            .send(request.body(Body::from(body)).unwrap())
                            .await
                        {
                            Ok(response) => response,
                            Err(e) => respond(
                                500,
                                json!({"kind": "Status", "code": 500, "message": e.to_string()}),
                            ),
                        };
                        let status = response.status();
                        let bytes = response
                            .into_body()
                            .collect_bytes()
                            .await
                            .unwrap_or_default();
                        let head = format!(
                            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or(""),
                            bytes.len()
                        );
                        if write.write_all(head.as_bytes()).await.is_err()
                            || write.write_all(&bytes).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        (endpoint, task)
    }
}

/// A kubeconfig for `endpoint` with a static token, written into `dir`.
pub fn kubeconfig(dir: &std::path::Path, endpoint: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster: {{ server: \"{endpoint}\" }}\ncontexts:\n- name: fake\n  context: {{ cluster: fake, user: fake }}\nusers:\n- name: fake\n  user: {{ token: fake-token }}\n"
        ),
    )
    .unwrap();
    path
}

/// A Kubernetes API that answers every request 401 Unauthorized.
pub fn refusing_api() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://127.0.0.1:{port}")
}

impl FakeCluster {
    /// Creates an Application as a platform repository's root Application
    /// would (no status yet: the simulated Argo CD gives it one), from the
    /// Git repository `repo`, directory `path`, tracking `revision`.
    pub async fn add_application(
        &self,
        namespace: &str,
        name: &str,
        repo: &str,
        path: &str,
        revision: &str,
    ) {
        self.application_kind().await;
        let app: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": { "name": name, "namespace": namespace },
            "spec": {
                "project": "default",
                "source": { "repoURL": repo, "path": path, "targetRevision": revision },
                "destination": { "server": "https://kubernetes.default.svc", "namespace": name },
                "syncPolicy": { "automated": { "prune": true, "selfHeal": true } },
            },
        }))
        .unwrap();
        self.dynamic(&application_resource(), Some(namespace))
            .create(&PostParams::default(), &app)
            .await
            .unwrap();
    }

    /// Argo CD's Application CRD, Established (the simulator's API server
    /// marks it so), as Argo CD's install brings it.
    async fn application_kind(&self) {
        let crds = Api::<CustomResourceDefinition>::all(self.client.clone());
        let crd: CustomResourceDefinition = serde_json::from_value(crd(
            "argoproj.io",
            "v1alpha1",
            "Application",
            "applications",
            "Namespaced",
        ))
        .unwrap();
        let _ = crds.create(&PostParams::default(), &crd).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let established = crds
                .get("applications.argoproj.io")
                .await
                .ok()
                .map(|c| serde_json::to_value(c).unwrap())
                .is_some_and(|c| terrace::k8s::condition(&c, "Established").is_some());
            if established {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Application CRD was never Established"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
