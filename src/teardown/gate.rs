//! The ownership gate: whether `down` (and `down --plan`, and `janitor
//! --yes`) may touch a cluster of this name at all. The default name is
//! `terrace-<region>`, so someone else's cluster of that name is plausible,
//! and a drain or a sweep of it would delete their load balancers, nodes
//! and volumes.
//!
//! In order:
//! 1. An EKS cluster of that name exists: it must carry both of Terrace's
//!    tags (`terrace.dev/managed-by=terrace`, `terrace.dev/cluster=<name>`).
//! 2. No EKS cluster: the Terraform state in Terrace's state bucket, or a
//!    resource tagged `terrace.dev/cluster=<name>` (a tag only Terrace and
//!    the controllers it configures write), says it was Terrace's.
//! 3. Nothing of the name at all: there is nothing to remove, which is
//!    allowed (a second `down` converges on success).
//! 4. Otherwise — resources tagged for a cluster of that name by the
//!    controllers' own tags and nothing of Terrace's — it is refused.
//!
//! Read-only.

use aws_sdk_resourcegroupstagging::types::TagFilter;
use serde::Serialize;

use super::TeardownError;
use super::api::{Api, code};
use super::tags::{Marker, markers};
use crate::aws::{Aws, sdk_message};
use crate::model::tags::{TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE, owned_by_terrace};

/// How many of the resources found a decision names.
const NAMED: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub proceed: bool,
    /// Why, in one sentence naming what was found.
    pub reason: String,
}

/// What the gate needs to know besides AWS.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Where the cluster's Terraform state is, when it exists.
    pub state: Option<String>,
}

/// Decides whether `cluster` may be torn down.
pub async fn gate(aws: &Aws, cluster: &str, evidence: &Evidence) -> Result<Gate, TeardownError> {
    let api = Api::new(aws);
    api.hit("eks:DescribeCluster");
    match api.eks.describe_cluster().name(cluster).send().await {
        Ok(out) => {
            let tags: Vec<(String, String)> = out
                .cluster()
                .and_then(|c| c.tags())
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ours =
                owned_by_terrace(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), cluster);
            return Ok(if ours {
                Gate {
                    proceed: true,
                    reason: format!(
                        "EKS cluster {cluster} carries {TAG_MANAGED_BY}={TAG_MANAGED_BY_VALUE} and {TAG_CLUSTER}={cluster}"
                    ),
                }
            } else {
                Gate {
                    proceed: false,
                    reason: format!(
                        "EKS cluster {cluster} in {} is not Terrace's: it lacks {} (Terrace tears down only clusters it built; pick the right --name or --region)",
                        api.region(),
                        missing_tags(&tags, cluster)
                    ),
                }
            });
        }
        Err(e) if code(&e) == Some("ResourceNotFoundException") => {}
        Err(e) => return Err(api.error("describe the EKS cluster", sdk_message(&e))),
    }
    if let Some(state) = &evidence.state {
        return Ok(Gate {
            proceed: true,
            reason: format!(
                "no EKS cluster {cluster}, but Terrace's Terraform state for it is at {state}"
            ),
        });
    }
    let terrace = tagged(&api, cluster, Marker::Terrace).await?;
    if !terrace.is_empty() {
        return Ok(Gate {
            proceed: true,
            reason: format!(
                "no EKS cluster {cluster} and no Terraform state, but {} resource(s) tagged {TAG_CLUSTER}={cluster} ({})",
                terrace.len(),
                first(&terrace)
            ),
        });
    }
    let mut foreign = Vec::new();
    for marker in markers::ANY.iter().filter(|m| **m != Marker::Terrace) {
        foreign.extend(tagged(&api, cluster, *marker).await?);
    }
    foreign.sort();
    foreign.dedup();
    if foreign.is_empty() {
        return Ok(Gate {
            proceed: true,
            reason: format!(
                "nothing of {cluster} exists in {}: no EKS cluster, no Terraform state, nothing tagged for it",
                api.region()
            ),
        });
    }
    Ok(Gate {
        proceed: false,
        reason: format!(
            "no EKS cluster {cluster}, no Terraform state and nothing tagged {TAG_CLUSTER}={cluster}, yet {} resource(s) carry a controller's tag for a cluster of that name ({}): nothing says it was Terrace's",
            foreign.len(),
            first(&foreign)
        ),
    })
}

fn missing_tags(tags: &[(String, String)], cluster: &str) -> String {
    let has = |k: &str, v: &str| tags.iter().any(|(tk, tv)| tk == k && tv == v);
    let mut missing = Vec::new();
    if !has(TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE) {
        missing.push(format!("{TAG_MANAGED_BY}={TAG_MANAGED_BY_VALUE}"));
    }
    if !has(TAG_CLUSTER, cluster) {
        missing.push(format!("{TAG_CLUSTER}={cluster}"));
    }
    missing.join(" and ")
}

fn first(arns: &[String]) -> String {
    let mut text = arns
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if arns.len() > NAMED {
        text.push_str(", …");
    }
    text
}

/// ARNs the Tagging API holds with `marker`'s tag for `cluster`.
async fn tagged(api: &Api, cluster: &str, marker: Marker) -> Result<Vec<String>, TeardownError> {
    let filter = TagFilter::builder()
        .key(marker.key(cluster))
        .values(marker.value(cluster))
        .build();
    let mut arns = Vec::new();
    let mut pages = api
        .tagging
        .get_resources()
        .tag_filters(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("tagging:GetResources");
        let page = page.map_err(|e| api.error("query the Tagging API", sdk_message(&e)))?;
        arns.extend(
            page.resource_tag_mapping_list()
                .iter()
                .filter_map(|m| m.resource_arn().map(str::to_string)),
        );
    }
    Ok(arns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_tags() {
        let tags = vec![(TAG_CLUSTER.to_string(), "c".to_string())];
        assert_eq!(missing_tags(&tags, "c"), "terrace.dev/managed-by=terrace");
        assert_eq!(
            missing_tags(&[], "c"),
            "terrace.dev/managed-by=terrace and terrace.dev/cluster=c"
        );
    }

    #[test]
    fn names_at_most_three() {
        let arns: Vec<String> = (0..5).map(|i| format!("a{i}")).collect();
        assert_eq!(first(&arns), "a0, a1, a2, …");
        assert_eq!(first(&arns[..2]), "a0, a1");
    }
}
