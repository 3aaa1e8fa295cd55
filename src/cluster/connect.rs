//! Reaching a cluster's Kubernetes API through EKS: endpoint and CA from
//! `DescribeCluster`, bearer tokens made the way `aws eks get-token` makes
//! them and renewed as they expire, and the kubeconfig entry whose exec
//! plugin is `terrace token`.

use std::sync::Arc;

use super::ClusterError;
use crate::aws::{self, Aws, kubeconfig};
use crate::config::ClusterSpec;
use crate::k8s::{BearerToken, Kube, TokenSource};
use crate::progress::{Event, Reporter};

/// A client for `cluster`'s API from `DescribeCluster`, the kubeconfig
/// entry that reaches the same API, and warnings about that entry.
pub async fn eks_client(
    aws: &Aws,
    cluster: &str,
) -> Result<(Kube, kubeconfig::Entry, Vec<String>), ClusterError> {
    let (entry, warnings) = kubeconfig::entry(aws, cluster).await?;
    let ca = base64_decode(&entry.ca_data).ok_or_else(|| ClusterError::Ca(cluster.to_string()))?;
    let tokens: Arc<dyn TokenSource> = Arc::new(EksTokens {
        aws: aws.clone(),
        cluster: cluster.to_string(),
    });
    let kube = Kube::from_parts(&entry.server, &ca, tokens)?;
    Ok((kube, entry, warnings))
}

/// The `connect` phase: a client, and the cluster's context in the kubeconfig
/// (where it was written, for the summary).
pub async fn connect(
    aws: &Aws,
    spec: &ClusterSpec,
    kubeconfig: &kubeconfig::Target,
    reporter: &dyn Reporter,
) -> Result<(Kube, kubeconfig::Written), ClusterError> {
    let (kube, entry, warnings) = eks_client(aws, &spec.name).await?;
    for warning in warnings {
        reporter.report(Event::warn("connect", warning));
    }
    let written = kubeconfig::write_entry(&kubeconfig.path, &entry, &kubeconfig.exec)?;
    reporter.report(Event::info(
        "connect",
        format!(
            "kubeconfig context {} in {}",
            entry.cluster,
            written.path.display()
        ),
    ));
    Ok((kube, written))
}

fn base64_decode(data: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
}

/// Tokens the way `aws eks get-token` makes them, renewed as they expire.
struct EksTokens {
    aws: Aws,
    cluster: String,
}

impl TokenSource for EksTokens {
    fn token(&self) -> futures::future::BoxFuture<'_, Result<BearerToken, crate::k8s::TokenError>> {
        Box::pin(async move {
            let token = aws::token::token(&self.aws, &self.cluster).await?;
            Ok(BearerToken::new(token.expose(), token.expires))
        })
    }
}

/// The first call to a new cluster's API, with its own short deadline, so
/// an API that does not answer fails in seconds with a clear message.
pub async fn reachable(kube: &Kube, cluster: &str) -> Result<(), ClusterError> {
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);
    match tokio::time::timeout(DEADLINE, kube.server_version()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Unreachable {
            cluster: cluster.to_string(),
            reason: e.to_string(),
        }),
        Err(_) => Err(ClusterError::Unreachable {
            cluster: cluster.to_string(),
            reason: format!("no answer within {}s", DEADLINE.as_secs()),
        }),
    }
}
