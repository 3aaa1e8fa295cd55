//! The cluster spec: configuration layers, defaults and validation.
//!
//! This module turns the command line, an optional `terrace.yaml` and the
//! built-in defaults into one validated [`ClusterSpec`]. It owns every rule
//! about what a valid cluster is, and reports every problem at once with the
//! file, the field path and what is allowed. It does no network I/O and
//! knows nothing of Terraform or Kubernetes. What it knows of addons is
//! their [`AddonSchema`]: the caller hands it the catalog's schema, so the
//! addon folders stay the only place an addon is described.

mod cidr;
mod file;
mod plugins;
pub mod regions;
mod resolve;
mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

pub use cidr::Cidr;
pub use file::Nat;
pub use plugins::{Plugin, PluginFields};
pub use resolve::{DEFAULT_CONFIG, Request, load, load_fleet};
pub use settings::{SettingDef, SettingType};

use crate::model::Names;

/// Kubernetes minor versions EKS supports that Terrace builds.
pub const SUPPORTED_VERSIONS: &[&str] = &["1.32", "1.33", "1.34", "1.35"];

/// One cluster, fully resolved and validated.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSpec {
    pub fleet: String,
    pub name: String,
    pub region: String,
    pub kubernetes_version: String,
    pub network: Network,
    pub endpoint: Endpoint,
    pub system_nodes: SystemNodes,
    pub logs: Logs,
    pub access: Access,
    /// Every addon of the catalog, enabled or not, with its settings.
    pub addons: BTreeMap<String, AddonSpec>,
    pub names: Names,
    pub lifetime: Lifetime,
}

/// What the janitor may do with the cluster (`ttl:`, `keep:`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lifetime {
    /// Never removed by the janitor, whatever its age or expiry.
    pub keep: bool,
    /// How long after it is built the cluster expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// When it expires (RFC 3339 UTC), fixed by `up` when it builds the
    /// cluster: rendering alone knows no clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub cidr: Cidr,
    pub azs: u32,
    pub nat: Nat,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub public: bool,
    pub public_cidrs: Vec<Cidr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Arch {
    #[serde(rename = "amd64")]
    Amd64,
    #[serde(rename = "arm64")]
    Arm64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemNodes {
    pub instance_types: Vec<String>,
    pub min: u32,
    pub desired: u32,
    pub max: u32,
    pub disk_size_gb: u32,
    pub arch: Arch,
}

impl SystemNodes {
    /// The EKS AMI type for the node group's architecture.
    pub fn ami_type(&self) -> &'static str {
        match self.arch {
            Arch::Amd64 => "AL2023_x86_64_STANDARD",
            Arch::Arm64 => "AL2023_ARM_64_STANDARD",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Logs {
    pub retention_days: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Access {
    /// IAM role and user ARNs with cluster-admin access (EKS access
    /// entries with `AmazonEKSClusterAdminPolicy`), sorted, no duplicates.
    pub admins: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddonSpec {
    pub enabled: bool,
    /// Declared settings with a value (the user's, else the default).
    pub settings: BTreeMap<String, Value>,
}

impl ClusterSpec {
    pub fn addon_enabled(&self, name: &str) -> bool {
        self.addons.get(name).is_some_and(|a| a.enabled)
    }
}

/// What configuration needs to know about one addon: the settings a user
/// may give it, what it depends on and whether it gets an IAM role (whose
/// name must fit AWS's limits). Built by `addons` from `addon.yaml`.
#[derive(Debug, Clone)]
pub struct AddonSchema {
    pub name: String,
    pub depends_on: Vec<String>,
    pub identity: bool,
    pub settings: BTreeMap<String, SettingDef>,
}

/// Where a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    CommandLine,
    BuiltIn,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    /// `clusters[1].network.cidr`, or a flag like `--region`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File(path) => write!(f, "{}: ", path.display())?,
            Location::BuiltIn => write!(f, "built-in defaults: ")?,
            Location::CommandLine => {}
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

/// Refuses a `wanted` Kubernetes version that EKS cannot reach from `live`
/// in one update: a downgrade, or a jump of more than one minor version.
/// The error names the steps to take.
pub fn version_step(live: &str, wanted: &str) -> Result<(), String> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (major, minor) = v.split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    let (Some((live_major, live_minor)), Some((major, minor))) = (parse(live), parse(wanted))
    else {
        return Ok(());
    };
    if (major, minor) == (live_major, live_minor) {
        return Ok(());
    }
    if major != live_major || minor < live_minor {
        return Err(format!(
            "the cluster runs Kubernetes {live} and EKS cannot downgrade it to {wanted}; set kubernetes_version back to {live}"
        ));
    }
    if minor == live_minor + 1 {
        return Ok(());
    }
    let steps: Vec<String> = (live_minor + 1..=minor)
        .map(|m| format!("{major}.{m}"))
        .collect();
    Err(format!(
        "the cluster runs Kubernetes {live} and EKS upgrades one minor version at a time; set kubernetes_version to {} and run `terrace cluster up` once per step ({live} → {})",
        steps[0],
        steps.join(" → ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_minor_version_at_a_time() {
        assert!(version_step("1.33", "1.33").is_ok());
        assert!(version_step("1.33", "1.34").is_ok());
        let err = version_step("1.32", "1.35").unwrap_err();
        assert!(err.contains("set kubernetes_version to 1.33"), "{err}");
        assert!(err.contains("1.32 → 1.33 → 1.34 → 1.35"), "{err}");
        let err = version_step("1.34", "1.33").unwrap_err();
        assert!(err.contains("cannot downgrade"), "{err}");
        assert!(version_step("unknown", "1.33").is_ok());
    }
}
