//! `terrace drill` and `terrace drill history`: flags checked before the
//! first AWS call, the drill run through `cluster::drill`, its report
//! written as Markdown and an SVG timeline beside each other, and kept
//! with a JSON copy in the regional state bucket under `drills/<cluster>/`,
//! where `history` reads them back.

use std::path::PathBuf;

use anyhow::Result;

use super::cluster::{Finished, down_options, fresh_up, install_options};
use super::{Context, Show, check_region, flag_error};
use crate::addons::install::InstallOptions;
use crate::aws::kubeconfig;
use crate::aws::{Aws, state};
use crate::cli::{ClusterArgs, DrillArgs, DrillFlags};
use crate::cluster::Approval;
use crate::cluster::{self, DrillOptions, DrillSummary};
use crate::config::Request;
use crate::drill::{self, History, Report, report};
use crate::terraform::Interrupt;
use crate::wait::Backoff;

/// A drill that ran but did not recover within its target (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("the drill of {cluster} failed:\n  {}", reasons.join("\n  "))]
pub struct DrillFailed {
    pub cluster: String,
    pub reasons: Vec<String>,
}

/// Where a drill's report went.
#[derive(Debug, Default, serde::Serialize)]
pub struct Kept {
    /// The Markdown report and SVG timeline written locally.
    pub files: Vec<PathBuf>,
    /// `s3://bucket/drills/<cluster>/<stem>` (`.md`, `.svg`, `.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<String>,
    /// Why the report could not be written or stored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

pub async fn run(
    ctx: &Context,
    args: &DrillArgs,
    show: &dyn Show,
) -> Result<(Finished<DrillSummary>, Kept)> {
    let region = args.region.as_deref().ok_or_else(|| {
        flag_error(
            "--region",
            "required: the region of the cluster to drill (e.g. us-east-1)".into(),
        )
    })?;
    check_region(region)?;
    if let Some(to) = &args.to_region {
        check_region(to)
            .map_err(|_| flag_error("--to-region", crate::config::regions::unknown(to)))?;
        if to == region {
            return Err(flag_error(
                "--to-region",
                format!("{to} is the drilled cluster's own region: give another region, or leave --to-region out to rebuild in place"),
            )
            .into());
        }
    }
    let shared = Drills::new(ctx, &args.drill)?;
    let source = ctx.request(region, args.name.as_deref());
    let target = match &args.to_region {
        Some(to) => ctx.request(to, None),
        None => source.clone(),
    };
    ctx.spec(&source.region, source.name.as_deref())?;
    ctx.spec(&target.region, target.name.as_deref())?;
    let approval = ctx.approval(args.drill.yes, false, show)?;
    let options = shared.options(ctx, source, Some(target), approval);
    let (summary, result) = cluster::drill(options, show).await;
    let kept = keep(&summary.report, &args.drill.report_dir).await;
    Ok((
        (summary, result.map_err(|e| e.stopped_by(&shared.interrupt))),
        kept,
    ))
}

/// What every drill of one command shares (`drill` has one, `fleet drill`
/// one per cluster): its flags, checked before the first AWS call, and
/// one source of stop requests.
pub(super) struct Drills<'f> {
    flags: &'f DrillFlags,
    install: InstallOptions,
    kubeconfig: kubeconfig::Target,
    pub interrupt: Interrupt,
}

impl<'f> Drills<'f> {
    pub fn new(ctx: &Context, flags: &'f DrillFlags) -> Result<Drills<'f>> {
        if flags.rto.is_zero() {
            return Err(flag_error("--rto", "must be longer than 0s (e.g. 45m)".into()).into());
        }
        if flags.report_dir.exists() && !flags.report_dir.is_dir() {
            return Err(flag_error(
                "--report-dir",
                format!("{} is not a directory", flags.report_dir.display()),
            )
            .into());
        }
        Ok(Drills {
            flags,
            kubeconfig: ctx.kubeconfig(flags.kubeconfig.as_deref())?,
            install: install_options(ctx, &flags.argocd)?,
            interrupt: Interrupt::signals()?,
        })
    }

    /// The drill of `source`, recovered in place or, given a `target` in
    /// another region, there.
    pub fn options<'a>(
        &self,
        ctx: &Context,
        source: Request,
        target: Option<Request>,
        approval: Approval<'a>,
    ) -> DrillOptions<'a> {
        let to_region = target.as_ref().is_some_and(|t| t.region != source.region);
        DrillOptions {
            down: down_options(
                ctx,
                source.clone(),
                approval,
                false,
                &self.flags.teardown,
                self.kubeconfig.path.clone(),
                self.interrupt.clone(),
            ),
            up: fresh_up(
                ctx,
                target.unwrap_or(source),
                approval,
                self.flags.stop_after,
                self.install.clone(),
                self.kubeconfig.clone(),
                self.interrupt.clone(),
                None,
            ),
            to_region,
            rto: self.flags.rto,
            backoff: Backoff::default(),
        }
    }

    pub fn report_dir(&self) -> &std::path::Path {
        &self.flags.report_dir
    }
}

/// The drill's verdict: an error naming each reason when it failed.
pub fn verdict(report: &Report) -> Result<(), DrillFailed> {
    if report.passed {
        Ok(())
    } else {
        Err(DrillFailed {
            cluster: report.cluster.clone(),
            reasons: report.failures(),
        })
    }
}

/// Writes the report beside its timeline and stores both, with the JSON
/// that `history` reads, in the source region's state bucket. A drill is
/// judged whether or not this works, so failures here are warnings.
pub(super) async fn keep(report: &Report, dir: &std::path::Path) -> Kept {
    let mut kept = Kept::default();
    let stem = report.file_stem();
    let markdown = report::markdown(report);
    let svg = report::svg(report);
    match std::fs::create_dir_all(dir) {
        Ok(()) => {
            for (ext, text) in [("md", &markdown), ("svg", &svg)] {
                let path = dir.join(format!("{stem}.{ext}"));
                match std::fs::write(&path, text) {
                    Ok(()) => kept.files.push(path),
                    Err(e) => kept
                        .warnings
                        .push(format!("could not write {}: {e}", path.display())),
                }
            }
        }
        Err(e) => kept
            .warnings
            .push(format!("could not create {}: {e}", dir.display())),
    }
    let json = serde_json::to_vec_pretty(report).unwrap_or_default();
    let aws = Aws::connect(&report.region).await;
    let account = match aws.account().await {
        Ok(account) => account,
        Err(e) => {
            kept.warnings.push(format!(
                "the report was not stored in the state bucket: {e}"
            ));
            return kept;
        }
    };
    let prefix = format!("{}{stem}", drill::key_prefix(&report.cluster));
    for (ext, body, content_type) in [
        ("md", markdown.into_bytes(), "text/markdown"),
        ("svg", svg.into_bytes(), "image/svg+xml"),
        ("json", json, "application/json"),
    ] {
        let key = format!("{prefix}.{ext}");
        if let Err(e) =
            state::put_object(&aws, &account, &report.region, &key, body, content_type).await
        {
            kept.warnings.push(format!(
                "the report was not stored in the state bucket: {e}"
            ));
            return kept;
        }
    }
    kept.stored = Some(format!(
        "s3://{}/{prefix}",
        state::bucket_name(&account, &report.region)
    ));
    kept
}

/// Past drills of the cluster `args` names, from its regional bucket.
pub async fn history(ctx: &Context, args: &ClusterArgs) -> Result<History> {
    check_region(&args.region)?;
    let spec = ctx.spec(&args.region, args.name.as_deref())?;
    let aws = Aws::connect(&spec.region).await;
    let account = aws.account().await?;
    let keys =
        state::list_keys(&aws, &account, &spec.region, &drill::key_prefix(&spec.name)).await?;
    let mut reports = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with(".json")) {
        let body = state::get_object(&aws, &account, &spec.region, key).await?;
        let report: Report = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("drill report {key} is not readable: {e}"))?;
        reports.push(report);
    }
    Ok(drill::history(reports))
}
