//! Finding Terrace's clusters: which EKS clusters carrying Terrace's tags
//! exist in which regions (regions queried concurrently, at most
//! [`CONCURRENT_REGIONS`] at a time), and the state of one cluster and its
//! node groups. Read-only; it reports a region it could not read instead of
//! silently leaving it out.

use std::time::SystemTime;

use futures::StreamExt;
use serde::Serialize;

use super::token::rfc3339;
use super::{Aws, sdk_message};
use crate::model::tags::{TAG_EXPIRES_AT, kept, owned_by_terrace};

/// How many regions are queried at once: enough to list all ~30 regions in
/// a few round trips, few enough to stay clear of API throttling.
pub const CONCURRENT_REGIONS: usize = 8;
/// Clusters described at once within one region.
const CONCURRENT_CLUSTERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot list the account's enabled regions: {0}")]
    Regions(String),
    #[error("no EKS cluster named {cluster} in {region}")]
    NotFound { cluster: String, region: String },
    #[error("cannot read EKS cluster {cluster} in {region}: {message}")]
    Api {
        cluster: String,
        region: String,
        message: String,
    },
    #[error("could not list {} region(s): {}", .0.len(), .0.iter().map(|f| format!("{}: {}", f.region, f.message)).collect::<Vec<_>>().join("; "))]
    Incomplete(Vec<RegionFailure>),
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    pub name: String,
    pub region: String,
    pub version: Option<String>,
    pub status: String,
    /// RFC 3339 UTC.
    pub created_at: Option<String>,
    pub age_seconds: Option<u64>,
    /// Tagged `terrace.dev/keep=true`: the janitor never removes it.
    pub keep: bool,
    /// Its `terrace.dev/expires-at` tag, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionFailure {
    pub region: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub regions: Vec<String>,
    /// Sorted by region, then name.
    pub clusters: Vec<ClusterSummary>,
    pub failures: Vec<RegionFailure>,
}

impl Listing {
    /// The listing as an error when a region could not be read.
    pub fn incomplete(&self) -> Option<DiscoveryError> {
        (!self.failures.is_empty()).then(|| DiscoveryError::Incomplete(self.failures.clone()))
    }
}

/// The regions enabled for the account.
pub async fn enabled_regions(aws: &Aws) -> Result<Vec<String>, DiscoveryError> {
    let out = aws
        .ec2()
        .describe_regions()
        .send()
        .await
        .map_err(|e| DiscoveryError::Regions(sdk_message(&e)))?;
    let mut regions: Vec<String> = out
        .regions()
        .iter()
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    regions.sort();
    Ok(regions)
}

/// Terrace's clusters in `regions`.
pub async fn list(aws: &Aws, regions: &[String]) -> Listing {
    let now = SystemTime::now();
    let results: Vec<(String, Result<Vec<ClusterSummary>, String>)> =
        futures::stream::iter(regions.iter().cloned())
            .map(|region| {
                let aws = aws.in_region(&region);
                async move {
                    let found = list_region(&aws, now).await;
                    (region, found)
                }
            })
            .buffer_unordered(CONCURRENT_REGIONS)
            .collect()
            .await;
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for (region, result) in results {
        match result {
            Ok(found) => clusters.extend(found),
            Err(message) => failures.push(RegionFailure { region, message }),
        }
    }
    clusters.sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
    failures.sort_by(|a, b| a.region.cmp(&b.region));
    Listing {
        regions: regions.to_vec(),
        clusters,
        failures,
    }
}

async fn list_region(aws: &Aws, now: SystemTime) -> Result<Vec<ClusterSummary>, String> {
    let eks = aws.eks();
    let mut names = Vec::new();
    let mut pages = eks.list_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(
            page.map_err(|e| sdk_message(&e))?
                .clusters()
                .iter()
                .cloned(),
        );
    }
    let described: Vec<Result<Option<ClusterSummary>, String>> = futures::stream::iter(names)
        .map(|name| {
            let eks = eks.clone();
            let region = aws.region().to_string();
            async move {
                match eks.describe_cluster().name(&name).send().await {
                    // Deleted between the list and the describe.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(format!("{name}: {}", sdk_message(&e))),
                    Ok(out) => Ok(out
                        .cluster()
                        .filter(|c| is_terraces(c, &name))
                        .map(|c| summary(c, &name, &region, now))),
                }
            }
        })
        .buffer_unordered(CONCURRENT_CLUSTERS)
        .collect()
        .await;
    described
        .into_iter()
        .filter_map(Result::transpose)
        .collect()
}

fn is_terraces(cluster: &aws_sdk_eks::types::Cluster, name: &str) -> bool {
    cluster.tags().is_some_and(|tags| {
        owned_by_terrace(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), name)
    })
}

fn summary(
    cluster: &aws_sdk_eks::types::Cluster,
    name: &str,
    region: &str,
    now: SystemTime,
) -> ClusterSummary {
    let created = cluster
        .created_at()
        .and_then(|t| SystemTime::try_from(*t).ok());
    ClusterSummary {
        name: name.to_string(),
        region: region.to_string(),
        version: cluster.version().map(str::to_string),
        status: status_text(cluster.status().map(|s| s.as_str())),
        created_at: created.map(rfc3339),
        age_seconds: created
            .and_then(|c| now.duration_since(c).ok())
            .map(|d| d.as_secs()),
        keep: is_kept(cluster),
        expires_at: expires_at(cluster),
    }
}

fn is_kept(cluster: &aws_sdk_eks::types::Cluster) -> bool {
    cluster
        .tags()
        .is_some_and(|t| kept(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

fn expires_at(cluster: &aws_sdk_eks::types::Cluster) -> Option<String> {
    cluster.tags().and_then(|t| t.get(TAG_EXPIRES_AT)).cloned()
}

fn status_text(status: Option<&str>) -> String {
    status.unwrap_or("UNKNOWN").to_string()
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub name: String,
    pub region: String,
    pub status: String,
    pub version: Option<String>,
    pub platform_version: Option<String>,
    pub endpoint: Option<String>,
    pub created_at: Option<String>,
    /// Whether the cluster carries Terrace's ownership tags.
    pub managed_by_terrace: bool,
    /// Tagged `terrace.dev/keep=true`: the janitor never removes it.
    pub keep: bool,
    /// Its `terrace.dev/expires-at` tag, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub node_groups: Vec<NodeGroupStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeGroupStatus {
    pub name: String,
    pub status: String,
    pub healthy: bool,
    pub desired: Option<i32>,
    pub min: Option<i32>,
    pub max: Option<i32>,
    pub instance_types: Vec<String>,
    /// EKS health issues, `CODE: message`.
    pub issues: Vec<String>,
}

/// The state of cluster `name` in `aws`'s region and of its node groups.
pub async fn status(aws: &Aws, name: &str) -> Result<ClusterStatus, DiscoveryError> {
    let eks = aws.eks();
    let region = aws.region().to_string();
    let api = |message: String| DiscoveryError::Api {
        cluster: name.to_string(),
        region: region.clone(),
        message,
    };
    let described = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                DiscoveryError::NotFound {
                    cluster: name.to_string(),
                    region: region.clone(),
                }
            } else {
                api(sdk_message(&e))
            }
        })?;
    let cluster = described
        .cluster()
        .ok_or_else(|| api("DescribeCluster returned no cluster".into()))?;

    let mut group_names = Vec::new();
    let mut pages = eks
        .list_nodegroups()
        .cluster_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        group_names.extend(
            page.map_err(|e| api(sdk_message(&e)))?
                .nodegroups()
                .iter()
                .cloned(),
        );
    }
    let groups = futures::future::join_all(group_names.iter().map(|group| {
        eks.describe_nodegroup()
            .cluster_name(name)
            .nodegroup_name(group)
            .send()
    }))
    .await;
    let mut node_groups = Vec::new();
    for (group, result) in group_names.iter().zip(groups) {
        let out = result.map_err(|e| api(format!("node group {group}: {}", sdk_message(&e))))?;
        if let Some(ng) = out.nodegroup() {
            node_groups.push(node_group_status(group, ng));
        }
    }
    node_groups.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(ClusterStatus {
        name: name.to_string(),
        region,
        status: status_text(cluster.status().map(|s| s.as_str())),
        version: cluster.version().map(str::to_string),
        platform_version: cluster.platform_version().map(str::to_string),
        endpoint: cluster.endpoint().map(str::to_string),
        created_at: cluster
            .created_at()
            .and_then(|t| SystemTime::try_from(*t).ok())
            .map(rfc3339),
        managed_by_terrace: is_terraces(cluster, name),
        keep: is_kept(cluster),
        expires_at: expires_at(cluster),
        node_groups,
    })
}

fn node_group_status(name: &str, ng: &aws_sdk_eks::types::Nodegroup) -> NodeGroupStatus {
    let issues: Vec<String> = ng
        .health()
        .map(|h| h.issues())
        .unwrap_or_default()
        .iter()
        .map(|i| {
            format!(
                "{}: {}",
                i.code().map(|c| c.as_str()).unwrap_or("Unknown"),
                i.message().unwrap_or_default()
            )
        })
        .collect();
    let status = status_text(ng.status().map(|s| s.as_str()));
    let scaling = ng.scaling_config();
    NodeGroupStatus {
        name: name.to_string(),
        healthy: status == "ACTIVE" && issues.is_empty(),
        status,
        desired: scaling.and_then(|s| s.desired_size()),
        min: scaling.and_then(|s| s.min_size()),
        max: scaling.and_then(|s| s.max_size()),
        instance_types: ng.instance_types().to_vec(),
        issues,
    }
}
