//! The versions of the EKS managed add-ons for a Kubernetes version: the
//! one EKS marks as the default for that version (DescribeAddonVersions),
//! for each add-on the cluster module installs. `up` hands them to
//! Terraform, so a `kubernetes_version` change moves the add-ons with it.
//!
//! Read-only; it decides nothing about what to do when EKS cannot answer.

use std::collections::BTreeMap;

use aws_sdk_eks::types::AddonInfo;

use super::{Aws, sdk_message};

/// The EKS managed add-ons `terraform/modules/cluster` installs, by EKS's
/// names; the module looks each one up in its `addon_versions` map.
pub const MANAGED: &[&str] = &[
    "vpc-cni",
    "kube-proxy",
    "eks-pod-identity-agent",
    "coredns",
    "metrics-server",
    "aws-ebs-csi-driver",
];

#[derive(Debug, thiserror::Error)]
pub enum AddonVersionError {
    #[error("DescribeAddonVersions for {addon}: {message}")]
    Api { addon: String, message: String },
    #[error("EKS names no default version of {addon} for Kubernetes {kubernetes}")]
    NoDefault { addon: String, kubernetes: String },
}

/// The default version of each of [`MANAGED`] for Kubernetes `kubernetes`
/// (`1.34`), by add-on name; the add-ons are asked about at once.
pub async fn resolve(
    aws: &Aws,
    kubernetes: &str,
) -> Result<BTreeMap<String, String>, AddonVersionError> {
    let found = futures::future::try_join_all(MANAGED.iter().map(|addon| async move {
        resolve_one(aws, addon, kubernetes)
            .await
            .map(|version| (addon.to_string(), version))
    }))
    .await?;
    Ok(found.into_iter().collect())
}

async fn resolve_one(
    aws: &Aws,
    addon: &str,
    kubernetes: &str,
) -> Result<String, AddonVersionError> {
    let mut listed = Vec::new();
    let mut pages = aws
        .eks()
        .describe_addon_versions()
        .addon_name(addon)
        .kubernetes_version(kubernetes)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AddonVersionError::Api {
            addon: addon.to_string(),
            message: sdk_message(&e),
        })?;
        listed.extend(page.addons().iter().cloned());
    }
    default_version(&listed, addon, kubernetes).ok_or_else(|| AddonVersionError::NoDefault {
        addon: addon.to_string(),
        kubernetes: kubernetes.to_string(),
    })
}

/// The version of `addon` EKS marks as the default for cluster version
/// `kubernetes`. Filtering the request by Kubernetes version still lists
/// versions that are merely compatible, so the default flag of that
/// version's compatibility entry decides.
pub fn default_version(addons: &[AddonInfo], addon: &str, kubernetes: &str) -> Option<String> {
    addons
        .iter()
        .filter(|a| a.addon_name() == Some(addon))
        .flat_map(|a| a.addon_versions())
        .find(|v| {
            v.compatibilities()
                .iter()
                .any(|c| c.cluster_version() == Some(kubernetes) && c.default_version())
        })
        .and_then(|v| v.addon_version())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use aws_sdk_eks::types::{AddonVersionInfo, Compatibility};

    use super::*;

    fn version(name: &str, compatible: &[(&str, bool)]) -> AddonVersionInfo {
        let mut builder = AddonVersionInfo::builder().addon_version(name);
        for (cluster, default) in compatible {
            builder = builder.compatibilities(
                Compatibility::builder()
                    .cluster_version(*cluster)
                    .default_version(*default)
                    .build(),
            );
        }
        builder.build()
    }

    fn addon(name: &str, versions: Vec<AddonVersionInfo>) -> AddonInfo {
        AddonInfo::builder()
            .addon_name(name)
            .set_addon_versions(Some(versions))
            .build()
    }

    #[test]
    fn the_default_for_the_cluster_version_wins_over_newer_and_other_defaults() {
        let listed = [
            addon(
                "vpc-cni",
                vec![
                    // Newest, compatible with 1.34, but not its default.
                    version("v1.20.1-eksbuild.1", &[("1.34", false), ("1.35", true)]),
                    version("v1.20.0-eksbuild.1", &[("1.33", false), ("1.34", true)]),
                    version("v1.19.5-eksbuild.1", &[("1.33", true), ("1.34", false)]),
                ],
            ),
            addon(
                "coredns",
                vec![version("v1.12.1-eksbuild.2", &[("1.34", true)])],
            ),
        ];
        assert_eq!(
            default_version(&listed, "vpc-cni", "1.34").as_deref(),
            Some("v1.20.0-eksbuild.1")
        );
        assert_eq!(
            default_version(&listed, "vpc-cni", "1.33").as_deref(),
            Some("v1.19.5-eksbuild.1")
        );
        assert_eq!(
            default_version(&listed, "coredns", "1.34").as_deref(),
            Some("v1.12.1-eksbuild.2")
        );
        // Compatible is not enough; another add-on's default is not this one's.
        assert_eq!(default_version(&listed, "vpc-cni", "1.32"), None);
        assert_eq!(default_version(&listed, "kube-proxy", "1.34"), None);
    }

    #[test]
    fn every_managed_addon_of_the_cluster_module_is_resolved() {
        let module = include_str!("../../terraform/modules/cluster/main.tf");
        let quoted = |attribute: &str| {
            let mut names: Vec<&str> = module
                .lines()
                .filter_map(|l| l.trim().strip_prefix(attribute))
                .filter_map(|rest| rest.split('"').nth(1))
                .collect();
            names.sort_unstable();
            names
        };
        let mut managed = MANAGED.to_vec();
        managed.sort_unstable();
        assert_eq!(quoted("addon_name "), managed);
        // Each add-on looks up its own name in the map.
        assert_eq!(quoted("addon_version "), managed);
    }
}
