//! `terrace cluster unlock`: shows who holds a cluster's Terraform state
//! lock and, once approved, releases it the way Terraform would — `terraform
//! force-unlock` in the cluster's work directory, with Terrace's data
//! directory and backend settings, which a bare `terraform force-unlock`
//! typed by hand lacks.
//!
//! It refuses while a terrace run on this host holds the cluster (the
//! local lock) or a Terraform process on this host still works on it:
//! their lock is not stale, and releasing it would let two writers at the
//! state.

use std::path::PathBuf;

use serde::Serialize;

use super::journal::Journal;
use super::lock::Lock;
use super::stale::{self, Diagnosis, Holder};
use super::{Approval, ClusterError, work_dir};
use crate::aws::{Aws, state};
use crate::config::Request;
use crate::progress::{Event, Reporter};
use crate::render::{self, Outputs};
use crate::terraform::{Backend, BinaryError, Interrupt, Runner, Terraform};

pub struct UnlockOptions<'a> {
    pub request: Request,
    pub approval: Approval<'a>,
    /// The binary found for this run, or why none was.
    pub terraform: Result<Terraform, BinaryError>,
    pub interrupt: Interrupt,
}

/// What `unlock` found and did.
#[derive(Debug, Default, Serialize)]
pub struct UnlockSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    /// The lock that was held, and its holder; `None`: nothing was locked.
    pub lock: Option<Diagnosis>,
    pub released: bool,
}

pub async fn unlock(
    options: UnlockOptions<'_>,
    reporter: &dyn Reporter,
) -> Result<UnlockSummary, ClusterError> {
    let spec = super::spec(&options.request)?;
    let dir = std::path::absolute(work_dir(&spec.name))
        .map_err(|e| ClusterError::Io("the work directory", e))?;
    // A terrace run that holds the cluster holds its state lock rightly.
    let _lock = Lock::acquire(&dir, &spec.name, "unlock")?;
    let mut summary = UnlockSummary {
        cluster: spec.name.clone(),
        region: spec.region.clone(),
        dir: dir.clone(),
        ..UnlockSummary::default()
    };
    let aws = Aws::connect(&spec.region).await;
    let account = aws
        .account()
        .await
        .map_err(|e| ClusterError::Aws(e.to_string()))?;
    let bucket = state::bucket_name(&account, &spec.region);
    let backend =
        Backend::for_cluster(&bucket, &spec.name, &spec.region).path_style(aws.s3_path_style());
    if !state::exists(&aws, &account, &spec.region).await? {
        return Ok(summary);
    }
    let Some(lock) = state::state_lock(&aws, &account, &spec.region, &backend.key).await? else {
        return Ok(summary);
    };
    let mut journal = Journal::load(&dir).ok();
    let recorded = journal.as_ref().and_then(|j| j.lock.clone());
    let diagnosis = stale::diagnose(lock, &spec.name, recorded);
    reporter.report(Event::info(
        "unlock",
        format!("state lock {}", diagnosis.describe()),
    ));
    let id = diagnosis.lock.id.clone();
    summary.lock = Some(diagnosis.clone());
    if let Holder::Alive { .. } = diagnosis.holder {
        return Err(ClusterError::StateLocked {
            cluster: spec.name.clone(),
            diagnosis: Box::new(diagnosis),
            unlock: super::up::unlock_command(&options.request, &spec),
        });
    }
    let question = format!(
        "Release the Terraform state lock {id} of cluster {} in {}?",
        spec.name, spec.region
    );
    if !options.approval.approve(&question).await {
        return Err(ClusterError::Declined);
    }

    let tree = render::render(&spec, &Outputs::placeholders())?;
    tree.write_atomic(&dir)?;
    let runner = Runner::new(options.terraform.clone()?, &dir)
        .with_env("TF_DATA_DIR", &dir.join("tfdata").display().to_string())
        .with_interrupt(options.interrupt);
    runner.init(&backend, reporter).await?;
    runner.force_unlock(&id, reporter).await?;
    if let Some(journal) = journal.as_mut() {
        journal.set_lock(None)?;
    }
    summary.released = true;
    Ok(summary)
}
