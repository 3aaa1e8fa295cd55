//! `terrace drill`: a disaster-recovery drill as one run. Baseline (every
//! Argo CD Application of the cluster, read through its API), disaster
//! (`down`, or with another region nothing: the source is left alone as if
//! lost), recovery (`up`, in the same region or the other one), then a
//! wait, bounded by the RTO target, until every Application that was
//! Synced and Healthy is so again from the same source. The phases go on
//! one clock into a `drill::Report`, with the recovery's milestones.
//!
//! A baseline that cannot be read stops the drill before anything is
//! destroyed. A drill that ran to the end but did not recover in time
//! returns `Ok` with a failing report: the verdict is the caller's.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::connect::{eks_client, reachable};
use super::up::up_with;
use super::{ClusterError, DownOptions, DownSummary, UpOptions, UpSummary, down};
use crate::addons::health::ApplicationState;
use crate::aws::Aws;
use crate::drill::{self, Milestones, Phase, PhaseOutcome, RecoveryError, Report, Rto};
use crate::progress::{Event, Reporter};
use crate::wait::Backoff;

const PHASE: &str = "drill";

pub struct DrillOptions<'a> {
    /// The teardown of the source cluster (not run with `to_region`).
    pub down: DownOptions<'a>,
    /// The recovery build: the source's definition, or with `to_region`
    /// the other region's cluster of the configuration.
    pub up: UpOptions<'a>,
    /// Recover into another region and leave the source alone.
    pub to_region: bool,
    pub rto: Duration,
    /// How often the recovered cluster's Applications are polled.
    pub backoff: Backoff,
}

/// The report, plus the teardown's and the build's own summaries.
#[derive(Debug, Serialize)]
pub struct DrillSummary {
    pub report: Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<DownSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up: Option<UpSummary>,
}

/// Runs the drill; the summary is complete however it ended.
pub async fn drill(
    options: DrillOptions<'_>,
    reporter: &dyn Reporter,
) -> (DrillSummary, Result<(), ClusterError>) {
    let started_ms = super::journal::now_ms();
    let mut run = Run {
        clock: Instant::now(),
        report: Report {
            cluster: options.down.request.name.clone().unwrap_or_default(),
            region: options.down.request.region.clone(),
            recovered_cluster: options.up.request.name.clone().unwrap_or_default(),
            recovered_region: options.up.request.region.clone(),
            started: crate::progress::timestamp(started_ms),
            started_ms,
            phases: Vec::new(),
            milestones: Milestones::default(),
            rto: Rto::judge(options.rto, 0.0, false),
            baseline: Vec::new(),
            not_back: Vec::new(),
            error: None,
            passed: false,
        },
        down: None,
        up: None,
    };
    let result = run.go(options, reporter).await;
    if let Err(e) = &result {
        run.report.error = Some(e.to_string());
    }
    run.report.passed = result.is_ok() && run.report.rto.met && run.report.not_back.is_empty();
    (
        DrillSummary {
            report: run.report,
            down: run.down,
            up: run.up,
        },
        result,
    )
}

struct Run {
    clock: Instant,
    report: Report,
    down: Option<DownSummary>,
    up: Option<UpSummary>,
}

impl Run {
    fn now(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn phase(&mut self, name: &str, start: f64, outcome: PhaseOutcome, note: Option<String>) {
        let end = self.now();
        self.report.phases.push(Phase {
            name: name.to_string(),
            start,
            end,
            outcome,
            note,
        });
    }

    /// Records `name` as failed with `error`'s text, and hands `error` on.
    fn failed(&mut self, name: &str, start: f64, error: ClusterError) -> ClusterError {
        self.phase(name, start, PhaseOutcome::Failed, Some(error.to_string()));
        error
    }

    async fn go(
        &mut self,
        options: DrillOptions<'_>,
        reporter: &dyn Reporter,
    ) -> Result<(), ClusterError> {
        let source = super::spec(&options.down.request)?;
        let target = super::spec(&options.up.request)?;
        self.report.cluster = source.name.clone();
        self.report.recovered_cluster = target.name.clone();

        let start = self.now();
        let baseline = match read_baseline(&source.region, &source.name).await {
            Ok(baseline) => baseline,
            Err(e) => return Err(self.failed("baseline", start, e)),
        };
        let required = drill::required(&baseline).count();
        reporter.report(Event::info(
            PHASE,
            format!(
                "baseline: {} Application(s), {required} Synced and Healthy must come back",
                baseline.len()
            ),
        ));
        if baseline.is_empty() {
            reporter.report(Event::warn(
                PHASE,
                "the cluster runs no Argo CD Application: the drill measures the infrastructure only",
            ));
        }
        self.report.baseline = baseline;
        self.phase(
            "baseline",
            start,
            PhaseOutcome::Done,
            Some(format!(
                "{} Application(s), {required} required",
                self.report.baseline.len()
            )),
        );

        let start = self.now();
        if options.to_region {
            self.phase(
                "disaster",
                start,
                PhaseOutcome::Skipped,
                Some(format!(
                    "{} in {} left alone, as if the region were lost",
                    source.name, source.region
                )),
            );
        } else {
            let (summary, result) = down(options.down, reporter).await;
            self.down = Some(summary);
            if let Err(e) = result {
                return Err(self.failed("disaster", start, e));
            }
            self.phase(
                "disaster",
                start,
                PhaseOutcome::Done,
                Some(format!("{} removed, nothing left", source.name)),
            );
        }

        // The RTO runs from the moment the cluster is gone.
        let recovery_clock = Instant::now();
        let deadline = tokio::time::Instant::from_std(recovery_clock + options.rto);
        let since_recovery = || recovery_clock.elapsed().as_secs_f64();
        let start = self.now();
        let recorder = Milestone::new(reporter, recovery_clock);
        let (summary, result) = up_with(&options.up, &recorder).await;
        self.report.milestones = recorder.milestones(&summary);
        self.up = Some(summary);
        if let Err(e) = result {
            self.report.rto = Rto::judge(options.rto, since_recovery(), false);
            return Err(self.failed("recovery", start, e));
        }
        self.phase(
            "recovery",
            start,
            PhaseOutcome::Done,
            Some(format!("{} in {} built", target.name, target.region)),
        );

        let start = self.now();
        reporter.report(Event::info(
            PHASE,
            format!(
                "waiting until the {required} Application(s) are Synced and Healthy again (RTO target {})",
                drill::human(options.rto.as_secs_f64())
            ),
        ));
        let mut interrupt = options.up.interrupt.clone();
        let seen = interrupt.count();
        let waited = tokio::select! {
            waited = await_applications(&target.region, &target.name, &self.report.baseline, deadline, &options.backoff) => waited,
            _ = interrupt.exceeds(seen) => Err(ClusterError::Interrupted { phase: "applications" }),
        };
        let measured = since_recovery();
        match waited {
            Ok(Ok(_)) => {
                self.report.milestones.last_application = Some(measured);
                self.report.rto = Rto::judge(options.rto, measured, true);
                self.phase(
                    "applications",
                    start,
                    PhaseOutcome::Done,
                    Some(format!("{required} Application(s) back")),
                );
            }
            Ok(Err(RecoveryError::NotBack(missing))) => {
                self.report.rto = Rto::judge(options.rto, measured, false);
                let note = format!("{} not back by the RTO deadline", missing.len());
                self.report.not_back = missing;
                self.phase("applications", start, PhaseOutcome::Failed, Some(note));
            }
            Ok(Err(refused @ RecoveryError::Refused(_))) => {
                self.report.rto = Rto::judge(options.rto, measured, false);
                return Err(self.failed("applications", start, ClusterError::Drill(refused)));
            }
            Err(e) => {
                self.report.rto = Rto::judge(options.rto, measured, false);
                return Err(self.failed("applications", start, e));
            }
        }
        reporter.report(Event::info(PHASE, self.report.rto.verdict()));
        Ok(())
    }
}

/// The source cluster's Applications; any failure to reach its API stops
/// the drill before the disaster.
async fn read_baseline(region: &str, name: &str) -> Result<Vec<ApplicationState>, ClusterError> {
    let aws = Aws::connect(region).await;
    let (kube, _, _) = eks_client(&aws, name).await?;
    reachable(&kube, name).await?;
    Ok(drill::baseline(&kube).await?)
}

async fn await_applications(
    region: &str,
    name: &str,
    baseline: &[ApplicationState],
    deadline: tokio::time::Instant,
    backoff: &Backoff,
) -> Result<Result<Vec<ApplicationState>, RecoveryError>, ClusterError> {
    let aws = Aws::connect(region).await;
    let (kube, _, _) = eks_client(&aws, name).await?;
    Ok(drill::await_recovery(&kube, baseline, deadline, backoff).await)
}

/// Passes every event on, noting when Terraform reports the EKS control
/// plane and the node group created.
struct Milestone<'a> {
    inner: &'a dyn Reporter,
    since: Instant,
    seen: Mutex<Milestones>,
}

impl<'a> Milestone<'a> {
    fn new(inner: &'a dyn Reporter, since: Instant) -> Milestone<'a> {
        Milestone {
            inner,
            since,
            seen: Mutex::new(Milestones::default()),
        }
    }

    /// What the events showed, completed from the build's phases: the
    /// addons milestone is the end of its `addons` phase, and a milestone
    /// Terraform did not report (nothing to create) counts from the end of
    /// the `terraform` phase.
    fn milestones(&self, up: &UpSummary) -> Milestones {
        let mut m = self.seen.lock().map(|m| m.clone()).unwrap_or_default();
        let end_of = |phase: &str| {
            let mut elapsed = 0.0;
            for p in &up.phases {
                elapsed += p.seconds;
                if p.phase == phase {
                    return (p.outcome != super::Outcome::Failed
                        && p.outcome != super::Outcome::Interrupted)
                        .then_some(elapsed);
                }
            }
            None
        };
        m.control_plane = m.control_plane.or_else(|| end_of("terraform"));
        m.nodes = m.nodes.or_else(|| end_of("terraform"));
        m.addons = end_of("addons");
        m
    }
}

impl Reporter for Milestone<'_> {
    fn report(&self, event: Event) {
        if event.fields.get("status").and_then(|s| s.as_str()) == Some("complete")
            && let Some(address) = event.fields.get("address").and_then(|a| a.as_str())
        {
            let at = self.since.elapsed().as_secs_f64();
            if let Ok(mut m) = self.seen.lock() {
                if address.contains("aws_eks_cluster.") && m.control_plane.is_none() {
                    m.control_plane = Some(at);
                }
                if address.contains("aws_eks_node_group.") && m.nodes.is_none() {
                    m.nodes = Some(at);
                }
            }
        }
        self.inner.report(event);
    }
}
