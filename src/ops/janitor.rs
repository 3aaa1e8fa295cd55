//! `terrace janitor`: find what is stale and, with `--yes`, remove each
//! stale cluster through the same path as `cluster down`.

use anyhow::Result;

use super::cluster::down_stale;
use super::{Context, Show, check_region, regions};
use crate::aws::Aws;
use crate::aws::discovery::DiscoveryError;
use crate::cli::JanitorArgs;
use crate::teardown::janitor::{self, JanitorReport};

#[derive(Debug, thiserror::Error)]
#[error("janitor could not remove: {}", .0.join(", "))]
pub struct NotRemoved(pub Vec<String>);

/// Stale clusters and orphans older than `--older-than`. Regions that
/// could not be read are in the report's failures.
pub async fn find(args: &JanitorArgs) -> Result<JanitorReport> {
    for region in &args.regions {
        check_region(region)?;
    }
    let aws = Aws::connect_default().await;
    let regions = regions(&aws, &args.regions).await?;
    Ok(janitor::find(&aws, &regions, args.older_than).await)
}

/// Removes every stale cluster of `report`, one after another. One that
/// fails does not stop the others; an interrupt stops them all. Refuses
/// to remove anything when a region could not be read.
pub async fn remove(
    ctx: &Context,
    args: &JanitorArgs,
    report: &JanitorReport,
    show: &dyn Show,
) -> Result<()> {
    if !report.failures.is_empty() {
        return Err(DiscoveryError::Incomplete(report.failures.clone()).into());
    }
    if !args.yes {
        return Ok(());
    }
    let kubeconfig = ctx.kubeconfig(None)?;
    let mut failed = Vec::new();
    for stale in &report.stale {
        let removed = down_stale(
            ctx,
            &stale.region,
            &stale.cluster,
            &args.teardown,
            &kubeconfig.path,
            show,
        )
        .await;
        if let Err(e) = removed {
            if e.is_interrupt() {
                return Err(e.into());
            }
            show.warning(&format!("{} ({}): {e:#}", stale.cluster, stale.region));
            failed.push(format!("{} ({})", stale.cluster, stale.region));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(NotRemoved(failed).into())
    }
}
