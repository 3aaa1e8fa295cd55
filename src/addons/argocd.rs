//! Bootstrapping Argo CD from its verified release manifest: the manifest
//! is parsed, every workload is made to run on the tainted system node group
//! (at first the only nodes there are; Argo CD's `install.yaml` carries no
//! tolerations), and after applying, each Deployment and StatefulSet is
//! awaited until it has rolled out.

use std::time::Duration;

use serde_json::{Value, json};

use crate::k8s::{K8sError, Kube, Object, parse, until};
use crate::model::system::{system_node_selector, system_tolerations};
use crate::wait::{Backoff, Poll};

use super::health::rolled_out;

/// The kinds whose rollout the bootstrap waits for.
const WORKLOADS: &[&str] = &["Deployment", "StatefulSet"];

/// Parses the manifest, schedules its workloads on the system nodes and
/// adds the namespace it installs into (the release manifest assumes it
/// exists).
pub fn prepare(text: &str, origin: &str, namespace: &str) -> Result<Vec<Object>, K8sError> {
    let mut objects = parse(origin, text)?;
    schedule_on_system_nodes(&mut objects);
    objects.push(namespace_object(namespace));
    Ok(objects)
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
        let mut objects = prepare(MANIFEST, "install.yaml", "argocd").unwrap();
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
}
