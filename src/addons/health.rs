//! What "healthy" means for the operator stack: an Argo CD Application that
//! is Synced and Healthy on the revision Terrace asked for, a workload that
//! has rolled out, a custom resource whose `Ready` condition is True, a
//! Config Management Plugin whose sidecar container is ready. Also the
//! stack-wide status that `terrace addons status` and `up`'s verify phase
//! report.

use serde::Serialize;
use serde_json::Value;

use crate::k8s::{K8sError, Kube, condition};
use crate::wait::Poll;

use super::{Addon, argocd};

pub const APPLICATION_API_VERSION: &str = "argoproj.io/v1alpha1";
/// The label the rendered Applications carry with their addon's name.
pub const ADDON_LABEL: &str = "terrace.dev/addon";

/// One addon's state in the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddonStatus {
    pub name: String,
    /// Chart version (`targetRevision`), or Argo CD's image tag.
    pub version: String,
    pub sync: String,
    pub health: String,
    pub healthy: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// How many nodes there are, and how many report Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NodeCounts {
    pub ready: usize,
    pub total: usize,
}

/// Counts the cluster's nodes and the Ready ones.
pub async fn nodes(kube: &Kube) -> Result<NodeCounts, K8sError> {
    let nodes = kube.list("v1", "Node", None, None).await?;
    let ready = nodes
        .iter()
        .filter(|n| {
            let value = serde_json::to_value(n).unwrap_or_default();
            matches!(condition(&value, "Ready"), Some(("True", _)))
        })
        .count();
    Ok(NodeCounts {
        ready,
        total: nodes.len(),
    })
}

/// An Application is done when it is Synced and Healthy on the source it
/// declares (a status from before a re-apply does not count); Degraded
/// fails at once.
pub fn application(app: &Value) -> Poll<()> {
    let sync = text(app, "/status/sync/status").unwrap_or("Unknown");
    let health = text(app, "/status/health/status").unwrap_or("Unknown");
    let wanted = text(app, "/spec/source/targetRevision");
    let compared = text(app, "/status/sync/comparedTo/source/targetRevision");
    if health == "Degraded" {
        return Poll::Failed(describe_application(app));
    }
    if let (Some(wanted), Some(compared)) = (wanted, compared)
        && wanted != compared
    {
        return Poll::Pending(format!(
            "Argo CD has not compared revision {wanted} yet (last compared {compared})"
        ));
    }
    if sync == "Synced" && health == "Healthy" {
        Poll::Ready(())
    } else {
        Poll::Pending(describe_application(app))
    }
}

/// Where an Application takes its manifests from: the Git repository (or
/// Helm repository), the path or chart in it, and the revision it tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApplicationSource {
    pub repo: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chart: String,
    pub target_revision: String,
}

/// One Application as Argo CD reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ApplicationState {
    pub namespace: String,
    pub name: String,
    pub sync: String,
    pub health: String,
    /// The revision Argo CD last synced (a commit, or a chart version).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    pub source: ApplicationSource,
    /// Why it is not Synced and Healthy, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ApplicationState {
    pub fn healthy(&self) -> bool {
        self.sync == "Synced" && self.health == "Healthy"
    }

    /// `namespace/name`, as Argo CD names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// An Application's identity, status and source (the first of `sources`
/// for a multi-source Application).
pub fn application_state(app: &Value) -> ApplicationState {
    let owned = |pointer: &str| text(app, pointer).unwrap_or("").to_string();
    let source = app
        .pointer("/spec/source")
        .or_else(|| app.pointer("/spec/sources/0"))
        .cloned()
        .unwrap_or_default();
    let healthy = application(app) == Poll::Ready(());
    ApplicationState {
        namespace: owned("/metadata/namespace"),
        name: owned("/metadata/name"),
        sync: text(app, "/status/sync/status")
            .unwrap_or("Unknown")
            .to_string(),
        health: text(app, "/status/health/status")
            .unwrap_or("Unknown")
            .to_string(),
        revision: owned("/status/sync/revision"),
        source: ApplicationSource {
            repo: text(&source, "/repoURL").unwrap_or("").to_string(),
            path: text(&source, "/path").unwrap_or("").to_string(),
            chart: text(&source, "/chart").unwrap_or("").to_string(),
            target_revision: text(&source, "/targetRevision")
                .unwrap_or("HEAD")
                .to_string(),
        },
        message: (!healthy).then(|| describe_application(app)),
    }
}

/// Every Application in the cluster, in every namespace; none when Argo
/// CD's kind is not installed.
pub async fn applications(kube: &Kube) -> Result<Vec<ApplicationState>, K8sError> {
    let apps = match kube
        .list(APPLICATION_API_VERSION, "Application", None, None)
        .await
    {
        Ok(apps) => apps,
        Err(err) if err.is_not_found() => Vec::new(),
        Err(err) => return Err(err),
    };
    let mut states: Vec<ApplicationState> = apps
        .iter()
        .map(|app| application_state(&serde_json::to_value(app).unwrap_or_default()))
        .collect();
    states.sort_by_key(ApplicationState::id);
    Ok(states)
}

/// `sync=… health=…` and every message Argo CD gives about why.
pub fn describe_application(app: &Value) -> String {
    let mut parts = vec![format!(
        "sync={} health={}",
        text(app, "/status/sync/status").unwrap_or("Unknown"),
        text(app, "/status/health/status").unwrap_or("Unknown"),
    )];
    if let Some(message) = text(app, "/status/health/message") {
        parts.push(format!("health message: {message}"));
    }
    if let Some(phase) = text(app, "/status/operationState/phase") {
        let message = text(app, "/status/operationState/message").unwrap_or("");
        parts.push(
            format!("last sync {phase}: {message}")
                .trim_end_matches(": ")
                .to_string(),
        );
    }
    if let Some(conditions) = app.pointer("/status/conditions").and_then(Value::as_array) {
        for c in conditions {
            parts.push(format!(
                "condition {}: {}",
                text(c, "/type").unwrap_or("?"),
                text(c, "/message").unwrap_or("")
            ));
        }
    }
    parts.join("; ")
}

/// A Deployment or StatefulSet has rolled out: the controller saw the
/// latest spec and every replica is updated and available.
pub fn rolled_out(kind: &str, object: &Value) -> Poll<()> {
    let int = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64);
    let generation = int("/metadata/generation").unwrap_or(0);
    let observed = int("/status/observedGeneration").unwrap_or(-1);
    if observed < generation {
        return Poll::Pending(format!(
            "the controller has not observed generation {generation} yet"
        ));
    }
    if kind == "Deployment" && progress_deadline_exceeded(object) {
        let message = condition(object, "Progressing").and_then(|(_, m)| m);
        return Poll::Failed(message.unwrap_or("progress deadline exceeded").to_string());
    }
    let wanted = int("/spec/replicas").unwrap_or(1);
    let updated = int("/status/updatedReplicas").unwrap_or(0);
    let current = int("/status/replicas").unwrap_or(0);
    let available = match kind {
        "StatefulSet" => int("/status/availableReplicas").or(int("/status/readyReplicas")),
        _ => int("/status/availableReplicas"),
    }
    .unwrap_or(0);
    if updated < wanted {
        Poll::Pending(format!("{updated} of {wanted} replicas updated"))
    } else if current > updated {
        Poll::Pending(format!(
            "{} old replicas pending termination",
            current - updated
        ))
    } else if available < wanted {
        Poll::Pending(format!("{available} of {wanted} replicas available"))
    } else {
        Poll::Ready(())
    }
}

fn progress_deadline_exceeded(object: &Value) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                text(c, "/type") == Some("Progressing")
                    && text(c, "/reason") == Some("ProgressDeadlineExceeded")
            })
        })
}

/// A custom resource reports `Ready=True`; an object annotated
/// `terrace.dev/ready: exists` (a kind with no status, like an
/// IngressClass) is ready once it exists.
pub fn ready(object: &Value) -> Poll<()> {
    if text(object, "/metadata/annotations/terrace.dev~1ready") == Some("exists") {
        return Poll::Ready(());
    }
    match condition(object, "Ready") {
        Some(("True", _)) => Poll::Ready(()),
        _ => Poll::Pending(crate::k8s::describe_conditions(object)),
    }
}

/// Every addon Terrace installed, as the cluster sees it: the GitOps
/// engine's own workloads (in its addon's namespace), then each Application
/// labelled with an addon. Addons named in `expected` that have no
/// Application are reported `Missing`.
pub async fn status(
    kube: &Kube,
    gitops: &Addon,
    expected: &[&str],
) -> Result<Vec<AddonStatus>, K8sError> {
    let namespace = gitops.namespace.as_str();
    let mut rows = vec![argocd_status(kube, gitops).await?];
    let apps = match kube
        .list(
            APPLICATION_API_VERSION,
            "Application",
            Some(namespace),
            Some(ADDON_LABEL),
        )
        .await
    {
        Ok(apps) => apps,
        Err(err) if err.is_not_found() => Vec::new(),
        Err(err) => return Err(err),
    };
    let mut found: Vec<AddonStatus> = apps
        .iter()
        .map(|app| {
            let value = serde_json::to_value(app).unwrap_or_default();
            let poll = application(&value);
            AddonStatus {
                name: text(
                    &value,
                    &format!("/metadata/labels/{}", ADDON_LABEL.replace('/', "~1")),
                )
                .unwrap_or_default()
                .to_string(),
                version: text(&value, "/spec/source/targetRevision")
                    .unwrap_or("")
                    .to_string(),
                sync: text(&value, "/status/sync/status")
                    .unwrap_or("Unknown")
                    .to_string(),
                health: text(&value, "/status/health/status")
                    .unwrap_or("Unknown")
                    .to_string(),
                healthy: poll == Poll::Ready(()),
                message: match poll {
                    Poll::Ready(()) => None,
                    Poll::Pending(m) | Poll::Failed(m) => Some(m),
                },
            }
        })
        .collect();
    for name in expected {
        if *name != gitops.name && !found.iter().any(|s| s.name == *name) {
            found.push(AddonStatus {
                name: name.to_string(),
                version: String::new(),
                sync: "-".into(),
                health: "Missing".into(),
                healthy: false,
                message: Some(format!("no Application {namespace}/{name}")),
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    rows.extend(found);
    rows.extend(plugin_status(kube, namespace).await?);
    Ok(rows)
}

/// One row per Config Management Plugin sidecar of the repo-server (a
/// container that mounts a `plugin.yaml`): ready when a repo-server pod
/// reports that container ready.
async fn plugin_status(kube: &Kube, namespace: &str) -> Result<Vec<AddonStatus>, K8sError> {
    let Some(deployment) = kube
        .get(
            "apps/v1",
            "Deployment",
            Some(namespace),
            argocd::REPO_SERVER,
        )
        .await?
    else {
        return Ok(Vec::new());
    };
    let deployment = serde_json::to_value(deployment).unwrap_or_default();
    let sidecars: Vec<(&Value, &str)> = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let mounts = c.get("volumeMounts")?.as_array()?;
            let config = mounts
                .iter()
                .find(|m| text(m, "/mountPath") == Some(argocd::PLUGIN_CONFIG_PATH))?;
            Some((c, text(config, "/subPath").unwrap_or_default()))
        })
        .collect();
    if sidecars.is_empty() {
        return Ok(Vec::new());
    }
    let configs = kube
        .get(
            "v1",
            "ConfigMap",
            Some(namespace),
            argocd::PLUGINS_CONFIGMAP,
        )
        .await?
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .unwrap_or_default();
    let selector = format!("app.kubernetes.io/name={}", argocd::REPO_SERVER);
    let pods: Vec<Value> = kube
        .list("v1", "Pod", Some(namespace), Some(&selector))
        .await?
        .into_iter()
        .map(|p| serde_json::to_value(p).unwrap_or_default())
        .collect();
    Ok(sidecars
        .into_iter()
        .map(|(container, key)| {
            let config: Option<Value> = configs
                .get("data")
                .and_then(|d| d.get(key))
                .and_then(Value::as_str)
                .and_then(|t| serde_norway::from_str(t).ok());
            plugin_row(namespace, container, config.as_ref(), &pods)
        })
        .collect())
}

/// `plugin/<name>-<version>` (Argo CD's name for it), the sidecar image's
/// tag or digest, and whether a repo-server pod reports the sidecar ready.
fn plugin_row(
    namespace: &str,
    container: &Value,
    config: Option<&Value>,
    pods: &[Value],
) -> AddonStatus {
    let sidecar = text(container, "/name").unwrap_or("?");
    let argocd_name = config.and_then(|c| {
        let name = text(c, "/metadata/name")?;
        Some(match text(c, "/spec/version") {
            Some(version) => format!("{name}-{version}"),
            None => name.to_string(),
        })
    });
    let ready = pods.iter().any(|pod| {
        pod.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .is_some_and(|statuses| {
                statuses.iter().any(|s| {
                    text(s, "/name") == Some(sidecar)
                        && s.get("ready").and_then(Value::as_bool) == Some(true)
                })
            })
    });
    let (health, message) = match (&argocd_name, ready) {
        (None, _) => (
            "Missing",
            Some(format!(
                "sidecar {sidecar} has no plugin.yaml in ConfigMap {namespace}/{}",
                argocd::PLUGINS_CONFIGMAP
            )),
        ),
        (Some(_), true) => ("Ready", None),
        (Some(_), false) => (
            "NotReady",
            Some(format!(
                "no {} pod reports container {sidecar} ready",
                argocd::REPO_SERVER
            )),
        ),
    };
    AddonStatus {
        name: format!("plugin/{}", argocd_name.as_deref().unwrap_or(sidecar)),
        version: text(container, "/image")
            .map(image_version)
            .unwrap_or_default(),
        sync: "-".into(),
        health: health.into(),
        healthy: health == "Ready",
        message,
    }
}

/// The tag, or the digest's first 12 hex digits, of an image reference.
fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once("@sha256:") {
        return format!("sha256:{}", &digest[..digest.len().min(12)]);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':')
        .map(|(_, tag)| tag.to_string())
        .unwrap_or_default()
}

/// The names of the addons in `rows` that are not healthy.
pub fn unhealthy(rows: &[AddonStatus]) -> Vec<&str> {
    rows.iter()
        .filter(|r| !r.healthy)
        .map(|r| r.name.as_str())
        .collect()
}

/// Argo CD has no Application of its own: it is healthy when every
/// Deployment and StatefulSet of its install has rolled out.
async fn argocd_status(kube: &Kube, gitops: &Addon) -> Result<AddonStatus, K8sError> {
    let namespace = gitops.namespace.as_str();
    let selector = Some("app.kubernetes.io/part-of=argocd");
    let mut workloads = Vec::new();
    for kind in ["Deployment", "StatefulSet"] {
        for object in kube
            .list("apps/v1", kind, Some(namespace), selector)
            .await?
        {
            workloads.push((kind, serde_json::to_value(object).unwrap_or_default()));
        }
    }
    let version = workloads
        .iter()
        .find(|(_, w)| text(w, "/metadata/name") == Some("argocd-server"))
        .and_then(|(_, w)| text(w, "/spec/template/spec/containers/0/image"))
        .and_then(|image| image.rsplit_once(':'))
        .map(|(_, tag)| tag.to_string())
        .unwrap_or_default();
    let waiting: Vec<String> = workloads
        .iter()
        .filter_map(|(kind, w)| match rolled_out(kind, w) {
            Poll::Ready(()) => None,
            Poll::Pending(m) | Poll::Failed(m) => Some(format!(
                "{kind} {}: {m}",
                text(w, "/metadata/name").unwrap_or("?")
            )),
        })
        .collect();
    let (health, message) = if workloads.is_empty() {
        (
            "Missing",
            Some(format!("no Argo CD workloads in namespace {namespace}")),
        )
    } else if waiting.is_empty() {
        ("Healthy", None)
    } else {
        ("Progressing", Some(waiting.join("; ")))
    };
    Ok(AddonStatus {
        name: gitops.name.clone(),
        version,
        sync: "-".into(),
        health: health.into(),
        healthy: health == "Healthy",
        message,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app(sync: &str, health: &str, compared: &str) -> Value {
        json!({
            "spec": {"source": {"targetRevision": "1.0.0"}},
            "status": {
                "sync": {"status": sync, "comparedTo": {"source": {"targetRevision": compared}}},
                "health": {"status": health},
                "conditions": [{"type": "SyncError", "message": "webhook has no endpoints"}],
            }
        })
    }

    #[test]
    fn application_states() {
        assert_eq!(
            application(&app("Synced", "Healthy", "1.0.0")),
            Poll::Ready(())
        );
        assert!(
            matches!(application(&app("Synced", "Healthy", "0.9.0")), Poll::Pending(m) if m.contains("0.9.0"))
        );
        assert!(matches!(
            application(&app("OutOfSync", "Progressing", "1.0.0")),
            Poll::Pending(_)
        ));
        let Poll::Failed(message) = application(&app("Synced", "Degraded", "1.0.0")) else {
            panic!("Degraded must fail");
        };
        assert!(message.contains("health=Degraded"), "{message}");
        assert!(message.contains("webhook has no endpoints"), "{message}");
        assert!(matches!(application(&json!({})), Poll::Pending(_)));
    }

    #[test]
    fn rollouts() {
        let deployment = |generation: i64, observed: i64, updated: i64, available: i64| {
            json!({
                "metadata": {"generation": generation},
                "spec": {"replicas": 2},
                "status": {"observedGeneration": observed, "replicas": updated,
                           "updatedReplicas": updated, "availableReplicas": available}
            })
        };
        assert_eq!(
            rolled_out("Deployment", &deployment(2, 2, 2, 2)),
            Poll::Ready(())
        );
        assert!(
            matches!(rolled_out("Deployment", &deployment(3, 2, 2, 2)), Poll::Pending(m) if m.contains("generation 3"))
        );
        assert!(
            matches!(rolled_out("Deployment", &deployment(2, 2, 1, 1)), Poll::Pending(m) if m.contains("1 of 2 replicas updated"))
        );
        assert!(
            matches!(rolled_out("Deployment", &deployment(2, 2, 2, 1)), Poll::Pending(m) if m.contains("1 of 2 replicas available"))
        );
        let mut stuck = deployment(2, 2, 1, 1);
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]);
        assert!(
            matches!(rolled_out("Deployment", &stuck), Poll::Failed(m) if m.contains("timed out"))
        );
        let sts = json!({"metadata": {"generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}});
        assert_eq!(rolled_out("StatefulSet", &sts), Poll::Ready(()));
    }

    #[test]
    fn ready_condition() {
        assert_eq!(
            ready(&json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
            Poll::Ready(())
        );
        assert!(matches!(ready(&json!({})), Poll::Pending(m) if m == "no status conditions yet"));
    }
}
