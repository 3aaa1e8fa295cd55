//! Every AWS name derived from a cluster name, computed in one place.
//!
//! Terraform modules receive these names as variables and never build names
//! themselves, so the length checks here cover exactly what gets created.
//! IAM is global: each name carries the cluster name, which carries the
//! region, so two regions never collide.

use std::collections::BTreeMap;

use serde::Serialize;

/// AWS limits on the names Terrace derives.
const IAM_ROLE_MAX: usize = 64;
const EVENT_RULE_MAX: usize = 64;
const NODE_GROUP_MAX: usize = 63;
const SQS_QUEUE_MAX: usize = 80;
const EKS_CLUSTER_MAX: usize = 100;
const LAUNCH_TEMPLATE_MAX: usize = 128;
const LOG_GROUP_MAX: usize = 512;
const KMS_ALIAS_MAX: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRules {
    pub spot_interruption: String,
    pub rebalance: String,
    pub instance_state_change: String,
    pub scheduled_change: String,
    pub capacity_reservation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Names {
    pub cluster: String,
    pub cluster_role: String,
    pub system_node_role: String,
    pub karpenter_node_role: String,
    pub ebs_csi_role: String,
    pub flow_log_role: String,
    pub node_group: String,
    pub launch_template: String,
    pub interruption_queue: String,
    pub event_rules: EventRules,
    pub cluster_log_group: String,
    pub flow_log_group: String,
    pub kms_alias: String,
    /// IAM role of each addon that has an identity, by addon name.
    pub addon_roles: BTreeMap<String, String>,
}

/// One derived name and the most characters AWS allows for it.
#[derive(Debug, PartialEq, Eq)]
pub struct NameLimit<'a> {
    pub what: &'static str,
    pub value: &'a str,
    pub max: usize,
}

impl Names {
    pub fn derive<'a>(cluster: &str, identity_addons: impl IntoIterator<Item = &'a str>) -> Names {
        let n = |suffix: &str| format!("{cluster}-{suffix}");
        Names {
            cluster: cluster.to_string(),
            cluster_role: n("cluster"),
            system_node_role: n("system-node"),
            karpenter_node_role: n("karpenter-node"),
            ebs_csi_role: n("ebs-csi-driver"),
            flow_log_role: n("vpc-flow-logs"),
            node_group: n("system"),
            launch_template: n("system"),
            interruption_queue: n("karpenter-interruption"),
            event_rules: EventRules {
                spot_interruption: n("spot-interruption"),
                rebalance: n("rebalance"),
                instance_state_change: n("instance-state-change"),
                scheduled_change: n("scheduled-change"),
                capacity_reservation: n("capacity-reservation"),
            },
            cluster_log_group: format!("/aws/eks/{cluster}/cluster"),
            flow_log_group: format!("/aws/vpc/{cluster}/flow-logs"),
            kms_alias: format!("alias/{cluster}"),
            addon_roles: identity_addons
                .into_iter()
                .map(|addon| (addon.to_string(), n(addon)))
                .collect(),
        }
    }

    /// Every derived name with its AWS length limit.
    pub fn limits(&self) -> Vec<NameLimit<'_>> {
        fn l<'a>(what: &'static str, value: &'a str, max: usize) -> NameLimit<'a> {
            NameLimit { what, value, max }
        }
        let mut out = vec![
            l("EKS cluster name", &self.cluster, EKS_CLUSTER_MAX),
            l("IAM role name", &self.cluster_role, IAM_ROLE_MAX),
            l("IAM role name", &self.system_node_role, IAM_ROLE_MAX),
            l("IAM role name", &self.karpenter_node_role, IAM_ROLE_MAX),
            l("IAM role name", &self.ebs_csi_role, IAM_ROLE_MAX),
            l("IAM role name", &self.flow_log_role, IAM_ROLE_MAX),
            l("EKS node group name", &self.node_group, NODE_GROUP_MAX),
            l(
                "launch template name",
                &self.launch_template,
                LAUNCH_TEMPLATE_MAX,
            ),
            l("SQS queue name", &self.interruption_queue, SQS_QUEUE_MAX),
            l(
                "EventBridge rule name",
                &self.event_rules.spot_interruption,
                EVENT_RULE_MAX,
            ),
            l(
                "EventBridge rule name",
                &self.event_rules.rebalance,
                EVENT_RULE_MAX,
            ),
            l(
                "EventBridge rule name",
                &self.event_rules.instance_state_change,
                EVENT_RULE_MAX,
            ),
            l(
                "EventBridge rule name",
                &self.event_rules.scheduled_change,
                EVENT_RULE_MAX,
            ),
            l(
                "EventBridge rule name",
                &self.event_rules.capacity_reservation,
                EVENT_RULE_MAX,
            ),
            l(
                "CloudWatch log group name",
                &self.cluster_log_group,
                LOG_GROUP_MAX,
            ),
            l(
                "CloudWatch log group name",
                &self.flow_log_group,
                LOG_GROUP_MAX,
            ),
            l("KMS alias", &self.kms_alias, KMS_ALIAS_MAX),
        ];
        out.extend(
            self.addon_roles
                .values()
                .map(|role| l("IAM role name", role, IAM_ROLE_MAX)),
        );
        out
    }

    /// The first derived name that exceeds its limit, and how long the
    /// cluster name may be for every derived name to fit.
    pub fn too_long(&self) -> Option<(NameLimit<'_>, usize)> {
        let longest_allowed = self
            .limits()
            .iter()
            .map(|l| l.max - (l.value.len() - self.cluster.len()))
            .min()
            .unwrap_or(EKS_CLUSTER_MAX);
        let worst = self
            .limits()
            .into_iter()
            .filter(|l| l.value.len() > l.max)
            .max_by_key(|l| l.value.len() - l.max)?;
        Some((worst, longest_allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_cluster_name() {
        let names = Names::derive("terrace-us-east-1", ["karpenter", "external-dns"]);
        assert_eq!(
            names.karpenter_node_role,
            "terrace-us-east-1-karpenter-node"
        );
        assert_eq!(
            names.addon_roles["external-dns"],
            "terrace-us-east-1-external-dns"
        );
        assert_eq!(
            names.cluster_log_group,
            "/aws/eks/terrace-us-east-1/cluster"
        );
        for limit in names.limits() {
            assert!(limit.value.contains("terrace-us-east-1"), "{}", limit.value);
        }
        assert_eq!(names.too_long(), None);
    }

    #[test]
    fn too_long_names_the_worst_offender_and_the_allowed_length() {
        let cluster = "a".repeat(40);
        let names = Names::derive(&cluster, ["aws-load-balancer-controller"]);
        let (worst, allowed) = names.too_long().unwrap();
        assert_eq!(worst.what, "IAM role name");
        assert!(worst.value.ends_with("-aws-load-balancer-controller"));
        assert_eq!(allowed, 64 - "-aws-load-balancer-controller".len());
        let fits = Names::derive(&"a".repeat(allowed), ["aws-load-balancer-controller"]);
        assert_eq!(fits.too_long(), None);
    }
}
