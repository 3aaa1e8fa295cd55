//! Deleting a cluster's leftovers, in dependency order (the order of
//! [`Kind`]): Karpenter instances (which hold ENIs and volumes) → EKS node
//! groups (waited for) → load balancers (waited for) → their target groups
//! → launch templates → the EKS cluster's pod identity associations, access
//! entries and add-ons → the cluster (waited for) → NAT gateways (waited
//! for) → their elastic IPs → detached ENIs → security groups (after
//! revoking the rules that refer to them) → internet gateway (detached
//! first) → route tables (disassociated first; never a main table) →
//! subnets → flow logs → VPC → volumes (unless kept) → Route53 records →
//! ACM validation records → ACM certificates (only once their records are
//! gone; in use until their load balancer is) → instance profiles → IAM roles (policies detached or deleted first) →
//! KMS keys (aliases first; scheduled for deletion) → log groups → SQS
//! queues → EventBridge rules (targets first).
//!
//! Deletes of one kind run in parallel, at most [`CONCURRENCY`] at a time.
//! Where AWS is eventually consistent (a target group still "in use" just
//! after its load balancer went, an ENI detaching late, a group still
//! referenced) the delete is retried with backoff until the sweep's
//! deadline; what still fails is named in the report, never ignored.

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet};
use futures::StreamExt;
use serde::Serialize;
use tokio::time::Instant;

use super::api::{Api, Attempt, code};
use super::inventory::{self, Inventory, Reference};
use super::{CONCURRENCY, Item, Kind, Options, TeardownError, acm, eks, iam, network, regional};
use crate::aws::{Aws, sdk_message};
use crate::config::ClusterSpec;
use crate::progress::{Event, Reporter};
use crate::wait::{self, Backoff, Poll, WaitError};

const PHASE: &str = "sweep";
/// Instance ids per TerminateInstances / DescribeInstances call.
const INSTANCE_BATCH: usize = 100;
/// Route53 takes up to 1000 changes in one batch; stay well below it so
/// long TXT values never reach the batch's size limit either.
const DNS_BATCH: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    pub cluster: String,
    pub region: String,
    /// Deleted (instances: termination confirmed or at least requested).
    pub deleted: Vec<Item>,
    /// Volumes left alone because of `--keep-volumes`.
    pub kept: Vec<Item>,
    /// Rules revoked because they referred to a group being deleted.
    pub revoked: Vec<Reference>,
    pub failed: Vec<Failure>,
    pub warnings: Vec<String>,
    /// AWS calls made, by operation, and their total.
    pub calls: BTreeMap<String, u64>,
    pub total_calls: u64,
    pub elapsed_ms: u64,
}

impl SweepReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub item: Item,
    pub error: String,
}

/// Lists the cluster's leftovers and deletes them.
pub async fn sweep(
    aws: &Aws,
    spec: &ClusterSpec,
    opts: &Options,
    reporter: &dyn Reporter,
) -> Result<SweepReport, TeardownError> {
    let api = Api::new(aws);
    let started = Instant::now();
    let inv = inventory::collect(&api, spec, opts).await?;
    Ok(delete(&api, &inv, started, opts, reporter, true).await)
}

/// Deletes exactly what `inv` lists (an inventory taken earlier, narrowed
/// down to some of its items), in the sweep's order. Nothing found since is
/// touched, not even interfaces that became available meanwhile.
pub async fn sweep_listed(
    aws: &Aws,
    inv: &Inventory,
    opts: &Options,
    reporter: &dyn Reporter,
) -> SweepReport {
    let api = Api::new(aws);
    delete(&api, inv, Instant::now(), opts, reporter, false).await
}

async fn delete(
    api: &Api,
    inv: &Inventory,
    started: Instant,
    opts: &Options,
    reporter: &dyn Reporter,
    late_interfaces: bool,
) -> SweepReport {
    let deadline = started + opts.deadline;
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "{} resource(s) of {} to delete in {}",
                inv.items.len(),
                inv.cluster,
                inv.region
            ),
        )
        .with("count", inv.items.len()),
    );
    let mut report = SweepReport {
        cluster: inv.cluster.clone(),
        region: inv.region.clone(),
        deleted: Vec::new(),
        kept: inv.kept.clone(),
        revoked: Vec::new(),
        failed: Vec::new(),
        warnings: inv.warnings.clone(),
        calls: BTreeMap::new(),
        total_calls: 0,
        elapsed_ms: 0,
    };
    let sweeper = Sweeper {
        api,
        deadline,
        reporter,
        exclude: &opts.exclude,
        late_interfaces,
    };
    sweeper.run(inv, &inv.cluster, &mut report).await;
    report.calls = api.calls();
    report.total_calls = report.calls.values().sum();
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "deleted {}, {} failed, {} AWS calls",
                report.deleted.len(),
                report.failed.len(),
                report.total_calls
            ),
        )
        .with("deleted", report.deleted.len())
        .with("failed", report.failed.len())
        .with("calls", report.total_calls),
    );
    report
}

struct Sweeper<'a> {
    api: &'a Api,
    deadline: Instant,
    reporter: &'a dyn Reporter,
    exclude: &'a std::collections::BTreeSet<String>,
    /// Also delete the cluster's interfaces found available after the
    /// deletes that free them, though the inventory did not list them.
    late_interfaces: bool,
}

impl Sweeper<'_> {
    async fn run(&self, inv: &Inventory, cluster: &str, report: &mut SweepReport) {
        let of = |kind| inv.of(kind).cloned().collect::<Vec<Item>>();
        let api = self.api;

        let instances = of(Kind::Instance);
        self.terminate(&instances, report).await;

        // EKS deletes a node group's instances with it; the cluster refuses
        // to go while it has node groups.
        let nodegroups = of(Kind::NodeGroup);
        self.delete_each(nodegroups.clone(), |item| eks::delete(api, item), report)
            .await;
        self.wait_gone("EKS node groups", report, || {
            eks::remaining(api, &nodegroups)
        })
        .await;

        let lbs = of(Kind::LoadBalancer);
        let outcome = self.each(lbs.clone(), |item| self.delete_lb(item)).await;
        self.record(outcome, report);
        // Target groups stay "in use" until their load balancer is gone.
        self.wait_gone("load balancers", report, || self.lbs_remaining(&lbs))
            .await;

        let tgs = of(Kind::TargetGroup);
        let outcome = self.each(tgs, |item| self.delete_tg(item)).await;
        self.record(outcome, report);

        let lts = of(Kind::LaunchTemplate);
        let outcome = self.each(lts, |item| self.delete_lt(item)).await;
        self.record(outcome, report);

        for kind in [
            Kind::PodIdentityAssociation,
            Kind::AccessEntry,
            Kind::EksAddon,
        ] {
            self.delete_each(of(kind), |item| eks::delete(api, item), report)
                .await;
        }
        let clusters = of(Kind::EksCluster);
        self.delete_each(clusters.clone(), |item| eks::delete(api, item), report)
            .await;
        self.wait_gone("the EKS cluster", report, || eks::remaining(api, &clusters))
            .await;

        // A NAT gateway holds its elastic IP and an interface in its subnet
        // until it is deleted, which takes minutes.
        let nats = of(Kind::NatGateway);
        self.delete_each(nats.clone(), |item| network::delete(api, item), report)
            .await;
        let nat_ids: Vec<String> = nats.iter().map(|n| n.id.clone()).collect();
        self.wait_gone("NAT gateways", report, || {
            network::nat_gateways_remaining(api, &nat_ids)
        })
        .await;
        self.delete_each(
            of(Kind::ElasticIp),
            |item| network::delete(api, item),
            report,
        )
        .await;

        // Interfaces of the instances, load balancers and cluster just
        // deleted detach late; pick up the ones that became available.
        let mut enis = of(Kind::NetworkInterface);
        let late = match self.late_interfaces {
            true => inventory::network_interfaces(self.api, cluster).await,
            false => Ok(Vec::new()),
        };
        match late {
            Ok(now) => {
                for eni in now {
                    if !enis.contains(&eni) && !self.exclude.contains(&eni.id) {
                        enis.push(eni);
                    }
                }
            }
            Err(e) => report.warnings.push(e.to_string()),
        }
        let outcome = self.each(enis, |item| self.delete_eni(item)).await;
        self.record(outcome, report);

        self.revoke(&inv.references, report).await;
        let groups = of(Kind::SecurityGroup);
        let outcome = self.each(groups, |item| self.delete_sg(item)).await;
        self.record(outcome, report);

        for kind in [
            Kind::InternetGateway,
            Kind::RouteTable,
            Kind::Subnet,
            Kind::FlowLog,
            Kind::Vpc,
        ] {
            self.delete_each(of(kind), |item| network::delete(api, item), report)
                .await;
        }

        let volumes = of(Kind::Volume);
        let outcome = self.each(volumes, |item| self.delete_volume(item)).await;
        self.record(outcome, report);

        for zone in &inv.zones {
            self.delete_records(&zone.zone_id, &zone.groups, report)
                .await;
        }

        let records = self
            .each(of(Kind::ValidationRecord), |item| acm::delete(api, item))
            .await;
        let records_left = records.iter().any(|(_, result)| result.is_err());
        self.record(records, report);
        let certificates = of(Kind::Certificate);
        if records_left {
            // Only a certificate leads to its validation record: keep both.
            for item in certificates {
                report.failed.push(Failure {
                    item,
                    error: "kept: a validation record of this cluster could not be deleted".into(),
                });
            }
        } else {
            self.delete_each(certificates, |item| acm::delete(api, item), report)
                .await;
        }

        for kind in [Kind::InstanceProfile, Kind::IamRole] {
            self.delete_each(of(kind), |item| iam::delete(api, item), report)
                .await;
        }
        for kind in [
            Kind::KmsKey,
            Kind::LogGroup,
            Kind::SqsQueue,
            Kind::EventRule,
        ] {
            self.delete_each(of(kind), |item| regional::delete(api, item), report)
                .await;
        }
    }

    /// [`each`](Self::each), recorded.
    async fn delete_each<'s, F, Fut>(
        &'s self,
        items: Vec<Item>,
        delete: F,
        report: &mut SweepReport,
    ) where
        F: Fn(Item) -> Fut + 's,
        Fut: Future<Output = Attempt> + 's,
    {
        let outcome = self.each(items, delete).await;
        self.record(outcome, report);
    }

    /// Polls `remaining` with backoff until it lists nothing or the
    /// deadline passes; what is left then is a warning, and the deletes
    /// that depend on it fail and are reported by name.
    async fn wait_gone<F, Fut>(&self, what: &str, report: &mut SweepReport, remaining: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Vec<String>, String>>,
    {
        let gone = wait::until(what, self.deadline, &Backoff::AWS, || async {
            match remaining().await {
                Ok(left) if left.is_empty() => Poll::Ready(()),
                Ok(left) => {
                    self.reporter
                        .report(Event::waiting(PHASE, what, left.len()));
                    Poll::Pending(left)
                }
                Err(e) => Poll::Failed(e),
            }
        })
        .await;
        match gone {
            Ok(()) => {}
            Err(WaitError::Timeout { last, .. }) => report.warnings.push(format!(
                "{} of {what} still there at the deadline: {}",
                last.len(),
                last.join(", ")
            )),
            Err(WaitError::Failed { message, .. }) => report
                .warnings
                .push(format!("cannot confirm that {what} are gone: {message}")),
        }
    }

    /// Runs `attempt` on every item, in parallel and bounded, retrying
    /// while AWS says "not yet" and the deadline allows.
    async fn each<'s, F, Fut>(
        &'s self,
        items: Vec<Item>,
        attempt: F,
    ) -> Vec<(Item, Result<(), String>)>
    where
        F: Fn(Item) -> Fut + 's,
        Fut: Future<Output = Attempt> + 's,
    {
        let attempt = &attempt;
        futures::stream::iter(items)
            .map(|item| async move {
                let what = format!("{} {}", item.kind.as_str(), item.id);
                let result = wait::until(&what, self.deadline, &Backoff::AWS, || async {
                    match attempt(item.clone()).await {
                        Attempt::Done => Poll::Ready(()),
                        Attempt::Failed(e) => Poll::Failed(e),
                        Attempt::Retry(e) => Poll::Pending(e),
                    }
                })
                .await
                .map_err(|e| match e {
                    WaitError::Failed { message, .. } => message,
                    WaitError::Timeout { last, .. } => {
                        format!("{last} (still failing at the deadline)")
                    }
                });
                (item, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    fn record(&self, outcome: Vec<(Item, Result<(), String>)>, report: &mut SweepReport) {
        for (item, result) in outcome {
            match result {
                Ok(()) => {
                    self.reporter.report(
                        Event::debug(PHASE, format!("deleted {} {}", item.kind.as_str(), item.id))
                            .with("kind", item.kind)
                            .with("id", &item.id),
                    );
                    report.deleted.push(item);
                }
                Err(error) => {
                    self.reporter.report(
                        Event::warn(
                            PHASE,
                            format!("cannot delete {} {}: {error}", item.kind.as_str(), item.id),
                        )
                        .with("kind", item.kind)
                        .with("id", &item.id),
                    );
                    report.failed.push(Failure { item, error });
                }
            }
        }
    }

    /// Terminates in batches, then waits until EC2 reports them terminated:
    /// their ENIs and volumes cannot go before.
    async fn terminate(&self, instances: &[Item], report: &mut SweepReport) {
        if instances.is_empty() {
            return;
        }
        let ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
        for (batch, items) in ids
            .chunks(INSTANCE_BATCH)
            .zip(instances.chunks(INSTANCE_BATCH))
        {
            self.api.hit("ec2:TerminateInstances");
            let result = self
                .api
                .ec2
                .terminate_instances()
                .set_instance_ids(Some(batch.to_vec()))
                .send()
                .await;
            match result {
                Ok(_) => report.deleted.extend(items.iter().cloned()),
                // One id already gone fails the whole batch: go one by one.
                Err(_) => {
                    let outcome = self
                        .each(items.to_vec(), |item| self.terminate_one(item))
                        .await;
                    self.record(outcome, report);
                }
            }
        }
        self.wait_gone("instances", report, || {
            inventory::live_instances(self.api, &ids)
        })
        .await;
    }

    async fn terminate_one(&self, item: Item) -> Attempt {
        self.api.hit("ec2:TerminateInstances");
        let result = self
            .api
            .ec2
            .terminate_instances()
            .instance_ids(&item.id)
            .send()
            .await;
        match result {
            Ok(_) => Attempt::Done,
            Err(e) if code(&e) == Some("InvalidInstanceID.NotFound") => Attempt::Done,
            Err(e) => Attempt::Failed(sdk_message(&e)),
        }
    }

    async fn delete_lb(&self, item: Item) -> Attempt {
        self.api.hit("elbv2:DeleteLoadBalancer");
        let result = self
            .api
            .elbv2
            .delete_load_balancer()
            .load_balancer_arn(&item.id)
            .send()
            .await;
        Attempt::of(result, |c| c == "LoadBalancerNotFound", &["ResourceInUse"])
    }

    /// Which of the load balancers `lbs` ELBv2 still lists.
    async fn lbs_remaining(&self, lbs: &[Item]) -> Result<Vec<String>, String> {
        let mut remaining = Vec::new();
        for lb in lbs {
            self.api.hit("elbv2:DescribeLoadBalancers");
            match self
                .api
                .elbv2
                .describe_load_balancers()
                .load_balancer_arns(&lb.id)
                .send()
                .await
            {
                Err(e) if code(&e) == Some("LoadBalancerNotFound") => {}
                _ => remaining.push(lb.id.clone()),
            }
        }
        Ok(remaining)
    }

    async fn delete_tg(&self, item: Item) -> Attempt {
        self.api.hit("elbv2:DeleteTargetGroup");
        let result = self
            .api
            .elbv2
            .delete_target_group()
            .target_group_arn(&item.id)
            .send()
            .await;
        Attempt::of(result, |c| c == "TargetGroupNotFound", &["ResourceInUse"])
    }

    async fn delete_lt(&self, item: Item) -> Attempt {
        self.api.hit("ec2:DeleteLaunchTemplate");
        let result = self
            .api
            .ec2
            .delete_launch_template()
            .launch_template_id(&item.id)
            .send()
            .await;
        Attempt::of(result, |c| c.contains("NotFound"), &[])
    }

    async fn delete_eni(&self, item: Item) -> Attempt {
        self.api.hit("ec2:DeleteNetworkInterface");
        let result = self
            .api
            .ec2
            .delete_network_interface()
            .network_interface_id(&item.id)
            .send()
            .await;
        Attempt::of(
            result,
            |c| c == "InvalidNetworkInterfaceID.NotFound",
            &["InvalidNetworkInterface.InUse", "DependencyViolation"],
        )
    }

    /// Revokes every rule that refers to one of the cluster's groups, in
    /// whichever group holds it: a referenced group cannot be deleted.
    async fn revoke(&self, references: &[Reference], report: &mut SweepReport) {
        let outcomes: Vec<(Reference, Result<(), String>)> =
            futures::stream::iter(references.iter().cloned())
                .map(|reference| async move {
                    let result = self.revoke_one(&reference).await;
                    (reference, result)
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        for (reference, result) in outcomes {
            match result {
                Ok(()) => report.revoked.push(reference),
                Err(e) => report.warnings.push(format!(
                    "cannot revoke the rule of {} that refers to {}: {e}",
                    reference.group_id, reference.referenced_group_id
                )),
            }
        }
        report.revoked.sort();
    }

    async fn revoke_one(&self, reference: &Reference) -> Result<(), String> {
        let gone = |c: Option<&str>| {
            matches!(
                c,
                Some("InvalidPermission.NotFound" | "InvalidGroup.NotFound")
            )
        };
        if reference.egress {
            self.api.hit("ec2:RevokeSecurityGroupEgress");
            match self
                .api
                .ec2
                .revoke_security_group_egress()
                .group_id(&reference.group_id)
                .ip_permissions(reference.permission())
                .send()
                .await
            {
                Err(e) if !gone(code(&e)) => Err(sdk_message(&e)),
                _ => Ok(()),
            }
        } else {
            self.api.hit("ec2:RevokeSecurityGroupIngress");
            match self
                .api
                .ec2
                .revoke_security_group_ingress()
                .group_id(&reference.group_id)
                .ip_permissions(reference.permission())
                .send()
                .await
            {
                Err(e) if !gone(code(&e)) => Err(sdk_message(&e)),
                _ => Ok(()),
            }
        }
    }

    async fn delete_sg(&self, item: Item) -> Attempt {
        self.api.hit("ec2:DeleteSecurityGroup");
        let result = self
            .api
            .ec2
            .delete_security_group()
            .group_id(&item.id)
            .send()
            .await;
        Attempt::of(
            result,
            |c| c == "InvalidGroup.NotFound",
            &["DependencyViolation"],
        )
    }

    async fn delete_volume(&self, item: Item) -> Attempt {
        self.api.hit("ec2:DeleteVolume");
        let result = self
            .api
            .ec2
            .delete_volume()
            .volume_id(&item.id)
            .send()
            .await;
        Attempt::of(result, |c| c == "InvalidVolume.NotFound", &["VolumeInUse"])
    }

    /// One change batch per zone (split only past Route53's limits, never
    /// inside an ownership group). If a batch is refused, typically because
    /// ExternalDNS removed a record meanwhile, each group is retried alone.
    async fn delete_records(
        &self,
        zone_id: &str,
        groups: &[Vec<ResourceRecordSet>],
        report: &mut SweepReport,
    ) {
        let mut batches: Vec<Vec<&Vec<ResourceRecordSet>>> = vec![Vec::new()];
        let mut size = 0;
        for group in groups {
            if size + group.len() > DNS_BATCH && size > 0 {
                batches.push(Vec::new());
                size = 0;
            }
            size += group.len();
            if let Some(last) = batches.last_mut() {
                last.push(group);
            }
        }
        for batch in batches.into_iter().filter(|b| !b.is_empty()) {
            let sets: Vec<&ResourceRecordSet> = batch.iter().flat_map(|g| g.iter()).collect();
            match self.change(zone_id, &sets).await {
                Ok(()) => self.record_sets_done(zone_id, &sets, Ok(()), report),
                Err(_) => {
                    for group in batch {
                        let sets: Vec<&ResourceRecordSet> = group.iter().collect();
                        let result = self.change_each(zone_id, &sets).await;
                        self.record_sets_done(zone_id, &sets, result, report);
                    }
                }
            }
        }
    }

    /// A group whose batch was refused: one record at a time, a record
    /// already gone counting as deleted.
    async fn change_each(&self, zone_id: &str, sets: &[&ResourceRecordSet]) -> Result<(), String> {
        let mut errors = Vec::new();
        for set in sets {
            if let Err(e) = self.change(zone_id, &[set]).await
                && !e.contains("not found")
            {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn change(&self, zone_id: &str, sets: &[&ResourceRecordSet]) -> Result<(), String> {
        let changes = sets
            .iter()
            .map(|set| {
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set((*set).clone())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let batch = ChangeBatch::builder()
            .comment("terrace cluster down: records of this cluster's ExternalDNS")
            .set_changes(Some(changes))
            .build()
            .map_err(|e| e.to_string())?;
        self.api.hit("route53:ChangeResourceRecordSets");
        self.api
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_message(&e))
    }

    fn record_sets_done(
        &self,
        zone_id: &str,
        sets: &[&ResourceRecordSet],
        result: Result<(), String>,
        report: &mut SweepReport,
    ) {
        let outcome = sets
            .iter()
            .map(|set| (inventory::record_item(zone_id, set), result.clone()))
            .collect();
        self.record(outcome, report);
    }
}
