//! The edge between the command line and the domain modules: runs one
//! parsed command and decides the exit code of an error.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;

use crate::addons::install::InstallOptions;
use crate::addons::release::ManifestSource;
use crate::addons::{Catalog, health};
use crate::aws::{self, Aws, discovery, kubeconfig, preflight, state, token};
use crate::cli::{
    AddonsCommand, ArgocdArgs, Cli, ClusterArgs, ClusterCommand, Command, StateCommand,
    TeardownArgs,
};
use crate::cluster;
use crate::config::{self, ConfigError, Location, Problem, Request};
use crate::k8s::Kube;
use crate::teardown::janitor;
use crate::terraform::{Interrupt, Terraform};
use crate::ui::Printer;

/// Exit codes (DESIGN.md section 6).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_PREFLIGHT: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn run(cli: Cli, printer: &Printer) -> Result<()> {
    let config = cli.config;
    let request = |args: ClusterArgs| Request {
        config: config.clone(),
        region: args.region,
        name: args.name,
    };
    match cli.command {
        Command::Cluster(ClusterCommand::Render(args)) => {
            let summary = cluster::render(&request(args.cluster), args.out.as_deref())?;
            printer.rendered(&summary);
        }
        Command::Cluster(ClusterCommand::Up(args)) => {
            let approval = approval(args.yes, args.dry_run, printer)?;
            let kubeconfig = kubeconfig_path(args.kubeconfig.as_deref())?;
            let install = install_options(&args.argocd);
            let request = request(args.cluster);
            block_on(async {
                let options = cluster::UpOptions {
                    request,
                    approval,
                    dry_run: args.dry_run,
                    stop_after: args.stop_after.map(|s| s.phase()),
                    install,
                    kubeconfig,
                    interrupt: Interrupt::ctrl_c(),
                };
                let (summary, result) = cluster::up(options, printer).await;
                printer.up_summary(&summary, result.is_ok());
                Ok(result?)
            })?;
        }
        Command::Cluster(ClusterCommand::Down(args)) => {
            let approval = approval(args.yes, args.plan, printer)?;
            let kubeconfig = kubeconfig_path(args.kubeconfig.as_deref())?;
            down(
                request(args.cluster),
                approval,
                args.plan,
                &args.teardown,
                kubeconfig,
                printer,
            )?;
        }
        Command::Cluster(ClusterCommand::Preflight(args)) => {
            let spec = config::load(&request(args))?;
            block_on(async {
                let aws = Aws::connect(&spec.region).await;
                let report = preflight::run(&spec, &aws, &Terraform::find()).await;
                printer.preflight(&report);
                match report.refusal() {
                    Some(refused) => Err(refused.into()),
                    None => Ok(()),
                }
            })?;
        }
        Command::Cluster(ClusterCommand::Kubeconfig(args)) => {
            let spec = config::load(&request(args.cluster))?;
            let path = kubeconfig_path(args.kubeconfig.as_deref())?;
            let exe = std::env::current_exe()?;
            // kubectl runs the plugin with the user's environment; keep the
            // profile this entry was made with, as `aws eks update-kubeconfig` does.
            let env: Vec<(String, String)> = std::env::var("AWS_PROFILE")
                .ok()
                .filter(|p| !p.is_empty())
                .map(|p| ("AWS_PROFILE".to_string(), p))
                .into_iter()
                .collect();
            let (entry, warnings) = block_on(async {
                let aws = Aws::connect(&spec.region).await;
                Ok(kubeconfig::entry(&aws, &spec.name, &exe, env).await?)
            })?;
            for warning in &warnings {
                printer.warning(warning);
            }
            printer.kubeconfig_written(&kubeconfig::write_entry(&path, &entry)?);
        }
        Command::Cluster(ClusterCommand::List(args)) => {
            for region in &args.regions {
                check_region(region)?;
            }
            let listing = block_on(async {
                let aws = Aws::connect_default().await;
                let regions = if args.regions.is_empty() {
                    discovery::enabled_regions(&aws).await?
                } else {
                    args.regions.clone()
                };
                Ok(discovery::list(&aws, &regions).await)
            })?;
            printer.cluster_list(&listing);
            if let Some(incomplete) = listing.incomplete() {
                return Err(incomplete.into());
            }
        }
        Command::Cluster(ClusterCommand::Status(args)) => {
            let spec = config::load(&request(args))?;
            let status = block_on(async {
                let aws = Aws::connect(&spec.region).await;
                Ok(discovery::status(&aws, &spec.name).await?)
            })?;
            printer.cluster_status(&status);
        }
        Command::State(StateCommand::Bootstrap(args)) => {
            check_region(&args.region)?;
            let bucket = block_on(async {
                let aws = Aws::connect(&args.region).await;
                let account = aws.account().await?;
                Ok(state::ensure(&aws, &account, &args.region).await?)
            })?;
            printer.state_bucket(&bucket);
        }
        Command::Token(args) => {
            check_region(&args.region)?;
            let token = block_on(async {
                let aws = Aws::connect_as(&args.region, args.role_arn.as_deref()).await;
                Ok(token::token(&aws, &args.cluster).await?)
            })?;
            printer.exec_credential(&token.exec_credential());
        }
        Command::Janitor(args) => {
            for region in &args.regions {
                check_region(region)?;
            }
            let report = block_on(async {
                let aws = Aws::connect_default().await;
                let regions = if args.regions.is_empty() {
                    discovery::enabled_regions(&aws).await?
                } else {
                    args.regions.clone()
                };
                Ok(janitor::find(&aws, &regions, args.older_than).await)
            })?;
            printer.janitor(&report);
            if !report.failures.is_empty() {
                return Err(discovery::DiscoveryError::Incomplete(report.failures).into());
            }
            if args.yes {
                let kubeconfig = kubeconfig_path(None)?;
                let mut failed = Vec::new();
                for stale in &report.stale {
                    let request = Request {
                        config: config.clone(),
                        region: stale.region.clone(),
                        name: Some(stale.cluster.clone()),
                    };
                    let approval = cluster::Approval::Yes;
                    let result = down(
                        request,
                        approval,
                        false,
                        &args.teardown,
                        kubeconfig.clone(),
                        printer,
                    );
                    if let Err(e) = result {
                        if cluster_interrupted(&e) {
                            return Err(e);
                        }
                        printer.warning(&format!("{} ({}): {e:#}", stale.cluster, stale.region));
                        failed.push(format!("{} ({})", stale.cluster, stale.region));
                    }
                }
                if !failed.is_empty() {
                    anyhow::bail!("janitor could not remove: {}", failed.join(", "));
                }
            }
        }
        Command::Addons(AddonsCommand::List) => {
            let catalog = Catalog::embedded().map_err(|e| anyhow::anyhow!("{e}"))?;
            printer.addons(catalog);
        }
        Command::Addons(AddonsCommand::Status(args)) => {
            let spec = match &args.region {
                Some(region) => Some(config::load(&Request {
                    config: config.clone(),
                    region: region.clone(),
                    name: args.name.clone(),
                })?),
                None => None,
            };
            let rows = block_on(async {
                let (kube, expected) = match &spec {
                    Some(spec) => {
                        let aws = Aws::connect(&spec.region).await;
                        let (kube, _, _) = cluster::eks_client(&aws, &spec.name).await?;
                        let catalog = Catalog::embedded().map_err(|e| anyhow::anyhow!("{e}"))?;
                        let expected: Vec<String> = catalog
                            .iter()
                            .filter(|a| spec.addon_enabled(&a.name))
                            .map(|a| a.name.clone())
                            .collect();
                        (kube, expected)
                    }
                    None => (
                        Kube::from_kubeconfig(
                            args.kube.kubeconfig.as_deref(),
                            args.kube.context.as_deref(),
                        )
                        .await?,
                        Vec::new(),
                    ),
                };
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                Ok(health::status(&kube, &expected).await?)
            })?;
            printer.addons_status(&rows);
            let unhealthy = health::unhealthy(&rows);
            if !unhealthy.is_empty() {
                anyhow::bail!("not healthy: {}", unhealthy.join(", "));
            }
        }
    }
    Ok(())
}

/// `cluster down` of one cluster, printing its summary whatever happens.
fn down(
    request: Request,
    approval: cluster::Approval<'_>,
    plan_only: bool,
    teardown: &TeardownArgs,
    kubeconfig: PathBuf,
    printer: &Printer,
) -> Result<()> {
    block_on(async {
        let options = cluster::DownOptions {
            request,
            approval,
            plan_only,
            keep_volumes: teardown.keep_volumes,
            kubeconfig,
            interrupt: Interrupt::ctrl_c(),
            deadline: teardown.wait,
        };
        let (summary, result) = cluster::down(options, printer).await;
        printer.down_summary(&summary, result.is_ok());
        Ok(result?)
    })
}

/// Who approves changes: `--yes`, else a person at a terminal. Without
/// either there is nobody to ask, which is a usage error.
fn approval(
    yes: bool,
    dry_run: bool,
    printer: &Printer,
) -> Result<cluster::Approval<'_>, ConfigError> {
    if yes || dry_run {
        return Ok(cluster::Approval::Yes);
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        return Ok(cluster::Approval::Ask(printer));
    }
    Err(ConfigError::Invalid(vec![Problem {
        location: Location::CommandLine,
        field: "--yes".into(),
        message: "required when not run from a terminal: nobody can approve the changes".into(),
    }]))
}

fn kubeconfig_path(flag: Option<&std::path::Path>) -> Result<PathBuf> {
    Ok(kubeconfig::resolve_path(
        flag,
        std::env::var_os("KUBECONFIG").as_deref(),
        std::env::var_os("HOME").map(PathBuf::from).as_deref(),
    )?)
}

fn install_options(args: &ArgocdArgs) -> InstallOptions {
    InstallOptions {
        argocd_manifest: args
            .argocd_manifest
            .as_deref()
            .map(ManifestSource::parse)
            .unwrap_or(ManifestSource::Pinned),
        argocd_sha256: args.argocd_sha256.clone(),
        ..InstallOptions::default()
    }
}

/// Runs the async part of a command on a runtime that lives only as long
/// as the command.
fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// A `--region` flag given without a cluster spec is checked like one.
fn check_region(region: &str) -> Result<(), ConfigError> {
    match config::regions::find(region) {
        Some(_) => Ok(()),
        None => Err(ConfigError::Invalid(vec![Problem {
            location: Location::CommandLine,
            field: "--region".into(),
            message: config::regions::unknown(region),
        }])),
    }
}

fn cluster_interrupted(err: &anyhow::Error) -> bool {
    err.downcast_ref::<cluster::ClusterError>()
        .is_some_and(cluster::ClusterError::is_interrupt)
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    let cluster = err.downcast_ref::<cluster::ClusterError>();
    if err.downcast_ref::<ConfigError>().is_some()
        || matches!(cluster, Some(cluster::ClusterError::Config(_)))
    {
        EXIT_USAGE
    } else if err.downcast_ref::<aws::preflight::Refused>().is_some()
        || matches!(cluster, Some(cluster::ClusterError::Preflight(_)))
    {
        EXIT_PREFLIGHT
    } else if cluster_interrupted(err) {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILURE
    }
}
