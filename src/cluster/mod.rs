//! The phases of a cluster's life, in order. This module composes
//! `config`, `render` and the rest, and is the only one that knows which
//! step comes after which; it prints nothing (the caller hands results to
//! `ui`).

mod connect;
mod down;
mod drill;
pub mod guard;
pub mod journal;
pub mod lock;
pub mod orphans;
mod pipeline;
mod rebuild;
pub mod stale;
mod unlock;
mod up;
pub mod verify;

pub use connect::eks_client;
pub use down::{DownOptions, DownPlan, DownSummary, down};
pub use drill::{DrillOptions, DrillSummary, drill};
pub use pipeline::{Outcome, PhaseReport};
pub use rebuild::{Decision, RebuildOptions, RebuildSummary, rebuild};
pub use unlock::{UnlockOptions, UnlockSummary, unlock};
pub use up::{UpOptions, UpSummary, VERIFY_DEADLINE, up};

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::addons::install::InstallError;
use crate::addons::{Catalog, CatalogError};
use crate::aws::kubeconfig::KubeconfigError;
use crate::aws::preflight::{Check, Refused};
use crate::aws::state::StateError;
use crate::config::{self, ConfigError, Request};
use crate::k8s::K8sError;
use crate::render::{self, Outputs, RenderError, WriteError};
use crate::terraform::{BinaryError, Interrupt, MIN_VERSION, RunError, Signal, Terraform};

/// Where a cluster's work directory lives unless `--out` says otherwise.
pub fn work_dir(name: &str) -> PathBuf {
    Path::new(".terrace").join(name)
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Catalog(#[from] &'static CatalogError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Journal(#[from] journal::JournalError),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error(transparent)]
    Preflight(#[from] Refused),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    TerraformBinary(#[from] BinaryError),
    #[error(transparent)]
    Terraform(#[from] RunError),
    #[error("terraform output has no {0:?}; the rendered stack and this terrace do not match")]
    MissingOutput(String),
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error(transparent)]
    Vpc(#[from] crate::aws::vpc::VpcError),
    #[error("cluster {0}: the certificate authority EKS returned is not base64")]
    Ca(String),
    #[error(transparent)]
    Kube(#[from] K8sError),
    #[error(
        "cluster {cluster}: the Kubernetes API did not answer ({reason}); check that this machine can reach the endpoint (endpoint.public / public_cidrs), then run `terrace cluster up` again to resume"
    )]
    Unreachable { cluster: String, reason: String },
    #[error(transparent)]
    Addons(#[from] InstallError),
    #[error("not ready after {seconds}s:\n  {}", problems.join("\n  "))]
    NotReady { seconds: u64, problems: Vec<String> },
    #[error(transparent)]
    Teardown(#[from] crate::teardown::TeardownError),
    #[error(transparent)]
    Drain(crate::teardown::DrainError),
    #[error(transparent)]
    Drill(crate::drill::RecoveryError),
    #[error("AWS: {0}")]
    Aws(String),
    #[error("resources of the cluster survived the teardown:\n  {}", .0.join("\n  "))]
    Leaks(Vec<String>),
    #[error(
        "cannot remove what a killed apply left behind, so Terraform would fail on it:\n  {}",
        .0.join("\n  ")
    )]
    Orphans(Vec<String>),
    #[error(
        "the Terraform state of cluster {cluster} is locked: {}. {}",
        diagnosis.describe(),
        unlock_advice(diagnosis, unlock)
    )]
    StateLocked {
        cluster: String,
        diagnosis: Box<stale::Diagnosis>,
        /// The command that releases it.
        unlock: String,
    },
    #[error(transparent)]
    PlanJson(#[from] guard::PlanJsonError),
    #[error("stopped: the changes were not approved")]
    Declined,
    /// The ownership gate refused the target: nothing was touched.
    #[error("refusing to tear down {cluster}: {reason}")]
    Refused { cluster: String, reason: String },
    /// A run a signal stopped; the signal decides the exit code.
    #[error("stopped by {}: {source}", signal.name())]
    Stopped {
        signal: Signal,
        source: Box<ClusterError>,
    },
    #[error("interrupted during {phase}")]
    Interrupted { phase: &'static str },
    #[error("{1}: {0}")]
    Io(&'static str, #[source] std::io::Error),
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// What to do about a held state lock.
fn unlock_advice(diagnosis: &stale::Diagnosis, unlock: &str) -> String {
    match diagnosis.holder {
        stale::Holder::Dead => format!(
            "Release it with `{unlock} --yes`, then run `terrace cluster up` again to continue"
        ),
        stale::Holder::Alive { .. } => {
            "Wait for that run to finish, or stop it (Ctrl-C or SIGTERM): it releases the lock itself".to_string()
        }
        stale::Holder::Unknown { .. } => format!(
            "If that run is gone for good, release it with `{unlock} --yes`"
        ),
    }
}

impl ClusterError {
    /// The run stopped because the user asked it to (exit 130).
    pub fn is_interrupt(&self) -> bool {
        matches!(
            self,
            ClusterError::Interrupted { .. }
                | ClusterError::Stopped { .. }
                | ClusterError::Terraform(RunError::Interrupted { .. })
        )
    }

    /// The signal that stopped the run, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            ClusterError::Stopped { signal, .. } => Some(*signal),
            _ => None,
        }
    }

    /// An interrupted run's error, carrying the signal behind the first
    /// stop request `interrupt` saw; any other error as it is.
    pub fn stopped_by(self, interrupt: &Interrupt) -> ClusterError {
        match interrupt.first_signal() {
            Some(signal) if self.is_interrupt() && self.signal().is_none() => {
                ClusterError::Stopped {
                    signal,
                    source: Box::new(self),
                }
            }
            _ => self,
        }
    }
}

/// Asks a person a yes/no question (implemented by `ui` on a terminal).
pub trait Prompt: Sync {
    /// Puts the question and returns where the answer will arrive. The
    /// answer must be read off the async path (a thread of its own): a
    /// blocking read there would keep a stop request from being seen until
    /// someone pressed Enter.
    fn ask(&self, question: &str) -> tokio::sync::oneshot::Receiver<bool>;
}

/// Who approves changes: `--yes`, or a person at a terminal.
#[derive(Clone, Copy)]
pub enum Approval<'a> {
    Yes,
    Ask(&'a dyn Prompt),
}

impl Approval<'_> {
    /// Waits for the answer; a caller that is stopped meanwhile simply
    /// drops this future (the question stays on screen, unanswered).
    pub async fn approve(&self, question: &str) -> bool {
        match self {
            Approval::Yes => true,
            Approval::Ask(prompt) => prompt.ask(question).await.unwrap_or(false),
        }
    }
}

/// What `render` wrote.
#[derive(Debug, Serialize)]
pub struct RenderSummary {
    pub cluster: String,
    pub region: String,
    pub dir: PathBuf,
    pub terraform_files: usize,
    pub manifests: Vec<String>,
}

/// The cluster `request` names, resolved with the embedded addon catalog.
pub fn spec(request: &Request) -> Result<config::ClusterSpec, ClusterError> {
    Ok(config::load(request, Catalog::embedded()?.schema())?)
}

/// Every preflight check of `spec`: the account's, then those that need
/// the addon catalog (the configured DNS zones).
pub async fn preflight_report(
    spec: &config::ClusterSpec,
    aws: &crate::aws::Aws,
    terraform: Check,
) -> crate::aws::preflight::PreflightReport {
    let mut report = crate::aws::preflight::run(spec, aws, terraform).await;
    let zones = Catalog::embedded()
        .map(|catalog| catalog.dns_zones(spec))
        .unwrap_or_default();
    if let Some(check) = crate::aws::preflight::dns_zones(aws, &zones).await {
        report.add(check);
    }
    report
}

/// Preflight's check of the Terraform binary this run found.
pub fn terraform_check(found: &Result<Terraform, BinaryError>) -> Check {
    const NAME: &str = "terraform";
    match found {
        Ok(tf) => Check::pass(
            NAME,
            format!("version {} at {}", tf.version, tf.path.display()),
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!(
                "install Terraform >= {MIN_VERSION} (or OpenTofu) on PATH, or set TERRACE_TERRAFORM to its path"
            ),
        ),
    }
}

/// resolve → render → write: the offline part of `up`.
pub fn render(request: &Request, out: Option<&Path>) -> Result<RenderSummary, ClusterError> {
    let spec = spec(request)?;
    let tree = render::render(&spec, &Outputs::placeholders())?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| work_dir(&spec.name));
    tree.write_atomic(&dir)?;
    Ok(RenderSummary {
        cluster: spec.name,
        region: spec.region,
        dir,
        terraform_files: tree
            .iter()
            .filter(|(p, _)| p.starts_with("terraform/"))
            .count(),
        manifests: tree
            .iter()
            .filter_map(|(p, _)| p.strip_prefix("manifests/").map(str::to_string))
            .collect(),
    })
}
