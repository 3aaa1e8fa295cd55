//! Disaster-recovery drills: what a drill records and how it is judged.
//! The baseline (every Argo CD Application with its status and source),
//! the test of whether an Application came back, the drill's report (its
//! phases on one clock, the recovery milestones, the RTO against its
//! target, what did not come back) and the history of past drills with
//! their trend. Rendering the report as Markdown and SVG is in `report`.
//!
//! This module owns no order of phases and runs nothing destructive:
//! `cluster::drill` takes the baseline, tears down and rebuilds, and hands
//! the timings here. Apart from reading Applications through `k8s`, it
//! does no I/O.

pub mod report;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::addons::health::{self, ApplicationState};
use crate::k8s::{K8sError, Kube};
use crate::wait::{self, Backoff, Poll, WaitError};

/// What runs on the cluster before the disaster.
pub async fn baseline(kube: &Kube) -> Result<Vec<ApplicationState>, K8sError> {
    health::applications(kube).await
}

/// The Applications a recovery must bring back: those Synced and Healthy
/// in the baseline (one already broken before the drill proves nothing).
pub fn required(baseline: &[ApplicationState]) -> impl Iterator<Item = &ApplicationState> {
    baseline.iter().filter(|a| a.healthy())
}

/// An Application of the baseline that is not back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotBack {
    /// `namespace/name`.
    pub application: String,
    pub reason: String,
}

/// Which required Applications of `baseline` are not back in `now`: back
/// means Synced and Healthy, from the same repository, path or chart, and
/// target revision as before.
pub fn not_back(baseline: &[ApplicationState], now: &[ApplicationState]) -> Vec<NotBack> {
    required(baseline)
        .filter_map(|before| {
            let reason = match now
                .iter()
                .find(|a| a.namespace == before.namespace && a.name == before.name)
            {
                None => "no such Application in the recovered cluster".to_string(),
                Some(after) if after.source != before.source => format!(
                    "its source changed: {} (was {})",
                    describe_source(&after.source),
                    describe_source(&before.source)
                ),
                Some(after) if !after.healthy() => after
                    .message
                    .clone()
                    .unwrap_or_else(|| format!("sync={} health={}", after.sync, after.health)),
                Some(_) => return None,
            };
            Some(NotBack {
                application: before.id(),
                reason,
            })
        })
        .collect()
}

fn describe_source(source: &health::ApplicationSource) -> String {
    let within = if source.chart.is_empty() {
        &source.path
    } else {
        &source.chart
    };
    format!("{} {within}@{}", source.repo, source.target_revision)
}

/// Polls the recovered cluster until every required Application of
/// `baseline` is back or `deadline` passes (one look at least, even at a
/// deadline already past). Returns the Applications as last seen, and
/// those not back then.
pub async fn await_recovery(
    kube: &Kube,
    baseline: &[ApplicationState],
    deadline: tokio::time::Instant,
    backoff: &Backoff,
) -> Result<Vec<ApplicationState>, RecoveryError> {
    let result = wait::until("the baseline's Applications", deadline, backoff, || async {
        match health::applications(kube).await {
            Ok(now) => {
                let missing = not_back(baseline, &now);
                if missing.is_empty() {
                    Poll::Ready(now)
                } else {
                    Poll::Pending(missing)
                }
            }
            Err(err) if err.is_forbidden() => Poll::Failed(err.to_string()),
            Err(err) => Poll::Pending(
                required(baseline)
                    .map(|a| NotBack {
                        application: a.id(),
                        reason: format!("the cluster API did not answer: {err}"),
                    })
                    .collect(),
            ),
        }
    })
    .await;
    match result {
        Ok(now) => Ok(now),
        Err(WaitError::Timeout { last, .. }) => Err(RecoveryError::NotBack(last)),
        Err(WaitError::Failed { message, .. }) => Err(RecoveryError::Refused(message)),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{} Application(s) did not come back: {}", .0.len(), names(.0))]
    NotBack(Vec<NotBack>),
    #[error("the recovered cluster's API refused us: {0}")]
    Refused(String),
}

fn names(missing: &[NotBack]) -> String {
    missing
        .iter()
        .map(|m| m.application.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a drill phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOutcome {
    Done,
    Failed,
    /// Not run: an earlier phase failed (or, for the disaster of a drill
    /// into another region, nothing to destroy).
    Skipped,
}

/// One phase of a drill on the drill's clock (seconds since it started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub start: f64,
    pub end: f64,
    pub outcome: PhaseOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Phase {
    pub fn seconds(&self) -> f64 {
        self.end - self.start
    }
}

/// The recovery's milestones, in seconds since the recovery began;
/// `None` for one the recovery did not reach (or, stopped early, did not
/// run: a build stopped after `outputs` installs no addons).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Milestones {
    pub control_plane: Option<f64>,
    pub nodes: Option<f64>,
    pub addons: Option<f64>,
    pub last_application: Option<f64>,
}

/// The recovery time measured against its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rto {
    pub target_seconds: f64,
    /// From the start of the recovery to the last Application back; when
    /// the recovery did not finish, to the moment the drill gave up.
    pub measured_seconds: f64,
    /// Every required Application came back.
    pub recovered: bool,
    /// Recovered, within the target.
    pub met: bool,
}

impl Rto {
    pub fn judge(target: Duration, measured_seconds: f64, recovered: bool) -> Rto {
        let target_seconds = target.as_secs_f64();
        Rto {
            target_seconds,
            measured_seconds,
            recovered,
            met: recovered && measured_seconds <= target_seconds,
        }
    }

    /// One sentence: the measured figure against the target.
    pub fn verdict(&self) -> String {
        let measured = human(self.measured_seconds);
        let target = human(self.target_seconds);
        match (self.recovered, self.met) {
            (true, true) => format!("recovered in {measured}, within the {target} target"),
            (true, false) => format!("recovered in {measured}, over the {target} target"),
            (false, _) => format!("not recovered: gave up after {measured} (target {target})"),
        }
    }
}

/// Seconds as a person reads them (`1m35s`).
pub fn human(seconds: f64) -> String {
    crate::duration::format(Duration::from_secs_f64(seconds.max(0.0).round()))
}

/// A finished drill, as stored (`drill-<cluster>-<timestamp>.json`) and
/// rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The cluster drilled, and its region.
    pub cluster: String,
    pub region: String,
    /// Where it was recovered (another region with `--to-region`).
    pub recovered_cluster: String,
    pub recovered_region: String,
    /// RFC 3339 UTC.
    pub started: String,
    pub started_ms: u64,
    pub phases: Vec<Phase>,
    pub milestones: Milestones,
    pub rto: Rto,
    pub baseline: Vec<ApplicationState>,
    pub not_back: Vec<NotBack>,
    /// Why the drill stopped early, when a phase failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub passed: bool,
}

impl Report {
    /// `drill-<cluster>-<yyyymmddThhmmssZ>`: the name of its files.
    pub fn file_stem(&self) -> String {
        let compact: String = self
            .started
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("drill-{}-{compact}", self.cluster)
    }

    /// The drill's end on its own clock.
    pub fn seconds(&self) -> f64 {
        self.phases.iter().map(|p| p.end).fold(0.0, f64::max)
    }

    /// Why it failed, in one line per reason; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(error) = &self.error {
            reasons.push(error.clone());
        }
        for missing in &self.not_back {
            reasons.push(format!(
                "{} did not come back: {}",
                missing.application, missing.reason
            ));
        }
        if self.error.is_none() && !self.rto.met {
            reasons.push(format!("RTO: {}", self.rto.verdict()));
        }
        reasons
    }
}

/// The S3 key prefix of a cluster's drills in its regional state bucket.
pub fn key_prefix(cluster: &str) -> String {
    format!("drills/{cluster}/")
}

/// One past drill in `drill history`, with the change of its RTO against
/// the drill before it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    pub started: String,
    pub cluster: String,
    pub recovered_region: String,
    pub rto_seconds: f64,
    pub target_seconds: f64,
    pub recovered: bool,
    pub passed: bool,
    /// Seconds slower (+) or faster (−) than the previous recovered drill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_seconds: Option<f64>,
}

/// Past drills oldest first, and the trend over the recovered ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct History {
    pub rows: Vec<HistoryRow>,
    pub trend: Trend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Fewer than two recovered drills to compare.
    Unknown,
    Faster,
    Slower,
    Steady,
}

/// Drills within this share of each other count as steady: run-to-run
/// noise of the cloud APIs, not a change in the recovery.
const STEADY_SHARE: f64 = 0.05;

/// Orders `reports` by start and computes each one's change and the
/// trend (the latest recovered drill against the mean of the earlier ones).
pub fn history(mut reports: Vec<Report>) -> History {
    reports.sort_by_key(|r| r.started_ms);
    let mut previous: Option<f64> = None;
    let mut rows = Vec::new();
    for r in &reports {
        let change = match (r.rto.recovered, previous) {
            (true, Some(before)) => Some(r.rto.measured_seconds - before),
            _ => None,
        };
        if r.rto.recovered {
            previous = Some(r.rto.measured_seconds);
        }
        rows.push(HistoryRow {
            started: r.started.clone(),
            cluster: r.cluster.clone(),
            recovered_region: r.recovered_region.clone(),
            rto_seconds: r.rto.measured_seconds,
            target_seconds: r.rto.target_seconds,
            recovered: r.rto.recovered,
            passed: r.passed,
            change_seconds: change,
        });
    }
    let recovered: Vec<f64> = reports
        .iter()
        .filter(|r| r.rto.recovered)
        .map(|r| r.rto.measured_seconds)
        .collect();
    let trend = match recovered.split_last() {
        Some((latest, earlier)) if !earlier.is_empty() => {
            let mean = earlier.iter().sum::<f64>() / earlier.len() as f64;
            if (latest - mean).abs() <= mean * STEADY_SHARE {
                Trend::Steady
            } else if *latest < mean {
                Trend::Faster
            } else {
                Trend::Slower
            }
        }
        _ => Trend::Unknown,
    };
    History { rows, trend }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addons::health::ApplicationSource;

    fn app(name: &str, sync: &str, health: &str, revision: &str) -> ApplicationState {
        ApplicationState {
            namespace: "argocd".into(),
            name: name.into(),
            sync: sync.into(),
            health: health.into(),
            revision: revision.into(),
            source: ApplicationSource {
                repo: "https://github.com/acme/platform.git".into(),
                path: format!("apps/{name}"),
                chart: String::new(),
                target_revision: "main".into(),
            },
            message: None,
        }
    }

    #[test]
    fn only_what_was_healthy_must_come_back_from_the_same_source() {
        let baseline = vec![
            app("a", "Synced", "Healthy", "abc"),
            app("b", "Synced", "Healthy", "abc"),
            app("broken", "OutOfSync", "Degraded", "abc"),
            app("c", "Synced", "Healthy", "abc"),
        ];
        let mut moved = app("b", "Synced", "Healthy", "def");
        moved.source.target_revision = "release".into();
        let now = vec![
            app("a", "Synced", "Healthy", "def"),
            moved,
            app("broken", "OutOfSync", "Degraded", "abc"),
        ];
        let missing = not_back(&baseline, &now);
        assert_eq!(
            missing
                .iter()
                .map(|m| m.application.as_str())
                .collect::<Vec<_>>(),
            ["argocd/b", "argocd/c"]
        );
        assert!(missing[0].reason.contains("@release (was"), "{missing:?}");
        assert!(missing[1].reason.contains("no such Application"));
    }

    #[test]
    fn rto_verdicts_carry_the_measured_figure() {
        let over = Rto::judge(Duration::from_secs(60), 95.0, true);
        assert!(!over.met);
        assert_eq!(over.verdict(), "recovered in 1m35s, over the 1m00s target");
        let within = Rto::judge(Duration::from_secs(2700), 95.0, true);
        assert!(within.met);
        let lost = Rto::judge(Duration::from_secs(2700), 30.0, false);
        assert!(!lost.met);
        assert!(lost.verdict().starts_with("not recovered"));
    }

    fn report(started_ms: u64, rto: f64, recovered: bool) -> Report {
        Report {
            cluster: "c".into(),
            region: "us-east-1".into(),
            recovered_cluster: "c".into(),
            recovered_region: "us-east-1".into(),
            started: format!("t{started_ms}"),
            started_ms,
            phases: Vec::new(),
            milestones: Milestones::default(),
            rto: Rto::judge(Duration::from_secs(600), rto, recovered),
            baseline: Vec::new(),
            not_back: Vec::new(),
            error: None,
            passed: recovered,
        }
    }

    #[test]
    fn history_orders_by_start_and_compares_recovered_drills() {
        let h = history(vec![
            report(3, 80.0, true),
            report(1, 100.0, true),
            report(2, 10.0, false),
        ]);
        let started: Vec<_> = h.rows.iter().map(|r| r.started.as_str()).collect();
        assert_eq!(started, ["t1", "t2", "t3"]);
        assert_eq!(h.rows[1].change_seconds, None);
        assert_eq!(h.rows[2].change_seconds, Some(-20.0));
        assert_eq!(h.trend, Trend::Faster);
        assert_eq!(history(vec![report(1, 100.0, true)]).trend, Trend::Unknown);
        assert_eq!(
            history(vec![report(1, 100.0, true), report(2, 103.0, true)]).trend,
            Trend::Steady
        );
    }
}
