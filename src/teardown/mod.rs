//! Teardown: everything `terrace cluster down` and `terrace janitor` need
//! to leave an account as they found it (DESIGN.md section 5).
//!
//! - [`gate`](gate::gate): whether a cluster of that name is Terrace's, so
//!   that nothing of anyone else's is ever drained or swept.
//! - [`drain`](drain::drain): while the cluster API answers, make the
//!   controllers remove what they created (load balancers, nodes, volumes).
//! - [`inventory`](inventory::inventory): the live list of leftovers of one
//!   cluster in its region, found by tag; what the sweep would delete.
//! - [`sweep`](sweep::sweep): delete that inventory in dependency order.
//! - [`verify`](verify::verify): list whatever is still tagged for the
//!   cluster; an empty report is success.
//! - [`janitor`]: stale clusters and orphaned Terrace resources.
//!
//! This module owns which tags mean "this cluster's" and never deletes
//! anything else. It does not run Terraform, build Kubernetes clients,
//! decide the order of `down`'s phases or print: the `cluster` module
//! composes these functions and `ui` shows their reports.

mod acm;
mod api;
pub mod dns;
pub mod drain;
mod eks;
pub mod gate;
mod iam;
pub mod inventory;
pub mod janitor;
mod network;
mod regional;
pub mod sweep;
pub mod tags;
pub mod verify;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

pub use drain::{DrainError, DrainOptions, DrainReport, drain};
pub use gate::{Evidence, Gate, gate};
pub use inventory::{Inventory, inventory};
pub use janitor::{JanitorReport, Stale};
pub use sweep::{SweepReport, sweep};
pub use verify::{LeakReport, verify};

/// How long teardown waits, in total, for AWS to finish deleting before it
/// reports what is left instead of waiting longer.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// Deletes running at once against one AWS API: enough to sweep hundreds of
/// resources in seconds, few enough to stay clear of API throttling.
pub const CONCURRENCY: usize = 8;

/// Settings shared by inventory, sweep and verify.
#[derive(Debug, Clone)]
pub struct Options {
    /// Keep EBS volumes (`--keep-volumes`): listed as kept, never deleted.
    pub keep_volumes: bool,
    /// Upper bound for the waits of one sweep (instances terminating, load
    /// balancers releasing target groups, ENIs detaching, NAT gateways and
    /// EKS deleting).
    pub deadline: Duration,
    pub scope: Scope,
    /// Ids left alone: what Terraform still manages when the pre-sweep runs
    /// before `terraform destroy`.
    pub exclude: BTreeSet<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keep_volumes: false,
            deadline: DEFAULT_DEADLINE,
            scope: Scope::Everything,
            exclude: BTreeSet::new(),
        }
    }
}

/// What an inventory (and so a sweep) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Every kind Terrace or its controllers create: the stateless sweep,
    /// which removes a cluster with no Terraform state at all.
    Everything,
    /// Only what the controllers create inside the VPC
    /// ([`Kind::controller_created`]): the pre-sweep, so that
    /// `terraform destroy` meets no foreign dependency in the subnets.
    Controllers,
}

/// The kinds of leftovers the sweep deletes, in the order it deletes them:
/// what runs in the VPC before the VPC, what holds an IAM role or a KMS key
/// (the EKS cluster, flow logs) before the role and the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Instance,
    NodeGroup,
    LoadBalancer,
    TargetGroup,
    LaunchTemplate,
    PodIdentityAssociation,
    AccessEntry,
    EksAddon,
    EksCluster,
    NatGateway,
    ElasticIp,
    NetworkInterface,
    SecurityGroup,
    InternetGateway,
    RouteTable,
    Subnet,
    FlowLog,
    Vpc,
    Volume,
    DnsRecord,
    ValidationRecord,
    Certificate,
    InstanceProfile,
    IamRole,
    KmsKey,
    LogGroup,
    SqsQueue,
    EventRule,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::NodeGroup => "node-group",
            Kind::LoadBalancer => "load-balancer",
            Kind::TargetGroup => "target-group",
            Kind::LaunchTemplate => "launch-template",
            Kind::PodIdentityAssociation => "pod-identity-association",
            Kind::AccessEntry => "access-entry",
            Kind::EksAddon => "eks-addon",
            Kind::EksCluster => "eks-cluster",
            Kind::NatGateway => "nat-gateway",
            Kind::ElasticIp => "elastic-ip",
            Kind::NetworkInterface => "network-interface",
            Kind::SecurityGroup => "security-group",
            Kind::InternetGateway => "internet-gateway",
            Kind::RouteTable => "route-table",
            Kind::Subnet => "subnet",
            Kind::FlowLog => "flow-log",
            Kind::Vpc => "vpc",
            Kind::Volume => "volume",
            Kind::DnsRecord => "dns-record",
            Kind::ValidationRecord => "validation-record",
            Kind::Certificate => "certificate",
            Kind::InstanceProfile => "instance-profile",
            Kind::IamRole => "iam-role",
            Kind::KmsKey => "kms-key",
            Kind::LogGroup => "log-group",
            Kind::SqsQueue => "sqs-queue",
            Kind::EventRule => "event-rule",
        }
    }

    /// What the LB controller and Karpenter create inside the VPC: the
    /// kinds the pre-sweep removes so `terraform destroy` is not blocked.
    pub fn controller_created(self) -> bool {
        matches!(
            self,
            Kind::Instance
                | Kind::LoadBalancer
                | Kind::TargetGroup
                | Kind::LaunchTemplate
                | Kind::NetworkInterface
                | Kind::SecurityGroup
        )
    }
}

/// One AWS resource of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// The id AWS gives it (instance, volume, ENI, group, template, VPC,
    /// subnet, route table, gateway, address allocation, flow log or KMS key
    /// id); load balancer or target group ARN; IAM role, instance profile,
    /// log group, EventBridge rule or EKS cluster name; SQS queue URL; ACM
    /// certificate ARN;
    /// `<cluster>/<name or id>` for what lives in an EKS cluster;
    /// `<zone id>/<name>/<type>[/<set id>]` for a DNS or validation record.
    pub id: String,
    /// A readable name when the resource has one (LB name, record name, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Item {
    fn new(kind: Kind, id: impl Into<String>, name: Option<String>) -> Item {
        Item {
            kind,
            id: id.into(),
            name,
        }
    }

    /// Items of one kind for `ids`, in a stable order.
    fn sorted(kind: Kind, ids: impl IntoIterator<Item = String>) -> Vec<Item> {
        let mut items: Vec<Item> = ids
            .into_iter()
            .map(|id| Item::new(kind, id, None))
            .collect();
        items.sort();
        items
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("cannot {action} in {region}: {message}")]
    Aws {
        action: String,
        region: String,
        message: String,
    },
}
