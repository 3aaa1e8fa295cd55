//! The edge between the command line and the domain modules: runs one
//! parsed command and decides the exit code of an error.

use anyhow::{Context as _, Result};

use crate::addons::{Catalog, health};
use crate::cli::{AddonsCommand, Cli, ClusterCommand, Command};
use crate::cluster;
use crate::config::{ConfigError, Request};
use crate::k8s::Kube;
use crate::ui::Printer;

/// Exit codes (DESIGN.md section 6).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn run(cli: Cli, printer: &Printer) -> Result<()> {
    match cli.command {
        Command::Cluster(ClusterCommand::Render(args)) => {
            let request = Request {
                config: cli.config,
                region: args.cluster.region,
                name: args.cluster.name,
            };
            let summary = cluster::render(&request, args.out.as_deref())?;
            printer.rendered(&summary);
        }
        Command::Addons(AddonsCommand::List) => {
            let catalog = Catalog::embedded().map_err(|e| anyhow::anyhow!("{e}"))?;
            printer.addons(catalog);
        }
        Command::Addons(AddonsCommand::Status(args)) => {
            let rows = runtime()?.block_on(async {
                let kube = Kube::from_kubeconfig(
                    args.kube.kubeconfig.as_deref(),
                    args.kube.context.as_deref(),
                )
                .await?;
                health::status(&kube, &[]).await
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    let config = err.downcast_ref::<ConfigError>().is_some()
        || matches!(
            err.downcast_ref::<cluster::ClusterError>(),
            Some(cluster::ClusterError::Config(_))
        );
    if config { EXIT_USAGE } else { EXIT_FAILURE }
}
