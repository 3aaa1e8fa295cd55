//! `terrace addons status`: each installed addon's version, sync and
//! health, through EKS (`--region`) or a kubeconfig.

use anyhow::Result;

use super::Context;
use crate::addons::health::{self, AddonStatus};
use crate::aws::Aws;
use crate::cli::AddonsStatusArgs;
use crate::cluster;
use crate::k8s::Kube;

#[derive(Debug, thiserror::Error)]
#[error("not healthy: {}", .0.join(", "))]
pub struct Unhealthy(pub Vec<String>);

/// The rows of `addons status`. Through EKS, every addon the cluster's
/// configuration enables is expected, so a missing one shows.
pub async fn status(ctx: &Context, args: &AddonsStatusArgs) -> Result<Vec<AddonStatus>> {
    let (kube, expected) = match &args.region {
        Some(region) => {
            let spec = ctx.spec(region, args.name.as_deref())?;
            let aws = Aws::connect(&spec.region).await;
            let (kube, _, _) = cluster::eks_client(&aws, &spec.name).await?;
            (kube, ctx.catalog.enabled(&spec))
        }
        None => {
            let kubeconfig = args.kube.kubeconfig.as_deref();
            let kube = Kube::from_kubeconfig(kubeconfig, args.kube.context.as_deref()).await?;
            (kube, Vec::new())
        }
    };
    Ok(health::status(&kube, ctx.catalog.gitops(), &expected).await?)
}

/// An error naming the unhealthy addons, if any.
pub fn healthy(rows: &[AddonStatus]) -> Result<(), Unhealthy> {
    let unhealthy = health::unhealthy(rows);
    if unhealthy.is_empty() {
        Ok(())
    } else {
        Err(Unhealthy(
            unhealthy.into_iter().map(str::to_string).collect(),
        ))
    }
}
