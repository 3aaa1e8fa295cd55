//! Draining a cluster whose API answers: make its controllers remove what
//! they created while they still run, so `terraform destroy` meets no
//! foreign dependencies and the sweep has little left to do.
//!
//! 1. Stop Argo CD from recreating what is about to go: remove
//!    `spec.syncPolicy.automated` (and with it self-heal) from every
//!    Application. Patching rather than deleting the Applications works
//!    whatever their finalizers: deleting one that carries Argo CD's
//!    resources-finalizer would cascade and take the controllers down
//!    before they clean up, and a patch leaves the Applications visible
//!    should someone abort the teardown.
//! 2. Delete every Ingress (any class), Service of type LoadBalancer and
//!    TargetGroupBinding, then wait, polling ELBv2, until the load
//!    balancers tagged `elbv2.k8s.aws/cluster=<name>` are gone.
//! 3. Unless volumes are kept, delete the PVCs bound to EBS volumes while
//!    the EBS CSI driver still runs.
//! 4. Delete Karpenter's NodePools; wait until their NodeClaims are gone
//!    and EC2 reports the instances terminated (which also lets the PVCs
//!    of pods on those nodes go); then wait for the EBS PVs to be deleted,
//!    and delete the EC2NodeClasses so Karpenter removes its instance
//!    profiles.
//!
//! The custom resources are not named here: the Applications to pause and
//! each stage's objects to delete (and what to await after them) come from
//! the `teardown:` section of each addon's `addon.yaml`, so an addon folder
//! brings its own drain steps.
//!
//! All waits share one deadline and poll with backoff (kube-fake-client
//! has no watches, and ELBv2 has none at all); a wait that times out is a
//! warning in the report, because the sweep deletes whatever is left. A
//! cluster API that does not answer is [`DrainError::Unreachable`], and one
//! that refuses this principal (401/403) [`DrainError::Forbidden`]: the
//! caller turns either into a warning, skips the drain and sweeps what the
//! controllers created instead.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api as KubeApi, ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use super::api::Api;
use super::inventory;
use crate::addons::{Catalog, DrainStage, ResourceType};
use crate::aws::Aws;
use crate::config::ClusterSpec;
use crate::progress::{Event, Reporter};
use crate::wait::{self, Backoff, Poll, WaitError};

const PHASE: &str = "drain";
/// How long the first call may take before the API counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
const EBS_CSI_DRIVER: &str = "ebs.csi.aws.com";

#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Keep PVCs (and so their EBS volumes).
    pub keep_volumes: bool,
    /// Upper bound for the whole drain, waits included.
    pub deadline: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The cluster API did not answer (refused, timed out, unreachable).
    #[error("the cluster API did not answer ({0}); skipping the drain")]
    Unreachable(String),
    /// The API answered 401 or 403: this principal has no access to it.
    #[error("the cluster API refused access ({0})")]
    Forbidden(String),
    #[error("cannot {action}: {message}")]
    Kube { action: String, message: String },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    /// Applications whose automated sync was removed.
    pub paused: Vec<ObjectRef>,
    pub deleted: Vec<ObjectRef>,
    pub waits: Vec<WaitOutcome>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitOutcome {
    pub what: String,
    /// Finished before the deadline.
    pub completed: bool,
    pub elapsed_ms: u64,
    /// What was still there when the wait gave up.
    pub remaining: Vec<String>,
}

fn api_resource(r: &ResourceType) -> ApiResource {
    let (group, version) = r.group_version();
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, &r.kind), &r.plural)
}

fn kube_error(action: &str, err: kube::Error) -> DrainError {
    match err {
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            DrainError::Unreachable(format!("{action}: {err}"))
        }
        kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
            DrainError::Forbidden(format!("{action}: {} {}", status.code, status.reason))
        }
        other => DrainError::Kube {
            action: action.to_string(),
            message: other.to_string(),
        },
    }
}

fn not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.is_not_found())
}

fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef {
    ObjectRef {
        kind: K::kind(&()).to_string(),
        namespace: obj.meta().namespace.clone(),
        name: obj.meta().name.clone().unwrap_or_default(),
    }
}

fn dynamic_ref(crd: &ResourceType, obj: &DynamicObject) -> ObjectRef {
    ObjectRef {
        kind: crd.kind.clone(),
        namespace: obj.metadata.namespace.clone(),
        name: obj.name_any(),
    }
}

/// Drains `spec`'s cluster through `client`.
pub async fn drain(
    client: Client,
    spec: &ClusterSpec,
    opts: &DrainOptions,
    aws: &Aws,
    reporter: &dyn Reporter,
) -> Result<DrainReport, DrainError> {
    let catalog = Catalog::embedded().map_err(|e| DrainError::Kube {
        action: "read the addon catalog".into(),
        message: e.to_string(),
    })?;
    let drainer = Drainer {
        client,
        api: Api::new(aws),
        cluster: spec.name.clone(),
        deadline: Instant::now() + opts.deadline,
        reporter,
    };
    drainer.probe().await?;
    let mut report = DrainReport::default();
    for kind in catalog.paused() {
        report.paused.extend(drainer.pause(kind).await?);
    }

    let mut deleted = drainer.delete_typed::<Ingress>(|_| true).await?;
    deleted.extend(
        drainer
            .delete_typed::<Service>(|s| {
                s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
            })
            .await?,
    );
    report.deleted.extend(deleted);
    drainer
        .stage(catalog, DrainStage::LoadBalancers, &mut report)
        .await?;
    let wait = drainer
        .wait("load balancers", || drainer.remaining_load_balancers())
        .await;
    report.push_wait(wait);

    let pvs = if opts.keep_volumes {
        Vec::new()
    } else {
        let (deleted, pvs) = drainer.delete_ebs_claims().await?;
        report.deleted.extend(deleted);
        pvs
    };

    drainer
        .stage(catalog, DrainStage::Nodes, &mut report)
        .await?;
    let wait = drainer
        .wait("Karpenter instances", || drainer.remaining_instances())
        .await;
    report.push_wait(wait);
    if !pvs.is_empty() {
        let wait = drainer
            .wait("EBS persistent volumes", || drainer.remaining_volumes(&pvs))
            .await;
        report.push_wait(wait);
    }
    drainer
        .stage(catalog, DrainStage::Last, &mut report)
        .await?;
    Ok(report)
}

impl DrainReport {
    fn push_wait(&mut self, wait: WaitOutcome) {
        if !wait.completed {
            self.warnings.push(format!(
                "gave up waiting for {} after {} s: {} still there ({}); the sweep removes what is left",
                wait.what,
                wait.elapsed_ms / 1000,
                wait.remaining.len(),
                wait.remaining.join(", ")
            ));
        }
        self.waits.push(wait);
    }
}

struct Drainer<'a> {
    client: Client,
    api: Api,
    cluster: String,
    deadline: Instant,
    reporter: &'a dyn Reporter,
}

impl Drainer<'_> {
    /// One cheap call, bounded: does the API answer at all?
    async fn probe(&self) -> Result<(), DrainError> {
        let services: KubeApi<Service> = KubeApi::all(self.client.clone());
        match tokio::time::timeout(
            PROBE_TIMEOUT,
            services.list(&ListParams::default().limit(1)),
        )
        .await
        {
            Err(_) => Err(DrainError::Unreachable(format!(
                "no answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ))),
            Ok(Err(e)) => Err(kube_error("reach the cluster API", e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Lists a custom resource everywhere; an uninstalled CRD is no objects.
    async fn list_dynamic(&self, crd: &ResourceType) -> Result<Vec<DynamicObject>, DrainError> {
        let api: KubeApi<DynamicObject> =
            KubeApi::all_with(self.client.clone(), &api_resource(crd));
        match api.list(&ListParams::default()).await {
            Ok(list) => Ok(list.items),
            Err(e) if not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(kube_error(&format!("list {}s", crd.kind), e)),
        }
    }

    fn dynamic_api(&self, crd: &ResourceType, obj: &DynamicObject) -> KubeApi<DynamicObject> {
        match &obj.metadata.namespace {
            Some(ns) => KubeApi::namespaced_with(self.client.clone(), ns, &api_resource(crd)),
            None => KubeApi::all_with(self.client.clone(), &api_resource(crd)),
        }
    }

    /// Removes automated sync from every object of `kind`.
    async fn pause(&self, kind: &ResourceType) -> Result<Vec<ObjectRef>, DrainError> {
        let mut paused = Vec::new();
        for app in self.list_dynamic(kind).await? {
            let automated = app
                .data
                .pointer("/spec/syncPolicy/automated")
                .is_some_and(|v| !v.is_null());
            if !automated {
                continue;
            }
            let patch = json!({ "spec": { "syncPolicy": { "automated": null } } });
            match self
                .dynamic_api(kind, &app)
                .patch(
                    &app.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(kube_error(&format!("pause a {}", kind.kind), e)),
            }
            let object = dynamic_ref(kind, &app);
            self.reporter.report(
                Event::info(
                    PHASE,
                    format!("paused automated sync of {} {}", object.kind, object.name),
                )
                .with("application", &object),
            );
            paused.push(object);
        }
        Ok(paused)
    }

    /// Deletes the objects of one stage's custom resources, then waits
    /// (bounded) for what their controllers remove in turn.
    async fn stage(
        &self,
        catalog: &Catalog,
        stage: DrainStage,
        report: &mut DrainReport,
    ) -> Result<(), DrainError> {
        for step in catalog.drain_steps(stage) {
            report
                .deleted
                .extend(self.delete_dynamic(&step.delete).await?);
        }
        for waited in catalog
            .drain_steps(stage)
            .filter_map(|s| s.wait_for.as_ref())
        {
            let what = format!("{}s", waited.kind);
            let wait = self.wait(&what, || self.remaining_dynamic(waited)).await;
            report.push_wait(wait);
        }
        Ok(())
    }

    async fn delete_dynamic(&self, crd: &ResourceType) -> Result<Vec<ObjectRef>, DrainError> {
        let mut deleted = Vec::new();
        for obj in self.list_dynamic(crd).await? {
            match self
                .dynamic_api(crd, &obj)
                .delete(&obj.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(kube_error(&format!("delete a {}", crd.kind), e)),
            }
            deleted.push(self.deleted(dynamic_ref(crd, &obj)));
        }
        Ok(deleted)
    }

    async fn delete_typed<K>(
        &self,
        wanted: impl Fn(&K) -> bool,
    ) -> Result<Vec<ObjectRef>, DrainError>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let kind = K::kind(&()).to_string();
        let all: KubeApi<K> = KubeApi::all(self.client.clone());
        let list = match all.list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(e) if not_found(&e) => Vec::new(),
            Err(e) => return Err(kube_error(&format!("list {kind}s"), e)),
        };
        let mut deleted = Vec::new();
        for obj in list.iter().filter(|o| wanted(o)) {
            let ns = obj.meta().namespace.clone().unwrap_or_default();
            let api: KubeApi<K> = KubeApi::namespaced(self.client.clone(), &ns);
            match api.delete(&obj.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(kube_error(&format!("delete a {kind}"), e)),
            }
            deleted.push(self.deleted(object_ref(obj)));
        }
        Ok(deleted)
    }

    fn deleted(&self, object: ObjectRef) -> ObjectRef {
        let place = object
            .namespace
            .as_deref()
            .map(|ns| format!("{ns}/"))
            .unwrap_or_default();
        self.reporter.report(
            Event::info(
                PHASE,
                format!("deleted {} {place}{}", object.kind, object.name),
            )
            .with("object", &object),
        );
        object
    }

    /// Deletes the PVCs bound to EBS volumes; returns the PV names.
    async fn delete_ebs_claims(&self) -> Result<(Vec<ObjectRef>, Vec<String>), DrainError> {
        let claims: KubeApi<PersistentVolumeClaim> = KubeApi::all(self.client.clone());
        let volumes: KubeApi<PersistentVolume> = KubeApi::all(self.client.clone());
        let list = claims
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_error("list PersistentVolumeClaims", e))?;
        let mut deleted = Vec::new();
        let mut pvs = Vec::new();
        for claim in list.items {
            let Some(pv_name) = claim.spec.as_ref().and_then(|s| s.volume_name.clone()) else {
                continue;
            };
            let pv = match volumes.get(&pv_name).await {
                Ok(pv) => pv,
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(kube_error("read a PersistentVolume", e)),
            };
            let spec = pv.spec.as_ref();
            let ebs = spec
                .and_then(|s| s.csi.as_ref())
                .is_some_and(|csi| csi.driver == EBS_CSI_DRIVER)
                || spec.is_some_and(|s| s.aws_elastic_block_store.is_some());
            if !ebs {
                continue;
            }
            let ns = claim.namespace().unwrap_or_default();
            let api: KubeApi<PersistentVolumeClaim> = KubeApi::namespaced(self.client.clone(), &ns);
            match api
                .delete(&claim.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(e) if not_found(&e) => continue,
                Err(e) => return Err(kube_error("delete a PersistentVolumeClaim", e)),
            }
            deleted.push(self.deleted(object_ref(&claim)));
            pvs.push(pv_name);
        }
        Ok((deleted, pvs))
    }

    /// Polls `remaining` with backoff until it is empty or the deadline
    /// passes. An error ends the wait early, as a timeout does.
    async fn wait<F, Fut>(&self, what: &str, remaining: F) -> WaitOutcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<String>, String>>,
    {
        let started = Instant::now();
        let gone = wait::until(what, self.deadline, &Backoff::AWS, || async {
            match remaining().await {
                Ok(left) if left.is_empty() => Poll::Ready(()),
                Ok(left) => {
                    self.reporter
                        .report(Event::waiting(PHASE, what, left.len()));
                    Poll::Pending(left)
                }
                Err(e) => Poll::Failed(e),
            }
        })
        .await;
        let (completed, remaining) = match gone {
            Ok(()) => {
                self.reporter
                    .report(Event::info(PHASE, format!("{what}: all gone")));
                (true, Vec::new())
            }
            Err(WaitError::Timeout { last, .. }) => (false, last),
            Err(WaitError::Failed { message, .. }) => {
                (false, vec![format!("cannot tell: {message}")])
            }
        };
        WaitOutcome {
            what: what.to_string(),
            completed,
            elapsed_ms: started.elapsed().as_millis() as u64,
            remaining,
        }
    }

    async fn remaining_load_balancers(&self) -> Result<Vec<String>, String> {
        inventory::controller_load_balancers(&self.api, &self.cluster)
            .await
            .map_err(|e| e.to_string())
    }

    async fn remaining_instances(&self) -> Result<Vec<String>, String> {
        inventory::instances(&self.api, &self.cluster)
            .await
            .map(|items| items.into_iter().map(|i| i.id).collect())
            .map_err(|e| e.to_string())
    }

    async fn remaining_dynamic(&self, crd: &ResourceType) -> Result<Vec<String>, String> {
        self.list_dynamic(crd)
            .await
            .map(|items| items.iter().map(|o| o.name_any()).collect())
            .map_err(|e| e.to_string())
    }

    async fn remaining_volumes(&self, names: &[String]) -> Result<Vec<String>, String> {
        let api: KubeApi<PersistentVolume> = KubeApi::all(self.client.clone());
        let mut left = Vec::new();
        for name in names {
            match api.get(name).await {
                Ok(_) => left.push(name.clone()),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(left)
    }
}
