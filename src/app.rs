//! The edge between the command line and the domain modules: runs one
//! parsed command and decides the exit code of an error.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Result;

use crate::addons::Catalog;
use crate::aws::{self, Aws, discovery, kubeconfig, preflight, state, token};
use crate::cli::{AddonsCommand, Cli, ClusterArgs, ClusterCommand, Command, StateCommand};
use crate::cluster;
use crate::config::{self, ConfigError, Location, Problem, Request};
use crate::teardown::janitor;
use crate::terraform::Terraform;
use crate::ui::Printer;

/// Exit codes (DESIGN.md section 6).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_PREFLIGHT: u8 = 3;

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
            let path = kubeconfig::resolve_path(
                args.kubeconfig.as_deref(),
                std::env::var_os("KUBECONFIG").as_deref(),
                std::env::var_os("HOME").map(PathBuf::from).as_deref(),
            )?;
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
        }
        Command::Addons(AddonsCommand::List) => {
            let catalog = Catalog::embedded().map_err(|e| anyhow::anyhow!("{e}"))?;
            printer.addons(catalog);
        }
    }
    Ok(())
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

pub fn exit_code(err: &anyhow::Error) -> u8 {
    let config = err.downcast_ref::<ConfigError>().is_some()
        || matches!(
            err.downcast_ref::<cluster::ClusterError>(),
            Some(cluster::ClusterError::Config(_))
        );
    if config {
        EXIT_USAGE
    } else if err.downcast_ref::<aws::preflight::Refused>().is_some() {
        EXIT_PREFLIGHT
    } else {
        EXIT_FAILURE
    }
}
