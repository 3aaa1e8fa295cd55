//! `terrace cluster down`: resolve → confirm → drain → destroy → sweep →
//! verify → kubeconfig. Works from any state: a cluster never created, half
//! built, with an API that does not answer, or with its Terraform state gone
//! (then the sweep alone removes what is tagged for it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::journal::Section;
use super::pipeline::{OnInterrupt, PhaseReport, Pipeline, Started, start};
use super::{Approval, ClusterError, connect};
use crate::aws::{Aws, kubeconfig, state};
use crate::config::{ClusterSpec, Request};
use crate::progress::{Event, Reporter};
use crate::render::{self, Outputs};
use crate::teardown::{
    self, DrainError, DrainOptions, DrainReport, Inventory, LeakReport, SweepReport,
};
use crate::terraform::{Backend, BinaryError, Changes, Interrupt, Runner, Terraform};

pub struct DownOptions<'a> {
    pub request: Request,
    pub approval: Approval<'a>,
    /// `--plan`: list what would be removed, remove nothing.
    pub plan_only: bool,
    pub keep_volumes: bool,
    pub kubeconfig: PathBuf,
    /// The binary found for this run, or why none was.
    pub terraform: Result<Terraform, BinaryError>,
    pub interrupt: Interrupt,
    /// Upper bound of the drain's waits, and of the sweep's.
    pub deadline: Duration,
}

/// What `--plan` found.
#[derive(Debug, Serialize)]
pub struct DownPlan {
    /// Resource addresses `terraform destroy` would remove.
    pub terraform: Vec<String>,
    /// What the sweep would delete after it: the cluster's tagged resources
    /// that Terraform does not manage.
    pub sweep: Inventory,
}

#[derive(Debug, Default, Serialize)]
pub struct DownSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<DownPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destroyed: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaks: Option<LeakReport>,
    pub warnings: Vec<String>,
    pub phases: Vec<PhaseReport>,
    pub seconds: f64,
}

const LAST_PHASE: &str = "kubeconfig";

pub async fn down(
    options: DownOptions<'_>,
    reporter: &dyn Reporter,
) -> (DownSummary, Result<(), ClusterError>) {
    let started = Instant::now();
    let mut summary = DownSummary::default();
    let result = run(&options, reporter, &mut summary).await;
    summary.seconds = started.elapsed().as_secs_f64();
    (summary, result)
}

async fn run(
    options: &DownOptions<'_>,
    reporter: &dyn Reporter,
    summary: &mut DownSummary,
) -> Result<(), ClusterError> {
    let Started {
        spec,
        dir,
        lock: _lock,
        pipeline: mut p,
    } = start(
        &options.request,
        Section::Down,
        "down",
        LAST_PHASE,
        options.plan_only,
        reporter,
        options.interrupt.clone(),
    )?;
    summary.cluster = spec.name.clone();
    summary.region = spec.region.clone();
    summary.dir = dir.clone();
    let result = phases(options, &spec, &dir, &mut p, reporter, summary).await;
    if result.is_ok() && !options.plan_only {
        // The cluster is gone: the next `up` builds from the beginning.
        p.forget(Section::Up)?;
    }
    summary.phases = std::mem::take(&mut p.phases);
    result
}

/// Where the cluster's Terraform state is, if anywhere.
struct StateLocation {
    backend: Backend,
    present: bool,
}

async fn locate_state(aws: &Aws, spec: &ClusterSpec) -> Result<StateLocation, ClusterError> {
    let account = aws
        .account()
        .await
        .map_err(|e| ClusterError::Aws(e.to_string()))?;
    let bucket = state::bucket_name(&account, &spec.region);
    let backend = Backend::for_cluster(&bucket, &spec.name, &spec.region);
    let present = state::exists(aws, &account, &spec.region).await?
        && state::has_state(aws, &account, &spec.region, &backend.key).await?;
    Ok(StateLocation { backend, present })
}

async fn phases(
    options: &DownOptions<'_>,
    spec: &ClusterSpec,
    dir: &Path,
    p: &mut Pipeline<'_>,
    reporter: &dyn Reporter,
    summary: &mut DownSummary,
) -> Result<(), ClusterError> {
    let aws = Aws::connect(&spec.region).await;
    let state = locate_state(&aws, spec).await?;
    let sweep_options = teardown::Options {
        keep_volumes: options.keep_volumes,
        deadline: options.deadline,
    };
    let runner = || -> Result<Runner, ClusterError> {
        Ok(Runner::new(options.terraform.clone()?, dir)
            .with_env("TF_DATA_DIR", &dir.join("tfdata").display().to_string())
            .with_interrupt(options.interrupt.clone()))
    };

    if options.plan_only {
        let plan = p
            .run("plan", None, OnInterrupt::Delegate, async {
                let (terraform, managed) = if state.present {
                    let runner = runner()?;
                    render::render(spec, &Outputs::placeholders())?.write_atomic(dir)?;
                    runner.init(&state.backend, reporter).await?;
                    let plan = runner.plan_destroy(&dir.join("tfplan"), reporter).await?;
                    let addresses = plan
                        .resources
                        .iter()
                        .filter(|r| r.action == "delete")
                        .map(|r| r.address.clone())
                        .collect();
                    (addresses, runner.state_ids(reporter).await?)
                } else {
                    (Vec::new(), BTreeSet::new())
                };
                let mut managed = managed;
                // EKS deletes the security group it made for the cluster along
                // with the cluster: destroy takes it, not the sweep.
                if let Ok(described) = aws.eks().describe_cluster().name(&spec.name).send().await
                    && let Some(group) = described
                        .cluster()
                        .and_then(|c| c.resources_vpc_config())
                        .and_then(|v| v.cluster_security_group_id())
                {
                    managed.insert(group.to_string());
                }
                let mut sweep = teardown::inventory(&aws, spec, &sweep_options).await?;
                sweep.items.retain(|item| !managed.contains(&item.id));
                Ok(DownPlan { terraform, sweep })
            })
            .await?;
        summary.plan = plan;
        return Ok(());
    }

    p.run("confirm", None, OnInterrupt::Stop, async {
        let what = if state.present {
            "its Terraform stack and every resource tagged for it"
        } else {
            "every resource tagged for it (its Terraform state is gone, so only the sweep runs)"
        };
        let question = format!("Destroy cluster {} in {}: {what}?", spec.name, spec.region);
        if options.approval.approve(&question) {
            Ok(())
        } else {
            Err(ClusterError::Declined)
        }
    })
    .await?;

    let drain = p
        .run("drain", None, OnInterrupt::Stop, async {
            let kube = match connect::eks_client(&aws, &spec.name).await {
                Ok((kube, _, _)) => kube,
                Err(e) => {
                    return Ok(Err(format!(
                        "cannot reach the cluster API ({e}); skipping the drain"
                    )));
                }
            };
            let client = match kube.client().await {
                Ok(client) => client,
                Err(e) => {
                    return Ok(Err(format!(
                        "cannot reach the cluster API ({e}); skipping the drain"
                    )));
                }
            };
            let opts = DrainOptions {
                keep_volumes: options.keep_volumes,
                deadline: options.deadline,
            };
            match teardown::drain(client, spec, &opts, &aws, reporter).await {
                Ok(report) => Ok(Ok(report)),
                Err(e @ DrainError::Unreachable(_)) => Ok(Err(e.to_string())),
                Err(e) => Err(ClusterError::Drain(e)),
            }
        })
        .await?;
    match drain {
        Some(Ok(report)) => {
            summary.warnings.extend(report.warnings.iter().cloned());
            summary.drain = Some(report);
        }
        Some(Err(warning)) => {
            reporter.report(Event::warn("drain", &warning));
            summary.warnings.push(warning);
        }
        None => {}
    }

    let destroyed = p
        .run("destroy", None, OnInterrupt::Delegate, async {
            if !state.present {
                let warning = format!(
                    "no Terraform state at s3://{}/{}: nothing for terraform to destroy; the sweep removes what is tagged",
                    state.backend.bucket, state.backend.key
                );
                reporter.report(Event::warn("destroy", &warning));
                return Ok(Err(warning));
            }
            let runner = runner()?;
            render::render(spec, &Outputs::placeholders())?.write_atomic(dir)?;
            runner.init(&state.backend, reporter).await?;
            Ok(Ok(runner.destroy(reporter).await?))
        })
        .await?;
    match destroyed {
        Some(Ok(changes)) => summary.destroyed = Some(changes),
        Some(Err(warning)) => summary.warnings.push(warning),
        None => {}
    }

    summary.sweep = p
        .run("sweep", None, OnInterrupt::Stop, async {
            Ok(teardown::sweep(&aws, spec, &sweep_options, reporter).await?)
        })
        .await?;

    let leaks = p
        .run("verify", None, OnInterrupt::Stop, async {
            Ok(teardown::verify(&aws, spec, &sweep_options).await?)
        })
        .await?;
    if let Some(leaks) = &leaks {
        for kept in &leaks.kept {
            reporter.report(Event::info(
                "verify",
                format!("kept {} {}", kept.kind.as_str(), kept.id),
            ));
        }
    }
    let clean = leaks.as_ref().is_none_or(LeakReport::is_clean);
    let survivors: Vec<String> = leaks
        .iter()
        .flat_map(|l| l.leaks.iter())
        .map(|leak| format!("{} {}", leak.kind, leak.id))
        .collect();
    summary.leaks = leaks;
    if !clean {
        return Err(ClusterError::Leaks(survivors));
    }

    p.run("kubeconfig", None, OnInterrupt::Stop, async {
        if kubeconfig::remove_entry(&options.kubeconfig, &spec.name)? {
            reporter.report(Event::info(
                "kubeconfig",
                format!(
                    "removed context {} from {}",
                    spec.name,
                    options.kubeconfig.display()
                ),
            ));
        }
        Ok(())
    })
    .await?;
    Ok(())
}
