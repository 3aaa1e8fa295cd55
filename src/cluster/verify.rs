//! `up`'s last phase: the cluster as a whole is what it should be — every
//! enabled addon Synced and Healthy at its pinned chart version, every
//! extra object an addon brings (Karpenter's NodePool and EC2NodeClass,
//! each ClusterSecretStore) Ready, and the system node group's desired
//! number of nodes Ready — all waited for under one deadline. When the
//! deadline passes, the error names each thing that is not ready.
//!
//! What to expect comes from the catalog and the rendered tree, so a new
//! addon folder is verified without a change here.

use std::time::Duration;

use serde_json::Value;

use super::ClusterError;
use crate::addons::install;
use crate::addons::{Addon, Catalog, health};
use crate::config::ClusterSpec;
use crate::k8s::{K8sError, Kube, Object, condition, until};
use crate::progress::{Event, Reporter};
use crate::render::{RenderError, Tree};
use crate::wait::{Backoff, Poll, WaitError};

/// The label EKS puts on the nodes of a managed node group.
const NODE_GROUP_LABEL: &str = "eks.amazonaws.com/nodegroup";

/// What a healthy cluster of one spec looks like.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Enabled addons and the chart version each is pinned to (`None`:
    /// Argo CD, installed from its release manifest).
    pub addons: Vec<(String, Option<String>)>,
    /// Where the Applications and the GitOps engine's workloads live.
    pub gitops: Addon,
    pub extras: Vec<Object>,
    pub node_group: String,
    pub nodes: u32,
}

impl Expected {
    pub fn of(spec: &ClusterSpec, tree: &Tree) -> Result<Expected, ClusterError> {
        let catalog = Catalog::embedded().map_err(RenderError::Catalog)?;
        let mut addons = Vec::new();
        let mut extras = Vec::new();
        for addon in catalog.iter().filter(|a| spec.addon_enabled(&a.name)) {
            let pinned = addon.chart.as_ref().map(|c| c.version.clone());
            addons.push((addon.name.clone(), pinned));
            for mut object in install::extras(tree, addon).map_err(ClusterError::Addons)? {
                object
                    .namespace
                    .get_or_insert_with(|| addon.namespace.clone());
                extras.push(object);
            }
        }
        Ok(Expected {
            addons,
            gitops: catalog.gitops().clone(),
            extras,
            node_group: spec.names.node_group.clone(),
            nodes: spec.system_nodes.desired,
        })
    }
}

/// Waits until everything in `expected` is ready, or `deadline` passes.
pub async fn verify(
    kube: &Kube,
    expected: &Expected,
    deadline: Duration,
    backoff: &Backoff,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let waited = until("the cluster to be ready", deadline, backoff, || {
        look(kube, expected)
    })
    .await;
    match waited {
        Ok(()) => {
            reporter.report(Event::info(
                "verify",
                format!(
                    "{} addons Synced and Healthy at their pinned versions, {} objects Ready, {} system nodes Ready",
                    expected.addons.len(),
                    expected.extras.len(),
                    expected.nodes
                ),
            ));
            Ok(())
        }
        Err(WaitError::Timeout { after, last, .. }) => Err(ClusterError::NotReady {
            seconds: after.as_secs(),
            problems: last.lines().map(str::to_string).collect(),
        }),
        Err(err) => Err(ClusterError::Kube(K8sError::Wait(err))),
    }
}

/// One look at everything; pending with one line per thing not ready.
async fn look(kube: &Kube, expected: &Expected) -> Result<Poll<()>, K8sError> {
    let mut problems = Vec::new();
    let names: Vec<&str> = expected.addons.iter().map(|(n, _)| n.as_str()).collect();
    for status in health::status(kube, &expected.gitops, &names).await? {
        let pinned = expected
            .addons
            .iter()
            .find(|(n, _)| *n == status.name)
            .and_then(|(_, v)| v.as_deref());
        if !status.healthy {
            let why = status
                .message
                .unwrap_or_else(|| format!("{} / {}", status.sync, status.health));
            problems.push(format!("addon {}: {why}", status.name));
        } else if let Some(pinned) = pinned
            && status.version != pinned
        {
            problems.push(format!(
                "addon {}: at chart version {}, pinned {pinned}",
                status.name, status.version
            ));
        }
    }
    problems.extend(nodes(kube, &expected.node_group, expected.nodes).await?);
    for object in &expected.extras {
        let found = kube
            .get(
                &object.api_version,
                &object.kind,
                object.namespace.as_deref(),
                &object.name,
            )
            .await;
        let state = match found {
            Ok(Some(found)) => health::ready(&serde_json::to_value(found).unwrap_or_default()),
            Ok(None) => Poll::Pending("not found".into()),
            Err(err) if err.is_not_found() => Poll::Pending("its kind is not served".into()),
            Err(err) => return Err(err),
        };
        if let Poll::Pending(why) | Poll::Failed(why) = state {
            problems.push(format!("{}: {why}", describe(object)));
        }
    }
    Ok(if problems.is_empty() {
        Poll::Ready(())
    } else {
        Poll::Pending(problems.join("\n"))
    })
}

/// `Kind name` for cluster-scoped kinds the manifest gave no namespace.
fn describe(object: &Object) -> String {
    format!("{} {}", object.kind, object.name)
}

/// What is wrong with the system node group's nodes, if anything: each
/// node that is not Ready by name, and a shortfall against `desired`.
async fn nodes(kube: &Kube, group: &str, desired: u32) -> Result<Vec<String>, K8sError> {
    let selector = format!("{NODE_GROUP_LABEL}={group}");
    let nodes = kube.list("v1", "Node", None, Some(&selector)).await?;
    let mut problems = Vec::new();
    let mut ready = 0;
    for node in &nodes {
        let value: Value = serde_json::to_value(node).unwrap_or_default();
        let name = value["metadata"]["name"].as_str().unwrap_or("?");
        match condition(&value, "Ready") {
            Some(("True", _)) => ready += 1,
            Some((status, message)) => problems.push(format!(
                "node {name}: Ready={status}{}",
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            )),
            None => problems.push(format!("node {name}: no Ready condition yet")),
        }
    }
    if ready < desired as usize {
        problems.push(format!(
            "system node group {group}: {ready} of {desired} nodes Ready"
        ));
    }
    Ok(problems)
}
