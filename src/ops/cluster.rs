//! `terrace cluster …`: render, up, down, preflight, kubeconfig, list and
//! status of one cluster (or, for list, of the account).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Context, Show, check_region, flag_error, regions};
use crate::addons::install::InstallOptions;
use crate::addons::release::{self, ManifestSource};
use crate::aws::Aws;
use crate::aws::discovery::{self, ClusterStatus, Listing};
use crate::aws::kubeconfig::{self, Written};
use crate::aws::preflight::PreflightReport;
use crate::cli::{
    ArgocdArgs, ClusterArgs, DownArgs, KubeconfigArgs, ListArgs, RebuildArgs, RebuildFlags,
    StopAfter, TeardownArgs, UnlockArgs, UpArgs,
};
use crate::cluster::{
    self, Approval, ClusterError, DownOptions, DownSummary, RebuildOptions, RebuildSummary,
    RenderSummary, UnlockOptions, UnlockSummary, UpOptions, UpSummary,
};
use crate::config::{ConfigError, Request};
use crate::terraform::Interrupt;

/// What a run of `up` or `down` did, and how it ended; the summary is
/// complete either way, so the caller shows it before the error.
pub type Finished<S> = (S, Result<(), ClusterError>);

pub fn render(ctx: &Context, args: &ClusterArgs, out: Option<&Path>) -> Result<RenderSummary> {
    let request = ctx.request(&args.region, args.name.as_deref());
    Ok(cluster::render(&request, out)?)
}

/// `up`: every flag is checked before the first AWS call; an error here
/// means nothing ran.
pub async fn up(ctx: &Context, args: &UpArgs, show: &dyn Show) -> Result<Finished<UpSummary>> {
    let flags = &args.up;
    let approval = ctx.approval(flags.yes, args.dry_run, show)?;
    let kubeconfig = ctx.kubeconfig(flags.kubeconfig.as_deref())?;
    let install = install_options(ctx, &flags.argocd)?;
    check_ttl(flags.ttl)?;
    let interrupt = Interrupt::signals()?;
    let options = UpOptions {
        request: ctx.request(&args.cluster.region, args.cluster.name.as_deref()),
        approval,
        allow_replace: args.allow_replace,
        dry_run: args.dry_run,
        stop_after: flags.stop_after.map(|s| s.phase()),
        install,
        kubeconfig,
        terraform: ctx.terraform(),
        interrupt: interrupt.clone(),
        restart: flags.restart,
        verify_deadline: cluster::VERIFY_DEADLINE,
        ttl: flags.ttl,
    };
    let (summary, result) = cluster::up(options, show).await;
    Ok((summary, result.map_err(|e| e.stopped_by(&interrupt))))
}

/// `rebuild`: the flags of `up` and `down` that apply, checked before the
/// first AWS call.
pub async fn rebuild(
    ctx: &Context,
    args: &RebuildArgs,
    show: &dyn Show,
) -> Result<Finished<RebuildSummary>> {
    let approval = ctx.approval(args.rebuild.yes, false, show)?;
    let shared = Rebuilds::new(ctx, &args.rebuild)?;
    let request = ctx.request(&args.cluster.region, args.cluster.name.as_deref());
    let (summary, result) = cluster::rebuild(shared.options(ctx, request, approval), show).await;
    Ok((summary, result.map_err(|e| e.stopped_by(&shared.interrupt))))
}

/// What every rebuild of one command shares (`cluster rebuild` has one,
/// `fleet rebuild` one per cluster): its flags, checked before the first
/// AWS call, and one source of stop requests.
pub(super) struct Rebuilds<'f> {
    flags: &'f RebuildFlags,
    install: InstallOptions,
    kubeconfig: kubeconfig::Target,
    pub interrupt: Interrupt,
}

impl<'f> Rebuilds<'f> {
    pub fn new(ctx: &Context, flags: &'f RebuildFlags) -> Result<Rebuilds<'f>> {
        let kubeconfig = ctx.kubeconfig(flags.kubeconfig.as_deref())?;
        let install = install_options(ctx, &flags.argocd)?;
        check_ttl(flags.ttl)?;
        Ok(Rebuilds {
            flags,
            install,
            kubeconfig,
            interrupt: Interrupt::signals()?,
        })
    }

    pub fn options<'a>(
        &self,
        ctx: &Context,
        request: Request,
        approval: Approval<'a>,
    ) -> RebuildOptions<'a> {
        RebuildOptions {
            down: down_options(
                ctx,
                request.clone(),
                approval,
                false,
                &self.flags.teardown,
                self.kubeconfig.path.clone(),
                self.interrupt.clone(),
            ),
            up: fresh_up(
                ctx,
                request,
                approval,
                self.flags.stop_after,
                self.install.clone(),
                self.kubeconfig.clone(),
                self.interrupt.clone(),
                self.flags.ttl,
            ),
            if_older_than: self.flags.if_older_than,
            restart: self.flags.restart,
        }
    }
}

/// `up` of a cluster built from nothing (rebuild's second half, a
/// drill's recovery): no dry run, no journal to forget, and nothing there
/// to replace, so `--allow-replace` is never given.
#[allow(clippy::too_many_arguments)]
pub(super) fn fresh_up<'a>(
    ctx: &Context,
    request: Request,
    approval: Approval<'a>,
    stop_after: Option<StopAfter>,
    install: InstallOptions,
    kubeconfig: kubeconfig::Target,
    interrupt: Interrupt,
    ttl: Option<std::time::Duration>,
) -> UpOptions<'a> {
    UpOptions {
        request,
        approval,
        dry_run: false,
        stop_after: stop_after.map(|s| s.phase()),
        install,
        kubeconfig,
        terraform: ctx.terraform(),
        interrupt,
        restart: false,
        verify_deadline: cluster::VERIFY_DEADLINE,
        ttl,
        allow_replace: false,
    }
}

/// `unlock`: shows who holds the cluster's state lock and releases it
/// once approved.
pub async fn unlock(ctx: &Context, args: &UnlockArgs, show: &dyn Show) -> Result<UnlockSummary> {
    let approval = ctx.approval(args.yes, false, show)?;
    let interrupt = Interrupt::signals()?;
    let options = UnlockOptions {
        request: ctx.request(&args.cluster.region, args.cluster.name.as_deref()),
        approval,
        terraform: ctx.terraform(),
        interrupt: interrupt.clone(),
    };
    Ok(cluster::unlock(options, show)
        .await
        .map_err(|e| e.stopped_by(&interrupt))?)
}

/// `down` of the cluster `args` names.
pub async fn down(
    ctx: &Context,
    args: &DownArgs,
    show: &dyn Show,
) -> Result<Finished<DownSummary>> {
    let approval = ctx.approval(args.down.yes, args.plan, show)?;
    let kubeconfig = ctx.kubeconfig(args.down.kubeconfig.as_deref())?;
    let request = ctx.request(&args.cluster.region, args.cluster.name.as_deref());
    let interrupt = Interrupt::signals()?;
    let options = down_options(
        ctx,
        request,
        approval,
        args.plan,
        &args.down.teardown,
        kubeconfig.path,
        interrupt.clone(),
    );
    let (summary, result) = cluster::down(options, show).await;
    Ok((summary, result.map_err(|e| e.stopped_by(&interrupt))))
}

/// `down` of one cluster the janitor found stale, through the same path
/// as `cluster down`; its summary is shown whatever happens.
pub(super) async fn down_stale(
    ctx: &Context,
    region: &str,
    name: &str,
    teardown: &TeardownArgs,
    kubeconfig: &Path,
    show: &dyn Show,
) -> Result<(), ClusterError> {
    let request = ctx.request(region, Some(name));
    let interrupt = Interrupt::signals().map_err(|e| ClusterError::Io("the signal handlers", e))?;
    let options = down_options(
        ctx,
        request,
        Approval::Yes,
        false,
        teardown,
        kubeconfig.into(),
        interrupt.clone(),
    );
    let (summary, result) = cluster::down(options, show).await;
    show.down_summary(&summary, result.is_ok());
    result.map_err(|e| e.stopped_by(&interrupt))
}

pub(super) fn down_options<'a>(
    ctx: &Context,
    request: Request,
    approval: Approval<'a>,
    plan_only: bool,
    teardown: &TeardownArgs,
    kubeconfig: PathBuf,
    interrupt: Interrupt,
) -> DownOptions<'a> {
    DownOptions {
        request,
        approval,
        plan_only,
        keep_volumes: teardown.keep_volumes,
        kubeconfig,
        terraform: ctx.terraform(),
        interrupt,
        deadline: teardown.wait,
    }
}

/// A TTL under a minute would let the janitor remove the cluster while
/// it is still being built.
pub fn check_ttl(ttl: Option<std::time::Duration>) -> Result<(), ConfigError> {
    match ttl {
        Some(ttl) if ttl.as_secs() < 60 => Err(flag_error(
            "--ttl",
            format!(
                "{} is shorter than a minute (e.g. 24h)",
                crate::duration::format(ttl)
            ),
        )),
        _ => Ok(()),
    }
}

/// Preflight's report; the caller refuses (exit 3) when a check failed.
pub async fn preflight(ctx: &Context, args: &ClusterArgs) -> Result<PreflightReport> {
    let spec = ctx.spec(&args.region, args.name.as_deref())?;
    let terraform = cluster::terraform_check(&ctx.terraform());
    let aws = Aws::connect(&spec.region).await;
    Ok(cluster::preflight_report(&spec, &aws, terraform).await)
}

/// Adds (or updates) the cluster's entry in a kubeconfig; returns where,
/// and warnings about the entry.
pub async fn kubeconfig(ctx: &Context, args: &KubeconfigArgs) -> Result<(Written, Vec<String>)> {
    let spec = ctx.spec(&args.cluster.region, args.cluster.name.as_deref())?;
    let target = ctx.kubeconfig(args.kubeconfig.as_deref())?;
    let aws = Aws::connect(&spec.region).await;
    let (entry, warnings) = kubeconfig::entry(&aws, &spec.name).await?;
    let written = kubeconfig::write_entry(&target.path, &entry, &target.exec)?;
    Ok((written, warnings))
}

/// Terrace's clusters in the `--region`s, else in every enabled region.
/// A region that could not be read is in the listing's failures.
pub async fn list(args: &ListArgs) -> Result<Listing> {
    for region in &args.regions {
        check_region(region)?;
    }
    let aws = Aws::connect_default().await;
    let regions = regions(&aws, &args.regions).await?;
    Ok(discovery::list(&aws, &regions).await)
}

pub async fn status(ctx: &Context, args: &ClusterArgs) -> Result<ClusterStatus> {
    let spec = ctx.spec(&args.region, args.name.as_deref())?;
    let aws = Aws::connect(&spec.region).await;
    Ok(discovery::status(&aws, &spec.name).await?)
}

/// `--argocd-manifest` and `--argocd-sha256`, checked now: otherwise a
/// mistyped hash or path would be found after a 15-minute apply.
pub fn install_options(ctx: &Context, args: &ArgocdArgs) -> Result<InstallOptions, ConfigError> {
    let argocd_manifest = match args.argocd_manifest.as_deref() {
        None => ManifestSource::Pinned,
        Some(arg) => match ManifestSource::parse(arg) {
            ManifestSource::File(path) if !path.is_file() => {
                return Err(flag_error(
                    "--argocd-manifest",
                    format!(
                        "{}: no such file (give a readable file or an http(s) URL)",
                        path.display()
                    ),
                ));
            }
            source => source,
        },
    };
    let argocd_sha256 = match args.argocd_sha256.as_deref() {
        None => None,
        Some(hash) => Some(release::parse_sha256(hash).map_err(|_| {
            flag_error(
                "--argocd-sha256",
                format!("{hash:?} is not a SHA-256: expected 64 hexadecimal digits"),
            )
        })?),
    };
    Ok(InstallOptions {
        argocd_manifest,
        argocd_sha256,
        cache_dir: ctx.cache.as_ref().map(|c| c.join("manifests")),
        ..InstallOptions::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Env;

    fn argocd(manifest: Option<&str>, sha256: Option<&str>) -> ArgocdArgs {
        ArgocdArgs {
            argocd_manifest: manifest.map(str::to_string),
            argocd_sha256: sha256.map(str::to_string),
        }
    }

    fn context() -> Context {
        let env = Env {
            home: Some("/home/u".into()),
            ..Env::default()
        };
        Context::new(None, env).unwrap()
    }

    #[test]
    fn argocd_flags_are_checked_and_normalised_up_front() {
        let ctx = context();
        let pinned = install_options(&ctx, &argocd(None, None)).unwrap();
        assert_eq!(pinned.argocd_manifest, ManifestSource::Pinned);
        assert_eq!(
            pinned.cache_dir,
            Some(std::path::PathBuf::from("/home/u/.cache/terrace/manifests"))
        );

        let hash = "AB".repeat(32);
        let url = "https://mirror.example/install.yaml";
        let mirrored = install_options(&ctx, &argocd(Some(url), Some(&hash))).unwrap();
        assert_eq!(mirrored.argocd_manifest, ManifestSource::Url(url.into()));
        assert_eq!(mirrored.argocd_sha256, Some("ab".repeat(32)));

        let bad_hash = install_options(&ctx, &argocd(Some(url), Some("abc"))).unwrap_err();
        assert!(
            bad_hash.to_string().starts_with("--argocd-sha256: \"abc\""),
            "{bad_hash}"
        );
        let missing =
            install_options(&ctx, &argocd(Some("/nonexistent/install.yaml"), None)).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("--argocd-manifest: /nonexistent/install.yaml"),
            "{missing}"
        );
    }
}
