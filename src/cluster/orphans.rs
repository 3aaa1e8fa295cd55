//! Orphans of a killed apply: resources that carry Terrace's tags for the
//! cluster and exist in the account, yet are in no Terraform state — what
//! an apply created in the seconds before it was SIGKILLed. Left alone they
//! make the next apply fail on every name that already exists.
//!
//! This module decides, purely, what to do with each one given the saved
//! plan (`terraform show -json`: what it would create, with the values it
//! already knows, and the ids of the prior state) and the teardown
//! inventory of the cluster: **adopt** it — an `import` block for the
//! address Terraform would create it at, with the import id Terraform
//! expects, derived from the names Terrace gives everything — or **remove**
//! it first with the teardown sweep where adoption cannot work (the VPC
//! family, whose ids are random, and the EKS cluster that lives in it). It does no I/O: `up` lists, sweeps, writes
//! the import blocks and plans again.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::guard::PlanJsonError;
use crate::aws::vpc::RouteTable;
use crate::teardown::{Item, Kind};

/// The file in the Terraform directory that holds the import blocks.
pub const IMPORTS_FILE: &str = "terrace_adopt.tf";

/// A resource the plan would create, with what it knows of it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    pub address: String,
    /// The resource type (`aws_iam_role`).
    pub kind: String,
    /// Planned values; an attribute known only after apply is absent.
    pub after: Value,
}

impl Create {
    fn known(&self, attribute: &str) -> Option<&str> {
        self.after.get(attribute).and_then(Value::as_str)
    }
}

/// What a saved plan says about creates and the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub creates: Vec<Create>,
    /// Ids and ARNs of everything in the prior state, and the ids the plan
    /// already imports: none of these is an orphan.
    pub managed: BTreeSet<String>,
}

impl Planned {
    /// Reads `terraform show -json <plan>`.
    pub fn from_show(plan_json: &str) -> Result<Planned, PlanJsonError> {
        let plan: Value = serde_json::from_str(plan_json)?;
        let mut planned = Planned::default();
        for change in plan["resource_changes"].as_array().into_iter().flatten() {
            if change["mode"] != "managed" {
                continue;
            }
            let c = &change["change"];
            if let Some(id) = c["importing"]["id"].as_str() {
                planned.managed.insert(id.to_string());
            }
            if c["actions"] == serde_json::json!(["create"]) {
                planned.creates.push(Create {
                    address: change["address"].as_str().unwrap_or_default().to_string(),
                    kind: change["type"].as_str().unwrap_or_default().to_string(),
                    after: c["after"].clone(),
                });
            }
        }
        let mut modules = vec![&plan["prior_state"]["values"]["root_module"]];
        while let Some(module) = modules.pop() {
            for resource in module["resources"].as_array().into_iter().flatten() {
                for key in ["id", "arn"] {
                    if let Some(id) = resource["values"][key].as_str().filter(|s| !s.is_empty()) {
                        planned.managed.insert(id.to_string());
                    }
                }
            }
            modules.extend(module["child_modules"].as_array().into_iter().flatten());
        }
        Ok(planned)
    }

    fn creates(&self, kind: &str) -> impl Iterator<Item = &Create> {
        self.creates.iter().filter(move |c| c.kind == kind)
    }
}

/// An orphan taken into the state by an `import` block.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Adoption {
    pub item: Item,
    pub address: String,
    /// The id Terraform's import of that resource type expects.
    pub id: String,
}

/// An orphan removed or left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Orphan {
    pub item: Item,
    pub reason: &'static str,
}

/// What to do with the orphans found in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decisions {
    pub adopt: Vec<Adoption>,
    /// Removed with the teardown sweep before Terraform plans again.
    pub remove: Vec<Orphan>,
    /// Orphans whose address the plan cannot name yet (an attribute that
    /// depends on something being adopted now); the next round sees them.
    pub later: Vec<Item>,
    /// Orphans the plan would not create again: no conflict for the
    /// apply, so they stay for `down` to sweep.
    pub left: Vec<Orphan>,
}

impl Decisions {
    /// Nothing to adopt or remove: planning again would change nothing.
    pub fn settled(&self) -> bool {
        self.adopt.is_empty() && self.remove.is_empty()
    }
}

const NEW_NETWORK: &str =
    "the plan builds a new VPC, so this part of the old one cannot be adopted";
const RANDOM_ID: &str =
    "only a random id names this part of the network, so it is built anew instead";
const IN_OLD_NETWORK: &str = "it lives in the network of the killed apply, which is removed";
const SURPLUS_KEY: &str = "a KMS key without the cluster's alias: the plan creates its own";
const NOT_PLANNED: &str = "the plan does not create it, so it does not stand in the apply's way";

/// Decides, for every orphan of `inventory` (the cluster's tagged
/// resources), whether to adopt or remove it.
pub fn decide(inventory: &[Item], planned: &Planned, tables: &[RouteTable]) -> Decisions {
    let mut out = Decisions::default();
    let orphans: Vec<&Item> = inventory
        .iter()
        .filter(|i| made_by_terraform(i.kind) && !in_state(i, &planned.managed))
        .collect();
    // The VPC family cannot be adopted: nothing but a random id tells which
    // planned subnet, gateway or table an orphan would be, and once the VPC
    // is built anew every part of it is too.
    let new_network = planned.creates("aws_vpc").next().is_some();
    for item in orphans.iter().filter(|i| network(i.kind)) {
        let reason = if new_network { NEW_NETWORK } else { RANDOM_ID };
        out.remove.push(orphan(item, reason));
    }
    let network_removed = !out.remove.is_empty();
    for item in orphans.iter().filter(|i| !network(i.kind)) {
        if network_removed && in_network(item.kind) {
            out.remove.push(orphan(item, IN_OLD_NETWORK));
            continue;
        }
        match item.kind {
            Kind::KmsKey => key(item, planned, &mut out),
            _ => match matching(item, planned) {
                Match::Adopt(address, id) => out.adopt.push(Adoption {
                    item: (*item).clone(),
                    address,
                    id,
                }),
                Match::Unknown => out.later.push((*item).clone()),
                Match::None => out.left.push(orphan(item, NOT_PLANNED)),
            },
        }
    }
    // An alias is no tagged resource of its own: it is found on its key,
    // which may already be in the state while the alias is not.
    for item in inventory.iter().filter(|i| i.kind == Kind::KmsKey) {
        let removed = out.remove.iter().any(|v| v.item == *item);
        if removed {
            continue;
        }
        for alias in planned.creates("aws_kms_alias") {
            if let Some(name) = alias.known("name")
                && aliases(item).any(|a| a == name)
            {
                out.adopt.push(Adoption {
                    item: item.clone(),
                    address: alias.address.clone(),
                    id: name.to_string(),
                });
            }
        }
    }
    route_table_parts(planned, tables, &mut out);
    out
}

/// The route tables the plan adds routes or subnet associations to and
/// already knows (they are in the state): what [`decide`] must be shown.
pub fn route_tables_to_read(planned: &Planned) -> Vec<String> {
    let ids: BTreeSet<&str> = planned
        .creates
        .iter()
        .filter(|c| c.kind == "aws_route" || c.kind == "aws_route_table_association")
        .filter_map(|c| c.known("route_table_id"))
        .collect();
    ids.into_iter().map(str::to_string).collect()
}

/// Routes and subnet associations carry no tags, so no inventory finds
/// them; an apply stopped between creating one and recording it leaves it
/// in a table that is in the state, where creating it again fails
/// (RouteAlreadyExists). Each planned one its table already holds is
/// adopted.
fn route_table_parts(planned: &Planned, tables: &[RouteTable], out: &mut Decisions) {
    for table in tables {
        let on_table = |kind: &'static str| {
            planned
                .creates(kind)
                .filter(|c| c.known("route_table_id") == Some(table.id.as_str()))
        };
        for route in on_table("aws_route") {
            let Some(destination) = route.known("destination_cidr_block") else {
                continue;
            };
            if table.destinations.iter().any(|d| d == destination) {
                out.adopt.push(Adoption {
                    item: Item {
                        kind: Kind::RouteTable,
                        id: table.id.clone(),
                        name: Some(format!("route to {destination}")),
                    },
                    address: route.address.clone(),
                    id: format!("{}_{destination}", table.id),
                });
            }
        }
        for association in on_table("aws_route_table_association") {
            let Some(subnet) = association.known("subnet_id") else {
                continue;
            };
            if table.subnets.iter().any(|s| s == subnet) {
                out.adopt.push(Adoption {
                    item: Item {
                        kind: Kind::Subnet,
                        id: subnet.to_string(),
                        name: Some(format!("association with {}", table.id)),
                    },
                    address: association.address.clone(),
                    id: format!("{subnet}/{}", table.id),
                });
            }
        }
    }
}

/// Whether `inventory` holds anything Terraform creates: without it there
/// can be no orphan, and the plan need not be read.
pub fn candidates(inventory: &[Item]) -> bool {
    inventory.iter().any(|i| made_by_terraform(i.kind))
}

/// The import blocks for `adoptions`, as the file [`IMPORTS_FILE`] holds.
pub fn imports(adoptions: &[Adoption]) -> String {
    let mut hcl = String::from(
        "# Written by terrace cluster up: resources a killed apply created but\n\
         # never recorded in the state, adopted instead of created again.\n",
    );
    for a in adoptions {
        hcl.push_str(&format!(
            "\nimport {{\n  to = {}\n  id = {}\n}}\n",
            a.address,
            serde_json::to_string(&a.id).unwrap_or_default()
        ));
    }
    hcl
}

fn orphan(item: &Item, reason: &'static str) -> Orphan {
    Orphan {
        item: item.clone(),
        reason,
    }
}

/// The kinds Terraform creates; the rest (instances, load balancers,
/// volumes, records, Karpenter's instance profiles) are the controllers'
/// and never in Terraform's state.
fn made_by_terraform(kind: Kind) -> bool {
    network(kind)
        || in_network(kind)
        || matches!(
            kind,
            Kind::LaunchTemplate
                | Kind::IamRole
                | Kind::KmsKey
                | Kind::LogGroup
                | Kind::SqsQueue
                | Kind::EventRule
        )
}

fn network(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Vpc
            | Kind::Subnet
            | Kind::InternetGateway
            | Kind::RouteTable
            | Kind::NatGateway
            | Kind::ElasticIp
            | Kind::FlowLog
    )
}

/// The EKS cluster and its parts: the cluster sits in the VPC's subnets.
fn in_network(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::EksCluster
            | Kind::NodeGroup
            | Kind::EksAddon
            | Kind::AccessEntry
            | Kind::PodIdentityAssociation
    )
}

/// Whether the state (or the plan's imports) holds `item` under any of the
/// forms its Terraform id takes: EKS parts are `<cluster>/<part>` in the
/// inventory and `<cluster>:<part>` or `<cluster>,<id>` in the state; a pod
/// identity association also by its bare id. Only there: an access entry's
/// part is its principal's ARN, which the state holds as the role's ARN
/// whether or not the entry itself was recorded.
fn in_state(item: &Item, managed: &BTreeSet<String>) -> bool {
    let mut forms = vec![item.id.clone()];
    if let Some((cluster, part)) = item.id.split_once('/')
        && in_network(item.kind)
    {
        forms.push(format!("{cluster}:{part}"));
        forms.push(format!("{cluster},{part}"));
        if item.kind == Kind::PodIdentityAssociation {
            forms.push(part.to_string());
        }
    }
    forms.iter().any(|f| managed.contains(f))
}

fn aliases(item: &Item) -> impl Iterator<Item = &str> {
    item.name
        .as_deref()
        .unwrap_or_default()
        .split(", ")
        .filter(|a| !a.is_empty())
}

/// The key the cluster's alias points at is adopted — whether the plan
/// creates that alias or the state already holds it (the key's record was
/// lost, the alias's was not: that key may already encrypt the cluster's
/// secrets, so removing it and creating another is never right). Any other
/// orphaned key is a surplus from an apply killed before its alias.
fn key(item: &Item, planned: &Planned, out: &mut Decisions) {
    let Some(create) = planned.creates("aws_kms_key").next() else {
        out.left.push(orphan(item, NOT_PLANNED));
        return;
    };
    let created: Vec<&str> = planned
        .creates("aws_kms_alias")
        .filter_map(|a| a.known("name"))
        .collect();
    let ours = aliases(item).any(|a| created.contains(&a) || planned.managed.contains(a));
    if ours {
        out.adopt.push(Adoption {
            item: item.clone(),
            address: create.address.clone(),
            id: item.id.clone(),
        });
    } else {
        out.remove.push(orphan(item, SURPLUS_KEY));
    }
}

enum Match {
    Adopt(String, String),
    /// A create of this type whose identifying attribute is not known yet.
    Unknown,
    None,
}

/// The planned create `item` would conflict with, and the import id for it.
fn matching(item: &Item, planned: &Planned) -> Match {
    let (cluster, part) = item.id.split_once('/').unwrap_or((&item.id, ""));
    let last = item.id.rsplit('/').next().unwrap_or_default();
    // (resource type, attributes that must equal these values, import id)
    let (kind, wanted, id): (&str, Vec<(&str, &str)>, String) = match item.kind {
        Kind::IamRole => ("aws_iam_role", vec![("name", &item.id)], item.id.clone()),
        Kind::LogGroup => (
            "aws_cloudwatch_log_group",
            vec![("name", &item.id)],
            item.id.clone(),
        ),
        Kind::SqsQueue => ("aws_sqs_queue", vec![("name", last)], item.id.clone()),
        Kind::EventRule => (
            "aws_cloudwatch_event_rule",
            vec![("name", &item.id)],
            item.id.clone(),
        ),
        Kind::EksCluster => ("aws_eks_cluster", vec![("name", &item.id)], item.id.clone()),
        Kind::NodeGroup => (
            "aws_eks_node_group",
            vec![("cluster_name", cluster), ("node_group_name", part)],
            format!("{cluster}:{part}"),
        ),
        Kind::EksAddon => (
            "aws_eks_addon",
            vec![("cluster_name", cluster), ("addon_name", part)],
            format!("{cluster}:{part}"),
        ),
        Kind::AccessEntry => (
            "aws_eks_access_entry",
            vec![("cluster_name", cluster), ("principal_arn", part)],
            format!("{cluster}:{part}"),
        ),
        Kind::PodIdentityAssociation => {
            let Some((namespace, account)) = item.name.as_deref().and_then(|n| n.split_once('/'))
            else {
                return Match::None;
            };
            (
                "aws_eks_pod_identity_association",
                vec![
                    ("cluster_name", cluster),
                    ("namespace", namespace),
                    ("service_account", account),
                ],
                format!("{cluster},{part}"),
            )
        }
        Kind::LaunchTemplate => {
            let Some(name) = item.name.as_deref() else {
                return Match::None;
            };
            ("aws_launch_template", vec![("name", name)], item.id.clone())
        }
        _ => return Match::None,
    };
    let mut unknown = false;
    for create in planned.creates(kind) {
        let mut all = true;
        for (attribute, value) in &wanted {
            match create.known(attribute) {
                Some(v) if v == *value => {}
                Some(_) => {
                    all = false;
                    break;
                }
                None => {
                    unknown = true;
                    all = false;
                    break;
                }
            }
        }
        if all {
            return Match::Adopt(create.address.clone(), id);
        }
    }
    if unknown { Match::Unknown } else { Match::None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(kind: Kind, id: &str, name: Option<&str>) -> Item {
        Item {
            kind,
            id: id.to_string(),
            name: name.map(str::to_string),
        }
    }

    /// (address, import id) of each adoption.
    fn adopted(d: &Decisions) -> Vec<(&str, &str)> {
        d.adopt
            .iter()
            .map(|a| (a.address.as_str(), a.id.as_str()))
            .collect()
    }

    fn create(address: &str, kind: &str, after: Value) -> Create {
        Create {
            address: address.into(),
            kind: kind.into(),
            after,
        }
    }

    /// A first apply's plan: everything created, nothing in state.
    fn first_plan() -> Planned {
        Planned {
            creates: vec![
                create(
                    "module.network.aws_vpc.this",
                    "aws_vpc",
                    json!({"cidr_block": "10.0.0.0/16"}),
                ),
                create("module.kms.aws_kms_key.this", "aws_kms_key", json!({})),
                create(
                    "module.kms.aws_kms_alias.this",
                    "aws_kms_alias",
                    json!({"name": "alias/c1"}),
                ),
                create(
                    "module.cluster.aws_iam_role.cluster",
                    "aws_iam_role",
                    json!({"name": "c1-cluster"}),
                ),
                create(
                    "module.cluster.aws_cloudwatch_log_group.cluster",
                    "aws_cloudwatch_log_group",
                    json!({"name": "/aws/eks/c1/cluster"}),
                ),
                create(
                    "module.cluster.aws_eks_cluster.this",
                    "aws_eks_cluster",
                    json!({"name": "c1"}),
                ),
                create(
                    "module.cluster.aws_eks_addon.coredns",
                    "aws_eks_addon",
                    json!({"cluster_name": "c1", "addon_name": "coredns"}),
                ),
                create(
                    "module.karpenter.aws_sqs_queue.interruption",
                    "aws_sqs_queue",
                    json!({"name": "c1-karpenter"}),
                ),
                create(
                    "module.karpenter.aws_cloudwatch_event_rule.interruption[\"rebalance\"]",
                    "aws_cloudwatch_event_rule",
                    json!({"name": "c1-rebalance"}),
                ),
                create(
                    "module.karpenter.aws_eks_access_entry.node",
                    "aws_eks_access_entry",
                    json!({"cluster_name": "c1"}),
                ),
                create(
                    "module.cluster.aws_launch_template.system",
                    "aws_launch_template",
                    json!({"name": "c1-system"}),
                ),
                create(
                    "module.addon_x.aws_eks_pod_identity_association.this",
                    "aws_eks_pod_identity_association",
                    json!({"cluster_name": "c1", "namespace": "kube-system", "service_account": "x"}),
                ),
            ],
            managed: BTreeSet::new(),
        }
    }

    #[test]
    fn named_orphans_are_adopted_under_the_import_id_terraform_expects() {
        let inventory = vec![
            item(Kind::IamRole, "c1-cluster", None),
            item(Kind::LogGroup, "/aws/eks/c1/cluster", None),
            item(
                Kind::SqsQueue,
                "https://sqs.us-east-1.amazonaws.com/123/c1-karpenter",
                Some("c1-karpenter"),
            ),
            item(Kind::EventRule, "c1-rebalance", None),
            item(Kind::KmsKey, "key-1", Some("alias/c1")),
            item(Kind::LaunchTemplate, "lt-0abc", Some("c1-system")),
        ];
        let d = decide(&inventory, &first_plan(), &[]);
        let got = adopted(&d);
        assert_eq!(
            got,
            [
                ("module.cluster.aws_iam_role.cluster", "c1-cluster"),
                (
                    "module.cluster.aws_cloudwatch_log_group.cluster",
                    "/aws/eks/c1/cluster"
                ),
                (
                    "module.karpenter.aws_sqs_queue.interruption",
                    "https://sqs.us-east-1.amazonaws.com/123/c1-karpenter"
                ),
                (
                    "module.karpenter.aws_cloudwatch_event_rule.interruption[\"rebalance\"]",
                    "c1-rebalance"
                ),
                ("module.kms.aws_kms_key.this", "key-1"),
                ("module.cluster.aws_launch_template.system", "lt-0abc"),
                ("module.kms.aws_kms_alias.this", "alias/c1"),
            ]
        );
        assert!(
            d.remove.is_empty() && d.later.is_empty() && d.left.is_empty(),
            "{d:?}"
        );
    }

    #[test]
    fn a_new_vpc_removes_the_old_network_and_the_cluster_in_it() {
        let inventory = vec![
            item(Kind::Vpc, "vpc-1", None),
            item(Kind::Subnet, "subnet-1", None),
            item(Kind::NatGateway, "nat-1", None),
            item(Kind::EksCluster, "c1", None),
            item(Kind::EksAddon, "c1/coredns", None),
            item(Kind::IamRole, "c1-cluster", None),
        ];
        let d = decide(&inventory, &first_plan(), &[]);
        let removed: Vec<&str> = d.remove.iter().map(|v| v.item.id.as_str()).collect();
        assert_eq!(removed, ["vpc-1", "subnet-1", "nat-1", "c1", "c1/coredns"]);
        assert_eq!(d.adopt.len(), 1);
        assert_eq!(d.adopt[0].id, "c1-cluster");
    }

    #[test]
    fn the_cluster_is_adopted_when_its_network_is_in_the_state() {
        let mut planned = first_plan();
        planned.creates.retain(|c| c.kind != "aws_vpc");
        planned.managed.insert("vpc-1".into());
        let inventory = vec![
            item(Kind::Vpc, "vpc-1", None),
            item(Kind::EksCluster, "c1", None),
            item(Kind::EksAddon, "c1/coredns", None),
            item(
                Kind::PodIdentityAssociation,
                "c1/a-123",
                Some("kube-system/x"),
            ),
        ];
        let d = decide(&inventory, &planned, &[]);
        let got = adopted(&d);
        assert_eq!(
            got,
            [
                ("module.cluster.aws_eks_cluster.this", "c1"),
                ("module.cluster.aws_eks_addon.coredns", "c1:coredns"),
                (
                    "module.addon_x.aws_eks_pod_identity_association.this",
                    "c1,a-123"
                ),
            ]
        );
        assert!(d.remove.is_empty(), "{d:?}");
    }

    #[test]
    fn a_part_of_the_network_missing_from_the_state_is_removed_with_the_cluster_in_it() {
        let mut planned = first_plan();
        planned.creates.retain(|c| c.kind != "aws_vpc");
        planned.managed.insert("vpc-1".into());
        let inventory = vec![
            item(Kind::Vpc, "vpc-1", None),
            item(Kind::Subnet, "subnet-2", None),
            item(Kind::EksCluster, "c1", None),
        ];
        let d = decide(&inventory, &planned, &[]);
        assert_eq!(
            d.remove,
            [
                Orphan {
                    item: inventory[1].clone(),
                    reason: RANDOM_ID
                },
                Orphan {
                    item: inventory[2].clone(),
                    reason: IN_OLD_NETWORK
                },
            ]
        );
        assert!(d.adopt.is_empty(), "{d:?}");
    }

    #[test]
    fn what_is_in_the_state_or_being_imported_is_no_orphan() {
        let mut planned = first_plan();
        planned.managed.extend([
            "c1-cluster".to_string(),
            "c1:coredns".to_string(),
            "vpc-1".to_string(),
        ]);
        planned.creates.retain(|c| c.kind != "aws_vpc");
        let inventory = vec![
            item(Kind::IamRole, "c1-cluster", None),
            item(Kind::EksAddon, "c1/coredns", None),
            item(Kind::Vpc, "vpc-1", None),
        ];
        assert_eq!(decide(&inventory, &planned, &[]), Decisions::default());
    }

    #[test]
    fn an_access_entry_missing_from_the_state_is_adopted_though_its_role_is_there() {
        let mut planned = first_plan();
        planned.creates.retain(|c| c.kind != "aws_vpc");
        let role = "arn:aws:iam::123:role/c1-karpenter-node";
        planned.managed.extend([
            "vpc-1".to_string(),
            "c1".to_string(),
            "c1-karpenter-node".to_string(),
            role.to_string(),
        ]);
        planned.creates.push(create(
            "module.karpenter.aws_eks_access_entry.node",
            "aws_eks_access_entry",
            json!({"cluster_name": "c1", "principal_arn": role}),
        ));
        let inventory = vec![
            item(Kind::Vpc, "vpc-1", None),
            item(Kind::EksCluster, "c1", None),
            item(Kind::AccessEntry, &format!("c1/{role}"), None),
        ];
        let d = decide(&inventory, &planned, &[]);
        let got = adopted(&d);
        assert_eq!(
            got,
            [(
                "module.karpenter.aws_eks_access_entry.node",
                &*format!("c1:{role}")
            )]
        );
        // Recorded, the same entry is no orphan.
        planned.managed.insert(format!("c1:{role}"));
        assert_eq!(decide(&inventory, &planned, &[]), Decisions::default());
    }

    #[test]
    fn controllers_resources_are_never_touched() {
        let inventory = vec![
            item(Kind::Instance, "i-1", None),
            item(Kind::LoadBalancer, "arn:lb", None),
            item(Kind::SecurityGroup, "sg-1", None),
            item(Kind::Volume, "vol-1", None),
            item(Kind::InstanceProfile, "c1_123", None),
            item(Kind::DnsRecord, "Z1/a.example.com/A", None),
        ];
        assert_eq!(decide(&inventory, &first_plan(), &[]), Decisions::default());
        assert!(!candidates(&inventory));
        // A launch template of Karpenter's matches no planned create.
        let d = decide(
            &[item(
                Kind::LaunchTemplate,
                "lt-9",
                Some("karpenter.k8s.aws/1"),
            )],
            &first_plan(),
            &[],
        );
        assert!(d.adopt.is_empty() && d.remove.is_empty(), "{d:?}");
    }

    #[test]
    fn a_key_whose_alias_is_in_the_state_is_adopted_not_replaced() {
        let mut planned = first_plan();
        planned.creates.retain(|c| c.kind != "aws_kms_alias");
        planned.managed.insert("alias/c1".into());
        let inventory = vec![
            item(Kind::KmsKey, "k-ours", Some("alias/c1")),
            item(Kind::KmsKey, "k-stray", None),
        ];
        let d = decide(&inventory, &planned, &[]);
        assert_eq!(adopted(&d), [("module.kms.aws_kms_key.this", "k-ours")]);
        let removed: Vec<&str> = d.remove.iter().map(|v| v.item.id.as_str()).collect();
        assert_eq!(removed, ["k-stray"]);
    }

    #[test]
    fn an_unknown_principal_waits_for_the_next_round_and_a_stray_key_goes() {
        let inventory = vec![
            item(
                Kind::AccessEntry,
                "c1/arn:aws:iam::123:role/c1-karpenter-node",
                None,
            ),
            item(Kind::KmsKey, "key-2", None),
        ];
        let mut planned = first_plan();
        planned.creates.retain(|c| c.kind != "aws_vpc");
        let d = decide(&inventory, &planned, &[]);
        assert_eq!(d.later, [inventory[0].clone()]);
        assert_eq!(
            d.remove,
            [Orphan {
                item: inventory[1].clone(),
                reason: SURPLUS_KEY
            }]
        );

        // Once the role is adopted the plan knows the principal.
        let entry = planned
            .creates
            .iter_mut()
            .find(|c| c.kind == "aws_eks_access_entry")
            .unwrap();
        entry.after["principal_arn"] = json!("arn:aws:iam::123:role/c1-karpenter-node");
        let d = decide(&inventory[..1], &planned, &[]);
        assert_eq!(d.adopt[0].id, "c1:arn:aws:iam::123:role/c1-karpenter-node");
    }

    #[test]
    fn an_orphan_the_plan_does_not_create_is_left_for_down() {
        let d = decide(
            &[item(Kind::IamRole, "c1-old-addon", None)],
            &first_plan(),
            &[],
        );
        assert_eq!(d.left.len(), 1);
        assert!(d.settled());
    }

    #[test]
    fn the_plan_document_gives_creates_state_ids_and_imports() {
        let show = json!({
            "resource_changes": [
                {"address": "aws_iam_role.a", "mode": "managed", "type": "aws_iam_role",
                 "change": {"actions": ["create"], "after": {"name": "a"}}},
                {"address": "aws_iam_role.b", "mode": "managed", "type": "aws_iam_role",
                 "change": {"actions": ["no-op"], "after": {"name": "b"}, "importing": {"id": "b"}}},
                {"address": "aws_vpc.v", "mode": "managed", "type": "aws_vpc",
                 "change": {"actions": ["delete", "create"], "after": {}}},
                {"address": "data.aws_partition.p", "mode": "data", "type": "aws_partition",
                 "change": {"actions": ["create"], "after": {}}}
            ],
            "prior_state": {"values": {"root_module": {
                "resources": [{"values": {"id": "vpc-1", "arn": "arn:vpc"}}],
                "child_modules": [{"resources": [{"values": {"id": "c1"}}]}]
            }}}
        });
        let planned = Planned::from_show(&show.to_string()).unwrap();
        assert_eq!(planned.creates.len(), 1);
        assert_eq!(planned.creates[0].address, "aws_iam_role.a");
        let managed: Vec<&str> = planned.managed.iter().map(String::as_str).collect();
        assert_eq!(managed, ["arn:vpc", "b", "c1", "vpc-1"]);
    }

    #[test]
    fn routes_and_associations_a_table_in_the_state_already_holds_are_adopted() {
        let planned = Planned {
            creates: vec![
                create(
                    "module.network.aws_route.public_internet",
                    "aws_route",
                    json!({"route_table_id": "rtb-1", "destination_cidr_block": "0.0.0.0/0"}),
                ),
                create(
                    "module.network.aws_route.private_nat[0]",
                    "aws_route",
                    json!({"route_table_id": "rtb-2", "destination_cidr_block": "0.0.0.0/0"}),
                ),
                create(
                    "module.network.aws_route_table_association.public[0]",
                    "aws_route_table_association",
                    json!({"route_table_id": "rtb-1", "subnet_id": "subnet-a"}),
                ),
                create(
                    "module.network.aws_route_table_association.public[1]",
                    "aws_route_table_association",
                    json!({"route_table_id": "rtb-1", "subnet_id": "subnet-b"}),
                ),
                // A table built in this apply: nothing of it can exist yet.
                create(
                    "module.network.aws_route.private_nat[1]",
                    "aws_route",
                    json!({"destination_cidr_block": "0.0.0.0/0"}),
                ),
            ],
            managed: BTreeSet::new(),
        };
        assert_eq!(route_tables_to_read(&planned), ["rtb-1", "rtb-2"]);
        let tables = [
            RouteTable {
                id: "rtb-1".into(),
                destinations: vec!["10.0.0.0/16".into(), "0.0.0.0/0".into()],
                subnets: vec!["subnet-a".into()],
            },
            RouteTable {
                id: "rtb-2".into(),
                destinations: vec!["10.0.0.0/16".into()],
                subnets: vec![],
            },
        ];
        let d = decide(&[], &planned, &tables);
        let got = adopted(&d);
        assert_eq!(
            got,
            [
                (
                    "module.network.aws_route.public_internet",
                    "rtb-1_0.0.0.0/0"
                ),
                (
                    "module.network.aws_route_table_association.public[0]",
                    "subnet-a/rtb-1"
                ),
            ]
        );
        assert!(d.remove.is_empty() && d.left.is_empty() && d.later.is_empty());
    }

    #[test]
    fn import_blocks_quote_the_id() {
        let hcl = imports(&[Adoption {
            item: item(Kind::IamRole, "r", None),
            address: "module.m.aws_eks_access_entry.node".into(),
            id: "c1:arn:aws:iam::1:role/\"odd\"".into(),
        }]);
        assert!(
            hcl.contains("import {\n  to = module.m.aws_eks_access_entry.node\n  id = \"c1:arn:aws:iam::1:role/\\\"odd\\\"\"\n}\n"),
            "{hcl}"
        );
    }
}
