//! `terrace janitor`: find what is stale and, with `--yes`, remove each
//! stale cluster through the same path as `cluster down`.

use anyhow::Result;

use super::cluster::down_stale;
use super::{Context, Show, check_region, regions};
use crate::aws::Aws;
use crate::aws::discovery::RegionFailure;
use crate::cli::JanitorArgs;
use crate::teardown::janitor::{self, JanitorReport};

/// What the janitor could not do: clusters whose removal failed, regions
/// it could not read (so could not clean).
#[derive(Debug, thiserror::Error)]
#[error("{}", unfinished(.not_removed, .unreadable))]
pub struct Unfinished {
    pub not_removed: Vec<String>,
    pub unreadable: Vec<RegionFailure>,
}

fn unfinished(not_removed: &[String], unreadable: &[RegionFailure]) -> String {
    let mut parts = Vec::new();
    if !not_removed.is_empty() {
        parts.push(format!(
            "janitor could not remove: {}",
            not_removed.join(", ")
        ));
    }
    if !unreadable.is_empty() {
        let regions: Vec<String> = unreadable
            .iter()
            .map(|f| format!("{} ({})", f.region, f.message))
            .collect();
        parts.push(format!(
            "janitor could not read {} region(s), so nothing there was cleaned: {}",
            unreadable.len(),
            regions.join("; ")
        ));
    }
    parts.join("; ")
}

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
/// fails does not stop the others, nor does a region that could not be
/// read: what was read is cleaned, and the error at the end names both.
/// An interrupt stops them all.
pub async fn remove(
    ctx: &Context,
    args: &JanitorArgs,
    report: &JanitorReport,
    show: &dyn Show,
) -> Result<()> {
    let unreadable = report.failures.clone();
    if !args.yes {
        return finish(Vec::new(), unreadable);
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
    finish(failed, unreadable)
}

fn finish(not_removed: Vec<String>, unreadable: Vec<RegionFailure>) -> Result<()> {
    if not_removed.is_empty() && unreadable.is_empty() {
        Ok(())
    } else {
        Err(Unfinished {
            not_removed,
            unreadable,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::TeardownArgs;
    use crate::cluster::{DownSummary, Prompt};
    use crate::ops::Env;
    use crate::progress::{Event, Reporter};
    use crate::teardown::janitor::{Reason, Stale, StaleKind};

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
            reason: Reason::Older,
            expires_at: None,
            resources: Vec::new(),
        }
    }

    #[tokio::test]
    async fn without_yes_removes_nothing_and_still_names_an_unreadable_region() {
        let ctx = Context::new(None, Env::default()).unwrap();
        let shown = Record::default();
        let report = |failures| JanitorReport {
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            older_than_seconds: 3600,
            stale: vec![stale()],
            undated: Vec::new(),
            kept: Vec::new(),
            failures,
        };
        let incomplete = report(vec![RegionFailure {
            region: "eu-west-1".into(),
            message: "AccessDenied".into(),
        }]);
        let err = remove(&ctx, &args(false), &incomplete, &shown)
            .await
            .unwrap_err();
        let unfinished = err.downcast_ref::<Unfinished>().expect("typed");
        assert!(unfinished.not_removed.is_empty());
        assert!(
            err.to_string().contains("eu-west-1 (AccessDenied)"),
            "{err}"
        );

        remove(&ctx, &args(false), &report(Vec::new()), &shown)
            .await
            .unwrap();
        assert!(shown.0.lock().unwrap().is_empty());
    }
}
