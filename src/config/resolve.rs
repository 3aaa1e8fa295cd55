//! Resolution: layers → one validated [`ClusterSpec`].
//!
//! A field's value comes from the highest layer that sets it: command line,
//! then the cluster's `clusters[]` entry, then the file's `defaults:`, then
//! the built-in defaults. Each value is checked where it came from, so an
//! error names the exact file and field that set it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::file::{ConfigFile, Layer};
use super::{
    Access, AddonSchema, AddonSpec, Arch, Cidr, ClusterSpec, ConfigError, Endpoint, Lifetime,
    Location, Logs, Network, Problem, SUPPORTED_VERSIONS, SystemNodes, regions,
};
use crate::model::Names;
use crate::model::dns::{DNS_LABEL_RULE, is_dns_label};

const BUILT_IN: &str = include_str!("defaults.yaml");
const DEFAULT_FLEET: &str = "terrace";
/// The configuration file used when `--config` is not given, if present.
pub const DEFAULT_CONFIG: &str = "terrace.yaml";
/// Replicas of the Karpenter controller (the chart's default, kept): each
/// needs its own system node.
const KARPENTER_REPLICAS: u32 = 2;
/// The retention periods CloudWatch Logs accepts, in days.
const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--config`; when absent, `./terrace.yaml` is used if it exists.
    pub config: Option<PathBuf>,
    pub region: String,
    pub name: Option<String>,
}

/// Resolves and validates the cluster `request` names, with the addons
/// `catalog` describes. Every cluster in the file is validated too, so a
/// broken fleet file fails before anything runs.
pub fn load(request: &Request, catalog: &[AddonSchema]) -> Result<ClusterSpec, ConfigError> {
    let (path, file) = read(request.config.as_deref())?;
    let mut problems = Vec::new();
    let fleet = Fleet::of(path.as_deref(), &file, &mut problems);
    let entries = resolve_entries(path.as_deref(), &file, &fleet, catalog, &mut problems);

    let matching: Vec<&(usize, ClusterSpec)> = entries
        .iter()
        .filter(|(_, spec)| spec.region == request.region)
        .filter(|(_, spec)| request.name.as_ref().is_none_or(|n| *n == spec.name))
        .collect();
    let selected = match matching.as_slice() {
        [(_, spec)] => Some(spec.clone()),
        [] => {
            let flags = Layer {
                region: Some(request.region.clone()),
                name: request.name.clone(),
                ..Layer::default()
            };
            let builtin = built_in(&mut problems);
            let mut sources = vec![Source {
                origin: Origin::CommandLine,
                layer: &flags,
            }];
            if let (Some(defaults), Some(path)) = (&file.defaults, path.as_deref()) {
                sources.push(Source::file(path, "defaults", defaults));
            }
            sources.push(Source {
                origin: Origin::BuiltIn,
                layer: &builtin,
            });
            resolve_cluster(&sources, &fleet, catalog, &mut problems)
        }
        many => {
            let names: Vec<&str> = many.iter().map(|(_, s)| s.name.as_str()).collect();
            problems.push(Problem {
                location: Location::CommandLine,
                field: "--name".into(),
                message: format!(
                    "required: the configuration has {} clusters in {} ({})",
                    many.len(),
                    request.region,
                    names.join(", ")
                ),
            });
            None
        }
    };
    match selected {
        Some(spec) if problems.is_empty() => Ok(spec),
        _ => Err(ConfigError::Invalid(dedup(problems))),
    }
}

/// Every cluster the configuration file lists, validated.
pub fn load_fleet(config: &Path, catalog: &[AddonSchema]) -> Result<Vec<ClusterSpec>, ConfigError> {
    let (path, file) = read(Some(config))?;
    let mut problems = Vec::new();
    let fleet = Fleet::of(path.as_deref(), &file, &mut problems);
    let entries = resolve_entries(path.as_deref(), &file, &fleet, catalog, &mut problems);
    if problems.is_empty() {
        Ok(entries.into_iter().map(|(_, spec)| spec).collect())
    } else {
        Err(ConfigError::Invalid(dedup(problems)))
    }
}

fn read(explicit: Option<&Path>) -> Result<(Option<PathBuf>, ConfigFile), ConfigError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None if Path::new(DEFAULT_CONFIG).is_file() => PathBuf::from(DEFAULT_CONFIG),
        None => return Ok((None, ConfigFile::default())),
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let file = parse(&text).map_err(|(field, message)| {
        ConfigError::Invalid(vec![Problem {
            location: Location::File(path.clone()),
            field,
            message,
        }])
    })?;
    Ok((Some(path), file))
}

fn parse<T: serde::de::DeserializeOwned + Default>(text: &str) -> Result<T, (String, String)> {
    let blank = text
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'));
    if blank {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(text)).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        // serde_norway already prefixes its message with (part of) the path.
        let inner = e.inner().to_string();
        let message = match inner.split_once(": ") {
            Some((prefix, rest)) if !field.is_empty() && field.starts_with(prefix) => {
                rest.to_string()
            }
            _ => inner,
        };
        (field, message)
    })
}

fn built_in(problems: &mut Vec<Problem>) -> Layer {
    parse(BUILT_IN).unwrap_or_else(|(field, message)| {
        problems.push(Problem {
            location: Location::BuiltIn,
            field,
            message,
        });
        Layer::default()
    })
}

fn dedup(problems: Vec<Problem>) -> Vec<Problem> {
    let mut seen = Vec::with_capacity(problems.len());
    for p in problems {
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    seen
}

/// The fleet name and where it was set.
struct Fleet {
    name: String,
    origin: Origin,
}

impl Fleet {
    fn of(path: Option<&Path>, file: &ConfigFile, problems: &mut Vec<Problem>) -> Fleet {
        match (&file.fleet, path) {
            (Some(name), Some(path)) => {
                let origin = Origin::File {
                    path: path.to_path_buf(),
                    prefix: String::new(),
                };
                if !is_dns_label(name) {
                    problems.push(origin.problem("fleet", format!("{name:?} {}", DNS_LABEL_RULE)));
                }
                Fleet {
                    name: name.clone(),
                    origin,
                }
            }
            _ => Fleet {
                name: DEFAULT_FLEET.into(),
                origin: Origin::BuiltIn,
            },
        }
    }
}

#[derive(Debug, Clone)]
enum Origin {
    CommandLine,
    File { path: PathBuf, prefix: String },
    BuiltIn,
}

impl Origin {
    fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        let (location, field) = match self {
            Origin::CommandLine => {
                let flag = field.split('.').next().unwrap_or(field).replace('_', "-");
                (Location::CommandLine, format!("--{flag}"))
            }
            Origin::File { path, prefix } if prefix.is_empty() => {
                (Location::File(path.clone()), field.to_string())
            }
            Origin::File { path, prefix } => {
                (Location::File(path.clone()), format!("{prefix}.{field}"))
            }
            Origin::BuiltIn => (Location::BuiltIn, field.to_string()),
        };
        Problem {
            location,
            field,
            message: message.into(),
        }
    }
}

struct Source<'a> {
    origin: Origin,
    layer: &'a Layer,
}

impl<'a> Source<'a> {
    fn file(path: &Path, prefix: &str, layer: &'a Layer) -> Source<'a> {
        Source {
            origin: Origin::File {
                path: path.to_path_buf(),
                prefix: prefix.into(),
            },
            layer,
        }
    }
}

/// The value of the highest layer that sets a field, and where it came from.
fn pick<'a, T: ?Sized>(
    sources: &'a [Source<'a>],
    get: impl Fn(&'a Layer) -> Option<&'a T>,
) -> Option<(&'a T, &'a Origin)> {
    sources
        .iter()
        .find_map(|s| get(s.layer).map(|v| (v, &s.origin)))
}

fn resolve_entries(
    path: Option<&Path>,
    file: &ConfigFile,
    fleet: &Fleet,
    catalog: &[AddonSchema],
    problems: &mut Vec<Problem>,
) -> Vec<(usize, ClusterSpec)> {
    let Some(path) = path else { return Vec::new() };
    let builtin = built_in(problems);
    if let Some(defaults) = &file.defaults {
        let origin = Origin::File {
            path: path.to_path_buf(),
            prefix: "defaults".into(),
        };
        for (field, set) in [
            ("region", defaults.region.is_some()),
            ("name", defaults.name.is_some()),
        ] {
            if set {
                problems.push(origin.problem(
                    field,
                    "is per cluster: set it under clusters[], not defaults",
                ));
            }
        }
    }
    let mut entries = Vec::new();
    for (i, entry) in file.clusters.iter().enumerate() {
        let prefix = format!("clusters[{i}]");
        if entry.region.is_none() {
            problems.push(
                Source::file(path, &prefix, entry)
                    .origin
                    .problem("region", "is required"),
            );
            continue;
        }
        let mut sources = vec![Source::file(path, &prefix, entry)];
        if let Some(defaults) = &file.defaults {
            sources.push(Source::file(path, "defaults", defaults));
        }
        sources.push(Source {
            origin: Origin::BuiltIn,
            layer: &builtin,
        });
        if let Some(spec) = resolve_cluster(&sources, fleet, catalog, problems) {
            entries.push((i, spec));
        }
    }
    let at = |i: usize, field: &str| Problem {
        location: Location::File(path.to_path_buf()),
        field: format!("clusters[{i}].{field}"),
        message: String::new(),
    };
    for (a, (i, first)) in entries.iter().enumerate() {
        for (j, second) in &entries[a + 1..] {
            if first.name == second.name && first.region == second.region {
                problems.push(Problem {
                    message: format!(
                        "{:?} in {} is already defined by clusters[{i}]",
                        second.name, second.region
                    ),
                    ..at(*j, "name")
                });
            }
            if first.network.cidr.overlaps(&second.network.cidr) {
                problems.push(Problem {
                    message: format!(
                        "{} overlaps {} of clusters[{i}] ({}); give each cluster its own range so their VPCs can be peered",
                        second.network.cidr, first.network.cidr, first.name
                    ),
                    ..at(*j, "network.cidr")
                });
            }
        }
    }
    entries
}

/// Resolves one cluster from its layers; `None` when a problem was found.
fn resolve_cluster(
    sources: &[Source<'_>],
    fleet: &Fleet,
    catalog: &[AddonSchema],
    problems: &mut Vec<Problem>,
) -> Option<ClusterSpec> {
    let before = problems.len();
    let (region, region_origin) = pick(sources, |l| l.region.as_ref())?;
    if regions::find(region).is_none() {
        problems.push(region_origin.problem("region", regions::unknown(region)));
    }

    let explicit_name = pick(sources, |l| l.name.as_ref());
    let name_explicit = explicit_name.is_some();
    let (name, name_origin) = match explicit_name {
        Some((name, origin)) => {
            if !is_dns_label(name) {
                problems.push(origin.problem("name", format!("{name:?} {DNS_LABEL_RULE}")));
            }
            (name.clone(), origin)
        }
        None => (format!("{}-{}", fleet.name, region), &fleet.origin),
    };

    let (version, version_origin) = pick(sources, |l| l.kubernetes_version.as_ref())?;
    if !SUPPORTED_VERSIONS.contains(&version.as_str()) {
        problems.push(version_origin.problem(
            "kubernetes_version",
            format!(
                "{version:?} is not supported (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }

    let network = resolve_network(sources, problems);
    let endpoint = resolve_endpoint(sources, problems);
    let system_nodes = resolve_nodes(sources, problems);
    let (&days, days_origin) = pick(sources, |l| l.logs.as_ref()?.retention_days.as_ref())?;
    if !RETENTION_DAYS.contains(&days) {
        problems.push(days_origin.problem(
            "logs.retention_days",
            format!(
                "{days} is not a CloudWatch Logs retention period (allowed: {})",
                RETENTION_DAYS.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let access = resolve_access(sources, problems);
    let lifetime = resolve_lifetime(sources, problems);
    let addons = resolve_addons(sources, &name, catalog, problems);
    if let Some(nodes) = &system_nodes
        && addons.get("karpenter").is_some_and(|k| k.enabled)
        && nodes.desired < KARPENTER_REPLICAS
    {
        // The chart's replicas require different nodes (podAntiAffinity on
        // the hostname), and they run only on the system node group.
        let (field, origin) = match pick(sources, |l| l.system_nodes.as_ref()?.desired.as_ref()) {
            Some((_, origin)) => ("system_nodes.desired", origin),
            None => (
                "system_nodes.min",
                pick(sources, |l| l.system_nodes.as_ref()?.min.as_ref())?.1,
            ),
        };
        problems.push(origin.problem(
            field,
            format!(
                "{} system node(s) cannot run Karpenter, whose {KARPENTER_REPLICAS} controller replicas need one node each: use at least {KARPENTER_REPLICAS}, or set addons.karpenter.enabled: false",
                nodes.desired
            ),
        ));
    }

    let identity_addons = catalog
        .iter()
        .filter(|a| a.identity && addons.get(&a.name).is_some_and(|s| s.enabled))
        .map(|a| a.name.as_str());
    let names = Names::derive(&name, identity_addons);
    if let Some((worst, allowed)) = names.too_long() {
        let field = if name_explicit { "name" } else { "fleet" };
        problems.push(name_origin.problem(
            field,
            format!(
                "cluster name {name:?} is too long: the derived {} {:?} has {} characters and AWS allows {}; use a cluster name of at most {allowed} characters",
                worst.what,
                worst.value,
                worst.value.len(),
                worst.max
            ),
        ));
    }

    if problems.len() > before {
        return None;
    }
    Some(ClusterSpec {
        fleet: fleet.name.clone(),
        name,
        region: region.clone(),
        kubernetes_version: version.clone(),
        network: network?,
        endpoint: endpoint?,
        system_nodes: system_nodes?,
        logs: Logs {
            retention_days: days,
        },
        access: access?,
        addons,
        names,
        lifetime,
    })
}

/// `ttl:` (a whole number and a unit) and `keep:`; `keep: true` wins over
/// a `ttl` inherited from `defaults:`, so one long-lived cluster needs no
/// other change.
fn resolve_lifetime(sources: &[Source<'_>], problems: &mut Vec<Problem>) -> Lifetime {
    let keep = pick(sources, |l| l.keep.as_ref()).is_some_and(|(k, _)| *k);
    let ttl_seconds = match pick(sources, |l| l.ttl.as_ref()) {
        None => None,
        Some((text, origin)) => match crate::duration::parse(text) {
            Ok(ttl) if ttl.as_secs() >= 60 => Some(ttl.as_secs()),
            Ok(_) => {
                problems.push(origin.problem("ttl", format!("{text:?} is shorter than a minute")));
                None
            }
            Err(message) => {
                problems.push(origin.problem("ttl", message));
                None
            }
        },
    };
    Lifetime {
        keep,
        ttl_seconds: ttl_seconds.filter(|_| !keep),
        expires_at: None,
    }
}

/// `access.admins`: IAM role or user ARNs, the way an EKS access entry
/// takes them (an STS assumed-role ARN is refused with the role ARN to use).
fn resolve_access(sources: &[Source<'_>], problems: &mut Vec<Problem>) -> Option<Access> {
    let (admins, origin) = pick(sources, |l| l.access.as_ref()?.admins.as_ref())?;
    let before = problems.len();
    let mut seen = std::collections::BTreeSet::new();
    for (i, arn) in admins.iter().enumerate() {
        let field = format!("access.admins[{i}]");
        if let Err(message) = check_principal_arn(arn) {
            problems.push(origin.problem(&field, message));
        } else if !seen.insert(arn.clone()) {
            problems.push(origin.problem(&field, format!("{arn:?} is listed twice")));
        }
    }
    (problems.len() == before).then(|| Access {
        admins: seen.into_iter().collect(),
    })
}

const PRINCIPAL_RULE: &str =
    "must be an IAM role or user ARN, arn:aws:iam::<12-digit account>:role/<name> or :user/<name>";

fn check_principal_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(format!("{arn:?} {PRINCIPAL_RULE}"));
    };
    let partitions = ["aws", "aws-cn", "aws-us-gov"];
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if prefix != "arn" || !partitions.contains(&partition) || !region.is_empty() || !account_ok {
        return Err(format!("{arn:?} {PRINCIPAL_RULE}"));
    }
    if service == "sts" && resource.starts_with("assumed-role/") {
        let role = resource.split('/').nth(1).unwrap_or("<role>");
        return Err(format!(
            "{arn:?} is a role session, not a principal EKS can grant access to; use the role ARN arn:{partition}:iam::{account}:role/{role}"
        ));
    }
    let name_ok = |name: &str| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    };
    match resource.split_once('/') {
        Some(("role" | "user", name))
            if service == "iam" && name_ok(name) && !name.ends_with('/') =>
        {
            Ok(())
        }
        _ => Err(format!("{arn:?} {PRINCIPAL_RULE}")),
    }
}

fn resolve_network(sources: &[Source<'_>], problems: &mut Vec<Problem>) -> Option<Network> {
    let (cidr_text, cidr_origin) = pick(sources, |l| l.network.as_ref()?.cidr.as_ref())?;
    let (&azs, azs_origin) = pick(sources, |l| l.network.as_ref()?.azs.as_ref())?;
    let (&nat, _) = pick(sources, |l| l.network.as_ref()?.nat.as_ref())?;
    let cidr = match cidr_text.parse::<Cidr>() {
        Ok(cidr) if (16..=20).contains(&cidr.prefix()) => Some(cidr),
        Ok(cidr) => {
            problems.push(cidr_origin.problem(
                "network.cidr",
                format!(
                    "{cidr} is a /{}: a cluster VPC must be sized /16 to /20",
                    cidr.prefix()
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(cidr_origin.problem("network.cidr", e));
            None
        }
    };
    if !(2..=6).contains(&azs) {
        problems.push(azs_origin.problem(
            "network.azs",
            format!("{azs} is not allowed: use 2 to 6 availability zones"),
        ));
    }
    Some(Network {
        cidr: cidr?,
        azs,
        nat,
    })
}

fn resolve_endpoint(sources: &[Source<'_>], problems: &mut Vec<Problem>) -> Option<Endpoint> {
    let (&public, _) = pick(sources, |l| l.endpoint.as_ref()?.public.as_ref())?;
    let (texts, origin) = pick(sources, |l| l.endpoint.as_ref()?.public_cidrs.as_ref())?;
    let mut cidrs = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match text.parse::<Cidr>() {
            Ok(cidr) => cidrs.push(cidr),
            Err(e) => problems.push(origin.problem(&format!("endpoint.public_cidrs[{i}]"), e)),
        }
    }
    if public && texts.is_empty() {
        problems.push(origin.problem(
            "endpoint.public_cidrs",
            "is empty: list the CIDRs allowed to reach the public endpoint, or set endpoint.public: false",
        ));
    }
    Some(Endpoint {
        public,
        public_cidrs: if public { cidrs } else { Vec::new() },
    })
}

fn resolve_nodes(sources: &[Source<'_>], problems: &mut Vec<Problem>) -> Option<SystemNodes> {
    let (types, types_origin) = pick(sources, |l| {
        l.system_nodes.as_ref()?.instance_types.as_ref()
    })?;
    let (&min, min_origin) = pick(sources, |l| l.system_nodes.as_ref()?.min.as_ref())?;
    let (&max, max_origin) = pick(sources, |l| l.system_nodes.as_ref()?.max.as_ref())?;
    let desired = pick(sources, |l| l.system_nodes.as_ref()?.desired.as_ref());
    let (&disk, disk_origin) = pick(sources, |l| l.system_nodes.as_ref()?.disk_size_gb.as_ref())?;

    let mut arch: Option<(Arch, &str)> = None;
    if types.is_empty() {
        problems.push(types_origin.problem(
            "system_nodes.instance_types",
            "is empty: list at least one instance type",
        ));
    }
    for (i, t) in types.iter().enumerate() {
        match instance_arch(t) {
            None => problems.push(types_origin.problem(
                &format!("system_nodes.instance_types[{i}]"),
                format!("{t:?} is not an EC2 instance type (expected family.size, like m7i.large)"),
            )),
            Some(a) => match arch {
                Some((first, first_type)) if first != a => problems.push(types_origin.problem(
                    &format!("system_nodes.instance_types[{i}]"),
                    format!("{t:?} is {a:?} but {first_type:?} is {first:?}: one node group needs one CPU architecture")
                        .replace("Amd64", "amd64")
                        .replace("Arm64", "arm64"),
                )),
                Some(_) => {}
                None => arch = Some((a, t)),
            },
        }
    }
    if max == 0 {
        problems.push(max_origin.problem("system_nodes.max", "must be at least 1"));
    }
    if min > max {
        problems.push(min_origin.problem(
            "system_nodes.min",
            format!("{min} is greater than system_nodes.max ({max})"),
        ));
    }
    let desired = match desired {
        Some((&d, origin)) => {
            if d < min || d > max {
                problems.push(origin.problem(
                    "system_nodes.desired",
                    format!(
                        "{d} must be between system_nodes.min ({min}) and system_nodes.max ({max})"
                    ),
                ));
            }
            d
        }
        None => min.max(1).min(max),
    };
    if !(20..=16384).contains(&disk) {
        problems.push(disk_origin.problem(
            "system_nodes.disk_size_gb",
            format!("{disk} is not allowed: use 20 to 16384 GiB"),
        ));
    }
    Some(SystemNodes {
        instance_types: types.clone(),
        min,
        desired,
        max,
        disk_size_gb: disk,
        arch: arch.map(|(a, _)| a)?,
    })
}

/// The CPU architecture of a well-formed instance type like `m7g.large`.
fn instance_arch(t: &str) -> Option<Arch> {
    let (family, size) = t.split_once('.')?;
    let letters = family.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = family[letters..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let suffix = &family[letters + digits..];
    let family_ok = letters > 0
        && digits > 0
        && suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let numbered = |s: &str, unit: &str| {
        s.strip_suffix(unit)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let size_ok = [
        "nano", "micro", "small", "medium", "large", "xlarge", "metal",
    ]
    .contains(&size)
        || numbered(size, "xlarge")
        || size
            .strip_prefix("metal-")
            .is_some_and(|s| numbered(s, "xl"));
    if !family_ok || !size_ok {
        return None;
    }
    // Graviton families put a `g` right after the generation: m7g, c6gn, r8gd.
    Some(if suffix.starts_with('g') {
        Arch::Arm64
    } else {
        Arch::Amd64
    })
}

fn resolve_addons(
    sources: &[Source<'_>],
    cluster: &str,
    catalog: &[AddonSchema],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, AddonSpec> {
    for source in sources {
        let Some(addons) = &source.layer.addons else {
            continue;
        };
        for (name, layer) in addons {
            let Some(addon) = catalog.iter().find(|a| a.name == *name) else {
                problems.push(source.origin.problem(
                    &format!("addons.{name}"),
                    format!("unknown addon (known: {})", {
                        let mut names: Vec<&str> =
                            catalog.iter().map(|a| a.name.as_str()).collect();
                        names.sort_unstable();
                        names.join(", ")
                    }),
                ));
                continue;
            };
            for (key, value) in &layer.settings {
                let field = format!("addons.{name}.{key}");
                match addon.settings.get(key) {
                    None => {
                        let mut allowed: Vec<&str> =
                            addon.settings.keys().map(String::as_str).collect();
                        allowed.insert(0, "enabled");
                        problems.push(source.origin.problem(
                            &field,
                            format!("unknown setting (allowed: {})", allowed.join(", ")),
                        ));
                    }
                    Some(def) => {
                        for (below, e) in def.problems(value) {
                            problems.push(source.origin.problem(&format!("{field}{below}"), e));
                        }
                    }
                }
            }
        }
    }
    let addon_layer = |l: &Layer, name: &str| l.addons.as_ref().and_then(|a| a.get(name)).cloned();
    let mut out = BTreeMap::new();
    for addon in catalog.iter() {
        let enabled = sources
            .iter()
            .find_map(|s| addon_layer(s.layer, &addon.name)?.enabled)
            .unwrap_or(true);
        let mut settings: BTreeMap<String, Value> = BTreeMap::new();
        for (key, def) in &addon.settings {
            let value = sources
                .iter()
                .find_map(|s| {
                    addon_layer(s.layer, &addon.name)?
                        .settings
                        .get(key)
                        .cloned()
                })
                .or_else(|| def.default_for(cluster));
            if let Some(value) = value {
                settings.insert(key.clone(), def.normalize(value));
            }
        }
        out.insert(addon.name.clone(), AddonSpec { enabled, settings });
    }
    for dep in catalog.iter().filter(|a| !out[&a.name].enabled) {
        let needed_by: Vec<&str> = catalog
            .iter()
            .filter(|a| out[&a.name].enabled && a.depends_on.contains(&dep.name))
            .map(|a| a.name.as_str())
            .collect();
        if needed_by.is_empty() {
            continue;
        }
        let origin = sources
            .iter()
            .find(|s| addon_layer(s.layer, &dep.name).is_some_and(|l| l.enabled == Some(false)))
            .map(|s| &s.origin)
            .unwrap_or(&Origin::BuiltIn);
        problems.push(origin.problem(
            &format!("addons.{}.enabled", dep.name),
            format!(
                "is false, but {} need it: disable them too, or keep {} enabled",
                needed_by.join(", "),
                dep.name
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types() {
        assert_eq!(instance_arch("m7i.large"), Some(Arch::Amd64));
        assert_eq!(instance_arch("m7g.xlarge"), Some(Arch::Arm64));
        assert_eq!(instance_arch("c6gn.16xlarge"), Some(Arch::Arm64));
        assert_eq!(instance_arch("r8gd.metal-24xl"), Some(Arch::Arm64));
        assert_eq!(instance_arch("t3.micro"), Some(Arch::Amd64));
        for bad in [
            "m7i",
            "large",
            "m7i.huge",
            "M7i.large",
            "m.large",
            "7.large",
            "m7i.x2large",
        ] {
            assert_eq!(instance_arch(bad), None, "{bad}");
        }
    }

    #[test]
    fn built_in_defaults_are_complete() {
        let mut problems = Vec::new();
        let layer = built_in(&mut problems);
        let region = Layer {
            region: Some("us-east-1".into()),
            ..Layer::default()
        };
        let sources = [
            Source {
                origin: Origin::CommandLine,
                layer: &region,
            },
            Source {
                origin: Origin::BuiltIn,
                layer: &layer,
            },
        ];
        let fleet = Fleet {
            name: "terrace".into(),
            origin: Origin::BuiltIn,
        };
        let spec = resolve_cluster(&sources, &fleet, &[], &mut problems);
        assert_eq!(problems, []);
        let spec = spec.unwrap();
        assert_eq!(spec.name, "terrace-us-east-1");
        assert_eq!(spec.system_nodes.desired, 2);
    }

    #[test]
    fn admin_principals() {
        for good in [
            "arn:aws:iam::123456789012:role/ci",
            "arn:aws:iam::123456789012:role/team/on-call",
            "arn:aws:iam::123456789012:user/alice@example.com",
            "arn:aws-us-gov:iam::123456789012:role/ci",
        ] {
            assert_eq!(check_principal_arn(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "ci",
            "arn:aws:iam::12345:role/ci",
            "arn:aws:iam:us-east-1:123456789012:role/ci",
            "arn:aws:iam::123456789012:group/admins",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:role/has space",
        ] {
            let err = check_principal_arn(bad).unwrap_err();
            assert!(
                err.contains("must be an IAM role or user ARN"),
                "{bad}: {err}"
            );
        }
        let session =
            check_principal_arn("arn:aws:sts::123456789012:assumed-role/ci/runner-42").unwrap_err();
        assert!(
            session.contains("use the role ARN arn:aws:iam::123456789012:role/ci"),
            "{session}"
        );
    }
}
