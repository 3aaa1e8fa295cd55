//! The phases of a cluster's life, in order. This module composes
//! `config`, `render` and the rest, and is the only one that knows which
//! step comes after which; it prints nothing (the caller hands results to
//! `ui`).

pub mod journal;
pub mod lock;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, ConfigError, Request};
use crate::render::{self, Outputs, RenderError, WriteError};

/// Where a cluster's work directory lives unless `--out` says otherwise.
pub fn work_dir(name: &str) -> PathBuf {
    Path::new(".terrace").join(name)
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Write(#[from] WriteError),
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

/// resolve → render → write: the offline part of `up`.
pub fn render(request: &Request, out: Option<&Path>) -> Result<RenderSummary, ClusterError> {
    let spec = config::load(request)?;
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
