//! `terrace cluster up`: resolve → preflight → state → render → terraform →
//! outputs → connect → addons → verify, journaled so an interrupted run
//! resumes where it stopped, and idempotent so a finished cluster re-runs
//! to "no changes".

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::journal::{self, Section};
use super::pipeline::{OnInterrupt, PhaseReport, Pipeline, Started, start};
use super::{Approval, ClusterError, connect};
use crate::addons::install::{self, InstallOptions};
use crate::addons::{Catalog, health};
use crate::aws::{Aws, kubeconfig, preflight, state, vpc};
use crate::config::{ClusterSpec, Request};
use crate::k8s::Kube;
use crate::progress::{Event, Reporter};
use crate::render::{self, Outputs, RenderError, Tree};
use crate::terraform::{Backend, BinaryError, Changes, Interrupt, Runner, Terraform};

pub struct UpOptions<'a> {
    pub request: Request,
    pub approval: Approval<'a>,
    /// Stop after `terraform plan` and say what would change.
    pub dry_run: bool,
    /// Stop once this phase is done (`--stop-after`).
    pub stop_after: Option<&'static str>,
    pub install: InstallOptions,
    /// Where the cluster's kubeconfig entry goes.
    pub kubeconfig: kubeconfig::Target,
    /// The binary found for this run, or why none was (preflight says so).
    pub terraform: Result<Terraform, BinaryError>,
    pub interrupt: Interrupt,
}

/// What `up` did, phase by phase; printed even when it failed.
#[derive(Debug, Default, Serialize)]
pub struct UpSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    pub dry_run: bool,
    /// Terraform found nothing to change.
    pub no_changes: bool,
    pub changes: Changes,
    /// Resources a dry run would change (`address: action`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
    pub resumed: bool,
    /// A dry run's plan of the phases: each one's name and whether it would
    /// run or be skipped (resuming an interrupted run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would: Vec<(&'static str, String)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<&'static str>,
    pub phases: Vec<PhaseReport>,
    pub seconds: f64,
}

const LAST_PHASE: &str = "verify";

/// Runs `up`; the summary is complete whether or not it succeeded.
pub async fn up(
    options: UpOptions<'_>,
    reporter: &dyn Reporter,
) -> (UpSummary, Result<(), ClusterError>) {
    let started = Instant::now();
    let mut summary = UpSummary {
        dry_run: options.dry_run,
        ..UpSummary::default()
    };
    let result = run(&options, reporter, &mut summary).await;
    summary.seconds = started.elapsed().as_secs_f64();
    (summary, result)
}

async fn run(
    options: &UpOptions<'_>,
    reporter: &dyn Reporter,
    summary: &mut UpSummary,
) -> Result<(), ClusterError> {
    let last = options.stop_after.unwrap_or(LAST_PHASE);
    let Started {
        spec,
        dir,
        lock: _lock,
        pipeline: mut p,
    } = start(
        &options.request,
        Section::Up,
        "up",
        last,
        options.dry_run,
        reporter,
        options.interrupt.clone(),
    )?;
    summary.cluster = spec.name.clone();
    summary.region = spec.region.clone();
    summary.dir = dir.clone();
    summary.resumed = p.resuming();
    let result = phases(options, &spec, &dir, &mut p, reporter, summary).await;
    summary.phases = std::mem::take(&mut p.phases);
    result
}

async fn phases(
    options: &UpOptions<'_>,
    spec: &ClusterSpec,
    dir: &Path,
    p: &mut Pipeline<'_>,
    reporter: &dyn Reporter,
    summary: &mut UpSummary,
) -> Result<(), ClusterError> {
    let aws = Aws::connect(&spec.region).await;

    let report = p
        .run("preflight", None, OnInterrupt::Stop, async {
            let report =
                preflight::run(spec, &aws, super::terraform_check(&options.terraform)).await;
            for check in &report.checks {
                let event = if check.passed {
                    Event::info
                } else {
                    Event::warn
                };
                reporter.report(
                    event("preflight", format!("{}: {}", check.name, check.detail))
                        .with("check", check),
                );
            }
            match report.refusal() {
                Some(refused) => Err(ClusterError::Preflight(refused)),
                None => Ok(report),
            }
        })
        .await?
        .ok_or(ClusterError::Internal("preflight is never skipped"))?;
    let account = report.account.clone().ok_or(ClusterError::Internal(
        "preflight passed without an account",
    ))?;
    let terraform = options.terraform.clone()?;

    let bucket = state::bucket_name(&account, &spec.region);
    let bucket_exists = if options.dry_run {
        state::exists(&aws, &account, &spec.region).await?
    } else {
        p.run("state", None, OnInterrupt::Stop, async {
            let ensured = state::ensure(&aws, &account, &spec.region).await?;
            let what = if ensured.created {
                "created".to_string()
            } else if ensured.fixed.is_empty() {
                "no change".to_string()
            } else {
                format!(
                    "fixed {}",
                    ensured
                        .fixed
                        .iter()
                        .map(|s| s.describe())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            reporter.report(Event::info(
                "state",
                format!("state bucket {}: {what}", ensured.name),
            ));
            Ok(())
        })
        .await?;
        true
    };

    let tree = p
        .run("render", None, OnInterrupt::Stop, async {
            let tree = render::render(spec, &Outputs::placeholders())?;
            tree.write_atomic(dir)?;
            Ok(tree)
        })
        .await?
        .ok_or(ClusterError::Internal("render is never skipped"))?;
    if stop(options, "render", reporter, summary) {
        return Ok(());
    }

    let runner = Runner::new(terraform, dir)
        .with_env("TF_DATA_DIR", &dir.join("tfdata").display().to_string())
        .with_interrupt(options.interrupt.clone());
    let backend = Backend::for_cluster(&bucket, &spec.name, &spec.region);
    let plan_file = dir.join("tfplan");

    if options.dry_run {
        return dry_run(
            &runner,
            &backend,
            bucket_exists,
            &tree,
            &plan_file,
            p,
            reporter,
            summary,
        )
        .await;
    }

    let terraform_inputs = terraform_inputs(&tree, &bucket);
    let applied = p
        .run(
            "terraform",
            Some(&terraform_inputs),
            OnInterrupt::Delegate,
            async {
                runner.init(&backend, reporter).await?;
                let plan = runner.plan(&plan_file, reporter).await?;
                if !plan.has_changes {
                    reporter.report(Event::info(
                        "terraform",
                        "no changes: the infrastructure matches the configuration",
                    ));
                    return Ok(None);
                }
                let c = plan.changes;
                let question = format!(
                    "Terraform will add {}, change {} and destroy {} resources of {} in {}. Apply?",
                    c.add, c.change, c.destroy, spec.name, spec.region
                );
                if !options.approval.approve(&question) {
                    return Err(ClusterError::Declined);
                }
                Ok(Some(runner.apply(&plan_file, reporter).await?))
            },
        )
        .await?;
    match applied {
        Some(Some(changes)) => summary.changes = changes,
        Some(None) => {
            summary.no_changes = true;
            p.note("terraform", "no changes");
        }
        None => {}
    }
    if stop(options, "terraform", reporter, summary) {
        return Ok(());
    }

    let tree = p
        .run("outputs", None, OnInterrupt::Delegate, async {
            if applied.is_none() {
                // Skipped on resume: Terraform's data directory survives,
                // but a fresh init costs little and survives a wiped one.
                runner.init(&backend, reporter).await?;
            }
            let outputs = runner.output(reporter).await?;
            let value = |name: &str| {
                outputs
                    .get(name)
                    .and_then(|o| o.value.as_str())
                    .map(str::to_string)
                    .ok_or(ClusterError::MissingOutput(name.to_string()))
            };
            let outputs = Outputs {
                vpc_id: value("vpc_id")?,
            };
            let revoked = vpc::close_default_security_group(&aws, &outputs.vpc_id).await?;
            if revoked > 0 {
                reporter.report(Event::info(
                    "outputs",
                    format!("closed the default security group of {}", outputs.vpc_id),
                ));
            }
            let tree = render::render(spec, &outputs)?;
            tree.write_atomic(dir)?;
            Ok(tree)
        })
        .await?
        .ok_or(ClusterError::Internal("outputs is never skipped"))?;
    if stop(options, "outputs", reporter, summary) {
        return Ok(());
    }

    let kube = p
        .run("connect", None, OnInterrupt::Stop, async {
            connect::connect(&aws, spec, &options.kubeconfig, reporter).await
        })
        .await?
        .ok_or(ClusterError::Internal("connect is never skipped"))?;
    if stop(options, "connect", reporter, summary) {
        return Ok(());
    }

    let addons_inputs = journal::hash(&[tree_hash(&tree, "manifests/").as_bytes()]);
    p.run("addons", Some(&addons_inputs), OnInterrupt::Stop, async {
        connect::reachable(&kube, &spec.name).await?;
        install::install(&kube, &tree, spec, &options.install, reporter).await?;
        Ok(())
    })
    .await?;
    if stop(options, "addons", reporter, summary) {
        return Ok(());
    }

    p.run("verify", None, OnInterrupt::Stop, async {
        verify(&kube, spec, reporter).await
    })
    .await?;
    Ok(())
}

/// `--stop-after`: true when `phase` is where this run ends.
fn stop(
    options: &UpOptions<'_>,
    phase: &'static str,
    reporter: &dyn Reporter,
    summary: &mut UpSummary,
) -> bool {
    if options.stop_after != Some(phase) {
        return false;
    }
    reporter.report(Event::info(
        phase,
        format!("stopping after {phase}, as asked (--stop-after)"),
    ));
    summary.stopped_after = Some(phase);
    true
}

/// `--dry-run`: plan, report, change nothing. Without a state bucket yet
/// (a first `up`), the plan runs against empty local state in a scratch
/// copy, which is exactly what the first real run will create.
#[allow(clippy::too_many_arguments)]
async fn dry_run(
    runner: &Runner,
    backend: &Backend,
    bucket_exists: bool,
    tree: &Tree,
    plan_file: &Path,
    p: &mut Pipeline<'_>,
    reporter: &dyn Reporter,
    summary: &mut UpSummary,
) -> Result<(), ClusterError> {
    let skip = "skip: finished in the interrupted run with the same inputs".to_string();
    let terraform = if p.would_skip("terraform", &terraform_inputs(tree, &backend.bucket)) {
        skip.clone()
    } else {
        "run".to_string()
    };
    let addons = if p.resuming() && p.finished("addons") {
        format!("{skip}, if Terraform's outputs are unchanged")
    } else {
        "run".to_string()
    };
    summary.would = vec![
        ("preflight", "run".to_string()),
        ("state", "run".to_string()),
        ("render", "run".to_string()),
        ("terraform", terraform),
        ("outputs", "run".to_string()),
        ("connect", "run".to_string()),
        ("addons", addons),
        ("verify", "run".to_string()),
    ];
    let plan = p
        .run("terraform", None, OnInterrupt::Delegate, async {
            if bucket_exists {
                runner.init(backend, reporter).await?;
                Ok(runner.plan(plan_file, reporter).await?)
            } else {
                reporter.report(Event::info(
                    "terraform",
                    format!("state bucket {} does not exist yet: planning against empty state", backend.bucket),
                ));
                let scratch = tempfile::tempdir().map_err(|e| ClusterError::Io("a scratch directory for the plan", e))?;
                let mut local_tree = Tree::default();
                for (path, contents) in tree.iter().filter(|(p, _)| p.starts_with("terraform/")) {
                    local_tree.insert(path.to_string(), contents);
                }
                local_tree.insert(
                    "terraform/backend_override.tf".to_string(),
                    "# Dry run before the state bucket exists: plan against empty local state.\nterraform {\n  backend \"local\" {}\n}\n",
                );
                let dir = scratch.path().join("work");
                local_tree.write_atomic(&dir)?;
                let local = runner.elsewhere(&dir).with_env("TF_DATA_DIR", &dir.join("tfdata").display().to_string());
                local.init_local(reporter).await?;
                Ok(local.plan(&dir.join("tfplan"), reporter).await?)
            }
        })
        .await?
        .ok_or(ClusterError::Internal("dry-run plan is never skipped"))?;
    summary.no_changes = !plan.has_changes;
    summary.changes = plan.changes;
    summary.planned = plan
        .resources
        .iter()
        .map(|r| format!("{}: {}", r.address, r.action))
        .collect();
    Ok(())
}

/// What the terraform phase's result depends on: the rendered stack and
/// where its state lives.
fn terraform_inputs(tree: &Tree, bucket: &str) -> String {
    journal::hash(&[tree_hash(tree, "terraform/").as_bytes(), bucket.as_bytes()])
}

/// A hash of the tree's files under `prefix`.
fn tree_hash(tree: &Tree, prefix: &str) -> String {
    let parts: Vec<&[u8]> = tree
        .iter()
        .filter(|(path, _)| path.starts_with(prefix))
        .flat_map(|(path, contents)| [path.as_bytes(), contents])
        .collect();
    journal::hash(&parts)
}

/// Every addon healthy, nodes Ready, Karpenter's NodePool Ready.
async fn verify(
    kube: &Kube,
    spec: &ClusterSpec,
    reporter: &dyn Reporter,
) -> Result<(), ClusterError> {
    let expected = Catalog::embedded()
        .map_err(RenderError::Catalog)?
        .enabled(spec);
    let statuses = health::status(kube, &expected).await?;
    let mut problems = Vec::new();
    for s in &statuses {
        reporter.report(
            Event::info(
                "verify",
                format!("{} {}: {} / {}", s.name, s.version, s.sync, s.health),
            )
            .with("addon", s),
        );
        if !s.healthy {
            problems.push(format!(
                "{}: {}",
                s.name,
                s.message
                    .clone()
                    .unwrap_or_else(|| format!("{} / {}", s.sync, s.health))
            ));
        }
    }
    let nodes = health::nodes(kube).await?;
    reporter.report(Event::info(
        "verify",
        format!("{} of {} nodes Ready", nodes.ready, nodes.total),
    ));
    if nodes.ready == 0 {
        problems.push("no node is Ready".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Unhealthy(problems))
    }
}
