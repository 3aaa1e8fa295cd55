//! The shape of `terrace.yaml` and of the built-in defaults, as parsed.
//!
//! Every field is optional: a layer says only what it overrides. Unknown
//! keys are rejected by serde, with the field path kept by
//! `serde_path_to_error`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub fleet: Option<String>,
    pub defaults: Option<Layer>,
    #[serde(default)]
    pub clusters: Vec<Layer>,
}

/// One set of overrides: the built-in defaults, a file's `defaults:`, a
/// `clusters[]` entry or the command line.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub region: Option<String>,
    pub name: Option<String>,
    pub kubernetes_version: Option<String>,
    pub network: Option<NetworkLayer>,
    pub endpoint: Option<EndpointLayer>,
    pub system_nodes: Option<NodesLayer>,
    pub logs: Option<LogsLayer>,
    pub access: Option<AccessLayer>,
    pub addons: Option<BTreeMap<String, AddonLayer>>,
    /// How long the cluster may live before the janitor removes it (`24h`).
    pub ttl: Option<String>,
    /// Never removed by the janitor.
    pub keep: Option<bool>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nat {
    /// One NAT gateway for the VPC: cheapest, one AZ's outage cuts egress.
    #[default]
    Single,
    /// One NAT gateway per AZ.
    PerAz,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkLayer {
    pub cidr: Option<String>,
    pub azs: Option<u32>,
    pub nat: Option<Nat>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLayer {
    pub public: Option<bool>,
    pub public_cidrs: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodesLayer {
    pub instance_types: Option<Vec<String>>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub desired: Option<u32>,
    pub disk_size_gb: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsLayer {
    pub retention_days: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLayer {
    pub admins: Option<Vec<String>>,
}

/// `addons.<name>:` — `enabled` plus the settings the addon declares.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AddonLayer {
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub settings: BTreeMap<String, Value>,
}
