//! Finding what nightly jobs that died half way left behind: Terrace
//! clusters past the expiry `up --ttl` tagged them with, or (with no
//! expiry) older than a limit, and Terrace-tagged resources (VPCs,
//! volumes, load balancers, instances, …) whose cluster no longer exists.
//! Read-only; removing what it finds is the `down` path's job.
//!
//! An orphan group (the resources of one vanished cluster) is as old as
//! its youngest resource with a creation time (instances, volumes, NAT
//! gateways, load balancers): a cluster still being built must never look
//! abandoned. Groups with no dated resource are listed as undated, never
//! as stale. Anything tagged `terrace.dev/keep=true` is listed as kept and
//! never as stale. Ages are computed against an injectable clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use aws_sdk_resourcegroupstagging::types::TagFilter;
use aws_smithy_types::date_time::{DateTime, Format};
use futures::StreamExt;
use serde::Serialize;

use super::api::Api;
use crate::aws::discovery::{self, CONCURRENT_REGIONS, RegionFailure};
use crate::aws::{Aws, sdk_message};
use crate::model::tags::{TAG_CLUSTER, TAG_MANAGED_BY, TAG_MANAGED_BY_VALUE, kept as is_kept};

#[derive(Debug, Clone, Serialize)]
pub struct JanitorReport {
    pub regions: Vec<String>,
    pub older_than_seconds: u64,
    /// Older than the limit, oldest first.
    pub stale: Vec<Stale>,
    /// Orphan groups with no resource that has a creation time.
    pub undated: Vec<Stale>,
    /// Clusters and orphan groups tagged `terrace.dev/keep=true`: never
    /// removed, whatever their age or expiry.
    pub kept: Vec<Stale>,
    pub failures: Vec<RegionFailure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StaleKind {
    /// A Terrace EKS cluster.
    Cluster,
    /// Terrace resources of a cluster that no longer exists.
    Orphan,
}

/// Why the janitor removes (or spares) what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Past the expiry `up --ttl` tagged it with.
    Expired,
    /// Older than `--older-than` (and no expiry to go by).
    Older,
    /// Tagged `terrace.dev/keep=true`.
    Kept,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stale {
    pub kind: StaleKind,
    pub cluster: String,
    pub region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    pub reason: Reason,
    /// The cluster's `terrace.dev/expires-at` tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// For orphans, the ARNs of the resources left.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
}

/// Stale clusters and orphans in `regions`, as of now.
pub async fn find(aws: &Aws, regions: &[String], older_than: Duration) -> JanitorReport {
    find_at(aws, regions, older_than, SystemTime::now()).await
}

/// As [`find`], with ages measured at `now`.
pub async fn find_at(
    aws: &Aws,
    regions: &[String],
    older_than: Duration,
    now: SystemTime,
) -> JanitorReport {
    let listing = discovery::list(aws, regions).await;
    let mut failures = listing.failures.clone();
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let mut stale = Vec::new();
    let mut kept = Vec::new();
    for c in &listing.clusters {
        let entry = Stale {
            kind: StaleKind::Cluster,
            cluster: c.name.clone(),
            region: c.region.clone(),
            age_seconds: c
                .created_at
                .as_deref()
                .and_then(parse_time)
                .map(|t| age(t).as_secs()),
            reason: Reason::Older,
            expires_at: c.expires_at.clone(),
            resources: Vec::new(),
        };
        if c.keep {
            kept.push(Stale {
                reason: Reason::Kept,
                ..entry
            });
            continue;
        }
        // An expiry the janitor cannot read falls back to the age limit
        // rather than sparing the cluster for ever.
        match c.expires_at.as_deref().and_then(parse_time) {
            Some(at) if at <= now => stale.push(Stale {
                reason: Reason::Expired,
                ..entry
            }),
            Some(_) => {}
            None if entry.age_seconds.is_some_and(|a| a > older_than.as_secs()) => {
                stale.push(entry)
            }
            None => {}
        }
    }

    let failed: BTreeSet<String> = failures.iter().map(|f| f.region.clone()).collect();
    let orphans: Vec<(String, Result<Vec<Orphan>, String>)> =
        futures::stream::iter(regions.iter().filter(|r| !failed.contains(*r)).cloned())
            .map(|region| {
                let aws = aws.in_region(&region);
                async move {
                    let found = orphans(&Api::new(&aws)).await;
                    (region, found)
                }
            })
            .buffer_unordered(CONCURRENT_REGIONS)
            .collect()
            .await;
    let mut undated = Vec::new();
    for (region, result) in orphans {
        match result {
            Err(message) => failures.push(RegionFailure { region, message }),
            Ok(groups) => {
                for group in groups {
                    let entry = Stale {
                        kind: StaleKind::Orphan,
                        cluster: group.cluster,
                        region: region.clone(),
                        age_seconds: group.youngest.map(|t| age(t).as_secs()),
                        reason: Reason::Older,
                        expires_at: None,
                        resources: group.arns,
                    };
                    match entry.age_seconds {
                        _ if group.kept => kept.push(Stale {
                            reason: Reason::Kept,
                            ..entry
                        }),
                        None => undated.push(entry),
                        Some(a) if a > older_than.as_secs() => stale.push(entry),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    stale.sort_by(|a, b| {
        (b.age_seconds, &a.region, &a.cluster).cmp(&(a.age_seconds, &b.region, &b.cluster))
    });
    undated.sort_by(|a, b| (&a.region, &a.cluster).cmp(&(&b.region, &b.cluster)));
    kept.sort_by(|a, b| (&a.region, &a.cluster).cmp(&(&b.region, &b.cluster)));
    failures.sort_by(|a, b| a.region.cmp(&b.region));
    JanitorReport {
        regions: regions.to_vec(),
        older_than_seconds: older_than.as_secs(),
        stale,
        undated,
        kept,
        failures,
    }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .and_then(|t| SystemTime::try_from(t).ok())
}

struct Orphan {
    cluster: String,
    arns: Vec<String>,
    youngest: Option<SystemTime>,
    /// One of its resources carries the keep tag.
    kept: bool,
}

/// Terrace-tagged resources of this region grouped by cluster, for the
/// clusters EKS no longer knows.
async fn orphans(api: &Api) -> Result<Vec<Orphan>, String> {
    let mut existing = BTreeSet::new();
    let mut pages = api.eks.list_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("eks:ListClusters");
        existing.extend(
            page.map_err(|e| sdk_message(&e))?
                .clusters()
                .iter()
                .cloned(),
        );
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut kept_groups = BTreeSet::new();
    let mut pages = api
        .tagging
        .get_resources()
        .tag_filters(
            TagFilter::builder()
                .key(TAG_MANAGED_BY)
                .values(TAG_MANAGED_BY_VALUE)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("tagging:GetResources");
        for mapping in page
            .map_err(|e| sdk_message(&e))?
            .resource_tag_mapping_list()
        {
            let cluster = mapping
                .tags()
                .iter()
                .find(|t| t.key() == TAG_CLUSTER)
                .map(|t| t.value().to_string());
            if let (Some(cluster), Some(arn)) = (cluster, mapping.resource_arn())
                && !existing.contains(&cluster)
            {
                if is_kept(mapping.tags().iter().map(|t| (t.key(), t.value()))) {
                    kept_groups.insert(cluster.clone());
                }
                groups.entry(cluster).or_default().push(arn.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for (cluster, mut arns) in groups {
        arns.sort();
        let youngest = created(api, &arns).await?.into_iter().max();
        out.push(Orphan {
            kept: kept_groups.contains(&cluster),
            cluster,
            arns,
            youngest,
        });
    }
    Ok(out)
}

/// Creation times of the resources among `arns` that have one.
async fn created(api: &Api, arns: &[String]) -> Result<Vec<SystemTime>, String> {
    let ids = |kind: &str| -> Vec<String> {
        arns.iter()
            .filter_map(|a| {
                a.split_once(&format!(":{kind}/"))
                    .map(|(_, id)| id.to_string())
            })
            .collect()
    };
    let mut times = Vec::new();
    let time = |t: Option<&DateTime>| t.and_then(|t| SystemTime::try_from(*t).ok());
    let instances = ids("instance");
    if !instances.is_empty() {
        api.hit("ec2:DescribeInstances");
        let out = api
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-id")
                    .set_values(Some(instances))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_message(&e))?;
        times.extend(
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| time(i.launch_time())),
        );
    }
    let volumes = ids("volume");
    if !volumes.is_empty() {
        api.hit("ec2:DescribeVolumes");
        let out = api
            .ec2
            .describe_volumes()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("volume-id")
                    .set_values(Some(volumes))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_message(&e))?;
        times.extend(out.volumes().iter().filter_map(|v| time(v.create_time())));
    }
    let nats = ids("natgateway");
    if !nats.is_empty() {
        api.hit("ec2:DescribeNatGateways");
        let out = api
            .ec2
            .describe_nat_gateways()
            .filter(
                aws_sdk_ec2::types::Filter::builder()
                    .name("nat-gateway-id")
                    .set_values(Some(nats))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_message(&e))?;
        times.extend(
            out.nat_gateways()
                .iter()
                .filter_map(|n| time(n.create_time())),
        );
    }
    for arn in arns.iter().filter(|a| a.contains(":loadbalancer/")) {
        api.hit("elbv2:DescribeLoadBalancers");
        match api
            .elbv2
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
        {
            Ok(out) => times.extend(
                out.load_balancers()
                    .iter()
                    .filter_map(|lb| time(lb.created_time())),
            ),
            Err(e) if super::api::code(&e) == Some("LoadBalancerNotFound") => {}
            Err(e) => return Err(sdk_message(&e)),
        }
    }
    Ok(times)
}
