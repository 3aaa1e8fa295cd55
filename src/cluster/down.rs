//! `terrace cluster down`: resolve → gate → confirm → drain → pre-sweep →
//! destroy → sweep → verify → kubeconfig, converging from any state: a
//! cluster never created, half built, with an API that does not answer or
//! refuses us, with its Terraform state gone (then the sweep alone removes
//! what is tagged for it), or after a `down` killed half way.
//!
//! - **gate** refuses (exit 2) a cluster of this name that is not
//!   Terrace's, before anything is touched.
//! - **pre-sweep** runs when the drain did not complete (skipped,
//!   unauthorised, timed out): what the controllers created in the VPC
//!   would make `terraform destroy` fail on `DependencyViolation`, so it
//!   goes first. What Terraform manages (and the security group EKS made
//!   for the cluster) is never touched here.
//! - **destroy** that fails on a dependency anyway (an ENI that detached
//!   late) is followed by one more pre-sweep and one more destroy.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::journal::Section;
use super::pipeline::{JournalMode, OnInterrupt, PhaseReport, Pipeline, Started, start};
use super::{Approval, ClusterError, connect};
use crate::aws::{Aws, kubeconfig, state};
use crate::config::ClusterSpec;
use crate::config::Request;
use crate::progress::{Event, Reporter};
use crate::render::{self, Outputs};
use crate::teardown::{
    self, DrainError, DrainOptions, DrainReport, Evidence, Gate, Inventory, Kind, LeakReport,
    Scope, SweepReport,
};
use crate::terraform::{Backend, BinaryError, Changes, Interrupt, RunError, Runner, Terraform};

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
    /// Upper bound of the drain's waits, and of each sweep's.
    pub deadline: Duration,
}

/// What `--plan` found.
#[derive(Debug, Serialize)]
pub struct DownPlan {
    /// Resource addresses `terraform destroy` would remove.
    pub terraform: Vec<String>,
    /// What the pre-sweep would delete before destroy if the drain does not
    /// complete: the controllers' resources in the VPC.
    pub pre_sweep: Inventory,
    /// What the sweep would delete after destroy: everything tagged for the
    /// cluster that Terraform does not manage (everything, without state).
    pub sweep: Inventory,
}

#[derive(Debug, Default, Serialize)]
pub struct DownSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<DownPlan>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainReport>,
    /// The pre-sweep before destroy, and the one after a destroy that
    /// failed on a dependency.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_sweeps: Vec<SweepReport>,
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
        if options.plan_only {
            JournalMode::ReadOnly
        } else {
            JournalMode::Resume
        },
        reporter,
        options.interrupt.clone(),
    )?;
    summary.cluster = spec.name.clone();
    summary.region = spec.region.clone();
    summary.dir = dir.clone();
    let teardown = Teardown::new(options, &spec, &dir, reporter).await?;
    let result = teardown.phases(&mut p, summary).await;
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

impl StateLocation {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.backend.bucket, self.backend.key)
    }
}

async fn locate_state(aws: &Aws, spec: &ClusterSpec) -> Result<StateLocation, ClusterError> {
    let account = aws
        .account()
        .await
        .map_err(|e| ClusterError::Aws(e.to_string()))?;
    let bucket = state::bucket_name(&account, &spec.region);
    let backend =
        Backend::for_cluster(&bucket, &spec.name, &spec.region).path_style(aws.s3_path_style());
    let present = state::exists(aws, &account, &spec.region).await?
        && state::has_state(aws, &account, &spec.region, &backend.key).await?;
    Ok(StateLocation { backend, present })
}

/// How the drain ended, as far as the rest of the teardown cares.
enum Drained {
    /// Every wait finished: the controllers removed what they made.
    Complete,
    /// It ran but a wait timed out, or it was skipped (with why).
    Incomplete,
}

/// One `down` of one cluster: its settings, and the phases in order.
struct Teardown<'a> {
    options: &'a DownOptions<'a>,
    spec: &'a ClusterSpec,
    dir: &'a Path,
    aws: Aws,
    state: StateLocation,
    reporter: &'a dyn Reporter,
}

impl<'a> Teardown<'a> {
    async fn new(
        options: &'a DownOptions<'a>,
        spec: &'a ClusterSpec,
        dir: &'a Path,
        reporter: &'a dyn Reporter,
    ) -> Result<Teardown<'a>, ClusterError> {
        let aws = Aws::connect(&spec.region).await;
        let state = locate_state(&aws, spec).await?;
        Ok(Teardown {
            options,
            spec,
            dir,
            aws,
            state,
            reporter,
        })
    }

    async fn phases(
        &self,
        p: &mut Pipeline<'_>,
        summary: &mut DownSummary,
    ) -> Result<(), ClusterError> {
        let gate = p
            .run("gate", None, OnInterrupt::Stop, self.gate())
            .await?
            .ok_or(ClusterError::Internal("the gate never skips"))?;
        summary.gate = Some(gate.clone());
        if !gate.proceed {
            return Err(ClusterError::Refused {
                cluster: self.spec.name.clone(),
                reason: gate.reason,
            });
        }
        if self.options.plan_only {
            summary.plan = p
                .run("plan", None, OnInterrupt::Delegate, self.plan())
                .await?;
            return Ok(());
        }
        p.run("confirm", None, OnInterrupt::Stop, self.confirm())
            .await?;

        let drained = p
            .run("drain", None, OnInterrupt::Stop, self.drain(summary))
            .await?
            .unwrap_or(Drained::Incomplete);

        let runner = if self.state.present {
            Some(self.terraform().await?)
        } else {
            let warning = format!(
                "no Terraform state at {}: nothing for terraform to destroy; the sweep removes what is tagged",
                self.state.url()
            );
            self.reporter.report(Event::warn("destroy", &warning));
            summary.warnings.push(warning);
            None
        };
        if matches!(drained, Drained::Incomplete) {
            let report = p
                .run(
                    "pre-sweep",
                    None,
                    OnInterrupt::Stop,
                    self.pre_sweep(runner.as_ref()),
                )
                .await?;
            summary.pre_sweeps.extend(report);
        }
        if let Some(runner) = &runner {
            summary.destroyed = p
                .run(
                    "destroy",
                    None,
                    OnInterrupt::Delegate,
                    self.destroy(runner, summary),
                )
                .await?;
        }

        summary.sweep = p
            .run("sweep", None, OnInterrupt::Stop, async {
                Ok(teardown::sweep(
                    &self.aws,
                    self.spec,
                    &self.sweep_options(Scope::Everything, BTreeSet::new()),
                    self.reporter,
                )
                .await?)
            })
            .await?;

        self.verify(p, summary).await?;
        p.run(
            "kubeconfig",
            None,
            OnInterrupt::Stop,
            self.forget_kubeconfig(),
        )
        .await?;
        Ok(())
    }

    fn sweep_options(&self, scope: Scope, exclude: BTreeSet<String>) -> teardown::Options {
        teardown::Options {
            keep_volumes: self.options.keep_volumes,
            deadline: self.options.deadline,
            scope,
            exclude,
        }
    }

    async fn gate(&self) -> Result<Gate, ClusterError> {
        let evidence = Evidence {
            state: self.state.present.then(|| self.state.url()),
        };
        let gate = teardown::gate(&self.aws, &self.spec.name, &evidence).await?;
        let event = if gate.proceed {
            Event::info("gate", &gate.reason)
        } else {
            Event::warn("gate", format!("refused: {}", gate.reason))
        };
        self.reporter.report(event.with("proceed", gate.proceed));
        Ok(gate)
    }

    async fn confirm(&self) -> Result<(), ClusterError> {
        let what = if self.state.present {
            "its Terraform stack and every resource tagged for it"
        } else {
            "every resource tagged for it (its Terraform state is gone, so only the sweep runs)"
        };
        let question = format!(
            "Destroy cluster {} in {}: {what}?",
            self.spec.name, self.spec.region
        );
        if self.options.approval.approve(&question).await {
            Ok(())
        } else {
            Err(ClusterError::Declined)
        }
    }

    /// A Terraform runner on the rendered stack, initialised on the state.
    async fn terraform(&self) -> Result<Runner, ClusterError> {
        let runner = Runner::new(self.options.terraform.clone()?, self.dir)
            .with_env(
                "TF_DATA_DIR",
                &self.dir.join("tfdata").display().to_string(),
            )
            .with_interrupt(self.options.interrupt.clone());
        render::render(self.spec, &Outputs::placeholders())?.write_atomic(self.dir)?;
        runner.init(&self.state.backend, self.reporter).await?;
        Ok(runner)
    }

    /// What Terraform or EKS will remove, by cloud id: the resources in
    /// the state (when there is one) and the security group EKS made for
    /// the cluster (it goes with the cluster).
    async fn managed(&self, runner: Option<&Runner>) -> Result<BTreeSet<String>, ClusterError> {
        let mut managed = match runner {
            Some(runner) => runner.state_ids(self.reporter).await?,
            None => BTreeSet::new(),
        };
        if let Ok(described) = self
            .aws
            .eks()
            .describe_cluster()
            .name(&self.spec.name)
            .send()
            .await
            && let Some(group) = described
                .cluster()
                .and_then(|c| c.resources_vpc_config())
                .and_then(|v| v.cluster_security_group_id())
        {
            managed.insert(group.to_string());
        }
        Ok(managed)
    }

    async fn plan(&self) -> Result<DownPlan, ClusterError> {
        let (terraform, managed) = if self.state.present {
            let runner = self.terraform().await?;
            let plan = runner
                .plan_destroy(&self.dir.join("tfplan"), self.reporter)
                .await?;
            let addresses = plan
                .resources
                .iter()
                .filter(|r| r.action == "delete")
                .map(|r| r.address.clone())
                .collect();
            (addresses, self.managed(Some(&runner)).await?)
        } else {
            (Vec::new(), self.managed(None).await?)
        };
        let mut sweep = teardown::inventory(
            &self.aws,
            self.spec,
            &self.sweep_options(Scope::Everything, BTreeSet::new()),
        )
        .await?;
        let cluster_managed = managed.contains(&self.spec.name);
        sweep.items.retain(|item| {
            let in_state =
                managed.contains(&item.id) || cluster_managed && lives_in_cluster(item.kind);
            !in_state
        });
        sweep
            .references
            .retain(|r| !managed.contains(&r.referenced_group_id));
        let pre_sweep = sweep.only(Kind::controller_created);
        Ok(DownPlan {
            terraform,
            pre_sweep,
            sweep,
        })
    }

    /// The drain's outcome; a cluster API that cannot be reached or refuses
    /// us is a warning, never a failure.
    async fn drain(&self, summary: &mut DownSummary) -> Result<Drained, ClusterError> {
        let skipped = |summary: &mut DownSummary, warning: String| {
            self.reporter.report(Event::warn("drain", &warning));
            summary.warnings.push(warning);
            Ok(Drained::Incomplete)
        };
        let kube = match connect::eks_client(&self.aws, &self.spec.name).await {
            Ok((kube, _, _)) => kube,
            Err(e) => {
                return skipped(
                    summary,
                    format!("cannot reach the cluster API ({e}); skipping the drain"),
                );
            }
        };
        let client = match kube.client().await {
            Ok(client) => client,
            Err(e) => {
                return skipped(
                    summary,
                    format!("cannot reach the cluster API ({e}); skipping the drain"),
                );
            }
        };
        let opts = DrainOptions {
            keep_volumes: self.options.keep_volumes,
            deadline: self.options.deadline,
        };
        match teardown::drain(client, self.spec, &opts, &self.aws, self.reporter).await {
            Ok(report) => {
                let complete = report.waits.iter().all(|w| w.completed);
                summary.warnings.extend(report.warnings.iter().cloned());
                summary.drain = Some(report);
                Ok(if complete {
                    Drained::Complete
                } else {
                    Drained::Incomplete
                })
            }
            Err(e @ DrainError::Unreachable(_)) => skipped(summary, e.to_string()),
            Err(DrainError::Forbidden(_)) => {
                let principal = self.principal().await;
                skipped(
                    summary,
                    format!(
                        "drain skipped: {principal} has no access to the cluster; controller-created resources are swept instead (give it access with access.admins)"
                    ),
                )
            }
            Err(e) => Err(ClusterError::Drain(e)),
        }
    }

    /// Who we are, for a message: the caller's ARN, or a description.
    async fn principal(&self) -> String {
        match self.aws.sts().get_caller_identity().send().await {
            Ok(out) => out.arn().unwrap_or("this principal").to_string(),
            Err(_) => "this principal".to_string(),
        }
    }

    /// The controllers' resources in the VPC, except what Terraform manages.
    async fn pre_sweep(&self, runner: Option<&Runner>) -> Result<SweepReport, ClusterError> {
        let managed = self.managed(runner).await?;
        let options = self.sweep_options(Scope::Controllers, managed);
        Ok(teardown::sweep(&self.aws, self.spec, &options, self.reporter).await?)
    }

    /// `terraform destroy`; after a failure on a dependency, one more
    /// pre-sweep and one more destroy.
    async fn destroy(
        &self,
        runner: &Runner,
        summary: &mut DownSummary,
    ) -> Result<Changes, ClusterError> {
        match runner.destroy(self.reporter).await {
            Ok(changes) => Ok(changes),
            Err(e) if blocked_by_dependency(&e) => {
                let warning = "terraform destroy failed on a dependency: sweeping the controllers' leftovers and destroying once more".to_string();
                self.reporter.report(Event::warn("destroy", &warning));
                summary.warnings.push(warning);
                summary.pre_sweeps.push(self.pre_sweep(Some(runner)).await?);
                Ok(runner.destroy(self.reporter).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn verify(
        &self,
        p: &mut Pipeline<'_>,
        summary: &mut DownSummary,
    ) -> Result<(), ClusterError> {
        let options = self.sweep_options(Scope::Everything, BTreeSet::new());
        let leaks = p
            .run("verify", None, OnInterrupt::Stop, async {
                Ok(teardown::verify(&self.aws, self.spec, &options).await?)
            })
            .await?;
        if let Some(leaks) = &leaks {
            for kept in &leaks.kept {
                self.reporter.report(Event::info(
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
        if clean {
            Ok(())
        } else {
            Err(ClusterError::Leaks(survivors))
        }
    }

    async fn forget_kubeconfig(&self) -> Result<(), ClusterError> {
        if kubeconfig::remove_entry(&self.options.kubeconfig, &self.spec.name)? {
            self.reporter.report(Event::info(
                "kubeconfig",
                format!(
                    "removed context {} from {}",
                    self.spec.name,
                    self.options.kubeconfig.display()
                ),
            ));
        }
        Ok(())
    }
}

/// What EKS deletes along with the cluster (Terraform's ids for these are
/// not the sweep's, so they are matched through their cluster).
fn lives_in_cluster(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::NodeGroup | Kind::EksAddon | Kind::PodIdentityAssociation | Kind::AccessEntry
    )
}

/// A destroy that EC2 refused because something Terraform does not know
/// still uses a subnet, group or VPC.
fn blocked_by_dependency(err: &RunError) -> bool {
    let text = err.to_string();
    [
        "DependencyViolation",
        "has dependencies",
        "dependent object",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_failure_is_recognised_and_others_are_not() {
        let failed = |text: &str| RunError::Failed {
            command: "destroy",
            code: Some(1),
            diagnostics: Vec::new(),
            stderr: text.to_string(),
        };
        assert!(blocked_by_dependency(&failed(
            "Error: deleting EC2 Subnet (subnet-1): DependencyViolation: The subnet 'subnet-1' has dependencies and cannot be deleted."
        )));
        assert!(!blocked_by_dependency(&failed(
            "Error: AccessDenied: not authorized"
        )));
        assert!(!blocked_by_dependency(&RunError::Interrupted {
            command: "destroy"
        }));
    }
}
