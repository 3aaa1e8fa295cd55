//! Server-side apply of manifests, with each object's kind resolved through
//! API discovery, and the reads and condition checks that go with it.
//!
//! Discovery results are cached per `apiVersion`; a kind missing from the
//! cache triggers a fresh lookup, and applying CustomResourceDefinitions
//! clears the cache, so kinds defined earlier in the same run are found.

use std::collections::HashMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::Value;

use super::wait::until;
use super::{K8sError, Kube};
use crate::wait::{Backoff, Poll};

/// The field manager of everything Terrace applies.
pub const FIELD_MANAGER: &str = "terrace";

/// How many objects are applied at once (order inside one set does not
/// matter to server-side apply; CRDs and Namespaces go first regardless).
const APPLY_CONCURRENCY: usize = 8;

const CRD_KIND: &str = "CustomResourceDefinition";
const CRD_API_VERSION: &str = "apiextensions.k8s.io/v1";

/// One object of a manifest, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub value: Value,
}

impl Object {
    /// `Kind namespace/name` or `Kind name`, for messages.
    pub fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    pub fn is_crd(&self) -> bool {
        self.kind == CRD_KIND && self.api_version == CRD_API_VERSION
    }

    /// `spec.template.spec` of a workload (Deployment, StatefulSet, …).
    pub fn pod_spec_mut(&mut self) -> Option<&mut serde_json::Map<String, Value>> {
        self.value
            .pointer_mut("/spec/template/spec")
            .and_then(Value::as_object_mut)
    }

    fn from_value(value: Value, source_name: &str, index: usize) -> Result<Object, K8sError> {
        let field = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let missing = |what: &str| K8sError::Manifest {
            source_name: source_name.to_string(),
            message: format!("document {}: no {what}", index + 1),
        };
        Ok(Object {
            api_version: field("/apiVersion").ok_or_else(|| missing("apiVersion"))?,
            kind: field("/kind").ok_or_else(|| missing("kind"))?,
            name: field("/metadata/name").ok_or_else(|| missing("metadata.name"))?,
            namespace: field("/metadata/namespace"),
            value,
        })
    }
}

/// Parses multi-document YAML, skipping empty documents.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Object>, K8sError> {
    let mut objects = Vec::new();
    for (index, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|e| K8sError::Manifest {
            source_name: source_name.to_string(),
            message: format!("document {}: {e}", index + 1),
        })?;
        if value.is_null() {
            continue;
        }
        objects.push(Object::from_value(value, source_name, index)?);
    }
    Ok(objects)
}

/// One kind the API serves, as discovery reported it.
#[derive(Debug, Clone)]
pub struct Discovered {
    kind: String,
    plural: String,
    namespaced: bool,
}

/// A kind resolved to its REST resource.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// The `status.conditions` entry of `type_`: its status and message.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<(&'a str, Option<&'a str>)> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .map(|c| {
            (
                c.get("status").and_then(Value::as_str).unwrap_or("Unknown"),
                c.get("message")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty()),
            )
        })
}

/// Every condition as `Type=Status (Reason: message)`, for messages.
pub fn describe_conditions(object: &Value) -> String {
    let Some(conditions) = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
    else {
        return "no status conditions yet".into();
    };
    let text: Vec<String> = conditions
        .iter()
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            let mut line = format!("{}={}", s("type"), s("status"));
            match (s("reason"), s("message")) {
                ("", "") => {}
                (reason, "") => line.push_str(&format!(" ({reason})")),
                ("", message) => line.push_str(&format!(" ({message})")),
                (reason, message) => line.push_str(&format!(" ({reason}: {message})")),
            }
            line
        })
        .collect();
    if text.is_empty() {
        "no status conditions yet".into()
    } else {
        text.join("; ")
    }
}

impl Kube {
    /// Resolves a kind to its resource, asking the API when the cache does
    /// not know it.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<Resolved, K8sError> {
        if let Some(found) = self.cached(api_version, kind) {
            return Ok(found);
        }
        let client = self.client().await?;
        let action = format!("discover {api_version}");
        let listed = if api_version.contains('/') {
            client.list_api_group_resources(api_version).await
        } else {
            client.list_core_api_resources(api_version).await
        };
        let list = match listed {
            Ok(list) => list,
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(unknown(api_version, kind));
            }
            Err(error) => {
                return Err(K8sError::Api {
                    action,
                    error: Box::new(error),
                });
            }
        };
        let discovered: Vec<Discovered> = list
            .resources
            .into_iter()
            .filter(|r| !r.name.contains('/'))
            .map(|r| Discovered {
                kind: r.kind,
                plural: r.name,
                namespaced: r.namespaced,
            })
            .collect();
        self.lock_discovery()
            .insert(api_version.to_string(), discovered);
        self.cached(api_version, kind)
            .ok_or_else(|| unknown(api_version, kind))
    }

    /// Drops every discovery result (after CRDs change what the API serves).
    pub fn forget_discovery(&self) {
        self.lock_discovery().clear();
    }

    fn lock_discovery(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Discovered>>> {
        self.discovery()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cached(&self, api_version: &str, kind: &str) -> Option<Resolved> {
        let cache = self.lock_discovery();
        let found = cache.get(api_version)?.iter().find(|d| d.kind == kind)?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Some(Resolved {
            resource: ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                plural: found.plural.clone(),
            },
            namespaced: found.namespaced,
        })
    }

    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, K8sError> {
        let resolved = self.resolve(api_version, kind).await?;
        let client = self.client().await?;
        Ok(match (resolved.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(client, ns, &resolved.resource),
            _ => Api::all_with(client, &resolved.resource),
        })
    }

    /// Server-side applies one object as [`FIELD_MANAGER`], taking over
    /// fields another manager holds. A namespaced object without a namespace
    /// goes to `default_namespace`.
    pub async fn apply(
        &self,
        object: &Object,
        default_namespace: &str,
    ) -> Result<DynamicObject, K8sError> {
        let resolved = self.resolve(&object.api_version, &object.kind).await?;
        let namespace = object.namespace.as_deref().unwrap_or(default_namespace);
        let client = self.client().await?;
        let (api, what) = if resolved.namespaced {
            (
                Api::<DynamicObject>::namespaced_with(client, namespace, &resolved.resource),
                format!("{} {namespace}/{}", object.kind, object.name),
            )
        } else {
            (
                Api::all_with(client, &resolved.resource),
                format!("{} {}", object.kind, object.name),
            )
        };
        let mut body = object.value.clone();
        if resolved.namespaced
            && let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("namespace".into(), Value::String(namespace.to_string()));
        }
        api.patch(
            &object.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(K8sError::api(format!("apply {what}")))
    }

    /// Applies a set of objects: CustomResourceDefinitions first, each
    /// waited on until Established, then Namespaces, then the rest.
    pub async fn apply_all(
        &self,
        objects: &[Object],
        default_namespace: &str,
        crd_timeout: Duration,
        backoff: &Backoff,
    ) -> Result<(), K8sError> {
        let (crds, rest): (Vec<&Object>, Vec<&Object>) = objects.iter().partition(|o| o.is_crd());
        let (namespaces, rest): (Vec<&Object>, Vec<&Object>) = rest
            .into_iter()
            .partition(|o| o.kind == "Namespace" && o.api_version == "v1");
        if !crds.is_empty() {
            self.apply_each(&crds, default_namespace).await?;
            futures::future::try_join_all(
                crds.iter()
                    .map(|crd| self.wait_established(&crd.name, crd_timeout, backoff)),
            )
            .await?;
            self.forget_discovery();
        }
        self.apply_each(&namespaces, default_namespace).await?;
        self.apply_each(&rest, default_namespace).await
    }

    async fn apply_each(
        &self,
        objects: &[&Object],
        default_namespace: &str,
    ) -> Result<(), K8sError> {
        futures::stream::iter(objects.iter().map(|o| self.apply(o, default_namespace)))
            .buffered(APPLY_CONCURRENCY)
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>, K8sError> {
        let api = self.api(api_version, kind, namespace).await?;
        api.get_opt(name)
            .await
            .map_err(K8sError::api(format!("read {kind} {name}")))
    }

    /// Lists objects of a kind, in one namespace or all, optionally by label.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<DynamicObject>, K8sError> {
        let api = self.api(api_version, kind, namespace).await?;
        let mut params = ListParams::default();
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        Ok(api
            .list(&params)
            .await
            .map_err(K8sError::api(format!("list {kind}")))?
            .items)
    }

    /// Waits until the CustomResourceDefinition `name` is Established.
    pub async fn wait_established(
        &self,
        name: &str,
        timeout: Duration,
        backoff: &Backoff,
    ) -> Result<(), K8sError> {
        let what = format!("CustomResourceDefinition {name} to be Established");
        until(&what, timeout, backoff, || async {
            let crd = Api::<CustomResourceDefinition>::all(self.client().await?)
                .get_opt(name)
                .await
                .map_err(K8sError::api(format!(
                    "read CustomResourceDefinition {name}"
                )))?;
            Ok(match crd {
                None => Poll::Pending("not found".into()),
                Some(crd) => established(&serde_json::to_value(&crd).unwrap_or_default()),
            })
        })
        .await?;
        Ok(())
    }

    /// Waits until some CustomResourceDefinition defines `kind` in
    /// `api_version` and is Established (a chart installs it), then makes
    /// discovery forget what it knew so the kind resolves.
    pub async fn wait_kind_served(
        &self,
        api_version: &str,
        kind: &str,
        timeout: Duration,
        backoff: &Backoff,
    ) -> Result<(), K8sError> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let what =
            format!("a CustomResourceDefinition serving {kind} in {api_version} to be Established");
        until(&what, timeout, backoff, || async {
            let client = self.client().await?;
            let crds = Api::<CustomResourceDefinition>::all(client)
                .list(&ListParams::default())
                .await
                .map_err(K8sError::api("list CustomResourceDefinitions"))?;
            let found = crds.items.into_iter().find(|crd| {
                crd.spec.group == group
                    && crd.spec.names.kind == kind
                    && crd
                        .spec
                        .versions
                        .iter()
                        .any(|v| v.name == version && v.served)
            });
            Ok(match found {
                None => Poll::Pending(format!(
                    "no CustomResourceDefinition defines {kind} in {api_version} yet"
                )),
                Some(crd) => established(&serde_json::to_value(&crd).unwrap_or_default()),
            })
        })
        .await?;
        self.forget_discovery();
        Ok(())
    }
}

fn established(crd: &Value) -> Poll<()> {
    match condition(crd, "Established") {
        Some(("True", _)) => Poll::Ready(()),
        _ => Poll::Pending(describe_conditions(crd)),
    }
}

fn unknown(api_version: &str, kind: &str) -> K8sError {
    K8sError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_documents_and_skips_empty_ones() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n---\n# only a comment\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n";
        let objects = parse("test.yaml", text).unwrap();
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].describe(), "ConfigMap x/a");
        assert_eq!(objects[1].describe(), "Deployment b");
    }

    #[test]
    fn an_object_without_a_name_is_an_error_naming_the_file() {
        let err = parse(
            "app.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "app.yaml: document 1: no metadata.name");
    }

    #[test]
    fn conditions_are_found_and_described() {
        let obj = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "NodeClassNotReady", "message": "EC2NodeClass default not ready"},
            {"type": "Established", "status": "True"},
        ]}});
        assert_eq!(
            condition(&obj, "Ready"),
            Some(("False", Some("EC2NodeClass default not ready")))
        );
        assert_eq!(
            describe_conditions(&obj),
            "Ready=False (NodeClassNotReady: EC2NodeClass default not ready); Established=True"
        );
        assert_eq!(describe_conditions(&json!({})), "no status conditions yet");
    }
}
