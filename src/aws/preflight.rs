//! Preflight: everything about an account that can be checked in seconds
//! before Terraform spends half an hour finding it out. Each check is data
//! (name, passed, detail, remedy); every check runs even when another
//! fails, so one run lists every problem. This module reads from AWS and
//! never changes anything; deciding to refuse (exit 3) is the caller's.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Aws, sdk_message};
use crate::config::regions::EKS_UNSUPPORTED_ZONE_IDS;
use crate::config::{ClusterSpec, Nat, version_step};
use crate::model::tags::{TAG_CLUSTER, TAG_MANAGED_BY, owned_by_terrace};

/// AWS's default VPCs-per-region quota, assumed because the quota itself
/// lives in Service Quotas, which Terrace does not call.
pub const DEFAULT_VPC_QUOTA: usize = 5;

/// The region DescribeRegions is asked in: a region that is not enabled
/// refuses API calls, so it cannot say so itself. Terrace only supports the
/// commercial partition, where us-east-1 is always enabled.
const CONTROL_REGION: &str = "us-east-1";

/// The EC2 Spot service-linked role, and the service it is linked to.
pub const SPOT_ROLE: &str = "AWSServiceRoleForEC2Spot";
const SPOT_SERVICE: &str = "spot.amazonaws.com";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            passed: true,
            detail: detail.into(),
            remedy: None,
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, remedy: impl Into<String>) -> Check {
        Check {
            name,
            passed: false,
            detail: detail.into(),
            remedy: Some(remedy.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PreflightReport {
    pub cluster: String,
    pub region: String,
    /// The caller's account, when the identity check could read it.
    pub account: Option<String>,
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl PreflightReport {
    /// The error to stop with when any check failed.
    pub fn refusal(&self) -> Option<Refused> {
        let failed: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        (!failed.is_empty()).then(|| Refused {
            cluster: self.cluster.clone(),
            failed: failed.join(", "),
            count: failed.len(),
        })
    }
}

impl PreflightReport {
    /// Adds a check made outside [`run`] (one that needs the addon
    /// catalog's answer, like [`dns_zones`]).
    pub fn add(&mut self, check: Check) {
        self.passed &= check.passed;
        self.checks.push(check);
    }
}

/// Preflight found something that would make `up` fail.
#[derive(Debug, thiserror::Error)]
#[error("preflight refused {cluster}: {count} check(s) failed ({failed})")]
pub struct Refused {
    pub cluster: String,
    pub failed: String,
    pub count: usize,
}

/// Runs every check for `spec` concurrently. `terraform` is the check of
/// the local Terraform binary, made by the caller, which found it: this
/// module only talks to AWS.
pub async fn run(spec: &ClusterSpec, aws: &Aws, terraform: Check) -> PreflightReport {
    let ((identity, account), region, azs, (cluster, version), roles, eips, vpcs, spot) = futures::join!(
        identity(aws),
        region(aws, &spec.region),
        availability_zones(aws, spec.network.azs),
        cluster_name(aws, &spec.name, &spec.kubernetes_version),
        iam_roles(aws, spec),
        elastic_ips(aws, spec),
        vpcs(aws, &spec.name),
        spot_role(aws, spec.addon_enabled("karpenter")),
    );
    let mut checks = vec![identity, region, azs, cluster, roles, eips, vpcs, terraform];
    checks.extend(version);
    checks.extend(spot);
    PreflightReport {
        cluster: spec.name.clone(),
        region: spec.region.clone(),
        account,
        passed: checks.iter().all(|c| c.passed),
        checks,
    }
}

async fn identity(aws: &Aws) -> (Check, Option<String>) {
    const NAME: &str = "caller identity";
    match aws.sts().get_caller_identity().send().await {
        Ok(out) => {
            let account = out.account().unwrap_or_default().to_string();
            let arn = out.arn().unwrap_or_default();
            (
                Check::pass(NAME, format!("account {account}, {arn}")),
                Some(account),
            )
        }
        Err(e) => (
            Check::fail(
                NAME,
                sdk_message(&e),
                "configure AWS credentials: set AWS_PROFILE, run `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ),
            None,
        ),
    }
}

async fn region(aws: &Aws, region: &str) -> Check {
    let out = aws
        .in_region(CONTROL_REGION)
        .ec2()
        .describe_regions()
        .all_regions(true)
        .region_names(region)
        .send()
        .await;
    match out {
        Ok(out) => region_check(
            region,
            out.regions()
                .iter()
                .find(|r| r.region_name() == Some(region))
                .map(|r| r.opt_in_status().unwrap_or("opt-in-not-required")),
        ),
        Err(e) => Check::fail(
            "region",
            format!("cannot read the account's regions: {}", sdk_message(&e)),
            "allow ec2:DescribeRegions for this identity",
        ),
    }
}

/// `opt_in` is the region's DescribeRegions `OptInStatus`, `None` when
/// the account does not list the region at all.
fn region_check(region: &str, opt_in: Option<&str>) -> Check {
    const NAME: &str = "region";
    match opt_in {
        Some(status @ ("opt-in-not-required" | "opted-in")) => {
            Check::pass(NAME, format!("{region} is enabled ({status})"))
        }
        Some(status) => Check::fail(
            NAME,
            format!("{region} is not enabled for this account ({status})"),
            format!(
                "enable it in the AWS console (Account → AWS Regions) or with `aws account enable-region --region-name {region}`, then wait until it is ENABLED"
            ),
        ),
        None => Check::fail(
            NAME,
            format!("{region} is not offered to this account"),
            "choose another region",
        ),
    }
}

async fn availability_zones(aws: &Aws, needed: u32) -> Check {
    const NAME: &str = "availability zones";
    let out = aws.ec2().describe_availability_zones().send().await;
    let zones: Vec<(String, String)> = match out {
        Ok(out) => out
            .availability_zones()
            .iter()
            .filter(|z| z.state().is_some_and(|s| s.as_str() == "available"))
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| {
                Some((
                    z.zone_name()?.to_string(),
                    z.zone_id().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot list availability zones: {}", sdk_message(&e)),
                "allow ec2:DescribeAvailabilityZones for this identity",
            );
        }
    };
    zone_check(&zones, needed)
}

/// Enough of `zones` (name, zone ID) outside the zone IDs EKS refuses.
fn zone_check(zones: &[(String, String)], needed: u32) -> Check {
    const NAME: &str = "availability zones";
    let (excluded, eligible): (Vec<_>, Vec<_>) = zones
        .iter()
        .partition(|(_, id)| EKS_UNSUPPORTED_ZONE_IDS.contains(&id.as_str()));
    let names = |zs: &[&(String, String)]| {
        zs.iter()
            .map(|(name, id)| format!("{name} ({id})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut detail = format!(
        "{} eligible ({}), {needed} needed",
        eligible.len(),
        names(&eligible)
    );
    if !excluded.is_empty() {
        detail.push_str(&format!(
            "; not used: {} (EKS refuses control-plane subnets there)",
            names(&excluded)
        ));
    }
    if eligible.len() >= needed as usize {
        Check::pass(NAME, detail)
    } else {
        Check::fail(
            NAME,
            detail,
            format!(
                "set network.azs to {} or fewer in terrace.yaml",
                eligible.len()
            ),
        )
    }
}

/// The name check, and for a cluster that is already Terrace's, whether
/// EKS can move it to `wanted` Kubernetes version in one update.
async fn cluster_name(aws: &Aws, name: &str, wanted: &str) -> (Check, Option<Check>) {
    const NAME: &str = "cluster name";
    match aws.eks().describe_cluster().name(name).send().await {
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            (
                Check::pass(NAME, format!("no EKS cluster named {name} yet")),
                None,
            )
        }
        Err(e) => (
            Check::fail(
                NAME,
                format!("cannot look up EKS cluster {name}: {}", sdk_message(&e)),
                "allow eks:DescribeCluster for this identity",
            ),
            None,
        ),
        Ok(out) => {
            let owned = out.cluster().and_then(|c| c.tags()).is_some_and(|tags| {
                owned_by_terrace(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), name)
            });
            if owned {
                let live = out.cluster().and_then(|c| c.version());
                (
                    Check::pass(
                        NAME,
                        format!("EKS cluster {name} exists and is Terrace's; up will reconcile it"),
                    ),
                    live.map(|live| version_check(live, wanted)),
                )
            } else {
                let refused = Check::fail(
                    NAME,
                    format!(
                        "an EKS cluster named {name} exists that Terrace does not own (no {TAG_MANAGED_BY}=terrace and {TAG_CLUSTER}={name} tags)"
                    ),
                    "choose another name with --name (or clusters[].name in terrace.yaml), or delete that cluster if it is abandoned",
                );
                (refused, None)
            }
        }
    }
}

/// Refused before Terraform runs: EKS would reject the update half way
/// through an apply.
fn version_check(live: &str, wanted: &str) -> Check {
    const NAME: &str = "Kubernetes version";
    match version_step(live, wanted) {
        Ok(()) if live == wanted => Check::pass(NAME, format!("{live}, unchanged")),
        Ok(()) => Check::pass(NAME, format!("{live} → {wanted}, one minor version")),
        Err(message) => Check::fail(
            NAME,
            format!("kubernetes_version {wanted}: {message}"),
            "upgrade one minor version per `terrace cluster up`",
        ),
    }
}

/// Every IAM role name the cluster will create.
fn role_names(spec: &ClusterSpec) -> BTreeSet<&str> {
    let n = &spec.names;
    [
        &n.cluster_role,
        &n.system_node_role,
        &n.karpenter_node_role,
        &n.ebs_csi_role,
        &n.flow_log_role,
    ]
    .into_iter()
    .chain(n.addon_roles.values())
    .map(String::as_str)
    .collect()
}

enum RoleState {
    Free,
    Ours,
    Foreign,
    Unknown(String),
}

async fn iam_roles(aws: &Aws, spec: &ClusterSpec) -> Check {
    const NAME: &str = "IAM roles";
    let iam = aws.iam();
    let names = role_names(spec);
    let states = futures::future::join_all(names.iter().map(|role| {
        let iam = iam.clone();
        async move {
            match iam.get_role().role_name(*role).send().await {
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_no_such_entity_exception()) =>
                {
                    RoleState::Free
                }
                Err(e) => RoleState::Unknown(format!("{role}: {}", sdk_message(&e))),
                Ok(out) => {
                    let tags = out.role().map(|r| r.tags()).unwrap_or_default();
                    if owned_by_terrace(tags.iter().map(|t| (t.key(), t.value())), &spec.name) {
                        RoleState::Ours
                    } else {
                        RoleState::Foreign
                    }
                }
            }
        }
    }))
    .await;
    let mut foreign = Vec::new();
    let mut unknown = Vec::new();
    let mut ours = 0;
    for (role, state) in names.iter().zip(states) {
        match state {
            RoleState::Free => {}
            RoleState::Ours => ours += 1,
            RoleState::Foreign => foreign.push(*role),
            RoleState::Unknown(msg) => unknown.push(msg),
        }
    }
    if !foreign.is_empty() {
        Check::fail(
            NAME,
            format!(
                "role(s) exist that Terrace does not own: {} (no {TAG_MANAGED_BY}=terrace and {TAG_CLUSTER}={} tags)",
                foreign.join(", "),
                spec.name
            ),
            "choose another cluster name, or delete those roles if they are abandoned",
        )
    } else if !unknown.is_empty() {
        Check::fail(
            NAME,
            format!("cannot look up roles: {}", unknown.join("; ")),
            "allow iam:GetRole for this identity",
        )
    } else {
        Check::pass(
            NAME,
            format!(
                "{} role names free ({ours} already Terrace's)",
                names.len() - ours
            ),
        )
    }
}

/// The account-wide role EC2 needs to launch Spot instances. Without it
/// every Spot request Karpenter makes fails and it silently falls back to
/// on-demand. Only checked with Karpenter enabled; preflight creates nothing,
/// so the remedy is one command.
async fn spot_role(aws: &Aws, karpenter: bool) -> Option<Check> {
    const NAME: &str = "EC2 Spot service-linked role";
    if !karpenter {
        return None;
    }
    let remedy = format!(
        "create it once per account: aws iam create-service-linked-role --aws-service-name {SPOT_SERVICE}"
    );
    Some(
        match aws.iam().get_role().role_name(SPOT_ROLE).send().await {
            Ok(_) => Check::pass(NAME, format!("{SPOT_ROLE} exists")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Check::fail(
                    NAME,
                    format!(
                        "{SPOT_ROLE} is missing: Karpenter's Spot launches would fail and fall back to on-demand"
                    ),
                    remedy,
                )
            }
            Err(e) => Check::fail(
                NAME,
                format!("cannot read {SPOT_ROLE}: {}", sdk_message(&e)),
                format!("allow iam:GetRole on it, or {remedy}"),
            ),
        },
    )
}

fn is_ours(tags: &[aws_sdk_ec2::types::Tag], cluster: &str) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(TAG_CLUSTER) && t.value() == Some(cluster))
}

async fn elastic_ips(aws: &Aws, spec: &ClusterSpec) -> Check {
    const NAME: &str = "elastic IPs";
    let ec2 = aws.ec2();
    let nat_gateways = match spec.network.nat {
        Nat::Single => 1,
        Nat::PerAz => spec.network.azs as usize,
    };
    let (attributes, addresses) = futures::join!(
        ec2.describe_account_attributes().send(),
        ec2.describe_addresses().send()
    );
    let quota = attributes.map_err(|e| sdk_message(&e)).and_then(|out| {
        out.account_attributes()
            .iter()
            .find(|a| a.attribute_name() == Some("vpc-max-elastic-ips"))
            .and_then(|a| a.attribute_values().first())
            .and_then(|v| v.attribute_value())
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| "no vpc-max-elastic-ips account attribute".to_string())
    });
    let addresses = addresses.map_err(|e| sdk_message(&e));
    let (quota, addresses) = match (quota, addresses) {
        (Ok(q), Ok(a)) => (q, a),
        (Err(e), _) | (_, Err(e)) => {
            return Check::fail(
                NAME,
                format!("cannot read the Elastic IP quota or usage: {e}"),
                "allow ec2:DescribeAccountAttributes and ec2:DescribeAddresses for this identity",
            );
        }
    };
    let used = addresses.addresses().len();
    let ours = addresses
        .addresses()
        .iter()
        .filter(|a| is_ours(a.tags(), &spec.name))
        .count();
    let needed = nat_gateways.saturating_sub(ours);
    let free = quota.saturating_sub(used);
    let detail =
        format!("{used} of {quota} in use, {needed} more needed for {nat_gateways} NAT gateway(s)");
    if free >= needed {
        Check::pass(NAME, detail)
    } else {
        Check::fail(
            NAME,
            detail,
            "release unused Elastic IPs in this region, use network.nat: single, or ask for a higher 'EC2-VPC Elastic IPs' quota in Service Quotas",
        )
    }
}

async fn vpcs(aws: &Aws, cluster: &str) -> Check {
    const NAME: &str = "VPCs";
    let mut vpcs = Vec::new();
    let mut pages = aws.ec2().describe_vpcs().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => vpcs.extend(page.vpcs().iter().cloned()),
            Err(e) => {
                return Check::fail(
                    NAME,
                    format!("cannot list VPCs: {}", sdk_message(&e)),
                    "allow ec2:DescribeVpcs for this identity",
                );
            }
        }
    }
    let needed = usize::from(!vpcs.iter().any(|v| is_ours(v.tags(), cluster)));
    let detail = format!(
        "{} of {DEFAULT_VPC_QUOTA} in use, {needed} needed (the quota is AWS's default; Terrace does not read Service Quotas)",
        vpcs.len()
    );
    if vpcs.len() + needed <= DEFAULT_VPC_QUOTA {
        Check::pass(NAME, detail)
    } else {
        Check::fail(
            NAME,
            detail,
            "delete an unused VPC in this region, or ask for a higher 'VPCs per Region' quota in Service Quotas",
        )
    }
}

/// The DNS zones ExternalDNS writes to and certificates are issued for:
/// each must exist as a public Route53 hosted zone of this account (a
/// private zone of that name cannot validate a certificate or serve the
/// world). `None` when no zone is configured.
pub async fn dns_zones(aws: &Aws, zones: &[String]) -> Option<Check> {
    if zones.is_empty() {
        return None;
    }
    let route53 = aws.route53();
    let mut found = Vec::new();
    for zone in zones {
        let out = route53
            .list_hosted_zones_by_name()
            .dns_name(zone)
            .send()
            .await;
        match out {
            Ok(out) => found.push((
                zone.as_str(),
                out.hosted_zones()
                    .iter()
                    .filter(|z| z.name().trim_end_matches('.') == zone.trim_end_matches('.'))
                    .map(|z| z.config().is_some_and(|c| c.private_zone()))
                    .collect::<Vec<bool>>(),
            )),
            Err(e) => {
                return Some(Check::fail(
                    DNS_ZONES,
                    format!("cannot list Route53 hosted zones: {}", sdk_message(&e)),
                    "allow route53:ListHostedZonesByName for this identity",
                ));
            }
        }
    }
    Some(dns_zone_check(&found))
}

const DNS_ZONES: &str = "DNS zones";

/// `found`: per configured zone, whether each hosted zone of that exact
/// name is private.
fn dns_zone_check(found: &[(&str, Vec<bool>)]) -> Check {
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, zones)| zones.is_empty())
        .map(|(name, _)| *name)
        .collect();
    let private: Vec<&str> = found
        .iter()
        .filter(|(_, zones)| !zones.is_empty() && zones.iter().all(|&private| private))
        .map(|(name, _)| *name)
        .collect();
    let names = |list: &[&str]| list.join(", ");
    match (missing.is_empty(), private.is_empty()) {
        (true, true) => Check::pass(
            DNS_ZONES,
            format!(
                "public hosted zone found for {}",
                names(&found.iter().map(|(n, _)| *n).collect::<Vec<_>>())
            ),
        ),
        _ => {
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push(format!("no Route53 hosted zone named {}", names(&missing)));
            }
            if !private.is_empty() {
                problems.push(format!(
                    "only a private hosted zone named {}",
                    names(&private)
                ));
            }
            Check::fail(
                DNS_ZONES,
                problems.join("; "),
                "create a public hosted zone of that name in this account (and delegate the domain to its name servers), or remove it from addons.external-dns.zones",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_zones_must_exist_and_be_public() {
        let ok = dns_zone_check(&[
            ("example.com", vec![false]),
            ("example.org", vec![true, false]),
        ]);
        assert!(ok.passed, "{ok:?}");
        assert!(
            ok.detail.contains("example.com, example.org"),
            "{}",
            ok.detail
        );

        let bad = dns_zone_check(&[
            ("example.com", vec![]),
            ("internal.example", vec![true]),
            ("example.org", vec![false]),
        ]);
        assert!(!bad.passed);
        assert_eq!(
            bad.detail,
            "no Route53 hosted zone named example.com; only a private hosted zone named internal.example"
        );
        assert!(bad.remedy.unwrap().contains("addons.external-dns.zones"));
    }

    #[test]
    fn region_opt_in_states() {
        assert!(region_check("us-east-1", Some("opt-in-not-required")).passed);
        assert!(region_check("ap-east-1", Some("opted-in")).passed);
        let off = region_check("ap-east-1", Some("not-opted-in"));
        assert!(!off.passed);
        assert!(
            off.remedy
                .unwrap()
                .contains("enable-region --region-name ap-east-1")
        );
        assert!(!region_check("xx-east-1", None).passed);
    }

    #[test]
    fn kubernetes_version_moves_one_minor_at_a_time() {
        assert!(version_check("1.33", "1.33").passed);
        assert!(version_check("1.33", "1.34").passed);
        let jump = version_check("1.32", "1.34");
        assert!(!jump.passed);
        assert!(
            jump.detail.contains("set kubernetes_version to 1.33"),
            "{jump:?}"
        );
    }

    #[test]
    fn zones_eks_refuses_do_not_count() {
        let zones: Vec<(String, String)> = [
            ("us-east-1a", "use1-az6"),
            ("us-east-1b", "use1-az3"),
            ("us-east-1c", "use1-az1"),
        ]
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
        let ok = zone_check(&zones, 2);
        assert!(ok.passed, "{ok:?}");
        assert!(ok.detail.contains("2 eligible"), "{}", ok.detail);
        assert!(ok.detail.contains("us-east-1b (use1-az3)"), "{}", ok.detail);
        let short = zone_check(&zones, 3);
        assert!(!short.passed);
        assert!(
            short
                .remedy
                .as_deref()
                .unwrap()
                .contains("network.azs to 2"),
            "{short:?}"
        );
    }

    #[test]
    fn refusal_names_every_failed_check() {
        let report = PreflightReport {
            cluster: "c".into(),
            region: "us-east-1".into(),
            account: None,
            passed: false,
            checks: vec![
                Check::pass("a", ""),
                Check::fail("b", "", ""),
                Check::fail("c", "", ""),
            ],
        };
        let refused = report.refusal().unwrap();
        assert_eq!(refused.count, 2);
        assert_eq!(refused.failed, "b, c");
    }
}
