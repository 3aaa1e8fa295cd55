//! Installing the operator stack into a cluster from a rendered tree:
//! Argo CD from its verified release manifest, then one Application per
//! addon, each applied once its dependencies are healthy and awaited until
//! Synced and Healthy, then the addon's extra manifests (NodePool,
//! ClusterSecretStore, …) once their CRDs are Established, awaited until
//! Ready. Independent addons proceed concurrently, so the whole phase takes
//! as long as the slowest dependency chain.
//!
//! Idempotent: a second run re-applies the same objects (no change, field
//! manager `terrace`) and its waits return as soon as they look.
//! Reports progress as events; prints nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::config::{ClusterSpec, Plugin, SettingType};
use crate::k8s::{K8sError, Kube, Object, parse, until};
use crate::progress::{Event, Reporter};
use crate::tree::Tree;
use crate::wait::{Backoff, Poll};

use super::health::{self, APPLICATION_API_VERSION};
use super::release::{self, Fetched, ManifestSource, ReleaseError};
use super::{Addon, Catalog, CatalogError, Kind, argocd};

const PHASE: &str = "addons";

/// How long each kind of wait may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// A CustomResourceDefinition to become Established.
    pub crd: Duration,
    /// Argo CD's Deployments and StatefulSet to roll out.
    pub rollout: Duration,
    /// One addon's Application to become Synced and Healthy (counted from
    /// when its dependencies are healthy).
    pub addon: Duration,
    /// An extra manifest's object to become Ready.
    pub ready: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            crd: Duration::from_secs(120),
            rollout: Duration::from_secs(600),
            addon: Duration::from_secs(900),
            ready: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// `--argocd-manifest`: where Argo CD's release manifest comes from.
    pub argocd_manifest: ManifestSource,
    /// `--argocd-sha256`: the hash to verify instead of the pinned one.
    pub argocd_sha256: Option<String>,
    /// Where verified manifests are cached by hash; `None` (the default):
    /// no cache.
    pub cache_dir: Option<PathBuf>,
    pub timeouts: Timeouts,
    pub backoff: Backoff,
}

impl Default for InstallOptions {
    fn default() -> InstallOptions {
        InstallOptions {
            argocd_manifest: ManifestSource::Pinned,
            argocd_sha256: None,
            cache_dir: None,
            timeouts: Timeouts::default(),
            backoff: Backoff::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub bootstrap: BootstrapReport,
    pub addons: Vec<AddonReport>,
    pub elapsed_secs: f64,
}

/// What the release-manifest install (Argo CD) did.
#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    pub addon: String,
    pub version: String,
    pub sha256: String,
    pub origin: String,
    pub from_cache: bool,
    pub objects: usize,
    pub ready_after_secs: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddonReport {
    pub name: String,
    pub version: String,
    /// Since the install started.
    pub healthy_after_secs: f64,
    /// Extra objects applied and Ready (`Kind name`).
    pub extras: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(transparent)]
    Catalog(#[from] &'static CatalogError),
    #[error("{addon}: {source}")]
    Release {
        addon: String,
        #[source]
        source: ReleaseError,
    },
    #[error("{addon}: {source}")]
    Bootstrap {
        addon: String,
        #[source]
        source: K8sError,
    },
    #[error("rendered tree: {0}")]
    Tree(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Addons(Vec<AddonFailure>),
}

/// Why one addon did not become healthy.
#[derive(Debug)]
pub struct AddonFailure {
    pub addon: String,
    pub reason: FailureReason,
}

#[derive(Debug)]
pub enum FailureReason {
    Error(K8sError),
    /// A dependency did not become healthy, so this addon was not applied.
    Skipped {
        dependency: String,
    },
}

impl fmt::Display for AddonFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            FailureReason::Error(e) => write!(f, "addon {}: {e}", self.addon),
            FailureReason::Skipped { dependency } => write!(
                f,
                "addon {}: not installed because {dependency} did not become healthy",
                self.addon
            ),
        }
    }
}

/// How far the stack is: how many enabled addons are healthy and what the
/// ones being awaited last showed, reported as one passing event whenever
/// that changes ("3/6 addons healthy, waiting for external-dns: …").
struct Tally<'a> {
    total: usize,
    reporter: &'a dyn Reporter,
    state: std::sync::Mutex<TallyState>,
}

#[derive(Default)]
struct TallyState {
    healthy: usize,
    waiting: BTreeMap<String, String>,
    last: String,
}

impl<'a> Tally<'a> {
    fn new(total: usize, reporter: &'a dyn Reporter) -> Tally<'a> {
        Tally {
            total,
            reporter,
            state: Default::default(),
        }
    }

    /// `addon` is still being awaited; `state` is what it last showed.
    fn waiting(&self, addon: &str, state: &str) {
        // The first part of a state is the status; the rest (Argo CD's
        // messages) belongs to the timeout error, not the live line.
        let state = state.split("; ").next().unwrap_or_default();
        self.update(|s| {
            s.waiting.insert(addon.to_string(), state.to_string());
        });
    }

    fn healthy(&self, addon: &str) {
        self.update(|s| {
            s.waiting.remove(addon);
            s.healthy += 1;
        });
    }

    fn update(&self, change: impl FnOnce(&mut TallyState)) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        change(&mut state);
        let mut message = format!("{}/{} addons healthy", state.healthy, self.total);
        if !state.waiting.is_empty() {
            let waiting: Vec<String> = state
                .waiting
                .iter()
                .map(|(addon, seen)| format!("{addon}: {seen}"))
                .collect();
            message.push_str(&format!(", waiting for {}", waiting.join("; ")));
        }
        if message != state.last {
            state.last = message.clone();
            self.reporter
                .report(Event::count(PHASE, state.healthy, self.total, message));
        }
    }
}

/// The manifests of one addon, parsed from the rendered tree.
struct Plan<'a> {
    addon: &'a Addon,
    application: Vec<Object>,
    extras: Vec<Object>,
}

/// Installs the stack described by `tree` (a render of `spec`).
pub async fn install(
    kube: &Kube,
    tree: &Tree,
    spec: &ClusterSpec,
    options: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallReport, InstallError> {
    install_with(Catalog::embedded()?, kube, tree, spec, options, reporter).await
}

/// [`install`] from the addon folders of `catalog`: nothing here names an
/// addon, so a new folder installs without a change to this code.
pub async fn install_with(
    catalog: &Catalog,
    kube: &Kube,
    tree: &Tree,
    spec: &ClusterSpec,
    options: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallReport, InstallError> {
    let started = Instant::now();
    let enabled: Vec<&Addon> = catalog
        .iter()
        .filter(|a| spec.addon_enabled(&a.name))
        .collect();
    let plans = enabled
        .iter()
        .map(|a| plan(tree, a))
        .collect::<Result<Vec<_>, _>>()?;
    let bootstrapper = enabled
        .iter()
        .find(|a| a.kind == Kind::Manifest)
        .ok_or_else(|| {
            InstallError::Tree("no addon installs from a release manifest (Argo CD)".into())
        })?;

    // Applications live beside the engine that syncs them.
    let apps_namespace = bootstrapper.namespace.as_str();
    let plugins = plugins(spec, bootstrapper)?;
    let tally = Tally::new(enabled.len(), reporter);
    tally.waiting(&bootstrapper.name, "rolling out");
    let bootstrap = bootstrap(kube, bootstrapper, &plugins, options, reporter, started).await?;
    tally.healthy(&bootstrapper.name);

    let done: BTreeMap<&str, watch::Sender<Option<bool>>> = plans
        .iter()
        .filter(|p| p.addon.kind == Kind::Helm)
        .map(|p| (p.addon.name.as_str(), watch::channel(None).0))
        .collect();
    let results = futures::future::join_all(
        plans
            .iter()
            .filter(|p| p.addon.kind == Kind::Helm)
            .map(|p| run_addon(kube, p, apps_namespace, &done, options, &tally, started)),
    )
    .await;
    let mut addons = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(report) => addons.push(report),
            Err(failure) => failures.push(failure),
        }
    }
    if !failures.is_empty() {
        return Err(InstallError::Addons(failures));
    }

    // The bootstrapper's own extras (the root Application of the user's
    // platform repository) go last: that repository may need every addon.
    if let Some(root) = plans.iter().find(|p| p.addon.kind == Kind::Manifest)
        && !root.extras.is_empty()
    {
        kube.apply_all(
            &root.extras,
            apps_namespace,
            options.timeouts.crd,
            &options.backoff,
        )
        .await
        .map_err(|source| InstallError::Bootstrap {
            addon: root.addon.name.clone(),
            source,
        })?;
        for object in &root.extras {
            reporter.report(
                Event::info(
                    PHASE,
                    format!(
                        "{}: applied {} (not awaited: it tracks your repository)",
                        root.addon.name,
                        object.describe()
                    ),
                )
                .with("addon", &root.addon.name),
            );
        }
    }
    Ok(InstallReport {
        bootstrap,
        addons,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// The objects an addon adds besides its Application (Karpenter's NodePool
/// and EC2NodeClass, External Secrets' stores, …), as rendered in `tree`.
pub fn extras(tree: &Tree, addon: &Addon) -> Result<Vec<Object>, InstallError> {
    Ok(plan(tree, addon)?.extras)
}

fn plan<'a>(tree: &Tree, addon: &'a Addon) -> Result<Plan<'a>, InstallError> {
    let prefix = format!("manifests/{}/", addon.name);
    let mut application = Vec::new();
    let mut extras = Vec::new();
    for (path, bytes) in tree.iter().filter(|(p, _)| p.starts_with(&prefix)) {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| InstallError::Tree(format!("{path}: not UTF-8")))?;
        let objects = parse(path, text).map_err(|e| InstallError::Tree(e.to_string()))?;
        if path.ends_with("/application.yaml") {
            application.extend(objects);
        } else {
            extras.extend(objects);
        }
    }
    if addon.kind == Kind::Helm && application.is_empty() {
        return Err(InstallError::Tree(format!(
            "{prefix}application.yaml is missing"
        )));
    }
    Ok(Plan {
        addon,
        application,
        extras,
    })
}

/// The Config Management Plugins the bootstrapper's settings list (the
/// resolved spec holds them complete, presets expanded).
fn plugins(spec: &ClusterSpec, addon: &Addon) -> Result<Vec<Plugin>, InstallError> {
    let Some(settings) = spec.addons.get(&addon.name).map(|a| &a.settings) else {
        return Ok(Vec::new());
    };
    let mut plugins = Vec::new();
    for (key, def) in &addon.settings {
        if def.kind != SettingType::CmpPlugins {
            continue;
        }
        if let Some(value) = settings.get(key) {
            let listed: Vec<Plugin> = serde_json::from_value(value.clone())
                .map_err(|e| InstallError::Tree(format!("addons.{}.{key}: {e}", addon.name)))?;
            plugins.extend(listed);
        }
    }
    Ok(plugins)
}

async fn bootstrap(
    kube: &Kube,
    addon: &Addon,
    plugins: &[Plugin],
    options: &InstallOptions,
    reporter: &dyn Reporter,
    started: Instant,
) -> Result<BootstrapReport, InstallError> {
    let name = &addon.name;
    let pinned = addon
        .manifest
        .as_ref()
        .ok_or_else(|| InstallError::Tree(format!("addon {name} has no release manifest")))?;
    let release_err = |source| InstallError::Release {
        addon: name.clone(),
        source,
    };
    let k8s_err = |source| InstallError::Bootstrap {
        addon: name.clone(),
        source,
    };
    let fetched: Fetched = release::fetch(
        pinned,
        &options.argocd_manifest,
        options.argocd_sha256.as_deref(),
        options.cache_dir.as_deref(),
    )
    .await
    .map_err(release_err)?;
    if let Some(warning) = &fetched.cache_warning {
        reporter.report(Event::warn(PHASE, format!("{name}: {warning}")).with("addon", name));
    }
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "{name} {}: manifest verified (sha256 {}){}",
                pinned.version,
                &fetched.sha256[..12],
                if fetched.from_cache {
                    ", from cache"
                } else {
                    ""
                }
            ),
        )
        .with("addon", name)
        .with("sha256", &fetched.sha256)
        .with("origin", &fetched.origin),
    );
    let objects = argocd::prepare(&fetched.text, &fetched.origin, &addon.namespace, plugins)
        .map_err(k8s_err)?;
    kube.apply_all(
        &objects,
        &addon.namespace,
        options.timeouts.crd,
        &options.backoff,
    )
    .await
    .map_err(k8s_err)?;
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "{name}: applied {} objects, waiting for rollout",
                objects.len()
            ),
        )
        .with("addon", name),
    );
    let workloads = argocd::rollout(
        kube,
        &objects,
        &addon.namespace,
        options.timeouts.rollout,
        &options.backoff,
    )
    .await
    .map_err(k8s_err)?;
    let ready_after = started.elapsed();
    for plugin in plugins {
        reporter.report(
            Event::info(
                PHASE,
                format!(
                    "{name}: plugin {} runs as sidecar {} of {}",
                    plugin.argocd_name(),
                    argocd::sidecar_name(&plugin.name),
                    argocd::REPO_SERVER
                ),
            )
            .with("addon", name)
            .with("plugin", plugin.argocd_name()),
        );
    }
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "{name}: {workloads} workloads rolled out ({:.0}s)",
                ready_after.as_secs_f64()
            ),
        )
        .with("addon", name),
    );
    Ok(BootstrapReport {
        addon: name.clone(),
        version: pinned.version.clone(),
        sha256: fetched.sha256,
        origin: fetched.origin,
        from_cache: fetched.from_cache,
        objects: objects.len(),
        ready_after_secs: ready_after.as_secs_f64(),
    })
}

/// One addon: its dependencies, its Application, its extras. Always
/// publishes whether it became healthy, so dependents never wait forever.
async fn run_addon(
    kube: &Kube,
    plan: &Plan<'_>,
    apps_namespace: &str,
    done: &BTreeMap<&str, watch::Sender<Option<bool>>>,
    options: &InstallOptions,
    tally: &Tally<'_>,
    started: Instant,
) -> Result<AddonReport, AddonFailure> {
    let name = plan.addon.name.as_str();
    let publish = |healthy: bool| {
        if let Some(tx) = done.get(name) {
            tx.send_replace(Some(healthy));
        }
    };
    let fail = |reason| AddonFailure {
        addon: name.to_string(),
        reason,
    };
    for dependency in plan.addon.waits_for() {
        let Some(tx) = done.get(dependency.as_str()) else {
            continue; // installed before every Application (Argo CD) or disabled
        };
        let mut rx = tx.subscribe();
        let healthy = matches!(
            rx.wait_for(Option::is_some).await.as_deref(),
            Ok(Some(true))
        );
        if !healthy {
            publish(false);
            return Err(fail(FailureReason::Skipped {
                dependency: dependency.clone(),
            }));
        }
    }
    let result = install_addon(
        kube,
        plan,
        apps_namespace,
        options,
        tally,
        started,
        &publish,
    )
    .await;
    if result.is_err() {
        publish(false);
    }
    result.map_err(|e| fail(FailureReason::Error(e)))
}

async fn install_addon(
    kube: &Kube,
    plan: &Plan<'_>,
    apps_namespace: &str,
    options: &InstallOptions,
    tally: &Tally<'_>,
    started: Instant,
    publish: &dyn Fn(bool),
) -> Result<AddonReport, K8sError> {
    let reporter = tally.reporter;
    let name = plan.addon.name.as_str();
    let backoff = &options.backoff;
    kube.apply_all(
        &plan.application,
        apps_namespace,
        options.timeouts.crd,
        backoff,
    )
    .await?;
    reporter.report(
        Event::info(
            PHASE,
            format!("{name}: Application applied, waiting for Synced and Healthy"),
        )
        .with("addon", name),
    );
    for app in plan.application.iter().filter(|o| o.kind == "Application") {
        let what = format!(
            "Application {apps_namespace}/{} to be Synced and Healthy",
            app.name
        );
        until(&what, options.timeouts.addon, backoff, || async {
            let found = kube
                .get(
                    APPLICATION_API_VERSION,
                    "Application",
                    Some(apps_namespace),
                    &app.name,
                )
                .await?;
            let poll = match found {
                None => Poll::Pending("not found".into()),
                Some(object) => {
                    health::application(&serde_json::to_value(object).unwrap_or_default())
                }
            };
            if let Poll::Pending(seen) = &poll {
                tally.waiting(name, seen);
            }
            Ok(poll)
        })
        .await?;
    }
    let healthy_after = started.elapsed();
    tally.healthy(name);
    publish(true);
    reporter.report(
        Event::info(
            PHASE,
            format!(
                "{name}: Synced and Healthy ({:.0}s)",
                healthy_after.as_secs_f64()
            ),
        )
        .with("addon", name)
        .with("elapsed_secs", healthy_after.as_secs_f64()),
    );
    let extras = apply_extras(kube, plan, options, reporter).await?;
    Ok(AddonReport {
        name: name.to_string(),
        version: plan.addon.version().to_string(),
        healthy_after_secs: healthy_after.as_secs_f64(),
        extras,
    })
}

/// The addon's extra objects: each kind waited on until a CRD serves it,
/// then applied and waited on until Ready.
async fn apply_extras(
    kube: &Kube,
    plan: &Plan<'_>,
    options: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<String>, K8sError> {
    if plan.extras.is_empty() {
        return Ok(Vec::new());
    }
    let name = plan.addon.name.as_str();
    let backoff = &options.backoff;
    let kinds: BTreeSet<(&str, &str)> = plan
        .extras
        .iter()
        .map(|o| (o.api_version.as_str(), o.kind.as_str()))
        .collect();
    for (api_version, kind) in kinds {
        match kube.resolve(api_version, kind).await {
            Ok(_) => {}
            Err(err) if err.is_not_found() => {
                reporter.report(
                    Event::info(
                        PHASE,
                        format!("{name}: waiting for the {kind} CustomResourceDefinition"),
                    )
                    .with("addon", name),
                );
                kube.wait_kind_served(api_version, kind, options.timeouts.crd, backoff)
                    .await?;
            }
            Err(err) => return Err(err),
        }
    }
    kube.apply_all(
        &plan.extras,
        &plan.addon.namespace,
        options.timeouts.crd,
        backoff,
    )
    .await?;
    futures::future::try_join_all(plan.extras.iter().map(|object| async move {
        let namespace = object.namespace.as_deref().unwrap_or(&plan.addon.namespace);
        let what = format!("{} to be Ready", object.describe());
        until(&what, options.timeouts.ready, backoff, || async {
            let found = kube
                .get(
                    &object.api_version,
                    &object.kind,
                    Some(namespace),
                    &object.name,
                )
                .await?;
            Ok(match found {
                None => Poll::Pending("not found".into()),
                Some(found) => health::ready(&serde_json::to_value(found).unwrap_or_default()),
            })
        })
        .await?;
        reporter.report(
            Event::info(PHASE, format!("{name}: {} Ready", object.describe())).with("addon", name),
        );
        Ok::<_, K8sError>(object.describe())
    }))
    .await
}
