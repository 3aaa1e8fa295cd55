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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::discovery::RegionFailure;
    use crate::cli::TeardownArgs;
    use crate::cluster::{DownSummary, Prompt};
    use crate::ops::Env;
    use crate::progress::{Event, Reporter};
    use crate::teardown::janitor::{Stale, StaleKind};

    /// Records what would be shown; a teardown started would show a summary.
    #[derive(Default)]
    struct Record(std::sync::Mutex<Vec<String>>);

    impl Reporter for Record {
        fn report(&self, _event: Event) {}
    }

    impl Prompt for Record {
        fn ask(&self, _question: &str) -> tokio::sync::oneshot::Receiver<bool> {
            let (answer, asked) = tokio::sync::oneshot::channel();
            let _ = answer.send(false);
            asked
        }
    }

    impl Show for Record {
        fn down_summary(&self, summary: &DownSummary, _ok: bool) {
            self.0
                .lock()
                .unwrap()
                .push(format!("down {}", summary.cluster));
        }

        fn warning(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    fn args(yes: bool) -> JanitorArgs {
        JanitorArgs {
            older_than: std::time::Duration::from_secs(3600),
            regions: Vec::new(),
            yes,
            teardown: TeardownArgs {
                keep_volumes: false,
                wait: std::time::Duration::from_secs(60),
            },
        }
    }

    fn stale() -> Stale {
        Stale {
            kind: StaleKind::Cluster,
            cluster: "old".into(),
            region: "us-east-1".into(),
            age_seconds: Some(7200),
            resources: Vec::new(),
        }
    }

    #[tokio::test]
    async fn removes_nothing_when_a_region_could_not_be_read_or_without_yes() {
        let ctx = Context::new(None, Env::default()).unwrap();
        let shown = Record::default();
        let report = |failures| JanitorReport {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            older_than_seconds: 3600,
            stale: vec![stale()],
            undated: Vec::new(),
            failures,
        };
        let incomplete = report(vec![RegionFailure {
            region: "eu-west-1".into(),
            message: "AccessDenied".into(),
        }]);
        let err = remove(&ctx, &args(true), &incomplete, &shown)
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<DiscoveryError>().is_some(), "{err}");

        remove(&ctx, &args(false), &report(Vec::new()), &shown)
            .await
            .unwrap();
        assert!(shown.0.lock().unwrap().is_empty());
    }
}
