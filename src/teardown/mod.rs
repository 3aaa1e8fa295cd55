//! Teardown: everything `terrace cluster down` and `terrace janitor` need
//! to leave an account as they found it (DESIGN.md section 5).
//!
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

mod api;
pub mod dns;
pub mod drain;
pub mod inventory;
pub mod janitor;
pub mod sweep;
pub mod tags;
pub mod verify;

use std::time::Duration;

use serde::Serialize;

pub use drain::{DrainError, DrainOptions, DrainReport, drain};
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
    /// balancers releasing target groups, ENIs detaching).
    pub deadline: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            keep_volumes: false,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// The kinds of leftovers the sweep deletes, in the order it deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Instance,
    LoadBalancer,
    TargetGroup,
    LaunchTemplate,
    NetworkInterface,
    SecurityGroup,
    Volume,
    DnsRecord,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Instance => "instance",
            Kind::LoadBalancer => "load-balancer",
            Kind::TargetGroup => "target-group",
            Kind::LaunchTemplate => "launch-template",
            Kind::NetworkInterface => "network-interface",
            Kind::SecurityGroup => "security-group",
            Kind::Volume => "volume",
            Kind::DnsRecord => "dns-record",
        }
    }
}

/// One AWS resource of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Item {
    pub kind: Kind,
    /// Instance, volume, ENI, group or template id; load balancer or target
    /// group ARN; `<zone id>/<name>/<type>[/<set id>]` for a DNS record.
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
