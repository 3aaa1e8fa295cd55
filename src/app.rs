//! The edge between the command line and the operations: builds the
//! [`Context`] once, runs one operation per command on one Tokio runtime,
//! hands its result to the printer, and decides the exit code of an error.

use anyhow::Result;

use crate::aws;
use crate::cli::{
    AddonsCommand, Cli, ClusterCommand, Command, DrillCommand, DrillHistory, FleetCommand,
    OutputArg, StateCommand,
};
use crate::cluster;
use crate::config::ConfigError;
use crate::ops::{self, Context, Env};
use crate::ui::Printer;

/// Exit codes (DESIGN.md section 6); a run a signal stopped exits 128 +
/// its number (130, 143, 129).
pub const EXIT_FAILURE: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_PREFLIGHT: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

pub fn run(cli: Cli, printer: &Printer) -> Result<()> {
    let matrix = matches!(cli.command, Command::Fleet(FleetCommand::Matrix(_)));
    if cli.output == OutputArg::Github && !matrix {
        return Err(ops::flag_error(
            "--output",
            "github is only for `terrace fleet matrix` (use text or json)".into(),
        )
        .into());
    }
    let ctx = Context::new(cli.config, Env::from_process())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(command(&ctx, cli.command, cli.output, printer))
}

async fn command(
    ctx: &Context,
    command: Command,
    output: OutputArg,
    printer: &Printer,
) -> Result<()> {
    match command {
        Command::Cluster(ClusterCommand::Render(args)) => {
            printer.rendered(&ops::cluster::render(
                ctx,
                &args.cluster,
                args.out.as_deref(),
            )?);
        }
        Command::Cluster(ClusterCommand::Up(args)) => {
            let (summary, result) = ops::cluster::up(ctx, &args, printer).await?;
            printer.up_summary(&summary, result.is_ok());
            result?;
        }
        Command::Cluster(ClusterCommand::Down(args)) => {
            let (summary, result) = ops::cluster::down(ctx, &args, printer).await?;
            printer.down_summary(&summary, result.is_ok());
            result?;
        }
        Command::Cluster(ClusterCommand::Rebuild(args)) => {
            let (summary, result) = ops::cluster::rebuild(ctx, &args, printer).await?;
            printer.rebuild_summary(&summary, result.is_ok());
            result?;
        }
        Command::Cluster(ClusterCommand::Unlock(args)) => {
            printer.unlocked(&ops::cluster::unlock(ctx, &args, printer).await?);
        }
        Command::Cluster(ClusterCommand::Preflight(args)) => {
            let report = ops::cluster::preflight(ctx, &args).await?;
            printer.preflight(&report);
            report.refusal().map_or(Ok(()), Err)?;
        }
        Command::Cluster(ClusterCommand::Kubeconfig(args)) => {
            let (written, warnings) = ops::cluster::kubeconfig(ctx, &args).await?;
            warnings.iter().for_each(|w| printer.warning(w));
            printer.kubeconfig_written(&written);
        }
        Command::Cluster(ClusterCommand::List(args)) => {
            let listing = ops::cluster::list(&args).await?;
            printer.cluster_list(&listing);
            listing.incomplete().map_or(Ok(()), Err)?;
        }
        Command::Cluster(ClusterCommand::Status(args)) => {
            printer.cluster_status(&ops::cluster::status(ctx, &args).await?);
        }
        Command::State(StateCommand::Bootstrap(args)) => {
            printer.state_bucket(&ops::account::bootstrap(&args).await?);
        }
        Command::Token(args) => {
            printer.exec_credential(&ops::account::token(&args).await?.exec_credential());
        }
        Command::Janitor(args) => {
            let report = ops::janitor::find(&args).await?;
            printer.janitor(&report);
            ops::janitor::remove(ctx, &args, &report, printer).await?;
        }
        Command::Fleet(command) => fleet(ctx, command, output, printer).await?,
        Command::Drill(DrillCommand {
            history: Some(DrillHistory::History(args)),
            ..
        }) => printer.drill_history(&ops::drill::history(ctx, &args).await?),
        Command::Drill(DrillCommand { run, .. }) => {
            let ((summary, result), kept) = ops::drill::run(ctx, &run, printer).await?;
            printer.drill_summary(&summary, &kept, result.is_ok());
            result?;
            ops::drill::verdict(&summary.report)?;
        }
        Command::Addons(AddonsCommand::List) => printer.addons(ctx.catalog),
        Command::Addons(AddonsCommand::Status(args)) => {
            let rows = ops::addons::status(ctx, &args).await?;
            printer.addons_status(&rows);
            ops::addons::healthy(&rows)?;
        }
    }
    Ok(())
}

async fn fleet(
    ctx: &Context,
    command: FleetCommand,
    output: OutputArg,
    printer: &Printer,
) -> Result<()> {
    let summary = match command {
        FleetCommand::Up(args) => ops::fleet::up(ctx, &args, printer).await?,
        FleetCommand::Down(args) => ops::fleet::down(ctx, &args, printer).await?,
        FleetCommand::Rebuild(args) => ops::fleet::rebuild(ctx, &args, printer).await?,
        FleetCommand::Drill(args) => ops::fleet::drill(ctx, &args, printer).await?,
        FleetCommand::Plan(args) => ops::fleet::plan(ctx, &args, printer).await?,
        FleetCommand::Render(select) => {
            for rendered in ops::fleet::render(ctx, &select)? {
                printer.rendered(&rendered);
            }
            return Ok(());
        }
        FleetCommand::Status(args) => {
            printer.fleet_status(&ops::fleet::status(ctx, &args, printer).await?);
            return Ok(());
        }
        FleetCommand::Matrix(select) => {
            let (fleet, jobs) = ops::fleet::matrix(ctx, &select)?;
            printer.fleet_matrix(&fleet, &jobs, output == OutputArg::Github);
            return Ok(());
        }
    };
    printer.fleet_summary(&summary);
    Ok(summary.check()?)
}

pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(fleet) = err.downcast_ref::<ops::fleet::FleetFailed>() {
        return fleet.signal.map_or(EXIT_FAILURE, |s| s.exit_code());
    }
    let cluster = err.downcast_ref::<cluster::ClusterError>();
    if err.downcast_ref::<ConfigError>().is_some()
        || matches!(
            cluster,
            Some(cluster::ClusterError::Config(_) | cluster::ClusterError::Refused { .. })
        )
    {
        EXIT_USAGE
    } else if err.downcast_ref::<aws::preflight::Refused>().is_some()
        || matches!(cluster, Some(cluster::ClusterError::Preflight(_)))
    {
        EXIT_PREFLIGHT
    } else if let Some(signal) = cluster.and_then(cluster::ClusterError::signal) {
        signal.exit_code()
    } else if cluster.is_some_and(cluster::ClusterError::is_interrupt) {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILURE
    }
}
