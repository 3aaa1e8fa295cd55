//! The addon catalog: the folders under `addons/`, embedded at compile time.
//!
//! This module owns reading and checking `addon.yaml` and ordering addons by
//! their dependencies. It does not render templates (that is `render`).
//! Installing the stack into a cluster lives in its submodules: `install`
//! (the entry point), `argocd` (bootstrap), `release` (verified release
//! manifests) and `health` (what healthy means, and `addons status`).

pub mod argocd;
pub mod health;
pub mod install;
pub mod release;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

use crate::config::{AddonSchema, ClusterSpec, SettingDef, SettingType};
use crate::model::dns::is_dns_label;

static ADDONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/addons");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("addons/{addon}/addon.yaml: {message}")]
    Invalid { addon: String, message: String },
    #[error("addons: dependency cycle through {0}")]
    Cycle(String),
    #[error(
        "addons: exactly one addon must be the GitOps engine (set teardown.pause); found {}",
        if .0.is_empty() { "none".to_string() } else { .0.join(", ") }
    )]
    Gitops(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Installed by Argo CD from a Helm chart.
    Helm,
    /// Applied from a release manifest (Argo CD itself).
    Manifest,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    pub repo: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub oci: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseManifest {
    pub version: String,
    pub url: String,
    pub sha256: String,
}

/// A Kubernetes resource type named in `addon.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceType {
    /// `group/version`, e.g. `karpenter.sh/v1`.
    pub api_version: String,
    pub kind: String,
    /// The lowercase plural the API serves it under (`nodepools`).
    pub plural: String,
}

impl ResourceType {
    /// `(group, version)`.
    pub fn group_version(&self) -> (&str, &str) {
        self.api_version
            .split_once('/')
            .unwrap_or(("", self.api_version.as_str()))
    }
}

/// When the drain deletes an addon's custom resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainStage {
    /// With Ingresses and LoadBalancer Services, before the drain waits
    /// for the load balancers to go.
    LoadBalancers,
    /// Before the drain waits for the nodes and their instances to go.
    Nodes,
    /// Once the nodes are gone.
    Last,
}

/// One custom resource the drain deletes so the addon's controller,
/// still running, removes what it created in AWS.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DrainStep {
    pub delete: ResourceType,
    pub stage: DrainStage,
    /// What the controller removes in turn, awaited (bounded) until gone.
    pub wait_for: Option<ResourceType>,
}

/// `teardown:` in addon.yaml: what `down` must know about the addon.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    /// Objects whose `spec.syncPolicy.automated` the drain removes first,
    /// so the GitOps engine recreates nothing (Argo CD's Applications).
    #[serde(default)]
    pub pause: Vec<ResourceType>,
    #[serde(default)]
    pub drain: Vec<DrainStep>,
    /// The setting (of type `domains`) naming the Route53 zones where the
    /// addon owns records: the sweep deletes the cluster's records there.
    pub dns_zones: Option<String>,
}

/// The certificates of the shared load balancer's HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Certificates {
    /// Terraform issues one DNS-validated certificate per zone, for the
    /// zone and its wildcard.
    Issue { zones: Vec<String> },
    /// Certificates the user already has, named by ARN.
    Existing { arns: Vec<String> },
    /// No HTTPS: turned off, or no zone to issue for.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddonFile {
    description: String,
    kind: Kind,
    chart: Option<Chart>,
    manifest: Option<ReleaseManifest>,
    namespace: String,
    service_account: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    settings: BTreeMap<String, SettingDef>,
    #[serde(default)]
    teardown: Teardown,
}

/// One addon folder.
#[derive(Debug, Clone)]
pub struct Addon {
    pub name: String,
    pub description: String,
    pub kind: Kind,
    pub chart: Option<Chart>,
    pub manifest: Option<ReleaseManifest>,
    pub namespace: String,
    pub service_account: Option<String>,
    pub depends_on: Vec<String>,
    /// Addons installed first when they are enabled, without needing them.
    pub after: Vec<String>,
    pub settings: BTreeMap<String, SettingDef>,
    pub teardown: Teardown,
    /// Install wave: one more than the highest wave it waits for.
    pub wave: u32,
    pub values_template: Option<&'static str>,
    pub policy_template: Option<&'static str>,
    /// `(file name without .tera, template)`, sorted by file name.
    pub manifest_templates: Vec<(String, &'static str)>,
}

impl Addon {
    /// What must be healthy before this addon is installed, when enabled:
    /// its dependencies, then the addons it comes after.
    pub fn waits_for(&self) -> impl Iterator<Item = &String> {
        self.depends_on.iter().chain(&self.after)
    }

    /// The addon gets an IAM role through EKS Pod Identity.
    pub fn has_identity(&self) -> bool {
        self.policy_template.is_some()
    }

    /// The addon's name as a Terraform identifier.
    pub fn ident(&self) -> String {
        self.name.replace('-', "_")
    }

    /// What `addons list` shows as the version.
    pub fn version(&self) -> &str {
        match (&self.chart, &self.manifest) {
            (Some(chart), _) => &chart.version,
            (None, Some(manifest)) => &manifest.version,
            (None, None) => "",
        }
    }
}

/// Every addon, in dependency order (an addon comes after what it needs).
#[derive(Debug, Clone)]
pub struct Catalog {
    addons: Vec<Addon>,
    schema: Vec<AddonSchema>,
    /// Index of the GitOps engine in `addons`.
    gitops: usize,
}

impl Catalog {
    /// The catalog compiled into this binary.
    pub fn embedded() -> Result<&'static Catalog, &'static CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Catalog::from_dirs(&[&ADDONS]))
            .as_ref()
    }

    /// The addon folders found under each of `dirs`, as one catalog: the
    /// embedded one, or (in tests) the embedded one plus a made-up addon.
    pub fn from_dirs(dirs: &[&'static Dir<'static>]) -> Result<Catalog, CatalogError> {
        let mut addons = Vec::new();
        for folder in dirs.iter().flat_map(|d| d.dirs()) {
            addons.push(load_addon(folder)?);
        }
        let addons = order(addons)?;
        let engines: Vec<usize> = (0..addons.len())
            .filter(|&i| !addons[i].teardown.pause.is_empty())
            .collect();
        let [gitops] = engines[..] else {
            return Err(CatalogError::Gitops(
                engines.iter().map(|&i| addons[i].name.clone()).collect(),
            ));
        };
        let schema = addons
            .iter()
            .map(|a| AddonSchema {
                name: a.name.clone(),
                depends_on: a.depends_on.clone(),
                identity: a.has_identity(),
                settings: a.settings.clone(),
            })
            .collect();
        Ok(Catalog {
            addons,
            schema,
            gitops,
        })
    }

    /// What configuration checks a user's `addons:` against.
    pub fn schema(&self) -> &[AddonSchema] {
        &self.schema
    }

    /// The addons `spec` enables, in dependency order: what a healthy
    /// cluster runs.
    pub fn enabled(&self, spec: &ClusterSpec) -> Vec<&str> {
        self.addons
            .iter()
            .filter(|a| spec.addon_enabled(&a.name))
            .map(|a| a.name.as_str())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Addon> {
        self.addons.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Addon> {
        self.addons.iter().find(|a| a.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.addons.iter().map(|a| a.name.as_str()).collect()
    }

    /// The drain's steps of `stage`, from every addon (an addon that is
    /// not installed has no objects of its kinds, so listing finds none).
    pub fn drain_steps(&self, stage: DrainStage) -> impl Iterator<Item = &DrainStep> {
        self.addons
            .iter()
            .flat_map(|a| a.teardown.drain.iter())
            .filter(move |s| s.stage == stage)
    }

    /// The resource types whose automated sync the drain removes first.
    pub fn paused(&self) -> impl Iterator<Item = &ResourceType> {
        self.addons.iter().flat_map(|a| a.teardown.pause.iter())
    }

    /// The Route53 zones named by each enabled addon's `teardown.dns_zones`
    /// setting (ExternalDNS's `zones`), sorted, each once.
    pub fn dns_zones(&self, spec: &ClusterSpec) -> Vec<String> {
        let mut zones: Vec<String> = self
            .addons
            .iter()
            .filter(|addon| spec.addon_enabled(&addon.name))
            .filter_map(|addon| {
                let setting = addon.teardown.dns_zones.as_ref()?;
                spec.addons
                    .get(&addon.name)?
                    .settings
                    .get(setting)?
                    .as_array()
            })
            .flatten()
            .filter_map(|z| z.as_str().map(str::to_string))
            .collect();
        zones.sort();
        zones.dedup();
        zones
    }

    /// What the shared load balancer serves HTTPS with: the value of the
    /// enabled addon's setting of type `certificates` (the LB
    /// controller's), applied to the cluster's DNS zones.
    pub fn certificates(&self, spec: &ClusterSpec) -> Certificates {
        let value = self
            .addons
            .iter()
            .filter(|addon| spec.addon_enabled(&addon.name))
            .find_map(|addon| {
                let (key, _) = addon
                    .settings
                    .iter()
                    .find(|(_, def)| def.kind == SettingType::Certificates)?;
                spec.addons.get(&addon.name)?.settings.get(key)
            });
        match value {
            Some(serde_json::Value::String(mode)) if mode == "issue" => {
                let zones = self.dns_zones(spec);
                if zones.is_empty() {
                    Certificates::None
                } else {
                    Certificates::Issue { zones }
                }
            }
            Some(serde_json::Value::Array(arns)) => Certificates::Existing {
                arns: arns
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
            },
            _ => Certificates::None,
        }
    }

    /// The GitOps engine (the addon whose objects the drain pauses): where
    /// the Applications and the engine's workloads live.
    pub fn gitops(&self) -> &Addon {
        &self.addons[self.gitops]
    }
}

fn load_addon(folder: &'static Dir<'static>) -> Result<Addon, CatalogError> {
    let name = folder
        .path()
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let invalid = |message: String| CatalogError::Invalid {
        addon: name.clone(),
        message,
    };
    let text = |file: &str| {
        folder
            .get_file(folder.path().join(file))
            .map(|f| {
                f.contents_utf8()
                    .ok_or_else(|| invalid(format!("{file} is not UTF-8")))
            })
            .transpose()
    };
    let yaml = text("addon.yaml")?.ok_or_else(|| invalid("missing".into()))?;
    let de = serde_norway::Deserializer::from_str(yaml);
    let file: AddonFile = serde_path_to_error::deserialize(de)
        .map_err(|e| invalid(format!("{}: {}", e.path(), e.inner())))?;
    if !is_dns_label(&name) {
        return Err(invalid("folder name must be a lowercase DNS label".into()));
    }
    match (file.kind, &file.chart, &file.manifest) {
        (Kind::Helm, Some(_), None) | (Kind::Manifest, None, Some(_)) => {}
        (Kind::Helm, _, _) => {
            return Err(invalid("kind: helm needs `chart` and no `manifest`".into()));
        }
        (Kind::Manifest, _, _) => {
            return Err(invalid(
                "kind: manifest needs `manifest` and no `chart`".into(),
            ));
        }
    }
    for (key, def) in &file.settings {
        if key == "enabled" {
            return Err(invalid("settings.enabled is reserved".into()));
        }
        // Checked as it would be for a cluster with a typical name.
        if let Some(default) = def.default_for("terrace-us-east-1") {
            def.check(&default)
                .map_err(|e| invalid(format!("settings.{key}.default: {e}")))?;
        }
        if def.kind == SettingType::Enum && def.values.is_empty() {
            return Err(invalid(format!("settings.{key}: an enum needs `values`")));
        }
        if def.kind != SettingType::CmpPlugins && !def.presets.is_empty() {
            return Err(invalid(format!(
                "settings.{key}: only a cmp-plugins setting has `presets`"
            )));
        }
        for preset in def.presets.keys() {
            // A preset must be complete but for the image, which is the user's.
            let sample = serde_json::json!([{ "preset": preset, "image": "example.com/tool:1" }]);
            def.check(&sample)
                .map_err(|e| invalid(format!("settings.{key}.presets.{preset}: {e}")))?;
        }
    }
    check_teardown(&file.teardown, &file.settings).map_err(invalid)?;
    let policy_template = text("policy.tf.tera")?;
    if policy_template.is_some() && file.service_account.is_none() {
        return Err(invalid(
            "policy.tf.tera needs `service_account` to bind the role to".into(),
        ));
    }
    let values_template = text("values.yaml.tera")?;
    if file.kind == Kind::Helm && values_template.is_none() {
        return Err(invalid("kind: helm needs values.yaml.tera".into()));
    }
    let mut manifest_templates = Vec::new();
    if let Some(manifests) = folder.get_dir(folder.path().join("manifests")) {
        for f in manifests.files() {
            let file_name = f
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(stem) = file_name.strip_suffix(".tera") else {
                return Err(invalid(format!("manifests/{file_name} must end in .tera")));
            };
            let body = f
                .contents_utf8()
                .ok_or_else(|| invalid(format!("manifests/{file_name} is not UTF-8")))?;
            manifest_templates.push((stem.to_string(), body));
        }
    }
    manifest_templates.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Addon {
        name: name.clone(),
        description: file.description,
        kind: file.kind,
        chart: file.chart,
        manifest: file.manifest,
        namespace: file.namespace,
        service_account: file.service_account,
        depends_on: file.depends_on,
        after: file.after,
        settings: file.settings,
        teardown: file.teardown,
        wave: 0,
        values_template,
        policy_template,
        manifest_templates,
    })
}

fn check_teardown(
    teardown: &Teardown,
    settings: &BTreeMap<String, SettingDef>,
) -> Result<(), String> {
    let types =
        teardown
            .pause
            .iter()
            .map(|r| ("teardown.pause", r))
            .chain(teardown.drain.iter().flat_map(|s| {
                std::iter::once(("teardown.drain.delete", &s.delete))
                    .chain(s.wait_for.iter().map(|w| ("teardown.drain.wait_for", w)))
            }));
    for (field, r) in types {
        let (group, version) = r.group_version();
        let plural_ok = !r.plural.is_empty()
            && r.plural
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if group.is_empty() || version.is_empty() || r.kind.is_empty() || !plural_ok {
            return Err(format!(
                "{field}: {} needs api_version group/version, a kind and a lowercase plural",
                r.kind
            ));
        }
    }
    if let Some(setting) = &teardown.dns_zones {
        match settings.get(setting) {
            Some(def) if def.kind == SettingType::Domains => {}
            _ => {
                return Err(format!(
                    "teardown.dns_zones: {setting:?} is not a setting of type domains"
                ));
            }
        }
    }
    Ok(())
}

/// Sorts addons so each follows its dependencies (ties by name) and sets
/// each one's install wave.
fn order(mut pending: Vec<Addon>) -> Result<Vec<Addon>, CatalogError> {
    let known: BTreeSet<String> = pending.iter().map(|a| a.name.clone()).collect();
    for addon in &pending {
        if let Some(missing) = addon.waits_for().find(|d| !known.contains(*d)) {
            return Err(CatalogError::Invalid {
                addon: addon.name.clone(),
                message: format!("depends_on/after: no addon named {missing:?}"),
            });
        }
    }
    pending.sort_by(|a, b| a.name.cmp(&b.name));
    let mut waves: BTreeMap<String, u32> = BTreeMap::new();
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|a| a.waits_for().all(|d| waves.contains_key(d)))
            .ok_or_else(|| CatalogError::Cycle(pending[0].name.clone()))?;
        let mut addon = pending.remove(ready);
        addon.wave = addon.waits_for().map(|d| waves[d] + 1).max().unwrap_or(0);
        waves.insert(addon.name.clone(), addon.wave);
        ordered.push(addon);
    }
    ordered.sort_by_key(|a| a.wave);
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_loads() {
        let catalog = Catalog::embedded().expect("embedded catalog is valid");
        assert!(catalog.get("argocd").is_some());
        for addon in catalog.iter() {
            for dep in addon.waits_for() {
                assert!(catalog.get(dep).unwrap().wave < addon.wave);
            }
        }
    }

    #[test]
    fn load_balancer_controller_comes_before_every_other_chart() {
        // Its Service webhook rejects new Services until it is Ready.
        let catalog = Catalog::embedded().unwrap();
        let lbc = catalog.get("aws-load-balancer-controller").unwrap();
        for addon in catalog.iter() {
            if addon.kind == Kind::Helm && addon.name != lbc.name {
                assert!(
                    addon.waits_for().any(|d| *d == lbc.name),
                    "{} does not wait for {}",
                    addon.name,
                    lbc.name
                );
            }
        }
    }

    #[test]
    fn after_orders_without_requiring() {
        let mut late = stub("late", &[]);
        late.after = vec!["first".into()];
        let ordered = order(vec![late, stub("first", &[])]).unwrap();
        let got: Vec<_> = ordered.iter().map(|a| (a.name.as_str(), a.wave)).collect();
        assert_eq!(got, [("first", 0), ("late", 1)]);
    }

    fn stub(name: &str, deps: &[&str]) -> Addon {
        Addon {
            name: name.into(),
            description: String::new(),
            kind: Kind::Helm,
            chart: None,
            manifest: None,
            namespace: name.into(),
            service_account: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            after: vec![],
            settings: BTreeMap::new(),
            teardown: Teardown::default(),
            wave: 0,
            values_template: None,
            policy_template: None,
            manifest_templates: vec![],
        }
    }

    #[test]
    fn orders_by_dependency_and_sets_waves() {
        let ordered = order(vec![
            stub("c", &["b"]),
            stub("b", &["a"]),
            stub("a", &[]),
            stub("d", &["a"]),
        ])
        .unwrap();
        let got: Vec<_> = ordered.iter().map(|a| (a.name.as_str(), a.wave)).collect();
        assert_eq!(got, [("a", 0), ("b", 1), ("d", 1), ("c", 2)]);
    }

    #[test]
    fn rejects_cycles_and_unknown_dependencies() {
        assert!(matches!(
            order(vec![stub("a", &["b"]), stub("b", &["a"])]),
            Err(CatalogError::Cycle(_))
        ));
        assert!(matches!(
            order(vec![stub("a", &["zz"])]),
            Err(CatalogError::Invalid { .. })
        ));
    }

    /// Teardown reads an addon's folder only: a new folder brings its
    /// drain steps and its DNS zones setting with it, and no Rust names it
    /// (`tests/k8s_new_addon.rs` renders, installs and reports it).
    #[test]
    fn a_new_addon_folder_brings_its_own_teardown() {
        static NEW: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/tests/fixtures/new-addon");
        let catalog = Catalog::from_dirs(&[&ADDONS, &NEW]).expect("a valid catalog");
        let addon = catalog.get("log-shipper").unwrap();
        assert_eq!(addon.kind, Kind::Helm);
        assert!(addon.values_template.is_some());
        let step = catalog
            .drain_steps(DrainStage::LoadBalancers)
            .find(|s| s.delete.kind == "Pipeline")
            .expect("the new addon's drain step");
        assert_eq!(step.delete.group_version(), ("logs.example.com", "v1"));
        assert_eq!(step.wait_for.as_ref().unwrap().plural, "sinks");
        assert_eq!(addon.teardown.dns_zones.as_deref(), Some("status_zones"));
        assert_eq!(catalog.gitops().name, "argocd");

        let alone = Catalog::from_dirs(&[&NEW]).expect_err("no GitOps engine");
        assert!(alone.to_string().contains("found none"), "{alone}");
    }

    #[test]
    fn the_shipped_teardown_sections() {
        let catalog = Catalog::embedded().unwrap();
        assert_eq!(catalog.gitops().name, "argocd");
        let kinds = |stage| {
            catalog
                .drain_steps(stage)
                .map(|s| s.delete.kind.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(DrainStage::LoadBalancers), ["TargetGroupBinding"]);
        assert_eq!(kinds(DrainStage::Nodes), ["NodePool"]);
        assert_eq!(kinds(DrainStage::Last), ["EC2NodeClass"]);
    }

    #[test]
    fn a_dns_zones_setting_must_be_a_list_of_domains() {
        let settings: BTreeMap<String, SettingDef> = serde_norway::from_str(
            "policy: { type: enum, values: [sync], default: sync, help: h }",
        )
        .unwrap();
        let teardown = Teardown {
            dns_zones: Some("policy".into()),
            ..Teardown::default()
        };
        let err = check_teardown(&teardown, &settings).unwrap_err();
        assert!(
            err.contains("\"policy\" is not a setting of type domains"),
            "{err}"
        );
        let bad = Teardown {
            pause: vec![ResourceType {
                api_version: "v1".into(),
                kind: "Thing".into(),
                plural: "things".into(),
            }],
            ..Teardown::default()
        };
        assert!(
            check_teardown(&bad, &BTreeMap::new())
                .unwrap_err()
                .contains("group/version")
        );
    }
}
