//! Which tags mark an AWS resource as one cluster's. Terrace tags
//! everything it creates and configures each controller to add
//! `terrace.dev/cluster` too, but resources made before or around that
//! setting carry only the controller's own tag, so each kind is matched by
//! every tag that can mark it (DESIGN.md section 1).
//!
//! Matching is exact on the value: `kubernetes.io/cluster/<name>` counts
//! only as `owned` (`shared` marks a resource the cluster merely uses), and
//! a cluster named `a` never matches `a-2`.

use crate::model::tags::TAG_CLUSTER;

/// AWS Load Balancer Controller: load balancers, target groups, security groups.
pub const LB_CONTROLLER: &str = "elbv2.k8s.aws/cluster";
/// Karpenter: the NodePool an instance was launched for.
pub const KARPENTER_NODEPOOL: &str = "karpenter.sh/nodepool";
/// Karpenter (and EKS): the cluster of an instance, volume or launch template.
pub const EKS_CLUSTER_NAME: &str = "eks:eks-cluster-name";
/// Karpenter: the cluster of a launch template it generated.
pub const KARPENTER_CLUSTER: &str = "karpenter.k8s.aws/cluster";
/// Karpenter: the cluster of an instance profile it created.
pub const KARPENTER_MANAGED_BY: &str = "karpenter.sh/managed-by";
/// Amazon VPC CNI: the cluster of an ENI it created.
pub const CNI_CLUSTER: &str = "cluster.k8s.amazonaws.com/name";
/// Kubernetes cloud provider convention, value `owned` (EBS CSI with
/// `k8sTagClusterId`, Karpenter instances, EKS cluster security group).
pub const KUBERNETES_CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";
pub const OWNED: &str = "owned";

/// One way a tag can say "this cluster's".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Terrace,
    LbController,
    KubernetesOwned,
    EksClusterName,
    KarpenterCluster,
    KarpenterManagedBy,
    Cni,
}

/// The markers that identify each kind of leftover.
pub mod markers {
    use super::Marker::{self, *};

    pub const LOAD_BALANCER: &[Marker] = &[Terrace, LbController, KubernetesOwned];
    /// Besides one of these, an instance needs `karpenter.sh/nodepool`.
    pub const INSTANCE: &[Marker] = &[EksClusterName, Terrace, KubernetesOwned];
    pub const LAUNCH_TEMPLATE: &[Marker] = &[KarpenterCluster, EksClusterName, Terrace];
    pub const NETWORK_INTERFACE: &[Marker] =
        &[Cni, Terrace, KubernetesOwned, LbController, EksClusterName];
    pub const SECURITY_GROUP: &[Marker] = &[LbController, KubernetesOwned, Terrace];
    pub const VOLUME: &[Marker] = &[KubernetesOwned, Terrace, EksClusterName];
    /// Everything verify asks the Resource Groups Tagging API about.
    pub const ANY: &[Marker] = &[
        Terrace,
        LbController,
        KubernetesOwned,
        EksClusterName,
        KarpenterCluster,
        KarpenterManagedBy,
        Cni,
    ];
}

impl Marker {
    /// The tag key this marker looks for on `cluster`'s resources.
    pub fn key(self, cluster: &str) -> String {
        match self {
            Marker::Terrace => TAG_CLUSTER.to_string(),
            Marker::LbController => LB_CONTROLLER.to_string(),
            Marker::KubernetesOwned => format!("{KUBERNETES_CLUSTER_PREFIX}{cluster}"),
            Marker::EksClusterName => EKS_CLUSTER_NAME.to_string(),
            Marker::KarpenterCluster => KARPENTER_CLUSTER.to_string(),
            Marker::KarpenterManagedBy => KARPENTER_MANAGED_BY.to_string(),
            Marker::Cni => CNI_CLUSTER.to_string(),
        }
    }

    /// The value the tag must have.
    pub fn value(self, cluster: &str) -> &str {
        match self {
            Marker::KubernetesOwned => OWNED,
            _ => cluster,
        }
    }

    fn matches(self, cluster: &str, key: &str, value: &str) -> bool {
        match self {
            Marker::KubernetesOwned => {
                key.strip_prefix(KUBERNETES_CLUSTER_PREFIX) == Some(cluster) && value == OWNED
            }
            _ => key == self.key(cluster) && value == cluster,
        }
    }
}

/// Whether `tags` mark a resource as `cluster`'s by any of `markers`.
pub fn tagged_for<'a>(
    cluster: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    markers: &[Marker],
) -> bool {
    tags.into_iter()
        .any(|(k, v)| markers.iter().any(|m| m.matches(cluster, k, v)))
}

/// The distinct tag keys of `markers`, for an EC2 `tag-key` filter (which
/// ORs its values) narrowing a listing before [`tagged_for`] decides.
pub fn keys(cluster: &str, markers: &[Marker]) -> Vec<String> {
    let mut keys: Vec<String> = markers.iter().map(|m| m.key(cluster)).collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_cluster_and_owned_only() {
        let m = markers::ANY;
        assert!(tagged_for("a", [(TAG_CLUSTER, "a")], m));
        assert!(!tagged_for("a", [(TAG_CLUSTER, "a-2")], m));
        assert!(tagged_for("a", [("kubernetes.io/cluster/a", "owned")], m));
        assert!(!tagged_for("a", [("kubernetes.io/cluster/a", "shared")], m));
        assert!(!tagged_for(
            "a",
            [("kubernetes.io/cluster/a-2", "owned")],
            m
        ));
        assert!(tagged_for("a", [(LB_CONTROLLER, "a")], m));
        assert!(!tagged_for("a", [("Name", "a")], m));
    }

    #[test]
    fn only_the_kinds_markers_count() {
        assert!(!tagged_for(
            "a",
            [(CNI_CLUSTER, "a")],
            markers::LOAD_BALANCER
        ));
        assert!(tagged_for(
            "a",
            [(CNI_CLUSTER, "a")],
            markers::NETWORK_INTERFACE
        ));
    }

    #[test]
    fn filter_keys_are_distinct() {
        assert_eq!(
            keys("a", markers::VOLUME),
            vec![EKS_CLUSTER_NAME, "kubernetes.io/cluster/a", TAG_CLUSTER]
        );
    }
}
