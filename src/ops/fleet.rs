//! `terrace fleet …`: one command over the clusters of `terrace.yaml`.
//!
//! Each member runs the single-cluster code path (`cluster::up`,
//! `cluster::down`, `cluster::rebuild`, `cluster::drill`, `cluster::render`,
//! `discovery::status`) with its own
//! work directory, journal, local lock, state key and log, up to
//! `--parallel` at once. A member that fails never stops the others; a
//! stop request (SIGINT, SIGTERM, SIGHUP) reaches every running member,
//! which stops its Terraform cleanly and releases its locks, and no
//! further member starts. This module chooses the members and collects how
//! each ended; it prints nothing.

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use super::cluster::{Rebuilds, check_ttl, install_options};
use super::drill::{self as ops_drill, Drills, Kept};
use super::{Context, flag_error};
use crate::addons::install::InstallOptions;
use crate::aws::Aws;
use crate::aws::discovery::{self, DiscoveryError};
use crate::aws::kubeconfig;
use crate::cli::{
    ArgocdArgs, FleetDownArgs, FleetDrillArgs, FleetEach, FleetRebuildArgs, FleetSelect,
    FleetUpArgs,
};
use crate::cluster::{
    self, Approval, ClusterError, DownOptions, DownSummary, DrillOptions, DrillSummary, Outcome,
    PhaseReport, Prompt, RebuildOptions, RebuildSummary, RenderSummary, UpOptions, UpSummary,
};
use crate::config::{ClusterSpec, ConfigError, Location, Problem};
use crate::drill::PhaseOutcome;
use crate::progress::Reporter;
use crate::terraform::{Changes, Interrupt, Signal};

/// How many members run at once unless `--parallel` says otherwise: each
/// runs its own Terraform and AWS provider, a few hundred MB apiece.
pub const DEFAULT_PARALLEL: usize = 8;
/// The file in each member's work directory that keeps its whole log.
pub const LOG: &str = crate::tree::LOG;
/// How long `fleet status` waits for one cluster's API to list its addons.
const ADDONS_DEADLINE: Duration = Duration::from_secs(30);

/// What a fleet run shows besides the fleet summary: one reporter per
/// member (its own live line; its events carry its cluster and region and
/// are kept in its log), and each member's own summary as it finishes.
pub trait ShowFleet: Prompt {
    fn member(&self, cluster: &str, region: &str, log: Option<File>) -> Box<dyn Reporter + '_>;
    fn member_up(&self, summary: &UpSummary, error: Option<&ClusterError>);
    fn member_down(&self, summary: &DownSummary, error: Option<&ClusterError>);
    fn member_rebuild(&self, summary: &RebuildSummary, error: Option<&ClusterError>);
    /// A member's drill ended: `error` says why it failed (its run, or its
    /// Applications not back within the RTO).
    fn member_drill(&self, summary: &DrillSummary, kept: &Kept, error: Option<&str>);
}

/// How one member ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    Done,
    Failed,
    Interrupted,
    /// A stop request came before its turn: nothing of it ran.
    NotStarted,
}

/// One member's line in the fleet summary.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub cluster: String,
    pub region: String,
    pub result: Ending,
    /// The phase that failed or was interrupted; after a success, the last
    /// phase that ran. A rebuild names the half too (`down destroy`, `up
    /// terraform`), or says `kept`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub seconds: f64,
    /// What Terraform changed (`up`), would change (`plan`) or destroyed
    /// (`down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The member's work directory, which keeps its journal and its log.
    pub dir: PathBuf,
}

/// What a fleet command did, member by member, in configuration order.
#[derive(Debug, Serialize)]
pub struct FleetSummary {
    pub command: &'static str,
    pub fleet: String,
    pub parallel: usize,
    pub clusters: Vec<Member>,
    pub seconds: f64,
    /// The signal that stopped the run, if one did.
    #[serde(skip)]
    pub signal: Option<Signal>,
}

impl FleetSummary {
    pub fn ok(&self) -> bool {
        self.clusters.iter().all(|m| m.result == Ending::Done)
    }

    /// An error naming every member that did not finish, and the phase.
    pub fn check(&self) -> Result<(), FleetFailed> {
        let failed: Vec<String> = self
            .clusters
            .iter()
            .filter(|m| m.result != Ending::Done)
            .map(|m| match (m.result, m.phase.as_deref()) {
                (Ending::NotStarted, _) => format!("{} ({}) not started", m.cluster, m.region),
                (_, Some(phase)) => format!("{} ({}) in {phase}", m.cluster, m.region),
                (_, None) => format!("{} ({})", m.cluster, m.region),
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(FleetFailed {
            command: self.command,
            total: self.clusters.len(),
            failed,
            signal: self.signal,
        })
    }
}

/// A fleet command where some member did not finish (exit 1, or the
/// signal's code when one stopped the run).
#[derive(Debug, thiserror::Error)]
#[error("{}{} of {} clusters did not finish `fleet {command}`: {}", stopped(*signal), failed.len(), total, failed.join(", "))]
pub struct FleetFailed {
    pub command: &'static str,
    pub total: usize,
    pub failed: Vec<String>,
    pub signal: Option<Signal>,
}

fn stopped(signal: Option<Signal>) -> String {
    signal
        .map(|s| format!("stopped by {}: ", s.name()))
        .unwrap_or_default()
}

/// The fleet's name and its clusters, narrowed by `--regions` and
/// `--clusters`; the whole file is validated first, and every flag value
/// that names nothing configured is reported at once (with a suggestion).
pub fn select(
    ctx: &Context,
    select: &FleetSelect,
) -> Result<(String, Vec<ClusterSpec>), ConfigError> {
    let path = ctx.fleet_file()?;
    let all = crate::config::load_fleet(&path, ctx.catalog.schema())?;
    let Some(first) = all.first() else {
        return Err(ConfigError::Invalid(vec![Problem {
            location: Location::File(path),
            field: "clusters".into(),
            message: "lists no cluster: a fleet command needs at least one".into(),
        }]));
    };
    let fleet = first.fleet.clone();
    let mut problems = Vec::new();
    let regions: Vec<&str> = unique(all.iter().map(|s| s.region.as_str()));
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    for (flag, given, known, noun) in [
        ("--regions", &select.regions, &regions, "region"),
        ("--clusters", &select.clusters, &names, "cluster"),
    ] {
        for value in given {
            if !known.contains(&value.as_str()) {
                problems.push(unknown(flag, value, known, noun));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let chosen: Vec<ClusterSpec> = all
        .into_iter()
        .filter(|s| select.regions.is_empty() || select.regions.contains(&s.region))
        .filter(|s| select.clusters.is_empty() || select.clusters.contains(&s.name))
        .collect();
    if chosen.is_empty() {
        return Err(flag_error(
            "--clusters",
            "no configured cluster is both in --regions and in --clusters".into(),
        ));
    }
    Ok((fleet, chosen))
}

fn unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// `--regions eu-west-2`: not one of the fleet's, with the nearest one.
fn unknown(flag: &str, value: &str, known: &[&str], noun: &str) -> Problem {
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(value, k), *k))
        .filter(|(distance, _)| *distance <= 3)
        .min();
    let message = match nearest {
        Some((_, k)) => format!("{value:?} is not a {noun} of the fleet (did you mean {k}?)"),
        None => format!(
            "{value:?} is not a {noun} of the fleet (configured: {})",
            known.join(", ")
        ),
    };
    Problem {
        location: Location::CommandLine,
        field: flag.into(),
        message,
    }
}

/// How many members run at once: `--parallel`, else all up to the cap.
fn parallel(flag: Option<u16>, members: usize) -> usize {
    flag.map_or(DEFAULT_PARALLEL, usize::from)
        .clamp(1, members.max(1))
}

/// What every member's `cluster::up` shares in one fleet command.
struct Shared {
    install: InstallOptions,
    kubeconfig: kubeconfig::Target,
    interrupt: Interrupt,
    dry_run: bool,
    stop_after: Option<&'static str>,
    restart: bool,
    ttl: Option<Duration>,
}

impl Shared {
    /// The flags every member shares, checked before anything runs.
    fn new(ctx: &Context, argocd: &ArgocdArgs, kubeconfig: Option<&Path>) -> Result<Shared> {
        Ok(Shared {
            install: install_options(ctx, argocd)?,
            kubeconfig: ctx.kubeconfig(kubeconfig)?,
            interrupt: Interrupt::signals()?,
            dry_run: false,
            stop_after: None,
            restart: false,
            ttl: None,
        })
    }

    fn options(&self, ctx: &Context, spec: &ClusterSpec) -> UpOptions<'static> {
        UpOptions {
            request: ctx.request(&spec.region, Some(&spec.name)),
            approval: Approval::Yes,
            dry_run: self.dry_run,
            stop_after: self.stop_after,
            install: self.install.clone(),
            kubeconfig: self.kubeconfig.clone(),
            terraform: ctx.terraform(),
            interrupt: self.interrupt.clone(),
            restart: self.restart,
            verify_deadline: cluster::VERIFY_DEADLINE,
            ttl: self.ttl,
            // A fleet runs unattended: replacing a member's foundations
            // stays a single-cluster `up --allow-replace`.
            allow_replace: false,
        }
    }
}

/// `fleet up`: every member through `cluster::up`, approved once for all.
pub async fn up(ctx: &Context, args: &FleetUpArgs, show: &dyn ShowFleet) -> Result<FleetSummary> {
    let (fleet, members) = select(ctx, &args.each.select)?;
    let flags = &args.up;
    let approval = ctx.approval(flags.yes, false, show)?;
    check_ttl(flags.ttl)?;
    let shared = Shared {
        stop_after: flags.stop_after.map(|s| s.phase()),
        restart: flags.restart,
        ttl: flags.ttl,
        ..Shared::new(ctx, &flags.argocd, flags.kubeconfig.as_deref())?
    };
    approve(&approval, "build or update", &members).await?;
    let parallel = parallel(args.each.parallel, members.len());
    let started = Instant::now();
    let clusters = each(&members, parallel, |spec| {
        run_up(spec, shared.options(ctx, spec), show)
    })
    .await;
    Ok(summary(
        "up",
        fleet,
        parallel,
        clusters,
        started,
        &shared.interrupt,
    ))
}

/// `fleet plan`: each member's `up --dry-run`: preflight, render and
/// `terraform plan`, changing nothing.
pub async fn plan(ctx: &Context, args: &FleetEach, show: &dyn ShowFleet) -> Result<FleetSummary> {
    let (fleet, members) = select(ctx, &args.select)?;
    let shared = Shared {
        dry_run: true,
        ..Shared::new(ctx, &ArgocdArgs::default(), None)?
    };
    let parallel = parallel(args.parallel, members.len());
    let started = Instant::now();
    let clusters = each(&members, parallel, |spec| {
        run_up(spec, shared.options(ctx, spec), show)
    })
    .await;
    Ok(summary(
        "plan",
        fleet,
        parallel,
        clusters,
        started,
        &shared.interrupt,
    ))
}

async fn run_up(spec: &ClusterSpec, options: UpOptions<'_>, show: &dyn ShowFleet) -> Member {
    let interrupt = options.interrupt.clone();
    let dry_run = options.dry_run;
    let Some((dir, reporter)) = start(spec, &interrupt, show) else {
        return not_started(spec);
    };
    let (summary, result) = cluster::up(options, &*reporter).await;
    let result = result.map_err(|e| e.stopped_by(&interrupt));
    show.member_up(&summary, result.as_ref().err());
    let changes = (dry_run || !summary.phases.is_empty()).then_some(summary.changes);
    let phase = phase(&[(None, &summary.phases)], result.is_err());
    member(spec, dir, phase, summary.seconds, changes, result)
}

/// `fleet down`: every member through `cluster::down`, approved once.
pub async fn down(
    ctx: &Context,
    args: &FleetDownArgs,
    show: &dyn ShowFleet,
) -> Result<FleetSummary> {
    let (fleet, members) = select(ctx, &args.each.select)?;
    let flags = &args.down;
    let approval = ctx.approval(flags.yes, false, show)?;
    let kubeconfig = ctx.kubeconfig(flags.kubeconfig.as_deref())?;
    let interrupt = Interrupt::signals()?;
    approve(&approval, "remove", &members).await?;
    let parallel = parallel(args.each.parallel, members.len());
    let started = Instant::now();
    let clusters = each(&members, parallel, |spec| {
        let options = DownOptions {
            request: ctx.request(&spec.region, Some(&spec.name)),
            approval: Approval::Yes,
            plan_only: false,
            keep_volumes: flags.teardown.keep_volumes,
            kubeconfig: kubeconfig.path.clone(),
            terraform: ctx.terraform(),
            interrupt: interrupt.clone(),
            deadline: flags.teardown.wait,
        };
        run_down(spec, options, show)
    })
    .await;
    Ok(summary(
        "down", fleet, parallel, clusters, started, &interrupt,
    ))
}

async fn run_down(spec: &ClusterSpec, options: DownOptions<'_>, show: &dyn ShowFleet) -> Member {
    let interrupt = options.interrupt.clone();
    let Some((dir, reporter)) = start(spec, &interrupt, show) else {
        return not_started(spec);
    };
    let (summary, result) = cluster::down(options, &*reporter).await;
    let result = result.map_err(|e| e.stopped_by(&interrupt));
    show.member_down(&summary, result.as_ref().err());
    let phase = phase(&[(None, &summary.phases)], result.is_err());
    member(spec, dir, phase, summary.seconds, summary.destroyed, result)
}

/// `fleet rebuild`: every member through `cluster::rebuild` (down, proved
/// empty, then up, proved healthy; or kept, with `--if-older-than`),
/// approved once.
pub async fn rebuild(
    ctx: &Context,
    args: &FleetRebuildArgs,
    show: &dyn ShowFleet,
) -> Result<FleetSummary> {
    let (fleet, members) = select(ctx, &args.each.select)?;
    let approval = ctx.approval(args.rebuild.yes, false, show)?;
    let shared = Rebuilds::new(ctx, &args.rebuild)?;
    let what = match args.rebuild.if_older_than {
        Some(limit) => format!(
            "tear down and rebuild (or keep, when younger than {}, healthy and unchanged)",
            crate::duration::format(limit)
        ),
        None => "tear down and rebuild".to_string(),
    };
    approve(&approval, &what, &members).await?;
    let parallel = parallel(args.each.parallel, members.len());
    let started = Instant::now();
    let clusters = each(&members, parallel, |spec| {
        let options = shared.options(
            ctx,
            ctx.request(&spec.region, Some(&spec.name)),
            Approval::Yes,
        );
        run_rebuild(spec, options, show)
    })
    .await;
    Ok(summary(
        "rebuild",
        fleet,
        parallel,
        clusters,
        started,
        &shared.interrupt,
    ))
}

async fn run_rebuild(
    spec: &ClusterSpec,
    options: RebuildOptions<'_>,
    show: &dyn ShowFleet,
) -> Member {
    let interrupt = options.up.interrupt.clone();
    let Some((dir, reporter)) = start(spec, &interrupt, show) else {
        return not_started(spec);
    };
    let (summary, result) = cluster::rebuild(options, &*reporter).await;
    let result = result.map_err(|e| e.stopped_by(&interrupt));
    show.member_rebuild(&summary, result.as_ref().err());
    let phase = if summary.kept() && result.is_ok() {
        Some("kept".to_string())
    } else {
        let halves = [
            summary.down.as_ref().map(|d| (Some("down"), &d.phases)),
            summary.up.as_ref().map(|u| (Some("up"), &u.phases)),
        ];
        let halves: Vec<_> = halves.into_iter().flatten().collect();
        phase(&halves, result.is_err())
    };
    let changes = summary.up.as_ref().map(|u| u.changes);
    member(spec, dir, phase, summary.seconds, changes, result)
}

/// `fleet drill`: every member drilled in its own region through
/// `cluster::drill`, its report written and stored as `drill` does it,
/// approved once. A member whose Applications did not come back within
/// the RTO fails, naming them.
pub async fn drill(
    ctx: &Context,
    args: &FleetDrillArgs,
    show: &dyn ShowFleet,
) -> Result<FleetSummary> {
    let (fleet, members) = select(ctx, &args.each.select)?;
    let shared = Drills::new(ctx, &args.drill)?;
    let approval = ctx.approval(args.drill.yes, false, show)?;
    let what = format!(
        "drill (destroy, rebuild and wait for every Application, RTO {})",
        crate::duration::format(args.drill.rto)
    );
    approve(&approval, &what, &members).await?;
    let parallel = parallel(args.each.parallel, members.len());
    let started = Instant::now();
    let clusters = each(&members, parallel, |spec| {
        let request = ctx.request(&spec.region, Some(&spec.name));
        let options = shared.options(ctx, request, None, Approval::Yes);
        run_drill(spec, options, shared.report_dir(), show)
    })
    .await;
    Ok(summary(
        "drill",
        fleet,
        parallel,
        clusters,
        started,
        &shared.interrupt,
    ))
}

async fn run_drill(
    spec: &ClusterSpec,
    options: DrillOptions<'_>,
    report_dir: &Path,
    show: &dyn ShowFleet,
) -> Member {
    let interrupt = options.up.interrupt.clone();
    let Some((dir, reporter)) = start(spec, &interrupt, show) else {
        return not_started(spec);
    };
    let (summary, result) = cluster::drill(options, &*reporter).await;
    let kept = ops_drill::keep(&summary.report, report_dir).await;
    let result = result.map_err(|e| e.stopped_by(&interrupt));
    let verdict = ops_drill::verdict(&summary.report).err();
    let phases = &summary.report.phases;
    let phase = phases
        .iter()
        .rev()
        .find(|p| p.outcome == PhaseOutcome::Failed)
        .or(phases.last())
        .map(|p| p.name.clone());
    let ran = result.is_ok();
    let changes = summary.up.as_ref().map(|u| u.changes);
    let mut member = member(
        spec,
        dir,
        phase,
        summary.report.rto.measured_seconds,
        changes,
        result,
    );
    if ran && let Some(failed) = verdict {
        member.result = Ending::Failed;
        member.error = Some(failed.to_string());
    }
    show.member_drill(&summary, &kept, member.error.as_deref());
    member
}

/// Asks once for the whole fleet (each member then runs approved).
async fn approve(
    approval: &Approval<'_>,
    what: &str,
    members: &[ClusterSpec],
) -> Result<(), ClusterError> {
    let names: Vec<String> = members
        .iter()
        .map(|s| format!("{} ({})", s.name, s.region))
        .collect();
    let question = format!("{what} {} cluster(s): {}?", members.len(), names.join(", "));
    if approval.approve(&question).await {
        Ok(())
    } else {
        Err(ClusterError::Declined)
    }
}

/// A member's start: nothing when a stop was asked for before its slot
/// came; else what `reporter` gives it.
fn start<'s>(
    spec: &ClusterSpec,
    interrupt: &Interrupt,
    show: &'s dyn ShowFleet,
) -> Option<(PathBuf, Box<dyn Reporter + 's>)> {
    (interrupt.count() == 0).then(|| reporter(spec, show))
}

/// The member's work directory (absolute, as `cluster::up` uses it) and a
/// reporter that also appends to its log, run after run. A log that cannot
/// be opened costs the log, not the run.
fn reporter<'s>(spec: &ClusterSpec, show: &'s dyn ShowFleet) -> (PathBuf, Box<dyn Reporter + 's>) {
    let dir = cluster::work_dir(&spec.name);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let log = std::fs::create_dir_all(&dir).ok().and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG))
            .ok()
    });
    (dir, show.member(&spec.name, &spec.region, log))
}

/// Runs `run` for each member, at most `parallel` at once, and returns
/// what each gave, in configuration order. A member is started only when
/// a slot is free, so one that checks for a stop request first never
/// starts after one.
async fn each<'a, T, F, Fut>(members: &'a [ClusterSpec], parallel: usize, run: F) -> Vec<T>
where
    F: Fn(&'a ClusterSpec) -> Fut,
    Fut: Future<Output = T>,
{
    let mut ended: Vec<(usize, T)> = futures::stream::iter(members.iter().enumerate())
        .map(|(i, spec)| {
            let running = run(spec);
            async move { (i, running.await) }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    ended.sort_by_key(|(i, _)| *i);
    ended.into_iter().map(|(_, m)| m).collect()
}

fn not_started(spec: &ClusterSpec) -> Member {
    Member {
        cluster: spec.name.clone(),
        region: spec.region.clone(),
        result: Ending::NotStarted,
        phase: None,
        seconds: 0.0,
        changes: None,
        error: None,
        dir: cluster::work_dir(&spec.name),
    }
}

/// The phase a member's line names: after a failure the one that failed
/// or was interrupted, else the last that ran; `halves` are a rebuild's
/// two runs in order (`None` for a single run), whose name prefixes the
/// phase.
fn phase(halves: &[(Option<&str>, &Vec<PhaseReport>)], failed: bool) -> Option<String> {
    let ran: Vec<(Option<&str>, &PhaseReport)> = halves
        .iter()
        .flat_map(|(half, phases)| phases.iter().map(move |p| (*half, p)))
        .collect();
    let stopped = ran
        .iter()
        .rev()
        .find(|(_, p)| matches!(p.outcome, Outcome::Failed | Outcome::Interrupted));
    let chosen = if failed {
        stopped.or(ran.last())
    } else {
        ran.last()
    };
    match chosen {
        Some((Some(half), p)) => Some(format!("{half} {}", p.phase)),
        Some((None, p)) => Some(p.phase.to_string()),
        // An error before the first phase was recorded (a held lock, a
        // bad spec) belongs to resolve.
        None if failed => Some("resolve".to_string()),
        None => None,
    }
}

fn member(
    spec: &ClusterSpec,
    dir: PathBuf,
    phase: Option<String>,
    seconds: f64,
    changes: Option<Changes>,
    result: Result<(), ClusterError>,
) -> Member {
    let (ending, error) = match result {
        Ok(()) => (Ending::Done, None),
        Err(e) => {
            let ending = if e.is_interrupt() {
                Ending::Interrupted
            } else {
                Ending::Failed
            };
            (ending, Some(format!("{e:#}")))
        }
    };
    Member {
        cluster: spec.name.clone(),
        region: spec.region.clone(),
        result: ending,
        phase,
        seconds,
        changes,
        error,
        dir,
    }
}

fn summary(
    command: &'static str,
    fleet: String,
    parallel: usize,
    clusters: Vec<Member>,
    started: Instant,
    interrupt: &Interrupt,
) -> FleetSummary {
    FleetSummary {
        command,
        fleet,
        parallel,
        clusters,
        seconds: started.elapsed().as_secs_f64(),
        signal: interrupt.first_signal(),
    }
}

/// `fleet render`: each member's files, offline, as `cluster render` writes them.
pub fn render(ctx: &Context, select: &FleetSelect) -> Result<Vec<RenderSummary>> {
    let (_, members) = self::select(ctx, select)?;
    let mut rendered = Vec::new();
    for spec in &members {
        rendered.push(cluster::render(
            &ctx.request(&spec.region, Some(&spec.name)),
            None,
        )?);
    }
    Ok(rendered)
}

/// One job of a CI matrix.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub cluster: String,
    pub region: String,
}

/// `fleet matrix`: the members as jobs for a CI system's matrix.
pub fn matrix(ctx: &Context, select: &FleetSelect) -> Result<(String, Vec<Job>)> {
    let (fleet, members) = self::select(ctx, select)?;
    let jobs = members
        .into_iter()
        .map(|s| Job {
            cluster: s.name,
            region: s.region,
        })
        .collect();
    Ok((fleet, jobs))
}

/// One member in `fleet status`.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    pub cluster: String,
    pub region: String,
    pub exists: bool,
    /// EKS's status (`ACTIVE`, `CREATING`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    /// Never removed by the janitor: the live cluster's `terrace.dev/keep`
    /// tag, which the janitor reads; for a cluster not built, the
    /// configuration's `keep:`.
    pub keep: bool,
    /// The configuration's `ttl:`: how long after it is built the janitor
    /// may remove it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    /// The live cluster's `terrace.dev/expires-at` tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Seconds until then; negative once past (the janitor's next run
    /// removes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<i64>,
    /// Addons Synced and Healthy out of those expected, when the API answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addons: Option<AddonHealth>,
    /// Whether a re-plan shows changes; `None` when it could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
    /// What could not be found out, one reason a line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AddonHealth {
    pub healthy: usize,
    pub total: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unhealthy: Vec<String>,
}

/// `fleet status`: for each member whether it exists, its EKS status,
/// version and age, what the janitor may do with it (keep, TTL, expiry),
/// its addons' health when its API answers, and drift (what a re-plan,
/// `up --dry-run`, would change).
pub async fn status(
    ctx: &Context,
    args: &FleetEach,
    show: &dyn ShowFleet,
) -> Result<Vec<MemberStatus>> {
    let (_, members) = select(ctx, &args.select)?;
    let shared = Shared {
        dry_run: true,
        ..Shared::new(ctx, &ArgocdArgs::default(), None)?
    };
    let parallel = parallel(args.parallel, members.len());
    Ok(each(&members, parallel, |spec| {
        member_status(ctx, spec, shared.options(ctx, spec), show)
    })
    .await)
}

async fn member_status(
    ctx: &Context,
    spec: &ClusterSpec,
    plan: UpOptions<'_>,
    show: &dyn ShowFleet,
) -> MemberStatus {
    let mut row = MemberStatus {
        cluster: spec.name.clone(),
        region: spec.region.clone(),
        exists: false,
        status: None,
        version: None,
        created_at: None,
        age_seconds: None,
        keep: spec.lifetime.keep,
        ttl_seconds: spec.lifetime.ttl_seconds,
        expires_at: None,
        expires_in_seconds: None,
        addons: None,
        drift: None,
        problems: Vec::new(),
    };
    let aws = Aws::connect(&spec.region).await;
    match discovery::status(&aws, &spec.name).await {
        Ok(found) => {
            row.exists = true;
            row.status = Some(found.status);
            row.version = found.version;
            let now = now_seconds();
            row.age_seconds = found
                .created_at
                .as_deref()
                .and_then(epoch_seconds)
                .and_then(|created| u64::try_from(now - created).ok());
            row.created_at = found.created_at;
            row.keep = found.keep;
            row.expires_in_seconds = found
                .expires_at
                .as_deref()
                .and_then(epoch_seconds)
                .map(|at| at - now);
            row.expires_at = found.expires_at;
        }
        Err(DiscoveryError::NotFound { .. }) => return row,
        Err(e) => {
            row.problems.push(e.to_string());
            return row;
        }
    }
    match tokio::time::timeout(ADDONS_DEADLINE, addon_health(ctx, spec, &aws)).await {
        Ok(Ok(health)) => row.addons = Some(health),
        Ok(Err(e)) => row.problems.push(format!("addons: {e:#}")),
        Err(_) => row.problems.push(format!(
            "addons: the cluster API did not answer within {}s",
            ADDONS_DEADLINE.as_secs()
        )),
    }
    let (_, reporter) = reporter(spec, show);
    let (summary, result) = cluster::up(plan, &*reporter).await;
    match result {
        Ok(()) => row.drift = Some(!summary.no_changes),
        Err(e) => row.problems.push(format!("drift: {e:#}")),
    }
    row
}

/// Seconds since the epoch of an RFC 3339 time, as EKS gives a cluster's
/// creation and `up` writes its expiry.
fn epoch_seconds(at: &str) -> Option<i64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from_str(at, Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

fn now_seconds() -> i64 {
    i64::try_from(cluster::journal::now_ms() / 1000).unwrap_or(i64::MAX)
}

async fn addon_health(ctx: &Context, spec: &ClusterSpec, aws: &Aws) -> Result<AddonHealth> {
    let (kube, _, _) = cluster::eks_client(aws, &spec.name).await?;
    let expected = ctx.catalog.enabled(spec);
    let rows = crate::addons::health::status(&kube, ctx.catalog.gitops(), &expected).await?;
    let unhealthy: Vec<String> = crate::addons::health::unhealthy(&rows)
        .into_iter()
        .map(str::to_string)
        .collect();
    Ok(AddonHealth {
        healthy: rows.len() - unhealthy.len(),
        total: rows.len(),
        unhealthy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Env;

    fn context(config: &Path) -> Context {
        Context::new(Some(config.to_path_buf()), Env::default()).unwrap()
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fleet.yaml")
    }

    fn choose(regions: &[&str], clusters: &[&str]) -> FleetSelect {
        FleetSelect {
            regions: regions.iter().map(|s| s.to_string()).collect(),
            clusters: clusters.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn names(select: &FleetSelect) -> Result<Vec<String>, ConfigError> {
        let (_, members) = super::select(&context(&fixture()), select)?;
        Ok(members.into_iter().map(|s| s.name).collect())
    }

    #[test]
    fn every_cluster_by_default_narrowed_by_regions_and_clusters() {
        assert_eq!(
            names(&choose(&[], &[])).unwrap(),
            ["acme-us-east-1", "acme-eu-west-1", "acme-dr-sydney"]
        );
        assert_eq!(
            names(&choose(&["eu-west-1", "ap-southeast-2"], &[])).unwrap(),
            ["acme-eu-west-1", "acme-dr-sydney"]
        );
        assert_eq!(
            names(&choose(&[], &["acme-dr-sydney"])).unwrap(),
            ["acme-dr-sydney"]
        );
    }

    #[test]
    fn unknown_regions_and_clusters_are_all_named_with_a_suggestion() {
        let err = names(&choose(&["eu-west-2", "mars-1"], &["acme-us-east-2"])).unwrap_err();
        let problems = err.problems();
        assert_eq!(
            problems,
            [
                "--regions: \"eu-west-2\" is not a region of the fleet (did you mean eu-west-1?)",
                "--regions: \"mars-1\" is not a region of the fleet (configured: us-east-1, eu-west-1, ap-southeast-2)",
                "--clusters: \"acme-us-east-2\" is not a cluster of the fleet (did you mean acme-us-east-1?)",
            ],
        );
        let disjoint = names(&choose(&["us-east-1"], &["acme-dr-sydney"])).unwrap_err();
        assert!(
            disjoint
                .to_string()
                .starts_with("--clusters: no configured cluster"),
            "{disjoint}"
        );
    }

    #[test]
    fn parallel_defaults_to_all_up_to_the_cap() {
        assert_eq!(parallel(None, 3), 3);
        assert_eq!(parallel(None, 20), DEFAULT_PARALLEL);
        assert_eq!(parallel(Some(2), 3), 2);
        assert_eq!(parallel(Some(10), 3), 3);
    }

    #[test]
    fn a_failure_names_each_member_and_its_phase() {
        let m = |cluster: &str, result, phase: Option<&str>| Member {
            cluster: cluster.into(),
            region: "r".into(),
            result,
            phase: phase.map(str::to_string),
            seconds: 1.0,
            changes: None,
            error: None,
            dir: PathBuf::new(),
        };
        let mut summary = FleetSummary {
            command: "up",
            fleet: "acme".into(),
            parallel: 3,
            clusters: vec![
                m("a", Ending::Done, Some("outputs")),
                m("b", Ending::Failed, Some("terraform")),
                m("c", Ending::NotStarted, None),
            ],
            seconds: 2.0,
            signal: None,
        };
        assert!(!summary.ok());
        let err = summary.check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 of 3 clusters did not finish `fleet up`: b (r) in terraform, c (r) not started"
        );
        summary.signal = Some(Signal::Term);
        assert!(
            summary
                .check()
                .unwrap_err()
                .to_string()
                .starts_with("stopped by SIGTERM: ")
        );
        summary.clusters.truncate(1);
        assert!(summary.check().is_ok());
    }
}
