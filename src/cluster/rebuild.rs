//! `terrace cluster rebuild`: `down` (which proves nothing is left) then
//! `up` (which proves the new cluster healthy) as one run with one summary
//! and one exit code. The journal records the rebuild in progress, so an
//! interrupted rebuild run again continues with the half it stopped in:
//! it never tears down a cluster its own `up` half has started building.
//!
//! With an age limit, a cluster younger than the limit, healthy as EKS
//! reports it, and whose re-plan changes nothing is kept instead: the CI
//! pattern of reusing a fresh cluster.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::journal::{self, Journal, RebuildRecord};
use super::up::up_with;
use super::{ClusterError, DownOptions, DownSummary, UpOptions, UpSummary, down, work_dir};
use crate::aws::Aws;
use crate::aws::discovery::{self, DiscoveryError};
use crate::progress::{Event, Reporter};

pub struct RebuildOptions<'a> {
    pub down: DownOptions<'a>,
    pub up: UpOptions<'a>,
    /// `--if-older-than`: keep a younger, healthy, unchanged cluster.
    pub if_older_than: Option<Duration>,
    /// `--restart`: forget an unfinished rebuild and start with `down`.
    pub restart: bool,
}

/// What a rebuild did: the decision to keep or rebuild, then each half's
/// own summary (phases and durations); printed even when it failed.
#[derive(Debug, Default, Serialize)]
pub struct RebuildSummary {
    pub cluster: String,
    pub region: String,
    /// An interrupted rebuild was continued.
    pub resumed: bool,
    /// Why the cluster was kept or rebuilt, with `--if-older-than`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// `None` when kept, or when a resumed rebuild had finished its down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<DownSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up: Option<UpSummary>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub kept: bool,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    pub limit_seconds: u64,
}

impl RebuildSummary {
    pub fn kept(&self) -> bool {
        self.decision.as_ref().is_some_and(|d| d.kept)
    }
}

pub async fn rebuild(
    options: RebuildOptions<'_>,
    reporter: &dyn Reporter,
) -> (RebuildSummary, Result<(), ClusterError>) {
    let started = Instant::now();
    let mut summary = RebuildSummary::default();
    let result = run(options, reporter, &mut summary).await;
    summary.seconds = started.elapsed().as_secs_f64();
    (summary, result)
}

async fn run(
    options: RebuildOptions<'_>,
    reporter: &dyn Reporter,
    summary: &mut RebuildSummary,
) -> Result<(), ClusterError> {
    let RebuildOptions {
        down: teardown,
        mut up,
        if_older_than,
        restart,
    } = options;
    let spec = super::spec(&up.request)?;
    summary.cluster = spec.name.clone();
    summary.region = spec.region.clone();
    let dir = std::path::absolute(work_dir(&spec.name))
        .map_err(|e| ClusterError::Io("the work directory", e))?;
    let mut journal = Journal::load(&dir)?;
    let run = journal::new_run_id();
    let record = match journal.rebuild.clone() {
        Some(mut record) if !restart => {
            summary.resumed = true;
            record.resumed_by.push(run);
            reporter.report(Event::info(
                "rebuild",
                if record.down_done {
                    "resuming the unfinished rebuild: the old cluster is gone, building the new one"
                } else {
                    "resuming the unfinished rebuild: removing the old cluster"
                },
            ));
            record
        }
        _ => {
            if let Some(limit) = if_older_than {
                let decision = decide(&mut up, &spec.region, &spec.name, limit, reporter).await?;
                reporter.report(Event::info("rebuild", &decision.reason));
                let kept = decision.kept;
                summary.decision = Some(decision);
                if kept {
                    return Ok(());
                }
            }
            RebuildRecord {
                run,
                resumed_by: Vec::new(),
                started_ms: journal::now_ms(),
                down_done: false,
            }
        }
    };
    let down_done = record.down_done;
    journal.set_rebuild(Some(record))?;

    if !down_done {
        let (down_summary, result) = down(teardown, reporter).await;
        summary.down = Some(down_summary);
        result?;
        let mut journal = Journal::load(&dir)?;
        if let Some(record) = journal.rebuild.as_mut() {
            record.down_done = true;
        }
        let record = journal.rebuild.clone();
        journal.set_rebuild(record)?;
    }

    let (up_summary, result) = up_with(&up, reporter).await;
    summary.up = Some(up_summary);
    result?;
    Journal::load(&dir)?.set_rebuild(None)?;
    Ok(())
}

/// Keep or rebuild: younger than `limit`, every part ACTIVE and healthy as
/// EKS reports it, and a re-plan that changes nothing.
async fn decide(
    up: &mut UpOptions<'_>,
    region: &str,
    name: &str,
    limit: Duration,
    reporter: &dyn Reporter,
) -> Result<Decision, ClusterError> {
    let rebuild = |reason: String, age_seconds| Decision {
        kept: false,
        reason,
        age_seconds,
        limit_seconds: limit.as_secs(),
    };
    let aws = Aws::connect(region).await;
    let status = match discovery::status(&aws, name).await {
        Ok(status) => status,
        Err(DiscoveryError::NotFound { .. }) => {
            return Ok(rebuild(
                format!("rebuilding: no cluster {name} to keep"),
                None,
            ));
        }
        Err(e) => return Err(ClusterError::Aws(e.to_string())),
    };
    let age = status
        .created_at
        .as_deref()
        .and_then(|t| {
            aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime)
                .ok()
        })
        .and_then(|t| SystemTime::try_from(t).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let age_seconds = age.map(|a| a.as_secs());
    let limit_text = crate::duration::format(limit);
    match age {
        None => {
            return Ok(rebuild(
                "rebuilding: EKS reports no creation time to judge the age by".into(),
                None,
            ));
        }
        Some(age) if age >= limit => {
            return Ok(rebuild(
                format!(
                    "rebuilding: {name} is {} old, not younger than {limit_text}",
                    crate::duration::format(age)
                ),
                age_seconds,
            ));
        }
        Some(_) => {}
    }
    let unhealthy: Vec<String> = std::iter::once(&status.status)
        .filter(|s| *s != "ACTIVE")
        .map(|s| format!("cluster {s}"))
        .chain(
            status
                .node_groups
                .iter()
                .filter(|g| !g.healthy)
                .map(|g| format!("node group {} {}", g.name, g.status)),
        )
        .collect();
    if !unhealthy.is_empty() {
        return Ok(rebuild(
            format!("rebuilding: not healthy ({})", unhealthy.join(", ")),
            age_seconds,
        ));
    }
    up.dry_run = true;
    let (plan, planned) = up_with(up, reporter).await;
    up.dry_run = false;
    if let Err(e) = planned {
        if e.is_interrupt() {
            return Err(e);
        }
        return Ok(rebuild(
            format!("rebuilding: its re-plan failed ({e})"),
            age_seconds,
        ));
    }
    if !plan.no_changes {
        let c = &plan.changes;
        return Ok(rebuild(
            format!(
                "rebuilding: it differs from its configuration (terraform would add {}, change {}, destroy {})",
                c.add, c.change, c.destroy
            ),
            age_seconds,
        ));
    }
    Ok(Decision {
        kept: true,
        reason: format!(
            "kept: {name} is younger than {limit_text}, healthy, and matches its configuration"
        ),
        age_seconds,
        limit_seconds: limit.as_secs(),
    })
}
