//! The leak report: everything still tagged for the cluster in its region
//! after a sweep. Two sources, because neither sees everything:
//!
//! - the per-service listings of the inventory, every kind the sweep
//!   handles (among them launch templates and IAM roles, which the Resource
//!   Groups Tagging API does not return in every implementation, detached
//!   ENIs, and Route53 records, which carry no tags at all);
//! - the Tagging API's `GetResources` for each tag that can mark the
//!   cluster's resources, which also finds kinds the sweep never handles.
//!
//! The Tagging API lags behind deletes and keeps terminated instances for
//! a while, so what it returns for instances, volumes, ENIs, security
//! groups and load balancers is confirmed with the owning service first.
//! Volumes kept with `--keep-volumes` are listed as kept, not as leaks.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use aws_sdk_resourcegroupstagging::types::TagFilter;
use serde::Serialize;

use super::api::{Api, code};
use super::inventory;
use super::tags::{self, markers};
use super::{Item, Options, Scope, TeardownError};
use crate::aws::{Aws, sdk_message};
use crate::config::ClusterSpec;

#[derive(Debug, Clone, Serialize)]
pub struct LeakReport {
    pub cluster: String,
    pub region: String,
    pub leaks: Vec<Leak>,
    /// Volumes kept on purpose (`--keep-volumes`).
    pub kept: Vec<Item>,
    pub warnings: Vec<String>,
    pub total_calls: u64,
}

impl LeakReport {
    /// Nothing of the cluster is left (kept volumes aside).
    pub fn is_clean(&self) -> bool {
        self.leaks.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Leak {
    /// A sweep kind (`load-balancer`, …) or the Tagging API's
    /// `service:type` for other resources (`ec2:vpc`, …).
    pub kind: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Lists what is still there of `spec`'s cluster.
pub async fn verify(
    aws: &Aws,
    spec: &ClusterSpec,
    opts: &Options,
) -> Result<LeakReport, TeardownError> {
    let api = Api::new(aws);
    let cluster = spec.name.as_str();
    let everything = Options {
        scope: Scope::Everything,
        exclude: BTreeSet::new(),
        ..opts.clone()
    };
    let (inv, tagged) = futures::try_join!(
        inventory::collect(&api, spec, &everything),
        tagged_resources(&api, cluster)
    )?;
    let kept: BTreeSet<&str> = inv.kept.iter().map(|i| i.id.as_str()).collect();
    let mut leaks: BTreeMap<String, Leak> = inv
        .items
        .iter()
        .map(|item| {
            (
                item.id.clone(),
                Leak {
                    kind: item.kind.as_str().to_string(),
                    id: item.id.clone(),
                    arn: None,
                    name: item.name.clone(),
                },
            )
        })
        .collect();
    let mut unconfirmed: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for arn in &tagged {
        let Some((kind, id)) = parse_arn(arn) else {
            continue;
        };
        if kept.contains(id.as_str()) || leaks.contains_key(&id) {
            continue;
        }
        match kind.as_str() {
            "ec2:instance"
            | "ec2:volume"
            | "ec2:network-interface"
            | "ec2:security-group"
            | "ec2:natgateway"
            | "kms:key"
            | "elasticloadbalancing:loadbalancer"
            | "elasticloadbalancing:targetgroup" => {
                unconfirmed
                    .entry(confirm_kind(&kind))
                    .or_default()
                    .push((id, arn.clone()));
            }
            _ => {
                leaks.insert(
                    id.clone(),
                    Leak {
                        kind,
                        id,
                        arn: Some(arn.clone()),
                        name: None,
                    },
                );
            }
        }
    }
    for (kind, candidates) in unconfirmed {
        let ids: Vec<String> = candidates.iter().map(|(id, _)| id.clone()).collect();
        let alive = exists(&api, kind, &ids).await?;
        for (id, arn) in candidates {
            if alive.contains(&id) {
                leaks.insert(
                    id.clone(),
                    Leak {
                        kind: kind.to_string(),
                        id,
                        arn: Some(arn),
                        name: None,
                    },
                );
            }
        }
    }
    let calls = api.calls();
    Ok(LeakReport {
        cluster: cluster.to_string(),
        region: api.region().to_string(),
        leaks: leaks.into_values().collect(),
        kept: inv.kept,
        warnings: inv.warnings,
        total_calls: calls.values().sum(),
    })
}

fn confirm_kind(kind: &str) -> &'static str {
    match kind {
        "ec2:instance" => "ec2:instance",
        "ec2:volume" => "ec2:volume",
        "ec2:network-interface" => "ec2:network-interface",
        "ec2:security-group" => "ec2:security-group",
        "ec2:natgateway" => "ec2:natgateway",
        "kms:key" => "kms:key",
        _ => "elasticloadbalancing",
    }
}

/// Every ARN the Tagging API holds for the cluster, one query per marker
/// (a query's filters are ANDed, so they cannot be combined).
async fn tagged_resources(api: &Api, cluster: &str) -> Result<BTreeSet<String>, TeardownError> {
    let mut arns = BTreeSet::new();
    for marker in markers::ANY {
        let filter = TagFilter::builder()
            .key(marker.key(cluster))
            .values(marker.value(cluster))
            .build();
        let mut pages = api
            .tagging
            .get_resources()
            .tag_filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            api.hit("tagging:GetResources");
            let page = page.map_err(|e| api.error("query the Tagging API", sdk_message(&e)))?;
            for mapping in page.resource_tag_mapping_list() {
                let tags = mapping.tags().iter().map(|t| (t.key(), t.value()));
                if tags::tagged_for(cluster, tags, markers::ANY)
                    && let Some(arn) = mapping.resource_arn()
                {
                    arns.insert(arn.to_string());
                }
            }
        }
    }
    Ok(arns)
}

/// `(service:type, id)` of an ARN: `ec2:vpc` and `vpc-1` for
/// `arn:aws:ec2:r:a:vpc/vpc-1`; load balancers and target groups keep
/// their whole ARN as id, as the sweep does.
fn parse_arn(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, _, _, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let (kind, id) = resource.split_once('/').unwrap_or(("", resource));
    let id = if service == "elasticloadbalancing" || service == "acm" {
        arn.to_string()
    } else {
        id.to_string()
    };
    Some((format!("{service}:{kind}"), id))
}

/// Which of `ids` (all of the Tagging API kind `kind`) still exist.
async fn exists(api: &Api, kind: &str, ids: &[String]) -> Result<BTreeSet<String>, TeardownError> {
    let mut alive = BTreeSet::new();
    for chunk in ids.chunks(100) {
        let found = match kind {
            "ec2:instance" => inventory::live_instances(api, chunk).await,
            "ec2:natgateway" => live_nat_gateways(api, chunk).await,
            "kms:key" => live_keys(api, chunk).await,
            "ec2:volume" => existing_volumes(api, chunk).await,
            "ec2:network-interface" => existing_interfaces(api, chunk).await,
            "ec2:security-group" => existing_groups(api, chunk).await,
            _ => existing_elb(api, chunk).await,
        };
        alive.extend(found.map_err(|e| api.error("confirm a tagged resource", e))?);
    }
    Ok(alive)
}

fn id_filter(name: &str, ids: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(ids.to_vec()))
        .build()
}

/// Deleted NAT gateways stay visible for about an hour.
async fn live_nat_gateways(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    api.hit("ec2:DescribeNatGateways");
    let out = api
        .ec2
        .describe_nat_gateways()
        .filter(id_filter("nat-gateway-id", ids))
        .send()
        .await
        .map_err(|e| sdk_message(&e))?;
    Ok(out
        .nat_gateways()
        .iter()
        .filter(|g| {
            !g.state()
                .is_some_and(|s| matches!(s.as_str(), "deleting" | "deleted" | "failed"))
        })
        .filter_map(|g| g.nat_gateway_id().map(str::to_string))
        .collect())
}

/// AWS keeps a deleted KMS key, tags and all, through its mandatory
/// waiting period; scheduled for deletion is gone.
async fn live_keys(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    let mut alive = Vec::new();
    for id in ids {
        api.hit("kms:DescribeKey");
        match api.kms.describe_key().key_id(id).send().await {
            Ok(out) => {
                let pending = out
                    .key_metadata()
                    .and_then(|m| m.key_state())
                    .is_some_and(|s| {
                        matches!(s.as_str(), "PendingDeletion" | "PendingReplicaDeletion")
                    });
                if !pending {
                    alive.push(id.clone());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) => {}
            Err(e) => return Err(sdk_message(&e)),
        }
    }
    Ok(alive)
}

async fn existing_volumes(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    api.hit("ec2:DescribeVolumes");
    let out = api
        .ec2
        .describe_volumes()
        .filters(id_filter("volume-id", ids))
        .send()
        .await
        .map_err(|e| sdk_message(&e))?;
    Ok(out
        .volumes()
        .iter()
        .filter_map(|v| v.volume_id().map(str::to_string))
        .collect())
}

async fn existing_interfaces(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    api.hit("ec2:DescribeNetworkInterfaces");
    let out = api
        .ec2
        .describe_network_interfaces()
        .filters(id_filter("network-interface-id", ids))
        .send()
        .await
        .map_err(|e| sdk_message(&e))?;
    Ok(out
        .network_interfaces()
        .iter()
        .filter_map(|n| n.network_interface_id().map(str::to_string))
        .collect())
}

/// A VPC's `default` group goes with the VPC: not a leftover of its own.
async fn existing_groups(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    api.hit("ec2:DescribeSecurityGroups");
    let out = api
        .ec2
        .describe_security_groups()
        .filters(id_filter("group-id", ids))
        .send()
        .await
        .map_err(|e| sdk_message(&e))?;
    Ok(out
        .security_groups()
        .iter()
        .filter(|g| g.group_name() != Some("default"))
        .filter_map(|g| g.group_id().map(str::to_string))
        .collect())
}

async fn existing_elb(api: &Api, arns: &[String]) -> Result<Vec<String>, String> {
    let mut alive = Vec::new();
    for arn in arns {
        if elb_exists(api, arn).await? {
            alive.push(arn.clone());
        }
    }
    Ok(alive)
}

async fn elb_exists(api: &Api, arn: &str) -> Result<bool, String> {
    let result = if arn.contains(":targetgroup/") {
        api.hit("elbv2:DescribeTargetGroups");
        api.elbv2
            .describe_target_groups()
            .target_group_arns(arn)
            .send()
            .await
            .map(drop)
            .map_err(|e| (code(&e).map(str::to_string), sdk_message(&e)))
    } else {
        api.hit("elbv2:DescribeLoadBalancers");
        api.elbv2
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map(drop)
            .map_err(|e| (code(&e).map(str::to_string), sdk_message(&e)))
    };
    match result {
        Ok(()) => Ok(true),
        Err((Some(code), _)) if code.ends_with("NotFound") => Ok(false),
        Err((_, message)) => Err(message),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_arn;

    #[test]
    fn arns() {
        assert_eq!(
            parse_arn("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"),
            Some(("ec2:vpc".into(), "vpc-1".into()))
        );
        let lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-x/abc";
        assert_eq!(
            parse_arn(lb),
            Some(("elasticloadbalancing:loadbalancer".into(), lb.into()))
        );
        assert_eq!(parse_arn("not-an-arn"), None);
    }
}
