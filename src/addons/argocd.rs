//! Bootstrapping Argo CD from its verified release manifest: the manifest
//! is parsed, every workload is made to run on the tainted system node group
//! (at first the only nodes there are; Argo CD's `install.yaml` carries no
//! tolerations), the configured Config Management Plugins become sidecars
//! of `argocd-repo-server`, and after applying, each Deployment and
//! StatefulSet is awaited until it has rolled out.
//!
//! The patches work on the parsed copy of the verified file, never on the
//! file: its pinned checksum keeps guarding what upstream published. The
//! repo-server Deployment is applied whole on every run, so its container
//! list is exactly what this run computed: a plugin removed from the
//! configuration loses its sidecar, because server-side apply drops the
//! fields Terrace applied before and no longer applies.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Plugin;
use crate::k8s::{K8sError, Kube, Object, parse, until};
use crate::model::system::{system_node_selector, system_tolerations};
use crate::wait::{Backoff, Poll};

use super::health::rolled_out;

/// The kinds whose rollout the bootstrap waits for.
const WORKLOADS: &[&str] = &["Deployment", "StatefulSet"];

/// The Deployment the plugin sidecars join.
pub const REPO_SERVER: &str = "argocd-repo-server";
/// The ConfigMap holding every plugin's `plugin.yaml`, one key per plugin.
pub const PLUGINS_CONFIGMAP: &str = "terrace-cmp-plugins";
/// Where Argo CD's CMP server reads its plugin's configuration.
pub const PLUGIN_CONFIG_PATH: &str = "/home/argocd/cmp-server/config/plugin.yaml";
/// The pod template annotation carrying the plugins' configuration hash, so
/// a changed configuration rolls the pods (a subPath mount never updates).
pub const PLUGINS_HASH_ANNOTATION: &str = "terrace.dev/cmp-plugins-sha256";
/// Volumes of the release manifest's repo-server that the sidecars mount.
const VAR_FILES: &str = "var-files";
const PLUGIN_SOCKETS: &str = "plugins";
const CONFIG_VOLUME: &str = "cmp-plugins";
const TMP_VOLUME: &str = "cmp-tmp";

/// Parses the manifest, schedules its workloads on the system nodes, adds
/// the plugin sidecars and their ConfigMap, and adds the namespace it
/// installs into (the release manifest assumes it exists).
pub fn prepare(
    text: &str,
    origin: &str,
    namespace: &str,
    plugins: &[Plugin],
) -> Result<Vec<Object>, K8sError> {
    let mut objects = parse(origin, text)?;
    schedule_on_system_nodes(&mut objects);
    add_plugins(&mut objects, plugins).map_err(|message| K8sError::Manifest {
        source_name: origin.to_string(),
        message,
    })?;
    objects.push(namespace_object(namespace));
    Ok(objects)
}

/// The sidecar container of `plugin`, named `cmp-<name>`.
pub fn sidecar_name(plugin_name: &str) -> String {
    format!("cmp-{plugin_name}")
}

/// Adds the plugins' ConfigMap (always, so removing the last plugin empties
/// it), the configuration's hash to the repo-server's pod template, and one
/// sidecar per plugin to the repo-server Deployment.
fn add_plugins(objects: &mut Vec<Object>, plugins: &[Plugin]) -> Result<(), String> {
    let data: serde_json::Map<String, Value> = plugins
        .iter()
        .map(|p| (config_key(&p.name), Value::String(plugin_yaml(p))))
        .collect();
    let hash = crate::addons::release::sha256_hex(
        serde_json::to_string(&data).unwrap_or_default().as_bytes(),
    );
    objects.push(Object {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: PLUGINS_CONFIGMAP.into(),
        namespace: None,
        value: json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": PLUGINS_CONFIGMAP,
                "labels": {
                    "app.kubernetes.io/part-of": "argocd",
                    "app.kubernetes.io/managed-by": "terrace",
                },
            },
            "data": data,
        }),
    });
    let Some(repo_server) = objects
        .iter_mut()
        .find(|o| o.kind == "Deployment" && o.name == REPO_SERVER)
    else {
        return if plugins.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "no Deployment {REPO_SERVER} to add the plugin sidecars to"
            ))
        };
    };
    // Always set, so the value (not the key's presence) tracks the
    // configuration and removing every plugin rolls the pods too.
    if let Some(annotations) = repo_server
        .value
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
        .map(|m| m.entry("annotations").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        annotations.insert(PLUGINS_HASH_ANNOTATION.into(), Value::String(hash));
    }
    if plugins.is_empty() {
        return Ok(());
    }
    let pod = repo_server
        .pod_spec_mut()
        .ok_or_else(|| format!("Deployment {REPO_SERVER} has no pod template"))?;
    let volumes = pod
        .entry("volumes")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| format!("Deployment {REPO_SERVER}: volumes is not a list"))?;
    for needed in [VAR_FILES, PLUGIN_SOCKETS] {
        if !volumes.iter().any(|v| v["name"] == needed) {
            return Err(format!(
                "Deployment {REPO_SERVER} has no volume {needed:?}, which plugin sidecars need (has this Argo CD release changed its plugin mechanism?)"
            ));
        }
    }
    volumes.push(json!({ "name": CONFIG_VOLUME, "configMap": { "name": PLUGINS_CONFIGMAP } }));
    volumes.push(json!({ "name": TMP_VOLUME, "emptyDir": {} }));
    let containers = pod
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| format!("Deployment {REPO_SERVER} has no containers"))?;
    containers.extend(plugins.iter().map(sidecar));
    Ok(())
}

fn config_key(plugin_name: &str) -> String {
    format!("{plugin_name}.yaml")
}

/// The `ConfigManagementPlugin` file Argo CD's CMP server reads (not a
/// Kubernetes object, though it looks like one).
fn plugin_yaml(plugin: &Plugin) -> String {
    let mut spec = serde_json::Map::new();
    if let Some(version) = &plugin.version {
        spec.insert("version".into(), json!(version));
    }
    if !plugin.init.is_empty() {
        spec.insert("init".into(), json!({ "command": plugin.init }));
    }
    spec.insert("generate".into(), json!({ "command": plugin.generate }));
    if let Some(glob) = &plugin.discover {
        spec.insert("discover".into(), json!({ "fileName": glob }));
    }
    let document = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ConfigManagementPlugin",
        "metadata": { "name": plugin.name },
        "spec": spec,
    });
    serde_norway::to_string(&document).unwrap_or_default()
}

/// The sidecar as Argo CD's plugin mechanism requires it: started as the
/// CMP server that the repo-server's init container copied into
/// `var-files`, running as user 999, with its socket in `plugins`, its
/// `plugin.yaml` from the ConfigMap, and a `/tmp` of its own (not the
/// repo-server's, which Argo CD advises against sharing).
fn sidecar(plugin: &Plugin) -> Value {
    let mut container = json!({
        "name": sidecar_name(&plugin.name),
        "image": plugin.image,
        "command": ["/var/run/argocd/argocd-cmp-server"],
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 999,
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "volumeMounts": [
            { "name": VAR_FILES, "mountPath": "/var/run/argocd" },
            { "name": PLUGIN_SOCKETS, "mountPath": "/home/argocd/cmp-server/plugins" },
            { "name": CONFIG_VOLUME, "mountPath": PLUGIN_CONFIG_PATH, "subPath": config_key(&plugin.name) },
            { "name": TMP_VOLUME, "mountPath": "/tmp" },
        ],
    });
    if let Some(resources) = &plugin.resources {
        container["resources"] = resources.clone();
    }
    container
}

fn namespace_object(name: &str) -> Object {
    Object {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        name: name.into(),
        namespace: None,
        value: json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { "app.kubernetes.io/managed-by": "terrace" } },
        }),
    }
}

/// Adds the system tolerations (keeping any the pod already has) and the
/// system node selector to every workload's pod template; returns how many
/// workloads it changed.
pub fn schedule_on_system_nodes(objects: &mut [Object]) -> usize {
    let tolerations = system_tolerations();
    let selector = system_node_selector();
    let mut patched = 0;
    for object in objects
        .iter_mut()
        .filter(|o| WORKLOADS.contains(&o.kind.as_str()))
    {
        let Some(pod) = object.pod_spec_mut() else {
            continue;
        };
        let existing = pod
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = existing {
            for t in tolerations.as_array().into_iter().flatten() {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
        let node_selector = pod.entry("nodeSelector").or_insert_with(|| json!({}));
        if let (Value::Object(map), Value::Object(wanted)) = (node_selector, &selector) {
            map.extend(wanted.clone());
        }
        patched += 1;
    }
    patched
}

/// Waits until every Deployment and StatefulSet among `objects` has rolled out.
pub async fn rollout(
    kube: &Kube,
    objects: &[Object],
    namespace: &str,
    timeout: Duration,
    backoff: &Backoff,
) -> Result<usize, K8sError> {
    let workloads: Vec<&Object> = objects
        .iter()
        .filter(|o| WORKLOADS.contains(&o.kind.as_str()))
        .collect();
    futures::future::try_join_all(workloads.iter().map(|w| async move {
        let ns = w.namespace.as_deref().unwrap_or(namespace);
        let what = format!("{} {ns}/{} to roll out", w.kind, w.name);
        until(&what, timeout, backoff, || async {
            let found = kube.get(&w.api_version, &w.kind, Some(ns), &w.name).await?;
            Ok(match found {
                None => Poll::Pending("not found".into()),
                Some(object) => {
                    rolled_out(&w.kind, &serde_json::to_value(object).unwrap_or_default())
                }
            })
        })
        .await
        .map_err(K8sError::from)
    }))
    .await?;
    Ok(workloads.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: argocd-server }
spec:
  template:
    spec:
      tolerations: [{ key: other, operator: Exists }]
      containers: [{ name: server, image: "quay.io/argoproj/argocd:v3.5.1" }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: argocd-application-controller }
spec:
  template:
    spec:
      nodeSelector: { kubernetes.io/os: linux }
      containers: [{ name: controller, image: "quay.io/argoproj/argocd:v3.5.1" }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: argocd-cm }
"#;

    #[test]
    fn workloads_get_system_tolerations_and_selector_once() {
        let mut objects = prepare(MANIFEST, "install.yaml", "argocd", &[]).unwrap();
        assert_eq!(objects.last().unwrap().describe(), "Namespace argocd");
        assert_eq!(
            schedule_on_system_nodes(&mut objects),
            2,
            "idempotent: patching again changes nothing"
        );
        let deployment = &objects[0].value["spec"]["template"]["spec"];
        assert_eq!(deployment["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(deployment["tolerations"][1]["key"], "CriticalAddonsOnly");
        assert_eq!(deployment["nodeSelector"]["terrace.dev/pool"], "system");
        let sts = &objects[1].value["spec"]["template"]["spec"];
        assert_eq!(sts["nodeSelector"]["kubernetes.io/os"], "linux");
        assert_eq!(sts["nodeSelector"]["terrace.dev/pool"], "system");
        assert_eq!(sts["tolerations"][0]["effect"], "NoSchedule");
        assert!(objects[2].value.get("spec").is_none());
    }

    fn plugin() -> Plugin {
        Plugin {
            name: "cdk8s".into(),
            version: Some("v1.0".into()),
            image: "node:22".into(),
            init: vec![],
            generate: vec!["cdk8s".into(), "synth".into(), "--stdout".into()],
            discover: None,
            resources: None,
        }
    }

    #[test]
    fn plugins_need_the_repo_server_and_its_plugin_volumes() {
        let err = prepare(MANIFEST, "install.yaml", "argocd", &[plugin()]).unwrap_err();
        assert!(
            err.to_string().contains("no Deployment argocd-repo-server"),
            "{err}"
        );
        let without_volumes = format!(
            "{MANIFEST}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: argocd-repo-server }}\nspec:\n  template:\n    spec:\n      containers: [{{ name: argocd-repo-server, image: x }}]\n      volumes: [{{ name: var-files, emptyDir: {{}} }}]\n"
        );
        let err = prepare(&without_volumes, "install.yaml", "argocd", &[plugin()]).unwrap_err();
        assert!(err.to_string().contains("no volume \"plugins\""), "{err}");
        // Without plugins, a release without a repo-server is left alone.
        let objects = prepare(MANIFEST, "install.yaml", "argocd", &[]).unwrap();
        assert!(objects.iter().any(|o| o.name == PLUGINS_CONFIGMAP));
    }
}
