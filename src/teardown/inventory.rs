//! The live list of what the sweep would delete for one cluster in its
//! region, found by tag (see [`tags`](super::tags)) and never by state:
//! what the controllers created (instances, load balancers, target groups,
//! launch templates, ENIs, security groups, volumes), the Route53 records
//! its ExternalDNS owns in the configured zones, and every kind Terrace
//! creates itself (EKS, network, IAM, KMS, logs, queue, rules; see the
//! `eks`, `network`, `iam` and `regional` modules). Read-only; `down
//! --plan` shows it, and the sweep deletes exactly what it lists.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, IpPermission, SecurityGroup, UserIdGroupPair};
use aws_sdk_route53::types::ResourceRecordSet;
use serde::Serialize;

use super::api::Api;
use super::dns;
use super::tags::{self, KARPENTER_NODEPOOL, markers};
use super::{Item, Kind, Options, Scope, TeardownError, acm, eks, iam, network, regional};
use crate::aws::{Aws, sdk_message};
use crate::config::ClusterSpec;

/// Instance ids per DescribeInstances filter.
const INSTANCE_BATCH: usize = 100;
/// ELBv2 DescribeTags takes at most 20 ARNs.
const ELB_TAGS_BATCH: usize = 20;
/// Instance states that still cost money or hold dependencies.
const LIVE_INSTANCE_STATES: &[&str] =
    &["pending", "running", "stopping", "stopped", "shutting-down"];

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub cluster: String,
    pub region: String,
    /// What the sweep deletes, in deletion order.
    pub items: Vec<Item>,
    /// Volumes left alone because of `--keep-volumes`.
    pub kept: Vec<Item>,
    /// Rules that reference one of the cluster's security groups: the
    /// sweep revokes them so the groups can be deleted.
    pub references: Vec<Reference>,
    /// Configured zones that could not be searched, and similar notes.
    pub warnings: Vec<String>,
    /// Per zone, the record sets to delete, grouped by owning TXT record.
    #[serde(skip)]
    pub(crate) zones: Vec<ZoneRecords>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.references.is_empty()
    }

    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(move |i| i.kind == kind)
    }

    /// The part of this inventory of the kinds `keep` accepts (with the
    /// rule references that point at its groups).
    pub fn only(&self, keep: impl Fn(Kind) -> bool) -> Inventory {
        self.only_items(|i| keep(i.kind))
    }

    /// The part of this inventory of the items `keep` accepts (with the
    /// rule references that point at its groups).
    pub fn only_items(&self, keep: impl Fn(&Item) -> bool) -> Inventory {
        let items: Vec<Item> = self.items.iter().filter(|i| keep(i)).cloned().collect();
        let references = self
            .references
            .iter()
            .filter(|r| items.iter().any(|i| i.id == r.referenced_group_id))
            .cloned()
            .collect();
        Inventory {
            cluster: self.cluster.clone(),
            region: self.region.clone(),
            items,
            kept: Vec::new(),
            references,
            warnings: Vec::new(),
            zones: Vec::new(),
        }
    }
}

/// A security group rule that points at one of the cluster's groups.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Reference {
    /// The group holding the rule.
    pub group_id: String,
    /// Whether that group is itself one of the cluster's.
    pub group_is_ours: bool,
    /// The cluster's group the rule refers to.
    pub referenced_group_id: String,
    pub egress: bool,
    pub protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_port: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_port: Option<i32>,
}

impl Reference {
    /// The permission to revoke: this rule's ports and the one group pair.
    pub(crate) fn permission(&self) -> IpPermission {
        IpPermission::builder()
            .ip_protocol(&self.protocol)
            .set_from_port(self.from_port)
            .set_to_port(self.to_port)
            .user_id_group_pairs(
                UserIdGroupPair::builder()
                    .group_id(&self.referenced_group_id)
                    .build(),
            )
            .build()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ZoneRecords {
    pub zone_id: String,
    /// Each group: a registry TXT record set and the record sets it owns.
    pub groups: Vec<Vec<ResourceRecordSet>>,
}

/// What the sweep would delete for `spec`'s cluster, listed now.
pub async fn inventory(
    aws: &Aws,
    spec: &ClusterSpec,
    opts: &Options,
) -> Result<Inventory, TeardownError> {
    collect(&Api::new(aws), spec, opts).await
}

pub(crate) async fn collect(
    api: &Api,
    spec: &ClusterSpec,
    opts: &Options,
) -> Result<Inventory, TeardownError> {
    let cluster = spec.name.as_str();
    let ((instances, (lbs, tgs), templates, enis, (groups, references)), rest) = futures::try_join!(
        async {
            futures::try_join!(
                instances(api, cluster),
                load_balancers(api, cluster),
                launch_templates(api, cluster),
                network_interfaces(api, cluster),
                security_groups(api, cluster),
            )
        },
        everything_else(api, spec, opts.scope),
    )?;
    let (volumes, (zones, dns_items, warnings), others) = rest;
    let (kept, volumes) = if opts.keep_volumes {
        (volumes, Vec::new())
    } else {
        (Vec::new(), volumes)
    };
    let mut items: Vec<Item> = [
        instances, lbs, tgs, templates, enis, groups, volumes, dns_items, others,
    ]
    .concat()
    .into_iter()
    .filter(|item| !opts.exclude.contains(&item.id))
    .collect();
    // Deletion order; within a kind, the order it was listed in.
    items.sort_by_key(|item| item.kind);
    let references = references
        .into_iter()
        .filter(|r| !opts.exclude.contains(&r.referenced_group_id))
        .collect();
    Ok(Inventory {
        cluster: cluster.to_string(),
        region: api.region().to_string(),
        items,
        kept,
        references,
        warnings,
        zones,
    })
}

type Rest = (Vec<Item>, DnsFound, Vec<Item>);

/// Volumes, DNS records and every kind Terrace itself creates (EKS,
/// network, IAM, KMS, logs, queue, rules, certificates and their
/// validation records): nothing for the pre-sweep.
async fn everything_else(
    api: &Api,
    spec: &ClusterSpec,
    scope: Scope,
) -> Result<Rest, TeardownError> {
    if scope == Scope::Controllers {
        return Ok((Vec::new(), (Vec::new(), Vec::new(), Vec::new()), Vec::new()));
    }
    let cluster = spec.name.as_str();
    let (volumes, dns, eks, network, iam, regional, acm) = futures::try_join!(
        volumes(api, cluster),
        records(api, spec),
        eks::list(api, cluster),
        network::list(api, cluster),
        iam::list(api, cluster),
        regional::list(api, cluster),
        acm::list(api, cluster),
    )?;
    Ok((volumes, dns, [eks, network, iam, regional, acm].concat()))
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
}

/// One `tag-key` filter per key, each listed separately: AWS ORs the values
/// of one filter, but moto matches several only when they equal the
/// resource's whole key set, and one key per query is right for both.
fn tag_key_filters(cluster: &str, markers: &[tags::Marker]) -> Vec<Filter> {
    tags::keys(cluster, markers)
        .into_iter()
        .map(|key| Filter::builder().name("tag-key").values(key).build())
        .collect()
}

fn name_tag(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    tags.iter()
        .find(|t| t.key() == Some("Name"))
        .and_then(|t| t.value())
        .map(str::to_string)
}

/// Instances Karpenter launched for the cluster that are not terminated.
pub(crate) async fn instances(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = Vec::new();
    let mut pages = api
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("tag-key")
                .values(KARPENTER_NODEPOOL)
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    LIVE_INSTANCE_STATES.iter().map(|s| s.to_string()).collect(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeInstances");
        let page = page.map_err(|e| api.error("list instances", sdk_message(&e)))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            if tags::tagged_for(cluster, ec2_tags(instance.tags()), markers::INSTANCE)
                && let Some(id) = instance.instance_id()
            {
                items.push(Item::new(Kind::Instance, id, name_tag(instance.tags())));
            }
        }
    }
    Ok(items)
}

/// Which of the instances `ids` are not terminated yet.
pub(crate) async fn live_instances(api: &Api, ids: &[String]) -> Result<Vec<String>, String> {
    let mut running = Vec::new();
    for batch in ids.chunks(INSTANCE_BATCH) {
        api.hit("ec2:DescribeInstances");
        let out = api
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(batch.to_vec()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_message(&e))?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let terminated = instance
                .state()
                .and_then(|s| s.name())
                .is_some_and(|n| n.as_str() == "terminated");
            if !terminated && let Some(id) = instance.instance_id() {
                running.push(id.to_string());
            }
        }
    }
    Ok(running)
}

/// Load balancers and target groups tagged for the cluster. ELBv2 has no
/// tag filter: list everything, then read tags 20 ARNs at a time.
async fn load_balancers(api: &Api, cluster: &str) -> Result<(Vec<Item>, Vec<Item>), TeardownError> {
    let lbs = all_load_balancers(api).await?;
    let mut tgs = Vec::new();
    let mut pages = api.elbv2.describe_target_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("elbv2:DescribeTargetGroups");
        let page = page.map_err(|e| api.error("list target groups", sdk_message(&e)))?;
        for tg in page.target_groups() {
            if let Some(arn) = tg.target_group_arn() {
                tgs.push((arn.to_string(), tg.target_group_name().map(str::to_string)));
            }
        }
    }
    let lb_arns: Vec<String> = lbs.iter().map(|(a, _)| a.clone()).collect();
    let tg_arns: Vec<String> = tgs.iter().map(|(a, _)| a.clone()).collect();
    let (lb_ours, tg_ours) = futures::try_join!(
        elb_tagged(api, cluster, &lb_arns, markers::LOAD_BALANCER),
        elb_tagged(api, cluster, &tg_arns, markers::LOAD_BALANCER)
    )?;
    let pick = |all: Vec<(String, Option<String>)>, ours: &BTreeSet<String>, kind| {
        all.into_iter()
            .filter(|(arn, _)| ours.contains(arn))
            .map(|(arn, name)| Item::new(kind, arn, name))
            .collect()
    };
    Ok((
        pick(lbs, &lb_ours, Kind::LoadBalancer),
        pick(tgs, &tg_ours, Kind::TargetGroup),
    ))
}

/// Every load balancer in the region: (ARN, name).
async fn all_load_balancers(api: &Api) -> Result<Vec<(String, Option<String>)>, TeardownError> {
    let mut lbs = Vec::new();
    let mut pages = api.elbv2.describe_load_balancers().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("elbv2:DescribeLoadBalancers");
        let page = page.map_err(|e| api.error("list load balancers", sdk_message(&e)))?;
        for lb in page.load_balancers() {
            if let Some(arn) = lb.load_balancer_arn() {
                lbs.push((arn.to_string(), lb.load_balancer_name().map(str::to_string)));
            }
        }
    }
    Ok(lbs)
}

/// The load balancers the cluster's LB controller created (its own tag).
pub(crate) async fn controller_load_balancers(
    api: &Api,
    cluster: &str,
) -> Result<Vec<String>, TeardownError> {
    let arns: Vec<String> = all_load_balancers(api)
        .await?
        .into_iter()
        .map(|(arn, _)| arn)
        .collect();
    Ok(
        elb_tagged(api, cluster, &arns, &[tags::Marker::LbController])
            .await?
            .into_iter()
            .collect(),
    )
}

/// Which of `arns` (load balancers or target groups) carry the cluster's tags.
pub(crate) async fn elb_tagged(
    api: &Api,
    cluster: &str,
    arns: &[String],
    markers: &[tags::Marker],
) -> Result<BTreeSet<String>, TeardownError> {
    let mut ours = BTreeSet::new();
    for batch in arns.chunks(ELB_TAGS_BATCH) {
        api.hit("elbv2:DescribeTags");
        let out = match api
            .elbv2
            .describe_tags()
            .set_resource_arns(Some(batch.to_vec()))
            .send()
            .await
        {
            Ok(out) => out,
            // Deleted since it was listed: not ours to worry about any more.
            Err(e) if super::api::code(&e).is_some_and(|c| c.ends_with("NotFound")) => continue,
            Err(e) => return Err(api.error("read load balancer tags", sdk_message(&e))),
        };
        for description in out.tag_descriptions() {
            let tags = description
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()));
            if tags::tagged_for(cluster, tags, markers)
                && let Some(arn) = description.resource_arn()
            {
                ours.insert(arn.to_string());
            }
        }
    }
    Ok(ours)
}

async fn launch_templates(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = BTreeMap::new();
    for filter in tag_key_filters(cluster, markers::LAUNCH_TEMPLATE) {
        let mut pages = api
            .ec2
            .describe_launch_templates()
            .filters(filter)
            // AWS's largest page; moto returns one page of MaxResults (15
            // unless asked) and no token.
            .max_results(200)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            api.hit("ec2:DescribeLaunchTemplates");
            let page = page.map_err(|e| api.error("list launch templates", sdk_message(&e)))?;
            for lt in page.launch_templates() {
                if tags::tagged_for(cluster, ec2_tags(lt.tags()), markers::LAUNCH_TEMPLATE)
                    && let Some(id) = lt.launch_template_id()
                {
                    items.insert(
                        id.to_string(),
                        lt.launch_template_name().map(str::to_string),
                    );
                }
            }
        }
    }
    Ok(items
        .into_iter()
        .map(|(id, name)| Item::new(Kind::LaunchTemplate, id, name))
        .collect())
}

/// Detached (`available`) network interfaces tagged for the cluster.
pub(crate) async fn network_interfaces(
    api: &Api,
    cluster: &str,
) -> Result<Vec<Item>, TeardownError> {
    let mut items = BTreeMap::new();
    for filter in tag_key_filters(cluster, markers::NETWORK_INTERFACE) {
        let mut pages = api
            .ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name("status").values("available").build())
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            api.hit("ec2:DescribeNetworkInterfaces");
            let page = page.map_err(|e| api.error("list network interfaces", sdk_message(&e)))?;
            for eni in page.network_interfaces() {
                if tags::tagged_for(cluster, ec2_tags(eni.tag_set()), markers::NETWORK_INTERFACE)
                    && let Some(id) = eni.network_interface_id()
                {
                    items.insert(
                        id.to_string(),
                        eni.description()
                            .filter(|d| !d.is_empty())
                            .map(str::to_string),
                    );
                }
            }
        }
    }
    Ok(items
        .into_iter()
        .map(|(id, name)| Item::new(Kind::NetworkInterface, id, name))
        .collect())
}

/// The cluster's security groups (never a VPC's `default` group) and every
/// rule, in any group of the region, that refers to one of them.
async fn security_groups(
    api: &Api,
    cluster: &str,
) -> Result<(Vec<Item>, Vec<Reference>), TeardownError> {
    let mut all: Vec<SecurityGroup> = Vec::new();
    let mut pages = api.ec2.describe_security_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        api.hit("ec2:DescribeSecurityGroups");
        let page = page.map_err(|e| api.error("list security groups", sdk_message(&e)))?;
        all.extend(page.security_groups().iter().cloned());
    }
    let ours: BTreeMap<String, Option<String>> = all
        .iter()
        .filter(|g| g.group_name() != Some("default"))
        .filter(|g| tags::tagged_for(cluster, ec2_tags(g.tags()), markers::SECURITY_GROUP))
        .filter_map(|g| {
            g.group_id()
                .map(|id| (id.to_string(), g.group_name().map(str::to_string)))
        })
        .collect();
    let mut references = BTreeSet::new();
    for group in &all {
        let Some(group_id) = group.group_id() else {
            continue;
        };
        let rules = group
            .ip_permissions()
            .iter()
            .map(|p| (false, p))
            .chain(group.ip_permissions_egress().iter().map(|p| (true, p)));
        for (egress, permission) in rules {
            for pair in permission.user_id_group_pairs() {
                let Some(target) = pair.group_id().filter(|t| ours.contains_key(*t)) else {
                    continue;
                };
                // A group's rule about itself goes away with the group.
                if target == group_id {
                    continue;
                }
                references.insert(Reference {
                    group_id: group_id.to_string(),
                    group_is_ours: ours.contains_key(group_id),
                    referenced_group_id: target.to_string(),
                    egress,
                    protocol: permission.ip_protocol().unwrap_or("-1").to_string(),
                    from_port: permission.from_port(),
                    to_port: permission.to_port(),
                });
            }
        }
    }
    let items = ours
        .into_iter()
        .map(|(id, name)| Item::new(Kind::SecurityGroup, id, name))
        .collect();
    Ok((items, references.into_iter().collect()))
}

/// EBS volumes tagged for the cluster, except those that go away with the
/// instance they are attached to (`DeleteOnTermination`).
async fn volumes(api: &Api, cluster: &str) -> Result<Vec<Item>, TeardownError> {
    let mut items = BTreeMap::new();
    for filter in tag_key_filters(cluster, markers::VOLUME) {
        let mut pages = api
            .ec2
            .describe_volumes()
            .filters(filter)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            api.hit("ec2:DescribeVolumes");
            let page = page.map_err(|e| api.error("list volumes", sdk_message(&e)))?;
            for volume in page.volumes() {
                let attachments = volume.attachments();
                let goes_with_instance = !attachments.is_empty()
                    && attachments
                        .iter()
                        .all(|a| a.delete_on_termination() == Some(true));
                if !goes_with_instance
                    && tags::tagged_for(cluster, ec2_tags(volume.tags()), markers::VOLUME)
                    && let Some(id) = volume.volume_id()
                {
                    items.insert(id.to_string(), pvc_name(volume.tags()));
                }
            }
        }
    }
    Ok(items
        .into_iter()
        .map(|(id, name)| Item::new(Kind::Volume, id, name))
        .collect())
}

/// `namespace/name` of the PVC an EBS CSI volume was made for.
fn pvc_name(tags: &[aws_sdk_ec2::types::Tag]) -> Option<String> {
    let get = |key: &str| {
        tags.iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
    };
    match (
        get("kubernetes.io/created-for/pvc/namespace"),
        get("kubernetes.io/created-for/pvc/name"),
    ) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => name_tag(tags),
    }
}

/// The Route53 zones named by each enabled addon's `teardown.dns_zones`
/// setting (ExternalDNS's `zones`).
fn dns_zones(spec: &ClusterSpec) -> Vec<String> {
    crate::addons::Catalog::embedded()
        .map(|catalog| catalog.dns_zones(spec))
        .unwrap_or_default()
}

type DnsFound = (Vec<ZoneRecords>, Vec<Item>, Vec<String>);

/// Records the cluster's ExternalDNS owns in each configured zone (every
/// hosted zone of that name, public or private).
async fn records(api: &Api, spec: &ClusterSpec) -> Result<DnsFound, TeardownError> {
    let mut zones = Vec::new();
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    for zone_name in dns_zones(spec) {
        let ids = zone_ids(api, &zone_name, false).await?;
        if ids.is_empty() {
            warnings.push(format!("no Route53 hosted zone named {zone_name}"));
        }
        for zone_id in ids {
            let sets = record_sets(api, &zone_id).await?;
            let view: Vec<dns::Record> = sets.iter().map(record_view).collect();
            let groups: Vec<Vec<ResourceRecordSet>> = dns::owned(&view, &spec.name, &zone_name)
                .into_iter()
                .map(|g| g.into_iter().map(|i| sets[i].clone()).collect())
                .collect();
            for set in groups.iter().flatten() {
                items.push(record_item(&zone_id, set));
            }
            if !groups.is_empty() {
                zones.push(ZoneRecords { zone_id, groups });
            }
        }
    }
    Ok((zones, items, warnings))
}

/// The ids of the hosted zones named exactly `name` (only public ones with
/// `public_only`: an ACM validation record must be publicly resolvable).
pub(crate) async fn zone_ids(
    api: &Api,
    name: &str,
    public_only: bool,
) -> Result<Vec<String>, TeardownError> {
    let wanted = dns::normalize(name);
    api.hit("route53:ListHostedZonesByName");
    let out = api
        .route53
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .send()
        .await
        .map_err(|e| api.error("list hosted zones", sdk_message(&e)))?;
    Ok(out
        .hosted_zones()
        .iter()
        .filter(|z| dns::normalize(z.name()) == wanted)
        .filter(|z| !(public_only && z.config().is_some_and(|c| c.private_zone())))
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .collect())
}

async fn record_sets(api: &Api, zone_id: &str) -> Result<Vec<ResourceRecordSet>, TeardownError> {
    let mut sets = Vec::new();
    let mut next: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
    loop {
        api.hit("route53:ListResourceRecordSets");
        let mut request = api
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(zone_id);
        if let Some((name, kind, identifier)) = next.take() {
            request = request
                .start_record_name(name)
                .start_record_type(kind)
                .set_start_record_identifier(identifier);
        }
        let out = request
            .send()
            .await
            .map_err(|e| api.error("list DNS records", sdk_message(&e)))?;
        sets.extend(out.resource_record_sets().iter().cloned());
        match (
            out.is_truncated(),
            out.next_record_name(),
            out.next_record_type(),
        ) {
            (true, Some(name), Some(kind)) => {
                next = Some((
                    name.to_string(),
                    kind.clone(),
                    out.next_record_identifier().map(str::to_string),
                ))
            }
            _ => break,
        }
    }
    Ok(sets)
}

fn record_view(set: &ResourceRecordSet) -> dns::Record {
    dns::Record {
        name: set.name().to_string(),
        kind: set.r#type().as_str().to_string(),
        set_identifier: set.set_identifier().map(str::to_string),
        values: set
            .resource_records()
            .iter()
            .map(|r| r.value().to_string())
            .collect(),
    }
}

pub(crate) fn record_item(zone_id: &str, set: &ResourceRecordSet) -> Item {
    let kind = set.r#type().as_str();
    let name = dns::normalize(set.name());
    let mut id = format!("{zone_id}/{name}/{kind}");
    if let Some(identifier) = set.set_identifier() {
        id.push('/');
        id.push_str(identifier);
    }
    Item::new(Kind::DnsRecord, id, Some(format!("{name} {kind}")))
}
